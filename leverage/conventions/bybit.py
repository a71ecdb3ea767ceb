"""Bybit (USDT isolated): maintenance margin at the entry notional.

``LP = entry − s·(margin − MM)/qty`` with ``MM = qty·entry·mmr − maint_amount`` (with tiers,
the tier of the entry notional). Bybit's example: long 1 BTC at 20,000 on 400 margin (50x),
MMR 0.5 % → MM 100, LP 19,700. See docs/FORMULAS.md, section "Exchange conventions".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Convention, Isolated


def _maint_per_qty(p: Isolated) -> Any:
    """``MM / qty = entry·mmr − maint_amount/qty`` (``MM = qty·entry·mmr − maint_amount``),
    the tier chosen by the entry notional; per unit of qty, so a huge qty does not overflow
    an intermediate product."""
    mmr, maint_amount = p.mmr, p.maint_amount
    if p.tiers is not None:
        mmr, maint_amount, _ = p.tiers.lookup(p.qty * p.entry_price)
    return p.entry_price * mmr - maint_amount / p.qty


class Bybit(Convention):
    name = "bybit"
    title = "Bybit help centre: Liquidation Price (USDT Contract)"
    source = "https://www.bybit.com/en-US/help-center/s/article/Liquidation-Price-USDT-Contract"
    linear_only = True
    ccxt_ids = ("bybit",)
    rule = "(linear): MM at entry notional, ``LP = entry − s × (margin − MM) / qty``."

    def liq_price(self, position: Isolated, margin: Any) -> np.ndarray:
        p = position
        lp = p.entry_price - p.side * (margin / p.qty - _maint_per_qty(p))
        return np.where(lp > 0, lp, np.nan)

    def margin_for_liq_price(self, position: Isolated, target_liq_price: Any) -> np.ndarray:
        p = position
        return p.qty * (_maint_per_qty(p) + p.side * (p.entry_price - target_liq_price))
