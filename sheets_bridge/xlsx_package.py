"""Read and change cells of an .xlsx package without loading it into a spreadsheet model.

openpyxl drops what it cannot model (text boxes, x14 drop-downs, sparklines, slicers...) when it
saves a workbook. Here the package (a zip of XML parts) is read as it is, and a write rewrites
only the worksheet parts whose cells change: inside those, only the ``<c>`` elements of the
cells written, in the rows written (plus the sheet's ``<dimension>``, and a written row's
height when its wrapped text needs one); every other byte of the sheet and every other zip
member is copied unchanged, except that a written cell that must wrap and whose style does not
gets a copy of its style that does, appended to the styles part's cell formats. Text goes in as
inline strings, so the shared-strings part is never touched; a cell that holds a formula, or
lies in a merged range or an array formula, is refused before anything is written.

Saves are atomic (temporary file next to the real file, fsync, ``os.replace``): a crash leaves
the old file or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import copy
import io
import math
import os
import posixpath
import re
import stat
import tempfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from xml.etree import ElementTree

from openpyxl.utils import column_index_from_string, get_column_letter

from leverage.layout import LINE_HEIGHT, row_height

from .backend import LayoutError, SheetsError, serial_date

Cell = Any  # str | int | float | bool | None
Writes = dict[int, dict[int, Cell]]  # row -> column -> value (1-based); None or "" clears


@dataclass(frozen=True)
class Look:
    """How the cells written in one sheet look, besides their values: ``wrap``, the columns
    (1-based) whose written cells wrap their text; ``heights``, each written row's height
    for its wrapped text (points; None: one line, the default height)."""

    wrap: frozenset[int] = frozenset()
    heights: dict[int, float | None] = field(default_factory=dict)


class WorkbookFileError(SheetsError):
    """The file is not an .xlsx workbook that can be read, or cannot be written safely."""


_OLE2 = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls 97-2003, and password-encrypted .xlsx
_REL = "{http://schemas.openxmlformats.org/officeDocument/2006/relationships}"
_DAMAGED = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError,
            ElementTree.ParseError, IndexError)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _join(base_part: str, target: str) -> str:
    """A relationship target as a zip member name."""
    if target.startswith("/"):
        return target.lstrip("/")
    return posixpath.normpath(posixpath.join(posixpath.dirname(base_part), target))


def _rels(zf: zipfile.ZipFile, part: str) -> dict[str, tuple[str, str]]:
    """Relationships of ``part``: id -> (type, member name)."""
    name = posixpath.join(posixpath.dirname(part), "_rels", posixpath.basename(part) + ".rels")
    if name not in zf.NameToInfo:
        return {}
    out = {}
    for rel in ElementTree.fromstring(zf.read(name)):
        if rel.get("TargetMode") == "External":
            continue
        out[rel.get("Id", "")] = (rel.get("Type", ""), _join(part, rel.get("Target", "")))
    return out


# ------------------------------------------------------------------------ XML text

_ESCAPED = re.compile(r"_x([0-9A-Fa-f]{4})_")
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_ENTITY = re.compile(r"&(#x[0-9A-Fa-f]+|#\d+|amp|lt|gt|quot|apos);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


def _entity(m: re.Match[str]) -> str:
    e = m.group(1)
    if e[0] == "#":
        return chr(int(e[2:], 16) if e[1] in "xX" else int(e[1:]))
    return _NAMED[e]


def _unescape(raw: bytes) -> str:
    """Text of an element: XML entities, then Excel's ``_xHHHH_`` escapes."""
    text = raw.decode("utf-8")
    if "&" in text:
        text = _ENTITY.sub(_entity, text)
    if "_x" in text:
        text = _ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), text)
    return text


def _escape(text: str) -> str:
    """Text for a ``<t>`` element; characters XML cannot hold go in as Excel's ``_xHHHH_``."""
    text = _ESCAPED.sub(lambda m: "_x005F" + m.group(0), text)
    text = _UNSAFE.sub(lambda m: f"_x{ord(m.group(0)):04X}_", text)
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return text.replace("\r", "&#13;")


def _shared_strings(xml: bytes) -> list[str]:
    out = []
    for si in ElementTree.fromstring(xml):
        parts = []
        for child in si:  # <t>, or rich-text runs <r><t>; phonetic runs <rPh> are not text
            name = _local(child.tag)
            if name == "t":
                parts.append(child.text or "")
            elif name == "r":
                parts.extend(t.text or "" for t in child if _local(t.tag) == "t")
        out.append(_ESCAPED.sub(lambda m: chr(int(m.group(1), 16)), "".join(parts)))
    return out


# ------------------------------------------------------------------------ worksheet XML

_ATTR = re.compile(rb'([\w:.-]+)\s*=\s*(?:"([^"]*)"|\'([^\']*)\')')
_ROW_NUMBER = re.compile(rb'(?:^|\s)r\s*=\s*["\'](\d+)["\']')
_REF = re.compile(r"^([A-Z]{1,3})(\d+)$")
_CELL_COLUMN = re.compile(rb'\sr\s*=\s*["\']([A-Z]{1,3})')
_CELL_TYPE = re.compile(rb'\st\s*=\s*["\'](\w+)')
_CELL_STYLE = re.compile(rb'\ss\s*=\s*["\'](\d+)')
_COLUMNS = {get_column_letter(i).encode(): i for i in range(1, 16_385)}


