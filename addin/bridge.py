"""Cells in, cells out: what every Excel function of :mod:`leverage_addin.udfs` shares.

A function receives each argument as a 2-D grid (a single cell is ``[[v]]``, a column
``[[v1], [v2], ...]``), calls the core's ``.rows`` twin once for the whole grid, and
returns a grid of the broadcast shape that Excel spills. No formula lives here: this module
only reads cells, hands them to :mod:`leverage`, and writes its answers back.

Cells of a result
-----------------
* a number: the core's answer;
* blank: the core has no value ("none": e.g. no liquidation price exists), or the row is
  empty (every required input of the row is blank, e.g. the unused rows under a list);
* an error, for a bad row only (the other rows compute):

  - ``#VALUE!`` an input breaks its rule (``qty must be > 0, got -1``, ``side is required``);
  - ``#NUM!`` the inputs are valid but the position has no answer (bankrupt, target on the
    wrong side of entry), or the answer is out of Excel's number range;
  - an Excel error in an input cell (``#N/A``, ``#DIV/0!``...) comes out unchanged, as
    Excel's own functions do, so ``IFNA``/``IFERROR`` around the inputs keep working. In an
    argument that is one value for the whole call (``tiers``, ``exchange``) it is every
    row's result.

A flag of the core (:class:`leverage.LeverageWarning`: a funding rate above 1 % a period, a
leverage above the tier's maximum, a cross price beyond entry with a rate that looks like a
percent) does not change a cell: a cell holds one value, and the row's answer stands, so the
number is shown. Rates typed as percent text (``"0.5%"``) are read as the core reads them.

``exchange`` is one cell for the whole call: a range of exchanges is refused with a message
(the convention decides the formula); a sheet that mixes exchanges calls the function once
per exchange.

How an error is shown depends on the Excel that runs the function (:func:`error_style`):

* ``"values"`` (xlwings Lite and xlwings Server, Office.js): real Excel error values. A
  one-row call that fails raises :class:`xlwings.XlwingsError`, which Office.js shows as
  ``#VALUE!`` with the message when you hover over the cell. Inside a spilled range each bad
  row is a real error value without its message (Excel's error values carry no text through
  xlwings); the same formula on that one row shows the message.
* ``"text"`` (classic xlwings on Windows, and plain Python): a short text in the cell,
  ``#VALUE! qty must be > 0, got -1``, because classic xlwings turns a raised exception into
  a traceback in the cell. Nothing is ever raised.

The environment variable ``LEVERAGE_EXCEL_ERRORS`` (``values`` or ``text``) overrides the
choice, e.g. ``text`` in xlwings Lite to read every row's message in a spilled column.
"""

from __future__ import annotations

import functools
import inspect
import math
import os
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from leverage import CATALOGUE, LeverageError, tier_rows

ERROR_STYLE_ENV = "LEVERAGE_EXCEL_ERRORS"

# Excel's error values as xlwings hands them over with err_to_str=True. Only these seven map
# back to real error values in Office.js; any other "#..." error becomes #VALUE!.
EXCEL_ERRORS = ("#DIV/0!", "#N/A", "#NAME?", "#NULL!", "#NUM!", "#REF!", "#VALUE!")
_OTHER_EXCEL_ERRORS = ("#SPILL!", "#CALC!", "#FIELD!", "#BLOCKED!", "#CONNECT!", "#BUSY!",
                       "#UNKNOWN!", "#GETTING_DATA", "#PYTHON!")
_ALL_ERRORS = frozenset(EXCEL_ERRORS + _OTHER_EXCEL_ERRORS)

_NUMBER_TYPES = frozenset({float, int, np.float64, np.int64})
_NONE = np.array(None, dtype=object)  # np.equal(cells, _NONE): None as numpy's stubs accept it
_EXCEL_NAME = {fn: name for name, fn in CATALOGUE.items()}

Grid = list[list[Any]]


