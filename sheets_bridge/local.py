"""A local .xlsx workbook as a sync backend: the embedded default when there is no Google account.

Writes are atomic: the workbook is saved to a temporary file next to it, then moved over it
(``os.replace``), so a crash leaves the old file. Only the computed cells are assigned; every
other cell, its style and the sheet's drop-downs and formatting go through openpyxl untouched.
"""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openpyxl
from openpyxl.formatting.rule import FormulaRule
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.workbook import Workbook
from openpyxl.worksheet.datavalidation import DataValidation

from leverage import layout as L
from leverage.errors import InputError
from leverage.layout import (
    ACCOUNT_INPUT_ROWS,
    ACCOUNT_OUTPUT_ROWS,
    FIRST_DATA_ROW,
    RULE_ROWS,
    TEMPLATES,
    Sheet,
    account_format,
)

from .backend import Grid, LayoutError, SheetsError, Update, parse_a1

_FORMATTED_ROWS = 1000  # rows laid out with number formats, as a new Google sheet has


def _solid(color: str) -> PatternFill:
    return PatternFill("solid", fgColor=color, bgColor=color)  # bg: Excel reads it in rules


class XlsxBackend:
    """A workbook file as a :class:`~sheets_bridge.backend.Backend`."""

    requests = 0  # no API

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self._book: Workbook | None = None
        self._values: Workbook | None = None  # data_only copy, loaded only if inputs hold formulas
        self._stamp: tuple[int, int] | None = None

    # -- files -------------------------------------------------------------------------------

    def _file_stamp(self) -> tuple[int, int]:
        st = self.path.stat()
        return st.st_mtime_ns, st.st_size

    def _load(self) -> Workbook:
        if not self.path.exists():
            raise SheetsError(
                f"workbook {self.name!r} does not exist: run `leverage sheets init --file "
                f"{self.name} --template journal|rebalance` first"
            )
        try:
            stamp = self._file_stamp()
            book = openpyxl.load_workbook(self.path, keep_vba=self.path.suffix == ".xlsm")
        except (OSError, ValueError, KeyError) as exc:
            raise SheetsError(f"workbook {self.name!r} cannot be opened as .xlsx ({exc})") from None
        self._book, self._values, self._stamp = book, None, stamp
        return book

    def _save(self, book: Workbook) -> None:
        """Save next to the target, then replace it in one step."""
        directory = self.path.parent if str(self.path.parent) else Path(".")
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp", dir=directory)
        os.close(fd)
        try:
            book.save(tmp)
            if self.path.exists():
                shutil.copymode(self.path, tmp)
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._stamp = self._file_stamp()

    # -- Backend -----------------------------------------------------------------------------

    def sheet_titles(self) -> list[str]:
        return list(self._load().sheetnames)

    def read_ranges(self, ranges: Sequence[str]) -> list[Grid]:
        book = self._load()
        out: list[Grid] = []
        for text in ranges:
            box = parse_a1(text)
            if box.title not in book.sheetnames:
                raise LayoutError(
                    f"workbook {self.name!r} has no sheet {box.title!r}: run "
                    "`leverage sheets init` "
                    "with the right --template first"
                )
            ws = book[box.title]
            last = ws.max_row if box.last_row is None else box.last_row
            grid: Grid = []
            for row in ws.iter_rows(
                min_row=box.first_row, max_row=max(last, box.first_row),
                min_col=box.first_col, max_col=box.last_col,
            ):
                grid.append([self._value(box.title, c) for c in row])
            while grid and all(v is None or v == "" for v in grid[-1]):
                grid.pop()
            for row in grid:
                while row and (row[-1] is None or row[-1] == ""):
                    row.pop()
            out.append(grid)
        return out

    def _value(self, title: str, cell: Any) -> Any:
        """A cell's value; a formula the trader typed reads as its saved result."""
        if cell.data_type != "f":
            return cell.value
        if self._values is None:
            self._values = openpyxl.load_workbook(self.path, data_only=True)
        return self._values[title][cell.coordinate].value

    def write_ranges(self, updates: Sequence[Update]) -> None:
        book = self._book if self._book is not None else self._load()
        if self._stamp is not None and self.path.exists() and self._file_stamp() != self._stamp:
            raise SheetsError(
                f"workbook {self.name!r} changed while syncing (saved by another program?): "
                "nothing was written; run the sync again"
            )
        _refuse_overwriting_formulas(book, updates)
        for u in updates:
            box = parse_a1(u.range)
            _write_block(book[box.title], box.first_row, box.first_col, u.values)
        self._save(book)

    def lay_out(self, template: str, rows: dict[str, Grid]) -> None:
        sheets = TEMPLATES[template]
        fresh = not self.path.exists()
        book = Workbook() if fresh else self._load()
        if fresh:
            book.remove(book.active)
        for sheet in sheets:
            if sheet.title in book.sheetnames:
                ws = book[sheet.title]
                if ws.max_row > 1 or ws.max_column > 1 or ws["A1"].value is not None:
                    _check_existing(sheet, ws)
                    _format(ws, sheet)
                    continue
            else:
                ws = book.create_sheet(sheet.title)
            _format(ws, sheet)
            grid = rows.get(sheet.title, [])
            _write_block(ws, 2, 1, grid[1:])
            _write_block(ws, 1, 1, grid[:1])  # the header keeps its own style
        self._save(book)


