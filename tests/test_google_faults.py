"""A misbehaving Google at every request of ``init`` and ``sync``: the spreadsheet ends as it
was or fully laid out / updated (never half), the failure is one clear line, a re-run
converges, and no command outlives its deadline, however slowly the server answers.

Real gspread over HTTP against the loopback fake (tests/fake_sheets.py) with one fault armed at
one request index per case: 15 faults x 8 request indexes (init on a new spreadsheet: 2
requests; init next to an existing empty tab: 3; sync with the template told from the tabs:
3)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fake_sheets import FakeSheets, make_client

import leverage_sheets as sb
from bench.measure import sample_grids
from leverage.layout import TEMPLATES

TIMEOUT = 0.25  # the client gives up on a request the fake holds (until released) after this
DEADLINE = 0.75  # seconds for a whole init or sync, in the cases about the clock
# Healthy answers are never raced against a clock: a busy machine makes them slow, and a fault
# must then fail the command, not a timeout. The short timeout applies to the held request
# only (the fake holds it until released); a trickled answer's last byte is held until
# released too, so its deadline is the only thing that can end the command, however late.
GENEROUS = {"timeout": 30.0, "deadline": 60.0}
HTML = (b"<!DOCTYPE html>\n<html><head><title>Error 502 (Server Error)!!1</title></head>"
        b"<body><p>That's an error. " + b"x" * 3000 + b"</p></body></html>")
WRONG_SHAPE = (b'{"spreadsheetId": "someone-else", "sheets": {"properties": 1}, '
               b'"valueRanges": "oops", "replies": 3, "responses": null}')

Arm = Callable[[FakeSheets, int], None]
FAULTS: dict[str, Arm] = {
    "429": lambda f, at: f.inject(429, at=at),
    "500": lambda f, at: f.inject(500, at=at),
    "500 html": lambda f, at: f.inject_answer(HTML, status=500, at=at),
    "400 null": lambda f, at: f.inject_answer(b"null", status=400, at=at),
    "timeout": lambda f, at: f.inject_timeout(at=at, seconds=None, client_timeout=TIMEOUT),
    "timeout applied": lambda f, at: f.inject_timeout(at=at, seconds=None, applied=True,
                                                      client_timeout=TIMEOUT),
    "reset": lambda f, at: f.inject_reset(at=at),
    "reset applied": lambda f, at: f.inject_reset(at=at, applied=True),
    "200 html": lambda f, at: f.inject_answer(HTML, at=at),
    "200 null": lambda f, at: f.inject_answer(b"null", at=at),
    "200 {}": lambda f, at: f.inject_answer(b"{}", at=at),
    "200 wrong shape": lambda f, at: f.inject_answer(WRONG_SHAPE, at=at),
    "200 truncated json": lambda f, at: f.inject_answer(at=at, keep=0.5),
    "200 cut connection": lambda f, at: f.inject_answer(at=at, keep=0.5, short=True),
    "200 trickle": lambda f, at: f.inject_answer(at=at, trickle=0.05),
}
# What each fault is tested with: a short deadline for the trickle (which no read timeout
# catches); the others with a generous one (the held request has its own short timeout).
CLOCK: dict[str, dict[str, float]] = {
    "200 trickle": {"timeout": GENEROUS["timeout"], "deadline": DEADLINE},
}
TIMED = ("timeout", "timeout applied", "200 trickle")  # the faults a clock ends


def _init_new(fake: FakeSheets) -> tuple[str, Callable[[sb.GoogleBackend], Any]]:
    key = fake.create_spreadsheet("new", sheets={"Sheet1": [["keep me"]]})
    return key, lambda backend: sb.init(backend, "journal", sample=True)


def _init_existing(fake: FakeSheets) -> tuple[str, Callable[[sb.GoogleBackend], Any]]:
    key = fake.create_spreadsheet("half", sheets={"Sheet1": [["keep me"]], "Account": []})
    return key, lambda backend: sb.init(backend, "rebalance", sample=True)


def _sync_auto(fake: FakeSheets) -> tuple[str, Callable[[sb.GoogleBackend], Any]]:
    key = fake.create_spreadsheet("journal", sheets=sample_grids("journal", 20))

    def run(backend: sb.GoogleBackend) -> Any:
        with backend.deadline_window():  # as `leverage sheets sync` does
            return sb.sync(backend, sb.detect_template(backend))

    return key, run


SCENARIOS = {"init new": (_init_new, 2), "init existing": (_init_existing, 3),
             "sync": (_sync_auto, 3)}
CASES = [(name, at) for name, (_, n) in SCENARIOS.items() for at in range(n)]


def _backend(fake: FakeSheets, key: str, **policy: Any) -> sb.GoogleBackend:
    settings: dict[str, Any] = {"max_attempts": 1, "sleep": lambda s: None, **GENEROUS}
    return sb.open_google(key, client=make_client(fake, timeout=GENEROUS["timeout"]),
                          policy=sb.RetryPolicy(**(settings | policy)))


def _named(value: Any, ids: dict[int, str]) -> Any:
    """``value`` with sheet ids replaced by titles, so two spreadsheets compare."""
    if isinstance(value, dict):
        return {k: ids.get(v, v) if k == "sheetId" else _named(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_named(v, ids) for v in value]
    return value


def _state(fake: FakeSheets, key: str, formats: bool = True) -> Any:
    """Everything init or sync can change: tabs, values, rules and the formatting requests."""
    titles = [p["title"] for p in _titles(fake, key)]
    ids = {p["sheetId"]: p["title"] for p in _titles(fake, key)}
    state = {t: (fake.values(key, t), _named(fake.conditional_formats(key, t), ids))
             for t in titles}
    log = _named(fake.batch_requests(key), ids) if formats else None
    return titles, state, log


def _titles(fake: FakeSheets, key: str) -> list[dict[str, Any]]:
    client = make_client(fake)
    return [ws._properties for ws in client.open_by_key(key).worksheets()]


@pytest.fixture(scope="module")
def finished(fake: FakeSheets) -> dict[str, Any]:
    """Each scenario's state after a clean run: the only state besides the old one allowed."""
    out = {}
    for name, (make, requests) in SCENARIOS.items():
        key, run = make(fake)
        backend = _backend(fake, key, **GENEROUS)
        run(backend)
        assert backend.requests == requests, name  # the matrix covers every request
        out[name] = _state(fake, key)
    return out


