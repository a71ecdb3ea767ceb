"""Append rows to a template's sheets, once each, update the rows an importer owns, and fill
their computed cells: one read and one write through the same
:class:`~leverage_sheets.backend.Backend` a sync uses.

Rows are matched to what the sheet already holds by a key (an importer's id). A row whose key
is there already is not added again; if the caller names ``update`` columns for its sheet,
those cells of the existing row take the new values (only the cells that differ are written),
every other cell of that row stays as the trader left it. New rows go below the last filled
row, into the input and imported columns only. ``account`` values go into the rebalance
workbook's Account sheet (column B of their rows). The computed cells of the sheet are then
planned exactly as a sync plans them, and everything goes out in one all-or-nothing write.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from leverage.layout import ACCOUNT_INPUT_ROWS, FIRST_DATA_ROW, REBALANCE_ACCOUNT, Sheet

from .backend import Backend, Cell, Grid, Update, a1, serial_date, within_deadline
from .engine import (
    _blank,
    _cell,
    _sheets,
    check_headers,
    column_spans,
    plan_sync,
    read_for_sync,
    write_for_sync,
)

KeyFn = Callable[[str, Mapping[str, Any]], str | None]
"""``key(sheet_title, row)`` → the row's id, or None for a row without one (never matched)."""
RowsFn = Callable[[Mapping[str, list[dict[str, Cell]]]], Mapping[str, Sequence[Mapping[str, Any]]]]
"""``rows(existing)`` → the rows to add, given what each sheet holds now (sheet title → one
dict per data row, keyed by the layout's keys, blank rows included so indexes are rows)."""


@dataclass
class AppendReport:
    template: str
    appended: dict[str, int] = field(default_factory=dict)  # sheet title → rows added
    already_there: dict[str, int] = field(default_factory=dict)
    updated: dict[str, int] = field(default_factory=dict)  # sheet title → rows changed in place
    account: dict[str, tuple[Cell, Cell]] = field(default_factory=dict)  # key → (was, now)
    cells_written: int = 0
    requests: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return self.cells_written > 0

    def __str__(self) -> str:
        added = ", ".join(f"{n:,} {t}" for t, n in self.appended.items() if n) or "nothing new"
        kept = sum(self.already_there.values())
        moved = ", ".join(f"{n:,} {t}" for t, n in self.updated.items() if n)
        account = ", ".join(f"{k} {_show(a)} -> {_show(b)}" for k, (a, b) in self.account.items())
        return (f"{self.template}: added {added}; {kept:,} rows were there already"
                f"{f' (updated in place: {moved})' if moved else ''}"
                f"{f'; Account: {account}' if account else ''}; "
                f"{self.cells_written:,} cells in {self.requests} request(s), "
                f"{self.seconds:.2f}s")


def _show(v: Cell) -> str:
    if v is None or v == "":
        return "blank"
    return f"{v:,.2f}" if isinstance(v, int | float) and not isinstance(v, bool) else str(v)


def _as_dict(sheet: Sheet, row: Sequence[Cell]) -> dict[str, Cell]:
    return {c.key: (row[i] if i < len(row) else None) for i, c in enumerate(sheet.columns)}


def _check_update(sheets: Sequence[Sheet], update: Mapping[str, Collection[str]]) -> None:
    by_title = {s.title: s for s in sheets}
    for title, keys in update.items():
        sheet = by_title.get(title)
        if sheet is None:
            raise ValueError(f"update must name sheets of the template "
                             f"({', '.join(sorted(by_title))}), got {title!r}")
        owned = set(sheet.keys("input")) | set(sheet.keys("imported"))
        wrong = sorted(set(keys) - owned)
        if wrong:
            raise ValueError(f"update may rewrite only input or imported columns of {title}, "
                             f"got {', '.join(wrong)}")


def _account_rows(account: Mapping[str, Any]) -> dict[str, int]:
    rows = {key: FIRST_DATA_ROW + i for i, (key, _) in enumerate(ACCOUNT_INPUT_ROWS)}
    wrong = sorted(set(account) - set(rows))
    if wrong:
        raise ValueError(f"account must name Account inputs ({', '.join(rows)}), "
                         f"got {', '.join(wrong)}")
    return {k: rows[k] for k in account}


