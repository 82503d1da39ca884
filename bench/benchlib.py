"""Shared pieces of the benchmarks: start recoverd (the release build in
build/) on a generated config, read its API, take percentiles, print
figures. Benchmarks are not tests: they print numbers and never fail on
them."""

import atexit
import ctypes
import http.client
import json
import os
import resource
import selectors
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("RECOVERD_BUILD", os.path.join(REPO, "build"))
RECOVERD = os.path.join(BUILD, "recoverd")
DEMO = os.path.join(BUILD, "recoverd-demo")


_handed_out = set()


def free_port():
    """A port nothing listens on, never the same twice in one run (the
    kernel may hand a just-closed ephemeral port out again)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def local_port_range():
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = (int(x) for x in f.read().split())
    return lo, hi


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def service_ports(n, first=20000):
    """n ports nothing listens on, outside the kernel's ephemeral range
    (there, an outgoing connection of recoverd's own checks could take a
    service's port before the service binds it): from first up to the
    range, then above it."""
    lo, hi = local_port_range()
    out = []
    for p in list(range(first, lo)) + list(range(hi + 1, 65536)):
        if len(out) == n:
            return out
        if p not in _handed_out and port_free(p):
            _handed_out.add(p)
            out.append(p)
    raise RuntimeError(f"fewer than {n} free ports outside the ephemeral range {lo}-{hi}")


def raise_nofile(want):
    """RLIMIT_NOFILE to at least want (soft and hard; root may raise the
    hard one): recoverd raises its soft limit to the hard one it inherits,
    and holds several descriptors per service."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
        return want
    except (ValueError, OSError):  # no CAP_SYS_RESOURCE: the hard limit is the cap
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        print(f"RLIMIT_NOFILE: {hard} (wanted {want})", flush=True)
        return hard


def answering(ports, timeout=0.25, batch=1000):
    """The ports among ports whose /health answers 200 within timeout: all
    at once (non-blocking connects), so that one slow port does not hold
    the look at the others."""
    ok = set()
    ports = list(ports)
    req = b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    for i in range(0, len(ports), batch):
        sel = selectors.DefaultSelector()
        for p in ports[i:i + batch]:
            s = socket.socket()
            s.setblocking(False)
            if s.connect_ex(("127.0.0.1", p)) not in (0, 115):  # EINPROGRESS
                s.close()
                continue
            sel.register(s, selectors.EVENT_WRITE, [p, False])
        end = time.monotonic() + timeout
        while sel.get_map() and time.monotonic() < end:
            for key, _ in sel.select(max(0.0, end - time.monotonic())):
                s, (p, sent) = key.fileobj, key.data
                try:
                    if not sent:
                        if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                            raise OSError
                        s.send(req)
                        sel.modify(s, selectors.EVENT_READ, [p, True])
                        continue
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        ok.add(p)
                except OSError:
                    pass
                sel.unregister(s)
                s.close()
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()
    return ok


def wait_answering(ports, t0, deadline):
    """Seconds after t0 (monotonic) at which every port of ports answered
    /health (each looked at until it did); None past deadline seconds."""
    pending = set(ports)
    while pending and time.monotonic() - t0 < deadline:
        t = time.monotonic()
        pending -= answering(pending)
        if pending:  # leave at least half a CPU to what is being measured
            time.sleep(max(0.005, time.monotonic() - t))
    return None if pending else time.monotonic() - t0


class Api:
    """A kept-alive connection to recoverd's API (what a dashboard or
    recoverctl in a loop holds): get() returns (seconds, JSON)."""

    def __init__(self, port, timeout=30):
        self.port, self.timeout, self.conn = port, timeout, None

    def get(self, path):
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            try:
                t = time.monotonic()
                self.conn.request("GET", path)
                r = self.conn.getresponse()
                body = r.read()
                took = time.monotonic() - t
                if r.status != 200:
                    raise OSError(f"GET {path}: {r.status}")
                return took, json.loads(body)
            except (OSError, http.client.HTTPException):
                self.close()  # the server closed a kept-alive connection: once more
                if attempt:
                    raise

    def close(self):
        if self.conn:
            self.conn.close()
        self.conn = None


class LeanApi:
    """The least a client can do for a GET on a kept-alive connection: the
    request's bytes made once per path, the answer read with recv_into
    into one buffer kept across requests (grown, never made again), the
    head scanned only for Content-Length. What is left in its time is the
    kernel's loopback and recoverd's own work: http.client (Api) makes
    fresh bytes objects for every chunk and line, which at a 441 KB answer
    costs more than recoverd does. get() returns (seconds, JSON); the JSON
    is decoded after the clock stops."""

    def __init__(self, port, timeout=30):
        self.port, self.timeout, self.sock = port, timeout, None
        self.buf = bytearray(1 << 20)
        self.requests = {}

    def _connect(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _request(self, path):
        req = self.requests.get(path)
        if req is None:
            req = self.requests[path] = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
        return req

    def _read(self):
        """(status, start of the body, its end) in self.buf."""
        got, head_end, end = 0, -1, None
        view = memoryview(self.buf)
        while end is None or got < end:
            if got == len(self.buf):  # grown only with no view on it (BufferError)
                view.release()
                self.buf.extend(bytes(len(self.buf)))
                view = memoryview(self.buf)
            n = self.sock.recv_into(view[got:])
            if n == 0:
                raise OSError("connection closed mid-answer")
            got += n
            if head_end < 0:
                head_end = self.buf.find(b"\r\n\r\n", 0, got)
                if head_end >= 0:
                    head = bytes(self.buf[:head_end]).lower()
                    k = head.find(b"\r\ncontent-length:")
                    if k < 0:
                        raise OSError("answer without Content-Length")
                    e = head.find(b"\r\n", k + 2)
                    length = int(head[k + 17:e if e >= 0 else len(head)])
                    end = head_end + 4 + length
        view.release()
        if got != end:
            raise OSError("bytes after the answer: a pipelined reply was not asked for")
        return int(self.buf[9:12]), head_end + 4, end

    def get(self, path):
        for attempt in (0, 1):
            if self.sock is None:
                self._connect()
            try:
                t = time.monotonic()
                self.sock.sendall(self._request(path))
                status, start, end = self._read()
                took = time.monotonic() - t
                if status != 200:
                    raise OSError(f"GET {path}: {status}")
                return took, json.loads(self.buf[start:end])
            except OSError:
                self.close()  # the server closed a kept-alive connection: once more
                if attempt:
                    raise

    def close(self):
        if self.sock:
            self.sock.close()
        self.sock = None


def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = min(len(v) - 1, max(0, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


def report(name, values, unit, baseline=None):
    med = statistics.median(values)
    line = f"{name}: n={len(values)} median={med:.3f}{unit} p99={pct(values, 99):.3f}{unit}"
    if baseline:
        bmed = statistics.median(baseline)
        line += (f" | baseline median={bmed:.3f}{unit} p99={pct(baseline, 99):.3f}{unit}"
                 f" ratio(recoverd/baseline)={med / bmed if bmed else float('nan'):.3f}")
    print(line, flush=True)
    return med


def children(pid):
    """Direct children of pid's main thread (recoverd spawns from its one
    loop thread). Cheap, so the spin below samples every ~20 us."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", "rb") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


class ExecWatch:
    """The kernel's process events (netlink proc connector, root only):
    fork and exec with CLOCK_MONOTONIC timestamps taken by the kernel, so a
    benchmark can time "new process running" without spinning on /proc
    (a spinning watcher steals the CPU it is measuring on a small host)."""

    NETLINK_CONNECTOR, CN_IDX_PROC, CN_VAL_PROC = 11, 1, 1
    PROC_EVENT_FORK, PROC_EVENT_EXEC, PROC_EVENT_EXIT = 1, 2, 0x80000000

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, self.NETLINK_CONNECTOR)
        self.sock.bind((os.getpid(), self.CN_IDX_PROC))
        op = struct.pack("=I", 1)  # PROC_CN_MCAST_LISTEN
        cn = struct.pack("=IIIIHH", self.CN_IDX_PROC, self.CN_VAL_PROC, 0, 0, len(op), 0) + op
        nl = struct.pack("=IHHII", 16 + len(cn), 3, 0, 0, os.getpid()) + cn
        self.sock.send(nl)
        self.children = {}  # child pid -> parent pid, from fork events

    def wait_exec(self, parent, timeout=10.0, gone=None):
        """Block until a child of parent execs; return (pid, monotonic ns).
        With gone=pid, also return when that process exited (its exit
        event, sent as it becomes a zombie, which is when a pidfd wakes
        its parent): (pid, exec ns, exit ns)."""
        self.sock.settimeout(timeout)
        t_gone = None
        while True:
            data = self.sock.recv(4096)
            what, _cpu, ts = struct.unpack_from("=IIQ", data, 36)
            if what == self.PROC_EVENT_EXIT and gone is not None:
                pid, tgid = struct.unpack_from("=II", data, 52)
                if pid == tgid == gone:
                    t_gone = ts
            elif what == self.PROC_EVENT_FORK:
                _ppid, ptgid, cpid, ctgid = struct.unpack_from("=IIII", data, 52)
                if cpid == ctgid:
                    self.children[cpid] = ptgid
            elif what == self.PROC_EVENT_EXEC:
                pid, tgid = struct.unpack_from("=II", data, 52)
                if self.children.get(tgid) == parent:
                    return (tgid, ts) if gone is None else (tgid, ts, t_gone)

    def close(self):
        self.sock.close()


def wait_new_child(parent, old, name, timeout=10.0):
    """Spin until parent has a child other than old that has exec'd name."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        for c in children(parent):
            if c != old and comm(c) == name:
                return c
    raise TimeoutError(f"no new {name} under {parent}")


def http_ok(port, path="/health", timeout=0.05):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            return s.recv(64).startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def wait_http_ok(port, timeout=10.0, path="/health"):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if http_ok(port, path):
            return time.monotonic()
    raise TimeoutError(f"port {port} never answered 200")


def cpu_seconds(pid):
    """CPU time of pid in seconds, to the nanosecond (schedstat), where
    /proc/pid/stat would round to 10 ms ticks."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0]) / 1e9


def pss_kib(pid):
    """Proportional set size: the pages shared with other processes (the
    libraries) counted by share."""
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


PR_SET_CHILD_SUBREAPER = 36
_subreaper = False


def _children_of(pid):
    """Children of every thread of pid (recoverd spawns from its loop and
    from its spawner threads; /proc lists a child under the thread that
    made it)."""
    out = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out += [int(x) for x in f.read().split()]
        except OSError:
            pass
    return out


def descendants(pid):
    """Every process below pid, by PID, parents before their children."""
    out, todo = [], [pid]
    while todo:
        kids = _children_of(todo.pop())
        out += kids
        todo += kids
    return out


def sweep(only=None):
    """SIGKILL and reap, by PID, every process below this one (only: below
    and among those PIDs). recoverd's services run in sessions of their
    own, so a process-group kill misses them; as the subreaper of what it
    starts (adopt_orphans), whatever a stopped or killed recoverd left is
    reparented here, where this finds it. Returns how many it killed."""
    killed = 0
    for _ in range(100):
        mine = set(_children_of(os.getpid()))
        pids = [p for p in descendants(os.getpid()) if only is None or p in only]
        if not pids:
            return killed
        for p in pids:
            try:
                os.kill(p, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        for p in pids:
            if p in mine:
                try:
                    os.waitpid(p, 0)
                except ChildProcessError:
                    pass
        # their children are ours now: the next pass kills those
        if only is not None:
            only = set(only) | {q for p in pids for q in descendants(p)}
    return killed


def _sweep_at_exit():
    n = sweep()
    if n:
        print(f"bench: killed {n} processes left at exit", file=sys.stderr, flush=True)


def _exit_on_signal(signum, _frame):
    sys.exit(128 + signum)  # finally blocks and atexit run: services are stopped


def adopt_orphans():
    """This process becomes the subreaper of everything it starts (and of
    what recoverd starts), kills what is left at exit, and turns SIGTERM
    and SIGHUP into an exit that runs the cleanups. Called by Daemon."""
    global _subreaper
    if _subreaper:
        return
    _subreaper = True
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print(f"bench: not a subreaper ({os.strerror(ctypes.get_errno())}): a killed "
              "recoverd's services may outlive the bench", file=sys.stderr, flush=True)
    atexit.register(_sweep_at_exit)
    for s in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(s) in (signal.SIG_DFL, None):
            signal.signal(s, _exit_on_signal)


class Daemon:
    """recoverd on a generated config in a temp dir."""

    def __init__(self, services, quiet="1s", log_level="warn", **top):
        """top: more top-level keys of the configuration."""
        self.log_level = log_level
        self.dir = tempfile.mkdtemp(prefix="recoverd-bench-")
        self.api_port = free_port()
        cfg = {"state_dir": os.path.join(self.dir, "state"),
               "api": {"listen": f"127.0.0.1:{self.api_port}"},
               "quiet": quiet, "services": services, **top}
        self.path = os.path.join(self.dir, "recoverd.yaml")
        with open(self.path, "w") as f:
            json.dump(cfg, f, indent=1)  # JSON is YAML
        self.proc = None

    def start(self, wait=True):
        """Exec recoverd; with wait, return once its API answers and every
        service is started (/v1/status `services_starting` 0: the API
        answers before the services exist)."""
        adopt_orphans()
        self.others = set(_children_of(os.getpid()))  # this bench's own, not recoverd's
        self.log = open(os.path.join(self.dir, "recoverd.log"), "w")
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen([RECOVERD, "-c", self.path, "--log-level", self.log_level],
                                     stderr=self.log, start_new_session=True)
        if not wait:
            return self
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                if self.api("/v1/status").get("services_starting", 0) == 0:
                    return self
            except OSError:
                pass
            time.sleep(0.01)
        raise TimeoutError("recoverd API never answered with every service started")

    def write(self, services, quiet="1s", **top):
        """Rewrite the configuration (for a reload)."""
        with open(self.path) as f:
            cfg = json.load(f)
        cfg.update({"quiet": quiet, "services": services, **top})
        with open(self.path + ".new", "w") as f:
            json.dump(cfg, f, indent=1)
        os.replace(self.path + ".new", self.path)

    def api(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}{path}", timeout=2) as r:
            return json.load(r)

    def pid_of(self, name):
        return self.api(f"/v1/services/{name}")["pid"]

    def stop(self, timeout=15):
        """SIGTERM and wait for recoverd's clean stop (its services stopped
        with it); past timeout SIGKILL it. Then every process it left (its
        services, reparented here: adopt_orphans) is killed by PID."""
        if not self.proc:
            return
        below = set(descendants(self.proc.pid))
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # what it left: its processes seen last, and whatever was
        # reparented here since it started (a recoverd that died earlier)
        left = below | (set(_children_of(os.getpid())) - self.others)
        n = sweep(only=left)
        if n:
            print(f"bench: recoverd left {n} processes; killed", file=sys.stderr, flush=True)
        self.log.close()


def demo_service(port, checks, **extra):
    svc = {"command": [DEMO, "--port", str(port)], "checks": checks}
    svc.update(extra)
    return svc
