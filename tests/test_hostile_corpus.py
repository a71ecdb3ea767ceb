"""The hostile-input corpus over every function of ``leverage.CATALOGUE`` (issue 10).

It iterates the catalogue, so a function added later is covered without editing this file:
its arguments' rules (``fn.rules``) say what a valid row looks like. Each function is driven

* through the core: ``fn(...)`` raises only InputError/PositionError, whatever it is given;
  ``fn.rows(...)`` never raises for a per-row problem, and a column with one bad cell (in each
  argument in turn) gives that row an error and every other row the same value as alone;
* through the Excel path (``xlwings.server.custom_functions_call``, as tests/test_addin.py):
  no traceback or "unexpected" text, valid JSON, and the good rows of a column computed.

Hostile values: blanks, text numbers, huge and tiny numbers, NaN/inf, Excel error values,
ragged and mismatched ranges, 100,000-character text, odd Python types. Hypothesis draws the
valid rows (derandomized, bounded examples). With ``LEVERAGE_HOSTILE_COUNTS=<file>`` set, the
counts (cases, tracebacks, wrong numbers) are written there as JSON (docs/RELIABILITY.md).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import decimal
import inspect
import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

os.environ.setdefault("XLWINGS_ON_SERVER", "true")
os.environ.setdefault("XLWINGS_LICENSE_KEY", "noncommercial")

import xlwings
import xlwings.server as xs

import leverage as lv
from leverage._args import Contract, Flag, Kind, Number, Side
from leverage.core import NOTIONAL, TIERS
from leverage_addin import bridge, udfs

NA = {"type": "Error", "basicType": "Error", "basicValue": "#N/A", "errorType": "NotAvailable"}
DIV0 = {"type": "Error", "basicType": "Error", "basicValue": "#DIV/0!", "errorType": "Div0"}
REF = {"type": "Error", "basicType": "Error", "basicValue": "#REF!", "errorType": "Ref"}
LONG_TEXT = "x" * 100_000
TIERS_5 = [
    ["min", "max", "mmr", "maint_amount", "max_leverage"],
    [0, 50_000, 0.004, 0, 125],
    [50_000, 250_000, 0.005, 50, 100],
    [250_000, 1_000_000, 0.01, 1_300, 50],
]

# Cell values no rule accepts: the row must be an error.
ALWAYS_BAD_CORE = ["abc", "1e5", LONG_TEXT, {"a": 1}, [1, 2], decimal.Decimal("1.5"), 1 + 2j,
                   b"12", dt.datetime(2024, 1, 31), "#N/A", object()]
ALWAYS_BAD_EXCEL = ["abc", "1e5", LONG_TEXT, NA, DIV0, REF, {"type": "Error"}, "#N/A"]
# Cell values some rules accept (a blank takes the default, nan is "none" for a liquidation
# price, 0 or 1 are a flag...): the row must be what the same row gives alone.
MAYBE_BAD_CORE = [None, "", "   ", True, False, math.nan, math.inf, -math.inf, 1e308, -1e308,
                  5e-324, 1e-300, -0.0, 0, 1, -1, 10**400, -(10**400)]
MAYBE_BAD_EXCEL = [None, "", "   ", True, False, 1e308, -1e308, 5e-324, 1e-300, -0.0, 0, 1, -1,
                   {"type": "Double", "basicValue": 7.0}, 45_322.0]
# Whole arguments of the wrong shape (ragged, mismatched, nested, empty, 0-d, 2-D).
SHAPES_CORE = [[[1, 2], [3]], [[1, [2]]], [1.0, 2.0, 3.0, 4.0, 5.0], [], (), np.array(5.0),
               np.ones((2, 2)), np.array([1, "a"], dtype=object), {"a": 1}, set(), LONG_TEXT,
               [[LONG_TEXT]], 10**400]
SHAPES_EXCEL = [[[1, 2], [3]], [[1.0]] * 5, [[1.0, 2.0], [3.0, 4.0]], [], [[NA, LONG_TEXT]],
                [[LONG_TEXT]] * 2, [[None]] * 3]

COUNTS: collections.Counter[str] = collections.Counter()
# No shrinking: a failure is reported with the example drawn (shrinking these many-argument
# examples takes minutes), and the corpus stays well under a minute.
SETTINGS = settings(max_examples=8, derandomize=True, deadline=None, database=None,
                    suppress_health_check=list(HealthCheck),
                    phases=[Phase.explicit, Phase.generate])
UDF_SETTINGS = settings(SETTINGS, max_examples=3)
N_ROWS = 3


# The corpus tests run in this process, by (test name, its parameters): the closing check runs
# the ones missing (run alone, under -k, or on another xdist worker) before it counts.
RAN: set[tuple[str, str]] = set()


def _ran_key(name: str, params: dict[str, Any]) -> tuple[str, str]:
    return name, repr(sorted(params.items()))


@pytest.fixture(autouse=True)
def _note_ran(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    callspec = getattr(request.node, "callspec", None)
    RAN.add(_ran_key(request.node.originalname, callspec.params if callspec else {}))


@pytest.fixture(scope="module", autouse=True)
def _write_counts() -> Iterator[None]:
    yield
    path = os.environ.get("LEVERAGE_HOSTILE_COUNTS")
    if path:
        with open(path, "w") as f:
            json.dump(dict(COUNTS), f, indent=1, sort_keys=True)


# ---------------------------------------------------------------------------- the catalogue
def rules_of(name: str) -> dict[str, Kind]:
    """Each argument's rule: a formula carries them; TIER (a plain function) is spelled out.
    A function added later without ``rules`` is covered by the whole-value tests only."""
    fn = lv.CATALOGUE[name]
    if hasattr(fn, "rules"):
        return dict(fn.rules)
    if fn is lv.tier:
        return {"tiers": TIERS, "notional": NOTIONAL}
    return {}


# ACCOUNT_SHOCK and FUNDING_FROM_HISTORY read ranges (one account or position a column): their
# columns are tested by test_a_bad_cell_in_a_range_fails_its_column_only
RANGED = [n for n in lv.CATALOGUE if getattr(lv.CATALOGUE[n], "over_ranges", False)]
ROW_FUNCTIONS = [n for n in lv.CATALOGUE if rules_of(n) and n not in RANGED]
FORMULAS = [n for n in lv.CATALOGUE if hasattr(lv.CATALOGUE[n], "rows") and n not in RANGED]


def row_values(rule: Kind) -> st.SearchStrategy[Any]:
    """Valid cells for a rule: typical trading numbers, sometimes extreme ones."""
    if isinstance(rule, Side):
        return st.sampled_from(["long", "short", "buy", "sell", 1, -1])
    if isinstance(rule, Contract):
        return st.sampled_from(["linear", "linear", "inverse"])
    if isinstance(rule, Flag):
        return st.sampled_from([True, False, "TRUE", 0, 1])
    if isinstance(rule, Number):
        low, high = rule._low, rule._high
        typical = [-2_000.0, -0.0003, 0.0, 0.0001, 0.004, 0.01, 0.5, 1.0, 2.0, 21.0, 400.0,
                   6_000.0, 19_000.0, 20_000.0, 60_000.0, 100_000.0, 1e308, 1e-300]
        ok = [v for v in typical if rule._within(np.float64(v))]
        finite_high = min(high, 1e6)
        floats = st.floats(max(low, -1e6), finite_high, allow_nan=False, allow_infinity=False,
                           exclude_min=not rule._low_in, exclude_max=not rule._high_in
                           and finite_high == high)
        return st.one_of(st.sampled_from(ok), floats) if ok else floats
    return st.just(1.0)


def per_call_values(name: str, default: Any) -> st.SearchStrategy[Any]:
    if name == "tiers":
        return st.sampled_from([None, None, "binance:BTCUSDT", "binance:BTCUSD_PERP", TIERS_5])
    if name == "exchange":
        return st.sampled_from(list(lv.EXCHANGES))
    return st.just(default)


def draw_rows(data: st.DataObject, name: str) -> tuple[dict[str, list[Any]], dict[str, Any]]:
    """Valid values for every argument: N_ROWS cells for row-wise ones, one for the others."""
    defaults = {n: p.default for n, p in inspect.signature(lv.CATALOGUE[name]).parameters.items()}
    columns: dict[str, list[Any]] = {}
    static: dict[str, Any] = {}
    for arg, rule in rules_of(name).items():
        if rule.per_call:
            static[arg] = data.draw(per_call_values(arg, defaults.get(arg)), label=arg)
        else:
            columns[arg] = data.draw(st.lists(row_values(rule), min_size=N_ROWS,
                                              max_size=N_ROWS), label=arg)
    return columns, static


def draw_case(data: st.DataObject, name: str, always_bad_values: list[Any],
              maybe_bad_values: list[Any]) -> tuple[dict, dict, int, bool, Any]:
    """Valid rows, plus the row and the hostile cell to put in each argument in turn."""
    columns, static = draw_rows(data, name)
    j = data.draw(st.integers(0, N_ROWS - 1), label="bad row")
    always_bad = data.draw(st.booleans(), label="always bad")
    bad = data.draw(st.sampled_from(always_bad_values if always_bad else maybe_bad_values),
                    label="bad cell")
    return columns, static, j, always_bad, bad


def with_bad(columns: dict[str, list[Any]], arg: str, j: int, bad: Any) -> dict[str, list[Any]]:
    return {**columns, arg: [bad if i == j else v for i, v in enumerate(columns[arg])]}


def cells(values: list[Any]) -> np.ndarray:
    """A column of cells kept as cells (a list in a cell stays one cell)."""
    out = np.empty(len(values), dtype=object)
    for i, v in enumerate(values):
        out[i] = v
    return out


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return a == b


# ---------------------------------------------------------------------------- core
def core_rows(name: str, columns: dict[str, list[Any]], static: dict[str, Any]
              ) -> tuple[np.ndarray, np.ndarray]:
    """(values, errors) per row, through ``.rows`` (or tier_rows for TIER)."""
    fn = lv.CATALOGUE[name]
    if fn is lv.tier:
        values, errors = lv.tier_rows(static["tiers"], cells(columns["notional"]))
        errors = np.full(len(values), None, dtype=object) if errors is None else errors
        return values, errors
    res = fn.rows(**{k: cells(v) for k, v in columns.items()}, **static)
    return res.values, res.errors


def core_row(values: np.ndarray, errors: np.ndarray, i: int) -> tuple[Any, Any]:
    v = values[i]
    return (tuple(v.tolist()) if np.ndim(v) else float(v)), errors[i]


@pytest.mark.parametrize("name", ROW_FUNCTIONS)
@SETTINGS
@given(data=st.data())
def test_core_one_bad_cell_never_sinks_a_column(name: str, data: st.DataObject) -> None:
    columns, static, j, always_bad, bad = draw_case(data, name, ALWAYS_BAD_CORE, MAYBE_BAD_CORE)
    try:
        alone_values, alone_errors = core_rows(name, columns, static)
    except lv.LeverageError:  # a per-call problem (a table for the other contract...)
        COUNTS["core cases"] += 1
        return
    problems = []
    for arg in columns:
        COUNTS["core cases"] += 1
        hostile = with_bad(columns, arg, j, bad)
        try:
            values, errors = core_rows(name, hostile, static)
        except lv.LeverageError as exc:
            COUNTS["wrong numbers"] += 1  # one cell sank the column
            problems.append((arg, "whole call failed", str(exc)[:200]))
            continue
        except Exception as exc:
            COUNTS["tracebacks"] += 1
            problems.append((arg, type(exc).__name__, str(exc)[:200]))
            continue
        for i in range(N_ROWS):
            got = core_row(values, errors, i)
            if i == j:
                alone = core_rows(name, {k: [v[i]] for k, v in hostile.items()}, static)
                want = core_row(*alone, 0)
                if always_bad and got[1] is None:
                    COUNTS["wrong numbers"] += 1
                    problems.append((arg, "bad cell gave no error", got))
            else:
                want = core_row(alone_values, alone_errors, i)
            if not (same(got[0], want[0]) if not isinstance(got[0], tuple)
                    else all(map(same, got[0], want[0]))) or got[1] != want[1]:
                COUNTS["wrong numbers"] += 1
                problems.append((arg, i, got, want))
            elif got[1] is None:
                COUNTS["good rows computed"] += 1
                if not isinstance(got[0], tuple) and math.isinf(got[0]):
                    COUNTS["wrong numbers"] += 1
                    problems.append((arg, i, "inf without an error"))
    assert not problems, (name, repr(bad)[:50], problems[:3])


# A funding rate of 1 or 1e308 a period is legal but odd: the core flags it (LeverageWarning,
# asserted in tests/test_guardrails.py) and answers; here only the answer's kind matters.
@pytest.mark.filterwarnings("ignore::leverage.LeverageWarning")
@pytest.mark.parametrize("name", list(lv.CATALOGUE))
def test_core_raises_only_named_errors(name: str) -> None:
    """Every hostile value and shape in every argument of a valid call: a number, a nan
    ("none") or an InputError/PositionError, nothing else."""
    fn = lv.CATALOGUE[name]
    params = inspect.signature(fn).parameters
    valid = dict(VALID_CALLS.get(name, {}))
    for p in params.values():  # a function added later: required arguments as 1.0
        if p.name not in valid and p.default is inspect.Parameter.empty:
            valid[p.name] = 1.0
    problems = []
    for arg in params:
        for value in [*ALWAYS_BAD_CORE, *MAYBE_BAD_CORE, *SHAPES_CORE]:
            COUNTS["core cases"] += 1
            try:
                out = fn(**{**valid, arg: value})
            except (lv.InputError, lv.PositionError) as exc:
                if len(str(exc)) > 1_000:
                    problems.append((arg, repr(value)[:30], f"message of {len(str(exc))} chars"))
                continue
            except Exception as exc:
                COUNTS["tracebacks"] += 1
                problems.append((arg, repr(value)[:30], f"{type(exc).__name__}: {exc}"[:200]))
                continue
            flat = np.ravel(np.asarray(out, dtype=float))
            if np.isinf(flat).any():
                COUNTS["wrong numbers"] += 1
                problems.append((arg, repr(value)[:30], "inf returned"))
    assert not problems, (name, problems[:5])


def test_core_rows_never_raise_for_a_row() -> None:
    """``.rows`` with a hostile cell in every argument at once: per-row messages only."""
    for name in FORMULAS:
        fn = lv.CATALOGUE[name]
        for bad in [*ALWAYS_BAD_CORE, *MAYBE_BAD_CORE]:
            COUNTS["core cases"] += 1
            args = {arg: cells([bad, bad]) for arg, rule in fn.rules.items()
                    if not rule.per_call}
            res = fn.rows(**args)
            assert res.values.shape == (2,)
            for e in res.errors.flat:
                assert e is None or len(e) < 400, (name, e[:100])


# Known-good calls of the position formulas, leverage.core (the rules' generator covers the
# others).
VALID_CALLS: dict[str, dict[str, Any]] = {
    "TIER": {"tiers": "binance:BTCUSDT", "notional": 100_000},
    "LIQ_PRICE": {"side": "long", "qty": 1, "entry_price": 20_000, "margin": 400},
    "MARGIN_FOR_LIQ_PRICE": {"side": "long", "qty": 1, "entry_price": 20_000,
                             "target_liq_price": 19_000},
    "MAX_WITHDRAWABLE": {"notional": 100_000, "margin": 12_000, "unrealized_pnl": 500,
                         "max_leverage": 10},
    "POSITION_SIZE": {"equity": 10_000, "risk_fraction": 0.01, "entry_price": 50_000,
                      "stop_price": 49_000},
    "LIQ_DISTANCE": {"side": "long", "mark_price": 20_000, "liq_price": 19_000},
}


# ---------------------------------------------------------------------------- Excel
def excel(name: str, args: list[Any]) -> Any:
    payload = {
        "client": "Office.js", "version": xlwings.__version__, "func_name": name, "args": args,
        "caller_address": "[Book1.xlsx]Sheet1!B2", "session_id": "test",
        "culture_info_name": "en-US", "date_format": "m/d/yyyy", "runtime": "1.4",
    }
    return asyncio.run(xs.custom_functions_call(payload, udfs))


def udf_args(name: str, columns: dict[str, list[Any]], static: dict[str, Any]) -> list[Any]:
    """The UDF's arguments in its order: columns as 2-D ranges, per-call values as cells."""
    out = []
    for arg in inspect.signature(getattr(udfs, name)).parameters:
        if arg in columns:
            out.append([[v] for v in columns[arg]])
        else:
            v = static.get(arg)
            out.append(None if v is None else v if isinstance(v, list) else [[v]])
    return out


