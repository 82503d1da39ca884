"""Configuration end to end: bad files are refused with file:line:column,
and SIGHUP reloads keep what did not change and refuse what is broken."""

import json
import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from helpers import (REPO, binary, demo_cmd, demo_service, free_port, http_check, http_get,
                     live_pids_running, pid_alive, post, read_token, wait_running)

CONFIGS = REPO / "tests" / "configs"
BAD = sorted((CONFIGS / "bad").glob("*.yaml"))


def _expectation(path):
    """(line, col, text) from the file's first line: `# expect: L:C text`."""
    first = path.read_bytes().decode(errors="replace").splitlines()[0]  # some are not UTF-8
    m = re.fullmatch(r"# expect: (\d+):(\d+) (.+)", first)
    assert m, f"{path.name}: first line must be '# expect: L:C text', not {first!r}"
    return int(m.group(1)), int(m.group(2)), m.group(3)


def _recoverd(*args):
    return subprocess.run([binary("recoverd"), *args], capture_output=True, text=True,
                          timeout=10)


def test_bad_configs_exist():
    assert len(BAD) >= 10


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_configs_exit_2_with_position(path):
    line, col, text = _expectation(path)
    r = _recoverd("--check-config", "-c", str(path))
    assert r.returncode == 2, r
    assert f"{path}:{line}:{col}: error: " in r.stderr, r.stderr
    assert text in r.stderr, r.stderr
    assert r.stdout == ""


SECRET = "hunter2-s3cret"
LEAKY = {
    "syntax error on the dsn line":
        f'services:\n  db:\n    checks:\n      - postgres: {{ dsn: "host=h password={SECRET}"\n',
    "wrong type for a password":
        f'services:\n  db:\n    checks:\n      - redis: {{ address: "127.0.0.1:6379", password: [{SECRET}] }}\n',
    "userinfo in a check url":
        f'services:\n  db:\n    checks:\n      - http: {{ url: "http://admin:{SECRET}@127.0.0.1/" }}\n',
    "userinfo in a webhook url":
        f'alerts:\n  webhooks:\n    - url: "http://u:{SECRET}@127.0.0.1/hook"\n'
        f'services:\n  a:\n    command: ["true"]\n',
    "unknown key beside a dsn":
        f'services:\n  db:\n    checks:\n      - postgres: {{ dsn: "password={SECRET}", bogus: 1 }}\n',
}


@pytest.mark.parametrize("text", LEAKY.values(), ids=LEAKY.keys())
def test_config_errors_never_show_secrets(tmp_path, text):
    """An error names the place, not the value: a password next to it
    stays out of the message."""
    path = tmp_path / "recoverd.yaml"
    path.write_text(text)
    r = _recoverd("--check-config", "-c", str(path))
    assert r.returncode == 2, r
    assert f"{path}:" in r.stderr and ": error: " in r.stderr, r.stderr
    assert SECRET not in r.stderr + r.stdout


def test_valid_config_checks_ok():
    r = _recoverd("--check-config", "-c", str(CONFIGS / "valid.yaml"))
    assert r.returncode == 0, r.stderr
    assert "configuration valid (2 services)" in r.stdout


def test_missing_config_file_exits_2():
    r = _recoverd("--check-config", "-c", "/nonexistent/recoverd.yaml")
    assert r.returncode == 2
    assert "/nonexistent/recoverd.yaml" in r.stderr and "No such file" in r.stderr


def test_bad_config_without_check_exits_2_and_starts_nothing(tmp_path):
    port = free_port()
    state = tmp_path / "state"
    good = demo_service(port)
    cfg = {"state_dir": str(state), "api": {"listen": f"127.0.0.1:{free_port()}"},
           "services": {"good": good, "bad": dict(good, restart={"max": "many"})}}
    text = json.dumps(cfg, indent=2) + "\n"
    path = tmp_path / "recoverd.yaml"
    path.write_text(text)
    r = _recoverd("-c", str(path))
    assert r.returncode == 2, r
    line = next(i for i, l in enumerate(text.splitlines(), 1) if '"many"' in l)
    assert re.search(rf"{re.escape(str(path))}:{line}:\d+: error: ", r.stderr), r.stderr
    assert not state.exists()
    assert live_pids_running(demo_cmd(port)) == []


