"""Invariants of the formulas, checked over generated positions (hypothesis)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import leverage as lv

sides = st.sampled_from(["long", "short"])
contracts = st.sampled_from(["linear", "inverse"])
prices = st.floats(100, 200_000)
qtys = st.floats(0.001, 1_000)
leverages = st.floats(1.0, 100.0)
mmrs = st.floats(0.0, 0.05)
amounts = st.floats(0.0, 1_000.0)
TABLES = ["binance:BTCUSDT", "binance:ETHUSDT", "binance:BTCUSD_PERP"]


def _margin(qty: float, price: float, lev: float, contract: str) -> float:
    return lv.notional(qty, price, contract) / lev


def _opens(qty: float, entry: float, margin: float, contract: str, mmr: float = 0.0,
           amount: float = 0.0, tiers: str | None = None) -> bool:
    """Whether the margin is above maintenance at entry (with a hair of room for rounding):
    a position at or below it would be liquidated at once, an error rather than a price."""
    mm = lv.maint_margin(lv.notional(qty, entry, contract), mmr, amount, tiers)
    return margin > mm * (1 + 1e-9)


@settings(max_examples=300, deadline=None)
@given(notional=st.floats(1, 1e9), margin=st.floats(0, 1e8), target=leverages,
       pnl=st.floats(-1e6, 1e6))
def test_margin_to_target_then_leverage_is_target(
    notional: float, margin: float, target: float, pnl: float
) -> None:
    res = lv.margin_to_target.rows(notional, margin, target, pnl)
    assume(res.errors[()] is None)  # targets out of reach are reported, not computed
    move = float(res.values)
    # The new equity is a difference of large numbers when margin or PnL dwarf the notional;
    # allow the rounding that subtraction carries (a few ulps of the largest term).
    equity = notional / target
    slack = 8 * np.finfo(float).eps * (abs(margin) + abs(pnl) + abs(move)) / equity
    new_margin = max(margin + move, 0.0)  # "withdraw it all" may round to -1e-17
    assert lv.effective_leverage(notional, new_margin, pnl) == pytest.approx(
        target, rel=1e-9 + slack
    )


@settings(max_examples=300, deadline=None)
@given(side=sides, qty=qtys, entry=prices, lev=leverages, mmr=mmrs, contract=contracts,
       cut=st.floats(0.02, 0.9))
def test_margin_for_liq_price_round_trips(
    side: str, qty: float, entry: float, lev: float, mmr: float, contract: str, cut: float
) -> None:
    s = 1 if side == "long" else -1
    target = entry * (1 - s * cut)
    res = lv.margin_for_liq_price.rows(side, qty, entry, target, mmr, 0.0, contract)
    assume(res.errors[()] is None)
    margin = float(res.values)
    assert lv.liq_price(side, qty, entry, margin, mmr, 0.0, contract) == pytest.approx(
        target, rel=1e-9
    )


# a liquidation price 2 % from entry takes more leverage than some tiers allow: the core flags
# it (LeverageWarning) and still answers; the round trip is what this checks.
@pytest.mark.filterwarnings("ignore::leverage.LeverageWarning")
@settings(max_examples=200, deadline=None)
@given(side=sides, qty=st.floats(0.01, 5_000), entry=st.floats(1_000, 100_000),
       cut=st.floats(0.02, 0.5), table=st.sampled_from(TABLES[:2]))
def test_margin_for_liq_price_round_trips_with_tiers(
    side: str, qty: float, entry: float, cut: float, table: str
) -> None:
    s = 1 if side == "long" else -1
    target = entry * (1 - s * cut)
    res = lv.margin_for_liq_price.rows(side, qty, entry, target, tiers=table)
    assume(res.errors[()] is None)
    lp = lv.liq_price(side, qty, entry, float(res.values), tiers=table)
    assert lp == pytest.approx(target, rel=1e-9)


@settings(max_examples=300, deadline=None)
@given(side=sides, qty=qtys, entry=prices, lev=leverages, mmr=mmrs, amount=amounts,
       contract=contracts, extra=st.floats(0.01, 5.0), mark_move=st.floats(0.9, 1.1))
def test_adding_margin_moves_liq_price_away_from_the_mark(
    side: str, qty: float, entry: float, lev: float, mmr: float, amount: float, contract: str,
    extra: float, mark_move: float,
) -> None:
    s = 1 if side == "long" else -1
    mark = entry * mark_move
    margin = _margin(qty, entry, lev, contract)
    amount = amount * margin / 1_000  # keep the maintenance amount on the position's scale
    assume(_opens(qty, entry, margin, contract, mmr, amount))
    before = lv.liq_price(side, qty, entry, margin, mmr, amount, contract)
    after = lv.liq_price(side, qty, entry, margin * (1 + extra), mmr, amount, contract)
    assume(not math.isnan(before))
    if math.isnan(after):
        return  # so much margin that it can no longer be liquidated at all
    # a long's liquidation price falls, a short's rises: away from wherever the mark is
    assert s * (after - before) < 0
    assert lv.liq_distance(side, mark, after) >= lv.liq_distance(side, mark, before)


@settings(max_examples=300, deadline=None)
@given(side=sides, qty=qtys, entry=prices, lev=leverages, mmr=mmrs, amount=amounts,
       contract=contracts)
def test_equity_at_liq_price_equals_maintenance_margin(
    side: str, qty: float, entry: float, lev: float, mmr: float, amount: float, contract: str
) -> None:
    margin = _margin(qty, entry, lev, contract)
    amount = amount * margin / 10_000
    assume(_opens(qty, entry, margin, contract, mmr, amount))
    lp = lv.liq_price(side, qty, entry, margin, mmr, amount, contract)
    assume(not math.isnan(lp))
    equity = margin + lv.unrealized_pnl(side, qty, entry, lp, contract)
    mm = lv.maint_margin(lv.notional(qty, lp, contract), mmr, amount)
    assert equity == pytest.approx(mm, rel=1e-9, abs=1e-9 * margin)


# leverages drawn up to 100x exceed some tiers' maximum: the core flags them (LeverageWarning)
# and still answers; the answer is what this checks.
@pytest.mark.filterwarnings("ignore::leverage.LeverageWarning")
@settings(max_examples=200, deadline=None)
@given(side=sides, qty=st.floats(0.01, 5_000), entry=st.floats(1_000, 100_000), lev=leverages,
       table=st.sampled_from(TABLES))
def test_equity_at_tiered_liq_price_equals_tier_maintenance(
    side: str, qty: float, entry: float, lev: float, table: str
) -> None:
    contract = "inverse" if table.endswith("_PERP") else "linear"
    if contract == "inverse":
        qty *= 10_000  # USD of contracts
    margin = _margin(qty, entry, lev, contract)
    assume(_opens(qty, entry, margin, contract, tiers=table))
    lp = lv.liq_price(side, qty, entry, margin, contract=contract, tiers=table)
    assume(not math.isnan(lp))
    equity = margin + lv.unrealized_pnl(side, qty, entry, lp, contract)
    mm = lv.maint_margin(lv.notional(qty, lp, contract), tiers=table)
    assert equity == pytest.approx(mm, rel=1e-9, abs=1e-9 * margin)


@settings(max_examples=200, deadline=None)
@given(side=sides, qty=qtys, entry=prices, lev=leverages, contract=contracts)
def test_bankruptcy_is_liq_price_at_zero_maintenance(
    side: str, qty: float, entry: float, lev: float, contract: str
) -> None:
    margin = _margin(qty, entry, lev, contract)
    a = lv.bankruptcy_price(side, qty, entry, margin, contract)
    b = lv.liq_price(side, qty, entry, margin, 0.0, 0.0, contract)
    assert (math.isnan(a) and math.isnan(b)) or a == b


@settings(max_examples=200, deadline=None)
@given(qty=qtys, entry=prices, lev=st.floats(1.5, 100.0), mmr=mmrs)
def test_long_short_symmetry_linear(qty: float, entry: float, lev: float, mmr: float) -> None:
    # With mmr = 0 the long and short bankruptcy prices sit symmetrically around entry.
    margin = qty * entry / lev
    long_bk = lv.bankruptcy_price("long", qty, entry, margin)
    short_bk = lv.bankruptcy_price("short", qty, entry, margin)
    assert entry - long_bk == pytest.approx(short_bk - entry, rel=1e-9)
    # PnL of a long is minus the short's at any mark.
    mark = entry * 1.1
    assert lv.unrealized_pnl("long", qty, entry, mark) == -lv.unrealized_pnl(
        "short", qty, entry, mark
    )
    # Distances at entry: long (1/L - mmr)/(1 - mmr), short (1/L - mmr)/(1 + mmr), where
    # 1/L = margin / notional; so the long's distance x (1 - mmr) equals the short's x (1 + mmr).
    # (1/L <= mmr: margin at or below maintenance at entry, liquidated at once, an error.)
    assume(_opens(qty, entry, margin, "linear", mmr))
    long_lp = lv.liq_price("long", qty, entry, margin, mmr)
    short_lp = lv.liq_price("short", qty, entry, margin, mmr)
    assume(not math.isnan(long_lp))
    assert lv.liq_distance("long", entry, long_lp) * (1 - mmr) == pytest.approx(
        lv.liq_distance("short", entry, short_lp) * (1 + mmr), rel=1e-9
    )


@settings(max_examples=100, deadline=None)
@given(
    rows=st.lists(
        st.tuples(sides, qtys, prices, leverages, mmrs, contracts, st.floats(0.8, 1.2)),
        min_size=1, max_size=30,
    )
)
def test_scalar_and_array_agree_exactly(rows: list[tuple]) -> None:
    side, qty, entry, lev, mmr, contract, move = (list(c) for c in zip(*rows, strict=True))
    margin = [_margin(q, e, v, c) for q, e, v, c in zip(qty, entry, lev, contract, strict=True)]
    mark = [e * m for e, m in zip(entry, move, strict=True)]
    cases = [
        # rows: a position liquidated at once is an error row, the others still compute
        (lv.liq_price.rows, (side, qty, entry, margin, mmr, [0.0] * len(rows), contract)),
        (lv.bankruptcy_price, (side, qty, entry, margin, contract)),
        (lv.unrealized_pnl, (side, qty, entry, mark, contract)),
        (lv.notional, (qty, mark, contract)),
        (lv.gap_loss, (side, qty, entry, margin, mark, contract)),
        (lv.margin_for_liq_price.rows, (side, qty, entry, mark, mmr, [0.0] * len(rows), contract)),
    ]
    for fn, cols in cases:
        arr = fn(*(np.array(c, dtype=object if isinstance(c[0], str) else float) for c in cols))
        arr_values = arr.values if hasattr(arr, "values") else arr
        for i in range(len(rows)):
            one = fn(*(c[i] for c in cols))
            one_value = float(one.values) if hasattr(one, "values") else one
            a = float(arr_values[i])
            assert (math.isnan(a) and math.isnan(one_value)) or a == one_value, fn
            if hasattr(one, "errors"):
                assert one.errors[()] == arr.errors[i], fn


@settings(max_examples=100, deadline=None)
@given(side=sides, qty=qtys, entry=prices, lev=leverages, contract=contracts,
       table=st.sampled_from(TABLES[:2]))
def test_tiered_scalar_and_array_agree_exactly(
    side: str, qty: float, entry: float, lev: float, contract: str, table: str
) -> None:
    margin = _margin(qty, entry, lev, "linear")
    one = lv.liq_price.rows(side, qty, entry, margin, tiers=table)
    many = lv.liq_price.rows(np.array([side, "short", "long"], dtype=object),
                             np.array([qty, 1, 2]), entry, np.array([margin, 10_000, 20_000]),
                             tiers=table)
    a, b = float(one.values), float(many.values[0])
    assert (math.isnan(a) and math.isnan(b)) or a == b
    assert one.errors[()] == many.errors[0]
