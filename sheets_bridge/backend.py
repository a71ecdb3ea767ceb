"""The small interface the sync engine talks to, so Google Sheets and a local .xlsx file run
through the same code.

Ranges are A1 strings with a quoted sheet title: ``'Events'!A1:U`` (open-ended: every row
up to the last filled one) or ``'Events'!H2:U40``. Values are plain Python scalars: numbers,
text, ``None`` for an empty cell. Every write is RAW: a text that starts with ``=`` stays text.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, runtime_checkable

from gspread.exceptions import IncorrectCellLabel
from gspread.utils import a1_range_to_grid_range, absolute_range_name, rowcol_to_a1

from leverage.errors import LeverageError
from leverage.journal import date_serial
from leverage.layout import column_letter


def serial_date(value: Any) -> Any:
    """A date or datetime as the spreadsheet serial number both backends write (the
    journal's :func:`~leverage.journal.date_serial`: days since 1899-12-30, the time as the
    fraction); any other value as it is.

    >>> serial_date(dt.date(2024, 1, 5)), serial_date(dt.datetime(2024, 1, 5, 12))
    (45296.0, 45296.5)
    """
    if isinstance(value, dt.datetime):
        return date_serial(value.replace(tzinfo=None))
    if isinstance(value, dt.date):
        return date_serial(dt.datetime.combine(value, dt.time()))
    return value

Cell = Any  # str | int | float | bool | None
Grid = list[list[Cell]]


class SheetsError(LeverageError):
    """The spreadsheet cannot be read or written as asked (layout changed, no access,
    the service kept failing). The message says what to do; it never holds a credential."""


class LayoutError(SheetsError):
    """The spreadsheet's tabs or header row are not the layout the bridge writes to."""


class RequestFailed(SheetsError):
    """Google Sheets kept failing (quota, server errors, timeouts) past the retry budget, or
    did not finish within the command's deadline."""


class UnexpectedAnswer(SheetsError):
    """Google answered 200 with something that is not the API's JSON (an HTML page, ``null``,
    a cut-off or wrongly shaped body). ``detail`` describes it, quoting a short prefix only."""

    def __init__(self, detail: str) -> None:
        super().__init__(f"Google Sheets answered something that is not a spreadsheet response: "
                         f"{detail}")
        self.detail = detail


def quote_prefix(text: str | bytes, limit: int = 60) -> str:
    """At most ``limit`` characters of ``text``, whitespace runs folded, quoted: enough to
    recognise an answer, never a page of it.

    >>> quote_prefix("<html>\\n  <head><title>Sign in</title>", 20)
    "'<html> <head><title>…'"
    """
    if isinstance(text, bytes):
        text = text[: limit * 4].decode("utf-8", errors="replace")
    folded = " ".join(text.split())
    return repr(folded[:limit] + ("…" if len(folded) > limit else ""))


@dataclass(frozen=True)
class Update:
    """One block of values to write: ``range`` in A1 notation, ``values`` row by row."""

    range: str
    values: Grid

    @property
    def cells(self) -> int:
        return sum(len(row) for row in self.values)


Formats = list[list[str | None]]
"""The number format patterns of a read range's cells, row by row as its values (None: the
cell has no pattern of its own)."""


@dataclass(frozen=True)
class FormatUpdate:
    """Number formats to give a block of cells: ``range`` in A1, ``patterns`` row by row, one
    pattern a cell. Only the number format changes: values, fills and borders stay."""

    range: str
    patterns: list[list[str]]


