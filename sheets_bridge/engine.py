"""One sync: read every input in one read, compute with the core, write what changed in one write.

The engine never writes a column the layout marks ``input``: it writes the ``computed``
columns of the data sheet (and the Account sheet's output rows), only after the header row
matched the layout, and only the rows whose values changed. Nothing here re-derives a
formula: the journal goes through :func:`leverage.journal.replay`, the portfolio through
:func:`leverage.portfolio.rebalance`.
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import leverage as lv
from leverage import core, journal, portfolio
from leverage.errors import InputError, LeverageError
from leverage.layout import (
    ACCOUNT_INPUT_ROWS,
    ACCOUNT_OUTPUT_ROWS,
    FIRST_DATA_ROW,
    JOURNAL_SUMMARY,
    MONEY,
    SUMMARY_TOTALS,
    TEMPLATES,
    Sheet,
    coin_money,
    money_format,
)
from leverage.models import AdjustmentRule

from .backend import (
    Backend,
    Cell,
    Formats,
    FormatsBackend,
    FormatUpdate,
    Grid,
    LayoutError,
    RequestFailed,
    Update,
    a1,
    serial_date,
    within_deadline,
)
from .content import bridge_sheets

TEMPLATE_NAMES = tuple(TEMPLATES)
POSITION_RULES = {"side": core.SIDE, "contract": core.CONTRACT, "mmr": core.MMR,
                  "maint_amount": core.MAINT_AMOUNT}
"""The journal's Positions columns read by the formulas' own rules (side and contract as
+1/-1 and 0/1), in the order a row's first problem is reported."""
_TEXT_KEYS = frozenset({"position_id", "symbol", "event", "margin_mode", "contract"})
"""Inputs that are words: a number typed there (a position id of 7) is read as its text."""


@dataclass
class SyncReport:
    """What one sync did."""

    template: str
    rows_read: int = 0  # non-blank input rows of the data sheet
    rows_computed: int = 0  # of those, rows whose figures computed without a message
    rows_with_errors: int = 0  # rows with a message in the status column
    cells_written: int = 0
    formats_set: int = 0  # money cells given their currency's number format (Google)
    requests: int = 0  # API requests this sync sent (0 for a local file)
    changed: bool = False  # False: every computed cell held its value (and format): no write
    seconds: float = 0.0

    def __str__(self) -> str:
        wrote = (
            f"{self.cells_written} cells written" if self.changed else "no change, nothing written"
        )
        if self.formats_set:
            wrote += f", {self.formats_set} number formats set"
        return (
            f"{self.template}: {self.rows_read} rows read, {self.rows_computed} computed, "
            f"{self.rows_with_errors} with errors; {wrote}; {self.requests} API requests "
            f"in {self.seconds:.2f} s"
        )


# ------------------------------------------------------------------------ progress


