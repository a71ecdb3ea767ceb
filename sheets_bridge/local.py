"""A local .xlsx workbook as a sync backend: the embedded default when there is no Google account.

A sync reads the package as it is and writes back only the cells it computes, by patching the
sheet XML inside the package (:mod:`leverage_sheets.xlsx_package`): text boxes, x14 drop-downs,
sparklines, links and everything else in the trader's file stay as they were. ``init`` lays the
template out with openpyxl, so on an existing workbook it first refuses, naming them, the parts
openpyxl would drop. Writes are atomic: a temporary file next to the workbook (a symlink's
target), then ``os.replace``, so a crash leaves the old file or the new one.
"""

from __future__ import annotations

import copy
import functools
import io
import os
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from openpyxl.chart import Reference, ScatterChart, Series
from openpyxl.formatting.rule import FormulaRule, Rule
from openpyxl.reader.excel import ExcelReader
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.styles.differential import DifferentialStyle
from openpyxl.styles.numbers import NumberFormat
from openpyxl.utils import get_column_letter
from openpyxl.workbook import Workbook
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.formula import ArrayFormula
from openpyxl.worksheet.pagebreak import Break
from openpyxl.worksheet.properties import PageSetupProperties

from leverage import layout as L
from leverage.errors import InputError
from leverage.instructions import INSTRUCTIONS_SHEET, PROMPTS
from leverage.layout import (
    ACCOUNT_INPUT_ROWS,
    ACCOUNT_OUTPUT_ROWS,
    FIRST_DATA_ROW,
    RULE_ROWS,
    Sheet,
    account_format,
)

from . import streamed
from .backend import Grid, LayoutError, SheetsError, Update, parse_a1
from .charts import (
    CHARTS_SHEET,
    DATA_COLUMN,
    EQUITY_ROWS,
    Formula,
    chart_cells,
    chart_picks,
    chart_tabs,
    chart_width,
    data_column,
    slot_count,
    slot_row,
)
from .charts import ArrayFormula as ArrayFormulaCell
from .content import (
    INSTRUCTION_WIDTHS,
    bridge_sheets,
    check_extra_tab,
    header_lines,
    instructions,
    prompts,
)
from .engine import sync_cells
from .xlsx_package import Look, Package, WorkbookFileError, Writes, save_atomically

_FORMATTED_ROWS = 1000  # rows laid out with number formats, as a new Google sheet has


def _solid(color: str) -> PatternFill:
    return PatternFill("solid", fgColor=color, bgColor=color)  # bg: Excel reads it in rules


