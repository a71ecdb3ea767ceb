"""Planning around an open position: adding to it, how much to open, hedges, account shocks,
funding history, the odds of a liquidation and a safe leverage (:data:`PLANNING_FORMULAS`).

AVG_ENTRY, LIQ_AFTER_ADD, MAX_OPEN, HEDGE_LIQ_PRICE, ACCOUNT_SHOCK, FUNDING_FROM_HISTORY,
FUNDING_APR, LIQ_PROBABILITY and SAFE_LEVERAGE, in snake_case with the catalogue's argument
order. Each formula's math is a pure numpy kernel ``_<name>_kernel`` over already-parsed arrays
(side as +1/−1, contract 0 linear / 1 inverse, tiers a :class:`~leverage.tiers.TierTable` or
``None``) that returns ``(values, failures)``: the values, and the rows that have no answer as
:class:`Failure` records (mask, message template, values for the message). The public
functions only report failures (:func:`~leverage._args.formula`, and :func:`ranged` for the
two that take ranges). LIQ_AFTER_ADD is ``liq_price.rows`` at AVG_ENTRY, so every rule of
LIQ_PRICE (conventions, tiers, below maintenance at every price) is the one in
:mod:`leverage.conventions`.

``nan`` in a result means "there is none" (a cell shows it blank); a row whose position has no
answer (already below maintenance margin at every price) is a :class:`~leverage.PositionError`.
docs/FORMULAS.md, section "Planning formulas", states every formula with its sources.
"""

from __future__ import annotations

import datetime as _dt
import functools
import inspect
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ._args import (
    MISSING,
    NONE,
    VOLATILITY_PERCENT_LIKE,
    Fail,
    Kind,
    Number,
    PerCall,
    Rate,
    RowResults,
    _blank,
    as_column,
    fmt,
    formula,
    percent_hints,
)
from .conventions.base import BELOW_MAINTENANCE, Isolated, below_maintenance_everywhere
from .core import (
    DEFAULT_MMR,
    FUNDING_ABOVE,
    FUNDING_FLAG_ABOVE,
    UNDER_A_CONVENTION,
    WALLET_BALANCE,
    cross_liq_price,
    flag_funding,
    liq_price,
    tiers_for_contract,
)
from .errors import InputError
from .tiers import TierTable

DAYS_PER_YEAR = 365.0  # crypto trades every day


class Failure(NamedTuple):
    """Rows of a kernel's result that have no answer.

    ``template`` is formatted per row with ``values`` (arrays broadcast to the result's shape);
    ``kind`` is ``"position"`` (a :class:`~leverage.PositionError`), ``"input"``, or
    ``"warning"``: a flag on rows that still compute (:attr:`~leverage.RowResults.warnings`).
    """

    mask: Any
    template: str
    values: dict[str, Any]
    kind: str = "position"


Kernel = tuple[np.ndarray, list[Failure]]


def _report(fail: Fail, result: Kernel) -> np.ndarray:
    """Hand a kernel's failures to the current wrapper and return its values."""
    values, failures = result
    for f in failures:
        if f.kind == "warning":
            fail.warn(f.mask, f.template, **f.values)
        else:
            fail(f.mask, f.template, kind=f.kind, **f.values)
    return values


def _direction(argname: str, value: Any) -> str:
    name = value.strip().lower() if isinstance(value, str) else value
    if name not in ("either", "down", "up"):
        raise InputError(f"{argname} must be either, down or up, got {fmt(value)}")
    return name


# Argument rules: the core's where the argument is the same, so the position and the planning
# formulas read it alike.
SIDE = UNDER_A_CONVENTION["side"]
QTY = UNDER_A_CONVENTION["qty"]
PRICE = UNDER_A_CONVENTION["entry_price"]
MMR = UNDER_A_CONVENTION["mmr"]
MAINT_AMOUNT = UNDER_A_CONVENTION["maint_amount"]
CONTRACT = UNDER_A_CONVENTION["contract"]
TIERS = UNDER_A_CONVENTION["tiers"]
FEE = UNDER_A_CONVENTION["fee_rate"]
AT_LEAST_0 = Number(ge=0)
ANY = Number()
LINEAR = 0.0  # the contract code of a linear position (HEDGE_LIQ_PRICE's, SAFE_LEVERAGE's)
PRICE_OR_BLANK = Number(gt=0, blank_means_none=True)
OR_BLANK = Number(blank_means_none=True)  # "there is none": an open end
RATE = Rate()  # a fraction, also typed as percent text ("0.01%")
RATE_AT_LEAST_0 = Rate(ge=0)
RATE_OR_BLANK = Rate(blank_means_none=True)  # "there is none": a missing rate
DIRECTION = PerCall(lambda name, value: _direction(name, value), "either, down or up")


# ------------------------------------------------------------------- averaging
def _avg_entry_kernel(
    qty: np.ndarray, entry_price: np.ndarray, add_qty: np.ndarray, add_price: np.ndarray,
    contract: np.ndarray,
) -> Kernel:
    # as weights, so huge sizes do not overflow: w is the added share of the new size
    w = 1.0 / (1.0 + qty / add_qty)  # add_qty 0: w = 0
    linear = entry_price + w * (add_price - entry_price)
    # inverse: qty is USD of contracts, so the average is the harmonic one (coin cost adds up)
    inverse = 1.0 / ((1.0 - w) / entry_price + w / add_price)
    return np.where(contract > 0, inverse, linear), []


@formula(qty=QTY, entry_price=PRICE, add_qty=AT_LEAST_0, add_price=PRICE, contract=CONTRACT)
def avg_entry(
    qty: Any, entry_price: Any, add_qty: Any, add_price: Any, contract: Any = "linear", *,
    fail: Fail,
) -> Any:
    """Average entry price after adding ``add_qty`` at ``add_price``.

    Linear: ``(qty·entry_price + add_qty·add_price) / (qty + add_qty)`` (quote per base unit).
    Inverse (``qty`` in USD of contracts): ``(qty + add_qty) / (qty/entry_price +
    add_qty/add_price)``, the harmonic mean the exchanges use. ``add_qty = 0`` leaves the
    entry unchanged.

    1 BTC at 20,000 plus 1 BTC at 18,000 averages 19,000 (linear); 10,000 USD of contracts at
    20,000 plus 10,000 at 10,000 averages 13,333.33 (inverse).

    docs/FORMULAS.md, section "AVG_ENTRY", states it with its sources.

    >>> avg_entry(1, 20_000, 1, 18_000)
    19000.0
    >>> round(avg_entry(10_000, 20_000, 10_000, 10_000, "inverse"), 2)
    13333.33
    """
    return _report(fail, _avg_entry_kernel(qty, entry_price, add_qty, add_price, contract))


