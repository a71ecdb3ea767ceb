"""Google Sheets through gspread: a service account, a retrying HTTP client, two requests a sync.

The bridge uses gspread's low-level calls (``spreadsheets.get``, ``values:batchGet``,
``values:batchUpdate``, ``:batchUpdate``) rather than ``open_by_key`` + worksheets, because
opening a spreadsheet costs a metadata request the sync does not need.

A journal sync reads its tabs' values, number formats and sheet ids in one
``spreadsheets.get`` (a field mask keeps the answer to those); when some rows' money is not in
their currency's format, it writes the values and those formats in one ``:batchUpdate`` of
updateCells, which Google applies all or nothing, else the values in one
``values:batchUpdate``. The money formats are per row because a coin-margined row's amounts
need 8 decimals (0.00012345 BTC), a USDT row's 2, and Google's conditional formats cannot set
a number format (Excel's and LibreOffice's can, so a local workbook has a rule instead). A
rebalance sync (USDⓈ-margined only) reads with ``values:batchGet``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from typing import Any, NoReturn

import gspread
from gspread.exceptions import APIError
from gspread.http_client import ParamsType

from leverage.errors import InputError
from leverage.instructions import INSTRUCTIONS_SHEET
from leverage.layout import Sheet, column_letter

from .backend import (
    Cell,
    Formats,
    FormatUpdate,
    Grid,
    LayoutError,
    RequestFailed,
    SheetsError,
    UnexpectedAnswer,
    Update,
    a1,
    parse_a1,
    serial_date,
)
from .charts import Formula, chart_picks, chart_rows, chart_tabs, chart_width, slot_count
from .content import EXTRA_WIDTH, bridge_sheets, check_extra_tab
from .credentials import credentials_path, load_credentials
from .engine import sync_cells
from .google_format import chart_requests, format_requests, instructions_requests
from .http import RetryingHTTPClient, RetryPolicy, api_message, retrying, status_text

_READ_PARAMS = {
    "valueRenderOption": "UNFORMATTED_VALUE",  # numbers as numbers, percent as fractions
    "dateTimeRenderOption": "SERIAL_NUMBER",
    "majorDimension": "ROWS",
}
# what a sync reads of its tabs: each cell's value as UNFORMATTED_VALUE renders it, its own
# number format's pattern, and the tab ids a :batchUpdate addresses cells by
_GRID_FIELDS = ("sheets(properties(sheetId,title),data(startRow,startColumn,"
                "rowData.values(effectiveValue,userEnteredFormat.numberFormat.pattern)))")
# ExtendedValue.errorValue as UNFORMATTED_VALUE shows it
_ERRORS = {"ERROR": "#ERROR!", "NULL_VALUE": "#NULL!", "DIVIDE_BY_ZERO": "#DIV/0!",
           "VALUE": "#VALUE!", "REF": "#REF!", "NAME": "#NAME?", "NUM": "#NUM!", "N_A": "#N/A",
           "LOADING": "Loading..."}
_NOTHING_WRITTEN = "nothing was written"
_OLD_OR_NEW = "the sheet holds either its old values or all the new ones: run the sync again"
_LAID_OUT = (
    "Google applies the layout all or nothing, so the spreadsheet is either as it was or "
    "fully laid out: run init again"
)


def _json_cell(v: Cell) -> Cell:
    """A value as the API's JSON takes it (dates become Sheets serial numbers)."""
    v = serial_date(v)
    if v is None:
        return ""
    if isinstance(v, str | bool | int):
        return v
    f = float(v)  # numpy scalars, Decimal
    return f if math.isfinite(f) else ""


def _cell_data(v: Cell) -> dict[str, Any]:
    """A value as an updateCells CellData. Text goes in ``stringValue``, which Sheets never
    parses: the RAW of a batchUpdate. An empty dict clears the cell."""
    if isinstance(v, Formula):  # ours (the chart data), never the trader's text
        return {"userEnteredValue": {"formulaValue": str(v)}}
    v = _json_cell(v)
    if isinstance(v, bool):
        return {"userEnteredValue": {"boolValue": v}}
    if isinstance(v, str):
        return {"userEnteredValue": {"stringValue": v}} if v else {}
    return {"userEnteredValue": {"numberValue": v}}


