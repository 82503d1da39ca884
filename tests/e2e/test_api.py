"""The HTTP API and recoverctl end to end: errors are JSON with a reason,
views have their documented shape, recoverctl shows what the API says."""

import json
import os
import re
import resource
import signal
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from unittest import mock

import pytest

from abuse import Abuse
from helpers import (asleep_share, binary, demo_service, free_port, http_exchange, wait_for,
                     wait_running)

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
    # The loop's stall gauge (daemon/loopwatch.c): counts since its start.
    loop = status["loop"]
    assert set(loop) == {"max_stall_ms", "max_stall_split", "stalls_over_5ms", "since"}
    assert isinstance(loop["max_stall_ms"], float) and loop["max_stall_ms"] >= 0
    # Where the longest turn went: its parts add up to it.
    split = loop["max_stall_split"]
    assert set(split) == {"io_ms", "flush_ms", "timers_ms"}
    assert abs(sum(split.values()) - loop["max_stall_ms"]) < 0.01
    assert isinstance(loop["stalls_over_5ms"], int) and loop["stalls_over_5ms"] >= 0
    since = datetime.fromisoformat(loop["since"].replace("Z", "+00:00"))
    now = datetime.now(timezone.utc)
    assert now - timedelta(milliseconds=status["uptime_ms"] + 1000) <= since <= now


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



def _stable(view):
    """A service view without what changes from one probe to the next."""
    moving = {"uptime_ms"}
    checks = [{k: v for k, v in c.items()
               if k not in ("at", "latency_ms", "probes", "consecutive_successes")}
              for c in view["checks"]]
    return {**{k: v for k, v in view.items() if k not in moving}, "checks": checks}


def test_listing_rows_are_the_services_views_while_some_are_retired(recoverd):
    """The listing loads each service's blocks ahead of writing it
    (service_view_prefetch): its rows are still each service's own view,
    and services a reload removed, whose processes are still stopping, are
    not listed."""
    ports = [free_port() for _ in range(8)]
    services = {f"web{i}": demo_service(p) for i, p in enumerate(ports[:6])}
    services["two"] = demo_service(ports[6], checks=[
        {"http": {"url": f"http://127.0.0.1:{ports[6]}/health", "interval": "100ms"}},
        {"tcp": {"address": f"127.0.0.1:{ports[6]}", "interval": "100ms"}}])
    stubborn = {f"slow{i}": {"command": ["sh", "-c", "trap '' TERM; sleep 1000"],
                             "stop": {"signal": "TERM", "grace": "5s"}} for i in range(12)}
    config = {"services": {**services, **stubborn, "bare": {"command": ["sleep", "1000"]}}}
    rd = recoverd(config)
    for name in services:
        wait_running(rd, name)
    del_some = {k: v for k, v in config["services"].items() if not k.startswith("slow")}
    rd.write_config({"services": del_some})
    rd.signal(signal.SIGHUP)
    rd.wait_for(lambda: rd.api("/v1/status")["services"] == len(del_some), what="reloaded")
    # Every first start verified: a row and the view read after it must not
    # straddle a start's verifying -> idle.
    rd.wait_for(lambda: all(v["recovery"] == "idle" and v["state"] == "normal"
                            for v in rd.api("/v1/services")), what="all verified")
    for _ in range(20):  # while the removed ones' processes ignore their TERM
        rows = rd.api("/v1/services")
        assert [v["name"] for v in rows] == list(del_some)
        for v in rows:
            assert _stable(v) == _stable(rd.service(v["name"])), v["name"]


# ---- GET /v1/services at 1,000 services: written in slices over loop turns ----

def _sleepers(n):
    return {f"s{i:04d}": {"command": ["sleep", "1000"]} for i in range(n)}


def _thousand(recoverd):
    config = {"services": _sleepers(1000)}
    rd = recoverd(config, start=False)
    rd.start(timeout=120)
    return rd, list(config["services"])


def _listing(sock, path="/v1/services"):
    """One GET on an open connection: (status, Link header, parsed JSON)."""
    status, hdrs, body = http_exchange(sock, path)
    return status, hdrs.get("link", ""), json.loads(body)


