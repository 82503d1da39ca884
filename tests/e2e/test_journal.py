"""The journal end to end: what recoverd did is in state_dir/journal.db,
linked up, timed in order, and still there after recoverd restarts."""

import errno
import json
import os
import re
import signal
import subprocess
import time

import pytest

from helpers import (crash_recovered, ctl, demo_service, free_port, proc_start_ticks, post,
                     read_token, transitions, wait_running)

RECOVERY = [("normal", "degraded"), ("degraded", "recovering"), ("recovering", "recovered")]


def _kill_and_recover(rd, name="web"):
    old = wait_running(rd, name, min_uptime_ms=300)
    os.kill(old["pid"], signal.SIGKILL)
    new = wait_running(rd, name, not_pid=old["pid"])
    rd.wait_for(lambda: rd.journal("SELECT 1 FROM faults WHERE resolved_ms IS NOT NULL"),
                what="fault resolved in the journal")
    return old, new


def test_state_returns_to_normal_after_quiet(recoverd):
    rd = recoverd({"quiet": "500ms", "services": {"web": demo_service(free_port())}})
    _kill_and_recover(rd)
    rd.wait_for(lambda: rd.service("web")["state"] == "normal", what="web normal again")
    rd.wait_for(lambda: rd.api("/v1/status")["state"] == "normal", what="system normal again")

    assert transitions(rd, "web") == RECOVERY + [("recovered", "normal")]
    assert transitions(rd, None) == RECOVERY + [("recovered", "normal")]
    rows = rd.journal("SELECT service, to_state, at_ms, cause FROM transitions "
                      "WHERE to_state IN ('recovered', 'normal') ORDER BY id")
    for who in ("web", None):
        mine = [r for r in rows if r["service"] == who]
        recovered, normal = mine[0], mine[1]
        assert normal["cause"] == "quiet period elapsed"
        # Not before the quiet period (5 ms for the journal's whole-ms
        # stamps); how soon after it is latency, not a verdict: the wait
        # above bounds it.
        assert normal["at_ms"] - recovered["at_ms"] >= 495, mine


def test_journal_rows_link_up_after_a_recovery(recoverd):
    rd = recoverd({"services": {"web": demo_service(free_port())}})
    old, new = _kill_and_recover(rd)

    faults = rd.journal("SELECT * FROM faults")
    assert len(faults) == 1
    f = faults[0]
    assert (f["service"], f["check_name"], f["type"], f["severity"], f["impact"]) == \
        ("web", "process", "software", "high", "service")
    assert f["opened_ms"] <= f["resolved_ms"]

    actions = rd.journal("SELECT * FROM actions")
    assert len(actions) == 1
    a = actions[0]
    assert (a["fault_id"], a["service"], a["strategy"], a["status"]) == \
        (f["id"], "web", "restart", "completed")
    assert f["opened_ms"] <= a["created_ms"] <= a["started_ms"] <= a["finished_ms"]
    assert a["finished_ms"] <= f["resolved_ms"]
    assert str(new["pid"]) in a["result"]

    rows = rd.journal("SELECT * FROM transitions ORDER BY id")
    assert [r["at_ms"] for r in rows] == sorted(r["at_ms"] for r in rows)
    assert rows[0]["at_ms"] >= f["opened_ms"]
    assert f"fault {f['id']} opened" in rows[0]["cause"]

    # The child table names the live process, with its real start time and
    # the fingerprint of the configuration it was started from.
    child = rd.journal("SELECT * FROM children")
    assert len(child) == 1 and re.fullmatch(r"[0-9a-f]{16}", child[0].pop("fingerprint"))
    assert child == [{"service": "web", "pid": new["pid"],
                      "start_ticks": proc_start_ticks(new["pid"])}]

    # The API shows the journal, not a copy of its own.
    api_fault = rd.api(f"/v1/faults/{f['id']}")
    assert (api_fault["check"], api_fault["description"]) == (f["check_name"], f["description"])
    assert [x["id"] for x in api_fault["actions"]] == [a["id"]]