def _effective(data: Any) -> Cell:
    """A CellData's effectiveValue as the values API's UNFORMATTED_VALUE gives it (a number,
    text, true/false, an error's text such as ``#N/A``; None for an empty cell)."""
    _shape(isinstance(data, dict), "cells as objects")
    value = data.get("effectiveValue")
    if value is None:
        return None
    _shape(isinstance(value, dict) and len(value) == 1, "one effectiveValue a cell")
    ((kind, v),) = value.items()
    if kind == "numberValue" and isinstance(v, int | float) and not isinstance(v, bool):
        return v
    if kind == "stringValue" and isinstance(v, str):
        return v
    if kind == "boolValue" and isinstance(v, bool):
        return v
    if kind == "errorValue" and isinstance(v, dict):
        return _ERRORS.get(str(v.get("type")), "#ERROR!")
    _bad_shape("an effectiveValue of a known kind")


def _pattern(data: dict[str, Any]) -> str | None:
    """A CellData's own number format pattern (None: none, the cell shows Automatic)."""
    fmt = data.get("userEnteredFormat", {})
    number = fmt.get("numberFormat", {}) if isinstance(fmt, dict) else None
    if not isinstance(number, dict):
        _bad_shape("a numberFormat object")
    pattern = number.get("pattern")
    return pattern if isinstance(pattern, str) and pattern else None


def _grid_data(data: Any, origin: tuple[int, int]) -> tuple[Grid, Formats]:
    """One GridData as the values API would give the range from ``origin`` (0-based row and
    column of its first cell): trailing empty rows and cells trimmed; and the formats of its
    rows, the formatted empty rows below the last value included (a row the sync writes
    there is checked against the format it already has)."""
    _shape(isinstance(data, dict), "GridData objects")
    r0, c0 = data.get("startRow", 0), data.get("startColumn", 0)
    _shape(isinstance(r0, int) and isinstance(c0, int) and r0 >= origin[0] and c0 >= origin[1],
           "a GridData inside the range asked for")
    rows = data.get("rowData", [])
    _shape(isinstance(rows, list) and all(isinstance(r, dict) for r in rows), "rowData rows")
    pad = c0 - origin[1]
    grid: Grid = [[] for _ in range(r0 - origin[0])]
    formats: Formats = [[] for _ in grid]
    for row in rows:
        cells = row.get("values", [])
        _shape(isinstance(cells, list), "a list of values a row")
        values = [None] * pad + [_effective(c) for c in cells]
        while values and values[-1] is None:
            values.pop()
        grid.append(["" if v is None else v for v in values])  # the values API's empty cell
        patterns: list[str | None] = [None] * pad
        formats.append(patterns + [_pattern(c) for c in cells])
    while grid and not grid[-1]:
        grid.pop()
    return grid, formats


def _shape(ok: bool, what: str) -> None:
    if not ok:
        _bad_shape(what)


def _bad_shape(what: str) -> NoReturn:
    raise UnexpectedAnswer(f"a JSON object without {what}")


def _grid_ok(props: Mapping[str, Any]) -> bool:
    grid = props.get("gridProperties", {})
    return isinstance(grid, dict) and all(
        isinstance(grid.get(k, 1), int) and grid.get(k, 1) >= 0
        for k in ("rowCount", "columnCount")
    )


def _spreadsheet_key(key: str) -> str:
    if not isinstance(key, str) or not key.strip():
        raise InputError(f"key must be the spreadsheet's ID or URL, got {key!r}")
    key = key.strip()
    if key.startswith("http"):
        try:
            return gspread.utils.extract_id_from_url(key)
        except gspread.exceptions.NoValidUrlKeyFound:
            raise InputError(f"key must be a spreadsheet URL or ID, got {key!r}") from None
    if not all(c.isalnum() or c in "-_" for c in key):
        raise InputError(f"key must be the ID from the spreadsheet's URL (/d/<ID>/), got {key!r}")
    return key