def test_listing_at_1000_services_is_one_whole_document_and_pages(recoverd):
    """A listing of 1,000 services is written in slices over several loop
    turns (api/server.c): the answer is still one valid JSON document with
    every service once, in config order, and ?limit pages walk the same
    names through their Link."""
    rd, names = _thousand(recoverd)
    with socket.create_connection(("127.0.0.1", rd.api_port), timeout=30) as sock:
        for _ in range(3):
            status, link, rows = _listing(sock)
            assert status == 200 and link == ""
            assert [v["name"] for v in rows] == names
            assert all(v["process"] == "running" and isinstance(v["checks"], list)
                       for v in rows)
        seen, path = [], "/v1/services?limit=300"
        while path:
            status, link, rows = _listing(sock, path)
            assert status == 200
            seen += [v["name"] for v in rows]
            m = re.match(r"<([^>]*)>; rel=\"next\"", link)
            path = m.group(1) if m else None
        assert seen == names
    # The debug log says what each listing wrote.
    assert re.search(r"api-request method=GET path=/v1/services status=200 rows=1000 ",
                     rd.log_text())


def test_reload_while_listings_are_in_flight_shows_whole_documents(recoverd):
    """Listings read back to back while reloads remove and bring back every
    other service: each answer is a valid document naming each service at
    most once and every one that stays, in its order; recoverd
    reads no service a reload freed (ASan watches the test build)."""
    rd, names = _thousand(recoverd)
    kept = names[::2]
    answers, errors, stop = [], [], threading.Event()

    def reader():
        try:
            with socket.create_connection(("127.0.0.1", rd.api_port), timeout=30) as sock:
                while not stop.is_set():
                    status, _, rows = _listing(sock)
                    answers.append((status, [v["name"] for v in rows]))
        except Exception as e:  # noqa: BLE001 (reported by the test)
            errors.append(e)

    t = threading.Thread(target=reader)
    t.start()
    try:
        for config in ({"services": {k: {"command": ["sleep", "1000"]} for k in kept}},
                       {"services": _sleepers(1000)}) * 2:
            before = len(answers)
            rd.write_config(config)
            rd.signal(signal.SIGHUP)
            rd.wait_for(lambda: rd.api("/v1/status")["services"] == len(config["services"]),
                        timeout=60, what="reloaded")
            wait_for(lambda: len(answers) > before + 2, timeout=60, what="listings after")
    finally:
        stop.set()
        t.join(60)
    assert not errors, errors
    assert len(answers) > 8
    stay = set(kept)
    for status, got in answers:
        assert status == 200
        assert len(got) == len(set(got)) and set(got) <= set(names)
        assert [n for n in got if n in stay] == kept
    assert rd.running()


# ---- the API under abuse: its doors, deadlines, names and descriptors ----

def _ctl_socket(rd, *args, preexec_fn=None):
    return subprocess.run([binary("recoverctl"), "--socket", str(rd.state_dir / "api.sock"),
                           *args], capture_output=True, text=True, timeout=20,
                          preexec_fn=preexec_fn)


def _ctl_as_nobody(rd, *args):
    """recoverctl as uid/gid 65534 with no groups. pytest's tmp dirs are
    0700: the child reaches the socket through a descriptor of its
    directory (/proc/self/fd/N/api.sock), the way the state_dir of a real
    host is reached by whoever may traverse it."""
    def nobody():
        os.setgroups([])
        os.setgid(65534)
        os.setuid(65534)

    fd = os.open(rd.state_dir, os.O_PATH | os.O_DIRECTORY)
    try:
        return subprocess.run([binary("recoverctl"), "--socket", f"/proc/self/fd/{fd}/api.sock",
                               *args], capture_output=True, text=True, timeout=20,
                              preexec_fn=nobody, pass_fds=(fd,))
    finally:
        os.close(fd)


def test_recoverctl_answers_through_its_socket_while_tcp_is_abused(recoverd):
    rd = recoverd({"services": {"web": demo_service(free_port())}})
    wait_running(rd, "web")
    with Abuse(rd.api_port, slow=400, idle=100, every=2.0) as abuse:
        # The slow clients' first deadlines (5 s) have passed: the TCP door
        # is as crowded as they can make it.
        rd.wait_for(lambda: abuse.cuts >= 100, timeout=30, what="slow clients cut")
        for _ in range(5):
            t0 = time.monotonic()
            r = _ctl_socket(rd, "status")
            took = time.monotonic() - t0
            assert r.returncode == 0, r.stderr
            assert r.stdout.startswith("name:") and "web" in r.stdout
            assert took < 5, f"recoverctl status took {took:.1f} s under abuse"
        r = _ctl_socket(rd, "hold", "web")  # root through the socket: no token needed
        assert r.returncode == 0, r.stderr
    assert abuse.evictions > 0  # idle keep-alives made room for newcomers
    assert rd.service("web")["held"] is True
    assert "api-listening" in rd.log_text() and "socket=" in rd.log_text()


