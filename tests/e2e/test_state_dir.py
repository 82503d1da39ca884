"""The state_dir end to end: one recoverd per state_dir, and a state_dir that
is not trusted blindly (owner, mode, symbolic links, the token file)."""

import os
import stat
import subprocess

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
