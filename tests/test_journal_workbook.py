"""The journal workbook, tried as a new user would (issue 12): each mistake typed with openpyxl
into a fresh native workbook, recomputed by headless LibreOffice, says what the core says for
the same rows; the Summary sheet reviews the journal as ``leverage.journal.summary`` does;
the per-position charts read series that leave every other row out.

One LibreOffice run serves the module (~5 s); the typed rows are listed once and each test
looks at its own part of the result.
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from test_templates import (
    CHART_DATA,
    LIQ_ROW,
    _assert_no_errors,
    _check_rows,
    _core_position,
    _type_rows,
    liquidated_sample,
    same_status,
)
from xl_engine import libreoffice_available, read_values, recalc_with_libreoffice

import leverage_templates as templates
from leverage import layout as L
from leverage import percent_hint
from leverage.journal import (
    DATE_REQUIRED,
    JournalPosition,
    replay,
    summary,
)
from leverage.models import AdjustmentRule

pytestmark = pytest.mark.skipif(not libreoffice_available(), reason="LibreOffice not installed")
J = importlib.import_module("leverage_templates.journal")
EVENTS, SUMMARY = L.JOURNAL_EVENTS, L.SUMMARY_SHEET


def _d(day: int, hour: int = 9) -> dt.datetime:
    return dt.datetime(2024, 4, day, hour)


# The mistakes, and the causes the journal must name, as a trader types them.
MISTAKE_POSITIONS = [
    {"position_id": "MMR-50", "symbol": "BTCUSDT", "side": "long", "contract": "linear",
     "mmr": 0.5},  # meant 0.5 %
    {"position_id": "MMR-PCT", "symbol": "BTCUSDT", "side": "long", "contract": "linear",
     "mmr": "0.5%", "stop_price": 58_000},  # typed as text
    {"position_id": "SHORT-30", "symbol": "ETHUSDT", "side": "short", "mmr": 0.3},
    {"position_id": "INV-50", "symbol": "BTCUSD", "side": "long", "contract": "inverse",
     "mmr": 0.5},
    {"position_id": "WD", "symbol": "ETHUSDT", "side": "long", "margin_currency": "USDC"},
    {"position_id": "BADOPEN", "symbol": "SOLUSDT", "side": "long"},
    {"position_id": "ORDER", "symbol": "BTCUSD", "side": "long", "contract": "inverse",
     "margin_currency": "BTC", "stop_price": 60_000},
    {"position_id": "NOOPEN", "symbol": "XRPUSDT", "side": "short"},
    {"position_id": "SAMEDAY", "symbol": "ADAUSDT", "side": "long", "stop_price": 0.4},
]
MISTAKES = [
    ("mmr 0.5", {"date": _d(1), "position_id": "MMR-50", "event": "open", "price": 60_000,
                 "qty": 1, "amount": 6_000}),
    ("mmr 0.5% text", {"date": _d(1), "position_id": "MMR-PCT", "event": "open",
                       "price": 60_000, "qty": 1, "amount": 6_000, "fee": 24}),
    ("close with fees", {"date": _d(5), "position_id": "MMR-PCT", "event": "close",
                         "price": 61_000, "fee": 24.4}),
    ("short mmr 0.3", {"date": _d(1), "position_id": "SHORT-30", "event": "open",
                       "price": 3_000, "qty": 2, "amount": 300}),
    ("inverse mmr 0.5", {"date": _d(1), "position_id": "INV-50", "event": "open",
                         "price": 60_000, "qty": 6_000, "amount": 0.02}),
    ("withdrawal dated before the open", {"date": _d(1), "position_id": "WD",
                                          "event": "withdraw_margin", "price": 3_000,
                                          "amount": 100}),
    ("open", {"date": _d(3), "position_id": "WD", "event": "open", "price": 3_000, "qty": 2,
              "amount": 600}),
    ("blank date", {"date": None, "position_id": "WD", "event": "funding", "amount": -1}),
    ("yesterday", {"date": "yesterday", "position_id": "WD", "event": "funding",
                   "amount": -1}),
    ("ISO text date, negative fee", {"date": "2024-04-04 10:00", "position_id": "WD",
                                     "event": "funding", "amount": -1, "fee": -1}),
    ("ISO text date", {"date": "2024-04-04", "position_id": "WD", "event": "funding",
                       "amount": -1.5, "fee": 0.5}),
    ("open with an error", {"date": _d(2), "position_id": "BADOPEN", "event": "open",
                            "price": 150, "qty": -1, "amount": 100}),
    ("after the failed open", {"date": _d(3), "position_id": "BADOPEN",
                               "event": "add_margin", "price": 150, "amount": 100}),
    ("after the failed open, later", {"date": _d(4), "position_id": "BADOPEN",
                                      "event": "funding", "amount": -1}),
    ("text fee", {"date": _d(4), "position_id": "ORDER", "event": "funding",
                  "amount": -0.0001, "fee": "x"}),
    ("open typed after a later row", {"date": _d(2), "position_id": "ORDER", "event": "open",
                                      "price": 62_000, "qty": 31_000, "amount": 0.1,
                                      "fee": 0.0002}),
    ("close", {"date": _d(6), "position_id": "ORDER", "event": "close", "price": 65_000,
               "fee": 0.0001}),
    ("add typed out of order", {"date": _d(3), "position_id": "ORDER", "event": "add_margin",
                                "price": 61_000, "amount": 0.01}),
    ("after the close", {"date": _d(7), "position_id": "ORDER", "event": "add_margin",
                         "price": 61_000, "amount": 0.01}),
    ("no open at all", {"date": _d(1), "position_id": "NOOPEN", "event": "add_margin",
                        "price": 0.6, "amount": 10}),
    ("listed above its open, same date", {"date": _d(2), "position_id": "SAMEDAY",
                                          "event": "add_margin", "price": 0.5, "amount": 10}),
    ("same-date open", {"date": _d(2), "position_id": "SAMEDAY", "event": "open",
                        "price": 0.5, "qty": 1_000, "amount": 100}),
    ("partial close at a loss", {"date": _d(3), "position_id": "SAMEDAY",
                                 "event": "partial_close", "price": 0.45, "qty": 400,
                                 "fee": 0.1}),
    ("unknown position", {"date": _d(1), "position_id": "NOPE", "event": "open", "price": 1,
                          "qty": 1, "amount": 1}),
    ("unknown event, out of order", {"date": _d(1), "position_id": "BADOPEN",
                                     "event": "explode"}),
]


@pytest.fixture(scope="module")
def book(tmp_path_factory) -> dict[str, Any]:
    """The native sample journal with the mistakes typed under it, recomputed by
    LibreOffice, and the core's answer for the same rows."""
    positions, events, rules = templates.sample_journal()
    typed = [e for _, e in MISTAKES]
    tmp = tmp_path_factory.mktemp("journal-book")
    path = templates.build_journal(tmp / "journal.xlsx", mode="native",
                                   rows=len(events) + len(typed) + 3)
    _type_rows(path, MISTAKE_POSITIONS, typed, L.FIRST_DATA_ROW + len(events),
               L.FIRST_DATA_ROW + len(positions))
    wb = openpyxl.load_workbook(path)  # the trader picks a position for the 4th chart
    wb[J.CHARTS_SHEET][f"B{J.slot_row(3)}"] = "ORDER"
    # and types a rule's rate as percent text (was 0.1: two more adds break it at 15 %)
    rules = dict(rules, add_within_buffer="15%")
    wb[L.JOURNAL_RULES.title][f"B{L.rule_row('add_within_buffer')}"] = "15%"
    wb[L.JOURNAL_RULES.title][f"B{L.rule_row('add_within_buffer')}"].data_type = "s"
    wb.save(path)
    all_positions = [_core_position(p) for p in positions + MISTAKE_POSITIONS]
    all_events = events + typed
    result = replay(all_positions, all_events, AdjustmentRule.build(**rules))
    return {
        "path": path,
        "values": read_values(recalc_with_libreoffice(path, tmp / "lo")),
        "positions": all_positions,
        "events": all_events,
        "result": result,
        "summary": summary(all_positions, all_events, result),
        "first_typed": L.FIRST_DATA_ROW + len(events),
    }