# ------------------------------------------------------------------ after an add
def _pass_on(fail: Fail, res: RowResults) -> np.ndarray:
    """Report the rows another formula's ``.rows`` call failed or flagged, as that formula
    said them."""
    if not res.ok.all():
        bad = np.broadcast_to(~res.ok, fail.shape)
        if fail.errors is None:
            fail.errors = np.full(fail.shape, None, dtype=object)
        if fail.position is None:
            fail.position = np.zeros(fail.shape, dtype=bool)
        take = bad & np.equal(fail.errors, NONE)
        fail.errors[take] = np.broadcast_to(res.errors, fail.shape)[take]
        if res.position_rows is not None:
            fail.position[take] = np.broadcast_to(res.position_rows, fail.shape)[take]
    if res._warnings is not None:  # the other formula's flags, as it said them
        flagged = np.broadcast_to(np.not_equal(res.warnings, NONE), fail.shape)
        if fail.warnings is None:
            fail.warnings = np.full(fail.shape, None, dtype=object)
        take = flagged & np.equal(fail.warnings, NONE)
        fail.warnings[take] = np.broadcast_to(res.warnings, fail.shape)[take]
    return res.values


@formula(
    returns_none=True,
    margin=AT_LEAST_0, add_qty=AT_LEAST_0, add_price=PRICE, add_margin=AT_LEAST_0,
    **UNDER_A_CONVENTION,
)
def liq_after_add(
    side: Any, qty: Any, entry_price: Any, margin: Any, add_qty: Any, add_price: Any,
    add_margin: Any = 0.0, mmr: Any = DEFAULT_MMR, maint_amount: Any = 0.0,
    contract: Any = "linear", tiers: Any = None, exchange: Any = "binance", fee_rate: Any = 0.0,
    *, fail: Fail,
) -> Any:
    """Isolated liquidation price after adding ``add_qty`` at ``add_price`` and posting
    ``add_margin`` more margin: the averaging-down check before the add.

    ``LIQ_PRICE(side, qty + add_qty, AVG_ENTRY(qty, entry_price, add_qty, add_price),
    margin + add_margin, mmr, maint_amount, contract, tiers, exchange, fee_rate)``, so every
    exchange convention of :func:`leverage.liq_price` applies. ``nan`` when the position
    cannot be liquidated. ``add_qty = 0`` with ``add_margin > 0`` is Bybit's "extra margin
    added": ``LP = entry − s·(IM − MM + extra_margin)/qty``.

    Long 1 BTC at 20,000 on 400 margin, adding 1 BTC at 19,000 with 400 more margin: entry
    19,500, margin 800, ``(800 − 2·19,500) / (2·(0.005 − 1)) = 19,195.98``.

    docs/FORMULAS.md, section "LIQ_AFTER_ADD", states it with its sources.

    >>> round(liq_after_add("long", 1, 20_000, 400, 1, 19_000, 400), 2)
    19195.98
    >>> liq_after_add("long", 1, 20_000, 400, 0, 20_000, 100, exchange="bybit")
    19600.0
    """
    entry, _ = _avg_entry_kernel(qty, entry_price, add_qty, add_price, contract)
    return _pass_on(fail, liq_price.rows(
        side, qty + add_qty, entry, margin + add_margin, mmr, maint_amount, contract, tiers,
        exchange, fee_rate,
    ))


# ------------------------------------------------------------------- max open
def _max_open_kernel(
    balance: np.ndarray, price: np.ndarray, leverage: np.ndarray, tiers: TierTable | None,
    fee_rate: np.ndarray, contract: np.ndarray,
) -> Kernel:
    failures: list[Failure] = []
    # notional (margin currency) whose initial margin plus opening fee uses the whole balance
    notional = balance / (1.0 / leverage + fee_rate)
    if tiers is not None:
        # a band whose max leverage is not published is not known to allow any leverage (it
        # allows at most what the band below does, maybe less): it never lifts the cap; a
        # table that publishes none caps nothing
        published = tiers.max_leverages
        lev = np.where(np.isnan(published),
                       -np.inf if np.isfinite(published).any() else np.inf, published)
        caps = np.array([t.max_notional for t in tiers.tiers])
        allowed = lev >= np.asarray(leverage, dtype=float)[..., None]
        # the largest band whose max leverage is at least the chosen one
        last = allowed.shape[-1] - 1 - np.argmax(allowed[..., ::-1], axis=-1)
        none = ~allowed.any(axis=-1)
        cap = np.where(none, np.nan, caps[np.where(none, 0, last)])
        failures.append(Failure(
            none,
            "leverage must be at most {top} (the highest the tier table allows), got {lev}",
            {"top": float(np.nanmax(lev)) if np.isfinite(lev).any() else np.inf,
             "lev": leverage},
            "input",
        ))
        notional = np.minimum(notional, cap)
    qty = np.where(contract > 0, notional * price, notional / price)
    return qty, failures


@formula(
    balance=AT_LEAST_0, price=PRICE, leverage=Number(gt=0), tiers=TIERS, fee_rate=FEE,
    contract=CONTRACT,
)
def max_open(
    balance: Any, price: Any, leverage: Any, tiers: Any = None, fee_rate: Any = 0.0,
    contract: Any = "linear", *, fail: Fail,
) -> Any:
    """Largest qty that can be opened at ``price`` and ``leverage`` with ``balance``
    (the exchange calculators' "Max Open").

    Initial margin plus opening fee uses the balance: ``notional·(1/leverage + fee_rate) =
    balance``, so ``notional = balance / (1/leverage + fee_rate)``; qty is ``notional/price``
    (linear, base units) or ``notional·price`` (inverse, USD of contracts; balance in coin).
    With ``tiers`` the notional is also capped at the upper bound of the largest band whose
    published max leverage is at least ``leverage`` (a band without one is not known to allow
    any, so it never lifts the cap; a table that publishes none caps nothing).

    10,000 USDT at 20x with a 0.05 % fee, BTC at 50,000: ``10,000 / (0.05 + 0.0005) =
    198,019.80`` USDT of notional, 3.9604 BTC.

    docs/FORMULAS.md, section "MAX_OPEN", states it with its sources.

    >>> round(max_open(10_000, 50_000, 20, fee_rate=0.0005), 4)
    3.9604
    >>> max_open(1_000, 20_000, 125, tiers=[[0, 50_000, 0.004, 125], [50_000, 1e6, 0.005, 100]])
    2.5
    """
    tiers_for_contract(fail, contract, tiers)
    return _report(fail, _max_open_kernel(balance, price, leverage, tiers, fee_rate, contract))