def _key_position(text, key):
    """1-based line and column of the JSON key "key" in text."""
    for n, l in enumerate(text.splitlines(), 1):
        i = l.find(f'"{key}"')
        if i >= 0:
            return n, i + 1
    raise AssertionError(f"{key} not in config")


def test_bad_reload_keeps_running_config(recoverd):
    pa, pb = free_port(), free_port()
    rd = recoverd({"services": {"a": demo_service(pa), "b": demo_service(pb)}})
    a1, b1 = wait_running(rd, "a")["pid"], wait_running(rd, "b")["pid"]

    text = rd.config_path.read_text().replace('"command"', '"comand"', 1)
    line, col = _key_position(text, "comand")
    rd.write_config(text)
    rd.signal(signal.SIGHUP)
    rejected = rd.wait_for(lambda: re.search(r"reload-rejected .*", rd.log_text()),
                           what="reload-rejected in the log").group(0)
    assert f"{rd.config_path}:{line}:{col}" in rejected
    assert "unknown key 'comand'" in rejected and "running=unchanged" in rejected

    # The running configuration goes on: same processes, checks still probing.
    probes = rd.service("a")["checks"][0]["probes"]
    rd.wait_for(lambda: rd.service("a")["checks"][0]["probes"] >= probes + 3,
                what="a's check still probing")
    assert (rd.service("a")["pid"], rd.service("b")["pid"]) == (a1, b1)
    assert rd.service("a")["restarts"] == rd.service("b")["restarts"] == 0
    assert rd.running() and rd.api("/v1/status")["services"] == 2
    assert "reloaded" not in rd.log_text()


def test_reload_restarts_only_the_changed_service(recoverd):
    pa, pb, pa2 = free_port(), free_port(), free_port()
    config = {"services": {"a": demo_service(pa), "b": demo_service(pb)}}
    rd = recoverd(config)
    a1, b1 = wait_running(rd, "a")["pid"], wait_running(rd, "b")["pid"]

    config["services"]["a"] = demo_service(pa2)
    rd.write_config(config)
    rd.signal(signal.SIGHUP)
    a2 = wait_running(rd, "a", not_pid=a1)["pid"]
    assert not pid_alive(a1)
    assert http_get(pa2, "/health") == (200, b"ok\n")
    with pytest.raises(OSError):
        http_get(pa, "/health", timeout=0.5)
    b = rd.service("b")
    assert (b["pid"], b["restarts"]) == (b1, 0) and pid_alive(b1)
    assert live_pids_running(demo_cmd(pa2)) == [a2]
    log = rd.log_text()
    assert re.search(r" a retired why=\"configuration changed: its process changed\"", log)
    assert " b retired" not in log
    # A reload is not a fault.
    assert rd.api("/v1/faults") == [] and rd.api("/v1/actions") == []


