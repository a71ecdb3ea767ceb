"""Worked examples: the product article (SPEC.md), exchanges' published numbers, and
hand-checked arithmetic for each side and contract type."""

from __future__ import annotations

import math

import numpy as np
import pytest

import leverage as lv

REL = 1e-9


# ---------------------------------------------------------------- SPEC.md article
def test_article_leverage_10x() -> None:
    # Notional 100,000, margin 10,000 -> effective leverage 10.
    assert lv.effective_leverage(100_000, 10_000) == 10.0


def test_article_withdraw_profit_keeps_10x() -> None:
    # Unrealized profit 2,000 (equity 12,000): withdrawing 2,000 leaves leverage at 10.
    move = lv.margin_to_target(100_000, 10_000, 10, 2_000)
    assert move == -2_000.0
    assert lv.effective_leverage(100_000, 10_000 + move, 2_000) == pytest.approx(10.0, rel=REL)


def test_article_added_margin_margin_vs_equity_leverage() -> None:
    # 10,000 + 3,000 added = 13,000: 100,000 / 13,000 = 7.69 margin-based;
    # with the 1,000 loss counted, 100,000 / 12,000 = 8.33 equity-based.
    assert lv.effective_leverage(100_000, 13_000) == pytest.approx(7.6923076923, rel=1e-9)
    assert lv.effective_leverage(100_000, 13_000, -1_000) == pytest.approx(8.3333333333, rel=1e-9)


def test_article_maintenance_margin_range() -> None:
    # Maintenance margin is typically 0.5 %-2 % of notional.
    assert lv.maint_margin(100_000, 0.005) == 500.0
    assert lv.maint_margin(100_000, 0.02) == 2_000.0


def test_article_funding_8h() -> None:
    # Positive rate: longs pay shorts. 0.01 % on 100,000 = 10 per 8 h; 3 a day.
    assert lv.funding_payment("long", 100_000, 0.0001) == -10.0
    assert lv.funding_payment("short", 100_000, 0.0001) == 10.0
    assert lv.funding_cost("long", 100_000, 0.0001, 3) == pytest.approx(-30.0, rel=REL)


# ------------------------------------------------------- published exchange examples
def test_bybit_help_centre_usdt_isolated() -> None:
    # Bybit help centre, "Liquidation Price (USDT Contract)", Example 1: long 1 BTC at 20,000,
    # 50x (IM 400), MMR 0.5 % (MM 100): LP = 20,000 - (400 - 100) / 1 = 19,700.
    assert lv.liq_price("long", 1, 20_000, 400, 0.005, exchange="bybit") == 19_700.0
    # The Binance form for the same inputs: (400 - 20,000) / (0.005 - 1) = 19,698.49...
    assert lv.liq_price("long", 1, 20_000, 400, 0.005) == pytest.approx(19_698.4924623, rel=1e-9)


def test_binance_usdm_faq_simple_long() -> None:
    # Binance FAQ 25edcd7fe0e544839d0847b8cbb2e400: wallet 500, long BTCUSDT worth 1,000 USDT
    # at 50,000 (qty 0.02), MMR 0.4 %, cum 0 -> LP 25,100.40.
    # (500 - 0.02*50,000) / (0.02*0.004 - 0.02) = -500 / -0.01992 = 25,100.4016
    assert lv.liq_price("long", 0.02, 50_000, 500, 0.004) == pytest.approx(25_100.4016064, rel=1e-9)


def test_binance_usdm_faq_cross_example_nonzero_cum() -> None:
    # Binance FAQ b3c689c1f50a44cabb3a84e663b81d93 (cross, one-way), as quoted by freqtrade's
    # test_liquidation_price_binance: WB 1,535,443.01.
    # ETHUSDT long 3,683.979 @ 1,456.84, MMR 10 %, cum 135,365; the other position (BTC)
    # has TMM 71,200.81144 and UPNL -56,354.57 -> LP 1,153.26.
    eth = lv.cross_liq_price(
        "long", 3_683.979, 1_456.84, 1_535_443.01, -56_354.57, 71_200.81144, 0.10, 135_365
    )
    assert eth == pytest.approx(1_153.26, abs=0.005)
    # BTCUSDT long 109.488 @ 32,481.98, MMR 2.5 %, cum 16,300; others TMM 356,512.508,
    # UPNL -448,192.89 -> LP 26,316.89.
    btc = lv.cross_liq_price(
        "long", 109.488, 32_481.98, 1_535_443.01, -448_192.89, 356_512.508, 0.025, 16_300
    )
    assert btc == pytest.approx(26_316.89, abs=0.005)


