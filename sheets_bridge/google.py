"""Google Sheets through gspread: a service account, a retrying HTTP client, two requests a sync.

The sync uses gspread's low-level calls (``values:batchGet``, ``values:batchUpdate``,
``:batchUpdate``) rather than ``open_by_key`` + worksheets, because opening a spreadsheet costs a
metadata request the sync does not need.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any

import gspread
import requests
from gspread.exceptions import APIError
from gspread.http_client import HTTPClient

from leverage.errors import InputError
from templates.layout import (
    ACCOUNT_INPUT_ROWS,
    ACCOUNT_OUTPUT_ROWS,
    CONTRACTS,
    EVENT_TYPES,
    FIRST_DATA_ROW,
    MARGIN_MODES,
    RULE_ROWS,
    SIDES,
    TEMPLATES,
    Sheet,
    account_format,
)

from .backend import Cell, Grid, LayoutError, SheetsError, Update, a1, quote_title
from .content import HIGHLIGHTS, buffer_cell, highlight_formula

SCOPE = "https://www.googleapis.com/auth/spreadsheets"
"""The only scope the bridge asks for: it never needs Drive."""
CREDENTIALS_ENV = "LEVERAGE_GOOGLE_CREDENTIALS"
"""Environment variable holding the path of the service-account key file."""
_READ_PARAMS = {
    "valueRenderOption": "UNFORMATTED_VALUE",  # numbers as numbers, percent as fractions
    "dateTimeRenderOption": "SERIAL_NUMBER",
    "majorDimension": "ROWS",
}
_RETRY_STATUS = frozenset({HTTPStatus.REQUEST_TIMEOUT, HTTPStatus.TOO_MANY_REQUESTS})
_EPOCH = dt.datetime(1899, 12, 30)  # day 0 of Sheets' serial dates


class RequestFailed(SheetsError):
    """Google Sheets kept failing (quota, server errors, timeouts) past the retry budget."""


# ------------------------------------------------------------------------ retries


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter, for 408, 429, 5xx, timeouts and dropped
    connections. ``sleep`` and ``random`` are injectable so tests run instantly."""

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 32.0
    timeout: float | tuple[float, float] | None = (10.0, 120.0)  # connect, read (seconds)
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    random: Callable[[], float] = field(default=random.random, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or (
            self.max_attempts < 1
        ):
            raise InputError(f"max_attempts must be an integer >= 1, got {self.max_attempts!r}")
        for name in ("base_delay", "max_delay"):
            v = getattr(self, name)
            if not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise InputError(f"{name} must be a finite number >= 0, got {v!r}")

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based): half the capped
        exponential step plus a random half, and never less than the server's Retry-After
        (itself capped)."""
        step = min(self.max_delay, self.base_delay * 2 ** (attempt - 1))
        wait = step * (0.5 + 0.5 * self.random())
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait


def _retry_after(response: requests.Response | None) -> float | None:
    text = response.headers.get("Retry-After") if response is not None else None
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _status_text(code: int) -> str:
    try:
        return f"HTTP {code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP {code}"


class RetryingHTTPClient(HTTPClient):
    """gspread's HTTP client with a bounded retry loop (gspread 6.2.1's BackOffHTTPClient
    retries a permanent 429 forever). Counts every attempt in ``attempts``."""

    policy: RetryPolicy = RetryPolicy()
    attempts: int = 0

    @classmethod
    def wrap(cls, inner: HTTPClient, policy: RetryPolicy) -> RetryingHTTPClient:
        """A retrying client sharing ``inner``'s session and credentials."""
        client = cls.__new__(cls)
        client.session = inner.session
        if hasattr(inner, "auth"):
            client.auth = inner.auth
        client.timeout = inner.timeout if policy.timeout is None else policy.timeout
        client.policy = policy
        client.attempts = 0
        return client

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:
        from google.auth.exceptions import TransportError

        started = time.monotonic()
        for attempt in range(1, self.policy.max_attempts + 1):
            self.attempts += 1
            retry_after = None
            try:
                return super().request(*args, **kwargs)
            except APIError as err:
                code = err.response.status_code
                if code not in _RETRY_STATUS and not 500 <= code <= 599:
                    raise
                reason = f"{_status_text(code)}: {_api_message(err)}"
                retry_after = _retry_after(err.response)
            except requests.Timeout:
                reason = "the request timed out"
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError):
                reason = "the connection was dropped"
            except TransportError:
                reason = "the connection to Google's sign-in service failed"
            if attempt < self.policy.max_attempts:
                self.policy.sleep(self.policy.delay(attempt, retry_after))
        raise RequestFailed(
            f"Google Sheets kept failing ({reason}) after {self.policy.max_attempts} attempts "
            f"in {time.monotonic() - started:.0f} s"
        )


