"""OKX (linear isolated): the taker fee counts as maintenance margin.

``LP = (entry − s·margin/qty) / (1 − s·(mmr + fee_rate))``: Binance's condition with
``mmr + fee_rate`` in place of ``mmr``. See docs/FORMULAS.md, section "Exchange conventions".
"""

from __future__ import annotations

from .binance import Binance


class Okx(Binance):
    name = "okx"
    title = "OKX help centre: Isolated margin mode (liquidation price with the taker fee)"
    source = "https://www.okx.com/help-center/6997123251341"
    linear_only = True
    fee_counts = True
    ccxt_ids = ("okx",)
    rule = ("(linear): the taker ``fee_rate`` counts as maintenance, "
            "``LP = (entry − s·margin/qty) / (1 − s·(mmr + fee_rate))``.")
