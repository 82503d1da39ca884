"""Least privilege end to end: a service runs as its user, with its groups,
umask, limits and no_new_privs, as /proc shows the running process; its
command checks run as that user too; a user that does not exist fails that
one service (with the reason in the API) while the others run; and
--check-config names every program, file, directory and user it cannot
use, at file:line:col."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from helpers import binary, post, read_token

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


def _run(*argv):
    subprocess.run(argv, check=True, capture_output=True, timeout=30)


@pytest.fixture
def test_user():
    """A user made for the test (useradd) with a supplementary group of its
    own, removed afterwards: (name, uid, gid of its primary group, gid of
    the supplementary one)."""
    tag = uuid.uuid4().hex[:8]
    user, extra = f"rdu{tag}", f"rdg{tag}"
    _run("groupadd", extra)
    try:
        _run("useradd", "--no-create-home", "--user-group", "--groups", extra,
             "--shell", "/usr/sbin/nologin", user)
    except Exception:
        _run("groupdel", extra)
        raise
    try:
        ids = subprocess.run(["id", "-u", user], capture_output=True, text=True, check=True)
        gid = subprocess.run(["id", "-g", user], capture_output=True, text=True, check=True)
        extra_gid = subprocess.run(["getent", "group", extra], capture_output=True, text=True,
                                   check=True).stdout.split(":")[2]
        yield user, int(ids.stdout), int(gid.stdout), int(extra_gid)
    finally:
        subprocess.run(["userdel", user], capture_output=True, timeout=30)
        subprocess.run(["groupdel", extra], capture_output=True, timeout=30)


def _status(pid):
    """The lines of /proc/PID/status as a dict of str."""
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def _limits(pid):
    """/proc/PID/limits: name -> (soft, hard) as str."""
    out = {}
    with open(f"/proc/{pid}/limits") as f:
        next(f)
        for line in f:
            m = re.match(r"(.+?)\s{2,}(\S+)\s+(\S+)", line)
            out[m.group(1)] = (m.group(2), m.group(3))
    return out


def _running_pid(rd, name):
    def up():
        v = rd.service(name)
        return v["pid"] if v["process"] == "running" else None
    return rd.wait_for(up, what=f"{name} running")


@pytest.fixture
def shared_dir():
    """A directory any user may write into (pytest's tmp_path is under
    root's 0700 /tmp/pytest-of-root), removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix="recoverd-priv-"))
    os.chmod(d, 0o1777)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_service_runs_with_its_user_groups_umask_limits_and_no_new_privs(recoverd, test_user):
    user, uid, gid, extra_gid = test_user
    rd = recoverd({"services": {
        "app": {"command": ["/bin/sleep", "600"], "user": user, "umask": "027",
                "no_new_privs": True,
                "limits": {"nofile": 1000, "core": 0, "nproc": 500, "as": "1GiB",
                           "fsize": "infinity", "cpu": 3600}},
        "plain": {"command": ["/bin/sleep", "600"]},
    }})
    st = _status(_running_pid(rd, "app"))
    assert st["Uid"].split() == [str(uid)] * 4
    assert st["Gid"].split() == [str(gid)] * 4
    assert sorted(map(int, st["Groups"].split())) == sorted({gid, extra_gid})
    assert st["Umask"] == "0027"
    assert st["NoNewPrivs"] == "1"
    lim = _limits(rd.service("app")["pid"])
    assert lim["Max open files"] == ("1000", "1000")
    assert lim["Max core file size"] == ("0", "0")
    assert lim["Max processes"] == ("500", "500")
    assert lim["Max address space"] == (str(1 << 30), str(1 << 30))
    assert lim["Max file size"] == ("unlimited", "unlimited")
    assert lim["Max cpu time"] == ("3600", "3600")
    # Without user: recoverd's own user (root here), umask and no_new_privs as its own.
    plain = _status(_running_pid(rd, "plain"))
    assert plain["Uid"].split() == ["0"] * 4
    assert plain["NoNewPrivs"] == "0"


def test_group_alone_keeps_the_user_and_drops_other_groups(recoverd):
    rd = recoverd({"services": {"app": {"command": ["/bin/sleep", "600"], "group": "nogroup"}}})
    st = _status(_running_pid(rd, "app"))
    assert st["Uid"].split() == ["0"] * 4
    assert st["Gid"].split() == ["65534"] * 4
    assert st["Groups"].split() == []


def test_command_checks_and_repairs_run_as_the_service_user(recoverd, test_user, shared_dir):
    user, uid, _, _ = test_user
    out = shared_dir
    as_service, as_root, repaired = out / "check-uid", out / "root-uid", out / "repair-uid"
    rd = recoverd({"services": {"app": {
        "command": ["/bin/sleep", "600"], "user": user,
        "recovery": ["repair"],
        "repair": {"command": ["/bin/sh", "-c", f"id -u > {repaired}"], "timeout": "5s"},
        "checks": [
            {"command": {"argv": ["/bin/sh", "-c", f"id -u > {as_service}.tmp; "
                                  f"mv {as_service}.tmp {as_service}"],
                         "interval": "100ms", "name": "mine"}},
            # A check's own user: wins over the service's.
            {"command": {"argv": ["/bin/sh", "-c", f"id -u > {as_root}.tmp; "
                                  f"mv {as_root}.tmp {as_root}"],
                         "interval": "100ms", "user": "root", "name": "rooted"}},
        ]}}})
    rd.wait_for(lambda: as_service.exists() and as_root.exists(), what="both checks ran")
    assert as_service.read_text().strip() == str(uid)
    assert as_root.read_text().strip() == "0"
    # An operator's repair runs as the service's user as well.
    fault = rd.journal("SELECT id FROM faults")  # none open: make one with the API
    assert fault == []
    token = read_token(rd)
    status, body = post(rd, "/v1/services/app/hold", token=token)
    assert status == 200, body
    os.kill(rd.service("app")["pid"], signal.SIGKILL)
    fid = rd.wait_for(lambda: rd.journal("SELECT id FROM faults WHERE resolved_ms IS NULL"),
                      what="the kill's fault")[0]["id"]
    status, body = post(rd, f"/v1/faults/{fid}/recover", {"strategy": "repair"}, token=token)
    assert status == 200, body
    rd.wait_for(lambda: repaired.exists() and repaired.read_text().strip(), what="repair ran")
    assert repaired.read_text().strip() == str(uid)


def test_unknown_user_fails_only_that_service(recoverd):
    rd = recoverd({"services": {
        "ghost": {"command": ["/bin/sleep", "600"], "user": "recoverd-no-such-user"},
        "fine": {"command": ["/bin/sleep", "600"]},
    }})
    _running_pid(rd, "fine")
    ghost = rd.wait_for(lambda: (v := rd.service("ghost"))["state"] == "failed" and v,
                        what="ghost failed")
    assert ghost["pid"] is None
    assert re.fullmatch(rf"{re.escape(str(rd.config_path))}:\d+:\d+: error: user "
                        r"'recoverd-no-such-user' does not exist", ghost["config_error"]), ghost
    faults = rd.api("/v1/faults?active=1")
    mine = [f for f in (faults if isinstance(faults, list) else faults["faults"])
            if f["service"] == "ghost"]
    assert len(mine) == 1 and mine[0]["type"] == "configuration", mine
    assert "recoverd-no-such-user" in mine[0]["description"]
    # Nothing of it may run: an operator's restart is refused.
    status, body = post(rd, "/v1/services/ghost/restart", token=read_token(rd))
    assert status == 409, body
    assert "does not exist" in body["error"]
    assert rd.service("ghost")["pid"] is None


def test_reload_runs_a_service_once_its_user_exists(recoverd, test_user, tmp_path):
    """The same text, another answer from NSS: a reload resolves the names
    again (off the loop) and the failed service runs."""
    user, uid, _, _ = test_user
    later = f"{user}x"
    rd = recoverd({"services": {"app": {"command": ["/bin/sleep", "600"], "user": later}}})
    rd.wait_for(lambda: rd.service("app")["state"] == "failed", what="app failed")
    _run("useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", later)
    try:
        new_uid = int(subprocess.run(["id", "-u", later], capture_output=True, text=True,
                                     check=True).stdout)
        rd.signal(signal.SIGHUP)
        pid = _running_pid(rd, "app")
        assert _status(pid)["Uid"].split() == [str(new_uid)] * 4
        assert rd.service("app")["config_error"] is None
        # The configuration fault closed with the reload that fixed it.
        assert rd.journal("SELECT id FROM faults WHERE resolved_ms IS NULL") == []
    finally:
        subprocess.run(["userdel", later], capture_output=True, timeout=30)


def test_missing_program_fails_only_that_service(recoverd):
    rd = recoverd({"services": {
        "gone": {"command": ["/nonexistent/recoverd-prog"]},
        "fine": {"command": ["/bin/sleep", "600"]},
    }})
    _running_pid(rd, "fine")
    gone = rd.wait_for(lambda: (v := rd.service("gone"))["state"] == "failed" and v,
                       what="gone failed")
    assert "command: '/nonexistent/recoverd-prog' does not exist" in gone["config_error"]
    assert "spawned" not in [e for e in rd.log_text().split() if "gone" in e]


def test_check_config_names_every_problem_at_its_place(recoverd, tmp_path):
    rd = recoverd(start=False)
    secret = tmp_path / "dir-not-file"
    secret.mkdir()
    plain = tmp_path / "plain-file"
    plain.write_text("#!/bin/sh\n")
    plain.chmod(0o644)
    rd.write_config(
        f"state_dir: {rd.state_dir}\n"
        f"services:\n"
        f"  a:\n"
        f"    command: [recoverd-no-such-program]\n"              # 4:15
        f"    user: recoverd-no-such-user\n"                      # 5:11
        f"  b:\n"
        f"    pidfile: /nonexistent-recoverd/b.pid\n"             # 7:14
        f"    start: [{plain}]\n"                                # 8:13
        f"    repair: {{ command: [/bin/true], group: recoverd-no-such-group }}\n"  # 9:44
        f"    checks:\n"
        f"      - command: {{ argv: [/nonexistent/check_x] }}\n"  # 11:27
        f"      - postgres: {{ dsn: \"host=127.0.0.1\", password_file: {secret} }}\n"  # 12:59
        f"  c:\n"
        f"    command: [/bin/sleep, \"1\"]\n"
        f"    cwd: /nonexistent-recoverd-cwd\n")                  # 15:10
    r = rd.check_config()
    assert r.returncode == 2, r
    assert r.stdout == ""
    path = re.escape(str(rd.config_path))
    want = [
        r"4:15: error: command: 'recoverd-no-such-program' not found in PATH",
        r"5:11: error: user 'recoverd-no-such-user' does not exist",
        r"7:14: error: pidfile directory: '/nonexistent-recoverd' does not exist",
        rf"8:13: error: start: '{re.escape(str(plain))}' is not executable by recoverd's user",
        r"9:44: error: group 'recoverd-no-such-group' does not exist",
        r"11:27: error: check 'command' argv: '/nonexistent/check_x' does not exist",
        rf"12:59: error: check 'postgres' password_file: '{re.escape(str(secret))}' is not a "
        r"regular file",
        r"15:10: error: cwd: '/nonexistent-recoverd-cwd' does not exist",
    ]
    lines = r.stderr.splitlines()
    assert len(lines) == len(want), r.stderr
    for line, w in zip(lines, want):
        assert re.match(path + ":" + w, line), (line, w)


def test_without_root_only_its_own_user_is_usable(shared_dir):
    """recoverd run as nobody (setpriv) may name itself, and nobody else."""
    cfg = shared_dir / "recoverd.yaml"
    cfg.write_text("services:\n"
                   "  mine:\n"
                   "    command: [/bin/true]\n"
                   "    user: nobody\n"
                   "    limits: { core: 0 }\n"
                   "  other:\n"
                   "    command: [/bin/true]\n"
                   "    user: daemon\n"                   # 8:11
                   "    limits: { nofile: infinity }\n")  # 9:23
    os.chmod(cfg, 0o644)
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        binary("recoverd"), "--check-config", "-c", str(cfg)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r
    lines = r.stderr.splitlines()
    assert len(lines) == 2, r.stderr
    assert lines[0] == (f"{cfg}:8:11: error: recoverd runs as uid 65534, not root: it cannot "
                        "run programs as user 'daemon'")
    assert lines[1].startswith(f"{cfg}:9:23: error: limits: nofile above"), lines[1]