class XlsxBackend:
    """A workbook file as a :class:`~leverage_sheets.backend.Backend`."""

    requests = 0  # no API

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.name = str(self.path)
        self._package: Package | None = None
        self._stamp: tuple[int, int, int] | None = None

    # -- files -------------------------------------------------------------------------------

    def _file_stamp(self) -> tuple[int, int, int]:
        st = self.path.stat()
        return st.st_mtime_ns, st.st_size, st.st_ino

    def _load(self) -> Package:
        """The workbook as it is on disk now (one read of the file)."""
        if not self.path.exists():
            raise SheetsError(
                f"workbook {self.name!r} does not exist: run `leverage sheets init --file "
                f"{self.name} --template journal|rebalance` first"
            )
        try:
            stamp = self._file_stamp()
            if self._package is not None and stamp == self._stamp:
                return self._package  # e.g. the tab titles, then the sync's read
            data = self.path.read_bytes()
        except OSError as exc:
            raise WorkbookFileError(
                f"workbook {self.name!r} cannot be read ({exc.strerror or exc})"
            ) from None
        self._package, self._stamp = Package(data, self.name), stamp
        return self._package

    def _unchanged(self) -> bool:
        return self._stamp is None or (self.path.exists() and self._file_stamp() == self._stamp)

    def _save(self, write: Any) -> None:
        save_atomically(self.path, self.name, write, self._unchanged)
        self._package, self._stamp = None, None

    # -- Backend -----------------------------------------------------------------------------

    def sheet_titles(self) -> list[str]:
        return self._load().titles

    def read_ranges(self, ranges: Sequence[str]) -> list[Grid]:
        package = self._load()
        out: list[Grid] = []
        for text in ranges:
            box = parse_a1(text)
            if box.title not in package.sheets:
                raise LayoutError(
                    f"workbook {self.name!r} has no sheet {box.title!r}: run "
                    "`leverage sheets init` "
                    "with the right --template first"
                )
            grid = package.read(box.title, box.first_row, box.last_row, box.first_col,
                                box.last_col)
            while grid and all(v is None or v == "" for v in grid[-1]):
                grid.pop()
            for row in grid:
                while row and (row[-1] is None or row[-1] == ""):
                    row.pop()
            out.append(grid)
        return out

    def write_ranges(self, updates: Sequence[Update]) -> None:
        """Patch the computed cells into the package read by the last read: every other
        part of the file is kept byte for byte."""
        package = self._package if self._package is not None else self._load()
        if not self._unchanged():
            raise SheetsError(
                f"workbook {self.name!r} changed while syncing (saved by another program?): "
                "nothing was written; run the sync again"
            )
        writes: dict[str, Writes] = {}
        for u in updates:
            box = parse_a1(u.range)
            sheet = writes.setdefault(box.title, {})
            for r, row in enumerate(u.values, start=box.first_row):
                cells = sheet.setdefault(r, {})
                for c, value in enumerate(row, start=box.first_col):
                    cells[c] = value
        self._save(package.patched(writes, _looks(package, writes)))

    def lay_out(self, template: str, rows: dict[str, Grid]) -> None:
        sheets = bridge_sheets(template)
        fresh = not self.path.exists()
        # rows openpyxl writes one at a time when the file is saved, never held as cells
        sources: dict[Any, streamed.RowSource] = {}
        if fresh:
            book = Workbook()
            book.remove(book.active)
        else:
            book, sources = self._open_for_layout(template)
        for title in (INSTRUCTIONS_SHEET, *chart_tabs(template)):
            if title in book.sheetnames:
                ws = book[title]
                check_extra_tab(title, [[c.value for c in r] for r in ws.iter_rows(max_row=1)],
                                template)
        _instructions(book, template)
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
            sources[ws] = _write_block(ws, 2, 1, grid[1:])
            _write_block(ws, 1, 1, grid[:1])  # the header keeps its own style
        for title in chart_tabs(template):
            if title not in book.sheetnames:  # else the trader's picks and our charts stay
                ws = book.create_sheet(title)
                sources[ws] = _charts(ws, *chart_picks(rows))
        for title in (INSTRUCTIONS_SHEET, *(s.title for s in sheets), *chart_tabs(template)):
            _print_setup(book[title])  # ours only: the trader's own tabs keep theirs
        self._save(lambda f: streamed.save(book, f, sources))

    def _open_for_layout(self, template: str) -> tuple[Workbook, dict[Any, streamed.RowSource]]:
        """The existing workbook in openpyxl, refused (nothing changed) when a tab name clashes
        with the template's or when openpyxl's save would lose a part of it; and the rows
        below row 1 of the tabs init only formats (the data tabs, the Charts tab), left out
        of openpyxl's load and read back from the file, a row at a time, when it is saved."""
        package = self._load()
        _refuse_case_clash(package.titles, template)
        self._refuse_unsyncable(package, template)
        lost = package.openpyxl_would_drop()
        if lost:
            raise WorkbookFileError(
                f"init would lose the {', '.join(lost)} of workbook {self.name!r} (it rewrites "
                "the whole file, and cannot keep them): nothing was changed. Lay the template "
                "out in a new file, or remove them first; `leverage sheets sync` keeps them"
            )
        vba = self.path.suffix.lower() == ".xlsm"
        # .xlsm: openpyxl copies the package's other parts from what it loaded, so it gets all
        hollowed = {} if vba else _hollowed(package, template)
        try:
            reader = ExcelReader(io.BytesIO(_with_parts(package, hollowed)), keep_vba=vba)
            reader.read()
        except Exception as exc:  # openpyxl raises many kinds for a part it cannot model
            raise WorkbookFileError(
                f"workbook {self.name!r} cannot be laid out: openpyxl cannot read it "
                f"({type(exc).__name__}: {str(exc)[:200]}); nothing was changed"
            ) from None
        book = reader.wb
        sources: dict[Any, streamed.RowSource] = {}
        for title, (part, (_xml, kept)) in hollowed.items():
            sources[book[title]] = streamed.original_rows(
                book, book[title], functools.partial(package.zip.open, part),
                reader.shared_strings, kept)
        return book, sources

    def _refuse_unsyncable(self, package: Package, template: str) -> None:
        """Refuse (nothing changed) a workbook the sync would refuse: a cell the sync writes
        holds a formula (a workbook built by `leverage templates build` computes its own
        columns) or lies in a merged range. Laying it out first would only stack a second set
        of drop-downs and highlights on a file no sync can update."""
        sheets = bridge_sheets(template)
        # row 1 and the row count only: the sync's cells are those columns of every row
        heads = {s.title: package.read(s.title, 1, 1, 1, len(s.columns))[0]
                 for s in sheets if package.sheets.get(s.title)}
        # a tab with other headers is refused for that, by name, further on
        headers = {s.title: s.headers for s in sheets}
        titles = [t for t, row in heads.items()
                  if any(v is not None for v in row)
                  and [("" if v is None else str(v).strip()) for v in row] == headers[t]]
        heights = {t: package.height(t) for t in titles}
        # the sync's cells of the first data row (a stand-in grid of that height: sync_cells
        # counts its rows); a data tab's are the same columns down to its last row
        probe = sync_cells(template, [[[]] * min(heights.get(s.title, 0), FIRST_DATA_ROW)
                                      for s in sheets])
        for title in titles:
            rows = sorted({r for r, _c in probe.get(title, [])})
            if not rows:
                continue
            columns = sorted({c for r, c in probe[title] if r == rows[0]})
            last = rows[-1] if title == "Account" else heights[title]  # Account: fixed rows
            try:
                package.check_writable(title, rows[0], last, columns)
            except LayoutError as exc:
                raise LayoutError(
                    f"init changed nothing: workbook {self.name!r} cannot be synced, because {exc}"
                ) from None


