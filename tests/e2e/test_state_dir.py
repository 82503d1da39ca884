"""The state_dir end to end: one recoverd per state_dir, and a state_dir that
is not trusted blindly (owner, mode, symbolic links, the token file)."""

import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from helpers import (binary, demo_service, free_port, pid_alive, proc_start_ticks, read_token,
                     wait_running)


def _run_second(rd, timeout=20):
    """Run another recoverd on rd's configuration until it exits."""
    return subprocess.run([binary("recoverd"), "-c", str(rd.config_path)], capture_output=True,
                          text=True, timeout=timeout)


def test_a_second_instance_on_the_same_state_dir_exits_1_touching_nothing(recoverd):
    """A second recoverd on the same configuration finds the state_dir
    locked: it exits 1 naming the pid that holds it, and the first one's
    service keeps its process (no leftover stop, no fault)."""
    rd = recoverd({"services": {"web": demo_service(free_port())}})
    web = wait_running(rd, "web", min_uptime_ms=200)
    ticks = proc_start_ticks(web["pid"])

    second = _run_second(rd)

    assert second.returncode == 1, second
    assert f"pid {rd.pid}" in second.stderr, second.stderr
    assert "leftover" not in second.stderr
    assert pid_alive(web["pid"]) and proc_start_ticks(web["pid"]) == ticks
    assert rd.service("web")["pid"] == web["pid"]
    assert rd.api("/v1/faults") == []
    assert "leftover" not in rd.log_text()


# ---- a state_dir others could write to, or files planted in it ----

def _prepared(recoverd, mode=0o750):
    """A Recoverd (not started) whose state_dir and logs/ exist with mode."""
    rd = recoverd({"services": {"web": demo_service(free_port())}}, start=False)
    (rd.state_dir / "logs").mkdir(parents=True)
    os.chmod(rd.state_dir, mode)
    os.chmod(rd.state_dir / "logs", 0o750)
    return rd


def _refused(rd, *words):
    """Start rd: it must exit 1 before starting anything, saying words."""
    rd.start(wait=False)
    code = rd.proc.wait(timeout=20)
    log = rd.log_text()
    assert code == 1, log
    for w in words:
        assert w in log, (w, log)
    assert "service-started" not in log and "spawned" not in log, log
    return log


def _bait(tmp_path, mode=0o644):
    """A file an attacker would like recoverd to write or chmod."""
    bait = tmp_path / "bait"
    bait.write_text("precious\n")
    os.chmod(bait, mode)
    return bait


def _untouched(bait, mode=0o644):
    assert bait.read_text() == "precious\n"
    assert stat.S_IMODE(bait.stat().st_mode) == mode


def test_a_symlink_planted_as_a_service_log_is_refused(recoverd, tmp_path):
    rd = _prepared(recoverd)
    bait = _bait(tmp_path)
    (rd.state_dir / "logs" / "web.log").symlink_to(bait)
    _refused(rd, "web.log", "symbolic link")
    _untouched(bait)


def test_a_symlink_planted_as_the_journal_is_refused(recoverd, tmp_path):
    rd = _prepared(recoverd)
    bait = _bait(tmp_path)
    (rd.state_dir / "journal.db").symlink_to(bait)
    _refused(rd, "journal.db", "symbolic link")
    _untouched(bait)  # before, its mode became 0600
    assert not (tmp_path / "bait-wal").exists()


def test_a_token_readable_by_others_is_refused(recoverd):
    rd = _prepared(recoverd)
    token = rd.state_dir / "token"
    token.write_text("ab" * 32 + "\n")
    os.chmod(token, 0o644)
    _refused(rd, "token", "readable by others")
    assert not (rd.state_dir / "journal.db").exists()  # refused before the journal


