"""No escapes: what a service starts stays with it, in both containment
modes (a cgroup v2 per service; recoverd as a child subreaper), and
recoverd can run as an unprivileged user.

The escaping service is a shell script that double-forks a `sleep` under
setsid (its own session and process group, its parent gone), then runs a
sleep of its own as the main process. Each escapee's argv carries a marker
unique to the test (`sleep 3xxx.NNNN`), by which survivors are counted;
whatever the test finds alive at the end it kills by pid, nothing by name.
"""

import os
import random
import resource
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from helpers import (kill_tracked, live_pids_running, pid_alive, post, proc_start_ticks,
                     read_token, start_in_mode)

MODES = ["cgroup", "subreaper"]


def escaping_service(directory, marker):
    """A script that double-forks `sleep MARKER` under setsid, then execs a
    sleep of its own (the service's main process). Its argv."""
    script = Path(directory) / "escape.sh"
    script.write_text("#!/bin/sh\n"
                      f"( setsid sleep {marker} & )\n"
                      "exec sleep 600\n")
    script.chmod(0o755)
    return [str(script)]


def new_marker():
    """A sleep duration nobody else uses: the escapee's argv is our marker."""
    return f"{3000 + random.randrange(1000)}.{os.getpid()}{random.randrange(10**6):06d}"


class Escapees:
    """The `sleep MARKER` processes of one test, remembered by (pid, start
    ticks) for the teardown."""

    def __init__(self, marker):
        self.argv = ["sleep", marker]
        self.seen = {}

    def alive(self):
        pids = live_pids_running(self.argv)
        for pid in pids:
            ticks = proc_start_ticks(pid)
            if ticks is not None:
                self.seen.setdefault(pid, ticks)
        return pids

    def kill_all(self):
        self.alive()
        for pid, ticks in self.seen.items():
            kill_tracked(pid, ticks)


def service_cfg(argv, grace="2s"):
    return {"command": argv, "stop": {"signal": "TERM", "grace": grace},
            "restart": {"max": 20, "window": "60s", "stable": "100ms",
                        "backoff": {"initial": "50ms", "max": "200ms"}}}


def restart(rd, name, token):
    """Once its recovery is idle (a restart of a restart is refused), an
    operator's restart; returns when a new main process runs."""
    rd.wait_for(lambda: rd.service(name)["recovery"] == "idle", 15, what=f"{name} idle")
    old_pid = rd.service(name)["pid"]
    assert post(rd, f"/v1/services/{name}/restart", token=token)[0] == 200
    rd.wait_for(lambda: rd.service(name)["pid"] not in (None, old_pid), 15,
                what="a new main process")


def wait_escapee(rd, esc, not_pids=()):
    """Wait for exactly one escapee, not one of not_pids; its pid."""
    def one_new():
        pids = esc.alive()
        return pids[0] if len(pids) == 1 and pids[0] not in not_pids else None
    return rd.wait_for(one_new, 15, what=f"exactly one new {' '.join(esc.argv)}")