# ------------------------------------------------------------------------ runtime
def excel_runtime() -> str:
    """Which xlwings runs the functions: ``"officejs"`` (xlwings Lite in Pyodide, or xlwings
    Server), ``"classic"`` (the Windows COM add-in) or ``"python"`` (no Excel: the
    decorators are no-ops and the functions are plain Python).

    Told by the decorators xlwings picked at import, so no licence key or env is needed.
    """
    if sys.platform == "emscripten":
        return "officejs"
    xlwings = sys.modules.get("xlwings")
    origin = getattr(getattr(xlwings, "func", None), "__module__", "") or ""
    if origin.endswith("udfs_officejs"):
        return "officejs"
    if origin == "xlwings.udfs":
        return "classic"
    return "python"


def error_style() -> str:
    """``"values"`` (real Excel errors, Office.js) or ``"text"`` (a short text, classic and
    Python); ``LEVERAGE_EXCEL_ERRORS`` overrides."""
    forced = os.environ.get(ERROR_STYLE_ENV, "").strip().lower()
    if forced in ("values", "text"):
        return forced
    return "values" if excel_runtime() == "officejs" else "text"


# ------------------------------------------------------------------------ reading
class Cells:
    """One argument read from Excel: the values for the core plus what the add-in itself
    needs to know per cell (blank? an Excel error value?)."""

    __slots__ = ("blank", "excel_error", "is_range", "values")

    def __init__(self, values: Any, blank: np.ndarray | None, excel_error: np.ndarray | None,
                 is_range: bool) -> None:
        self.values = values  # None (blank or omitted), float ndarray or object ndarray
        self.blank = blank  # bool mask, None when no cell is blank
        self.excel_error = excel_error  # object array of error codes or None
        self.is_range = is_range


def _is_blank(v: Any) -> bool:
    return v is None or (isinstance(v, str) and not v.strip())


def clean_cell(v: Any) -> Any:
    """One cell as the core reads it, whatever xlwings passed.

    Office.js "raw" values: an error is ``{"type": "Error", "basicValue": "#N/A"}`` (-> its
    text), other typed values carry ``basicValue``, a blank is ``""``, ``None`` or Pyodide's
    ``JsNull`` (-> ``None``). A Python int beyond float range (float() would raise) -> ±inf,
    which the core reports as not finite.
    """
    if isinstance(v, dict):
        if v.get("type") == "Error":
            code = v.get("basicValue")
            return code if isinstance(code, str) and code.startswith("#") else "#VALUE!"
        return v.get("basicValue")
    if type(v).__name__ == "JsNull":
        return None
    if type(v) is int:
        try:
            float(v)
        except OverflowError:
            return math.inf if v > 0 else -math.inf
    return v


def as_grid(value: Any) -> Grid | np.ndarray | None:
    """A cell, row, column or 2-D range as a 2-D grid; ``None`` for an omitted argument."""
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        if value.ndim == 2:
            return value
        return value.reshape(-1, 1) if value.ndim == 1 else value.reshape(1, 1)
    if isinstance(value, list | tuple):
        if not value:
            return None
        if all(isinstance(r, list | tuple) for r in value):
            return [list(r) for r in value]
        # Office.js hands a one-row range over as a flat list (xlwings unwraps the outer
        # list of a single row), so a flat list is a row. A 1-D numpy array is a column.
        return [list(value)]
    return [[value]]