def _api_message(err: APIError) -> str:
    message = err.error.get("message") if isinstance(err.error, Mapping) else None
    return str(message or "no message")[:300]


# ------------------------------------------------------------------------ credentials


def credentials_path(credentials: str | os.PathLike[str] | None = None) -> Path:
    """The key file: ``credentials`` if given, else ``$LEVERAGE_GOOGLE_CREDENTIALS``, else
    gspread's default location (``~/.config/gspread/service_account.json``)."""
    if credentials is not None and str(credentials).strip():
        return Path(credentials).expanduser()
    env = os.environ.get(CREDENTIALS_ENV, "").strip()
    if env:
        return Path(env).expanduser()
    from gspread.auth import DEFAULT_SERVICE_ACCOUNT_FILENAME

    return Path(DEFAULT_SERVICE_ACCOUNT_FILENAME)


def load_credentials(path: Path) -> Any:
    """Service-account credentials limited to the spreadsheets scope.

    Every failure names the file and what is wrong with it, never what is inside it.
    """
    from google.oauth2.service_account import Credentials

    where = f"credentials file {str(path)!r}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SheetsError(
            f"{where} does not exist: pass --credentials PATH or set {CREDENTIALS_ENV} "
            "(or use --file for a local workbook)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SheetsError(f"{where} cannot be read ({type(exc).__name__})") from None
    try:
        info = json.loads(text)
    except ValueError:
        raise SheetsError(
            f"{where} must be a JSON service-account key file; it is not JSON"
        ) from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise SheetsError(
            f"{where} must be a service-account key (\"type\": \"service_account\"); create one "
            "in the Google Cloud console under IAM > Service accounts > Keys"
        )
    missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
    if missing:
        raise SheetsError(f"{where} is missing {', '.join(missing)}")
    try:
        return Credentials.from_service_account_info(info, scopes=[SCOPE])
    except Exception:  # the key failed to parse: say so without echoing it
        raise SheetsError(f"{where} holds a private key that cannot be read") from None


# ------------------------------------------------------------------------ backend


