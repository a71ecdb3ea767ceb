"""The planning formulas where the workbooks show them: the rebalance account shock and
liquidation probability, and the journal's averaging-down and probability rules (core, and the
native formulas in the ``formulas`` engine; the full workbooks are in test_templates.py)."""

from __future__ import annotations

import math

import numpy as np
import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from xl_engine import compute

import leverage_templates as templates
from leverage import layout as L
from leverage import planning
from leverage.errors import InputError
from leverage.journal import replay
from leverage.models import AdjustmentRule
from leverage.portfolio import ALREADY_BELOW, rebalance
from leverage.rules import RULE_TEXT
from leverage_templates import _formulas as F


def _cross(pid: str, side: str, qty: float, entry: float, mark: float, mmr: float = 0.005,
           maint: float = 0.0) -> dict:
    return {"position_id": pid, "side": side, "contract": "linear", "qty": qty,
            "entry_price": entry, "mark_price": mark, "margin_mode": "cross",
            "target_leverage": 3, "mmr": mmr, "maint_amount": maint}


position = st.builds(
    _cross, st.sampled_from(["A", "B", "C"]), st.sampled_from(["long", "short"]),
    st.floats(0.1, 50), st.floats(10, 1_000), st.floats(10, 1_000), st.floats(0, 0.05),
    st.floats(0, 5),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(position, min_size=1, max_size=4), st.floats(100, 20_000))
def test_at_the_shock_move_equity_meets_maintenance_and_uses_add_up(rows, wallet):
    acct = rebalance(rows, wallet, 0.0).account
    move = acct["account_shock"]
    if isinstance(move, str):
        assert move == ALREADY_BELOW
        return
    if math.isnan(move):
        assert acct["shock_position"] == ""
        return
    s = np.array([1.0 if r["side"] == "long" else -1.0 for r in rows])
    q, e, m = (np.array([r[k] for r in rows]) for k in ("qty", "entry_price", "mark_price"))
    mmr, amt = np.array([r["mmr"] for r in rows]), np.array([r["maint_amount"] for r in rows])
    moved = m * (1 + move)
    equity = wallet + np.sum(s * q * (moved - e))
    maint = np.sum(q * moved * mmr - amt)
    assert math.isclose(equity, maint, rel_tol=1e-9, abs_tol=1e-6 * (wallet + np.sum(q * m)))
    use = q * moved * mmr - amt - s * q * (moved - e)  # these add up to the wallet at the move
    assert rows[int(np.argmax(use))]["position_id"] == acct["shock_position"]


def test_shock_is_blank_without_cross_positions_and_a_message_below_maintenance():
    iso = dict(_cross("I", "long", 1, 100, 100), margin_mode="isolated", margin=10)
    assert math.isnan(rebalance([iso], 1_000, 0).account["account_shock"])
    # short 10 at 100, marked at 200: equity 1,000 − 1,000 = 0 < maintenance
    acct = rebalance([_cross("S", "short", 10, 100, 200)], 1_000, 0).account
    assert acct["account_shock"] == ALREADY_BELOW and acct["shock_position"] == ""


def test_liq_probability_column_is_the_core_function_per_row():
    positions, wallet, free = templates.sample_portfolio()
    res = rebalance(positions, wallet, free, 0.6, 7)
    side = [1 if p["side"] == "long" else -1 for p in positions]
    want = planning.liq_probability(side, [p["mark_price"] for p in positions],
                                     res.columns["liq_price"], 0.6, 7)
    assert res.columns["liq_probability"] == pytest.approx(list(want), rel=1e-15)
    blank = rebalance(positions, wallet, free).columns["liq_probability"]
    assert all(math.isnan(p) for p in blank)  # no volatility typed: no probability
    with pytest.raises(InputError, match=r"volatility must be >= 0 or blank, got -0\.1"):
        rebalance(positions, wallet, free, -0.1, 7)