class GoogleBackend:
    """A Google spreadsheet as a :class:`~leverage_sheets.backend.Backend`."""

    def __init__(self, client: gspread.Client, key: str, policy: RetryPolicy | None = None):
        self.key = _spreadsheet_key(key)
        self.name = f"spreadsheet {self.key}"
        self.http = retrying(client.http_client, policy or RetryPolicy())
        self._sheet_ids: dict[str, int] = {}  # title -> sheetId, as the last read found them

    @property
    def requests(self) -> int:
        return self.http.attempts

    # -- calls with readable errors ---------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], Any], *, aftermath: str) -> Any:
        """``fn()`` with every failure turned into one line: what failed, why, and what state
        the spreadsheet is left in (``aftermath``)."""
        from google.auth.exceptions import GoogleAuthError

        try:
            with self.http.deadline_window():
                return fn()
        except RequestFailed as exc:
            raise RequestFailed(f"{what}: {exc}; {aftermath}") from None
        except UnexpectedAnswer as exc:
            raise SheetsError(
                "Google Sheets answered something that is not a spreadsheet response at "
                f"{what}: {exc.detail}; {aftermath}"
            ) from None
        except SheetsError as exc:
            raise SheetsError(f"{what}: {exc}; {aftermath}") from None
        except APIError as err:
            code = err.response.status_code
            if code in (HTTPStatus.FORBIDDEN, HTTPStatus.UNAUTHORIZED):
                raise SheetsError(
                    f"{what}: Google refused access ({status_text(code)}): share the spreadsheet "
                    "with the service account's email (client_email in the key file) as Editor, "
                    f"and enable the Google Sheets API for its project; {aftermath}"
                ) from None
            if code == HTTPStatus.NOT_FOUND:
                raise SheetsError(
                    f"{what}: spreadsheet {self.key} not found: check --key (the ID between /d/ "
                    "and /edit in its URL)"
                ) from None
            raise SheetsError(
                f"{what}: {status_text(code)}: {api_message(err)}; {aftermath}"
            ) from None
        except GoogleAuthError as exc:
            raise SheetsError(
                f"{what}: signing in with the service account failed ({type(exc).__name__}): "
                "check the key file is current and not revoked"
            ) from None

    def deadline_window(self) -> Any:
        """A context in which every request shares one deadline (``RetryPolicy.deadline``):
        a sync, or a whole CLI command, wraps its requests in one."""
        return self.http.deadline_window()

    def metadata(self) -> list[dict[str, Any]]:
        """Each tab's properties (title, sheetId, gridProperties), checked for shape."""
        return self._call("reading the spreadsheet's tabs", self._fetch_tabs,
                          aftermath=_NOTHING_WRITTEN)

    def _fetch_tabs(self) -> list[dict[str, Any]]:
        body = self.http.fetch_sheet_metadata(
            self.key, params={"fields": "sheets.properties", "includeGridData": "false"}
        )
        sheets = body.get("sheets")
        if not isinstance(sheets, list):
            _bad_shape("a list of 'sheets'")
        props = [s.get("properties") if isinstance(s, dict) else None for s in sheets]
        _shape(all(isinstance(p, dict) and isinstance(p.get("title"), str)
                   and isinstance(p.get("sheetId"), int) and _grid_ok(p) for p in props),
               "a title, a sheetId and whole-number grid sizes for every sheet")
        return props  # type: ignore[return-value]

    def sheet_titles(self) -> list[str]:
        return [p["title"] for p in self.metadata()]

    def read_ranges(self, ranges: Sequence[str], formulas: bool = False) -> list[Grid]:
        """Values of each range in one request (``formulas``: a formula cell reads as its
        ``=...`` text rather than its result)."""
        try:
            return self._call("reading the sheet", lambda: self._fetch_values(ranges, formulas),
                              aftermath=_NOTHING_WRITTEN)
        except SheetsError as exc:
            if "Unable to parse range" in str(exc):
                self._missing_tabs(ranges)
            raise

    def _fetch_values(self, ranges: Sequence[str], formulas: bool = False) -> list[Grid]:
        params: ParamsType = dict(_READ_PARAMS)
        if formulas:
            params["valueRenderOption"] = "FORMULA"
        body = self.http.values_batch_get(self.key, list(ranges), params)
        found = body.get("valueRanges", [])
        _shape(isinstance(found, list) and len(found) == len(ranges)
               and all(isinstance(vr, dict) for vr in found),
               f"{len(ranges)} 'valueRanges'")
        grids = [vr.get("values", []) for vr in found]
        _shape(all(isinstance(g, list) and all(isinstance(r, list) for r in g) for g in grids),
               "'values' as rows of cells")
        return [list(g) for g in grids]

    def read_with_formats(self, ranges: Sequence[str]) -> tuple[list[Grid], list[Formats]]:
        """Values of each range as :meth:`read_ranges` gives them (``UNFORMATTED_VALUE``, dates
        as serial numbers) and each cell's number format pattern, in ONE request
        (``spreadsheets.get`` with a field mask); the tabs' ids are kept for the write."""
        try:
            return self._call("reading the sheet", lambda: self._fetch_grid(ranges),
                              aftermath=_NOTHING_WRITTEN)
        except SheetsError as exc:
            if "Unable to parse range" in str(exc):
                self._missing_tabs(ranges)
            raise

    def _fetch_grid(self, ranges: Sequence[str]) -> tuple[list[Grid], list[Formats]]:
        params: ParamsType = {"ranges": list(ranges), "fields": _GRID_FIELDS}
        body = self.http.fetch_sheet_metadata(self.key, params=params)
        sheets = body.get("sheets")
        if not isinstance(sheets, list) or not all(isinstance(s, dict) for s in sheets):
            _bad_shape("a list of 'sheets'")
        found: dict[str, list[Any]] = {}
        ids: dict[str, int] = {}
        for sheet in sheets:
            props = sheet.get("properties")
            data = sheet.get("data", [])
            _shape(isinstance(props, dict) and isinstance(props.get("title"), str)
                   and isinstance(props.get("sheetId"), int) and isinstance(data, list),
                   "a title, a sheetId and a list of 'data' for every sheet")
            found[props["title"]] = list(data)
            ids[props["title"]] = props["sheetId"]
        grids: list[Grid] = []
        formats: list[Formats] = []
        for text in ranges:  # a tab's GridData come in the order its ranges were asked
            box = parse_a1(text)
            left = found.get(box.title)
            if not left:
                _bad_shape(f"the grid data of {box.title!r}")
            grid, fmt = _grid_data(left.pop(0), (box.first_row - 1, box.first_col - 1))
            grids.append(grid)
            formats.append(fmt)
        self._sheet_ids.update(ids)
        return grids, formats

    def _missing_tabs(self, ranges: Sequence[str]) -> None:
        titles = set(self.sheet_titles())
        missing = [b.title for b in map(parse_a1, ranges) if b.title not in titles]
        if missing:
            raise LayoutError(
                f"spreadsheet {self.key} has no tab {missing[0]!r}: run `leverage sheets init` "
                "with the right --template first"
            )

    def write_ranges(self, updates: Sequence[Update],
                     formats: Sequence[FormatUpdate] = ()) -> None:
        """Write every block RAW, all or nothing: a ``values:batchUpdate``, or with
        ``formats`` a ``:batchUpdate`` of updateCells that also sets those cells' number
        formats (after :meth:`read_with_formats`, which found the tabs' ids)."""
        if formats:
            self._write_cells(updates, formats)
            return
        body = {
            "valueInputOption": "RAW",  # never USER_ENTERED: no text becomes a formula
            "includeValuesInResponse": False,
            "data": [
                {
                    "range": u.range,
                    "majorDimension": "ROWS",
                    "values": [[_json_cell(v) for v in row] for row in u.values],
                }
                for u in updates
            ],
        }
        self._call(
            "writing the computed columns",
            lambda: self._answered(self.http.values_batch_update(self.key, body),
                                   "responses", len(updates)),  # one part an update
            aftermath=_OLD_OR_NEW,
        )

    def _write_cells(self, updates: Sequence[Update], formats: Sequence[FormatUpdate]) -> None:
        requests = [self._cells(u.range, [[_cell_data(v) for v in row] for row in u.values],
                                "userEnteredValue") for u in updates]
        requests += [self._cells(f.range, [[{"userEnteredFormat": {"numberFormat": {
            "type": "NUMBER", "pattern": p}}} for p in row] for row in f.patterns],
            "userEnteredFormat.numberFormat") for f in formats]
        self._call(
            "writing the computed columns",
            lambda: self._answered(self.http.batch_update(self.key, {"requests": requests}),
                                   "replies", len(requests)),
            aftermath=_OLD_OR_NEW,
        )

    def _cells(self, where: str, rows: list[list[dict[str, Any]]], fields: str) -> dict[str, Any]:
        """An updateCells of ``rows`` (CellData) from the first cell of ``where``, changing
        only ``fields`` (a CellData with none of them clears them)."""
        box = parse_a1(where)
        if box.title not in self._sheet_ids:
            raise SheetsError(f"writing {where}: its tab was not read first")
        return {"updateCells": {
            "start": {"sheetId": self._sheet_ids[box.title], "rowIndex": box.first_row - 1,
                      "columnIndex": box.first_col - 1},
            "rows": [{"values": row} for row in rows],
            "fields": fields,
        }}

    def _answered(self, body: Mapping[str, Any], key: str, count: int) -> None:
        """A write's answer must name this spreadsheet and answer each of its parts."""
        replies = body.get(key)
        _shape(body.get("spreadsheetId") == self.key and isinstance(replies, list)
               and len(replies) == count, f"this spreadsheet's id and {count} {key!r}")

    # -- init --------------------------------------------------------------------------------

    def lay_out(self, template: str, rows: dict[str, Grid]) -> None:
        """Add the missing tabs, their formats and their first rows in ONE batchUpdate, which
        Google applies all or nothing: a failure anywhere leaves the spreadsheet as it was.
        Requests: the tab list, a read of the template's tabs that already exist (only when
        some do), and the batchUpdate."""
        with self.http.deadline_window():
            self._lay_out(template, rows)

    def _lay_out(self, template: str, rows: dict[str, Grid]) -> None:
        sheets = bridge_sheets(template)
        existing = {p["title"]: p for p in self.metadata()}
        present = [s for s in sheets if s.title in existing]
        extra = [t for t in (INSTRUCTIONS_SHEET, *chart_tabs(template)) if t in existing]
        filled: set[str] = set()
        old: dict[str, Grid] = {}
        if present or extra:
            # formulas as text: a tab that computes its own columns cannot be synced
            ranges = [a1(s.title, 1, 1, len(s.columns), None) for s in present]
            ranges += [a1(t, 1, 1, EXTRA_WIDTH, None) for t in extra]
            grids = self.read_ranges(ranges, formulas=True)
            old = dict(zip([s.title for s in present] + extra, grids, strict=True))
            for sheet in present:
                grid = old[sheet.title]
                if any(any(v not in (None, "") for v in row) for row in grid):
                    _check_existing(sheet, grid)
                    filled.add(sheet.title)
            _refuse_formulas(self.name, template, [old.get(s.title, []) for s in sheets])
            for title in extra:
                check_extra_tab(title, old[title], template)
        used_ids = {int(p["sheetId"]) for p in existing.values()}
        requests: list[dict[str, Any]] = []
        cells: list[dict[str, Any]] = []
        ids: dict[str, int] = {}

        def tab(title: str, height: int, width: int, index: int | None = None) -> int:
            """The tab's id: an existing tab grown to ``height`` x ``width``, or a new one."""
            if title in existing:
                props = existing[title]
                sheet_id = int(props["sheetId"])
                grid_props = props.get("gridProperties", {})
                for dimension, have, need in (
                    ("COLUMNS", int(grid_props.get("columnCount", 26)), width),
                    ("ROWS", int(grid_props.get("rowCount", height)), height),
                ):
                    if need > have:
                        requests.append({"appendDimension": {
                            "sheetId": sheet_id, "dimension": dimension, "length": need - have}})
            else:
                sheet_id = max(used_ids, default=0) + 1
                used_ids.add(sheet_id)
                props = {"sheetId": sheet_id, "title": title,
                         "gridProperties": {"rowCount": height, "columnCount": max(26, width)}}
                if index is not None:
                    props["index"] = index
                requests.append({"addSheet": {"properties": props}})
            ids[title] = sheet_id
            return sheet_id

        def write(sheet_id: int, grid: Grid) -> None:
            if grid:
                cells.append({"updateCells": {
                    "start": {"sheetId": sheet_id, "rowIndex": 0, "columnIndex": 0},
                    "rows": [{"values": [_cell_data(v) for v in row]} for row in grid],
                    "fields": "userEnteredValue",
                }})

        guide = rows.get(INSTRUCTIONS_SHEET, [])
        # ours: rewritten on every init, the rows of an older text cleared
        guide_grid = _pad([*guide, *[[]] * (len(old.get(INSTRUCTIONS_SHEET, [])) - len(guide))],
                          EXTRA_WIDTH)
        guide_id = tab(INSTRUCTIONS_SHEET, max(100, len(guide_grid)), EXTRA_WIDTH, index=0)
        requests.extend(instructions_requests(guide_id, template))
        write(guide_id, guide_grid)
        for sheet in sheets:
            grid = _pad(rows.get(sheet.title, [])) if sheet.title not in filled else []
            height = max(1000, len(grid) + 100)
            if sheet.title in existing:
                height = max(len(grid), int(existing[sheet.title].get(
                    "gridProperties", {}).get("rowCount", height)))
            sheet_id = tab(sheet.title, height, len(sheet.columns))
            requests.extend(
                format_requests(sheet, sheet_id, height, new=sheet.title not in existing)
            )
            write(sheet_id, grid)
        for title in chart_tabs(template):
            if title in existing:
                continue  # the trader's picks and our charts stay as they are
            picks, currency = chart_picks(rows)
            grid = chart_rows(picks, currency, "google")
            slots = slot_count(len(picks))
            sheet_id = tab(title, max(1000, len(grid)), chart_width(slots))
            requests.extend(chart_requests(sheet_id, slots))
            write(sheet_id, _pad(grid))
        requests += cells
        self._call(
            "laying out the tabs",
            lambda: self._answered(self.http.batch_update(self.key, {"requests": requests}),
                                   "replies", len(requests)),
            aftermath=_LAID_OUT,
        )


