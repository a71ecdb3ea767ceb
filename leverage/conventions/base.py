"""What every exchange convention provides, and the maths several of them share.

A convention is one exchange's published rule for the isolated liquidation price. Each lives
in its own module of this package and is listed once in :data:`leverage.conventions.CONVENTIONS`;
see docs/FORMULAS.md, section "Exchange conventions".
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .._args import Fail
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

    def liq_price(self, position: Isolated, margin: Any) -> np.ndarray:
        """The isolated liquidation price for ``margin`` posted; nan where there is none."""
        raise NotImplementedError

    def margin_for_liq_price(self, position: Isolated, target_liq_price: Any) -> np.ndarray:
        """The margin whose liquidation price is ``target_liq_price`` (may be negative: the
        caller reports a target closer to entry than zero margin allows)."""
        raise NotImplementedError

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


def none_unless_positive(price: np.ndarray) -> np.ndarray:
    """A liquidation price must be a positive, finite price; otherwise there is none."""
    if price.__class__ is float:  # one row (the scalar path)
        return price if 0 < price < math.inf else math.nan
    bad = ~(price > 0) | (price == np.inf)
    if bad.__class__ is np.bool_:  # one row: no reductions
        return _NAN if bad else price
    if bad.any():
        price = np.where(bad, np.nan, price)
    return price


_NAN = np.float64(np.nan)

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

    def linear() -> np.ndarray:
        rate, amount, k = rates(qty * entry_price - side * margin, -side)
        lp = (margin + amount - side * qty * entry_price) / (qty * (rate + fee_rate - side))
        if k is not None and not tiers.continuous:
            lp = clip_to_band(qty * lp, k, tiers) / qty
        return none_unless_positive(lp)

    def inverse() -> np.ndarray:
        rate, amount, k = rates(qty / entry_price + side * margin, side)
        lp = qty * (1.0 + side * (rate + fee_rate)) / (qty / entry_price + side * (margin + amount))
        if k is not None and not tiers.continuous:
            lp = qty / clip_to_band(qty / lp, k, tiers)
        return none_unless_positive(lp)

    return by_contract(p.contract, linear, inverse)


def margin_at_exit_notional(p: Isolated, target_liq_price: Any) -> np.ndarray:
    """The inverse of :func:`liq_at_exit_notional`: the margin whose liquidation price is
    ``target_liq_price`` (with ``tiers``, the tier of the notional at the target).

    Linear: ``margin = s·(qty·entry − key(qty·P, −s))``; inverse:
    ``margin = s·(key(qty/P, s) − qty/entry)``, where ``key(n, sign) = n + sign·(MM(n) +
    fee_rate·n)`` is the left side of the liquidation condition in the notional ``n``.
    """

    side, qty, target = p.side, p.qty, target_liq_price

    def key(n: Any, sign: Any) -> Any:
        rate, amount = p.mmr, p.maint_amount
        if p.tiers is not None:
            rate, amount, _ = p.tiers.lookup(n)
        return n + sign * (n * (rate + p.fee_rate) - amount)

    return by_contract(
        p.contract,
        lambda: side * (qty * p.entry_price - key(qty * target, -side)),
        lambda: side * (key(qty / target, side) - qty / p.entry_price),
    )
