"""Writing helpers shared by the two workbooks: styled cells, headers, drop-downs, page setup.

Both workbooks are written in openpyxl's write-only mode, row by row, so a 10,000-event
journal builds in seconds and in little memory. Everything a write-only sheet needs before
its first row (column widths, frozen panes, print titles) is set by :func:`prepare_sheet`.

A sheet of many identical formula rows (the journal's Events) can also have its later rows
*streamed*: written as XML text, byte for byte what openpyxl writes for the same cells, into
the saved file (:meth:`CellMaker.text_xml`, :meth:`CellMaker.formula_xml`,
:func:`save_with_streamed_rows`). openpyxl spends ~20 µs on each cell (a cell object, type
binding, an lxml element); a row of formulas as text costs two ``str.replace``.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import math
import re
import zipfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import openpyxl
from lxml import etree
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell._writer import write_cell
from openpyxl.compat import safe_string
from openpyxl.formatting.rule import FormulaRule, Rule
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.styles.differential import DifferentialStyle
from openpyxl.styles.numbers import NumberFormat, is_date_format
from openpyxl.utils import get_column_letter
from openpyxl.utils.datetime import to_excel
from openpyxl.workbook import Workbook
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.formula import ArrayFormula
from openpyxl.worksheet.properties import PageSetupProperties

from leverage import CATALOGUE
from leverage import layout as L
from leverage.errors import InputError
from leverage.instructions import COLOUR_LEGEND, EXAMPLES, INSTRUCTIONS, INSTRUCTIONS_SHEET, PROMPTS
from leverage.layout import (
    BOLD_CHAR,
    FIRST_DATA_ROW,
    HEADER_ROW,
    LINE_HEIGHT,
    MODES,
    Sheet,
    wrapped_lines,
)


def solid(color: str) -> PatternFill:
    """A solid fill of hex ``color``; bgColor too, which Excel reads in conditional formats."""
    return PatternFill("solid", fgColor=color, bgColor=color)


INPUT_FILL = solid(L.INPUT_FILL)
COMPUTED_FILL = solid(L.COMPUTED_FILL)
HELPER_FILL = solid(L.HELPER_FILL)
HEADER_FONT = Font(bold=True)
HEADER_ALIGN = Alignment(wrap_text=True, vertical="top")
WRAP = Alignment(wrap_text=True, vertical="top")
LEFT = Alignment(horizontal="left", vertical="top")
TITLE_FONT = Font(bold=True, size=14)


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


ROW, ABOVE = "\x01", "\x02"
"""Stand-ins for a row's number and the number of the row above it in a formula written
once for every row (:meth:`CellMaker.formula_xml`, :func:`fill_row`). Neither can occur in a
formula or in XML text, so ``str.replace`` fills them in (~3x faster than ``str.format``)."""

STREAMABLE = openpyxl.LXML
"""Streamed rows copy what openpyxl's lxml writer emits. When openpyxl does not use lxml
(``OPENPYXL_LXML=False``) it writes through another serializer, and every row goes through
openpyxl cells instead."""

# Characters openpyxl or lxml refuse (control characters, lone surrogates, U+FFFE/U+FFFF):
# a text holding one goes through openpyxl, which raises its own error.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_MAX_TEXT = 32_767  # openpyxl cuts longer text here
_MAX_INT = 10**300  # safe_string ("%.16g") overflows on larger ints: openpyxl raises for them


def fill_row(text: str, row: int) -> str:
    """``text`` (a formula or XML with :data:`ROW`/:data:`ABOVE`) for sheet row ``row``."""
    return text.replace(ROW, str(row)).replace(ABOVE, str(row - 1))


def xml_text(text: str) -> str:
    """``text`` escaped as lxml escapes element text (quotes stay as they are; a carriage
    return becomes a character reference). Non-ASCII characters are left for the final
    ``encode("ascii", "xmlcharrefreplace")``, which spells them as lxml does (``&#233;``)."""
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace("\r", "&#13;"))


