"""Detection end to end: faults a process exit cannot show (a hang, a stop,
an error answer) are found by the http check, classified, and recovered."""

import os
import signal

from helpers import demo_service, free_port, http_get, pid_alive, transitions, wait_running


def _recovered(rd, name, old_pid, timeout=10.0):
    def done():
        v = rd.service(name)
        return v if v["state"] == "recovered" and v["pid"] not in (None, old_pid) else None
    return rd.wait_for(done, timeout, what=f"{name} recovered with a new pid")


def _one_fault_and_action(rd):
    faults, actions = rd.api("/v1/faults"), rd.api("/v1/actions")
    assert len(faults) == 1, faults
    assert len(actions) == 1, actions
    f, a = faults[0], actions[0]
    assert (a["strategy"], a["status"], a["fault_id"]) == ("restart", "completed", f["id"])
    assert f["resolved_at"] is not None
    return f, a


def _assert_http_fault_recovered(rd, port, old, new, ftype, severity):
    f, a = _one_fault_and_action(rd)
    assert (f["service"], f["check"], f["type"], f["severity"]) == \
        ("web", "http", ftype, severity)
    assert f["context"]["kind"] == "http" and f["context"]["consecutive_failures"] == 2
    # A hung or failing process was still running: it was stopped, not waited for.
    assert a["params"]["stop"] is True and a["params"]["delay_ms"] == 0
    assert a["result"].startswith(f"verified: pid {new['pid']} running")
    assert new["restarts"] == 1 and new["last_exit"]["signal"] is None
    assert not pid_alive(old["pid"])
    assert http_get(port, "/health") == (200, b"ok\n")
    assert transitions(rd, "web") == [("normal", "degraded"), ("degraded", "recovering"),
                                      ("recovering", "recovered")]
    return f, a


def test_hang_http_check_fails_restart_recovers(recoverd):
    port = free_port()
    rd = recoverd({"services": {"web": demo_service(port)}})
    old = wait_running(rd, "web")
    try:
        http_get(port, "/hang", timeout=0.2)
    except OSError:
        pass  # it never answers: that is the point
    new = _recovered(rd, "web", old["pid"])
    f, _ = _assert_http_fault_recovered(rd, port, old, new, "network", "medium")
    assert f["description"] == "http check failing: timeout after 100 ms"
    # The hung demo still acts on SIGTERM: it exited 0 within the grace.
    assert new["last_exit"]["code"] == 0
    assert "stop-timeout" not in rd.log_text()


def test_sigstop_http_check_fails_restart_recovers(recoverd):
    port = free_port()
    # A long grace: the stop must not depend on it running out.
    rd = recoverd({"services": {"web": demo_service(port, stop={"grace": "10s"})}})
    old = wait_running(rd, "web")
    os.kill(old["pid"], signal.SIGSTOP)
    new = _recovered(rd, "web", old["pid"])
    _assert_http_fault_recovered(rd, port, old, new, "network", "medium")
    # SIGCONT after SIGTERM: the stopped process exited on TERM (code 0), not
    # by the KILL the 10 s grace would have ended in.
    assert new["last_exit"]["code"] == 0
    assert "stop-timeout" not in rd.log_text()


def test_http_500_opens_software_fault(recoverd):
    port = free_port()
    rd = recoverd({"services": {"web": demo_service(port)}})
    old = wait_running(rd, "web")
    assert http_get(port, "/fail")[0] == 200
    new = _recovered(rd, "web", old["pid"])
    f, _ = _assert_http_fault_recovered(rd, port, old, new, "software", "high")
    assert "500" in f["description"] and f["context"]["code"] == 500
    assert rd.api("/v1/status")["active_faults"] == 0
