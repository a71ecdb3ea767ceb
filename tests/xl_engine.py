"""Compute .xlsx workbooks in tests, without Excel.

Two engines, for two kinds of formula:

* :func:`compute`: the ``formulas`` package, with our own Python functions bound as Excel
  functions (``=LIQ_PRICE(...)``), plus the native ones it knows (IF, IFERROR, INDEX/MATCH,
  SUMPRODUCT, ...). Single-cell formulas and ``ArrayFormula`` ranges (no dynamic spills).
  Its lean path compiles each distinct formula of a column once and runs cells in
  dependency order (the engine's whole model, cell by cell, is ~6x the CPU);
  tests/test_xl_engine.py holds it to the model's values.
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
            functions: Mapping[str, Callable[..., Any]] | None = None,
            engine: str = "lean") -> CellValues:
    """Calculate every formula of the workbook at ``path`` with the ``formulas`` engine.

    ``functions`` maps an Excel name to a plain Python function (arguments: a cell's value
    or a 2-D list for a range, ``None`` for an empty cell, Excel errors as their text;
    returns a value or a 2-D list; see :func:`bind`). They are registered for this call
    only. Returns ``{(sheet_title, "H2"): value}`` for every cell with a value or read by a
    formula, with the sheet titles as written in the workbook (the engine upper-cases them).

    ``engine="lean"`` compiles each distinct formula once (see :func:`_compute_lean`; a
    workbook it does not handle goes to the model); ``"model"`` builds the engine's whole
    model, cell by cell (tests/test_xl_engine.py checks that both give the same values).
    """
    if engine not in ("lean", "model"):
        raise ValueError(f"engine must be 'lean' or 'model', got {engine!r}")
    with registered(functions), _no_cycle_collector():
        if engine == "lean":
            try:
                return _compute_lean(Path(path), functions_key(functions))
            except _Unhandled:
                pass
        return _compute_model(Path(path))


def functions_key(functions: Mapping[str, Callable[..., Any]] | None
                  ) -> tuple[tuple[str, int], ...]:
    """What the lean path's compiled formulas are kept under: the functions registered."""
    return tuple(sorted((name.upper(), id(f)) for name, f in (functions or {}).items()))


@contextlib.contextmanager
def registered(functions: Mapping[str, Callable[..., Any]] | None) -> Iterator[None]:
    """``functions`` bound as Excel functions in the engine while the block runs."""
    import formulas

    registry = formulas.get_functions()
    saved = {name: registry.get(name.upper()) for name in functions or {}}
    try:
        for name, function in (functions or {}).items():
            registry[name.upper()] = bind(function)
        yield
    finally:
        for name, previous in saved.items():
            if previous is None:
                registry.pop(name.upper(), None)
            else:
                registry[name.upper()] = previous


def _compute_model(path: Path) -> CellValues:
    import formulas
    import formulas.builder
    import openpyxl

    titles = {t.upper(): t for t in openpyxl.load_workbook(path, read_only=True).sheetnames}
    with _cells_computed_once(formulas.builder.AstBuilder):
        model = formulas.ExcelModel().loads(str(path)).finish()
        solution = model.calculate()
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


# ------------------------------------------------------------------ lean evaluation
# The ``formulas`` model parses and compiles every cell's formula on its own and links all
# of them into one dispatcher: about 1 s of CPU a journal row, most of the suite's time. A
# template's formulas repeat down their columns, so this path compiles each distinct
# formula once (the engine's own parser, functions and value types) and evaluates the cells
# in dependency order, handing each compiled formula the ranges its cell reads.
_A1 = re.compile(
    r"^(?P<sheet>(?:'[^']+'|[A-Za-z0-9_.]+)!)?"
    r"(?P<c1>\$?)(?P<col1>[A-Z]{1,3})(?P<r1>\$?)(?P<row1>\d+)"
    r"(?::(?P<c2>\$?)(?P<col2>[A-Z]{1,3})(?P<r2>\$?)(?P<row2>\d+))?$")
# ROW() and COLUMN() without argument read their own cell: the same as ROW(own range), which
# is written out so that the formula reads the same on every row and compiles once.
_HOST_POSITION = re.compile(r'"(?:[^"]|"")*"|\b(ROW|COLUMN)\(\s*\)', re.IGNORECASE)


def _own_position(formula: str, ref: str) -> str:
    """``formula`` with ROW() / COLUMN() (outside string literals) reading ``ref``."""
    return _HOST_POSITION.sub(
        lambda m: m.group(0) if m.group(1) is None else f"{m.group(1)}({ref})", formula)


