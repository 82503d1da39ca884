"""Recovery end to end: the operator's token-guarded controls, strategy
chains that escalate and run out, dependencies (symptoms are not
restarted, start order), the concurrency limit, action deadlines, resource
and monitoring-plugin checks, metrics and recoverctl's control commands."""

import os
import signal
import stat
import time

import pytest

from helpers import (actions_of, checks_passing, crash_recovered, ctl, demo_service, faults_of,
                     free_port, log_events_of, marker_check, no_change_for, open_fault, pid_alive,
                     post, proc_cmdline, read_token, touch_program, wait_running)

CHECK_TCP = "/usr/lib/nagios/plugins/check_tcp"


def _watched(marker, repair, **over):
    """A service recoverd only watches (no process): one marker check, the
    repair chain alone, repair = the given argv."""
    svc = {"checks": [marker_check(marker)], "recovery": ["repair"],
           "repair": {"command": repair, "timeout": "10s"}, "verify": "2s"}
    svc.update(over)
    return svc


# ---- the operator's controls ----

def test_api_mutations_need_the_token(recoverd):
    rd = recoverd({"services": {"web": demo_service(free_port())}})
    wait_running(rd, "web")
    token_file = rd.state_dir / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    token = read_token(rd)
    assert len(token) >= 32

    status, doc = post(rd, "/v1/services/web/hold")
    assert status == 401 and "token" in doc["error"]
    wrong = ("0" if token[0] != "0" else "1") + token[1:]
    assert post(rd, "/v1/services/web/hold", token=wrong)[0] == 401
    assert post(rd, "/v1/services/web/hold", token=token[:-1])[0] == 401
    status, _ = rd.request("POST", "/v1/services/web/hold", headers={"Authorization": token})
    assert status == 401  # the token without "Bearer"
    assert rd.service("web")["held"] is False  # refused calls changed nothing

    status, doc = post(rd, "/v1/services/web/hold", token=token)
    assert status == 200 and doc["name"] == "web" and doc["held"] is True
    assert rd.service("web")["held"] is True
    status, doc = post(rd, "/v1/services/web/release", token=token)
    assert status == 200 and doc["held"] is False
    assert rd.service("web")["held"] is False
    assert post(rd, "/v1/services/nope/hold", token=token)[0] == 404


def test_hold_pauses_automatic_recovery(recoverd):
    rd = recoverd({"services": {"web": demo_service(free_port())}})
    old = wait_running(rd, "web", min_uptime_ms=300)
    token = read_token(rd)
    assert post(rd, "/v1/services/web/hold", token=token)[0] == 200
    os.kill(old["pid"], signal.SIGKILL)

    fault = open_fault(rd, "web")
    assert fault["check"] == "process" and fault["resolved_at"] is None
    held = no_change_for(1.0, lambda: (rd.service("web")["pid"], len(actions_of(rd))))
    assert held == (None, 0)
    assert rd.service("web")["held"] is True

    assert post(rd, "/v1/services/web/release", token=token)[0] == 200
    new = wait_running(rd, "web", not_pid=old["pid"])
    assert new["held"] is False
    rd.wait_for(lambda: rd.api(f"/v1/faults/{fault['id']}")["resolved_at"],
                what="the fault resolved after release")
    acts = actions_of(rd)
    assert [(a["strategy"], a["status"], a["fault_id"]) for a in acts] == \
        [("restart", "completed", fault["id"])]


# ---- strategy chains ----

def test_escalation_restart_that_does_not_verify_goes_to_repair(recoverd, tmp_path):
    marker = tmp_path / "healthy"
    marker.touch()
    port = free_port()
    svc = demo_service(port, checks=[marker_check(marker)], recovery=["restart", "repair"],
                       repair={"command": touch_program(marker)}, verify="1s")
    rd = recoverd({"services": {"app": svc}})
    old = wait_running(rd, "app", min_uptime_ms=300)
    marker.unlink()

    fault = open_fault(rd, "app")
    assert fault["check"] == "command" and "marker healthy missing" in fault["description"]
    rd.wait_for(lambda: rd.api(f"/v1/faults/{fault['id']}")["resolved_at"], timeout=10,
                what="the fault resolved by the repair")
    acts = actions_of(rd, "app")
    assert [(a["strategy"], a["status"]) for a in acts] == \
        [("restart", "failed"), ("repair", "completed")], acts
    assert {a["fault_id"] for a in acts} == {fault["id"]}
    assert acts[0]["result"].startswith("not verified within 1000 ms"), acts[0]
    assert "marker healthy missing" in acts[0]["result"]
    assert acts[1]["result"].startswith("verified"), acts[1]
    assert acts[0]["finished_at"] <= acts[1]["started_at"]
    assert marker.exists()
    v = rd.service("app")
    assert v["pid"] != old["pid"] and not pid_alive(old["pid"])  # the restart did restart
    assert v["open_faults"] == [] and v["given_up"] is False
    assert len(faults_of(rd, "app")) == 1