def read_cells(value: Any) -> Cells:
    """Read one argument. Odd cell content never raises (the core judges it per row); only
    a non-rectangular range, which Excel cannot send, is rejected for the whole call."""
    grid = as_grid(value)
    if grid is None:
        return Cells(None, None, None, False)
    if isinstance(grid, np.ndarray) and grid.dtype.kind in "fiu":
        arr = grid.astype(float, copy=False)
        return Cells(arr, None, None, arr.size > 1)
    rows = grid.tolist() if isinstance(grid, np.ndarray) else grid
    if any(len(r) != len(rows[0]) for r in rows):
        raise LeverageError("a range argument must be rectangular")
    is_range = len(rows) * len(rows[0]) > 1
    if not is_range and _is_blank(clean_cell(rows[0][0])):
        return Cells(None, np.ones((1, 1), bool), None, False)
    types = {type(v) for r in rows for v in r}
    if types <= _NUMBER_TYPES:  # the common case: numbers only, no per-cell work
        try:
            return Cells(np.array(rows, dtype=float), None, None, is_range)
        except OverflowError:
            pass
    flat = [clean_cell(v) for r in rows for v in r]
    shape = (len(rows), len(rows[0]))
    obj = np.empty(len(flat), dtype=object)
    obj[:] = flat
    obj = obj.reshape(shape)
    blank = np.fromiter((_is_blank(v) for v in flat), bool, len(flat)).reshape(shape)
    excel_error: np.ndarray | None = None
    if any(isinstance(v, str) for v in flat):
        codes = [v if isinstance(v, str) and v.strip() in _ALL_ERRORS else None for v in flat]
        if any(c is not None for c in codes):
            excel_error = np.empty(len(flat), dtype=object)
            excel_error[:] = [None if c is None else _excel_code(c) for c in codes]
            excel_error = excel_error.reshape(shape)
    return Cells(obj, blank if blank.any() else None, excel_error, is_range)


def _excel_code(text: str) -> str:
    code = text.strip()
    return code if code in EXCEL_ERRORS else "#VALUE!"


def read_static(value: Any) -> Any:
    """A same-for-every-row argument (tier table, exchange): a single cell as its value, a
    blank as ``None``, a range as rows."""
    grid = as_grid(value)
    if grid is None:
        return None
    rows = grid.tolist() if isinstance(grid, np.ndarray) else grid
    if len(rows) == 1 and len(rows[0]) == 1:
        v = clean_cell(rows[0][0])
        return None if _is_blank(v) else v
    return [[clean_cell(v) for v in r] for r in rows]


def static_error(value: Any) -> str | None:
    """The Excel error (``#N/A``...) in a same-for-every-row argument read by
    :func:`read_static`, if any of its cells holds one: the whole result is that error."""
    cells = value if isinstance(value, list) else [[value]]
    for row in cells:
        for v in row if isinstance(row, list) else [row]:
            if isinstance(v, str) and v.strip() in _ALL_ERRORS:
                return _excel_code(v)
    return None


def _error_grid(code: str, shape: tuple[int, ...], style: str) -> Grid:
    """Every cell of the result the Excel error ``code`` of a same-for-every-row input."""
    return np.full(shape, _cell_error(code, "in an input cell", style), dtype=object).tolist()


# ------------------------------------------------------------------------ writing
MESSAGE_LIMIT = 500  # characters: a message is one line, far below Excel's 32,767 per cell


def _short(message: str) -> str:
    return message if len(message) <= MESSAGE_LIMIT else message[: MESSAGE_LIMIT - 1] + "…"


def _cell_error(code: str, message: str, style: str) -> str:
    return code if style == "values" else f"{code} {_short(message)}"


def _fail_whole_call(name: str, message: str, style: str) -> Grid:
    text = _short(f"{name}: {message}")
    if style == "values":
        from xlwings import XlwingsError  # loaded already: xlwings runs this function

        raise XlwingsError(text)
    return [[f"#VALUE! {text}"]]


def _write(
    name: str,
    values: np.ndarray,
    errors: np.ndarray | None,
    position: np.ndarray | None,
    excel_error: np.ndarray | None,
    empty: np.ndarray | None,
    one_row: bool,
    style: str,
) -> Grid:
    """Result grid: numbers, blanks for nan and empty rows, per-row error cells."""
    out = values.astype(object)
    out[np.isnan(values)] = None
    too_big = np.isinf(values)
    if too_big.any():
        out[too_big] = _cell_error("#NUM!", "result is beyond Excel's number range", style)
    if errors is not None:
        bad = np.not_equal(errors, _NONE)
        if excel_error is not None:
            bad |= np.not_equal(excel_error, _NONE)
        if empty is not None:
            bad &= ~empty
        for idx in zip(*np.nonzero(bad), strict=True):
            code = None if excel_error is None else excel_error[idx]
            if code is not None:  # an input cell holds an Excel error: pass it on
                out[idx] = _cell_error(code, "in an input cell", style)
                continue
            message = errors[idx]
            if one_row and style == "values":
                return _fail_whole_call(name, message, style)
            is_position = position is not None and bool(position[idx])
            out[idx] = _cell_error("#NUM!" if is_position else "#VALUE!", message, style)
    if empty is not None:
        out[empty] = None
    return out.tolist()