def check_grid(got: Any, where: Any) -> list[Any]:
    """No traceback or unexpected exception text, valid JSON for Excel."""
    problems = []
    json.dumps(got, allow_nan=False)
    for row in got:
        for v in row:
            if isinstance(v, str) and ("unexpected" in v or "Traceback" in v or len(v) > 1_000):
                COUNTS["tracebacks"] += 1
                problems.append((where, v[:200]))
    return problems


@pytest.mark.parametrize("name", ROW_FUNCTIONS)
@UDF_SETTINGS
@given(data=st.data())
def test_excel_one_bad_cell_never_sinks_a_column(name: str, data: st.DataObject) -> None:
    columns, static, j, always_bad, bad = draw_case(data, name, ALWAYS_BAD_EXCEL,
                                                    MAYBE_BAD_EXCEL)
    problems: list[Any] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(bridge.ERROR_STYLE_ENV, "text")  # every row's outcome readable as a cell
        alone = [excel(name, udf_args(name, {k: [v[i]] for k, v in columns.items()}, static))
                 for i in range(N_ROWS)]
        for arg in columns:
            COUNTS["excel cases"] += 1
            hostile = with_bad(columns, arg, j, bad)
            got = excel(name, udf_args(name, hostile, static))
            problems += check_grid(got, arg)
            if len(got) != N_ROWS:  # the call failed as a whole: only a per-call problem may
                if not all(len(a) == 1 and str(a[0][0]).startswith("#VALUE! ") for a in alone):
                    COUNTS["wrong numbers"] += 1
                    problems.append((arg, "column sank", got[0][0][:200]))
                continue
            for i in range(N_ROWS):
                want = excel(name, udf_args(name, {k: [v[i]] for k, v in hostile.items()},
                                            static))[0] if i == j else alone[i][0]
                if i == j and always_bad and not str(got[i][0]).startswith("#"):
                    COUNTS["wrong numbers"] += 1
                    problems.append((arg, "bad cell gave no error", got[i]))
                if not all(map(same, got[i], want)):
                    COUNTS["wrong numbers"] += 1
                    problems.append((arg, i, got[i], want))
                elif isinstance(got[i][0], float):
                    COUNTS["good rows computed"] += 1
                    row = {k: [bridge.clean_cell(v[i])] for k, v in hostile.items()}
                    core = core_rows(name, row, static)[0]
                    if not all(map(same, got[i], np.ravel(core).tolist())):
                        COUNTS["wrong numbers"] += 1  # Excel and the core disagree
                        problems.append((arg, i, "Excel", got[i], "core", core))
        # the same column as Office.js shows it: real error values, no call-wide failure
        for arg in columns:
            mp.setenv(bridge.ERROR_STYLE_ENV, "values")
            hostile = with_bad(columns, arg, j, bad)
            try:
                got = excel(name, udf_args(name, hostile, static))
            except xlwings.XlwingsError as exc:
                if "unexpected" in str(exc):
                    COUNTS["tracebacks"] += 1
                    problems.append((arg, str(exc)[:200]))
                continue
            problems += check_grid(got, arg)
    assert not problems, (name, repr(bad)[:50], problems[:3])