def test_chain_exhausted_leaves_service_failed(recoverd, tmp_path):
    marker = tmp_path / "healthy"
    marker.touch()
    svc = demo_service(free_port(), checks=[marker_check(marker)], recovery=["restart"],
                       verify="1s")
    rd = recoverd({"services": {"app": svc}})
    wait_running(rd, "app", min_uptime_ms=300)
    marker.unlink()

    v = rd.wait_for(lambda: (s := rd.service("app"))["state"] == "failed" and s, timeout=10,
                    what="app failed")
    assert v["given_up"] is True and v["recovering"] is False
    faults = {f["check"]: f for f in faults_of(rd, "app")}
    assert set(faults) == {"command", "supervisor"}
    sup = faults["supervisor"]
    assert sup["severity"] == "critical" and sup["resolved_at"] is None
    assert "recovery chain exhausted" in sup["description"]
    acts = actions_of(rd, "app")
    assert [(a["strategy"], a["status"]) for a in acts] == [("restart", "failed")]
    assert acts[0]["result"].startswith("not verified within 1000 ms")
    # Given up: no more attempts.
    assert no_change_for(2.0, lambda: len(actions_of(rd))) == 1
    assert rd.service("app")["state"] == "failed"

    # An operator's restart resets the give-up and tries again; with the
    # cause gone it verifies and closes both faults.
    marker.touch()
    status, doc = post(rd, "/v1/services/app/restart", token=read_token(rd))
    assert status == 200 and doc["given_up"] is False
    rd.wait_for(lambda: len(actions_of(rd)) == 2 and actions_of(rd)[1]["status"] == "completed",
                what="the operator's restart completed")
    assert actions_of(rd)[1]["strategy"] == "restart"
    assert all(f["resolved_at"] for f in faults_of(rd, "app"))
    assert rd.service("app")["given_up"] is False


# ---- dependencies ----

def test_dependency_symptom_is_not_restarted(recoverd):
    db_port, web_port = free_port(), free_port()
    db = demo_service(db_port, restart={"max": 5, "window": "30s", "stable": "10s",
                                        "backoff": {"initial": "3s", "max": "3s"}})
    web = demo_service(web_port, depends_on=["db"], checks=[
        {"tcp": {"address": f"127.0.0.1:{db_port}", "interval": "100ms", "timeout": "200ms",
                 "fall": 2, "rise": 1}}])
    rd = recoverd({"services": {"db": db, "web": web}})
    db_old = wait_running(rd, "db")
    web_pid = wait_running(rd, "web")["pid"]
    os.kill(db_old["pid"], signal.SIGKILL)  # up < stable (10 s): its restart waits ~3 s

    symptom = open_fault(rd, "web")
    root = faults_of(rd, "db")[0]
    assert root["check"] == "process" and root["resolved_at"] is None
    assert symptom["context"]["root_cause"] == {"service": "db", "fault": root["id"]}
    assert f"symptom of db fault {root['id']}" in symptom["description"]
    # While db is down, nothing is done to web: watched until db runs again,
    # however long its backoff turns out on this host.
    web_then = ([], web_pid)
    saw_db_down = False
    deadline = time.monotonic() + 15
    while True:
        db_now = rd.service("db")
        saw_db_down |= db_now["pid"] is None
        if db_now["pid"] not in (None, db_old["pid"]) and db_now["process"] == "running":
            break
        assert (actions_of(rd, "web"), rd.service("web")["pid"]) == web_then
        assert time.monotonic() < deadline, "db never ran again"
        time.sleep(0.05)
    assert saw_db_down  # the watch did cover db's downtime

    wait_running(rd, "db", not_pid=db_old["pid"])
    rd.wait_for(lambda: rd.api(f"/v1/faults/{symptom['id']}")["resolved_at"],
                what="web's symptom resolved once db recovered")
    assert actions_of(rd, "web") == []
    assert [(a["strategy"], a["status"]) for a in actions_of(rd, "db")] == \
        [("restart", "completed")]
    assert rd.service("web")["pid"] == web_pid and pid_alive(web_pid)
    assert rd.api(f"/v1/faults/{root['id']}")["resolved_at"] is not None


