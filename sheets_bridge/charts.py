"""The journal's Charts tab: per-position leverage and liquidation distance over time, and the
equity curve, drawn from chart-data columns that formulas fill from the synced sheets.

Each slot is a cell where the trader picks a Position ID (prefilled with the positions of the
sample) and a chart beside it. Its chart data sits in columns right of the charts, hidden:

* Google Sheets: one ``SORT(FILTER(...))`` per column over open-ended ranges (``Events!A2:A``),
  so rows typed later appear, rows of other positions and closed rows (open qty 0) are left
  out, and the points come in date order;
* Excel and LibreOffice (the local file): one formula per row over the formatted rows,
  ``=IF(AND(id matches, open qty > 0, ISNUMBER(x)), x, NA())``: #N/A is no point, and the
  chart spans the gaps (``dispBlanksAs="span"``), so each position is one unbroken line.

The sync only writes values into the Events and Summary sheets; the spreadsheet app
recomputes the chart data from them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

from leverage import journal
from leverage.errors import LeverageError
from leverage.layout import (
    FIRST_DATA_ROW,
    JOURNAL_EVENTS,
    JOURNAL_POSITIONS,
    JOURNAL_SUMMARY,
    column_letter,
)

CHARTS_SHEET = "Charts"
SLOT_ROWS = 20  # rows each slot takes: a label, the picked id, and the chart's height
MIN_SLOTS = 3
DATA_COLUMN = 30  # 1-based column of the first chart-data column (AD): right of the charts
# (key, label) of each series: a slot's are Events columns, named as their headers
SLOT_SERIES = tuple((k, JOURNAL_EVENTS.header(k))
                    for k in ("date", "effective_leverage", "liq_distance"))
EQUITY_SERIES = (("closed", JOURNAL_SUMMARY.header("closed")), ("equity_after", "Equity curve"))
POSITION_LABEL = JOURNAL_POSITIONS.header("position_id")
CURRENCY_LABEL = "Equity curve: margin currency"

Flavour = Literal["google", "excel"]
Part = Literal["all", "labels", "data"]
_ROW_MARK = "\x00"  # stands for the row number in a formula cut around it


class Formula(str):
    """A cell holding a formula (written as a formula, never as RAW text)."""


class ArrayFormula(Formula):
    """A one-cell array (Ctrl+Shift+Enter) formula: Excel and LibreOffice evaluate its
    ``IF`` over whole ranges."""


EQUITY_ROWS = 500  # closed positions the local equity curve has room for


def series_formats(equity: bool) -> list[str]:
    """Number formats of a slot's chart-data columns (the equity curve's with ``equity``),
    the layout's formats of the columns they come from."""
    if equity:
        return [JOURNAL_SUMMARY.columns[JOURNAL_SUMMARY.index(k)].number_format
                for k, _ in EQUITY_SERIES]
    return [JOURNAL_EVENTS.columns[JOURNAL_EVENTS.index(k)].number_format
            for k, _ in SLOT_SERIES]


def chart_tabs(template: str) -> tuple[str, ...]:
    return (CHARTS_SHEET,) if template == "journal" else ()


def slot_count(positions: int) -> int:
    """Slots on the Charts tab: the positions of the workbook and two more, at least 3."""
    return max(MIN_SLOTS, positions + 2)


def slot_row(k: int) -> int:
    """Row of slot ``k``'s label (the picked id is the row below; the chart starts there)."""
    return 1 + k * SLOT_ROWS


def data_column(k: int) -> int:
    """First chart-data column of slot ``k`` (``k`` = slots: the equity curve's)."""
    return DATA_COLUMN + k * len(SLOT_SERIES)


def chart_width(slots: int) -> int:
    return data_column(slots) + len(EQUITY_SERIES) - 1


def _events(key: str, row: int | str | None = None) -> str:
    col = JOURNAL_EVENTS.letter(key)
    if row is None:
        return f"{JOURNAL_EVENTS.title}!${col}${FIRST_DATA_ROW}:${col}"
    return f"{JOURNAL_EVENTS.title}!${col}{row}"


def _summary(key: str, row: int | None = None) -> str:
    col = JOURNAL_SUMMARY.letter(key)
    if row is None:
        return f"{JOURNAL_SUMMARY.title}!${col}${FIRST_DATA_ROW}:${col}"
    return f"{JOURNAL_SUMMARY.title}!${col}{row}"


