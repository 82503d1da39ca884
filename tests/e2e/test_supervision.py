"""Supervision end to end: recoverd restarts what dies, backs off and gives
up on what cannot live, survives its own kill -9, stops cleanly, caps
output, and starts processes with the configured environment."""

import os
import re
import signal
import stat
import time
from pathlib import Path

from helpers import (asleep_share, demo_cmd, demo_service, free_port, http_check, http_get,
                     live_pids_running, log_events_of, pid_alive, proc_cmdline, transitions,
                     wait_running)

def test_sigkill_service_is_restarted_and_fault_resolved(recoverd):
    port = free_port()
    rd = recoverd({"services": {"web": demo_service(port)}})
    old = wait_running(rd, "web", min_uptime_ms=300)  # past restart.stable (200 ms)
    os.kill(old["pid"], signal.SIGKILL)

    def recovered():
        v = rd.service("web")
        return v if v["state"] == "recovered" and v["pid"] not in (None, old["pid"]) else None
    new = rd.wait_for(recovered, what="web recovered with a new pid")

    assert new["restarts"] == 1
    assert new["process"] == "running" and new["open_faults"] == []
    assert new["last_exit"]["signal"] == "KILL"
    assert not pid_alive(old["pid"])
    assert http_get(port, "/health") == (200, b"ok\n")

    faults = rd.api("/v1/faults")
    assert len(faults) == 1
    f = faults[0]
    assert (f["service"], f["check"], f["type"], f["severity"]) == \
        ("web", "process", "software", "high")
    assert "signal 9" in f["description"]
    assert f["context"]["signal"] == 9
    assert f["resolved_at"] is not None and f["duration_ms"] >= 0

    actions = rd.api("/v1/actions")
    assert len(actions) == 1
    a = actions[0]
    assert (a["strategy"], a["status"], a["fault_id"]) == ("restart", "completed", f["id"])
    assert a["result"].startswith(f"verified: pid {new['pid']} running")
    # It had run longer than restart.stable: restarted at once, no backoff.
    assert a["params"]["delay_ms"] == 0
    assert f["actions"] == 1  # a count in the list; the ids in the fault's view
    assert rd.api(f"/v1/faults/{f['id']}")["actions"][0]["id"] == a["id"]

    assert transitions(rd, "web") == [("normal", "degraded"), ("degraded", "recovering"),
                                      ("recovering", "recovered")]
    row = rd.journal("SELECT fault_id, status FROM actions WHERE id = ?", (a["id"],))
    assert row == [{"fault_id": f["id"], "status": "completed"}]


def test_storm_of_kills_yields_one_fault_per_death_each_closed_by_its_new_process(recoverd):
    """Services SIGKILLed at once (more than the recovery slots, default 3,
    so restarts queue and spawn on the spawner's threads): exactly one
    fault per death, each a process fault closed by the verification of a
    new process (its http check passed), none from a check that saw the
    dead process, and one completed restart each."""
    n = 12
    ports = {f"s{i:02d}": free_port() for i in range(n)}
    rd = recoverd({"services": {name: demo_service(port) for name, port in ports.items()}})
    old = {name: wait_running(rd, name, min_uptime_ms=300, timeout=30)["pid"] for name in ports}
    for pid in old.values():
        os.kill(pid, signal.SIGKILL)

    def all_back():
        status = rd.api("/v1/status")
        if status["active_faults"] or status["resolved_faults"] < n:
            return None
        views = {v["name"]: v for v in rd.api("/v1/services")}
        ok = all(views[s]["pid"] not in (None, old[s]) and views[s]["process"] == "running"
                 and views[s]["open_faults"] == [] for s in ports)
        return views if ok else None
    views = rd.wait_for(all_back, timeout=60, what="every killed service back, its fault closed")

    faults = rd.api(f"/v1/faults?limit={4 * n}")
    actions = rd.api(f"/v1/actions?limit={4 * n}")
    assert sorted(f["service"] for f in faults) == sorted(ports)  # one each, no second
    assert all(f["check"] == "process" and "signal 9" in f["description"] for f in faults)
    assert sorted(a["service"] for a in actions) == sorted(ports)
    by_fault = {a["fault_id"]: a for a in actions}
    for f in faults:
        a = by_fault[f["id"]]
        new_pid = views[f["service"]]["pid"]
        assert (a["strategy"], a["status"]) == ("restart", "completed")
        assert a["result"].startswith(f"verified: pid {new_pid} running, 1 check(s) passing")
        assert f["resolved_at"] is not None and f["resolved_at"] >= a["finished_at"]
        assert not pid_alive(old[f["service"]])
    for name, port in ports.items():
        assert http_get(port, "/health") == (200, b"ok\n")