def test_start_order_follows_dependencies(recoverd, tmp_path):
    marker = tmp_path / "db-ready"
    db = demo_service(free_port(), checks=[marker_check(marker)], verify="10s")
    web = demo_service(free_port(), depends_on=["db"])
    # web first: order is not config order; web waits for db: not all start
    rd = recoverd({"services": {"web": web, "db": db}}, started=False)
    rd.wait_for(lambda: rd.service("db")["pid"], what="db spawned")
    # db runs but is not healthy: web waits.
    assert no_change_for(0.8, lambda: rd.service("web")["pid"]) is None
    ready_ms = time.time() * 1000 % 86_400_000
    marker.touch()
    wait_running(rd, "web")

    db_spawn = log_events_of(rd, "db", "spawned")
    web_spawn = log_events_of(rd, "web", "spawned")
    assert len(db_spawn) == 1 and len(web_spawn) == 1
    assert db_spawn[0][0] <= web_spawn[0][0]
    assert web_spawn[0][0] >= ready_ms - 5, (web_spawn, ready_ms)
    assert [e for _, e in log_events_of(rd, "web", "dependencies-ready")] == ["last=db"]
    assert faults_of(rd) == [] and actions_of(rd) == []


# ---- the executor's limits ----

def test_max_concurrent_recoveries_queues_actions(recoverd, tmp_path):
    names = ["s1", "s2", "s3"]
    markers = {n: tmp_path / n for n in names}
    for m in markers.values():
        m.touch()
    services = {n: _watched(markers[n], touch_program(markers[n], sleep_s=1)) for n in names}
    rd = recoverd({"max_concurrent_recoveries": 1, "services": services})
    for n in names:
        checks_passing(rd, n)
    for m in markers.values():
        m.unlink()

    seen_pending, most = False, 0
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        acts = actions_of(rd)
        # The limit bounds actions doing something (here: a repair program
        # running); an action being verified holds no slot.
        most = max(most, rd.api("/v1/status")["executing"])
        seen_pending |= any(a["status"] == "pending" for a in acts)
        if len(acts) == 3 and all(a["status"] == "completed" for a in acts):
            break
        time.sleep(0.03)
    acts = actions_of(rd)
    assert [a["status"] for a in acts] == ["completed"] * 3, acts
    assert most == 1 and seen_pending
    assert {a["service"] for a in acts} == set(names)
    rows = rd.journal("SELECT created_ms, started_ms, finished_ms FROM actions "
                      "ORDER BY started_ms")
    waits = [r["started_ms"] - r["created_ms"] for r in rows]
    # The first did not wait for a repair to run (each takes over a second);
    # the second waited for one, the third for two. One program at a time;
    # an action being verified holds no slot.
    first_run = rows[0]["finished_ms"] - rows[0]["started_ms"]
    assert waits[0] < first_run and waits[1] >= 800 and waits[2] >= 1800, (waits, first_run)
    starts = [r["started_ms"] for r in rows]
    for before, after in zip(starts, starts[1:]):
        assert after - before >= 800  # each program runs 1 s


def test_max_starting_lets_one_unverified_start_at_a_time(recoverd):
    """max_starting: 1 and three services killed together: each restart
    spawns only after the one before it is verified (no checks: its process
    stayed up for `stable`); the others wait, queued."""
    names = ["s1", "s2", "s3"]
    svc = {"command": ["/bin/sh", "-c", "exec sleep 600"], "restart": {"stable": "2s"}}
    rd = recoverd({"max_starting": 1, "services": {n: dict(svc) for n in names}})
    assert rd.api("/v1/status")["max_starting"] == 1
    # Past `stable`: a death is restarted at once, no backoff to space them out.
    pids = [wait_running(rd, n, min_uptime_ms=2000)["pid"] for n in names]
    for pid in pids:
        os.kill(pid, signal.SIGKILL)

    rd.wait_for(lambda: len(acts := actions_of(rd)) == 3 and
                all(a["status"] == "completed" for a in acts),
                timeout=30, what="three restarts verified")
    rows = rd.journal("SELECT service, strategy, started_ms, finished_ms FROM actions "
                      "ORDER BY started_ms, id")
    assert sorted(r["service"] for r in rows) == names
    assert {r["strategy"] for r in rows} == {"restart"}
    for before, after in zip(rows, rows[1:]):
        assert after["started_ms"] >= before["finished_ms"], rows  # never two unverified
    # Two wait for max_starting; the first queues too when the loop turn
    # that saw the exits had no time left for its spawn (recover/pace.h).
    queued = [e for n in names for e in log_events_of(rd, n, "action-queued")]
    assert len(queued) >= 2, queued
    assert all("waiting=slot" not in e[1] for e in queued), queued  # 3 slots, never full


