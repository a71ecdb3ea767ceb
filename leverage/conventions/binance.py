"""Binance (USDⓈ-M and COIN-M): maintenance margin at the liquidation price's notional.

``LP = (margin + maint_amount − s·qty·entry) / (qty·mmr − s·qty)`` (linear); with tiers, the
bracket that holds the notional at the liquidation price, as Binance's FAQ asks. See
docs/FORMULAS.md, section "Exchange conventions".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Convention, liq_at_exit_notional, margin_at_exit_notional


class Binance(Convention):
    name = "binance"
    title = "Binance FAQ: How to Calculate Liquidation Price of USDⓈ-M Futures Contracts"
    source = "https://www.binance.com/en/support/faq/b3c689c1f50a44cabb3a84e663b81d93"

    def liq_price(self, side: Any, qty: Any, entry_price: Any, margin: Any, mmr: Any,
                  maint_amount: Any, contract: Any, tiers: Any, fee_rate: Any) -> np.ndarray:
        return liq_at_exit_notional(
            side, qty, entry_price, margin, mmr, maint_amount, contract, tiers
        )

    def margin_for_liq_price(self, side: Any, qty: Any, entry_price: Any, target_liq_price: Any,
                             mmr: Any, maint_amount: Any, contract: Any, tiers: Any,
                             fee_rate: Any) -> np.ndarray:
        return margin_at_exit_notional(
            side, qty, entry_price, target_liq_price, mmr, maint_amount, contract, tiers
        )