def test_crash_loop_backs_off_then_fails(recoverd):
    port = free_port()
    svc = demo_service(port, "--exit-after", "0", checks=[],
                       restart={"max": 4, "window": "30s", "stable": "1s",
                                "backoff": {"initial": "100ms", "max": "400ms"}})
    rd = recoverd({"services": {"crashy": svc}})

    def failed():
        v = rd.service("crashy")
        return v if v["state"] == "failed" else None
    v = rd.wait_for(failed, what="crashy failed")
    assert v["pid"] is None and v["given_up"] is True and v["restarts"] == 4

    actions = sorted(rd.api("/v1/actions"), key=lambda a: a["id"])
    delays = [a["params"]["delay_ms"] for a in actions]
    assert len(delays) == 4, delays
    for got, want in zip(delays, [100, 200, 400, 400]):  # doubling, capped, +-20% jitter
        assert 0.8 * want <= got <= 1.2 * want, delays
    assert all(a["status"] == "failed" and "before verification" in a["result"]
               for a in actions), actions

    # The delays were really waited: from each exit to the next spawn, by
    # the log's clock. The backoff timer counts from the loop's cached time,
    # which the exit's log line may follow by the rest of that turn (a busy
    # host can stretch it by a time slice or two): hence the 50 ms. How much
    # later than the delay a spawn comes is latency, a benchmark's figure.
    exits = [t for t, _ in log_events_of(rd, "crashy", "exited")]
    spawns = [t for t, _ in log_events_of(rd, "crashy", "spawned")]
    assert len(spawns) == 5 and len(exits) == 5
    gaps = [spawns[i + 1] - exits[i] for i in range(4)]
    print(f"crash loop: delays {delays} ms, exit -> spawn {gaps} ms")
    for gap, delay in zip(gaps, delays):
        assert gap >= delay - 50, (gaps, delays)

    # One fault for the whole loop (the same condition while open), and the
    # critical one that says recoverd gave up; both stay open.
    faults = {f["check"]: f for f in rd.api("/v1/faults")}
    assert set(faults) == {"process", "supervisor"} and len(rd.api("/v1/faults")) == 2
    assert all(a["fault_id"] == faults["process"]["id"] for a in actions)
    sup = faults["supervisor"]
    assert sup["severity"] == "critical" and sup["resolved_at"] is None
    assert "restart limit reached" in sup["description"]
    assert faults["process"]["resolved_at"] is None
    assert rd.api("/v1/status")["state"] == "failed"

    # Given up means given up: nothing spawns (in 2 s, a dozen backoffs),
    # nothing spins (recoverd sleeps in its loop).
    assert asleep_share(rd.pid, 2.0) >= 0.5
    v = rd.service("crashy")
    assert (v["pid"], v["restarts"], v["state"]) == (None, 4, "failed")
    assert len(log_events_of(rd, "crashy", "spawned")) == 5
    assert len(rd.api("/v1/actions")) == 4


def test_missing_binary_is_a_fault_not_a_crash(recoverd, tmp_path):
    """A program that vanishes after the configuration was checked (one
    missing at load fails its service at once: test_privileges.py): each
    restart's spawn fails, a fault and failed actions, never a crash."""
    prog = tmp_path / "x"
    prog.write_text("#!/bin/sh\nexec sleep 600\n")
    prog.chmod(0o755)
    svc = {"command": [str(prog)],
           "restart": {"max": 3, "window": "30s", "stable": "1s",
                       "backoff": {"initial": "100ms", "max": "400ms"}}}
    rd = recoverd({"services": {"ghost": svc}})
    pid = rd.wait_for(lambda: rd.service("ghost")["pid"], what="ghost running")
    prog.unlink()
    os.kill(pid, signal.SIGKILL)
    v = rd.wait_for(lambda: (s := rd.service("ghost"))["state"] == "failed" and s,
                    what="ghost failed")
    assert v["pid"] is None and v["restarts"] == 3

    faults = {f["check"]: f for f in rd.api("/v1/faults")}
    assert set(faults) == {"process", "supervisor"}
    proc = faults["process"]
    assert faults["supervisor"]["severity"] == "critical"
    actions = rd.api("/v1/actions")
    assert len(actions) == 3
    assert all(a["status"] == "failed" and a["result"].startswith(f"cannot start {prog}")
               and "No such file" in a["result"] and a["fault_id"] == proc["id"]
               for a in actions)

    attempts = len(log_events_of(rd, "ghost", "spawn-failed"))
    assert attempts == 3  # the 3 restarts
    assert asleep_share(rd.pid, 1.0) >= 0.5  # a second of no attempts, and no spinning
    assert rd.running()
    assert rd.api("/v1/status")["name"] == "recoverd"
    assert len(log_events_of(rd, "ghost", "spawn-failed")) == attempts


def _children(rd):
    return rd.journal("SELECT service, pid FROM children ORDER BY service")


