#!/usr/bin/env python3
"""The measurement behind lib/srcport.c: does a prober's connect() take a
port of the ephemeral range that a "service" keeps rebinding?

Usage: bench/ports/ports.py kernel|range SECONDS [SEED]
  kernel: the prober's source ports are the kernel's choice
  range:  the prober's sockets get IP_LOCAL_PORT_RANGE, the longest run of the
          range holding none of the service ports (what recoverd does)
Prints the rebinds tried, how many failed with EADDRINUSE, on how many
ports, and on how many of them a socket of the prober held the port. On a
shared host other programs take some ports too: only the last figure is the
prober's. Changes nothing of the host's settings.
"""
# prober's ports in the largest sub-range of the ephemeral range holding no protected port.
import socket, errno, time, os, sys, random, struct
mode, secs = sys.argv[1], float(sys.argv[2])
lo, hi = map(int, open('/proc/sys/net/ipv4/ip_local_port_range').read().split())
def free(P):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try: s.bind(('0.0.0.0', P)); s.listen(1); return True
    except OSError: return False
    finally: s.close()
random.seed(int(sys.argv[3]) if len(sys.argv) > 3 else None)
protected = sorted([p for p in random.sample(range(lo, hi+1), 2000) if free(p)][:200])
edges = [lo-1] + protected + [hi+1]
a, b = max(((edges[i]+1, edges[i+1]-1) for i in range(len(edges)-1)), key=lambda g: g[1]-g[0])
dests = []
for i in range(200):
    l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(('127.0.0.1', 0)); l.listen(4096); l.setblocking(False); dests.append(l)
pid = os.fork()
if pid == 0:
    t0 = time.time(); keep = []
    while time.time() - t0 < secs:
        for l in dests:
            c = socket.socket()
            if mode == 'range':
                c.setsockopt(socket.IPPROTO_IP, 51, struct.pack('I', (b << 16) | a))
            try: c.connect(l.getsockname())
            except OSError: pass
            keep.append(c)
            if len(keep) > 400: keep.pop(0).close()   # keep-alive connections live a while
    os._exit(0)
fails = tries = 0; t0 = time.time(); held = set(); byprober = set()
while time.time() - t0 < secs:
    for P in protected:
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tries += 1
        try: s.bind(('0.0.0.0', P)); s.listen(1)
        except OSError:
            fails += 1; held.add(P)
            dp = {l.getsockname()[1] for l in dests}
            for line in open('/proc/net/tcp').readlines()[1:]:
                f = line.split()
                if int(f[1].split(':')[1], 16) == P and int(f[2].split(':')[1], 16) in dp: byprober.add(P)
        s.close()
    for l in dests:
        try:
            while True: l.accept()[0].close()
        except OSError: pass
os.waitpid(pid, 0)
print(mode, 'sub-range %d-%d' % (a, b), 'service binds', tries, 'EADDRINUSE', fails, 'ports hit', len(held), 'by the prober', len(byprober))
