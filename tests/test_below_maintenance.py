"""A position below maintenance margin at every price has no liquidation price to show: it is a
PositionError, never nan (a blank cell reads "cannot be liquidated").

With ``shared`` the margin backing the position (isolated margin, or cross
``wallet_balance + other_upnl − other_maint``) and ``amount₀`` the maintenance amount at
notional 0 (``maint_amount``, or tier 1's with tiers), equity minus maintenance is monotone in
the price and bounded on one end only, so the position is below maintenance everywhere exactly
when that end's limit is ≤ 0:

* linear short (limit as the price → 0): ``shared + amount₀ + qty·entry ≤ 0``
* inverse long (limit as the price → ∞): ``shared + amount₀ + qty/entry ≤ 0``
* linear long and inverse short: never (their other end rises without bound); a missing
  liquidation price there truly means "cannot be liquidated".

Isolated margin is ≥ 0 and amounts are ≥ 0, so only cross accounts (whose other positions can
lose more than the wallet) reach it. The rule lives once, in
``leverage.conventions.base.below_maintenance_everywhere``; liq_price, cross_liq_price,
liq_after_add and hedge_liq_price all apply it.
"""

from __future__ import annotations

import math

import pytest

import leverage as lv


def test_cross_linear_short_below_maintenance_everywhere() -> None:
    # the issue's example: the other positions' losses (−200) exceed the wallet (10):
    # shared = −190, −190 + 0 + 1·100 = −90 ≤ 0
    with pytest.raises(lv.PositionError, match="below maintenance"):
        lv.cross_liq_price("short", 1, 100, 10, -200, 0, 0.005)


def test_cross_linear_short_below_maintenance_with_tiers() -> None:
    with pytest.raises(lv.PositionError, match="below maintenance"):
        lv.cross_liq_price("short", 1, 20_000, 1_000, -30_000, tiers="binance:BTCUSDT")


def test_cross_inverse_long_below_maintenance_everywhere() -> None:
    # 10,000 USD of contracts at 20,000 = 0.5 BTC; wallet 0.1 BTC, others −1 BTC:
    # −0.9 + 0.5 = −0.4 ≤ 0
    with pytest.raises(lv.PositionError, match="below maintenance"):
        lv.cross_liq_price("long", 10_000, 20_000, 0.1, -1.0, 0, 0.005, contract="inverse")


def test_cross_rows_report_the_row() -> None:
    res = lv.cross_liq_price.rows("short", 1, 100, 10, [-200, 0], 0, 0.005)
    assert "below maintenance" in str(res.errors[0])
    assert res.errors[1] is None and not math.isnan(res.values[1])


# The cases that must stay blank ("cannot be liquidated").
def test_cannot_be_liquidated_stays_blank() -> None:
    # cross linear long whose wallet covers the whole position at a zero price
    assert math.isnan(lv.cross_liq_price("long", 1, 100, 200, 0, 0, 0.005))
    # inverse short over-collateralised: 0.5 BTC of exposure on 1 BTC of margin
    assert math.isnan(lv.liq_price("short", 10_000, 20_000, 1.0, 0.005, contract="inverse"))
    # a long with margin ≥ notional at mmr 0
    assert math.isnan(lv.liq_price("long", 1, 100, 100, 0.0))


def test_isolated_margin_is_never_below_maintenance_everywhere() -> None:
    # zero isolated margin is the worst case: below maintenance at entry, so liquidated at
    # once (its price 100 / 1.005 is on the losing side of entry), never "at every price"
    for args in (("short", 1, 100, 0, 0.005), ("long", 10_000, 20_000, 0, 0.005, 0, "inverse")):
        with pytest.raises(lv.PositionError, match="liquidated at once") as err:
            lv.liq_price(*args)
        assert "below maintenance margin at every price" not in str(err.value)
    # a hair above maintenance at entry (0.5 here; 0.0025 BTC inverse), a price just past it
    assert lv.liq_price("short", 1, 100, 0.6, 0.005) == pytest.approx(100.6 / 1.005)
    assert lv.liq_price("long", 10_000, 20_000, 0.003, 0.005, contract="inverse") == \
        pytest.approx(10_000 * 1.005 / (0.5 + 0.003))


def test_hedge_shares_the_rule() -> None:
    # one leg: the same rows as cross_liq_price, error and price alike
    with pytest.raises(lv.PositionError, match="below maintenance"):
        lv.hedge_liq_price(0, None, 1, 100, 10, -200, 0)
    assert lv.hedge_liq_price(0, None, 1, 100, 10, -50, 0) == pytest.approx(
        lv.cross_liq_price("short", 1, 100, 10, -50, 0))
    # both legs, net short, the other positions' losses sink the account at every price:
    # equity − maintenance = −390 − 1.015·P < 0 for every P > 0
    with pytest.raises(lv.PositionError, match="below maintenance"):
        lv.hedge_liq_price(1, 100, 2, 100, 10, -500)


def test_liq_after_add_passes_liq_price_errors_on() -> None:
    res = lv.liq_after_add.rows("long", 1, 20_000, 400, 1, 19_000, 0, contract=["linear",
                                "inverse"], exchange="bybit")
    assert res.errors[0] is None
    assert "contract must be linear for exchange='bybit'" in res.errors[1]