def test_binance_isolated_variants_from_freqtrade() -> None:
    # freqtrade's test_liquidation_price_binance, isolated cases of the same positions
    # (TMM = UPNL = 0, WB = 1,535,443.01): 1,114.78 and 18,778.73 (nonzero cum).
    # ETH: (1,535,443.01 + 135,365 - 3,683.979*1,456.84) / (3,683.979*(0.1 - 1))
    assert lv.liq_price("long", 3_683.979, 1_456.84, 1_535_443.01, 0.10, 135_365) == (
        pytest.approx(1_114.78, abs=0.005)
    )
    assert lv.liq_price("long", 109.488, 32_481.98, 1_535_443.01, 0.025, 16_300) == (
        pytest.approx(18_778.73, abs=0.005)
    )


def test_binance_coinm_forum_example_with_tiers() -> None:
    # dev.binance.vision thread 6292 quoting Binance's calculator: cross, wallet 101 BTC,
    # long 100,000 BTCUSD contracts (10,000,000 USD) at 45,000 -> LP 33,599.40. The notional at
    # the liquidation price (~297.6 BTC) is in tier 7 (12.5 %, maintenance amount 11.605 BTC);
    # the tier choice by the notional *at the liquidation price* is what reproduces it:
    # 10,000,000*(1+0.125) / (101 + 11.605 + 10,000,000/45,000) = 33,599.42
    lp = lv.cross_liq_price("long", 10_000_000, 45_000, 101, contract="inverse",
                            tiers="binance:BTCUSD_PERP")
    assert lp == pytest.approx(33_599.40, abs=0.05)
    notional_at_lp = 10_000_000 / lp
    assert lv.tier("binance:BTCUSD_PERP", notional_at_lp).mmr == 0.125


# ----------------------------------------------------------- hand-checked, each kind
def test_linear_long_liq_hand_checked() -> None:
    # long 1 BTC at 60,000 on 6,000 margin (10x), mmr 0.5 %:
    # LP = (6,000 - 60,000) / (0.005 - 1) = 54,271.3568
    assert lv.liq_price("long", 1, 60_000, 6_000, 0.005) == pytest.approx(54_271.3567839, rel=1e-9)


def test_linear_short_liq_hand_checked() -> None:
    # short 1 BTC at 60,000 on 6,000: LP = (6,000 + 60,000) / (0.005 + 1) = 65,671.6418
    assert lv.liq_price("short", 1, 60_000, 6_000, 0.005) == pytest.approx(65_671.641791, rel=1e-9)


def test_inverse_long_liq_hand_checked() -> None:
    # long 10,000 USD of BTCUSD at 50,000 on 0.02 BTC (10x), mmr 0.5 %:
    # LP = 10,000 * 1.005 / (0.02 + 10,000/50,000) = 10,050 / 0.22 = 45,681.818
    assert lv.liq_price("long", 10_000, 50_000, 0.02, 0.005, contract="inverse") == pytest.approx(
        45_681.8181818, rel=1e-9
    )


def test_inverse_short_liq_hand_checked_and_none() -> None:
    # short 10,000 USD at 50,000 on 0.02 BTC: LP = 10,000 * 0.995 / (0.2 - 0.02) = 55,277.78
    assert lv.liq_price("short", 10_000, 50_000, 0.02, 0.005, contract="inverse") == pytest.approx(
        55_277.7777778, rel=1e-9
    )
    # Over-collateralised short (margin >= qty/entry): never liquidated -> nan.
    assert math.isnan(lv.liq_price("short", 10_000, 50_000, 0.25, 0.005, contract="inverse"))


def test_long_with_full_margin_cannot_be_liquidated_at_mmr_zero() -> None:
    assert math.isnan(lv.liq_price("long", 1, 60_000, 60_000, 0.0))
    assert lv.bankruptcy_price("long", 1, 60_000, 60_000) != lv.bankruptcy_price(
        "long", 1, 60_000, 59_999
    )


def test_bankruptcy_hand_checked() -> None:
    assert lv.bankruptcy_price("long", 2, 30_000, 3_000) == 28_500.0  # 30,000 - 3,000/2
    assert lv.bankruptcy_price("short", 2, 30_000, 3_000) == 31_500.0
    # inverse long: 10,000 / (10,000/50,000 + 0.02) = 45,454.545
    assert lv.bankruptcy_price("long", 10_000, 50_000, 0.02, "inverse") == pytest.approx(
        45_454.5454545, rel=1e-9
    )


def test_okx_fee_convention_hand_checked() -> None:
    # OKX form: long LP = (entry - margin/qty) / (1 - mmr - fee);
    # (60,000 - 6,000) / (1 - 0.005 - 0.0005) = 54,298.64
    assert lv.liq_price("long", 1, 60_000, 6_000, 0.005, exchange="okx", fee_rate=0.0005) == (
        pytest.approx(54_000 / 0.9945, rel=1e-12)
    )
    assert lv.liq_price("short", 1, 60_000, 6_000, 0.005, exchange="okx", fee_rate=0.0005) == (
        pytest.approx(66_000 / 1.0055, rel=1e-12)
    )


