"""A restart of recoverd does not bounce its services, and a crash of
recoverd never leaves two copies of one.

recoverd is SIGKILLed (a crash; its services outlive it) and started again
on the same state_dir: the services are adopted (same pid, no action, their
faults still handled), unless their configuration changed or --fresh is
given. Killed again and again in its first moments, it still ends with one
process per service, found by the journal's records or, where a record was
lost, by the service's cgroup or the marker in its environment. Every test
runs in both containment modes.

Each service is `sleep MARKER` (a marker unique to the test), by which its
copies are counted; what the test finds alive at the end it kills by pid.
"""

import os
import random
import signal
import sqlite3
import time

import pytest

from helpers import (kill_tracked, live_pids_running, pid_alive, proc_start_ticks,
                     start_in_mode, wait_running)

MODES = ["cgroup", "subreaper"]


class Sleepers:
    """Services that are each `sleep MARKER`, and their copies on the host."""

    def __init__(self, names):
        base = f"{4000 + random.randrange(1000)}.{os.getpid()}{random.randrange(10**5):05d}"
        self.argv = {n: ["sleep", f"{base}{i}"] for i, n in enumerate(names)}
        self.seen = {}

    def services(self, **over):
        return {n: {"command": argv, "stop": {"signal": "TERM", "grace": "2s"},
                    "restart": {"max": 20, "window": "60s", "stable": "100ms",
                                "backoff": {"initial": "50ms", "max": "200ms"}}, **over}
                for n, argv in self.argv.items()}

    def copies(self, name):
        pids = live_pids_running(self.argv[name])
        for pid in pids:
            ticks = proc_start_ticks(pid)
            if ticks is not None:
                self.seen.setdefault(pid, ticks)
        return pids

    def all_copies(self):
        return {n: self.copies(n) for n in self.argv}

    def kill_all(self):
        self.all_copies()
        for pid, ticks in self.seen.items():
            kill_tracked(pid, ticks)


def restart_rd(rd, mode, *extra):
    """Start rd again (after kill9) in mode, with extra arguments."""
    rd.start(extra_args=("--containment", mode, *extra))


def started_then_killed(rd, mode, name):
    """Start rd in mode, wait for name to run, SIGKILL recoverd: name's pid,
    still running."""
    start_in_mode(rd, mode)
    pid = wait_running(rd, name)["pid"]
    rd.kill9()
    assert pid_alive(pid), "a service must outlive a killed recoverd"
    return pid


def actions_since(rd, service, action_id):
    return rd.journal("SELECT id, strategy, status FROM actions WHERE service = ? AND id > ?",
                      (service, action_id))


def last_action_id(rd):
    rows = rd.journal("SELECT MAX(id) AS m FROM actions")
    return rows[0]["m"] or 0


@pytest.mark.parametrize("mode", MODES)
def test_a_killed_recoverd_adopts_its_services_and_still_recovers_them(recoverd, mode):
    s = Sleepers(["web"])
    rd = recoverd({"services": s.services()}, start=False)
    try:
        first = started_then_killed(rd, mode, "web")
        mark = last_action_id(rd)
        restart_rd(rd, mode)
        view = wait_running(rd, "web")
        assert view["pid"] == first, "the service was bounced, not adopted"
        assert view["adopted"] is True
        log = rd.log_text(since_start=True)
        assert f"web adopted pid={first}" in log
        assert "leftover-stopped" not in log and "spawned" not in log
        assert s.copies("web") == [first]
        assert view["uptime_ms"] > 0
        assert actions_since(rd, "web", mark) == []
        # Watched by pidfd although it is not recoverd's child: its death is
        # a fault, recovered by a restart like any.
        os.kill(first, signal.SIGKILL)
        view = wait_running(rd, "web", not_pid=first)
        second = view["pid"]
        assert view["adopted"] is False
        done = rd.wait_for(lambda: [(a["strategy"], a["status"])
                                    for a in actions_since(rd, "web", mark)
                                    if a["status"] != "executing"], what="the restart verified")
        assert done == [("restart", "completed")]
        assert s.copies("web") == [second]
        rd.stop()
        assert s.all_copies() == {"web": []}
    finally:
        s.kill_all()


@pytest.mark.parametrize("mode", MODES)
def test_a_changed_configuration_or_fresh_replaces_what_was_left(recoverd, mode):
    s = Sleepers(["web", "db"])
    rd = recoverd({"services": s.services()}, start=False)
    try:
        start_in_mode(rd, mode)
        web1 = wait_running(rd, "web")["pid"]
        db1 = wait_running(rd, "db")["pid"]
        rd.kill9()
        # web's environment changes; db's checks would not matter, its
        # process is the same.
        services = s.services()
        services["web"]["env"] = {"CHANGED": "1"}
        rd.write_config({"services": services})
        restart_rd(rd, mode)
        web2 = wait_running(rd, "web", not_pid=web1)["pid"]
        assert wait_running(rd, "db")["pid"] == db1
        rd.wait_for(lambda: not pid_alive(web1), what="the old web stopped")
        log = rd.log_text(since_start=True)
        assert f'web not-adopted pid={web1} why="its configuration changed"' in log
        assert f"db adopted pid={db1}" in log
        # Stopped before its successor started: never two at once.
        assert log.index(f"leftover-stopped pid={web1}") < log.index("web spawned")
        assert s.all_copies() == {"web": [web2], "db": [db1]}

        rd.kill9()
        restart_rd(rd, mode, "--fresh")
        web3 = wait_running(rd, "web", not_pid=web2)["pid"]
        db3 = wait_running(rd, "db", not_pid=db1)["pid"]
        log = rd.log_text(since_start=True)
        assert " adopted " not in log
        assert f'db not-adopted pid={db1} why="--fresh"' in log
        assert s.all_copies() == {"web": [web3], "db": [db3]}
        rd.stop()
        assert s.all_copies() == {"web": [], "db": []}
    finally:
        s.kill_all()