@within_deadline  # one deadline for the read and the write (Google)
def append_rows(
    backend: Backend,
    template: str,
    rows: Mapping[str, Sequence[Mapping[str, Any]]] | RowsFn,
    key: KeyFn,
    update: Mapping[str, Collection[str]] | None = None,
    account: Mapping[str, Any] | None = None,
) -> AppendReport:
    """Add the rows of ``rows`` (sheet title → dicts keyed by the layout's input keys) that
    ``key`` does not find in the sheet yet, rewrite the ``update`` columns (sheet title →
    keys) of those it finds, set the rebalance Account inputs of ``account`` (key → value;
    only a value that differs is written), and write every computed cell that changes.

    ``rows`` may be a function of what the sheets hold (see :data:`RowsFn`), so an importer
    can match its rows to the workbook's from the same single read.

    Raises :class:`~leverage_sheets.backend.LayoutError` with nothing written when a header row
    is not the layout; ValueError when ``rows``, ``update`` or ``account`` name a sheet,
    column or item the template does not have, or a computed column.
    """
    start, before = time.perf_counter(), backend.requests
    sheets = _sheets(template)
    titles = {s.title for s in sheets}
    update = dict(update or {})
    _check_update(sheets, update)
    account = dict(account or {})
    if account and template != "rebalance":
        raise ValueError(f"account applies to the rebalance template, not {template}")
    account_at = _account_rows(account)
    grids, formats = read_for_sync(backend, template)
    for sheet, grid in zip(sheets, grids, strict=True):
        check_headers(sheet, grid, template)
    if callable(rows):
        rows = rows({s.title: [_as_dict(s, r) for r in g[1:]]
                     for s, g in zip(sheets, grids, strict=True)})
    unknown = set(rows) - titles
    if unknown:
        raise ValueError(f"rows must be for the {template} sheets ({', '.join(sorted(titles))}),"
                         f" got {', '.join(sorted(unknown))}")
    report = AppendReport(template)
    merged: list[Grid] = []
    inputs: list[Update] = []
    for sheet, grid in zip(sheets, grids, strict=True):
        grid = [list(r) for r in grid]
        if sheet.title == REBALANCE_ACCOUNT.title and account:
            _set_account(sheet, grid, account, account_at, inputs, report)
        if (not sheet.keys("input") and not sheet.keys("imported")) or \
                sheet.title == REBALANCE_ACCOUNT.title:
            merged.append(grid)  # all the sync's (the Summary), or item/value pairs
            continue
        at: dict[str, int] = {}  # key → index in grid of the row holding it
        for i, line in enumerate(grid[1:], start=1):
            k = key(sheet.title, _as_dict(sheet, line))
            if k is not None:
                at.setdefault(k, i)
        rewrite = [sheet.index(k) for k in update.get(sheet.title, ())]
        new: list[Mapping[str, Any]] = []
        for r in rows.get(sheet.title, ()):
            k = key(sheet.title, r)
            if k is not None and k in at:
                report.already_there[sheet.title] = report.already_there.get(sheet.title, 0) + 1
                if rewrite and at[k] > 0 and _rewrite(sheet, grid, at[k], r, rewrite, inputs):
                    report.updated[sheet.title] = report.updated.get(sheet.title, 0) + 1
                continue
            if k is not None:
                at[k] = -1  # a second row with the same key in ``rows``: added once
            new.append(r)
        report.appended[sheet.title] = len(new)
        if new:
            first_row = len(grid) + 1  # below the last filled row (the read trims blank rows)
            input_keys = set(sheet.keys("input")) | set(sheet.keys("imported"))
            values = [[r.get(c.key) if c.key in input_keys else None for c in sheet.columns]
                      for r in new]
            grid.extend(values)
            for c0, c1 in column_spans(sheet, computed=False):
                inputs.append(Update(
                    a1(sheet.title, c0 + 1, first_row, c1 + 1, first_row + len(new) - 1),
                    [[_cell(v) for v in row[c0 : c1 + 1]] for row in values],
                ))
        merged.append(grid)
    if inputs:
        todo = plan_sync(template, merged, formats)
        updates = inputs + todo.updates
        report.cells_written = sum(u.cells for u in updates)
        write_for_sync(backend, updates, todo.formats)
    report.requests = backend.requests - before
    report.seconds = time.perf_counter() - start
    return report


def _cell_value(v: Any) -> Cell:
    """What a written value reads back as: blank for None and "", dates as serials."""
    v = serial_date(v)
    return None if _blank(v) else v


def _number(v: Cell) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _equal(old: Cell, new: Cell) -> bool:
    """Whether a cell already holds ``new``: numbers to the 15 digits a workbook keeps
    (a value read back may differ in the 16th), text with its spaces trimmed."""
    old, new = (None if _blank(old) else old), (None if _blank(new) else new)
    if old is None or new is None:
        return old is None and new is None
    if _number(old) and _number(new):
        return math.isclose(float(old), float(new), rel_tol=1e-14, abs_tol=0.0)
    return str(old).strip() == str(new).strip()


def _rewrite(sheet: Sheet, grid: Grid, i: int, row: Mapping[str, Any], columns: list[int],
             out: list[Update]) -> bool:
    """Rewrite ``columns`` of grid row ``i`` (0 = the header) with ``row``'s values where they
    differ; one update per changed cell, so a cell that did not change is never written."""
    old = grid[i]
    old.extend([None] * (len(sheet.columns) - len(old)))
    changed = False
    for c in columns:
        value = _cell_value(row.get(sheet.columns[c].key))
        if _equal(old[c], value):
            continue
        old[c] = value
        out.append(Update(a1(sheet.title, c + 1, i + 1, c + 1, i + 1), [[_cell(value)]]))
        changed = True
    return changed


def _set_account(sheet: Sheet, grid: Grid, account: Mapping[str, Any], at: Mapping[str, int],
                 out: list[Update], report: AppendReport) -> None:
    for k, r in at.items():
        while len(grid) < r:
            grid.append([])
        row = grid[r - 1]
        row.extend([None] * (2 - len(row)))
        was = None if _blank(row[1]) else row[1]
        value = _cell_value(account[k])
        if value is None or _equal(was, value):
            continue  # blank: the exchange did not say it; the sheet keeps its figure
        row[1] = value
        out.append(Update(a1(sheet.title, 2, r, 2, r), [[_cell(value)]]))
        report.account[k] = (was, value)