def _attrs(raw: bytes) -> dict[bytes, bytes]:
    return {m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
            for m in _ATTR.finditer(raw)}


def _box(ref: str) -> tuple[int, int, int, int] | None:
    """``H2:J5`` -> (first_row, first_col, last_row, last_col)."""
    ends = []
    for part in ref.replace("$", "").split(":"):
        m = _REF.match(part)
        if m is None:
            return None
        ends.append((int(m.group(2)), column_index_from_string(m.group(1))))
    (r0, c0), (r1, c1) = ends[0], ends[-1]
    return min(r0, r1), min(c0, c1), max(r0, r1), max(c0, c1)


@dataclass
class _Row:
    number: int
    start: int
    end: int
    attrs: bytes
    body: bytes | None  # None: a self-closing <row/>
    body_start: int


class _Sheet:
    """One worksheet part, scanned (not parsed into objects) so its bytes can be kept."""

    def __init__(self, xml: bytes, where: str) -> None:
        self.xml, self.where = xml, where
        head = xml[:200].lower()
        if head.startswith(b"\xff\xfe") or head.startswith(b"\xfe\xff") or (
            b"encoding=" in head.split(b"?>")[0] and b"utf-8" not in head.split(b"?>")[0]
        ):
            raise WorkbookFileError(f"{where}: the sheet is not UTF-8 XML; open and save the "
                                    "workbook in Excel or LibreOffice, then sync again")
        m = re.search(rb"<(\w+:)?sheetData\b[^>]*?(/?)>", xml)
        if m is None:
            raise WorkbookFileError(f"{where}: the sheet has no cell data (no <sheetData>)")
        self.p = m.group(1) or b""
        self.data_tag = (m.start(), m.end())
        self.self_closing = m.group(2) == b"/"
        if self.self_closing:
            self.body_start = self.body_end = m.end()
        else:
            self.body_start = m.end()
            self.body_end = xml.find(b"</" + self.p + b"sheetData>", self.body_start)
            if self.body_end < 0:
                raise WorkbookFileError(f"{where}: the sheet's XML is cut short")
        for trap in (b"<!--", b"<![CDATA["):
            if xml.find(trap, self.body_start, self.body_end) >= 0:
                raise WorkbookFileError(
                    f"{where}: the sheet's cell data holds XML comments or CDATA, which the "
                    "sync cannot change safely; open and save the workbook in Excel or "
                    "LibreOffice, then sync again"
                )
        p = re.escape(self.p)
        self._row = re.compile(rb"<" + p + rb"row\b([^>]*?)(/>|>(.*?)</" + p + rb"row>)", re.S)
        self._cell = re.compile(rb"<" + p + rb"c\b([^>]*?)(/>|>(.*?)</" + p + rb"c>)", re.S)
        self._v = re.compile(rb"<" + p + rb"v\b[^>]*>(.*?)</" + p + rb"v>", re.S)
        self._t = re.compile(rb"<" + p + rb"t\b[^>]*?(?:/>|>(.*?)</" + p + rb"t>)", re.S)
        self._rph = re.compile(rb"<" + p + rb"rPh\b.*?</" + p + rb"rPh>", re.S)
        self._f = re.compile(rb"<" + p + rb"f[\s>/]")

    def rows(self) -> Iterator[_Row]:
        number = 0
        for m in self._row.finditer(self.xml, self.body_start, self.body_end):
            found = _ROW_NUMBER.search(m.group(1))
            before, number = number, int(found.group(1)) if found else number + 1
            if number <= before:
                raise self._disorder(f"row {number} comes after row {before}")
            yield _Row(number, m.start(), m.end(), m.group(1), m.group(3), m.start(3))

    def cells(self, row: _Row) -> Iterator[tuple[int, re.Match[bytes]]]:
        """(column, match) of each ``<c>`` of ``row``."""
        if row.body is None:
            return
        col = 0
        for m in self._cell.finditer(self.xml, row.body_start, row.body_start + len(row.body)):
            found = _CELL_COLUMN.search(m.group(1))
            before, col = col, _COLUMNS[found.group(1)] if found else col + 1
            if col <= before:
                raise self._disorder(f"in row {row.number}, column {get_column_letter(col)} "
                                     f"comes after column {get_column_letter(before)}")
            yield col, m

    def _disorder(self, what: str) -> WorkbookFileError:
        """The patch inserts cells in order; a sheet whose cells are not in order is not
        valid .xlsx, and is refused rather than guessed at."""
        return WorkbookFileError(f"{self.where}: the sheet's cells are out of order ({what}); "
                                 "open and save the workbook in Excel or LibreOffice, then "
                                 "sync again")

    def has_formula(self, m: re.Match[bytes]) -> bool:
        return m.group(3) is not None and self._f.search(m.group(3)) is not None

    def value(self, m: re.Match[bytes], shared: Callable[[], list[str]]) -> Cell:
        """A cell's value as openpyxl reads it; a formula reads as its saved result."""
        body = m.group(3)
        if body is None:
            return None
        found = _CELL_TYPE.search(m.group(1))
        kind = found.group(1) if found else b"n"
        if kind == b"inlineStr":
            return "".join(_unescape(t.group(1) or b"")
                           for t in self._t.finditer(self._rph.sub(b"", body)))
        v = self._v.search(body)
        if v is None:
            return None
        raw = v.group(1)
        if kind == b"n":
            text = raw.strip()
            if not text:
                return None
            return int(text) if text.lstrip(b"-").isdigit() else float(text)
        if kind == b"s":
            return shared()[int(raw)]
        if kind == b"b":
            return raw.strip() == b"1"
        return _unescape(raw)  # str (a formula's text), e (#N/A...), d (ISO date)

    def boxes(self, tag: bytes) -> list[tuple[str, tuple[int, int, int, int]]]:
        """Ranges of ``<mergeCell ref>`` or of multi-cell formulas (array, data table)."""
        out = []
        pattern = rb"<" + re.escape(self.p) + tag + rb"\b([^>]*)>"
        for m in re.finditer(pattern, self.xml):
            a = _attrs(m.group(1))
            if tag == b"f" and a.get(b"t") not in (b"array", b"dataTable"):
                continue
            ref = a.get(b"ref", b"").decode()
            box = _box(ref)
            if box is not None and box[:2] != box[2:]:
                out.append((ref, box))
        return out

    def column_widths(self) -> dict[int, float]:
        """Each column's width (Excel's unit) where the sheet sets one."""
        out: dict[int, float] = {}
        pattern = rb"<" + re.escape(self.p) + rb"col\b([^>]*)>"
        for m in re.compile(pattern).finditer(self.xml, 0, self.data_tag[0]):
            a = _attrs(m.group(1))
            with contextlib.suppress(ValueError):
                width = float(a.get(b"width", b""))
                for c in range(int(a.get(b"min", b"1")), int(a.get(b"max", b"1")) + 1):
                    out[c] = width
        return out

    def column_styles(self) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        pattern = rb"<" + re.escape(self.p) + rb"col\b([^>]*)>"
        for m in re.compile(pattern).finditer(self.xml, 0, self.data_tag[0]):
            a = _attrs(m.group(1))
            if b"style" in a and a[b"style"] != b"0":
                for c in range(int(a.get(b"min", b"1")), int(a.get(b"max", b"1")) + 1):
                    out[c] = a[b"style"]
        return out