_DEFAULT_WIDTH = 8.43  # Excel's column width where the file sets none


def _layout_of(package: Package, title: str) -> Sheet | None:
    """The layout sheet the tab ``title`` holds (its row 1 is that sheet's headers), if any:
    a journal's and a rebalance's Positions tabs share a title, not their headers."""
    for template in L.TEMPLATES:
        for sheet in bridge_sheets(template):
            if sheet.title != title:
                continue
            row = package.read(title, 1, 1, 1, len(sheet.columns))[0]
            if ["" if v is None else str(v).strip() for v in row] == sheet.headers:
                return sheet
    return None


def _looks(package: Package, writes: dict[str, Writes]) -> dict[str, Look]:
    """How the written cells of each layout tab look: those of its long-text columns
    (:func:`leverage.layout.wraps`: Check, Status, Rule breaks...) wrap, and each written
    row is as tall as its longest wrapped text needs at the widths the file gives those
    columns (the trader's Reason included), as in the built workbooks: neither Excel nor
    LibreOffice grows a row to a value a program wrote."""
    out: dict[str, Look] = {}
    for title, cells in writes.items():
        sheet = _layout_of(package, title)
        wrapped = [] if sheet is None else [i for i, c in enumerate(sheet.columns, start=1)
                                            if L.wraps(c)]
        if not wrapped or not cells:
            continue
        set_widths = package.column_widths(title)
        widths = {c: set_widths.get(c, _DEFAULT_WIDTH) for c in wrapped}
        rows = sorted(cells)
        first = wrapped[0]
        held = package.read(title, rows[0], rows[-1], first, wrapped[-1])
        heights: dict[int, float | None] = {}
        for r in rows:
            line = held[r - rows[0]]
            texts = [(c, cells[r][c] if c in cells[r] else line[c - first]) for c in wrapped]
            lines = max([L.wrapped_lines(str(t), widths[c]) for c, t in texts
                         if t is not None and t != ""] or [1])
            heights[r] = L.row_height(lines)
        out[title] = Look(frozenset(wrapped), heights)
    return out


def _hollowed(package: Package, template: str) -> dict[str, tuple[str, tuple[bytes, int]]]:
    """Title -> (part, (the part without its rows below row 1, last row kept)) of each tab
    whose rows init keeps as they are: the Charts tab, and the data tabs whose row 1 is the
    layout's (the Rules and Account tabs get number formats below row 1: loaded whole)."""
    out: dict[str, tuple[str, tuple[bytes, int]]] = {}
    kept = [s for s in bridge_sheets(template) if s.title not in ("Rules", "Account")]
    headers = {s.title: s.headers for s in kept}
    for title in (*headers, *chart_tabs(template)):
        part = package.sheets.get(title)
        if not part:
            continue
        if title in headers:
            row = package.read(title, 1, 1, 1, len(headers[title]))[0]
            if ["" if v is None else str(v).strip() for v in row] != headers[title]:
                continue  # refused further on, by name
        try:
            cut = streamed.hollow(functools.partial(package.zip.open, part))
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError):
            continue  # loaded whole: openpyxl names what is wrong with it
        if cut is not None:
            out[title] = (part, cut)
    return out


