"""Helpers of the end-to-end tests: where the binaries are, free ports, raw
HTTP, the recoverd-demo service and a running recoverd (class Recoverd).

What the Recoverd class expects of recoverd:
  - `recoverd -c FILE --log-level debug` runs the daemon from FILE and logs
    to stderr; `recoverd -c FILE --check-config` validates FILE and exits.
  - FILE may be JSON: it is valid YAML 1.2 (flow style) and libfyaml reads
    it, with line:column positions (the JSON is indented, one key a line).
  - Config keys used here: `state_dir` (the journal is state_dir/journal.db,
    SQLite in WAL mode) and `api.listen` ("127.0.0.1:PORT").
  - The API answers GET /v1/status with JSON once the daemon is up;
    GET /v1/services lists service views and GET /v1/services/NAME gives one;
    a service view reports its process as an integer `pid`, and that process
    leads its own process group (recoverd spawns services detached), so the
    teardown can kill what a killed recoverd left behind by group.
  - SIGTERM stops recoverd, its services with it, and it exits 0.
"""

import http.client
import json
import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def build_dir():
    """The build to test: $RECOVERD_BUILD, else build-asan, else build."""
    env = os.environ.get("RECOVERD_BUILD")
    if env:
        return Path(env)
    asan = REPO / "build-asan"
    return asan if asan.is_dir() else REPO / "build"


def binary(name):
    """Absolute path of a built program; fails the test when it is missing."""
    path = build_dir() / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not built: build it or set RECOVERD_BUILD to the build directory")
    return str(path)


_PORTS_GIVEN = set()


def free_port():
    """A TCP port on 127.0.0.1 that nothing is bound to right now, below the
    kernel's ephemeral range and never one given before in this run. Port 0
    let the kernel give the same port twice in a row (one test's 24
    services got 23 ports: two could not both listen, and the test waited
    for them in vain), and a port in the ephemeral range may be taken
    meanwhile by any program's outgoing connection."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_lo = int(f.read().split()[0])
    lo = min(20000, ephemeral_lo // 2)
    for _ in range(10000):
        port = random.randrange(lo, ephemeral_lo)
        if port in _PORTS_GIVEN:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _PORTS_GIVEN.add(port)
        return port
    raise RuntimeError(f"no free port in {lo}-{ephemeral_lo - 1}")


def demo_cmd(port, *extra):
    """argv of recoverd-demo listening on port, with extra options."""
    return [binary("recoverd-demo"), "--port", str(port), *map(str, extra)]


def wait_for(predicate, timeout=5.0, interval=0.02, what=None):
    """Poll predicate every interval s until it returns something truthy,
    which is returned; raises TimeoutError after timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


# ---- raw HTTP, to see exactly what goes over one connection ----

