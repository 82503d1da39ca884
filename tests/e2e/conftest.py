"""Fixtures of the end-to-end tests (run with `pytest-3 tests/e2e`).

Binaries come from $RECOVERD_BUILD, else <repo>/build-asan if it exists,
else <repo>/build. The classes and helpers live in helpers.py (tests import
them with `from helpers import ...`).

What the fixtures expect of recoverd:
  - `recoverd -c FILE --log-level debug` runs the daemon and logs to
    stderr (captured in tmp/recoverd.log); `recoverd -c FILE --check-config`
    validates FILE, prints errors as file:line:col, exits non-zero on error.
  - FILE is written as indented JSON, which is YAML 1.2 flow style: libfyaml
    parses it and reports real line:column positions.
  - Config keys set by the fixture: `state_dir` (tmp/state; the journal is
    state_dir/journal.db, SQLite WAL, read here with the sqlite3 module) and
    `api.listen` ("127.0.0.1:PORT" on a free port).
  - GET /v1/status answers JSON once the daemon listens (from its first
    loop turn, before its services exist) and says in `services_starting`
    how many are not started yet; ready is both (waited for, 10 s);
    GET /v1/services lists service views, GET /v1/services/NAME gives one,
    with the service's process as an integer `pid`. Mutating calls carry
    "Authorization: Bearer TOKEN" when a token is given.
  - SIGTERM stops recoverd and its services, exit code 0.
  - Teardown kills what is left: recoverd is started in a session of its
    own, and every process group whose leader's pid the API reported (a
    pid is trusted only while its /proc start time matches). Nothing is
    ever found by name. A log with an ASan/UBSan report fails the test.
"""

import pytest

import helpers
from helpers import Demo, Recoverd, demo_cmd, free_port  # noqa: F401 (re-exported)


@pytest.fixture
def recoverd(tmp_path, request):
    """Factory: recoverd(config_dict_or_yaml_text, start=True, started=True,
    **kw) -> Recoverd, started and waited for until its API answers and,
    with started, every service is started (Recoverd.wait_ready). Several
    instances per test get their own sub-directories."""
    made = []

    def make(config=None, start=True, started=True, **kw):
        rd = Recoverd(tmp_path / f"rd{len(made)}", config, **kw)
        made.append(rd)
        if start:
            rd.start(started=started)
        return rd

    yield make
    errors = []
    for rd in made:
        rd.cleanup()
        errors += rd.sanitizer_errors()
    if errors:
        pytest.fail("sanitizer reports in recoverd's log:\n" + "\n".join(errors[:20]))


@pytest.fixture
def demo():
    """Factory: demo(*extra_args, port=None, stdout=DEVNULL) -> Demo, a
    recoverd-demo run directly by the test, killed at teardown."""
    made = []

    def make(*extra, **kw):
        d = Demo(*extra, **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        d.close()


@pytest.fixture(scope="session")
def build_dir():
    return helpers.build_dir()