def _one_clear_line(message: str) -> None:
    assert "\n" not in message and "Traceback" not in message
    assert len(message) < 600, message
    assert "x" * 80 not in message  # a short prefix of a body at most


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize(("scenario", "at"), CASES)
def test_a_fault_at_any_request_leaves_all_or_nothing(
    fake: FakeSheets, finished: dict[str, Any], scenario: str, at: int, fault: str
) -> None:
    key, run = SCENARIOS[scenario][0](fake)
    before = _state(fake, key)
    clock = CLOCK.get(fault, GENEROUS)
    backend = _backend(fake, key, **clock)
    FAULTS[fault](fake, at)
    with pytest.raises(sb.SheetsError) as err:
        run(backend)
    fake.clear_faults()
    _one_clear_line(str(err.value))
    if fault in ("timeout", "timeout applied"):
        assert "timed out" in str(err.value) and "deadline" not in str(err.value)
    if fault not in TIMED:  # the fault itself ended the command, at once
        assert "timed out" not in str(err.value) and "deadline" not in str(err.value)
    if fault in ("200 html", "200 null", "200 {}", "200 wrong shape", "200 truncated json"):
        assert "not a spreadsheet response at" in str(err.value)
    if fault == "200 trickle":
        assert f"within the {DEADLINE:g} s deadline" in str(err.value)
    after = _state(fake, key)
    assert after in (before, finished[scenario]), "half-written spreadsheet"
    run(_backend(fake, key, **GENEROUS))  # a re-run completes what is missing
    assert _state(fake, key, formats=False) == (*finished[scenario][:2], None)


@pytest.mark.parametrize("slow_head", [False, True], ids=["slow body", "slow headers"])
@pytest.mark.parametrize("scenario", ["init new", "sync"])
def test_a_trickling_server_cannot_outlast_the_deadline(
    fake: FakeSheets, scenario: str, slow_head: bool
) -> None:
    """A byte every 100 ms keeps the read timeout from ever firing, whether the status line
    and headers come slowly or only the body; the deadline still ends the command, however
    many attempts are left (the fake holds each answer's last byte until released)."""
    key, run = SCENARIOS[scenario][0](fake)
    backend = _backend(fake, key, max_attempts=5, deadline=1.0)
    fake.inject_answer(at=0, trickle=0.1, times=5, slow_head=slow_head)
    with pytest.raises(sb.RequestFailed, match=r"did not finish within the 1 s deadline") as err:
        run(backend)
    fake.clear_faults()
    _one_clear_line(str(err.value))


