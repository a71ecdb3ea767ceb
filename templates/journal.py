"""The trading-journal workbook: Positions, Events (every computed column), Summary, Rules,
Charts (and the hidden Chart data sheet the charts read).

The Events sheet replays the journal the way :func:`leverage.journal.replay` does, with
formulas, so a trader who types a new event sees it compute. Each position's events apply
in date order, ties in row order, whatever order the rows were typed in: hidden columns give
each row its place in date order, and a hidden "step" table replays the events in that
order (step k = the k-th event by date), each step carrying the state (open qty, margin,
entry, fees, ...) of its position's previous step, which is always above it
(``SUMPRODUCT(MAX((...)*ROW(...)))`` finds it; ``INDEX`` reads it). The visible cells of a
row read its step. Inputs -> places -> steps -> visible cells: the formulas never form a
cycle, in Excel, LibreOffice, Google Sheets or the ``formulas`` engine. A row that cannot be
applied keeps the previous state and says why in Status, in the core's words (probes of the
core, :func:`_replay_says`); a row typed out of date order is flagged in Check.

Each step replays the core's account (``leverage.journal``, issue 19): an ``increase`` moves
the entry to the average entry, the margin by its amount (blank: at the open's leverage) and
raises the R multiple's risk; funding is paid from the margin; an event priced at or beyond
the liquidation price the position had before it liquidates the position there (Status says
so, the margin is lost, later steps are refused), as does funding that leaves the
liquidation price at or beyond the mark; a withdrawal or increase that would put it at or
beyond its own price is refused. The hidden ``a_*`` columns hold the state as if the event
applied, so those checks read it without reading their own step's result.

The Summary sheet reviews each position and each margin currency as
:func:`leverage.journal.summary` does (a liquidated position's state and outcome say so,
and the totals count it as closed and as a liquidation), with an equity curve; the Charts
sheet has one chart per slot (a Position ID cell the trader can change), plotting series of
the Chart data sheet that are NA() (a gap) on every row that is not that position open, over
every formula row, so new events join the charts.

In udf mode the add-in's functions are not called in each row: each call a step makes is one
array formula over the whole table in a hidden column, which the step's cell reads
(templates._book.ColumnCalls), so a recalculation makes the same few calls for any length.
Each formula column is written once, as a shared formula (:class:`SharedRows`).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from openpyxl.chart import Reference, ScatterChart, Series
from openpyxl.chart.data_source import StrRef
from openpyxl.chart.series import SeriesLabel
from openpyxl.chart.shapes import GraphicalProperties
from openpyxl.styles import Alignment
from openpyxl.utils import get_column_letter
from openpyxl.workbook import Workbook
from openpyxl.worksheet.formula import ArrayFormula
from openpyxl.worksheet.pagebreak import Break

from leverage import PERCENT_LIKE, Number, percent_hint
from leverage.core import MAINT_AMOUNT, MMR, SIDE
from leverage.errors import LeverageError
from leverage.instructions import PROMPTS
from leverage.journal import (
    CASH_FLOW,
    FEE,
    LAST_SERIAL,
    OPTIONAL_PRICE,
    PRICE,
    out_of_order_message,
    replay,
    show_date,
)
from leverage.layout import (
    EVENT_TYPES,
    FIRST_DATA_ROW,
    JOURNAL_EVENTS,
    JOURNAL_POSITIONS,
    JOURNAL_RULES,
    JOURNAL_SUMMARY,
    RULE_ROWS,
    SUMMARY_SHEET,
    SUMMARY_TOTALS,
    WRAPPED,
    Helpers,
    rule_row,
)
from leverage.models import AdjustmentRule
from leverage.rules import RULE_TEXT, SEPARATOR

from . import _formulas as F
from . import _tiers as T
from ._book import (
    ABOVE,
    HEADER_ALIGN,
    HEADER_FONT,
    HELPER_FILL,
    INPUT_FILL,
    ROW,
    STREAMABLE,
    WRAP,
    CellMaker,
    ColumnCalls,
    all_of,
    check_mode,
    check_rows,
    coin_money,
    data_sheet,
    drop_downs,
    fill_row,
    header_cells,
    highlights,
    input_prompts,
    instructions_sheet,
    list_validation,
    nested_if,
    number_validation,
    prepare_sheet,
    quoted,
    rate_value,
    save_with_streamed_rows,
    text_heights,
    xlwings_conf_sheet,
    xml_text,
)

UDF_MODULE = "leverage_addin.udfs"
BLANK_EXTRA_ROWS = 200  # formula rows ready for new events below the data
POSITION_ROWS = 200  # rows of the Positions sheet the events look up
DEFAULT_ROWS = 1_000  # formula rows assumed by row_formulas/column_calls when not given
EVENTS = JOURNAL_EVENTS.title
POSITIONS = JOURNAL_POSITIONS.title
RULES = JOURNAL_RULES.title

# ------------------------------------------------------------------ hidden columns
# The Events rows are in the order the trader typed them; each position is replayed in date
# order (ties in row order). A row's state cannot be read from "its previous row in date
# order" wherever that row is: a formula reading a range that holds its own cell (or a cell
# that reads it) is a circular reference in Excel, whatever the IFs pick at run time. So the
# hidden columns hold two tables side by side:
#
# * row space (one row per typed row): the date as a number, the row's place in date order
#   (``rank``, from the inputs only) and the latest date typed above it for its position;
# * step space (hidden row k = the k-th event in date order): the event's inputs copied from
#   its row (``src``), then the replay exactly as if the events had been typed in date order:
#   a step reads the state of the position's previous step, which is always ABOVE it.
#
# The visible computed cells of a row read its step (``INDEX(step column, rank)``). Inputs ->
# ranks -> steps -> visible cells: no cycle, in any engine.
ROW_PART: tuple[tuple[str, str], ...] = (
    ("r_used", "(helper) row in use"),
    ("r_date", "(helper) date as a number (blank: none)"),
    ("r_key", "(helper) date-order key"),
    ("r_rank", "(helper) place in date order"),
    ("r_later", "(helper) latest date of this position in the rows above"),
)
ROW_ONLY = ("warnings",)  # computed from the typed order itself, not from a step
STEP_INPUTS = tuple(k for k in JOURNAL_EVENTS.keys("input") if k not in ("date", "reason"))
STEP_PART: tuple[tuple[str, str], ...] = (
    ("src", "(date order) row of the k-th event"),
    ("in_date", "(date order) date"),
    *((f"in_{k}", f"(date order) {JOURNAL_EVENTS.columns[JOURNAL_EVENTS.index(k)].header}")
      for k in STEP_INPUTS),
    ("used", "(date order) row in use"),
    ("key", "(date order) date-order key"),
    ("pos", "(date order) row of the position on Positions"),
    ("kind", "(date order) event number"),
    ("ok", "(date order) dated, known position and event"),
    ("prev", "(date order) previous step of this position"),
    ("side", "(date order) side (+1 long, -1 short)"),
    ("contract", "(date order) contract"),
    ("mmr", "(date order) maint. margin rate"),
    ("maint", "(date order) maint. amount"),
    ("stop", "(date order) stop price"),
    ("first_open", "(date order) first open step of a position not open yet"),
    ("last_open", "(date order) last open step above of a position not open yet"),
    ("p_qty", "(date order) open qty before"),
    ("p_margin", "(date order) margin before"),
    ("p_mark", "(date order) mark before"),
    ("p_entry", "(date order) entry before"),
    ("p_init", "(date order) initial margin before"),
    ("p_realized", "(date order) realized PnL before"),
    ("p_funding", "(date order) funding before"),
    ("p_fees", "(date order) fees before"),
    ("p_risk", "(date order) initial risk before"),
    ("p_closed", "(date order) close date before"),
    ("p_adds", "(date order) adds while losing before"),
    ("p_liq_raw", "(date order) liq. price by the formula before"),
    ("p_liq_at", "(date order) price it was liquidated at, before"),
    ("p_lev0", "(date order) opening leverage before"),
    ("price_used", "(date order) price of the event"),
    ("released", "(date order) margin released"),
    ("pre_error", "(date order) input problem, up to the fee"),
    ("watched", "(date order) liquidation is replayed (not liquidated at once)"),
    ("hit", "(date order) price at or beyond the liq. price before: liquidated"),
    ("field_error", "(date order) input problem of the event's own fields"),
    ("inc_amount", "(date order) margin that comes with an increase"),
    ("avg_entry", "(date order) average entry after an increase"),
    ("a_qty", "(date order) open qty if the event applies"),
    ("a_margin", "(date order) margin if the event applies"),
    ("a_entry", "(date order) entry if the event applies"),
    ("a_liq", "(date order) liq. price by the formula if the event applies"),
    ("liq_after", "(date order) funding leaves the liq. price at or beyond the mark"),
    ("liq_event", "(date order) the event liquidated the position"),
    ("error", "(date order) input problem"),
    ("liq_raw", "(date order) liq. price by the formula, before the at-once check"),
    ("applied", "(date order) the event applied"),
    ("pnl_fraction", "(date order) open PnL / initial margin at the event"),
    ("moved", "(date order) margin the event moves (rules)"),
    ("entry", "(date order) entry price after"),
    ("init", "(date order) initial margin after"),
    ("lev0", "(date order) opening leverage after"),
    ("inc_risk", "(date order) risk at the stop of the whole qty after an increase"),
    ("risk", "(date order) initial risk after"),
    ("closed", "(date order) close date after"),
    ("liq_at", "(date order) price it was liquidated at, after"),
    ("adds", "(date order) adds while losing after"),
    # the rate from the Symbol when the Positions rate is blank (templates/_tiers.py): the
    # tier of the notional at entry, if the event applies (a_) and after it (e_)
    ("t_row", "(date order) Tiers row of the Symbol's table (0: none)"),
    ("t_name", "(date order) the Symbol's tier table"),
    ("t_blank", "(date order) the rate is blank: the tier's (1)"),
    ("a_tmmr", "(date order) the tier's rate if the event applies"),
    ("a_tmaint", "(date order) the tier's amount if the event applies"),
    ("e_tmmr", "(date order) the tier's rate after"),
    ("e_tmaint", "(date order) the tier's amount after"),
    ("a_mmr", "(date order) maint. margin rate if the event applies"),
    ("a_maint", "(date order) maint. amount if the event applies"),
    ("e_mmr", "(date order) maint. margin rate after"),
    ("e_maint", "(date order) maint. amount after"),
    ("t_flag", "(date order) Check: a typed rate more than 2x off the tier's"),
    *((f"s_{k}", f"(date order) {c.header}") for c in JOURNAL_EVENTS.columns
      if c.role == "computed" and c.key not in ROW_ONLY for k in (c.key,)),
)
HELPERS = Helpers(JOURNAL_EVENTS, ROW_PART + STEP_PART)
"""The Events sheet's hidden columns, right of the layout's columns (neither input nor
output: the Sheets bridge never reads them)."""
NOT_A_DATE = "1E+300"  # the order key of a row with no valid date: after every dated row


def _col(key: str) -> str:
    return HELPERS.letter(key)


def _whole(key: str, last: int) -> str:
    """A hidden column over every formula row."""
    return f"${_col(key)}${FIRST_DATA_ROW}:${_col(key)}${last}"


def _refs(r: str, above: str, position_rows: int, last: int) -> dict[str, str]:
    """Cell references of step row ``r`` (``above`` = the step above; both as written in the
    formula): layout keys (an input key: the step's copy of it; a computed key: its step
    column), ``h_<helper>``, ``up_<key>`` (a step column from row 1 down to the step above,
    for looking back), ``all_<key>`` (a hidden column over every formula row) and
    Positions/Rules cells."""
    refs: dict[str, str] = {}
    for key, _ in HELPERS.columns:
        refs["h_" + key] = f"{_col(key)}{r}"
        refs["all_" + key] = _whole(key, last)
        # the row above stays relative: the formula is shared down the column
        refs["up_" + key] = refs["up_h_" + key] = f"${_col(key)}$1:${_col(key)}{above}"
    for key in (*STEP_INPUTS, "date"):
        refs[key] = refs["h_in_" + key]
    for key in JOURNAL_EVENTS.keys("computed"):
        if key not in ROW_ONLY:
            refs[key] = refs["h_s_" + key]
            refs["up_" + key] = refs["up_s_" + key]
    for key in JOURNAL_EVENTS.keys(None):
        col = JOURNAL_EVENTS.letter(key)
        refs["typed_" + key] = f"${col}${FIRST_DATA_ROW}:${col}${last}"
    refs["step"] = f"(ROW()-{FIRST_DATA_ROW - 1})"
    last_pos = FIRST_DATA_ROW + position_rows - 1
    for key in JOURNAL_POSITIONS.keys(None):
        col = JOURNAL_POSITIONS.letter(key)
        refs["pos_" + key] = f"{POSITIONS}!${col}${FIRST_DATA_ROW}:${col}${last_pos}"
    for key, *_ in RULE_ROWS:
        refs["rule_" + key] = f"{RULES}!${RULE_READ_COLUMN}${rule_row(key)}"
    return refs


def _row_refs(r: str, last: int) -> dict[str, str]:
    """Row-space references of Events row ``r``: the typed cells (layout keys), the row
    helpers (``h_r_*``) and every hidden column over the table (``all_<key>``)."""
    refs = {key: f"{JOURNAL_EVENTS.letter(key)}{r}" for key in JOURNAL_EVENTS.keys(None)}
    for key, _ in HELPERS.columns:
        refs["h_" + key] = f"{_col(key)}{r}"
        refs["all_" + key] = _whole(key, last)
    for key in JOURNAL_EVENTS.keys(None):
        col = JOURNAL_EVENTS.letter(key)
        refs["all_" + key] = f"${col}${FIRST_DATA_ROW}:${col}${last}"
    return refs


PROBE_ID = "p1"
ProbeEvent = tuple[Any, ...]  # (event, price, qty, amount[, fee[, date]])


def _probe_day(i: int) -> dt.datetime:
    """The date of the i-th probe event: distinct days, with a time (shown as hh:mm)."""
    return dt.datetime(2001, 2, 3 + i, 4, 5)


@functools.cache
def _replay_says(*events: ProbeEvent, positions: bool = True, which: int = -1) -> str:
    """The core's status of the last of ``events`` (``(event, price, qty, amount[, fee[,
    date]])`` of one long position; date: :func:`_probe_day` of its place unless given) when
    replayed (``which``: of that event instead): the words the sheet shows for such a row.
    ``positions=False``: the position is not on the positions sheet."""
    rows = []
    for i, e in enumerate(events):
        fee = e[4] if len(e) > 4 else None
        date = e[5] if len(e) > 5 else _probe_day(i)
        rows.append({"date": date, "position_id": PROBE_ID, "event": e[0], "price": e[1],
                     "qty": e[2], "amount": e[3], "fee": fee})
    pos = [{"position_id": PROBE_ID, "side": "long"}] if positions else []
    status = replay(pos, rows).columns["status"][which]
    assert status, f"no status for the probe {events}"
    return status


KIND = {t: i for i, t in enumerate(EVENT_TYPES, start=1)}
"""The hidden ``kind`` column's number of each event type (0: unknown)."""


