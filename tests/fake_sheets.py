"""A fake Google Sheets API v4 server, so tests drive the real gspread client over HTTP.

The server is pure stdlib (a ``ThreadingHTTPServer`` on 127.0.0.1 in a background thread) and
keeps spreadsheets in memory. It serves only what the bridge calls (and the bench's naive
per-cell sync): spreadsheets.get (with ``ranges``, ``includeGridData`` and a ``fields`` mask),
values get/batchGet/update/batchUpdate, and batchUpdate with the request kinds ``init`` and the
sync send. It answers with Google's paths, response shapes and error bodies, including the 400s
Google gives for writes outside a range or the grid. Each cell keeps its value and its
``userEnteredFormat`` (set by repeatCell and updateCells through their field masks), and grid
data reads give CellData's userEnteredValue, effectiveValue, formattedValue and
userEnteredFormat. What it does not model: formulas are stored as text and never evaluated (a
formula cell's effectiveValue is its text); USER_ENTERED parses numbers, TRUE/FALSE and a
leading apostrophe, but not dates, percents or currency; FORMATTED_VALUE approximates Google's
automatic number format, whatever the cell's own; effectiveFormat, row and column metadata are
not kept; any other endpoint, request kind or CellData field is refused with an error rather
than faked.

    with FakeSheets() as fake:
        key = fake.create_spreadsheet("Journal", sheets={"Trades": [["id", "qty"], ["t1", 2]]})
        ws = make_client(fake).open_by_key(key).worksheet("Trades")
        ws.update(values=[["t2", "3"]], range_name="A3", value_input_option="USER_ENTERED")
        assert fake.values(key, "Trades")[2] == ["t2", 3]

Faults (``inject``, ``inject_timeout``, ``inject_reset``, ``inject_answer``) are counted in
requests from the moment they are armed and, by default, never apply the write they interrupt.
``inject_answer`` sends a body of your choosing (HTML, ``null``, a wrong shape), or the real
answer cut short or one byte at a time (headers too, with ``slow_head``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import random
import re
import socket
import string
import struct
import sys
import threading
import traceback
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    import gspread
    import requests

__all__ = ["FakeSheets", "RecordedRequest", "make_client", "make_session"]

Scalar = str | int | float | bool
Query = dict[str, list[str]]

SHEETS_API = "https://sheets.googleapis.com"
# gspread's Drive calls (open by title, create, export) go here; the fake answers them 404.
GOOGLE_APIS = "https://www.googleapis.com"
DEFAULT_ROWS = 1000
DEFAULT_COLS = 26
MAX_CELLS = 10_000_000  # Google's per-spreadsheet limit
MAX_FAULT_SECONDS = 30.0  # a fault may stall a handler, but never for long
# A make_session() client numbers each request it sends; faults are armed on those numbers
SEQ_HEADER = "X-Fake-Sheets-Request"
MAX_FAULT_TIMES = 100
RAW = "RAW"
USER_ENTERED = "USER_ENTERED"

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_FAULT_MESSAGES = {
    403: "The caller does not have permission",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
    504: "The request timed out. Please try again.",
}
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d+")
_ENDPOINT = re.compile(r"([A-Z]{0,3})(\d*)")
_PLAIN_TITLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REF_LIKE_TITLE = re.compile(r"[A-Za-z]{1,3}\d*|[Rr]\d*[Cc]\d*")
_KEY_ALPHABET = string.ascii_letters + string.digits + "-_"


class RecordedRequest(NamedTuple):
    """One request as the fake received it: path URL-decoded, JSON body parsed."""

    method: str
    path: str
    query: dict[str, str | list[str]]  # a repeated parameter (batchGet's ranges) gives a list
    body: Any


class _ApiError(Exception):
    """An error that becomes Google's JSON error body."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return _error_body(self.code, self.message)


def _http_status(code: int) -> HTTPStatus | None:
    try:
        return HTTPStatus(code)
    except ValueError:
        return None


def _error_body(code: int, message: str) -> dict[str, Any]:
    known = _http_status(code)
    status = _STATUS_NAMES.get(code) or (known.name if known else "UNKNOWN")
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if code == 429:
        # Quota errors carry an ErrorInfo detail; retry helpers sometimes look at its reason.
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED",
                "domain": "googleapis.com",
                "metadata": {"service": "sheets.googleapis.com"},
            }
        ]
    return {"error": error}


def _phrase(code: int) -> str:
    known = _http_status(code)
    return known.phrase if known else "Error"


def _quota_message(method: str) -> str:
    kind = "Read" if method == "GET" else "Write"
    return (
        f"Quota exceeded for quota metric '{kind} requests' and limit '{kind} requests per "
        "minute per user' of service 'sheets.googleapis.com' for consumer "
        "'project_number:000000000000'."
    )


# --------------------------------------------------------------------------------------------
# In-memory model


@dataclass(slots=True, frozen=True)
class _Cell:
    value: Scalar
    mode: str  # the valueInputOption of the write that set it
    formula: bool = False


@dataclass
class _Sheet:
    props: dict[str, Any]  # Google's SheetProperties minus "index" (the list position is the index)
    cells: dict[tuple[int, int], _Cell] = field(default_factory=dict)
    # each cell's userEnteredFormat (empty cells too: a format outlives a cleared value). The
    # dicts are shared between cells and never changed in place: a change stores a new one.
    formats: dict[tuple[int, int], dict[str, Any]] = field(default_factory=dict)
    conditional_formats: list[dict[str, Any]] = field(default_factory=list)
    charts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def title(self) -> str:
        return self.props["title"]

    @property
    def grid(self) -> tuple[int, int]:
        grid = self.props["gridProperties"]
        return grid["rowCount"], grid["columnCount"]

    def __deepcopy__(self, memo: dict[int, Any]) -> _Sheet:
        # cells and formats are replaced, never changed in place: copying the maps is enough
        return _Sheet(copy.deepcopy(self.props, memo), dict(self.cells), dict(self.formats),
                      copy.deepcopy(self.conditional_formats, memo),
                      copy.deepcopy(self.charts, memo))

    def set_grid(self, rows: int, cols: int) -> None:
        if rows < 1 or cols < 1:
            raise _ApiError(400, "A sheet must keep at least one row and one column.")
        self.props["gridProperties"].update(rowCount=rows, columnCount=cols)
        # Shrinking a grid deletes what falls outside it, as in Google.
        self.cells = {pos: c for pos, c in self.cells.items() if pos[0] < rows and pos[1] < cols}
        self.formats = {pos: f for pos, f in self.formats.items()
                        if pos[0] < rows and pos[1] < cols}


@dataclass
class _Book:
    key: str
    props: dict[str, Any]
    sheets: list[_Sheet]
    batch_log: list[dict[str, Any]] = field(default_factory=list)
    sheets_created: int = 0  # seeds new sheet ids, so they are stable run to run


@dataclass(frozen=True)
class _Target:
    """A parsed A1 range. Ends are exclusive; None leaves a side open up to the grid edge."""

    sheet: _Sheet
    a1: str  # normalised cell part, for messages
    r0: int
    c0: int
    r1: int | None
    c1: int | None
    anchor: bool  # a single cell or a whole sheet: written values may spill past it

    @property
    def label(self) -> str:
        return f"{_sheet_ref(self.sheet.title)}!{self.a1}"


# --------------------------------------------------------------------------------------------
# A1 notation


def _col_letters(index: int) -> str:
    letters = ""
    n = index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def _col_index(letters: str) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ord(ch) - 64
    return n - 1


def _a1_box(r0: int, c0: int, r1: int, c1: int) -> str:
    start = f"{_col_letters(c0)}{r0 + 1}"
    if r1 - r0 <= 1 and c1 - c0 <= 1:
        return start
    return f"{start}:{_col_letters(max(c1 - 1, c0))}{max(r1, r0 + 1)}"


def _sheet_ref(title: str) -> str:
    """Quote a sheet title the way Google echoes it: only when it needs quoting."""
    if _PLAIN_TITLE.fullmatch(title) and not _REF_LIKE_TITLE.fullmatch(title):
        return title
    return "'" + title.replace("'", "''") + "'"


def _split_sheet(text: str) -> tuple[str | None, str | None]:
    """Split ``'It''s'!A1:B2`` into (title, cell part); (None, text) when no sheet is named."""
    if not text.startswith("'"):
        if "!" in text:
            title, _, cells = text.partition("!")
            return title, cells
        return None, text
    name: list[str] = []
    i = 1
    while i < len(text):
        if text[i] != "'":
            name.append(text[i])
            i += 1
        elif text[i + 1 : i + 2] == "'":
            name.append("'")
            i += 2
        else:
            rest = text[i + 1 :]
            if rest == "":
                return "".join(name), None
            if rest.startswith("!"):
                return "".join(name), rest[1:]
            break
    raise _ApiError(400, f"Unable to parse range: {text}")


def _endpoint(part: str, text: str) -> tuple[int | None, int | None]:
    match = _ENDPOINT.fullmatch(part)
    if not match or not part or match.group(2).startswith("0"):
        raise _ApiError(400, f"Unable to parse range: {text}")
    letters, digits = match.groups()
    return (_col_index(letters) if letters else None, int(digits) - 1 if digits else None)


def _span(a: int | None, b: int | None) -> tuple[int, int | None]:
    if a is not None and b is not None:
        return min(a, b), max(a, b) + 1
    if a is not None:
        return a, None  # "A2:C": the end is open
    if b is not None:
        return 0, b + 1  # "A:C10" starts at the top
    return 0, None


