"""The trader's own rules (:class:`AdjustmentRule`) and the validation the library's models
share (:func:`checked`, :class:`_Model`).

The models validate on construction (a :class:`~leverage.InputError` naming the field) with
the formulas' own argument rules, never a second copy of them.
"""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from . import core
from ._args import Kind, Number, Rate, check_columns
from .errors import InputError
from .rules import rule_breaks


def _read(name: str, rule: Kind, value: Any) -> float:
    """``value`` read by ``rule`` (the formulas' own rules), or ValueError with its message."""
    cols = check_columns({name: value}, **{name: rule})
    if cols.first_error is not None:
        raise ValueError(cols.first_error)
    return float(cols[name])


def _side_word(value: Any) -> str:
    return "long" if _read("side", core.SIDE, value) > 0 else "short"


def _contract_word(value: Any) -> str:
    return "inverse" if _read("contract", core.CONTRACT, value) > 0 else "linear"


def checked(rule: Kind, *fields: str, optional: bool = False) -> Any:
    """A pydantic validator reading ``fields`` by ``rule``; with ``optional``, a blank or
    ``None`` stays ``None`` (the thing is absent)."""

    def check(value: Any, info: ValidationInfo) -> Any:
        if optional and (value is None or (isinstance(value, str) and not value.strip())):
            return None
        return _read(info.field_name or "value", rule, value)

    return field_validator(*fields, mode="before")(check)


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    @classmethod
    def build(cls, **fields: Any) -> Any:
        """Construct, turning pydantic's report into one InputError that names the field."""
        try:
            return cls(**fields)
        except ValidationError as exc:
            raise InputError(validation_message(exc)) from None


def validation_message(exc: ValidationError) -> str:
    """``field must …, got …`` for the first problem pydantic found."""
    e = exc.errors()[0]
    field = ".".join(str(p) for p in e.get("loc", ())) or "value"
    msg = str(e.get("msg", "")).removeprefix("Value error, ")
    got = e.get("input")
    if msg.startswith(field):
        return msg
    shown = repr(got) if isinstance(got, str) else got
    return f"{field}: {msg.lower()}, got {shown}"


def _rule(meaning: str, **constraints: Any) -> Any:
    """A rule of :class:`AdjustmentRule`: optional (``None``, no such rule), ``meaning`` what
    it flags, in the words of the journal's Rules sheet."""
    return Field(default=None, description=meaning, **constraints)


class AdjustmentRule(_Model):
    """The trader's pre-set rules for adjusting margin, written before opening.

    Every threshold is optional (``None`` = no such rule). PnL thresholds are fractions of
    the position's initial margin: ``add_only_below_pnl=-0.2`` means "add margin only once the
    open loss is 20 % of the initial margin or worse".
    """

    # Each rule's meaning is what the journal's Rules sheet says of it (leverage.layout derives
    # that sheet's rows from these fields, in this order).
    max_leverage: float | None = _rule(
        "Flag any event after which equity-based leverage is above this.")
    max_margin_per_event: float | None = _rule("Flag a margin add larger than this in one event.")
    max_adds_while_losing: int | None = _rule(
        "Flag the add after this many margin adds to a losing position.", ge=0)
    add_only_below_pnl: float | None = _rule(
        "Add margin only once open PnL / initial margin is at or below this (e.g. -20%).")
    withdraw_only_above_pnl: float | None = _rule(
        "Withdraw margin only once open PnL / initial margin is at or above this (e.g. 30%).")
    close_if_loss_beyond: float | None = _rule(
        "Close instead of adding once the loss is this share of initial margin (e.g. 50%).")
    min_liq_distance: float | None = _rule(
        "Flag (and colour red) liquidation closer than this fraction of the price.")
    add_within_buffer: float | None = _rule(
        "Flag a margin add after which liquidation is still closer than this (averaging down).")
    max_liq_probability: float | None = _rule(
        "Flag any event after which the chance of touching liquidation (at the volatility and "
        "horizon below) is above this.")
    volatility: float | None = _rule(
        "Annualised volatility the probability rule assumes (e.g. 60%).")
    horizon_days: float | None = _rule("Horizon of the probability rule, in days (e.g. 7).")

    _positive = checked(Number(gt=0), "max_leverage", "max_margin_per_event", optional=True)
    _close_level = checked(Rate(gt=0), "close_if_loss_beyond", optional=True)
    # fractions (of the initial margin, of the price, a probability): also typed as "20%"
    _pnl_triggers = checked(
        Rate(), "add_only_below_pnl", "withdraw_only_above_pnl", optional=True
    )
    _distance = checked(Rate(ge=0, lt=1), "min_liq_distance", "add_within_buffer",
                        optional=True)
    _probability = checked(Rate(ge=0, le=1), "max_liq_probability", optional=True)
    # the market the probability rule assumes: annualised volatility, horizon in days
    _volatility = checked(Rate(ge=0), "volatility", optional=True)
    _horizon = checked(Number(ge=0), "horizon_days", optional=True)

    def liq_probability_inputs(self) -> tuple[float, float] | None:
        """``(volatility, horizon_days)`` when the probability rule is set and has both."""
        if None in (self.max_liq_probability, self.volatility, self.horizon_days):
            return None
        return float(self.volatility), float(self.horizon_days)  # type: ignore[arg-type]

    # The rules' check lives in leverage.rules (its one home); ``rule.breaks(event, ...)``.
    breaks = rule_breaks