@pytest.mark.parametrize("mode", MODES)
def test_double_forked_process_goes_with_each_restart_and_shutdown(recoverd, tmp_path, mode):
    esc = Escapees(new_marker())
    rd = recoverd({"services": {"esc": service_cfg(escaping_service(tmp_path, esc.argv[1]))}},
                  start=False)
    try:
        start_in_mode(rd, mode)
        status = rd.api("/v1/status")
        assert status["containment"] == mode
        assert (status["cgroup"] is not None) == (mode == "cgroup")
        assert f"containment mode={mode}" in rd.log_text()
        view = rd.service("esc")
        if mode == "cgroup":
            assert view["cgroup"].startswith(status["cgroup"] + "/")
        first = wait_escapee(rd, esc)
        # It did escape: its own session, not the service's process group.
        stat = Path(f"/proc/{first}/stat").read_text().rsplit(")", 1)[1].split()
        assert int(stat[3]) == first and int(stat[2]) != view["pid"]
        if mode == "cgroup":
            procs = Path(view["cgroup"], "cgroup.procs").read_text().split()
            assert str(first) in procs and str(view["pid"]) in procs
        gone = [first]
        token = read_token(rd)
        for _ in range(3):
            restart(rd, "esc", token)
            gone.append(wait_escapee(rd, esc, not_pids=gone))
            assert not any(pid_alive(p) for p in gone[:-1]), "an escapee survived a restart"
        # A death of the main process takes its escapee with it too.
        old_pid = rd.service("esc")["pid"]
        os.kill(old_pid, signal.SIGKILL)
        rd.wait_for(lambda: rd.service("esc")["pid"] not in (None, old_pid), 15,
                    what="the service restarted after its death")
        gone.append(wait_escapee(rd, esc, not_pids=gone))
        assert not any(pid_alive(p) for p in gone[:-1]), "an escapee survived its service's death"
        rd.stop()
        assert esc.alive() == [], "escapees survived recoverd's shutdown"
        if mode == "cgroup":
            assert not Path(view["cgroup"]).exists()
    finally:
        esc.kill_all()


# ---- recoverd as an unprivileged user ----

needs_root = pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                                reason="runs recoverd as nobody: needs root and setpriv")

def uids(pid):
    """Real, effective, saved and filesystem uid of pid."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return [int(u) for u in line.split()[1:]]
    raise AssertionError(f"no Uid line for {pid}")


NOBODY = ("setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--")


def unprivileged(recoverd, work, config):
    """A Recoverd whose config and state_dir live in work, a directory the
    user nobody owns (pytest's tmp_path is root's alone)."""
    work.chmod(0o755)
    rd = recoverd(config, start=False)
    rd.config_path = work / "recoverd.yaml"
    rd.state_dir = work / "state"
    cfg = dict(rd.config, state_dir=str(rd.state_dir))
    rd.write_config(cfg)
    rd.state_dir.mkdir()
    for p in (work, rd.state_dir, rd.config_path):
        os.chown(p, 65534, 65534)
    return rd


@needs_root
def test_cgroup_mode_refused_where_impossible_subreaper_says_why(recoverd, tmp_path):
    """A forced cgroup mode where none can be made exits 1 with the reason;
    auto mode falls back to subreaper and says why. Made impossible the way
    an unprivileged recoverd meets it: no write access to its cgroup."""
    work = Path(tempfile.mkdtemp(prefix="recoverd-esc-"))
    try:
        rd = unprivileged(recoverd, work, {"services": {"s": {"command": ["sleep", "600"]}}})
        rd.start(wait=False, extra_args=("--containment", "cgroup"), prefix=NOBODY)
        assert rd.proc.wait(timeout=20) == 1
        assert "containment-failed" in rd.log_text() and "cgroup containment is not possible" \
            in rd.log_text()
        rd.start(prefix=NOBODY)
        assert rd.api("/v1/status")["containment"] == "subreaper"
        assert "containment mode=subreaper why=" in rd.log_text(since_start=True)
        rd.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)


@needs_root
def test_unprivileged_recoverd_contains_its_services_as_subreaper(recoverd):
    work = Path(tempfile.mkdtemp(prefix="recoverd-esc-"))
    esc = Escapees(new_marker())
    try:
        argv = escaping_service(work, esc.argv[1])
        rd = unprivileged(recoverd, work, {"services": {"esc": service_cfg(argv)}})
        rd.start(prefix=NOBODY)
        status = rd.api("/v1/status")
        assert status["containment"] == "subreaper" and status["cgroup"] is None
        first = wait_escapee(rd, esc)
        for pid in (rd.pid, rd.service("esc")["pid"], first):
            assert uids(pid) == [65534] * 4
        # The escapee was adopted by recoverd, not by init.
        assert int(Path(f"/proc/{first}/stat").read_text().rsplit(")", 1)[1].split()[1]) == rd.pid
        restart(rd, "esc", read_token(rd))
        second = wait_escapee(rd, esc, not_pids=(first,))
        assert not pid_alive(first)
        rd.stop()
        assert esc.alive() == [] and not pid_alive(second)
        assert (rd.state_dir / "journal.db").stat().st_uid == 65534
    finally:
        esc.kill_all()
        shutil.rmtree(work, ignore_errors=True)


# ---- what a service inherits ----

def limits_of(pid, name):
    """(soft, hard) of one row of /proc/pid/limits, e.g. "Max open files"."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith(name):
            soft, hard = line[len(name):].split()[:2]
            return soft, hard
    raise AssertionError(f"no {name} in /proc/{pid}/limits")