@pytest.mark.parametrize("content,mode,owner,words", [
    ("ab" * 32 + "\n", 0o620, None, "writable by others than its owner"),
    ("secret\n", 0o600, None, "does not hold a token"),
    ("ab" * 32 + "\nmore\n", 0o600, None, "does not hold a token"),
    ("ab" * 32 + "\n", 0o600, 65534, "owned by uid 65534"),
], ids=["group-writable", "malformed", "trailing-text", "other-owner"])
def test_a_token_that_is_not_ours_alone_is_refused(recoverd, content, mode, owner, words):
    rd = _prepared(recoverd)
    token = rd.state_dir / "token"
    token.write_text(content)
    os.chmod(token, mode)
    if owner is not None:
        os.chown(token, owner, -1)
    _refused(rd, "token", words)


def test_a_group_readable_token_is_accepted(recoverd):
    """0640: members of recoverd's group may read it (and act)."""
    rd = _prepared(recoverd)
    token = rd.state_dir / "token"
    token.write_text("ab" * 32 + "\n")
    os.chmod(token, 0o640)
    rd.start()
    assert read_token(rd) == "ab" * 32


@pytest.mark.parametrize("mode,words", [(0o770, "writable by its group"),
                                        (0o757, "writable by others")])
def test_a_state_dir_others_can_write_is_refused(recoverd, tmp_path, mode, words):
    rd = _prepared(recoverd, mode)
    _refused(rd, str(rd.state_dir), words, "chmod go-w")
    assert not (rd.state_dir / "lock").exists()  # nothing created in it


def test_a_logs_dir_others_can_write_is_refused(recoverd):
    rd = _prepared(recoverd)
    os.chmod(rd.state_dir / "logs", 0o777)
    _refused(rd, "logs", "writable by others")


def test_a_state_dir_of_another_user_is_refused(recoverd):
    rd = _prepared(recoverd)
    os.chown(rd.state_dir, 65534, -1)
    _refused(rd, "owned by uid 65534")


# ---- a damaged journal ----

JUNK = bytes((i * 131 + 7) % 256 for i in range(8192))


def _assert_replaced(rd, words, content=None):
    """rd started on a damaged journal: moved aside (status and log say
    where and why), and supervision goes on with a fresh journal."""
    replaced = rd.api("/v1/status")["journal"]["replaced"]
    moved = Path(replaced["moved_to"])
    assert moved.parent == rd.state_dir and moved.name.startswith("journal.db.corrupt-"), moved
    assert words in replaced["why"], replaced
    if content is not None:
        assert moved.read_bytes() == content
    assert "journal-corrupt" in rd.log_text(since_start=True)
    web = wait_running(rd, "web", min_uptime_ms=200)
    os.kill(web["pid"], signal.SIGKILL)
    wait_running(rd, "web", not_pid=web["pid"])
    faults = rd.api("/v1/faults")
    assert [f["id"] for f in faults] == [1] and "signal 9" in faults[0]["description"]


def test_a_garbage_journal_is_moved_aside_and_supervision_goes_on(recoverd):
    rd = _prepared(recoverd)
    journal = rd.state_dir / "journal.db"
    journal.write_bytes(JUNK)
    os.chmod(journal, 0o600)
    rd.start()
    _assert_replaced(rd, "not a database", JUNK)


def test_a_truncated_journal_is_moved_aside_and_supervision_goes_on(recoverd):
    rd = recoverd({"services": {"web": demo_service(free_port())}})
    web = wait_running(rd, "web", min_uptime_ms=200)
    os.kill(web["pid"], signal.SIGKILL)
    wait_running(rd, "web", not_pid=web["pid"])
    rd.stop()
    journal = rd.state_dir / "journal.db"
    assert not (rd.state_dir / "journal.db-wal").exists()  # checkpointed at the stop
    size = journal.stat().st_size
    os.truncate(journal, size // 2)
    rd.start()
    _assert_replaced(rd, "malformed")


@pytest.fixture
def read_only(tmp_path):
    """Make a directory read-only with a bind mount (even root cannot write)."""
    mounted = []

    def make(path):
        r = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True,
                           text=True)
        if r.returncode != 0:
            pytest.skip(f"cannot bind-mount here: {r.stderr.strip()}")
        mounted.append(path)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
    yield make
    for path in mounted:
        subprocess.run(["umount", str(path)], check=False)