# ------------------------------------------------------------------ hedge mode
def _hedge_liq_kernel(
    long_qty: np.ndarray, long_entry: np.ndarray, short_qty: np.ndarray,
    short_entry: np.ndarray, wallet_balance: np.ndarray, other_upnl: np.ndarray,
    other_maint: np.ndarray, long_mmr: np.ndarray, long_maint_amount: np.ndarray,
    short_mmr: np.ndarray, short_maint_amount: np.ndarray, tiers: TierTable | None,
) -> Kernel:
    failures = [
        Failure((long_qty == 0) & (short_qty == 0),
                "long_qty and short_qty must not both be 0", {}, "input"),
        Failure((long_qty > 0) & np.isnan(long_entry),
                "long_entry is required when long_qty > 0", {}, "input"),
        Failure((short_qty > 0) & np.isnan(short_entry),
                "short_entry is required when short_qty > 0", {}, "input"),
    ]
    le = np.where(long_qty > 0, long_entry, 0.0)
    se = np.where(short_qty > 0, short_entry, 0.0)
    shared = wallet_balance + other_upnl - other_maint
    base = shared - long_qty * le + short_qty * se

    def f(price: np.ndarray) -> np.ndarray:
        """Equity minus maintenance margin at ``price`` (both legs)."""
        ml = _maint(long_qty * price, long_mmr, long_maint_amount, tiers)
        ms = _maint(short_qty * price, short_mmr, short_maint_amount, tiers)
        return base + (long_qty - short_qty) * price - np.where(long_qty > 0, ml, 0.0) - \
            np.where(short_qty > 0, ms, 0.0)

    # per combination: the long leg's and short leg's (mmr, maint_amount), and with tiers the
    # tiers they come from
    combos: list[tuple[np.ndarray | float, np.ndarray | float, np.ndarray | float,
                       np.ndarray | float, int | None, int | None]]
    if tiers is None:
        combos = [(long_mmr, long_maint_amount, short_mmr, short_maint_amount, None, None)]
    else:
        n = len(tiers.tiers)
        combos = [
            (tiers.mmrs[i], tiers.maint_amounts[i], tiers.mmrs[j], tiers.maint_amounts[j], i, j)
            for i in range(n) for j in range(n)
        ]
    # f is concave in price (each leg's MM is convex in its notional), so it has at most two
    # roots; Binance's formula is the root of f with both legs' rates fixed, and with tiers
    # only the roots whose legs' notionals sit in the tiers used count.
    ref = np.where(long_qty + short_qty > 0,
                   (long_qty * le + short_qty * se) / (long_qty + short_qty), 1.0)
    best = np.full(np.broadcast(base, ref, long_mmr, short_mmr).shape, np.nan)
    for lm, la, sm, sa, i, j in combos:
        cum = np.where(long_qty > 0, la, 0.0) + np.where(short_qty > 0, sa, 0.0)
        den = long_qty * lm + short_qty * sm - long_qty + short_qty
        lp = (base + cum) / den
        # inf with den != 0 is a root lost to overflow: kept, so it is reported as too large
        ok = (lp > 0) & (np.isfinite(lp) | (den != 0))
        if tiers is not None and i is not None and j is not None:  # with tiers all three are
            ok &= _in_band(long_qty * lp, i, tiers) & _in_band(short_qty * lp, j, tiers)
        closer = ok & (np.isnan(best) | (np.abs(np.log(lp / ref)) < np.abs(np.log(best / ref))))
        best = np.where(closer, lp, best)
    # one leg: the rule every liquidation price shares (so this equals cross_liq_price);
    # both legs: equity − MM is concave, not monotone, so "below everywhere" is the solver's
    # "no price where it reaches 0" with equity below maintenance at the average entry
    one_leg = (long_qty == 0) | (short_qty == 0)
    leg_side = np.where(long_qty > 0, 1.0, -1.0)
    leg = Isolated(leg_side, long_qty + short_qty, np.where(long_qty > 0, le, se),
                   np.where(long_qty > 0, long_mmr, short_mmr),
                   np.where(long_qty > 0, long_maint_amount, short_maint_amount), 0.0, tiers)
    below = np.where(one_leg, below_maintenance_everywhere(leg, shared),
                     np.isnan(best) & (f(ref) <= 0))
    failures.append(Failure(below, BELOW_MAINTENANCE, {"shared": shared}))
    return best, failures


def _maint(notional: np.ndarray, mmr: Any, amount: Any, tiers: TierTable | None) -> np.ndarray:
    if tiers is not None:
        mmr, amount, _ = tiers.lookup(notional)
    return notional * mmr - amount


def _in_band(notional: np.ndarray, k: int, tiers: TierTable) -> np.ndarray:
    """Whether ``notional`` lies in tier ``k``'s band (both ends, with rounding slack: a root
    on a bound is the same price in either tier because MM is continuous there)."""
    lo = tiers.tiers[k].min_notional
    hi = tiers.tiers[k].max_notional
    slack = 1e-9 * np.maximum(np.abs(notional), 1.0)
    return (notional >= lo - slack) & (notional <= hi + slack)




@formula(
    returns_none=True,
    long_qty=AT_LEAST_0, long_entry=PRICE_OR_BLANK, short_qty=AT_LEAST_0,
    short_entry=PRICE_OR_BLANK, wallet_balance=WALLET_BALANCE, other_upnl=ANY,
    other_maint=AT_LEAST_0,
    long_mmr=MMR, long_maint_amount=MAINT_AMOUNT, short_mmr=MMR,
    short_maint_amount=MAINT_AMOUNT, tiers=TIERS,
)
def hedge_liq_price(
    long_qty: Any, long_entry: Any, short_qty: Any, short_entry: Any, wallet_balance: Any,
    other_upnl: Any = 0.0, other_maint: Any = 0.0, long_mmr: Any = DEFAULT_MMR,
    long_maint_amount: Any = 0.0, short_mmr: Any = DEFAULT_MMR, short_maint_amount: Any = 0.0,
    tiers: Any = None, *, fail: Fail,
) -> Any:
    """The one liquidation price of both legs of a symbol in cross hedge mode (linear),
    Binance's published formula with the one-way (BOTH) terms at zero::

        LP = (WB + other_upnl − other_maint + cumL + cumS − long_qty·long_entry
              + short_qty·short_entry)
             / (long_qty·long_mmr + short_qty·short_mmr − long_qty + short_qty)

    (``WB`` the wallet balance, ``cumL``/``cumS`` the legs' maintenance amounts, quantities
    ≥ 0 in base units, money in the quote currency). A leg with qty 0 is absent (its entry
    may be blank); with ``short_qty = 0`` this is ``cross_liq_price("long", ...)`` and vice
    versa. ``nan`` when the account cannot be liquidated; a :class:`~leverage.PositionError`
    when it is below maintenance at every price. With ``tiers`` each leg takes the tier of
    its own notional at the liquidation price; if two prices qualify (a large fully hedged
    book liquidates both far below and far above), the one nearer the legs' average entry.

    Long 1 BTC at 20,000 and short 0.5 BTC at 21,000, wallet 1,000:
    ``(1,000 − 20,000 + 10,500) / (0.005 + 0.0025 − 1 + 0.5) = 17,258.88``.

    docs/FORMULAS.md, section "HEDGE_LIQ_PRICE", states it with its sources.

    >>> round(hedge_liq_price(1, 20_000, 0.5, 21_000, 1_000), 2)
    17258.88
    """
    tiers_for_contract(fail, LINEAR, tiers)
    return _report(fail, _hedge_liq_kernel(
        long_qty, long_entry, short_qty, short_entry, wallet_balance, other_upnl, other_maint,
        long_mmr, long_maint_amount, short_mmr, short_maint_amount, tiers,
    ))


# -------------------------------------------------------------------- funding
def _funding_apr_kernel(funding_rate: np.ndarray, interval_hours: np.ndarray) -> Kernel:
    return funding_rate * 24.0 / interval_hours * DAYS_PER_YEAR, []