def test_history_survives_a_clean_restart(recoverd):
    rd = recoverd({"services": {"web": demo_service(free_port())}})
    _kill_and_recover(rd)
    before = rd.api("/v1/faults")
    rd.stop()
    assert rd.journal("SELECT * FROM children") == []  # nothing left running

    rd.start()
    wait_running(rd, "web")
    assert rd.api("/v1/faults") == before
    status = rd.api("/v1/status")
    assert (status["resolved_faults"], status["recovery_actions"]) == (1, 1)
    assert rd.api("/v1/actions")[0]["status"] == "completed"  # not touched by the restart
    assert transitions(rd, "web")[:3] == RECOVERY


def test_reads_see_every_event_before_them(recoverd):
    """Journal reads run on recoverd's reader thread, on a connection of
    their own: each must still see every event the loop handled before the
    request. /v1/status counts on the loop's own connection; a summary
    asked right after it must count at least as much, through a crash
    loop's opens, resolves and actions."""
    rd = recoverd({"services": {"web": demo_service(free_port())}})
    pid = None
    seen = 0
    for _ in range(3):
        old = wait_running(rd, "web", min_uptime_ms=300, not_pid=pid)
        os.kill(old["pid"], signal.SIGKILL)
        pid = old["pid"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:  # until the new process runs: the whole recovery
            # The service first: a recovery seen done here is counted below
            # (read after it), however fast it went.
            svc = rd.service("web")
            status = rd.api("/v1/status")
            summary = rd.api("/v1/faults/summary")
            faults = rd.api("/v1/faults?limit=1")
            counted = status["active_faults"] + status["resolved_faults"]
            assert summary["total"] >= counted, (status, summary)
            assert summary["active"] >= 0 and summary["resolved"] >= status["resolved_faults"]
            if counted:
                assert faults and faults[0]["id"] >= counted, (status, faults)
            seen = max(seen, counted)
            if svc.get("pid") not in (None, pid) and svc["state"] in ("recovered", "normal"):
                break
        else:
            pytest.fail(f"web not recovered: {rd.service('web')}")
    assert seen >= 3


def test_histograms_of_detection_and_recovery_survive_a_restart(recoverd):
    """Two crashes recovered: /v1/metrics shows both in the detection and
    recovery histograms (a child's exit is detected at once: bucket 0.005),
    overall and for the service, and the same after recoverd restarts."""
    rd = recoverd({"services": {"web": demo_service(free_port())}})
    crash_recovered(rd, "web", 2)
    rd.wait_for(lambda: rd.api("/v1/faults/summary")["resolved"] == 2, what="both faults resolved")
    m = rd.api("/v1/metrics")
    for scope in (m["overall"], m["by_service"]["web"]):
        det, rec = scope["detection_seconds"], scope["recovery_seconds"]
        assert det["count"] == 2 and det["buckets"]["0.005"] == 2, det
        assert rec["count"] == 2 and rec["buckets"]["+Inf"] == 2, rec
        assert list(rec["buckets"]) == ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
                                        "1", "2.5", "5", "10", "30", "60", "300", "+Inf"]
        counts = list(rec["buckets"].values())
        assert counts == sorted(counts), rec  # cumulative
        assert 0 < rec["sum_s"] <= 2 * 300, rec
    rd.stop()
    rd.start()
    wait_running(rd, "web")
    again = rd.api("/v1/metrics")
    assert again["overall"]["recovery_seconds"] == m["overall"]["recovery_seconds"]
    assert again["by_service"]["web"]["detection_seconds"] == \
        m["by_service"]["web"]["detection_seconds"]


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs of our own: a disk we can fill without touching the host's."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fill(path):
    """Write until the disk says no; returns the file that filled it."""
    filler = path / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC, e
    return filler