class Progress:
    """A one-line progress bar on stderr: the sync has few steps, but a 10,000-row journal
    spends seconds in each, so the trader sees which one."""

    def __init__(self, enabled: bool | None = None, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled

    def __call__(self, step: int, total: int, label: str) -> None:
        if not self.enabled:
            return
        width = 20
        filled = width * step // total
        end = "\n" if step >= total else ""
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r[{bar}] {step}/{total} {label:<30}{end}")
        self.stream.flush()


ProgressFn = Callable[[int, int, str], None]


def _no_progress(step: int, total: int, label: str) -> None:
    return None


# ------------------------------------------------------------------------ cells


def _blank(v: Cell) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def _get(row: Sequence[Cell], i: int) -> Cell:
    v = row[i] if i < len(row) else None
    return None if _blank(v) else v


def _as_text(v: Cell) -> Cell:
    """A number in a word column becomes its text (7 -> "7", 7.5 -> "7.5")."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v.strip() if isinstance(v, str) else v
    if isinstance(v, int | float) and math.isfinite(v):
        return str(int(v)) if float(v).is_integer() else repr(float(v))
    return str(v)


def _out(v: Any) -> Cell:
    """A computed value as a cell: finite numbers stay numbers; nan, inf and "" are blank."""
    if isinstance(v, str):
        return v or None
    if v is None:
        return None
    if isinstance(v, dt.date):
        return serial_date(v)  # as both backends store a date: its serial number
    f = float(v)
    return f if math.isfinite(f) else None


def _same(old: Cell, new: Cell) -> bool:
    old = None if _blank(old) else old
    if old is None or new is None:
        return old is new
    if isinstance(new, float) and isinstance(old, int | float) and not isinstance(old, bool):
        # .xlsx stores 16 significant digits: a value read back may differ in the 17th
        return math.isclose(float(old), new, rel_tol=1e-14, abs_tol=0.0)
    return type(old) is type(new) and old == new


# ------------------------------------------------------------------------ layout checks


def read_ranges_for(template: str) -> list[str]:
    """The one read of a sync: each tab of the template from A1 to its last column."""
    return [a1(s.title, 1, 1, len(s.columns), None) for s in _sheets(template)]


def _sheets(template: str) -> tuple[Sheet, ...]:
    return bridge_sheets(template)


def check_headers(sheet: Sheet, grid: Grid, template: str) -> None:
    """Refuse to go on when row 1 is not the layout: a moved or renamed column would
    otherwise make the bridge write over the trader's own cells."""
    found = grid[0] if grid else []
    if not any(not _blank(v) for v in found):
        raise LayoutError(
            f"sheet {sheet.title!r} has no header row: run `leverage sheets init --template "
            f"{template}` first"
        )
    for i, col in enumerate(sheet.columns):
        got = found[i] if i < len(found) else None
        if (str(got).strip() if got is not None else "") != col.header:
            raise LayoutError(
                f"{sheet.title}!{sheet.letter(col.key)}1 must read {col.header!r}, found "
                f"{'' if got is None else str(got)!r}: the sheet's layout has changed, so the "
                "bridge will not write to it. Put the columns back as `leverage sheets init` "
                f"laid them out (your own columns go right of column "
                f"{sheet.letter(sheet.columns[-1].key)})"
            )


def _norm_label(v: Cell) -> str:
    return "" if v is None else str(v).strip().lower().replace(" ", "_")


# ------------------------------------------------------------------------ journal


@dataclass(frozen=True)
class _Money:
    """The money cells of one table whose number format follows the row's currency
    (:func:`leverage.layout.coin_money`): where the currency sits in a planned row, and the
    money columns as 0-based columns of the sheet."""

    currency: int
    columns: tuple[int, ...]

    def pattern(self, row: Sequence[Cell] | None) -> str:
        """The format of the row's money: a coin's 8 decimals, else 2."""
        return MONEY if row is None else money_format(row[self.currency])

    def stale(self, row: Sequence[Cell] | None, have: Sequence[str | None]) -> bool:
        """Whether a computed row's money cells hold another format than its currency's."""
        if row is None:
            return False  # a blank row shows no amount: its format is the next write's
        want = self.pattern(row)
        return any((have[c] if c < len(have) else None) != want for c in self.columns)

    def plan(self, title: str, rows: Sequence[Sequence[Cell] | None],
             formats: Formats | None) -> list[FormatUpdate]:
        """The formats to set: each run of data rows (``rows``, as planned) whose money is not
        in its currency's format, one block per run of adjacent money columns. A row whose
        format is right is left alone, whether its values change or not."""
        stale = [self.stale(row, _format_row(formats, r)) for r, row in enumerate(rows)]
        out = []
        for first, last in _runs(stale):
            for c0, c1 in _runs([c in self.columns for c in range(max(self.columns) + 1)]):
                out.append(FormatUpdate(
                    a1(title, c0 + 1, FIRST_DATA_ROW + first, c1 + 1, FIRST_DATA_ROW + last),
                    [[self.pattern(rows[r])] * (c1 - c0 + 1) for r in range(first, last + 1)]))
        return out


def _money(spec: Sheet, row_keys: Sequence[str], formats: Formats | None) -> _Money | None:
    """The money of ``spec`` whose format follows the currency, when the backend reads formats
    (``formats`` not None) and the table has such columns; ``row_keys``: the keys of a
    planned row of the table."""
    found = coin_money(spec)
    if formats is None or found is None:
        return None
    first = spec.first_column - 1
    return _Money(list(row_keys).index("currency"),
                  tuple(first + spec.index(k) for k in found[1]))


def _format_row(formats: Formats | None, r: int) -> Sequence[str | None]:
    """Data row ``r``'s patterns (0-based below the header; none past the read)."""
    if formats is None or r + 1 >= len(formats):
        return ()
    return formats[r + 1]


@dataclass
class _Plan:
    updates: list[Update] = field(default_factory=list)
    # money formats to set: rows whose format is not their currency's (a backend that reads
    # formats only: Google)
    formats: list[FormatUpdate] = field(default_factory=list)
    # every computed cell as the core computed it: (range of the block, values), changed or not
    targets: list[Update] = field(default_factory=list)
    rows_read: int = 0
    rows_computed: int = 0
    rows_with_errors: int = 0

    def fill(self, sheet: Sheet, data: Grid, new: list[list[Cell] | None],
             formats: Formats | None = None) -> None:
        """Count the computed rows (a status message = a row with errors) and plan the
        writes of ``sheet``'s computed block (``formats``: its number formats as read, when
        the backend reads them)."""
        status = sheet.keys("computed").index("status")
        for row in new:
            if row is not None:
                if row[status]:
                    self.rows_with_errors += 1
                else:
                    self.rows_computed += 1
        self.updates, self.formats = _diff_columns(sheet, data, new, formats)
        self.targets = _full_block(sheet, new)


def _read_rules(sheet: Sheet, grid: Grid) -> AdjustmentRule:
    fields = AdjustmentRule.model_fields
    values: dict[str, Any] = {}
    where: dict[str, str] = {}
    for r, row in enumerate(grid[1:], start=FIRST_DATA_ROW):
        key, value = _get(row, 0), _get(row, 1)
        if key is None:
            continue
        name = _norm_label(key)
        if name not in fields:
            if value is None:
                continue  # a note the trader wrote in the sheet, with no value
            raise InputError(
                f"{sheet.title}!A{r} must name a rule ({', '.join(fields)}), got {str(key)!r}"
            )
        if value is not None:
            values[name] = value
            where[name] = f"{sheet.title}!B{r}"
    for name, value in values.items():  # one at a time, so the message names the cell
        try:
            AdjustmentRule.build(**{name: value})
        except InputError as exc:
            raise InputError(f"{where[name]} ({name}): {exc}") from None
    return AdjustmentRule.build(**values)


def _read_journal_positions(
    sheet: Sheet, grid: Grid
) -> tuple[list[journal.JournalPosition], dict[str, str]]:
    """Valid positions, and for each invalid one the message its events will show."""
    good: dict[str, journal.JournalPosition] = {}
    rows_of: dict[str, int] = {}
    bad: dict[str, str] = {}
    for r, row in enumerate(grid[1:], start=FIRST_DATA_ROW):
        raw = {k: _get(row, sheet.index(k)) for k in sheet.keys(None)}
        if all(v is None for v in raw.values()):
            continue
        pid = _as_text(raw["position_id"])
        if pid is None:
            continue  # no id: no event can refer to it
        try:
            if pid in rows_of or pid in bad:
                raise InputError(f"position_id {pid!r} appears twice on the {sheet.title} sheet")
            cols = lv.check_columns(raw, **POSITION_RULES)
            cols.raise_first()
            fields: dict[str, Any] = {
                "position_id": pid,
                "side": "long" if cols["side"] > 0 else "short",
                "contract": "inverse" if cols["contract"] > 0 else "linear",
                "mmr": float(cols["mmr"]),
                "maint_amount": float(cols["maint_amount"]),
                "symbol": _as_text(raw["symbol"]) or "",
            }
            # blank: the journal's own default (quote / coin currency, no stop)
            fields.update({k: _as_text(raw[k]) if k == "margin_currency" else raw[k]
                           for k in ("margin_currency", "stop_price") if raw[k] is not None})
            # a blank rate on a Symbol with a tier table: the tier's (as the replay reads it)
            good[pid] = journal.with_symbol_tier(journal.JournalPosition.build(**fields),
                                                 raw["mmr"], raw["maint_amount"])
            rows_of[pid] = r
        except LeverageError as exc:
            first = good.pop(pid, None)
            bad[pid] = (
                f"position {pid!r} is invalid on the {sheet.title} sheet (row {r}): {exc}"
                if first is None
                else f"position_id {pid!r} appears twice on the {sheet.title} sheet "
                f"(rows {rows_of[pid]} and {r})"
            )
    return list(good.values()), bad


def _plan_journal(grids: list[Grid], formats: list[Formats] | None = None) -> _Plan:
    positions_sheet, events_sheet, _summary, rules_sheet = _sheets("journal")
    rule = _read_rules(rules_sheet, grids[3])
    positions, bad = _read_journal_positions(positions_sheet, grids[0])
    inputs = events_sheet.keys("input")
    events: list[dict[str, Any]] = []
    at: list[int] = []  # index in the grid's data rows of each event passed to replay
    data = grids[1][1:]
    for r, row in enumerate(data):
        values = {k: _get(row, events_sheet.index(k)) for k in inputs}
        if all(v is None for v in values.values()):
            continue
        for k in _TEXT_KEYS & values.keys():
            values[k] = _as_text(values[k])
        events.append(values)
        at.append(r)
    result = journal.replay(positions, events, rule)
    out_keys = events_sheet.keys("computed")
    new: list[list[Cell] | None] = [None] * len(data)  # None: a blank row, computed cells blank
    plan = _Plan(rows_read=len(events))
    status_i = out_keys.index("status")
    for j, r in enumerate(at):
        row = [_out(result.columns[k][j]) for k in out_keys]
        pid = events[j].get("position_id")
        problem = result.problems[j]
        if pid in bad and problem is not None and problem.reason == journal.UNKNOWN_POSITION:
            row[status_i] = bad[pid]
        new[r] = row
    plan.fill(events_sheet, data, new, None if formats is None else formats[1])
    _plan_summary(plan, grids[2], journal.summary(positions, events, result),
                  None if formats is None else formats[2])
    return plan


def _plan_summary(plan: _Plan, grid: Grid, summary: Any, formats: Formats | None) -> None:
    """The Summary sheet, ours from row 2 down: the per-position table and the totals table
    beside it, each written where it changed and cleared below its last row, and the money
    formats of its rows whose format is not their currency's."""
    for spec, rows in ((JOURNAL_SUMMARY, summary.positions), (SUMMARY_TOTALS, summary.totals)):
        first = spec.first_column - 1
        keys = spec.keys()
        old = [[_get(row, first + i) for i in range(len(keys))] for row in grid[1:]]
        new = [[_out(r[k]) for k in keys] for r in rows]
        height = max(len(old), len(new))
        old += [[None] * len(keys)] * (height - len(old))
        new += [[None] * len(keys)] * (height - len(new))
        block = Update(a1(spec.title, first + 1, FIRST_DATA_ROW, first + len(keys),
                          FIRST_DATA_ROW + height - 1), [[_cell(v) for v in r] for r in new])
        if height:
            plan.targets.append(block)
        changed = [any(not _same(o, n) for o, n in zip(a, b, strict=True))
                   for a, b in zip(old, new, strict=True)]
        for r0, r1 in _runs(changed):
            plan.updates.append(Update(
                a1(spec.title, first + 1, FIRST_DATA_ROW + r0, first + len(keys),
                   FIRST_DATA_ROW + r1), block.values[r0 : r1 + 1]))
        money = _money(spec, keys, formats)
        if money is not None:
            plan.formats += money.plan(spec.title, [r if any(v is not None for v in r) else None
                                                    for r in new], formats)


# ------------------------------------------------------------------------ rebalance


def _plan_rebalance(grids: list[Grid]) -> _Plan:
    account_sheet, positions_sheet = TEMPLATES["rebalance"]
    account = grids[0]
    expected = list(ACCOUNT_INPUT_ROWS) + list(ACCOUNT_OUTPUT_ROWS)
    for r, (key, label) in enumerate(expected, start=FIRST_DATA_ROW):
        got = _get(account[r - 1], 0) if r - 1 < len(account) else None
        if _norm_label(got) not in (_norm_label(label), key):
            raise LayoutError(
                f"{account_sheet.title}!A{r} must read {label!r}, found "
                f"{'' if got is None else str(got)!r}: the Account sheet's layout has changed; "
                "the bridge will not write to it"
            )
    balances: dict[str, Any] = {}
    for r, (key, _label) in enumerate(ACCOUNT_INPUT_ROWS, start=FIRST_DATA_ROW):
        value = _get(account[r - 1], 1) if r - 1 < len(account) else None
        cols = lv.check_columns({key: value}, **{key: portfolio.ACCOUNT_RULES[key]})
        if cols.first_error is not None:
            raise InputError(f"{account_sheet.title}!B{r} ({key}): {cols.first_error}")
        number = float(cols[key])
        balances[key] = None if math.isnan(number) else number

    data = grids[1][1:]
    inputs = positions_sheet.keys("input")
    rows: list[dict[str, Any]] = []
    at: list[int] = []
    for r, row in enumerate(data):
        values = {k: _get(row, positions_sheet.index(k)) for k in inputs}
        if all(v is None for v in values.values()):
            continue
        for k in _TEXT_KEYS & values.keys():
            if k != "contract":  # the core reads 1/0 there too
                values[k] = _as_text(values[k])
        rows.append(values)
        at.append(r)
    # the totals' check names a row without a position id by its sheet row
    labels = [f"row {FIRST_DATA_ROW + r}" for r in at]
    result = portfolio.rebalance(rows, **balances, row_labels=labels)
    columns = dict(result.columns)
    # the reconcile column: our liquidation price against the one the exchange showed
    theirs = positions_sheet.index("exchange_liq_price")
    columns["liq_gap"] = [
        portfolio.liq_gap(_number(ours), _number(_get(data[r], theirs)))
        for ours, r in zip(result.columns["liq_price"], at, strict=True)
    ]
    out_keys = positions_sheet.keys("computed")
    new: list[list[Cell] | None] = [None] * len(data)
    plan = _Plan(rows_read=len(rows))
    for j, r in enumerate(at):
        new[r] = [_out(columns[k][j]) for k in out_keys]
    plan.fill(positions_sheet, data, new)

    first_out = FIRST_DATA_ROW + len(ACCOUNT_INPUT_ROWS)
    old_vals = [
        _get(account[r - 1], 1) if r - 1 < len(account) else None
        for r in range(first_out, first_out + len(ACCOUNT_OUTPUT_ROWS))
    ]
    new_vals = [_out(result.account[key]) for key, _ in ACCOUNT_OUTPUT_ROWS]
    account_block = Update(
        a1(account_sheet.title, 2, first_out, 2, first_out + len(new_vals) - 1),
        [[_cell(v)] for v in new_vals],
    )
    plan.targets.append(account_block)
    if any(not _same(o, n) for o, n in zip(old_vals, new_vals, strict=True)):
        plan.updates.append(account_block)
    return plan


def _number(v: Cell) -> float | None:
    """A cell as a number, or None (blank, text that is not a number)."""
    if isinstance(v, bool) or v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


# ------------------------------------------------------------------------ diff


def _cell(v: Cell) -> Cell:
    return "" if v is None else v  # "" clears a cell in a RAW write; None would skip it


def column_spans(sheet: Sheet, computed: bool = True) -> list[tuple[int, int]]:
    """The computed columns (``computed=False``: the others, typed or imported) as runs of
    adjacent column indexes (0-based, inclusive)."""
    return list(_runs([(c.role == "computed") is computed for c in sheet.columns]))


def _runs(flags: Sequence[bool]) -> Iterator[tuple[int, int]]:
    start = None
    for i, f in enumerate([*flags, False]):
        if f and start is None:
            start = i
        elif not f and start is not None:
            yield start, i - 1
            start = None


def _full_block(sheet: Sheet, new: list[list[Cell] | None]) -> list[Update]:
    """The whole computed block (for the naive per-cell comparison in ``measure``)."""
    width = len(sheet.keys("computed"))
    rows = [[_cell(v) for v in (row or [None] * width)] for row in new]
    if not rows:
        return []
    first = sheet.index(sheet.keys("computed")[0]) + 1
    return [Update(a1(sheet.title, first, FIRST_DATA_ROW, first + width - 1,
                      FIRST_DATA_ROW + len(rows) - 1), rows)]


def sync_cells(template: str, grids: list[Grid]) -> dict[str, list[tuple[int, int]]]:
    """Sheet title -> (row, column), 1-based, of every cell a sync of ``grids`` (the values of
    :func:`read_ranges_for`) may write: the computed columns of each filled row, and the
    Account sheet's output rows. ``init`` checks them before it changes anything, so a
    workbook the sync would refuse is refused at once."""
    out: dict[str, list[tuple[int, int]]] = {}
    for sheet, grid in zip(_sheets(template), grids, strict=True):
        if sheet.title == "Account":
            first = FIRST_DATA_ROW + len(ACCOUNT_INPUT_ROWS)
            out[sheet.title] = [(r, 2) for r in range(first, first + len(ACCOUNT_OUTPUT_ROWS))]
            continue
        cols = [i + 1 for i, c in enumerate(sheet.columns)
                if c.role == "computed" and not c.key.startswith("_gap")]
        out[sheet.title] = [(r, c) for r in range(FIRST_DATA_ROW, len(grid) + 1) for c in cols]
    return out


def plan_sync(template: str, grids: list[Grid], formats: list[Formats] | None = None) -> _Plan:
    """What a sync would write for ``grids`` (the values of :func:`read_ranges_for`), and,
    given ``formats`` (the number formats of the same ranges, from a backend that reads
    them), the money formats it would set."""
    for sheet, grid in zip(_sheets(template), grids, strict=True):
        check_headers(sheet, grid, template)
    if template == "journal":
        return _plan_journal(grids, formats)
    return _plan_rebalance(grids)  # USDⓈ-margined only: no money follows a coin


def _diff_columns(sheet: Sheet, data: Grid, new: list[list[Cell] | None],
                  formats: Formats | None = None) -> tuple[list[Update], list[FormatUpdate]]:
    """Updates for the rows whose computed cells differ from what the sheet holds now; and,
    ``formats`` given, the money formats of the rows whose money is not in its currency's
    format (changed or not)."""
    computed = [sheet.index(k) for k in sheet.keys("computed")]
    width = len(computed)
    target = [row if row is not None else [None] * width for row in new]
    changed = [
        any(not _same(_get(old, c), v) for c, v in zip(computed, row, strict=True))
        for old, row in zip(data, target, strict=True)
    ]
    updates = []
    for first, last in _runs(changed):
        for c0, c1 in column_spans(sheet):
            offset = computed.index(c0)
            values = [
                [_cell(v) for v in target[r][offset : offset + c1 - c0 + 1]]
                for r in range(first, last + 1)
            ]
            updates.append(
                Update(
                    a1(sheet.title, c0 + 1, first + FIRST_DATA_ROW, c1 + 1, last + FIRST_DATA_ROW),
                    values,
                )
            )
    money = _money(sheet, sheet.keys("computed"), formats)
    return updates, [] if money is None else money.plan(sheet.title, new, formats)


# ------------------------------------------------------------------------ sync


def read_for_sync(backend: Backend, template: str) -> tuple[list[Grid], list[Formats] | None]:
    """The values of the template's tabs (:func:`read_ranges_for`) in one read, and their
    number formats when the template has money whose format follows the row's currency
    (the journal) and the backend sets those formats row by row
    (:class:`~leverage_sheets.backend.FormatsBackend`: Google); else None (a local
    workbook's conditional format does it; the rebalance is USDⓈ-margined only), and the
    read is the plain values read, a fraction of the size."""
    ranges = read_ranges_for(template)
    if isinstance(backend, FormatsBackend) and any(coin_money(s) for s in _sheets(template)):
        return backend.read_with_formats(ranges)
    return backend.read_ranges(ranges), None


def write_for_sync(backend: Backend, updates: Sequence[Update],
                   formats: Sequence[FormatUpdate]) -> None:
    """``updates`` and the planned ``formats`` in one all-or-nothing write (formats are
    planned only for a :class:`~leverage_sheets.backend.FormatsBackend`)."""
    if formats:
        if not isinstance(backend, FormatsBackend):
            raise TypeError(f"{backend.name} does not set number formats")
        backend.write_ranges(updates, formats)
    else:
        backend.write_ranges(updates)


def detect_template(backend: Backend) -> str:
    """``journal`` or ``rebalance``, from the tabs the spreadsheet has."""
    titles = set(backend.sheet_titles())
    found = [name for name, sheets in TEMPLATES.items() if {s.title for s in sheets} <= titles]
    if len(found) != 1:
        raise LayoutError(
            f"cannot tell the template from the tabs of {backend.name} "
            f"({', '.join(sorted(titles)) or 'none'}): pass --template "
            f"{' or '.join(TEMPLATES)}, or run `leverage sheets init` first"
        )
    return found[0]


@within_deadline  # one deadline for the read and the write (Google)
def sync(backend: Backend, template: str, progress: ProgressFn | None = None) -> SyncReport:
    """Read the template's inputs, compute every derived column with the core and write the
    cells that changed: one read and at most one write, whatever the row count.

    Rows that fail validation get their message in the status column; the other rows still
    compute. Raises :class:`~leverage_sheets.backend.LayoutError` (nothing written) when the
    header row is not the layout, :class:`~leverage.InputError` for a bad rule or account
    value (the message names the cell).
    """
    _sheets(template)
    step = progress or _no_progress
    start, requests_before = time.perf_counter(), backend.requests
    step(1, 4, "reading")
    grids, formats = read_for_sync(backend, template)
    step(2, 4, f"computing {max(len(g) for g in grids) - 1:,} rows")
    todo = plan_sync(template, grids, formats)
    report = SyncReport(
        template,
        rows_read=todo.rows_read,
        rows_computed=todo.rows_computed,
        rows_with_errors=todo.rows_with_errors,
    )
    if todo.updates or todo.formats:
        report.cells_written = sum(u.cells for u in todo.updates)
        report.formats_set = sum(len(row) for f in todo.formats for row in f.patterns)
        step(3, 4, f"writing {report.cells_written:,} cells")
        write_for_sync(backend, todo.updates, todo.formats)
        report.changed = True
    step(4, 4, "done")
    report.requests = backend.requests - requests_before
    report.seconds = time.perf_counter() - start
    return report


def watch(
    backend: Backend,
    template: str,
    interval: float,
    max_runs: int | None = None,
    *,
    sleep: Callable[[float], None] = time.sleep,
    on_report: Callable[[SyncReport], None] | None = None,
    on_error: Callable[[LeverageError], None] | None = None,
    progress: ProgressFn | None = None,
) -> list[SyncReport]:
    """Sync every ``interval`` seconds, ``max_runs`` times (None: until interrupted).

    A run that finds nothing changed writes nothing (one read request). A run refused for
    bad input or a changed layout is reported through ``on_error`` and the watch goes on,
    so the trader can fix the cell; a run whose requests kept failing stops the watch.
    """
    if not (isinstance(interval, int | float) and math.isfinite(interval) and interval > 0):
        raise InputError(f"interval must be > 0 seconds, got {interval!r}")
    if max_runs is not None and (isinstance(max_runs, bool) or max_runs < 1):
        raise InputError(f"max_runs must be >= 1, got {max_runs!r}")
    reports: list[SyncReport] = []
    run = 0
    while max_runs is None or run < max_runs:
        if run:
            sleep(interval)
        run += 1
        try:
            report = sync(backend, template, progress)
        except LeverageError as exc:
            if _is_transport_failure(exc):
                raise
            if on_error is not None:
                on_error(exc)
            continue
        reports.append(report)
        if on_report is not None:
            on_report(report)
    return reports


def _is_transport_failure(exc: LeverageError) -> bool:
    return isinstance(exc, RequestFailed)


__all__ = [
    "TEMPLATE_NAMES",
    "Progress",
    "SyncReport",
    "check_headers",
    "detect_template",
    "read_ranges_for",
    "sync",
    "sync_cells",
    "watch",
]
