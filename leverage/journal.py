"""Replay a trading journal: the state of each position after every event, and its review.

Positions (one row each): ``position_id, symbol, side, contract, margin_currency, mmr,
maint_amount, stop_price``. A blank ``mmr`` on a position whose ``symbol`` has a tier table
(:func:`with_symbol_tier`) follows the tier of its notional at entry after each event; a typed
one is flagged in ``warnings`` where it is more than 2x off that tier's.

Every amount of a position (margin, PnL, fees, funding) is in its
margin currency: blank means ``quote`` (USDT for BTCUSDT) for linear and ``coin`` (BTC for
BTCUSD) for inverse. ``stop_price`` (optional) is the planned stop of the R multiple.

Events (one row each): ``date`` (required), ``position_id``, ``event`` and

=================  =====================================================================
event              fields used
=================  =====================================================================
``open``           ``price`` = entry price, ``qty`` = size (> 0), ``amount`` = initial margin
``increase``       ``qty`` added at ``price``; ``amount`` = the margin that comes with it (blank:
                   the added notional ÷ the opening leverage); new entry as ``AVG_ENTRY``
``add_margin``     ``amount`` > 0 added; ``price`` = mark at the time
``withdraw_margin`` ``amount`` > 0 withdrawn (at most the margin posted); ``price`` = mark
``partial_close``  ``qty`` closed (less than open), ``price`` = exit; ``amount`` = margin
                   released (blank: the closed share of the margin, as exchanges release it)
``close``          ``price`` = exit; all qty closed and all margin released
``funding``        ``amount`` = cash flow (− paid, + received), paid from or into the isolated
                   margin; ``price`` = mark (blank: last)
=================  =====================================================================

plus ``fee`` (>= 0, blank 0) on any event. Each position's events apply in date order, ties
in row order; a row dated earlier than a row above it of the same position is applied in date
order and flagged in ``warnings``.

After each event the journal shows the position's figures at that event's price: open
qty, margin committed, unrealized PnL, equity, leverage both margin-based
(``notional / margin``) and equity-based (``notional / (margin + upnl)``), liquidation price
and distance, realized PnL, funding and fees so far, ``net_pnl = realized + funding − fees``,
``r_multiple = net_pnl / initial risk`` (the PnL of the opened qty at the stop) and the
trader's rule breaks. Funding is paid from (or into) the isolated margin, as the exchanges book
it, and is also summed on its own line; fees are tracked on their own line.

Liquidation is a state: an event (other than ``open``) whose price (blank: the last mark) is at
or beyond the liquidation price the position had before it (long: ``price <= liq``; short:
``price >= liq``) liquidates the position at that event instead of applying: its margin is
lost (realized PnL falls by the margin committed), its fee is booked, and every later event of
the position is refused. A funding payment that leaves the liquidation price at or beyond the
mark liquidates it too. A ``withdraw_margin`` or ``increase`` that would put the liquidation
price at or beyond its own price is refused, as the exchange refuses it.

A row that cannot be applied gets a message in ``status`` naming the cause (unknown
position, no date, dated before the open, its open could not be applied, margin withdrawn
beyond what is posted, ...) and leaves the position unchanged; the rows after it still
compute. :func:`summary` reviews the replay: per position and per margin currency.
"""

from __future__ import annotations

import contextlib
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from . import core
from ._args import Kind, Number, check_columns, fmt
from .conventions import CONVENTIONS
from .conventions.base import Isolated
from .errors import InputError, Problem
from .layout import EVENT_TYPES, JOURNAL_EVENTS, JOURNAL_POSITIONS, JOURNAL_SUMMARY, SUMMARY_TOTALS
from .models import AdjustmentRule, _contract_word, _Model, _side_word, checked
from .planning import avg_entry, liq_probability
from .rules import SEPARATOR
from .tiers import TierTable, is_blank, override_note, symbol_table

_JOURNAL_CONVENTION = CONVENTIONS["binance"]  # the journal's liquidation price: core.liq_price's

# The sheets' column keys live in leverage.layout; the replay reads and writes these.
POSITION_COLUMNS = tuple(JOURNAL_POSITIONS.keys())
"""Columns of the positions sheet, in order."""

INPUT_COLUMNS = tuple(JOURNAL_EVENTS.keys("input"))
"""Columns the trader types on the events sheet, in order."""

OUTPUT_COLUMNS = tuple(JOURNAL_EVENTS.keys("computed"))
"""Computed columns, in the order the journal sheet shows them."""

SUMMARY_COLUMNS = tuple(JOURNAL_SUMMARY.keys())
"""Per-position rows of :func:`summary`, in the order the Summary sheet shows them."""

TOTALS_COLUMNS = tuple(SUMMARY_TOTALS.keys())
"""Per-currency totals of :func:`summary`, in the order the Summary sheet shows them."""

