"""Hyperliquid (USDC perpetuals, isolated and cross): maintenance margin is half the initial
margin at the asset's maximum leverage.

Hyperliquid's docs ("Liquidations") give

    liq_price = price − side × margin_available / position_size / (1 − l × side)

with ``l = 1 / MAINTENANCE_LEVERAGE``, the maintenance leverage twice the asset's maximum
leverage, and ``margin_available`` the isolated margin (cross: the account value) less the
maintenance margin at ``price``. Equity is linear in the price, so the answer is the same
whatever ``price`` it is evaluated at; at the entry price (no unrealized PnL) it is Binance's
linear form with ``mmr = l = 1 / (2 × max_leverage)`` and the maintenance margin at the
liquidation price's notional:

    LP = (entry − s × margin / qty) / (1 − s × mmr)

Tiered assets ("Margin tiers": ``maintenance_margin = notional × rate − deduction``, each
tier's rate half the initial margin rate at its maximum leverage and the deduction making the
margin continuous) are a tier table whose band is chosen by the notional at the liquidation
price, as for Binance: :func:`margin_table_tiers` turns Hyperliquid's margin table into one.

A trader passes the asset's maximum leverage as ``mmr = 1 / (2 × max_leverage)``
(:func:`maintenance_rate`: 40x → 0.0125, 50x → 0.01, 3x → 0.1667), or its margin table as
``tiers``. Cross positions use ``CROSS_LIQ_PRICE`` with the same ``mmr``: Hyperliquid's cross
rule (account value = the positions' maintenance margin) is Binance's. See docs/FORMULAS.md,
section "Exchange conventions".

Worked example (a real position, freqtrade tests/exchange/test_hyperliquid.py): ETH long
0.0199 at 2,459.5 on 24.454895 USDC of isolated margin, ETH's maximum leverage then 50x →
``mmr = 1/100``; ``LP = (2,459.5 − 24.454895 / 0.0199) / 0.99 = 1,243.04`` (Hyperliquid showed
1,243.0411908).

>>> import leverage as lv
>>> round(lv.liq_price("long", 0.0199, 2459.5, 24.454895, maintenance_rate(50),
...                    exchange="hyperliquid"), 4)
1243.0412
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from .binance import Binance


class Hyperliquid(Binance):
    name = "hyperliquid"
    title = "Hyperliquid Docs: Trading, Liquidations"
    source = "https://hyperliquid.gitbook.io/hyperliquid-docs/trading/liquidations"
    linear_only = True  # USDC-margined perpetuals only
    fee_counts = False  # the published formula has no fee term
    ccxt_ids = ("hyperliquid",)
    rule = ("(linear, USDC): Binance's linear form with ``mmr = 1 / (2 × the asset's max "
            "leverage)`` (maintenance is half the initial margin at max leverage), or its "
            "margin table as ``tiers``.")


MARGIN_TIERS_SOURCE = "https://hyperliquid.gitbook.io/hyperliquid-docs/trading/margin-tiers"


def maintenance_rate(max_leverage: float) -> float:
    """The maintenance margin rate of an asset whose maximum leverage is ``max_leverage``:
    half the initial margin rate at that leverage, ``1 / (2 × max_leverage)`` (a fraction).

    >>> maintenance_rate(40), maintenance_rate(50), round(maintenance_rate(3), 4)
    (0.0125, 0.01, 0.1667)
    """
    if isinstance(max_leverage, bool) or not isinstance(max_leverage, int | float) or not (
            math.isfinite(max_leverage) and max_leverage >= 1):
        raise ValueError(f"max_leverage must be a number >= 1, got {max_leverage!r}")
    return 1.0 / (2.0 * float(max_leverage))


def margin_table_tiers(margin_tiers: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Hyperliquid's margin table (``meta``'s ``marginTables``: ``marginTiers`` of
    ``{"lowerBound": "0.0", "maxLeverage": 40}``, notional in USDC) as tier rows in ccxt's
    ``fetch_leverage_tiers`` shape (``minNotional``, ``maxNotional``,
    ``maintenanceMarginRate``, ``maxLeverage``), which :func:`leverage.tiers.tables_from_ccxt`
    reads. Each tier's rate is ``1 / (2 × maxLeverage)``; the maintenance amount is left out:
    Hyperliquid's deduction is the one that keeps the margin continuous, which the table
    derives (``deduction(n) = deduction(n−1) + lower_bound(n) × (rate(n) − rate(n−1))``).

    BTC's mainnet table (Margin tiers page: 0-150M at 40x, above 150M at 20x):

    >>> rows = margin_table_tiers([{"lowerBound": "0.0", "maxLeverage": 40},
    ...                            {"lowerBound": "150000000.0", "maxLeverage": 20}])
    >>> [(r["minNotional"], r["maxNotional"], r["maintenanceMarginRate"]) for r in rows]
    [(0.0, 150000000.0, 0.0125), (150000000.0, None, 0.025)]
    """
    if not isinstance(margin_tiers, Sequence) or not margin_tiers:
        raise ValueError(f"margin_tiers must be a non-empty list of tiers, got {margin_tiers!r}")
    rows: list[tuple[float, float]] = []
    for t in margin_tiers:
        if not isinstance(t, Mapping):
            raise ValueError(f"a margin tier must be an object, got {t!r}")
        try:
            lower, lev = float(t["lowerBound"]), float(t["maxLeverage"])
        except (KeyError, TypeError, ValueError):
            raise ValueError(f"a margin tier needs lowerBound and maxLeverage numbers, "
                             f"got {t!r}") from None
        if not (math.isfinite(lower) and lower >= 0):
            raise ValueError(f"lowerBound must be a number >= 0, got {t['lowerBound']!r}")
        rows.append((lower, lev))
    rows.sort()
    return [{"tier": i + 1, "minNotional": lower,
             "maxNotional": rows[i + 1][0] if i + 1 < len(rows) else None,
             "maintenanceMarginRate": maintenance_rate(lev), "maxLeverage": lev}
            for i, (lower, lev) in enumerate(rows)]
