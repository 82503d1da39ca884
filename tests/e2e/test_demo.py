"""recoverd-demo on its own: the service every other end-to-end test supervises."""

import os
import re
import signal
import socket
import subprocess
import time

import pytest

import helpers
from helpers import http_exchange, proc_state


def test_demo_health_answers_200_twice_on_one_keepalive_connection(demo):
    d = demo()
    d.wait_ready()
    with socket.create_connection(("127.0.0.1", d.port), timeout=2) as s:
        for _ in range(2):
            status, headers, body = http_exchange(s, "/health")
            assert (status, body) == (200, b"ok\n")
            assert headers["content-length"] == "3"
            assert headers["connection"] == "keep-alive"


def test_demo_answers_pipelined_requests_in_order(demo):
    d = demo()
    d.wait_ready()
    with socket.create_connection(("127.0.0.1", d.port), timeout=2) as s:
        s.sendall(b"GET /health HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\n\r\n"
                  b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
    assert re.findall(rb"HTTP/1.1 (\d{3}) ", data) == [b"200", b"404", b"200"]
    assert data.endswith(b"Connection: close\r\n\r\nok\n")


def test_demo_fail_makes_health_500_and_recover_undoes_it(demo):
    d = demo()
    d.wait_ready()
    assert d.get("/fail")[0] == 200
    assert d.get("/health") == (500, b"failing\n")
    assert d.get("/recover")[0] == 200
    assert d.get("/health") == (200, b"ok\n")


def test_demo_index_lists_endpoints_and_unknown_path_is_404(demo):
    d = demo()
    d.wait_ready()
    status, body = d.get("/")
    assert status == 200
    for path in (b"/health", b"/fail", b"/recover", b"/crash", b"/hang"):
        assert path in body
    assert d.get("/no/such/thing")[0] == 404


def test_demo_crash_dies_with_sigabrt(demo):
    d = demo()
    d.wait_ready()
    with pytest.raises((ConnectionError, OSError)):
        d.get("/crash")
    code, _ = d.wait_exit()
    assert code == -signal.SIGABRT


def test_demo_hang_stays_alive_but_answers_nothing(demo):
    d = demo()
    d.wait_ready()
    with pytest.raises(socket.timeout):
        d.get("/hang", timeout=0.3)
    with pytest.raises(socket.timeout):
        d.get("/health", timeout=0.3)
    assert d.proc.poll() is None
    assert proc_state(d.proc.pid) == "S"  # sleeping in pause(), not spinning
    d.proc.send_signal(signal.SIGTERM)  # a hung demo can still be stopped
    assert d.wait_exit()[0] == 0


def test_demo_sigterm_exits_0_silently(demo):
    d = demo()
    d.wait_ready()
    d.proc.send_signal(signal.SIGTERM)
    code, err = d.wait_exit()
    assert code == 0
    assert err.strip().splitlines() == [f"recoverd-demo listening on 127.0.0.1:{d.port} "
                                        f"pid={d.proc.pid}"]


def test_demo_exit_after_0_exits_3(demo):
    d = demo("--exit-after", 0)
    assert d.wait_exit()[0] == 3


def test_demo_exit_after_waits_that_long(demo):
    # Long enough that even a slow start (ASan, a busy host) serves first.
    d = demo("--exit-after", 1500)
    d.wait_ready()
    assert d.proc.poll() is None
    assert d.wait_exit()[0] == 3
    assert time.monotonic() - d.t0 >= 1.5


def test_demo_fail_start_exits_1_without_listening(demo):
    d = demo("--fail-start")
    assert d.wait_exit()[0] == 1
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", d.port), timeout=1).close()


def test_demo_busy_port_exits_1_with_a_message(demo):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        d = demo(port=holder.getsockname()[1])
        code, err = d.wait_exit()
    assert code == 1
    assert "address already in use" in err


def test_demo_bad_arguments_exit_2_with_usage(demo):
    d = demo("--no-such-option")
    code, err = d.wait_exit()
    assert code == 2
    assert "usage:" in err


def test_demo_print_writes_n_lines_to_stdout(demo):
    d = demo("--print", 5, "--exit-after", 50, stdout=subprocess.PIPE)
    out, _ = d.proc.communicate(timeout=5)
    assert out.decode().splitlines() == [f"recoverd-demo line {i}" for i in range(1, 6)]


def test_demo_flood_writes_fast_and_still_answers(demo):
    d = demo("--flood", stdout=subprocess.PIPE)
    d.wait_ready()
    t0, got = time.monotonic(), 0
    while got < 16 << 20:
        got += len(os.read(d.proc.stdout.fileno(), 1 << 20))
    elapsed = time.monotonic() - t0
    print(f"flood: 16 MiB in {elapsed * 1000:.0f} ms")  # how fast: a figure, not a verdict
    assert d.get("/health")[0] == 200


def test_demo_alloc_shows_in_rss(demo):
    def rss_kb(pid):
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    small, big = demo(), demo("--alloc", 64)
    small.wait_ready()
    big.wait_ready()
    assert rss_kb(big.proc.pid) - rss_kb(small.proc.pid) >= 60 * 1024


def test_demo_serves_many_connections_at_once(demo):
    d = demo()
    d.wait_ready()
    socks = [socket.create_connection(("127.0.0.1", d.port), timeout=5) for _ in range(500)]
    try:
        for s in socks:
            s.sendall(b"GET /health HTTP/1.1\r\n\r\n")
        for s in socks:
            data = b""
            while not data.endswith(b"ok\n"):
                data += s.recv(256)
            assert data.startswith(b"HTTP/1.1 200 ")
    finally:
        for s in socks:
            s.close()


def test_demo_answers_200_from_its_first_request(demo):
    """Ready means ready: the first request that connects gets 200, and no
    request ever sees anything else. How soon after exec is a figure
    (printed here; bench/restart_latency times kill -> 200 under recoverd)."""
    times = []
    for _ in range(5):
        d = demo()
        seen = []

        def answered():
            try:
                seen.append(d.get("/health", timeout=2.0))
                return True
            except OSError:
                return False  # not listening yet
        helpers.wait_for(answered, 10.0, interval=0.002, what="the demo's first answer")
        times.append(time.monotonic() - d.t0)
        assert seen == [(200, b"ok\n")], seen
        d.close()
    times.sort()
    print(f"exec -> first /health 200: median {times[2] * 1000:.1f} ms, "
          f"max {times[-1] * 1000:.1f} ms")


def test_demo_sigint_exits_0(demo):
    d = demo()
    d.wait_ready()
    d.proc.send_signal(signal.SIGINT)
    assert d.wait_exit()[0] == 0
