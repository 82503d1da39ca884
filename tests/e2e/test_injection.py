"""Nothing injected: text from outside (a check's output here) reaches
recoverd's log and recoverctl's terminal escaped. A quote cannot forge a
key=value, a newline or CR cannot forge a log line, an escape sequence
cannot reach the operator's terminal."""

import json
import re

from helpers import LOG_EVENT_LINE, ctl, ctl_table, open_fault, wait_for

FORGED = "2026-01-01T00:00:00.000Z info  probe check-passing check=forged"
# The plugin's first line (the reason) carries a quote, a forged field, a
# screen clear and a CR-forged line; the next line a forged log line.
OUTPUT = (f'CRITICAL: db said "no" fails=0 \\033[2J\\r{FORGED}\\n'
          f'{FORGED} \\033[2J\\n')
SCRIPT = f"printf '{OUTPUT}'; exit 2"
REASON = f'CRITICAL: db said "no" fails=0 \x1b[2J\r{FORGED}'

PAIR = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s"]+)(?: |$)')


def logfmt(tail):
    """key=value pairs of a log line's tail; fails on anything else."""
    out, at = {}, 0
    while at < len(tail):
        m = PAIR.match(tail, at)
        assert m, f"not key=value at {tail[at:]!r}"
        assert m.group(1) not in out, f"{m.group(1)} twice in {tail!r}"
        out[m.group(1)] = m.group(2)
        at = m.end()
    return out


def unquote(v):
    """A logfmt value back to its bytes (\\xNN, \\n, \\r, \\t, \\", \\\\)."""
    if not v.startswith('"'):
        return v
    raw = re.sub(r'\\(x[0-9a-f]{2}|.)',
                 lambda m: (chr(int(m.group(1)[1:], 16)) if m.group(1)[0] == "x" else
                            {"n": "\n", "r": "\r", "t": "\t"}.get(m.group(1), m.group(1))),
                 v[1:-1])
    return raw


def test_check_output_cannot_forge_log_lines_or_reach_the_terminal(recoverd):
    # Watched only (no command): the fault is the whole response, so the
    # check crosses its fall threshold once.
    check = {"command": {"name": "db", "argv": ["/bin/sh", "-c", SCRIPT],
                         "interval": "100ms", "timeout": "2s", "fall": 1, "rise": 1}}
    rd = recoverd({"services": {"probe": {"checks": [check]}}})
    fault = open_fault(rd, "probe")
    assert fault["description"].endswith(REASON), fault  # the API keeps the real text
    wait_for(lambda: "fault-opened" in rd.log_text(), what="fault-opened logged")

    log = rd.log_text()
    assert "\x1b" not in log and "\r" not in log
    event = re.compile(LOG_EVENT_LINE)
    lines = [(line, event.match(line)) for line in log.splitlines()]
    assert all(m for _, m in lines), [line for line, m in lines if not m]  # no forged line
    for line, m in lines:
        assert not (m.group(8) == "check-passing" and "forged" in m.group(9)), line
        logfmt(m.group(9))  # every line's tail is key=value pairs, nothing else
    failing = [m for _, m in lines if m.group(8) == "check-failing"]
    assert len(failing) == 1, log[-3000:]
    fields = logfmt(failing[0].group(9))
    assert set(fields) == {"check", "fails", "reason"}, fields
    assert (fields["check"], fields["fails"]) == ("db", "1")
    assert unquote(fields["reason"]) == REASON  # escaped, not lost
    assert "\\x1b[2J" in fields["reason"] and '\\"no\\"' in fields["reason"]

    for args in (["services"], ["faults"], ["service", "probe"], ["fault", str(fault["id"])],
                 ["status"]):
        r = ctl(rd, *args)
        assert r.returncode == 0, r.stderr
        assert "\x1b" not in r.stdout and "\r" not in r.stdout, (args, r.stdout)
        assert "\x1b" not in r.stderr, (args, r.stderr)
    text = ctl(rd, "faults").stdout
    desc = ctl_table(text)[str(fault["id"])]["DESCRIPTION"]
    assert desc.endswith("\\x1b[2J\\r" + FORGED), desc  # shown, escaped, on its row
    assert not any(line.startswith("2026-01-01") for line in text.splitlines())

    r = ctl(rd, "--json", "faults")
    assert r.returncode == 0 and "\x1b" not in r.stdout
    assert json.loads(r.stdout)[0]["description"].endswith(REASON)  # valid JSON, same text
