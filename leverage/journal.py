"""Replay a trading journal: the state of each position after every event.

Events (one row each, in time order):

=================  =====================================================================
event              fields used
=================  =====================================================================
``open``           ``price`` = entry price, ``qty`` = size (> 0), ``amount`` = initial margin
``add_margin``     ``amount`` > 0 added; ``price`` = mark at the time
``withdraw_margin`` ``amount`` > 0 withdrawn (at most the margin posted); ``price`` = mark
``partial_close``  ``qty`` closed (less than open), ``price`` = exit; ``amount`` = margin
                   released (blank: the closed share of the margin, as exchanges release it)
``close``          ``price`` = exit; all qty closed and all margin released
``funding``        ``amount`` = cash flow (− paid, + received); ``price`` = mark (blank: last)
=================  =====================================================================

After each event the journal shows the position's figures at that event's price: open
qty, margin committed, unrealized PnL, equity, leverage both margin-based
(``notional / margin``) and equity-based (``notional / (margin + upnl)``), liquidation price
and distance, realized PnL and funding so far, and the trader's rule breaks. Funding is
tracked on its own line and does not change the isolated margin.

A row that cannot be applied (unknown position, margin withdrawn beyond what is posted,
event before ``open``) gets a message in ``status`` and leaves the position unchanged; the
rows after it still compute.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from . import core
from ._args import Kind, Number, check_columns, fmt
from .decisions import liq_probability
from .errors import Problem
from .models import AdjustmentRule, _contract_word, _Model, _side_word, checked
from .rules import SEPARATOR

EVENT_TYPES = ("open", "add_margin", "withdraw_margin", "partial_close", "close", "funding")

POSITION_COLUMNS = (
    "position_id",
    "symbol",
    "side",
    "contract",
    "margin_currency",
    "mmr",
    "maint_amount",
    "stop_price",
)
"""Columns of the positions sheet, in order."""

INPUT_COLUMNS = ("date", "position_id", "event", "price", "qty", "amount", "fee", "reason")
"""Columns the trader types on the events sheet, in order."""

OUTPUT_COLUMNS = (
    "currency",
    "qty_open",
    "margin",
    "mark_price",
    "notional",
    "unrealized_pnl",
    "equity",
    "margin_leverage",
    "effective_leverage",
    "liq_price",
    "liq_distance",
    "realized_pnl",
    "funding",
    "fees",
    "net_pnl",
    "r_multiple",
    "rule_breaks",
    "warnings",
    "status",
)
"""Computed columns, in the order the journal sheet shows them."""

SUMMARY_COLUMNS = (
    "position_id",
    "symbol",
    "currency",
    "side",
    "state",
    "opened",
    "closed",
    "events",
    "net_pnl",
    "r_multiple",
    "largest_leverage",
    "rule_breaks",
    "outcome",
    "equity_after",
)
"""Per-position rows of :func:`summary`, in the order the Summary sheet shows them."""

TOTALS_COLUMNS = (
    "currency",
    "closed",
    "wins",
    "win_rate",
    "expectancy",
    "expectancy_r",
    "total_net_pnl",
)
"""Per-currency totals of :func:`summary`, in the order the Summary sheet shows them."""

# Why an event row could not be applied: ``JournalResult.problems[i].reason``.
UNKNOWN_POSITION = "unknown_position"  # position_id names no row of the positions sheet
UNKNOWN_EVENT = "unknown_event"  # event is not one of EVENT_TYPES
INVALID_INPUT = "invalid_input"  # a field breaks its rule (Problem.argument names it)
ALREADY_OPEN = "already_open"  # a second open event for one position
BEFORE_OPEN = "before_open"  # an event before the position's open event
AFTER_CLOSE = "after_close"  # an event after the position was closed
BEYOND_MARGIN = "beyond_margin"  # more margin withdrawn or released than is posted
CLOSE_TOO_LARGE = "close_too_large"  # a partial close of all the open qty or more
BANKRUPT = "bankrupt"  # equity <= 0 after the event: no leverage


class JournalPosition(_Model):
    """A position as the journal's positions sheet describes it."""

    position_id: str = Field(min_length=1)
    side: str
    contract: str = "linear"
    mmr: float = core.DEFAULT_MMR
    maint_amount: float = 0.0
    symbol: str = ""

    _side = field_validator("side", mode="before")(lambda v: _side_word(v))
    _contract = field_validator("contract", mode="before")(lambda v: _contract_word(v))
    _mmr = checked(core.MMR, "mmr")
    _maint_amount = checked(core.MAINT_AMOUNT, "maint_amount")


