"""Service ports inside the kernel's ephemeral range: a warning at load, and
recoverd's own check connections never take such a port, so a service that
keeps exiting and being restarted on it always gets its port back."""

import re
import socket
import sys

from helpers import wait_for

# A service that binds PORT, serves a short while and exits (a crash, in the
# eyes of recoverd), leaving a line per start in LOG: "bound" or the error.
SERVICE = r"""
import socket, sys, time
port, log = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", port)); s.listen(64)
except OSError as e:
    open(log, "a").write("bind failed: %s\n" % e); sys.exit(2)
open(log, "a").write("bound\n")
s.settimeout(0.05)
end = time.monotonic() + 0.4
while time.monotonic() < end:
    try:
        s.accept()[0].close()
    except OSError:
        pass
sys.exit(1)
"""


def _ephemeral():
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        lo, hi = map(int, f.read().split())
    return lo, hi


def _free(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def _tcp_sockets():
    """(local port, remote port, state) of every IPv4 TCP socket, TIME_WAIT too."""
    out = []
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            out.append((int(local.split(":")[1], 16), int(remote.split(":")[1], 16), state))
    return out


def test_service_port_in_ephemeral_range_warned_and_never_taken(recoverd, tmp_path):
    lo, hi = _ephemeral()
    # The middle of the range: the kernel alone would hand out ports on both
    # sides of it, recoverd's connections must keep to one.
    port = next(p for p in range((lo + hi) // 2, hi) if _free(p))
    listeners = []
    for _ in range(8):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(4096)
        listeners.append(s)
    targets = {s.getsockname()[1] for s in listeners}
    log = tmp_path / "binds.log"
    config = {"services": {
        "flappy": {"command": [sys.executable, "-c", SERVICE, str(port), str(log)],
                   "checks": [{"tcp": {"address": f"127.0.0.1:{port}", "interval": "50ms",
                                       "timeout": "200ms"}}],
                   "restart": {"max": 1000, "window": "1m", "stable": "10s",
                               "backoff": {"initial": "10ms", "max": "10ms"}},
                   "stop": {"signal": "TERM", "grace": "1s"}},
        # Only checks: connections from recoverd to the test's listeners,
        # a fresh one every 20 ms for each.
        "probed": {"checks": [{"tcp": {"address": f"127.0.0.1:{p}", "name": f"t{p}",
                                       "interval": "20ms", "timeout": "500ms"}}
                              for p in sorted(targets)]}}}
    rd = recoverd(config, start=False)

    checked = rd.check_config()
    assert checked.returncode == 0, checked.stderr
    warning = [ln for ln in checked.stderr.splitlines() if f"port {port}" in ln]
    assert len(warning) == 1, checked.stderr
    assert re.match(rf"{re.escape(str(rd.config_path))}:\d+:\d+: warning: service 'flappy'",
                    warning[0]), warning[0]
    assert "ephemeral range" in warning[0] and "ip_local_reserved_ports" in warning[0]

    # Connections of earlier tests to ports the kernel has now given the
    # listeners may still linger (TIME_WAIT): not recoverd's.
    stale = {local for local, remote, _state in _tcp_sockets() if remote in targets}
    rd.start()
    assert f"port {port}" in rd.log_text()
    seen = set()

    def enough():
        for s in listeners:  # drain: the backlog must not fill
            s.setblocking(False)
            try:
                while True:
                    s.accept()[0].close()
            except OSError:
                pass
        for local, remote, _state in _tcp_sockets():
            if remote in targets and local not in stale:
                seen.add(local)
        binds = log.read_text().splitlines() if log.exists() else []
        return len(seen) >= 300 and binds.count("bound") >= 8
    wait_for(enough, timeout=60, interval=0.02, what="many probes and restarts")

    binds = log.read_text().splitlines()
    assert all(b == "bound" for b in binds), binds
    assert port not in seen
    # Every source port of recoverd's connections lies on one side of the
    # service's port: the run of the range it keeps to.
    below = [p for p in seen if p < port]
    above = [p for p in seen if p > port]
    assert not below or not above, (min(seen), max(seen), port)
    assert all(lo <= p <= hi for p in seen)
    assert rd.service("flappy")["state"] != "failed"
    for s in listeners:
        s.close()
