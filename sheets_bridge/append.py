"""Append rows to a template's sheets, once each, and fill their computed cells: one read and
one write through the same :class:`~leverage_sheets.backend.Backend` a sync uses.

Rows are matched to what the sheet already holds by a key (an importer's id); a row whose key
is there already is left out, so appending the same rows twice changes nothing. New rows go
below the last filled row, into the input columns only; the computed cells of the sheet are
then planned exactly as a sync plans them, and everything goes out in one all-or-nothing
write. Cells the trader typed are never written: existing rows' inputs are only read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from leverage.layout import Sheet

from .backend import Backend, Cell, Grid, Update, a1, within_deadline
from .engine import _cell, _sheets, check_headers, column_spans, plan_sync, read_ranges_for

KeyFn = Callable[[str, Mapping[str, Any]], str | None]
"""``key(sheet_title, row)`` → the row's id, or None for a row without one (never matched)."""


@dataclass
class AppendReport:
    template: str
    appended: dict[str, int] = field(default_factory=dict)  # sheet title → rows added
    already_there: dict[str, int] = field(default_factory=dict)
    cells_written: int = 0
    requests: int = 0
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return self.cells_written > 0

    def __str__(self) -> str:
        added = ", ".join(f"{n:,} {t}" for t, n in self.appended.items() if n) or "nothing new"
        kept = sum(self.already_there.values())
        return (f"{self.template}: added {added}; {kept:,} rows were there already; "
                f"{self.cells_written:,} cells in {self.requests} request(s), "
                f"{self.seconds:.2f}s")


def _as_dict(sheet: Sheet, row: Sequence[Cell]) -> dict[str, Cell]:
    return {c.key: (row[i] if i < len(row) else None) for i, c in enumerate(sheet.columns)}


@within_deadline  # one deadline for the read and the write (Google)
def append_rows(
    backend: Backend,
    template: str,
    rows: Mapping[str, Sequence[Mapping[str, Any]]],
    key: KeyFn,
) -> AppendReport:
    """Add the rows of ``rows`` (sheet title → dicts keyed by the layout's input keys) that
    ``key`` does not find in the sheet yet, and write every computed cell that changes.

    Raises :class:`~leverage_sheets.backend.LayoutError` with nothing written when a header row
    is not the layout.
    """
    start, before = time.perf_counter(), backend.requests
    sheets = _sheets(template)
    titles = {s.title for s in sheets}
    unknown = set(rows) - titles
    if unknown:
        raise ValueError(f"rows must be for the {template} sheets ({', '.join(sorted(titles))}),"
                         f" got {', '.join(sorted(unknown))}")
    grids = backend.read_ranges(read_ranges_for(template))
    for sheet, grid in zip(sheets, grids, strict=True):
        check_headers(sheet, grid, template)
    report = AppendReport(template)
    merged: list[Grid] = []
    inputs: list[Update] = []
    for sheet, grid in zip(sheets, grids, strict=True):
        grid = [list(r) for r in grid]
        if not sheet.keys("input") and not sheet.keys("imported"):
            merged.append(grid)  # all the sync's (the Summary): nothing to append there
            continue
        seen = {key(sheet.title, _as_dict(sheet, r)) for r in grid[1:]}
        seen.discard(None)
        new: list[Mapping[str, Any]] = []
        for r in rows.get(sheet.title, ()):
            k = key(sheet.title, r)
            if k is not None and k in seen:
                report.already_there[sheet.title] = report.already_there.get(sheet.title, 0) + 1
                continue
            seen.add(k)
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
        updates = inputs + plan_sync(template, merged).updates
        report.cells_written = sum(u.cells for u in updates)
        backend.write_ranges(updates)
    report.requests = backend.requests - before
    report.seconds = time.perf_counter() - start
    return report