def _id(value: Any) -> str:
    """Position ids match as a spreadsheet's MATCH does: case-insensitively (and trimmed)."""
    return str(value or "").strip().casefold()


@dataclass
class _State:
    side: float
    inverse: bool
    mmr: float
    maint_amount: float
    qty: float = 0.0
    entry: float = math.nan
    margin: float = 0.0
    initial_margin: float = math.nan
    mark: float = math.nan
    realized: float = 0.0
    funding: float = 0.0
    adds_while_losing: int = 0
    opened: bool = False
    closed: bool = False


@dataclass
class JournalResult:
    """Computed columns (``OUTPUT_COLUMNS`` → one value per event row)."""

    columns: dict[str, list[Any]] = field(default_factory=dict)
    problems: list[Problem | None] = field(default_factory=list)
    """Per event row, why it has a ``status`` message (``None``: it has none): test
    ``problems[i].reason`` against the codes above instead of matching the text."""

    def row(self, i: int) -> dict[str, Any]:
        return {k: v[i] for k, v in self.columns.items()}

    def __len__(self) -> int:
        return len(self.columns.get("status", []))


PRICE = Number(gt=0)  # a price or qty the event needs
OPTIONAL_PRICE = Number(gt=0, default=math.nan)  # blank: there is none (e.g. the last mark)
CASH_FLOW = Number()


def _number(row: Mapping[str, Any], key: str, rule: Kind) -> float | None:
    """``row[key]`` read by ``rule``; ``None`` for a blank the rule allows."""
    cols = check_columns(row, **{key: rule})
    if cols.first_error is not None:
        raise _RowError(INVALID_INPUT, cols.first_error, key)
    v = float(cols[key])
    return None if math.isnan(v) else v


class _RowError(Exception):
    def __init__(self, reason: str, message: str, argument: str | None = None) -> None:
        super().__init__(message)
        self.problem = Problem(reason, message, argument)


def _pnl(st: _State, qty: float, price: float) -> float:
    return core.unrealized_pnl(st.side, qty, st.entry, price, "inverse" if st.inverse else "linear")


def _check_within_margin(st: _State, amount: float) -> None:
    if amount > st.margin:
        raise _RowError(
            BEYOND_MARGIN,
            f"amount must be <= the margin posted ({fmt(st.margin)}), got {fmt(amount)}",
            "amount",
        )


def _apply(st: _State, kind: str, row: Mapping[str, Any]) -> tuple[float, float]:
    """Apply one event to ``st``; returns ``(amount, pnl_fraction)`` for the rule check."""
    if kind == "open":
        if st.opened:
            raise _RowError(ALREADY_OPEN, "position is already open: one open event per position")
        price = _number(row, "price", PRICE)
        qty = _number(row, "qty", PRICE)
        amount = _number(row, "amount", PRICE)
        st.qty, st.entry, st.margin, st.initial_margin, st.mark = qty, price, amount, amount, price
        st.opened = True
        return amount, 0.0
    if not st.opened:
        raise _RowError(BEFORE_OPEN, f"event {kind!r} comes before the position's open event")
    if st.closed:
        raise _RowError(AFTER_CLOSE, f"event {kind!r} comes after the position was closed")
    needs_price = kind in ("add_margin", "withdraw_margin", "partial_close", "close")
    price = _number(row, "price", PRICE if needs_price else OPTIONAL_PRICE)
    mark = st.mark if price is None else price
    pnl_fraction = _pnl(st, st.qty, mark) / st.initial_margin
    amount = 0.0
    if kind == "add_margin":
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
        released = _number(row, "amount", OPTIONAL_PRICE)
        if released is None:
            released = st.margin * closed / st.qty
        _check_within_margin(st, released)
        st.realized += _pnl(st, closed, mark)
        st.qty -= closed
        st.margin -= released
        amount = released
    elif kind == "close":
        st.realized += _pnl(st, st.qty, mark)
        amount, st.qty, st.margin, st.closed = st.margin, 0.0, 0.0, True
    elif kind == "funding":
        amount = _number(row, "amount", CASH_FLOW)
        st.funding += amount
    st.mark = mark
    return amount, pnl_fraction


