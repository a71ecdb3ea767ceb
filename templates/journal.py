"""The trading-journal workbook: Positions, Events (with every computed column), Rules, Chart.

The Events sheet replays the journal the way :func:`leverage.journal.replay` does, with one
formula per cell so a trader who types a new event sees its row compute. A position's running
state (open qty, margin, entry, ...) is carried from the previous row of the same position:
a hidden helper column finds that row (``SUMPRODUCT(MAX((B$1:B<r-1>=B<r>)*ROW(...)))``, which
works in Excel, LibreOffice, Google Sheets and the ``formulas`` engine) and ``INDEX`` reads the
state there. A row that cannot be applied keeps the previous state and says why in Status.

In udf mode the add-in's functions are not called in each row: each call a row makes is one
array formula over the whole table in a hidden column, which the row's cell reads
(templates._book.ColumnCalls), so a recalculation makes the same few calls for any length.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from openpyxl.chart import LineChart, Reference
from openpyxl.workbook import Workbook

from leverage import Number
from leverage.core import SIDE
from leverage.journal import CASH_FLOW, OPTIONAL_PRICE, PRICE, replay
from leverage.layout import (
    CHART_SHEET,
    EVENT_TYPES,
    FIRST_DATA_ROW,
    JOURNAL_EVENTS,
    JOURNAL_HELPERS,
    JOURNAL_POSITIONS,
    JOURNAL_RULES,
    RULE_ROWS,
    rule_row,
)
from leverage.models import AdjustmentRule
from leverage.rules import RULE_TEXT, SEPARATOR

from . import _formulas as F
from ._book import (
    ABOVE,
    ROW,
    STREAMABLE,
    WRAP,
    CellMaker,
    ColumnCalls,
    StreamedRows,
    all_of,
    check_mode,
    check_rows,
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
    save_with_streamed_rows,
    xlwings_conf_sheet,
)

UDF_MODULE = "leverage_addin.udfs"
BLANK_EXTRA_ROWS = 200  # formula rows ready for new events below the data
CELL_ROWS = 250
"""Events rows written as openpyxl cells (all of them for the sample journal); the rows of a
longer journal after these are streamed as the same XML text (templates._book): a
10,000-event journal builds in ~0.9 s instead of ~8 s."""
POSITION_ROWS = 200  # rows of the Positions sheet the events look up
EVENTS = JOURNAL_EVENTS.title
POSITIONS = JOURNAL_POSITIONS.title
RULES = JOURNAL_RULES.title

def _refs(r: str, above: str, position_rows: int) -> dict[str, str]:
    """Cell references of row ``r`` (``above`` = the row above; both as written in the
    formula): layout keys, ``h_<helper>``, ``up_<key>`` (the column from row 1 down to the
    row above, for looking back) and Positions/Rules cells."""
    refs: dict[str, str] = {}
    for key in JOURNAL_EVENTS.keys(None):
        refs[key] = f"{JOURNAL_EVENTS.letter(key)}{r}"
    for key in JOURNAL_HELPERS.helper_keys():
        refs["h_" + key] = f"{JOURNAL_HELPERS.letter(key)}{r}"
    for key in ("qty_open", "margin", "mark_price", "realized_pnl", "funding"):
        col = JOURNAL_EVENTS.letter(key)
        refs["up_" + key] = f"${col}$1:${col}${above}"
    for key in ("entry", "init", "adds"):
        col = JOURNAL_HELPERS.letter(key)
        refs["up_h_" + key] = f"${col}$1:${col}${above}"
    pid = JOURNAL_EVENTS.letter("position_id")
    refs["up_position_id"] = f"${pid}$1:${pid}${above}"
    last = FIRST_DATA_ROW + position_rows - 1
    for key in JOURNAL_POSITIONS.keys(None):
        col = JOURNAL_POSITIONS.letter(key)
        refs["pos_" + key] = f"{POSITIONS}!${col}${FIRST_DATA_ROW}:${col}${last}"
    for key, *_ in RULE_ROWS:
        refs["rule_" + key] = f"{RULES}!$B${rule_row(key)}"
    return refs


PROBE_ID = "p1"


@functools.cache
def _replay_says(*events: tuple[str, float | None, float | None, float | None]) -> str:
    """The core's status of the last of ``events`` (``(event, price, qty, amount)`` of one
    position) when replayed: the words the sheet shows for such a row."""
    rows = [{"position_id": PROBE_ID, "event": e, "price": p, "qty": q, "amount": a}
            for e, p, q, a in events]
    status = replay([{"position_id": PROBE_ID, "side": "long"}], rows).columns["status"][-1]
    assert status, f"no status for the probe {events}"
    return status


OPEN = ("open", 100.0, 3.25, 1234.5)  # the probe position: qty 3.25 on 1234.5 margin


def _error_formula(x: dict[str, str]) -> str:
    """Why the event cannot be applied, in the core's words ("" when it can)."""
    kind, had = x["h_kind"], f"ISNUMBER({x['h_p_entry']})"
    word = f"LOWER(TRIM({x['event']}))"

    def when(k: int, cond: str) -> str:
        return f"IF({kind}={k},{cond},FALSE)"

    def field(k: int, key: str, rule: Number) -> list[tuple[str, str]]:
        return [(when(k, c), m) for c, m in F.number_checks(x[key], key, rule)]

    def beyond_margin(amount: str) -> str:
        message = _replay_says(OPEN, ("withdraw_margin", 100.0, None, 5678.25))
        return F.said(message, {"1234.5": x["h_p_margin"], "5678.25": amount})

    unknown_position = replay([], [{"position_id": PROBE_ID, "event": "open"}]).columns
    unknown_event = _replay_says(("zq9", None, None, None))
    checks: list[tuple[str, str]] = [
        (f"{x['h_pos']}=0", F.said(unknown_position["status"][0],
                                   {PROBE_ID: f"TRIM({x['position_id']})"})),
        (f"{x['h_side']}=0", quoted(f"side on the {POSITIONS} sheet {SIDE.describe()}")),
        (f"{kind}=0", F.said(unknown_event, {"zq9": word})),
        (when(1, had), quoted(_replay_says(OPEN, OPEN))),
        *field(1, "price", PRICE),
        *field(1, "qty", PRICE),
        *field(1, "amount", PRICE),
        (f"IF({kind}>1,NOT({had}),FALSE)",
         F.said(_replay_says(("add_margin", 100.0, None, 1.0)), {"add_margin": word})),
        (f"IF({kind}>1,{x['h_p_qty']}=0,FALSE)",
         F.said(_replay_says(OPEN, ("close", 100.0, None, None), ("add_margin", 100.0, None, 1.0)),
                {"add_margin": word})),
        *[(f"IF({kind}>1,IF({kind}<6,{c},FALSE),FALSE)", m)
          for c, m in F.number_checks(x["price"], "price", PRICE)],
        *field(6, "price", OPTIONAL_PRICE),
        *field(2, "amount", PRICE),
        *field(3, "amount", PRICE),
        (when(3, f"{x['amount']}>{x['h_p_margin']}"), beyond_margin(x["amount"])),
        *field(4, "qty", PRICE),
        (when(4, f"{x['qty']}>={x['h_p_qty']}"),
         F.said(_replay_says(OPEN, ("partial_close", 100.0, 9.75, None)),
                {"3.25": x["h_p_qty"], "9.75": x["qty"]})),
        *field(4, "amount", OPTIONAL_PRICE),
        (when(4, f"{x['h_released']}>{x['h_p_margin']}"), beyond_margin(x["h_released"])),
        *field(6, "amount", CASH_FLOW),
    ]
    return f'IF({x["h_used"]}=0,"",{nested_if(checks, chr(34) * 2)})'


