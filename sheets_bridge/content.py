"""The cells ``init`` writes: headers, the rule and account labels, and optional sample rows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from leverage.errors import InputError
from leverage.instructions import EXAMPLES, INSTRUCTIONS, INSTRUCTIONS_SHEET, prompt
from leverage.layout import (
    ACCOUNT_INPUT_ROWS,
    ACCOUNT_OUTPUT_ROWS,
    FIRST_DATA_ROW,
    JOURNAL_SUMMARY,
    RULE_ROWS,
    SUMMARY_TOTALS,
    TEMPLATES,
    Column,
    Sheet,
)

from .backend import Grid, LayoutError, serial_date

SUMMARY = Sheet(
    JOURNAL_SUMMARY.title,
    (
        *JOURNAL_SUMMARY.columns,
        *(Column(f"_gap{i}", "", "computed", width=3)
          for i in range(SUMMARY_TOTALS.first_column - len(JOURNAL_SUMMARY.columns) - 1)),
        *SUMMARY_TOTALS.columns,
    ),
)
"""The Summary sheet as one row of columns (its per-position table, the blank column, its
totals table): what ``init`` lays out and the sync reads. Keys repeat across the two tables,
so the sync addresses each table through its own spec (``JOURNAL_SUMMARY``, ``SUMMARY_TOTALS``)."""
if SUMMARY.headers[SUMMARY_TOTALS.first_column - 1] != SUMMARY_TOTALS.headers[0]:  # not -O
    raise RuntimeError("the Summary's totals table does not start at its first_column")


def bridge_sheets(template: str) -> tuple[Sheet, ...]:
    """The template's sheets as the bridge lays them out and syncs them, in order."""
    if template not in TEMPLATES:
        raise InputError(f"template must be one of {', '.join(TEMPLATES)}, got {template!r}")
    return tuple(SUMMARY if s.title == SUMMARY.title else s for s in TEMPLATES[template])


INSTRUCTION_HEADERS = ["Topic", "What to know"]
INSTRUCTION_WIDTHS = (26.0, 110.0)  # characters, as Column.width


def header_lines(sheet: Sheet) -> int:
    """Lines the tallest wrapped header of ``sheet`` needs at its column's width (words are
    not split, so a word longer than the width takes a line of its own).

    >>> header_lines(TEMPLATES["journal"][1])
    3
    """
    most = 1
    for col in sheet.columns:
        lines, used = 1, 0
        fits = max(1, int(col.width) - 1)  # a margin each side of the text
        for word in col.header.split():
            need = len(word) if used == 0 else used + 1 + len(word)
            if need <= fits or used == 0:
                used = need
            else:
                lines, used = lines + 1, len(word)
        most = max(most, lines)
    return most


@dataclass(frozen=True)
class Prompt:
    """An input prompt on one column of a sheet, rows ``first_row``..``last_row`` (1-based;
    ``last_row`` None: every formatted row), with the column's drop-down list if it has one."""

    column: int  # 1-based
    first_row: int
    last_row: int | None
    title: str
    text: str
    choices: tuple[str, ...] = ()


def prompts(sheet: Sheet) -> list[Prompt]:
    """The input prompts of ``sheet`` from :data:`leverage.instructions.PROMPTS`: every typed
    (and imported) column of a data sheet, the label and value cells of the Rules and Account
    sheets. A drop-down column gets one rule with both its list and its prompt."""
    if sheet.title == "Rules":
        bounds: dict[str, tuple[int, int | None]] = {
            c.key: (FIRST_DATA_ROW, FIRST_DATA_ROW + len(RULE_ROWS) - 1) for c in sheet.columns}
    elif sheet.title == "Account":
        last_input = FIRST_DATA_ROW + len(ACCOUNT_INPUT_ROWS) - 1
        bounds = {"item": (FIRST_DATA_ROW, last_input + len(ACCOUNT_OUTPUT_ROWS)),
                  "value": (FIRST_DATA_ROW, last_input)}
    else:
        bounds = {c.key: (FIRST_DATA_ROW, None) for c in sheet.columns if c.role != "computed"}
    out = []
    for i, col in enumerate(sheet.columns, start=1):
        found = prompt(sheet.title, col.key)
        if found is None or col.key not in bounds:
            continue
        first, last = bounds[col.key]
        choices = col.choices if col.role == "input" else ()
        out.append(Prompt(i, first, last, found[0], found[1], choices))
    return out


EXTRA_WIDTH = 10  # columns the bridge reads and writes on its own tabs (Instructions)