def is_kind(ref: str, *names: str) -> str:
    """The condition that the kind number in ``ref`` is one of the event types ``names``."""
    tests = [f"{ref}={KIND[n]}" for n in names]
    return tests[0] if len(tests) == 1 else f"OR({','.join(tests)})"


def if_kind(ref: str, values: Mapping[str, str], otherwise: str, unless: str | None = None
            ) -> str:
    """The expression of ``values`` for the event type whose kind number is in ``ref``,
    ``otherwise`` for the others (and wherever the flag ``unless`` is 1)."""
    out = nested_if([(is_kind(ref, k), v) for k, v in values.items()], otherwise)
    return out if unless is None else f"IF({unless}=1,{otherwise},{out})"


def by_kind(ref: str, values: Mapping[str, str]) -> str:
    """``CHOOSE`` over the kind number in ``ref``: one expression per event type."""
    assert set(values) == set(EVENT_TYPES), set(EVENT_TYPES) ^ set(values)
    return f"CHOOSE({ref},{','.join(values[t] for t in EVENT_TYPES)})"


OPEN = ("open", 100.0, 3.25, 1234.5)  # the probe position: qty 3.25 on 1234.5 margin
ADD = ("add_margin", 100.0, None, 1.0)
PRICED = ("increase", "add_margin", "withdraw_margin", "partial_close", "close")
"""The events that need a price (funding's is the last mark when blank)."""
REFUSED_BEYOND = ("increase", "withdraw_margin")
"""The events the exchange refuses when they would put the liquidation price at or beyond
their own price."""
APOSTROPHE = quoted("'")


def date_text(ref: str) -> str:
    """The date number ``ref`` as the core's messages show a date (``show_date``): the day,
    with hh:mm when it has a time, with seconds when it has those."""
    seconds = f"ROUND({ref}*86400,0)"
    return (f'TEXT({ref},IF(MOD({seconds},60)<>0,"yyyy-mm-dd hh:mm:ss",'
            f'IF(MOD({seconds},86400)<>0,"yyyy-mm-dd hh:mm","yyyy-mm-dd")))')


def _day(i: int) -> str:
    return show_date(_probe_day(i))


def _date_checks(x: dict[str, str]) -> list[tuple[str, str]]:
    """Why the typed date is not a date, in the core's words (blank, text, a number that
    is no day)."""
    typed = f"INDEX({x['typed_date']},{x['h_src']})"
    said_text = _replay_says(("open", 1.0, 1.0, 1.0, None, F.PROBE_TEXT))
    said_number = _replay_says(("open", 1.0, 1.0, 1.0, None, -7.25))
    return [
        (f'{typed}=""', quoted(_replay_says(("open", 1.0, 1.0, 1.0, None, None)))),
        (f"NOT(ISNUMBER({x['date']}))", f"IF(ISTEXT({typed}),"
         f"{F.said(said_text, {F.PROBE_TEXT: typed})},{F.said(said_number, {'-7.25': typed})})"),
    ]


def _numbers_said(message: str, refs: Sequence[str], words: Mapping[str, str] | None = None
                  ) -> str:
    """The core's ``message`` with its numbers, in order, replaced by the expressions
    ``refs`` (the probe's numbers are each different), and each of ``words`` by its
    expression."""
    rest = message
    for word in words or {}:
        rest = rest.replace(word, " ")
    numbers = NUMBER.findall(rest)
    assert len(numbers) == len(refs) == len(set(numbers)), (message, numbers)
    return F.said(message, dict(zip(numbers, refs, strict=True)) | dict(words or {}))


NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
LIQ_OPEN = ("open", 100.0, 10.0, 43.75)  # a probe position with a liquidation price (96.1)
LIQ_HIT = ("add_margin", 87.25, None, 1.0)  # ... that this add finds beyond it


def liquidated_text(price: str, liq: str, margin: str) -> str:
    """The core's status of the event that liquidated its position, as a formula's text
    expression (its price, the liquidation price it reached, the margin lost)."""
    return _numbers_said(_replay_says(LIQ_OPEN, LIQ_HIT), [price, liq, margin])


def _error_formula(x: dict[str, str]) -> str:
    """Why the event cannot be applied, in the core's words ("" when it can), checked in
    the core's order (:func:`_pre_error_formula`; then, unless the event liquidated the
    position, its own fields and whether the exchange would refuse it)."""
    refused = _numbers_said(
        _replay_says(LIQ_OPEN, ("withdraw_margin", 98.5, None, 30.0)),
        [x["h_a_liq"], x["h_price_used"]], {"withdraw_margin": f"LOWER(TRIM({x['event']}))"})
    beyond = all_of([is_kind(x["h_kind"], *REFUSED_BEYOND), f"{x['h_watched']}=1",
                     f"ISNUMBER({x['h_a_liq']})"],
                    f"{x['h_side']}*({x['h_price_used']}-{x['h_a_liq']})<=0", "FALSE")
    return (f'IF({x["h_pre_error"]}<>"",{x["h_pre_error"]},IF({x["h_hit"]}=1,"",'
            f'IF({x["h_field_error"]}<>"",{x["h_field_error"]},IF({beyond},{refused},""))))')


def _pre_error_formula(x: dict[str, str]) -> str:
    """Why the event cannot be applied, in the core's words ("" when it can), checked in
    the core's order up to the liquidation check: the row itself (position, event, date),
    then the position's replay in date order (not open yet and why, liquidated, closed, the
    price, the fee); an open's own fields come before its fee."""
    kind, had = x["h_kind"], f"ISNUMBER({x['h_p_entry']})"
    word = f"LOWER(TRIM({x['event']}))"
    first, last_open = x["h_first_open"], x["h_last_open"]

    def when(k: str, cond: str) -> str:
        return f"IF({is_kind(kind, k)},{cond},FALSE)"

    def field(k: str, key: str, rule: Number) -> list[tuple[str, str]]:
        return [(when(k, c), m) for c, m in F.number_checks(x[key], key, rule)]

    def step_date(step: str) -> str:
        return date_text(f"INDEX({x['all_key']},{step})")

    pid_shown = f"INDEX({x['pos_position_id']},{x['h_pos']})"
    later = f"{kind}<>{KIND['open']}"  # a known event other than the open
    not_open = f"IF({later},NOT({had}),FALSE)"
    bad_open = ("open", 100.0, -1.0, 1234.5)
    checks: list[tuple[str, str]] = [
        (f"{x['h_pos']}=0", F.said(_replay_says(OPEN, positions=False),
                                   {PROBE_ID: f"TRIM({x['position_id']})"})),
        (f"{x['h_side']}=0", quoted(f"side on the {POSITIONS} sheet {SIDE.describe()}")),
        *_position_checks(x, pid_shown),
        (f"{kind}=0", F.said(_replay_says(("zq9", None, None, None)), {"zq9": word})),
        *_date_checks(x),
        (when("open", had), quoted(_replay_says(OPEN, OPEN))),
        *field("open", "price", PRICE),
        *field("open", "qty", PRICE),
        *field("open", "amount", PRICE),
        (f"IF({not_open},{first}>=1E+9,FALSE)",
         F.said(_replay_says(ADD), {f"'{PROBE_ID}'": f"{APOSTROPHE}&{pid_shown}&{APOSTROPHE}"})),
        (f"IF({not_open},IF({first}>{x['step']},{x['date']}<INDEX({x['all_key']},{first}),"
         "FALSE),FALSE)",
         F.said(_replay_says(ADD, (*OPEN, None, _probe_day(1)), which=0),
                {_day(0): date_text(x["date"]), _day(1): step_date(first)})),
        (f"IF({not_open},{first}>{x['step']},FALSE)",
         F.said(_replay_says(ADD, (*OPEN, None, _probe_day(0)), which=0),
                {_day(0): step_date(first)})),
        (not_open, F.said(_replay_says(bad_open, ADD), {_day(0): step_date(last_open)})),
        (f"IF({later},ISNUMBER({x['h_p_liq_at']}),FALSE)",
         _numbers_said(_replay_says(LIQ_OPEN, LIQ_HIT, ADD), [x["h_p_liq_at"]],
                       {_day(1): date_text(x["h_p_closed"])})),
        (f"IF({later},ISNUMBER({x['h_p_closed']}),FALSE)",
         F.said(_replay_says(OPEN, ("close", 100.0, None, None), ADD),
                {"add_margin": word, _day(1): date_text(x["h_p_closed"])})),
        *[(f"IF({later},IF({is_kind(kind, *PRICED)},{c},FALSE),FALSE)", m)
          for c, m in F.number_checks(x["price"], "price", PRICE)],
        *field("funding", "price", OPTIONAL_PRICE),
        *F.number_checks(x["fee"], "fee", FEE),
    ]
    return f'IF({x["h_used"]}=0,"",{nested_if(checks, chr(34) * 2)})'