def _row_of(book: dict[str, Any], label: str) -> int:
    return book["first_typed"] + [m for m, _ in MISTAKES].index(label)


def _cell(book: dict[str, Any], key: str, label: str) -> Any:
    return book["values"].get((EVENTS.title, f"{EVENTS.letter(key)}{_row_of(book, label)}"))


def test_every_computed_cell_is_the_cores(book):
    _assert_no_errors(book["values"])
    _check_rows(book["values"], EVENTS, book["result"].columns, len(book["events"]),
                exact_text=("rule_breaks", "warnings", "currency"))


@pytest.mark.parametrize(("label", "says"), [
    ("mmr 0.5", ["would be liquidated at once", "at or above the entry",
                 percent_hint("mmr", 0.5)]),
    ("short mmr 0.3", ["would be liquidated at once", "at or below the entry",
                       percent_hint("mmr", 0.3)]),
    ("inverse mmr 0.5", ["would be liquidated at once", percent_hint("mmr", 0.5)]),
    ("withdrawal dated before the open",
     ["dated 2024-04-01 09:00, before the position's open (2024-04-03 09:00)"]),
    ("blank date", [DATE_REQUIRED]),
    ("yesterday", ["date must be a date, got 'yesterday'"]),
    ("ISO text date, negative fee", ["fee must be >= 0, got -1"]),
    ("after the failed open", ["the position's open (2024-04-02 09:00) could not be applied"]),
    ("after the failed open, later",
     ["the position's open (2024-04-02 09:00) could not be applied"]),
    ("text fee", ["fee must be a number, got 'x'"]),
    ("after the close", ["comes after the position's close (2024-04-06 09:00)"]),
    ("no open at all", ["position 'NOOPEN' has no open event"]),
    ("listed above its open, same date", ["listed above the position's open of the same "
                                          "date (2024-04-02 09:00)"]),
])
def test_each_mistake_gets_the_message_that_names_its_cause(book, label, says):
    status = _cell(book, "status", label)
    assert status and all(s in status for s in says), status
    i = _row_of(book, label) - L.FIRST_DATA_ROW
    assert same_status(status, book["result"].columns["status"][i])