def test_recoverd_sigkill_then_restart_adopts_and_keeps_the_history(recoverd):
    pa, pb = free_port(), free_port()
    # b waits 5 s before its restart: its action is still pending (a backoff
    # wait holds no slot) at the kill.
    slow = {"max": 5, "window": "10s", "stable": "10s",
            "backoff": {"initial": "5s", "max": "5s"}}
    rd = recoverd({"services": {"a": demo_service(pa), "b": demo_service(pb, restart=slow)}})
    a1 = wait_running(rd, "a")["pid"]
    b1 = wait_running(rd, "b")["pid"]
    os.kill(b1, signal.SIGKILL)
    rd.wait_for(lambda: rd.journal("SELECT id FROM actions WHERE service = 'b' AND "
                                   "status = 'pending'"), what="b's restart waiting")
    assert rd.service("b")["process"] == "waiting"
    before = {t: rd.journal(f"SELECT * FROM {t} ORDER BY id")
              for t in ("faults", "actions", "transitions")}
    executing = rd.journal("SELECT id FROM actions WHERE status IN ('pending', 'executing')")
    assert len(executing) == 1

    rd.kill9()
    assert pid_alive(a1), "a service must outlive a killed recoverd"
    assert {r["service"]: r["pid"] for r in _children(rd)} == {"a": a1}

    rd.start()
    # a is adopted, not bounced (test_takeover.py has the rest of that);
    # b, down at the kill, starts.
    assert wait_running(rd, "a")["pid"] == a1
    b2 = wait_running(rd, "b", not_pid=b1)["pid"]
    assert not pid_alive(b1)
    assert live_pids_running(demo_cmd(pa)) == [a1]
    assert live_pids_running(demo_cmd(pb)) == [b2]
    assert f"a adopted pid={a1}" in rd.log_text(since_start=True)
    assert {r["service"]: r["pid"] for r in _children(rd)} == {"a": a1, "b": b2}

    # The journal kept everything; the interrupted action is now aborted.
    after = {t: rd.journal(f"SELECT * FROM {t} ORDER BY id")
             for t in ("faults", "actions", "transitions")}
    for t in before:
        assert len(after[t]) >= len(before[t]) > 0
    assert [r["id"] for r in after["faults"][:len(before["faults"])]] == \
        [r["id"] for r in before["faults"]]
    assert after["transitions"][:len(before["transitions"])] == before["transitions"]
    aborted = {r["id"]: r for r in after["actions"]}[executing[0]["id"]]
    assert aborted["status"] == "aborted"
    assert "recoverd restarted" in aborted["result"] and aborted["finished_ms"]
    # The fault b had open is taken over and closed once b is healthy again.
    fid = before["faults"][0]["id"]
    rd.wait_for(lambda: rd.api(f"/v1/faults/{fid}")["resolved_at"],
                what="b's old fault resolved")


def test_sigterm_stops_services_and_exits_0(recoverd):
    port = free_port()
    stubborn = {"command": ["/bin/sh", "-c", "trap '' TERM; exec sleep 1000"],
                "stop": {"signal": "TERM", "grace": "300ms"}}
    rd = recoverd({"services": {"web": demo_service(port), "stubborn": stubborn}})
    web = wait_running(rd, "web")["pid"]
    sleeper = rd.wait_for(lambda: rd.service("stubborn")["pid"], what="stubborn pid")
    rd.wait_for(lambda: proc_cmdline(sleeper) == ["sleep", "1000"], what="exec sleep")
    sigign = int(re.search(r"SigIgn:\s*([0-9a-f]+)",
                           Path(f"/proc/{sleeper}/status").read_text()).group(1), 16)
    assert sigign & (1 << (signal.SIGTERM - 1)), "precondition: sleep ignores SIGTERM"

    # The stop waits out the grace (by the loop's clock, which counts whole
    # ms) and no longer: the sleep would last 1000 s, and stop() gives 15.
    t0 = time.monotonic()
    rd.stop()
    took = time.monotonic() - t0
    assert took >= 0.3 - 0.002, took
    assert not pid_alive(web) and not pid_alive(sleeper)
    log = rd.log_text()
    assert re.search(rf"stubborn stop-timeout pid={sleeper} grace_ms=300", log)
    assert "web stop-timeout" not in log


