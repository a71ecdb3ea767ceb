"""Issue 19 through the sync, on both backends (the fake Google server over real gspread, and a
local .xlsx): the sample journal with Events!D6 typed as 54,100 (the BTC long's first funding,
below the liquidation price 54,216.87 it had after its open) liquidates the position there,
refuses its later rows, and the Summary counts it as liquidated; the sample's increase row
syncs as the core replays it."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fake_sheets import FakeSheets, make_client

import leverage_sheets as sb
from leverage import journal
from leverage.layout import (
    FIRST_DATA_ROW,
    JOURNAL_EVENTS,
    JOURNAL_SUMMARY,
    SUMMARY_TOTALS,
)
from leverage.models import AdjustmentRule
from leverage_sheets.backend import serial_date
from leverage_templates.samples import sample_journal

LIQ_ROW = 6  # Events!D6: BTC-L1's funding, the first event after its open


def _expected(price: float) -> tuple[journal.JournalResult, journal.JournalSummary, list]:
    positions, events, rules = sample_journal()
    events = copy.deepcopy(events)
    assert (events[LIQ_ROW - FIRST_DATA_ROW]["position_id"],
            events[LIQ_ROW - FIRST_DATA_ROW]["event"]) == ("BTC-L1", "funding")
    events[LIQ_ROW - FIRST_DATA_ROW]["price"] = price
    result = journal.replay(positions, events, AdjustmentRule.build(**rules))
    return result, journal.summary(positions, events, result), events


def _book(kind: str, fake: FakeSheets, tmp_path: Path) -> tuple[Any, Any]:
    """The sample journal laid out as ``init --sample`` does, with D6 typed as 54,100; returns
    the backend and a reader of a tab's stored values (rows from row 1)."""
    cell = f"{JOURNAL_EVENTS.letter('price')}{LIQ_ROW}"
    if kind == "google":
        key = fake.create_spreadsheet("liq")
        backend = sb.open_google(key, client=make_client(fake, timeout=2))
        sb.init(backend, "journal", sample=True)
        ws = make_client(fake).open_by_key(key).worksheet("Events")
        ws.update(values=[[54_100]], range_name=cell, value_input_option="RAW")

        def values(title: str) -> list[list[Any]]:
            return [list(r) for r in fake.values(key, title)]
    else:
        path = tmp_path / "liq.xlsx"
        backend = sb.open_local(path)
        sb.init(backend, "journal", sample=True)
        wb = openpyxl.load_workbook(path)
        wb["Events"][cell] = 54_100
        wb.save(path)

        def values(title: str) -> list[list[Any]]:
            ws = openpyxl.load_workbook(path)[title]
            return [[c.value for c in row] for row in ws.iter_rows()]
    return backend, values


def _same(got: Any, want: Any) -> bool:
    got = None if got == "" else serial_date(got)
    want = serial_date(want)
    if want is None or (isinstance(want, float) and math.isnan(want)):
        return got is None
    if isinstance(want, int | float) and not isinstance(want, bool):
        return isinstance(got, int | float) and math.isclose(got, want, rel_tol=1e-12,
                                                            abs_tol=1e-12)
    return (got or "") == want


@pytest.mark.parametrize("kind", ["google", "xlsx"])
def test_a_price_beyond_the_liquidation_price_liquidates_the_position_in_the_sync(
    kind: str, fake: FakeSheets, tmp_path: Path
) -> None:
    result, summary, events = _expected(54_100)
    backend, values = _book(kind, fake, tmp_path)
    report = sb.sync(backend, "journal")
    assert report.rows_read == len(events)

    rows = values("Events")[1:]
    computed = JOURNAL_EVENTS.keys("computed")
    first = JOURNAL_EVENTS.index(computed[0])
    problems = [(i + FIRST_DATA_ROW, k, row[first + j], result.columns[k][i])
                for i, row in enumerate(rows[: len(events)])
                for j, k in enumerate(computed)
                if not _same(row[first + j] if first + j < len(row) else None,
                             result.columns[k][i])]
    assert not problems, problems[:5]

    status = JOURNAL_EVENTS.index("status")
    liq = rows[LIQ_ROW - FIRST_DATA_ROW]
    assert liq[status] == ("liquidated at 54100: at or beyond the liquidation price "
                           "54216.8674699; margin 3000 lost")
    assert liq[JOURNAL_EVENTS.index("qty_open")] == 0
    later = [r for r in rows[LIQ_ROW - FIRST_DATA_ROW + 1: len(events)]
             if r[JOURNAL_EVENTS.index("position_id")] == "BTC-L1"]
    assert len(later) == 6
    assert all(r[status] == "the position was liquidated on 2024-03-03 17:00 at 54100: no "
               "event after it applies" for r in later)

    table = values("Summary")
    btc = dict(zip(JOURNAL_SUMMARY.keys(), table[1], strict=False))
    assert (btc["position_id"], btc["state"], btc["outcome"]) == ("BTC-L1", "liquidated",
                                                                  "liquidated")
    assert math.isclose(btc["net_pnl"], -3_000 - 12.0)  # the margin lost and the open's fee
    totals = dict(zip(SUMMARY_TOTALS.keys(),
                      table[1][SUMMARY_TOTALS.first_column - 1:], strict=False))
    assert (totals["currency"], totals["closed"], totals["wins"], totals["liquidations"]) == (
        "USDT", 2, 0, 1)
    for i, want in enumerate(summary.positions, start=1):
        for j, k in enumerate(JOURNAL_SUMMARY.keys()):
            assert _same(table[i][j], want[k]), (i, k, table[i][j], want[k])
    first_total = SUMMARY_TOTALS.first_column - 1
    for i, want in enumerate(summary.totals, start=1):
        for j, k in enumerate(SUMMARY_TOTALS.keys()):
            assert _same(table[i][first_total + j], want[k]), (i, k)


def test_the_sample_increase_syncs_as_the_core_replays_it(tmp_path: Path) -> None:
    """The sample as shipped: its increase row (ETH-S1, blank amount: the margin at the
    open's 5x) and funding paid from the margin."""
    positions, events, rules = sample_journal()
    result = journal.replay(positions, events, AdjustmentRule.build(**rules))
    i = next(i for i, e in enumerate(events) if e["event"] == "increase")
    path = tmp_path / "s.xlsx"
    backend = sb.open_local(path)
    sb.init(backend, "journal", sample=True)
    sb.sync(backend, "journal")
    ws = openpyxl.load_workbook(path)["Events"]
    row = FIRST_DATA_ROW + i

    def cell(key: str) -> Any:
        return ws.cell(row=row, column=JOURNAL_EVENTS.index(key) + 1).value

    # 10 ETH at 3,400 on 6,800 (5x), then 5 ETH at 3,450: margin 6,800 + 5 x 3,450 / 5
    assert cell("margin") == pytest.approx(6_800 + 3_450)
    assert cell("qty_open") == 15
    assert cell("margin") == result.columns["margin"][i]
    assert cell("fees") == pytest.approx(13.6 + 6.9)
    assert not cell("status")
    # the Event column's drop-down offers it
    assert any("increase" in (dv.formula1 or "") for dv in ws.data_validations.dataValidation)
