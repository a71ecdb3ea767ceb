"""Save an openpyxl workbook whose largest blocks of rows are never held as cells.

openpyxl keeps every cell of a loaded or built workbook as an object (several hundred bytes
each): re-laying out a 10,000-event journal held 1.5 million of them (its Charts tab's
chart-data formulas and the Events rows), over a gigabyte, although ``init`` changes none of
them. Here those rows are given to openpyxl's own worksheet writer one row at a time, when the
file is saved:

* :func:`hollow` takes the rows below row 1 out of a worksheet part before openpyxl loads
  the package, and :func:`original_rows` reads them back, row by row, from the untouched
  part through openpyxl's own sheet parser while the sheet is written;
* :func:`built_rows` makes the cells of rows of values (or formulas) as they are written.

Every cell goes through the same openpyxl code as a loaded or assigned cell would (parser,
:class:`~openpyxl.cell.cell.Cell`, the writer's ``write_row``), so the saved file is the one a
full load and save writes, byte for byte; only the peak memory changes (one row at a time).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from openpyxl.cell.cell import Cell
from openpyxl.utils import get_column_letter
from openpyxl.workbook import Workbook
from openpyxl.worksheet._reader import WorkSheetParser
from openpyxl.worksheet._writer import WorksheetWriter
from openpyxl.worksheet.dimensions import RowDimension
from openpyxl.writer.excel import ExcelWriter

StreamedRow = tuple[int, list[Cell], RowDimension | None]
RowSource = Callable[[], Iterator[StreamedRow]]
"""Called once, when the sheet is written: the rows to add, in ascending row order, each
with its cells in ascending column order and its row attributes (None: none)."""

_CHUNK = 1 << 20
_SHEET_DATA = re.compile(rb"<((?:\w+:)?)sheetData\b[^>]*?(/?)>")


def hollow(read: Callable[[], IO[bytes]]) -> tuple[bytes, int] | None:
    """A worksheet part (``read()`` opens it) without its rows below row 1, and the number of
    the last row kept (0 or 1); None when the part is not laid out as expected (no
    ``sheetData``, XML comments or CDATA in it): then it is loaded whole, as before.

    Streams the part: only the XML before the second row and after the cell data is held.
    """
    with read() as src:
        head = b""
        while True:  # the head: up to the end of the first row
            chunk = src.read(_CHUNK)
            head += chunk
            m = _SHEET_DATA.search(head)
            if m is not None and m.group(2) == b"/":
                return None  # no rows at all: nothing to take out
            if m is not None:
                kept = _first_row_end(head, m)
                if kept is not None:
                    break
            if not chunk:
                return None
        prefix = m.group(1)
        end_tag = b"</" + prefix + b"sheetData>"
        cut, keep = kept
        rest = head[cut:]
        if b"<!--" in head or b"<![CDATA[" in head:
            return None
        while True:  # skip the other rows, keeping a tail long enough to hold the end tag
            found = rest.find(end_tag)
            if found >= 0:
                tail = rest[found:] + src.read()
                break
            if b"<!--" in rest or b"<![CDATA[" in rest:
                return None
            chunk = src.read(_CHUNK)
            if not chunk:
                return None
            rest = rest[-len(end_tag):] + chunk
    if _BINDS_CELLS.search(tail):
        return None
    return head[:cut] + tail, keep


# Parts after the cell data that openpyxl's loader binds to cells (a hyperlink's cell, the
# cells of a merged range): a sheet holding them is loaded whole, so its cells are as before
_BINDS_CELLS = re.compile(rb"<(?:\w+:)?(?:hyperlinks|mergeCells)\b")
_ROW = re.compile(rb"\s*<(?:\w+:)?row\b([^>]*?)(/?)>")
_R = re.compile(rb'(?:^|\s)r\s*=\s*["\'](\d+)["\']')


def _first_row_end(head: bytes, data: re.Match[bytes]) -> tuple[int, int] | None:
    """Where the rows to take out start in ``head`` (after row 1, or at the first row when it
    is not row 1), and the last row kept; None: ``head`` does not reach that far yet."""
    m = _ROW.match(head, data.end())
    if m is None:
        # the data is empty (the end tag) or not read far enough
        rest = head[data.end():].lstrip()
        return (data.end(), 0) if rest[:2] == b"</" else None
    number = _R.search(m.group(1))
    if number is not None and number.group(1) != b"1":
        return data.end(), 0
    if m.group(2) == b"/":
        return m.end(), 1
    close = head.find(b"</" + data.group(1) + b"row>", m.end())
    if close < 0:
        return None
    return close + len(b"</" + data.group(1) + b"row>"), 1


def original_rows(book: Workbook, ws: Any, read: Callable[[], IO[bytes]],
                  shared_strings: list[Any], after: int) -> RowSource:
    """The rows of a worksheet part below row ``after``, as openpyxl's loader makes them
    (``WorksheetReader.bind_cells`` and ``bind_row_dimensions``), one row at a time."""

    def rows() -> Iterator[StreamedRow]:
        with read() as src:
            parser = WorkSheetParser(src, shared_strings, False, book.epoch,
                                     book._date_formats, book._timedelta_formats, False)
            for idx, cells in parser.parse():
                attrs = parser.row_dimensions.pop(str(idx), None)
                if idx <= after:
                    continue
                made = []
                for c in cells:
                    cell = Cell(ws, row=c["row"], column=c["column"],
                                style_array=book._cell_styles[c["style_id"]])
                    cell._value = c["value"]
                    cell.data_type = c["data_type"]
                    made.append(cell)
                dim = None
                if attrs is not None:
                    if "s" in attrs:
                        attrs["s"] = book._cell_styles[int(attrs["s"])]
                    dim = RowDimension(ws, **attrs)
                if made or dim is not None:
                    yield idx, made, dim

    return rows


def built_rows(ws: Any, cells: Callable[[], Iterable[tuple[int, int, Any]]],
               make: Callable[[Cell, Any], None]) -> RowSource:
    """Rows of the cells ``cells()`` yields as (row, column, value), row by row and left to
    right; ``make(cell, value)`` gives each new cell its value and style."""

    def rows() -> Iterator[StreamedRow]:
        current = 0
        row: list[Cell] = []
        for r, c, value in cells():
            if r != current:
                if row:
                    yield current, row, None
                current, row = r, []
            cell = Cell(ws, row=r, column=c)
            make(cell, value)
            row.append(cell)
        if row:
            yield current, row, None

    return rows


class _Writer(WorksheetWriter):
    """openpyxl's worksheet writer, adding the rows of a :data:`RowSource` to those the sheet
    holds, and the ``<dimension>`` openpyxl would write had it held them."""

    def __init__(self, ws: Any, source: RowSource | None) -> None:
        super().__init__(ws)
        self._source = source
        self._extent: list[int] = []  # min row, min column, max row, max column

    def rows(self) -> Any:
        held = super().rows()
        return held if self._source is None else self._merged(held, self._source())

    def _merged(self, held: list[tuple[int, list[Cell]]],
                streamed: Iterator[StreamedRow]) -> Iterator[tuple[int, list[Cell]]]:
        dims = self.ws.row_dimensions
        i = 0
        for idx, cells, dim in streamed:
            while i < len(held) and held[i][0] < idx:
                yield held[i]
                i += 1
            self._grow(idx, cells)
            if i < len(held) and held[i][0] == idx:  # a cell the sheet holds comes first
                mine = {c.column for c in held[i][1]}
                cells = sorted([*held[i][1], *(c for c in cells if c.column not in mine)],
                               key=lambda c: c.column)
                i += 1
            if dim is not None and idx not in dims:
                dims[idx] = dim
                yield idx, cells
                del dims[idx]
            else:
                yield idx, cells
        yield from held[i:]

    def _grow(self, idx: int, cells: list[Cell]) -> None:
        if not cells:
            return
        lo, hi = cells[0].column, cells[-1].column
        if not self._extent:
            self._extent = [idx, lo, idx, hi]
        e = self._extent
        e[0], e[1], e[2], e[3] = min(e[0], idx), min(e[1], lo), max(e[2], idx), max(e[3], hi)

    def write(self) -> None:
        super().write()
        if self._source is not None and self._extent:
            self._fix_dimension()

    def _fix_dimension(self) -> None:
        """The ``<dimension ref>`` over the held and the streamed cells, as openpyxl's
        ``calculate_dimension`` gives it for a sheet holding them all."""
        e = self._extent
        for r, c in self.ws._cells:
            e[0], e[1], e[2], e[3] = min(e[0], r), min(e[1], c), max(e[2], r), max(e[3], c)
        ref = f"{get_column_letter(e[1])}{e[0]}:{get_column_letter(e[3])}{e[2]}".encode()
        path = self.out
        fixed = path + ".dim"
        with open(path, "rb") as src, open(fixed, "wb") as dst:
            head = src.read(_CHUNK)
            head = re.sub(rb'(<dimension ref=")[^"]*(")', lambda m: m.group(1) + ref + m.group(2),
                          head, count=1)
            dst.write(head)
            while chunk := src.read(_CHUNK):
                dst.write(chunk)
        os.replace(fixed, path)


class _ExcelWriter(ExcelWriter):
    def __init__(self, book: Workbook, archive: zipfile.ZipFile,
                 sources: dict[int, RowSource]) -> None:
        super().__init__(book, archive)
        self._sources = sources

    def write_worksheet(self, ws: Any) -> None:
        # openpyxl's own write_worksheet (3.1), with the streaming writer
        from openpyxl.drawing.spreadsheet_drawing import SpreadsheetDrawing

        ws._drawing = SpreadsheetDrawing()
        ws._drawing.charts = ws._charts
        ws._drawing.images = ws._images
        writer = _Writer(ws, self._sources.get(id(ws)))
        writer.write()
        ws._rels = writer._rels
        self._archive.write(writer.out, ws.path[1:])
        self.manifest.append(ws)
        writer.cleanup()


def save(book: Workbook, f: IO[bytes], sources: dict[Any, RowSource]) -> None:
    """``book.save(f)``, with each worksheet's streamed rows (``sources``, by worksheet)."""
    archive = zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED, allowZip64=True)
    book.properties.modified = dt.datetime.now(tz=dt.UTC).replace(tzinfo=None)
    _ExcelWriter(book, archive, {id(ws): s for ws, s in sources.items()}).save()