def replay(
    positions: Sequence[JournalPosition | Mapping[str, Any]],
    events: Sequence[Mapping[str, Any]],
    rule: AdjustmentRule | None = None,
) -> JournalResult:
    """Replay ``events`` (dicts with ``position_id, event, price, qty, amount``) over
    ``positions`` and return the computed columns for every event row."""
    specs: dict[str, JournalPosition] = {}
    for p in positions:
        jp = p if isinstance(p, JournalPosition) else JournalPosition.build(**dict(p))
        specs[_id(jp.position_id)] = jp
    states: dict[str, _State] = {}
    n = len(events)
    cols: dict[str, list[Any]] = {k: [math.nan] * n for k in OUTPUT_COLUMNS}
    cols["rule_breaks"] = [""] * n
    cols["status"] = [""] * n
    problems: list[Problem | None] = [None] * n
    sides, qtys, entries, margins, marks, inv, mmrs, amts = ([] for _ in range(8))
    rows_ok: list[int] = []
    rule_inputs: list[tuple[int, str, float, float, int]] = []
    for i, row in enumerate(events):
        pid = _id(row.get("position_id"))
        kind = str(row.get("event") or "").strip().lower()
        try:
            if pid not in specs:
                shown = str(row.get("position_id") or "").strip()
                raise _RowError(
                    UNKNOWN_POSITION,
                    f"position_id must name a row of the positions sheet, got {shown!r}",
                    "position_id",
                )
            if kind not in EVENT_TYPES:
                raise _RowError(
                    UNKNOWN_EVENT,
                    f"event must be one of {', '.join(EVENT_TYPES)}, got {kind!r}",
                    "event",
                )
            spec = specs[pid]
            st = states.get(pid) or _State(
                side=1.0 if spec.side == "long" else -1.0,
                inverse=spec.contract == "inverse",
                mmr=spec.mmr,
                maint_amount=spec.maint_amount,
            )
            trial = _State(**vars(st))
            amount, pnl_fraction = _apply(trial, kind, row)
            states[pid] = trial
            st = trial
        except _RowError as exc:
            problems[i] = exc.problem
            cols["status"][i] = exc.problem.message
            if pid in states:  # show the unchanged state
                st = states[pid]
            else:
                continue
        else:
            rule_inputs.append((i, kind, amount, pnl_fraction, st.adds_while_losing))
        cols["qty_open"][i] = st.qty
        cols["margin"][i] = st.margin
        cols["mark_price"][i] = st.mark
        cols["realized_pnl"][i] = st.realized
        cols["funding"][i] = st.funding
        if st.qty > 0:
            rows_ok.append(i)
            sides.append(st.side)
            qtys.append(st.qty)
            entries.append(st.entry)
            margins.append(st.margin)
            marks.append(st.mark)
            inv.append(1.0 if st.inverse else 0.0)
            mmrs.append(st.mmr)
            amts.append(st.maint_amount)
        else:
            cols["notional"][i] = 0.0
            cols["unrealized_pnl"][i] = 0.0
            cols["equity"][i] = st.margin
    if rows_ok:
        _figures(cols, problems, rows_ok, *(np.array(a) for a in
                                  (sides, qtys, entries, margins, marks, inv, mmrs, amts)))
    if rule is not None:
        odds = _liq_odds(rule, cols, rows_ok, sides)
        for i, kind, amount, pnl_fraction, adds in rule_inputs:
            breaks = rule.breaks(
                kind, amount, pnl_fraction, cols["effective_leverage"][i],
                cols["liq_distance"][i], adds, odds.get(i, math.nan),
            )
            cols["rule_breaks"][i] = SEPARATOR.join(breaks)
    return JournalResult(cols, problems)


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
    side: np.ndarray,
    qty: np.ndarray,
    entry: np.ndarray,
    margin: np.ndarray,
    mark: np.ndarray,
    inverse: np.ndarray,
    mmr: np.ndarray,
    maint_amount: np.ndarray,
) -> None:
    """The per-event figures of open positions, one vectorized call per formula."""
    notional = core.notional(qty, mark, inverse)
    upnl = core.unrealized_pnl(side, qty, entry, mark, inverse)
    margin_lev = core.effective_leverage.rows(notional, margin)
    eff_lev = core.effective_leverage.rows(notional, margin, upnl)
    liq = core.liq_price(side, qty, entry, margin, mmr, maint_amount, inverse)
    dist = core.liq_distance(side, mark, liq)
    out = {
        "notional": notional,
        "unrealized_pnl": upnl,
        "equity": margin + upnl,
        "margin_leverage": margin_lev.values,
        "effective_leverage": eff_lev.values,
        "liq_price": liq,
        "liq_distance": dist,
    }
    for name, values in out.items():
        col = cols[name]
        for j, i in enumerate(rows):
            col[i] = float(values[j])
    for j, i in enumerate(rows):
        if eff_lev.errors[j] is not None and not cols["status"][i]:
            cols["status"][i] = eff_lev.errors[j]
            problems[i] = Problem(BANKRUPT, eff_lev.errors[j])