def test_reload_applies_check_changes_without_restart(recoverd):
    """Checks, restart policy and recovery change in place: the process
    stays, and the new checks are the ones that detect the next fault."""
    port = free_port()
    config = {"services": {"a": demo_service(port, checks=[http_check(port, interval="1s",
                                                                      fall=3)])}}
    rd = recoverd(config)
    a1 = wait_running(rd, "a")["pid"]
    rd.wait_for(lambda: rd.service("a")["state"] == "normal", what="a settled")

    config["services"]["a"]["checks"] = [
        http_check(port, interval="50ms", fall=1),
        {"tcp": {"address": f"127.0.0.1:{port}", "interval": "100ms"}}]
    config["services"]["a"]["restart"]["max"] = 9
    rd.write_config(config)
    rd.signal(signal.SIGHUP)
    rd.wait_for(lambda: re.search(r" a reconfigured pid=\d+ checks=2 process=kept", rd.log_text()),
                what="a reconfigured in place")
    rd.wait_for(lambda: all(c["probes"] > 0 for c in rd.service("a")["checks"]),
                what="both new checks probed")
    a = rd.service("a")
    assert (a["pid"], a["restarts"]) == (a1, 0) and pid_alive(a1)
    assert [c["name"] for c in a["checks"]] == ["http", "tcp"]
    assert " a retired" not in rd.log_text()

    # fall 1 at 50 ms: one failed probe opens the fault and restarts it.
    assert http_get(port, "/fail")[0] == 200
    fault = rd.wait_for(lambda: next((f for f in rd.api("/v1/faults") if f["service"] == "a"),
                                     None), what="http fault from the new check")
    assert fault["check"] == "http"
    wait_running(rd, "a", not_pid=a1)


def test_reload_during_a_fault_replaces_the_service(recoverd):
    """While a fault is open the old checks own its verdict: a changed
    check then restarts the service, and the log says why."""
    port = free_port()
    config = {"services": {"a": demo_service(port)}}
    rd = recoverd(config)
    a1 = wait_running(rd, "a")["pid"]
    # Held: the fault stays open with no recovery to wait for.
    assert post(rd, "/v1/services/a/hold", token=read_token(rd))[0] == 200
    assert http_get(port, "/fail")[0] == 200
    rd.wait_for(lambda: rd.api("/v1/faults?active=1"), what="fault open")

    config["services"]["a"]["checks"] = [http_check(port, interval="200ms")]
    rd.write_config(config)
    rd.signal(signal.SIGHUP)
    rd.wait_for(lambda: re.search(r" a retired why=\"configuration changed: a fault is open\"",
                                  rd.log_text()), what="a replaced")
    # The replacement runs the new check, and the operator's hold stays.
    rd.wait_for(lambda: rd.service("a")["pid"] not in (None, a1), what="a restarted")
    assert rd.service("a")["held"] is True


def _rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_reloads_free_the_configs_they_replace(recoverd):
    """A daemon reloaded every few minutes for months must not keep every
    configuration it ever read. Five services with 8 KiB of environment
    each; 420 reloads that alternate a check-free setting (applied in place)."""
    env = {f"V{j}": "x" * 400 for j in range(20)}
    configs = [{"services": {f"s{i}": {"command": ["sleep", "1000"], "env": env,
                                       "verify": f"{30 + (k if i == 0 else 0)}s"}
                             for i in range(5)}} for k in (0, 1)]
    # ASan keeps freed memory in quarantine; without it, RSS shows reuse.
    asan = os.environ.get("ASAN_OPTIONS", "")
    rd = recoverd(configs[0], env={"ASAN_OPTIONS": f"{asan}:quarantine_size_mb=0"})
    # Past restart.stable (1 s): started, so a reload may apply in place.
    pid0 = wait_running(rd, "s0", min_uptime_ms=1300)["pid"]

    def reload(n):
        for _ in range(n):
            done = rd.log_text().count(" reloaded ")
            rd.write_config(configs[(done + 1) % 2])
            rd.signal(signal.SIGHUP)
            rd.wait_for(lambda: rd.log_text().count(" reloaded ") > done, what="reloaded")

    # A reload is loaded in libuv's thread pool and freed on the loop:
    # ASan's per-thread allocator caches fill over the first ~250 (then
    # RSS stays flat; glibc's release build shows no such warm-up).
    reload(300)
    before = _rss_kib(rd.pid)
    reload(120)
    grown = _rss_kib(rd.pid) - before
    assert grown < 512, f"RSS grew {grown} KiB over 120 reloads"
    assert rd.service("s0")["pid"] == pid0 and rd.service("s0")["restarts"] == 0
    assert rd.log_text().count(" s0 reconfigured ") == 420