def http_exchange(sock, path, method="GET", headers=None):
    """Send one request on an open socket and read exactly one response
    (by Content-Length). Returns (status, headers dict lower-cased, body)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    for k, v in (headers or {}).items():
        head += f"{k}: {v}\r\n"
    sock.sendall((head + "\r\n").encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed before the response head")
        data += chunk
    raw_head, body = data.split(b"\r\n\r\n", 1)
    lines = raw_head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    hdrs = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    length = int(hdrs.get("content-length", "0"))
    while len(body) < length and method != "HEAD":
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed inside the body")
        body += chunk
    return status, hdrs, body


def http_get(port, path, timeout=2.0):
    """One GET on a fresh connection: (status, body bytes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def wait_http_ok(port, path="/health", timeout=5.0):
    """Wait until GET path answers 200; returns the seconds it took."""
    t0 = time.monotonic()

    def ok():
        try:
            return http_get(port, path, timeout=0.5)[0] == 200
        except OSError:
            return False
    wait_for(ok, timeout, interval=0.002, what=f"GET {path} on port {port} -> 200")
    return time.monotonic() - t0


# ---- processes ----

def _proc_stat(pid):
    """Fields of /proc/pid/stat after the command name, or None when gone:
    [0] state, [2] pgid, [3] sid, [19] start time in clock ticks."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def proc_start_ticks(pid):
    """Start time of pid in clock ticks, or None when the process is gone.
    Used to make sure a pid was not reused."""
    stat = _proc_stat(pid)
    return int(stat[19]) if stat else None


def proc_state(pid):
    """The one-letter state of pid ('S', 'R', 'Z'...) or None."""
    stat = _proc_stat(pid)
    return stat[0] if stat else None


def pid_alive(pid):
    """True while pid runs; a zombie counts as dead (PID 1 of the test
    container may never reap orphans, so their zombies linger)."""
    return proc_state(pid) not in (None, "Z", "X")


def _members(field, ident):
    """Pids whose process group (field 2) or session (field 3) is ident."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat and int(stat[field]) == ident:
                out.append(int(entry))
    return out


def kill_tracked(pid, start_ticks, by_session=False, sig=signal.SIGKILL):
    """Kill pid and every member of the process group (or session) it
    leads. A group or session id cannot be handed to a new process while
    the group still has members, so only one check is needed: if a process
    with this pid exists, it must be the one recorded (same start time).
    Never touches the test runner's own group or session."""
    if pid in (os.getpid(), os.getpgrp(), os.getsid(0)):
        return
    ticks = proc_start_ticks(pid)
    if ticks is not None and ticks != start_ticks:
        return
    for member in set(_members(3 if by_session else 2, pid)) | ({pid} if ticks else set()):
        try:
            os.kill(member, sig)
        except (ProcessLookupError, PermissionError):
            pass


class Demo:
    """recoverd-demo run directly by a test (not supervised)."""

    def __init__(self, *extra, port=None, stdout=subprocess.DEVNULL):
        self.port = port or free_port()
        self.argv = demo_cmd(self.port, *extra)
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(self.argv, stdout=stdout, stderr=subprocess.PIPE)

    def get(self, path, timeout=2.0):
        return http_get(self.port, path, timeout)

    def wait_ready(self, timeout=5.0):
        return wait_http_ok(self.port, timeout=timeout)

    def wait_exit(self, timeout=5.0):
        """Return code (negative: killed by that signal) and stderr text."""
        _, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, err.decode(errors="replace")

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.communicate(timeout=5)


# ---- recoverd ----

class ApiError(Exception):
    def __init__(self, status, body):
        super().__init__(f"HTTP {status}: {body[:500]!r}")
        self.status = status
        self.body = body


def _merge(base, over):
    """Deep merge of dicts (over wins); lists and scalars are replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _find_pids(value, found):
    """Collect every integer under a "pid" key of a JSON value."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "pid" and isinstance(v, int) and v > 1:
                found.add(v)
            else:
                _find_pids(v, found)
    elif isinstance(value, list):
        for v in value:
            _find_pids(v, found)


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


class Recoverd:
    """A recoverd daemon under test, in its own tmp dir.

    config: a dict (merged over the defaults state_dir and api.listen and
    written as JSON, which is YAML) or a str written verbatim (for tests of
    config errors; then it must set state_dir/api.listen itself if it starts).
    """

    def __init__(self, tmp_path, config=None, token=None, log_level="debug", env=None):
        self.dir = Path(tmp_path)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_dir = self.dir / "state"
        self.api_port = free_port()
        self.token = token
        self.log_level = log_level
        self.env = dict(os.environ, **(env or {}))
        self.config_path = self.dir / "recoverd.yaml"
        self.log_path = self.dir / "recoverd.log"
        self.proc = None
        self.runs = []     # (pid, start ticks) of every recoverd started here
        self.tracked = {}  # pid -> start ticks of service processes seen in the API
        self.write_config(config or {})

    # -- configuration --

    def write_config(self, config):
        """(Re)write the config file; a later SIGHUP or start() reads it.
        Whole or not at all (a new file renamed over it), as a reload
        still reading the file from an earlier SIGHUP must not find it
        half written."""
        if not isinstance(config, str):
            defaults = {"state_dir": str(self.state_dir),
                        "api": {"listen": f"127.0.0.1:{self.api_port}"}}
            self.config = _merge(defaults, config)
            config = json.dumps(self.config, indent=2) + "\n"
        part = self.config_path.with_name(self.config_path.name + ".part")
        part.write_text(config)
        os.replace(part, self.config_path)

    def check_config(self):
        """Run `recoverd -c FILE --check-config`: CompletedProcess (text)."""
        return subprocess.run([binary("recoverd"), "-c", str(self.config_path),
                               "--check-config"], capture_output=True, text=True,
                              timeout=10, env=self.env)

    # -- life cycle --

    def start(self, wait=True, timeout=10.0, extra_args=(), prefix=(), started=True):
        """Start recoverd (again, after stop/kill9, with the same state).
        prefix: a command that execs recoverd in its place (setpriv ... --).
        wait: until it is ready (wait_ready, with started)."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        argv = [*prefix, binary("recoverd"), "-c", str(self.config_path),
                "--log-level", self.log_level, *extra_args]
        with open(self.log_path, "ab") as log:
            self.log_offset = log.tell()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=log, env=self.env,
                                         start_new_session=True)
        self.runs.append((self.proc.pid, proc_start_ticks(self.proc.pid)))
        if wait:
            self.wait_ready(timeout, started)
        return self

    def wait_ready(self, timeout=10.0, started=True):
        """Until the API answers and, with started, every service is made
        and started (/v1/status `services_starting` 0): the API answers
        from recoverd's first loop turn, before its services exist. A
        test whose services wait for a dependency that is not ready, or
        that looks at the start itself, passes started=False."""
        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"recoverd exited with {self.proc.returncode} "
                                   f"before answering:\n{self.log_text()[-4000:]}")
            try:
                st = self.api("/v1/status")
            except (OSError, ApiError):
                return False
            return st is not None and (not started or st.get("services_starting", 0) == 0)
        wait_for(up, timeout, what="recoverd API /v1/status" +
                 (" with every service started" if started else ""))

    @property
    def pid(self):
        return self.proc.pid

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=15.0, expect_code=0):
        """SIGTERM, wait, assert the exit code; returns it."""
        self.snapshot_pids()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        assert code == expect_code, \
            f"recoverd exited with {code}, expected {expect_code}:\n{self.log_text()[-4000:]}"
        return code

    def kill9(self):
        """SIGKILL recoverd alone (its services survive it, as on a crash)."""
        self.snapshot_pids()
        self.proc.kill()
        self.proc.wait(timeout=10)

    def cleanup(self):
        """Teardown: stop recoverd, then kill any service process it left."""
        if self.running():
            self.snapshot_pids()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        for pid, ticks in self.tracked.items():
            kill_tracked(pid, ticks)
        for pid, ticks in self.runs:
            # recoverd runs in a session of its own: whatever is left in it is ours.
            kill_tracked(pid, ticks, by_session=True)

    def sanitizer_errors(self):
        """Lines of the log where ASan/UBSan reported an error."""
        return [line for line in self.log_text().splitlines()
                if any(mark in line for mark in SANITIZER_MARKS)]

    # -- observation --

    def log_text(self, since_start=False):
        """recoverd's stderr (every run, or only the latest with since_start)."""
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            return ""
        if since_start:
            data = data[self.log_offset:]
        return data.decode(errors="replace")

    def request(self, method, path, body=None, headers=None, timeout=5.0):
        """Raw API call: (status, body bytes). body: dict/list (sent as JSON),
        bytes or None. The token, if any, goes as "Authorization: Bearer"."""
        hdrs = dict(headers or {})
        if self.token and "Authorization" not in hdrs:
            hdrs["Authorization"] = f"Bearer {self.token}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(f"http://127.0.0.1:{self.api_port}{path}",
                                     data=body, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def api(self, path, method="GET", body=None):
        """API call expecting 2xx: the parsed JSON (raises ApiError otherwise).
        Service pids seen in any answer are remembered for the teardown."""
        status, data = self.request(method, path, body)
        if not 200 <= status < 300:
            raise ApiError(status, data)
        value = json.loads(data) if data.strip() else None
        self._track(value)
        return value

    def _track(self, value):
        pids = set()
        _find_pids(value, pids)
        for pid in pids - {self.proc.pid, os.getpid()}:
            if pid not in self.tracked:
                ticks = proc_start_ticks(pid)
                if ticks is not None:
                    self.tracked[pid] = ticks

    def snapshot_pids(self):
        """Remember the current service pids (best effort: the API may be down)."""
        try:
            self.api("/v1/services")
        except (OSError, ApiError, ValueError):
            pass

    def service(self, name):
        """The API view of one service."""
        return self.api(f"/v1/services/{name}")

    def wait_for(self, predicate, timeout=10.0, what=None):
        """Poll predicate every 20 ms; fails with the log tail on timeout."""
        try:
            return wait_for(predicate, timeout, 0.02, what)
        except TimeoutError as e:
            raise TimeoutError(f"{e}\n--- recoverd log tail ---\n"
                               f"{self.log_text()[-4000:]}") from None

    def journal(self, sql, params=()):
        """Rows (dicts) of a query on state_dir/journal.db, read-only."""
        db = self.state_dir / "journal.db"
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute(sql, params)]
        finally:
            con.close()


