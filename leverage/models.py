"""What a trader holds: positions, an account, tier tables and the trader's own rules.

The models validate on construction (a :class:`~leverage.InputError` naming the field) and
compute their derived figures by calling the formulas in :mod:`leverage.core`, never by
re-deriving them.
"""

from __future__ import annotations

import math
from typing import Any, Literal

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
from .tiers import TierTable, resolve_tiers

MarginMode = Literal["isolated", "cross"]


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


class Position(_Model):
    """An open position.

    ``margin`` is the isolated margin posted now (initial plus added minus withdrawn). For a
    cross position it is ignored by the liquidation price, which needs the :class:`Account`.
    """

    side: str
    qty: float
    entry_price: float
    mark_price: float
    margin: float
    contract: str = "linear"
    margin_mode: MarginMode = "isolated"
    mmr: float = core.DEFAULT_MMR
    maint_amount: float = 0.0
    tiers: TierTable | None = None
    symbol: str = ""

    _side = field_validator("side", mode="before")(lambda v: _side_word(v))
    _contract = field_validator("contract", mode="before")(lambda v: _contract_word(v))
    _qty = checked(core.QTY, "qty")
    _prices = checked(core.PRICE, "entry_price", "mark_price")
    _margin = checked(core.MARGIN, "margin")
    _mmr = checked(core.MMR, "mmr")
    _maint_amount = checked(core.MAINT_AMOUNT, "maint_amount")

    @field_validator("tiers", mode="before")
    @classmethod
    def _tiers(cls, v: Any) -> Any:
        return resolve_tiers("tiers", v)

    @property
    def notional(self) -> float:
        """Notional at the mark price (margin currency)."""
        return core.notional(self.qty, self.mark_price, self.contract)

    @property
    def unrealized_pnl(self) -> float:
        return core.unrealized_pnl(
            self.side, self.qty, self.entry_price, self.mark_price, self.contract
        )

    @property
    def equity(self) -> float:
        return self.margin + self.unrealized_pnl

    @property
    def margin_leverage(self) -> float:
        """``notional / margin``: leverage counted on the posted margin only."""
        return core.effective_leverage(self.notional, self.margin)

    @property
    def effective_leverage(self) -> float:
        """``notional / (margin + unrealized_pnl)``: equity-based leverage."""
        return core.effective_leverage(self.notional, self.margin, self.unrealized_pnl)

    @property
    def maint_margin(self) -> float:
        return core.maint_margin(self.notional, self.mmr, self.maint_amount, self.tiers)

    @property
    def liq_price(self) -> float:
        """Isolated liquidation price (``nan`` when none); Binance convention."""
        return core.liq_price(
            self.side, self.qty, self.entry_price, self.margin, self.mmr, self.maint_amount,
            self.contract, self.tiers,
        )

    @property
    def bankruptcy_price(self) -> float:
        return core.bankruptcy_price(
            self.side, self.qty, self.entry_price, self.margin, self.contract
        )

    @property
    def liq_distance(self) -> float:
        return core.liq_distance(self.side, self.mark_price, self.liq_price)

    def margin_to_target(self, target_leverage: float, equity_based: bool = True) -> float:
        """Signed margin change to reach ``target_leverage`` (equity-based by default)."""
        pnl = self.unrealized_pnl if equity_based else 0.0
        return core.margin_to_target(self.notional, self.margin, target_leverage, pnl)

    def with_margin(self, margin: float) -> Position:
        """The same position after margin was added or withdrawn."""
        return self.model_copy(update={"margin": margin})


class Account(_Model):
    """A futures account: the cross wallet and the positions in it."""

    wallet_balance: float
    positions: tuple[Position, ...] = ()

    _wallet_balance = checked(core.MARGIN, "wallet_balance")

    def cross_positions(self) -> list[Position]:
        return [p for p in self.positions if p.margin_mode == "cross"]

    def cross_liq_price(self, index: int) -> float:
        """Liquidation price of ``positions[index]`` (a cross position), the other cross
        positions held at their current PnL and maintenance margin."""
        p = self.positions[index]
        if p.margin_mode != "cross":
            raise InputError(f"positions[{index}] must be a cross position, got isolated")
        others = [
            q for i, q in enumerate(self.positions) if q.margin_mode == "cross" and i != index
        ]
        other_upnl = math.fsum(q.unrealized_pnl for q in others)
        other_maint = math.fsum(q.maint_margin for q in others)
        return core.cross_liq_price(
            p.side, p.qty, p.entry_price, self.wallet_balance, other_upnl, other_maint,
            p.mmr, p.maint_amount, p.contract, p.tiers,
        )

    def liq_prices(self) -> list[float]:
        """Each position's liquidation price, isolated or cross as the position is held."""
        return [
            self.cross_liq_price(i) if p.margin_mode == "cross" else p.liq_price
            for i, p in enumerate(self.positions)
        ]


class AdjustmentRule(_Model):
    """The trader's pre-set rules for adjusting margin, written before opening.

    Every threshold is optional (``None`` = no such rule). PnL thresholds are fractions of
    the position's initial margin: ``add_only_below_pnl=-0.2`` means "add margin only once the
    open loss is 20 % of the initial margin or worse".
    """

    max_leverage: float | None = None
    max_margin_per_event: float | None = None
    max_adds_while_losing: int | None = Field(default=None, ge=0)
    add_only_below_pnl: float | None = None
    withdraw_only_above_pnl: float | None = None
    close_if_loss_beyond: float | None = None
    min_liq_distance: float | None = None
    add_within_buffer: float | None = None
    max_liq_probability: float | None = None
    volatility: float | None = None
    horizon_days: float | None = None

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