@pytest.mark.parametrize("mode", MODES)
def test_a_process_without_a_record_is_found_and_stopped(recoverd, mode):
    """A spawn whose record never reached the journal (recoverd died in
    between) is found by its cgroup or its marker."""
    s = Sleepers(["web"])
    rd = recoverd({"services": s.services()}, start=False)
    try:
        first = started_then_killed(rd, mode, "web")
        con = sqlite3.connect(rd.state_dir / "journal.db")
        with con:
            con.execute("DELETE FROM children")
        con.close()
        restart_rd(rd, mode)
        second = wait_running(rd, "web", not_pid=first)["pid"]
        log = rd.log_text(since_start=True)
        assert f'web leftover-found pid={first} why="no record of it"' in log
        assert log.index(f"leftover-stopped pid={first}") < log.index("web spawned")
        assert s.copies("web") == [second]
        rd.stop()
        assert s.copies("web") == []
    finally:
        s.kill_all()


@pytest.mark.parametrize("mode", MODES)
def test_recoverd_killed_again_and_again_at_start_leaves_one_copy_of_each(recoverd, mode):
    s = Sleepers(["a", "b", "c"])
    rd = recoverd({"services": s.services()}, start=False)
    try:
        start_in_mode(rd, mode)
        for name in s.argv:
            wait_running(rd, name)
        rd.kill9()
        # Killed at every moment of its start: before, during and after the
        # spawns and the adoptions.
        for _ in range(8):
            rd.start(wait=False, extra_args=("--containment", mode))
            time.sleep(random.uniform(0, 0.3))
            rd.proc.kill()
            rd.proc.wait(timeout=10)
            s.all_copies()
        restart_rd(rd, mode)
        for name in s.argv:
            wait_running(rd, name)
        copies = s.all_copies()
        assert all(len(p) == 1 for p in copies.values()), copies
        rd.stop()
        assert s.all_copies() == {"a": [], "b": [], "c": []}
        assert not any(pid_alive(p) for p in s.seen)
    finally:
        s.kill_all()


@pytest.mark.parametrize("mode", MODES)
def test_sigquit_exits_leaving_the_services_for_the_next_recoverd(recoverd, mode):
    """An upgrade: the old recoverd exits (0) without touching its services;
    the new one adopts them."""
    s = Sleepers(["web"])
    rd = recoverd({"services": s.services()}, start=False)
    try:
        start_in_mode(rd, mode)
        first = wait_running(rd, "web")["pid"]
        rd.snapshot_pids()
        rd.signal(signal.SIGQUIT)
        assert rd.proc.wait(timeout=15) == 0
        log = rd.log_text(since_start=True)
        assert f"web detached pid={first}" in log and "stopping" not in log
        assert s.copies("web") == [first]
        restart_rd(rd, mode)
        assert wait_running(rd, "web")["pid"] == first
        assert f"web adopted pid={first}" in rd.log_text(since_start=True)
        rd.stop()
        assert s.copies("web") == []
    finally:
        s.kill_all()


@pytest.mark.parametrize("mode", MODES)
def test_an_adopted_service_keeps_its_output_across_the_crash(recoverd, tmp_path, mode):
    """Its output goes through a FIFO in the state_dir that outlives
    recoverd: what it wrote while no recoverd ran reaches its log, in
    order, nothing lost, and it was never blocked or killed by SIGPIPE."""
    script = tmp_path / "ticker.sh"
    script.write_text("#!/bin/sh\ni=0\nwhile :; do i=$((i+1)); echo \"tick $i\"; "
                      "sleep 0.02; done\n")
    script.chmod(0o755)
    argv = [str(script)]
    rd = recoverd({"services": {"ticker": {"command": argv}}}, start=False)
    log = rd.state_dir / "logs" / "ticker.log"

    def ticks():
        """The numbers of the complete lines (the last may be half written)."""
        try:
            lines = log.read_text().split("\n")[:-1]
        except FileNotFoundError:
            return []
        return [int(line.split()[1]) for line in lines if line.startswith("tick ")]

    seen = {}
    try:
        start_in_mode(rd, mode)
        first = wait_running(rd, "ticker")["pid"]
        seen[first] = proc_start_ticks(first)
        rd.wait_for(lambda: len(ticks()) >= 5, what="some output")
        rd.kill9()
        # Written while no recoverd reads: it waits in the FIFO.
        time.sleep(0.3)
        assert pid_alive(first)
        restart_rd(rd, mode)
        assert wait_running(rd, "ticker")["pid"] == first
        behind = ticks()[-1]
        rd.wait_for(lambda: ticks()[-1] > behind + 5, what="output after the adoption")
        got = ticks()
        assert got == list(range(1, len(got) + 1)), "a line was lost or reordered"
        rd.stop()
        assert live_pids_running(argv) == []
    finally:
        for pid, t in seen.items():
            kill_tracked(pid, t)
