"""The leverage catalogue as Excel functions (xlwings UDFs), category "Leverage".

Point xlwings at this module (``UDF Modules`` = ``addin.udfs``) or, in xlwings Lite, write
``from addin.udfs import *`` in main.py. ``leverage addin`` prints the set-up.

Every function takes single cells or whole columns/rows and returns a same-shaped array that
spills, computed in one call. Bad rows become error cells and the other rows compute: see
:mod:`addin.bridge` for what each error looks like in each Excel.

The Python names are the Excel names (UPPER_SNAKE): classic xlwings names an Excel function
after its Python function, Office.js after the upper-cased Python name, so both agree.
The wrappers carry no type hints on purpose: xlwings reads a hint as a value converter.
Every argument is read as it is in the cell (no numeric conversion), so that a blank, a
text, a TRUE or an ``#N/A`` cell each get their own per-row message.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from xlwings import arg, func

import leverage as lv

from .bridge import call, call_tier, excel_runtime

CATEGORY = "Leverage"

# How xlwings hands each argument over. Office.js (Lite, Server): untouched ("raw"), since
# xlwings' own per-cell cleaning costs ~5 µs a cell (56 ms for a 10,000-row column) and
# addin.bridge reads the raw cells itself (blank, error objects, JsNull). Classic COM: 2-D,
# Excel errors as their text, because raw COM values would give an #N/A cell as the
# number -2146826246.
READ_OPTIONS: dict[str, Any] = (
    {"convert": "raw"} if excel_runtime() == "officejs" else {"ndim": 2, "err_to_str": True}
)

ARG_DOCS: dict[str, str] = {
    "side": "long or short (also buy/sell, 1/-1)",
    "qty": "Position size > 0: base units (BTC) for linear, USD of contracts for inverse",
    "price": "Price > 0",
    "entry_price": "Average entry price > 0",
    "mark_price": "Current mark price > 0",
    "margin": "Isolated margin posted (>= 0), in margin currency",
    "notional": "Position value in margin currency (>= 0), e.g. NOTIONAL(qty, price)",
    "unrealized_pnl": "Open profit (+) or loss (-) in margin currency",
    "mmr": "Maintenance margin rate as a fraction (0.005 = 0.5%)",
    "maint_amount": "Exchange maintenance amount (cum) of the tier, >= 0",
    "contract": "linear (USDT-margined) or inverse (coin-margined)",
    "tiers": "Tier table: a range (min, max, mmr, [maint_amount], max_leverage) or a name "
             "like binance:BTCUSDT; replaces mmr and maint_amount",
    "exchange": "Liquidation convention: " + ", ".join(lv.EXCHANGES),
    "fee_rate": "Taker fee rate added to mmr (okx convention only)",
    "target_leverage": "Leverage to reach, > 0",
    "target_liq_price": "Liquidation price wanted, on the losing side of entry",
    "max_leverage": "Highest leverage allowed, > 0",
    "count_profit": "TRUE to count open profit as withdrawable equity",
    "liq_price": "Liquidation price (blank if none)",
    "wallet_balance": "Cross-margin wallet balance (>= 0)",
    "other_upnl": "Open PnL of the account's other positions",
    "other_maint": "Maintenance margin of the account's other positions (>= 0)",
    "funding_rate": "Funding rate per period as a fraction (0.0001 = 0.01%)",
    "periods": "Number of funding events (>= 0), e.g. 21 for a week of 8-hour funding",
    "equity": "Account equity at risk (> 0)",
    "risk_fraction": "Share of equity to lose at the stop, > 0 and <= 1 (0.01 = 1%)",
    "stop_price": "Stop-loss price > 0",
    "gap_price": "Price the market gaps to before liquidation can run",
}


def _default_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).upper()
    return f"{value:g}" if isinstance(value, float) else str(value)


def _args(core: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Apply ``@arg`` to every parameter: raw 2-D read, Excel errors as text, a doc that
    says the default of an optional argument (taken from the core, the one place it lives)."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        defaults = {n: p.default for n, p in inspect.signature(core).parameters.items()}
        for name in inspect.signature(f).parameters:
            doc = ARG_DOCS[name]
            default = defaults[name]
            if default is not inspect.Parameter.empty:
                doc += "; optional" if default is None else f"; blank = {_default_text(default)}"
            f = arg(name, doc=doc, **READ_OPTIONS)(f)
        return f

    return decorate


# `@func` must stay the top decorator: an `@arg` above it would reset the name.
@func(category=CATEGORY)
@_args(lv.effective_leverage)
def EFFECTIVE_LEVERAGE(notional, margin, unrealized_pnl=None):
    """Effective leverage = notional / (margin + unrealized_pnl); an error if equity <= 0."""
    return call(lv.effective_leverage, notional, margin, unrealized_pnl)


@func(category=CATEGORY)
@_args(lv.notional)
def NOTIONAL(qty, price, contract=None):
    """Position value in margin currency: qty x price (linear) or qty / price (inverse)."""
    return call(lv.notional, qty, price, contract)


@func(category=CATEGORY)
@_args(lv.unrealized_pnl)
def UNREALIZED_PNL(side, qty, entry_price, mark_price, contract=None):
    """Unrealized profit (+) or loss (-) of a position at the mark price."""
    return call(lv.unrealized_pnl, side, qty, entry_price, mark_price, contract)


@func(category=CATEGORY)
@_args(lv.liq_price)
def LIQ_PRICE(side, qty, entry_price, margin, mmr=None, maint_amount=None, contract=None,
              tiers=None, exchange=None, fee_rate=None):
    """Isolated-margin liquidation price; blank when the position cannot be liquidated."""
    return call(lv.liq_price, side, qty, entry_price, margin, mmr, maint_amount, contract,
                tiers, exchange, fee_rate)


@func(category=CATEGORY)
@_args(lv.bankruptcy_price)
def BANKRUPTCY_PRICE(side, qty, entry_price, margin, contract=None):
    """Price at which the position's equity reaches zero; blank if there is none."""
    return call(lv.bankruptcy_price, side, qty, entry_price, margin, contract)