# An A1 reference outside a string literal: the split keeps string literals in the text
# pieces (first alternative, not captured) and captures references (second alternative).
_REFERENCE = re.compile(
    r'"(?:[^"]|"")*"'
    r"|(?P<ref>(?<![A-Za-z0-9_.$'!])(?:(?:'(?:[^']|'')+'|[A-Za-z_][A-Za-z0-9_.]*)!)?"
    r"\$?[A-Z]{1,3}\$?\d+(?::\$?[A-Z]{1,3}\$?\d+)?(?![A-Za-z0-9_(!]))")


def _split_references(formula: str) -> tuple[list[str], list[str]]:
    """The formula's text between its A1 references, and the references, in order."""
    texts, refs, start = [], [], 0
    for m in _REFERENCE.finditer(formula):
        if m["ref"] is not None:
            texts.append(formula[start:m.start()])
            refs.append(m["ref"])
            start = m.end()
    texts.append(formula[start:])
    return texts, refs


# Compiled formulas by shape, kept for the worker's life: the same templates are computed
# by many tests. Keyed by the functions registered (a compiled formula holds them); each
# entry: the compiled cell, how it is run and its operands' names.
_COMPILED: dict[tuple[tuple[str, int], ...],
                dict[str, tuple[Any, Callable[..., Any], list[str]]]] = {}
_LARGEST_RANGE = 100_000  # cells; whole-column references are left to the model

_Cell = tuple[str, int, int]  # (SHEET in upper case, row, column number)


class _Unhandled(Exception):
    """A workbook outside what the lean path handles: the model computes it."""


def _relative(operand: str, row: int, col: int) -> str:
    """An A1 operand as an offset from its cell (R1C1), so a formula filled down a column
    reads the same on every row; other operands (names, errors) as they are."""
    from openpyxl.utils.cell import column_index_from_string

    m = _A1.match(operand)
    if not m:
        return operand
    parts = [(m["sheet"] or "").upper()]
    for dollar_col, letters, dollar_row, number in ((m["c1"], m["col1"], m["r1"], m["row1"]),
                                                    (m["c2"], m["col2"], m["r2"], m["row2"])):
        if letters is not None:
            n = column_index_from_string(letters)
            parts.append((f"R{number}" if dollar_row else f"R[{int(number) - row}]")
                         + (f"C{n}" if dollar_col else f"C[{n - col}]"))
    return ":".join(parts)


_FUNCTION_NODE = {"type", "inputs", "outputs", "function", "wait_inputs", "index",
                  "solve_cycle", "extra_inputs"}


def _straight_line(pipe: Any) -> Callable[..., Any] | None:
    """The compiled formula's steps run as a plain loop: a ``DispatchPipe`` already holds
    its nodes in order, and walking them through schedula's solution (a copy of the
    workflow, futures, callbacks a node) costs about as much as the functions themselves.
    Same functions, same order, same filters; ``None`` for a pipe with anything else (a
    sub-dispatcher, an input domain), which then runs as it is."""
    defaults = {k: v["value"] for k, v in pipe.dsp.default_values.items()}
    inputs = list(pipe.inputs)
    known = set(inputs) | set(defaults)
    steps: list[tuple[Any, Any, tuple[Any, ...]]] = []
    for task in pipe.pipe:
        node_id, solution = task[0][-1]
        node = solution.nodes[node_id]
        if node["type"] == "data":
            if node_id not in known:
                return None
            if node.get("filters"):
                steps.append((None, node_id, tuple(node["filters"])))
        elif node["type"] == "function" and set(node) <= _FUNCTION_NODE and all(
                i in known for i in node["inputs"]):
            steps.append((node["function"], tuple(node["inputs"]), tuple(node["outputs"])))
            known.update(node["outputs"])
        else:
            return None
    output = pipe.outputs[0]
    if output not in known:
        return None

    def run(*args: Any) -> Any:
        values = dict(defaults)
        values.update(zip(inputs, args, strict=True))
        for function, ins, outs in steps:
            if function is None:  # a data node's filters, in order
                value = values[ins]
                for f in outs:
                    value = f(value)
                values[ins] = value
            elif len(outs) == 1:
                values[outs[0]] = function(*(values[i] for i in ins))
            else:
                values.update(zip(outs, function(*(values[i] for i in ins)), strict=True))
        return values[output]

    return run