def test_a_rule_rate_typed_as_percent_text_is_read(book):
    """The Rules sheet's "15%" (text) is the rate 0.15: the sheet's rule breaks are the
    core's at 0.15 (test_every_computed_cell_is_the_cores), which differ from 0.1's."""
    positions, events, rules = templates.sample_journal()
    at = {v: replay(positions, events, AdjustmentRule.build(**dict(rules, add_within_buffer=v)))
          .columns["rule_breaks"] for v in (0.1, 0.15)}
    assert at[0.1] != at[0.15]
    n = len(events)
    got = [book["values"].get((EVENTS.title, f"{EVENTS.letter('rule_breaks')}{r}")) or ""
           for r in range(L.FIRST_DATA_ROW, L.FIRST_DATA_ROW + n)]
    assert got == at[0.15]


def test_guardrail_leaves_no_liquidation_price_and_percent_text_reads_as_a_rate(book):
    assert _cell(book, "liq_price", "mmr 0.5") in (None, "")
    assert _cell(book, "liq_distance", "mmr 0.5") in (None, "")
    assert _cell(book, "effective_leverage", "mmr 0.5") == pytest.approx(10)
    # "0.5%" typed as text is the rate 0.005: the liquidation price of mmr 0.005
    want = replay([{"position_id": "x", "side": "long", "mmr": 0.005}],
                  [{"date": _d(1), "position_id": "x", "event": "open", "price": 60_000,
                    "qty": 1, "amount": 6_000}]).columns["liq_price"][0]
    assert _cell(book, "liq_price", "mmr 0.5% text") == pytest.approx(want, rel=1e-12)
    assert not _cell(book, "status", "mmr 0.5% text")