class CellMaker:
    """Makes write-only cells with a style computed once per (format, fill, font) and copied,
    which keeps a 400,000-cell journal fast; and the XML text openpyxl writes for such cells,
    for rows that are streamed (see the module docstring)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self._styles: dict[tuple[Any, ...], Any] = {}
        self._style_attrs: dict[tuple[Any, ...], str] = {}
        # Binding a date registers its default number format with the workbook (styles.xml
        # lists it): the first value of each date type goes through openpyxl to do that.
        self._bound_types: set[type] = set()

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
        a formula (``=...`` typed in a reason stays a reason) nor made an error value
        (openpyxl stores the text ``#N/A`` as the error)."""
        c = self.cell(value, number_format, align=align)
        if isinstance(value, str):
            c.data_type = "s"
        return c

    # ------------------------------------------------------------- streamed rows
    def _style_attr(self, number_format: str, align: Alignment | None) -> str:
        """`` s="<id>"`` as openpyxl writes it for a cell of this style ("" if unstyled).
        Asking for the id registers the style, so ask where openpyxl would: at or after the
        first row that uses it."""
        key = (number_format, id(align))
        attr = self._style_attrs.get(key)
        if attr is None:
            probe = self.cell(None, number_format, align=align)
            attr = f' s="{probe.style_id}"' if probe.has_style else ""
            self._style_attrs[key] = attr
        return attr

    def text_xml(
        self, row: int, column: int, value: Any, number_format: str = "General",
        align: Alignment | None = None,
    ) -> str:
        """The ``<c>`` element openpyxl writes for ``self.text(value, ...)`` at ``row``,
        ``column`` (1-based; "" for a blank unstyled cell, which openpyxl skips).

        Blank, text, finite numbers and (in a date-formatted column) dates are spelled
        here; anything else (bools, numpy numbers, huge ints, text openpyxl cuts or
        rejects) is written by openpyxl itself, so it is never different."""
        kind = type(value)
        style = self._style_attr(number_format, align)
        ref = get_column_letter(column) + str(row)
        if value is None:
            return f'<c r="{ref}"{style} t="n"></c>' if style else ""
        if kind is str:
            if len(value) <= _MAX_TEXT and _NOT_XML.search(value) is None:
                space = ' xml:space="preserve"' if value != value.strip() else ""
                return (f'<c r="{ref}"{style} t="inlineStr"><is><t{space}>{xml_text(value)}'
                        "</t></is></c>")
        elif (kind is float and math.isfinite(value)) or (kind is int and abs(value) < _MAX_INT):
            return f'<c r="{ref}"{style} t="n"><v>{safe_string(value)}</v></c>'
        elif (((kind is dt.datetime and value.tzinfo is None) or kind is dt.date)
              and kind in self._bound_types and is_date_format(number_format)
              and not self.ws.parent.iso_dates):
            serial = to_excel(value, self.ws.parent.epoch)
            return f'<c r="{ref}"{style} t="n"><v>{safe_string(serial)}</v></c>'
        if kind in (dt.datetime, dt.date):
            self._bound_types.add(kind)
        return self._openpyxl_xml(row, column, self.text(value, number_format, align))

    def _openpyxl_xml(self, row: int, column: int, cell: WriteOnlyCell) -> str:
        """``cell`` written by openpyxl's own cell writer, as the sheet writer calls it."""
        cell.row, cell.column = row, column
        out = io.BytesIO()
        with etree.xmlfile(out) as xf:
            write_cell(xf, self.ws, cell, cell.has_style)
        return out.getvalue().decode("ascii")

    def formula_xml(
        self, column: int, formula: str, number_format: str = "General",
        align: Alignment | None = None,
    ) -> str:
        """The ``<c>`` element openpyxl writes for ``self.cell("=" + formula, ...)`` in
        ``column`` of any row: ``formula`` and the result hold :data:`ROW`/:data:`ABOVE`
        (:func:`fill_row` puts the numbers in)."""
        if len(formula) + 1 > _MAX_TEXT or _NOT_XML.search(formula.replace(ROW, "").replace(
                ABOVE, "")):
            raise ValueError(f"formula in column {column} cannot be written: {formula[:80]!r}")
        ref = get_column_letter(column) + ROW
        style = self._style_attr(number_format, align)
        return f'<c r="{ref}"{style}><f>{xml_text(formula)}</f><v></v></c>'