# Why an event row could not be applied: ``JournalResult.problems[i].reason``.
UNKNOWN_POSITION = "unknown_position"  # position_id names no row of the positions sheet
UNKNOWN_EVENT = "unknown_event"  # event is not one of EVENT_TYPES
INVALID_INPUT = "invalid_input"  # a field breaks its rule (Problem.argument names it)
ALREADY_OPEN = "already_open"  # a second open event for one position
NO_OPEN = "no_open"  # the position has no open event at all
BEFORE_OPEN = "before_open"  # an event placed before the position's open event
OPEN_FAILED = "open_failed"  # an event after an open row that could not be applied
AFTER_CLOSE = "after_close"  # an event after the position was closed
BEYOND_MARGIN = "beyond_margin"  # more margin withdrawn or released than is posted
CLOSE_TOO_LARGE = "close_too_large"  # a partial close of all the open qty or more
BANKRUPT = "bankrupt"  # equity <= 0 after the event: no leverage
LIQUIDATED_AT_ONCE = "liquidated_at_once"  # the core gives no liquidation price: margin is
# below maintenance at entry (its message says so, with the percent hint)
LIQUIDATED = "liquidated"  # the event's price reached the liquidation price: applied, as a
# liquidation (the row's status says so; it is not a refusal)
AFTER_LIQUIDATION = "after_liquidation"  # an event after the position was liquidated
BEYOND_LIQUIDATION = "beyond_liquidation"  # a withdrawal or increase that would put the
# liquidation price at or beyond its own price: the exchange refuses it

DATE_REQUIRED = "date is required: type when the event happened"
SPREADSHEET_EPOCH = datetime(1899, 12, 30)  # day 0 of spreadsheet serial dates (1900 system)
LAST_SERIAL = 2_958_466  # 10000-01-01: past the last day a spreadsheet shows


def read_date(value: Any, name: str = "date") -> datetime:
    """When an event happened, from a cell: a ``datetime``/``date``, a spreadsheet serial
    number (days since 1899-12-30, rounded to the second) or ISO text (``2026-01-03``,
    ``2026-01-03 09:00``). Time zones are converted to UTC and dropped, so every date compares.
    A blank is refused (``DATE_REQUIRED``), as is anything else.

    >>> read_date("2026-01-03 09:00"), read_date(46025.375)
    (datetime.datetime(2026, 1, 3, 9, 0), datetime.datetime(2026, 1, 3, 9, 0))
    >>> read_date("yesterday")
    Traceback (most recent call last):
    leverage.errors.InputError: date must be a date, got 'yesterday'
    """
    # a date in its own terms whose UTC time, or rounding to the second, leaves the calendar
    # (9999-12-31 23:59:59 at UTC−1) is this cell's error, never an OverflowError
    beyond = f"{name} must be a date from 0001-01-01 to 9999-12-31 (UTC), got {fmt(value)}"
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            try:
                value = value.astimezone(UTC).replace(tzinfo=None)
            except OverflowError:
                raise InputError(beyond) from None
        return value
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InputError(DATE_REQUIRED if name == "date" else f"{name} is required")
    if isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_):
        serial = float(value)
        if math.isnan(serial):
            raise InputError(DATE_REQUIRED if name == "date" else f"{name} is required")
        if 1 <= serial < LAST_SERIAL:
            try:
                return SPREADSHEET_EPOCH + timedelta(seconds=round(serial * 86_400))
            except OverflowError:
                raise InputError(beyond) from None
    elif isinstance(value, str):
        when: datetime | None = None
        with contextlib.suppress(ValueError):
            when = datetime.fromisoformat(value.strip())
        if when is not None:
            try:
                return read_date(when, name)
            except InputError:
                raise InputError(beyond) from None
    raise InputError(f"{name} must be a date, got {fmt(value)}")


def date_serial(when: datetime) -> float:
    """``when`` as a spreadsheet serial number (days since 1899-12-30), what a date cell holds:
    the inverse of :func:`read_date` for the sync to write dates (e.g. the Summary's).

    >>> date_serial(datetime(2026, 1, 3, 9, 0))
    46025.375
    """
    return (when - SPREADSHEET_EPOCH) / timedelta(days=1)


def show_date(when: datetime) -> str:
    """A date as the messages show it: ``2026-01-03``, with the time when there is one.

    >>> show_date(datetime(2026, 1, 3)), show_date(datetime(2026, 1, 3, 9, 5))
    ('2026-01-03', '2026-01-03 09:05')
    """
    if when.second or when.microsecond:
        return when.strftime("%Y-%m-%d %H:%M:%S")
    if when.hour or when.minute:
        return when.strftime("%Y-%m-%d %H:%M")
    return when.strftime("%Y-%m-%d")


def out_of_order_message(when: datetime, later: datetime) -> str:
    """The ``warnings`` flag of a row dated earlier than a row above it of its position."""
    return (f"dated {show_date(when)}, earlier than a row above it dated {show_date(later)}: "
            "applied in date order")


def liquidated_message(price: float, liq: float, margin: float) -> str:
    """The ``status`` of the event that liquidated its position."""
    return (f"liquidated at {fmt(price)}: at or beyond the liquidation price {fmt(liq)}; "
            f"margin {fmt(margin)} lost")


