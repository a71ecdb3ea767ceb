"""Writing helpers shared by the two workbooks: styled cells, headers, drop-downs, page setup.

Both workbooks are written in openpyxl's write-only mode, row by row, so a 10,000-event
journal builds in seconds and in little memory. Everything a write-only sheet needs before
its first row (column widths, frozen panes, print titles) is set by :func:`prepare_sheet`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Sequence
from typing import Any

from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.workbook import Workbook
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.properties import PageSetupProperties

from leverage.errors import InputError

from .layout import HEADER_ROW, Sheet

MODES = ("udf", "native")

INPUT_FILL = PatternFill("solid", fgColor="FFF2CC")  # pale yellow: the trader types here
COMPUTED_FILL = PatternFill("solid", fgColor="DDEBF7")  # pale blue: formulas, do not type
HELPER_FILL = PatternFill("solid", fgColor="EDEDED")
HEADER_FONT = Font(bold=True)
HEADER_ALIGN = Alignment(wrap_text=True, vertical="top")
RED_FILL = PatternFill("solid", fgColor="FFC7CE")
RED_FONT = Font(color="9C0006")
AMBER_FILL = PatternFill("solid", fgColor="FFEB9C")
WRAP = Alignment(wrap_text=True, vertical="top")


def check_mode(mode: Any) -> str:
    """``mode`` as given if it is ``udf`` or ``native``; InputError otherwise."""
    if mode not in MODES:
        raise InputError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    return str(mode)


def check_rows(rows: Any, minimum: int, default: int) -> int:
    """Number of formula rows to pre-fill: ``default`` when None, else at least ``minimum``."""
    if rows is None:
        return default
    if isinstance(rows, bool) or not isinstance(rows, int):
        raise InputError(f"rows must be a whole number, got {rows!r}")
    if rows < max(minimum, 1):
        raise InputError(
            f"rows must be >= {max(minimum, 1)} (one per data row at least), got {rows}"
        )
    return rows


class CellMaker:
    """Makes write-only cells with a style computed once per (format, fill, font) and copied,
    which keeps a 400,000-cell journal fast."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._styles: dict[tuple[Any, ...], Any] = {}

    def cell(
        self,
        value: Any,
        number_format: str = "General",
        fill: PatternFill | None = None,
        font: Font | None = None,
        align: Alignment | None = None,
    ) -> WriteOnlyCell:
        key = (number_format, id(fill), id(font), id(align))
        style = self._styles.get(key)
        if style is None:
            probe = WriteOnlyCell(self.ws)
            probe.number_format = number_format
            if fill is not None:
                probe.fill = fill
            if font is not None:
                probe.font = font
            if align is not None:
                probe.alignment = align
            style = self._styles[key] = probe._style
        c = WriteOnlyCell(self.ws, value)
        c._style = copy.copy(style)
        return c

    def text(
        self, value: Any, number_format: str = "General", align: Alignment | None = None
    ) -> WriteOnlyCell:
        """A cell holding what the trader gave: text is always stored as text, never run as
        a formula (``=...`` typed in a reason stays a reason)."""
        c = self.cell(value, number_format, align=align)
        if isinstance(value, str) and c.data_type == "f":
            c.data_type = "s"
        return c


def prepare_sheet(
    wb: Workbook,
    title: str,
    widths: Sequence[float],
    *,
    freeze: str | None = "A2",
    hidden_from: int | None = None,
    landscape: bool = True,
    print_to: tuple[int, int] | None = None,
    wide: bool = False,
    header_height: float | None = 30.0,
) -> Any:
    """A write-only sheet with column widths, frozen header and print setup (landscape, fit
    to one page wide, header row repeated on every page). Columns from ``hidden_from``
    (1-based) on are hidden: the native formulas' working columns. ``print_to`` =
    (last column, last row) of the print area. The page header names the sheet. ``wide``
    sheets print on A3 so their text stays readable at one page wide."""
    ws = wb.create_sheet(title)
    for i, w in enumerate(widths, start=1):
        dim = ws.column_dimensions[get_column_letter(i)]
        dim.width = w
        if hidden_from is not None and i >= hidden_from:
            dim.hidden = True
    if freeze:
        ws.freeze_panes = freeze
    ws.print_title_rows = f"{HEADER_ROW}:{HEADER_ROW}"
    ws.page_setup.orientation = "landscape" if landscape else "portrait"
    ws.page_setup.paperSize = "8" if wide else "9"  # A3 / A4
    if header_height is not None:
        ws.row_dimensions[HEADER_ROW].height = header_height  # two lines of wrapped header
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr = PageSetupProperties(fitToPage=True)
    ws.page_margins.left = ws.page_margins.right = 0.4
    ws.page_margins.top = ws.page_margins.bottom = 0.5
    ws.print_options.gridLines = True
    ws.oddHeader.center.text = "&A"
    ws.oddFooter.center.text = "&A | page &P of &N"  # templates.render reads the sheet here
    if print_to is not None:
        ws.print_area = f"A1:{get_column_letter(print_to[0])}{print_to[1]}"
    return ws


