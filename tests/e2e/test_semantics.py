"""What detection and recovery mean, end to end: a fault resolves when its
checks pass again (a watched service, a held one) and recovery acts only on
what still fails; the concurrency limit counts actions that execute, not
backoffs or verifications; a start is verified by fast probes, so a fault
can open before `verify` ends; a resource check passes only after its
`for`; a fault back soon after its recovery is the same fault, reopened;
each fault keeps its own reason; a chain holds only implemented
strategies; recoverctl shows what is down or held."""

import os
import re
import shlex
import signal

from helpers import (actions_of, checks_passing, ctl, ctl_table, demo_cmd, demo_service,
                     faults_of, free_port, http_check, http_get, live_pids_running,
                     log_events_of, marker_check, no_change_for, open_fault, post, read_token,
                     transitions, wait_http_ok, wait_running)

FINISHED = ("completed", "failed", "aborted")


def _tcp_check(port):
    return {"tcp": {"address": f"127.0.0.1:{port}", "interval": "100ms", "timeout": "200ms",
                    "fall": 2, "rise": 1}}


def _resolved(rd, fault_id):
    return rd.api(f"/v1/faults/{fault_id}")["resolved_at"]


def _states(rd, service):
    """The states service (None: the system) went to, in order."""
    return [to for _, to in transitions(rd, service)]


def _marked_demo(port, marker):
    """argv of a demo that creates marker as it starts: a restart heals a
    marker check."""
    return ["/bin/sh", "-c", f"touch '{marker}' && exec {shlex.join(demo_cmd(port))}"]


def _hang(port):
    try:
        http_get(port, "/hang", timeout=0.2)
    except OSError:
        pass  # it never answers: that is the point


def _journal_mentions(rd, word):
    """(table, row) of every journal row with a text value containing word:
    wherever a newer schema records it."""
    tables = [r["name"] for r in rd.journal("SELECT name FROM sqlite_master WHERE type = 'table'")]
    return [(t, row) for t in tables for row in rd.journal(f'SELECT * FROM "{t}"')
            if any(isinstance(v, str) and word in v for v in row.values())]


# ---- 1. a watched service: its fault resolves, it is never latched failed ----

def test_watched_service_fault_resolves_when_its_target_returns(recoverd, demo):
    target = demo()
    target.wait_ready()
    port = target.port
    rd = recoverd({"quiet": "500ms", "services": {"edge": {"checks": [_tcp_check(port)]}}})
    checks_passing(rd, "edge")
    target.close()
    fault = open_fault(rd, "edge")
    assert fault["check"] == "tcp"

    demo(port=port).wait_ready()
    rd.wait_for(lambda: _resolved(rd, fault["id"]),
                what="edge's tcp fault resolved once its target is back")
    rd.wait_for(lambda: rd.service("edge")["state"] == "normal", what="edge normal again")
    rd.wait_for(lambda: rd.api("/v1/status")["state"] == "normal", what="system normal again")
    # Nothing to restart: an alert, never a latched failed.
    assert "failed" not in _states(rd, "edge") and "failed" not in _states(rd, None)
    assert _states(rd, "edge")[-2:] == ["recovered", "normal"]
    assert [f["check"] for f in faults_of(rd, "edge")] == ["tcp"]
    assert not [a for a in actions_of(rd, "edge") if a["status"] == "failed"]


def test_release_of_a_healthy_watched_service_opens_no_fault(recoverd, demo):
    target = demo()
    target.wait_ready()
    port = target.port
    rd = recoverd({"services": {"edge": {"checks": [_tcp_check(port)]}}})
    checks_passing(rd, "edge")
    target.close()
    open_fault(rd, "edge")
    demo(port=port).wait_ready()
    checks_passing(rd, "edge")

    before = {f["id"] for f in faults_of(rd)}
    assert post(rd, "/v1/services/edge/release", token=read_token(rd))[0] == 200
    opened = [f for f in faults_of(rd) if f["id"] not in before]
    assert opened == [], "release opened a fault for a service whose checks pass"
    rd.wait_for(lambda: all(f["resolved_at"] for f in faults_of(rd, "edge")),
                what="edge's faults resolved")
    assert rd.service("edge")["state"] in ("recovered", "normal")


# ---- 2. held: detection goes on, release re-checks before it acts ----

