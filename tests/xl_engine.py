"""Compute .xlsx workbooks in tests, without Excel.

Two engines, for two kinds of formula:

* :func:`compute`: the ``formulas`` package, with our own Python functions bound as Excel
  functions (``=LIQ_PRICE(...)``), plus the native ones it knows (IF, IFERROR, INDEX/MATCH,
  SUMPRODUCT, ...). Single-cell formulas and ``ArrayFormula`` ranges (no dynamic spills).
* :func:`recalc_with_libreoffice`: headless LibreOffice, for native formulas only (every UDF
  shows ``#NAME?`` there); gives a recalculated copy to read with openpyxl ``data_only=True``.

Both return or write plain values: numbers, text, ``None`` for an empty cell and Excel
errors as their text (``"#N/A"``).

    from xl_engine import compute      # tests/ is on sys.path under pytest
    values = compute("book.xlsx", {"LIQ_PRICE": leverage_addin.udfs.LIQ_PRICE})
    values[("Positions", "H2")]
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TQDM_DISABLE", "1")  # formulas/schedula progress bars

CellValues = dict[tuple[str, str], Any]

_KEY = re.compile(r"^'?\[(?P<book>[^\]]+)\](?P<sheet>.+?)'?!(?P<ref>[A-Z]+\d+(?::[A-Z]+\d+)?)$")


# ------------------------------------------------------------------ formulas engine
def _from_engine(value: Any) -> Any:
    """A formulas cell value as plain Python: EMPTY -> None, XlError -> "#N/A", numpy
    scalars -> Python numbers."""
    import schedula as sh
    from formulas.tokens.operand import XlError

    if value is sh.EMPTY:
        return None
    if isinstance(value, XlError):
        return str(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _to_engine(value: Any) -> Any:
    """A Python result cell for formulas, as xlwings writes it to Excel: None -> empty text
    "" (a formula cannot return a truly empty cell; the engine would show 0), an exact Excel
    error text ("#N/A") -> that error, so that IFERROR/ISNA around the UDF behave as in
    Excel; any other text (e.g. "#VALUE! qty must be > 0") stays text."""
    from formulas.tokens.operand import Error

    if value is None:
        return ""
    if isinstance(value, str) and value in Error.errors:
        return Error.errors[value]
    return value


def _argument(value: Any) -> Any:
    """A formulas argument as xlwings would pass it: a cell -> its value, a range -> a 2-D
    list of values."""
    if isinstance(value, np.ndarray):
        rows = [[_from_engine(v) for v in row] for row in np.atleast_2d(value)]
        return rows[0][0] if len(rows) == 1 and len(rows[0]) == 1 else rows
    return _from_engine(value)


def bind(function: Callable[..., Any]) -> Callable[..., Any]:
    """Adapt a plain Python function (cells in as values / 2-D lists, a value or 2-D list
    out) to the formulas engine's calling convention."""
    from formulas.functions import wrap_func

    def adapted(*args: Any) -> Any:
        result = function(*(_argument(a) for a in args))
        if isinstance(result, list | tuple | np.ndarray):
            grid = np.array(
                [[_to_engine(v) for v in row] for row in np.atleast_2d(np.asarray(result,
                                                                                  dtype=object))],
                dtype=object,
            )
            return grid
        return _to_engine(result)

    adapted.__name__ = getattr(function, "__name__", "udf")
    # Registered through wrap_func: a raw function would get Ranges objects and, on a
    # TypeError, silently drop the cell from the results.
    return wrap_func(adapted)


def _cells(ref: str) -> Iterator[tuple[str, int, int]]:
    from openpyxl.utils.cell import range_boundaries

    min_col, min_row, max_col, max_row = range_boundaries(ref)
    from openpyxl.utils import get_column_letter

    for r in range(min_row, max_row + 1):
        for c in range(min_col, max_col + 1):
            yield f"{get_column_letter(c)}{r}", r - min_row, c - min_col


@contextlib.contextmanager
def _cells_computed_once(builder: Any) -> Iterator[None]:
    """Compile each cell's formula to a plain sub-dispatch function instead of the engine's
    default pipe: the pipe solves the formula's graph once more when it is built, which pays
    only for a model calculated many times; a test calculates each model once. Same values
    (checked on the typed journal: all 8,947 cells equal), about 15 % less CPU."""
    import schedula as sh
    from schedula.utils.dsp import NoSub

    class Function(NoSub, sh.SubDispatchFunction):  # NoSub: a cell, not a nested model
        pass

    default = builder.compile_class
    builder.compile_class = Function
    try:
        yield
    finally:
        builder.compile_class = default