def header_cells(
    maker: CellMaker, sheet: Sheet, extra: Iterable[str] = ()
) -> list[WriteOnlyCell]:
    """Row 1: the layout's headers (input yellow, computed blue), then helper headers."""
    cells = [
        maker.cell(c.header, fill=INPUT_FILL if c.role == "input" else COMPUTED_FILL,
                   font=HEADER_FONT, align=HEADER_ALIGN)
        for c in sheet.columns
    ]
    cells += [maker.cell(h, fill=HELPER_FILL, font=HEADER_FONT, align=HEADER_ALIGN)
              for h in extra]
    return cells


def list_validation(
    ws: Any, cells: str, choices: Sequence[str] | str, what: str, allow_blank: bool = True
) -> DataValidation:
    """A drop-down that rejects anything else (``showErrorMessage`` on: openpyxl's default
    would let a typo through silently). ``choices`` is a list of words or a range."""
    formula = choices if isinstance(choices, str) else '"' + ",".join(choices) + '"'
    dv = DataValidation(
        type="list",
        formula1=formula,
        allow_blank=allow_blank,
        showErrorMessage=True,
        errorTitle=f"Not a valid {what}",
        error=f"Pick a {what} from the list"
        + ("" if isinstance(choices, str) else f": {', '.join(choices)}."),
        showInputMessage=False,
    )
    dv.add(cells)
    ws.data_validations.append(dv)
    return dv


def number_validation(ws: Any, cells: str, what: str, minimum: float = 0.0) -> DataValidation:
    """Reject a non-number or a number below ``minimum``."""
    dv = DataValidation(
        type="decimal",
        operator="greaterThanOrEqual",
        formula1=str(minimum),
        allow_blank=True,
        showErrorMessage=True,
        errorTitle=f"Not a valid {what}",
        error=f"{what} must be a number >= {minimum:g}",
    )
    dv.add(cells)
    ws.data_validations.append(dv)
    return dv


def nested_if(checks: Sequence[tuple[str, str]], otherwise: str) -> str:
    """``IF(c1, v1, IF(c2, v2, ... otherwise))``: the first true condition wins, and no later
    condition is evaluated (Excel, LibreOffice and ``formulas`` all stop at the first)."""
    out = otherwise
    for cond, value in reversed(checks):
        out = f"IF({cond},{value},{out})"
    return out


def all_of(conditions: Sequence[str], then: str, otherwise: str = '""') -> str:
    """``then`` when every condition holds, tested one at a time (an ``AND`` would evaluate
    them all, and a later one may only make sense once an earlier one holds)."""
    out = then
    for cond in reversed(conditions):
        out = f"IF({cond},{out},{otherwise})"
    return out


def quoted(text: str) -> str:
    """A string literal for a formula."""
    return '"' + text.replace('"', '""') + '"'


def xlwings_conf_sheet(wb: Workbook, udf_module: str) -> Any:
    """The ``xlwings.conf`` sheet (key in A, value in B) that tells the xlwings add-in which
    Python module holds the workbook's functions."""
    from .layout import XLWINGS_CONF_SHEET

    ws = wb.create_sheet(XLWINGS_CONF_SHEET)
    ws.column_dimensions["A"].width = 16
    ws.column_dimensions["B"].width = 24
    ws.append(["UDF Modules", udf_module])
    return ws