_WRAPPING = re.compile(rb'<(?:\w+:)?alignment\b[^>]*?\bwrapText\s*=\s*["\'](?:1|true)["\']')
_HEIGHT = re.compile(rb'\s(ht|customHeight)\s*=\s*(?:"[^"]*"|\'[^\']*\')')


class _Styles:
    """The cell formats (``<cellXfs>``) of a package's styles part. A style that must wrap
    gets a copy that does, appended: every index in use keeps its meaning, and a cell's
    number format, fill, font and border come with it."""

    def __init__(self, xml: bytes, where: str) -> None:
        m = re.search(rb"<(\w+:)?cellXfs\b([^>]*?)(/?)>", xml)
        if m is None or m.group(3) == b"/":
            raise WorkbookFileError(f"{where}: the styles part has no cell formats "
                                    "(<cellXfs>); open and save the workbook in Excel or "
                                    "LibreOffice, then sync again")
        self.p = m.group(1) or b""
        end = xml.find(b"</" + self.p + b"cellXfs>", m.end())
        if end < 0:
            raise WorkbookFileError(f"{where}: the styles part is cut short")
        self.xml, self.opening, self.end = xml, m, end
        p = re.escape(self.p)
        xf = re.compile(rb"<" + p + rb"xf\b[^>]*?(?:/>|>.*?</" + p + rb"xf>)", re.S)
        self.xfs = [x.group(0) for x in xf.finditer(xml, m.end(), end)]
        self.where = where
        self.added: list[bytes] = []
        self.wrapping: dict[int, int] = {}

    def wrapped(self, index: int) -> int:
        """The index of a style that is style ``index`` wrapping its text."""
        if index not in self.wrapping:
            if index >= len(self.xfs):
                raise WorkbookFileError(f"{self.where}: a cell's style {index} is not in the "
                                        "styles part; open and save the workbook in Excel or "
                                        "LibreOffice, then sync again")
            xf = self.xfs[index]
            if _WRAPPING.search(xf):
                self.wrapping[index] = index
            else:
                self.added.append(_wrapping_xf(xf, self.p))
                self.wrapping[index] = len(self.xfs) + len(self.added) - 1
        return self.wrapping[index]

    def patched(self) -> bytes | None:
        """The styles part with the added styles (None: nothing added)."""
        if not self.added:
            return None
        head = self.xml[:self.opening.end()]
        attrs = self.opening.group(2)
        count = re.search(rb'(\scount\s*=\s*["\'])(\d+)(["\'])', attrs)
        if count is not None:
            total = str(len(self.xfs) + len(self.added)).encode()
            start = self.opening.start(2)
            head = (head[:start + count.start(2)] + total + head[start + count.end(2):])
        return head + self.xml[self.opening.end():self.end] + b"".join(self.added) + \
            self.xml[self.end:]