@dataclass(frozen=True)
class StreamedRows:
    """Rows of the write-only sheet ``ws`` still to write, from ``first_row`` on, one per
    item of ``input_cells`` (the XML of that row's :meth:`CellMaker.text_xml` cells), each
    followed by the same formula cells ``formula_cells`` (:meth:`CellMaker.formula_xml`)."""

    ws: Any
    first_row: int
    formula_cells: str
    input_cells: list[str]

    def __iter__(self) -> Iterator[str]:
        for r, cells in enumerate(self.input_cells, start=self.first_row):
            yield f'<row r="{r}">{cells}{fill_row(self.formula_cells, r)}</row>'

    def size_hint(self) -> int:
        """At most about how many bytes of XML the rows make (non-ASCII input text grows up
        to 10x as character references)."""
        last = fill_row(self.formula_cells, self.first_row + len(self.input_cells))
        return (len(last) + 20) * len(self.input_cells) + 10 * sum(map(len, self.input_cells))


class SheetRows(Protocol):
    """What :func:`save_with_streamed_rows` splices into a sheet: :class:`StreamedRows`, or
    the journal's ``SharedRows``."""

    @property
    def ws(self) -> Any:
        """The write-only openpyxl sheet the rows belong to."""
        ...

    def __iter__(self) -> Iterator[str]:
        """The ``<row>`` XML of each row, in order."""
        ...

    def size_hint(self) -> int:
        """At most about how many bytes of XML the rows make."""
        ...


def save_with_streamed_rows(
    wb: Workbook, path: str | Path, rows: SheetRows | Sequence[SheetRows],
    compresslevel: int = 3,
) -> None:
    """Save ``wb`` to ``path`` with ``rows`` (one sheet's, or a list: one per sheet)
    appended to the ``sheetData`` of their sheet, after the rows openpyxl wrote there.

    openpyxl saves the workbook into memory first (its copy of the sheet holds only the first
    rows, so it is small); every file is then copied into ``path``, the sheet's XML with the
    rows spliced in before ``</sheetData>``, streamed through the compressor.
    ``compresslevel`` 3 deflates ~3x faster than openpyxl's default (6), for a ~20 % larger
    file.
    """
    saved = io.BytesIO()
    wb.save(saved)
    # each sheet's file is known once openpyxl has saved the workbook
    sheets = rows if isinstance(rows, Sequence) else [rows]
    by_file = {r.ws.path.lstrip("/"): r for r in sheets}
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(
        path, "w", zipfile.ZIP_DEFLATED, allowZip64=True, compresslevel=compresslevel
    ) as out:
        for info in src.infolist():
            data = src.read(info)
            sheet_rows = by_file.get(info.filename)
            if sheet_rows is None:
                out.writestr(info.filename, data)
                continue
            end = data.rindex(b"</sheetData>")  # openpyxl wrote the header row at least
            # past 2 GiB an entry needs ZIP64 headers, which must be announced up front
            big = sheet_rows.size_hint() + len(data) > zipfile.ZIP64_LIMIT * 0.9
            with out.open(info.filename, "w", force_zip64=big) as f:
                f.write(data[:end])
                for chunk in _batches(sheet_rows, 200):
                    f.write("".join(chunk).encode("ascii", "xmlcharrefreplace"))
                f.write(data[end:])