def _grid_shape(a: np.ndarray) -> np.ndarray:
    return a.reshape(1, 1) if a.ndim == 0 else a


# ------------------------------------------------------------------------ calling
_REQUIRED: Any = inspect.Parameter.empty


@functools.cache
def _plan(fn: Callable[..., Any]) -> tuple[tuple[str, bool, Any], ...]:
    """(name, is_static, default) of each argument in the core's order; the default is
    ``inspect.Parameter.empty`` for a required argument."""
    rules = fn.rules  # type: ignore[attr-defined]
    return tuple(
        (name, rules[name].per_call, p.default)
        for name, p in inspect.signature(fn).parameters.items()
    )


def _with_default(cells: Cells, default: Any) -> Any:
    """Blank cells of an optional argument as the core's own default (from its signature).

    The core maps blanks to defaults itself, except for TRUE/FALSE flags (count_profit),
    where a blank currently comes back as an error; filling them here is harmless for every
    other kind and keeps a blank optional cell meaning "default" everywhere.
    """
    if cells.values is None:
        return default
    if cells.blank is None:
        return cells.values
    filled = cells.values.copy()
    filled[cells.blank] = default
    return filled


def _all_of(masks: list[np.ndarray], shape: tuple[int, ...]) -> np.ndarray | None:
    if not masks:
        return None
    out = np.broadcast_to(masks[0], shape).copy()
    for m in masks[1:]:
        out &= m
    return out


def call(fn: Callable[..., Any], *args: Any) -> Grid:
    """Run a core formula on cells/ranges and return the result grid (see module doc)."""
    return _guarded(fn, lambda name, style: _call(fn, name, args, style))


def call_ranges(fn: Callable[..., Any], *args: Any) -> Grid:
    """Run a core function over ranges (ACCOUNT_SHOCK, FUNDING_FROM_HISTORY) and return one
    row with one answer per column of the ranges (one cell for a single column), which spills
    to the right; a bad column is its own error cell."""
    return _guarded(fn, lambda name, style: _call_ranges(fn, name, args, style))


def _guarded(fn: Callable[..., Any], run: Callable[[str, str], Grid]) -> Grid:
    """A whole-call failure as one error cell (or XlwingsError); never a traceback."""
    name = _EXCEL_NAME.get(fn, getattr(fn, "__name__", "?").upper())
    style = error_style()
    try:
        return run(name, style)
    except LeverageError as exc:
        return _fail_whole_call(name, str(exc), style)
    except Exception as exc:  # a bug must never put a traceback in a cell
        if type(exc).__name__ == "XlwingsError":
            raise
        return _fail_whole_call(name, f"unexpected {type(exc).__name__}: {exc}", style)


def _read_args(
    fn: Callable[..., Any], args: tuple[Any, ...]
) -> tuple[list[Any], list[tuple[Cells, bool]], str | None]:
    """The core's arguments from the cells, each per-row argument's cells and whether it is
    required, and the Excel error of a same-for-every-row argument (``None`` if none)."""
    core_args: list[Any] = []
    read: list[tuple[Cells, bool]] = []
    passed_on: str | None = None  # an Excel error in a same-for-every-row argument
    for (_arg, is_static, default), value in zip(_plan(fn), args, strict=True):
        if is_static:
            core_args.append(read_static(value))
            passed_on = passed_on or static_error(core_args[-1])
            continue
        cells = read_cells(value)
        required = default is _REQUIRED
        core_args.append(cells.values if required else _with_default(cells, default))
        read.append((cells, required))
    return core_args, read, passed_on