def _wrapping_xf(xf: bytes, p: bytes) -> bytes:
    """``xf`` (one ``<xf>`` of ``<cellXfs>``) with its text wrapped at the top of the cell
    (its own vertical alignment kept), as the built workbooks' long-text cells are."""
    m = re.match(rb"<(?:\w+:)?xf\b([^>]*?)(/?)>", xf)
    if m is None:  # never: _Styles found it as an <xf>
        raise WorkbookFileError(f"a cell format of the styles part is not an <xf>: {xf[:60]!r}")
    attrs = re.sub(rb'\s*\bapplyAlignment\s*=\s*(?:"[^"]*"|\'[^\']*\')', b"", m.group(1))
    attrs += b' applyAlignment="1"'
    wrap = b"<" + p + b'alignment wrapText="1" vertical="top"/>'
    if m.group(2) == b"/":
        return b"<" + p + b"xf" + attrs + b">" + wrap + b"</" + p + b"xf>"
    body = xf[m.end():xf.rfind(b"</")]
    a = re.search(rb"<(?:\w+:)?alignment\b([^>]*?)(/?)>", body)
    if a is None:
        body = wrap + body  # the first child of an <xf>, before protection and extLst
    else:
        old = re.sub(rb'\s*\bwrapText\s*=\s*(?:"[^"]*"|\'[^\']*\')', b"", a.group(1))
        if not re.search(rb"\bvertical\s*=", old):
            old += b' vertical="top"'
        body = body[:a.start(1)] + old + b' wrapText="1"' + body[a.end(1):]
    return b"<" + p + b"xf" + attrs + b">" + body + b"</" + p + b"xf>"


class _RowLook:
    """A :class:`Look` applied while a sheet is patched."""

    def __init__(self, look: Look, formats: _Styles | None) -> None:
        if look.wrap and formats is None:
            raise ValueError("wrapping cells needs the package's styles")
        self.look, self.formats = look, formats

    def style(self, col: int, style: bytes | None) -> bytes | None:
        """The style a written cell of column ``col`` gets, from its own (None: the default)."""
        if col not in self.look.wrap or self.formats is None:
            return style
        return str(self.formats.wrapped(int(style or b"0"))).encode()

    def height(self, number: int, attrs: bytes) -> bytes:
        """A written row's attributes with the height its wrapped text needs. A row of one
        line gets back the default height when its height is one the sync set (a whole number
        of lines, see :func:`leverage.layout.row_height`); a row the trader made taller than
        needed keeps its height."""
        if number not in self.look.heights:
            return attrs
        need = self.look.heights[number]
        a = _attrs(attrs)
        custom = a.get(b"customHeight") in (b"1", b"true")
        try:
            have = float(a[b"ht"]) if custom else None
        except (KeyError, ValueError):
            have = None
        ours = have is not None and _set_by_sync(have)
        if need is None and not ours:
            return attrs
        if need is not None and have is not None and not ours and have >= need:
            return attrs
        attrs = _HEIGHT.sub(b"", attrs)
        if need is None:
            return attrs
        return attrs + f' ht="{need:g}" customHeight="1"'.encode()


def _set_by_sync(height: float) -> bool:
    """Whether a row height is one the sync sets: :func:`leverage.layout.row_height` of 2 or
    more lines."""
    near = round(height / LINE_HEIGHT)
    return any(abs((row_height(n) or 0.0) - height) < 1e-6 for n in (near - 1, near, near + 1))


def _cell_xml(p: bytes, ref: str, style: bytes | None, value: Cell) -> bytes:
    """One ``<c>`` written like a RAW API write: text is text, even when it starts with ``=``."""
    q = p.decode()
    head = f'<{q}c r="{ref}" s="{style.decode()}"' if style else f'<{q}c r="{ref}"'
    value = serial_date(value)  # a date is its serial number, as Excel stores it
    if type(value) is float:  # most cells: a figure
        if value - value == 0:  # finite
            return f"{head}><{q}v>{value!r}</{q}v></{q}c>".encode()
        return f"{head}/>".encode()
    if isinstance(value, bool):
        return f"{head} t=\"b\"><{q}v>{int(value)}</{q}v></{q}c>".encode()
    if isinstance(value, int | float):
        if math.isfinite(value):
            text = str(value) if isinstance(value, int) else repr(float(value))
            return f"{head}><{q}v>{text}</{q}v></{q}c>".encode()
        return f"{head}/>".encode()
    if value is None or value == "":
        return f"{head}/>".encode()
    return (f'{head} t="inlineStr"><{q}is><{q}t xml:space="preserve">{_escape(str(value))}'
            f"</{q}t></{q}is></{q}c>").encode()


def _check_writes(sheet: _Sheet, title: str, writes: Writes) -> None:
    """Refuse, before anything is written, cells that belong to something larger."""
    for tag, what in ((b"mergeCell", "merged"), (b"f", "array formula")):
        for ref, (r0, c0, r1, c1) in sheet.boxes(tag):
            for r in range(r0, r1 + 1):
                hit = [c for c in writes.get(r, ()) if c0 <= c <= c1]
                if not hit:
                    continue
                cell = f"{title}!{get_column_letter(hit[0])}{r}"
                if what == "merged":
                    raise LayoutError(
                        f"{cell} is inside the merged range {title}!{ref}, over cells the sync "
                        "computes: unmerge it (the sync writes one value per cell); nothing "
                        "was written"
                    )
                raise _formula_refusal(cell)


