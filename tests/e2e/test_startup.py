"""The start at scale: the API answers from recoverd's first loop turns,
while the services are still being started in slices, and /v1/status says
how many are left; every one ends up running, dependencies first."""

import json
import os
import random
import signal

from helpers import ApiError, log_events_of, marker_check, wait_for, wait_running

N = 300


def test_api_answers_while_services_are_still_starting(recoverd):
    base = f"{5000 + random.randrange(1000)}.{os.getpid()}{random.randrange(10**5):05d}"
    services = {f"s{i:03d}": {"command": ["sleep", f"{base}{i:03d}"],
                              "stop": {"signal": "TERM", "grace": "2s"}}
                for i in range(N)}
    # The first service waits for the last one, which a later slice starts.
    services["s000"]["depends_on"] = [f"s{N - 1:03d}"]
    rd = recoverd({"services": services}, start=False)
    rd.start(wait=False)
    seen = []  # services_starting of every answer, in order

    def all_started():
        if not rd.running():
            raise RuntimeError(f"recoverd exited:\n{rd.log_text()[-4000:]}")
        try:
            status, body = rd.request("GET", "/v1/status", timeout=2.0)
        except OSError:
            return False  # not listening yet
        assert status == 200
        st = json.loads(body)
        assert st["services"] == N
        seen.append(st["services_starting"])
        return st["services_starting"] == 0
    wait_for(all_started, timeout=120, interval=0.001, what="every service started")

    assert any(n > 0 for n in seen), f"no answer while starting: {seen[:20]}"
    assert all(0 <= n <= N for n in seen)
    # Services are only ever started here, never un-started: the count falls.
    assert seen == sorted(seen, reverse=True), seen

    # None counted as started lacks its process: a first spawn still on a
    # spawner thread counts as starting until it reports its pid.
    views = rd.api("/v1/services")
    assert len(views) == N
    assert [v["name"] for v in views if not v["pid"]] == []
    assert all(v["process"] == "running" for v in views), views
    assert len({v["pid"] for v in views}) == N
    # Dependencies still come first: s000 waited, and started once the last was ready.
    assert log_events_of(rd, "s000", "start-waiting")
    ready = log_events_of(rd, "s000", "dependencies-ready")
    assert len(ready) == 1 and f"last=s{N - 1:03d}" in ready[0][1], ready
    assert log_events_of(rd, f"s{N - 1:03d}", "spawned")[0][0] <= \
        log_events_of(rd, "s000", "spawned")[0][0]


def test_services_starting_follows_reloads_and_waits(recoverd, tmp_path):
    """services_starting is a count kept as services come and go: a service
    removed by a reload leaves it, one added counts until it has started,
    and one waiting for its dependency counts until that one is ready."""
    marker = tmp_path / "dep-ready"
    sleeper = {"command": ["sleep", "1000"], "stop": {"signal": "TERM", "grace": "2s"}}
    config = {"services": {"a": dict(sleeper), "b": dict(sleeper)}}
    rd = recoverd(config)

    def starting():
        st = rd.api("/v1/status")
        assert st["services_starting"] <= st["services"], st
        return st["services"], st["services_starting"]

    rd.wait_for(lambda: starting() == (2, 0), what="a and b started")
    del config["services"]["b"]
    config["services"]["dep"] = dict(sleeper, checks=[marker_check(str(marker))])
    config["services"]["w"] = dict(sleeper, depends_on=["dep"])
    rd.write_config(config)
    rd.signal(signal.SIGHUP)
    rd.wait_for(lambda: log_events_of(rd, "w", "start-waiting"), what="w waiting for dep")
    # w alone: b is gone, dep has started
    rd.wait_for(lambda: starting() == (3, 1), what="one service waiting")
    assert rd.service("w")["pid"] is None
    marker.touch()
    rd.wait_for(lambda: starting() == (3, 0), what="w started once dep was ready")
    wait_running(rd, "w")


def test_reload_asked_while_services_are_made_applies_once_all_exist(recoverd):
    """A SIGHUP that comes while the services are still being made (or
    started) is not lost and does not act on half of them: once all exist
    the new configuration is applied, every service of it runs, the one it
    removed is gone."""
    base = f"{5000 + random.randrange(1000)}.{os.getpid()}{random.randrange(10**5):05d}"
    services = {f"s{i:03d}": {"command": ["sleep", f"{base}{i:03d}"],
                              "stop": {"signal": "TERM", "grace": "2s"}}
                for i in range(N)}
    config = {"services": services}
    rd = recoverd(config, start=False)
    rd.start(wait=False)
    config["services"] = dict(services)
    del config["services"][f"s{N - 1:03d}"]
    config["services"]["extra"] = {"command": ["sleep", f"{base}999"],
                                   "stop": {"signal": "TERM", "grace": "2s"}}
    rd.write_config(config)

    def answering():
        if not rd.running():
            raise RuntimeError(f"recoverd exited:\n{rd.log_text()[-4000:]}")
        try:
            return rd.request("GET", "/v1/status", timeout=2.0)[0] == 200
        except OSError:
            return False
    wait_for(answering, timeout=60, interval=0.001, what="the API answering")
    rd.signal(signal.SIGHUP)

    def applied():
        try:
            views = rd.api("/v1/services")
        except (OSError, ApiError):
            return False
        names = {v["name"] for v in views}
        return (f"s{N - 1:03d}" not in names and "extra" in names and len(views) == N
                and all(v["process"] == "running" for v in views))
    wait_for(applied, timeout=120, what="the reload applied, every service running")
    assert log_events_of(rd, "-", "reloaded")