class _Formula:
    """One formula cell (or array formula): where it writes, and for each input of its
    compiled function the range this cell reads there (``None``: the compiled default)."""

    def __init__(self, run: Callable[..., Any], inputs: list[tuple[Any, str | None]],
                 output: dict[str, Any]) -> None:
        self.run, self.inputs, self.output = run, inputs, output


class _Book:
    def __init__(self, path: Path, functions: tuple[tuple[str, int], ...]) -> None:
        from formulas.excel.xlreader import load_workbook
        from openpyxl.utils.cell import range_boundaries

        book = load_workbook(str(path), data_only=False)
        if len(book.defined_names) or book._external_links:
            raise _Unhandled("defined names or external links")
        # one book name for every workbook, so compiled formulas serve the next workbook too
        base = {"excel": "BOOK.XLSX", "directory": "", "filename": "book.xlsx"}
        self.functions = functions
        self.titles: dict[str, str] = {}
        self.constants: dict[_Cell, Any] = {}
        self.formulas: dict[_Cell, tuple[str, str, dict[str, Any]]] = {}
        self.writer: dict[_Cell, _Cell] = {}  # each cell a formula writes -> its formula
        for ws in book.worksheets:
            sheet = ws.title.upper()
            self.titles[sheet] = ws.title
            ctx = {"sheet": sheet, **base}
            arrays = dict(ws.array_formulae)
            for (row, col), cell in ws._cells.items():
                value, key = cell.value, (sheet, row, col)
                if value is None:
                    continue
                if cell.data_type == "f":  # read as ExcelModel.compile_cell reads it
                    text = value if isinstance(value, str) else value.text
                    text = text[1:] if text[:2] == "==" else text
                    ref = arrays.get(cell.coordinate, cell.coordinate)
                    self.formulas[key] = (ref, text, ctx)
                    c1, r1, c2, r2 = range_boundaries(ref)
                    for r in range(r1, r2 + 1):
                        for c in range(c1, c2 + 1):
                            self.writer[(sheet, r, c)] = key
                elif cell.data_type != "s" and isinstance(value, str) and value[:1] == "=":
                    raise _Unhandled("a formula in a cell not typed as one")
                else:
                    self.constants[key] = (round(value, 15) if cell.data_type == "n"
                                           and isinstance(value, float) else value)
        self._names: dict[tuple[str, str], str] = {}
        self._ranges: dict[str, tuple[dict[str, Any], list[_Cell]]] = {}

    def name(self, operand: str, ctx: dict[str, Any]) -> str:
        from formulas.ranges import Ranges

        key = (ctx["sheet"], operand)
        if key not in self._names:
            self._names[key] = Ranges.get_range(operand, ctx)["name"]
        return self._names[key]

    def cells(self, name: str) -> tuple[dict[str, Any], list[_Cell]]:
        """The range a name stands for, and its cells row by row."""
        from formulas.ranges import Ranges

        if name not in self._ranges:
            rng = Ranges.get_range(name)
            r1, r2, n1, n2 = int(rng["r1"]), int(rng["r2"]), int(rng["n1"]), int(rng["n2"])
            if (r2 - r1 + 1) * (n2 - n1 + 1) > _LARGEST_RANGE:
                raise _Unhandled(f"the range {name} is too large")
            sheet = rng["sheet"].upper()
            self._ranges[name] = (rng, [(sheet, r, c) for r in range(r1, r2 + 1)
                                        for c in range(n1, n2 + 1)])
        return self._ranges[name]

    def formula(self, key: _Cell) -> _Formula:
        """Compile the cell's formula, or reuse the compilation of the same formula at
        another place (the same text once references are made relative to their cell)."""
        from formulas.ranges import Ranges
        from openpyxl.utils.cell import range_boundaries

        ref, text, ctx = self.formulas[key]
        text = _own_position(text, ref)
        texts, refs = _split_references(text)
        operands = [self.name(o, ctx) for o in refs]
        c1, r1, c2, r2 = range_boundaries(ref)
        relative = [_relative(o, key[1], key[2]) for o in refs]
        shape = "|".join((ctx["sheet"], f"{r2 - r1}x{c2 - c1}", "\0".join(texts),
                          "\0".join(relative)))
        compiled = _COMPILED.setdefault(self.functions, {})
        if shape not in compiled:
            compiled[shape] = (*_compile(ref, text, ctx), operands)
        cell, run, first = compiled[shape]
        rename: dict[str, str] = {}
        for theirs, mine in zip(first, operands, strict=True):
            if rename.setdefault(theirs, mine) != mine:  # e.g. A1 and $A$1 in one formula
                cell, run = _compile(ref, text, ctx)
                rename = {o: o for o in operands}
                break
        inputs: list[tuple[Any, str | None]] = []
        for default in cell.func.func.inputs.values():
            if not hasattr(default, "ranges"):
                inputs.append((default, None))
            elif len(default.ranges) == 1 and default.ranges[0]["name"] in rename:
                inputs.append((default, rename[default.ranges[0]["name"]]))
            else:
                raise _Unhandled(f"an input of {text} that is not one of its references")
        return _Formula(run, inputs, Ranges.get_range(ref, ctx))