INVALID_POSITION = "position {pid} is invalid on the {sheet} sheet (row {row}): {why}"
"""The sync's words for every row of a position its Positions row cannot give
(sheets_bridge/engine.py ``_read_journal_positions``; tests/test_journal_bad_rate.py holds
the two to the same text)."""


def _position_checks(x: dict[str, str], pid_shown: str) -> list[tuple[str, str]]:
    """The Positions row's rate and amount as the core reads them (``MMR``, ``MAINT_AMOUNT``):
    text it cannot read (``0,4%``, ``abc``) or a value out of bounds refuses every row of the
    position with the sync's message, where a blank liquidation price would say "none"."""
    row = f"({x['h_pos']}+{FIRST_DATA_ROW - 1})"
    prefix = F.said(INVALID_POSITION.format(pid="'zq8'", sheet=POSITIONS, row="77", why=""),
                    {"zq8": pid_shown, "77": row})
    return [(cond, f"{prefix}&{message}")
            for ref, key, rule in ((x["h_mmr"], "mmr", MMR),
                                   (x["h_maint"], "maint_amount", MAINT_AMOUNT))
            for cond, message in F.number_checks(ref, key, rule)]


def _field_error_formula(x: dict[str, str]) -> str:
    """Why the event's own fields cannot be applied, in the core's words and order ("" when
    they can), for a row that passed :func:`_pre_error_formula`: its qty and amount, margin
    withdrawn or released beyond what is posted, a partial close of all the qty."""
    kind = x["h_kind"]

    def when(k: str, cond: str) -> str:
        return f"IF({is_kind(kind, k)},{cond},FALSE)"

    def field(k: str, key: str, rule: Number) -> list[tuple[str, str]]:
        return [(when(k, c), m) for c, m in F.number_checks(x[key], key, rule)]

    def beyond_margin(amount: str) -> str:
        message = _replay_says(OPEN, ("withdraw_margin", 100.0, None, 5678.25))
        return F.said(message, {"1234.5": x["h_p_margin"], "5678.25": amount})

    checks: list[tuple[str, str]] = [
        *field("increase", "qty", PRICE),
        *field("increase", "amount", OPTIONAL_PRICE),
        *field("add_margin", "amount", PRICE),
        *field("withdraw_margin", "amount", PRICE),
        (when("withdraw_margin", f"{x['amount']}>{x['h_p_margin']}"), beyond_margin(x["amount"])),
        *field("partial_close", "qty", PRICE),
        (when("partial_close", f"{x['qty']}>={x['h_p_qty']}"),
         F.said(_replay_says(OPEN, ("partial_close", 100.0, 9.75, None)),
                {"3.25": x["h_p_qty"], "9.75": x["qty"]})),
        *field("partial_close", "amount", OPTIONAL_PRICE),
        (when("partial_close", f"{x['h_released']}>{x['h_p_margin']}"),
         beyond_margin(x["h_released"])),
        *field("funding", "amount", CASH_FLOW),
    ]
    return f'IF({x["h_pre_error"]}<>"","",{nested_if(checks, chr(34) * 2)})'



@functools.cache
def _at_once_says(side: str, mmr: float) -> str:
    """The core's status for an open of the probe position (long/short ``side``, ``mmr``)
    whose margin is below maintenance at entry: qty 3.25 at 100 on 1.5 margin."""
    rows = [{"date": _probe_day(0), "position_id": PROBE_ID, "event": "open", "price": 100.0,
             "qty": 3.25, "amount": 1.5}]
    pos = [{"position_id": PROBE_ID, "side": side, "mmr": mmr}]
    status = replay(pos, rows).columns["status"][0]
    assert status, f"no status for the probe {side} {mmr}"
    return status


def _liquidated_at_once(x: dict[str, str], qty: str, entry: str, margin: str, liq: str) -> str:
    """The core's words for a position liquidated at once (margin at or below maintenance
    at entry), with the percent hint where the mmr looks like a percent typed as a number."""
    mmr, side = x["h_e_mmr"], x["h_side"]
    maint = F.maint_margin("native", F.notional("native", qty, entry, x["h_contract"]), mmr,
                           x["h_e_maint"])
    out = []
    for word, hinted, plain in (("long", 0.0725, 0.04), ("short", 0.0725, 0.04)):
        probe = 3.25 * 100 * hinted
        message, hint = _at_once_says(word, hinted), percent_hint("mmr", hinted)
        assert hint is not None and message.endswith(hint), message
        numbers = {"1.5": margin, F.fmt_number(probe): maint, "100": entry}
        with_hint = F.said(message[: -len(hint)], numbers | {_probe_liq(message): liq})
        hint_said = F.percent_hint_text("mmr", mmr)
        base = _at_once_says(word, plain)
        without = F.said(base, {"1.5": margin, F.fmt_number(3.25 * 100 * plain): maint,
                                "100": entry, _probe_liq(base): liq})
        out.append(f"IF(ABS({mmr})>={PERCENT_LIKE},{with_hint}&{hint_said},{without})")
    return f"IF({side}>0,{out[0]},{out[1]})"


def _probe_liq(message: str) -> str:
    """The liquidation price as the probe's message shows it: the number after "price"."""
    return message.split("liquidation price ", 1)[1].split(" ", 1)[0]


# Per event rule: a threshold and the event's figures that break it (amount, PnL fraction,
# liquidation distance, adds while losing), to ask the core which events it applies to.
_RULE_PROBES: dict[str, tuple[float, float, float, float, int]] = {
    "max_margin_per_event": (1.0, 2.0, 0.0, math.nan, 0),
    "max_adds_while_losing": (0.0, 1.0, -0.5, math.nan, 1),
    "add_only_below_pnl": (-0.2, 1.0, 0.0, math.nan, 0),
    "withdraw_only_above_pnl": (0.3, 1.0, 0.0, math.nan, 0),
    "close_if_loss_beyond": (0.5, 1.0, -0.9, math.nan, 0),
    "add_within_buffer": (0.5, 1.0, 0.0, 0.1, 0),
}


@functools.cache
def rule_events(key: str) -> tuple[str, ...]:
    """The events the core's rule ``key`` (one of :data:`_RULE_PROBES`) judges: asked of
    :meth:`AdjustmentRule.breaks` event by event, with figures that break it."""
    threshold, amount, fraction, distance, adds = _RULE_PROBES[key]
    rule = AdjustmentRule.build(**{key: threshold})
    found = tuple(e for e in EVENT_TYPES
                  if rule.breaks(e, amount, fraction, math.nan, distance, adds))
    assert found, f"no event breaks {key} with its probe"
    return found


def _rule_breaks_formula(x: dict[str, str], mode: str = "native") -> str:
    """Each broken rule's words (RULE_TEXT, in its order) joined with "; "."""
    kind, frac = x["h_kind"], x["h_pnl_fraction"]

    def rule(key: str, *conds: str) -> str:
        if key in _RULE_PROBES:
            conds = (is_kind(kind, *rule_events(key)), *conds)
        return all_of(conds, quoted(SEPARATOR + RULE_TEXT[key]))

    def r(key: str) -> str:
        return x["rule_" + key]

    parts = [
        rule("max_leverage", f"ISNUMBER({r('max_leverage')})",
             f"ISNUMBER({x['effective_leverage']})",
             f"{x['effective_leverage']}>{r('max_leverage')}"),
        rule("max_margin_per_event", f"ISNUMBER({r('max_margin_per_event')})",
             f"{x['h_moved']}>{r('max_margin_per_event')}"),
        rule("max_adds_while_losing", f"{frac}<0",
             f"ISNUMBER({r('max_adds_while_losing')})",
             f"{x['h_adds']}>{r('max_adds_while_losing')}"),
        rule("add_only_below_pnl", f"ISNUMBER({r('add_only_below_pnl')})",
             f"{frac}>{r('add_only_below_pnl')}"),
        rule("withdraw_only_above_pnl", f"ISNUMBER({r('withdraw_only_above_pnl')})",
             f"{frac}<{r('withdraw_only_above_pnl')}"),
        rule("close_if_loss_beyond", f"ISNUMBER({r('close_if_loss_beyond')})",
             f"{frac}<=-{r('close_if_loss_beyond')}"),
        rule("min_liq_distance", f"ISNUMBER({r('min_liq_distance')})",
             f"ISNUMBER({x['liq_distance']})",
             f"{r('min_liq_distance')}>{x['liq_distance']}"),
        rule("add_within_buffer", f"ISNUMBER({r('add_within_buffer')})",
             f"ISNUMBER({x['liq_distance']})",
             f"{r('add_within_buffer')}>{x['liq_distance']}"),
        _odds_rule(x, mode),
    ]
    assert len(parts) == len(RULE_TEXT)
    joined = "&".join(parts)
    skip = len(SEPARATOR) + 1
    return (f'IF({x["h_used"]}=0,"",IF({x["h_error"]}<>"","",IF({x["h_liq_event"]}=1,"",'
            f"MID({joined},{skip},999))))")


def _odds_rule(x: dict[str, str], mode: str) -> str:
    """The ``max_liq_probability`` flag: LIQ_PROBABILITY after the event, at the Rules
    sheet's volatility and horizon, above the maximum (no liquidation price: probability 0,
    never a break)."""
    vol, days, top = (x["rule_" + k] for k in ("volatility", "horizon_days",
                                                "max_liq_probability"))
    odds = F.liq_probability(mode, x["h_side"], x["mark_price"], x["liq_price"], vol, days)
    return all_of(
        [f"ISNUMBER({top})", f"ISNUMBER({vol})", f"ISNUMBER({days})", f"{vol}>=0",
         f"{days}>=0", f"ISNUMBER({x['liq_price']})", f"{odds}>{top}"],
        quoted(SEPARATOR + RULE_TEXT["max_liq_probability"]),
    )


def row_formulas(r: int, mode: str, position_rows: int = POSITION_ROWS,
                 rows: int = DEFAULT_ROWS) -> dict[str, str]:
    """Every computed and hidden formula of Events row ``r`` of a table of ``rows`` formula
    rows (keys: layout keys and ``h_<hidden column>``), without the leading ``=``."""
    return {k: fill_row(f, r) for k, f in _formula_templates(mode, position_rows, rows).items()}


def _formula_templates(mode: str, position_rows: int = POSITION_ROWS,
                       rows: int = DEFAULT_ROWS) -> dict[str, str]:
    """:func:`row_formulas` of any row, written once: ``ROW``/``ABOVE`` (templates._book)
    stand where the row's number and the number of the row above go. In udf mode each
    add-in call reads its column call's cell instead (:func:`column_calls`)."""
    return _lifted(mode, position_rows, rows)[0]


def column_calls(mode: str, position_rows: int = POSITION_ROWS,
                 rows: int = DEFAULT_ROWS) -> ColumnCalls | None:
    """udf mode: the add-in calls of an Events row, each computed for all rows by one array
    formula in a hidden column after the helpers (templates._book.ColumnCalls); None in
    native mode."""
    return _lifted(mode, position_rows, rows)[1]


