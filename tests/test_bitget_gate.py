"""The Bitget and Gate conventions against the exchanges' own numbers (each source beside
its numbers), and the checks they share with the other conventions."""

from __future__ import annotations

import pytest

import leverage as lv
from leverage.conventions import CCXT_IDS, CONVENTIONS, FEE_COUNTS
from leverage.conventions.gate import CLOSE_FEE_RATE

# Bitget, "Bitget to update maintenance margin calculation for classic account futures",
# https://www.bitget.com/support/articles/12560603841952: BTCUSDT tier 1 up to 200,000 USDT at
# 0.40 %, tier 2 at 0.50 %; the taker fee 0.06 %
BITGET_BTC = [[0, 200_000, 0.004, 125], [200_000, 1_000_000, 0.005, 100]]
BITGET_FEE = 0.0006


def test_bitget_tiered_maintenance_margin_example() -> None:
    # the same page: mark 110,000, 3 BTC → position value 330,000. Old method: all of it at
    # tier 2, 330,000 × (0.50 % + 0.06 %) = 1,848; tiered: 200,000 × 0.46 % + 130,000 × 0.56 %
    # = 920 + 728 = 1,648 (the offset 200,000 × (0.50 % − 0.40 %) = 200 is our maint_amount)
    assert lv.maint_margin(330_000, 0.005) + 330_000 * BITGET_FEE == pytest.approx(1_848, abs=0.005)
    assert lv.maint_margin(330_000, tiers=BITGET_BTC) + 330_000 * BITGET_FEE == pytest.approx(
        1_648, abs=0.005)
    assert lv.tier(BITGET_BTC, 330_000).maint_amount == pytest.approx(200)


def test_bitget_isolated_liquidation_price() -> None:
    # Bitget's isolated formula (https://www.bitget.com/support/articles/12560603808759):
    # [margin + offset − size × entry × dir] ÷ [size × (MMR + TakerFeeRatio − dir)]. Long 3 BTC
    # at 110,000 on 16,500 (20x), tier 2 at the liquidation price: (16,500 + 200 − 330,000) /
    # (3 × (0.005 + 0.0006 − 1)) = 105,021.45; short: (16,500 + 200 + 330,000) /
    # (3 × (0.005 + 0.0006 + 1)) = 114,923.10
    long = lv.liq_price("long", 3, 110_000, 16_500, tiers=BITGET_BTC, exchange="bitget",
                        fee_rate=BITGET_FEE)
    short = lv.liq_price("short", 3, 110_000, 16_500, tiers=BITGET_BTC, exchange="bitget",
                         fee_rate=BITGET_FEE)
    assert (round(long, 2), round(short, 2)) == (105_021.45, 114_923.10)
    # without the fee it is Binance's price; the fee moves it towards entry
    binance = lv.liq_price("long", 3, 110_000, 16_500, tiers=BITGET_BTC)
    assert binance < long
    back = lv.margin_for_liq_price("long", 3, 110_000, long, tiers=BITGET_BTC,
                                   exchange="bitget", fee_rate=BITGET_FEE)
    assert back == pytest.approx(16_500)


def test_gate_real_position_solves_for_the_listed_taker_rate() -> None:
    # A real Gate position: ccxt's static test answer for fetchPositions
    # (ccxt/ccxt ts/src/test/static/response/gate.json, account 10406147): LTC_USDT isolated
    # long, 1 contract × quanto_multiplier 0.1 LTC at 74.35, margin 1.49257625,
    # maintenance_rate 0.01, Gate's liq_price 60.07
    args = ("long", 0.1, 74.35, 1.49257625, 0.01)
    assert round(lv.liq_price(*args, exchange="gate", fee_rate=CLOSE_FEE_RATE), 2) == 60.07
    # the same account's own taker fee (its LTC_USDT fill in that file: 0.003421 on 6.842 =
    # 0.05 %) does not give Gate's figure: Gate counts the contract's listed 0.075 %
    assert round(lv.liq_price(*args, exchange="gate", fee_rate=0.003421 / 6.842), 2) == 60.05
    # and solving the formula for the rate: 1 − (mmr + r) = (entry − margin/mult/contracts) / LP
    r = 1 - 0.01 - (74.35 - 1.49257625 / 0.1 / 1) / 60.07
    assert r == pytest.approx(CLOSE_FEE_RATE, abs=2e-7)


@pytest.mark.parametrize(("side", "leverage", "entry", "qty", "expected"), [
    # freqtrade's test_get_liquidation_price (tests/exchange/test_exchange.py), gate rows:
    # mmr 0.01, taker 0.0006, margin = qty × entry / leverage
    ("short", 5, 10, 1.0, 11.87413417771621),
    ("short", 5, 10, 2.0, 11.87413417771621),
    ("short", 3, 10, 1.0, 13.193482419684678),
    ("short", 5, 8, 1.0, 9.499307342172967),
    ("long", 5, 10, 1.0, 8.085708510208207),
    ("long", 3, 10, 1.0, 6.738090425173506),
])
def test_gate_matches_freqtrades_gate_rows(side, leverage, entry, qty, expected) -> None:
    got = lv.liq_price(side, qty, entry, qty * entry / leverage, 0.01, exchange="gate",
                       fee_rate=0.0006)
    assert got == pytest.approx(expected, rel=1e-12)
    back = lv.margin_for_liq_price(side, qty, entry, got, 0.01, exchange="gate", fee_rate=0.0006)
    assert back == pytest.approx(qty * entry / leverage)


def test_registry_lines() -> None:
    assert CCXT_IDS["bitget"] == "bitget" and CCXT_IDS["gate"] == "gate"
    assert {"bitget", "gate"} <= set(FEE_COUNTS)
    for name in ("bitget", "gate"):
        assert CONVENTIONS[name].source.startswith("https://") and CONVENTIONS[name].linear_only


def test_inverse_rows_are_refused_by_name() -> None:
    for name in ("bitget", "gate"):
        with pytest.raises(lv.InputError, match=name):
            lv.liq_price("long", 100, 50_000, 0.01, contract="inverse", exchange=name)