def test_service_gets_the_fd_limit_recoverd_was_started_with(recoverd, tmp_path):
    """recoverd raises its own soft RLIMIT_NOFILE to the hard limit (one
    socket per check); a service gets back the one recoverd was given."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 1024:
        pytest.skip("the hard fd limit leaves no room to raise")
    given = 1000
    rd = recoverd({"services": {"s": {"command": ["sleep", "600"]}}}, start=False)
    resource.setrlimit(resource.RLIMIT_NOFILE, (given, hard))
    try:
        rd.start()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert limits_of(rd.pid, "Max open files")[0] != str(given)  # recoverd raised its own
    pid = rd.wait_for(lambda: rd.service("s")["pid"], what="the service's pid")
    assert limits_of(pid, "Max open files")[0] == str(given)


def test_service_environment_carries_its_mark(recoverd, tmp_path):
    rd = recoverd({"services": {"s": {"command": ["sleep", "600"],
                                      "env": {"RECOVERD_MARK": "forged"}}}},
                  env={"RECOVERD_MARK": "inherited"})
    pid = rd.wait_for(lambda: rd.service("s")["pid"], what="the service's pid")
    # The spawn returns once exec is past its point of no return, a moment
    # before the new image's environment is in place: wait for it.
    env = rd.wait_for(lambda: Path(f"/proc/{pid}/environ").read_bytes(),
                      what="the service's environment").split(b"\0")
    marks = [e for e in env if e.startswith(b"RECOVERD_MARK=")]
    # recoverd's own comes first (getenv finds it); the inherited one is gone.
    assert marks[0].startswith(b"RECOVERD_MARK=") and marks[0].endswith(b":s")
    assert b"RECOVERD_MARK=inherited" not in env


# ---- limits ----

def test_cgroup_limits_without_controllers_are_a_clear_warning(recoverd, tmp_path):
    """This host's cgroup v2 tree has no memory/pids/cpu controllers (a v1/v2
    hybrid): the limits cannot be applied, which the log says at start, and
    the service runs. On a host with the controllers the files are written
    (tests/unit/test_containment.c)."""
    limits = {"memory_max": "256MiB", "pids_max": 100, "cpu_max": "50000 100000"}
    rd = recoverd({"services": {"s": {"command": ["sleep", "600"], "cgroup": limits}}})
    status = rd.api("/v1/status")
    missing = {"memory", "pids", "cpu"} - set(status["cgroup_controllers"])
    if not missing:
        pytest.skip("this host has every controller: nothing to warn about")
    rd.wait_for(lambda: rd.service("s")["pid"], what="the service's pid")
    lines = [l for l in rd.log_text().splitlines() if "cgroup-limits-unavailable" in l]
    assert len(lines) == 1 and " s " in lines[0]
    assert all(name in lines[0] for name in missing)


def test_cgroup_limits_are_checked_at_load(recoverd):
    rd = recoverd({"services": {"s": {"command": ["sleep", "600"],
                                      "cgroup": {"cpu_max": "50 100000"}}}}, start=False)
    out = rd.check_config()
    assert out.returncode == 2 and "cpu_max" in out.stderr and "recoverd.yaml:" in out.stderr
    rd.write_config({"services": {"s": {"pidfile": "/run/x.pid",
                                        "cgroup": {"pids_max": 10}}}})
    out = rd.check_config()
    assert out.returncode == 2 and "supervised service" in out.stderr
