"""OKX (linear isolated): the taker fee counts as maintenance margin.

``LP = (entry − s·margin/qty) / (1 − s·(mmr + fee_rate))``: Binance's condition with
``mmr + fee_rate`` in place of ``mmr``. See docs/FORMULAS.md, section "Exchange conventions".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Convention, liq_at_exit_notional, margin_at_exit_notional


class Okx(Convention):
    name = "okx"
    title = "OKX help centre: Isolated margin mode (liquidation price with the taker fee)"
    source = "https://www.okx.com/help-center/6997123251341"
    linear_only = True
    uses_fee_rate = True

    def liq_price(self, side: Any, qty: Any, entry_price: Any, margin: Any, mmr: Any,
                  maint_amount: Any, contract: Any, tiers: Any, fee_rate: Any) -> np.ndarray:
        return liq_at_exit_notional(
            side, qty, entry_price, margin, mmr, maint_amount, contract, tiers, fee_rate
        )

    def margin_for_liq_price(self, side: Any, qty: Any, entry_price: Any, target_liq_price: Any,
                             mmr: Any, maint_amount: Any, contract: Any, tiers: Any,
                             fee_rate: Any) -> np.ndarray:
        return margin_at_exit_notional(
            side, qty, entry_price, target_liq_price, mmr, maint_amount, contract, tiers,
            fee_rate,
        )