@pytest.mark.parametrize("name", list(lv.CATALOGUE))
def test_excel_hostile_values_and_shapes_never_escape(name: str) -> None:
    """Every hostile cell and range shape in every argument, both error styles: valid JSON, no
    traceback or unexpected exception text, only XlwingsError raised (a one-cell #VALUE!)."""
    params = list(inspect.signature(getattr(udfs, name)).parameters)
    valid = VALID_CALLS.get(name, {})
    base = [[[valid[p]]] if p in valid else [[1.0]] for p in params]
    core_params = inspect.signature(lv.CATALOGUE[name]).parameters
    base = [b if core_params[p].default is inspect.Parameter.empty or p in valid else None
            for p, b in zip(params, base, strict=True)]
    problems: list[Any] = []
    with pytest.MonkeyPatch.context() as mp:
        for style in ("text", "values"):
            mp.setenv(bridge.ERROR_STYLE_ENV, style)
            for pos, arg in enumerate(params):
                for value in [*ALWAYS_BAD_EXCEL, *MAYBE_BAD_EXCEL]:
                    # one cell in values style (a failure raises), a column in text style
                    shaped = [[value]] if style == "values" else [[value], [value], [1.0]]
                    problems += _one_excel_case(name, base, pos, shaped, (arg, value))
                for shaped in SHAPES_EXCEL:
                    problems += _one_excel_case(name, base, pos, shaped, (arg, "shape"))
    assert not problems, (name, problems[:5])


