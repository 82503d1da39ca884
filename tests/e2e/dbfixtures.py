"""Real PostgreSQL and Redis servers for end-to-end tests of the postgres and
redis checks: started from the Debian packages in temporary directories on
free 127.0.0.1 ports, once per test module, stopped by PID at teardown.

Use them from a test module with

    from dbfixtures import postgres_server, redis_server  # noqa: F401

Each yields a server object with `port`, `password`, `password_file` (a file
holding the password), `pid` (the server process itself: the postmaster, or
redis-server; None while stopped), `log`, and `stop()`, `start()` (same data,
same port), `freeze()` / `thaw()` (SIGSTOP / SIGCONT, postgres backends
included: they are the postmaster's children, each in a session of its own).
PostgreSQL also has `dsn` (libpq key=value string, password included) and
`dsn_without_password`. Tests are skipped when the packages are absent.

PostgreSQL refuses to run as root: as root, initdb and postgres run as the
`postgres` system user the package creates, in a directory it owns.
"""

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import free_port, pid_alive, proc_start_ticks, wait_for

PG_BIN = Path("/usr/lib/postgresql/15/bin")
REDIS_BIN = Path("/usr/bin/redis-server")


def _children(pid):
    """Pids whose parent is pid."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                out.append(int(entry))
    return out


class _Server:
    """A server process we started, known by its Popen (never by name)."""

    def __init__(self, directory, port, password):
        self.dir = Path(directory)
        self.port = port
        self.password = password
        self.password_file = self.dir / "client-password"
        self.password_file.write_text(password + "\n")
        self.password_file.chmod(0o600)
        self.proc = None
        self.ticks = None
        self.starts = 0
        self.log = None

    @property
    def pid(self):
        return self.proc.pid if self.proc and self.proc.poll() is None else None

    def _spawn(self, argv, user=None):
        self.starts += 1
        self.log = self.dir / f"server-{self.starts}.log"
        with open(self.log, "wb") as out:
            kw = {"user": user} if user and os.getuid() == 0 else {}
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True, **kw)
        self.ticks = proc_start_ticks(self.proc.pid)

    def _signal(self, pid, sig):
        # Only a process we started, and only while its start time matches.
        if pid and proc_start_ticks(pid) == self.ticks:
            os.kill(pid, sig)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        if not self.proc or self.proc.poll() is not None:
            return
        self.thaw()
        self._signal(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._signal(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def freeze(self):
        self._freeze(signal.SIGSTOP)

    def thaw(self):
        self._freeze(signal.SIGCONT)

    def _freeze(self, sig):
        pid = self.pid
        if not pid:
            return
        self._signal(pid, sig)
        for child in _children(pid):
            try:
                os.kill(child, sig)
            except ProcessLookupError:
                pass


class PostgresServer(_Server):
    USER = "recoverd"

    def __init__(self, directory, port, password="Sekr1t-pg"):
        super().__init__(directory, port, password)
        self.data = self.dir / "data"
        self.user = "postgres" if os.getuid() == 0 else None
        pwfile = self.dir / "initdb-password"
        pwfile.write_text(password + "\n")
        if self.user:
            ent = pwd.getpwnam(self.user)
            os.chown(self.dir, ent.pw_uid, ent.pw_gid)
            os.chown(pwfile, ent.pw_uid, ent.pw_gid)
        kw = {"user": self.user} if self.user else {}
        subprocess.run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", self.USER,
                        "--auth=md5", "--pwfile", str(pwfile), "-E", "UTF8", "--no-sync"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=120, **kw)
        pwfile.unlink()

    @property
    def dsn_without_password(self):
        return f"host=127.0.0.1 port={self.port} dbname=postgres user={self.USER}"

    @property
    def dsn(self):
        return f"{self.dsn_without_password} password={self.password}"

    def start(self, timeout=20.0):
        self._spawn([str(PG_BIN / "postgres"), "-D", str(self.data), "-k", str(self.dir),
                     "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
                     "-c", "fsync=off", "-c", "max_connections=50"], user=self.user)
        log = self.log
        wait_for(lambda: "ready to accept connections" in log.read_text(errors="replace")
                 or not pid_alive(self.proc.pid), timeout, what="postgres to accept connections")
        if self.proc.poll() is not None:
            raise RuntimeError(f"postgres exited; see {log}")
        return self

    def stop(self, sig=signal.SIGINT, timeout=10.0):
        """SIGINT: fast shutdown, the backends hang up on their clients."""
        super().stop(sig, timeout)


class RedisServer(_Server):
    def __init__(self, directory, port, password="Sekr1t-rd"):
        super().__init__(directory, port, password)

    def start(self, timeout=10.0):
        self._spawn([str(REDIS_BIN), "--port", str(self.port), "--bind", "127.0.0.1",
                     "--save", "", "--appendonly", "no", "--requirepass", self.password,
                     "--daemonize", "no", "--dir", str(self.dir)])
        log = self.log
        wait_for(lambda: "Ready to accept connections" in log.read_text(errors="replace")
                 or not pid_alive(self.proc.pid), timeout, what="redis to accept connections")
        if self.proc.poll() is not None:
            raise RuntimeError(f"redis-server exited; see {log}")
        return self


def _serve(cls, binary, what):
    if not binary.exists():
        pytest.skip(f"{what} is not installed")
    directory = tempfile.mkdtemp(prefix=f"recoverd-{what}-")
    server = None
    try:
        server = cls(directory, free_port())
        server.start()
        yield server
    finally:
        if server:
            server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_server():
    """A PostgreSQL 15 server (role recoverd, md5 password) for the module."""
    if os.getuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("no postgres system user")
    yield from _serve(PostgresServer, PG_BIN / "postgres", "postgres")


@pytest.fixture(scope="module")
def redis_server():
    """A redis-server with requirepass for the module."""
    yield from _serve(RedisServer, REDIS_BIN, "redis")


__all__ = ["postgres_server", "redis_server", "PostgresServer", "RedisServer"]