def _google_filtered(column: str, by: str, conditions: str) -> str:
    """``column``'s rows that meet ``conditions``, sorted by the same rows of ``by``, ties by
    row number: every column of a chart sorts on the same two keys, so its points stay
    aligned whether or not SORT is stable. One column a formula, no ``{a, b}`` array
    literal, whose column separator changes with the spreadsheet's locale."""
    return (f"=IFERROR(SORT(FILTER({column}, {conditions}), FILTER({by}, {conditions}), "
            f"TRUE, FILTER(ROW({by}), {conditions}), TRUE))")


def _google_slot(pick: str, key: str) -> str:
    lev = _events("effective_leverage")
    conditions = (f"{_events('position_id')}={pick}, {_events('qty_open')}>0, "
                  f"ISNUMBER({lev})")
    return _google_filtered(_events(key), _events("date"), conditions)


def _google_equity(pick: str, key: str) -> str:
    conditions = f"{_summary('currency')}={pick}, ISNUMBER({_summary('equity_after')})"
    return _google_filtered(_summary(key), _summary("closed"), conditions)


def _excel_slot(pick: str, row: int | str, key: str) -> str:
    ok = (f"AND({_events('position_id', row)}={pick},ISNUMBER({_events('qty_open', row)}),"
          f"{_events('qty_open', row)}>0,ISNUMBER({_events('effective_leverage', row)}))")
    return f"=IF({ok},{_events(key, row)},NA())"


def _excel_equity(pick: str, row: int, key: str, x_cell: str) -> str:
    """The ``row - 1``-th closed position of the currency in close-date order: the Summary
    lists positions in the Positions sheet's order, so the curve sorts them itself (SORT and
    FILTER are not in LibreOffice 7.4). Each close date gets ROW()/1E9 of a day added, so
    ties keep the Summary's order and each point finds its own equity."""
    last = FIRST_DATA_ROW + EQUITY_ROWS - 1

    def rng(k: str) -> str:
        col = JOURNAL_SUMMARY.letter(k)
        return f"{JOURNAL_SUMMARY.title}!${col}${FIRST_DATA_ROW}:${col}${last}"

    keyed = (f"IF(({rng('currency')}={pick})*ISNUMBER({rng('equity_after')}),"
             f"{rng('closed')}+ROW({rng('closed')})/1E9)")
    if key == "closed":
        return f"=IFERROR(SMALL({keyed},{row - FIRST_DATA_ROW + 1}),NA())"
    return f"=IFERROR(INDEX({rng('equity_after')},MATCH({x_cell},{keyed},0)),NA())"


EMPTY_NOTES = ("No points to draw: pick a Position ID above (its open rows are drawn).",
               "No points to draw: pick a margin currency with closed positions above.")


def _empty_note(column: int, last_row: int | None, note: str) -> str:
    """A formula showing ``note`` while the chart-data ``column`` holds no number (rows 2 to
    ``last_row``; None: open-ended, Google's form)."""
    col = column_letter(column)
    cells = f"${col}${FIRST_DATA_ROW}:${col}" + ("" if last_row is None else f"${last_row}")
    return f'=IF(COUNT({cells})=0,"{note}","")'