def _one_excel_case(name: str, base: list[Any], pos: int, value: Any, where: Any) -> list[Any]:
    COUNTS["excel cases"] += 1
    args = list(base)
    args[pos] = value
    try:
        got = excel(name, args)
    except xlwings.XlwingsError as exc:
        text = str(exc)
        if "unexpected" in text or "Traceback" in text or len(text) > 1_000:
            COUNTS["tracebacks"] += 1
            return [(where, text[:200])]
        return []
    except Exception as exc:
        COUNTS["tracebacks"] += 1
        return [(where, f"{type(exc).__name__}: {exc}"[:200])]
    return check_grid(got, where)


ONE_COLUMN = {
    "ACCOUNT_SHOCK": {"sides": ["long", "short"], "qtys": [1, 10],
                      "entry_prices": [20_000, 1_500], "mark_prices": [21_000, 1_400],
                      "wallet_balance": 2_000},
    "FUNDING_FROM_HISTORY": {"side": "long", "qty": 2, "times": [0, 1 / 3, 2 / 3],
                             "rates": [1e-4] * 3, "marks": [50e3, 51e3, 49e3]},
}


BAD_IN_RANGE = [None, "abc", float("nan"), -1e308, "#N/A", "x" * 100_000]


@pytest.mark.parametrize("name", RANGED)
@pytest.mark.parametrize("bad", BAD_IN_RANGE)
def test_a_bad_cell_in_a_range_fails_its_column_only(name: str, bad: Any) -> None:
    """Two columns (accounts, positions) side by side: a hostile cell in the first column's
    range leaves that column an error or blank and the second column its own answer."""
    fn = lv.CATALOGUE[name]
    one = ONE_COLUMN[name]
    alone = fn(**one)
    for arg, value in one.items():
        if not isinstance(value, list):
            continue
        block = {k: [[x, x] for x in v] if isinstance(v, list) else v for k, v in one.items()}
        block[arg] = [[bad, x] if i == 0 else [x, x] for i, x in enumerate(value)]
        COUNTS["core cases"] += 1
        try:
            res = fn.rows(**block)
        except (lv.InputError, lv.PositionError):
            continue  # refused as a whole, with a named message: allowed
        assert res.values.shape == (2,)
        assert res.values[1] == pytest.approx(alone, rel=1e-12), (name, arg, bad)
        if res.errors[0] is not None:
            assert len(res.errors[0]) < 400
        COUNTS["good rows computed"] += 1


