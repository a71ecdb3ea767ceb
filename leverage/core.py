"""The formula catalogue, one implementation per formula (docs/FORMULAS.md states each).

Every function takes scalars or numpy arrays (any mix, broadcast together) and returns a
``float`` for scalars or an ``ndarray`` for arrays. Each has a ``.rows(...)`` twin that
never raises for a bad row: it returns :class:`~leverage.RowResults` with ``nan`` and a
message for that row.

Conventions (docs/FORMULAS.md, section "Conventions"):

* ``side``: ``long``/``short`` (also ``buy``/``sell``, ``1``/``-1``); ``s = +1`` long, ``−1`` short.
* ``contract``: ``linear`` (USDⓈ-margined, money in the quote currency, ``qty`` in base
  units) or ``inverse`` (coin-margined, money in the base coin, ``qty`` in USD of contracts).
* Rates are fractions: ``mmr=0.005`` is 0.5 %.
* ``nan`` in a result means "there is none" (e.g. no liquidation price exists); an Excel
  cell shows it blank.
"""

from __future__ import annotations

import numbers
from typing import Any, NamedTuple

import numpy as np

from ._args import (
    NONE,
    Contract,
    Fail,
    Flag,
    Kind,
    Number,
    PerCall,
    Rate,
    RowResults,
    Side,
    as_column,
    fmt,
    formula,
    percent_hints,
)
from .conventions import CONVENTIONS, with_rules
from .conventions.base import (
    Convention,
    Isolated,
    beyond_entry,
    by_contract,
    entry_notional,
    fail_below_maintenance,
    fail_liquidated_at_once,
    liq_at_exit_notional,
    product,
)
from .errors import InputError
from .tiers import TierTable, resolve_tiers

EXCHANGES = tuple(CONVENTIONS)
"""The ``exchange`` conventions the formulas accept (the registry's names)."""
DEFAULT_MMR = 0.005


def _exchange(argname: str, value: Any) -> str:
    """One exchange name for the whole call. A column of names is refused rather than read
    row by row: the convention decides the formula, so a call has one (a mixed sheet calls
    the function once per exchange)."""
    if isinstance(value, list | tuple | np.ndarray) and np.size(value) != 1:
        raise InputError(
            f"{argname} must be one name for the whole call (a single cell), got "
            f"{np.size(value)} values"
        )
    if isinstance(value, list | tuple | np.ndarray):
        value = np.ravel(np.asarray(value, dtype=object))[0]
    name = value.strip().lower() if isinstance(value, str) else None
    if name not in CONVENTIONS:
        raise InputError(f"{argname} must be one of {', '.join(CONVENTIONS)}, got {fmt(value)}")
    return name


