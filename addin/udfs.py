"""The leverage catalogue as Excel functions (xlwings UDFs), category "Leverage".

Point xlwings at this module (``UDF Modules`` = ``leverage_addin.udfs``) or, in xlwings Lite, write
``from leverage_addin.udfs import *`` in main.py. ``leverage addin`` prints the set-up.

Every function takes single cells or whole columns/rows and returns a same-shaped array that
spills, computed in one call. Bad rows become error cells and the other rows compute: see
:mod:`leverage_addin.bridge` for what each error looks like in each Excel.

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
from leverage.conventions import FEE_COUNTS

from .bridge import call, call_ranges, call_tier, excel_runtime

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
    "mmr": "Maintenance margin rate: 0.005, 0.5% or the text \"0.5%\" (not 0.5, which is 50%)",
    "maint_amount": "Exchange maintenance amount (cum) of the tier, >= 0",
    "contract": "linear (USDT-margined) or inverse (coin-margined)",
    "tiers": "Tier table: a range (min, max, mmr, [maint_amount], max_leverage) or a name "
             "like binance:BTCUSDT; replaces mmr and maint_amount",
    "exchange": "Liquidation convention: " + ", ".join(lv.EXCHANGES),
    "fee_rate": "Taker fee rate added to mmr (" + ", ".join(FEE_COUNTS) + " convention only)",
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
    # planning formulas
    "add_qty": "Quantity to add (>= 0), in the units of qty",
    "add_price": "Price of the add, > 0",
    "add_margin": "Margin posted with the add (>= 0)",
    "balance": "Available balance (>= 0), in margin currency",
    "leverage": "Leverage to open at, > 0",
    "long_qty": "Long leg size in base units (>= 0; 0 = no long leg)",
    "long_entry": "Long leg entry price > 0 (blank if no long leg)",
    "short_qty": "Short leg size in base units (>= 0; 0 = no short leg)",
    "short_entry": "Short leg entry price > 0 (blank if no short leg)",
    "long_mmr": "Long leg maintenance margin rate (0.005 = 0.5%)",
    "long_maint_amount": "Long leg maintenance amount (cum), >= 0",
    "short_mmr": "Short leg maintenance margin rate (0.005 = 0.5%)",
    "short_maint_amount": "Short leg maintenance amount (cum), >= 0",
    "sides": "Range: long or short per position (one account per column)",
    "qtys": "Range: position sizes in base units (>= 0; blank or 0 = no position)",
    "entry_prices": "Range: entry price per position, > 0",
    "mark_prices": "Range: mark price per position, > 0",
    "mmrs": "Range: maintenance margin rate per position",
    "maint_amounts": "Range: maintenance amount (cum) per position, >= 0",
    "direction": "either, down (a fall only) or up (a rise only)",
    "times": "Range: funding times (dates; one position per column, blank = padding)",
    "rates": "Range: funding rate of each event (blank = unknown: the total is blank)",
    "marks": "Range: mark price at each event, > 0",
    "opened": "Date the position opened (blank = from the first event)",
    "closed": "Date the position closed, exclusive (blank = through the last event)",
    "interval_hours": "Hours between funding events, > 0 (8, 4, 1)",
    "volatility": "Annualised volatility as a fraction (0.6 = 60%), >= 0",
    "horizon_days": "Horizon in days (>= 0)",
    "threshold": "Equity / maintenance at which the exchange liquidates (Binance PM 1.05)",
    "drift": "Annual drift of the price as a fraction",
    "max_probability": "Highest liquidation probability accepted, 0 to 1 (0.01 = 1%)",
}


def _default_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).upper()
    return f"{value:g}" if isinstance(value, float) else str(value)


def _args(
    core: Callable[..., Any], **docs: str
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Apply ``@arg`` to every parameter: raw 2-D read, Excel errors as text, a doc that
    says the default of an optional argument (taken from the core, the one place it lives).
    ``docs`` replaces :data:`ARG_DOCS` where an argument means something else here."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        defaults = {n: p.default for n, p in inspect.signature(core).parameters.items()}
        for name in inspect.signature(f).parameters:
            doc = docs.get(name, ARG_DOCS[name])
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
def MARGIN_TO_TARGET(notional, margin, target_leverage, unrealized_pnl=None, tiers=None):
    """Margin to add (+) or withdraw (-) to reach target_leverage."""
    return call(lv.margin_to_target, notional, margin, target_leverage, unrealized_pnl, tiers)


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


# --------------------------------------------------------------- planning formulas
@func(category=CATEGORY)
@_args(lv.avg_entry)
def AVG_ENTRY(qty, entry_price, add_qty, add_price, contract=None):
    """Average entry price after adding add_qty at add_price (harmonic for inverse)."""
    return call(lv.avg_entry, qty, entry_price, add_qty, add_price, contract)


@func(category=CATEGORY)
@_args(lv.liq_after_add)
def LIQ_AFTER_ADD(side, qty, entry_price, margin, add_qty, add_price, add_margin=None, mmr=None,
                  maint_amount=None, contract=None, tiers=None, exchange=None, fee_rate=None):
    """Isolated liquidation price after an add at add_price: the averaging-down check."""
    return call(lv.liq_after_add, side, qty, entry_price, margin, add_qty, add_price,
                add_margin, mmr, maint_amount, contract, tiers, exchange, fee_rate)


@func(category=CATEGORY)
@_args(lv.max_open, price="Price to open at, > 0",
       fee_rate="Opening (taker) fee rate as a fraction (0.0005 = 0.05%)")
def MAX_OPEN(balance, price, leverage, tiers=None, fee_rate=None, contract=None):
    """Largest qty that can be opened with balance at leverage (initial margin plus fee)."""
    return call(lv.max_open, balance, price, leverage, tiers, fee_rate, contract)


@func(category=CATEGORY)
@_args(lv.hedge_liq_price, wallet_balance="Cross-margin wallet balance")
def HEDGE_LIQ_PRICE(long_qty, long_entry, short_qty, short_entry, wallet_balance,
                    other_upnl=None, other_maint=None, long_mmr=None, long_maint_amount=None,
                    short_mmr=None, short_maint_amount=None, tiers=None):
    """One liquidation price of both legs of a symbol in cross hedge mode (linear)."""
    return call(lv.hedge_liq_price, long_qty, long_entry, short_qty, short_entry,
                wallet_balance, other_upnl, other_maint, long_mmr, long_maint_amount,
                short_mmr, short_maint_amount, tiers)


@func(category=CATEGORY)
@_args(lv.account_shock,
       wallet_balance="Cross wallet balance of the account (one per column of the ranges)")
def ACCOUNT_SHOCK(sides, qtys, entry_prices, mark_prices, wallet_balance, mmrs=None,
                  maint_amounts=None, direction=None, threshold=None):
    """Move of all marks (-0.12 = 12% lower) at which the cross account hits maintenance."""
    return call_ranges(lv.account_shock, sides, qtys, entry_prices, mark_prices,
                       wallet_balance, mmrs, maint_amounts, direction, threshold)


@func(category=CATEGORY)
@_args(lv.funding_from_history, side="long or short (one per column of the ranges)",
       qty="Position size > 0 (one per column of the ranges)")
def FUNDING_FROM_HISTORY(side, qty, times, rates, marks, opened=None, closed=None,
                         contract=None):
    """Total funding over a funding history (each event at its own rate and mark)."""
    return call_ranges(lv.funding_from_history, side, qty, times, rates, marks, opened, closed,
                       contract)


@func(category=CATEGORY)
@_args(lv.funding_apr)
def FUNDING_APR(funding_rate, interval_hours):
    """Funding rate per event as a simple annual rate: rate x 24/interval_hours x 365."""
    return call(lv.funding_apr, funding_rate, interval_hours)


@func(category=CATEGORY)
@_args(lv.liq_probability)
def LIQ_PROBABILITY(side, mark_price, liq_price, volatility, horizon_days, drift=None):
    """Probability that the mark touches liq_price within horizon_days (0 if none)."""
    return call(lv.liq_probability, side, mark_price, liq_price, volatility, horizon_days,
                drift)


@func(category=CATEGORY)
@_args(lv.safe_leverage)
def SAFE_LEVERAGE(volatility, horizon_days, max_probability, mmr=None, side=None,
                  maint_amount=None, tiers=None):
    """Highest leverage whose liquidation probability over the horizon is at most the limit."""
    return call(lv.safe_leverage, volatility, horizon_days, max_probability, mmr, side,
                maint_amount, tiers)


__all__ = list(lv.CATALOGUE)