def test_rows_typed_out_of_order_are_applied_in_date_order_and_flagged(book):
    flag = _cell(book, "warnings", "add typed out of order")
    assert flag == ("dated 2024-04-03 09:00, earlier than a row above it dated "
                    "2024-04-06 09:00: applied in date order")
    assert _cell(book, "warnings", "open typed after a later row")
    assert not _cell(book, "warnings", "close")
    # the add (typed last) is applied before the close: the close releases its margin too
    assert not _cell(book, "status", "add typed out of order")
    assert _cell(book, "margin", "add typed out of order") == pytest.approx(0.11)
    assert _cell(book, "qty_open", "close") == 0
    # the funding typed first, dated after the open, is applied after it (then refused
    # for its fee), so it keeps the open's state rather than saying "before the open"
    assert _cell(book, "status", "text fee") == "fee must be a number, got 'x'"
    assert _cell(book, "margin", "text fee") == pytest.approx(0.11)


def test_fees_net_pnl_and_r_multiple(book):
    net = _cell(book, "net_pnl", "close with fees")
    assert net == pytest.approx(1_000 - 24 - 24.4)
    assert _cell(book, "fees", "close with fees") == pytest.approx(48.4)
    assert _cell(book, "r_multiple", "close with fees") == pytest.approx(net / 2_000)
    assert _cell(book, "currency", "close with fees") == "quote"
    assert _cell(book, "currency", "open") == "USDC"
    assert _cell(book, "currency", "close") == "BTC"
    assert _cell(book, "r_multiple", "open") in (None, "")  # no stop: no R


def _serial(when: dt.datetime) -> float:
    return (when - dt.datetime(1899, 12, 30)).total_seconds() / 86_400


def _same(got: Any, want: Any) -> bool:
    if isinstance(got, dt.datetime):
        got = _serial(got)
    if isinstance(want, dt.datetime):
        want = _serial(want)
    if want is None or (isinstance(want, float) and math.isnan(want)):
        return got in (None, "")
    if isinstance(want, str):
        return (got or "") == want
    return (isinstance(got, int | float) and not isinstance(got, bool)
            and math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-9))


def test_summary_sheet_is_the_cores_summary(book):
    values, want = book["values"], book["summary"]
    problems = []
    for i, row in enumerate(want.positions):
        for key, v in row.items():
            got = values.get((SUMMARY, f"{L.JOURNAL_SUMMARY.letter(key)}{L.FIRST_DATA_ROW + i}"))
            if not _same(got, v):
                problems.append((row["position_id"], key, got, v))
    for j, row in enumerate(want.totals):
        for key, v in row.items():
            got = values.get((SUMMARY, f"{L.SUMMARY_TOTALS.letter(key)}{L.FIRST_DATA_ROW + j}"))
            if not _same(got, v):
                problems.append((row["currency"], key, got, v))
    assert not problems, problems[:10]
    assert {r["outcome"] for r in want.positions} >= {"win", "loss", "open"}
    assert len(want.totals) >= 3  # USDT, BTC, quote, coin, USDC...
    blank = L.FIRST_DATA_ROW + len(want.positions)
    assert all(values.get((SUMMARY, f"{c.column_letter}{blank}")) in (None, "")
               for c in openpyxl.load_workbook(book["path"])[SUMMARY][blank][:14])


def test_chart_series_hold_only_the_open_rows_of_their_position(book):
    """Slot j of the Charts sheet plots, in date order, the effective leverage and the
    liquidation distance of the position named in its cell, NA() everywhere else."""
    values, result = book["values"], book["result"]
    wb = openpyxl.load_workbook(book["path"])
    charts = wb[J.CHARTS_SHEET]
    slots = J.chart_slots(len(templates.sample_journal()[0]))  # the positions at build time
    ids = [charts[f"B{J.slot_row(j)}"].value for j in range(slots)]
    assert ids == ["BTC-L1", "ETH-S1", "BTC-INV", "ORDER", None]
    assert len(charts._charts) == slots
    order = sorted((when, i) for i, when in enumerate(result.dates) if when is not None)
    for j, pid in enumerate(ids[:4]):
        for key, col in (("effective_leverage", 2 + 2 * j), ("liq_distance", 3 + 2 * j)):
            got = [values.get((CHART_DATA, f"{openpyxl.utils.get_column_letter(col)}{k}"))
                   for k in range(L.FIRST_DATA_ROW, L.FIRST_DATA_ROW + len(order))]
            want = [result.columns[key][i]
                    if book["events"][i]["position_id"] == pid
                    and result.columns["qty_open"][i] > 0 else None for _, i in order]
            assert [g if isinstance(g, float | int) else None for g in got] == pytest.approx(
                want, nan_ok=True), (pid, key)
            assert all(g == "#N/A" for g, w in zip(got, want, strict=True) if w is None)
    # every series covers the whole formula table, so new rows join the chart
    last = L.FIRST_DATA_ROW + len(book["events"]) + 3 - 1
    refs = [s.yVal.numRef.f for c in charts._charts for s in c.series]
    assert refs and all(r.endswith(f"${last}") for r in refs)