def test_fault_resolves_while_held(recoverd):
    port = free_port()
    rd = recoverd({"services": {"web": demo_service(port)}})
    old = wait_running(rd, "web")
    assert post(rd, "/v1/services/web/hold", token=read_token(rd))[0] == 200
    assert http_get(port, "/fail")[0] == 200
    fault = open_fault(rd, "web")
    assert fault["check"] == "http"

    assert http_get(port, "/recover")[0] == 200
    rd.wait_for(lambda: _resolved(rd, fault["id"]),
                what="web's http fault resolved while held, its check passing again")
    v = rd.service("web")
    assert v["held"] is True and v["pid"] == old["pid"]
    assert actions_of(rd) == []


def test_release_does_not_restart_a_service_whose_checks_pass(recoverd):
    port = free_port()
    rd = recoverd({"services": {"web": demo_service(port)}})
    old = wait_running(rd, "web")
    assert post(rd, "/v1/services/web/hold", token=read_token(rd))[0] == 200
    assert http_get(port, "/fail")[0] == 200
    fault = open_fault(rd, "web")
    assert http_get(port, "/recover")[0] == 200
    checks_passing(rd, "web")

    assert post(rd, "/v1/services/web/release", token=read_token(rd))[0] == 200
    acts = actions_of(rd, "web")
    assert acts == [], "release acted on a service whose checks pass"
    assert no_change_for(1.0, lambda: (len(actions_of(rd)), rd.service("web")["pid"])) == \
        (0, old["pid"])
    rd.wait_for(lambda: _resolved(rd, fault["id"]), what="web's http fault resolved")


def test_release_restarts_a_held_service_whose_check_still_fails(recoverd):
    port = free_port()
    rd = recoverd({"services": {"web": demo_service(port)}})
    old = wait_running(rd, "web")
    assert post(rd, "/v1/services/web/hold", token=read_token(rd))[0] == 200
    assert http_get(port, "/fail")[0] == 200
    fault = open_fault(rd, "web")

    assert post(rd, "/v1/services/web/release", token=read_token(rd))[0] == 200
    new = wait_running(rd, "web", not_pid=old["pid"])  # a fresh demo answers 200 again
    rd.wait_for(lambda: _resolved(rd, fault["id"]), what="web's http fault resolved")
    assert [(a["strategy"], a["status"], a["fault_id"]) for a in actions_of(rd, "web")] == \
        [("restart", "completed", fault["id"])]
    assert new["held"] is False


# ---- 3. the concurrency limit counts executing actions only ----

def _crash_looper():
    """Exits at once; each restart waits out a 4-6 s backoff."""
    return {"command": ["/bin/sh", "-c", "exit 1"],
            "restart": {"max": 10, "window": "60s", "stable": "10s",
                        "backoff": {"initial": "5s", "max": "5s"}}}


LOOPERS = ("loop1", "loop2", "loop3")


def _loopers_backing_off(rd):
    """(views, actions) of the crash-loopers when each is down with its
    fault open and a restart planned, else None."""
    views = [rd.service(n) for n in LOOPERS]
    acts = [(a["service"], a["id"], a["status"]) for a in actions_of(rd)
            if a["service"] in LOOPERS]
    down = all(v["pid"] is None and v["open_faults"] and v["state"] != "failed" for v in views)
    planned = {a[0] for a in acts} == set(LOOPERS)
    return (views, acts) if down and planned else None


def _executing_during_backoffs(rd):
    """/v1/status's executing, read while every crash-looper waited out its
    backoff: nothing of theirs moved between the reads before and after."""
    for _ in range(20):
        before = rd.wait_for(lambda: _loopers_backing_off(rd),
                             what="three crash-loopers in their backoff")
        executing = rd.api("/v1/status")["executing"]
        if _loopers_backing_off(rd) == before:
            return executing
    raise AssertionError("the crash-loopers never stood still for one read")


def test_backoff_wait_holds_no_recovery_slot(recoverd):
    rd = recoverd({"max_concurrent_recoveries": 3,
                   "services": {n: _crash_looper() for n in LOOPERS}})
    executing = _executing_during_backoffs(rd)
    assert executing == 0, f"{executing} recovery slots held by restarts waiting out a backoff"