def test_action_timeout_kills_the_repair(recoverd, tmp_path):
    marker, pidfile = tmp_path / "healthy", tmp_path / "repair.pid"
    marker.touch()
    repair = ["/bin/sh", "-c", f"echo $$ > '{pidfile}'; exec sleep 30"]
    rd = recoverd({"action_timeout": "500ms",
                   "services": {"app": _watched(marker, repair)}})
    checks_passing(rd, "app")
    marker.unlink()
    try:
        rd.wait_for(lambda: pidfile.exists() and pidfile.read_text().strip(),
                    what="the repair program started")
        pid = int(pidfile.read_text())
        act = rd.wait_for(lambda: (a := actions_of(rd))[0]["status"] == "failed" and a[0],
                          what="the repair action failed")
        assert act["strategy"] == "repair" and "timed out after 500 ms" in act["result"], act
        started = rd.journal("SELECT started_ms, finished_ms FROM actions")[0]
        # Not before the timeout, and well before the 30 s the repair would
        # have taken (how soon after the timeout is latency, not a verdict).
        assert 450 <= started["finished_ms"] - started["started_ms"] < 30000, started
        rd.wait_for(lambda: not pid_alive(pid), what="the repair program killed")
        assert rd.service("app")["state"] == "failed"  # its only strategy failed
    finally:
        if pidfile.exists():
            pid = int(pidfile.read_text())
            if proc_cmdline(pid) == ["sleep", "30"]:
                os.kill(pid, signal.SIGKILL)


# ---- detectors that feed recovery ----

def test_resource_fault_from_rss_threshold(recoverd):
    port = free_port()
    check = {"resource": {"rss": "32MiB", "for": "0s", "interval": "100ms", "fall": 1,
                          "rise": 1}}
    svc = demo_service(port, "--alloc", "64", checks=[check], recovery=["repair"],
                       repair={"command": ["/bin/true"]}, verify="1s")
    rd = recoverd({"services": {"fat": svc}})

    v = rd.wait_for(lambda: (s := rd.service("fat"))["state"] == "failed" and s, timeout=10,
                    what="fat failed")
    assert v["given_up"] is True and v["pid"] and pid_alive(v["pid"])  # repair kills nothing
    faults = {f["check"]: f for f in faults_of(rd, "fat")}
    assert set(faults) == {"resource", "supervisor"}, faults
    f = faults["resource"]
    assert (f["type"], f["severity"], f["impact"]) == ("resource", "medium", "service")
    assert "rss" in f["description"] and f["resolved_at"] is None
    acts = actions_of(rd, "fat")
    assert [(a["strategy"], a["status"]) for a in acts] == [("repair", "failed")], acts
    assert acts[0]["fault_id"] == f["id"]
    assert acts[0]["result"].startswith("not verified within 1000 ms")
    assert "rss" in acts[0]["result"]


@pytest.mark.skipif(not os.access(CHECK_TCP, os.X_OK), reason=f"{CHECK_TCP} not installed")
def test_monitoring_plugin_check(recoverd, demo):
    target = demo()
    target.wait_ready()
    check = {"command": {"argv": [CHECK_TCP, "-H", "127.0.0.1", "-p", str(target.port)],
                         "interval": "200ms", "timeout": "5s", "fall": 1, "rise": 1}}
    rd = recoverd({"services": {"edge": {"checks": [check]}}})
    v = checks_passing(rd, "edge")
    assert v["kind"] == "watched" and v["checks"][0]["reason"].startswith("TCP OK")
    assert post(rd, "/v1/services/edge/hold", token=read_token(rd))[0] == 200

    target.proc.kill()
    target.proc.wait(timeout=5)
    f = open_fault(rd, "edge")
    assert f["check"] == "command" and "Connection refused" in f["description"], f
    assert f["context"]["code"] == 2  # CRITICAL
    assert f["severity"] == "high"


# ---- metrics and recoverctl ----