@contextlib.contextmanager
def _no_cycle_collector() -> Iterator[None]:
    """Python's cycle collector off while the engine builds and calculates a model, then one
    collection: the model is millions of objects in cycles, and each automatic full
    collection while it grows walks all of them again (a third of the CPU of a 64-row
    journal: 60 s to 39 s; peak memory 1.4 GB to 1.8 GB). The collection after frees the
    model at once, as the next automatic one would have."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
        gc.collect()


def compute(path: str | os.PathLike[str],
            functions: Mapping[str, Callable[..., Any]] | None = None) -> CellValues:
    """Calculate every formula of the workbook at ``path`` with the ``formulas`` engine.

    ``functions`` maps an Excel name to a plain Python function (arguments: a cell's value
    or a 2-D list for a range, ``None`` for an empty cell, Excel errors as their text;
    returns a value or a 2-D list; see :func:`bind`). They are registered for this call
    only. Returns ``{(sheet_title, "H2"): value}`` for every cell the engine saw, with the
    sheet titles as written in the workbook (the engine upper-cases them).
    """
    with _no_cycle_collector():
        return _compute(Path(path), functions)


def _compute(path: Path, functions: Mapping[str, Callable[..., Any]] | None) -> CellValues:
    import formulas
    import formulas.builder
    import openpyxl

    titles = {t.upper(): t for t in openpyxl.load_workbook(path, read_only=True).sheetnames}
    registry = formulas.get_functions()
    saved = {name: registry.get(name) for name in functions or {}}
    try:
        for name, function in (functions or {}).items():
            registry[name.upper()] = bind(function)
        with _cells_computed_once(formulas.builder.AstBuilder):
            model = formulas.ExcelModel().loads(str(path)).finish()
            solution = model.calculate()
    finally:
        for name, previous in saved.items():
            if previous is None:
                registry.pop(name.upper(), None)
            else:
                registry[name.upper()] = previous
    out: CellValues = {}
    for key, ranges in solution.items():
        match = _KEY.match(str(key))
        if not match:
            continue
        sheet = titles.get(match["sheet"].upper(), match["sheet"])
        grid = np.atleast_2d(np.asarray(getattr(ranges, "value", ranges), dtype=object))
        for cell, r, c in _cells(match["ref"]):
            if r < grid.shape[0] and c < grid.shape[1]:
                out[(sheet, cell)] = _from_engine(grid[r, c])
    return out


# ------------------------------------------------------------------ LibreOffice
def libreoffice_available() -> bool:
    """True when headless LibreOffice (``soffice``) is on PATH."""
    return shutil.which("soffice") is not None


def recalc_with_libreoffice(path: str | os.PathLike[str], outdir: str | os.PathLike[str],
                            timeout: float = 120) -> Path:
    """Recalculate ``path`` with headless LibreOffice; return the recalculated .xlsx in
    ``outdir`` (read it with ``openpyxl.load_workbook(p, data_only=True)``).

    Each run gets its own LibreOffice profile: with a shared one a run can print "source
    file could not be loaded" and still exit 0, so the output file is checked too.
    LibreOffice knows native functions only (a UDF gives ``#NAME?``); it needs the
    ``_xlfn.`` prefix for IFS, TEXTJOIN, MAXIFS and has no XLOOKUP/SORT (7.4). Never ship
    its output: it lower-cases unknown function names and drops freeze panes.
    """
    return recalc_many_with_libreoffice([path], outdir, timeout)[0]


def recalc_many_with_libreoffice(paths: list[str | os.PathLike[str]],
                                 outdir: str | os.PathLike[str], timeout: float = 120
                                 ) -> list[Path]:
    """:func:`recalc_with_libreoffice` for several workbooks in one LibreOffice run (its
    start-up is most of a small workbook's cost); their names must differ. Returns the
    recalculated copies in the order of ``paths``."""
    soffice = shutil.which("soffice")
    if soffice is None:
        raise RuntimeError("LibreOffice (soffice) is not installed")
    sources = [Path(p).resolve() for p in paths]
    out = Path(outdir).resolve()
    if any(out == src.parent for src in sources):
        raise ValueError("outdir must differ from the workbook's folder (it would be overwritten)")
    if len({src.stem for src in sources}) != len(sources):
        raise ValueError("the workbooks' names must differ (their copies share one outdir)")
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"lo-profile-{uuid.uuid4().hex[:8]}-") as profile:
        proc = subprocess.run(
            [soffice, f"-env:UserInstallation={Path(profile).as_uri()}", "--headless",
             "--norestore", "--convert-to", "xlsx", "--outdir", str(out),
             *(str(src) for src in sources)],
            capture_output=True, text=True, timeout=timeout * len(sources), check=False,
        )
    results = [out / (src.stem + ".xlsx") for src in sources]
    missing = [src.name for src, result in zip(sources, results, strict=True)
               if not result.exists()]
    if proc.returncode != 0 or missing:
        raise RuntimeError(
            f"LibreOffice did not convert {', '.join(missing) or 'the workbooks'} "
            f"(exit {proc.returncode}): {proc.stdout.strip()} {proc.stderr.strip()}"
        )
    return results


def read_values(path: str | os.PathLike[str]) -> CellValues:
    """``{(sheet_title, "A1"): value}`` of the cached values of a workbook (e.g. the output
    of :func:`recalc_with_libreoffice`)."""
    import openpyxl

    wb = openpyxl.load_workbook(path, data_only=True)
    return {
        (ws.title, cell.coordinate): cell.value
        for ws in wb.worksheets
        for row in ws.iter_rows()
        for cell in row
        if cell.value is not None
    }