def _rule_breaks_formula(x: dict[str, str], mode: str = "native") -> str:
    """Each broken rule's words (RULE_TEXT, in its order) joined with "; "."""
    kind, frac = x["h_kind"], x["h_pnl_fraction"]

    def rule(key: str, *conds: str) -> str:
        return all_of(conds, quoted(SEPARATOR + RULE_TEXT[key]))

    def r(key: str) -> str:
        return x["rule_" + key]

    parts = [
        rule("max_leverage", f"ISNUMBER({r('max_leverage')})",
             f"ISNUMBER({x['effective_leverage']})",
             f"{x['effective_leverage']}>{r('max_leverage')}"),
        rule("max_margin_per_event", f"{kind}=2", f"ISNUMBER({r('max_margin_per_event')})",
             f"{x['amount']}>{r('max_margin_per_event')}"),
        rule("max_adds_while_losing", f"{kind}=2", f"{frac}<0",
             f"ISNUMBER({r('max_adds_while_losing')})",
             f"{x['h_adds']}>{r('max_adds_while_losing')}"),
        rule("add_only_below_pnl", f"{kind}=2", f"ISNUMBER({r('add_only_below_pnl')})",
             f"{frac}>{r('add_only_below_pnl')}"),
        rule("withdraw_only_above_pnl", f"{kind}=3", f"ISNUMBER({r('withdraw_only_above_pnl')})",
             f"{frac}<{r('withdraw_only_above_pnl')}"),
        rule("close_if_loss_beyond", f"{kind}=2", f"ISNUMBER({r('close_if_loss_beyond')})",
             f"{frac}<=-{r('close_if_loss_beyond')}"),
        rule("min_liq_distance", f"ISNUMBER({r('min_liq_distance')})",
             f"ISNUMBER({x['liq_distance']})",
             f"{r('min_liq_distance')}>{x['liq_distance']}"),
        rule("add_within_buffer", f"{kind}=2", f"ISNUMBER({r('add_within_buffer')})",
             f"ISNUMBER({x['liq_distance']})",
             f"{r('add_within_buffer')}>{x['liq_distance']}"),
        _odds_rule(x, mode),
    ]
    assert len(parts) == len(RULE_TEXT)
    joined = "&".join(parts)
    skip = len(SEPARATOR) + 1
    return f'IF({x["h_used"]}=0,"",IF({x["h_error"]}<>"","",MID({joined},{skip},999)))'


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


