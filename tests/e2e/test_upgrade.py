"""Upgrades end to end: a journal written by an older recoverd
(fixtures/journal-v1.sql, made by fixtures/make_journal_v1.py with the
recoverd its header names) is adopted by this one: its open faults keep
their ids and resolve once their services are healthy, the action that
was executing is closed, its history stays, and the child it records is
stopped when it is still that process and left alone when it is not."""

import signal
import sqlite3
import subprocess
from pathlib import Path

from helpers import (demo_cmd, demo_service, free_port, pid_alive, proc_start_ticks,
                     wait_http_ok, wait_running)

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "journal-v1.sql"
OPEN_FAULTS = {2: ("web", "http"), 3: ("worker", "process")}  # what the fixture left open
EXECUTING_ACTION = 2                                          # worker's restart, in its backoff
JOURNAL_TROUBLE = ("journal-error", "journal-failed", "journal-behind", "journal-dropping",
                   "journal-lost")


def _fixture_rows():
    """Every table of the fixture as lists of dicts, from an in-memory copy."""
    con = sqlite3.connect(":memory:")
    try:
        con.executescript(FIXTURE.read_text())
        con.row_factory = sqlite3.Row
        return {t: [dict(r) for r in con.execute(f"SELECT * FROM {t} ORDER BY rowid")]
                for t in ("faults", "actions", "transitions", "children")}
    finally:
        con.close()


def _install_v1(rd, child):
    """state_dir/journal.db from the fixture; web's child record names child
    ((pid, start ticks)) instead of the fixture's long-gone process."""
    rd.state_dir.mkdir(parents=True)
    con = sqlite3.connect(rd.state_dir / "journal.db")
    try:
        con.executescript(FIXTURE.read_text())
        con.execute("UPDATE children SET pid = ?, start_ticks = ? WHERE service = 'web'", child)
        con.commit()
    finally:
        con.close()


def _gone_process():
    """(pid, start ticks) of a process that has exited and been reaped."""
    p = subprocess.Popen(["sleep", "0"])
    ticks = proc_start_ticks(p.pid) or 1
    p.wait(timeout=5)
    return p.pid, ticks


def _start_v1(recoverd, child, web_port=None):
    web_port = web_port or free_port()
    rd = recoverd({"services": {"web": demo_service(web_port),
                                "worker": demo_service(free_port())}}, start=False)
    _install_v1(rd, child)
    rd.start()
    return rd


def _columns_of(rows, like):
    """rows cut down to the columns of the rows like."""
    return [{k: r[k] for k in like[0]} for r in rows]


def _journal_sound(rd):
    """Every write since the start reached the disk."""
    assert rd.api("/v1/status")["journal"]["state"] == "ok"
    log = rd.log_text(since_start=True)
    assert not [e for e in JOURNAL_TROUBLE if f" {e}" in log], log[-4000:]


def test_v1_journal_open_faults_are_adopted_and_resolve(recoverd):
    old = _fixture_rows()
    rd = _start_v1(recoverd, _gone_process())
    wait_running(rd, "web")
    wait_running(rd, "worker")
    for fid, (service, check) in OPEN_FAULTS.items():
        rd.wait_for(lambda: rd.api(f"/v1/faults/{fid}")["resolved_at"],
                    what=f"v1 fault {fid} of {service} resolved")
        f = rd.api(f"/v1/faults/{fid}")
        assert (f["service"], f["check"]) == (service, check)

    # Adopted, not replaced: no new fault for what the old journal had open.
    faults = rd.api("/v1/faults")
    assert sorted(f["id"] for f in faults) == [f["id"] for f in old["faults"]], faults
    # The resolved one is untouched, the history stays in order (a newer
    # schema may add columns: compare the old ones).
    assert _columns_of(rd.journal("SELECT * FROM faults WHERE id = 1"), old["faults"]) == \
        old["faults"][:1]
    now = rd.journal("SELECT * FROM transitions ORDER BY id")[:len(old["transitions"])]
    assert _columns_of(now, old["transitions"]) == old["transitions"]
    # The action that was executing is closed.
    acts = rd.api("/v1/actions")
    interrupted = next(a for a in acts if a["id"] == EXECUTING_ACTION)
    assert interrupted["status"] not in ("pending", "executing") and interrupted["finished_at"]
    completed = next(a for a in acts if a["id"] == 1)
    assert completed["status"] == "completed"
    assert rd.journal("PRAGMA user_version")[0]["user_version"] >= 1
    _journal_sound(rd)


def test_v1_journal_leftover_child_is_stopped(recoverd):
    web_port = free_port()
    # The process a killed v1 recoverd left running: web, on web's port.
    leftover = subprocess.Popen(demo_cmd(web_port), stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_http_ok(web_port)
        rd = _start_v1(recoverd, (leftover.pid, proc_start_ticks(leftover.pid)), web_port)
        rd.wait_for(lambda: not pid_alive(leftover.pid), what="the leftover web stopped")
        new = wait_running(rd, "web", not_pid=leftover.pid)
        child = rd.wait_for(lambda: rd.journal("SELECT pid FROM children WHERE service = 'web'"),
                            what="web's new child record")
        assert child == [{"pid": new["pid"]}]
        rd.wait_for(lambda: rd.api("/v1/faults/2")["resolved_at"], what="v1 fault 2 resolved")
        assert max(f["id"] for f in rd.api("/v1/faults")) == 3  # no new fault
        _journal_sound(rd)
    finally:
        if leftover.poll() is None:
            leftover.kill()
        leftover.wait(timeout=5)


def test_v1_journal_child_record_of_another_process_is_left_alone(recoverd):
    # The pid the record names is another process now (its start time differs);
    # recoverd reads the records before it spawns anything.
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        ticks = proc_start_ticks(other.pid)
        rd = _start_v1(recoverd, (other.pid, ticks + 1))
        wait_running(rd, "web")
        rd.wait_for(lambda: rd.api("/v1/faults/2")["resolved_at"], what="v1 fault 2 resolved")
        assert pid_alive(other.pid) and proc_start_ticks(other.pid) == ticks
        assert f"pid={other.pid}" not in rd.log_text(since_start=True)
        _journal_sound(rd)
    finally:
        other.send_signal(signal.SIGKILL)
        other.wait(timeout=5)