def _batches(items: Iterable[str], size: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def data_sheet(
    wb: Workbook, sheet: Any, helpers: Any, rows: int, calls: Sequence[ColumnCall] = ()
) -> tuple[Any, CellMaker, int, int]:
    """A row-per-record sheet (journal events, rebalance positions): the layout's columns
    then the hidden helper columns (and the add-in's column ``calls``, udf mode), headers
    frozen, printed up to the last layout column. Returns the sheet, its cell maker, and the
    first and last formula rows."""
    n_main = len(sheet.columns)
    widths = [c.width for c in sheet.columns] + [14.0] * (len(helpers.columns) + len(calls))
    first, last = FIRST_DATA_ROW, FIRST_DATA_ROW + rows - 1
    ws = prepare_sheet(wb, sheet.title, widths, freeze="C2", hidden_from=n_main + 1,
                       print_to=(n_main, last), wide=True)
    return ws, CellMaker(ws), first, last


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
    index: int | None = None,
) -> Any:
    """A write-only sheet with column widths, frozen header and print setup (landscape, fit
    to one page wide, header row repeated on every page). Columns from ``hidden_from``
    (1-based) on are hidden: the native formulas' working columns. ``print_to`` =
    (last column, last row) of the print area. The page header names the sheet. ``wide``
    sheets print on A3 so their text stays readable at one page wide. ``index``: the tab's
    place (default: last)."""
    ws = wb.create_sheet(title, index)
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


def text_heights(sheet: Sheet, rows: Iterable[Mapping[str, Any]]) -> dict[int, float]:
    """Height (points) of each of ``rows`` (0-based index: a row's texts by layout key)
    whose wrapped columns (:data:`leverage.layout.WRAPPED`) need more than one line at the
    layout's widths; rows of one line keep the default height. The apps do not size a row
    to a formula's text as they open a file, so the rows of a sample are sized here."""
    columns = [c for c in sheet.columns if L.wraps(c)]
    out = {}
    for i, row in enumerate(rows):
        lines = max([wrapped_lines(str(row[c.key]), c.width) for c in columns
                     if row.get(c.key) not in (None, "")] or [1])
        height = L.row_height(lines)
        if height is not None:
            out[i] = height
    return out


def header_height(sheet: Sheet, widths: Sequence[float] | None = None) -> float:
    """Height (points) of a header row that shows each of ``sheet``'s headers whole, wrapped
    in its column (``widths``: the columns' widths, default the layout's)."""
    widths = [c.width for c in sheet.columns] if widths is None else widths
    lines = max(wrapped_lines(c.header, w, BOLD_CHAR)
                for c, w in zip(sheet.columns, widths, strict=False))
    return lines * LINE_HEIGHT + 3


def header_cells(
    maker: CellMaker, sheet: Sheet, extra: Iterable[str] = ()
) -> list[WriteOnlyCell]:
    """Row 1: the layout's headers (input yellow, computed blue), then helper headers. The
    headers wrap, and the header row (not yet written) is made tall enough for the longest
    wrapped header in its column's width (hidden helper columns aside)."""
    ws = maker.ws
    widths = [ws.column_dimensions[get_column_letter(i)].width or c.width
              for i, c in enumerate(sheet.columns, start=1)]
    dim = ws.row_dimensions[HEADER_ROW]
    dim.height = max(dim.height or 0.0, header_height(sheet, widths))
    fills = {"input": INPUT_FILL, "computed": COMPUTED_FILL, "imported": INPUT_FILL}
    cells = [maker.cell(c.header, fill=fills[c.role], font=HEADER_FONT, align=HEADER_ALIGN)
             for c in sheet.columns]
    cells += [maker.cell(h, fill=HELPER_FILL, font=HEADER_FONT, align=HEADER_ALIGN)
              for h in extra]
    return cells