def test_sample_recomputes_with_no_error_on_visible_sheets(tmp_path):
    path = templates.build_journal(tmp_path / "sample.xlsx", mode="native")
    values = read_values(recalc_with_libreoffice(path, tmp_path / "lo"))
    _assert_no_errors(values)
    assert any(v == "#N/A" for (sheet, _), v in values.items() if sheet == CHART_DATA)
    assert openpyxl.load_workbook(path)[CHART_DATA].sheet_state == "hidden"
    positions, events, rules = templates.sample_journal()
    result = replay(positions, events, AdjustmentRule(**rules))
    assert not any(result.columns["status"]) and not any(result.columns["warnings"])
    s = summary(positions, events, result)
    got = {row["position_id"]: values.get((SUMMARY, f"{L.JOURNAL_SUMMARY.letter('net_pnl')}"
                                                    f"{L.FIRST_DATA_ROW + i}"))
           for i, row in enumerate(s.positions)}
    assert got == pytest.approx({r["position_id"]: r["net_pnl"] for r in s.positions})


def test_sample_journal_has_fees_stops_currencies_and_an_inverse_position():
    positions, events, _ = templates.sample_journal()
    specs = [JournalPosition.build(**p) for p in positions]
    assert {p.currency for p in specs} == {"USDT", "BTC"}
    assert all(p.stop_price for p in specs)
    assert any(p.contract == "inverse" for p in specs)
    assert sum(1 for e in events if e.get("fee")) >= 5


def test_workbook_lays_out_slots_and_prompts(tmp_path):
    positions, events, rules = templates.sample_journal()
    many = [dict(p, position_id=f"P{i}") for i, p in enumerate(positions * 5)]
    path = templates.build_journal(tmp_path / "j.xlsx", mode="native", positions=many,
                                   events=[dict(events[0], position_id="P0")],
                                   rule_values=rules)
    wb = openpyxl.load_workbook(path)
    charts = wb[J.CHARTS_SHEET]
    assert len(charts._charts) == J.MAX_CHART_SLOTS == J.chart_slots(len(many))
    dv = next(d for d in charts.data_validations.dataValidation if d.type == "list")
    assert dv.formula1.startswith(f"{L.JOURNAL_POSITIONS.title}!$A$2:$A$")
    assert {str(r) for r in dv.sqref.ranges} == {f"B{J.slot_row(j)}"
                                                 for j in range(J.MAX_CHART_SLOTS)}
    assert dv.showInputMessage and dv.prompt and dv.showErrorMessage
    assert J.chart_slots(0) == 3 and J.chart_slots(2) == 4
    assert Path(path).stat().st_size > 0


# ------------------------------------------------------------------ issue 19
@pytest.fixture(scope="module")
def liquidated(tmp_path_factory) -> dict[str, Any]:
    """The native sample workbook with D6 typed as 54,100 by the trader, recomputed by
    LibreOffice, and the core's replay of the same rows."""
    tmp = tmp_path_factory.mktemp("journal-liquidated")
    path = templates.build_journal(tmp / "journal.xlsx", mode="native")
    wb = openpyxl.load_workbook(path)
    wb[EVENTS.title][f"{EVENTS.letter('price')}{LIQ_ROW}"] = 54_100
    wb.save(path)
    positions, events, rules = liquidated_sample()
    result = replay(positions, events, AdjustmentRule.build(**rules))
    return {"values": read_values(recalc_with_libreoffice(path, tmp / "lo")), "events": events,
            "result": result, "summary": summary(positions, events, result)}