@functools.lru_cache(maxsize=8)
def _lifted(mode: str, position_rows: int,
            rows: int) -> tuple[dict[str, str], ColumnCalls | None]:
    last = FIRST_DATA_ROW + rows - 1
    x = _refs(ROW, ABOVE, position_rows, last)
    steps = _row_formulas(x, mode)
    formulas = {"h_" + k if not k.startswith("h_") else k: v for k, v in steps.items()
                if k not in JOURNAL_EVENTS.keys("computed")}
    for key in JOURNAL_EVENTS.keys("computed"):
        if key not in ROW_ONLY:
            formulas["h_s_" + key] = steps[key]
    formulas.update(_row_space(_row_refs(ROW, last), x))
    if mode != "udf":
        return formulas, None
    calls = ColumnCalls(len(JOURNAL_EVENTS.columns) + len(HELPERS.columns) + 1)
    return calls.lift(formulas), calls


def _row_space(y: dict[str, str], x: dict[str, str]) -> dict[str, str]:
    """The formulas of typed row ``y`` (:func:`_row_refs`): its date, its place in date
    order, and each computed cell read from its step."""
    used, rank = y["h_r_used"], y["h_r_rank"]
    typed = "&".join(y[k] for k in ("date", *STEP_INPUTS))
    key, keys = y["h_r_key"], y["all_r_key"]
    rows_of = f"ROW({keys})"
    f = {
        "h_r_used": f"IF(LEN({typed})=0,0,1)",
        "h_r_date": _date_value(y["date"]),
        "h_r_key": f"IF({used}=0,{NOT_A_DATE},IF(ISNUMBER({y['h_r_date']}),"
                   f"{y['h_r_date']},{NOT_A_DATE}))",
        "h_r_rank": f"SUMPRODUCT(({keys}<{key})+({keys}={key})*({rows_of}<ROW({key})))+1",
        "h_r_later": f'IF({key}<{NOT_A_DATE},SUMPRODUCT(MAX(({y["all_position_id"]}='
                     f'{y["position_id"]})*({rows_of}<ROW({key}))*({keys}<{NOT_A_DATE})'
                     f'*{keys})),"")',
    }
    for k in JOURNAL_EVENTS.keys("computed"):
        if k not in ROW_ONLY:
            f[k] = f'IF({used}=0,"",INDEX({y["all_s_" + k]},{rank}))'
    later, when = y["h_r_later"], y["h_r_date"]
    probe = out_of_order_message(_probe_day(0), _probe_day(1))
    order = all_of(
        [f"{used}=1", f"{key}<{NOT_A_DATE}", f'TRIM({y["position_id"]})<>""', f"{later}>{when}"],
        F.said(probe, {_day(0): date_text(when), _day(1): date_text(later)}))
    # then the step's flag of a typed rate far off its Symbol's tier
    flag = f'IF({used}=0,"",INDEX({y["all_t_flag"]},{rank}))'
    f["warnings"] = f'{order}&IF(AND({order}<>"",{flag}<>""),"; ","")&{flag}'
    return f


def _date_value(ref: str) -> str:
    """The date typed in ``ref`` as a number (a date cell, a serial number from 1, or ISO
    text ``2026-01-03`` / ``2026-01-03 09:00``, as ``leverage.journal.read_date`` reads
    them); "" for a blank or anything else."""
    t = f"TRIM({ref})"
    iso = f'IF(LEN({t})<10,FALSE,AND(MID({t},5,1)="-",MID({t},8,1)="-"))'
    clock = f'IF(LEN({t})>10,TIMEVALUE(MID({t},12,99)),0)'
    number = f'IF({ref}>=1,IF({ref}<{LAST_SERIAL},{ref},""),"")'
    return (f'IF(ISNUMBER({ref}),{number},IF(ISTEXT({ref}),IF({iso},'
            f'IFERROR(DATEVALUE(LEFT({t},10))+{clock},""),""),""))')


def _tier_formulas(x: dict[str, str], mode: str,
                   blank_unless_used: Callable[[str], str]) -> dict[str, str]:
    """The step's rates when its Positions rate is blank and its Symbol has a tier table:
    the tier of the notional at entry (``qty × entry``; inverse ``qty ÷ entry``), if the
    event applies (``a_``, for its liquidation check) and after it (``e_``); else the typed
    (or default) rate. A typed amount stays. And Check's flag of a typed rate more than 2x
    off the tier's, while the position is open (``leverage.journal``)."""
    pos = x["h_pos"]
    symbol = f"INDEX({x['pos_symbol']},{pos})"
    inverse = f'{x["h_contract"]}="inverse"'

    def notional(q: str, e: str) -> str:
        return f"IF({inverse},{q}/{e},{q}*{e})"

    def value(q: str, e: str, what: str) -> str:
        return blank_unless_used(T.tier_value_formula(mode, x["h_t_name"], notional(q, e), what))

    def rate(prefix: str, what: str, own: str, extra: str = "") -> str:
        tier = x[f"h_{prefix}_t{what}"]
        cond = f"{x['h_t_blank']}=1,ISNUMBER({tier}){extra}"
        return blank_unless_used(f"IF(AND({cond}),{tier},{own})")

    typed_amount = f',INDEX({x["pos_maint_amount"]},{pos})=""'
    q, e = x["qty_open"], x["h_entry"]
    return {
        "h_t_row": blank_unless_used(f"IF({pos}=0,0,{T.table_row_formula(symbol)})"
                                     if mode == "native" else "0"),
        "h_t_name": blank_unless_used(f'IF({pos}=0,"",'
                                      f'{T.table_name_formula(mode, symbol, x["h_t_row"])})'),
        "h_t_blank": blank_unless_used(f'IF({pos}=0,0,IF(INDEX({x["pos_mmr"]},{pos})="",'
                                       f'IF({x["h_t_name"]}="",0,1),0))'),
        "h_a_tmmr": value(x["h_a_qty"], x["h_a_entry"], "mmr"),
        "h_a_tmaint": value(x["h_a_qty"], x["h_a_entry"], "maint"),
        "h_e_tmmr": value(q, e, "mmr"),
        "h_e_tmaint": value(q, e, "maint"),
        "h_a_mmr": rate("a", "mmr", x["h_mmr"]),
        "h_a_maint": rate("a", "maint", x["h_maint"], typed_amount),
        "h_e_mmr": rate("e", "mmr", x["h_mmr"]),
        "h_e_maint": rate("e", "maint", x["h_maint"], typed_amount),
        "h_t_flag": blank_unless_used(
            f'IF({x["h_t_blank"]}=1,"",IF(ISNUMBER({q}),IF({q}>0,'
            f'{T.override_formula("FALSE", x["h_mmr"], x["h_e_tmmr"], x["h_t_name"])}'
            f',""),""))'),
    }


