"""Bitget (USDT-M isolated): tiered maintenance margin and the taker fee, at the liquidation
price's notional.

``LP = (margin + maint_amount − s·qty·entry) / (qty·(mmr + fee_rate − s))``: Binance's
condition with ``mmr + fee_rate`` in place of ``mmr``; ``maint_amount`` is Bitget's
"pre-calculated offset" of its tiered maintenance margin (positions opened from 10 November
2025 on). See docs/FORMULAS.md, section "Exchange conventions".

Bitget's worked example of the tiered maintenance margin (BTCUSDT, mark 110,000, 3 BTC:
position value 330,000; tier 1 up to 200,000 at 0.40 %, tier 2 at 0.50 %; taker fee 0.06 %):
``200,000 × 0.46 % + 130,000 × 0.56 % = 1,648`` USDT, which is ``330,000 × (0.50 % + 0.06 %)
− 200`` with the offset ``200,000 × (0.50 % − 0.40 %) = 200``.
"""

from __future__ import annotations

from typing import ClassVar

from .binance import Binance


class Bitget(Binance):
    name = "bitget"
    title = "Bitget futures: Estimated liquidation price"
    source = "https://www.bitget.com/support/articles/12560603808759"
    # the maintenance margin's tiered offset: "Bitget to update maintenance margin calculation
    # for classic account futures", https://www.bitget.com/support/articles/12560603841952
    maint_source = "https://www.bitget.com/support/articles/12560603841952"
    linear_only = True  # the published Coin-M form needs the coin's index price as well
    fee_counts = True  # TakerFeeRatio sits beside MMR in the published formula
    ccxt_ids: ClassVar[tuple[str, ...]] = ("bitget",)
    rule = ("(linear): as okx, with ``maint_amount`` Bitget's tiered offset, "
            "``LP = (margin + maint_amount − s·qty·entry) / (qty·(mmr + fee_rate − s))``.")