def _parse_cells(cells: str, text: str) -> tuple[int, int, int | None, int | None, bool]:
    norm = cells.replace("$", "").upper()
    first, sep, second = norm.partition(":")
    col_a, row_a = _endpoint(first, text)
    if not sep:
        if col_a is not None and row_a is not None:
            return row_a, col_a, row_a + 1, col_a + 1, True
        if col_a is not None:
            return 0, col_a, None, col_a + 1, False  # "A": a whole column
        assert row_a is not None
        return row_a, 0, row_a + 1, None, False  # "5": a whole row
    col_b, row_b = _endpoint(second, text)
    c0, c1 = _span(col_a, col_b)
    r0, r1 = _span(row_a, row_b)
    return r0, c0, r1, c1, False


def _find_sheet(book: _Book, title: str) -> _Sheet | None:
    for sheet in book.sheets:
        if sheet.title == title:
            return sheet
    folded = title.casefold()
    return next((s for s in book.sheets if s.title.casefold() == folded), None)


def _resolve(book: _Book, text: str) -> _Target:
    title, cells = _split_sheet(text)
    if title is None:
        # A bare name is a sheet if one has that title, else cells on the first sheet.
        named = _find_sheet(book, text)
        sheet, cells = (named, None) if named else (book.sheets[0], text)
    else:
        found = _find_sheet(book, title)
        if found is None:
            raise _ApiError(400, f"Unable to parse range: {text}")
        sheet = found
    if not cells:
        rows, cols = sheet.grid
        return _Target(sheet, _a1_box(0, 0, rows, cols), 0, 0, None, None, anchor=True)
    r0, c0, r1, c1, single = _parse_cells(cells, text)
    a1 = cells.replace("$", "").upper()
    return _Target(sheet, a1, r0, c0, r1, c1, anchor=single)


def _grid_error(sheet: _Sheet, a1: str) -> _ApiError:
    rows, cols = sheet.grid
    return _ApiError(
        400,
        f"Range ({_sheet_ref(sheet.title)}!{a1}) exceeds grid limits. "
        f"Max rows: {rows}, max columns: {cols}",
    )


def _box(target: _Target) -> tuple[int, int, int, int]:
    """The target clamped to its open sides; 400 if a fixed side lies outside the grid."""
    rows, cols = target.sheet.grid
    r1 = rows if target.r1 is None else target.r1
    c1 = cols if target.c1 is None else target.c1
    if target.r0 >= rows or target.c0 >= cols or r1 > rows or c1 > cols:
        raise _grid_error(target.sheet, target.a1)
    return target.r0, target.c0, r1, c1


# --------------------------------------------------------------------------------------------
# Values in and out


def _input_option(value: Any) -> str:
    if value in (RAW, USER_ENTERED):
        return value
    if not value:
        raise _ApiError(400, "'valueInputOption' is required but not specified")
    raise _ApiError(400, f"Invalid valueInputOption: {value}")


def _render_option(value: str | None) -> str:
    value = value or "FORMATTED_VALUE"
    if value not in ("FORMATTED_VALUE", "UNFORMATTED_VALUE", "FORMULA"):
        raise _ApiError(400, f"Invalid valueRenderOption: {value}")
    return value


def _major(value: str | None) -> str:
    value = value or "ROWS"
    if value == "DIMENSION_UNSPECIFIED":
        return "ROWS"
    if value not in ("ROWS", "COLUMNS"):
        raise _ApiError(400, f"Invalid majorDimension: {value}")
    return value


def _flag(value: Any) -> bool:
    return str(value).lower() in ("true", "1")


def _user_entered(text: str) -> _Cell | None:
    """Parse a string the way the Sheets UI would; dates, percents and currency are left as text."""
    if text.startswith("'"):
        # A leading apostrophe forces text and is not part of the value.
        return _Cell(text[1:], USER_ENTERED) if text[1:] else None
    if text.startswith("="):
        return _Cell(text, USER_ENTERED, formula=True)
    stripped = text.strip()
    if stripped.upper() in ("TRUE", "FALSE"):
        return _Cell(stripped.upper() == "TRUE", USER_ENTERED)
    if _INTEGER.fullmatch(stripped):
        return _Cell(int(stripped), USER_ENTERED)
    if _NUMBER.fullmatch(stripped):
        return _Cell(float(stripped), USER_ENTERED)
    return _Cell(text, USER_ENTERED)


def _input_cell(value: Any, mode: str, where: str) -> _Cell | None:
    """The cell a written value becomes; None clears the cell (Google's empty string)."""
    if isinstance(value, bool | int | float):
        return _Cell(value, mode)
    if not isinstance(value, str):
        raise _ApiError(400, f"Invalid {where}: {json.dumps(value)}")
    if value == "":
        return None
    return _Cell(value, mode) if mode == RAW else _user_entered(value)


def _rows_from(body: Any, where: str = "") -> list[list[Any]]:
    """The 2D values of a ValueRange body as rows (a COLUMNS body is transposed)."""
    body = body or {}
    values = body.get("values") or []
    if not isinstance(values, list) or not all(isinstance(v, list) for v in values):
        raise _ApiError(400, f"Invalid {where}values: expected a list of lists")
    if _major(body.get("majorDimension")) == "ROWS":
        return values
    height = max((len(col) for col in values), default=0)
    # None is "leave as is", so short columns do not clear anything below them.
    return [[col[r] if r < len(col) else None for col in values] for r in range(height)]


def _format(value: Scalar) -> str:
    """Approximate Google's 'automatic' number format for FORMATTED_VALUE."""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.10g}".upper()
    return value


def _render(cell: _Cell, option: str) -> Any:
    if cell.formula:
        return cell.value  # formulas are not evaluated: every option returns the formula text
    if option == "FORMATTED_VALUE":
        return _format(cell.value)
    if isinstance(cell.value, float) and cell.value.is_integer() and abs(cell.value) < 2**53:
        return int(cell.value)  # Google's JSON writes whole doubles without ".0"
    return cell.value


def _grid_values(
    sheet: _Sheet, box: tuple[int, int, int, int], option: str, major: str
) -> list[list[Any]]:
    """Values in the box, trailing empty rows and cells trimmed as Google does."""
    r0, c0, r1, c1 = box
    found: dict[tuple[int, int], Any] = {}
    for (r, c), cell in sheet.cells.items():
        if r0 <= r < r1 and c0 <= c < c1:
            pos = (r - r0, c - c0) if major == "ROWS" else (c - c0, r - r0)
            found[pos] = _render(cell, option)
    if not found:
        return []
    widths: dict[int, int] = {}
    for i, j in found:
        widths[i] = max(widths.get(i, 0), j + 1)
    height = max(widths) + 1
    return [[found.get((i, j), "") for j in range(widths.get(i, 0))] for i in range(height)]


def _value_range(
    target: _Target, box: tuple[int, int, int, int], option: str, major: str
) -> dict[str, Any]:
    label = f"{_sheet_ref(target.sheet.title)}!{_a1_box(*box)}"
    out: dict[str, Any] = {"range": label, "majorDimension": major}
    values = _grid_values(target.sheet, box, option, major)
    if values:
        out["values"] = values  # Google omits the key for an empty range
    return out


def _place(target: _Target, rows: list[list[Any]]) -> tuple[int, int, int, int]:
    """Where the rows land; 400 if they overflow the range or the grid, like Google."""
    _box(target)
    height = len(rows)
    width = max((len(row) for row in rows), default=0)
    if not target.anchor:
        if target.r1 is not None and height > target.r1 - target.r0:
            raise _ApiError(
                400,
                f"Requested writing within range [{target.label}], but tried writing to row "
                f"[{target.r1 + 1}]",
            )
        if target.c1 is not None and width > target.c1 - target.c0:
            raise _ApiError(
                400,
                f"Requested writing within range [{target.label}], but tried writing to column "
                f"[{_col_letters(target.c1)}]",
            )
    box = (target.r0, target.c0, target.r0 + height, target.c0 + width)
    rows_max, cols_max = target.sheet.grid
    if box[2] > rows_max or box[3] > cols_max:
        raise _grid_error(target.sheet, _a1_box(*box))
    return box


def _write(sheet: _Sheet, r0: int, c0: int, rows: list[list[Any]], mode: str) -> dict[str, int]:
    """Write rows at (r0, c0): None leaves a cell alone, "" clears it. Returns Google's counts."""
    touched_rows: set[int] = set()
    touched_cols: set[int] = set()
    for i, row in enumerate(rows):
        for j, value in enumerate(row):
            if value is None:
                continue
            cell = _input_cell(value, mode, f"values[{i}][{j}]")
            if cell is None:
                sheet.cells.pop((r0 + i, c0 + j), None)
            else:
                sheet.cells[(r0 + i, c0 + j)] = cell
            touched_rows.add(i)
            touched_cols.add(j)
    cells = sum(1 for row in rows for value in row if value is not None)
    return {
        "updatedRows": len(touched_rows),
        "updatedColumns": len(touched_cols),
        "updatedCells": cells,
    }


def _update_response(
    key: str,
    sheet: _Sheet,
    box: tuple[int, int, int, int],
    counts: dict[str, int],
    options: Mapping[str, Any],
) -> dict[str, Any]:
    out: dict[str, Any] = {"spreadsheetId": key}
    out["updatedRange"] = f"{_sheet_ref(sheet.title)}!{_a1_box(*box)}"
    out.update({name: n for name, n in counts.items() if n})  # proto3 JSON drops zeros
    if _flag(options.get("includeValuesInResponse")):
        option = _render_option(options.get("responseValueRenderOption"))
        target = _Target(sheet, "", box[0], box[1], box[2], box[3], anchor=False)
        out["updatedData"] = _value_range(target, box, option, "ROWS")
    return out