def _row_formulas(x: dict[str, str], mode: str) -> dict[str, str]:
    """The formulas of the row whose cell references are ``x`` (:func:`_refs`)."""
    used, err, kind = x["h_used"], x["h_error"], x["h_kind"]
    side_num = x["h_side"]
    contract = x["h_contract"]
    entry_after = x["h_entry"]
    has_state = f"ISNUMBER({entry_after})"

    def blank_unless_used(expr: str) -> str:
        return f'IF({used}=0,"",{expr})'

    def before(key: str, up: str) -> str:
        """The state ``key`` after the previous event of this position ("" if none)."""
        return blank_unless_used(f'IF({x["h_prev"]}=0,"",INDEX({x[up]},{x["h_prev"]}))')

    def state(new: str, prev: str) -> str:
        """After this event: ``new`` if it applied, else the unchanged previous state."""
        return blank_unless_used(
            f'IF({err}="",{new},IF(ISNUMBER({x["h_p_entry"]}),{prev},""))'
        )

    def lookup(key: str, default: str, read: Callable[[str], str] = str) -> str:
        value = f"INDEX({x['pos_' + key]},{x['h_pos']})"
        return blank_unless_used(
            f'IF({x["h_pos"]}=0,"",IF({value}="",{default},{read(value)}))')

    side_word = f"INDEX({x['pos_side']},{x['h_pos']})"
    pq, pm, pe = x["h_p_qty"], x["h_p_margin"], x["h_p_entry"]
    pr, pf = x["h_p_realized"], x["h_p_funding"]
    qty, amount, price = x["qty"], x["amount"], x["price"]
    stop, risk = x["h_stop"], x["h_risk"]
    currency = f"INDEX({x['pos_margin_currency']},{x['h_pos']})"
    at_stop = F.unrealized_pnl(mode, side_num, qty, price, stop, contract)

    def pnl_at(q: str) -> str:
        return F.unrealized_pnl(mode, side_num, q, pe, x["h_price_used"], contract)

    later = f"{kind}<>{KIND['open']}"
    fields_ok = [f'{x["h_pre_error"]}=""', f'{x["h_field_error"]}=""']
    hit, liqd, liq_after = x["h_hit"], x["h_liq_event"], x["h_liq_after"]
    a_qty, a_margin, a_entry, a_liq = x["h_a_qty"], x["h_a_margin"], x["h_a_entry"], x["h_a_liq"]
    inc, used_price = x["h_inc_amount"], x["h_price_used"]

    def losing_side(p: str, liq: str) -> str:
        """``p`` is at or beyond ``liq`` on the losing side (long: p <= liq)."""
        return f"{side_num}*({p}-{liq})<=0"

    f: dict[str, str] = {
        "h_src": f"MATCH({x['step']},{x['all_r_rank']},0)",
        "h_in_date": f"INDEX({x['all_r_date']},{x['h_src']})",
        **{f"h_in_{k}": f'IF(INDEX({x["typed_" + k]},{x["h_src"]})="","",'
                        f'INDEX({x["typed_" + k]},{x["h_src"]}))' for k in STEP_INPUTS},
        "h_used": f"INDEX({x['all_r_used']},{x['h_src']})",
        "h_key": f"INDEX({x['all_r_key']},{x['h_src']})",
        "h_pos": blank_unless_used(
            f"IF({x['position_id']}=\"\",0,IFERROR(MATCH({x['position_id']},"
            f"{x['pos_position_id']},0),0))"
        ),
        "h_kind": blank_unless_used(nested_if(
            [(f'TRIM({x["event"]})="{t}"', str(i)) for t, i in KIND.items()], "0"
        )),
        "h_ok": f"IF({used}=0,0,IF({x['h_pos']}=0,0,IF({kind}=0,0,"
                f"IF({x['h_key']}<{NOT_A_DATE},1,0))))",
        # the position's previous step that the core replays: always above
        "h_prev": blank_unless_used(
            f"IF({x['h_ok']}=1,SUMPRODUCT(MAX(({x['up_pos']}={x['h_pos']})*({x['up_ok']}=1)"
            f"*ROW({x['up_pos']}))),0)"
        ),
        "h_side": blank_unless_used(
            f'IF({x["h_pos"]}=0,"",{F.choice_value(side_word, SIDE, "0")})'
        ),
        "h_contract": blank_unless_used(
            f'IF({x["h_pos"]}=0,"",IF(INDEX({x["pos_contract"]},{x["h_pos"]})'
            f'="inverse","inverse","linear"))'
        ),
        "h_mmr": lookup("mmr", "0.005", rate_value),
        "h_maint": lookup("maint_amount", "0"),
        **_tier_formulas(x, mode, blank_unless_used),
        "h_stop": lookup("stop_price", '""'),
        "h_first_open": blank_unless_used(all_of(
            [f"{x['h_ok']}=1", later, f"NOT(ISNUMBER({pe}))"],
            f"SUMPRODUCT(MIN((({x['all_pos']}={x['h_pos']})*({x['all_kind']}={KIND['open']})"
            f"*({x['all_ok']}=1)=0)*1E+9+ROW({x['all_pos']})-{FIRST_DATA_ROW - 1}))", "0")),
        "h_last_open": blank_unless_used(all_of(
            [f"{x['h_ok']}=1", later, f"NOT(ISNUMBER({pe}))"],
            f"SUMPRODUCT(MAX(({x['up_pos']}={x['h_pos']})*({x['up_kind']}={KIND['open']})"
            f"*({x['up_ok']}=1)*(ROW({x['up_pos']})-{FIRST_DATA_ROW - 1})))", "0")),
        "h_p_qty": before("qty_open", "up_qty_open"),
        "h_p_margin": before("margin", "up_margin"),
        "h_p_mark": before("mark_price", "up_mark_price"),
        "h_p_entry": before("entry", "up_h_entry"),
        "h_p_init": before("init", "up_h_init"),
        "h_p_realized": before("realized_pnl", "up_realized_pnl"),
        "h_p_funding": before("funding", "up_funding"),
        "h_p_adds": before("adds", "up_h_adds"),
        "h_p_fees": before("fees", "up_fees"),
        "h_p_risk": before("risk", "up_h_risk"),
        "h_p_closed": before("closed", "up_h_closed"),
        "h_p_liq_raw": before("liq_raw", "up_h_liq_raw"),
        "h_p_liq_at": before("liq_at", "up_h_liq_at"),
        "h_p_lev0": before("lev0", "up_h_lev0"),
        "h_price_used": blank_unless_used(
            f'IF({is_kind(kind, "funding")},IF({price}="",{x["h_p_mark"]},{price}),{price})'
        ),
        "h_released": blank_unless_used(all_of(
            [is_kind(kind, "partial_close"), f"ISNUMBER({pq})", f"{pq}>0", f"ISNUMBER({qty})"],
            f'IF({amount}="",{pm}*{qty}/{pq},{amount})',
        )),
        "h_pre_error": _pre_error_formula(x),
        # a position whose margin is below maintenance at entry (liquidated at once) is a
        # typing mistake its rows already show, not a position to liquidate
        "h_watched": blank_unless_used(
            f"IF(ISNUMBER({x['h_p_liq_raw']}),IF({x['h_side']}*({x['h_p_liq_raw']}-{pe})>=0,"
            "0,1),1)"),
        # liquidated before the event applies: its price at or beyond the liquidation price
        "h_hit": blank_unless_used(all_of(
            [f'{x["h_pre_error"]}=""', later, f"{x['h_watched']}=1",
             f"ISNUMBER({x['h_p_liq_raw']})"],
            f"IF({losing_side(used_price, x['h_p_liq_raw'])},1,0)", "0")),
        "h_field_error": _field_error_formula(x),
        "h_inc_amount": blank_unless_used(all_of(
            [is_kind(kind, "increase"), f"ISNUMBER({qty})", f"ISNUMBER({price})",
             f"ISNUMBER({x['h_p_lev0']})"],
            f'IF({amount}="",{F.notional(mode, qty, price, contract)}/{x["h_p_lev0"]},'
            f"{amount})")),
        "h_avg_entry": blank_unless_used(all_of(
            [is_kind(kind, "increase"), f"ISNUMBER({qty})", f"ISNUMBER({price})",
             f"ISNUMBER({pq})", f"ISNUMBER({pe})", f"{qty}>0", f"{price}>0"],
            # native in both modes, as the liquidation checks: the state a step carries to
            # the next never goes through an add-in column call, whose one array formula
            # over the table would read its own results (a circular reference)
            F.native_avg_entry(pq, pe, qty, price, contract))),
        "h_a_qty": blank_unless_used(all_of(fields_ok, by_kind(kind, {
            "open": qty, "increase": f"{pq}+{qty}", "add_margin": pq, "withdraw_margin": pq,
            "partial_close": f"{pq}-{qty}", "close": "0", "funding": pq}))),
        "h_a_margin": blank_unless_used(all_of(fields_ok, by_kind(kind, {
            "open": amount, "increase": f"{pm}+{inc}", "add_margin": f"{pm}+{amount}",
            "withdraw_margin": f"{pm}-{amount}", "partial_close": f"{pm}-{x['h_released']}",
            "close": "0", "funding": f"{pm}+{amount}"}))),
        "h_a_entry": blank_unless_used(all_of(fields_ok, if_kind(kind, {
            "open": price, "increase": x["h_avg_entry"]}, pe))),
        "h_a_liq": blank_unless_used(all_of(
            [*fields_ok, f"ISNUMBER({a_qty})", f"{a_qty}>0"],
            F.liq_price("native", side_num, a_qty, a_entry, a_margin, x["h_a_mmr"],
                        x["h_a_maint"], contract))),
        # a funding payment that leaves the liquidation price at or beyond the mark
        "h_liq_after": blank_unless_used(all_of(
            [*fields_ok, is_kind(kind, "funding"), f"{x['h_watched']}=1",
             f"{x['h_hit']}<>1"],
            f"IF({a_margin}<=0,1,IF(ISNUMBER({a_liq}),IF({losing_side(used_price, a_liq)},1,0),"
            "0))", "0")),
        "h_liq_event": blank_unless_used(f"IF({hit}=1,1,IF({liq_after}=1,1,0))"),
        "h_error": _error_formula(x),
        "h_applied": f'IF({used}=0,0,IF({err}="",1,0))',
        "h_pnl_fraction": blank_unless_used(
            f'IF({err}<>"","",IF({is_kind(kind, "open")},0,({pnl_at(pq)})/{x["h_p_init"]}))'
        ),
        "h_moved": blank_unless_used(f'IF({is_kind(kind, "increase")},{inc},{amount})'),
        "h_entry": state(f"IF({hit}=1,{pe},{a_entry})", pe),
        "h_init": state(if_kind(kind, {"open": amount, "increase": f"{x['h_p_init']}+{inc}"},
                                x["h_p_init"], unless=hit), x["h_p_init"]),
        "h_lev0": state(if_kind(kind, {"open": f"{F.notional(mode, qty, price, contract)}"
                                               f"/{amount}"}, x["h_p_lev0"]), x["h_p_lev0"]),
        # the PnL of the opened qty at the stop: what the trader planned to lose; an
        # increase raises it to the whole qty's at the stop, never lowers it
        "h_inc_risk": blank_unless_used(all_of(
            [is_kind(kind, "increase"), f"ISNUMBER({stop})", f"ISNUMBER({a_qty})",
             f"ISNUMBER({a_entry})"],
            f"ABS({F.unrealized_pnl(mode, side_num, a_qty, a_entry, stop, contract)})")),
        "h_risk": state(
            f'IF({is_kind(kind, "open")},IF(ISNUMBER({stop}),ABS({at_stop}),""),'
            f'IF({hit}=1,{x["h_p_risk"]},IF(ISNUMBER({x["h_inc_risk"]}),'
            f'IF(ISNUMBER({x["h_p_risk"]}),MAX({x["h_p_risk"]},{x["h_inc_risk"]}),'
            f'{x["h_inc_risk"]}),{x["h_p_risk"]})))',
            x["h_p_risk"],
        ),
        "h_closed": state(f"IF({liqd}=1,{x['date']},IF({is_kind(kind, 'close')},{x['date']},"
                          f"{x['h_p_closed']}))", x["h_p_closed"]),
        "h_liq_at": state(f"IF({liqd}=1,{used_price},{x['h_p_liq_at']})", x["h_p_liq_at"]),
        "currency": blank_unless_used(
            f'IF({x["h_pos"]}=0,"",IF(TRIM({currency})="",IF({contract}="inverse","coin",'
            f'"quote"),TRIM({currency})))'
        ),
        "fees": state(f'IF({is_kind(kind, "open")},0,{x["h_p_fees"]})'
                      f'+IF({x["fee"]}="",0,{x["fee"]})', x["h_p_fees"]),
        "h_adds": state(
            f"IF({is_kind(kind, 'open')},0,IF({hit}=1,{x['h_p_adds']},"
            f"IF({is_kind(kind, 'increase', 'add_margin')},IF({x['h_pnl_fraction']}<0,"
            f"{x['h_p_adds']}+1,{x['h_p_adds']}),{x['h_p_adds']})))",
            x["h_p_adds"],
        ),
        "qty_open": state(f"IF({liqd}=1,0,{a_qty})", pq),
        "margin": state(f"IF({liqd}=1,0,{a_margin})", pm),
        "mark_price": state(used_price, x["h_p_mark"]),
        "realized_pnl": state(
            f"IF({hit}=1,{pr}-{pm},IF({liq_after}=1,{pr}-{a_margin},"
            + if_kind(kind, {"open": "0", "partial_close": f"{pr}+{pnl_at(qty)}",
                             "close": f"{pr}+{pnl_at(pq)}"}, pr) + "))", pr
        ),
        "funding": state(f"IF({hit}=1,{pf},"
                         + if_kind(kind, {"open": "0", "funding": f"{pf}+{amount}"}, pf) + ")",
                         pf),
    }
    q, m, mark = x["qty_open"], x["margin"], x["mark_price"]
    upnl, eq, liq = x["unrealized_pnl"], x["equity"], x["liq_price"]
    at_once = all_of(
        [f"ISNUMBER({x['h_liq_raw']})", f"{side_num}*({x['h_liq_raw']}-{entry_after})>=0"],
        _liquidated_at_once(x, q, entry_after, m, x["h_liq_raw"]))

    liquidated = liquidated_text(used_price, f"IF({hit}=1,{x['h_p_liq_raw']},{a_liq})",
                                 f"IF({hit}=1,{pm},{a_margin})")

    def open_only(expr: str, closed: str = '""') -> str:
        """``expr`` while the position is open, ``closed`` once its qty is 0, blank with no
        state."""
        return f'IF({has_state},IF({q}>0,{expr},{closed}),"")'

    f.update({
        "notional": open_only(F.notional(mode, q, mark, contract), "0"),
        "unrealized_pnl": open_only(
            F.unrealized_pnl(mode, side_num, q, entry_after, mark, contract), "0"
        ),
        "equity": f'IF({has_state},{m}+{upnl},"")',
        "margin_leverage": open_only(
            f'IF({m}>0,{F.effective_leverage(mode, x["notional"], m)},"")'
        ),
        "effective_leverage": open_only(
            f'IF({eq}>0,{F.effective_leverage(mode, x["notional"], m, upnl)},"")'
        ),
        "h_liq_raw": open_only(F.liq_price("native", side_num, q, entry_after, m, x["h_e_mmr"],
                                           x["h_e_maint"], contract)),
        "liq_price": open_only(all_of(
            [f"ISNUMBER({x['h_liq_raw']})", f"{side_num}*({x['h_liq_raw']}-{entry_after})<0"],
            F.liq_price(mode, side_num, q, entry_after, m, x["h_e_mmr"], x["h_e_maint"],
                        contract),
        )),
        "liq_distance": f'IF(ISNUMBER({liq}),{F.liq_distance(mode, side_num, mark, liq)},"")',
        "rule_breaks": _rule_breaks_formula(x, mode),
        "net_pnl": f'IF({has_state},{x["realized_pnl"]}+{x["funding"]}-{x["fees"]},"")',
        "r_multiple": all_of([has_state, f"ISNUMBER({risk})", f"{risk}>0"],
                             f'{x["net_pnl"]}/{risk}'),
        "status": blank_unless_used(
            f'IF({err}<>"",{err},IF({liqd}=1,{liquidated},'
            f'{open_only(f"IF({eq}<=0,{F.bankrupt(eq)},{at_once})")}))'
        ),
    })
    return f


# ------------------------------------------------------------------ writing


def _positions_sheet(wb: Workbook, positions: Sequence[Mapping[str, Any]], rows: int) -> None:
    sheet = JOURNAL_POSITIONS
    last = FIRST_DATA_ROW + rows - 1
    ws = prepare_sheet(wb, sheet.title, [c.width for c in sheet.columns],
                       print_to=(len(sheet.columns), last), landscape=False)
    mk = CellMaker(ws)
    drop_downs(ws, sheet, FIRST_DATA_ROW, last)
    for key in ("mmr", "maint_amount", "stop_price"):
        col = sheet.letter(key)
        number_validation(ws, f"{col}{FIRST_DATA_ROW}:{col}{last}", key)
    ws.append(header_cells(mk, sheet))
    for i in range(rows):
        p = positions[i] if i < len(positions) else {}
        ws.append([mk.text(p.get(c.key), c.number_format) for c in sheet.columns])


