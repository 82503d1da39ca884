"""Real PostgreSQL and Redis as external services of recoverd: recoverd
watches their pid (pidfile), checks them with its postgres and redis
detectors, and when the server stops, its configured start program brings
it back. A dependent service is a symptom, not restarted. Passwords never
reach the log, the API or the journal."""

import json
import os
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from dbfixtures import PG_BIN, REDIS_BIN, PostgresServer
from helpers import demo_service, free_port, pid_alive, wait_running

pytestmark = pytest.mark.skipif(not (PG_BIN / "postgres").exists() or not REDIS_BIN.exists(),
                                reason="postgresql or redis-server not installed")


def _pidfile_pid(path):
    try:
        return int(Path(path).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _kill_pidfile(path, sig=signal.SIGTERM):
    """Stop a server our test's config started (its pid from its pidfile)."""
    pid = _pidfile_pid(path)
    if pid and pid_alive(pid):
        os.kill(pid, sig)
    return pid


@pytest.fixture
def redis_conf(tmp_path):
    d = tmp_path / "redis"
    d.mkdir()
    port, password = free_port(), "Sekr1t-rd-e2e"
    conf = d / "redis.conf"
    conf.write_text(f"port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\n"
                    f"requirepass {password}\ndaemonize yes\npidfile {d}/redis.pid\n"
                    f"dir {d}\nlogfile {d}/redis.log\n")
    (d / "password").write_text(password + "\n")
    yield {"dir": d, "port": port, "password": password, "conf": conf,
           "pidfile": d / "redis.pid", "password_file": d / "password"}
    _kill_pidfile(d / "redis.pid", signal.SIGKILL)


@pytest.fixture
def pg(tmp_path):
    directory = tempfile.mkdtemp(prefix="recoverd-pg-e2e-")
    os.chmod(directory, 0o755)
    server = PostgresServer(directory, free_port(), password="Sekr1t-pg-e2e")
    yield server
    _kill_pidfile(server.data / "postmaster.pid", signal.SIGKILL)
    subprocess.run(["rm", "-rf", directory], check=False)


def _pg_service(server, delay_s=0, **extra):
    """postgres as an external service: pg_ctl starts it (as the postgres
    user when we are root), postmaster.pid names it. delay_s makes its
    recovery slow enough to watch."""
    opts = (f"-p {server.port} -k {server.dir} -c listen_addresses=127.0.0.1 "
            f"-c fsync=off -c max_connections=50")
    start = [str(PG_BIN / "pg_ctl"), "-D", str(server.data), "-o", opts,
             "-l", str(server.dir / "pg.log"), "-w", "-t", "20", "start"]
    if os.getuid() == 0:
        start = ["runuser", "-u", "postgres", "--"] + start
    if delay_s:
        start = ["/bin/sh", "-c", f'sleep {delay_s}; exec "$@"', "start"] + start
    svc = {"pidfile": str(server.data / "postmaster.pid"), "start": start,
           "verify": "20s",
           "checks": [{"postgres": {"dsn": server.dsn, "interval": "200ms", "timeout": "2s",
                                    "fall": 1, "rise": 1}}]}
    svc.update(extra)
    return svc


def _fault(rd, service, check):
    for f in rd.api("/v1/faults?limit=1000"):
        if f["service"] == service and f["check"] == check:
            return f
    return None


def test_redis_stopped_is_restarted_by_its_start_program(recoverd, redis_conf):
    c = redis_conf
    rd = recoverd({"services": {"cache": {
        "pidfile": str(c["pidfile"]), "start": [str(REDIS_BIN), str(c["conf"])],
        "checks": [{"redis": {"address": f"127.0.0.1:{c['port']}",
                              "password_file": str(c["password_file"]),
                              "interval": "200ms", "timeout": "1s", "fall": 1, "rise": 1}}]}}})
    # Not running at first: the start program is the first recovery.
    first = rd.wait_for(lambda: (v := rd.service("cache"))["pid"] and
                        v["state"] in ("recovered", "normal") and v, timeout=15,
                        what="redis started by recoverd")
    old = first["pid"]
    assert old == _pidfile_pid(c["pidfile"])

    _kill_pidfile(c["pidfile"])  # the real server stops
    back = rd.wait_for(lambda: (v := rd.service("cache"))["pid"] not in (None, old) and
                       v["state"] == "recovered" and v, timeout=15, what="redis back")
    assert back["kind"] == "external"
    assert back["pid"] == _pidfile_pid(c["pidfile"]) and not pid_alive(old)
    # One fault for the stop: its process gone, or its redis check failing
    # (whichever recoverd saw first); recovered by the start program.
    later = [f for f in rd.api("/v1/faults") if f["opened_at"] > first["since"]]
    assert len(later) == 1 and later[0]["resolved_at"] is not None
    assert later[0]["check"] in ("process", "redis")
    acts = [a for a in rd.api("/v1/actions") if a["fault_id"] == later[0]["id"]]
    assert [(a["strategy"], a["status"]) for a in acts] == [("restart", "completed")]
    assert acts[0]["params"]["program"] == "start"
    assert next(ch for ch in back["checks"] if ch["kind"] == "redis")["ok"] is True


def test_postgres_stopped_is_restarted_and_dependent_is_a_symptom(recoverd, pg):
    web_port = free_port()
    web = demo_service(web_port, checks=[{"postgres": {"dsn": pg.dsn, "interval": "200ms",
                                                       "timeout": "2s", "fall": 1}}])
    web["depends_on"] = ["db"]
    rd = recoverd({"services": {"db": _pg_service(pg, delay_s=2), "web": web}})
    rd.wait_for(lambda: rd.service("db")["state"] in ("recovered", "normal")
                and rd.service("db")["pid"], timeout=30, what="postgres started")
    # Start order: web's process came only once db was verified.
    spawned = [l for l in rd.log_text().splitlines() if " web spawned " in l]
    verified = [l for l in rd.log_text().splitlines()
                if " db action-finished " in l and "status=completed" in l]
    assert spawned and verified and spawned[0][:24] >= verified[0][:24]
    w = wait_running(rd, "web", timeout=20)
    # Past web's start-up verification (rise 2): its failures count from now.
    rd.wait_for(lambda: rd.service("web")["checks"][0]["consecutive_successes"] >= 3,
                what="web verified")
    web_pid, db_pid = w["pid"], rd.service("db")["pid"]

    _kill_pidfile(pg.data / "postmaster.pid", signal.SIGINT)  # fast shutdown
    rd.wait_for(lambda: rd.service("db")["pid"] not in (None, db_pid)
                and rd.service("db")["state"] == "recovered", timeout=30, what="postgres back")
    rd.wait_for(lambda: (f := _fault(rd, "web", "postgres")) and f["resolved_at"], timeout=20,
                what="web's symptom resolved")

    f = _fault(rd, "web", "postgres")
    db_faults = {x["id"]: x for x in rd.api("/v1/faults?limit=1000") if x["service"] == "db"}
    root = db_faults[f["context"]["root_cause"]["fault"]]
    assert f["context"]["root_cause"]["service"] == "db"
    assert root["resolved_at"] is not None and root["opened_at"] <= f["opened_at"]
    assert "symptom of db" in f["description"]
    # Not recovered on its own: no action for web, same process throughout.
    assert [a for a in rd.api("/v1/actions") if a["service"] == "web"] == []
    assert rd.service("web")["pid"] == web_pid
    # db's fault (its process gone, or its own check failing: whichever
    # was seen first) was recovered by its start program.
    assert all(x["resolved_at"] for x in db_faults.values())
    db_actions = [a for a in rd.api("/v1/actions") if a["service"] == "db"
                  and a["created_at"] >= root["opened_at"]]
    assert db_actions and db_actions[0]["strategy"] == "restart"
    assert db_actions[0]["status"] == "completed"


def test_passwords_never_reach_log_api_or_journal(recoverd, pg, redis_conf):
    wrong_pg, wrong_rd = "WrongPg-s3cr3t", "WrongRd-s3cr3t"
    (redis_conf["dir"] / "wrong").write_text(wrong_rd + "\n")
    bad_dsn = pg.dsn_without_password + f" password={wrong_pg}"
    rd = recoverd({"services": {
        "db": _pg_service(pg),
        "probe": {"depends_on": ["db"], "recovery": [], "verify": "1s", "checks": [
            {"postgres": {"dsn": bad_dsn, "interval": "200ms", "fall": 1}},
            {"redis": {"address": f"127.0.0.1:{redis_conf['port']}",
                       "password_file": str(redis_conf["dir"] / "wrong"),
                       "interval": "200ms", "fall": 1}}]}}})
    rd.wait_for(lambda: (f := _fault(rd, "probe", "postgres")) and f, timeout=30,
                what="the wrong pg password is a fault")
    f = _fault(rd, "probe", "postgres")
    assert f["type"] == "configuration" and "password authentication failed" in f["description"]

    seen = [rd.log_text()]
    for path in ("/v1/status", "/v1/services", "/v1/faults", "/v1/actions", "/v1/transitions",
                 "/v1/metrics"):
        seen.append(json.dumps(rd.api(path)))
    for table in ("faults", "actions", "transitions"):
        seen.append(repr(rd.journal(f"SELECT * FROM {table}")))
    text = "\n".join(seen)
    for secret in (pg.password, wrong_pg, wrong_rd, redis_conf["password"]):
        assert secret not in text, secret
