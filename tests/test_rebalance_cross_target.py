"""Issue 20, item 16: cross rows share one equity, so a cross account has one leverage.

Their "Leverage (equity)" is the cross account's (the same on every cross row), and says so;
their targets cannot each be met: the moves bring the cross account to one target, the lowest
Target leverage of its rows (the safest the trader asked for), and a cross row whose own
target differs is flagged in Check, in the core, the native workbook (LibreOffice and the
``formulas`` engine), the add-in workbook and the sync alike.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fake_sheets import FakeSheets
from test_rebalance_guardrails import _udfs, column, needs_lo, typed_workbook
from test_templates import same_status
from typed_books import typed_rebalance
from xl_engine import compute, read_values, recalc_with_libreoffice

import leverage_sheets as sb
import leverage_templates as templates
from leverage import layout as L
from leverage.instructions import INSTRUCTIONS, prompt
from leverage.portfolio import cross_target_note, rebalance

POS = L.REBALANCE_POSITIONS
ROWS, WALLET, FREE = templates.sample_portfolio()  # P3 cross at 3x, P4 cross at 4x
P3, P4 = 2, 3


def _cross_leverage_after(r: Any, rows: list[dict[str, Any]]) -> float:
    """The cross account's leverage once every cross move is made."""
    cross = [i for i, p in enumerate(rows) if p["margin_mode"] == "cross"]
    notional = sum(r.columns["notional"][i] for i in cross)
    equity = WALLET + sum(r.columns["unrealized_pnl"][i] + r.columns["move"][i] for i in cross)
    return notional / equity


def test_cross_rows_show_the_cross_accounts_leverage():
    r = rebalance(ROWS, WALLET, FREE)
    lev = r.columns["leverage"]
    assert lev[P3] == lev[P4] == pytest.approx(45_000 / (WALLET - 2_400))  # 4.69x
    header = POS.columns[POS.index("leverage")]
    assert "account" in header.header.lower() and "cross" in header.note.lower()
    assert "cross account" in " ".join(t for _, t in INSTRUCTIONS["rebalance"]).lower()


def test_the_moves_bring_the_cross_account_to_its_lowest_target():
    """The issue: targets 3x and 4x, and after the suggested adds both were at 3.33x."""
    r = rebalance(ROWS, WALLET, FREE)
    assert _cross_leverage_after(r, ROWS) == pytest.approx(3.0, rel=1e-12)
    assert r.columns["warnings"][P3] == ""
    assert r.columns["warnings"][P4] == cross_target_note(3.0, 4.0)
    assert "4x" in cross_target_note(3.0, 4.0) and "3x" in cross_target_note(3.0, 4.0)
    assert [w for i, w in enumerate(r.columns["warnings"]) if i != P4] == [""] * 5


def test_agreeing_cross_targets_are_not_flagged():
    rows = [dict(p, target_leverage=3) if p["margin_mode"] == "cross" else p for p in ROWS]
    r = rebalance(rows, WALLET, FREE)
    assert _cross_leverage_after(r, rows) == pytest.approx(3.0, rel=1e-12)
    assert r.columns["warnings"] == [""] * len(rows)


def test_prompt_and_instructions_say_cross_targets_are_one():
    text = prompt("Positions", "target_leverage")[1].lower()
    assert "cross" in text and "lowest" in text
    said = " ".join(t for _, t in INSTRUCTIONS["rebalance"]).lower()
    assert "lowest" in said and "target" in said


def _assert_as_core(values: dict[tuple[str, str], Any]) -> None:
    want = rebalance(ROWS, WALLET, FREE)
    n = len(ROWS)
    for key in ("leverage", "move", "allocated"):
        assert column(values, key, n) == pytest.approx(want.columns[key], rel=1e-9), key
    for key in ("warnings", "status"):
        for got, core in zip(column(values, key, n), want.columns[key], strict=True):
            assert same_status(got or "", core), (key, got, core)
    assert column(values, "warnings", n)[P4]  # on the sheet, not only equal


@needs_lo
def test_native_workbook_brings_cross_to_one_target_in_libreoffice(tmp_path):
    path = typed_workbook(tmp_path / "r.xlsx", "native", ROWS, WALLET, FREE)
    _assert_as_core(read_values(recalc_with_libreoffice(path, tmp_path / "lo")))


@pytest.mark.parametrize("mode", ["native", "udf"])
def test_workbook_brings_cross_to_one_target_in_formulas(mode, tmp_path):
    path = typed_workbook(tmp_path / "r.xlsx", mode, ROWS, WALLET, FREE)
    _assert_as_core(compute(path, _udfs() if mode == "udf" else None))


@pytest.mark.parametrize("kind", ["google", "xlsx"])
def test_the_sync_flags_the_cross_target(kind: str, fake: FakeSheets, tmp_path: Path):
    typed = [[p.get(k) for k in POS.keys("input")] for p in ROWS]
    backend, read = typed_rebalance(kind, fake, tmp_path, [WALLET, FREE], typed)
    sb.sync(backend, "rebalance")
    grid = read(POS.title)
    want = rebalance(ROWS, WALLET, FREE)
    checks = [(grid[1 + i][POS.index("warnings")] or "") for i in range(len(ROWS))]
    assert checks == want.columns["warnings"] and checks[P4]
    moves = [grid[1 + i][POS.index("move")] for i in range(len(ROWS))]
    assert moves == pytest.approx(want.columns["move"], rel=1e-12)