def list_validation(
    ws: Any, cells: str, choices: Sequence[str] | str, title: str, text: str
) -> DataValidation:
    """A drop-down that rejects anything else (``showErrorMessage`` on: openpyxl's default
    would let a typo through silently). ``choices`` is a list of words or a range; ``title``
    and ``text`` make the message shown for anything else."""
    formula = choices if isinstance(choices, str) else '"' + ",".join(choices) + '"'
    dv = DataValidation(
        type="list",
        formula1=formula,
        allow_blank=True,
        showErrorMessage=True,
        errorTitle=title,
        error=text,
        showInputMessage=False,
    )
    dv.add(cells)
    ws.data_validations.append(dv)
    return dv


def drop_downs(ws: Any, sheet: Sheet, first: int, last: int) -> None:
    """The layout's drop-down lists on rows ``first``..``last``."""
    for col in sheet.columns:
        if col.choices:
            letter = sheet.letter(col.key)
            title, text = L.choice_message(col)
            list_validation(ws, f"{letter}{first}:{letter}{last}", col.choices, title, text)


def highlights(ws: Any, sheet: Sheet, last: int) -> None:
    """The layout's highlights (conditional formats) on the data rows up to ``last``."""
    for h in sheet.highlights:
        rule = FormulaRule(formula=[L.highlight_formula(sheet, h, L.excel_buffer())[1:]],
                           fill=solid(h.fill), font=Font(color=h.text) if h.text else None)
        ws.conditional_formatting.add(f"{sheet.letter(h.key)}{FIRST_DATA_ROW}:"
                                      f"{sheet.letter(h.key)}{last}", rule)
    coin_money(ws, sheet, last)


COIN_MONEY_ID = 399  # a number format id of the rule's own, above those openpyxl numbers cells


def coin_money_rule(formula: str) -> Rule:
    """A conditional format that shows a cell at :data:`leverage.layout.COIN_MONEY`'s
    decimals where ``formula`` holds (Excel and LibreOffice both read a number format in a
    conditional format's style)."""
    dxf = DifferentialStyle(numFmt=NumberFormat(numFmtId=COIN_MONEY_ID,
                                                formatCode=L.COIN_MONEY))
    return Rule(type="expression", dxf=dxf, formula=[formula])


def coin_money(ws: Any, sheet: Sheet, last: int, first: int = FIRST_DATA_ROW) -> None:
    """Rows ``first``..``last`` of ``sheet``'s money columns at a coin's 8 decimals where the
    row's currency is a coin (:func:`leverage.layout.coin_money`)."""
    found = L.coin_money(sheet)
    if found is None:
        return
    formula, keys = found
    ws.conditional_formatting.add(" ".join(f"{sheet.letter(k)}{first}:{sheet.letter(k)}{last}"
                                           for k in keys), coin_money_rule(formula))


def _rows_covered(dv: DataValidation, column: int, first: int, last: int) -> list[range]:
    """Rows ``first``..``last`` of ``column`` that ``dv`` applies to, as ranges."""
    out = []
    for cr in dv.sqref.ranges:
        if cr.min_col <= column <= cr.max_col and cr.min_row <= last and cr.max_row >= first:
            out.append(range(max(cr.min_row, first), min(cr.max_row, last) + 1))
    return out


def input_prompts(ws: Any, sheet: Sheet, first: int, last: int) -> None:
    """The input prompt (:data:`leverage.instructions.PROMPTS`) of every input and imported
    column of ``sheet`` on rows ``first``..``last``, shown when a cell is selected.

    A cell takes one data validation, so a column that already has one (a drop-down, a
    number check) gets the prompt on that validation: its list or rule is kept. Cells no
    validation covers get one that accepts anything and only prompts. Call it after the
    sheet's other validations."""
    existing = list(ws.data_validations.dataValidation)
    for index, col in enumerate(sheet.columns, start=1):
        if col.role == "computed" or (sheet.title, col.key) not in PROMPTS:
            continue
        title, text = PROMPTS[(sheet.title, col.key)]
        covered: set[int] = set()
        for dv in existing:
            rows = _rows_covered(dv, index, first, last)
            if rows:
                dv.promptTitle, dv.prompt, dv.showInputMessage = title, text, True
                for span in rows:
                    covered.update(span)
        free = [r for r in range(first, last + 1) if r not in covered]
        if not free:
            continue
        dv = DataValidation(allow_blank=True, showInputMessage=True, promptTitle=title,
                            prompt=text)
        letter = get_column_letter(index)
        start = prev = free[0]
        for r in [*free[1:], None]:
            if r is not None and r == prev + 1:
                prev = r
                continue
            dv.add(f"{letter}{start}:{letter}{prev}" if prev > start else f"{letter}{start}")
            if r is not None:
                start = prev = r
        ws.data_validations.append(dv)