def _with_parts(package: Package, hollowed: dict[str, tuple[str, tuple[bytes, int]]]) -> bytes:
    """The package's bytes, with the hollowed worksheet parts in place of the originals
    (stored, not compressed: openpyxl reads it once, at once)."""
    if not hollowed:
        return package.data
    new = {part: xml for part, (xml, _kept) in hollowed.values()}
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        for info in package.zip.infolist():
            data = new.get(info.filename)
            z.writestr(info.filename, data if data is not None else package.zip.read(info))
    return out.getvalue()


def _refuse_case_clash(titles: list[str], template: str) -> None:
    """Sheet names ignore case in Excel: an ``events`` tab would make openpyxl add
    ``Events1``, which no sync finds."""
    by_case = {t.casefold(): t for t in titles}
    for title in (INSTRUCTIONS_SHEET, *(s.title for s in bridge_sheets(template)),
                  *chart_tabs(template)):
        found = by_case.get(title.casefold())
        if found is not None and found != title:
            raise LayoutError(
                f"sheet {found!r} already exists, and sheet names ignore case, so init cannot "
                f"add {title!r} next to it: rename it to {title!r} if it holds the "
                f"{template} layout, or rename or delete it; init changes nothing"
            )


def _write_block(ws: Any, first_row: int, first_col: int, values: Grid) -> streamed.RowSource:
    """Write rows of values; a cell created here takes its column's style (number format,
    fill), as a cell the trader types into would.

    The rows below the sheet's last held cell are returned as rows to stream when the file
    is saved (a cell each as it is written) rather than held as cells."""
    width = max((len(row) for row in values), default=0)
    styles: dict[int, Any] = {}
    for c in range(first_col, first_col + width):
        dim = ws.column_dimensions.get(get_column_letter(c))
        if dim is not None and dim.has_style:
            styles[c] = dim._style
    held = max((r for r, _c in ws._cells), default=0) - first_row + 1
    for c in range(first_col, first_col + width):
        style = styles.get(c)
        for r, row in enumerate(values[:max(held, 0)], start=first_row):
            if c - first_col >= len(row):
                continue
            cell = ws.cell(row=r, column=c)
            if style is not None and not cell.has_style:
                cell._style = copy.copy(style)
            _set_raw(cell, row[c - first_col])

    def cells() -> Iterator[tuple[int, int, Any]]:
        for r, row in enumerate(values[max(held, 0):], start=first_row + max(held, 0)):
            for c, value in enumerate(row, start=first_col):
                yield r, c, value

    def make(cell: Any, value: Any) -> None:
        style = styles.get(cell.column)
        if style is not None:
            cell._style = copy.copy(style)
        _set_raw(cell, value)

    return streamed.built_rows(ws, cells, make)


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
    for i, col in enumerate(sheet.columns, start=1):
        letter = get_column_letter(i)
        ws.column_dimensions[letter].width = col.width
        head = ws.cell(row=1, column=i)
        head.font = Font(bold=True)
        head.fill = _solid(L.role_fill(col.role))
        head.alignment = Alignment(wrap_text=True, vertical="top")
        if sheet.title in ("Rules", "Account"):
            continue
        # A column style, not 1000 styled empty cells: Excel gives it to every cell typed
        # there, and write_ranges gives it to every cell the sync creates.
        dim = ws.column_dimensions[letter]
        if col.number_format != "General":
            dim.number_format = col.number_format
        if col.role == "computed":
            dim.fill = _solid(L.COMPUTED_FILL)
        if L.wraps(col):  # long texts (Reason, Check, Status...) wrap, as in built workbooks
            dim.alignment = Alignment(wrap_text=True, vertical="top")
    ws.row_dimensions[1].height = HEADER_LINE_POINTS * header_lines(sheet) + 4
    for p in prompts(sheet):
        letter = get_column_letter(p.column)
        ref = f"{letter}{p.first_row}:{letter}{last if p.last_row is None else p.last_row}"
        _prompt(ws, ref, p.title, p.text, sheet.columns[p.column - 1] if p.choices else None)
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