@functools.cache
def _rate_rules() -> frozenset[str]:
    """The rules the core reads as rates (percent text like "5%" is 0.05): asked of the
    core, rule by rule."""
    rates = set()
    for key, *_ in RULE_ROWS:
        try:
            AdjustmentRule.build(**{key: "5%"})
        except LeverageError:
            continue
        rates.add(key)
    return frozenset(rates)


RULE_READ_COLUMN = "D"
"""The Rules sheet's hidden column: each rule's value as the core reads it (percent text of
a rate as its fraction, a blank as blank), which the Events formulas use."""


def _rules_sheet(wb: Workbook, rule_values: Mapping[str, Any]) -> None:
    sheet = JOURNAL_RULES
    ws = prepare_sheet(wb, sheet.title, [c.width for c in sheet.columns] + [12.0],
                       hidden_from=len(sheet.columns) + 1, print_to=(len(sheet.columns),
                                                                      len(RULE_ROWS) + 3))
    mk = CellMaker(ws)
    ws.append(header_cells(mk, sheet, ["(helper) value as read"]))
    heights = text_heights(sheet, [{"meaning": meaning} for *_, meaning in RULE_ROWS])
    for i, (key, fmt, meaning) in enumerate(RULE_ROWS):
        b = f"B{rule_row(key)}"
        read = rate_value(b) if key in _rate_rules() else f'IF({b}="","",{b})'
        if i in heights:  # before the row is written: the sheet is write-only
            ws.row_dimensions[rule_row(key)].height = heights[i]
        ws.append([mk.cell(key), mk.text(rule_values.get(key), fmt),
                   mk.cell(meaning, align=WRAP), mk.cell("=" + read, fmt)])
    ws.append([])
    ws.append([mk.cell("Write these before opening a position; leave a value blank for no "
                       "such rule. PnL thresholds are fractions of the initial margin.")])
    for key, *_ in RULE_ROWS:
        number_validation(ws, f"B{rule_row(key)}", key, -1e9 if "pnl" in key else 0.0)


class SharedRows:
    """Data rows of the write-only sheet ``ws`` to splice into the saved file
    (:func:`templates._book.save_with_streamed_rows`), from ``first_row`` on, one per item
    of ``input_cells`` (the XML of that row's typed cells). Each formula column is ONE
    shared formula, as Excel writes a filled-down column: the first row holds it
    (``masters``), every other row points to it (``children``, with the row stand-in
    :data:`ROW`), so a row of ~100 formulas is ~5 KB of XML, not ~15 KB."""

    def __init__(self, ws: Any, first_row: int, masters: str, children: str,
                 input_cells: list[str], heights: Mapping[int, float] | None = None) -> None:
        self.ws, self.first_row, self.input_cells = ws, first_row, input_cells
        self.masters, self.children = masters, children
        self.heights = dict(heights or {})  # item index -> row height in points

    def __iter__(self) -> Iterator[str]:
        for i, cells in enumerate(self.input_cells):
            r = self.first_row + i
            formulas = self.masters if i == 0 else fill_row(self.children, r)
            h = self.heights.get(i)
            size = "" if h is None else f' ht="{h:g}" customHeight="1"'
            yield f'<row r="{r}"{size}>{cells}{formulas}</row>'

    def size_hint(self) -> int:
        per_row = len(fill_row(self.children, self.first_row + len(self.input_cells))) + 20
        return (len(self.masters) + per_row * len(self.input_cells)
                + 10 * sum(map(len, self.input_cells)))


FormulaColumn = tuple[int, str, str, Alignment | None]  # (column, formula, format, alignment)


def shared_rows(ws: Any, mk: CellMaker, first: int, last: int, columns: list[FormulaColumn],
                input_cells: list[str], arrays: Sequence[tuple[int, ArrayFormula]] = ()
                ) -> SharedRows:
    """:class:`SharedRows` of rows ``first``..``last`` whose formula ``columns`` hold one
    formula each (written for any row with the :data:`ROW`/:data:`ABOVE` stand-ins), after
    the ``input_cells``; ``arrays``: (column, array formula) cells of the first row (the
    add-in's column calls), after the formulas."""
    masters, children = [], []
    for si, (column, formula, fmt, align) in enumerate(columns):
        letter = get_column_letter(column)
        master = mk.formula_xml(column, formula, fmt, align)
        masters.append(fill_row(master.replace(
            "<f>", f'<f t="shared" ref="{letter}{first}:{letter}{last}" si="{si}">', 1), first))
        child = mk.formula_xml(column, "", fmt, align)
        children.append(child.replace("<f></f>", f'<f t="shared" si="{si}"/>', 1))
    for column, array in arrays:
        letter = get_column_letter(column)
        masters.append(f'<c r="{letter}{first}"><f t="array" ref="{array.ref}">'
                       f'{xml_text(array.text[1:])}</f><v></v></c>')
    return SharedRows(ws, first, "".join(masters), "".join(children), input_cells)