INSTRUCTION_WIDTHS = (26.0, 96.0)


def instructions_sheet(wb: Workbook, template: str) -> Any:
    """The workbook's first tab, :data:`leverage.instructions.INSTRUCTIONS_SHEET`: what each
    tab is for, what to type and what is computed (``INSTRUCTIONS[template]``), a colour key,
    and the worked example rows (``EXAMPLES[template]``) under their sheets' headers, typed
    the way the sheet takes them. Rows are tall enough for their wrapped text."""
    if template not in INSTRUCTIONS:
        raise InputError(f"template must be one of {', '.join(INSTRUCTIONS)}, got {template!r}")
    head_w, text_w = INSTRUCTION_WIDTHS
    ws = prepare_sheet(wb, INSTRUCTIONS_SHEET, INSTRUCTION_WIDTHS, freeze=None,
                       landscape=False, header_height=None, index=0)
    mk = CellMaker(ws)
    row = HEADER_ROW

    def append(cells: list[WriteOnlyCell], *texts: tuple[str, float]) -> None:
        nonlocal row
        height = L.row_height(max([wrapped_lines(t, w) for t, w in texts] or [1]))
        if height is not None:
            ws.row_dimensions[row].height = height
        ws.append(cells)
        row += 1

    title = f"{template.capitalize()} workbook: what to type where"
    append([mk.cell(title, font=TITLE_FONT)])
    for heading, text in INSTRUCTIONS[template]:
        append([mk.cell(heading, font=HEADER_FONT, align=WRAP), mk.cell(text, align=WRAP)],
               (heading, head_w / BOLD_CHAR), (text, text_w))
        if heading == "Colours":
            for fill, meaning in COLOUR_LEGEND:
                append([mk.cell(None, fill=solid(fill)), mk.cell(meaning, align=WRAP)],
                       (meaning, text_w))
    sheets = {s.title: s for s in L.TEMPLATES[template]}
    for n, (title, values) in enumerate(EXAMPLES[template], start=1):
        sheet = sheets[title]
        append([])
        append([mk.cell(f"Example {n}: a row of {title}", font=HEADER_FONT)])
        for col in sheet.columns:
            if col.key in values:
                append([mk.cell(col.header, fill=INPUT_FILL, align=WRAP),
                        mk.text(values[col.key], col.number_format, align=LEFT)],
                       (col.header, head_w))
    return ws