def test_reload_adds_and_removes_services(recoverd):
    pa, pc = free_port(), free_port()
    config = {"services": {"a": demo_service(pa)}}
    rd = recoverd(config)
    a1 = wait_running(rd, "a")["pid"]

    config["services"]["c"] = demo_service(pc)
    rd.write_config(config)
    rd.signal(signal.SIGHUP)
    c1 = wait_running(rd, "c")["pid"]
    assert http_get(pc, "/health")[0] == 200
    assert rd.api("/v1/status")["services"] == 2

    del config["services"]["c"]
    rd.write_config(config)
    rd.signal(signal.SIGHUP)
    rd.wait_for(lambda: not pid_alive(c1), what="c's process gone")
    assert rd.request("GET", "/v1/services/c")[0] == 404
    assert [s["name"] for s in rd.api("/v1/services")] == ["a"]
    assert rd.service("a")["pid"] == a1
    assert live_pids_running(demo_cmd(pc)) == []


def _sleepers(n, seconds, **extra):
    """n services that sleep `seconds` (no checks): their argv tells the
    generations apart."""
    return {f"s{i:03d}": {"command": ["sleep", str(seconds)], **extra} for i in range(n)}


def _all_running(rd, n, argv, others=0):
    """n services of argv (and others more) run, in recoverd's view too."""
    views = rd.api("/v1/services")
    return (len(views) == n + others and all(v["process"] == "running" for v in views)
            and len(live_pids_running(argv)) == n)


def test_reload_during_a_reload_ends_on_the_last_file(recoverd):
    """A SIGHUP while a reload is loaded or applied (in slices) is not
    lost: once the first is applied, the file is read again, and what runs
    in the end is the last file's."""
    n = 60
    rd = recoverd({"services": _sleepers(n, 1001)})
    rd.wait_for(lambda: _all_running(rd, n, ["sleep", "1001"]), what="first generation")
    # Every process changes: each service is replaced (stopped, spawned).
    rd.write_config({"services": _sleepers(n, 1002)})
    rd.signal(signal.SIGHUP)
    last = _sleepers(n, 1002)
    last["late"] = {"command": ["sleep", "1003"]}
    rd.write_config({"services": last})
    rd.signal(signal.SIGHUP)
    rd.wait_for(lambda: _all_running(rd, n, ["sleep", "1002"], others=1) and
                len(live_pids_running(["sleep", "1003"])) == 1, timeout=30,
                what="the last file running")
    rd.wait_for(lambda: live_pids_running(["sleep", "1001"]) == [], what="first generation gone")
    log = rd.log_text()
    assert "reload-rejected" not in log
    assert re.search(rf"reloaded config=\S+ services={n + 1} took_ms=[0-9.]+ max_stall_ms=", log)


def test_sigterm_during_a_reload_stops_every_generation(recoverd):
    """SIGTERM right after SIGHUP, while the reload is loaded or applied in
    slices: recoverd stops what runs of both configurations and exits 0."""
    n = 60
    rd = recoverd({"services": _sleepers(n, 1004)})
    rd.wait_for(lambda: _all_running(rd, n, ["sleep", "1004"]), what="first generation")
    rd.write_config({"services": _sleepers(n, 1005)})
    rd.signal(signal.SIGHUP)
    rd.stop(timeout=30)
    assert live_pids_running(["sleep", "1004"]) == []
    assert live_pids_running(["sleep", "1005"]) == []
    assert re.search(r" stopped took_ms=[0-9.]+ max_stall_ms=", rd.log_text())