def test_a_price_beyond_the_liquidation_price_liquidates_the_position(liquidated):
    values, result, events = liquidated["values"], liquidated["result"], liquidated["events"]
    _assert_no_errors(values)
    _check_rows(values, EVENTS, result.columns, len(events),
                exact_text=("rule_breaks", "warnings", "currency"))

    def cell(key: str, row: int) -> Any:
        return values.get((EVENTS.title, f"{EVENTS.letter(key)}{row}"))

    # the issue: the row said 541x and 0.00 % distance, and the position carried on
    assert same_status(cell("status", LIQ_ROW), "liquidated at 54100: at or beyond the "
                       "liquidation price 54216.8674699; margin 3000 lost")
    assert cell("qty_open", LIQ_ROW) == 0 and cell("margin", LIQ_ROW) == 0
    assert cell("effective_leverage", LIQ_ROW) in (None, "")
    assert cell("liq_distance", LIQ_ROW) in (None, "")
    assert cell("realized_pnl", LIQ_ROW) == pytest.approx(-3_000)
    later = [r for r in range(LIQ_ROW + 1, L.FIRST_DATA_ROW + len(events))
             if cell("position_id", r) == "BTC-L1"]
    assert len(later) == 6
    for r in later:
        assert same_status(cell("status", r), "the position was liquidated on 2024-03-03 "
                           "17:00 at 54100: no event after it applies"), r
        assert cell("qty_open", r) == 0 and cell("net_pnl", r) == pytest.approx(-3_012)


def test_summary_counts_the_liquidated_position(liquidated):
    values, want = liquidated["values"], liquidated["summary"]
    for i, row in enumerate(want.positions):
        for key, v in row.items():
            got = values.get((SUMMARY, f"{L.JOURNAL_SUMMARY.letter(key)}{L.FIRST_DATA_ROW + i}"))
            assert _same(got, v), (row["position_id"], key, got, v)
    for j, row in enumerate(want.totals):
        for key, v in row.items():
            got = values.get((SUMMARY, f"{L.SUMMARY_TOTALS.letter(key)}{L.FIRST_DATA_ROW + j}"))
            assert _same(got, v), (row["currency"], key, got, v)

    def shown(key: str, sheet: Any = L.JOURNAL_SUMMARY) -> Any:
        return values.get((SUMMARY, f"{sheet.letter(key)}{L.FIRST_DATA_ROW}"))

    # it was a win of 3,268.93; now the margin and the open's fee are lost
    assert (shown("position_id"), shown("state"), shown("outcome")) == (
        "BTC-L1", "liquidated", "liquidated")
    assert shown("net_pnl") == pytest.approx(-3_012)
    assert _same(shown("closed"), dt.datetime(2024, 3, 3, 17))
    assert (shown("currency", L.SUMMARY_TOTALS), shown("closed", L.SUMMARY_TOTALS),
            shown("wins", L.SUMMARY_TOTALS), shown("liquidations", L.SUMMARY_TOTALS)) == (
        "USDT", 2, 0, 1)


def test_the_sample_increase_row_computes_as_the_core(book):
    """The sample's increase (ETH-S1: 5 more at 3,450, margin blank: at the open's 5x) in
    the recomputed sheet: entry averaged, margin and fee added, risk raised."""
    events = book["events"]
    i = next(i for i, e in enumerate(events) if e["event"] == "increase")
    r = L.FIRST_DATA_ROW + i
    values, cols = book["values"], book["result"].columns

    def cell(key: str) -> Any:
        return values.get((EVENTS.title, f"{EVENTS.letter(key)}{r}"))

    assert cell("qty_open") == 15 and cell("margin") == pytest.approx(6_800 + 3_450)
    assert cell("fees") == pytest.approx(13.6 + 6.9)
    # entry (10 x 3,400 + 5 x 3,450) / 15; the stop 3,600 is 5,250 of risk on 15 ETH
    entry = (10 * 3_400 + 5 * 3_450) / 15
    assert cell("unrealized_pnl") == pytest.approx(-15 * (3_450 - entry))
    assert cell("r_multiple") == pytest.approx(cell("net_pnl") / (15 * (3_600 - entry)))
    assert cell("rule_breaks") == cols["rule_breaks"][i] != ""
    assert not cell("status")