# --------------------------------------------------------------------------------------------
# spreadsheets.batchUpdate requests


def _sheet_by_id(book: _Book, sheet_id: Any) -> _Sheet:
    for sheet in book.sheets:
        if sheet.props["sheetId"] == sheet_id:
            return sheet
    raise _ApiError(400, f"No grid with id: {sheet_id}")


def _referenced_ids(payload: Any) -> Iterator[Any]:
    if isinstance(payload, dict):
        for name, value in payload.items():
            if name == "sheetId":
                yield value
            else:
                yield from _referenced_ids(value)
    elif isinstance(payload, list):
        for item in payload:
            yield from _referenced_ids(item)


def _check_ids(book: _Book, payload: Any) -> None:
    for sheet_id in _referenced_ids(payload):
        _sheet_by_id(book, sheet_id)


def _check_title(book: _Book, title: str, ignore: _Sheet | None = None) -> None:
    if not title:
        raise _ApiError(400, "The sheet name cannot be empty.")
    for sheet in book.sheets:
        if sheet is not ignore and sheet.title.casefold() == title.casefold():
            raise _ApiError(
                400, f'A sheet with the name "{title}" already exists. Please enter another name.'
            )


def _new_sheet_id(book: _Book) -> int:
    # Seeded from the key and a counter: ids look like Google's and repeat run to run.
    rng = random.Random(f"{book.key}/{book.sheets_created}")
    taken = {sheet.props["sheetId"] for sheet in book.sheets}
    while True:
        candidate = rng.randrange(1, 2**31)
        if candidate not in taken:
            return candidate


def _sheet_json(sheet: _Sheet, index: int) -> dict[str, Any]:
    props = copy.deepcopy(sheet.props)
    props = {"sheetId": props.pop("sheetId"), "title": props.pop("title"), "index": index, **props}
    grid = props["gridProperties"]
    for name in ("frozenRowCount", "frozenColumnCount"):
        if not grid.get(name):
            grid.pop(name, None)  # Google leaves zero counts out
    out: dict[str, Any] = {"properties": props}
    if sheet.conditional_formats:
        out["conditionalFormats"] = copy.deepcopy(sheet.conditional_formats)
    if sheet.charts:
        out["charts"] = copy.deepcopy(sheet.charts)
    return out


def _apply_mask(target: dict[str, Any], source: Mapping[str, Any], fields: Any) -> None:
    """Copy the masked fields (``title``, ``gridProperties/rowCount``, ``*``) from source."""
    if not isinstance(fields, str) or not fields.strip():
        raise _ApiError(400, "'fields' is required: name the properties to update")
    paths = [p.strip() for p in fields.split(",") if p.strip()]
    if "*" in paths:
        paths = [name for name in source if name != "sheetId"]
    for path in paths:
        *parents, last = re.split(r"[./]", path)
        src: Any = source
        dst = target
        for name in parents:
            src = src.get(name, {}) if isinstance(src, Mapping) else {}
            dst = dst.setdefault(name, {})
        if isinstance(src, Mapping) and last in src:
            dst[last] = copy.deepcopy(src[last])
        else:
            dst.pop(last, None)


# --------------------------------------------------------------------------------------------
# Field masks and cell formats

Mask = dict[str, Any]  # a field mask as a tree: {} selects the whole field


def _mask_tree(fields: str) -> Mask:
    """Google's field mask syntax as a tree: ``a.b,c(d,e/f)`` → ``{"a": {"b": {}}, "c": {"d":
    {}, "e": {"f": {}}}}``; ``*`` selects every field. A field selected whole and in part is
    selected whole. 400 on a syntax error, as Google."""
    tokens = re.findall(r"[A-Za-z0-9_*]+|[.,/()]|\S", fields)
    pos = 0

    def bad() -> _ApiError:
        return _ApiError(400, f"Invalid field selection: {fields}")

    def merge(into: Mask, name: str, sub: Mask) -> None:
        if name in into and (into[name] == {} or sub == {}):
            into[name] = {}
        elif name in into:
            for k, v in sub.items():
                merge(into[name], k, v)
        else:
            into[name] = sub

    def items() -> Mask:
        nonlocal pos
        tree: Mask = {}
        while True:
            path = []
            while True:
                if pos >= len(tokens) or not re.fullmatch(r"[A-Za-z0-9_*]+", tokens[pos]):
                    raise bad()
                path.append(tokens[pos])
                pos += 1
                if pos < len(tokens) and tokens[pos] in "./":
                    pos += 1
                    continue
                break
            sub: Mask = {}
            if pos < len(tokens) and tokens[pos] == "(":
                pos += 1
                sub = items()
                if pos >= len(tokens) or tokens[pos] != ")":
                    raise bad()
                pos += 1
            for name in reversed(path[1:]):
                sub = {name: sub}
            merge(tree, path[0], sub)
            if pos < len(tokens) and tokens[pos] == ",":
                pos += 1
                continue
            return tree

    tree = items()
    if pos != len(tokens):
        raise bad()
    return tree


def _sub(node: Mask | None, name: str) -> Mask | None:
    """The part of a mask node that selects ``name`` (None: not selected)."""
    if node is None:
        return None
    if node == {} or "*" in node:
        return {}
    return node.get(name)


def _prune(value: Any, node: Mask) -> Any:
    """``value`` with only the fields ``node`` selects (lists: each item); a message left
    with nothing selected is dropped, as Google omits an empty message."""
    if node == {} or "*" in node:
        return copy.deepcopy(value)
    if isinstance(value, list):
        return [_prune(v, node) for v in value]
    if not isinstance(value, dict):
        return copy.deepcopy(value)
    out = {}
    for name, sub in node.items():
        if name in value:
            kept = _prune(value[name], sub)
            if kept != {} or value[name] == {}:
                out[name] = kept
    return out


def _paths(node: Mask, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The selected leaf paths of a mask (``()``: the whole message)."""
    if node == {} or "*" in node:
        return [prefix]
    return [p for name, sub in node.items() for p in _paths(sub, (*prefix, name))]


_NUMBER_FORMAT_TYPES = frozenset({"TEXT", "NUMBER", "PERCENT", "CURRENCY", "DATE", "TIME",
                                  "DATE_TIME", "SCIENTIFIC"})
_CELL_FIELDS = frozenset({"userEnteredValue", "userEnteredFormat", "effectiveValue",
                          "formattedValue"})


def _check_format(fmt: Any, where: str) -> None:
    """The parts of a CellFormat the fake checks: a known wrap strategy and number format type."""
    if not isinstance(fmt, dict):
        raise _ApiError(400, f"Invalid {where}.userEnteredFormat: expected an object")
    wrap = fmt.get("wrapStrategy")
    if wrap is not None and wrap not in _WRAPS:
        raise _ApiError(400, f"Invalid wrapStrategy: {wrap}")
    number = fmt.get("numberFormat")
    if number is not None:
        kind = number.get("type") if isinstance(number, dict) else number
        if not isinstance(number, dict) or kind not in _NUMBER_FORMAT_TYPES:
            raise _ApiError(400, f"Invalid {where}.userEnteredFormat.numberFormat.type: {kind}")
        if not isinstance(number.get("pattern", ""), str):
            raise _ApiError(400, f"Invalid {where}.userEnteredFormat.numberFormat.pattern")


def _format_paths(fields: Any) -> tuple[list[tuple[str, ...]], bool]:
    """A CellData field mask as (paths inside userEnteredFormat, whether userEnteredValue is
    selected); 400 for a field the fake does not keep, never a silent no-op."""
    if not isinstance(fields, str) or not fields.strip():
        raise _ApiError(400, "'fields' is required: name the properties to update")
    tree = _mask_tree(fields)
    if "*" in tree:
        return [()], True
    unknown = set(tree) - {"userEnteredValue", "userEnteredFormat"}
    if unknown:
        raise _ApiError(400, f"FakeSheets keeps no {', '.join(sorted(unknown))} "
                             "(tests/fake_sheets.py)")
    paths = _paths(tree["userEnteredFormat"]) if "userEnteredFormat" in tree else []
    return paths, "userEnteredValue" in tree


def _masked(old: dict[str, Any] | None, source: dict[str, Any],
            paths: list[tuple[str, ...]]) -> dict[str, Any]:
    """``old`` with each masked path set from ``source``, or cleared where ``source`` has none
    (a field mask replaces what it names, whatever the source holds). ``old`` is not changed:
    the dicts along each path are copied."""
    if () in paths:
        return _drop_empty({k: v for k, v in source.items() if v is not None})
    new = dict(old or {})
    for path in paths:
        *parents, last = path
        src: Any = source
        dst = new
        for name in parents:
            src = src.get(name, {}) if isinstance(src, dict) else {}
            child = dict(dst.get(name) or {})
            dst[name] = child
            dst = child
        if isinstance(src, dict) and src.get(last) is not None:  # JSON null: unset
            dst[last] = src[last]  # parsed from this request's JSON: nothing else holds it
        else:
            dst.pop(last, None)
    return _drop_empty(new)


def _drop_empty(value: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for k, v in value.items():
        if isinstance(v, dict):
            v = _drop_empty(v)
            if not v:
                continue
        out[k] = v
    return out


def _set_format(sheet: _Sheet, pos: tuple[int, int], fmt: dict[str, Any]) -> None:
    if fmt:
        sheet.formats[pos] = fmt
    else:
        sheet.formats.pop(pos, None)


def _repeat_format(sheet: _Sheet, source: dict[str, Any], paths: list[tuple[str, ...]],
                   box: tuple[int, int, int, int]) -> None:
    """The masked ``source`` on every cell of ``box``. Cells that had the same format share
    the result: init formats whole columns, thousands of cells with a few formats."""
    memo: dict[int, tuple[Any, dict[str, Any]]] = {}
    r0, c0, r1, c1 = box
    for r in range(r0, r1):
        for c in range(c0, c1):
            old = sheet.formats.get((r, c))
            hit = memo.get(id(old))
            if hit is None or hit[0] is not old:
                hit = memo[id(old)] = (old, _masked(old, source, paths))
            _set_format(sheet, (r, c), hit[1])


def _grid_box(sheet: _Sheet, grid_range: Any) -> tuple[int, int, int, int]:
    """A GridRange as (r0, c0, r1, c1), open ends at the grid's edge; 400 outside the grid."""
    rows, cols = sheet.grid
    r0, r1 = grid_range.get("startRowIndex", 0), grid_range.get("endRowIndex", rows)
    c0, c1 = grid_range.get("startColumnIndex", 0), grid_range.get("endColumnIndex", cols)
    if not (0 <= r0 <= r1 <= rows and 0 <= c0 <= c1 <= cols):
        raise _grid_error(sheet, _a1_box(r0, c0, r1, c1))
    return r0, c0, r1, c1


def _typed(value: Scalar) -> dict[str, Any]:
    """A value as an ExtendedValue."""
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int | float):
        return {"numberValue": value}
    return {"stringValue": value}