def _write_block(ws: Any, first_row: int, first_col: int, values: Grid) -> None:
    """Write rows of values; a cell created here takes its column's style (number format,
    fill), as a cell the trader types into would."""
    width = max((len(row) for row in values), default=0)
    for c in range(first_col, first_col + width):
        dim = ws.column_dimensions.get(get_column_letter(c))
        style = dim._style if dim is not None and dim.has_style else None
        for r, row in enumerate(values, start=first_row):
            if c - first_col >= len(row):
                continue
            cell = ws.cell(row=r, column=c)
            if style is not None and not cell.has_style:
                cell._style = copy.copy(style)
            _set_raw(cell, row[c - first_col])


def _set_raw(cell: Any, value: Any) -> None:
    """Assign like a RAW API write: text that looks like a formula stays text."""
    cell.value = None if value == "" else value
    if isinstance(value, str) and value.startswith("="):
        cell.data_type = "s"


def _check_existing(sheet: Sheet, ws: Any) -> None:
    header = [
        "" if c.value is None else str(c.value).strip()
        for c in ws[1][: len(sheet.columns)]
    ]
    if header != sheet.headers:
        raise LayoutError(
            f"sheet {sheet.title!r} already exists with other content in row 1: rename or delete "
            "it, or use another file; init changes nothing"
        )


def _format(ws: Any, sheet: Sheet) -> None:
    """Bold frozen header, widths, number formats on the data rows, drop-downs."""
    ws.freeze_panes = "A2"
    last = FIRST_DATA_ROW + _FORMATTED_ROWS - 1
    present = {
        tuple(sorted(str(r) for r in dv.sqref.ranges))
        for dv in ws.data_validations.dataValidation
    }
    for i, col in enumerate(sheet.columns, start=1):
        letter = get_column_letter(i)
        ws.column_dimensions[letter].width = col.width
        head = ws.cell(row=1, column=i)
        head.font = Font(bold=True)
        head.fill = _solid(L.role_fill(col.role))
        if sheet.title in ("Rules", "Account"):
            continue
        # A column style, not 1000 styled empty cells: Excel gives it to every cell typed
        # there, and write_ranges gives it to every cell the sync creates.
        dim = ws.column_dimensions[letter]
        if col.number_format != "General":
            dim.number_format = col.number_format
        if col.role == "computed":
            dim.fill = _solid(L.COMPUTED_FILL)
        if col.choices and col.role == "input":
            ref = f"{letter}{FIRST_DATA_ROW}:{letter}{last}"
            if (ref,) in present:
                continue
            title, text = L.choice_message(col)
            dv = DataValidation(
                type="list", formula1='"' + ",".join(col.choices) + '"', allow_blank=True,
                showErrorMessage=True, errorTitle=title, error=text,
            )
            dv.add(ref)
            ws.add_data_validation(dv)
    _highlight(ws, sheet, last)
    if sheet.title == "Rules":
        for r, (_key, pattern, _meaning) in enumerate(RULE_ROWS, start=FIRST_DATA_ROW):
            ws.cell(row=r, column=2).number_format = pattern
    if sheet.title == "Account":
        keys = [k for k, _ in ACCOUNT_INPUT_ROWS] + [k for k, _ in ACCOUNT_OUTPUT_ROWS]
        for r, key in enumerate(keys, start=FIRST_DATA_ROW):
            cell = ws.cell(row=r, column=2)
            cell.number_format = account_format(key)
            if r >= FIRST_DATA_ROW + len(ACCOUNT_INPUT_ROWS):
                cell.fill = _solid(L.COMPUTED_FILL)


def open_local(path: str | os.PathLike[str]) -> XlsxBackend:
    """A local workbook (``.xlsx`` or ``.xlsm``) as a sync backend; it need not exist yet
    for ``init``."""
    if not isinstance(path, str | os.PathLike) or not str(path).strip():
        raise InputError(f"path must be a .xlsx file path, got {path!r}")
    p = Path(path)
    if p.suffix.lower() not in (".xlsx", ".xlsm"):
        raise InputError(f"path must end in .xlsx or .xlsm, got {str(p)!r}")
    if p.exists() and p.is_dir():
        raise InputError(f"path must be a file, got the directory {str(p)!r}")
    return XlsxBackend(p)


def _refuse_overwriting_formulas(book: Workbook, updates: Sequence[Update]) -> None:
    """A workbook whose computed columns hold formulas (``leverage templates build`` makes
    those) computes itself: a sync would freeze its formulas into values, so refuse it
    before anything is written."""
    for u in updates:
        box = parse_a1(u.range)
        sheet = book[box.title]
        for r, row in enumerate(u.values, start=box.first_row):
            for c in range(box.first_col, box.first_col + len(row)):
                cell = sheet.cell(row=r, column=c)
                if cell.data_type == "f":
                    raise LayoutError(
                        f"{box.title}!{cell.coordinate} holds a formula: this workbook computes "
                        "its own columns (it was built by `leverage templates build`), and a "
                        "sync would replace its formulas with values. Open it in a spreadsheet "
                        "app, or sync a workbook laid out by `leverage sheets init --file`."
                    )


def _highlight(ws: Any, sheet: Sheet, last: int) -> None:
    """The layout's highlights as conditional formats; a re-run of init adds nothing twice."""
    present = {str(cf.sqref) for cf in ws.conditional_formatting}
    for h in sheet.highlights:
        ref = f"{sheet.letter(h.key)}{FIRST_DATA_ROW}:{sheet.letter(h.key)}{last}"
        if ref not in present:
            formula = L.highlight_formula(sheet, h, L.excel_buffer())[1:]
            font = Font(color=h.text) if h.text else None
            ws.conditional_formatting.add(
                ref, FormulaRule(formula=[formula], fill=_solid(h.fill), font=font))