def _call(fn: Callable[..., Any], name: str, args: tuple[Any, ...], style: str) -> Grid:
    core_args, read, passed_on = _read_args(fn, args)
    if passed_on is not None:
        return _error_grid(passed_on, _shape_of([c for c, _ in read]), style)
    res = fn.rows(*core_args)  # type: ignore[attr-defined]
    values = _grid_shape(res.values)
    shape = values.shape
    errors = _grid_shape(res.errors)
    position = None if res.position_rows is None else _grid_shape(res.position_rows)
    excel_error = _first_excel_error([c for c, _ in read], shape)
    empty = _empty_rows([(c, r) for c, r in read], shape)
    one_row = values.size == 1
    return _write(name, values, errors, position, excel_error, empty, one_row, style)


def _call_ranges(fn: Callable[..., Any], name: str, args: tuple[Any, ...], style: str) -> Grid:
    core_args, _, passed_on = _read_args(fn, args)
    if passed_on is not None:
        return _error_grid(passed_on, (1, 1), style)
    res = fn.rows(*core_args)  # type: ignore[attr-defined]
    def as_row(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else np.reshape(a, (1, -1))

    values = np.reshape(res.values, (1, -1))
    return _write(name, values, as_row(res.errors), as_row(res.position_rows), None, None,
                  values.size == 1, style)


def _shape_of(cells: list[Cells]) -> tuple[int, ...]:
    """The result's shape from the row-wise arguments alone (1 x 1 if they do not agree)."""
    try:
        return np.broadcast_shapes(*(np.shape(c.values) for c in cells if c.values is not None),
                                   (1, 1))
    except ValueError:
        return (1, 1)


def _first_excel_error(cells: list[Cells], shape: tuple[int, ...]) -> np.ndarray | None:
    """Per row, the Excel error of the first argument (in order) whose cell holds one."""
    out: np.ndarray | None = None
    for c in cells:
        if c.excel_error is None:
            continue
        err = np.broadcast_to(c.excel_error, shape)
        if out is None:
            out = np.full(shape, None, dtype=object)
        take = np.equal(out, _NONE) & np.not_equal(err, _NONE)
        out[take] = err[take]
    return out


def _empty_rows(cells: list[tuple[Cells, bool]], shape: tuple[int, ...]) -> np.ndarray | None:
    """Rows where every required input that varies by row is blank: not a position (e.g.
    the unused rows of a column selected past its data), so left blank. In a single-cell
    call every required input counts."""
    required = [c for c, is_required in cells if is_required]
    ranges = [c for c in required if c.is_range]
    masks = []
    for c in ranges or required:
        if c.values is None:
            masks.append(np.ones((1, 1), bool))
        elif c.blank is None:
            return None  # a required argument with no blank cell: no row is empty
        else:
            masks.append(c.blank)
    out = _all_of(masks, shape)
    return out if out is not None and out.any() else None


def call_tier(tiers: Any, notional: Any) -> Grid:
    """``TIER``: one row ``mmr, maint_amount, max_leverage`` per notional cell."""
    style = error_style()
    try:
        cells = read_cells(notional)
        table = read_static(tiers)
        code = static_error(table)
        if code is not None:
            return _error_grid(code, (np.size(cells.values) if cells.values is not None else 1,
                                      3), style)
        rows, errors = tier_rows(table, cells.values)
        rows = rows.reshape(-1, 3)
        n = rows.shape[0]
        errors = np.full((n, 1), None, dtype=object) if errors is None else errors.reshape(n, 1)
        excel_error = None if cells.excel_error is None else cells.excel_error.reshape(n, 1)
        empty = None
        if cells.values is None:
            empty = np.ones((n, 1), bool)
        elif cells.blank is not None:
            empty = cells.blank.reshape(n, 1)
        wide = lambda m: None if m is None else np.repeat(m, 3, axis=1)  # noqa: E731
        return _write("TIER", rows, wide(errors), None, wide(excel_error), wide(empty),
                      n == 1, style)
    except LeverageError as exc:
        return _fail_whole_call("TIER", str(exc), style)
    except Exception as exc:
        if type(exc).__name__ == "XlwingsError":
            raise
        return _fail_whole_call("TIER", f"unexpected {type(exc).__name__}: {exc}", style)