def _compile(ref: str, text: str, ctx: dict[str, Any]) -> tuple[Any, Callable[..., Any]]:
    """The engine's compiled cell for ``text`` at ``ref``, and how to run it."""
    from formulas.cell import Cell

    cell = Cell(ref, text, context=ctx).compile(context=ctx)
    return cell, _straight_line(cell.func.func) or cell.func.func


def _evaluation_order(book: _Book, formulas: dict[_Cell, _Formula]) -> list[_Cell]:
    """Formula cells with each after the formulas it reads (depth first, no recursion)."""
    reads: dict[_Cell, set[_Cell]] = {}
    for key, f in formulas.items():
        reads[key] = {book.writer[c] for _, name in f.inputs if name is not None
                      for c in book.cells(name)[1] if c in book.writer}
    order: list[_Cell] = []
    state: dict[_Cell, int] = {}  # 1: on the path, 2: done
    for root in formulas:
        if state.get(root) == 2:
            continue
        stack = [(root, iter(sorted(reads[root])))]
        state[root] = 1
        while stack:
            key, pending = stack[-1]
            for dep in pending:
                if dep == key:
                    continue  # ROW(own cell) reads where it is, not what it holds
                if state.get(dep) == 1:
                    raise _Unhandled("a circular reference")
                if state.get(dep) is None:
                    state[dep] = 1
                    stack.append((dep, iter(sorted(reads[dep]))))
                    break
            else:
                stack.pop()
                state[key] = 2
                order.append(key)
    return order


def _compute_lean(path: Path, functions: tuple[tuple[str, int], ...]) -> CellValues:
    """The values of :func:`_compute_model` (same parser, functions and value types);
    raises :class:`_Unhandled` for a workbook outside what it handles."""
    import schedula as sh
    from formulas.cell import format_output
    from formulas.functions import replace_empty
    from formulas.ranges import Ranges
    from formulas.tokens.operand import Error
    from openpyxl.utils import get_column_letter

    book = _Book(path, functions)
    formulas = {key: book.formula(key) for key in book.formulas}
    values: dict[_Cell, Any] = {}
    for key in _evaluation_order(book, formulas):
        f = formulas[key]
        args = []
        for default, name in f.inputs:
            if name is None:
                args.append(default)
                continue
            rng, cells = book.cells(name)
            grid = np.array([values.get(c, book.constants.get(c, sh.EMPTY)) for c in cells],
                            dtype=object).reshape(int(rng["r2"]) - int(rng["r1"]) + 1, -1)
            args.append(Ranges().set_value(rng, grid))
        try:
            result = f.run(*args)
        except NotImplementedError:  # as formulas.cell.CellWrapper answers it
            result = Error.errors["#NAME?"]
        except sh.DispatcherError as ex:
            if not isinstance(ex.ex, NotImplementedError):
                raise
            result = Error.errors["#NAME?"]
        grid = np.atleast_2d(format_output(f.output, replace_empty(result)).value)
        r1, n1 = int(f.output["r1"]), int(f.output["n1"])
        for r in range(grid.shape[0]):
            for c in range(grid.shape[1]):
                values[(key[0], r1 + r, n1 + c)] = grid[r, c]
    out: CellValues = {}
    for f in formulas.values():  # an empty cell a formula reads is in the model's answer
        for _, name in f.inputs:
            if name is not None:
                for sheet, r, c in book.cells(name)[1]:
                    out[(book.titles.get(sheet, sheet), f"{get_column_letter(c)}{r}")] = None
    for cells in (book.constants, values):
        for (sheet, r, c), v in cells.items():
            out[(book.titles.get(sheet, sheet), f"{get_column_letter(c)}{r}")] = _from_engine(v)
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