@dataclass(frozen=True)
class Guide:
    """The Instructions tab: its rows from row 1, the rows that are bold headings, and the
    number format of each example cell ((row, column) 1-based -> pattern)."""

    rows: Grid
    headings: tuple[int, ...]
    formats: dict[tuple[int, int], str]


def instructions(template: str) -> Guide:
    """The Instructions tab (``INSTRUCTIONS_SHEET``): a header, one row per topic of
    :data:`leverage.instructions.INSTRUCTIONS`, then each worked example under the headers of
    its sheet's typed columns, in those columns' number formats."""
    rows: Grid = [list(INSTRUCTION_HEADERS)]
    rows += [[heading, text] for heading, text in INSTRUCTIONS[template]]
    headings: list[int] = [1]
    formats: dict[tuple[int, int], str] = {}
    sheets = {s.title: s for s in TEMPLATES[template]}
    shown: str | None = None
    for title, example in EXAMPLES[template]:
        sheet = sheets[title]
        cols = [c for c in sheet.columns if c.role != "computed"]
        if title != shown:
            rows += [[], [f"Example: {title} sheet"], [c.header for c in cols]]
            headings += [len(rows) - 1, len(rows)]
            shown = title
        rows.append([serial_date(example.get(c.key)) for c in cols])
        for j, c in enumerate(cols, start=1):
            if c.number_format != "General":
                formats[(len(rows), j)] = c.number_format
    return Guide(rows, tuple(headings), formats)


def instructions_rows(template: str) -> Grid:
    return instructions(template).rows


def check_extra_tab(title: str, grid: Grid, template: str) -> None:
    """A tab named like one the bridge adds (Instructions, Charts) must be the bridge's own:
    its A1 reads what init writes there, or it is empty. Anything else is the trader's, and
    init refuses rather than write over it."""
    from .charts import POSITION_LABEL  # the charts module reads this one's layout

    want = INSTRUCTION_HEADERS[0] if title == INSTRUCTIONS_SHEET else POSITION_LABEL
    first = grid[0][0] if grid and grid[0] else None
    if any(any(v not in (None, "") for v in row) for row in grid) and first != want:
        raise LayoutError(
            f"tab {title!r} already exists with other content (A1 does not read {want!r}): "
            f"rename or delete it, or use another file; init changes nothing"
        )


def _data_rows(sheet: Sheet, rows: Sequence[Mapping[str, Any]]) -> Grid:
    """Input cells of ``rows`` (dicts by column key); computed cells are left to the sync."""
    inputs = set(sheet.keys("input"))
    return [[r.get(c.key) if c.key in inputs else None for c in sheet.columns] for r in rows]


def _samples() -> Any:
    """The workbooks' worked samples (a pure-Python module: no openpyxl or lxml needed)."""
    try:
        from leverage_templates import samples
    except ImportError:
        raise InputError(
            "--sample needs the workbooks' samples (leverage_templates), which this "
            "installation does not have; run init without --sample"
        ) from None
    return samples


def layout_rows(template: str, sample: bool = False) -> dict[str, Grid]:
    """Sheet title -> rows from row 1 (headers first) that ``init`` writes RAW."""
    sheets = bridge_sheets(template)
    out: dict[str, Grid] = {INSTRUCTIONS_SHEET: instructions_rows(template)}
    out.update({s.title: [list(s.headers)] for s in sheets})
    positions: list[Any]  # the samples' rows (dicts by column key)
    if template == "journal":
        positions_sheet, events_sheet, _summary, rules_sheet = sheets
        positions, events, rule_values = _samples().sample_journal() if sample else ([], [], {})
        rule_values = dict(rule_values or {})
        out[rules_sheet.title] += [
            [key, rule_values.get(key), meaning] for key, _fmt, meaning in RULE_ROWS
        ]
        out[positions_sheet.title] += _data_rows(positions_sheet, positions)
        out[events_sheet.title] += _data_rows(events_sheet, events)
    else:
        account_sheet, positions_sheet = sheets
        balances: dict[str, Any] = {}
        positions = []
        if sample:
            samples = _samples()
            positions, wallet, free = samples.sample_portfolio()
            balances = {"wallet_balance": wallet, "free_balance": free,
                        "volatility": samples.SAMPLE_VOLATILITY,
                        "horizon_days": samples.SAMPLE_HORIZON_DAYS}
        out[account_sheet.title] += [[label, balances.get(key)]
                                     for key, label in ACCOUNT_INPUT_ROWS]
        out[account_sheet.title] += [[label, None] for _key, label in ACCOUNT_OUTPUT_ROWS]
        out[positions_sheet.title] += _data_rows(positions_sheet, positions)
    return out