def _json_cell(v: Cell) -> Cell:
    """A value as the API's JSON takes it (dates become Sheets serial numbers)."""
    if isinstance(v, dt.datetime):
        return (v.replace(tzinfo=None) - _EPOCH) / dt.timedelta(days=1)
    if isinstance(v, dt.date):
        return float((v - _EPOCH.date()).days)
    if v is None:
        return ""
    if isinstance(v, str | bool | int):
        return v
    f = float(v)  # numpy scalars, Decimal
    return f if math.isfinite(f) else ""


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
    """A Google spreadsheet as a :class:`~sheets_bridge.backend.Backend`."""

    def __init__(self, client: gspread.Client, key: str, policy: RetryPolicy | None = None):
        self.key = _spreadsheet_key(key)
        self.name = f"spreadsheet {self.key}"
        self.http = RetryingHTTPClient.wrap(client.http_client, policy or RetryPolicy())

    @property
    def requests(self) -> int:
        return self.http.attempts

    # -- calls with readable errors ---------------------------------------------------------

    def _call(self, what: str, fn: Callable[[], Any], *, writing: bool) -> Any:
        from google.auth.exceptions import GoogleAuthError

        aftermath = (
            "the sheet holds either its old values or all the new ones: run the sync again"
            if writing
            else "nothing was written"
        )
        try:
            return fn()
        except RequestFailed as exc:
            raise RequestFailed(f"{what}: {exc}; {aftermath}") from None
        except APIError as err:
            code = err.response.status_code
            if code in (HTTPStatus.FORBIDDEN, HTTPStatus.UNAUTHORIZED):
                raise SheetsError(
                    f"{what}: Google refused access ({_status_text(code)}): share the spreadsheet "
                    "with the service account's email (client_email in the key file) as Editor, "
                    f"and enable the Google Sheets API for its project; {aftermath}"
                ) from None
            if code == HTTPStatus.NOT_FOUND:
                raise SheetsError(
                    f"{what}: spreadsheet {self.key} not found: check --key (the ID between /d/ "
                    "and /edit in its URL)"
                ) from None
            raise SheetsError(
                f"{what}: {_status_text(code)}: {_api_message(err)}; {aftermath}"
            ) from None
        except GoogleAuthError as exc:
            raise SheetsError(
                f"{what}: signing in with the service account failed ({type(exc).__name__}): "
                "check the key file is current and not revoked"
            ) from None

    def metadata(self) -> Mapping[str, Any]:
        return self._call(
            "reading the spreadsheet's tabs",
            lambda: self.http.fetch_sheet_metadata(
                self.key, params={"fields": "sheets.properties", "includeGridData": "false"}
            ),
            writing=False,
        )

    def sheet_titles(self) -> list[str]:
        return [s["properties"]["title"] for s in self.metadata().get("sheets", [])]

    def read_ranges(self, ranges: Sequence[str]) -> list[Grid]:
        try:
            body = self._call(
                "reading the sheet",
                lambda: self.http.values_batch_get(self.key, list(ranges), dict(_READ_PARAMS)),
                writing=False,
            )
        except SheetsError as exc:
            if "Unable to parse range" in str(exc):
                self._missing_tabs(ranges)
            raise
        found = body.get("valueRanges", [])
        if len(found) != len(ranges):
            raise SheetsError(
                f"reading the sheet: asked for {len(ranges)} ranges, got {len(found)}"
            )
        return [list(vr.get("values", [])) for vr in found]

    def _missing_tabs(self, ranges: Sequence[str]) -> None:
        from .backend import parse_a1

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
            lambda: self.http.values_batch_update(self.key, body),
            writing=True,
        )

    # -- init --------------------------------------------------------------------------------

    def lay_out(self, template: str, rows: dict[str, Grid]) -> None:
        sheets = TEMPLATES[template]
        meta = self.metadata().get("sheets", [])
        existing = {s["properties"]["title"]: s["properties"] for s in meta}
        present = [s for s in sheets if s.title in existing]
        filled: set[str] = set()
        if present:
            grids = self.read_ranges([a1(s.title, 1, 1, len(s.columns), None) for s in present])
            for sheet, grid in zip(present, grids, strict=True):
                if any(any(v not in (None, "") for v in row) for row in grid):
                    _check_existing(sheet, grid)
                    filled.add(sheet.title)
        used_ids = {int(p["sheetId"]) for p in existing.values()}
        requests: list[dict[str, Any]] = []
        ids: dict[str, int] = {}
        next_id = max(used_ids, default=0) + 1
        for sheet in sheets:
            height = max(1000, len(rows.get(sheet.title, [])) + 100)
            if sheet.title in existing:
                props = existing[sheet.title]
                ids[sheet.title] = int(props["sheetId"])
                grid_props = props.get("gridProperties", {})
                height = int(grid_props.get("rowCount", height))
                short = len(sheet.columns) - int(grid_props.get("columnCount", 26))
                if short > 0:
                    requests.append({"appendDimension": {
                        "sheetId": ids[sheet.title], "dimension": "COLUMNS", "length": short}})
            else:
                while next_id in used_ids:
                    next_id += 1
                ids[sheet.title] = next_id
                used_ids.add(next_id)
                requests.append({"addSheet": {"properties": {
                    "sheetId": next_id,
                    "title": sheet.title,
                    "gridProperties": {
                        "rowCount": height,
                        "columnCount": max(26, len(sheet.columns)),
                    },
                }}})
            requests.extend(
                _format_requests(sheet, ids[sheet.title], height, new=sheet.title not in existing)
            )
        self._call(
            "laying out the tabs",
            lambda: self.http.batch_update(self.key, {"requests": requests}),
            writing=True,
        )
        updates = [
            Update(a1(title, 1, 1, max(len(r) for r in grid), len(grid)), grid)
            for title, grid in rows.items()
            if title not in filled and grid
        ]
        if updates:
            self.write_ranges([Update(u.range, _pad(u.values)) for u in updates])