HEADER_LINE_POINTS = 13  # one line of the default 11 pt font


def _prompt(ws: Any, ref: str, title: str, text: str, listed: Any = None,
            formula: str | None = None, index: dict[str, Any] | None = None) -> None:
    """The input prompt on ``ref``, in the one validation of that range: a re-run of init
    (or a drop-down an older init laid out) gets the prompt added, never a second rule.
    ``index``: the sheet's validations by range, kept up to date here, for a caller adding
    many (the Charts tab: one a slot, so a scan of the list each would grow with the square
    of the positions)."""
    if index is None:
        index = {str(v.sqref): v for v in ws.data_validations.dataValidation}
    dv = index.get(ref)
    if dv is None:
        if listed is not None:
            error_title, error = L.choice_message(listed)
            dv = DataValidation(type="list", formula1='"' + ",".join(listed.choices) + '"',
                                allow_blank=True, showErrorMessage=True,
                                errorTitle=error_title, error=error)
        elif formula is not None:
            dv = DataValidation(type="list", formula1=formula, allow_blank=True)
        else:
            dv = DataValidation(allow_blank=True)  # any value: the prompt is all it adds
        dv.add(ref)
        ws.add_data_validation(dv)
        index[ref] = dv
    dv.promptTitle, dv.prompt, dv.showInputMessage = title, text, True