def test_socket_lets_root_act_and_others_only_read(recoverd):
    rd = recoverd({"services": {"web": demo_service(free_port())}})
    wait_running(rd, "web")
    sock = rd.state_dir / "api.sock"
    st = os.lstat(sock)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660
    # What a host would show a user let in (the socket's mode opened for
    # the test): the credentials decide what they may do.
    os.chmod(rd.state_dir, 0o751)
    os.chmod(sock, 0o666)
    r = _ctl_as_nobody(rd, "status")
    assert r.returncode == 0, r.stderr
    r = _ctl_as_nobody(rd, "hold", "web")
    assert r.returncode == 1 and "HTTP 403" in r.stderr and "may only read" in r.stderr, r
    assert rd.service("web")["held"] is False
    r = _ctl_socket(rd, "hold", "web")
    assert r.returncode == 0 and r.stdout.startswith("web: held"), r
    r = _ctl_socket(rd, "release", "web")
    assert r.returncode == 0 and rd.service("web")["held"] is False, r


def test_recoverctl_finds_the_socket_in_its_default_state_dir(recoverd):
    """With neither --socket nor --api, recoverctl asks the default
    state_dir's api.sock (for a user: $XDG_STATE_HOME/recoverd), and falls
    back to TCP when nothing answers there."""
    top = Path(tempfile.mkdtemp(prefix="recoverctl-sock-"))  # outside pytest's 0700 tree
    try:
        os.chmod(top, 0o755)
        state = top / "xdg" / "recoverd"
        state.mkdir(parents=True, mode=0o755)
        rd = recoverd({"state_dir": str(state), "services": {"web": demo_service(free_port())}})
        wait_running(rd, "web")
        os.chmod(state / "api.sock", 0o666)  # let a stranger in: it may read, not act
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECOVERD_")}
        env["XDG_STATE_HOME"] = str(top / "xdg")
        nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        r = subprocess.run(nobody + [binary("recoverctl"), "status"], capture_output=True,
                           text=True, timeout=20, cwd=top, env=env)
        assert r.returncode == 0, r
        # 403 is the socket's answer to a stranger; TCP would have said 401 (no token).
        r = subprocess.run(nobody + [binary("recoverctl"), "hold", "web"], capture_output=True,
                           text=True, timeout=20, cwd=top, env=env)
        assert r.returncode == 1 and "403" in r.stderr, r
        assert rd.service("web")["held"] is False
        env["XDG_STATE_HOME"] = str(top)  # no recoverd/api.sock there
        r = subprocess.run(nobody + [binary("recoverctl"), "status"], capture_output=True,
                           text=True, timeout=20, cwd=top, env=env)
        assert r.returncode == 3 and f"nothing answered at {top}/recoverd/api.sock" in r.stderr, r
        r = subprocess.run([binary("recoverctl"), "--api", f"127.0.0.1:{rd.api_port}", "--socket",
                            "x", "status"], capture_output=True, text=True, timeout=20)
        assert r.returncode == 2 and "exclude each other" in r.stderr, r
        rd.stop()
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_api_refuses_a_host_it_is_not(recoverd):
    rd = recoverd({"services": {"web": demo_service(free_port())}})
    for host in ("127.0.0.1", f"localhost:{rd.api_port}", f"[::1]:{rd.api_port}"):
        assert rd.request("GET", "/v1/status", headers={"Host": host})[0] == 200, host
    # DNS rebinding: a page of rebind.example whose name now resolves to 127.0.0.1.
    status, body = rd.request("GET", "/v1/status",
                              headers={"Host": f"rebind.example:{rd.api_port}"})
    assert status == 421, body
    assert "rebind.example" in json.loads(body)["error"]
    assert "api.hostnames" in json.loads(body)["error"]

    named = recoverd({"api": {"hostnames": ["recoverd.test", "127.0.0.1"]},
                      "services": {"web": demo_service(free_port())}})
    assert named.request("GET", "/v1/status",
                         headers={"Host": f"recoverd.test:{named.api_port}"})[0] == 200
    assert named.request("GET", "/v1/status", headers={"Host": "localhost"})[0] == 421


