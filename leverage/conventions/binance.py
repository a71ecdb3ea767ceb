"""Binance (USDⓈ-M and COIN-M): maintenance margin at the liquidation price's notional.

``LP = (margin + maint_amount − s·qty·entry) / (qty·mmr − s·qty)`` (linear); with tiers, the
bracket that holds the notional at the liquidation price, as Binance's FAQ asks. See
docs/FORMULAS.md, section "Exchange conventions".
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import numpy as np

from .base import (
    Convention,
    Isolated,
    entry_notional,
    liq_at_exit_notional,
    maint_at_notional,
    margin_at_exit_notional,
)


class Binance(Convention):
    name = "binance"
    title = "Binance FAQ: How to Calculate Liquidation Price of USDⓈ-M Futures Contracts"
    source = "https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93"

    ccxt_ids: ClassVar[tuple[str, ...]] = ("binanceusdm", "binancecoinm")  # /fapi, /dapi
    rule = (
        "(the default; USDⓈ-M and COIN-M): MM at the liquidation price's notional, "
        "``LP = (WB + maint_amount − s·qty·entry) / (qty·mmr − s·qty)`` for linear, "
        "``qty·(1 + mmr) / (margin + maint_amount + qty/entry)`` (long) and "
        "``qty·(1 − mmr) / (qty/entry − margin − maint_amount)`` (short) for inverse. "
        "With ``tiers``, the tier is the one whose band holds the notional *at the "
        "liquidation price* (Binance's FAQ: recompute with the bracket the liquidation price "
        "falls in), so the answer is always consistent with the tier used.")
    fee_counts = False  # Binance's published formula has no fee term

    def _as_published(self, position: Isolated) -> Isolated:
        if self.fee_counts or (position.fee_rate.__class__ is float and position.fee_rate == 0):
            return position  # already as published (a scalar call's fee_rate=0)
        return replace(position, fee_rate=0.0)

    def liq_price(self, position: Isolated, margin: Any) -> np.ndarray:
        return liq_at_exit_notional(self._as_published(position), margin)

    def margin_for_liq_price(self, position: Isolated, target_liq_price: Any) -> np.ndarray:
        return margin_at_exit_notional(self._as_published(position), target_liq_price)

    def maint_at_entry(self, position: Isolated) -> Any:
        return maint_at_notional(position, entry_notional(position), self.fee_counts)

    def rates_counted(self, position: Isolated) -> dict[str, Any]:
        rates = super().rates_counted(position)
        return {**rates, "fee_rate": position.fee_rate} if self.fee_counts else rates
