"""The HTTP API and recoverctl end to end: errors are JSON with a reason,
views have their documented shape, recoverctl shows what the API says."""

import json
import os
import signal
import subprocess
import time

import pytest

from helpers import binary, demo_service, free_port, wait_running

FAULT_TYPES = {"hardware", "software", "network", "configuration", "resource"}
SEVERITIES = {"low", "medium", "high", "critical"}
IMPACTS = {"local", "service", "system", "global"}


def _error(rd, path, method="GET"):
    status, body = rd.request(method, path)
    doc = json.loads(body)
    assert isinstance(doc.get("error"), str) and doc["error"], doc
    return status, doc["error"]


def test_api_errors(recoverd):
    rd = recoverd({"services": {"web": demo_service(free_port())}})
    wait_running(rd, "web")
    assert _error(rd, "/no/such/thing") == (404, "no such resource: /no/such/thing")
    status, msg = _error(rd, "/v1/status", "POST")
    assert status == 405 and "GET" in msg
    status, msg = _error(rd, "/v1/faults/abc")
    assert status == 400 and "abc" in msg
    assert _error(rd, "/v1/faults/999")[0] == 404
    assert _error(rd, "/v1/services/nope") == (404, "no such service: nope")
    status, msg = _error(rd, "/v1/faults?activ=1")
    assert status == 400 and "activ" in msg
    assert _error(rd, "/v1/actions?limit=0")[0] == 400
    # After all that, the daemon answers as before.
    assert rd.api("/v1/status")["name"] == "recoverd"


def test_api_summary_and_status_shapes(recoverd):
    rd = recoverd({"services": {"web": demo_service(free_port())}})
    old = wait_running(rd, "web")
    os.kill(old["pid"], signal.SIGKILL)
    wait_running(rd, "web", not_pid=old["pid"])
    rd.wait_for(lambda: rd.api("/v1/status")["resolved_faults"] == 1, what="fault resolved")

    summary = rd.api("/v1/faults/summary")
    assert set(summary["by_type"]) == FAULT_TYPES
    assert set(summary["by_severity"]) == SEVERITIES
    assert set(summary["by_impact"]) == IMPACTS
    assert (summary["total"], summary["active"], summary["resolved"]) == (1, 0, 1)
    assert summary["by_type"]["software"] == 1 and sum(summary["by_type"].values()) == 1
    assert summary["by_severity"]["high"] == 1 and summary["by_impact"]["service"] == 1

    status = rd.api("/v1/status")
    for key in ("name", "state", "active_faults", "resolved_faults", "recovery_actions",
                "detectors", "strategies"):
        assert key in status, key
    assert status["name"] == "recoverd"
    assert (status["active_faults"], status["resolved_faults"], status["recovery_actions"]) \
        == (0, 1, 1)
    assert {"process", "http", "tcp"} <= set(status["detectors"])
    assert "restart" in status["strategies"]
    assert status["services"] == 1 and sum(status["services_by_state"].values()) == 1


def _ctl(rd_port, *args):
    return subprocess.run([binary("recoverctl"), "--api", f"127.0.0.1:{rd_port}", *args],
                          capture_output=True, text=True, timeout=10)


def test_recoverctl_tables_and_json(recoverd):
    rd = recoverd({"services": {"web": demo_service(free_port())}})
    old = wait_running(rd, "web")
    os.kill(old["pid"], signal.SIGKILL)
    new = wait_running(rd, "web", not_pid=old["pid"])
    rd.wait_for(lambda: rd.api("/v1/actions")[0]["status"] == "completed",
                what="restart completed")
    state = rd.service("web")["state"]

    r = _ctl(rd.api_port, "services")
    assert r.returncode == 0, r.stderr
    rows = [line.split() for line in r.stdout.splitlines() if line.strip()]
    assert rows[0][:4] == ["NAME", "STATE", "PID", "RESTARTS"]
    assert ["web", state, str(new["pid"]), "1"] in [row[:4] for row in rows[1:]]

    r = _ctl(rd.api_port, "faults")
    assert r.returncode == 0, r.stderr
    fault = rd.api("/v1/faults")[0]
    line = next(line for line in r.stdout.splitlines() if line.startswith(f"{fault['id']} "))
    assert line.split()[1:5] == ["web", "process", "software", "high"]
    assert "signal 9" in line

    r = _ctl(rd.api_port, "actions")
    assert r.returncode == 0 and "completed" in r.stdout and "restart" in r.stdout

    r = _ctl(rd.api_port, "--json", "status")
    assert r.returncode == 0, r.stderr
    via_ctl, via_api = json.loads(r.stdout), rd.api("/v1/status")
    assert set(via_ctl) == set(via_api)
    for key in ("name", "state", "active_faults", "resolved_faults", "recovery_actions",
                "detectors", "strategies", "services"):
        assert via_ctl[key] == via_api[key], key

    r = _ctl(rd.api_port, "fault", "abc")
    assert r.returncode == 2
    r = _ctl(rd.api_port, "fault", "999")
    assert r.returncode == 1 and "no such fault" in r.stderr


def test_recoverctl_unreachable_api_exits_3():
    port = free_port()
    t0 = time.monotonic()
    r = _ctl(port, "status")
    assert r.returncode == 3, r
    assert f"127.0.0.1:{port}" in r.stderr and r.stdout == ""
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("path", ["/v1/services", "/v1/faults", "/v1/actions",
                                  "/v1/transitions", "/v1/faults/summary"])
def test_api_lists_answer_json_while_idle(recoverd, path):
    rd = recoverd({"services": {"web": demo_service(free_port())}})
    doc = rd.api(path)
    assert isinstance(doc, (list, dict))
    status, body = rd.request("HEAD", path)
    assert status == 200 and body == b""