def test_api_off_loopback_needs_allow_remote(recoverd):
    web = {"web": demo_service(free_port())}
    rd = recoverd({"api": {"listen": "0.0.0.0:7411"}, "services": web}, start=False)
    r = rd.check_config()
    assert r.returncode == 2, r
    assert re.search(r"recoverd\.yaml:\d+:\d+: error: api.listen 0.0.0.0 is not a loopback "
                     r"address: the API token would cross the network in clear; set "
                     r"api.allow_remote: true", r.stderr), r.stderr
    rd.write_config({"api": {"listen": "0.0.0.0:7411", "allow_remote": True}, "services": web})
    r = rd.check_config()
    assert r.returncode == 0, r
    assert re.search(r"recoverd\.yaml:\d+:\d+: warning: the API listens on 0.0.0.0 "
                     r"\(allow_remote\): its token and answers cross the network in clear",
                     r.stderr), r.stderr


def _start_with_nofile(rd, n):
    """Start rd under RLIMIT_NOFILE n (soft and hard: recoverd raises its
    soft limit to the hard one), as `prlimit --nofile=n:n` would."""
    real = subprocess.Popen

    def limited(*args, **kw):
        kw["preexec_fn"] = lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
        return real(*args, **kw)

    with mock.patch.object(subprocess, "Popen", limited):
        rd.start()


def _flood(port, n):
    """n connections at once, and how each ended: '503', 'closed' or 'open'
    (accepted and waiting for a request, or not taken yet), once a 503 has
    come and nothing changed for 0.5 s (10 s at most)."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]
    ends = ["open"] * n
    for s in socks:
        s.setblocking(False)
    deadline, quiet = time.monotonic() + 10, time.monotonic() + 0.5
    while time.monotonic() < deadline and ("503" not in ends or time.monotonic() < quiet):
        for i, s in enumerate(socks):
            if ends[i] != "open":
                continue
            try:
                data = s.recv(4096)
                ends[i] = "503" if data.startswith(b"HTTP/1.1 503") else "closed"
                quiet = time.monotonic() + 0.5
            except BlockingIOError:
                pass
            except ConnectionResetError:
                ends[i] = "closed"
        time.sleep(0.02)
    return socks, ends


def test_out_of_descriptors_tcp_gets_503_and_the_socket_still_answers(recoverd):
    slow = {"max": 50, "window": "60s", "stable": "200ms",
            "backoff": {"initial": "100ms", "max": "500ms"}}
    rd = recoverd({"services": {"web": demo_service(free_port(), restart=slow)}}, start=False)
    _start_with_nofile(rd, 32)
    old = wait_running(rd, "web")
    log = rd.log_text()
    # pidfd, the FIFO's two ends, the log, and the http check's socket
    assert re.search(r"fd-budget nofile=32 base=24 services=1 per_service=5 ", log), log
    # the start-up log says the configuration may not fit, and how much does
    assert re.search(r"fd-budget-tight nofile=32 needed=\d+ fit=0 services=1 ", log), log
    socks, ends = _flood(rd.api_port, 40)
    try:
        assert ends.count("503") > 0, ends
        assert "api-fds-exhausted" in rd.log_text()
        # The loop waits rather than spins on a listener it cannot accept from.
        assert asleep_share(rd.pid, seconds=1.0) > 0.5
        # The operators' door: served on the reserve while TCP holds the rest.
        r = _ctl_socket(rd, "status")
        assert r.returncode == 0, r.stderr
        # The journal needs no new descriptor: a fault is recorded even now.
        os.kill(old["pid"], signal.SIGKILL)
        rd.wait_for(lambda: rd.journal("SELECT id FROM faults WHERE service = 'web'"),
                    what="the fault journaled while descriptors are short")
    finally:
        for s in socks:
            s.close()
    wait_running(rd, "web", not_pid=old["pid"], timeout=20)
    assert rd.api("/v1/status")["name"] == "recoverd"