def test_backoff_never_sleeps_past_the_deadline(fake: FakeSheets) -> None:
    key, run = _sync_auto(fake)
    sleeps: list[float] = []
    # Only sleeping moves the clock: however slow the 503s come back, the waits decide.
    backend = _backend(fake, key, max_attempts=6, deadline=5.0, base_delay=2.0,
                       random=lambda: 0.999, sleep=sleeps.append, clock=lambda: sum(sleeps),
                       timeout=GENEROUS["timeout"])
    fake.inject(503, times=6)
    with pytest.raises(sb.RequestFailed, match=r"within the 5 s deadline after 2 "
                                               r"attempts \(last failure: HTTP 503"):
        run(backend)
    fake.clear_faults()
    assert len(sleeps) == 1  # the next wait (4 s) would have crossed the deadline


def test_a_layout_is_one_request_that_writes_headers_raw(fake: FakeSheets) -> None:
    """init = the tab list + one batchUpdate holding the tabs, their formats and their cells
    (was 3 requests: tabs and formats, then the headers in a second write)."""
    key, _ = _init_new(fake)
    backend = _backend(fake, key, **GENEROUS)
    fake.reset_log()
    sb.init(backend, "journal", sample=True)
    assert [(r.method, r.path.rsplit(":", 1)[-1]) for r in fake.requests] == [
        ("GET", f"/v4/spreadsheets/{key}"), ("POST", "batchUpdate")]
    for sheet in TEMPLATES["journal"]:
        assert fake.values(key, sheet.title)[0][: len(sheet.headers)] == sheet.headers
        assert fake.cell_input_mode(key, sheet.title, "A1") == "RAW"


def test_text_in_the_layout_is_never_a_formula(fake: FakeSheets) -> None:
    from leverage_sheets.google import _cell_data

    assert _cell_data("=1+1") == {"userEnteredValue": {"stringValue": "=1+1"}}
    assert _cell_data(None) == {} and _cell_data(True) == {"userEnteredValue": {"boolValue": True}}


@pytest.mark.parametrize("command", ["init", "sync"])
def test_cli_commands_end_at_their_deadline(
    fake: FakeSheets, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    import leverage_sheets.cli as sheets_cli
    from leverage.cli import main

    key, _ = _init_new(fake) if command == "init" else _sync_auto(fake)
    real = sheets_cli.open_google

    def wired(key: str, credentials: Any, policy: sb.RetryPolicy) -> sb.GoogleBackend:
        return real(key, client=make_client(fake), policy=policy)

    monkeypatch.setattr(sheets_cli, "open_google", wired)
    fake.inject_answer(at=1, trickle=0.1, times=6)  # the second request comes a byte at a time
    args = ["sheets", command, "--key", key, "--deadline", "1"]
    assert main([*args, "--template", "journal"] if command == "init" else args) == 2
    fake.clear_faults()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "within the 1 s deadline" in err and "Traceback" not in err


ODD_SHAPES = {
    "sheets not a list": (0, b'{"sheets": "Sheet1"}'),
    "title not text": (0, b'{"sheets": [{"properties": {"sheetId": 0, "title": 5}}]}'),
    "row count not a number": (0, b'{"sheets": [{"properties": {"sheetId": 0, "title": "A", '
                                  b'"gridProperties": {"rowCount": "many"}}}]}'),
    "ranges not objects": (1, b'{"valueRanges": [1, 2, 3]}'),
    "values not rows": (1, b'{"valueRanges": [{"values": "abc"}, {}, {}]}'),
    "rows not lists": (1, b'{"valueRanges": [{"values": [1, 2]}, {}, {}]}'),
    "too few ranges": (1, b'{"valueRanges": [{}]}'),
    "write without responses": (2, b'{"spreadsheetId": "KEY", "responses": []}'),
}


@pytest.mark.parametrize("shape", ODD_SHAPES)
def test_each_odd_shape_is_named_and_changes_nothing(fake: FakeSheets, shape: str) -> None:
    key, run = _sync_auto(fake)
    at, body = ODD_SHAPES[shape]
    before = _state(fake, key)
    fake.inject_answer(body.replace(b"KEY", key.encode()), at=at)
    with pytest.raises(sb.SheetsError, match="not a spreadsheet response at ") as err:
        run(_backend(fake, key, **GENEROUS))
    fake.clear_faults()
    _one_clear_line(str(err.value))
    assert _state(fake, key) == before