def test_a_damaged_journal_in_an_unwritable_state_dir_still_exits_1(recoverd, read_only):
    rd = _prepared(recoverd)
    journal = rd.state_dir / "journal.db"
    journal.write_bytes(JUNK)
    os.chmod(journal, 0o600)
    (rd.state_dir / "lock").touch(mode=0o600)
    (rd.state_dir / "token").write_text("ab" * 32 + "\n")
    os.chmod(rd.state_dir / "token", 0o600)
    read_only(rd.state_dir)
    _refused(rd, "Read-only file system")
    assert journal.read_bytes() == JUNK


# ---- a bounded journal ----

def test_history_older_than_max_age_is_pruned_while_recoverd_runs(recoverd):
    """Two faults, made 40 days old in the journal; with max_age 30d the
    running recoverd prunes the older one with its action, and the old
    transitions (a timer, in batches); the newest fault stays while it is
    the newest (the ids go on from it), and what is recent stays."""
    rd = recoverd({"services": {"web": demo_service(free_port())},
                   "journal": {"max_age": "30d", "max_size": "64MiB"}})
    for _ in range(2):
        web = wait_running(rd, "web", min_uptime_ms=200)
        os.kill(web["pid"], signal.SIGKILL)
        wait_running(rd, "web", not_pid=web["pid"])
    rd.wait_for(lambda: len(rd.journal("SELECT id FROM faults WHERE resolved_ms IS NOT NULL"))
                == 2, what="two resolved faults")
    rd.stop()
    shift = 40 * 86400 * 1000
    con = sqlite3.connect(rd.state_dir / "journal.db")
    with con:
        con.execute("UPDATE faults SET opened_ms = opened_ms - ?, resolved_ms = resolved_ms - ?",
                    (shift, shift))
        con.execute("UPDATE actions SET created_ms = created_ms - ?, "
                    "started_ms = started_ms - ?, finished_ms = finished_ms - ?",
                    (shift, shift, shift))
        con.execute("UPDATE transitions SET at_ms = at_ms - ?", (shift,))
    con.close()

    rd.start()
    # The newest fault and its action stay whatever their age: ids go on from them.
    rd.wait_for(lambda: rd.journal("SELECT group_concat(id) AS ids FROM faults")[0]["ids"] == "2",
                what="the older fault pruned")
    assert rd.journal("SELECT group_concat(fault_id) AS f FROM actions")[0]["f"] == "2"
    day_ago = int(time.time() * 1000) - 86400 * 1000
    rd.wait_for(lambda: rd.journal("SELECT count(*) AS n FROM transitions WHERE at_ms < ?",
                                   (day_ago,))[0]["n"] == 0, what="the old transitions pruned")
    web = wait_running(rd, "web", min_uptime_ms=200)  # supervision as before
    os.kill(web["pid"], signal.SIGKILL)
    wait_running(rd, "web", not_pid=web["pid"])
    # Ids went on (3, not 1); now that 3 is the newest, the old 2 goes too.
    rd.wait_for(lambda: [f["id"] for f in rd.api("/v1/faults")] == [3],
                what="only the new fault 3 left")


# ---- recoverctl finds the token as recoverd finds its state_dir ----

def _ctl_hold(rd, cwd, env, user=None):
    argv = [binary("recoverctl"), "--api", f"127.0.0.1:{rd.api_port}", "hold", "web"]
    if user is not None:
        argv = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *argv]
    clean = {k: v for k, v in os.environ.items()
             if k not in ("RECOVERD_TOKEN_FILE", "XDG_STATE_HOME")}
    return subprocess.run(argv, capture_output=True, text=True, timeout=10, cwd=cwd,
                          env=dict(clean, **env))