def _print_setup(ws: Any) -> None:
    """Landscape, one page wide and as many long as it takes, as the built workbooks print:
    a tab without it prints its columns across page after page."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth, ws.page_setup.fitToHeight = 1, 0
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)


def _instructions(book: Workbook, template: str) -> None:
    """The Instructions tab, first: ours, so written afresh on every init."""
    guide = instructions(template)
    if INSTRUCTIONS_SHEET in book.sheetnames:
        ws = book[INSTRUCTIONS_SHEET]
        ws.delete_rows(1, ws.max_row)
    else:
        ws = book.create_sheet(INSTRUCTIONS_SHEET, 0)
    for r, row in enumerate(guide.rows, start=1):
        for c, value in enumerate(row, start=1):
            cell = ws.cell(row=r, column=c)
            _set_raw(cell, value)
            cell.alignment = Alignment(wrap_text=True, vertical="top")
            if r in guide.headings:
                cell.font = Font(bold=True)
            if (r, c) in guide.formats:
                cell.number_format = guide.formats[(r, c)]
    for i, width in enumerate(INSTRUCTION_WIDTHS, start=1):
        ws.column_dimensions[get_column_letter(i)].width = width
    ws.freeze_panes = "A2"


def _charts(ws: Any, picks: list[Any], currency: str | None) -> streamed.RowSource:
    """The Charts tab of a local journal: the slots, their chart data (one formula per
    formatted row, #N/A where a row is not plotted) in hidden columns, and per slot a chart
    of equity-based leverage and one of liquidation distance; the equity curve last."""
    slots = slot_count(len(picks))
    # the filled cells only (the tab's grid grows with the square of the positions); the
    # chart data (3 formulas a row per slot) is made a row at a time as the file is saved
    for r, c, value in chart_cells(picks, currency, "excel", _FORMATTED_ROWS, "labels"):
        if value is not None:
            _chart_value(ws.cell(row=r, column=c), value)
    data = streamed.built_rows(
        ws, lambda: chart_cells(picks, currency, "excel", _FORMATTED_ROWS, "data"),
        _chart_value)
    ws.column_dimensions["A"].width = 24
    title, text = PROMPTS[(CHARTS_SHEET, "position_id")]
    ids = f"{L.JOURNAL_POSITIONS.title}!$A${FIRST_DATA_ROW}:$A${_FORMATTED_ROWS + 1}"
    index = {str(v.sqref): v for v in ws.data_validations.dataValidation}
    for k in range(slots + 1):
        label = ws.cell(row=slot_row(k), column=1)
        label.font = Font(bold=True)
        label.alignment = Alignment(wrap_text=True)
        ws.cell(row=slot_row(k) + 1, column=1).fill = _solid(L.INPUT_FILL)
        # the empty chart's note wraps down column A's empty rows, beside the chart
        ws.cell(row=slot_row(k) + 2, column=1).alignment = Alignment(wrap_text=True,
                                                                     vertical="top")
        if k < slots:
            _prompt(ws, f"A{slot_row(k) + 1}", title, text, formula=ids, index=index)
        else:  # the currencies the Summary's totals list
            col = L.SUMMARY_TOTALS.letter("currency")
            dv = DataValidation(type="list", allow_blank=True, formula1=(
                f"{L.SUMMARY_TOTALS.title}!${col}${FIRST_DATA_ROW}:${col}${EQUITY_ROWS + 1}"))
            dv.add(f"A{slot_row(k) + 1}")
            ws.add_data_validation(dv)
    for c in range(DATA_COLUMN, chart_width(slots) + 1):
        ws.column_dimensions[get_column_letter(c)].hidden = True
    last = _FORMATTED_ROWS + 1
    # what prints: the slots and the equity curve, a page each (the chart data's formula
    # rows below would print as blank pages)
    ws.print_area = f"A1:{get_column_letter(DATA_COLUMN - 1)}{slot_row(slots + 1) - 1}"
    for k in range(1, slots + 1):
        ws.row_breaks.append(Break(id=slot_row(k) - 1))
    for k in range(slots):
        date, lev, dist = (data_column(k) + j for j in range(3))
        ws.add_chart(_scatter(ws, f"Slot {k + 1}: leverage (equity), open rows only", date, lev,
                              last, L.LEV, "Leverage (equity)"), f"C{slot_row(k)}")
        distance = _scatter(ws, f"Slot {k + 1}: liquidation distance, open rows only", date,
                            dist, last, L.RATE, "Liq. distance")
        # 0 to 100 %: an empty slot shows an empty 0-100 % axis, not the app's 0-1200 %
        distance.y_axis.scaling.min, distance.y_axis.scaling.max = 0, 1
        ws.add_chart(distance, f"L{slot_row(k)}")
    closed, equity = data_column(slots), data_column(slots) + 1
    ws.add_chart(_scatter(ws, "Equity curve: cumulative net PnL of closed positions", closed,
                          equity, FIRST_DATA_ROW + EQUITY_ROWS - 1, L.MONEY, "Net PnL",
                          "Closed"),
                 f"C{slot_row(slots)}")
    return data


def _chart_value(cell: Any, value: Any) -> None:
    if isinstance(value, ArrayFormulaCell):
        cell.value = ArrayFormula(cell.coordinate, str(value))
    elif isinstance(value, Formula):
        cell.value = str(value)
    else:
        _set_raw(cell, value)


def _scatter(ws: Any, title: str, x: int, y: int, last: int, y_format: str,
             y_title: str, x_title: str = "Date") -> ScatterChart:
    chart = ScatterChart()
    chart.title = title
    chart.style = 13
    chart.height, chart.width = 9.5, 15.5  # cm: within a slot's rows
    chart.legend = None
    chart.display_blanks = "span"  # #N/A rows (other positions, closed) are not a gap
    chart.visible_cells_only = False  # the chart data sits in hidden columns
    chart.x_axis.title, chart.y_axis.title = x_title, y_title
    chart.x_axis.number_format, chart.y_axis.number_format = "yyyy-mm-dd", y_format
    chart.x_axis.delete = chart.y_axis.delete = False
    series = Series(Reference(ws, min_col=y, min_row=FIRST_DATA_ROW, max_row=last),
                    Reference(ws, min_col=x, min_row=FIRST_DATA_ROW, max_row=last),
                    title=y_title)
    series.marker.symbol = "circle"
    series.smooth = False
    chart.series.append(series)
    return chart


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
    # the coin-margined rows' money at a coin's decimals (the Summary holds two tables)
    parts = (L.JOURNAL_SUMMARY, L.SUMMARY_TOTALS) if sheet.title == L.SUMMARY_SHEET else (sheet,)
    for part in parts:
        found = L.coin_money(part)
        if found is None:
            continue
        formula, keys = found
        ref = " ".join(f"{part.letter(k)}{FIRST_DATA_ROW}:{part.letter(k)}{last}" for k in keys)
        if ref not in present:
            dxf = DifferentialStyle(numFmt=NumberFormat(numFmtId=COIN_MONEY_ID,
                                                        formatCode=L.COIN_MONEY))
            ws.conditional_formatting.add(ref, Rule(type="expression", dxf=dxf,
                                                    formula=[formula]))


COIN_MONEY_ID = 399  # the coin rule's own number format id, above those openpyxl gives cells