def _event_texts(positions: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]],
                 rule_values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each event's wrapped texts as the workbook will show them: its reason, and the rule
    breaks, check and status the core's replay gives (the formulas compute the same), so
    its row can be sized for them."""
    texts: list[dict[str, Any]] = [{"reason": ev.get("reason")} for ev in events]
    try:
        rule = AdjustmentRule.build(**{k: v for k, v in rule_values.items() if v is not None})
        columns = replay(positions, events, rule).columns
    except LeverageError:  # the workbook shows why; its rows keep the reasons' heights
        return texts
    for key in ("rule_breaks", "warnings", "status"):
        for row, text in zip(texts, columns[key], strict=True):
            row[key] = text
    return texts


def _events_sheet(
    wb: Workbook, events: Sequence[Mapping[str, Any]], rows: int, mode: str, position_rows: int,
    heights: Mapping[int, float] | None = None,
) -> SharedRows | None:
    """The Events sheet: its header, then (if openpyxl writes through lxml) its rows come
    back as :class:`SharedRows` for :func:`save_with_streamed_rows`; otherwise openpyxl
    writes every cell (``None``). ``heights``: points of the rows (0-based) whose wrapped
    text takes more than one line."""
    heights = dict(heights or {})
    sheet, helpers = JOURNAL_EVENTS, HELPERS
    calls = column_calls(mode, position_rows, rows)
    call_list = calls.calls if calls is not None else []
    ws, mk, first, last = data_sheet(wb, sheet, helpers, rows, call_list)

    drop_downs(ws, sheet, first, last)
    col = sheet.letter("position_id")
    list_validation(ws, f"{col}{first}:{col}{last}",
                    f"{POSITIONS}!$A${FIRST_DATA_ROW}:$A${FIRST_DATA_ROW + position_rows - 1}",
                    "Not a valid position",
                    "Pick a position from the list (add it on the Positions sheet first)")
    highlights(ws, sheet, last)

    ws.append(header_cells(mk, sheet, helpers.headers + [c.header for c in call_list]))
    formulas = _formula_templates(mode, position_rows, rows)
    # (column, key, number format, alignment): the layout's columns, then the helpers
    inputs = [(i, c.key, c.number_format, WRAP if c.key in WRAPPED else None)
              for i, c in enumerate(sheet.columns, start=1) if c.role == "input"]
    computed = [(i, c.key, c.number_format, WRAP if c.key in WRAPPED else None)
                for i, c in enumerate(sheet.columns, start=1) if c.role == "computed"]
    computed += [(len(sheet.columns) + i, "h_" + k, "General", None)
                 for i, k in enumerate(helpers.helper_keys(), start=1)]

    def values(i: int) -> list[Any]:
        ev = events[i] if i < len(events) else {}
        return [_cell_value(ev.get(key)) for _, key, _, _ in inputs]

    arrays = [(c.column, c.formula(first, last)) for c in call_list]
    if not STREAMABLE:
        for i in range(rows):
            r = first + i
            cells = [mk.text(v, fmt, align)
                     for v, (_, _, fmt, align) in zip(values(i), inputs, strict=True)]
            cells += [mk.cell("=" + fill_row(formulas[key], r), fmt, align=align)
                      for _, key, fmt, align in computed]
            if i == 0:  # the add-in's column calls: one array formula each, over all rows
                cells += [mk.cell(array) for _, array in arrays]
            if i in heights:
                ws.row_dimensions[r].height = heights[i]
            ws.append(cells)
        return None
    input_cells = [
        "".join(mk.text_xml(first + i, column, v, fmt, align)
                for v, (column, _, fmt, align) in zip(values(i), inputs, strict=True))
        for i in range(rows)
    ]
    columns = [(column, formulas[key], fmt, align) for column, key, fmt, align in computed]
    streamed = shared_rows(ws, mk, first, last, columns, input_cells, arrays)
    streamed.heights = heights
    return streamed


def _cell_value(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, dt.date | dt.datetime | str | int | float) or v is None:
        return v
    return str(v)


# ------------------------------------------------------------------ summary
TOTAL_ROWS = 10  # currencies the totals table has room for
SUMMARY_HELPERS: tuple[tuple[str, str], ...] = (
    ("last", "(helper) Events row of the last applied step"),
    ("open_date", "(helper) open date (0: none)"),
    ("close_date", "(helper) close or liquidation date (0: none)"),
    ("liq_date", "(helper) liquidation date (0: none)"),
    ("done", "(helper) closed or liquidated (1)"),
    ("close_key", "(helper) close-order key"),
    ("closed_net", "(helper) net PnL if closed"),
    ("first", "(helper) first row of its currency"),
    ("ordinal", "(helper) currency number"),
    ("rank", "(helper) place in close order"),
)
SUMMARY_HELPERS_FROM = SUMMARY_TOTALS.first_column + len(SUMMARY_TOTALS.columns) + 1
"""Hidden working columns of the Summary sheet, after the totals table and a blank column."""
SUMMARY_KEYS = frozenset(JOURNAL_SUMMARY.keys(None))


def summary_letter(key: str) -> str:
    """Column letter of a Summary key: the per-position table's, else a hidden helper's."""
    if key in SUMMARY_KEYS:
        return JOURNAL_SUMMARY.letter(key)
    keys = [k for k, _ in SUMMARY_HELPERS]
    return get_column_letter(SUMMARY_HELPERS_FROM + keys.index(key))


def _events_range(key: str, last: int, top: int = FIRST_DATA_ROW) -> str:
    """A hidden (``h_<key>``) or step (``s_<key>``) column of Events over its formula rows."""
    col = _col(key)
    return f"{EVENTS}!${col}${top}:${col}${last}"


def summary_formulas(last: int, position_rows: int) -> dict[str, str]:
    """The Summary sheet's formulas of any position row (:data:`ROW` stand-in; keys: the
    layout's keys and ``y_<helper>``), for an Events table ending at row ``last``: the
    position on the same row of Positions, reviewed as ``leverage.journal.summary`` does."""
    pr = JOURNAL_POSITIONS
    end = FIRST_DATA_ROW + position_rows - 1

    def y(key: str) -> str:
        return f"{summary_letter(key)}{ROW}"

    def col(key: str) -> str:
        letter = summary_letter(key)
        return f"${letter}${FIRST_DATA_ROW}:${letter}${end}"

    def here(key: str) -> str:
        return f"{JOURNAL_SUMMARY.letter(key)}{ROW}"

    def typed(key: str) -> str:
        return f"{POSITIONS}!${pr.letter(key)}{ROW}"

    pid, i = typed("position_id"), f"(ROW()-{FIRST_DATA_ROW - 1})"
    pos, applied, kind = (_events_range(k, last) for k in ("pos", "applied", "kind"))
    key, liqd = _events_range("key", last), _events_range("liq_event", last)

    def step_date(which: str) -> str:
        return f'IF({pid}="",0,SUMPRODUCT(MAX(({pos}={i})*({applied}=1)*{which}*{key})))'

    side = F.choice_value(typed("side"), SIDE, '""')
    mc = typed("margin_currency")
    state, net, ck, done = here("state"), here("net_pnl"), y("close_key"), y("done")
    lev = _events_range("s_effective_leverage", last)
    return {
        "position_id": f'IF({pid}="","",{pid})',
        "symbol": f'IF({pid}="","",IF({typed("symbol")}="","",{typed("symbol")}))',
        "currency": f'IF({pid}="","",IF(TRIM({mc})="",IF({typed("contract")}="inverse",'
                    f'"coin","quote"),TRIM({mc})))',
        "side": f'IF({pid}="","",IF({side}=1,"long",IF({side}=-1,"short","")))',
        "state": f'IF({pid}="","",IF({y("liq_date")}>0,"liquidated",IF({y("close_date")}>0,'
                 f'"closed",IF({y("open_date")}>0,"open",""))))',
        "opened": f'IF({y("open_date")}>0,{y("open_date")},"")',
        "closed": f'IF({y("close_date")}>0,{y("close_date")},"")',
        "events": f'IF({pid}="","",COUNTIF({pos},{i}))',
        "net_pnl": f'IF({y("last")}=0,"",INDEX({_events_range("s_net_pnl", last, 1)},'
                   f'{y("last")}))',
        "r_multiple": f'IF({y("last")}=0,"",INDEX({_events_range("s_r_multiple", last, 1)},'
                      f'{y("last")}))',
        "largest_leverage": f'IF({pid}="","",IF(COUNTIFS({pos},{i},{lev},">0")=0,"",'
                            f"_xlfn.MAXIFS({lev},{pos},{i})))",
        "rule_breaks": f'IF({pid}="","",SUMPRODUCT(({pos}={i})'
                       f'*(LEN({_events_range("s_rule_breaks", last)})>0)))',
        "outcome": f'IF({state}="liquidated","liquidated",IF({state}="closed",IF({net}>0,"win",'
                   f'IF({net}<0,"loss","even")),IF({state}="open","open","")))',
        "equity_after": f'IF({done}=1,SUMPRODUCT(({col("currency")}={here("currency")})'
                        f'*(({col("close_key")}<{ck})+({col("close_key")}={ck})'
                        f'*(ROW({col("close_key")})<=ROW()))*{col("closed_net")}),"")',
        "y_last": f'IF({pid}="",0,SUMPRODUCT(MAX(({pos}={i})*({applied}=1)*ROW({pos}))))',
        "y_open_date": step_date(f"({kind}={KIND['open']})"),
        # a liquidation closes the position too
        "y_close_date": step_date(f"((({kind}={KIND['close']})+({liqd}=1))>0)"),
        "y_liq_date": step_date(f"({liqd}=1)"),
        "y_done": f'IF(OR({state}="closed",{state}="liquidated"),1,0)',
        "y_close_key": f'IF({done}=1,{y("close_date")},{NOT_A_DATE})',
        "y_closed_net": f'IF({done}=1,{net},0)',
        "y_first": f'IF({pid}="",0,IF(COUNTIF(${JOURNAL_SUMMARY.letter("currency")}$1:'
                   f'{JOURNAL_SUMMARY.letter("currency")}{ABOVE},{here("currency")})=0,1,0))',
        "y_ordinal": f'IF({y("first")}=1,SUM(${summary_letter("first")}${FIRST_DATA_ROW}:'
                     f'{y("first")}),0)',
        "y_rank": f'IF({done}=1,SUMPRODUCT(({col("close_key")}<{ck})'
                  f'+({col("close_key")}={ck})*(ROW({col("close_key")})<ROW()))+1,0)',
    }


def totals_formulas(position_rows: int) -> dict[str, str]:
    """The Summary totals' formulas of its j-th row (:data:`ROW` stand-in): the j-th margin
    currency in order of first appearance, over its closed positions."""
    end = FIRST_DATA_ROW + position_rows - 1

    def col(key: str) -> str:
        letter = summary_letter(key)
        return f"${letter}${FIRST_DATA_ROW}:${letter}${end}"

    def here(key: str) -> str:
        return f"{SUMMARY_TOTALS.letter(key)}{ROW}"

    c, n = here("currency"), here("closed")
    # closed positions: closed or liquidated
    of_closed = f'{col("currency")},{c},{col("done")},1'
    with_r = (f'SUMPRODUCT(({col("currency")}={c})*({col("done")}=1)'
              f'*ISNUMBER({col("r_multiple")}))')
    return {
        "currency": f'IFERROR(INDEX({col("currency")},MATCH(ROW()-{FIRST_DATA_ROW - 1},'
                    f'{col("ordinal")},0)),"")',
        "closed": f'IF({c}="","",COUNTIFS({of_closed}))',
        "wins": f'IF({c}="","",COUNTIFS({of_closed},{col("net_pnl")},">0"))',
        "liquidations": f'IF({c}="","",COUNTIFS({col("currency")},{c},{col("state")},'
                        f'"liquidated"))',
        "win_rate": f'IF({c}="","",IF({n}>0,{here("wins")}/{n},""))',
        "expectancy": f'IF({c}="","",IF({n}>0,SUMIFS({col("net_pnl")},{of_closed})/{n},""))',
        "expectancy_r": f'IF({c}="","",IF({with_r}>0,SUMIFS({col("r_multiple")},{of_closed})'
                        f"/{with_r},\"\"))",
        "total_net_pnl": f'IF({c}="","",SUMIFS({col("net_pnl")},{of_closed}))',
    }


def _summary_sheet(wb: Workbook, rows: int, position_rows: int) -> Any:
    """The Summary sheet: one row per Positions row (its review), the per-currency totals
    to its right, hidden helpers after them, and the equity curve below the totals."""
    last = FIRST_DATA_ROW + rows - 1
    widths = [c.width for c in JOURNAL_SUMMARY.columns] + [3.0] + [
        c.width for c in SUMMARY_TOTALS.columns] + [3.0] + [12.0] * len(SUMMARY_HELPERS)
    ws = prepare_sheet(wb, SUMMARY_SHEET, widths, hidden_from=SUMMARY_HELPERS_FROM,
                       print_to=(SUMMARY_HELPERS_FROM - 2, FIRST_DATA_ROW + position_rows - 1))
    mk = CellMaker(ws)
    coin_money(ws, JOURNAL_SUMMARY, FIRST_DATA_ROW + position_rows - 1)
    coin_money(ws, SUMMARY_TOTALS, FIRST_DATA_ROW + TOTAL_ROWS - 1)
    header = [*header_cells(mk, JOURNAL_SUMMARY), mk.cell(None),
              *header_cells(mk, SUMMARY_TOTALS), mk.cell(None)]
    header += [mk.cell(h, fill=HELPER_FILL, font=HEADER_FONT, align=HEADER_ALIGN)
               for _, h in SUMMARY_HELPERS]
    ws.append(header)
    per_row = summary_formulas(last, position_rows)
    totals = totals_formulas(position_rows)
    for i in range(position_rows):
        r = FIRST_DATA_ROW + i
        cells = [mk.cell("=" + fill_row(per_row[c.key], r), c.number_format)
                 for c in JOURNAL_SUMMARY.columns]
        cells.append(mk.cell(None))
        if i < TOTAL_ROWS:
            cells += [mk.cell("=" + fill_row(totals[c.key], r), c.number_format)
                      for c in SUMMARY_TOTALS.columns]
        else:  # the equity curve's caption (and a note under it) where it sits
            cells += [mk.cell(EQUITY_NOTES.get(r))] + [mk.cell(None)] * (
                len(SUMMARY_TOTALS.columns) - 1)
        cells.append(mk.cell(None))
        cells += [mk.cell("=" + fill_row(per_row["y_" + k], r)) for k, _ in SUMMARY_HELPERS]
        ws.append(cells)
    return ws


# ------------------------------------------------------------------ charts
CHARTS_SHEET = "Charts"
CHART_DATA_SHEET = "Chart data"
"""Hidden sheet of the charts' series: a value, or ``NA()`` where a chart leaves a gap (a
row of another position, a closed position, an unused row) — the only error values of the
workbook, by design."""
MAX_CHART_SLOTS = 8  # per-position charts on the Charts sheet, at most
EQUITY_CURRENCIES = 3  # equity-curve series: the first currencies of the totals
SLOT_ROWS = 24  # sheet rows per chart slot on the Charts sheet
CHARTS_PER_PAGE = 2  # slots a printed Charts page holds (a page break after each pair)
LEVERAGE_SERIES, DISTANCE_SERIES = (JOURNAL_EVENTS.header(k)
                                    for k in ("effective_leverage", "liq_distance"))
EQUITY_CHART_ROW = TOTAL_ROWS + 4  # Summary row the equity curve starts at, under the totals
EQUITY_NOTES = {
    TOTAL_ROWS + 3: "Net PnL of closed positions, added up in close order.",
    TOTAL_ROWS + 21: "One line per margin currency (the first three above).",
}


def chart_slots(positions: int) -> int:
    """Per-position chart slots: one per position plus two to pick others, at least 3."""
    return min(max(positions + 2, 3), MAX_CHART_SLOTS)


def slot_row(j: int) -> int:
    """Charts-sheet row of the Position ID cell of slot ``j`` (0-based)."""
    return 3 + j * SLOT_ROWS


def chart_data_formulas(slots: int, position_rows: int) -> list[str]:
    """The Chart data sheet's formulas of any row (:data:`ROW` stand-in), column by column:
    the step's date, each slot's leverage and liquidation distance (NA() unless the step is
    that slot's position, open), a blank column, then the equity curve's k-th closed
    position in close order (its Summary row, close date, and one series per currency)."""
    def step(key: str) -> str:
        return f"{EVENTS}!{_col(key)}{ROW}"

    when, pid, qty = step("in_date"), step("in_position_id"), step("s_qty_open")
    out = [f"IF(ISNUMBER({when}),{when},NA())"]
    for j in range(slots):
        slot = f"'{CHARTS_SHEET}'!$B${slot_row(j)}"
        for key in ("s_effective_leverage", "s_liq_distance"):
            v = step(key)
            out.append(f'IF(AND(TRIM({slot})<>"",TRIM({pid})=TRIM({slot}),ISNUMBER({qty}),'
                       f"ISNUMBER({v})),IF({qty}>0,{v},NA()),NA())")
    end = FIRST_DATA_ROW + position_rows - 1

    def summary(key: str) -> str:
        letter = summary_letter(key)
        return f"{SUMMARY_SHEET}!${letter}${FIRST_DATA_ROW}:${letter}${end}"

    src = f"{get_column_letter(2 * slots + 3)}{ROW}"
    out.append('""')
    out.append(f'IFERROR(MATCH(ROW()-{FIRST_DATA_ROW - 1},{summary("rank")},0),0)')
    out.append(f'IF({src}=0,NA(),INDEX({summary("close_date")},{src}))')
    for c in range(EQUITY_CURRENCIES):
        cur = f"{SUMMARY_SHEET}!${SUMMARY_TOTALS.letter('currency')}${FIRST_DATA_ROW + c}"
        out.append(f'IF({src}=0,NA(),IF(INDEX({summary("currency")},{src})={cur},'
                   f'INDEX({summary("equity_after")},{src}),NA()))')
    return out


def _chart_data_sheet(wb: Workbook, slots: int, rows: int, position_rows: int,
                      ) -> tuple[Any, SharedRows | None]:
    """The hidden Chart data sheet (see :data:`CHART_DATA_SHEET`), over every Events formula
    row and every Summary row."""
    formulas = chart_data_formulas(slots, position_rows)
    ws = wb.create_sheet(CHART_DATA_SHEET)
    ws.sheet_state = "hidden"
    mk = CellMaker(ws)
    headers = ["Date (date order)"]
    for j in range(slots):
        headers += [f"Chart {j + 1}: leverage (equity)", f"Chart {j + 1}: liq. distance"]
    headers += ["", "Summary row (close order)", "Close date"]
    headers += [f"=IF({SUMMARY_SHEET}!${SUMMARY_TOTALS.letter('currency')}$"
                f'{FIRST_DATA_ROW + c}="","(no currency)",{SUMMARY_SHEET}!$'
                f"{SUMMARY_TOTALS.letter('currency')}${FIRST_DATA_ROW + c})"
                for c in range(EQUITY_CURRENCIES)]
    ws.append(headers)
    n = max(rows, position_rows)
    formats = ["yyyy-mm-dd hh:mm"] + ["General"] * (2 * slots) + ["General"] * 2 + [
        "yyyy-mm-dd hh:mm"] + ["General"] * EQUITY_CURRENCIES
    columns = [(i, f, fmt, None) for i, (f, fmt) in enumerate(zip(formulas, formats,
                                                                  strict=True), start=1)
               if f != '""']
    if not STREAMABLE:
        for i in range(n):
            r = FIRST_DATA_ROW + i
            cells = [mk.cell(None)] * len(formulas)
            for column, f, fmt, _ in columns:
                cells[column - 1] = mk.cell("=" + fill_row(f, r), fmt)
            ws.append(cells)
        return ws, None
    return ws, shared_rows(ws, mk, FIRST_DATA_ROW, FIRST_DATA_ROW + n - 1, columns, [""] * n)


SERIES_COLOURS = ("1F4E79", "C55A11", "548235")  # blue, orange, green: told apart in print


def _scatter(data: Any, x_col: int, first: int, last: int, series: list[tuple[int, Any]],
             title: str | None, y_title: str, y_format: str, colour: int = 0) -> ScatterChart:
    """A scatter chart (lines through the points, no smoothing) of ``series`` (column, axis
    id) over rows ``first``..``last`` of the sheet ``data``, x = dates in ``x_col``. NA()
    values are skipped and the line goes on ("span"), so a position's own points join up
    across the rows of the others."""
    chart = ScatterChart()
    chart.title = title
    chart.style = 13
    chart.height, chart.width = 10, 24
    chart.display_blanks = "span"
    chart.visible_cells_only = False
    xs = Reference(data, min_col=x_col, min_row=first, max_row=last)
    for k, (column, name) in enumerate(series, start=colour):
        ys = Reference(data, min_col=column, min_row=first, max_row=last)
        # a label read from a cell goes in as it is: Series(title=) would write its repr
        s = Series(ys, xs, title=name if isinstance(name, str) else None)
        if isinstance(name, SeriesLabel):
            s.tx = name
        s.smooth = False
        s.marker.symbol = "circle"
        s.marker.size = 5
        rgb = SERIES_COLOURS[k % len(SERIES_COLOURS)]
        s.graphicalProperties.line.solidFill = rgb
        s.graphicalProperties.line.width = 22_000  # EMU: about 1.75 pt
        s.marker.graphicalProperties = GraphicalProperties(solidFill=rgb)
        s.marker.graphicalProperties.line.solidFill = rgb
        chart.series.append(s)
    chart.y_axis.title = y_title
    chart.y_axis.number_format = y_format
    chart.x_axis.number_format = "yyyy-mm-dd"
    chart.x_axis.crosses = "min"  # dates along the bottom, even under negative values
    chart.x_axis.title = "Date"
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    chart.legend.position = "b"
    return chart


def _position_chart(data: Any, j: int, rows: int) -> ScatterChart:
    """Slot ``j``'s chart: effective leverage (left axis) and liquidation distance (right)."""
    first, last = FIRST_DATA_ROW, FIRST_DATA_ROW + rows - 1
    lev = _scatter(data, 1, first, last, [(2 + 2 * j, LEVERAGE_SERIES)],
                   "Leverage (equity) and liquidation distance", "Leverage (x)", '0.0"x"')
    dist = _scatter(data, 1, first, last, [(3 + 2 * j, DISTANCE_SERIES)], None,
                    "Liquidation distance", "0%", colour=1)
    dist.y_axis.axId = 200
    dist.y_axis.crosses = "max"
    dist.y_axis.majorGridlines = None
    # the distance series on its own x axis, hidden: one shared with the leverage's would be
    # drawn (and titled "Date") a second time along the top
    dist.x_axis.axId = 100
    dist.x_axis.title = None
    dist.x_axis.delete = True
    dist.y_axis.crossAx = 100
    # 0 to 100 %: an empty slot shows an empty 0-100 % axis, not the app's 0-1200 %
    dist.y_axis.scaling.min, dist.y_axis.scaling.max = 0, 1
    lev += dist
    return lev


EMPTY_SLOT_NOTE = "No points to draw: pick a position with events (its open rows are drawn)."


def _charts_sheet(wb: Workbook, positions: Sequence[Mapping[str, Any]], slots: int,
                  position_rows: int, rows: int) -> Any:
    """One chart per slot, each under a Position ID cell (a drop-down of the Positions) the
    trader can change: leverage and liquidation distance of that position, event by event
    in date order, while it is open. Beside the cell, a note while the chart has no point
    (``rows``: the chart data's rows), so an empty chart does not print as a bare grid."""
    ws = prepare_sheet(wb, CHARTS_SHEET, [14.0, 16.0] + [12.0] * 14, freeze=None,
                       header_height=None)
    ws.print_options.gridLines = False
    mk = CellMaker(ws)
    ws.append([mk.cell(
        "Each chart shows one position: its equity-based leverage (left axis) and its "
        "liquidation distance (right axis) after each event, in date order, while it is "
        "open. Pick the position in the yellow cell above a chart; new Events rows appear "
        "by themselves.")])
    ids = [str(p.get("position_id") or "") for p in positions]
    last_pos = FIRST_DATA_ROW + position_rows - 1
    dv = list_validation(ws, f"B{slot_row(0)}", f"{POSITIONS}!$A${FIRST_DATA_ROW}:$A${last_pos}",
                         "Not a valid position", "Pick a position from the Positions sheet")
    for j in range(1, slots):
        dv.add(f"B{slot_row(j)}")
    prompt = PROMPTS.get((CHARTS_SHEET, "position_id"))
    if prompt is not None:  # one validation: the drop-down and its prompt
        dv.promptTitle, dv.prompt = prompt
        dv.showInputMessage = True
    row = 2
    for j in range(slots):
        while row < slot_row(j):
            ws.append([])
            row += 1
        chosen = mk.cell(ids[j] if j < len(ids) else None, fill=INPUT_FILL)
        if j < len(ids):
            chosen.data_type = "s"  # an id is text, never a formula
        lev = get_column_letter(2 + 2 * j)  # the slot's leverage column (_position_chart)
        points = f"'{CHART_DATA_SHEET}'!${lev}${FIRST_DATA_ROW}:${lev}${FIRST_DATA_ROW + rows - 1}"
        ws.append([mk.cell("Position ID", font=HEADER_FONT), chosen,
                   mk.cell(f'=IF(COUNT({points})=0,"{EMPTY_SLOT_NOTE}","")')])
        row += 1
    return ws


def _equity_chart(summary: Any, data: Any, slots: int, position_rows: int) -> None:
    """The equity curve on the Summary sheet, under the totals: cumulative net PnL of the
    closed positions, one line per margin currency, in close-date order."""
    first, last = FIRST_DATA_ROW, FIRST_DATA_ROW + position_rows - 1
    x_col = 2 * slots + 4
    chart = _scatter(data, x_col, first, last,
                     [(x_col + 1 + c, SeriesLabel(strRef=StrRef(
                         f"'{CHART_DATA_SHEET}'!${get_column_letter(x_col + 1 + c)}$1")))
                      for c in range(EQUITY_CURRENCIES)],
                     "Equity curve: net PnL of closed positions, cumulative",
                     "Net PnL (margin currency)", "#,##0.####")
    chart.width, chart.height = 13.5, 8  # cm: under the totals, inside the printed page
    chart.title = "Equity curve (closed positions)"
    summary.add_chart(chart, f"{SUMMARY_TOTALS.letter('currency')}{EQUITY_CHART_ROW}")


def build_journal(
    path: str | Path,
    *,
    mode: str = "udf",
    sample: bool = True,
    rows: int | None = None,
    positions: Sequence[Mapping[str, Any]] | None = None,
    events: Sequence[Mapping[str, Any]] | None = None,
    rule_values: Mapping[str, Any] | None = None,
) -> Path:
    """Write the journal workbook to ``path`` and return it.

    ``mode``: ``"udf"`` (cells call the add-in's functions; the workbook carries the
    ``xlwings.conf`` sheet) or ``"native"`` (plain Excel formulas, also for Google Sheets).
    ``sample``: fill in the worked example of :func:`leverage_templates.sample_journal`; ``False``
    gives an empty journal. ``positions``/``events``/``rule_values`` (dicts keyed by layout
    keys) replace the sample, e.g. a 10,000-event journal for the benchmark. ``rows``: how
    many event rows carry formulas (default: the events plus 200 empty rows to type into).
    """
    from .samples import sample_journal

    mode = check_mode(mode)
    if positions is None and events is None and rule_values is None and sample:
        positions, events, rule_values = sample_journal()
    positions, events = list(positions or ()), list(events or ())
    rule_values = dict(rule_values or {})
    bad = sorted(set(rule_values) - {k for k, *_ in RULE_ROWS})
    if bad:
        raise _input_error(f"rule_values has unknown rule(s) {', '.join(bad)}; known: "
                           + ", ".join(k for k, *_ in RULE_ROWS))
    AdjustmentRule.build(**{k: v for k, v in rule_values.items() if v is not None})
    rows = check_rows(rows, len(events), len(events) + BLANK_EXTRA_ROWS)
    position_rows = max(POSITION_ROWS, len(positions) + 50)

    slots = chart_slots(len(positions))
    wb = Workbook(write_only=True)
    instructions_sheet(wb, "journal")  # the first tab
    _positions_sheet(wb, positions, position_rows)
    heights = text_heights(JOURNAL_EVENTS, _event_texts(positions, events, rule_values))
    streamed = _events_sheet(wb, events, rows, mode, position_rows, heights)
    summary = _summary_sheet(wb, rows, position_rows)
    _rules_sheet(wb, rule_values)
    for sheet, last in ((JOURNAL_POSITIONS, FIRST_DATA_ROW + position_rows - 1),
                        (JOURNAL_EVENTS, FIRST_DATA_ROW + rows - 1),
                        (JOURNAL_RULES, rule_row(RULE_ROWS[-1][0]))):
        input_prompts(wb[sheet.title], sheet, FIRST_DATA_ROW, last)
    charts = _charts_sheet(wb, positions, slots, position_rows, rows)
    data, data_rows = _chart_data_sheet(wb, slots, rows, position_rows)
    for j in range(slots):
        charts.add_chart(_position_chart(data, j, rows), f"A{slot_row(j) + 1}")
        if j and j % CHARTS_PER_PAGE == 0:  # a printed page holds two charts whole
            charts.row_breaks.append(Break(id=slot_row(j) - 1))
    _equity_chart(summary, data, slots, position_rows)
    if mode == "native":  # the tables a blank Positions rate is looked up in
        T.add_tier_sheet(wb, T.tier_rows(T.sheet_tables(p.get("symbol") for p in positions)))
    if mode == "udf":
        xlwings_conf_sheet(wb, UDF_MODULE)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if streamed is None or data_rows is None:
        wb.save(out)
    else:
        save_with_streamed_rows(wb, out, [streamed, data_rows])
    return out


def _input_error(message: str) -> Exception:
    from leverage.errors import InputError

    return InputError(message)