def test_recoverctl_reads_the_default_state_dirs_token_never_the_working_directorys(recoverd):
    """As another user recoverctl reads $XDG_STATE_HOME/recoverd/token; as
    root /var/lib/recoverd/token; a token in ./var (the old default) is
    never read, whatever the working directory."""
    rd = recoverd({"services": {"web": demo_service(free_port())}})
    wait_running(rd, "web")
    token = read_token(rd)
    top = Path(tempfile.mkdtemp(prefix="recoverctl-"))  # outside pytest's 0700 tree
    try:
        os.chmod(top, 0o755)
        decoy = top / "cwd"
        (decoy / "var").mkdir(parents=True)
        (decoy / "var" / "token").write_text(token + "\n")
        os.chmod(decoy / "var" / "token", 0o644)
        xdg_token = top / "xdg" / "recoverd" / "token"
        xdg_token.parent.mkdir(parents=True)
        xdg_token.write_text(token + "\n")
        for p in (top / "xdg", xdg_token.parent, xdg_token):
            os.chown(p, 65534, 65534)

        r = _ctl_hold(rd, decoy, {"XDG_STATE_HOME": str(top / "xdg")}, user=65534)
        assert r.returncode == 0, r
        assert rd.service("web")["held"] is True
        assert _ctl_hold(rd, decoy, {"XDG_STATE_HOME": str(top / "xdg")}).returncode != 0

        r = _ctl_hold(rd, decoy, {})  # root: /var/lib/recoverd/token, not ./var/token
        assert r.returncode != 0 and "/var/lib/recoverd/token" in r.stderr, r
    finally:
        shutil.rmtree(top)


def test_a_journal_over_max_size_is_pruned_under_it_at_start(recoverd):
    """3 MiB of resolved faults from yesterday (young for max_age) and an
    open fault of a service no longer configured; max_size 1MiB: right
    after the start the pages in use fall under the cap, the file does not
    grow, and the open fault stays."""
    rd = recoverd({"services": {"web": demo_service(free_port())},
                   "journal": {"max_size": "1MiB"}})
    wait_running(rd, "web")
    rd.stop()
    db = rd.state_dir / "journal.db"
    day_ago = int(time.time() * 1000) - 86400 * 1000
    con = sqlite3.connect(db)
    with con:
        con.execute("INSERT INTO faults (id, service, check_name, type, severity, impact, "
                    "description, context, opened_ms) VALUES (1, 'gone', 'process', "
                    "'software', 'high', 'service', 'still open', '{}', ?)", (day_ago,))
        con.executemany("INSERT INTO faults (id, service, check_name, type, severity, impact, "
                        "description, context, opened_ms, resolved_ms) VALUES "
                        "(?, 'web', 'http', 'software', 'high', 'service', 'http 500', ?, ?, ?)",
                        [(i, '{"body":"%s"}' % ("x" * 200), day_ago + i, day_ago + i + 1)
                         for i in range(2, 12000)])
    con.close()
    size_before = db.stat().st_size
    assert size_before > 3 << 20

    def used():
        rows = rd.journal("SELECT (SELECT page_count FROM pragma_page_count()) - "
                          "(SELECT freelist_count FROM pragma_freelist_count()) AS p, "
                          "(SELECT page_size FROM pragma_page_size()) AS s")
        return rows[0]["p"] * rows[0]["s"]
    rd.start()
    rd.wait_for(lambda: used() <= 1 << 20, what="the pages in use under max_size")
    assert db.stat().st_size <= size_before  # freed pages are reused, never added
    assert rd.journal("SELECT resolved_ms FROM faults WHERE id = 1") == [{"resolved_ms": None}]
    assert "journal-pruning reason=size" in rd.log_text(since_start=True)