def rate_value(ref: str) -> str:
    """A rate cell as the core reads it: a number as it is, percent text ("0.5%", " 0.5 %",
    "-0.01%") as its fraction, a blank cell as "" (a formula's IF would turn it into 0);
    any other text stays that text, so the checks that follow report it as the core does.
    Only text ending in "%" whose other characters are digits, ".", "e", "E", "+" and "-" is
    converted, as the core's percent text: VALUE alone would also read "1/2" as a date and
    "0,4" as 4 or a date, where the core refuses them.

    >>> lines = rate_value("M2").replace('M2," ",""', "t").replace(",IF", ",\\nIF")
    >>> print("\\n".join(lines.splitlines()[:4]))
    IF(ISNUMBER(M2),M2,
    IF(M2="","",
    IF(RIGHT(SUBSTITUTE(t),1)="%",
    IF(SUBSTITUTE(SUBSTITUTE(SUBSTITUTE(SUBSTITUTE(SUBSTITUTE(SUBSTITUTE(SUBSTITUTE(SUBSTITUTE(SUBSTITUTE(SUBSTITUTE(SUBSTITUTE(SUBSTITUTE(SUBSTITUTE(SUBSTITUTE(SUBSTITUTE(LEFT(SUBSTITUTE(t),LEN(SUBSTITUTE(t))-1),"0",""),"1",""),"2",""),"3",""),"4",""),"5",""),"6",""),"7",""),"8",""),"9",""),".",""),"e",""),"E",""),"+",""),"-","")="",
    """
    t = f'SUBSTITUTE({ref}," ","")'
    number = f"LEFT({t},LEN({t})-1)"
    rest = number
    for c in "0123456789.eE+-":  # what is left once the characters of a number are gone
        rest = f'SUBSTITUTE({rest},"{c}","")'
    return (f'IF(ISNUMBER({ref}),{ref},IF({ref}="","",IF(RIGHT({t},1)="%",'
            f'IF({rest}="",IFERROR(VALUE({number})/100,{ref}),{ref}),{ref})))')


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
    ws = wb.create_sheet(L.XLWINGS_CONF_SHEET)
    ws.column_dimensions["A"].width = 16
    ws.column_dimensions["B"].width = 24
    ws.append(["UDF Modules", udf_module])
    return ws


# ------------------------------------------------------------ add-in column calls
# Through xlwings every call of an add-in function costs ~0.5 ms whatever its size, so a
# workbook that calls them once per cell pays that for every row at each recalculation. In
# udf mode each call a row's formulas make is lifted into a hidden column of its own,
# computed by ONE array formula over the whole table (``=LIQ_PRICE(AD2:AD10201,...)``): the
# add-in gets the columns and answers every row at once. The row's formulas keep their IF()s
# and read that column's cell in their row instead of calling the function.
#
# The array formula is a legacy (CSE) one, ``<f t="array" ref=...>``: openpyxl cannot write
# a dynamic-array spill (``cm`` + metadata.xml). Excel, the formulas engine and the add-in
# evaluate it once for the whole range; it covers the table's formula rows (fixed, like the
# native formulas), and Excel does not let a user edit one cell of it.