@formula(funding_rate=RATE, interval_hours=Number(gt=0))
def funding_apr(funding_rate: Any, interval_hours: Any, *, fail: Fail) -> Any:
    """Funding rate per event as a simple annual rate: ``funding_rate × 24/interval_hours ×
    365`` (a fraction; positive: longs pay). No compounding.

    0.01 % every 8 hours is 10.95 % a year; the same rate every hour is 87.6 %. A rate above
    1 % a period is flagged as in :func:`~leverage.funding_payment`.

    docs/FORMULAS.md, section "FUNDING_APR", states it with its sources.

    >>> round(funding_apr(0.0001, 8), 6)
    0.1095
    >>> round(funding_apr(0.0001, 1), 6)
    0.876
    """
    flag_funding(fail, "funding_rate", funding_rate)
    return _report(fail, _funding_apr_kernel(funding_rate, interval_hours))


# ---------------------------------------------------------- liquidation odds
_SQRT2 = math.sqrt(2.0)
# Numerical Recipes' erfc (Press et al., Numerical Recipes in C, 2nd ed., §6.2, routine erfcc):
# erfc(z) = t·exp(−z² + P(t)), t = 1/(1 + z/2), fractional error < 1.2e-7 for every z ≥ 0.
# Its exponential form gives log Φ directly, which keeps e^{2μb/σ²}·Φ(x) finite.
_ERFC_POLY = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806, 0.27886807,
              -1.13520398, 1.48851587, -0.82215223, 0.17087277)


def _log_erfcx(z: np.ndarray) -> np.ndarray:
    """``log(erfc(z)·e^{z²})`` for ``z ≥ 0`` (no ``z²`` in it: finite for any finite z)."""
    t = 1.0 / (1.0 + 0.5 * z)
    poly = np.full_like(t, _ERFC_POLY[-1])
    for c in _ERFC_POLY[-2::-1]:
        poly = poly * t + c
    return np.log(t) + poly


def _log_erfc(z: np.ndarray) -> np.ndarray:
    """``log erfc(z)`` for ``z ≥ 0``."""
    return _log_erfcx(z) - z * z


def _log_norm_cdf(x: np.ndarray) -> np.ndarray:
    """``log Φ(x)``: exact-form tails for x < 0, ``log1p(−Φ(−x))`` above."""
    z = np.abs(x) / _SQRT2
    log_tail = np.log(0.5) + _log_erfc(z)  # log Φ(−|x|)
    return np.where(x < 0, log_tail, np.log1p(-np.exp(log_tail)))


def _norm_cdf(x: np.ndarray) -> np.ndarray:
    tail = 0.5 * np.exp(_log_erfc(np.abs(x) / _SQRT2))  # Φ(−|x|)
    return np.where(x < 0, tail, 1.0 - tail)