def _formula_refusal(cell: str) -> LayoutError:
    return LayoutError(
        f"{cell} holds a formula: this workbook computes its own columns (it was built by "
        "`leverage templates build`), and a sync would replace its formulas with values. Open "
        "it in a spreadsheet app, or sync a workbook laid out by `leverage sheets init --file`."
    )


def _patch_row(sheet: _Sheet, title: str, row: _Row, values: dict[int, Cell],
               styles: dict[int, bytes], look: _RowLook) -> bytes:
    p, xml = sheet.p, sheet.xml
    out: list[bytes] = []
    todo = sorted(values)
    i = 0
    pos = row.body_start if row.body is not None else row.end
    for col, m in sheet.cells(row):
        while i < len(todo) and todo[i] < col:  # a new cell before this one
            out.append(xml[pos:m.start()])
            pos = m.start()
            out.append(_new_cell(p, todo[i], row.number, styles, values[todo[i]], look))
            i += 1
        if i < len(todo) and todo[i] == col:
            if sheet.has_formula(m):
                raise _formula_refusal(f"{title}!{get_column_letter(col)}{row.number}")
            out.append(xml[pos:m.start()])
            found = _CELL_STYLE.search(m.group(1))
            style = look.style(col, found.group(1) if found else None)
            out.append(_cell_xml(p, f"{get_column_letter(col)}{row.number}", style,
                                 values[col]))
            pos = m.end()
            i += 1
    tail = [_new_cell(p, c, row.number, styles, values[c], look) for c in todo[i:]]
    attrs = look.height(row.number, _spans(row.attrs, todo))
    if row.body is None:
        if not any(tail):
            return xml[row.start:row.end]
        return b"<" + p + b"row" + attrs + b">" + b"".join(tail) + b"</" + p + b"row>"
    end = row.body_start + len(row.body)
    out.append(xml[pos:end])
    out.extend(tail)
    return b"<" + p + b"row" + attrs + b">" + b"".join(out) + b"</" + p + b"row>"


def _new_cell(p: bytes, col: int, row: int, styles: dict[int, bytes], value: Cell,
              look: _RowLook) -> bytes:
    """A cell the sync creates takes its column's style, as a cell typed there would (a
    wrapping one in a column whose written cells wrap)."""
    if value is None or value == "":
        return b""  # clearing a cell that does not exist
    return _cell_xml(p, f"{get_column_letter(col)}{row}", look.style(col, styles.get(col)),
                     value)


def _spans(attrs: bytes, cols: list[int]) -> bytes:
    """The row's ``spans`` hint widened to the columns written."""
    m = re.search(rb'(\sspans\s*=\s*")([^"]*)(")', attrs)
    if m is None or not cols:
        return attrs
    bounds = [int(x) for x in re.findall(rb"\d+", m.group(2))] + [cols[0], cols[-1]]
    new = f"{min(bounds)}:{max(bounds)}".encode()
    return attrs[:m.start(2)] + new + attrs[m.end(2):]


def _new_row(p: bytes, number: int, values: dict[int, Cell], styles: dict[int, bytes],
             look: _RowLook) -> bytes:
    cells = b"".join(_new_cell(p, c, number, styles, values[c], look) for c in sorted(values))
    if not cells:
        return b""
    attrs = look.height(number, b' r="' + str(number).encode() + b'"')
    return b"<" + p + b"row" + attrs + b">" + cells + b"</" + p + b"row>"


def _dimension(sheet: _Sheet, head: bytes, writes: Writes) -> bytes:
    """Widen ``<dimension ref>`` to the cells written (it sits before the cell data)."""
    rows = [r for r, cols in writes.items() if any(v not in (None, "") for v in cols.values())]
    if not rows:
        return head
    cols = [c for r in rows for c, v in writes[r].items() if v not in (None, "")]
    m = re.search(rb"<" + re.escape(sheet.p) + rb'dimension\b[^>]*?\bref\s*=\s*"([^"]*)"', head)
    if m is None:
        return head
    box = _box(m.group(1).decode())
    r0, c0, r1, c1 = min(rows), min(cols), max(rows), max(cols)
    if box is not None:
        r0, c0, r1, c1 = min(r0, box[0]), min(c0, box[1]), max(r1, box[2]), max(c1, box[3])
    ref = f"{get_column_letter(c0)}{r0}:{get_column_letter(c1)}{r1}".encode()
    return head[:m.start(1)] + ref + head[m.end(1):]


def patch_sheet(xml: bytes, title: str, writes: Writes, look: Look | None = None,
                formats: _Styles | None = None) -> bytes:
    """``xml`` with the cells of ``writes`` set; every other byte kept. Raises
    :class:`LayoutError` (nothing changed) for a cell holding a formula or in a merged range.

    ``look``: the written cells of its ``wrap`` columns take a style that wraps (a copy of
    theirs added to ``formats``, the package's styles), and the written rows its heights."""
    sheet = _Sheet(xml, title)
    _check_writes(sheet, title, writes)
    row_look = _RowLook(look or Look(), formats)
    styles = sheet.column_styles()
    p = sheet.p
    out: list[bytes] = []
    todo = sorted(writes)
    i = 0
    pos = sheet.body_start
    for row in sheet.rows():
        if i >= len(todo):
            break
        while i < len(todo) and todo[i] < row.number:
            out.append(xml[pos:row.start])
            pos = row.start
            out.append(_new_row(p, todo[i], writes[todo[i]], styles, row_look))
            i += 1
        if i < len(todo) and todo[i] == row.number:
            out.append(xml[pos:row.start])
            out.append(_patch_row(sheet, title, row, writes[row.number], styles, row_look))
            pos = row.end
            i += 1
    out.append(xml[pos:sheet.body_end])
    out.extend(_new_row(p, r, writes[r], styles, row_look) for r in todo[i:])
    head = _dimension(sheet, xml[:sheet.data_tag[0]], writes)
    if sheet.self_closing:
        new_rows = b"".join(out)
        if not new_rows:
            return xml
        opening = xml[sheet.data_tag[0]:sheet.data_tag[1] - 2].rstrip() + b">"
        return head + opening + new_rows + b"</" + p + b"sheetData>" + xml[sheet.data_tag[1]:]
    return head + xml[sheet.data_tag[0]:sheet.body_start] + b"".join(out) + xml[sheet.body_end:]


