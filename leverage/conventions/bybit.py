"""Bybit (USDT isolated): maintenance margin at the entry notional.

``LP = entry − s·(margin − MM)/qty`` with ``MM = qty·entry·mmr − maint_amount`` (with tiers,
the tier of the entry notional). Bybit's example: long 1 BTC at 20,000 on 400 margin (50x),
MMR 0.5 % → MM 100, LP 19,700. See docs/FORMULAS.md, section "Exchange conventions".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Convention


def _maint_at_entry(qty: Any, entry_price: Any, mmr: Any, maint_amount: Any, tiers: Any) -> Any:
    """``MM = qty·entry·mmr − maint_amount``, the tier chosen by the entry notional."""
    entry_notional = qty * entry_price
    if tiers is not None:
        mmr, maint_amount, _ = tiers.lookup(entry_notional)
    return entry_notional * mmr - maint_amount


class Bybit(Convention):
    name = "bybit"
    title = "Bybit help centre: Liquidation Price (USDT Contract)"
    source = "https://www.bybit.com/en-US/help-center/s/article/Liquidation-Price-USDT-Contract"
    linear_only = True

    def liq_price(self, side: Any, qty: Any, entry_price: Any, margin: Any, mmr: Any,
                  maint_amount: Any, contract: Any, tiers: Any, fee_rate: Any) -> np.ndarray:
        mm = _maint_at_entry(qty, entry_price, mmr, maint_amount, tiers)
        lp = entry_price - side * (margin - mm) / qty
        return np.where(lp > 0, lp, np.nan)

    def margin_for_liq_price(self, side: Any, qty: Any, entry_price: Any, target_liq_price: Any,
                             mmr: Any, maint_amount: Any, contract: Any, tiers: Any,
                             fee_rate: Any) -> np.ndarray:
        mm = _maint_at_entry(qty, entry_price, mmr, maint_amount, tiers)
        return mm + side * (entry_price - target_liq_price) * qty
