"""Abusive clients of recoverd's TCP API, for tests/e2e/test_api.py and
bench/api_abuse: slow clients that send a request head one byte every few
seconds (and come back when cut), and idle keep-alives that asked once and
then hold their connection (and come back when evicted). Two threads, no
process per client."""

import select
import socket
import threading
import time

from helpers import http_exchange

SLOW_HEAD = b"GET /v1/status HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "  # never ends


def _connect(port, timeout=0.5):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setblocking(False)
    return s


def _closed(s):
    """The server closed (or reset) s: it is readable with nothing to read.
    Slow clients get no answer, so readable means closed."""
    poll = select.poll()  # not select(): the abusers' descriptors pass 1024
    poll.register(s, select.POLLIN)
    try:
        return bool(poll.poll(0)) and s.recv(4096, socket.MSG_PEEK) == b""
    except OSError:
        return True


class Abuse:
    """slow clients each send a byte every `every` seconds (spread over the
    period); idle clients GET /v1/status once per connection and then stay
    quiet. Counters: cuts (slow connections the server closed), evictions
    (idle ones it closed), refused (connects that failed)."""

    def __init__(self, port, slow, idle, every=2.0):
        self.port, self.n_slow, self.n_idle, self.every = port, slow, idle, every
        self.cuts = self.evictions = self.refused = 0
        self.stopping = threading.Event()
        self.threads = [threading.Thread(target=self._slow_loop, daemon=True),
                        threading.Thread(target=self._idle_loop, daemon=True)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        for t in self.threads:
            t.join(timeout=30)

    # -- slow clients: one byte a tick; a cut one reconnects on its next tick --

    def _slow_loop(self):
        socks = [None] * self.n_slow
        sent = [0] * self.n_slow
        tick = 0.05
        per_tick = max(1, int(self.n_slow * tick / self.every))
        i = 0
        while not self.stopping.is_set():
            t0 = time.monotonic()
            for _ in range(per_tick):
                s = socks[i]
                if s is not None and _closed(s):
                    s.close()
                    socks[i] = s = None
                    self.cuts += 1
                if s is None:
                    try:
                        socks[i] = s = _connect(self.port)
                        sent[i] = 0
                    except OSError:
                        self.refused += 1
                if s is not None:
                    k = sent[i]
                    byte = SLOW_HEAD[k:k + 1] if k < len(SLOW_HEAD) else b"a"
                    try:
                        s.send(byte)
                        sent[i] += 1
                    except OSError:
                        pass  # seen as closed on its next tick
                i = (i + 1) % self.n_slow
            self.stopping.wait(max(0.0, tick - (time.monotonic() - t0)))
        for s in socks:
            if s is not None:
                s.close()

    # -- idle keep-alives: asked once, then quiet; an evicted one comes back --

    def _kept_alive(self):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=2)
        try:
            http_exchange(s, "/v1/status")
        except OSError:
            s.close()
            raise
        s.setblocking(False)
        return s

    def _idle_loop(self):
        socks = [None] * self.n_idle
        while not self.stopping.is_set():
            for i, s in enumerate(socks):
                if self.stopping.is_set():
                    break
                if s is not None and _closed(s):
                    s.close()
                    socks[i] = s = None
                    self.evictions += 1
                if s is None:
                    try:
                        socks[i] = self._kept_alive()
                    except (OSError, ValueError):
                        self.refused += 1
            self.stopping.wait(0.2)
        for s in socks:
            if s is not None:
                s.close()