def row_formulas(r: int, mode: str, position_rows: int = POSITION_ROWS) -> dict[str, str]:
    """Every computed and helper formula of Events row ``r`` (keys: layout keys and
    ``h_<helper>``), without the leading ``=``."""
    return {k: fill_row(f, r) for k, f in _formula_templates(mode, position_rows).items()}


def _formula_templates(mode: str, position_rows: int = POSITION_ROWS) -> dict[str, str]:
    """:func:`row_formulas` of any row, written once: ``ROW``/``ABOVE`` (templates._book)
    stand where the row's number and the number of the row above go. In udf mode each
    add-in call reads its column call's cell instead (:func:`column_calls`)."""
    return _lifted(mode, position_rows)[0]


def column_calls(mode: str, position_rows: int = POSITION_ROWS) -> ColumnCalls | None:
    """udf mode: the add-in calls of an Events row, each computed for all rows by one array
    formula in a hidden column after the helpers (templates._book.ColumnCalls); None in
    native mode."""
    return _lifted(mode, position_rows)[1]


@functools.lru_cache(maxsize=8)
def _lifted(mode: str, position_rows: int) -> tuple[dict[str, str], ColumnCalls | None]:
    formulas = _row_formulas(_refs(ROW, ABOVE, position_rows), mode)
    if mode != "udf":
        return formulas, None
    calls = ColumnCalls(len(JOURNAL_EVENTS.columns) + len(JOURNAL_HELPERS.columns) + 1)
    return calls.lift(formulas), calls


