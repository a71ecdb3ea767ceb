"""The planning formulas (leverage.planning): published examples, invariants, and a Monte Carlo
check."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import leverage as lv
from leverage.planning import (
    PLANNING_FORMULAS,
    account_shock,
    avg_entry,
    funding_apr,
    funding_from_history,
    hedge_liq_price,
    liq_after_add,
    liq_probability,
    max_open,
    safe_leverage,
)

sides = st.sampled_from(["long", "short"])
contracts = st.sampled_from(["linear", "inverse"])
prices = st.floats(100, 200_000)
qtys = st.floats(0.001, 1_000)
mmrs = st.floats(0.0, 0.05)
TABLES = ["binance:BTCUSDT", "binance:ETHUSDT"]
HOUR = 1 / 24  # spreadsheet time: days


# ------------------------------------------------------------ published numbers
def test_binance_faq_example_through_the_hedge_formula() -> None:
    # Binance, "How to Calculate Liquidation Price of USDⓈ-M Contracts" (support FAQ
    # b3c689c1f50a44cabb3a84e663b81d93), cross example: WB 1,535,443.01, other contracts'
    # maintenance 71,200.81144 and PnL −56,354.57, long 3,683.979 at 1,456.84, MMR 10 %,
    # maintenance amount 135,365 → liquidation price 1,153.26 USDT. The FAQ's formula is the
    # hedge-mode one with the short leg at zero, so HEDGE_LIQ_PRICE must give the same price.
    lp = hedge_liq_price(3_683.979, 1_456.84, 0, None, 1_535_443.01, -56_354.57, 71_200.81144,
                         0.10, 135_365)
    assert lp == pytest.approx(1_153.26, abs=0.005)
    assert lp == pytest.approx(lv.cross_liq_price("long", 3_683.979, 1_456.84, 1_535_443.01,
                                                  -56_354.57, 71_200.81144, 0.10, 135_365))


def test_bybit_extra_margin_added() -> None:
    # Bybit help centre, "Liquidation Price (USDT Contract)", isolated: long
    # LP = entry − (IM − MM + extra margin)/qty, short LP = entry + (IM − MM + extra margin)/qty;
    # its example 1 BTC at 20,000, 50x, MMR 0.5 %: IM 400, MM 100, LP 19,700. With 100 USDT of
    # extra margin added: 20,000 − (400 − 100 + 100) = 19,600 (short: 20,400).
    assert liq_after_add("long", 1, 20_000, 400, 0, 20_000, 100, exchange="bybit") == 19_600
    assert liq_after_add("short", 1, 20_000, 400, 0, 20_000, 100, exchange="bybit") == 20_400
    assert liq_after_add("long", 1, 20_000, 400, 0, 20_000, 0, exchange="bybit") == 19_700


def test_funding_apr_examples() -> None:
    # 0.01 % per 8 h (the usual baseline) = 0.03 % a day = 10.95 % a year
    assert funding_apr(0.0001, 8) == pytest.approx(0.1095)
    assert funding_apr(-0.0001, 1) == pytest.approx(-0.876)
    assert funding_apr([0.0001, 0.0002], [8, 4]).tolist() == pytest.approx([0.1095, 0.438])


def test_avg_entry_examples() -> None:
    assert avg_entry(1, 20_000, 3, 16_000) == 17_000
    # inverse: 10,000 USD at 20,000 (0.5 BTC) + 10,000 USD at 10,000 (1 BTC) → 20,000/1.5
    assert avg_entry(10_000, 20_000, 10_000, 10_000, "inverse") == pytest.approx(13_333.3333)
    assert avg_entry(2, 30_000, 0, 1) == 30_000


# --------------------------------------------------------------- LIQ_AFTER_ADD
@settings(max_examples=200, deadline=None)
@given(side=sides, qty=qtys, entry=prices, lev=st.floats(1, 100), add=st.floats(0, 5),
       move=st.floats(0.5, 1.5), mmr=mmrs, contract=contracts, extra=st.floats(0, 2))
def test_liq_after_add_is_liq_price_at_avg_entry(
    side: str, qty: float, entry: float, lev: float, add: float, move: float, mmr: float,
    contract: str, extra: float,
) -> None:
    margin = lv.notional(qty, entry, contract) / lev
    add_qty, add_price = qty * add, entry * move
    avg = avg_entry(qty, entry, add_qty, add_price, contract)
    res = liq_after_add.rows(side, qty, entry, margin, add_qty, add_price, margin * extra, mmr,
                             0, contract)
    at_avg = lv.liq_price.rows(side, qty + add_qty, avg, margin * (1 + extra), mmr, 0, contract)
    # the same rows fail (a position liquidated at once after the add), with the same message
    assert (res.errors[()] is None) == (at_avg.errors[()] is None)
    if at_avg.errors[()] is not None:
        assert "liquidated at once" in res.errors[()]
        return
    got, want = float(res.values), float(at_avg.values)
    # near zero the price is a difference of nearly equal terms: compare at the entry's scale,
    # where a price within rounding of 0 and "none" (nan) are the same answer
    tol = 1e-12 * entry * max(1.0, move)
    if math.isnan(want) or math.isnan(got):
        assert math.isnan(got) or got <= tol, got
        assert math.isnan(want) or want <= tol, want
    else:
        assert got == pytest.approx(want, rel=1e-12, abs=tol)


def test_liq_after_add_columns_tiers_and_rows() -> None:
    got = liq_after_add(["long", "short"], [1, 1], 20_000, 400, [1, 0.5], [19_000, 21_000],
                        tiers="binance:BTCUSDT")
    want = [lv.liq_price("long", 2, 19_500, 400, tiers="binance:BTCUSDT"),
            lv.liq_price("short", 1.5, avg_entry(1, 20_000, 0.5, 21_000), 400,
                         tiers="binance:BTCUSDT")]
    assert got.tolist() == pytest.approx(want)
    res = liq_after_add.rows("long", [1, -1], 20_000, 400, 1, 19_000)
    assert res.errors[0] is None and res.errors[1] == "qty must be > 0, got -1"
    with pytest.raises(lv.InputError, match="contract must be linear for exchange='okx'"):
        liq_after_add("long", 1, 20_000, 400, 1, 19_000, contract="inverse", exchange="okx")


# ------------------------------------------------------------------- MAX_OPEN
@settings(max_examples=200, deadline=None)
@given(balance=st.floats(1, 1e7), price=prices, lev=st.floats(1, 125),
       fee=st.floats(0, 0.001), contract=contracts)
def test_max_open_uses_the_whole_balance(
    balance: float, price: float, lev: float, fee: float, contract: str
) -> None:
    qty = max_open(balance, price, lev, None, fee, contract)
    notional = lv.notional(qty, price, contract)
    assert notional * (1 / lev + fee) == pytest.approx(balance, rel=1e-12)


@settings(max_examples=200, deadline=None)
@given(balance=st.floats(1, 1e8), price=st.floats(1_000, 100_000), lev=st.floats(1, 125),
       fee=st.floats(0, 0.001), table=st.sampled_from(TABLES))
def test_max_open_with_tiers_stays_in_the_band_for_its_leverage(
    balance: float, price: float, lev: float, fee: float, table: str
) -> None:
    tiers = lv.get_tier_table(table)
    res = max_open.rows(balance, price, lev, table, fee)
    if res.errors[()] is not None:
        assert lev > np.nanmax(tiers.max_leverages)
        return
    notional = float(res.values) * price
    cost = notional * (1 / lev + fee)
    assert cost <= balance * (1 + 1e-12)
    # a band at or above this notional that allows the leverage (a notional on a band's
    # upper bound is that band's cap: exchanges let a position reach it)
    k = int(tiers.index(notional * (1 - 1e-12)))
    assert tiers.max_leverages[k] >= lev
    if cost < balance * (1 - 1e-9):  # capped by the band, not the balance: at its very top
        assert notional == pytest.approx(tiers.tiers[k].max_notional, rel=1e-12)
        assert k + 1 == len(tiers.tiers) or tiers.max_leverages[k + 1] < lev


def test_max_open_tier_example_and_errors() -> None:
    rows = [[0, 50_000, 0.004, 125], [50_000, 250_000, 0.005, 100], [250_000, 1e6, 0.01, 50]]
    # 1,000 at 125x would buy 125,000 of notional; the 125x band stops at 50,000
    assert max_open(1_000, 20_000, 125, rows) == 2.5
    # at 60x, bands 1 and 2 allow it: 1,000 × 60 = 60,000 < 250,000, not capped
    assert max_open(1_000, 20_000, 60, rows) == 3.0
    assert max_open(10_000, 20_000, 50, rows) == 25.0  # 500,000 within the 50x band
    with pytest.raises(lv.InputError, match="leverage must be at most 125"):
        max_open(1_000, 20_000, 150, rows)
    with pytest.raises(lv.InputError, match="balance must be >= 0, got -1"):
        max_open(-1, 20_000, 10)


def test_max_open_band_without_published_leverage_keeps_the_cap_below() -> None:
    # binance:BTCUSD_PERP: the 125x band is 0-5 BTC (Binance FAQ, see SOURCES.md); bands 8-10
    # have no published max leverage, which must not lift the 125x band's cap
    assert max_open(1, 20_000, 125, tiers="binance:BTCUSD_PERP", contract="inverse") == 100_000
    rows = [[t.min_notional, t.max_notional, t.mmr, t.max_leverage]
            for t in lv.get_tier_table("binance:BTCUSD_PERP").tiers]
    rows[-1][1] = 1e12  # typed rows need a top; the max leverage left blank as in the source
    assert max_open(1, 20_000, 125, tiers=rows, contract="inverse") == 100_000
    # a band without a max above a band that allows the leverage: that band's cap holds
    gap = [[0, 50_000, 0.004, 125], [50_000, 1e6, 0.005, None]]
    assert max_open(1_000, 20_000, 125, gap) == 2.5
    # below every published max the unpublished bands allow what the last published one does
    assert max_open(1, 20_000, 4, tiers="binance:BTCUSD_PERP", contract="inverse") == 80_000
    # the table is read as "max leverage never rises with size": true of the shipped data
    for name in ("binance:BTCUSDT", "binance:ETHUSDT", "binance:BTCUSD_PERP", "bybit:BTCUSDT"):
        caps = [t.max_leverage for t in lv.get_tier_table(name).tiers if t.max_leverage]
        assert caps == sorted(caps, reverse=True), name


# ------------------------------------------------------------ HEDGE_LIQ_PRICE
@settings(max_examples=300, deadline=None)
@given(side=sides, qty=qtys, entry=prices, wallet=st.floats(0, 1e6),
       upnl=st.floats(-1e5, 1e5), maint=st.floats(0, 1e4), mmr=mmrs,
       amount=st.floats(0, 1_000))
def test_hedge_with_one_leg_zero_is_cross(
    side: str, qty: float, entry: float, wallet: float, upnl: float, maint: float,
    mmr: float, amount: float,
) -> None:
    cross = lv.cross_liq_price.rows(side, qty, entry, wallet, upnl, maint, mmr, amount)
    legs = (qty, entry, 0, None) if side == "long" else (0, None, qty, entry)
    rates = (mmr, amount, 0.02, 50.0) if side == "long" else (0.02, 50.0, mmr, amount)
    hedge = hedge_liq_price.rows(*legs, wallet, upnl, maint, *rates)
    if hedge.errors[()] is not None:  # below maintenance everywhere: cross answers nan
        assert "below maintenance" in hedge.errors[()]
        assert math.isnan(float(cross.values))
        return
    want, got = float(cross.values), float(hedge.values)
    assert (math.isnan(want) and math.isnan(got)) or got == pytest.approx(want, rel=1e-9)


@settings(max_examples=100, deadline=None)
@given(side=sides, qty=st.floats(0.01, 3_000), entry=st.floats(1_000, 100_000),
       lev=st.floats(1, 100), table=st.sampled_from(TABLES))
def test_hedge_with_one_leg_zero_is_cross_with_tiers(
    side: str, qty: float, entry: float, lev: float, table: str
) -> None:
    wallet = qty * entry / lev
    cross = lv.cross_liq_price(side, qty, entry, wallet, tiers=table)
    legs = (qty, entry, 0, None) if side == "long" else (0, None, qty, entry)
    got = hedge_liq_price(*legs, wallet, tiers=table)
    assert (math.isnan(cross) and math.isnan(got)) or got == pytest.approx(cross, rel=1e-9)


@settings(max_examples=200, deadline=None)
@given(lq=st.floats(0.01, 100), sq=st.floats(0.01, 100), le=st.floats(1_000, 100_000),
       se=st.floats(1_000, 100_000), wallet=st.floats(0, 1e6), lm=mmrs, sm=mmrs)
def test_hedge_equity_equals_maintenance_at_its_price(
    lq: float, sq: float, le: float, se: float, wallet: float, lm: float, sm: float
) -> None:
    res = hedge_liq_price.rows(lq, le, sq, se, wallet, 0, 0, lm, 0, sm, 0)
    assume(res.errors[()] is None and not math.isnan(float(res.values)))
    p = float(res.values)
    equity = wallet + lq * (p - le) - sq * (p - se)
    maint = lq * p * lm + sq * p * sm
    # a nearly flat book puts p far out: its rounding is relative to the notional at p
    scale = lq * le + sq * se + p * (lq + sq) * 1e-3
    assert equity == pytest.approx(maint, rel=1e-7, abs=1e-6 * scale)


@settings(max_examples=100, deadline=None)
@given(lq=st.floats(0.01, 500), sq=st.floats(0.01, 500), le=st.floats(10_000, 100_000),
       se=st.floats(10_000, 100_000), lev=st.floats(1, 50), table=st.sampled_from(TABLES))
def test_hedge_with_tiers_puts_equity_at_tiered_maintenance(
    lq: float, sq: float, le: float, se: float, lev: float, table: str
) -> None:
    wallet = (lq * le + sq * se) / lev
    res = hedge_liq_price.rows(lq, le, sq, se, wallet, tiers=table)
    assume(res.errors[()] is None and not math.isnan(float(res.values)))
    p = float(res.values)
    equity = wallet + lq * (p - le) - sq * (p - se)
    maint = lv.maint_margin(lq * p, tiers=table) + lv.maint_margin(sq * p, tiers=table)
    assert equity == pytest.approx(maint, rel=1e-7, abs=1e-7 * (lq * le + sq * se))


def test_hedge_example_and_errors() -> None:
    # long 1 at 20,000 and short 0.5 at 21,000, wallet 1,000
    assert hedge_liq_price(1, 20_000, 0.5, 21_000, 1_000) == pytest.approx(17_258.883, rel=1e-7)
    with pytest.raises(lv.InputError, match="long_qty and short_qty must not both be 0"):
        hedge_liq_price(0, None, 0, None, 1_000)
    with pytest.raises(lv.InputError, match="short_entry is required when short_qty > 0"):
        hedge_liq_price(1, 20_000, 1, None, 1_000)
    # the example on the hedge's short leg: other losses exceed the wallet
    with pytest.raises(lv.PositionError, match="already below maintenance"):
        hedge_liq_price(0, None, 1, 100, 10, -200)
    res = hedge_liq_price.rows([0, 0], None, 1, 100, 10, [-200, 0])
    assert "below maintenance" in res.errors[0] and res.errors[1] is None


def test_every_tiered_formula_refuses_a_table_of_the_other_contract_and_a_debt() -> None:
    # one rule for all: what LIQ_PRICE and CROSS_LIQ_PRICE refuse, the others refuse too
    coin = "binance:BTCUSD_PERP"  # a coin-margined table: notional in BTC
    other = "is a table for inverse positions"
    with pytest.raises(lv.InputError, match=other):
        lv.liq_price("long", 1, 20_000, 1_000, tiers=coin)
    with pytest.raises(lv.InputError, match=other):
        hedge_liq_price(1, 20_000, 0.5, 21_000, 1_000, tiers=coin)
    with pytest.raises(lv.InputError, match=other):
        max_open(1_000, 20_000, 10, tiers=coin)
    with pytest.raises(lv.InputError, match=other):
        safe_leverage(0.6, 1, 0.01, tiers=coin)
    with pytest.raises(lv.InputError, match="is a table for linear positions"):
        max_open(1, 20_000, 10, tiers="binance:BTCUSDT", contract="inverse")
    for wallet in ("wallet_balance must be >= 0, got -100",):
        with pytest.raises(lv.InputError, match=wallet):
            lv.cross_liq_price("long", 1, 20_000, -100)
        with pytest.raises(lv.InputError, match=wallet):
            hedge_liq_price(1, 20_000, 0.5, 21_000, -100)


# -------------------------------------------------------------- ACCOUNT_SHOCK
positions = st.lists(
    st.tuples(sides, st.floats(0.01, 100), st.floats(100, 100_000), st.floats(0.7, 1.3),
              st.floats(0, 0.05)),
    min_size=1, max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(book=positions, wallet=st.floats(0, 1e6))
def test_account_shock_puts_equity_at_maintenance(book: list, wallet: float) -> None:
    s, q, e, f, m = zip(*book, strict=True)
    marks = [ei * fi for ei, fi in zip(e, f, strict=True)]
    res = account_shock.rows(list(s), list(q), list(e), marks, wallet, list(m))
    assume(res.errors[()] is None and not math.isnan(float(res.values)))
    move = float(res.values)
    sign = [1 if x == "long" else -1 for x in s]
    px = [mk * (1 + move) for mk in marks]
    equity = wallet + sum(si * qi * (pi - ei) for si, qi, pi, ei in zip(sign, q, px, e,
                                                                         strict=True))
    maint = sum(qi * pi * mi for qi, pi, mi in zip(q, px, m, strict=True))
    scale = wallet + sum(qi * ei for qi, ei in zip(q, e, strict=True)) + sum(
        qi * mk for qi, mk in zip(q, marks, strict=True))
    assert equity - maint == pytest.approx(0, abs=1e-9 * scale)
    assert move > -1


def test_account_shock_example_directions_and_columns() -> None:
    sides_, q, e, m = ["long", "short"], [1, 10], [20_000, 1_500], [21_000, 1_400]
    move = account_shock(sides_, q, e, m, 2_000)
    assert move == pytest.approx(3_000 / 6_825 - 1)
    assert account_shock(sides_, q, e, m, 2_000, direction="down") == move
    assert math.isnan(account_shock(sides_, q, e, m, 2_000, direction="up"))
    # a short-only account liquidates on a rise
    up = account_shock(["short"], [1], [20_000], [20_000], 1_000)
    assert up == pytest.approx((21_000 / 1.005) / 20_000 - 1)
    # block: one account per column, blank qty = no position; wallet one per column
    block = account_shock([["long", "short"], ["short", None]], [[1, 1], [10, None]],
                          [[20_000, 20_000], [1_500, None]], [[21_000, 20_000], [1_400, None]],
                          [2_000, 1_000])
    assert block.tolist() == pytest.approx([move, up])
    # a bad cell names the argument, the rule and where it is; other columns still compute
    res = account_shock.rows([["long", "short"], ["sideways", None]], [[1, 1], [10, None]],
                             20_000, 20_000, 1_000)
    assert res.errors[0] == "sides must be long or short (also buy/sell, 1/-1), got " \
        "'sideways' (row 2, column 1)"
    assert res.errors[1] is None and not math.isnan(res.values[1])
    with pytest.raises(lv.InputError, match="direction must be either, down or up"):
        account_shock(sides_, q, e, m, 2_000, direction="sideways")


def test_account_shock_already_below_maintenance_is_an_error() -> None:
    # wallet 100, a long losing 1,000: equity −900 at today's marks
    with pytest.raises(lv.PositionError, match="already below maintenance"):
        account_shock(["long"], [1], [21_000], [20_000], 100)


# ------------------------------------------------------------ LIQ_PROBABILITY
@pytest.mark.filterwarnings("ignore::leverage.errors.LeverageWarning")  # 500 %+ a year
@settings(max_examples=300, deadline=None)
@given(side=sides, mark=prices, dist=st.floats(0.001, 0.9), vol=st.floats(0.05, 3),
       days=st.floats(0.1, 365), drift=st.floats(-2, 2), more=st.floats(1.01, 3))
def test_liq_probability_rises_with_volatility_and_horizon(
    side: str, mark: float, dist: float, vol: float, days: float, drift: float, more: float
) -> None:
    liq = mark * (1 - dist) if side == "long" else mark / (1 - dist)
    p = liq_probability(side, mark, liq, vol, days, drift)
    assert 0 <= p <= 1
    # rounding of a probability near 0 or 1 is at the approximation's 1e-7 level.
    # More time never lowers the chance of a touch, whatever the drift.
    assert liq_probability(side, mark, liq, vol, days * more, drift) >= p - 1e-7
    # More volatility raises it at the default zero drift; with a strong drift toward the
    # level it need not (noise can carry the price away from a sure hit), so not asserted.
    p0 = liq_probability(side, mark, liq, vol, days)
    assert liq_probability(side, mark, liq, vol * more, days) >= p0 - 1e-7


def test_liq_probability_edges() -> None:
    assert liq_probability("long", 20_000, None, 0.6, 30) == 0
    assert liq_probability("long", 20_000, float("nan"), 0.6, 30) == 0
    assert liq_probability("long", 20_000, 20_000, 0.6, 30) == 1  # at it
    assert liq_probability("long", 20_000, 21_000, 0.6, 30) == 1  # past it
    assert liq_probability("short", 20_000, 19_000, 0.6, 30) == 1
    assert liq_probability("short", 20_000, 21_000, 0.6, 0) == 0  # no time
    # no volatility: the price moves at the drift, −50 %/yr reaches −10 % in about 77 days
    assert liq_probability("long", 100, 90, 0, 80, -0.5) == 1
    assert liq_probability("long", 100, 90, 0, 70, -0.5) == 0
    res = liq_probability.rows("long", 20_000, [18_000, 18_000], [0.6, -0.6], 30)
    assert res.errors[1] == "volatility must be >= 0, got -0.6"


def test_liq_probability_is_0_or_1_where_the_volatility_is_negligible() -> None:
    # a volatility so small that σ² underflows: the price moves at the drift
    assert liq_probability("long", 20_000, 1e-300, 1e-300, 1) == 0
    assert liq_probability("long", 20_000, 18_000, 1e-170, 365) == 0
    assert liq_probability("long", 20_000, 18_000, 1e-300, 365, -1) == 1
    assert liq_probability("short", 20_000, 22_000, 1e-300, 365, 1) == 1
    assert liq_probability("short", 20_000, 1e300, 1e-300, 1) == 0


def test_liq_probability_reads_a_short_as_a_mirrored_long() -> None:
    # with no drift in the log price (drift = σ²/2), touching ×1.1 and ×(1/1.1) are equally
    # likely
    vol = 0.8
    up = liq_probability("short", 100, 110, vol, 30, vol**2 / 2)
    down = liq_probability("long", 100, 100 / 1.1, vol, 30, vol**2 / 2)
    assert up == pytest.approx(down, abs=1e-9)
    # and then it is twice the chance of ending beyond the level (reflection principle)
    z = math.log(1.1) / (vol * math.sqrt(30 / 365))
    assert up == pytest.approx(math.erfc(z / math.sqrt(2)), abs=1e-6)


@pytest.mark.parametrize(
    ("side", "liq", "vol", "days", "drift"),
    [("long", 18_000, 0.6, 7, 0.0), ("short", 23_000, 0.9, 30, 0.4), ("long", 15_000, 1.2, 90,
                                                                          -0.8)],
)
def test_liq_probability_matches_a_seeded_monte_carlo(
    side: str, liq: float, vol: float, days: float, drift: float
) -> None:
    """Simulate the same model: ln price = (drift − σ²/2)t + σW_t, on a grid, with the exact
    Brownian-bridge chance of touching the level between grid points (so the grid does not
    bias the estimate). Agreement within 4 standard errors of the sampling error."""
    rng = np.random.default_rng(20_261_202)
    paths, steps, mark = 20_000, 50, 20_000.0
    t = days / 365
    dt = t / steps
    mu = drift - vol**2 / 2
    s = 1 if side == "long" else -1
    b = s * math.log(liq / mark)  # a short mirrored onto a long: level below 0
    x = np.cumsum(s * mu * dt + vol * math.sqrt(dt) * rng.standard_normal((paths, steps)),
                  axis=1)
    x0 = np.hstack([np.zeros((paths, 1)), x[:, :-1]])
    over0, over1 = x0 - b, x - b
    cross = np.where((over0 > 0) & (over1 > 0),
                     np.exp(-2 * over0 * over1 / (vol**2 * dt)), 1.0)
    touched = 1 - np.prod(1 - cross, axis=1)
    estimate, error = touched.mean(), touched.std() / math.sqrt(paths)
    p = liq_probability(side, mark, liq, vol, days, drift)
    assert 0.01 < p < 0.99
    assert abs(p - estimate) < 4 * error + 1e-6


# ------------------------------------------------------------- SAFE_LEVERAGE
@settings(max_examples=100, deadline=None)
@given(vol=st.floats(0.1, 2), days=st.floats(0.5, 60), limit=st.floats(0.001, 0.5),
       mmr=st.floats(0.001, 0.05), side=sides)
def test_safe_leverage_is_the_largest_within_the_limit(
    vol: float, days: float, limit: float, mmr: float, side: str
) -> None:
    lev = safe_leverage(vol, days, limit, mmr, side)
    assume(not math.isnan(lev))

    def prob(leverage: float) -> float:
        margin = 1 / leverage  # notional 1 at price 1
        liq = lv.liq_price(side, 1, 1, margin, mmr)
        return liq_probability(side, 1, liq, vol, days)

    assert prob(lev) <= limit + 1e-12
    if lev < 1 / mmr * (1 - 1e-9):  # not capped where the liquidation price meets the mark
        assert prob(lev * (1 + 1e-6)) > limit


def test_safe_leverage_falls_as_volatility_rises_and_tiers_cap_it() -> None:
    levs = safe_leverage([0.3, 0.6, 1.2], 1, 0.01)
    assert levs[0] > levs[1] > levs[2] > 1
    # calm market: the table's top leverage binds before the probability does
    top = float(np.nanmax(lv.get_tier_table("binance:BTCUSDT").max_leverages))
    assert safe_leverage(0.01, 1, 0.05, tiers="binance:BTCUSDT") == top
    capped = safe_leverage(0.6, 1, 0.01, tiers="binance:BTCUSDT")
    assert 1 < capped < top
    # at ~12x the largest band allowed (25x: up to 70M notional, mmr 2 %) is riskier than
    # the first band's 0.4 %: the tiered answer is the conservative one
    assert capped < safe_leverage(0.6, 1, 0.01, 0.004)
    with pytest.raises(lv.InputError, match="maint_amount must be 0 without tiers"):
        safe_leverage(0.6, 1, 0.01, maint_amount=10)
    with pytest.raises(lv.InputError, match="max_probability must be >= 0 and <= 1, got 2"):
        safe_leverage(0.6, 1, 2)


def test_volatility_typed_as_a_percent_is_flagged_with_what_to_type() -> None:
    hint = "volatility 60 is 6000 %; for 60 % type 0.6 or 60%"
    with pytest.warns(lv.LeverageWarning, match=re.escape(hint)):
        liq_probability("long", 20_000, 18_000, 60, 7)
    res = liq_probability.rows("long", 20_000, 18_000, [0.6, 60, "60%"], 7)
    assert res.warnings is not None
    assert res.warnings[0] is None and res.warnings[2] is None
    assert hint in res.warnings[1]
    with pytest.warns(lv.LeverageWarning, match=re.escape(hint)):
        safe_leverage(60, 1, 0.01)
    # a high but real volatility (300 % a year) is not a typed percent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        liq_probability("long", 20_000, 18_000, 3, 7)
        safe_leverage(3, 1, 0.01)


# ------------------------------------------------------- FUNDING_FROM_HISTORY
def _history() -> tuple[list[float], list[float], list[float]]:
    """Three days of 8-hourly events, then the interval drops to 1 h for 12 hours."""
    times = [i * 8 * HOUR for i in range(9)] + [3 + (i + 1) * HOUR for i in range(12)]
    rates = [0.0001] * 9 + [0.0003] * 12
    marks = [50_000.0] * 9 + [52_000.0] * 12
    return times, rates, marks


def test_funding_from_history_across_an_interval_change() -> None:
    times, rates, marks = _history()
    want = -2 * (9 * 0.0001 * 50_000 + 12 * 0.0003 * 52_000)
    assert funding_from_history("long", 2, times, rates, marks) == pytest.approx(want)
    assert funding_from_history("short", 2, times, rates, marks) == pytest.approx(-want)
    # window: opened at 1 day (inclusive), closed at 3 h after the switch (exclusive)
    part = funding_from_history("long", 2, times, rates, marks, 1.0, 3 + 3 * HOUR)
    assert part == pytest.approx(-2 * (6 * 0.0001 * 50_000 + 2 * 0.0003 * 52_000))
    # inverse: qty in USD of contracts, money in coin
    inv = funding_from_history("long", 10_000, times, rates, marks, contract="inverse")
    assert inv == pytest.approx(-10_000 * (9 * 0.0001 / 50_000 + 12 * 0.0003 / 52_000))


def test_funding_from_history_with_a_gap_is_blank_never_zero() -> None:
    times, rates, marks = _history()
    # a missing hourly event inside the window
    gap_t = times[:14] + times[15:]
    gap_r, gap_m = rates[:14] + rates[15:], marks[:14] + marks[15:]
    assert math.isnan(funding_from_history("long", 2, gap_t, gap_r, gap_m))
    # ... but a window that ends before the gap is fine
    early = funding_from_history("long", 2, gap_t, gap_r, gap_m, None, 3 + 2 * HOUR)
    assert early == pytest.approx(-2 * (9 * 0.0001 * 50_000 + 1 * 0.0003 * 52_000))
    # a blank rate or mark inside the window: blank; outside it: ignored
    blank = list(rates)
    blank[4] = None
    assert math.isnan(funding_from_history("long", 2, times, blank, marks))
    assert not math.isnan(funding_from_history("long", 2, times, blank, marks, 2.0))
    no_mark = list(marks)
    no_mark[-1] = ""
    assert math.isnan(funding_from_history("long", 2, times, rates, no_mark))
    # a window that starts long before the history does: events are missing
    assert math.isnan(funding_from_history("long", 2, times, rates, marks, -5.0))


def test_funding_from_history_missing_event_at_either_end_is_blank() -> None:
    h = 1 / 3  # 8 h in days
    # the events at 4 h .. 8 h (days 4/3 .. 8/3) are missing at the end of the history
    assert math.isnan(funding_from_history("long", 1, [0, h, 2 * h, 3 * h, 9 * h],
                                           [1e-4] * 5, [1] * 5))
    # ... and at its start
    assert math.isnan(funding_from_history("long", 1, [0, 6 * h, 7 * h, 8 * h, 9 * h],
                                           [1e-4] * 5, [1] * 5))
    # a window that leaves the gap out still has an answer
    early = funding_from_history("long", 1, [0, h, 2 * h, 3 * h, 9 * h], [1e-4] * 5, [1] * 5,
                                 None, 3 * h)
    assert early == pytest.approx(-3e-4)


def test_funding_from_history_converts_time_zones_to_utc() -> None:
    import datetime as dt

    utc = dt.UTC
    plus2 = dt.timezone(dt.timedelta(hours=2))
    times = [dt.datetime(2026, 11, 1, 8 * i, tzinfo=utc) for i in range(3)]
    # 10:00 at UTC+2 is 08:00 UTC: the second event is inside the window
    opened = dt.datetime(2026, 11, 1, 10, tzinfo=plus2)
    got = funding_from_history("long", 1, times, [1e-4] * 3, [50_000] * 3, opened)
    assert got == pytest.approx(-2 * 5.0)
    # the same instants typed at UTC+2 give the same total as at UTC
    local = [t.astimezone(plus2) for t in times]
    closed = dt.datetime(2026, 11, 1, 9, tzinfo=utc)
    assert funding_from_history("long", 1, local, [1e-4] * 3, [50_000] * 3, None, closed) == \
        pytest.approx(-2 * 5.0)


def test_funding_from_history_columns_dates_and_errors() -> None:
    import datetime as dt

    start = dt.datetime(2026, 11, 1)
    times = [start + dt.timedelta(hours=8 * i) for i in range(4)]
    one = funding_from_history("short", 1, times, [0.0001] * 4, [60_000] * 4,
                               start + dt.timedelta(hours=8))
    assert one == pytest.approx(3 * 0.0001 * 60_000)
    # block: one position per column, padding where a column's history is shorter
    t = [[0, 0], [1 / 3, 1 / 24], [2 / 3, None]]
    r = [[0.0001, 0.0002], [0.0001, 0.0002], [0.0001, None]]
    m = [[50_000, 3_000], [50_000, 3_000], [50_000, None]]
    got = funding_from_history(["long", "short"], [1, 10], t, r, m)
    assert got.tolist() == pytest.approx([-15.0, 12.0])
    res = funding_from_history.rows("long", [1, -1], t, r, m)
    assert res.errors[0] is None and res.errors[1] == "qty must be > 0, got -1"
    with pytest.raises(lv.InputError, match="times must increase"):
        funding_from_history("long", 1, [0, 2, 1], [0.0001] * 3, [1.0] * 3)
    with pytest.raises(lv.InputError, match="ranges differ in shape"):
        funding_from_history("long", 1, [0, 1], [0.0001] * 3, [1.0] * 3)


# -------------------------------------------------------------------- catalogue
def test_catalogue_names_and_column_forms() -> None:
    assert list(PLANNING_FORMULAS) == [
        "AVG_ENTRY", "LIQ_AFTER_ADD", "MAX_OPEN", "HEDGE_LIQ_PRICE", "ACCOUNT_SHOCK",
        "FUNDING_FROM_HISTORY", "FUNDING_APR", "LIQ_PROBABILITY", "SAFE_LEVERAGE",
    ]
    assert list(lv.CATALOGUE)[-9:] == list(PLANNING_FORMULAS)
    for fn in PLANNING_FORMULAS.values():
        assert callable(fn.rows) and fn.__doc__ and ">>>" in fn.__doc__
    # one call over a column equals the calls over its cells
    col = liq_probability(["long", "short"], 20_000, [18_000, 22_000], [0.6, 0.8], [7, 30])
    assert col.tolist() == [liq_probability("long", 20_000, 18_000, 0.6, 7),
                            liq_probability("short", 20_000, 22_000, 0.8, 30)]
    lev = safe_leverage([0.4, 0.8], [1, 7], 0.02, side=["long", "short"])
    assert lev.tolist() == [safe_leverage(0.4, 1, 0.02), safe_leverage(0.8, 7, 0.02, side="short")]


def test_below_maintenance_condition_per_contract_and_side() -> None:
    """The shared rule (docs: "Blank answers and errors") on the issue's cases."""
    from leverage.conventions.base import Isolated, below_maintenance_everywhere

    side = np.array([-1.0, 1.0, 1.0, -1.0, -1.0, 1.0])
    contract = np.array([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    qty = np.array([1.0, 10_000, 1, 10_000, 1, 10_000])
    entry = np.array([100.0, 20_000, 100, 20_000, 100, 20_000])
    # cross: wallet + other_upnl − other_maint
    shared = np.array([10 - 200, 0.1 - 1.0, -1e9, -1e9, 10 - 50, 0.1 - 0.5])
    got = below_maintenance_everywhere(Isolated(side, qty, entry, contract=contract), shared)
    # linear short −90 ≤ 0; inverse long −0.4 ≤ 0; linear long / inverse short: never;
    # linear short 10 − 50 + 100 > 0; inverse long 0.1 − 0.5 + 0.5 > 0
    assert got.tolist() == [True, True, False, False, False, False]
    # the same rows through the formulas: an error, and a price
    with pytest.raises(lv.PositionError, match="below maintenance margin at every price"):
        lv.cross_liq_price("short", 1, 100, 10, -200, 0, 0.005)
    with pytest.raises(lv.PositionError, match="below maintenance margin at every price"):
        hedge_liq_price(0, None, 1, 100, 10, -200, 0)
    assert not math.isnan(lv.cross_liq_price("short", 1, 100, 10, -50, 0, 0.005))