@func(category=CATEGORY)
@_args(lv.margin_to_target)
def MARGIN_TO_TARGET(notional, margin, target_leverage, unrealized_pnl=None):
    """Margin to add (+) or withdraw (-) to reach target_leverage."""
    return call(lv.margin_to_target, notional, margin, target_leverage, unrealized_pnl)


@func(category=CATEGORY)
@_args(lv.margin_for_liq_price)
def MARGIN_FOR_LIQ_PRICE(side, qty, entry_price, target_liq_price, mmr=None, maint_amount=None,
                         contract=None, tiers=None, exchange=None, fee_rate=None):
    """Isolated margin that puts the liquidation price at target_liq_price."""
    return call(lv.margin_for_liq_price, side, qty, entry_price, target_liq_price, mmr,
                maint_amount, contract, tiers, exchange, fee_rate)


@func(category=CATEGORY)
@_args(lv.max_withdrawable)
def MAX_WITHDRAWABLE(notional, margin, unrealized_pnl, max_leverage, count_profit=None):
    """Margin that can be withdrawn keeping margin + PnL >= notional / max_leverage."""
    return call(lv.max_withdrawable, notional, margin, unrealized_pnl, max_leverage,
                count_profit)


@func(category=CATEGORY)
@_args(lv.liq_distance)
def LIQ_DISTANCE(side, mark_price, liq_price):
    """Fraction the price must move against the position to reach liq_price (>= 0)."""
    return call(lv.liq_distance, side, mark_price, liq_price)


@func(category=CATEGORY)
@_args(lv.cross_liq_price)
def CROSS_LIQ_PRICE(side, qty, entry_price, wallet_balance, other_upnl=None, other_maint=None,
                    mmr=None, maint_amount=None, contract=None, tiers=None):
    """Cross-margin liquidation price of one position, the others held fixed."""
    return call(lv.cross_liq_price, side, qty, entry_price, wallet_balance, other_upnl,
                other_maint, mmr, maint_amount, contract, tiers)


@func(category=CATEGORY)
@_args(lv.funding_payment)
def FUNDING_PAYMENT(side, notional, funding_rate):
    """Cash flow of one funding event: negative = paid (longs pay when the rate is > 0)."""
    return call(lv.funding_payment, side, notional, funding_rate)


@func(category=CATEGORY)
@_args(lv.funding_cost)
def FUNDING_COST(side, notional, funding_rate, periods):
    """Sum of periods funding events at a constant rate: negative = paid."""
    return call(lv.funding_cost, side, notional, funding_rate, periods)


@func(category=CATEGORY)
@_args(lv.position_size)
def POSITION_SIZE(equity, risk_fraction, entry_price, stop_price, contract=None):
    """Position size whose loss at stop_price equals equity x risk_fraction."""
    return call(lv.position_size, equity, risk_fraction, entry_price, stop_price, contract)


@func(category=CATEGORY)
@_args(lv.gap_loss)
def GAP_LOSS(side, qty, entry_price, margin, gap_price, contract=None):
    """Loss beyond the posted margin if the price gaps to gap_price (0 if covered)."""
    return call(lv.gap_loss, side, qty, entry_price, margin, gap_price, contract)


@func(category=CATEGORY)
@_args(lv.maint_margin)
def MAINT_MARGIN(notional, mmr=None, maint_amount=None, tiers=None):
    """Maintenance margin: notional x mmr - maint_amount (or from the tier table)."""
    return call(lv.maint_margin, notional, mmr, maint_amount, tiers)


@func(category=CATEGORY)
@_args(lv.tier)
def TIER(tiers, notional):
    """Tier row for each notional: mmr, maint_amount, max_leverage (three columns)."""
    return call_tier(tiers, notional)


__all__ = list(lv.CATALOGUE)