def _touch_probability(
    b: np.ndarray, mu: np.ndarray, sigma: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """P(min over [0, t] of μs + σW_s ≤ b) for ``b < 0``: first passage of Brownian motion
    with drift to a lower level (Harrison, Brownian Motion and Stochastic Flow Systems, 1985,
    §1.8; Shreve, Stochastic Calculus for Finance II, 2004, §7.2, by the reflection principle
    and Girsanov): ``Φ((b − μt)/(σ√t)) + e^{2μb/σ²}·Φ((b + μt)/(σ√t))``."""
    sd = sigma * np.sqrt(t)
    y = (b - mu * t) / sd
    x = (b + mu * t) / sd
    first = _norm_cdf(y)
    # 2μb/σ² + log Φ(x) with x < 0: log Φ(x) = log ½ + log erfc(−x/√2), whose −x²/2 part
    # cancels 2μb/σ² exactly into −y²/2; summed as such the two terms are each infinite
    # (inf − inf) when σ² underflows, though the product is tiny
    tail = np.log(0.5) + _log_erfcx(np.abs(x) / _SQRT2) - 0.5 * y * y
    second = np.exp(np.where(x < 0, tail, 2.0 * mu * b / (sigma * sigma) + _log_norm_cdf(x)))
    p = first + second
    # what is still unresolved (σ√t so small that a ratio is 0/0): the price moves at the
    # drift, touching b exactly when μt ≤ b
    return np.where(np.isnan(p), np.where(mu * t <= b, 1.0, 0.0), p)


VOLATILITY_AS_PERCENT = "volatility is a fraction a year (0.6 is 60 %)"


def flag_volatility(fail: Fail, volatility: Any) -> None:
    """Flag the rows whose ``volatility`` looks like a percent typed as a number (500 % a
    year or more, :data:`~leverage._args.VOLATILITY_PERCENT_LIKE`), with what to type."""
    looks = volatility >= VOLATILITY_PERCENT_LIKE
    if np.any(looks):
        fail.warn(looks, VOLATILITY_AS_PERCENT, notes=lambda: percent_hints(
            like=VOLATILITY_PERCENT_LIKE, volatility=volatility))


def _liq_probability_kernel(
    side: np.ndarray, mark_price: np.ndarray | float, liq_price: np.ndarray,
    volatility: np.ndarray, horizon_days: np.ndarray, drift: np.ndarray | float,
) -> Kernel:
    t = horizon_days / DAYS_PER_YEAR
    # mirror a short onto a long: the distance to a level above is −ln(liq/mark) below, and
    # the log-price drift changes sign
    b = side * np.log(liq_price / mark_price)
    mu = side * (drift - 0.5 * volatility * volatility)
    moving = (volatility > 0) & (t > 0)
    p = _touch_probability(b, mu, np.where(moving, volatility, 1.0), np.where(t > 0, t, 1.0))
    # zero volatility: the log price moves at μ and touches b < 0 if μt ≤ b
    p = np.where(moving, p, np.where((volatility == 0) & (mu * t <= b), 1.0, 0.0))
    p = np.where(b >= 0, 1.0, np.clip(p, 0.0, 1.0))  # the mark is at or past the liq price
    return np.where(np.isnan(liq_price), 0.0, p), []


@formula(
    side=SIDE, mark_price=PRICE, liq_price=PRICE_OR_BLANK, volatility=RATE_AT_LEAST_0,
    horizon_days=AT_LEAST_0, drift=RATE,
)
def liq_probability(
    side: Any, mark_price: Any, liq_price: Any, volatility: Any, horizon_days: Any,
    drift: Any = 0.0, *, fail: Fail,
) -> Any:
    """Probability that the mark touches ``liq_price`` within ``horizon_days``, the log price
    a Brownian motion with annual drift ``drift`` and annualised ``volatility`` (fractions,
    365-day year).

    With ``b = ln(liq/mark)``, ``μ = drift − σ²/2``, ``T = horizon_days/365``:
    long (``b < 0``) ``Φ((b − μT)/(σ√T)) + e^{2μb/σ²}·Φ((b + μT)/(σ√T))``;
    short (``b > 0``) ``Φ((−b + μT)/(σ√T)) + e^{2μb/σ²}·Φ((−b − μT)/(σ√T))``
    (first passage of Brownian motion with drift: Harrison 1985 §1.8; Shreve 2004 §7.2).
    0 when there is no liquidation price (blank), 1 when the mark is at or past it.
    Accurate to about 1e-7 (the normal CDF's approximation).

    Long at 20,000, liquidation 18,000, 60 % volatility, 7 days, no drift: 0.216.

    docs/FORMULAS.md, section "LIQ_PROBABILITY", states it with its sources.

    >>> round(liq_probability("long", 20_000, 18_000, 0.6, 7), 3)
    0.216
    >>> liq_probability("short", 20_000, None, 0.6, 7)
    0.0
    """
    flag_volatility(fail, volatility)
    return _report(fail, _liq_probability_kernel(
        side, mark_price, liq_price, volatility, horizon_days, drift
    ))


# ------------------------------------------------------------- safe leverage
_BISECTIONS = 64


def _liq_ratio(side: Any, leverage: np.ndarray, rate: Any, amount_share: Any) -> np.ndarray:
    """Liquidation price over entry for margin = notional/leverage (isolated, linear, Binance
    form with MM at the liquidation price): ``(1/L + a − s) / (mmr − s)`` where ``a`` is the
    maintenance amount as a share of the entry notional; nan where there is none."""
    r = (1.0 / leverage + amount_share - side) / (rate - side)
    return np.where(r > 0, r, np.nan)


def _safe_leverage_kernel(
    volatility: np.ndarray, horizon_days: np.ndarray, max_probability: np.ndarray,
    mmr: np.ndarray, side: np.ndarray, maint_amount: np.ndarray, tiers: TierTable | None,
) -> Kernel:
    failures = [Failure(
        np.asarray(maint_amount) != 0,
        "maint_amount must be 0 without tiers, got {amount}: SAFE_LEVERAGE has no position "
        "size to apply an amount to (pass tiers instead)",
        {"amount": maint_amount}, "input",
    )] if tiers is None else []
    shape = np.broadcast(volatility, horizon_days, max_probability, mmr, side).shape
    bands: list[tuple[np.ndarray | float, float, float, float]]  # (mmr, share, floor, cap)
    if tiers is None:
        # one band: no leverage cap but the one where the liquidation price reaches the mark
        bands = [(mmr, 0.0, 1e-6, np.inf)]
    else:
        # Conservative: at leverage L a position may be as large as the upper bound of the
        # largest band allowed at L; MM/notional is highest there, so the liquidation price
        # is nearest the mark there. Leverage in (next band's max, this band's max].
        lev = tiers.leverage_caps
        bands = []
        for k, t in enumerate(tiers.tiers):
            share = t.maint_amount / t.max_notional if math.isfinite(t.max_notional) else 0.0
            floor = lev[k + 1] if k + 1 < len(lev) else 1e-6
            bands.append((t.mmr, share, min(floor, lev[k]), lev[k]))
    best = np.full(shape, np.nan)
    for rate, share, floor, cap in bands:
        best = np.fmax(best, _solve_band(volatility, horizon_days, max_probability, side, rate,
                                         share, floor, cap, shape))
    return best, failures


def _solve_band(
    volatility: Any, horizon_days: Any, max_probability: Any, side: Any, rate: Any,
    share: Any, floor: float, cap: float, shape: tuple[int, ...],
) -> np.ndarray:
    """Largest leverage in ``[floor, cap]`` whose liquidation probability is at most
    ``max_probability``, by bisection on log leverage (the probability only rises with
    leverage: the liquidation price moves toward the mark); nan if ``floor`` is too risky."""

    def prob(lev: np.ndarray) -> np.ndarray:
        lp = _liq_ratio(side, lev, rate, share)
        p, _ = _liq_probability_kernel(side, 1.0, lp, volatility, horizon_days, 0.0)
        return p

    # the leverage at which the liquidation price reaches the mark (probability 1 beyond)
    room = np.asarray(rate - share, dtype=float) * np.ones(shape)
    top = np.where(room > 0, 1.0 / np.where(room > 0, room, 1.0), np.inf)
    hi = np.minimum(np.minimum(top, cap), 1e6) * np.ones(shape)
    lo = np.minimum(np.full(shape, floor), hi)
    ok_hi = prob(hi) <= max_probability
    ok_lo = prob(lo) <= max_probability
    log_lo, log_hi = np.log(lo), np.log(hi)
    for _ in range(_BISECTIONS):
        mid = 0.5 * (log_lo + log_hi)
        good = prob(np.exp(mid)) <= max_probability
        log_lo = np.where(good, mid, log_lo)
        log_hi = np.where(good, log_hi, mid)
    out = np.where(ok_hi, hi, np.exp(log_lo))
    return np.where(ok_lo, out, np.nan)


@formula(
    returns_none=True,
    volatility=RATE_AT_LEAST_0, horizon_days=AT_LEAST_0, max_probability=Rate(ge=0, le=1),
    mmr=MMR, side=SIDE, maint_amount=MAINT_AMOUNT, tiers=TIERS,
)
def safe_leverage(
    volatility: Any, horizon_days: Any, max_probability: Any, mmr: Any = DEFAULT_MMR,
    side: Any = "long", maint_amount: Any = 0.0, tiers: Any = None, *, fail: Fail,
) -> Any:
    """The highest leverage whose :func:`liq_probability` over ``horizon_days`` is at most
    ``max_probability``: volatility-responsive leverage (lower it when volatility rises).

    The position is opened at the mark (entry = mark) with isolated margin = notional /
    leverage, linear, so its liquidation price over entry is ``(1/L − s) / (mmr − s)`` (Binance
    form); the probability rises with leverage, so a bisection on the leverage finds the
    largest one that qualifies. Capped where the liquidation price reaches the mark
    (``1/mmr``). With ``tiers`` the leverage is also capped at the table's max leverage and,
    at each leverage, the rates are those at the upper bound of the largest band that
    leverage allows (the largest position it permits: the conservative end; ``mmr`` and
    ``maint_amount`` are then ignored). ``nan`` when no leverage qualifies.

    60 % volatility, 1 day, at most 1 % chance, mmr 0.5 %: 12.1x (long).

    docs/FORMULAS.md, section "SAFE_LEVERAGE", states it with its sources.

    >>> round(safe_leverage(0.6, 1, 0.01), 1)
    12.1
    """
    flag_volatility(fail, volatility)
    tiers_for_contract(fail, LINEAR, tiers)  # its position is linear (see above)
    return _report(fail, _safe_leverage_kernel(
        volatility, horizon_days, max_probability, mmr, side, maint_amount, tiers
    ))


# ------------------------------------------------------------- range functions
# ACCOUNT_SHOCK and FUNDING_FROM_HISTORY read ranges and answer once per account or position.
# Column form: a 1-D range is one account (one position's history) and gives a scalar; a 2-D
# range has one account (one position) per COLUMN, rows the positions (funding events), and
# gives one value per column. A row whose qty (time) is blank is padding, so columns of
# different length fit in one block. Per-column arguments (wallet_balance; side, qty, opened,
# closed) are a scalar or one value per column.


class _Ranges:
    """Parsed range arguments plus per-column errors (the first bad cell names the column)."""

    def __init__(
        self, fname: str, rules: dict[str, Kind], ranges: dict[str, Any], columns: dict[str, Any],
    ) -> None:
        self.fname = fname
        self.rules = rules
        self.raw = {k: as_column(v) for k, v in ranges.items()}
        shapes = {k: np.shape(np.asarray(v, dtype=object)) for k, v in self.raw.items()
                  if isinstance(v, list | tuple | np.ndarray)}
        block = {s for s in shapes.values() if s}
        if len(block) > 1:
            listed = ", ".join(f"{n}{s}" for n, s in shapes.items())
            raise InputError(f"{fname}: ranges differ in shape: {listed}")
        shape = block.pop() if block else (1,)
        if len(shape) > 2:
            raise InputError(f"{fname}: ranges must be one column or a block, got {shape}")
        self.scalar = len(shape) == 1
        self.shape = shape if len(shape) == 2 else (shape[0], 1)
        self.columns = self.shape[1]
        self.errors = np.full(self.columns, None, dtype=object)
        self.columns_raw = columns

    def cells(
        self, name: str, padding: np.ndarray | None = None, blank: Any = MISSING,
    ) -> np.ndarray:
        """A range argument as a (rows, columns) float block, read by its rule (a blank cell
        as ``blank`` when given); errors on non-padding cells."""
        kind = self.rules[name] if blank is MISSING else self.rules[name].with_default(blank)
        arr, err = kind.parse(name, self.raw[name])
        if arr.ndim == 1:
            arr = arr[:, None]
            err = None if err is None else err[:, None]
        arr = np.broadcast_to(arr, self.shape)
        if err is not None:
            err = np.broadcast_to(err, self.shape)
            for i, j in zip(*np.nonzero(np.not_equal(err, NONE)), strict=True):
                if (padding is None or not padding[i, j]) and self.errors[j] is None:
                    where = f"row {i + 1}" if self.scalar else f"row {i + 1}, column {j + 1}"
                    self.errors[j] = f"{err[i, j]} ({where})"
        return arr

    def per_column(self, name: str) -> np.ndarray:
        """A per-account (per-position) argument: a scalar or one value per column."""
        value = as_column(self.columns_raw[name])
        arr, err = self.rules[name].parse(name, value)
        try:
            arr = np.broadcast_to(arr.ravel() if arr.ndim else arr, (self.columns,))
        except ValueError:
            raise InputError(
                f"{self.fname}: {name} must be one value or one per column ({self.columns}), "
                f"got {arr.size}"
            ) from None
        if err is not None:
            err = np.broadcast_to(err.ravel() if err.ndim else err, (self.columns,))
            for j in range(self.columns):
                if err[j] is not None and self.errors[j] is None:
                    self.errors[j] = str(err[j])
        return arr

    def per_call(self, name: str, value: Any) -> Any:
        """A one-for-the-call argument (``direction``), a blank as its default."""
        rule = self.rules[name]
        if not isinstance(rule, PerCall):  # a mistake in this module, never the caller's
            raise TypeError(f"{self.fname}: {name} is read per cell, not once per call")
        value = as_column(value)
        if isinstance(value, list | tuple | np.ndarray):
            cells = np.ravel(np.asarray(value, dtype=object))
            if cells.size != 1:
                raise InputError(f"{self.fname}: {name} must be one value for the whole call, "
                                 f"got {cells.size} values")
            value = cells[0]
        return rule.resolve(name, rule.default if _blank(value) else value)

    def result(self, values: np.ndarray, failures: list[Failure]) -> tuple[RowResults, bool]:
        errors = self.errors.copy()
        flags = np.full(self.columns, None, dtype=object)
        position = np.zeros(self.columns, dtype=bool)
        values = np.array(values, dtype=float)
        for f in failures:
            mask = np.broadcast_to(np.asarray(f.mask, dtype=bool), (self.columns,))
            vals = {k: np.broadcast_to(np.asarray(v, dtype=float), (self.columns,))
                    for k, v in f.values.items()}
            into = flags if f.kind == "warning" else errors
            for j in np.nonzero(mask & np.equal(into, NONE))[0]:
                into[j] = f.template.format(**{k: fmt(v[j]) for k, v in vals.items()})
                position[j] = f.kind == "position"
        bad = np.not_equal(errors, NONE)
        values[bad] = np.nan
        flags[bad] = None
        flagged = flags if np.not_equal(flags, NONE).any() else None
        if self.scalar:
            return RowResults(values.reshape(()), errors.reshape(()), position.reshape(()),
                              None if flagged is None else flagged.reshape(())), True
        return RowResults(values, errors if bad.any() else None, position, flagged), False


def ranged(**kinds: Kind) -> Callable[[Callable[..., tuple[RowResults, bool]]], Any]:
    """:func:`~leverage._args.formula` for a function over ranges: ``kinds`` names each
    argument's rule, defaults come from the signature, and the result has the same surface (a
    strict call that raises the first bad column, ``.rows``, ``.rules``). ``run`` reads its
    arguments with :class:`_Ranges` by ``run.rules`` and returns ``(RowResults, scalar)``."""

    def decorate(run: Callable[..., tuple[RowResults, bool]]) -> Any:
        sig = inspect.signature(run)
        rules: dict[str, Kind] = {}
        for name, p in sig.parameters.items():
            # a blank-means-none argument (an open end) reads blank as nan, not as None
            default = MISSING if p.default in (inspect.Parameter.empty, None) else p.default
            rules[name] = kinds[name].with_default(default)
        run.rules = rules  # type: ignore[attr-defined]

        def bound(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[RowResults, bool]:
            try:
                sig.bind(*args, **kwargs)
            except TypeError as exc:
                raise InputError(f"{run.__name__.lstrip('_')}: {exc}") from None
            return run(*args, **kwargs)

        @functools.wraps(run)
        def strict(*args: Any, **kwargs: Any) -> Any:
            res, scalar = bound(args, kwargs)
            res.raise_first()
            res.warn_first()
            return float(res.values) if scalar else res.values

        strict.__name__ = strict.__qualname__ = run.__name__.lstrip("_")
        run.__doc__ = None  # one docstring (its doctest runs once)
        del strict.__wrapped__
        strict.__signature__ = sig.replace(return_annotation=Any)  # type: ignore[attr-defined]
        strict.rows = lambda *a, **k: bound(a, k)[0]  # type: ignore[attr-defined]
        strict.rules = rules  # type: ignore[attr-defined]
        strict.over_ranges = True  # type: ignore[attr-defined]  # one answer per column
        strict.per_row = False  # type: ignore[attr-defined]  # (and no scalar fast path)
        return strict

    return decorate


# ------------------------------------------------------------------ account shock
def _account_shock_kernel(
    sides: np.ndarray, qtys: np.ndarray, entry_prices: np.ndarray, mark_prices: np.ndarray,
    wallet_balance: np.ndarray, mmrs: np.ndarray, maint_amounts: np.ndarray, direction: str,
    threshold: np.ndarray | float = 1.0,
) -> Kernel:
    """Rows are positions (qty 0 = none), columns accounts; one move per column."""
    # At marks × (1 + m): equity − k·MM = C + D·(1 + m), linear in m, so one root at most.
    c = wallet_balance - np.sum(sides * qtys * entry_prices, axis=0) + threshold * np.sum(
        np.where(qtys > 0, maint_amounts, 0.0), axis=0)
    d = np.sum(qtys * mark_prices * (sides - threshold * mmrs), axis=0)
    now = c + d  # equity − k × maintenance at today's marks
    factor = -c / d
    move = np.where((factor > 0) & np.isfinite(factor), factor - 1.0, np.nan)
    if direction == "down":
        move = np.where(move <= 0, move, np.nan)
    elif direction == "up":
        move = np.where(move >= 0, move, np.nan)
    failures = [Failure(
        now < 0,
        "the account is already below maintenance margin at today's marks (equity minus "
        "maintenance is {gap})",
        {"gap": now},
    )]
    return move, failures


_account_shock_ranged = ranged(
    sides=SIDE, qtys=AT_LEAST_0, entry_prices=PRICE, mark_prices=PRICE, wallet_balance=ANY,
    mmrs=MMR, maint_amounts=MAINT_AMOUNT, direction=DIRECTION, threshold=Number(gt=0),
)


def _account_shock(
    sides: Any, qtys: Any, entry_prices: Any, mark_prices: Any, wallet_balance: Any,
    mmrs: Any = DEFAULT_MMR, maint_amounts: Any = 0.0, direction: Any = "either",
    threshold: Any = 1.0,
) -> tuple[RowResults, bool]:
    """The uniform move ``m`` of every mark (each mark × (1 + m); −0.12 = all prices 12 %
    lower) at which a cross account's equity equals its total maintenance margin (linear),
    or ``threshold`` times it.

    ``threshold``: the equity ÷ maintenance ratio at which the exchange liquidates the
    account (default 1: equity = maintenance, Bybit's unified account at account MM rate
    100 %; Binance portfolio margin liquidates at uniMMR = equity ÷ maintenance ≤ 1.05, so
    1.05). With it, ``C = wallet_balance − Σ s·qty·entry + threshold·Σ maint_amount`` and
    ``D = Σ qty·mark·(s − threshold·mmr)``; the error below compares equity with
    ``threshold`` × maintenance.

    Equity ``wallet_balance + Σ s·qty·(mark·(1+m) − entry)`` meets maintenance
    ``Σ (qty·mark·(1+m)·mmr − maint_amount)`` where ``C + D·(1 + m) = 0`` with
    ``C = wallet_balance − Σ s·qty·entry + Σ maint_amount`` and ``D = Σ qty·mark·(s − mmr)``:
    ``m = −C/D − 1``. It is linear in ``m``, so there is one such move at most: ``direction``
    ``either`` returns it, ``down`` only if it is a fall, ``up`` only if a rise; blank if
    none (a book whose equity and maintenance move alike, or a move past zero prices). An
    account already below maintenance at today's marks is a :class:`~leverage.PositionError`.

    Ranges: one column of positions is one account (a scalar answer); a block with one
    account per column gives one move per column (``wallet_balance`` one per column or one
    for all). A row with a blank or 0 qty is no position (padding).

    Long 1 BTC (entry 20,000, mark 21,000) and short 10 ETH (entry 1,500, mark 1,400),
    wallet 2,000: ``C = 2,000 − 20,000 + 15,000 = −3,000``, ``D = 21,000·0.995 −
    14,000·1.005 = 6,825``, ``m = 3,000/6,825 − 1 = −56.04 %``.

    docs/FORMULAS.md, section "ACCOUNT_SHOCK", states it with its sources.

    >>> round(account_shock(["long", "short"], [1, 10], [20_000, 1_500], [21_000, 1_400],
    ...                     2_000), 4)
    -0.5604

    The same book liquidated at equity ÷ maintenance = 1.05: ``D = 21,000 × (1 − 1.05 ×
    0.005) − 14,000 × (1 + 1.05 × 0.005) = 6,816.25``, ``m = 3,000/6,816.25 − 1``:

    >>> round(account_shock(["long", "short"], [1, 10], [20_000, 1_500], [21_000, 1_400],
    ...                     2_000, threshold=1.05), 4)
    -0.5599
    """
    # the rules ranged() gave this function are the public one's (the same dict)
    r = _Ranges("account_shock", account_shock.rules,
                {"sides": sides, "qtys": qtys, "entry_prices": entry_prices,
                 "mark_prices": mark_prices, "mmrs": mmrs, "maint_amounts": maint_amounts},
                {"wallet_balance": wallet_balance, "threshold": threshold})
    direction = r.per_call("direction", direction)
    q = r.cells("qtys", blank=0.0)
    pad = q == 0
    s = r.cells("sides", pad)
    e = r.cells("entry_prices", pad)
    m = r.cells("mark_prices", pad)
    mmr = r.cells("mmrs", pad)
    amt = r.cells("maint_amounts", pad)
    wb = r.per_column("wallet_balance")
    k = r.per_column("threshold")
    z = np.where(pad, 0.0, 1.0)
    with np.errstate(all="ignore"):
        values, failures = _account_shock_kernel(
            np.where(pad, 0.0, s), q * z, np.where(pad, 0.0, e), np.where(pad, 0.0, m), wb,
            np.where(pad, 0.0, mmr), np.where(pad, 0.0, amt), direction, k)
    return r.result(values, failures)


account_shock = _account_shock_ranged(_account_shock)


# ------------------------------------------------------------ funding history
_EXCEL_EPOCH = _dt.datetime(1899, 12, 30)


def _time_number(v: Any) -> Any:
    """Datetimes as Excel serial days, so typed dates and Python datetimes compare alike."""
    if isinstance(v, np.datetime64):
        v = v.astype("datetime64[us]").astype(_dt.datetime)
    if hasattr(v, "to_pydatetime"):
        v = v.to_pydatetime()
    if isinstance(v, _dt.datetime):
        # an aware time counts at UTC, as exchanges stamp funding; the offset is subtracted
        # as a number so a time near year 1 or 9999 does not overflow converting
        offset = v.utcoffset() or _dt.timedelta(0)
        return ((v.replace(tzinfo=None) - _EXCEL_EPOCH) - offset) / _dt.timedelta(days=1)
    if isinstance(v, _dt.date):
        return float((v - _EXCEL_EPOCH.date()).days)
    return v


def _times(value: Any) -> Any:
    value = as_column(value)
    if isinstance(value, np.ndarray) and value.dtype.kind == "M":
        return (value - np.datetime64(_EXCEL_EPOCH)) / np.timedelta64(1, "D")
    if isinstance(value, list | tuple | np.ndarray):
        return np.vectorize(_time_number, otypes=[object])(np.asarray(value, dtype=object))
    return _time_number(value)


def _funding_from_history_kernel(
    side: np.ndarray, qty: np.ndarray, times: np.ndarray, rates: np.ndarray,
    marks: np.ndarray, opened: np.ndarray, closed: np.ndarray, contract: np.ndarray,
) -> Kernel:
    """Rows are funding events (time nan = padding, sorted within a column), columns
    positions. A blank rate or mark inside the window, or a missing event (a spacing longer
    than both its neighbours, or a window the history does not reach), makes the total nan."""
    present = ~np.isnan(times)
    start = np.where(np.isnan(opened), -np.inf, opened)
    end = np.where(np.isnan(closed), np.inf, closed)
    inside = present & (times >= start) & (times < end)
    flow = np.where(contract > 0, qty / marks, qty * marks) * rates * -side
    blank = np.any(inside & np.isnan(flow), axis=0)
    total = np.sum(np.where(inside, flow, 0.0), axis=0)
    flags = _largest_rate_flag(rates, inside)

    missing = np.zeros(times.shape[1], dtype=bool)
    for j in range(times.shape[1]):
        t = times[present[:, j], j]
        if t.size == 0:
            missing[j] = True
            continue
        gaps = np.diff(t)
        if gaps.size >= 2:
            # a spacing longer than both neighbours is a missing event, not a new interval
            # (8 h → 1 h changes the spacing once; a gap is a one-off spike); the first and
            # last spacings have one neighbour, and longer than it is a gap too (a spacing
            # that changes at the very end cannot be told from one: blank, never too little)
            before = np.concatenate(([0.0], gaps[:-1]))
            after = np.concatenate((gaps[1:], [0.0]))
            spike = (gaps > before * 1.5) & (gaps > after * 1.5)
            left, right = t[:-1][spike], t[1:][spike]
            missing[j] |= bool(np.any((left < end[j]) & (right > start[j])))
        # the window must lie within the history (with one interval's slack at either end)
        first_gap = gaps[0] if gaps.size else 0.0
        last_gap = gaps[-1] if gaps.size else 0.0
        if np.isfinite(start[j]) and start[j] < t[0] - first_gap:
            missing[j] = True
        if np.isfinite(end[j]) and end[j] > t[-1] + last_gap:
            missing[j] = True
    return np.where(blank | missing, np.nan, total), flags


def _largest_rate_flag(rates: np.ndarray, inside: np.ndarray) -> list[Failure]:
    """The flag of each column whose largest rate (in size) inside the window is above 1 % a
    period, naming that rate and its row."""
    if rates.shape[0] == 0:
        return []
    sized = np.where(inside & ~np.isnan(rates), np.abs(rates), -np.inf)
    row = np.argmax(sized, axis=0)
    largest = np.take_along_axis(np.where(np.isnan(rates), 0.0, rates), row[None, :], axis=0)[0]
    return [Failure(
        (np.abs(largest) > FUNDING_FLAG_ABOVE) & np.any(inside, axis=0),
        FUNDING_ABOVE.replace("{name}", "rates: the rate") + " (row {row})",
        {"rate": largest, "pct": largest * 100.0, "per": largest / 100.0, "row": row + 1.0},
        "warning",
    )]


_funding_from_history_ranged = ranged(
    side=SIDE, qty=QTY, times=OR_BLANK, rates=RATE_OR_BLANK, marks=PRICE_OR_BLANK, opened=OR_BLANK,
    closed=OR_BLANK, contract=CONTRACT,
)


def _funding_from_history(
    side: Any, qty: Any, times: Any, rates: Any, marks: Any, opened: Any = None,
    closed: Any = None, contract: Any = "linear",
) -> tuple[RowResults, bool]:
    """Total funding of a position over the events with ``opened ≤ time < closed``, each at
    its own rate and mark: linear ``Σ −s·qty·mark·rate`` (quote currency), inverse
    ``Σ −s·(qty/mark)·rate`` (coin). Positive: received; negative: paid.

    The events are the history's own rows, so the interval may be 8 h, 4 h, 1 h or change
    mid-position. The answer is blank (never 0) when the history cannot give it: a blank rate
    or mark inside the window, a missing event (a spacing more than 1.5× both its
    neighbours', or than its one neighbour's at either end), or a window that starts or ends
    beyond the history by more than one interval. ``times``, ``opened`` and ``closed`` are
    datetimes (an aware one counts at UTC) or spreadsheet date numbers (days); a blank
    ``opened``/``closed`` means from the first/through the last event.

    Ranges: one column per position (``times``, ``rates``, ``marks`` the same shape; rows
    with a blank time are padding); a block gives one total per column with ``side``,
    ``qty``, ``opened``, ``closed``, ``contract`` one per column or one for all.

    Long 2 BTC, three 8-hour events at 0.01 % with marks 50,000, 51,000, 49,000:
    ``−2·0.0001·(50,000 + 51,000 + 49,000) = −30``.

    docs/FORMULAS.md, section "FUNDING_FROM_HISTORY", states it with its sources.

    >>> round(funding_from_history("long", 2, [0, 1/3, 2/3], [1e-4] * 3, [50e3, 51e3, 49e3]), 9)
    -30.0
    """
    r = _Ranges("funding_from_history", funding_from_history.rules,
                {"times": _times(times), "rates": rates, "marks": marks},
                {"side": side, "qty": qty, "opened": _times(opened), "closed": _times(closed),
                 "contract": contract})
    t = r.cells("times")
    pad = np.isnan(t)
    # a blank rate or mark is "no value" (the total turns blank), not an input error
    rate = r.cells("rates", pad)
    mark = r.cells("marks", pad)
    s = r.per_column("side")
    q = r.per_column("qty")
    o = r.per_column("opened")
    c = r.per_column("closed")
    k = r.per_column("contract")
    for j in range(r.columns):
        tj = t[~pad[:, j], j]
        if r.errors[j] is None and np.any(np.diff(tj) <= 0):
            r.errors[j] = "times must increase down the column"
    with np.errstate(all="ignore"):
        values, failures = _funding_from_history_kernel(s, q, t, rate, mark, o, c, k)
    return r.result(values, failures)


funding_from_history = _funding_from_history_ranged(_funding_from_history)


PLANNING_FORMULAS: dict[str, Any] = {
    "AVG_ENTRY": avg_entry,
    "LIQ_AFTER_ADD": liq_after_add,
    "MAX_OPEN": max_open,
    "HEDGE_LIQ_PRICE": hedge_liq_price,
    "ACCOUNT_SHOCK": account_shock,
    "FUNDING_FROM_HISTORY": funding_from_history,
    "FUNDING_APR": funding_apr,
    "LIQ_PROBABILITY": liq_probability,
    "SAFE_LEVERAGE": safe_leverage,
}
"""Excel name → Python function of the planning formulas, in the catalogue's order (they
follow the position formulas, ``leverage.core.POSITION_FORMULAS``, in
:data:`leverage.catalogue.CATALOGUE`)."""

# cross_liq_price is the one-leg case of hedge_liq_price (tests check they agree)
__all__ = [*(f.__name__ for f in PLANNING_FORMULAS.values()), "PLANNING_FORMULAS", "Failure",
           "cross_liq_price"]