# ---- configuration pieces and process measurements used by several tests ----

def http_check(port, path="/health", **over):
    """An http check of a local port, fast enough for tests (100 ms, fall 2)."""
    check = {"url": f"http://127.0.0.1:{port}{path}", "interval": "100ms",
             "timeout": "100ms", "fall": 2, "rise": 1}
    check.update(over)
    return {"http": check}


def demo_service(port, *extra, checks=None, **over):
    """A service running recoverd-demo on port with one http check of
    /health (unless checks is given), a 10 s restart window and short stops."""
    svc = {"command": demo_cmd(port, *extra),
           "checks": [http_check(port)] if checks is None else checks,
           "restart": {"max": 5, "window": "10s", "stable": "200ms",
                       "backoff": {"initial": "100ms", "max": "1s"}},
           "stop": {"signal": "TERM", "grace": "2s"}}
    svc.update(over)
    return svc


def asleep_share(pid, seconds=2.0, interval=0.02):
    """Share of the samples, taken every interval s for seconds, in which
    pid was asleep (state S). Near 1 for a process that waits for events,
    near 0 for one that spins, however busy the host: a spinning process
    that waits for a CPU is runnable (R), never S. How much CPU a process
    uses is a benchmark's figure (bench/idle), not a test's verdict."""
    asleep = total = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        asleep += proc_state(pid) == "S"
        total += 1
        time.sleep(interval)
    return asleep / total