@runtime_checkable
class Backend(Protocol):
    """What the sync needs from a spreadsheet."""

    name: str
    """Shown in reports and messages (``google:<key>`` or the file path); never a secret."""

    # read-only: Google counts its own (a property), a local file's is a constant 0
    @property
    def requests(self) -> int:
        """API requests sent so far (HTTP attempts, retries included; 0 for a local file)."""
        ...

    def sheet_titles(self) -> list[str]:
        """Titles of the tabs, in order."""
        ...

    def read_ranges(self, ranges: Sequence[str]) -> list[Grid]:
        """Values of each range in one read, trailing empty rows and cells trimmed."""
        ...

    def write_ranges(self, updates: Sequence[Update]) -> None:
        """Write every block RAW, all or nothing."""
        ...

    def lay_out(self, template: str, rows: dict[str, Grid]) -> None:
        """Create or refresh the template's tabs (headers, formats, drop-downs, widths) and
        write ``rows`` (sheet title → rows from row 1, headers included) RAW."""
        ...


@runtime_checkable
class FormatsBackend(Backend, Protocol):
    """A :class:`Backend` whose coin-margined money cells take their number format from the
    sync, row by row (Google: its conditional formats cannot set a number format, as Excel's
    and LibreOffice's do). Its read also says each cell's pattern, so a sync rewrites a row
    whose format is not its currency's, and its write sets values and formats all or
    nothing, in the one request a write costs."""

    def read_with_formats(self, ranges: Sequence[str]) -> tuple[list[Grid], list[Formats]]:
        """What :meth:`Backend.read_ranges` reads, and each range's number formats (one read)."""
        ...

    def write_ranges(self, updates: Sequence[Update],
                     formats: Sequence[FormatUpdate] = ()) -> None:
        """Write every block RAW and give ``formats`` their patterns, all or nothing."""
        ...


def deadline(backend: Any) -> contextlib.AbstractContextManager[Any]:
    """One deadline over everything the block asks of ``backend``, when the backend has one
    (Google's ``deadline_window``; a local file needs none)."""
    window: Callable[[], Any] | None = getattr(backend, "deadline_window", None)
    return window() if window is not None else contextlib.nullcontext()


_F = TypeVar("_F", bound=Callable[..., Any])


def within_deadline(fn: _F) -> _F:
    """Run ``fn(backend, ...)`` within one deadline of ``backend`` (see :func:`deadline`)."""

    @functools.wraps(fn)
    def bounded(backend: Any, *args: Any, **kwargs: Any) -> Any:
        with deadline(backend):
            return fn(backend, *args, **kwargs)

    return bounded  # type: ignore[return-value]


# ------------------------------------------------------------------------ A1 helpers


def a1(title: str, first_col: int, first_row: int, last_col: int, last_row: int | None) -> str:
    """``'Title'!H2:U40`` from 1-based bounds; ``last_row=None`` is open-ended (``H2:U``).
    The title is always quoted, so titles with spaces or quotes are safe."""
    end = column_letter(last_col) if last_row is None else rowcol_to_a1(last_row, last_col)
    return absolute_range_name(title, f"{rowcol_to_a1(first_row, first_col)}:{end}")


@dataclass(frozen=True)
class Box:
    title: str
    first_col: int
    first_row: int
    last_col: int
    last_row: int | None  # None: to the last filled row


def parse_a1(text: str) -> Box:
    """Inverse of :func:`a1` (quoted or bare title, one cell or a box)."""
    if text.startswith("'"):
        end = text.rfind("'!")
        if end <= 0:
            raise ValueError(f"range must look like 'Sheet'!A1:B2, got {text!r}")
        title, cells = text[1:end].replace("''", "'"), text[end + 2 :]
    else:
        title, sep, cells = text.partition("!")
        if not sep:
            raise ValueError(f"range must name its sheet, got {text!r}")
    try:
        grid = a1_range_to_grid_range(cells)
    except IncorrectCellLabel:
        grid = {}
    if "startColumnIndex" not in grid or not cells[:1].isalpha():
        raise ValueError(f"range must look like 'Sheet'!A1:B2, got {text!r}")
    return Box(title, grid["startColumnIndex"] + 1, grid.get("startRowIndex", 0) + 1,
               grid["endColumnIndex"], grid.get("endRowIndex"))