def test_other_functions_hand_checked() -> None:
    assert lv.notional(2, 50_000) == 100_000.0
    assert lv.notional(10_000, 50_000, "inverse") == pytest.approx(0.2)
    assert lv.unrealized_pnl("short", 2, 50_000, 49_000) == 2_000.0
    assert lv.max_withdrawable(100_000, 12_000, 0, 10) == 2_000.0
    assert lv.max_withdrawable(100_000, 10_000, 3_000, 10) == 3_000.0
    assert lv.max_withdrawable(100_000, 10_000, 3_000, 10, False) == 0.0
    assert lv.max_withdrawable(100_000, 10_000, -3_000, 5) == 0.0
    assert lv.liq_distance("long", 20_000, 19_000) == pytest.approx(0.05)
    assert lv.liq_distance("long", 20_000, 21_000) == 0.0  # already past it
    assert math.isnan(lv.liq_distance("long", 20_000, None))
    assert lv.position_size(10_000, 0.01, 50_000, 49_000) == pytest.approx(0.1)
    assert lv.position_size(10_000, 0.01, 50_000, 51_000) == pytest.approx(0.1)  # short
    # inverse: 1 BTC equity, 1 % risk, stop 45,000 below 50,000: 0.01 / (1/45k - 1/50k) = 4,500
    assert lv.position_size(1, 0.01, 50_000, 45_000, "inverse") == pytest.approx(4_500.0)
    assert lv.gap_loss("long", 1, 20_000, 400, 19_000) == 600.0
    assert lv.gap_loss("long", 1, 20_000, 400, 19_800) == 0.0
    assert lv.gap_loss("short", 1, 20_000, 400, 21_000) == 600.0


def test_tier_lookup_boundaries() -> None:
    table = lv.get_tier_table("binance:BTCUSDT")
    # Binance BTCUSDT snapshot: tier 1 is [0, 300,000) at 0.4 %, tier 2 [300,000, 800,000) 0.5 %.
    assert lv.tier(table, 299_999.99).mmr == 0.004
    assert lv.tier(table, 300_000).mmr == 0.005  # the lower bound belongs to the upper tier
    # MM is continuous across the bound: 300,000 * 0.004 - 0 == 300,000 * 0.005 - 300
    assert lv.maint_margin(300_000 - 1e-6, tiers=table) == pytest.approx(
        lv.maint_margin(300_000, tiers=table), abs=1e-6
    )
    rows = lv.tier(table, np.array([0.0, 300_000.0, 5e9]))
    assert rows.mmr.tolist() == [0.004, 0.005, 0.5]  # beyond the table: the last tier


def test_tiered_liq_price_is_consistent_with_its_tier() -> None:
    table = lv.get_tier_table("binance:BTCUSDT")
    qty = np.linspace(0.5, 400, 300)
    lp = lv.liq_price("long", qty, 60_000, qty * 60_000 / 20, tiers=table)
    mmr, cum, _ = table.lookup(qty * lp)
    # equity at LP equals the tier's maintenance margin at LP's notional
    equity = qty * 60_000 / 20 + qty * (lp - 60_000)
    np.testing.assert_allclose(equity, qty * lp * mmr - cum, rtol=1e-9, atol=1e-6)


def test_tiered_liq_price_across_a_boundary_matches_single_tier_formula() -> None:
    # A position whose liquidation notional straddles the 300,000 bound: either side of it the
    # tiered answer must equal the plain formula with that tier's rates.
    table = lv.get_tier_table("binance:BTCUSDT")
    for qty in (4.9, 5.0, 5.6):
        lp = lv.liq_price("long", qty, 66_000, 20_000, tiers=table)
        row = lv.tier(table, qty * lp)
        assert lp == pytest.approx(
            lv.liq_price("long", qty, 66_000, 20_000, row.mmr, row.maint_amount), rel=1e-12
        )


def test_bybit_style_table_liquidates_on_the_jump() -> None:
    # A table without maintenance amounts (Bybit's older risk limits) has MM jumping at the
    # bound; where the root falls in the jump, liquidation is at the bound itself.
    table = lv.TierTable.from_rows([[0, 100, 0.01, 50], [100, 1e9, 0.5, 2]])
    assert [t.maint_amount for t in table.tiers] == [0.0, 49.0]  # derived: continuous
    jumpy = lv.TierTable.from_rows([[0, 100, 0.01, 0, 50], [100, 1e9, 0.5, 0, 2]])
    # short 1 at 90 on 30 margin: equity - MM is 30 - 10 - 1 = 19 just below 100 and
    # 30 - 10 - 50 = -30 just above it, so the position is liquidated at 100.
    assert lv.liq_price("short", 1, 90, 30, tiers=jumpy) == pytest.approx(100.0)
    # long 1 at 150 on 80: inside tier 2, 80 + (P - 150) = 0.5 P  ->  P = 140
    assert lv.liq_price("long", 1, 150, 80, tiers=jumpy) == pytest.approx(140.0)
