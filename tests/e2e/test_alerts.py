"""Webhook alerts end to end: one alert per fault (not per failed probe),
severity filtering, symptoms folded into their root's alert, escalations
reported, delivery retried until the receiver takes it, and undelivered
alerts kept (in the journal) across a receiver's outage and a restart of
recoverd."""

import json
import os
import re
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import (demo_service, faults_of, free_port, log_events_of, marker_check,
                     open_fault, touch_program, wait_running)


class Receiver:
    """A webhook receiver on 127.0.0.1: records every POST (status it
    answered, parsed JSON body) and answers 500 to the first fail_first."""

    def __init__(self, fail_first=0):
        self.fail_first = fail_first
        self.attempts = []  # (status answered, body) in arrival order
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    status = 500 if len(receiver.attempts) < receiver.fail_first else 200
                    receiver.attempts.append((status, json.loads(body)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.handler = Handler
        self.server = None
        self.port = 0
        self.start()
        self.url = f"http://127.0.0.1:{self.port}/hook"

    def start(self):
        """Listen (again, on the same port after stop)."""
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        """Stop listening: connections to the port are refused until start."""
        self.server.shutdown()
        self.server.server_close()
        self.server = None

    def delivered(self):
        """Bodies answered 2xx, in order."""
        with self.lock:
            return [body for status, body in self.attempts if status == 200]

    def events(self, fault_id=None):
        """(event, fault id) of the delivered messages (of one fault)."""
        out = [(m["event"], (m["fault"] or {}).get("id")) for m in self.delivered()]
        return [e for e in out if fault_id is None or e[1] == fault_id]

    def close(self):
        if self.server:
            self.stop()


@pytest.fixture
def receiver():
    made = []

    def make(**kw):
        r = Receiver(**kw)
        made.append(r)
        return r

    yield make
    for r in made:
        r.close()


def _alerts(receiver, **hook):
    return {"webhooks": [dict({"url": receiver.url, "timeout": "2s"}, **hook)]}


def _wait_healthy(rd, name):
    return rd.wait_for(lambda: (v := rd.service(name))["checks"] and
                       all(c["ok"] for c in v["checks"]) and v,
                       what=f"{name}'s checks passing")


def _quiet(receiver, seconds=0.5):
    """Wait until nothing new arrived for seconds; the delivered bodies."""
    n = -1
    while n != len(receiver.attempts):
        n = len(receiver.attempts)
        time.sleep(seconds)
    return receiver.delivered()


def test_one_alert_per_fault_plus_resolution(recoverd, receiver, tmp_path):
    hook = receiver()
    marker = tmp_path / "healthy"
    marker.touch()
    svc = {"checks": [marker_check(marker)], "recovery": ["repair"],
           "repair": {"command": touch_program(marker, sleep_s=1)}, "verify": "2s"}
    rd = recoverd({"alerts": _alerts(hook), "services": {"app": svc}})
    _wait_healthy(rd, "app")
    marker.unlink()

    rd.wait_for(lambda: faults_of(rd) and faults_of(rd)[0]["resolved_at"], timeout=10,
                what="the fault resolved")
    fault = faults_of(rd)[0]
    rd.wait_for(lambda: ("resolved", fault["id"]) in hook.events(), what="resolved delivered")
    _quiet(hook)
    # The check failed about ten times while the repair ran: still one alert.
    assert len(log_events_of(rd, "app", "probe-failed")) >= 3
    assert hook.events() == [("opened", fault["id"]), ("resolved", fault["id"])]
    opened, resolved = hook.delivered()
    assert opened["service"] == "app" and opened["fault"]["check"] == "command"
    assert opened["fault"]["severity"] == "high" and opened["fault"]["resolved_at"] is None
    assert resolved["fault"]["resolved_at"] is not None
    assert all(m["recoverd"]["host"] for m in (opened, resolved))


def _give_up(recoverd, hook, marker):
    """recoverd with app, whose check fails for good once marker is gone
    (a restart does not bring it back): app ends failed. Alerts from
    critical up."""
    marker.touch()
    svc = demo_service(free_port(), checks=[marker_check(marker)], recovery=["restart"],
                       verify="1s")
    rd = recoverd({"alerts": _alerts(hook, min_severity="critical"), "services": {"app": svc}})
    wait_running(rd, "app", min_uptime_ms=300)
    marker.unlink()
    rd.wait_for(lambda: rd.service("app")["state"] == "failed", timeout=10, what="app failed")
    return rd


def test_min_severity_filters(recoverd, receiver, tmp_path):
    hook = receiver()
    rd = _give_up(recoverd, hook, tmp_path / "healthy")
    faults = {f["check"]: f for f in faults_of(rd, "app")}
    assert faults["command"]["severity"] == "high"
    rd.wait_for(lambda: hook.delivered(), what="the give-up alert")
    msgs = _quiet(hook)
    assert [(m["event"], m["fault"]["id"]) for m in msgs] == \
        [("failed", faults["supervisor"]["id"])], msgs
    failed = msgs[0]
    assert failed["fault"]["severity"] == "critical" and failed["fault"]["check"] == "supervisor"
    assert "recovery chain exhausted" in failed["reason"]


def test_symptom_folded_into_root_alert(recoverd, receiver):
    hook = receiver()
    db_port = free_port()
    # db's restart waits 2.4-3.6 s: web's symptom opens well within it.
    db = demo_service(db_port, restart={"max": 5, "window": "30s", "stable": "10s",
                                        "backoff": {"initial": "3s", "max": "3s"}})
    web = demo_service(free_port(), depends_on=["db"], checks=[
        {"tcp": {"address": f"127.0.0.1:{db_port}", "interval": "100ms", "timeout": "200ms",
                 "fall": 2, "rise": 1}}])
    rd = recoverd({"alerts": _alerts(hook), "services": {"db": db, "web": web}})
    db_old = wait_running(rd, "db")
    wait_running(rd, "web")
    os.kill(db_old["pid"], signal.SIGKILL)

    rd.wait_for(lambda: rd.service("web")["open_faults"], what="web's symptom fault")
    wait_running(rd, "db", not_pid=db_old["pid"])
    rd.wait_for(lambda: len(faults_of(rd)) == 2 and all(f["resolved_at"] for f in faults_of(rd)),
                what="both faults resolved")
    root, symptom = faults_of(rd, "db")[0], faults_of(rd, "web")[0]
    assert symptom["context"]["root_cause"]["fault"] == root["id"]
    rd.wait_for(lambda: ("resolved", root["id"]) in hook.events(), what="root resolved sent")
    msgs = _quiet(hook)
    assert hook.events() == [("opened", root["id"]), ("resolved", root["id"])], msgs
    assert msgs[1]["symptoms"] == [symptom["id"]]
    assert all(m["service"] == "db" for m in msgs)


def test_escalation_sends_escalated_event(recoverd, receiver, tmp_path):
    hook = receiver()
    marker = tmp_path / "healthy"
    marker.touch()
    svc = demo_service(free_port(), checks=[marker_check(marker)], recovery=["restart", "repair"],
                       repair={"command": touch_program(marker)}, verify="1s")
    rd = recoverd({"alerts": _alerts(hook), "services": {"app": svc}})
    wait_running(rd, "app", min_uptime_ms=300)
    marker.unlink()

    rd.wait_for(lambda: faults_of(rd) and faults_of(rd)[0]["resolved_at"], timeout=10,
                what="the fault resolved")
    fault = faults_of(rd)[0]
    rd.wait_for(lambda: ("resolved", fault["id"]) in hook.events(), what="resolved delivered")
    msgs = _quiet(hook)
    assert hook.events() == [("opened", fault["id"]), ("escalated", fault["id"]),
                             ("resolved", fault["id"])], msgs
    esc = msgs[1]
    assert esc["action"]["strategy"] == "restart" and esc["action"]["status"] == "failed"
    assert esc["action"]["result"].startswith("not verified within 1000 ms")
    assert esc["next_strategy"] == "repair"


def test_webhook_retries_until_receiver_up(recoverd, receiver, tmp_path):
    hook = receiver(fail_first=2)
    marker = tmp_path / "healthy"
    marker.touch()
    svc = {"checks": [marker_check(marker)], "recovery": ["repair"],
           "repair": {"command": touch_program(marker)}, "verify": "2s"}
    rd = recoverd({"alerts": _alerts(hook, retries=5), "services": {"app": svc}})
    _wait_healthy(rd, "app")
    marker.unlink()

    rd.wait_for(lambda: faults_of(rd) and faults_of(rd)[0]["resolved_at"], what="resolved")
    fault = faults_of(rd)[0]
    rd.wait_for(lambda: ("resolved", fault["id"]) in hook.events(), timeout=10,
                what="the alerts delivered after the receiver recovered")
    _quiet(hook)
    attempts = [(status, m["event"], m["fault"]["id"]) for status, m in hook.attempts]
    opened = ("opened", fault["id"])
    assert attempts[:3] == [(500, *opened), (500, *opened), (200, *opened)], attempts
    assert hook.events() == [opened, ("resolved", fault["id"])]  # each exactly once as 2xx
    retries = [rest for _, rest in log_events_of(rd, "app", "alert-retry")]
    assert len(retries) == 2 and all('error="HTTP 500"' in r for r in retries), retries


def _alert_retries(rd):
    """How many failed deliveries recoverd has logged so far."""
    return len(re.findall(r" alert-retry ", rd.log_text()))


def test_receiver_down_loses_no_alert(recoverd, receiver, tmp_path):
    # Issue 9: a receiver down for a few seconds lost "opened" for good.
    hook = receiver()
    marker = tmp_path / "healthy"
    marker.touch()
    svc = {"checks": [marker_check(marker)], "recovery": ["repair"],
           "repair": {"command": touch_program(marker)}, "verify": "2s"}
    rd = recoverd({"alerts": _alerts(hook, retries=2), "services": {"app": svc}})
    _wait_healthy(rd, "app")
    hook.stop()
    marker.unlink()

    rd.wait_for(lambda: faults_of(rd) and faults_of(rd)[0]["resolved_at"], what="resolved")
    fault = faults_of(rd)[0]
    # More failed attempts than `retries: 2` used to allow for "opened".
    rd.wait_for(lambda: _alert_retries(rd) >= 3, timeout=20, what="three failed deliveries")
    hook.start()
    rd.wait_for(lambda: ("resolved", fault["id"]) in hook.events(), timeout=40,
                what="resolved delivered once the receiver is back")
    msgs = _quiet(hook)
    assert hook.events() == [("opened", fault["id"]), ("resolved", fault["id"])], msgs
    assert [m["id"] for m in msgs] == sorted({m["id"] for m in msgs})  # distinct, in order
    assert " alert-dropped " not in rd.log_text()


def test_undelivered_alerts_survive_a_restart_of_recoverd(recoverd, receiver, tmp_path):
    hook = receiver()
    marker = tmp_path / "healthy"
    marker.touch()
    # Watched only: the fault stays open until the marker is back.
    svc = {"checks": [marker_check(marker)]}
    rd = recoverd({"alerts": _alerts(hook), "services": {"app": svc}})
    _wait_healthy(rd, "app")
    hook.stop()
    marker.unlink()
    fault = open_fault(rd, "app")
    rd.wait_for(lambda: _alert_retries(rd) >= 1, what="a failed delivery of opened")
    rd.stop()  # SIGTERM: the fault stays open in the journal, so does its alert

    marker.touch()
    rd.start()
    rd.wait_for(lambda: rd.api(f"/v1/faults/{fault['id']}")["resolved_at"],
                what="the adopted fault resolved")
    status = rd.api("/v1/status")["alerts"]
    assert status["pending"] == 2 and status["dropped"] == 0, status
    hook.start()
    rd.wait_for(lambda: ("resolved", fault["id"]) in hook.events(), timeout=40,
                what="resolved delivered once the receiver is back")
    msgs = _quiet(hook)
    assert hook.events() == [("opened", fault["id"]), ("resolved", fault["id"])], msgs
    assert msgs[0]["id"] != msgs[1]["id"]
    rd.wait_for(lambda: rd.api("/v1/status")["alerts"]["pending"] == 0, what="queue empty")
    assert rd.journal("SELECT count(*) AS n FROM alert_queue") == [{"n": 0}]


def test_failed_alert_is_resolved_by_a_restart(recoverd, receiver, tmp_path):
    # A service recoverd gave up on gets a "failed" alert; restarting
    # recoverd is a fresh start that resolves it, and the receiver hears so.
    hook = receiver()
    marker = tmp_path / "healthy"
    rd = _give_up(recoverd, hook, marker)
    gave_up = next(f for f in faults_of(rd, "app") if f["check"] == "supervisor")
    rd.wait_for(lambda: ("failed", gave_up["id"]) in hook.events(), what="the failed alert")
    rd.wait_for(lambda: rd.api("/v1/status")["alerts"]["pending"] == 0, what="it was answered")
    rd.stop()

    marker.touch()
    rd.start()
    rd.wait_for(lambda: ("resolved", gave_up["id"]) in hook.events(), what="its resolution")
    _quiet(hook)
    assert hook.events(gave_up["id"]) == [("failed", gave_up["id"]), ("resolved", gave_up["id"])]


def test_journal_of_the_previous_version_gains_the_alert_queue(recoverd, receiver):
    # Today's main wrote schema 1 (fixtures/journal-v1.sql): adopted, its
    # history kept, and alerts queue in it from then on.
    from test_upgrade import _gone_process, _start_v1
    hook = receiver()
    rd = _start_v1(recoverd, _gone_process())
    rd.write_config(dict(rd.config, alerts=_alerts(hook)))
    rd.signal(signal.SIGHUP)
    rd.wait_for(lambda: rd.api("/v1/status")["alerts"]["webhooks"], what="the webhook loaded")
    assert rd.journal("PRAGMA user_version")[0]["user_version"] >= 2
    rd.wait_for(lambda: rd.api("/v1/faults/3")["resolved_at"], what="v1 fault 3 resolved")
    worker = wait_running(rd, "worker")
    os.kill(worker["pid"], signal.SIGKILL)
    fault = rd.wait_for(lambda: [f for f in faults_of(rd, "worker") if f["id"] > 3 and
                                 f["resolved_at"]], what="a new fault of worker resolved")[0]
    rd.wait_for(lambda: ("resolved", fault["id"]) in hook.events(), what="its alerts delivered")
    assert hook.events() == [("opened", fault["id"]), ("resolved", fault["id"])]
    rd.wait_for(lambda: rd.journal("SELECT count(*) AS n FROM alert_queue") == [{"n": 0}],
                what="the queue emptied")
    assert " journal-error " not in rd.log_text()