def test_output_flood_is_capped(recoverd):
    port = free_port()
    # The check is what tells a disturbed service: its timeout is generous,
    # so that only the capture (not a starved host) could fail it.
    check = http_check(port, interval="200ms", timeout="2s", fall=3)
    rd = recoverd({"services": {"noisy": demo_service(port, "--flood", log_max="64KiB",
                                                      checks=[check])}})
    wait_running(rd, "noisy")
    # The API keeps answering through 2 s of flood (how fast, and how much
    # CPU the capture costs, are bench/idle's figures).
    t0, slowest = time.monotonic(), 0.0
    while time.monotonic() - t0 < 2.0:
        t = time.monotonic()
        assert rd.api("/v1/status")["name"] == "recoverd"
        slowest = max(slowest, time.monotonic() - t)
        time.sleep(0.05)
    print(f"flood: slowest API answer {slowest * 1000:.0f} ms")

    logs = rd.state_dir / "logs"

    def sizes_now():
        try:
            return {p.name: p.stat().st_size for p in logs.iterdir()
                    if p.name.startswith("noisy.") and p.name != "noisy.pipe"}
        except FileNotFoundError:  # rotated between listing and stat
            return {}
    # noisy.log is briefly absent between its rename to .1 and its re-creation.
    sizes = rd.wait_for(lambda: (v := sizes_now()) and "noisy.log" in v and v,
                        what="noisy.log present")
    assert set(sizes) == {"noisy.log", "noisy.log.1"}, sizes  # it did rotate, only once kept
    assert sum(sizes.values()) <= 2 * 64 * 1024 + 4096, sizes
    assert sizes["noisy.log.1"] == 64 * 1024
    assert "recoverd-demo flood" in (logs / "noisy.log.1").read_text()
    v = rd.service("noisy")
    assert v["restarts"] == 0 and v["open_faults"] == []


def test_env_and_cwd_reach_the_child(recoverd, tmp_path):
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    svc = {"command": ["/bin/sh", "-c",
                       'echo "FOO=$FOO"; echo "OUTER=$OUTER"; pwd; exec sleep 100'],
           "cwd": str(workdir), "env": {"FOO": "bar baz"}}
    rd = recoverd({"services": {"shell": svc}}, env={"FOO": "from recoverd", "OUTER": "kept"})
    rd.wait_for(lambda: rd.service("shell")["pid"], what="shell started")
    log = rd.state_dir / "logs" / "shell.log"
    text = rd.wait_for(lambda: log.exists() and str(workdir) in log.read_text()
                       and log.read_text(), what="shell's output in its log")
    assert text.splitlines() == ["FOO=bar baz", "OUTER=kept", str(workdir)]


def test_output_written_while_recoverd_is_down_reaches_the_log(recoverd, tmp_path):
    go, wrote = tmp_path / "go", tmp_path / "wrote"
    script = (f'echo first; while [ ! -e "{go}" ]; do sleep 0.02; done; '
              f'echo second; touch "{wrote}"; exec sleep 100')
    rd = recoverd({"services": {"shell": {"command": ["/bin/sh", "-c", script]}}})
    pid = rd.wait_for(lambda: rd.service("shell")["pid"], what="shell started")
    logs = rd.state_dir / "logs"
    log = logs / "shell.log"
    rd.wait_for(lambda: log.exists() and log.read_text() == "first\n", what="the first line")
    st = os.lstat(logs / "shell.pipe")
    assert stat.S_ISFIFO(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600

    rd.kill9()
    go.touch()
    # Nobody reads the FIFO: the shell's echo neither kills it (SIGPIPE)
    # nor fails (EPIPE); the line waits in the pipe.
    rd.wait_for(lambda: wrote.exists(), what="the shell went past its second line")
    assert pid_alive(pid)
    assert log.read_text() == "first\n"

    rd.start()
    rd.wait_for(lambda: log.read_text().startswith("first\nsecond\n"),
                what="the line written while recoverd was down, in order")


def test_stop_of_many_services_signals_a_few_per_turn(recoverd):
    """A stop's exits all come back in the turn after their signals, and
    exits are handled at once: so each turn signals at most 16 services
    (daemon.c DAEMON__STEP_MAX), and each still gets its own grace and
    SIGKILL after it."""
    n = 40
    services = {f"s{i:02d}": {"command": ["sleep", "1006"]} for i in range(n)}
    services["stubborn"] = {"command": ["/bin/sh", "-c", "trap '' TERM; exec sleep 1007"],
                            "stop": {"signal": "TERM", "grace": "300ms"}}
    rd = recoverd({"services": services})
    rd.wait_for(lambda: len(live_pids_running(["sleep", "1006"])) == n and
                len(live_pids_running(["sleep", "1007"])) == 1, what="all running")
    rd.stop()
    assert live_pids_running(["sleep", "1006"]) == [] == live_pids_running(["sleep", "1007"])
    log = rd.log_text()
    for name in services:
        assert re.search(rf" {name} stopping pid=\d+ signal=TERM", log), name
    assert re.search(r" stubborn stop-timeout pid=\d+ grace_ms=300 action=SIGKILL", log)
    slices = int(re.search(r" stopped took_ms=\S+ max_stall_ms=\S+ max_turn_cpu_ms=\S+ "
                           r"slices=(\d+)", log).group(1))
    assert slices >= -(-(n + 1) // 16), slices