def after_liquidation_message(when: datetime, price: float) -> str:
    """The ``status`` of an event after its position's liquidation."""
    return (f"the position was liquidated on {show_date(when)} at {fmt(price)}: no event "
            "after it applies")


def beyond_liquidation_message(kind: str, liq: float, price: float) -> str:
    """The ``status`` of a withdrawal or increase the exchange would refuse."""
    return (f"{kind} would put the liquidation price ({fmt(liq)}) at or beyond the price "
            f"{fmt(price)}: the exchange refuses it")


class JournalPosition(_Model):
    """A position as the journal's positions sheet describes it.

    ``margin_currency`` labels its amounts (blank: ``quote`` for linear, ``coin`` for
    inverse); ``stop_price`` is the planned stop that sets the R multiple's initial risk.
    """

    position_id: str = Field(min_length=1)
    side: str
    contract: str = "linear"
    mmr: float = core.DEFAULT_MMR
    maint_amount: float = 0.0
    symbol: str = ""
    margin_currency: str = ""
    stop_price: float | None = None
    tiers: TierTable | None = Field(default=None, exclude=True)
    """Set by the replay when ``mmr`` is blank and the Symbol has a tier table: the rate
    then comes from the tier of the position's notional at entry (``leverage.tiers``)."""
    typed_amount: bool = Field(default=False, exclude=True)

    _side = field_validator("side", mode="before")(lambda v: _side_word(v))
    _contract = field_validator("contract", mode="before")(lambda v: _contract_word(v))
    _mmr = checked(core.MMR, "mmr")
    _maint_amount = checked(core.MAINT_AMOUNT, "maint_amount")
    _stop = checked(core.PRICE, "stop_price", optional=True)
    _currency = field_validator("margin_currency", mode="before")(
        lambda v: "" if v is None else str(v).strip())

    @property
    def currency(self) -> str:
        """The currency its margin, PnL and fees are counted in."""
        return self.margin_currency or ("coin" if self.contract == "inverse" else "quote")


def _id(value: Any) -> str:
    """Position ids match as a spreadsheet's MATCH does: case-insensitively (and trimmed)."""
    return str(value or "").strip().casefold()


def with_symbol_tier(position: JournalPosition, mmr: Any, maint_amount: Any) -> JournalPosition:
    """``position`` as its Positions row reads: a blank ``mmr`` (as typed) on a Symbol with a
    tier table (:func:`leverage.tiers.symbol_table`) takes the rate of the tier its notional
    at entry falls in, event by event, and the tier's amount unless ``maint_amount`` is typed;
    otherwise the position as built (a blank rate without a table: the default rate)."""
    if not is_blank(mmr):
        return position
    table = symbol_table(position.symbol)
    if table is None:
        return position
    return position.model_copy(update={"tiers": table, "typed_amount": not is_blank(maint_amount)})


def _specs(
    positions: Sequence[JournalPosition | Mapping[str, Any]],
) -> dict[str, JournalPosition]:
    specs: dict[str, JournalPosition] = {}
    for p in positions:
        if not isinstance(p, JournalPosition):
            p = with_symbol_tier(JournalPosition.build(**dict(p)), p.get("mmr"),
                                 p.get("maint_amount"))
        specs[_id(p.position_id)] = p
    return specs


@dataclass
class _State:
    side: float
    inverse: bool
    mmr: float
    maint_amount: float
    stop: float | None
    qty: float = 0.0
    entry: float = math.nan
    margin: float = 0.0
    initial_margin: float = math.nan
    risk: float = math.nan  # initial risk of the R multiple: none without a stop
    mark: float = math.nan
    realized: float = 0.0
    funding: float = 0.0
    fees: float = 0.0
    adds_while_losing: int = 0
    opened: bool = False
    closed_at: datetime | None = None
    open_leverage: float = math.nan  # notional / margin at the open: the leverage setting
    liquidated_at: tuple[datetime, float] | None = None  # (date, price) of the liquidation
    notice: Problem | None = None  # what the last applied event did besides applying

    liq_memo: tuple[float, float, float, float] = (math.nan, math.nan, math.nan, math.nan)
    # the Symbol's tier table when the position's rate is blank: the rate then follows the
    # notional at entry, event by event (typed_amount: keep the typed maintenance amount)
    tiers: TierTable | None = None
    typed_amount: bool = False

    def rates(self) -> tuple[float, float]:
        """``(mmr, maint_amount)`` now: the typed ones, or the tier of the notional at entry
        (``qty × entry`` linear, ``qty ÷ entry`` inverse) when the rate comes from the
        Symbol."""
        if self.tiers is None or not (self.qty > 0 and self.entry > 0):
            return self.mmr, self.maint_amount
        return self.tier_rate(self.tiers, self.typed_amount)

    def tier_rate(self, table: TierTable, typed_amount: bool = False) -> tuple[float, float]:
        """``(mmr, maint_amount)`` of ``table``'s tier at the notional at entry."""
        notional = self.qty / self.entry if self.inverse else self.qty * self.entry
        mmr, amount = table.rate_at(notional)
        return mmr, self.maint_amount if typed_amount else amount

    def liq(self) -> float:
        """The liquidation price now (nan: there is none); the number even where margin is
        below maintenance at entry, since what matters here is where the mark stands."""
        qty, entry, margin, value = self.liq_memo
        if (qty, entry, margin) != (self.qty, self.entry, self.margin):
            # the state after one event is the state before the next: computed once
            mmr, amount = self.rates()
            position = Isolated(self.side, self.qty, self.entry, mmr, amount,
                                1.0 if self.inverse else 0.0)
            value = float(_JOURNAL_CONVENTION.liq_price(position, self.margin))
            self.liq_memo = (self.qty, self.entry, self.margin, value)
        return value