def test_hung_service_restart_executes_while_others_back_off(recoverd):
    port = free_port()
    services = {n: _crash_looper() for n in LOOPERS}
    services["web"] = demo_service(port)
    rd = recoverd({"max_concurrent_recoveries": 3, "services": services})
    old = wait_running(rd, "web", min_uptime_ms=300)
    rd.wait_for(lambda: _loopers_backing_off(rd), what="three crash-loopers in their backoff")
    _hang(port)

    act = rd.wait_for(lambda: (a := actions_of(rd, "web")) and a[0], what="web's restart")
    assert act["strategy"] == "restart"
    assert act["status"] != "pending", f"web's restart queued behind backoffs: {act}"
    # Queued for loop time only, if at all (a turn's spawns are paced).
    assert [e for e in log_events_of(rd, "web", "action-queued")
            if "waiting=loop-time" not in e[1]] == []
    wait_running(rd, "web", not_pid=old["pid"])
    assert rd.api("/v1/status")["executing"] <= 3


def test_verification_holds_no_recovery_slot(recoverd, tmp_path):
    pa, pb = free_port(), free_port()
    # slow starts at once the first time; restarted, it waits 30 s before it
    # listens, and its check may fail 200 times (10 s at 50 ms): a long verification.
    started = tmp_path / "started"
    slow_cmd = ["/bin/sh", "-c", f"if [ -e '{started}' ]; then sleep 30; fi; touch '{started}'; "
                f"exec {shlex.join(demo_cmd(pa))}"]
    slow = demo_service(pa, command=slow_cmd, checks=[http_check(pa, fall=200)], verify="60s")
    rd = recoverd({"max_concurrent_recoveries": 1,
                   "services": {"slow": slow, "quick": demo_service(pb)}})
    old = wait_running(rd, "slow")
    quick = wait_running(rd, "quick", min_uptime_ms=300)
    assert post(rd, "/v1/services/slow/restart", token=read_token(rd))[0] == 200
    rd.wait_for(lambda: (v := rd.service("slow"))["pid"] not in (None, old["pid"]) and
                v["process"] == "running", what="slow respawned, being verified")
    os.kill(quick["pid"], signal.SIGKILL)

    act = rd.wait_for(lambda: (a := actions_of(rd, "quick")) and a[0], what="quick's restart")
    assert act["status"] != "pending", f"quick's restart queued behind a verification: {act}"
    assert actions_of(rd, "slow")[0]["status"] not in FINISHED  # still verifying meanwhile
    # Queued for loop time only, if at all (a turn's spawns are paced).
    assert [e for e in log_events_of(rd, "quick", "action-queued")
            if "waiting=loop-time" not in e[1]] == []


# ---- 4. a start is verified by fast probes: faults open before `verify` ends ----

def test_check_failing_from_the_first_start_opens_a_fault_before_verify_ends(recoverd):
    never = {"command": {"argv": ["/bin/sh", "-c", "echo 'never healthy'; exit 2"],
                         "interval": "1s", "timeout": "2s", "fall": 2, "rise": 1}}
    rd = recoverd({"services": {"app": demo_service(free_port(), checks=[never],
                                                    verify="30s")}})
    fault = open_fault(rd, "app", timeout=10)  # verify is 30 s
    assert fault["check"] == "command" and "never healthy" in fault["description"], fault
    act = rd.wait_for(lambda: (a := actions_of(rd, "app")) and a[0], timeout=10,
                      what="app's restart")
    assert (act["strategy"], act["fault_id"]) == ("restart", fault["id"])


def test_hang_before_the_start_is_verified_is_restarted_before_verify_ends(recoverd):
    port = free_port()
    # rise 20: recoverd needs 20 passing probes (about 1 s) to verify the start;
    # fall 3: a demo slow to listen under ASan is not a fault yet.
    svc = demo_service(port, checks=[http_check(port, rise=20, fall=3)], verify="30s")
    rd = recoverd({"services": {"web": svc}})
    wait_http_ok(port, timeout=10)
    hung = live_pids_running(demo_cmd(port))
    assert len(hung) == 1
    _hang(port)

    new = wait_running(rd, "web", not_pid=hung[0], timeout=10)  # verify is 30 s
    assert new["pid"] != hung[0]
    fault = faults_of(rd, "web")[0]
    assert fault["check"] == "http"
    assert [(a["strategy"], a["fault_id"]) for a in actions_of(rd, "web")][:1] == \
        [("restart", fault["id"])]


def test_slow_starting_service_is_verified_without_a_fault(recoverd):
    """A service that needs a moment before it listens (here 0.5 s, a
    database needs seconds) is starting, not failing: verify bounds it."""
    port = free_port()
    cmd = ["/bin/sh", "-c", f"sleep 0.5; exec {shlex.join(demo_cmd(port))}"]
    rd = recoverd({"services": {"web": demo_service(port, command=cmd, verify="30s")}})
    wait_running(rd, "web")
    assert faults_of(rd) == [] and actions_of(rd) == []
    assert not {"degraded", "recovering", "failed"} & set(_states(rd, "web"))


