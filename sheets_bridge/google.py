"""Google Sheets through gspread: a service account, a retrying HTTP client, two requests a sync.

The sync uses gspread's low-level calls (``values:batchGet``, ``values:batchUpdate``,
``:batchUpdate``) rather than ``open_by_key`` + worksheets, because opening a spreadsheet costs a
metadata request the sync does not need.
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

    def _missing_tabs(self, ranges: Sequence[str]) -> None:
        titles = set(self.sheet_titles())
        missing = [b.title for b in map(parse_a1, ranges) if b.title not in titles]
        if missing:
            raise LayoutError(
                f"spreadsheet {self.key} has no tab {missing[0]!r}: run `leverage sheets init` "
                "with the right --template first"
            )

    def write_ranges(self, updates: Sequence[Update]) -> None:
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