def _row_formulas(x: dict[str, str], mode: str) -> dict[str, str]:
    """The formulas of the row whose cell references are ``x`` (:func:`_refs`)."""
    used, err, kind = x["h_used"], x["h_error"], x["h_kind"]
    side_num = x["h_side"]
    contract = x["h_contract"]
    entry_after = x["h_entry"]
    has_state = f"ISNUMBER({entry_after})"
    inputs = "&".join(x[k] for k in ("position_id", "event", "price", "qty", "amount"))

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

    def lookup(key: str, default: str) -> str:
        value = f"INDEX({x['pos_' + key]},{x['h_pos']})"
        return blank_unless_used(f'IF({x["h_pos"]}=0,"",IF({value}="",{default},{value}))')

    side_word = f"INDEX({x['pos_side']},{x['h_pos']})"
    pq, pm, pe = x["h_p_qty"], x["h_p_margin"], x["h_p_entry"]
    pr, pf = x["h_p_realized"], x["h_p_funding"]
    qty, amount, price = x["qty"], x["amount"], x["price"]

    def pnl_at(q: str) -> str:
        return F.unrealized_pnl(mode, side_num, q, pe, x["h_price_used"], contract)

    f: dict[str, str] = {
        "h_used": f'IF(LEN({inputs})=0,0,1)',
        "h_prev": blank_unless_used(
            f"SUMPRODUCT(MAX(({x['up_position_id']}={x['position_id']})"
            f"*ROW({x['up_position_id']})))"
        ),
        "h_pos": blank_unless_used(
            f"IF({x['position_id']}=\"\",0,IFERROR(MATCH({x['position_id']},"
            f"{x['pos_position_id']},0),0))"
        ),
        "h_side": blank_unless_used(
            f'IF({x["h_pos"]}=0,"",{F.choice_value(side_word, SIDE, "0")})'
        ),
        "h_contract": blank_unless_used(
            f'IF({x["h_pos"]}=0,"",IF(INDEX({x["pos_contract"]},{x["h_pos"]})'
            f'="inverse","inverse","linear"))'
        ),
        "h_mmr": lookup("mmr", "0.005"),
        "h_maint": lookup("maint_amount", "0"),
        "h_kind": blank_unless_used(nested_if(
            [(f'TRIM({x["event"]})="{t}"', str(i)) for i, t in enumerate(EVENT_TYPES, start=1)], "0"
        )),
        "h_p_qty": before("qty_open", "up_qty_open"),
        "h_p_margin": before("margin", "up_margin"),
        "h_p_mark": before("mark_price", "up_mark_price"),
        "h_p_entry": before("entry", "up_h_entry"),
        "h_p_init": before("init", "up_h_init"),
        "h_p_realized": before("realized_pnl", "up_realized_pnl"),
        "h_p_funding": before("funding", "up_funding"),
        "h_p_adds": before("adds", "up_h_adds"),
        "h_price_used": blank_unless_used(
            f'IF({kind}=6,IF({price}="",{x["h_p_mark"]},{price}),{price})'
        ),
        "h_released": blank_unless_used(all_of(
            [f"{kind}=4", f"ISNUMBER({pq})", f"{pq}>0", f"ISNUMBER({qty})"],
            f'IF({amount}="",{pm}*{qty}/{pq},{amount})',
        )),
        "h_error": _error_formula(x),
        "h_pnl_fraction": blank_unless_used(
            f'IF({err}<>"","",IF({kind}=1,0,({pnl_at(pq)})/{x["h_p_init"]}))'
        ),
        "h_entry": state(f"IF({kind}=1,{price},{pe})", pe),
        "h_init": state(f"IF({kind}=1,{amount},{x['h_p_init']})", x["h_p_init"]),
        "h_adds": state(
            f"IF({kind}=1,0,IF({kind}=2,IF({x['h_pnl_fraction']}<0,{x['h_p_adds']}+1,"
            f"{x['h_p_adds']}),{x['h_p_adds']}))",
            x["h_p_adds"],
        ),
        "qty_open": state(f"CHOOSE({kind},{qty},{pq},{pq},{pq}-{qty},0,{pq})", pq),
        "margin": state(
            f"CHOOSE({kind},{amount},{pm}+{amount},{pm}-{amount},{pm}-{x['h_released']},0,{pm})",
            pm,
        ),
        "mark_price": state(x["h_price_used"], x["h_p_mark"]),
        "realized_pnl": state(
            f"CHOOSE({kind},0,{pr},{pr},{pr}+{pnl_at(qty)},{pr}+{pnl_at(pq)},{pr})", pr
        ),
        "funding": state(f"CHOOSE({kind},0,{pf},{pf},{pf},{pf},{pf}+{amount})", pf),
    }
    q, m, mark = x["qty_open"], x["margin"], x["mark_price"]
    upnl, eq, liq = x["unrealized_pnl"], x["equity"], x["liq_price"]

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
        "liq_price": open_only(
            F.liq_price(mode, side_num, q, entry_after, m, x["h_mmr"], x["h_maint"], contract)
        ),
        "liq_distance": f'IF(ISNUMBER({liq}),{F.liq_distance(mode, side_num, mark, liq)},"")',
        "rule_breaks": _rule_breaks_formula(x, mode),
        "status": blank_unless_used(
            f'IF({err}<>"",{err},{open_only(f"IF({eq}<=0,{F.bankrupt(eq)},{chr(34) * 2})")})'
        ),
    })
    return f


