"""The issue's typing mistakes, typed into a freshly initialised sheet (Google through the
loopback server, and a local .xlsx) and synced: each row gets the message or flag the core
gives for the same rows, never a different text."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fake_sheets import FakeSheets, make_client

import leverage_sheets as sb
from leverage import journal, portfolio
from leverage.layout import JOURNAL_EVENTS, JOURNAL_POSITIONS, REBALANCE_POSITIONS
from leverage.models import AdjustmentRule
from leverage_sheets.backend import serial_date

D = dt.datetime
HINT = "mmr 0.5 is 50 %; for 0.5 % type 0.005 or 0.5%"

POSITIONS = [  # journal Positions, in the layout's column order
    ["BTC-1", "BTCUSDT", "long", "linear", None, 0.5, 0, None],  # 0.5 meant as 0.5 %
    ["BTC-2", "BTCUSDT", "long", "linear", "USDT", "0.5%", 0, 57_000],  # percent as text
    ["ETH-1", "ETHUSDT", "short", "linear", None, 0.005, 0, None],
]
EVENTS = [  # journal Events inputs
    [D(2026, 1, 3, 9), "BTC-1", "open", 60_000, 0.5, 3_000, None, "mmr typed as 0.5"],
    [D(2026, 1, 4, 9), "BTC-1", "add_margin", 59_000, None, 100, None, "after a failed open"],
    [D(2026, 1, 3, 9), "BTC-2", "open", 60_000, 0.5, 3_000, 1.2, "fine"],
    [D(2026, 1, 2, 9), "BTC-2", "withdraw_margin", 60_000, None, 100, None, "before the open"],
    [None, "ETH-1", "open", 3_000, 1, 600, None, "no date"],
    ["yesterday", "ETH-1", "open", 3_000, 1, 600, None, "a word for a date"],
    [D(2026, 1, 6, 9), "BTC-2", "add_margin", 58_000, None, 100, None, ""],
    [D(2026, 1, 5, 9), "BTC-2", "add_margin", 59_000, None, 100, None, "typed out of order"],
]
REBALANCE = [  # rebalance Positions inputs
    ["ISO-1", "BTCUSDT", "long", "linear", 0.5, 60_000, 60_000, 3_000, "isolated", 5, None, 1,
     0.5, 0],
    ["CROSS-1", "BTCUSDT", "long", "linear", 0.5, 60_000, 60_000, None, "cross", 5, None, 1,
     0.5, 0],
    ["PCT", "ETHUSDT", "long", "linear", 1, 3_000, 3_000, 600, "isolated", 3, None, 1, "0.5%",
     0],
    # equal priorities: the one closer to liquidation is funded first
    ["FAR", "SOLUSDT", "long", "linear", 10, 100, 100, 600, "isolated", 1, None, 2, 0.005, 0],
    ["NEAR", "SOLUSDT", "long", "linear", 10, 100, 100, 60, "isolated", 1, None, 2, 0.005, 0],
]
BALANCES = {"wallet_balance": 10_000.0, "free_balance": 700.0}


class Fresh:
    """A spreadsheet laid out by ``sheets init`` (no sample), typed into as a trader would."""

    def __init__(self, kind: str, fake: FakeSheets, tmp: Path, template: str) -> None:
        self.kind, self.fake = kind, fake
        if kind == "google":
            self.key = fake.create_spreadsheet("fresh")
            self.backend: Any = sb.open_google(self.key, client=make_client(fake))
        else:
            self.path = tmp / "fresh.xlsx"
            self.backend = sb.open_local(self.path)
        sb.init(self.backend, template)

    def type(self, title: str, first_row: int, first_col: int, rows: list[list[Any]]) -> None:
        if self.kind == "google":  # Sheets stores a typed date as its serial number
            ws = make_client(self.fake).open_by_key(self.key).worksheet(title)
            values = [["" if v is None else serial_date(v) for v in r] for r in rows]
            ws.update(values=values, range_name=openpyxl.utils.get_column_letter(first_col)
                      + str(first_row), value_input_option="RAW")
            return
        wb = openpyxl.load_workbook(self.path)
        for r, row in enumerate(rows, start=first_row):
            for c, v in enumerate(row, start=first_col):
                wb[title].cell(row=r, column=c).value = v
        wb.save(self.path)

    def column(self, title: str, col: int, rows: int) -> list[Any]:
        if self.kind == "google":
            grid = self.fake.values(self.key, title)
        else:
            ws = openpyxl.load_workbook(self.path)[title]
            grid = [[c.value for c in row] for row in ws.iter_rows()]
        out = []
        for r in range(1, rows + 1):
            row = grid[r] if r < len(grid) else []
            v = row[col] if col < len(row) else None
            out.append(None if v == "" else v)
        return out


@pytest.fixture(params=["google", "xlsx"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def _same(got: Any, want: Any, where: Any) -> None:
    want = serial_date(want)
    if want is None or want == "" or (isinstance(want, float) and math.isnan(want)):
        assert got is None, where
    elif isinstance(want, int | float) and not isinstance(want, bool):
        assert isinstance(got, int | float) and math.isclose(got, want, rel_tol=1e-12), where
    else:
        assert got == want, where


def test_journal_mistakes_read_as_the_core_reads_them(kind: str, fake: FakeSheets,
                                                      tmp_path: Path) -> None:
    book = Fresh(kind, fake, tmp_path, "journal")
    book.type("Positions", 2, 1, POSITIONS)
    book.type("Events", 2, 1, EVENTS)
    report = sb.sync(book.backend, "journal")
    assert report.rows_read == len(EVENTS)

    positions = [{k: v for k, v in zip(JOURNAL_POSITIONS.keys(), r, strict=True)
                  if v is not None} for r in POSITIONS]
    keys = JOURNAL_EVENTS.keys("input")
    events = [dict(zip(keys, r, strict=True)) for r in EVENTS]
    want = journal.replay(positions, events, AdjustmentRule())
    for key in JOURNAL_EVENTS.keys("computed"):
        got = book.column("Events", JOURNAL_EVENTS.index(key), len(EVENTS))
        for i, (g, w) in enumerate(zip(got, want.columns[key], strict=True)):
            _same(g, w, (key, i))
    status = want.columns["status"]
    assert "liquidated at once" in status[0] and HINT in status[0]
    assert status[4] == "date is required: type when the event happened"
    assert status[5] == "date must be a date, got 'yesterday'"
    assert not status[2]  # mmr typed "0.5%" is read as 0.005
    assert want.columns["warnings"][7]  # typed out of date order: flagged


def test_rebalance_mistakes_read_as_the_core_reads_them(kind: str, fake: FakeSheets,
                                                        tmp_path: Path) -> None:
    book = Fresh(kind, fake, tmp_path, "rebalance")
    book.type("Account", 2, 2, [[BALANCES["wallet_balance"]], [BALANCES["free_balance"]]])
    book.type("Positions", 2, 1, REBALANCE)
    sb.sync(book.backend, "rebalance")

    keys = REBALANCE_POSITIONS.keys("input")
    rows = [dict(zip(keys, r, strict=True)) for r in REBALANCE]
    want = portfolio.rebalance(rows, **BALANCES)
    for key in portfolio.OUTPUT_COLUMNS:
        got = book.column("Positions", REBALANCE_POSITIONS.index(key), len(REBALANCE))
        for i, (g, w) in enumerate(zip(got, want.columns[key], strict=True)):
            _same(g, w, (key, i))
    status, check = want.columns["status"], want.columns["warnings"]
    assert "liquidated at once" in status[0] and HINT in status[0]
    assert not status[1] and HINT in check[1]  # cross: still computed, flagged
    assert not status[2]  # "0.5%" text read as 0.005
    near, far = want.columns["allocated"][4], want.columns["allocated"][3]
    assert near > 0 and near >= far  # the tie goes to the position closest to liquidation