@pytest.mark.parametrize("name", RANGED)
def test_a_per_call_argument_given_as_a_range_is_refused(name: str) -> None:
    fn = lv.CATALOGUE[name]
    per_call = [a for a, rule in fn.rules.items() if rule.per_call]
    for arg in per_call:
        with pytest.raises(lv.InputError, match=f"{arg} must be one value for the whole call"):
            fn(**ONE_COLUMN[name], **{arg: [["either", "up"]]})


_CORPUS_KEYS = {
    *(_ran_key(test, {"name": n}) for test in ("test_core_one_bad_cell_never_sinks_a_column",
                                                "test_excel_one_bad_cell_never_sinks_a_column")
      for n in ROW_FUNCTIONS),
    *(_ran_key(test, {"name": n}) for test in ("test_core_raises_only_named_errors",
                                                "test_excel_hostile_values_and_shapes_never_escape")
      for n in lv.CATALOGUE),
    _ran_key("test_core_rows_never_raise_for_a_row", {}),
    *(_ran_key("test_a_bad_cell_in_a_range_fails_its_column_only", {"name": n, "bad": b})
      for n in RANGED for b in BAD_IN_RANGE),
}
"""Every corpus test with its parameters: the counts are whole once all of them ran."""


def test_the_corpus_is_not_vacuous(tmp_path: Path) -> None:
    """Run last in this module: good rows were computed and nothing went wrong. When this
    process did not run the whole corpus (this test alone, under -k, or part of the module on
    another xdist worker), the corpus runs in a pytest of its own and its counts are read."""
    counts = COUNTS
    if not _CORPUS_KEYS <= RAN:
        path = tmp_path / "counts.json"
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__,
             "-k", "not test_the_corpus_is_not_vacuous"],
            env={**os.environ, "LEVERAGE_HOSTILE_COUNTS": str(path)}, cwd=Path(__file__).parents[1],
            capture_output=True, text=True, check=False,
        )
        assert done.returncode == 0, done.stdout[-3000:]
        assert path.exists(), "the corpus run wrote no counts"
        counts = collections.Counter(json.loads(path.read_text()))
    assert counts["good rows computed"] > 100
    assert counts["tracebacks"] == 0
    assert counts["wrong numbers"] == 0

