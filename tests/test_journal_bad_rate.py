"""Issue 20, item 5: a position whose maintenance rate is text the core cannot read (``0,4%``
with a decimal comma, ``abc``) is refused on every row of that position with the sync's
message, in the native journal (LibreOffice and the ``formulas`` engine) and the add-in
journal, never a blank liquidation price and Status that would mean "there is none"."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from test_templates import _assert_no_errors, _events_only, _udfs, needs_lo, same_status
from xl_engine import compute, read_values, recalc_with_libreoffice

import leverage_sheets as sb
import leverage_templates as templates
from leverage import layout as L

EVENTS, POSITIONS = L.JOURNAL_EVENTS, L.JOURNAL_POSITIONS


def _d(day: int) -> dt.datetime:
    return dt.datetime(2024, 5, day, 9)


BAD_RATE_POSITIONS = [
    {"position_id": "GOOD", "symbol": "BTCUSDT", "side": "long", "contract": "linear",
     "mmr": 0.004},
    {"position_id": "COMMA", "symbol": "BTCUSDT", "side": "long", "contract": "linear",
     "mmr": "0,4%"},
    {"position_id": "WORD", "symbol": "ETHUSDT", "side": "short", "contract": "linear",
     "mmr": "abc"},
    {"position_id": "PCT", "symbol": "ETHUSDT", "side": "short", "contract": "linear",
     "mmr": "0.5%"},  # readable percent text: computed
]
BAD_RATE_EVENTS = [
    {"date": _d(1), "position_id": "GOOD", "event": "open", "price": 60_000, "qty": 0.5,
     "amount": 3_000},
    {"date": _d(1), "position_id": "COMMA", "event": "open", "price": 60_000, "qty": 0.5,
     "amount": 3_000},
    {"date": _d(2), "position_id": "COMMA", "event": "add_margin", "price": 57_000,
     "amount": 500},
    {"date": _d(2), "position_id": "WORD", "event": "open", "price": 3_000, "qty": 2,
     "amount": 600},
    {"date": _d(3), "position_id": "WORD", "event": "funding", "price": 3_100, "amount": -1},
    {"date": _d(3), "position_id": "PCT", "event": "open", "price": 3_000, "qty": 2,
     "amount": 600},
    {"date": _d(4), "position_id": "GOOD", "event": "close", "price": 61_000},
]
BAD = {"COMMA": ("row 3", "'0,4%'"), "WORD": ("row 4", "'abc'")}


def _typed(ws: Any, sheet: L.Sheet, rows: list[dict[str, Any]]) -> None:
    for i, row in enumerate(rows):
        for key, v in row.items():
            c = ws.cell(L.FIRST_DATA_ROW + i, sheet.index(key) + 1, v)
            if isinstance(v, str):
                c.data_type = "s"  # typed text, as Excel stores it


@pytest.fixture(scope="module")
def synced(tmp_path_factory) -> list[Any]:
    """The Status column the sync writes for the same rows (local backend)."""
    path = tmp_path_factory.mktemp("bad-rate") / "synced.xlsx"
    backend = sb.open_local(path)
    sb.init(backend, "journal")
    wb = openpyxl.load_workbook(path)
    _typed(wb[POSITIONS.title], POSITIONS, BAD_RATE_POSITIONS)
    _typed(wb[EVENTS.title], EVENTS, BAD_RATE_EVENTS)
    wb.save(path)
    sb.sync(sb.open_local(path), "journal")
    ws = openpyxl.load_workbook(path)[EVENTS.title]
    col = EVENTS.index("status") + 1
    return [ws.cell(L.FIRST_DATA_ROW + i, col).value or ""
            for i in range(len(BAD_RATE_EVENTS))]


def test_the_sync_refuses_each_row_of_a_position_with_an_unreadable_rate(synced):
    """What the workbooks must match: the sync's message, on every row of the position."""
    for event, status in zip(BAD_RATE_EVENTS, synced, strict=True):
        pid = event["position_id"]
        if pid in BAD:
            row, got = BAD[pid]
            assert status == (f"position '{pid}' is invalid on the Positions sheet ({row}): mmr "
                              f"must be a number or a percent like 0.5%, got {got}"), status
        else:
            assert status == "", status


def _build(tmp: Path, mode: str) -> Path:
    rules = templates.sample_journal()[2]
    return templates.build_journal(tmp / f"j-{mode}.xlsx", mode=mode,
                                   positions=BAD_RATE_POSITIONS, events=BAD_RATE_EVENTS,
                                   rule_values=rules, rows=len(BAD_RATE_EVENTS) + 1)


def _check(values: dict[tuple[str, str], Any], synced: list[Any]) -> None:
    problems = []
    for i, want in enumerate(synced):
        r = L.FIRST_DATA_ROW + i
        got = values.get((EVENTS.title, f"{EVENTS.letter('status')}{r}")) or ""
        if not same_status(got, want):
            problems.append(f"Events row {r}: sheet {got!r}, sync {want!r}")
        if BAD_RATE_EVENTS[i]["position_id"] in BAD:  # refused: no figure, as the sync
            for key in ("margin", "liq_price", "equity", "rule_breaks"):
                v = values.get((EVENTS.title, f"{EVENTS.letter(key)}{r}"))
                if v not in (None, ""):
                    problems.append(f"Events row {r} {key}: {v!r}, not blank")
        else:
            liq = values.get((EVENTS.title, f"{EVENTS.letter('liq_price')}{r}"))
            if BAD_RATE_EVENTS[i]["event"] == "open" and not isinstance(liq, float):
                problems.append(f"Events row {r}: no liquidation price ({liq!r})")
    assert not problems, "\n".join(problems)


def test_native_journal_says_the_syncs_message_in_the_formulas_engine(tmp_path, synced):
    values = compute(_events_only(_build(tmp_path, "native")))
    _assert_no_errors(values)
    _check(values, synced)


@needs_lo
def test_native_journal_says_the_syncs_message_in_libreoffice(tmp_path, synced):
    values = read_values(recalc_with_libreoffice(_build(tmp_path, "native"), tmp_path / "lo"))
    _assert_no_errors(values)
    _check(values, synced)


def test_addin_journal_says_the_syncs_message(tmp_path, synced):
    path = _build(tmp_path, "udf")
    _check(compute(_events_only(path), _udfs()), synced)