def _journal(rule: AdjustmentRule) -> list[str]:
    positions = [{"position_id": "P", "side": "long", "mmr": 0.005}]
    events = [
        {"date": "2026-01-01", "position_id": "P", "event": "open", "price": 100, "qty": 10,
         "amount": 100},
        {"date": "2026-01-02", "position_id": "P", "event": "add_margin", "price": 95,
         "amount": 10},
        {"date": "2026-01-03", "position_id": "P", "event": "add_margin", "price": 96,
         "amount": 200},
        {"date": "2026-01-04", "position_id": "P", "event": "funding", "price": 96,
         "amount": -1},
    ]
    return replay(positions, events, rule).columns["rule_breaks"]


def test_add_within_buffer_flags_only_adds_that_leave_liquidation_close():
    breaks = _journal(AdjustmentRule(add_within_buffer=0.1))
    # open at 10x (liq 9.5% away) and the funding are not adds; +10 leaves it ~5% away
    assert breaks == ["", RULE_TEXT["add_within_buffer"], "", ""]


def test_max_liq_probability_needs_volatility_and_horizon():
    assert _journal(AdjustmentRule(max_liq_probability=0.01)) == [""] * 4
    breaks = _journal(AdjustmentRule(max_liq_probability=0.2, volatility=0.8, horizon_days=7))
    odds = [planning.liq_probability("long", m, liq, 0.8, 7)
            for m, liq in ((100, 90.45), (95, 91.46))]
    assert odds[0] > 0.2 and odds[1] > 0.2
    assert breaks[:2] == [RULE_TEXT["max_liq_probability"]] * 2 and breaks[2] == ""
    with pytest.raises(InputError, match="max_liq_probability"):
        AdjustmentRule.build(max_liq_probability=1.5)


CASES = [  # side, mark, liq, volatility, horizon
    (1, 20_000, 18_000, 0.6, 7), (-1, 20_000, 23_000, 0.6, 7), (1, 100, 99.9, 1.5, 30),
    (-1, 100, 180, 0.3, 1), (1, 100, 100, 0.6, 7), (1, 100, 101, 0.6, 7), (-1, 100, 99, 0.6, 7),
    (1, 100, 90, 0, 7), (1, 100, 90, 0.6, 0), (1, 100, 1, 2.5, 365), (-1, 100, 5_000, 3, 365),
]


def test_native_liq_probability_matches_the_core_in_the_formulas_engine(tmp_path):
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "P"
    for r, case in enumerate(CASES, start=1):
        ws.append([*case, "=" + F.liq_probability("native", *(f"{c}{r}" for c in "ABCDE"))])
    wb.save(tmp_path / "p.xlsx")
    got = compute(tmp_path / "p.xlsx")
    for r, (s, mark, liq, vol, days) in enumerate(CASES, start=1):
        want = planning.liq_probability(s, mark, liq, vol, days)
        assert got[("P", f"F{r}")] == pytest.approx(want, abs=1e-6), CASES[r - 1]


def test_native_account_below_maintenance_shows_the_message_and_certain_liquidation(tmp_path):
    # the long's loss (−2,500) exceeds the wallet plus the short's notional: the short is
    # below maintenance at every price (no liquidation price, probability 1); the long's
    # liquidation price is above its mark (probability 1)
    rows = [_cross("L", "long", 10, 400, 150), _cross("S", "short", 10, 100, 100)]
    res = rebalance(rows, 1_000, 0, 0.6, 7)
    assert res.account["account_shock"] == ALREADY_BELOW
    assert res.columns["liq_probability"] == [1.0, 1.0]
    assert math.isnan(res.columns["liq_price"][1])
    path = templates.build_rebalance(tmp_path / "r.xlsx", mode="native", positions=rows,
                                     wallet_balance=1_000, free_balance=0, rows=3,
                                     volatility=0.6, horizon_days=7)
    got = compute(path)
    assert got[(L.REBALANCE_ACCOUNT.title, f"B{L.account_row('account_shock')}")] == ALREADY_BELOW
    assert got[(L.REBALANCE_ACCOUNT.title, f"B{L.account_row('shock_position')}")] in ("", None)
    col = L.REBALANCE_POSITIONS.letter("liq_probability")
    assert [got[(L.REBALANCE_POSITIONS.title, f"{col}{r}")] for r in (2, 3)] == [1, 1]