# ---- 5. resource `for`, and a fault back within flap_window is reopened ----

def test_resource_check_over_its_limit_does_not_verify_a_restart(recoverd):
    # Every process has more than 3 fds: always over the limit.
    check = {"resource": {"fds": "3", "for": "2s", "interval": "100ms", "fall": 1, "rise": 1}}
    svc = demo_service(free_port(), checks=[check], recovery=["restart"], verify="10s")
    rd = recoverd({"services": {"fat": svc}})
    act = rd.wait_for(lambda: (a := actions_of(rd, "fat")) and a[0]["status"] in FINISHED
                      and a[0], timeout=20, what="fat's first restart finished")
    assert act["strategy"] == "restart"
    assert act["status"] == "failed", f"verified while fds stayed over the limit: {act}"


def test_fault_back_within_flap_window_is_reopened_and_resumes_its_chain(recoverd, tmp_path):
    marker = tmp_path / "healthy"
    port = free_port()
    svc = demo_service(port, command=_marked_demo(port, marker), checks=[marker_check(marker)],
                       recovery=["restart", "repair"],
                       repair={"command": ["/bin/sh", "-c", f"touch '{marker}'"]}, verify="5s")
    rd = recoverd({"services": {"app": svc}})
    wait_running(rd, "app", min_uptime_ms=300)
    marker.unlink()
    # The restart may resolve the fault before a poll sees it open.
    fault = rd.wait_for(lambda: (f := faults_of(rd, "app")) and f[0], what="app's fault")
    rd.wait_for(lambda: _resolved(rd, fault["id"]), what="the first fault resolved by a restart")
    assert [(a["strategy"], a["status"]) for a in actions_of(rd, "app")] == \
        [("restart", "completed")]

    marker.unlink()  # back well within the default flap_window (60 s)
    rd.wait_for(lambda: len(a := actions_of(rd, "app")) >= 2 and a[1]["status"] in FINISHED,
                what="a second action finished")
    faults = faults_of(rd, "app")
    assert [f["id"] for f in faults] == [fault["id"]], \
        f"a new fault, not the same one reopened: {faults}"
    acts = actions_of(rd, "app")
    assert [(a["strategy"], a["status"], a["fault_id"]) for a in acts] == \
        [("restart", "completed", fault["id"]), ("repair", "completed", fault["id"])], acts
    assert _journal_mentions(rd, "reopened"), "no journal record of the reopening"
    rd.wait_for(lambda: _resolved(rd, fault["id"]), what="the reopened fault resolved")


# ---- 6. each fault keeps its own reason ----

def _failing(name):
    return {"command": {"name": name, "argv": ["/bin/sh", "-c", f"echo '{name} is down'; exit 2"],
                        "interval": "100ms", "timeout": "2s", "fall": 1, "rise": 1}}


def _two_faults(rd, name):
    def found():
        fs = {f["check"]: f for f in faults_of(rd, name) if f["check"] in ("alpha", "beta")}
        return fs if len(fs) == 2 else None
    return rd.wait_for(found, what=f"{name}'s alpha and beta faults")


def test_checks_failing_from_start_keep_their_own_reasons(recoverd):
    svc = demo_service(free_port(), checks=[_failing("alpha"), _failing("beta")], verify="1s")
    rd = recoverd({"services": {"app": svc}})
    faults = _two_faults(rd, "app")
    for name, other in (("alpha", "beta"), ("beta", "alpha")):
        desc = faults[name]["description"]
        assert f"{name} is down" in desc and other not in desc, faults


def test_checks_failing_while_held_keep_their_own_reasons(recoverd, tmp_path):
    markers = {n: tmp_path / n for n in ("alpha", "beta")}
    for m in markers.values():
        m.touch()
    checks = [marker_check(m, name=n) for n, m in markers.items()]
    rd = recoverd({"services": {"app": demo_service(free_port(), checks=checks)}})
    wait_running(rd, "app")
    assert post(rd, "/v1/services/app/hold", token=read_token(rd))[0] == 200
    for m in markers.values():
        m.unlink()
    faults = _two_faults(rd, "app")
    for name, other in (("alpha", "beta"), ("beta", "alpha")):
        desc = faults[name]["description"]
        assert f"marker {name} missing" in desc and other not in desc, faults


# ---- 7. chains hold only implemented strategies ----