# ------------------------------------------------------------------ writing
WRAPPED: tuple[str, ...] = ()  # rows keep one line: wrapped text overlaps in print
CHART_MIN_ROWS = 20


def _positions_sheet(wb: Workbook, positions: Sequence[Mapping[str, Any]], rows: int) -> None:
    sheet = JOURNAL_POSITIONS
    last = FIRST_DATA_ROW + rows - 1
    ws = prepare_sheet(wb, sheet.title, [c.width for c in sheet.columns],
                       print_to=(len(sheet.columns), last), landscape=False)
    mk = CellMaker(ws)
    drop_downs(ws, sheet, FIRST_DATA_ROW, last)
    for key in ("mmr", "maint_amount"):
        col = sheet.letter(key)
        number_validation(ws, f"{col}{FIRST_DATA_ROW}:{col}{last}", key)
    ws.append(header_cells(mk, sheet))
    for i in range(rows):
        p = positions[i] if i < len(positions) else {}
        ws.append([mk.text(p.get(c.key), c.number_format) for c in sheet.columns])


def _rules_sheet(wb: Workbook, rule_values: Mapping[str, Any]) -> None:
    sheet = JOURNAL_RULES
    ws = prepare_sheet(wb, sheet.title, [c.width for c in sheet.columns])
    mk = CellMaker(ws)
    ws.append(header_cells(mk, sheet))
    for key, fmt, meaning in RULE_ROWS:
        ws.append([mk.cell(key), mk.text(rule_values.get(key), fmt), mk.cell(meaning)])
    ws.append([])
    ws.append([mk.cell("Write these before opening a position; leave a value blank for no "
                       "such rule. PnL thresholds are fractions of the initial margin.")])
    for key, *_ in RULE_ROWS:
        number_validation(ws, f"B{rule_row(key)}", key, -1e9 if "pnl" in key else 0.0)


def _events_sheet(
    wb: Workbook, events: Sequence[Mapping[str, Any]], rows: int, mode: str, position_rows: int
) -> StreamedRows | None:
    """The Events sheet. Its first :data:`CELL_ROWS` rows are written as openpyxl cells; the
    rest, if any, come back as :class:`StreamedRows` for :func:`save_with_streamed_rows`
    (the same XML, as text: see templates._book)."""
    sheet, helpers = JOURNAL_EVENTS, JOURNAL_HELPERS
    calls = column_calls(mode, position_rows)
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
    formulas = _formula_templates(mode, position_rows)
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

    cell_rows = min(rows, CELL_ROWS) if STREAMABLE else rows
    for i in range(cell_rows):
        r = first + i
        cells = [mk.text(v, fmt, align) for v, (_, _, fmt, align) in zip(values(i), inputs,
                                                                          strict=True)]
        cells += [mk.cell("=" + fill_row(formulas[key], r), fmt, align=align)
                  for _, key, fmt, align in computed]
        if i == 0:  # the add-in's column calls: one array formula each, over all rows
            cells += [mk.cell(c.formula(first, last)) for c in call_list]
        ws.append(cells)
    if cell_rows == rows:
        return None
    # Built only now, after openpyxl wrote the first rows: a style's id is the order in which
    # openpyxl first met it, and asking for one registers it.
    template = "".join(mk.formula_xml(column, formulas[key], fmt, align)
                       for column, key, fmt, align in computed)
    input_cells = [
        "".join(mk.text_xml(first + i, column, v, fmt, align)
                for v, (column, _, fmt, align) in zip(values(i), inputs, strict=True))
        for i in range(cell_rows, rows)
    ]
    return StreamedRows(ws, first + cell_rows, template, input_cells)