# ------------------------------------------------------------------------ the package

# What openpyxl cannot carry through a load and save (checked with openpyxl 3.1).
_DROPPED_PARTS = (
    ("xl/slicers/", "slicers"), ("xl/slicerCaches/", "slicers"), ("xl/timelines/", "timelines"),
    ("xl/timelineCaches/", "timelines"), ("xl/ctrlProps/", "form controls"),
    ("xl/activeX/", "ActiveX controls"), ("xl/embeddings/", "embedded objects"),
    ("xl/threadedComments/", "threaded comments"), ("xl/comments", "comments"),
    ("xl/persons/", "threaded comments"), ("customUI/", "a custom ribbon"),
    ("xl/connections.xml", "data connections"), ("xl/queryTables/", "query tables"),
    ("xl/model/", "a data model"), ("xl/richData/", "rich data types"),
    ("xl/metadata.xml", "dynamic-array formulas"), ("customXml/", "custom XML parts"),
)
_EXTENSIONS = {
    b"{CCE6A557-97BC-4b89-ADB6-D9C93CAAB3DF}": "drop-downs listing another sheet (x14 data "
                                               "validation)",
    b"{05C60535-1F16-4fd2-B633-F4F36F0B64E0}": "sparklines",
    b"{78C0D931-6437-407d-A8EE-F0AAD7539E65}": "conditional formats of Excel 2010+",
    b"{A8765BA9-456A-4dab-B4F3-ACF838C121DE}": "slicers",
    b"{3A4CF648-6AED-40f4-86FF-DC5316D8AED3}": "slicers",
    b"{7E03D99C-DC04-49d9-9315-930204A7B6E9}": "timelines",
}
_SHAPE = re.compile(rb"<(?:\w+:)?(?:sp|grpSp|cxnSp)\b")
_EXT_URI = re.compile(rb"<(?:\w+:)?ext\b[^>]*?\buri\s*=\s*[\"']([^\"']*)[\"']")