@dataclass
class JournalResult:
    """Computed columns (``OUTPUT_COLUMNS`` → one value per event row)."""

    columns: dict[str, list[Any]] = field(default_factory=dict)
    problems: list[Problem | None] = field(default_factory=list)
    """Per event row, why it has a ``status`` message (``None``: it has none): test
    ``problems[i].reason`` against the codes above instead of matching the text."""
    dates: list[datetime | None] = field(default_factory=list)
    """Per event row, its date as read (``None``: blank or not a date)."""
    applied: list[bool] = field(default_factory=list)
    """Per event row, whether it changed its position (a refused row did not)."""

    def row(self, i: int) -> dict[str, Any]:
        return {k: v[i] for k, v in self.columns.items()}

    def __len__(self) -> int:
        return len(self.columns.get("status", []))


PRICE = Number(gt=0)  # a price or qty the event needs
OPTIONAL_PRICE = Number(gt=0, default=math.nan)  # blank: there is none (e.g. the last mark)
CASH_FLOW = Number()
FEE = Number(ge=0, default=0.0)


def _number(row: Mapping[str, Any], key: str, rule: Kind) -> float:
    """``row[key]`` read by ``rule``: ``nan`` only for a blank the rule allows (a ``nan``
    default, as OPTIONAL_PRICE); under a rule without one a blank or ``nan`` is an error."""
    v = rule.fast(key, row.get(key))  # a plain good value, without the column machinery
    if v is not None:
        return v
    cols = check_columns(row, **{key: rule})
    if cols.first_error is not None:
        raise _RowError(INVALID_INPUT, cols.first_error, key)
    return float(cols[key])


def _optional(row: Mapping[str, Any], key: str, rule: Kind) -> float | None:
    """``row[key]`` read by ``rule``; ``None`` for a blank the rule allows."""
    v = _number(row, key, rule)
    return None if math.isnan(v) else v


class _RowError(Exception):
    def __init__(self, reason: str, message: str, argument: str | None = None) -> None:
        super().__init__(message)
        self.problem = Problem(reason, message, argument)


def _pnl(st: _State, qty: float, price: float) -> float:
    return core.unrealized_pnl(st.side, qty, st.entry, price, _contract(st))


def _check_within_margin(st: _State, amount: float) -> None:
    if amount > st.margin:
        raise _RowError(
            BEYOND_MARGIN,
            f"amount must be <= the margin posted ({fmt(st.margin)}), got {fmt(amount)}",
            "amount",
        )


def _beyond(side: float, price: float, liq: float) -> bool:
    """Whether ``price`` is at or beyond ``liq`` on the losing side (nan: never)."""
    return price <= liq if side > 0 else price >= liq


def _liquidate(st: _State, when: datetime, price: float, liq: float) -> None:
    """The position is liquidated at ``price``: its isolated margin is lost."""
    st.notice = Problem(LIQUIDATED, liquidated_message(price, liq, st.margin))
    st.realized -= st.margin
    st.qty, st.margin, st.mark = 0.0, 0.0, price
    st.closed_at, st.liquidated_at = when, (when, price)


