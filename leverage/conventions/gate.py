"""Gate (USDT-margined isolated): the maintenance rate plus a close-fee rate, per contract.

``LP = (entry − s·margin / multiplier / contracts) / (1 − s·(mmr + fee_rate))``, where
``multiplier × contracts`` is the position's size in coins (``qty``): OKX's form, Binance's
condition with ``mmr + fee_rate`` in place of ``mmr`` (and ``maint_amount``, 0 in Gate's
formula, subtracted as in the other tiered forms). See docs/FORMULAS.md, section "Exchange
conventions".

Which fee rate: Gate's liquidation counts the contract's listed taker rate (0.075 %,
``taker_fee_rate`` of ``GET /futures/usdt/contracts``), NOT the account's own taker fee.
Solved from a real Gate position (ccxt's static test answer for ``fetchPositions``,
ts/src/test/static/response/gate.json, account 10406147): LTC_USDT isolated long, 1 contract
of 0.1 LTC at 74.35, margin 1.49257625, maintenance_rate 0.01, Gate's ``liq_price`` 60.07:
``1 − (0.01 + r) = (74.35 − 1.49257625 / 0.1) / 60.07`` gives ``r = 0.00075`` (60.07 ± 0.005
bounds it to 0.00066-0.00083), while the same account's own taker fee is 0.05 % (its LTC_USDT
swap fill in the same file: fee 0.003421 on 6.842 USDT; its order's ``tkfr`` 0.0005), which
would give 60.05. Gate's support says the same ("Taker rate = 0.075%"). The position's
margin shows the rate too: Gate posts notional ÷ leverage plus a close-fee reserve,
7.435 / 5 + 7.435 × 0.00075 = 1.49257625 exactly.

>>> import leverage as lv
>>> round(lv.liq_price("long", 0.1, 74.35, 1.49257625, 0.01, exchange="gate",
...                    fee_rate=CLOSE_FEE_RATE), 2)
60.07
"""

from __future__ import annotations

from typing import ClassVar

from .binance import Binance

CLOSE_FEE_RATE = 0.00075
"""The close-fee rate Gate's liquidation price counts for a USDT perpetual (the contract's
listed taker rate; see the module doc)."""


class Gate(Binance):
    name = "gate"
    title = "Gate help centre: Liquidation price & bankruptcy price (futures)"
    source = "https://www.gate.io/help/futures/futures/27724/liquidation-price-bankruptcy-price"
    linear_only = True  # the inverse (BTC_USD) form is not implemented
    fee_counts = True
    ccxt_ids: ClassVar[tuple[str, ...]] = ("gate",)  # ccxt 4.5 has no gateio alias
    rule = ("(linear): as okx; Gate counts the contract's listed taker rate (0.075 %), not "
            "the account's own fee, as ``fee_rate``.")