def _chain_config(rd, chain, extra=""):
    """A config whose web service has recovery: chain on line 5."""
    rd.write_config(f"state_dir: {rd.state_dir}\n"
                    f"services:\n"
                    f"  web:\n"
                    f"    command: [\"/bin/true\"]\n"
                    f"    recovery: [{', '.join(chain)}]\n{extra}")
    return rd.check_config()


def test_unimplemented_strategy_is_dropped_with_a_warning(recoverd):
    rd = recoverd(start=False)
    r = _chain_config(rd, ["failover", "restart"])
    assert r.returncode == 0, r.stderr
    assert "warning" in r.stderr.lower() and "failover" in r.stderr, r.stderr


def test_chain_without_an_implemented_strategy_is_an_error(recoverd):
    rd = recoverd(start=False)
    r = _chain_config(rd, ["failover"])
    assert r.returncode == 2, r
    assert re.search(rf"{re.escape(str(rd.config_path))}:5:\d+: error: ", r.stderr), r.stderr


def test_implemented_chain_loads_without_a_warning(recoverd):
    rd = recoverd(start=False)
    r = _chain_config(rd, ["restart", "repair"], "    repair: { command: [\"/bin/true\"] }\n")
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr.lower(), r.stderr


def test_hardware_fault_default_chain_is_restart(recoverd, tmp_path):
    marker = tmp_path / "healthy"
    port = free_port()
    svc = demo_service(port, command=_marked_demo(port, marker),
                       checks=[marker_check(marker, type="hardware")], verify="5s")
    rd = recoverd({"services": {"box": svc}})
    wait_running(rd, "box", min_uptime_ms=300)
    marker.unlink()
    # The restart may resolve the fault before a poll sees it open.
    fault = rd.wait_for(lambda: (f := faults_of(rd, "box")) and f[0], what="box's fault")
    assert fault["type"] == "hardware"
    rd.wait_for(lambda: _resolved(rd, fault["id"]) or rd.service("box")["state"] == "failed",
                what="box's hardware fault resolved (or box failed)")
    assert rd.service("box")["state"] != "failed", faults_of(rd, "box")
    assert [(a["strategy"], a["status"]) for a in actions_of(rd, "box")] == \
        [("restart", "completed")]


# ---- 8. recoverctl: what is down or held ----

def _held_shown(row):
    """A services row says the service is held: a HELD column, or the word."""
    if "HELD" in row:
        return row["HELD"].lower() in ("yes", "true", "held")
    return "held" in " ".join(row.values()).lower()


def test_recoverctl_services_does_not_show_a_down_services_checks_as_ok(recoverd):
    slow = {"max": 5, "window": "30s", "stable": "10s", "backoff": {"initial": "5s", "max": "5s"}}
    rd = recoverd({"services": {"web": demo_service(free_port(), restart=slow),
                                "other": demo_service(free_port())}})
    old = wait_running(rd, "web")
    wait_running(rd, "other")
    os.kill(old["pid"], signal.SIGKILL)  # up < stable: its restart waits 4-6 s
    rd.wait_for(lambda: (v := rd.service("web"))["pid"] is None and v["open_faults"],
                what="web down, waiting out its backoff")

    r = ctl(rd, "services")
    assert r.returncode == 0, r.stderr
    rows = ctl_table(r.stdout)
    assert rd.service("web")["pid"] is None  # still down when recoverctl asked
    assert not re.match(r"[1-9]\d*/\d+ ok", rows["web"]["CHECKS"]), r.stdout
    assert "ok" in rows["other"]["CHECKS"], r.stdout  # running: its checks do show


def test_recoverctl_services_shows_a_held_service(recoverd):
    rd = recoverd({"services": {"web": demo_service(free_port()),
                                "other": demo_service(free_port())}})
    wait_running(rd, "web")
    wait_running(rd, "other")
    assert post(rd, "/v1/services/web/hold", token=read_token(rd))[0] == 200
    r = ctl(rd, "services")
    assert r.returncode == 0, r.stderr
    rows = ctl_table(r.stdout)
    assert _held_shown(rows["web"]), r.stdout
    assert not _held_shown(rows["other"]), r.stdout


def test_recoverctl_service_shows_a_hold(recoverd):
    rd = recoverd({"services": {"web": demo_service(free_port())}})
    wait_running(rd, "web")
    assert post(rd, "/v1/services/web/hold", token=read_token(rd))[0] == 200
    r = ctl(rd, "service", "web")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^held:\s+(yes|true)$", r.stdout, re.M), r.stdout