def _pad(grid: Grid) -> Grid:
    width = max(len(r) for r in grid)
    return [list(r) + [None] * (width - len(r)) for r in grid]


def _check_existing(sheet: Sheet, grid: Grid) -> None:
    header = [str(v).strip() if v is not None else "" for v in (grid[0] if grid else [])]
    if header[: len(sheet.columns)] != sheet.headers:
        raise LayoutError(
            f"tab {sheet.title!r} already exists with other content in row 1: rename or delete "
            "it, or use another spreadsheet; init changes nothing"
        )


_GREY = {"red": 0.93, "green": 0.93, "blue": 0.93}
_COMPUTED_FILL = {"red": 0.95, "green": 0.97, "blue": 1.0}
_LISTS = {"side": SIDES, "contract": CONTRACTS, "event": EVENT_TYPES, "margin_mode": MARGIN_MODES}


def _number_format(pattern: str) -> dict[str, str] | None:
    if pattern == "General":
        return None
    if "%" in pattern:
        kind = "PERCENT"
    elif "yy" in pattern:
        kind = "DATE_TIME"
    else:
        kind = "NUMBER"
    return {"type": kind, "pattern": pattern}


def _box(sheet_id: int, r0: int, r1: int, c0: int, c1: int) -> dict[str, int]:
    """A GridRange: 0-based, end exclusive."""
    return {
        "sheetId": sheet_id,
        "startRowIndex": r0,
        "endRowIndex": r1,
        "startColumnIndex": c0,
        "endColumnIndex": c1,
    }