def _pad(grid: Grid, width: int = 0) -> Grid:
    width = max([width, *(len(r) for r in grid)])
    return [list(r) + [None] * (width - len(r)) for r in grid]


def _check_existing(sheet: Sheet, grid: Grid) -> None:
    header = [str(v).strip() if v is not None else "" for v in (grid[0] if grid else [])]
    if header[: len(sheet.columns)] != sheet.headers:
        raise LayoutError(
            f"tab {sheet.title!r} already exists with other content in row 1: rename or delete "
            "it, or use another spreadsheet; init changes nothing"
        )


def _refuse_formulas(name: str, template: str, grids: list[Grid]) -> None:
    """Refuse (nothing written) when a cell the sync writes holds a formula: the sync would
    replace it with a value, so the spreadsheet computes its own columns and is not ours."""
    by_title = {s.title: g for s, g in zip(bridge_sheets(template), grids, strict=True)}
    for title, cells in sync_cells(template, grids).items():
        grid = by_title[title]
        for r, c in cells:
            row = grid[r - 1] if r - 1 < len(grid) else []
            v = row[c - 1] if c - 1 < len(row) else None
            if isinstance(v, str) and v.startswith("="):
                raise LayoutError(
                    f"init changed nothing: {name} cannot be synced, because "
                    f"{title}!{column_letter(c)}{r} holds a formula: the spreadsheet "
                    "computes its own columns (a workbook built by `leverage templates build`, "
                    "uploaded?), and a sync would replace its formulas with values. Use it as "
                    "it is, or lay the template out in a new spreadsheet"
                )


def open_google(
    key: str,
    credentials: str | os.PathLike[str] | None = None,
    *,
    client: gspread.Client | None = None,
    policy: RetryPolicy | None = None,
) -> GoogleBackend:
    """The spreadsheet ``key`` (its ID or URL) through a service account.

    ``credentials``: path of the service-account key file (default: ``$LEVERAGE_GOOGLE_
    CREDENTIALS``, then gspread's default location). ``client``: an already authorised
    ``gspread.Client`` (tests, or a caller with its own auth); the key file is then not read.
    """
    key = _spreadsheet_key(key)  # before the key file: the cheaper mistake first
    if client is None:
        creds = load_credentials(credentials_path(credentials))
        client = gspread.Client(creds, http_client=RetryingHTTPClient)
    return GoogleBackend(client, key, policy)


__all__ = ["GoogleBackend", "open_google"]