def test_reload_changes_a_few_services_per_slice(recoverd):
    """What a reload's slice changes brings work to the turns after it
    (checks closed and probed anew, exits): a slice changes at most 16
    services (daemon.c DAEMON__STEP_MAX), and the reload is still one:
    every service reconfigured in place, "reloaded" once."""
    n = 40
    rd = recoverd({"services": _sleepers(n, 1008, verify="30s")})
    rd.wait_for(lambda: _all_running(rd, n, ["sleep", "1008"]), what="running")
    pids = {v["name"]: v["pid"] for v in rd.api("/v1/services")}
    # Past restart.stable (1 s): started, so a reload may apply in place.
    rd.wait_for(lambda: all(v["uptime_ms"] > 1300 for v in rd.api("/v1/services")),
                what="past restart.stable")
    rd.write_config({"services": _sleepers(n, 1008, verify="31s")})
    rd.signal(signal.SIGHUP)
    line = rd.wait_for(lambda: re.search(r" reloaded config=\S+ services=(\d+) .* slices=(\d+)",
                                         rd.log_text()), what="reloaded")
    assert int(line.group(1)) == n and int(line.group(2)) >= -(-n // 16), line.group(0)
    log = rd.log_text()
    assert log.count(" reconfigured ") == n and log.count(" reloaded ") == 1
    assert {v["name"]: v["pid"] for v in rd.api("/v1/services")} == pids


def test_reload_spreads_the_first_probes_of_changed_checks(recoverd):
    """Checks a reload changes first probe at phases spread over their
    interval (at most a second), not all in the turn after their slice:
    the checks' 10 ms grid would keep them together from then on."""
    n = 24
    ports = [free_port() for _ in range(n)]
    def config(interval):
        return {"services": {f"w{i:02d}": demo_service(p, checks=[http_check(p, interval=interval)])
                             for i, p in enumerate(ports)}}
    rd = recoverd(config("1s"))
    rd.wait_for(lambda: all(v["state"] == "normal" and v["uptime_ms"] > 1300
                            for v in rd.api("/v1/services")), what="all settled")
    rd.write_config(config("500ms"))
    rd.signal(signal.SIGHUP)
    rd.wait_for(lambda: " reloaded " in rd.log_text(), what="reloaded")
    rd.wait_for(lambda: all(c["probes"] >= 1 for v in rd.api("/v1/services")
                            for c in v["checks"]), what="every new check probed")
    # Each check's last answer, by the wall clock, at its phase in the
    # 500 ms interval (kept by the grid): in 50 ms slots, not one or two.
    ats = [c["at"] for v in rd.api("/v1/services") for c in v["checks"]]
    slots = {(int(at[17:19]) * 1000 + int(at[20:23])) % 500 // 50 for at in ats}
    assert len(slots) >= 4, sorted(ats)


def test_reload_into_a_plugin_kind_loads_it_on_the_loop(recoverd):
    """The reload's load runs in the thread pool, which loads no plug-in: a
    file that names a kind not loaded yet (redis) is loaded on the loop
    instead, and the check runs (failing here: nothing listens there)."""
    if not (Path(binary("recoverd")).parent / "recoverd-redis.so").is_file():
        pytest.skip("the redis plug-in is not built (no hiredis)")
    port = free_port()
    config = {"services": {"a": {"command": ["sleep", "1006"]}}}
    rd = recoverd(config)
    rd.wait_for(lambda: rd.service("a")["process"] == "running", what="a running")
    config["services"]["a"]["checks"] = [{"redis": {"address": f"127.0.0.1:{port}",
                                                    "interval": "200ms"}}]
    rd.write_config(config)
    rd.signal(signal.SIGHUP)
    rd.wait_for(lambda: re.search(r"reloaded config=", rd.log_text()), what="reloaded")
    assert "reload-rejected" not in rd.log_text()
    rd.wait_for(lambda: rd.service("a")["checks"] and
                rd.service("a")["checks"][0]["probes"] > 0, what="the redis check probing")
    assert rd.service("a")["checks"][0]["kind"] == "redis"