def _format_requests(
    sheet: Sheet, sheet_id: int, height: int, new: bool = True
) -> list[dict[str, Any]]:
    """Frozen bold header, column widths and number formats, drop-downs, computed cells
    shaded and protected with a warning (the trader may still override, knowingly), and the
    highlight rules. Protections and rules are added to ``new`` tabs only: Google stacks a
    second copy of each when init runs again, while formats simply overwrite."""
    first = FIRST_DATA_ROW - 1
    out: list[dict[str, Any]] = [
        {"updateSheetProperties": {
            "properties": {"sheetId": sheet_id, "gridProperties": {"frozenRowCount": 1}},
            "fields": "gridProperties.frozenRowCount",
        }},
        {"repeatCell": {
            "range": _box(sheet_id, 0, 1, 0, len(sheet.columns)),
            "cell": {"userEnteredFormat": {
                "textFormat": {"bold": True}, "backgroundColor": _GREY, "wrapStrategy": "WRAP"}},
            "fields": "userEnteredFormat(textFormat,backgroundColor,wrapStrategy)",
        }},
    ]
    for i, col in enumerate(sheet.columns):
        out.append({"updateDimensionProperties": {
            "range": {"sheetId": sheet_id, "dimension": "COLUMNS", "startIndex": i,
                      "endIndex": i + 1},
            "properties": {"pixelSize": int(col.width * 7 + 5)},
            "fields": "pixelSize",
        }})
        fmt: dict[str, Any] = {}
        fields = []
        number = _number_format(col.number_format)
        if number:
            fmt["numberFormat"] = number
            fields.append("numberFormat")
        if col.role == "computed":
            fmt["backgroundColor"] = _COMPUTED_FILL
            fields.append("backgroundColor")
        if fmt:
            out.append({"repeatCell": {
                "range": _box(sheet_id, first, height, i, i + 1),
                "cell": {"userEnteredFormat": fmt},
                "fields": f"userEnteredFormat({','.join(fields)})",
            }})
        if col.key in _LISTS and col.role == "input" and sheet.title != "Account":
            out.append({"setDataValidation": {
                "range": _box(sheet_id, first, height, i, i + 1),
                "rule": {
                    "condition": {"type": "ONE_OF_LIST",
                                  "values": [{"userEnteredValue": v} for v in _LISTS[col.key]]},
                    "strict": True,
                    "showCustomUi": True,
                },
            }})
    computed = [i for i, c in enumerate(sheet.columns) if c.role == "computed"]
    if computed and new:
        out.append(_protect(_box(sheet_id, first, height, computed[0], computed[-1] + 1)))
    if new:
        out.extend(_highlight_requests(sheet, sheet_id, height))
    if sheet.title == "Rules":
        for r, (_key, pattern, _meaning) in enumerate(RULE_ROWS, start=first):
            number = _number_format(pattern)
            if number:
                out.append(_cell_format(sheet_id, r, 1, number))
    if sheet.title == "Account":
        keys = [k for k, _ in ACCOUNT_INPUT_ROWS] + [k for k, _ in ACCOUNT_OUTPUT_ROWS]
        for r, key in enumerate(keys, start=first):
            number = _number_format(account_format(key))
            out.append(_cell_format(sheet_id, r, 1, number))
        start = first + len(ACCOUNT_INPUT_ROWS)
        if new:
            out.append(_protect(_box(sheet_id, start, start + len(ACCOUNT_OUTPUT_ROWS), 1, 2)))
    return out


def _highlight_requests(sheet: Sheet, sheet_id: int, height: int) -> list[dict[str, Any]]:
    """Conditional formatting: liquidation closer than the buffer and refused rows in red,
    rule breaks in amber. Google only lets such a formula reach another tab via INDIRECT."""
    title, row = buffer_cell()
    buffer = f'INDIRECT("{title}!B{row}")'
    out = []
    for h in HIGHLIGHTS.get(sheet.title, ()):
        formula = highlight_formula(sheet, h, buffer)
        if formula is None:
            continue
        col = sheet.index(h.key)
        out.append({"addConditionalFormatRule": {"index": 0, "rule": {
            "ranges": [_box(sheet_id, FIRST_DATA_ROW - 1, height, col, col + 1)],
            "booleanRule": {
                "condition": {"type": "CUSTOM_FORMULA", "values": [{"userEnteredValue": formula}]},
                "format": {"backgroundColor": _HIGHLIGHT[h.color]},
            },
        }}})
    return out


_HIGHLIGHT = {
    "red": {"red": 0.98, "green": 0.78, "blue": 0.78},
    "amber": {"red": 1.0, "green": 0.92, "blue": 0.6},
}


def _cell_format(
    sheet_id: int, row: int, col: int, number: dict[str, str] | None
) -> dict[str, Any]:
    return {"repeatCell": {
        "range": _box(sheet_id, row, row + 1, col, col + 1),
        "cell": {"userEnteredFormat": {"numberFormat": number}},
        "fields": "userEnteredFormat.numberFormat",
    }}


def _protect(grid_range: dict[str, int]) -> dict[str, Any]:
    return {"addProtectedRange": {"protectedRange": {
        "range": grid_range,
        "description": "computed by `leverage sheets sync`: edits here are overwritten",
        "warningOnly": True,
    }}}


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
        client = gspread.Client(auth=creds)
    return GoogleBackend(client, key, policy)


__all__ = [
    "CREDENTIALS_ENV",
    "SCOPE",
    "GoogleBackend",
    "RequestFailed",
    "RetryPolicy",
    "RetryingHTTPClient",
    "credentials_path",
    "load_credentials",
    "open_google",
    "quote_title",
]