def test_a_full_disk_delays_the_journal_but_loses_nothing(recoverd, small_disk):
    """State dir on a full disk: recovery goes on, the refused writes wait in
    memory (the status says so), and all of them reach the journal, in
    order, once there is room again."""
    port = free_port()
    rd = recoverd({"state_dir": str(small_disk / "state"),
                   "services": {"web": demo_service(port)}})
    rd.state_dir = small_disk / "state"
    wait_running(rd, "web", min_uptime_ms=300)
    filler = _fill(small_disk)

    pids = []
    for _ in range(3):
        old, _new = _kill_and_restart(rd)
        pids.append(old["pid"])
    status = rd.wait_for(lambda: (s := rd.api("/v1/status"))["journal"]["state"] == "behind" and s,
                         what="the journal behind")
    assert status["journal"]["waiting_writes"] > 0
    assert "full" in status["journal"]["error"]
    assert rd.service("web")["restarts"] == 3  # recovery did not wait for the disk
    assert "journal-behind" in rd.log_text()

    filler.unlink()
    rd.wait_for(lambda: rd.api("/v1/status")["journal"] == {"state": "ok", "waiting_writes": 0},
                what="the journal caught up")  # retried every second
    assert "journal-caught-up" in rd.log_text()
    faults = rd.journal("SELECT id, description, resolved_ms FROM faults ORDER BY id")
    assert [f["id"] for f in faults] == [1, 2, 3]
    for f, pid in zip(faults, pids):
        assert f["resolved_ms"] and "signal 9" in f["description"], f
    acts = rd.journal("SELECT fault_id, strategy, status FROM actions ORDER BY id")
    assert [(a["fault_id"], a["strategy"], a["status"]) for a in acts] == \
        [(i, "restart", "completed") for i in (1, 2, 3)]
    again = [("recovered", "degraded")] + RECOVERY[1:]  # within the quiet period
    assert transitions(rd, "web") == RECOVERY + again * 2
    # The API shows them now, as it shows anything: once on disk.
    assert [f["id"] for f in rd.api("/v1/faults")] == [3, 2, 1]


def _kill_and_restart(rd, name="web"):
    old = wait_running(rd, name, min_uptime_ms=300)
    os.kill(old["pid"], signal.SIGKILL)
    return old, wait_running(rd, name, not_pid=old["pid"])


def _page(rd, path):
    """GET path: (rows, the next page's path from the Link header or None)."""
    import re
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{rd.api_port}{path}", timeout=5) as resp:
        rows, link = json.loads(resp.read()), resp.headers.get("Link")
    if link is None:
        return rows, None
    m = re.fullmatch(r'<(/v1/[^>]+)>; rel="next"', link)
    assert m, link
    return rows, m.group(1)


def _walk(rd, path):
    """Every row of a list, page by page, and how many pages it took."""
    rows, pages = [], 0
    while path:
        page, path = _page(rd, path)
        rows += page
        pages += 1
    return rows, pages


def test_lists_page_with_a_cursor_through_the_api_and_recoverctl(recoverd):
    names = [f"s{i}" for i in range(5)]
    rd = recoverd({"services": {n: demo_service(free_port()) for n in names}})
    for n in names:
        wait_running(rd, n)
    _kill_and_recover(rd, "s0")
    everything = rd.api("/v1/transitions?limit=1000")
    assert len(everything) >= 6
    # Paging newest first, 2 a page: the same rows in the same order; a
    # new transition meanwhile (a hold) lands above the pages, not in them.
    first, nxt = _page(rd, "/v1/transitions?limit=2")
    assert first == everything[:2] and nxt == f"/v1/transitions?limit=2&before={first[1]['id']}"
    assert post(rd, "/v1/services/s1/hold", token=read_token(rd))[0] == 200
    rest, pages = _walk(rd, nxt)
    assert first + rest == everything and pages == (len(everything) - 2) // 2 + 1
    # A filter stays in the next page's link.
    web, _ = _walk(rd, "/v1/transitions?service=s0&limit=1")
    assert [t["id"] for t in web] == [t["id"] for t in everything if t["service"] == "s0"]
    # Services without a limit: every one; with one, pages after a name.
    assert [s["name"] for s in rd.api("/v1/services")] == names
    paged, pages = _walk(rd, "/v1/services?limit=2")
    assert [s["name"] for s in paged] == names and pages == 3
    # A fault row counts its actions; the page of faults has a cursor too.
    faults, _ = _walk(rd, "/v1/faults?limit=1")
    assert len(faults) == 1 and faults[0]["actions"] == 1
    status, _ = rd.request("GET", "/v1/faults?before=x")
    assert status == 400

    r = ctl(rd, "transitions", "--limit", "2")
    assert r.returncode == 0, r.stderr
    assert f"more: --before {rd.api('/v1/transitions?limit=2')[1]['id']}" in r.stderr
    r = ctl(rd, "--json", "transitions", "--limit", "3", "--before", str(first[1]["id"]))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == everything[2:5]
    r = ctl(rd, "faults", "--before", "abc")
    assert r.returncode == 2 and "--before" in r.stderr