def proc_cmdline(pid):
    """argv of pid as a list of str, or None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return [a.decode(errors="replace") for a in raw.split(b"\0")[:-1]]


def live_pids_running(argv):
    """Live (non-zombie) pids whose argv is exactly argv. Only used to
    count processes, never to kill them."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and proc_cmdline(int(entry)) == list(argv) and pid_alive(int(entry)):
            out.append(int(entry))
    return out


def wait_running(rd, name, min_uptime_ms=0, timeout=10.0, not_pid=None):
    """Wait until service name runs (a pid other than not_pid), every check
    of it passed last time and it has been up min_uptime_ms; its view."""
    def ready():
        status, _ = rd.request("GET", f"/v1/services/{name}")
        if status == 404:
            return None  # not there yet (a reload is handled after the signal returns)
        v = rd.service(name)
        ok = (v["pid"] and v["pid"] != not_pid and v["process"] == "running"
              and all(c["ok"] for c in v["checks"])
              and (v["uptime_ms"] or 0) >= min_uptime_ms)
        return v if ok else None
    return rd.wait_for(ready, timeout, what=f"service {name} running and healthy")


def crash_recovered(rd, name, times):
    """SIGKILL service name's process times, each once it has been up a
    moment, and wait each time for the new process to run healthy."""
    pid = None
    for _ in range(times):
        old = wait_running(rd, name, min_uptime_ms=300, not_pid=pid)
        os.kill(old["pid"], signal.SIGKILL)
        pid = old["pid"]
        wait_running(rd, name, not_pid=pid)


def transitions(rd, service):
    """(from, to) pairs journaled for service (None: the system), oldest first."""
    if service is None:
        rows = rd.journal("SELECT from_state, to_state FROM transitions "
                          "WHERE service IS NULL ORDER BY id")
    else:
        rows = rd.journal("SELECT from_state, to_state FROM transitions "
                          "WHERE service = ? ORDER BY id", (service,))
    return [(r["from_state"], r["to_state"]) for r in rows]


# ---- operator control, marker checks, webhooks (test_recovery, test_alerts) ----

def read_token(rd):
    """The API token recoverd keeps in state_dir/token (one line)."""
    return (rd.state_dir / "token").read_text().strip()