class _CellJson:
    """Cells as CellData with only the fields a mask node selects (a read of 10,000 rows asks
    for hundreds of thousands: the choices are made once, each stored format pruned once)."""

    def __init__(self, node: Mask) -> None:
        unknown = set(node) - _CELL_FIELDS - {"*"}
        if unknown:
            raise _ApiError(400, f"FakeSheets keeps no {', '.join(sorted(unknown))} "
                                 "(tests/fake_sheets.py)")
        self.entered = _sub(node, "userEnteredValue") is not None
        self.effective = _sub(node, "effectiveValue") is not None
        self.formatted = _sub(node, "formattedValue") is not None
        self.format_node = _sub(node, "userEnteredFormat")
        self.pruned: dict[int, tuple[dict[str, Any], dict[str, Any]]] = {}

    def __call__(self, cell: _Cell | None, fmt: dict[str, Any] | None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if cell is not None:
            if self.entered:
                out["userEnteredValue"] = ({"formulaValue": cell.value} if cell.formula
                                           else _typed(cell.value))
            if self.effective:  # _render's UNFORMATTED_VALUE, inlined: it runs a cell a time
                v = cell.value
                if cell.formula or isinstance(v, str):
                    out["effectiveValue"] = {"stringValue": v}
                elif isinstance(v, bool):
                    out["effectiveValue"] = {"boolValue": v}
                elif isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
                    out["effectiveValue"] = {"numberValue": int(v)}
                else:
                    out["effectiveValue"] = {"numberValue": v}
            if self.formatted:
                out["formattedValue"] = str(_render(cell, "FORMATTED_VALUE"))
        if fmt and self.format_node is not None:
            hit = self.pruned.get(id(fmt))
            if hit is None or hit[0] is not fmt:
                hit = self.pruned[id(fmt)] = (fmt, _prune(fmt, self.format_node))
            if hit[1]:
                out["userEnteredFormat"] = hit[1]
        return out


def _grid_json(sheet: _Sheet, box: tuple[int, int, int, int], node: Mask) -> dict[str, Any]:
    """The GridData of ``box``: startRow/startColumn (left out at 0, as proto3 JSON does), and
    rowData up to the last row and cell with a selected field (empty cells inside are {})."""
    r0, c0, r1, c1 = box
    out: dict[str, Any] = {}
    if r0 and _sub(node, "startRow") is not None:
        out["startRow"] = r0
    if c0 and _sub(node, "startColumn") is not None:
        out["startColumn"] = c0
    cell_node = _sub(_sub(node, "rowData"), "values")
    if cell_node is None:
        return out
    as_json = _CellJson(cell_node)
    found: dict[int, dict[int, dict[str, Any]]] = {}
    cells, formats = sheet.cells, sheet.formats
    for (r, c), cell in cells.items():
        if r0 <= r < r1 and c0 <= c < c1:
            data = as_json(cell, formats.get((r, c)))
            if data:
                found.setdefault(r - r0, {})[c - c0] = data
    for (r, c), fmt in formats.items():  # formatted empty cells
        if r0 <= r < r1 and c0 <= c < c1 and (r, c) not in cells:
            data = as_json(None, fmt)
            if data:
                found.setdefault(r - r0, {})[c - c0] = data
    if found:
        out["rowData"] = [
            {"values": [row.get(j, {}) for j in range(max(row) + 1)]} if row else {}
            for row in (found.get(i, {}) for i in range(max(found) + 1))
        ]
    return out


def _req_add_sheet(book: _Book, payload: dict[str, Any]) -> dict[str, Any]:
    props = dict(payload.get("properties") or {})
    index = props.pop("index", len(book.sheets))
    titles = {s.title for s in book.sheets}
    number = len(book.sheets) + 1
    while f"Sheet{number}" in titles:
        number += 1
    title = props.pop("title", None) or f"Sheet{number}"
    _check_title(book, title)
    sheet_id = props.pop("sheetId", None)
    if sheet_id is None:
        sheet_id = _new_sheet_id(book)
    elif any(s.props["sheetId"] == sheet_id for s in book.sheets):
        raise _ApiError(400, f"A sheet with the ID {sheet_id} already exists.")
    grid = dict(props.pop("gridProperties", None) or {})
    grid.setdefault("rowCount", DEFAULT_ROWS)
    grid.setdefault("columnCount", DEFAULT_COLS)
    sheet_props = {"sheetId": sheet_id, "title": title, "sheetType": "GRID", **props}
    sheet_props["gridProperties"] = grid
    sheet = _Sheet(sheet_props)
    sheet.set_grid(grid["rowCount"], grid["columnCount"])
    position = max(0, min(int(index), len(book.sheets)))
    book.sheets.insert(position, sheet)
    book.sheets_created += 1
    return {"addSheet": {"properties": _sheet_json(sheet, position)["properties"]}}


def _req_update_sheet_properties(book: _Book, payload: dict[str, Any]) -> dict[str, Any]:
    source = payload.get("properties") or {}
    sheet = _sheet_by_id(book, source.get("sheetId"))
    rows, cols = sheet.grid
    updated = copy.deepcopy(sheet.props)
    updated["index"] = book.sheets.index(sheet)
    _apply_mask(updated, source, payload.get("fields"))
    updated["sheetId"] = sheet.props["sheetId"]  # ids never change
    index = updated.pop("index", book.sheets.index(sheet))
    _check_title(book, updated.get("title", ""), ignore=sheet)
    grid = updated.setdefault("gridProperties", {})
    grid.setdefault("rowCount", rows)
    grid.setdefault("columnCount", cols)
    sheet.props = updated
    sheet.set_grid(grid["rowCount"], grid["columnCount"])
    book.sheets.remove(sheet)
    book.sheets.insert(max(0, min(int(index), len(book.sheets))), sheet)
    return {}


def _dimension_axis(dimension: Any) -> int:
    if dimension not in ("ROWS", "COLUMNS"):
        raise _ApiError(400, f"Invalid dimension: {dimension}")
    return 0 if dimension == "ROWS" else 1


def _resize_axis(sheet: _Sheet, axis: int, size: int) -> None:
    rows, cols = sheet.grid
    sheet.set_grid(size if axis == 0 else rows, size if axis == 1 else cols)


def _req_append_dimension(book: _Book, payload: dict[str, Any]) -> dict[str, Any]:
    sheet = _sheet_by_id(book, payload.get("sheetId"))
    axis = _dimension_axis(payload.get("dimension"))
    length = int(payload.get("length") or 0)
    if length < 1:
        raise _ApiError(400, "length must be at least 1")
    _resize_axis(sheet, axis, sheet.grid[axis] + length)
    return {}


def _req_add_conditional_format_rule(book: _Book, payload: dict[str, Any]) -> dict[str, Any]:
    rule = payload.get("rule") or {}
    ranges = rule.get("ranges") or []
    if not ranges:
        raise _ApiError(400, "A conditional format rule needs at least one range.")
    _check_ids(book, ranges)
    sheet = _sheet_by_id(book, ranges[0].get("sheetId", 0))
    index = int(payload.get("index", len(sheet.conditional_formats)))
    sheet.conditional_formats.insert(index, copy.deepcopy(rule))
    return {}


def _req_update_cells(book: _Book, payload: dict[str, Any]) -> dict[str, Any]:
    """``start`` plus ``rows`` of CellData, changing what the ``fields`` mask names: the
    value (``userEnteredValue``; a CellData without one clears the cell) and the format
    (``userEnteredFormat`` or parts of it; a CellData without them clears them)."""
    paths, values = _format_paths(payload.get("fields"))
    start = payload.get("start")
    if not isinstance(start, dict):
        raise _ApiError(400, 'updateCells with "range" is not supported by FakeSheets: use start')
    sheet = _sheet_by_id(book, start.get("sheetId", 0))
    r0, c0 = int(start.get("rowIndex", 0)), int(start.get("columnIndex", 0))
    rows_max, cols_max = sheet.grid
    # cells that had one format and get the same one share the result, as repeatCell's do
    memo: dict[tuple[int, str], tuple[Any, dict[str, Any]]] = {}
    for i, row in enumerate(payload.get("rows") or []):
        for j, data in enumerate((row or {}).get("values") or []):
            if r0 + i >= rows_max or c0 + j >= cols_max:
                raise _grid_error(sheet, _a1_box(r0 + i, c0 + j, r0 + i + 1, c0 + j + 1))
            if paths:
                fmt = (data or {}).get("userEnteredFormat") or {}
                _check_format(fmt, f"rows[{i}].values[{j}]")
                pos = (r0 + i, c0 + j)
                old = sheet.formats.get(pos)
                key = (id(old), json.dumps(fmt, sort_keys=True))
                hit = memo.get(key)
                if hit is None or hit[0] is not old:
                    hit = memo[key] = (old, _masked(old, fmt, paths))
                _set_format(sheet, pos, hit[1])
            if not values:
                continue
            value = (data or {}).get("userEnteredValue")
            if not value:
                sheet.cells.pop((r0 + i, c0 + j), None)
                continue
            if not isinstance(value, dict) or len(value) != 1:
                raise _ApiError(400, f"Invalid rows[{i}].values[{j}]: give exactly one value")
            ((kind, v),) = value.items()
            if kind == "formulaValue":
                sheet.cells[(r0 + i, c0 + j)] = _Cell(str(v), USER_ENTERED, formula=True)
            elif kind in ("stringValue", "numberValue", "boolValue"):
                # stringValue is never parsed: the batchUpdate's RAW
                sheet.cells[(r0 + i, c0 + j)] = _Cell(v, RAW)
            else:
                raise _ApiError(400, f"Invalid rows[{i}].values[{j}]: unknown value {kind!r}")
    return {}


_CHART_TYPES = frozenset({"BAR", "LINE", "AREA", "COLUMN", "SCATTER", "COMBO", "STEPPED_AREA"})
_AXES = frozenset({"BOTTOM_AXIS", "LEFT_AXIS", "RIGHT_AXIS"})
_CONDITIONS = frozenset({"ONE_OF_LIST", "ONE_OF_RANGE", "CUSTOM_FORMULA", "NUMBER_GREATER",
                         "NUMBER_GREATER_THAN_EQ", "NUMBER_BETWEEN", "DATE_IS_VALID",
                         "TEXT_CONTAINS", "BLANK", "NOT_BLANK", "BOOLEAN"})
_WRAPS = frozenset({"OVERFLOW_CELL", "LEGACY_WRAP", "CLIP", "WRAP"})
_HIDDEN_STRATEGIES = frozenset({"SKIP_HIDDEN_ROWS_AND_COLUMNS", "SKIP_HIDDEN_ROWS",
                                "SKIP_HIDDEN_COLUMNS", "SHOW_ALL"})


def _chart_source(book: _Book, data: Any, where: str) -> None:
    """A ChartData: one sourceRange whose every GridRange is one column wide (Google: "ChartSource
    Range ranges require all rows or all columns to have length of 1"); rows may be open-ended."""
    sources = ((data or {}).get("sourceRange") or {}).get("sources")
    if not isinstance(sources, list) or not sources:
        raise _ApiError(400, f"{where}: a chart's data needs sourceRange.sources")
    for grid in sources:
        _sheet_by_id(book, grid.get("sheetId", 0))
        width = grid.get("endColumnIndex", 10**9) - grid.get("startColumnIndex", 0)
        if width != 1:
            raise _ApiError(400, "ChartSourceRange ranges require all rows or all columns to "
                                 "have length of 1")


_VIEW_WINDOW_MODES = frozenset({"DEFAULT_VIEW_WINDOW_MODE", "VIEW_WINDOW_MODE_UNSUPPORTED",
                                "EXPLICIT", "PRETTY"})


def _check_view_window(options: Any) -> None:
    """ChartAxisViewWindowOptions: viewWindowMin/Max numbers, min below max, a known mode."""
    if options is None:
        return
    if not isinstance(options, dict):
        raise _ApiError(400, "Invalid viewWindowOptions: expected an object")
    if options.get("viewWindowMode", "DEFAULT_VIEW_WINDOW_MODE") not in _VIEW_WINDOW_MODES:
        raise _ApiError(400, f"Invalid viewWindowMode: {options.get('viewWindowMode')}")
    bounds = [options.get(k) for k in ("viewWindowMin", "viewWindowMax")]
    for b in bounds:
        if b is not None and (isinstance(b, bool) or not isinstance(b, int | float)):
            raise _ApiError(400, f"Invalid viewWindowOptions bound: {b!r}")
    if None not in bounds and bounds[0] >= bounds[1]:
        raise _ApiError(400, "viewWindowMin must be below viewWindowMax")


def _req_add_chart(book: _Book, payload: dict[str, Any]) -> dict[str, Any]:
    """Checked against the shapes Google documents (basic charts only), then kept on its sheet:
    ``FakeSheets.charts`` lists them."""
    chart = copy.deepcopy(payload.get("chart") or {})
    spec = chart.get("spec") or {}
    basic = spec.get("basicChart")
    if not isinstance(basic, dict):
        raise _ApiError(400, "FakeSheets models basic charts only: give spec.basicChart")
    if basic.get("chartType") not in _CHART_TYPES:
        raise _ApiError(400, f"Invalid chartType: {basic.get('chartType')}")
    strategy = spec.get("hiddenDimensionStrategy")
    if strategy is not None and strategy not in _HIDDEN_STRATEGIES:
        raise _ApiError(400, f"Invalid hiddenDimensionStrategy: {strategy}")
    domains = basic.get("domains") or []
    if len(domains) != 1:
        raise _ApiError(400, "A basic chart takes exactly one domain")
    _chart_source(book, domains[0].get("domain"), "domain")
    series = basic.get("series") or []
    if not series:
        raise _ApiError(400, "A basic chart needs at least one series")
    for i, one in enumerate(series):
        _chart_source(book, one.get("series"), f"series[{i}]")
        if one.get("targetAxis", "LEFT_AXIS") not in _AXES:
            raise _ApiError(400, f"Invalid targetAxis: {one.get('targetAxis')}")
    for axis in basic.get("axis") or []:
        if axis.get("position") not in _AXES:
            raise _ApiError(400, f"Invalid axis position: {axis.get('position')}")
        _check_view_window(axis.get("viewWindowOptions"))
    anchor = ((chart.get("position") or {}).get("overlayPosition") or {}).get("anchorCell")
    if not isinstance(anchor, dict):
        raise _ApiError(400, "FakeSheets places charts by position.overlayPosition.anchorCell")
    sheet = _sheet_by_id(book, anchor.get("sheetId", 0))
    taken = {c["chartId"] for s in book.sheets for c in s.charts}
    chart["chartId"] = max(taken, default=0) + 1
    sheet.charts.append(chart)
    return {"addChart": {"chart": copy.deepcopy(chart)}}


def _req_set_data_validation(book: _Book, payload: dict[str, Any]) -> dict[str, Any]:
    """The rule's shape checked (a condition Google knows; a list needs values, a range
    reference starts with ``=``), then recorded; the fake does not enforce it on writes."""
    _sheet_by_id(book, (payload.get("range") or {}).get("sheetId", 0))
    rule = payload.get("rule")
    if rule is None:
        return {}  # no rule: clears validation
    condition = rule.get("condition") or {}
    kind = condition.get("type")
    if kind not in _CONDITIONS:
        raise _ApiError(400, f"Invalid ConditionType: {kind}")
    values = [v.get("userEnteredValue") for v in condition.get("values") or []]
    if kind in ("ONE_OF_LIST", "CUSTOM_FORMULA", "ONE_OF_RANGE") and not values:
        raise _ApiError(400, f"A {kind} condition needs values")
    if kind in ("ONE_OF_RANGE", "CUSTOM_FORMULA") and not str(values[0]).startswith("="):
        raise _ApiError(400, f"A {kind} condition's value must start with =")
    message = rule.get("inputMessage")
    if message is not None and not isinstance(message, str):
        raise _ApiError(400, "inputMessage must be a string")
    return {}


def _req_repeat_cell(book: _Book, payload: dict[str, Any]) -> dict[str, Any]:
    """The masked parts of ``cell.userEnteredFormat`` given to every cell of ``range`` (the
    fake repeats formats only: a value repeated over a range is refused)."""
    paths, values = _format_paths(payload.get("fields"))
    if values:
        raise _ApiError(400, "FakeSheets repeats formats only, not userEnteredValue "
                             "(tests/fake_sheets.py)")
    _check_ids(book, payload)
    grid_range = payload.get("range") or {}
    sheet = _sheet_by_id(book, grid_range.get("sheetId", 0))
    fmt = (payload.get("cell") or {}).get("userEnteredFormat") or {}
    _check_format(fmt, "cell")
    _repeat_format(sheet, fmt, paths, _grid_box(sheet, grid_range))
    return {}


_MODELLED = {
    "addChart": _req_add_chart,
    "setDataValidation": _req_set_data_validation,
    "repeatCell": _req_repeat_cell,
    "updateCells": _req_update_cells,
    "addSheet": _req_add_sheet,
    "updateSheetProperties": _req_update_sheet_properties,
    "appendDimension": _req_append_dimension,
    "addConditionalFormatRule": _req_add_conditional_format_rule,
}
# Formatting that changes no value: checked for sheet ids, then only recorded.
_RECORDED_ONLY = frozenset({"updateDimensionProperties", "addProtectedRange"})
_NEEDS_FIELDS = frozenset({"updateDimensionProperties"})


def _apply_request(book: _Book, kind: str, payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise _ApiError(400, "the request body must be an object")
    if kind in _MODELLED:
        return _MODELLED[kind](book, payload)
    if kind in _RECORDED_ONLY:
        if kind in _NEEDS_FIELDS and not payload.get("fields"):
            raise _ApiError(400, "'fields' is required: name the properties to update")
        _check_ids(book, payload)
        return {}
    # Anything else would change values the fake does not model: refuse loudly, never no-op.
    raise _ApiError(400, f'"{kind}" is not supported by FakeSheets (tests/fake_sheets.py)')


def _check_cell_limit(book: _Book) -> None:
    total = sum(rows * cols for rows, cols in (s.grid for s in book.sheets))
    if total > MAX_CELLS:
        raise _ApiError(
            400,
            "This action would increase the number of cells in the workbook above the limit "
            f"of {MAX_CELLS} cells.",
        )


# --------------------------------------------------------------------------------------------
# HTTP plumbing


@dataclass(frozen=True)
class _Fault:
    kind: str  # "status" | "timeout" | "reset" | "answer"
    status: int = 0
    message: str | None = None
    seconds: float | None = 0.0  # "timeout": None holds until clear_faults() or stop()
    client_timeout: float | None = None  # "timeout": what a make_client() client waits
    applied: bool = False
    body: bytes | None = None  # "answer": sent instead of the real answer
    keep: float | None = None  # "answer": fraction of the body sent
    short: bool = False  # "answer": promise the whole body, send ``keep`` of it, hang up
    trickle: float = 0.0  # "answer": seconds between bytes
    slow_head: bool = False  # "answer": trickle the status line and headers too


@dataclass
class _Outcome:
    status: int
    payload: Any
    fault: _Fault | None = None


_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    ("GET", re.compile(r"/v4/spreadsheets/([^/:]+)"), "_api_get_spreadsheet"),
    ("POST", re.compile(r"/v4/spreadsheets/([^/:]+):batchUpdate"), "_api_batch_update"),
    ("GET", re.compile(r"/v4/spreadsheets/([^/:]+)/values:batchGet"), "_api_values_batch_get"),
    (
        "POST",
        re.compile(r"/v4/spreadsheets/([^/:]+)/values:batchUpdate"),
        "_api_values_batch_update",
    ),
    ("GET", re.compile(r"/v4/spreadsheets/([^/:]+)/values/([^/]+)"), "_api_values_get"),
    ("PUT", re.compile(r"/v4/spreadsheets/([^/:]+)/values/([^/]+)"), "_api_values_update"),
]


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck handler must never keep the interpreter alive
    allow_reuse_address = True

    def __init__(self, fake: FakeSheets) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that hang up (timeouts, resets) are expected; anything else is a fake bug.
        if not isinstance(_current_exception(), ConnectionError | TimeoutError):
            self.fake.server_errors.append(traceback.format_exc())


def _current_exception() -> BaseException | None:
    return sys.exc_info()[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests uses against Google
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without NODELAY, Nagle plus the client's
        # delayed ACK adds about 40 ms to every request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.fake._track(self.connection, opened=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._track(self.connection, opened=False)

    def do_GET(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is fake.requests; stderr noise helps nobody

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        fake = self.server.fake
        claimed = self.headers.get(SEQ_HEADER)
        outcome = fake._handle(self.command, self.path, self.headers.get("Authorization"), raw,
                               int(claimed) if claimed is not None else None)
        fault = outcome.fault
        if fault is None:
            self._send(outcome.status, outcome.payload)
        elif fault.kind == "answer":
            self._answer(fault, outcome)
        elif fault.kind == "timeout":
            fake._hold(fault.seconds)
            if fault.applied:
                self._send(outcome.status, outcome.payload)  # a slow success
            self.close_connection = True
        else:
            self._reset()

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client gave up first

    def _answer(self, fault: _Fault, outcome: _Outcome) -> None:
        real = fault.body is None
        data = json.dumps(outcome.payload).encode() if real else fault.body or b""
        sent = data if fault.keep is None else data[: int(len(data) * fault.keep)]
        kind = "text/html" if data.lstrip()[:1] == b"<" else "application/json; charset=UTF-8"
        stopping = self.server.fake._stopping
        status = outcome.status if real else fault.status
        length = len(data if fault.short else sent)
        try:
            if fault.slow_head:
                head = (f"HTTP/1.1 {status} {_phrase(status)}\r\nContent-Type: {kind}\r\n"
                        f"Content-Length: {length}\r\n\r\n")
                sent = head.encode() + sent
            else:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(length))
                self.end_headers()
            if not fault.trickle:
                self.wfile.write(sent)
            else:
                # every byte but the last, then the last once released: a trickled answer
                # never ends by itself, so only the client's deadline can end the wait
                budget = int(MAX_FAULT_SECONDS / fault.trickle)
                for i in range(min(len(sent) - 1, budget)):
                    if stopping.wait(fault.trickle):
                        break
                    self.wfile.write(sent[i : i + 1])
                    self.wfile.flush()
                else:
                    self.server.fake._hold(None)
                    self.wfile.write(sent[-1:])
        except OSError:
            pass  # the client gave up first
        if fault.short or fault.trickle:
            self.close_connection = True

    def _reset(self) -> None:
        # SO_LINGER 0 turns close() into a TCP RST: the client sees a reset, not a clean EOF.
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True


# --------------------------------------------------------------------------------------------
# The fake


class FakeSheets:
    """An in-memory Google Sheets API v4 served on 127.0.0.1. See the module docstring."""

    def __init__(self, *, require_auth: bool = True) -> None:
        self.require_auth = require_auth  # Google answers 401 without a Bearer token
        self.server_errors: list[str] = []  # tracebacks of fake bugs; tests should see none
        self._lock = threading.RLock()
        self._books: dict[str, _Book] = {}
        self._log: list[RecordedRequest] = []
        self._faults: dict[int, _Fault] = {}
        self._seq = 0  # requests received so far; faults are armed relative to it
        self._keys_made = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._release = threading.Event()  # set by clear_faults() and stop(): held requests go
        self._connections: dict[socket.socket, threading.Thread] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> str:
        """Serve on an ephemeral loopback port; returns the base URL."""
        if self._server is None:
            self._stopping.clear()
            self._release = threading.Event()
            self._server = _Server(self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.01},  # stop() waits up to one poll
                name="fake-sheets",
                daemon=True,
            )
            self._thread.start()
        return self.url

    def stop(self) -> None:
        """Stop serving: wakes stalled handlers, drops keep-alive connections, joins threads."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stopping.set()
        self._release.set()
        server.shutdown()
        with self._lock:
            connections = list(self._connections.items())
        for conn, _ in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # unblocks handlers waiting on keep-alive reads
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        for _, handler in connections:
            handler.join(timeout=5)
        self._server = self._thread = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeSheets is not running: call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeSheets:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def reset(self) -> None:
        """Forget every spreadsheet, logged request and armed fault (for shared fixtures)."""
        with self._lock:
            self._books.clear()
            self._log.clear()
            self._faults.clear()
            self.server_errors.clear()

    # -- seeding and inspection --------------------------------------------------------------

    def create_spreadsheet(
        self,
        title: str,
        sheets: Mapping[str, Sequence[Sequence[Any]]] | None = None,
        *,
        key: str | None = None,
        rows: int = DEFAULT_ROWS,
        cols: int = DEFAULT_COLS,
        value_input_option: str = RAW,
    ) -> str:
        """Add a spreadsheet; returns its key. Grids are rows x cols, or larger to fit the data.

        Seed values follow the same rules as a write with ``value_input_option``.
        """
        mode = _input_option(value_input_option)
        with self._lock:
            key = key or self._new_key()
            if key in self._books:
                raise ValueError(f"spreadsheet {key!r} already exists")
            book = _Book(
                key,
                {
                    "title": title,
                    "locale": "en_US",
                    "autoRecalc": "ON_CHANGE",
                    "timeZone": "Etc/GMT",
                },
                [],
            )
            for title_, data in (sheets or {"Sheet1": []}).items():
                self._seed_sheet(book, title_, [list(row) for row in data], rows, cols, mode)
            self._books[key] = book
            return key

    def values(self, key: str, sheet: str) -> list[list[Scalar | None]]:
        """Stored values as a rectangle up to the last filled row and column; None is empty.

        Formula cells hold their formula text.
        """
        with self._lock:
            cells = self._sheet(key, sheet).cells
            if not cells:
                return []
            height = max(r for r, _ in cells) + 1
            width = max(c for _, c in cells) + 1
            grid: list[list[Scalar | None]] = [[None] * width for _ in range(height)]
            for (r, c), cell in cells.items():
                grid[r][c] = cell.value
            return grid

    def cell_input_mode(self, key: str, sheet: str, a1: str) -> str | None:
        """The valueInputOption ("RAW" or "USER_ENTERED") of the write that set the cell."""
        cell = self._cell(key, sheet, a1)
        return None if cell is None else cell.mode

    def is_formula(self, key: str, sheet: str, a1: str) -> bool:
        """Whether the cell holds a formula (text starting with '=' written USER_ENTERED)."""
        cell = self._cell(key, sheet, a1)
        return bool(cell and cell.formula)

    def sheet_properties(self, key: str, sheet: str) -> dict[str, Any]:
        """The sheet's properties as the metadata endpoint shows them."""
        with self._lock:
            book = self._books[key]
            found = self._sheet(key, sheet)
            return _sheet_json(found, book.sheets.index(found))["properties"]

    def cell_format(self, key: str, sheet: str, a1: str) -> dict[str, Any]:
        """The cell's userEnteredFormat as stored ({} when it has none)."""
        r0, c0 = self._position(a1)
        with self._lock:
            return copy.deepcopy(self._sheet(key, sheet).formats.get((r0, c0), {}))

    def number_format(self, key: str, sheet: str, a1: str) -> str | None:
        """The pattern of the cell's own number format (None: none, Google's Automatic)."""
        return self.cell_format(key, sheet, a1).get("numberFormat", {}).get("pattern")

    def conditional_formats(self, key: str, sheet: str) -> list[dict[str, Any]]:
        """The sheet's conditional format rules, in order (added by addConditionalFormatRule)."""
        with self._lock:
            return copy.deepcopy(self._sheet(key, sheet).conditional_formats)

    def charts(self, key: str, sheet: str) -> list[dict[str, Any]]:
        """The sheet's charts (EmbeddedChart: chartId, spec, position), in the order added."""
        with self._lock:
            return copy.deepcopy(self._sheet(key, sheet).charts)

    def batch_requests(self, key: str) -> list[dict[str, Any]]:
        """Every request accepted by spreadsheets.batchUpdate, in order (formatting included)."""
        with self._lock:
            return copy.deepcopy(self._books[key].batch_log)

    # -- request log and faults --------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Requests received, injected failures included, oldest first."""
        with self._lock:
            return list(self._log)

    def reset_log(self) -> None:
        with self._lock:
            self._log.clear()

    def inject(
        self, status: int, *, at: int = 0, times: int = 1, message: str | None = None
    ) -> None:
        """Fail the at-th next request (0 = the next one), and times-1 after it, with a Google
        error body. The failed request changes nothing."""
        if not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error code")
        self._arm(_Fault("status", status=status, message=message), at, times)

    def inject_timeout(
        self, *, at: int = 0, seconds: float | None = 1.0, times: int = 1, applied: bool = False,
        client_timeout: float | None = None,
    ) -> None:
        """Hold the at-th next request for ``seconds`` (set the client timeout below it), then
        drop the connection. With applied=True the write lands at once and the answer is sent
        late: the "timed out, but did it happen?" case. With ``seconds=None`` the request is
        held until :meth:`clear_faults` (or :meth:`stop`): however slow a busy machine makes
        the client, its own timeout is what ends the wait, never the server answering first.
        With ``client_timeout``, a client of :func:`make_client` waits that long for the held
        requests only; its other requests keep their own (generous) timeout, so no healthy
        answer is raced against a short one."""
        if seconds is not None and not 0 < seconds <= MAX_FAULT_SECONDS:
            raise ValueError(f"seconds must be in (0, {MAX_FAULT_SECONDS}]")
        fault = _Fault("timeout", seconds=seconds, applied=applied, client_timeout=client_timeout)
        self._arm(fault, at, times)

    def inject_reset(self, *, at: int = 0, times: int = 1, applied: bool = False) -> None:
        """Answer the at-th next request with a TCP reset. applied=True applies it first."""
        self._arm(_Fault("reset", applied=applied), at, times)

    def inject_answer(
        self,
        body: bytes | None = None,
        *,
        at: int = 0,
        times: int = 1,
        status: int = 200,
        applied: bool | None = None,
        keep: float | None = None,
        short: bool = False,
        trickle: float = 0.0,
        slow_head: bool = False,
    ) -> None:
        """Answer the at-th next request with ``body`` and ``status`` (an HTML page, ``null``,
        a wrong shape...), or with the real answer when ``body`` is None. ``keep`` sends only
        that fraction of the body: as a complete response (bad JSON), or, with ``short``, under
        a Content-Length for all of it before hanging up. ``trickle`` sends one byte every so
        many seconds (at most MAX_FAULT_SECONDS in all), from the status line on with
        ``slow_head``, else from the body on, and the last byte only once released
        (:meth:`clear_faults` or :meth:`stop`), however long the client waits. ``applied``
        (default: ``body`` is None) applies the request first."""
        if keep is not None and not 0 <= keep < 1:
            raise ValueError("keep must be in [0, 1)")
        if not 0 <= trickle <= 1:
            raise ValueError("trickle must be in [0, 1] seconds")
        applied = body is None if applied is None else applied
        if body is None and not applied:
            raise ValueError("the real answer needs the request applied")
        if slow_head and not trickle:
            raise ValueError("slow_head needs trickle")
        fault = _Fault("answer", status=status, applied=applied, body=body, keep=keep,
                       short=short, trickle=trickle, slow_head=slow_head)
        self._arm(fault, at, times)

    def clear_faults(self) -> None:
        """Disarm the faults not yet met and release the requests held by ``inject_timeout``."""
        with self._lock:
            self._faults.clear()
            self._release.set()
            self._release = threading.Event()

    def claim_next(self) -> tuple[int, float | None]:
        """The number of the request a client is about to send, and the ``client_timeout`` of
        a timeout armed for it, if any. The client sends the number along (SEQ_HEADER), so
        the request it waits on briefly is the one held, in whatever order a busy machine's
        server threads read it and a retry sent after it (one client at a time)."""
        with self._lock:
            seq = self._seq
            self._seq += 1
            fault = self._faults.get(seq)
        held = fault.client_timeout if fault is not None and fault.kind == "timeout" else None
        return seq, held

    def _hold(self, seconds: float | None) -> None:
        """A stalled answer: ``seconds``, or until released (MAX_FAULT_SECONDS at most)."""
        if seconds is not None:
            self._stopping.wait(seconds)  # stop() cuts the wait short
            return
        with self._lock:
            release = self._release
        if not self._stopping.is_set():
            release.wait(MAX_FAULT_SECONDS)

    def _arm(self, fault: _Fault, at: int, times: int) -> None:
        if at < 0 or not 1 <= times <= MAX_FAULT_TIMES:
            raise ValueError(f"need at >= 0 and 1 <= times <= {MAX_FAULT_TIMES}")
        with self._lock:
            for n in range(times):
                self._faults[self._seq + at + n] = fault

    # -- internals: state --------------------------------------------------------------------

    def _new_key(self) -> str:
        self._keys_made += 1
        rng = random.Random(f"spreadsheet/{self._keys_made}")
        return "1" + "".join(rng.choice(_KEY_ALPHABET) for _ in range(43))

    def _seed_sheet(
        self, book: _Book, title: str, data: list[list[Any]], rows: int, cols: int, mode: str
    ) -> None:
        try:
            _check_title(book, title)
            sheet_id = 0 if not book.sheets else _new_sheet_id(book)
            width = max((len(row) for row in data), default=0)
            grid = {"rowCount": max(rows, len(data)), "columnCount": max(cols, width)}
            sheet = _Sheet(
                {"sheetId": sheet_id, "title": title, "sheetType": "GRID", "gridProperties": grid}
            )
            _write(sheet, 0, 0, data, mode)
        except _ApiError as err:
            raise ValueError(err.message) from err
        book.sheets.append(sheet)
        book.sheets_created += 1

    def _book(self, key: str) -> _Book:
        book = self._books.get(key)
        if book is None:
            raise _ApiError(404, "Requested entity was not found.")
        return book

    def _sheet(self, key: str, title: str) -> _Sheet:
        sheet = _find_sheet(self._books[key], title)
        if sheet is None:
            raise KeyError(f"no sheet {title!r} in {key!r}")
        return sheet

    def _position(self, a1: str) -> tuple[int, int]:
        try:
            r0, c0, _, _, single = _parse_cells(a1, a1)
        except _ApiError as err:
            raise ValueError(err.message) from err
        if not single:
            raise ValueError(f"{a1!r} is not a single cell")
        return r0, c0

    def _cell(self, key: str, sheet: str, a1: str) -> _Cell | None:
        r0, c0 = self._position(a1)
        with self._lock:
            return self._sheet(key, sheet).cells.get((r0, c0))

    @contextlib.contextmanager
    def _editing(self, key: str) -> Iterator[_Book]:
        """Edit a copy and swap it in on success: a failed request leaves no trace, as at Google."""
        book = self._book(key)
        log, book.batch_log = book.batch_log, []
        try:
            draft = copy.deepcopy(book)
        finally:
            book.batch_log = log
        draft.batch_log = list(log)  # its entries are never changed: no need to copy them
        yield draft
        self._books[key] = draft

    def _track(self, conn: socket.socket, *, opened: bool) -> None:
        with self._lock:
            if opened:
                self._connections[conn] = threading.current_thread()
            else:
                self._connections.pop(conn, None)

    # -- internals: HTTP ---------------------------------------------------------------------

    def _handle(self, method: str, target: str, auth: str | None, raw: bytes,
                claimed: int | None = None) -> _Outcome:
        parts = urlsplit(target)
        query = parse_qs(parts.query, keep_blank_values=True)
        body: Any = None
        bad_json = False
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body, bad_json = raw.decode(errors="replace"), True
        simple = {k: v[0] if len(v) == 1 else v for k, v in query.items()}
        with self._lock:
            self._log.append(RecordedRequest(method, unquote(parts.path), simple, body))
            if claimed is None:  # a client that numbers no request: in the order received
                claimed = self._seq
                self._seq += 1
            fault = self._faults.pop(claimed, None)
        if fault is not None and fault.kind == "status":
            message = fault.message or (
                _quota_message(method)
                if fault.status == 429
                else _FAULT_MESSAGES.get(fault.status) or _phrase(fault.status)
            )
            return _Outcome(fault.status, _error_body(fault.status, message))
        if fault is not None and not fault.applied:
            return _Outcome(0, None, fault)
        if bad_json:
            outcome = _Outcome(400, _error_body(400, "Invalid JSON payload received."))
        else:
            outcome = self._route(method, parts.path, query, body, auth)
        outcome.fault = fault
        return outcome

    def _route(self, method: str, path: str, query: Query, body: Any, auth: str | None) -> _Outcome:
        try:
            if self.require_auth and not (auth or "").startswith("Bearer "):
                raise _ApiError(
                    401,
                    "Request is missing required authentication credential. Expected OAuth 2 "
                    "access token, login cookie or other valid authentication credential.",
                )
            for verb, pattern, name in _ROUTES:
                match = pattern.fullmatch(path)
                if match and verb == method:
                    args = [unquote(group) for group in match.groups()]
                    with self._lock:
                        return _Outcome(200, getattr(self, name)(*args, query=query, body=body))
            raise _ApiError(
                404,
                f"FakeSheets has no route for {method} {unquote(path)}: it serves the Sheets API "
                "v4 only (open spreadsheets with open_by_key, not the Drive API).",
            )
        except _ApiError as err:
            return _Outcome(err.code, err.body())
        except Exception as err:  # a bug in the fake: surface it, never hide it in a retry
            self.server_errors.append(traceback.format_exc())
            return _Outcome(500, _error_body(500, f"FakeSheets internal error: {err!r}"))

    # -- internals: API methods (called with the lock held) ----------------------------------

    def _api_get_spreadsheet(self, key: str, *, query: Query, body: Any) -> dict[str, Any]:
        """The spreadsheet; with ``ranges`` only the sheets they touch, and grid data (one
        GridData a range, in the order asked) when ``includeGridData`` is true or the
        ``fields`` mask selects ``sheets.data`` (a mask overrides includeGridData)."""
        book = self._book(key)
        fields = _last(query, "fields")
        tree = _mask_tree(fields) if fields else None
        if tree is None:
            data_node: Mask | None = {} if _flag(_last(query, "includeGridData")) else None
        else:
            data_node = _sub(_sub(tree, "sheets"), "data")
        targets = [_resolve(book, rng) for rng in query.get("ranges", [])]
        sheets = []
        for i, sheet in enumerate(book.sheets):
            mine = [t for t in targets if t.sheet is sheet]
            if targets and not mine:
                continue  # only what intersects the ranges asked
            entry = _sheet_json(sheet, i)
            if data_node is not None:
                rows, cols = sheet.grid
                boxes = [_box(t) for t in mine] or [(0, 0, rows, cols)]
                entry["data"] = [_grid_json(sheet, b, data_node) for b in boxes]
            sheets.append(entry)
        out = {
            "spreadsheetId": key,
            "properties": copy.deepcopy(book.props),
            "sheets": sheets,
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{key}/edit",
        }
        if tree is None:
            return out
        data = [entry.pop("data", None) for entry in sheets]  # built to the mask already
        out = _prune(out, tree)
        for entry, grid in zip(out.get("sheets", []), data, strict=False):
            if grid is not None:
                entry["data"] = grid
        return out

    def _api_values_get(self, key: str, rng: str, *, query: Query, body: Any) -> dict[str, Any]:
        option = _render_option(_last(query, "valueRenderOption"))
        major = _major(_last(query, "majorDimension"))
        target = _resolve(self._book(key), rng)
        return _value_range(target, _box(target), option, major)

    def _api_values_batch_get(self, key: str, *, query: Query, body: Any) -> dict[str, Any]:
        option = _render_option(_last(query, "valueRenderOption"))
        major = _major(_last(query, "majorDimension"))
        book = self._book(key)
        out: dict[str, Any] = {"spreadsheetId": key}
        targets = [_resolve(book, rng) for rng in query.get("ranges", [])]
        if targets:  # with no ranges Google omits valueRanges altogether
            out["valueRanges"] = [_value_range(t, _box(t), option, major) for t in targets]
        return out

    def _api_values_update(self, key: str, rng: str, *, query: Query, body: Any) -> dict[str, Any]:
        mode = _input_option(_last(query, "valueInputOption"))
        rows = _rows_from(body)
        options = {name: _last(query, name) for name in query}
        with self._editing(key) as book:
            target = _resolve(book, rng)
            box = _place(target, rows)
            counts = _write(target.sheet, box[0], box[1], rows, mode)
            return _update_response(key, target.sheet, box, counts, options)

    def _api_values_batch_update(self, key: str, *, query: Query, body: Any) -> dict[str, Any]:
        body = body or {}
        mode = _input_option(body.get("valueInputOption"))
        responses = []
        touched: set[int] = set()
        with self._editing(key) as book:
            for i, item in enumerate(body.get("data") or []):
                if not isinstance(item, dict):
                    raise _ApiError(400, f"Invalid data[{i}]: expected a ValueRange object")
                target = _resolve(book, str(item.get("range", "")))
                rows = _rows_from(item, f"data[{i}].")
                box = _place(target, rows)
                counts = _write(target.sheet, box[0], box[1], rows, mode)
                if counts["updatedCells"]:
                    touched.add(target.sheet.props["sheetId"])
                responses.append(_update_response(key, target.sheet, box, counts, body))
        totals = {
            "totalUpdatedRows": sum(r.get("updatedRows", 0) for r in responses),
            "totalUpdatedColumns": sum(r.get("updatedColumns", 0) for r in responses),
            "totalUpdatedCells": sum(r.get("updatedCells", 0) for r in responses),
            "totalUpdatedSheets": len(touched),
        }
        out: dict[str, Any] = {"spreadsheetId": key}
        out.update({name: n for name, n in totals.items() if n})
        if responses:
            out["responses"] = responses
        return out

    def _api_batch_update(self, key: str, *, query: Query, body: Any) -> dict[str, Any]:
        requests_ = (body or {}).get("requests")
        if not isinstance(requests_, list) or not requests_:
            raise _ApiError(400, "Must specify at least one request.")
        replies = []
        with self._editing(key) as book:
            for i, request in enumerate(requests_):
                if not isinstance(request, dict) or len(request) != 1:
                    raise _ApiError(400, f"Invalid requests[{i}]: give exactly one request kind")
                ((kind, payload),) = request.items()
                try:
                    replies.append(_apply_request(book, kind, payload))
                    _check_cell_limit(book)
                except _ApiError as err:
                    message = f"Invalid requests[{i}].{kind}: {err.message}"
                    raise _ApiError(err.code, message) from err
                book.batch_log.append(request)  # parsed for this call only; read as copies
        return {"spreadsheetId": key, "replies": replies}


def _last(query: Query, name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


# --------------------------------------------------------------------------------------------
# The gspread side


def _rewrite(url: str, base: str) -> str:
    for prefix in (SHEETS_API, GOOGLE_APIS):
        if url.startswith(prefix):
            return base + url[len(prefix) :]
    return url


def make_session(
    base_url: str, *, token: str = "fake-token", fake: FakeSheets | None = None
) -> requests.Session:
    """A requests.Session that sends Google API calls to ``base_url`` with a Bearer token.

    Patching gspread.urls does not work (its modules bind the URLs at import), so the
    session rewrites each URL instead. With ``fake``, each request carries its number
    (:meth:`FakeSheets.claim_next`), and the one the fake will hold waits the
    ``client_timeout`` given to :meth:`FakeSheets.inject_timeout`, if any.
    """
    import requests

    class _FakeSheetsSession(requests.Session):
        def request(
            self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
        ) -> requests.Response:
            text = url.decode() if isinstance(url, bytes) else url
            return super().request(method, _rewrite(text, base_url), *args, **kwargs)

        def send(self, request: Any, **kwargs: Any) -> requests.Response:
            if fake is not None:
                seq, held = fake.claim_next()
                request.headers[SEQ_HEADER] = str(seq)
                if held is not None:
                    kwargs["timeout"] = held
            return super().send(request, **kwargs)

    session = _FakeSheetsSession()
    session.trust_env = False  # no proxy or ~/.netrc may reroute or re-authenticate loopback
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def make_client(
    fake: FakeSheets,
    *,
    timeout: float | None = 30.0,
    http_client: type[Any] | None = None,
) -> gspread.Client:
    """A real ``gspread.Client`` wired to the fake.

    ``timeout`` defaults to 30 s because gspread's own default is none at all (a stalled
    server would hang the test); generous, so a busy machine's slow answer is no failure.
    ``http_client`` may be ``gspread.BackOffHTTPClient``.
    """
    import gspread
    from google.auth.credentials import AnonymousCredentials

    kwargs: dict[str, Any] = {} if http_client is None else {"http_client": http_client}
    # With a session given, gspread's HTTPClient never touches the credentials.
    client = gspread.Client(auth=AnonymousCredentials(), session=make_session(fake.url, fake=fake),
                            **kwargs)
    client.set_timeout(timeout)
    return client