def _apply(st: _State, kind: str, row: Mapping[str, Any], when: datetime) -> tuple[float, float]:
    """Apply one event to ``st`` (already open, unless ``kind`` is ``open``); returns
    ``(amount, pnl_fraction)`` for the rule check. ``st.notice`` says when the event
    liquidated the position instead."""
    st.notice = None
    if kind == "open":
        if st.opened:
            raise _RowError(ALREADY_OPEN, "position is already open: one open event per position")
        price = _number(row, "price", PRICE)
        qty = _number(row, "qty", PRICE)
        amount = _number(row, "amount", PRICE)
        st.fees += _number(row, "fee", FEE)
        st.qty, st.entry, st.margin, st.initial_margin, st.mark = qty, price, amount, amount, price
        st.open_leverage = float(core.notional(qty, price, _contract(st))) / amount
        _raise_risk(st)
        st.opened = True
        return amount, 0.0
    if st.liquidated_at is not None:
        raise _RowError(AFTER_LIQUIDATION, after_liquidation_message(*st.liquidated_at))
    if st.closed_at is not None:
        raise _RowError(AFTER_CLOSE, f"event {kind!r} comes after the position's close "
                        f"({show_date(st.closed_at)})")
    needs_price = kind != "funding"
    typed_price = _optional(row, "price", PRICE if needs_price else OPTIONAL_PRICE)
    mark = st.mark if typed_price is None else typed_price
    pnl_fraction = _pnl(st, st.qty, mark) / st.initial_margin
    fee = _number(row, "fee", FEE)
    liq = st.liq()
    # margin below maintenance at entry is a typing mistake its rows already show ("liquidated
    # at once"), not a position an exchange held: no liquidation is replayed from it
    watched = not _beyond(st.side, st.entry, liq)
    if watched and _beyond(st.side, mark, liq):
        st.fees += fee
        _liquidate(st, when, mark, liq)
        return 0.0, pnl_fraction
    amount = 0.0
    if kind == "increase":
        added = _number(row, "qty", PRICE)
        typed = _optional(row, "amount", OPTIONAL_PRICE)
        amount = (float(core.notional(added, mark, _contract(st))) / st.open_leverage
                  if typed is None else typed)
        if pnl_fraction < 0:
            st.adds_while_losing += 1
        st.entry = float(avg_entry(st.qty, st.entry, added, mark, _contract(st)))
        st.qty += added
        st.margin += amount
        st.initial_margin += amount
        _raise_risk(st)
    elif kind == "add_margin":
        amount = _number(row, "amount", PRICE)
        if pnl_fraction < 0:
            st.adds_while_losing += 1
        st.margin += amount
    elif kind == "withdraw_margin":
        amount = _number(row, "amount", PRICE)
        _check_within_margin(st, amount)
        st.margin -= amount
    elif kind == "partial_close":
        closed = _number(row, "qty", PRICE)
        if closed >= st.qty:
            raise _RowError(
                CLOSE_TOO_LARGE,
                f"qty must be < the open qty ({fmt(st.qty)}) for a partial close, got "
                f"{fmt(closed)}; use close",
                "qty",
            )
        released = _optional(row, "amount", OPTIONAL_PRICE)
        if released is None:
            released = st.margin * closed / st.qty
        _check_within_margin(st, released)
        st.realized += _pnl(st, closed, mark)
        st.qty -= closed
        st.margin -= released
        amount = released
    elif kind == "close":
        st.realized += _pnl(st, st.qty, mark)
        amount, st.qty, st.margin, st.closed_at = st.margin, 0.0, 0.0, when
    elif kind == "funding":
        amount = _number(row, "amount", CASH_FLOW)
        st.funding += amount
        st.margin += amount  # paid from (or into) the isolated margin, as exchanges book it
    st.fees += fee
    st.mark = mark
    if not watched or kind not in ("increase", "withdraw_margin", "funding"):
        return amount, pnl_fraction
    after = st.liq()
    if kind != "funding" and _beyond(st.side, mark, after):
        raise _RowError(BEYOND_LIQUIDATION, beyond_liquidation_message(kind, after, mark))
    if kind == "funding" and (st.margin <= 0 or _beyond(st.side, mark, after)):
        _liquidate(st, when, mark, after)
    return amount, pnl_fraction


def _contract(st: _State) -> str:
    return "inverse" if st.inverse else "linear"


def _raise_risk(st: _State) -> None:
    """The R multiple's initial risk: what the trader planned to lose, the PnL of the whole
    qty at the stop; an increase raises it (never lowers it)."""
    if st.stop is not None:
        risk = abs(_pnl(st, st.qty, st.stop))
        st.risk = risk if math.isnan(st.risk) else max(st.risk, risk)


def _not_open(
    pid: str, at: tuple[datetime, int], first_open: tuple[datetime, int] | None,
    failed_open: datetime | None,
) -> _RowError:
    """Why an event of a position that is not open cannot be applied: the real cause."""
    if first_open is None:
        return _RowError(NO_OPEN, f"position {pid!r} has no open event: type its open row first")
    opened = show_date(first_open[0])
    if at < first_open:
        if at[0] < first_open[0]:
            return _RowError(BEFORE_OPEN, f"dated {show_date(at[0])}, before the position's "
                             f"open ({opened})")
        return _RowError(BEFORE_OPEN, f"listed above the position's open of the same date "
                         f"({opened}): move it below the open")
    assert failed_open is not None  # the open sorts first and did not apply
    return _RowError(OPEN_FAILED, f"the position's open ({show_date(failed_open)}) could not "
                     "be applied: fix that row first")