def _tiers(argname: str, value: Any) -> TierTable | None:
    """A tier table as :func:`~leverage.tiers.resolve_tiers` reads it; a single value held in
    an array is read as that value, and a text too long to be a table's name is refused
    without quoting it whole."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, str) and len(value) > 200:
        raise InputError(f"{argname} must be a known table name, got {fmt(value)}")
    if isinstance(value, numbers.Number | bytes):
        raise InputError(f"{argname} must be {TIERS.words}, got {fmt(value)}")
    return resolve_tiers(argname, value)


# Per-call arguments: one value for the whole call, whatever the number of rows.
TIERS = PerCall(_tiers, "a tier table, its rows or a shipped table's name")
EXCHANGE = PerCall(_exchange, "one of " + ", ".join(EXCHANGES))


WALLET_BALANCE = Number(ge=0)
"""The rule of a cross account's wallet balance (CROSS_LIQ_PRICE, HEDGE_LIQ_PRICE): money
the account holds, never a debt (losses are ``other_upnl``)."""


def tiers_for_contract(fail: Fail, contract: Any, tiers: TierTable | None) -> None:
    """A shipped or loaded table knows its contract (a coin-margined table's notional is in
    coin, a linear one's in the quote currency): applying it to the other kind of position
    would pick tiers by a notional in the wrong unit. Tables typed as rows carry no currency
    and are taken as given. The one check of every formula that takes ``tiers``
    (``contract``: 0 linear, 1 inverse, per row or one for all)."""
    if tiers is None or not tiers.contract:
        return
    table_is_inverse = tiers.contract == "inverse"
    fail(
        contract != (1.0 if table_is_inverse else 0.0),
        f"tiers {tiers.name!r} is a table for {tiers.contract} positions (notional in "
        f"{tiers.currency or 'its currency'}), but contract is "
        f"{'linear' if table_is_inverse else 'inverse'}",
        kind="input",
    )


def _linear_only(fail: Fail, contract: np.ndarray, exchange: str) -> None:
    fail(
        contract > 0,
        f"contract must be linear for exchange={exchange!r} (its published formula is for "
        "USDT-margined isolated positions), got 'inverse'",
        kind="input",
    )


def _under_convention(
    fail: Fail, exchange: str, side: Any, qty: Any, entry_price: Any, mmr: Any,
    maint_amount: Any, contract: Any, tiers: TierTable | None, fee_rate: Any,
) -> tuple[Convention, Isolated]:
    """The exchange's convention and the checked isolated position it prices: rows the
    convention or the tier table cannot take are marked on ``fail`` first."""
    convention = CONVENTIONS[exchange]
    if convention.linear_only:
        _linear_only(fail, contract, exchange)
    tiers_for_contract(fail, contract, tiers)
    return convention, Isolated(
        side, qty, entry_price, mmr, maint_amount, contract, tiers, fee_rate
    )


# ----------------------------------------------------------------------- basics
@formula(qty=Number(gt=0), price=Number(gt=0), contract=Contract())
def notional(qty: Any, price: Any, contract: Any = "linear") -> Any:
    """Position value in margin currency.

    Linear: ``qty × price`` (quote currency). Inverse: ``qty / price`` (coin; ``qty`` is the
    USD value of the contracts).

    >>> notional(2, 50_000)
    100000.0
    >>> notional(10_000, 50_000, "inverse")   # 10,000 USD of contracts = 0.2 BTC
    0.2
    """
    return by_contract(contract, lambda: qty * price, lambda: qty / price)


@formula(
    side=Side(), qty=Number(gt=0), entry_price=Number(gt=0), mark_price=Number(gt=0),
    contract=Contract(),
)
def unrealized_pnl(
    side: Any, qty: Any, entry_price: Any, mark_price: Any, contract: Any = "linear"
) -> Any:
    """Unrealized profit (+) or loss (−) in margin currency.

    Linear: ``s × qty × (mark − entry)``. Inverse: ``s × qty × (1/entry − 1/mark)`` (coin).

    >>> unrealized_pnl("long", 2, 50_000, 49_000)     # 2 × (49,000 − 50,000)
    -2000.0
    >>> round(unrealized_pnl("short", 10_000, 50_000, 40_000, "inverse"), 12)  # BTC
    0.05
    """
    return by_contract(
        contract,
        lambda: side * qty * (mark_price - entry_price),
        lambda: side * qty * (1.0 / entry_price - 1.0 / mark_price),
    )


@formula(notional=Number(ge=0), margin=Number(ge=0), unrealized_pnl=Number())
def effective_leverage(notional: Any, margin: Any, unrealized_pnl: Any = 0.0, *, fail: Fail) -> Any:
    """Effective leverage ``L = notional / (margin + unrealized_pnl)``.

    With ``unrealized_pnl=0`` this is the margin-based leverage (what the exchange shows as
    the position's leverage after margin was added or removed); passing the open PnL gives the
    equity-based leverage, the one that tells how close the position is to liquidation.
    A position whose equity is ≤ 0 is bankrupt and has no leverage: that row is an error.

    Worked example (the product article): notional 100,000 on 10,000 margin → 10; with
    3,000 added (13,000) → 7.69 margin-based, and with a 1,000 open loss →
    100,000 / 12,000 = 8.33 equity-based.

    >>> effective_leverage(100_000, 10_000)
    10.0
    >>> round(effective_leverage(100_000, 13_000, -1_000), 2)
    8.33
    """
    equity = margin + unrealized_pnl
    fail(
        equity <= 0,
        "margin + unrealized_pnl must be > 0, got {equity} (the position is bankrupt)",
        equity=equity,
    )
    return notional / equity


@formula(notional=Number(ge=0), mmr=Rate(ge=0, lt=1), maint_amount=Number(ge=0), tiers=TIERS)
def maint_margin(
    notional: Any,
    mmr: Any = DEFAULT_MMR,
    maint_amount: Any = 0.0,
    tiers: Any = None,
) -> Any:
    """Maintenance margin ``MM = notional × mmr − maint_amount`` (margin currency).

    With ``tiers``, ``mmr`` and ``maint_amount`` are taken from the tier whose band holds
    ``notional`` (and the given ones are ignored).

    >>> maint_margin(100_000, 0.005)
    500.0
    >>> maint_margin(100_000, tiers=[[0, 50_000, 0.004, 125], [50_000, 1e6, 0.005, 100]])
    450.0
    """
    if tiers is not None:
        mmr, maint_amount, _ = tiers.lookup(notional)
    return notional * mmr - maint_amount


class TierRow(NamedTuple):
    """The tier that applies to a notional."""

    mmr: Any
    maint_amount: Any
    max_leverage: Any


def tier(tiers: Any, notional: Any) -> TierRow:
    """The tier row ``(mmr, maint_amount, max_leverage)`` that applies to ``notional``.

    ``tiers`` is a :class:`TierTable`, a shipped table name such as ``"binance:BTCUSDT"``, or
    spreadsheet rows. A notional on a band's lower bound belongs to that band. Floats for a
    scalar notional, arrays for an array.

    >>> tier([[0, 50_000, 0.004, 125], [50_000, 1e6, 0.005, 100]], 50_000)
    TierRow(mmr=0.005, maint_amount=50.0, max_leverage=100.0)
    """
    table, arr, err = _tier_inputs(tiers, notional)
    if err is not None:
        RowResults(arr, np.asarray(err)).raise_first()
    mmr, amount, lev = table.lookup(arr)
    if arr.ndim == 0:
        return TierRow(float(mmr), float(amount), float(lev))
    return TierRow(mmr, amount, lev)


def tier_rows(tiers: Any, notional: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Row-wise :func:`tier`: ``(mmr, maint_amount, max_leverage)`` stacked as ``(..., 3)``
    (nan on bad rows) plus per-row errors (``None`` when every row is good)."""
    table, arr, err = _tier_inputs(tiers, notional)
    mmr, amount, lev = table.lookup(np.where(np.isfinite(arr), arr, 0.0))
    out = np.stack([mmr, amount, lev], axis=-1).astype(float)
    if err is not None:
        out[np.not_equal(err, NONE)] = np.nan
    return out, err


def _tier_inputs(tiers: Any, notional: Any) -> tuple[TierTable, np.ndarray, np.ndarray | None]:
    table = _tiers("tiers", tiers)
    if table is None:
        raise InputError("tiers is required")
    arr, err = NOTIONAL.parse("notional", as_column(notional))
    return table, arr, err


# ------------------------------------------------------------------ liquidation
# The rules of a position under an exchange convention, shared by liq_price and its inverse.
UNDER_A_CONVENTION: dict[str, Kind] = {
    "side": Side(),
    "qty": Number(gt=0),
    "entry_price": Number(gt=0),
    "mmr": Rate(ge=0, lt=1),
    "maint_amount": Number(ge=0),
    "contract": Contract(),
    "tiers": TIERS,
    "exchange": EXCHANGE,
    "fee_rate": Rate(ge=0, lt=1),
}


ABOVE_TIER_MAX_AT_ENTRY = (
    "leverage {lev}x at entry (notional {notional} / margin {margin}) is above the tier's "
    "maximum, {top}x"
)
ABOVE_TIER_MAX_TARGET = (
    "target_leverage {lev}x is above the tier's maximum, {top}x (the tier of notional "
    "{notional})"
)


def _flag_above_tier_max(
    fail: Fail, tiers: TierTable, notional: Any, leverage: Any, template: str, **values: Any
) -> None:
    """Flag rows whose ``leverage`` is above the max leverage of the tier that holds
    ``notional`` (a tier with no published maximum: the nearest published one below it)."""
    top = tiers.max_leverage_at(notional)
    fail.warn(leverage > top, template, lev=leverage, top=top, notional=notional, **values)


@formula(returns_none=True, margin=Number(ge=0), **UNDER_A_CONVENTION)
def liq_price(
    side: Any, qty: Any, entry_price: Any, margin: Any,  # the position
    mmr: Any = DEFAULT_MMR, maint_amount: Any = 0.0, contract: Any = "linear",  # its rates
    tiers: Any = None, exchange: Any = "binance", fee_rate: Any = 0.0,  # the exchange's rules
    *, fail: Fail,
) -> Any:
    """Isolated-margin liquidation price; ``nan`` when the position cannot be liquidated.

    Liquidation is where equity meets maintenance margin, ``margin + UPNL(P) = MM(P)``; each
    ``exchange`` solves it by its own rules (``leverage.conventions``, a module each; the list
    below is written from them when the module loads):

    {conventions}

    ``margin`` is the isolated margin posted (initial margin plus any margin added, minus
    any withdrawn), in margin currency. With ``tiers``, ``mmr`` and ``maint_amount`` are
    ignored; a shipped table must be for the position's contract (a coin-margined table on a
    linear row is an error naming both). ``exchange`` is one name for the whole call (a list
    of names is refused). A price beyond float range is an error, never ``inf``.

    A position whose liquidation price is at or beyond its entry on the losing side (long:
    LP ≥ entry; short: LP ≤ entry) has margin at or below maintenance at entry: it would be
    liquidated at once, and that row is a PositionError naming both (plus what to type when
    a rate looks like a percent typed as a number). With ``tiers``, a leverage at entry
    (``notional at entry / margin``) above the tier's maximum is flagged
    (:class:`~leverage.LeverageWarning`; ``.rows(...).warnings``).

    Worked example (Bybit help centre): long 1 BTC at 20,000 on 400 margin (50x), MMR 0.5 %
    → Bybit 19,700; Binance's form gives (400 − 20,000) / (0.005 − 1) = 19,698.49.

    >>> round(liq_price("long", 1, 20_000, 400, 0.005), 2)
    19698.49
    >>> liq_price("long", 1, 20_000, 400, 0.005, exchange="bybit")
    19700.0
    """
    convention, position = _under_convention(
        fail, exchange, side, qty, entry_price, mmr, maint_amount, contract, tiers, fee_rate
    )
    fail_below_maintenance(fail, position, margin)
    liq = convention.liq_price(position, margin)
    fail_liquidated_at_once(fail, convention, position, margin, liq)
    if tiers is not None:
        notional_at_entry = entry_notional(position)
        _flag_above_tier_max(
            fail, tiers, notional_at_entry, notional_at_entry / margin, ABOVE_TIER_MAX_AT_ENTRY,
            margin=margin,
        )
    return liq


liq_price.__doc__ = with_rules(liq_price.__doc__ or "")


@formula(
    returns_none=True, side=Side(), qty=Number(gt=0), entry_price=Number(gt=0),
    margin=Number(ge=0), contract=Contract(),
)
def bankruptcy_price(
    side: Any, qty: Any, entry_price: Any, margin: Any, contract: Any = "linear"
) -> Any:
    """Price at which equity reaches zero (the liquidation formula with mmr = 0 and
    maint_amount = 0); ``nan`` if there is none.

    Linear: ``entry − s × margin / qty``. Inverse: ``qty / (qty/entry + s × margin)``.

    >>> bankruptcy_price("long", 1, 20_000, 400)    # 20,000 − 400 / 1
    19600.0
    >>> bankruptcy_price("short", 1, 20_000, 400)
    20400.0
    """
    return liq_at_exit_notional(Isolated(side, qty, entry_price, contract=contract), margin)


CROSS_BEYOND_ENTRY = "the liquidation price {liq} is at or {beyond} the entry {entry}"
"""A cross position's flag when its liquidation price is beyond entry while ``mmr`` looks like
a percent (the percent hint follows)."""


@formula(
    returns_none=True,
    side=Side(),
    qty=Number(gt=0),
    entry_price=Number(gt=0),
    wallet_balance=WALLET_BALANCE,
    other_upnl=Number(),
    other_maint=Number(ge=0),
    mmr=Rate(ge=0, lt=1),
    maint_amount=Number(ge=0),
    contract=Contract(),
    tiers=TIERS,
)
def cross_liq_price(
    side: Any,
    qty: Any,
    entry_price: Any,
    wallet_balance: Any,
    other_upnl: Any = 0.0,
    other_maint: Any = 0.0,
    mmr: Any = DEFAULT_MMR,
    maint_amount: Any = 0.0,
    contract: Any = "linear",
    tiers: Any = None,
    *,
    fail: Fail,
) -> Any:
    """Liquidation price of one position in a cross-margin account, the account's other
    positions held at their current PnL and maintenance margin; ``nan`` if none, and a
    PositionError when the account is already below maintenance margin at every price (the
    other positions' losses exceed what the wallet can carry: docs/FORMULAS.md, "Blank answers
    and errors").

    Binance's cross-margin rule: the account is liquidated when
    ``wallet_balance + other_upnl + UPNL(P) = other_maint + MM(P)``, i.e. the isolated formula
    with margin replaced by ``wallet_balance + other_upnl − other_maint``:
    ``LP = (WB + other_upnl − other_maint + maint_amount − s·qty·entry) / (qty·mmr − s·qty)``.
    Tier choice as in :func:`liq_price`.

    A liquidation price at or beyond entry on the losing side is legitimate here (the other
    positions' losses can put it there) and is returned; where ``mmr`` also looks like a
    percent typed as a number (5 % or more), the row is flagged with what to type
    (:class:`~leverage.LeverageWarning`; ``.rows(...).warnings``).

    Long 1 BTC at 20,000, wallet 1,000, other positions −200 open PnL and 50 maintenance:
    ``(1,000 − 200 − 50 − 20,000) / (0.005 − 1) = 19,346.73``.

    >>> round(cross_liq_price("long", 1, 20_000, 1_000, -200, 50, 0.005), 2)
    19346.73
    """
    tiers_for_contract(fail, contract, tiers)
    shared = wallet_balance + other_upnl - other_maint
    position = Isolated(side, qty, entry_price, mmr, maint_amount, contract, tiers)
    fail_below_maintenance(fail, position, shared)
    liq = liq_at_exit_notional(position, shared)
    if tiers is None:
        _flag_cross_beyond_entry(fail, side, entry_price, mmr, liq)
    return liq


def _flag_cross_beyond_entry(fail: Fail, side: Any, entry_price: Any, mmr: Any, liq: Any) -> None:
    """Flag the cross rows whose liquidation price is at or beyond entry on the losing side
    while ``mmr`` looks like a percent typed as a number."""
    beyond = beyond_entry(side, entry_price, liq)
    if not np.any(beyond):
        return
    hints = percent_hints(mmr=mmr)
    if hints is None:
        return
    mistyped = beyond & np.not_equal(hints, NONE)
    for word, on_side in (("above", side > 0), ("below", side < 0)):
        fail.warn(mistyped & on_side, CROSS_BEYOND_ENTRY.replace("{beyond}", word), notes=hints,
                  liq=liq, entry=entry_price)


@formula(
    returns_none=True,
    side=Side(),
    mark_price=Number(gt=0),
    liq_price=Number(gt=0, blank_means_none=True),
)
def liq_distance(side: Any, mark_price: Any, liq_price: Any) -> Any:
    """Fraction the price must move against the position to hit ``liq_price``.

    ``s × (mark − liq) / mark``, never below 0 (0 means at or past liquidation). A blank or
    ``nan`` liquidation price (none exists) gives ``nan``.

    >>> liq_distance("long", 20_000, 19_000)
    0.05
    >>> liq_distance("short", 20_000, 21_000)
    0.05
    """
    return np.maximum(side * (mark_price - liq_price) / mark_price, 0.0)


# ------------------------------------------------------------ margin changes
@formula(
    notional=Number(ge=0), margin=Number(ge=0), target_leverage=Number(gt=0),
    unrealized_pnl=Number(), tiers=TIERS,
)
def margin_to_target(
    notional: Any, margin: Any, target_leverage: Any, unrealized_pnl: Any = 0.0,
    tiers: Any = None, *, fail: Fail,
) -> Any:
    """Signed margin change that brings effective leverage to ``target_leverage``:
    ``notional / target − (margin + unrealized_pnl)``; > 0 add, < 0 withdraw.

    Leave ``unrealized_pnl`` at 0 to target margin-based leverage; pass the open PnL to
    target equity-based leverage. A row whose target needs withdrawing more margin than is
    posted is an error (no exchange lets you withdraw below zero margin). With ``tiers``, a
    target above the max leverage of the tier that holds ``notional`` is flagged
    (:class:`~leverage.LeverageWarning`; ``.rows(...).warnings``); the change is returned.

    Worked example (the product article): notional 100,000, margin 10,000, open profit
    2,000, target 10x → withdraw 2,000: ``100,000/10 − 12,000 = −2,000``.

    >>> margin_to_target(100_000, 10_000, 10, 2_000)
    -2000.0
    >>> margin_to_target(100_000, 10_000, 5)
    10000.0
    """
    needed_equity = notional / target_leverage
    out_of_reach = needed_equity < unrealized_pnl  # i.e. margin + change < 0
    # in place (a fresh million-row temporary costs more than the arithmetic itself), unless
    # margin or PnL is the column and the quotient a single value
    if needed_equity.__class__ is float:  # one row (the scalar path): plain floats
        change = needed_equity - margin - unrealized_pnl
    else:
        shape = np.broadcast_shapes(
            np.shape(needed_equity), np.shape(margin), np.shape(unrealized_pnl)
        )
        change = (needed_equity if np.shape(needed_equity) == shape
                  else np.zeros(shape) + needed_equity)
        change -= margin
        change -= unrealized_pnl
    fail(
        out_of_reach,
        "target_leverage {target} is out of reach: it needs withdrawing {need} but only "
        "{margin} margin is posted",
        target=target_leverage,
        need=lambda: -change,
        margin=margin,
    )
    if tiers is not None:
        _flag_above_tier_max(fail, tiers, notional, target_leverage, ABOVE_TIER_MAX_TARGET)
    return change


# returns_none spelled out: mypy cannot tell that the unpacked dict holds no "returns_none"
@formula(returns_none=False, target_liq_price=Number(gt=0), **UNDER_A_CONVENTION)
def margin_for_liq_price(
    side: Any, qty: Any, entry_price: Any, target_liq_price: Any,  # the position
    mmr: Any = DEFAULT_MMR, maint_amount: Any = 0.0, contract: Any = "linear",  # its rates
    tiers: Any = None, exchange: Any = "binance", fee_rate: Any = 0.0,  # the exchange's rules
    *, fail: Fail,
) -> Any:
    """Isolated margin that puts the liquidation price at ``target_liq_price``: the inverse of
    :func:`liq_price` under the same exchange convention (with ``tiers``, the tier of the
    notional at the target price).

    Binance linear: ``margin = s·qty·entry − P·(s·qty − qty·mmr) − maint_amount``.
    The target must be below entry for a long and above entry for a short; a target so close
    to entry that it would need negative margin is an error.

    >>> round(margin_for_liq_price("long", 1, 20_000, 19_698.4924623, 0.005), 4)
    400.0
    """
    fail(
        side * (entry_price - target_liq_price) <= 0,
        "target_liq_price must be on the losing side of entry_price (below it for a long, "
        "above it for a short), got {target} against entry {entry}",
        target=target_liq_price,
        entry=entry_price,
    )
    convention, position = _under_convention(
        fail, exchange, side, qty, entry_price, mmr, maint_amount, contract, tiers, fee_rate
    )
    need = convention.margin_for_liq_price(position, target_liq_price)
    fail(
        need < 0,
        "target_liq_price {target} is closer to entry than the liquidation price at zero "
        "margin: it would need {need} margin",
        target=target_liq_price,
        need=need,
    )
    return need


@formula(
    notional=Number(ge=0),
    margin=Number(ge=0),
    unrealized_pnl=Number(),
    max_leverage=Number(gt=0),
    count_profit=Flag(),
)
def max_withdrawable(
    notional: Any,
    margin: Any,
    unrealized_pnl: Any,
    max_leverage: Any,
    count_profit: Any = True,
) -> Any:
    """Margin that can be withdrawn while keeping ``margin + upnl ≥ notional / max_leverage``.

    ``min(margin, margin + counted_upnl − notional / max_leverage)``, floored at 0, where
    ``counted_upnl`` is the open PnL when ``count_profit`` is TRUE and only its loss part
    (``min(upnl, 0)``) when FALSE; losses always count.

    >>> max_withdrawable(100_000, 12_000, 0, 10)       # 12,000 − 10,000
    2000.0
    >>> max_withdrawable(100_000, 10_000, 2_000, 10, False)
    0.0
    """
    counted = np.where(count_profit > 0, unrealized_pnl, np.minimum(unrealized_pnl, 0.0))
    free = margin + counted - notional / max_leverage
    return np.clip(free, 0.0, margin)


# -------------------------------------------------------------------- funding
FUNDING_ABOVE = (
    "{name} {rate} is {pct} % a period: funding beyond ±1 % a period is rare; for {rate} % "
    "type {per} or {rate}%"
)
"""The flag of a funding rate above :data:`FUNDING_FLAG_ABOVE` a period (exchanges cap funding
far below it: a percent typed as a number is the likely cause)."""
FUNDING_FLAG_ABOVE = 0.01


def flag_funding(fail: Fail, name: str, rate: Any) -> None:
    """Flag the rows whose funding rate is above 1 % a period (either sign)."""
    fail.warn(np.abs(rate) > FUNDING_FLAG_ABOVE, FUNDING_ABOVE.replace("{name}", name),
              rate=rate, pct=lambda: rate * 100.0, per=lambda: rate / 100.0)


@formula(side=Side(), notional=Number(ge=0), funding_rate=Rate())
def funding_payment(side: Any, notional: Any, funding_rate: Any, *, fail: Fail) -> Any:
    """Signed cash flow of one funding event: ``−s × notional × funding_rate``.

    A positive rate means longs pay shorts: a long gets a negative number (paid), a short a
    positive one (received). ``notional`` at the mark price, in margin currency. A rate
    above 1 % a period (either sign) is flagged (:class:`~leverage.LeverageWarning`;
    ``.rows(...).warnings``): exchanges cap funding far below it.

    >>> funding_payment("long", 100_000, 0.0001)
    -10.0
    >>> funding_payment("short", 100_000, 0.0001)
    10.0
    """
    flag_funding(fail, "funding_rate", funding_rate)
    return product(-side, notional, funding_rate)


@formula(side=Side(), notional=Number(ge=0), funding_rate=Rate(), periods=Number(ge=0))
def funding_cost(
    side: Any, notional: Any, funding_rate: Any, periods: Any, *, fail: Fail
) -> Any:
    """Sum of ``periods`` funding events at a constant rate and notional:
    ``periods × −s × notional × funding_rate`` (negative = paid).

    Three 8-hour events a day for a week is ``periods=21``. A rate above 1 % a period is
    flagged as in :func:`funding_payment`.

    >>> funding_cost("long", 100_000, 0.0001, 21)
    -210.0
    """
    flag_funding(fail, "funding_rate", funding_rate)
    return product(-side, notional, funding_rate, periods)


# ----------------------------------------------------------------- sizing & gaps
@formula(
    equity=Number(gt=0),
    risk_fraction=Rate(gt=0, le=1),
    entry_price=Number(gt=0),
    stop_price=Number(gt=0),
    contract=Contract(),
)
def position_size(
    equity: Any,
    risk_fraction: Any,
    entry_price: Any,
    stop_price: Any,
    contract: Any = "linear",
    *,
    fail: Fail,
) -> Any:
    """``qty`` whose loss at ``stop_price`` equals ``equity × risk_fraction``.

    Linear: ``equity × risk / |entry − stop|`` (base units). Inverse: ``equity × risk /
    |1/entry − 1/stop|`` (USD of contracts; equity in coin). The side follows from the stop:
    below entry for a long, above for a short.

    >>> position_size(10_000, 0.01, 50_000, 49_000)   # risk 100 over a 1,000 move
    0.1
    """
    fail(
        stop_price == entry_price,
        "stop_price must differ from entry_price, got {stop} for both",
        kind="input",
        stop=stop_price,
    )
    return by_contract(
        contract,
        lambda: equity * risk_fraction / np.abs(entry_price - stop_price),
        lambda: equity * risk_fraction / np.abs(1.0 / entry_price - 1.0 / stop_price),
    )


@formula(
    side=Side(),
    qty=Number(gt=0),
    entry_price=Number(gt=0),
    margin=Number(ge=0),
    gap_price=Number(gt=0),
    contract=Contract(),
)
def gap_loss(
    side: Any,
    qty: Any,
    entry_price: Any,
    margin: Any,
    gap_price: Any,
    contract: Any = "linear",
) -> Any:
    """Loss beyond the posted margin if the price gaps to ``gap_price`` before the position
    can be liquidated: ``max(0, −(margin + UPNL(gap_price)))`` (0 if the margin covers it).

    >>> gap_loss("long", 1, 20_000, 400, 19_000)    # loses 1,000 on 400 margin
    600.0
    """
    pnl = by_contract(
        contract,
        lambda: side * qty * (gap_price - entry_price),
        lambda: side * qty * (1.0 / entry_price - 1.0 / gap_price),
    )
    return np.maximum(-(margin + pnl), 0.0)


# three columns, not one answer per row; not built by ``formula`` (no scalar fast path)
tier.per_row = False  # type: ignore[attr-defined]

POSITION_FORMULAS: dict[str, Any] = {
    "EFFECTIVE_LEVERAGE": effective_leverage,
    "NOTIONAL": notional,
    "UNREALIZED_PNL": unrealized_pnl,
    "LIQ_PRICE": liq_price,
    "BANKRUPTCY_PRICE": bankruptcy_price,
    "MARGIN_TO_TARGET": margin_to_target,
    "MARGIN_FOR_LIQ_PRICE": margin_for_liq_price,
    "MAX_WITHDRAWABLE": max_withdrawable,
    "LIQ_DISTANCE": liq_distance,
    "CROSS_LIQ_PRICE": cross_liq_price,
    "FUNDING_PAYMENT": funding_payment,
    "FUNDING_COST": funding_cost,
    "POSITION_SIZE": position_size,
    "GAP_LOSS": gap_loss,
    "MAINT_MARGIN": maint_margin,
    "TIER": tier,
}
"""Excel name → Python function of the formulas of one position, in the order of
docs/FORMULAS.md (the whole list, with the planning formulas, is
:data:`leverage.catalogue.CATALOGUE`)."""


# The rules of the arguments most inputs share, as the formulas hold them (defaults
# included), for code that reads the same inputs outside a formula call.
SIDE = liq_price.rules["side"]
QTY = liq_price.rules["qty"]
PRICE = liq_price.rules["entry_price"]
MARGIN = liq_price.rules["margin"]
MMR = liq_price.rules["mmr"]
MAINT_AMOUNT = liq_price.rules["maint_amount"]
CONTRACT = liq_price.rules["contract"]
NOTIONAL = maint_margin.rules["notional"]