ROW_FUNCTIONS = frozenset(name for name, f in CATALOGUE.items() if f.per_row)
"""Add-in functions with one answer per row (the catalogue's ``per_row``): the others (TIER's
three columns, the functions over ranges) are never lifted into a column call."""

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\(")
# A relative cell reference of the data sheet (``K2``, ``K\x01``), not part of a name, a
# sheet-qualified or absolute-row reference, or a range.
_RELATIVE_REF = re.compile(
    r"(?<![A-Za-z0-9_$!.:\x01\x02])(\$?[A-Z]{1,3})(\d+|\x01|\x02)(?![0-9A-Za-z_(!:\x01\x02])"
)


def _closing(formula: str, start: int) -> int:
    """Index just after the ``)`` that closes the ``(`` before ``start``."""
    depth, in_text = 1, False
    for i in range(start, len(formula)):
        ch = formula[i]
        if ch == '"':
            in_text = not in_text  # a doubled "" inside text toggles twice
        elif not in_text and ch == "(":
            depth += 1
        elif not in_text and ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
    raise ValueError(f"unbalanced parentheses in formula {formula[:80]!r}")


def udf_calls(formula: str, names: frozenset[str] = ROW_FUNCTIONS) -> list[tuple[int, int]]:
    """``(start, end)`` of each outermost call of one of ``names`` in ``formula`` (text in
    quotes is skipped).

    >>> f = 'IF(A2>0,LIQ_PRICE(B2,C2,MAX(D2,1)),"LIQ_PRICE(")'
    >>> [f[a:b] for a, b in udf_calls(f)]
    ['LIQ_PRICE(B2,C2,MAX(D2,1))']
    """
    spans: list[tuple[int, int]] = []
    i, in_text = 0, False
    while i < len(formula):
        ch = formula[i]
        if ch == '"':
            in_text = not in_text
        elif not in_text and (i == 0 or not (formula[i - 1].isalnum() or formula[i - 1] in
                                             "_.$")):
            m = _NAME.match(formula, i)
            if m:
                if m.group()[:-1].upper() in names:
                    end = _closing(formula, m.end())
                    spans.append((i, end))
                    i = end
                else:
                    i = m.end()
                continue
        i += 1
    return spans


@dataclass(frozen=True)
class ColumnCall:
    """One add-in call of a row's formulas, computed for every row by one array formula in
    hidden ``column`` (1-based). ``call`` is the call with this row's references spelled with
    :data:`ROW`; ``sites`` is how many times a row's formulas made this call cell by cell."""

    column: int
    call: str
    sites: int = 1

    @property
    def name(self) -> str:
        return self.call[: self.call.index("(")]

    @property
    def header(self) -> str:
        return f"(helper) {self.name}, one add-in call for all rows"

    def formula(self, first: int, last: int) -> ArrayFormula:
        """The array formula over rows ``first``..``last``: each of the row's references
        becomes its column over those rows (``K2:K10201``); other references are the same
        for every row."""
        text = _RELATIVE_REF.sub(lambda m: f"{m[1]}{first}:{m[1]}{last}", self.call)
        letter = get_column_letter(self.column)
        return ArrayFormula(f"{letter}{first}:{letter}{last}", "=" + text)


class ColumnCalls:
    """The add-in calls of a data sheet's row formulas, one hidden column each from
    ``first_column`` on (see the section comment above).

    :meth:`lift` replaces each call in a row's formulas by the cell of its column in that
    row. The first row lifted declares the columns; every other row must make the same
    calls (it does: rows differ only in their row number).
    """

    def __init__(self, first_column: int) -> None:
        self.first_column = first_column
        self._calls: dict[str, ColumnCall] = {}
        self._declared = False

    @property
    def calls(self) -> list[ColumnCall]:
        return list(self._calls.values())

    @property
    def sites_per_row(self) -> int:
        """Calls a row's formulas made cell by cell (before lifting)."""
        return sum(c.sites for c in self._calls.values())

    def lift(self, formulas: Mapping[str, str], row: int | str = ROW) -> dict[str, str]:
        """``formulas`` of sheet row ``row`` (a number, or :data:`ROW` in templates) with every
        add-in call replaced by its column's cell in that row."""
        row = str(row)
        out: dict[str, str] = {}
        seen: dict[str, int] = {}
        for key, formula in formulas.items():
            parts, done = [], 0
            for start, end in udf_calls(formula):
                call = self._this_row(formula[start:end], row)
                seen[call] = seen.get(call, 0) + 1
                column = self._column(call)
                parts += [formula[done:start], get_column_letter(column) + row]
                done = end
            out[key] = "".join(parts) + formula[done:]
        if not self._declared:
            self._calls = {c: ColumnCall(cc.column, c, seen[c]) for c, cc in self._calls.items()}
            self._declared = True
        return out

    def _column(self, call: str) -> int:
        known = self._calls.get(call)
        if known is not None:
            return known.column
        if self._declared:
            raise ValueError(f"a row makes an add-in call the first row did not: {call!r}")
        column = self.first_column + len(self._calls)
        self._calls[call] = ColumnCall(column, call)
        return column

    @staticmethod
    def _this_row(call: str, row: str) -> str:
        """``call`` with references to ``row`` spelled with :data:`ROW`; a reference to any
        other row of the sheet cannot become a column (ValueError)."""

        def one(m: re.Match[str]) -> str:
            if m[2] != row:
                raise ValueError(f"an add-in call over the table reads only its own row, got "
                                 f"{m[0]!r} in {call!r} (row {row!r})")
            return m[1] + ROW

        return _RELATIVE_REF.sub(one, call)