class Package:
    """An .xlsx/.xlsm file as bytes: its sheets by title, read and patched in memory."""

    def __init__(self, data: bytes, name: str) -> None:
        self.data, self.name = data, name
        if not data:
            raise WorkbookFileError(
                f"workbook {name!r} is empty (0 bytes), not an .xlsx workbook: restore it from a "
                "backup, or delete it and run `leverage sheets init --file` again"
            )
        if data.startswith(_OLE2):
            raise WorkbookFileError(
                f"workbook {name!r} is an old-format .xls file (or a password-protected "
                "workbook) named .xlsx: open it in Excel or LibreOffice and save it as an .xlsx "
                "workbook without a password"
            )
        if not data.startswith(b"PK"):
            raise WorkbookFileError(
                f"workbook {name!r} is not an .xlsx workbook (not a zip package): check the "
                "file name, or save the file from Excel or LibreOffice as .xlsx"
            )
        try:
            self.zip = zipfile.ZipFile(io.BytesIO(data))
            bad = self.zip.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(bad)
            self.workbook_part = self._workbook_part()
            self.sheets = self._sheet_parts()
        except WorkbookFileError:
            raise
        except _DAMAGED:
            raise WorkbookFileError(
                f"workbook {name!r} is truncated or damaged (not a complete .xlsx package): "
                "restore it from a backup; nothing was written"
            ) from None
        self._shared: list[str] | None = None

    def _workbook_part(self) -> str:
        for rel_type, target in _rels(self.zip, "").values():
            if rel_type.endswith("/officeDocument") and target in self.zip.NameToInfo:
                return target
        raise WorkbookFileError(
            f"workbook {self.name!r} is a zip file but not an .xlsx workbook (it has no "
            "workbook part): check the file name, or save it from Excel or LibreOffice as .xlsx"
        )

    def _sheet_parts(self) -> dict[str, str]:
        rels = _rels(self.zip, self.workbook_part)
        root = ElementTree.fromstring(self.zip.read(self.workbook_part))
        sheets: dict[str, str] = {}
        for el in root.iter():
            if _local(el.tag) != "sheet":
                continue
            rid = next((v for k, v in el.attrib.items() if _local(k) == "id"), "")
            rel_type, target = rels.get(rid, ("", ""))
            if rel_type.endswith("/worksheet") and target in self.zip.NameToInfo:
                sheets[el.get("name", "")] = target
            else:  # a chart sheet or dialog sheet: listed, but it holds no cells
                sheets[el.get("name", "")] = ""
        return sheets

    @property
    def titles(self) -> list[str]:
        return list(self.sheets)

    def shared_strings(self) -> list[str]:
        if self._shared is None:
            rels = _rels(self.zip, self.workbook_part).values()
            part = next((t for k, t in rels if k.endswith("/sharedStrings")), None)
            self._shared = [] if part is None else self._guard(
                lambda: _shared_strings(self.zip.read(part)))
        return self._shared

    def _guard(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except _DAMAGED:
            raise WorkbookFileError(
                f"workbook {self.name!r} is damaged (a part cannot be read): restore it from a "
                "backup; nothing was written"
            ) from None

    def _sheet(self, title: str) -> _Sheet:
        part = self.sheets[title]
        if not part:
            raise LayoutError(f"{title!r} in workbook {self.name!r} is a chart sheet, not a "
                              "sheet of cells")
        return _Sheet(self._guard(lambda: self.zip.read(part)), title)

    def sheet_xml(self, title: str) -> bytes:
        """The worksheet part of ``title`` as it is in the package."""
        return self._sheet(title).xml

    def read(self, title: str, first_row: int, last_row: int | None, first_col: int,
             last_col: int) -> list[list[Cell]]:
        """Values of a box, row by row (``last_row=None``: to the last row with cells)."""
        sheet = self._sheet(title)
        width = last_col - first_col + 1
        rows: dict[int, list[Cell]] = {}

        def scan() -> None:
            for row in sheet.rows():
                if row.number < first_row or row.body is None:
                    continue
                if last_row is not None and row.number > last_row:
                    break
                values: list[Cell] = [None] * width
                for col, m in sheet.cells(row):
                    if first_col <= col <= last_col:
                        values[col - first_col] = sheet.value(m, self.shared_strings)
                    elif col > last_col:
                        break
                rows[row.number] = values

        self._guard(scan)
        end = max(rows, default=first_row - 1) if last_row is None else last_row
        return [rows.get(r, [None] * width) for r in range(first_row, end + 1)]

    def height(self, title: str) -> int:
        """The number of the last row holding cells (0: none), as :meth:`read` counts it."""
        sheet = self._sheet(title)

        def scan() -> int:
            return max((row.number for row in sheet.rows() if row.body is not None), default=0)

        return int(self._guard(scan))

    def check_writable(self, title: str, first_row: int, last_row: int,
                       columns: list[int]) -> None:
        """Raise the :class:`LayoutError` :func:`patch_sheet` raises for writing ``columns``
        of rows ``first_row`` to ``last_row`` (a cell holding a formula, or in a merged range
        or array formula), without building the patched sheet or a dict of every cell."""
        sheet = self._sheet(title)

        class Block(dict):  # the rows of writes, made on asking
            def get(self, r: int, default: Any = ()) -> Any:
                return columns if first_row <= r <= last_row else default

        _check_writes(sheet, title, Block())
        wanted = set(columns)

        def scan() -> str | None:  # the first cell holding a formula (raised out of _guard)
            for row in sheet.rows():
                if row.number > last_row:
                    break
                if row.number < first_row:
                    continue
                for col, m in sheet.cells(row):
                    if col in wanted and sheet.has_formula(m):
                        return f"{title}!{get_column_letter(col)}{row.number}"
            return None

        found = self._guard(scan)
        if found is not None:
            raise _formula_refusal(found)

    def _styles_part(self) -> str | None:
        rels = _rels(self.zip, self.workbook_part).values()
        return next((t for k, t in rels if k.endswith("/styles") and t in self.zip.NameToInfo),
                    None)

    def column_widths(self, title: str) -> dict[int, float]:
        """The widths the sheet ``title`` sets for its columns (Excel's unit)."""
        return dict(self._sheet(title).column_widths())

    def patched(self, writes: dict[str, Writes],
                looks: dict[str, Look] | None = None) -> Callable[[IO[bytes]], None]:
        """A writer of the whole package with ``writes`` (title -> cells) applied, and
        ``looks`` (title -> :class:`Look`): the written cells that wrap, the written rows'
        heights. Every refusal happens here, before the caller opens any file."""
        looks = looks or {}
        new: dict[str, bytes] = {}
        formats: _Styles | None = None
        styles_part = self._styles_part()
        if any(look.wrap for look in looks.values()):
            if styles_part is None:
                raise WorkbookFileError(f"workbook {self.name!r} has no styles part: open and "
                                        "save it in Excel or LibreOffice, then sync again")
            xml = self._guard(lambda: self.zip.read(styles_part))
            formats = _Styles(xml, self.name)
        for title, cells in writes.items():
            if title not in self.sheets:
                raise LayoutError(f"workbook {self.name!r} has no sheet {title!r}")
            part = self.sheets[title]
            new[part] = patch_sheet(self._sheet(title).xml, title, cells, looks.get(title),
                                    formats)
        styles = formats.patched() if formats is not None else None
        if styles is not None and styles_part is not None:
            new[styles_part] = styles
        book = self._guard(lambda: self.zip.read(self.workbook_part))
        recalc = _full_calc_on_load(book)
        if recalc != book:
            new[self.workbook_part] = recalc

        def write(f: IO[bytes]) -> None:
            with zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as out:
                out.comment = self.zip.comment
                for info in self.zip.infolist():
                    data = new.get(info.filename)
                    # a copy: writestr stamps the new size and CRC on the info it is given
                    out.writestr(copy.copy(info),
                                 data if data is not None else self.zip.read(info))

        return write

    def openpyxl_would_drop(self) -> list[str]:
        """What an openpyxl load-and-save of this package would lose, by name."""
        lost: list[str] = []
        names = self.zip.namelist()
        for prefix, what in _DROPPED_PARTS:
            if any(n.startswith(prefix) for n in names) and what not in lost:
                lost.append(what)
        for n in names:
            drawing = n.startswith("xl/drawings/") and n.endswith(".xml") and "/_rels/" not in n
            if drawing and _SHAPE.search(self.zip.read(n)) and "text boxes or shapes" not in lost:
                lost.append("text boxes or shapes")
        for part in filter(None, self.sheets.values()):
            for uri in self._ext_uris(part):
                what = _EXTENSIONS.get(uri, "Excel extension data (extLst)")
                if what not in lost:
                    lost.append(what)
        return lost

    def _ext_uris(self, part: str) -> set[bytes]:
        """The ``<ext uri>`` of a sheet part, read a megabyte at a time: a journal's Charts
        tab holds hundreds of megabytes of formulas."""
        found: set[bytes] = set()
        carry = b""
        with self.zip.open(part) as src:
            while chunk := src.read(1 << 20):
                text = carry + chunk
                found.update(_EXT_URI.findall(text))
                # a tag cut at the chunk's end is searched again with the next chunk
                cut = text.rfind(b"<")
                carry = text[cut:] if cut >= 0 and len(text) - cut < 4096 else b""
        return found


def _full_calc_on_load(workbook_xml: bytes) -> bytes:
    """Ask Excel to recompute on open, so the trader's own formulas over the computed columns
    show the new values (openpyxl's saves set the same flag)."""
    m = re.search(rb"<(\w+:)?calcPr\b([^>]*?)(/?)>", workbook_xml)
    if m is None or re.search(rb'\bfullCalcOnLoad\s*=\s*["\'](1|true)["\']', m.group(2)):
        return workbook_xml
    attrs = re.sub(rb'\s*\bfullCalcOnLoad\s*=\s*["\'][^"\']*["\']', b"", m.group(2))
    return (workbook_xml[:m.start(2)] + attrs + b' fullCalcOnLoad="1"'
            + workbook_xml[m.end(2):])


# ------------------------------------------------------------------------ saving


def save_atomically(path: Path, name: str, write: Callable[[IO[bytes]], None],
                    unchanged: Callable[[], bool] | None = None) -> None:
    """Write the file through ``write`` to a temporary file next to the real file (a
    symlink's target), fsync it, then move it over the file in one step.

    Refused before anything is written: a read-only file, and a hard-linked one (its other
    names would keep the old content, or an in-place copy could be cut in half). ``unchanged``
    is asked just before the move: False means another program saved the file meanwhile.
    """
    target = Path(os.path.realpath(path))
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    if st is not None:
        check_writable(target, name, st)
    directory = target.parent
    remove_stale_temps(directory, target.name)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise WorkbookFileError(
            f"cannot write next to workbook {name!r} ({exc.strerror or exc}): the folder "
            f"{str(directory)!r} must be writable; nothing was written"
        ) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, stat.S_IMODE(st.st_mode) if st is not None else 0o666 & ~_umask())
        if unchanged is not None and not unchanged():
            raise SheetsError(
                f"workbook {name!r} changed while syncing (saved by another program?): "
                "nothing was written; run the sync again"
            )
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


