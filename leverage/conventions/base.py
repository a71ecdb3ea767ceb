"""What every exchange convention provides, and the maths several of them share.

A convention is one exchange's published rule for the isolated liquidation price. Each lives
in its own module of this package and is listed once in :data:`leverage.conventions.CONVENTIONS`;
see docs/FORMULAS.md, section "Exchange conventions".
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .._args import Fail, percent_hints
from ..tiers import TierTable, clip_to_band, tier_of_root


@dataclass(frozen=True)
class Isolated:
    """An isolated position's checked inputs, as a convention receives them: ``side`` +/-1,
    ``contract`` 0 linear / 1 inverse, ``tiers`` a :class:`TierTable` or ``None`` (then
    ``mmr`` and ``maint_amount`` apply), numbers as float arrays that broadcast together."""

    side: Any
    qty: Any
    entry_price: Any
    mmr: Any = 0.0
    maint_amount: Any = 0.0
    contract: Any = 0.0
    tiers: TierTable | None = None
    fee_rate: Any = 0.0


class Convention:
    """One exchange's liquidation rule, with the page it comes from.

    A subclass sets the class attributes and implements the two methods over checked arrays
    (:class:`Isolated`). Rows with no answer are ``nan``; :attr:`linear_only` conventions
    reject inverse rows before they are called.
    """

    name: ClassVar[str]
    title: ClassVar[str]  # the source's title
    source: ClassVar[str]  # the source's URL
    linear_only: ClassVar[bool] = False  # the published formula is for USDT-margined positions
    fee_counts: ClassVar[bool] = False  # the taker fee (``fee_rate``) counts as maintenance
    # the ccxt exchange ids whose positions follow this rule (and that ``leverage exchange``
    # imports from): the one place an exchange's ids are written
    ccxt_ids: ClassVar[tuple[str, ...]] = ()
    # what ``leverage.liq_price``'s docstring says of it, after ``exchange="name"``: the
    # contracts it covers, in parentheses, and its form (each subclass writes its own)
    rule: ClassVar[str]

    def liq_price(self, position: Isolated, margin: Any) -> np.ndarray:
        """The isolated liquidation price for ``margin`` posted; nan where there is none."""
        raise NotImplementedError

    def margin_for_liq_price(self, position: Isolated, target_liq_price: Any) -> np.ndarray:
        """The margin whose liquidation price is ``target_liq_price`` (may be negative: the
        caller reports a target closer to entry than zero margin allows)."""
        raise NotImplementedError

    def maint_at_entry(self, position: Isolated) -> Any:
        """Maintenance margin at the entry notional as this convention counts it (the taker
        fee excluded; a convention that counts it overrides this)."""
        return maint_at_notional(position, entry_notional(position), fee_counts=False)

    def rates_counted(self, position: Isolated) -> dict[str, Any]:
        """The typed rates this convention's price depends on, by argument name (none with
        tiers: the table's rates are the exchange's, not typed)."""
        return {} if position.tiers is not None else {"mmr": position.mmr}

    def __repr__(self) -> str:
        return f"<{self.name} convention: {self.title}>"


def by_contract(
    inverse: np.ndarray, linear_fn: Callable[[], Any], inverse_fn: Callable[[], Any]
) -> Any:
    """Evaluate only the branch(es) the rows need: most columns are all-linear."""
    is_inv = inverse > 0
    if is_inv.__class__ is np.bool_ or is_inv.__class__ is bool:  # one row: no reductions
        return inverse_fn() if is_inv else linear_fn()
    if not is_inv.any():
        return linear_fn()
    if is_inv.all():
        return inverse_fn()
    return np.where(is_inv, inverse_fn(), linear_fn())


def product(*factors: Any) -> Any:
    """``f1 × f2 × ...`` without a spurious overflow: where the plain product is not finite, it
    is redone on mantissas and exponents, so ``1e308 × 1e-4 × 21`` is 2.1e305 whatever the
    order, and only a product truly beyond float range comes out ``inf``. One sum decides the
    common all-finite case.

    >>> float(product(21.0, 1e308, 1e-4))
    2.1e+305
    """
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        out = functools.reduce(np.multiply, factors)
        if math.isfinite(np.sum(out)):
            return out
    mantissa, exponent = functools.reduce(
        lambda acc, f: (acc[0] * f[0], acc[1] + f[1]), (np.frexp(f) for f in factors)
    )
    with np.errstate(over="ignore"):
        return np.where(np.isfinite(out), out, np.ldexp(mantissa, exponent))


def price_or_none(numerator: Any, denominator: Any) -> np.ndarray | float:
    """``numerator / denominator`` as a liquidation price: a positive price, or nan (there is
    none) where it is zero or negative or the denominator is 0 (the condition never holds).
    ``inf``, and a ``nan`` left by an intermediate overflow, come out as ``inf``: the formula
    wrapper reports that as too large, never as a price that does not exist. One row (a
    ``float`` numerator and denominator) gives a ``float``, a column an array."""
    price = numerator / denominator
    if isinstance(price, float):  # one row (the scalar path; numpy float64 too): no arrays
        if 0 < price < math.inf:
            return price
        if math.isnan(price):
            return math.inf
        return price if price > 0 and denominator != 0 else math.nan
    price = np.asarray(price)
    if np.all(price > 0) and np.all(np.isfinite(price)):
        return price
    price = np.where(np.isnan(price), np.inf, price)
    return np.where((price > 0) & (np.asarray(denominator) != 0), price, np.nan)



BELOW_MAINTENANCE = (
    "the account is already below maintenance margin at every price: the margin backing the "
    "position ({shared}) cannot cover its losses and maintenance at any price"
)


def below_maintenance_everywhere(p: Isolated, shared: Any) -> np.ndarray:
    """Rows whose equity is below maintenance margin at every price ``P > 0``: no price is
    safe, so "no liquidation price" would be the wrong answer.

    With ``shared`` the margin backing the position (isolated margin, or cross
    ``wallet_balance + other_upnl − other_maint``), ``f(P) = shared + UPNL(P) − MM(P)`` is
    monotone in ``P`` and bounded on one end only: linear short as ``P → 0`` (``f → shared +
    amount₀ + qty·entry``), inverse long as ``P → ∞`` (``f → shared + amount₀ + qty/entry``),
    where ``amount₀`` is the maintenance amount at notional 0 (tier 1's with tiers). Linear
    longs and inverse shorts rise without bound at their other end: never.
    """
    amount0 = p.maint_amount if p.tiers is None else p.tiers.maint_amounts[0]
    return by_contract(
        p.contract,
        lambda: (p.side < 0) & (shared + amount0 + p.qty * p.entry_price <= 0),
        lambda: (p.side > 0) & (shared + amount0 + p.qty / p.entry_price <= 0),
    )


def fail_below_maintenance(fail: Fail, p: Isolated, shared: Any) -> None:
    """Mark the rows :func:`below_maintenance_everywhere` finds as a PositionError."""
    fail(below_maintenance_everywhere(p, shared), BELOW_MAINTENANCE, shared=shared)


def entry_notional(p: Isolated) -> Any:
    """The position's notional at its entry price, in margin currency."""
    return by_contract(p.contract, lambda: p.qty * p.entry_price, lambda: p.qty / p.entry_price)


def maint_at_notional(p: Isolated, notional: Any, fee_counts: bool) -> Any:
    """``MM = notional × mmr − maint_amount`` (plus ``fee_rate × notional`` where the
    convention counts the fee), the tier of ``notional`` with tiers."""
    mmr, amount = p.mmr, p.maint_amount
    if p.tiers is not None:
        mmr, amount, _ = p.tiers.lookup(notional)
    if fee_counts:
        mmr = mmr + p.fee_rate
    return notional * mmr - amount


LIQUIDATED_AT_ONCE = (
    "the position would be liquidated at once: margin {margin} is not above the maintenance "
    "margin at entry, {maint}, so the liquidation price {liq} is at or {beyond} the entry "
    "{entry}"
)
"""The message of an isolated position whose liquidation price is at or beyond its entry on
the losing side (``beyond`` is ``above`` for a long, ``below`` for a short)."""


def beyond_entry(side: Any, entry_price: Any, liq: Any) -> Any:
    """Rows whose liquidation price is at or beyond entry on the losing side (long: LP >=
    entry; short: LP <= entry); ``False`` where there is no liquidation price (nan)."""
    return side * (liq - entry_price) >= 0


def fail_liquidated_at_once(
    fail: Fail, convention: Convention, p: Isolated, margin: Any, liq: Any
) -> None:
    """Mark as a PositionError the isolated rows whose liquidation price ``liq`` is at or
    beyond entry on the losing side: margin at or below maintenance at entry, so the
    position would be liquidated the moment it opened. Each message names margin and the
    maintenance margin at entry, plus the percent hint of a rate typed like a percent."""
    beyond = beyond_entry(p.side, p.entry_price, liq)
    one_row = beyond.__class__ is bool or beyond.__class__ is np.bool_
    if not (beyond if one_row else beyond.any()):  # one row: no reduction
        return
    notes = lambda: percent_hints(**convention.rates_counted(p))  # noqa: E731
    for word, on_side in (("above", p.side > 0), ("below", p.side < 0)):
        fail(
            beyond & on_side, LIQUIDATED_AT_ONCE.replace("{beyond}", word), notes=notes,
            margin=margin, maint=lambda: convention.maint_at_entry(p), liq=liq,
            entry=p.entry_price,
        )


def _per_qty(cash: Any, value: Any, qty: Any, price: Any) -> Any:
    """``(cash − value) / qty`` with ``value = s·qty·price``: subtracted first, so a margin that
    exactly covers the notional gives exactly 0 (no liquidation price, not a rounding residue);
    where that overflows, divided first (``cash / qty − price``), so a huge qty still works."""
    out = (cash - value) / qty
    if isinstance(out, float):  # one row (numpy float64 too)
        return out if math.isfinite(out) else cash / qty - price
    if np.all(np.isfinite(out)):
        return out
    return np.where(np.isfinite(out), out, cash / qty - price)


def liq_at_exit_notional(p: Isolated, margin: Any) -> np.ndarray:
    """Price where ``margin + UPNL(P) = MM(P) (+ fee_rate × notional(P))``, or nan if none:
    maintenance margin evaluated at the liquidation price's own notional.

    Linear: ``LP = (margin + maint_amount − s·qty·entry) / (qty·(mmr + fee_rate − s))``.
    Inverse: ``LP = qty·(1 + s·(mmr + fee_rate)) / (qty/entry + s·(margin + maint_amount))``.
    With ``tiers``, the rates are those of the tier that holds the notional at the liquidation
    price (:func:`leverage.tiers.tier_of_root`: in the notional ``n`` at LP the condition reads
    ``n + sign·MM(n) = c`` with ``sign = −s, c = qty·entry − s·margin`` linear and
    ``sign = s, c = qty/entry + s·margin`` inverse).
    """

    side, qty, entry_price, tiers, fee_rate = p.side, p.qty, p.entry_price, p.tiers, p.fee_rate

    def rates(c: Any, sign: Any) -> tuple[Any, Any, Any]:
        if tiers is None:
            return p.mmr, p.maint_amount, None
        k = tier_of_root(c, sign, tiers, fee_rate)
        return tiers.mmrs[k], tiers.maint_amounts[k], k

    # Both forms are divided through by qty, so a huge qty (or margin) does not overflow an
    # intermediate product when the price itself is an ordinary number.
    # with tiers (and only then) k is the tier solved for
    def linear() -> np.ndarray | float:
        rate, amount, k = rates(qty * entry_price - side * margin, -side)
        per_qty = _per_qty(margin + amount, side * qty * entry_price, qty, side * entry_price)
        lp = price_or_none(per_qty, rate + fee_rate - side)
        if tiers is not None and not tiers.continuous:
            lp = clip_to_band(qty * lp, k, tiers) / qty
        return lp

    def inverse() -> np.ndarray | float:
        rate, amount, k = rates(qty / entry_price + side * margin, side)
        lp = price_or_none(
            1.0 + side * (rate + fee_rate), 1.0 / entry_price + side * (margin + amount) / qty
        )
        if tiers is not None and not tiers.continuous:
            lp = qty / clip_to_band(qty / lp, k, tiers)
        return lp

    return by_contract(p.contract, linear, inverse)


def margin_at_exit_notional(p: Isolated, target_liq_price: Any) -> np.ndarray:
    """The inverse of :func:`liq_at_exit_notional`: the margin whose liquidation price is
    ``target_liq_price`` (with ``tiers``, the tier of the notional at the target).

    Linear: ``margin = s·(qty·entry − key(qty·P, −s))``; inverse:
    ``margin = s·(key(qty/P, s) − qty/entry)``, where ``key(n, sign) = n + sign·(MM(n) +
    fee_rate·n)`` is the left side of the liquidation condition in the notional ``n``.
    """

    side, qty, target = p.side, p.qty, target_liq_price

    def rates(n: Any) -> tuple[Any, Any]:
        if p.tiers is None:
            return p.mmr + p.fee_rate, p.maint_amount
        rate, amount, _ = p.tiers.lookup(n)
        return rate + p.fee_rate, amount

    # key() expanded and qty taken out, so qty × entry and qty × target never overflow
    # on their own when their difference would not
    def linear() -> Any:
        rate, amount = rates(qty * target)
        return qty * (side * (p.entry_price - target) + target * rate) - amount

    def inverse() -> Any:
        rate, amount = rates(qty / target)
        return qty * (side * (1.0 / target - 1.0 / p.entry_price) + rate / target) - amount

    return by_contract(p.contract, linear, inverse)