def _cell_value(v: Any) -> Any:
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, dt.date | dt.datetime | str | int | float) or v is None:
        return v
    return str(v)


def _chart_sheet(wb: Workbook, rows: int) -> None:
    """Effective leverage (left axis) and liquidation distance (right axis) per event, over
    the first ``rows`` event rows (spreadsheets plot the blank "" of an empty row as 0, so
    the chart covers the rows in use rather than every formula row)."""
    ws = prepare_sheet(wb, CHART_SHEET, [12.0] * 16, freeze=None, header_height=None)
    ws.print_options.gridLines = False
    ws.append(["Effective leverage (equity-based, left axis) and liquidation distance (right "
               "axis) after each event, in event order. It covers Events rows "
               f"{FIRST_DATA_ROW}-{FIRST_DATA_ROW + rows - 1}: to plot more, extend its data "
               "range (right-click the chart, Select Data)."])
    first, last = FIRST_DATA_ROW, FIRST_DATA_ROW + rows - 1
    events = wb[EVENTS]

    def ref(key: str, header: bool = True) -> Reference:
        col = JOURNAL_EVENTS.index(key) + 1
        return Reference(events, min_col=col, min_row=first - (1 if header else 0), max_row=last)

    lev = LineChart()
    lev.title = "Leverage and liquidation distance"
    lev.height, lev.width = 11, 26
    lev.add_data(ref("effective_leverage"), titles_from_data=True)
    lev.y_axis.title = "Leverage (x)"
    lev.y_axis.number_format = '0.0"x"'
    lev.y_axis.majorGridlines = None
    lev.x_axis.number_format = "yyyy-mm-dd"
    lev.set_categories(ref("date", header=False))
    dist = LineChart()
    dist.add_data(ref("liq_distance"), titles_from_data=True)
    dist.y_axis.axId = 200
    dist.y_axis.title = "Liquidation distance"
    dist.y_axis.number_format = "0%"
    dist.y_axis.crosses = "max"
    lev.x_axis.delete = False
    lev.y_axis.delete = False
    dist.y_axis.delete = False
    for series in (*lev.series, *dist.series):
        series.smooth = False  # a smoothed line would invent values between events
    lev += dist
    lev.legend.position = "b"
    ws.add_chart(lev, "A3")


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

    wb = Workbook(write_only=True)
    instructions_sheet(wb, "journal")  # the first tab
    _positions_sheet(wb, positions, position_rows)
    streamed = _events_sheet(wb, events, rows, mode, position_rows)
    _rules_sheet(wb, rule_values)
    for sheet, last in ((JOURNAL_POSITIONS, FIRST_DATA_ROW + position_rows - 1),
                        (JOURNAL_EVENTS, FIRST_DATA_ROW + rows - 1),
                        (JOURNAL_RULES, rule_row(RULE_ROWS[-1][0]))):
        input_prompts(wb[sheet.title], sheet, FIRST_DATA_ROW, last)
    _chart_sheet(wb, len(events) or CHART_MIN_ROWS)
    if mode == "udf":
        xlwings_conf_sheet(wb, UDF_MODULE)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if streamed is None:
        wb.save(out)
    else:
        save_with_streamed_rows(wb, out, streamed)
    return out


def _input_error(message: str) -> Exception:
    from leverage.errors import InputError

    return InputError(message)