def test_metrics_count_recoveries(recoverd):
    rd = recoverd({"services": {"web": demo_service(free_port())}})
    crash_recovered(rd, "web", 2)
    rd.wait_for(lambda: all(f["resolved_at"] for f in faults_of(rd)) and
                len(faults_of(rd)) == 2, what="both faults resolved")

    m = rd.api("/v1/metrics")
    overall, web = m["overall"], m["by_service"]["web"]
    assert overall["successful"] >= 2 and overall["recoveries"] >= 2
    assert overall["failed"] == 0
    assert web["recoveries"] >= 2 and web["successful"] >= 2
    assert overall["mean_recovery_ms"] > 0 and overall["max_recovery_ms"] >= \
        overall["mean_recovery_ms"]
    assert m["by_type"]["software"]["faults"] == 2

    r = ctl(rd, "metrics")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any(line.startswith("recoveries:") and "2 (successful 2, failed 0" in line
               for line in lines), r.stdout
    assert any(line.startswith("mean recovery:") for line in lines)
    header = next(line.split() for line in lines if line.startswith("SERVICE"))
    row = next(line.split() for line in lines if line.startswith("web "))
    cells = dict(zip(header, row))
    assert cells["RECOVERIES"] == "2" and cells["SUCCESSFUL"] == "2", r.stdout
    assert any(line.startswith("software ") for line in lines), r.stdout


def test_recoverctl_control_commands(recoverd, tmp_path):
    rd = recoverd({"services": {"web": demo_service(free_port())}})
    old = wait_running(rd, "web", min_uptime_ms=300)
    token_file = str(rd.state_dir / "token")

    r = ctl(rd, "--token-file", token_file, "hold", "web")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("web: held") and rd.service("web")["held"] is True
    r = ctl(rd, "release", "web", env={"RECOVERD_TOKEN_FILE": token_file})
    assert r.returncode == 0, r.stderr
    assert rd.service("web")["held"] is False

    r = ctl(rd, "--token-file", token_file, "restart", "web")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("web: restart")
    wait_running(rd, "web", not_pid=old["pid"])
    acts = actions_of(rd)
    assert [(a["strategy"], a["fault_id"]) for a in acts] == [("restart", None)]

    wrong = tmp_path / "wrong-token"
    wrong.write_text("0" * 64 + "\n")
    r = ctl(rd, "--token-file", str(wrong), "hold", "web")
    assert r.returncode == 1 and "401" in r.stderr and r.stdout == "", r
    assert rd.service("web")["held"] is False

    r = ctl(rd, "--token-file", str(tmp_path / "absent"), "hold", "web")
    assert r.returncode == 2 and "absent" in r.stderr and "token" in r.stderr, r
    r = ctl(rd, "--token-file", token_file, "hold", "nope")
    assert r.returncode == 1 and "no such service" in r.stderr, r
    r = ctl(rd, "--token-file", token_file, "recover", "999", "repair")
    assert r.returncode == 1 and "999" in r.stderr, r
    r = ctl(rd, "--token-file", token_file, "recover", "abc", "repair")
    assert r.returncode == 2, r


def test_recoverctl_recover_runs_the_chosen_strategy(recoverd, tmp_path):
    marker = tmp_path / "healthy"
    marker.touch()
    svc = demo_service(free_port(), checks=[marker_check(marker)], recovery=["restart"],
                       repair={"command": touch_program(marker)}, verify="2s")
    rd = recoverd({"services": {"app": svc}})
    old = wait_running(rd, "app", min_uptime_ms=300)
    token_file = str(rd.state_dir / "token")
    assert ctl(rd, "--token-file", token_file, "hold", "app").returncode == 0
    marker.unlink()
    fault = open_fault(rd, "app")
    assert actions_of(rd) == []  # held: the automatic chain (restart) does not run

    r = ctl(rd, "--token-file", token_file, "recover", str(fault["id"]), "rollback")
    assert r.returncode == 1 and "rollback" in r.stderr, r  # not configured for app
    r = ctl(rd, "--token-file", token_file, "recover", str(fault["id"]), "repair")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"app: repair of fault {fault['id']} started"), r.stdout
    rd.wait_for(lambda: rd.api(f"/v1/faults/{fault['id']}")["resolved_at"],
                what="the fault resolved by the operator's repair")
    acts = actions_of(rd)
    assert [(a["strategy"], a["status"], a["fault_id"]) for a in acts] == \
        [("repair", "completed", fault["id"])], acts
    assert rd.service("app")["pid"] == old["pid"]  # repaired, not restarted
    r = ctl(rd, "--token-file", token_file, "recover", str(fault["id"]), "repair")
    assert r.returncode == 1 and "not open" in r.stderr, r