def chart_cells(positions: Sequence[Any], currency: str | None, flavour: Flavour,
                data_rows: int = 1000, part: Part = "all") -> Iterator[tuple[int, int, Any]]:
    """The filled cells of the Charts tab, as (row, column, value), 1-based, row by row and
    left to right: each slot's label and picked id (the first ``positions`` ids prefilled;
    an unfilled slot's id is None), the equity curve's currency, and the chart-data columns
    (``flavour``: ``google`` formulas over open-ended ranges, or ``excel`` formulas on
    ``data_rows`` rows). ``part``: ``labels`` for column A and row 1 only, ``data`` for the
    chart data below row 1 only.

    Under each picked id, a note that shows while its chart has no point (an empty chart
    otherwise prints as a bare grid). Only the filled cells: the tab is ``slots x 20`` rows
    by ``3 x slots`` columns, mostly empty, so a grid of it grows with the square of the
    positions (5,000 positions: 1.5 billion cells), while the filled cells grow with
    positions x ``data_rows``.
    """
    slots = slot_count(len(positions))
    picks = [*positions, *[None] * slots][:slots]
    labels: dict[int, Any] = {}  # row -> column A
    for k, pid in enumerate(picks):
        labels[slot_row(k)] = POSITION_LABEL
        labels[slot_row(k) + 1] = pid
    labels[slot_row(slots)] = CURRENCY_LABEL
    labels[slot_row(slots) + 1] = currency
    last_row = None if flavour == "google" else FIRST_DATA_ROW + max(data_rows, EQUITY_ROWS) - 1
    for k in range(slots + 1):  # an empty chart says why, beside it
        labels[slot_row(k) + 2] = Formula(_empty_note(data_column(k) + 1, last_row,
                                                      EMPTY_NOTES[k == slots]))
    picked = [f"$A${slot_row(k) + 1}" for k in range(slots + 1)]
    height = max(slot_row(slots) + 2,  # the equity slot's note the lowest label
                 1 + (max(data_rows, EQUITY_ROWS) if flavour == "excel" else 1))
    # the last row holding chart data: rows below it hold slot labels only
    last_data = FIRST_DATA_ROW if flavour == "google" else max(data_rows, EQUITY_ROWS) + 1
    # Each excel slot formula cut around its row number, so a cell costs one join (a
    # journal of 100,000 events has 15 million of them)
    cut = {(k, key): _excel_slot(picked[k], _ROW_MARK, key).split(_ROW_MARK)
           for k in range(slots) for key, _ in SLOT_SERIES} if flavour == "excel" else {}
    for r in range(1, height + 1):
        if r in labels and part != "data":
            yield r, 1, labels[r]
        if (r == 1 and part == "data") or (r > 1 and part == "labels"):
            continue
        row = str(r)
        for k in range(slots + 1 if r <= last_data else 0):
            equity = k == slots
            series = EQUITY_SERIES if equity else SLOT_SERIES
            first = data_column(k)
            if r == 1:
                for j, (_key, label) in enumerate(series):
                    yield r, first + j, label if equity else f"{label} ({k + 1})"
            elif flavour == "google":
                if r == FIRST_DATA_ROW:
                    for j, (key, _) in enumerate(series):
                        yield r, first + j, Formula(_google_equity(picked[k], key) if equity
                                                    else _google_slot(picked[k], key))
            elif equity:
                if r < EQUITY_ROWS + FIRST_DATA_ROW:
                    x_cell = f"{column_letter(first)}{r}"
                    for j, (key, _) in enumerate(series):
                        yield r, first + j, ArrayFormula(_excel_equity(picked[k], r, key, x_cell))
            elif r < data_rows + FIRST_DATA_ROW:
                for j, (key, _) in enumerate(series):
                    yield r, first + j, Formula(row.join(cut[k, key]))


def chart_rows(positions: Sequence[Any], currency: str | None, flavour: Flavour,
               data_rows: int = 1000) -> list[list[Any]]:
    """The Charts tab from row 1 as a grid (None: an empty cell) of :func:`chart_cells`."""
    slots = slot_count(len(positions))
    height = max(slot_row(slots) + 2,  # the equity slot's note the lowest label
                 1 + (max(data_rows, EQUITY_ROWS) if flavour == "excel" else 1))
    grid: list[list[Any]] = [[None] * chart_width(slots) for _ in range(height)]
    for r, c, value in chart_cells(positions, currency, flavour, data_rows):
        grid[r - 1][c - 1] = value
    return grid


def chart_picks(rows: dict[str, list[list[Any]]]) -> tuple[list[Any], str | None]:
    """The Position IDs (and the first margin currency) of the rows ``init`` writes on the
    Positions sheet: the Charts tab's slots start with them."""
    keys = JOURNAL_POSITIONS.keys()
    ids: list[Any] = []
    currency = None
    for row in rows.get(JOURNAL_POSITIONS.title, [])[1:]:
        fields = {k: v for k, v in zip(keys, row, strict=False) if v not in (None, "")}
        if "position_id" not in fields:
            continue
        ids.append(fields["position_id"])
        if currency is None:
            try:  # the currency the journal gives it (blank: quote or coin)
                currency = journal.JournalPosition.build(**fields).currency
            except LeverageError:
                continue
    return ids, currency