_RUN_STARTED = time.time()  # a temp file last written before this is no save of this run


def remove_stale_temps(directory: Path, name: str) -> None:
    """Delete what killed saves of ``name`` left in ``directory`` (a kill skips the cleanup
    of :func:`save_atomically`): regular files named as its temp files are
    (``.NAME.`` + mkstemp's 8 characters + ``.tmp``) and last written before this run
    started, so a save running now in another process keeps its file. Best effort: a file
    that cannot be read or removed stays."""
    pattern = re.compile(re.escape(f".{name}.") + r"[a-z0-9_]{8}\.tmp")
    try:
        entries = os.scandir(directory)
    except OSError:
        return
    with entries:
        for entry in entries:
            if not pattern.fullmatch(entry.name):
                continue
            with contextlib.suppress(OSError):
                st = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(st.st_mode) and st.st_mtime < _RUN_STARTED:
                    os.unlink(entry.path)


def check_writable(target: Path, name: str, st: os.stat_result) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise WorkbookFileError(f"workbook {name!r} is not a regular file")
    if not st.st_mode & 0o222 or not os.access(target, os.W_OK):
        raise WorkbookFileError(
            f"workbook {name!r} is read-only (mode {stat.S_IMODE(st.st_mode):04o}): nothing was "
            "written; make it writable (chmod u+w) to sync it"
        )
    if st.st_nlink > 1:
        raise WorkbookFileError(
            f"workbook {name!r} has {st.st_nlink} hard links: saving it safely (old or new "
            "content, never half) would cut it off from its other names, so nothing was "
            "written; sync a copy, or use a symbolic link instead"
        )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (best effort: not every file system allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