def post(rd, path, body=None, token=None):
    """POST path with "Authorization: Bearer token" (token None: no header):
    (status, parsed JSON or None)."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    status, data = rd.request("POST", path, body, headers=headers)
    try:
        doc = json.loads(data) if data.strip() else None
    except ValueError:
        doc = data
    if 200 <= status < 300:
        rd._track(doc)
    return status, doc


def marker_check(marker, **over):
    """A command check that passes while the file marker exists and is
    CRITICAL (exit 2) otherwise; 100 ms interval, fall 1, rise 1."""
    script = f"test -f '{marker}' || {{ echo 'marker {Path(marker).name} missing'; exit 2; }}"
    check = {"argv": ["/bin/sh", "-c", script], "interval": "100ms", "timeout": "2s",
             "fall": 1, "rise": 1}
    check.update(over)
    return {"command": check}


def touch_program(marker, sleep_s=0):
    """argv of a repair program that (after sleep_s) creates marker."""
    pre = f"sleep {sleep_s}; " if sleep_s else ""
    return ["/bin/sh", "-c", f"{pre}touch '{marker}'"]


def actions_of(rd, service=None):
    """Actions (API views) oldest first, of one service or all."""
    acts = sorted(rd.api("/v1/actions"), key=lambda a: a["id"])
    return [a for a in acts if service is None or a["service"] == service]


def faults_of(rd, service=None):
    """Faults (API views) oldest first, of one service or all."""
    faults = sorted(rd.api("/v1/faults"), key=lambda f: f["id"])
    return [f for f in faults if service is None or f["service"] == service]


def ctl(rd, *args, env=None):
    """Run recoverctl against rd's API: CompletedProcess (text)."""
    return subprocess.run([binary("recoverctl"), "--api", f"127.0.0.1:{rd.api_port}", *args],
                          capture_output=True, text=True, timeout=10,
                          env=dict(os.environ, **(env or {})))


LOG_EVENT_LINE = r"^(\S+T(\d\d):(\d\d):(\d\d)\.(\d{3})Z) +(\w+) +(\S+) +(\S+) ?(.*)$"


def log_events_of(rd, service, event):
    """(ms of day, rest of line) of each `event` logged for service, in order."""
    pattern = re.compile(LOG_EVENT_LINE)
    out = []
    for line in rd.log_text().splitlines():
        m = pattern.match(line)
        if m and m.group(7) == service and m.group(8) == event:
            h, mi, s, ms = (int(m.group(i)) for i in (2, 3, 4, 5))
            out.append((((h * 60 + mi) * 60 + s) * 1000 + ms, m.group(9)))
    return out


# ---- waiting on faults and checks, reading recoverctl tables ----

def open_fault(rd, name, timeout=10.0):
    """Wait for an open fault of service name; its API view."""
    def found():
        ids = rd.service(name)["open_faults"]
        return rd.api(f"/v1/faults/{ids[0]}") if ids else None
    return rd.wait_for(found, timeout, what=f"an open fault of {name}")


def checks_passing(rd, name, timeout=10.0):
    """Wait until service name has checks and each passed its last probe; its view."""
    return rd.wait_for(lambda: (v := rd.service(name))["checks"] and
                       all(c["ok"] for c in v["checks"]) and v, timeout,
                       what=f"{name}'s checks passing")


def no_change_for(seconds, probe):
    """probe() keeps returning the same value for seconds; that value.
    For what must NOT happen: there is no event to wait for."""
    first = probe()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert probe() == first
        time.sleep(0.05)
    return first


def ctl_table(text):
    """The first table recoverctl printed in text, as {first cell: {header: cell}}.
    Columns are left-aligned under their header, so a cell may hold spaces
    ("1/1 ok"): each is cut at its header's offset."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(r"^[A-Z][A-Z-]*  ", line))
    header = lines[start]
    offsets = [m.start() for m in re.finditer(r"\S+", header)]
    names = header.split()
    rows = {}
    for line in lines[start + 1:]:
        if not line.strip():
            break
        cells = [line[a:b].strip() for a, b in zip(offsets, offsets[1:] + [None])]
        rows[cells[0]] = dict(zip(names, cells))
    return rows


def start_in_mode(rd, mode):
    """Start rd in containment mode; skip where this host cannot give it
    (cgroup mode needs a writable cgroup v2 tree: root on this host)."""
    try:
        rd.start(extra_args=("--containment", mode))
    except RuntimeError:
        if "containment-failed" in rd.log_text(since_start=True):
            pytest.skip(f"no {mode} containment on this host")
        raise