def replay(
    positions: Sequence[JournalPosition | Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    rule: AdjustmentRule | None = None,
) -> JournalResult:
    """Replay ``events`` (dicts with ``date, position_id, event, price, qty, amount, fee``)
    over ``positions`` and return the computed columns for every event row.

    Each position's events apply in date order, ties in row order; the result is in row
    order.

    >>> positions = [{"position_id": "B1", "side": "long", "mmr": 0.005,
    ...               "stop_price": 57_000}]
    >>> events = [
    ...     {"date": "2026-01-02", "position_id": "B1", "event": "open", "price": 60_000,
    ...      "qty": 1, "amount": 6_000, "fee": 24},
    ...     {"date": "2026-01-05", "position_id": "B1", "event": "close", "price": 63_000,
    ...      "fee": 25.2},
    ...     {"date": "2026-01-03", "position_id": "B1", "event": "funding", "amount": -6},
    ... ]
    >>> r = replay(positions, events)
    >>> r.columns["net_pnl"], r.columns["r_multiple"][1]
    ([-24.0, 2944.8, -30.0], 0.9816)
    >>> r.columns["warnings"][2]
    'dated 2026-01-03, earlier than a row above it dated 2026-01-05: applied in date order'
    """
    specs = _specs(positions)
    n = len(events)
    cols: dict[str, list[Any]] = {k: [math.nan] * n for k in OUTPUT_COLUMNS}
    for text in ("currency", "rule_breaks", "warnings", "status"):
        cols[text] = [""] * n
    out = JournalResult(cols, [None] * n, [None] * n, [False] * n)
    kinds, rows_of = _place(specs, events, out)
    open_rows: list[int] = []
    states: list[_State] = []
    rule_inputs: list[tuple[int, str, float, float, int]] = []
    for pid, order in rows_of.items():
        _replay_position(specs[pid], order, kinds, events, out, open_rows, states, rule_inputs)
    if open_rows:
        _figures(cols, out.problems, open_rows, states)
    if rule is not None:
        odds = _liq_odds(rule, cols, open_rows, [s.side for s in states])
        for i, kind, amount, pnl_fraction, adds in rule_inputs:
            breaks = rule.breaks(
                kind, amount, pnl_fraction, cols["effective_leverage"][i],
                cols["liq_distance"][i], adds, odds.get(i, math.nan),
            )
            cols["rule_breaks"][i] = SEPARATOR.join(breaks)
    return out


def _place(
    specs: Mapping[str, JournalPosition], events: Sequence[Mapping[str, Any]],
    out: JournalResult,
) -> tuple[list[str], dict[str, list[tuple[datetime, int]]]]:
    """Read each row's date, position and event (refusing the rows that name none), flag the
    rows dated earlier than a row above them of their position; returns each row's event and
    each position's ``(date, row)`` list."""
    cols = out.columns
    kinds = [""] * len(events)
    rows_of: dict[str, list[tuple[datetime, int]]] = {}
    latest: dict[str, datetime] = {}  # position -> latest date of the rows read so far
    for i, row in enumerate(events):
        pid = _id(row.get("position_id"))
        kind = str(row.get("event") or "").strip().lower()
        problem: Problem | None = None
        try:
            when = out.dates[i] = read_date(row.get("date"))
        except InputError as exc:
            problem = Problem(INVALID_INPUT, str(exc), "date")
        else:
            later = latest.get(pid) if pid else None
            if later is None or when > later:
                latest[pid] = when
            elif when < later:
                cols["warnings"][i] = out_of_order_message(when, later)
        spec = specs.get(pid)
        if spec is None:
            shown = str(row.get("position_id") or "").strip()
            problem = Problem(UNKNOWN_POSITION, f"position_id must name a row of the positions "
                              f"sheet, got {shown!r}", "position_id")
        else:
            cols["currency"][i] = spec.currency
            if kind not in EVENT_TYPES:
                problem = Problem(UNKNOWN_EVENT, f"event must be one of "
                                  f"{', '.join(EVENT_TYPES)}, got {kind!r}", "event")
        if problem is not None:
            out.problems[i] = problem
            cols["status"][i] = problem.message
            continue
        kinds[i] = kind
        rows_of.setdefault(pid, []).append((when, i))
    return kinds, rows_of


def _replay_position(
    spec: JournalPosition,
    order: list[tuple[datetime, int]],
    kinds: list[str],
    events: Sequence[Mapping[str, Any]],
    out: JournalResult,
    open_rows: list[int],
    states: list[_State],
    rule_inputs: list[tuple[int, str, float, float, int]],
) -> None:
    """Apply one position's rows in (date, row) order, writing each row's state; the rows
    where it is open (and its state there) go to ``open_rows``/``states`` for the vectorized
    figures, the applied ones to ``rule_inputs``."""
    cols = out.columns
    order.sort()
    st = _State(side=1.0 if spec.side == "long" else -1.0, inverse=spec.contract == "inverse",
                mmr=spec.mmr, maint_amount=spec.maint_amount, stop=spec.stop_price,
                tiers=spec.tiers, typed_amount=spec.typed_amount)
    first_open = next((at for at in order if kinds[at[1]] == "open"), None)
    failed_open: datetime | None = None
    # a typed rate is the trader's override: checked against the Symbol's tier on every row
    # the position is open, at its notional at entry there
    checked_against = symbol_table(spec.symbol) if spec.tiers is None else None
    checked_at: tuple[tuple[float, float], str] = ((math.nan, math.nan), "")
    for at in order:
        when, i = at
        kind = kinds[i]
        try:
            if not st.opened and kind != "open":
                raise _not_open(spec.position_id, at, first_open, failed_open)
            trial = _State(**vars(st))
            amount, pnl_fraction = _apply(trial, kind, events[i], when)
        except _RowError as exc:
            out.problems[i] = exc.problem
            cols["status"][i] = exc.problem.message
            if not st.opened:
                if kind == "open":
                    failed_open = when
                continue  # no position to show
        else:
            st = trial
            out.applied[i] = True
            if st.notice is not None:  # liquidated here: not the event's own action
                out.problems[i] = st.notice
                cols["status"][i] = st.notice.message
                kind = "liquidation"
            rule_inputs.append((i, kind, amount, pnl_fraction, st.adds_while_losing))
        net = st.realized + st.funding - st.fees
        cols["qty_open"][i] = st.qty
        cols["margin"][i] = st.margin
        cols["mark_price"][i] = st.mark
        cols["realized_pnl"][i] = st.realized
        cols["funding"][i] = st.funding
        cols["fees"][i] = st.fees
        cols["net_pnl"][i] = net
        cols["r_multiple"][i] = net / st.risk if st.risk > 0 else math.nan
        if st.qty > 0:
            open_rows.append(i)
            states.append(st)
            if checked_against is not None:
                if checked_at[0] != (st.qty, st.entry):  # the state changed: check again
                    checked_at = ((st.qty, st.entry), override_note(
                        st.mmr, st.tier_rate(checked_against)[0], checked_against.name))
                note = checked_at[1]
                if note:
                    cols["warnings"][i] = "; ".join(w for w in (cols["warnings"][i], note) if w)
        else:
            cols["notional"][i] = 0.0
            cols["unrealized_pnl"][i] = 0.0
            cols["equity"][i] = st.margin


def _liq_odds(
    rule: AdjustmentRule, cols: dict[str, list[Any]], rows: list[int], sides: list[float],
) -> dict[int, float]:
    """Event row → LIQ_PROBABILITY of the open position after the event, at the rule's
    volatility and horizon (none when the probability rule is not set); a position with no
    liquidation price has probability 0."""
    market = rule.liq_probability_inputs()
    if market is None or not rows:
        return {}
    mark = np.array([cols["mark_price"][i] for i in rows])
    liq = np.array([cols["liq_price"][i] for i in rows])
    odds = liq_probability.rows(np.array(sides), mark, liq, *market).values
    return {i: float(odds[j]) for j, i in enumerate(rows)}


def _figures(
    cols: dict[str, list[Any]],
    problems: list[Problem | None],
    rows: list[int],
    states: list[_State],
) -> None:
    """The per-event figures of open positions, one vectorized call per formula."""
    side, qty, entry, margin, mark, inverse, mmr, maint_amount = (
        np.array(a) for a in zip(
            *((s.side, s.qty, s.entry, s.margin, s.mark, 1.0 if s.inverse else 0.0,
               *s.rates()) for s in states), strict=True)
    )
    notional = core.notional(qty, mark, inverse)
    upnl = core.unrealized_pnl(side, qty, entry, mark, inverse)
    margin_lev = core.effective_leverage.rows(notional, margin)
    eff_lev = core.effective_leverage.rows(notional, margin, upnl)
    liq = core.liq_price.rows(side, qty, entry, margin, mmr, maint_amount, inverse)
    dist = core.liq_distance(side, mark, liq.values)
    out = {
        "notional": notional,
        "unrealized_pnl": upnl,
        "equity": margin + upnl,
        "margin_leverage": margin_lev.values,
        "effective_leverage": eff_lev.values,
        "liq_price": liq.values,
        "liq_distance": dist,
    }
    for name, values in out.items():
        col = cols[name]
        for j, i in enumerate(rows):
            col[i] = float(values[j])
    for reason, found in ((BANKRUPT, eff_lev), (LIQUIDATED_AT_ONCE, liq)):
        if found.ok.all():
            continue
        for j, i in enumerate(rows):
            message = found.errors[j]
            if message is not None and not cols["status"][i]:
                cols["status"][i] = message
                problems[i] = Problem(reason, message)


def _liquidated_here(result: JournalResult, i: int) -> bool:
    problem = result.problems[i]
    return result.applied[i] and problem is not None and problem.reason == LIQUIDATED


@dataclass
class JournalSummary:
    """The journal as a trader reviews it: one row per position (``SUMMARY_COLUMNS``) and
    one row of totals per margin currency (``TOTALS_COLUMNS``)."""

    positions: list[dict[str, Any]]
    totals: list[dict[str, Any]]


def _outcome(net: float) -> str:
    return "win" if net > 0 else "loss" if net < 0 else "even"


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def summary(
    positions: Sequence[JournalPosition | Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    result: JournalResult,
) -> JournalSummary:
    """Per-position review and per-currency totals of a replayed journal (``result`` is
    ``replay(positions, events, ...)``).

    Per position (in the positions' order): its ``state`` (``open``/``closed``/``liquidated``;
    blank before an open applied), the dates it ``opened`` and ``closed`` (``datetime``;
    ``None``: not yet), the ``events`` rows naming it, ``net_pnl`` and ``r_multiple`` after its last
    applied event, the ``largest_leverage`` (equity-based) any row shows, ``rule_breaks`` =
    the count of its rows with a rule break, the ``outcome`` (``win``: net PnL > 0,
    ``loss``: < 0, ``even``: 0, ``liquidated``, ``open`` while open) and ``equity_after``:
    the net PnL of the closed positions of its currency summed in close-date order (ties in
    the positions' order) through this one; blank (``nan``) while open.

    Per currency (in order of first appearance), over its closed positions (liquidated ones
    included): ``closed``, ``wins``, ``liquidations``, ``win_rate = wins / closed``,
    ``expectancy`` = mean net PnL,
    ``expectancy_r`` = mean R multiple of those with a stop and ``total_net_pnl``. Amounts
    of different currencies are never added together. A blank answer is ``nan``.

    >>> positions = [
    ...     {"position_id": "A", "side": "long", "margin_currency": "USDT", "stop_price": 90},
    ...     {"position_id": "B", "side": "short", "margin_currency": "USDT"},
    ... ]
    >>> events = [
    ...     {"date": "2026-01-01", "position_id": "A", "event": "open", "price": 100,
    ...      "qty": 2, "amount": 40},
    ...     {"date": "2026-01-02", "position_id": "B", "event": "open", "price": 100,
    ...      "qty": 1, "amount": 20},
    ...     {"date": "2026-01-04", "position_id": "A", "event": "close", "price": 110},
    ...     {"date": "2026-01-03", "position_id": "B", "event": "close", "price": 105,
    ...      "fee": 1},
    ... ]
    >>> s = summary(positions, events, replay(positions, events))
    >>> [(p["position_id"], p["outcome"], p["net_pnl"], p["equity_after"]) for p in s.positions]
    [('A', 'win', 20.0, 14.0), ('B', 'loss', -6.0, -6.0)]
    >>> s.totals[0]["win_rate"], s.totals[0]["expectancy"], s.totals[0]["expectancy_r"]
    (0.5, 7.0, 1.0)
    """
    specs = _specs(positions)
    cols = result.columns
    rows_of: dict[str, list[int]] = {pid: [] for pid in specs}
    for i, row in enumerate(events):
        rows = rows_of.get(_id(row.get("position_id")))
        if rows is not None:
            rows.append(i)
    table: list[dict[str, Any]] = []
    for pid, spec in specs.items():
        rows = rows_of[pid]
        done = sorted((when, i) for i in rows if result.applied[i]
                      and (when := result.dates[i]) is not None)
        kinds = {str(events[i].get("event") or "").strip().lower(): when for when, i in done}
        liquidated = next((when for when, i in done if _liquidated_here(result, i)), None)
        opened, closed = kinds.get("open"), liquidated or kinds.get("close")
        last = done[-1][1] if done else None
        net = cols["net_pnl"][last] if last is not None else math.nan
        leverages = [v for i in rows if math.isfinite(v := cols["effective_leverage"][i])]
        table.append({
            "position_id": spec.position_id,
            "symbol": spec.symbol,
            "currency": spec.currency,
            "side": spec.side,
            "state": "liquidated" if liquidated else "closed" if closed else "open" if opened
            else "",
            "opened": opened,
            "closed": closed,
            "events": len(rows),
            "net_pnl": net,
            "r_multiple": cols["r_multiple"][last] if last is not None else math.nan,
            "largest_leverage": max(leverages, default=math.nan),
            "rule_breaks": sum(1 for i in rows if cols["rule_breaks"][i]),
            "outcome": "liquidated" if liquidated else _outcome(net) if closed
            else "open" if opened else "",
            "equity_after": math.nan,
        })
    groups: dict[str, list[dict[str, Any]]] = {}
    for p in table:
        groups.setdefault(p["currency"].casefold(), []).append(p)
    totals: list[dict[str, Any]] = []
    for group in groups.values():
        finished = sorted((p for p in group if p["closed"]), key=lambda p: p["closed"])
        running = 0.0
        for p in finished:
            running += p["net_pnl"]
            p["equity_after"] = running
        nets = [p["net_pnl"] for p in finished]
        wins = sum(1 for v in nets if v > 0)
        totals.append({
            "currency": group[0]["currency"],
            "closed": len(finished),
            "wins": wins,
            "liquidations": sum(1 for p in finished if p["outcome"] == "liquidated"),
            "win_rate": wins / len(finished) if finished else math.nan,
            "expectancy": _mean(nets),
            "expectancy_r": _mean([r for p in finished if math.isfinite(r := p["r_multiple"])]),
            "total_net_pnl": running,
        })
    return JournalSummary(table, totals)
