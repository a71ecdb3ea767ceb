"""The Excel functions of addin/, driven the way xlwings' Office.js runtime drives them.

Payloads are what xlwings Lite / xlwings Server send: every argument a 2-D list (a cell
``[[v]]``, a column ``[[v1], [v2]]``), blanks as ``""``/``None``, error cells as error
objects, runtime "1.4". Expected numbers always come from the core (leverage/), never
from a second copy of a formula.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import json
import math
import os
import sys
import types
from typing import Any

import numpy as np
import pytest

# conftest.py sets these before any import; repeated so this file also runs on its own.
os.environ.setdefault("XLWINGS_ON_SERVER", "true")
os.environ.setdefault("XLWINGS_LICENSE_KEY", "noncommercial")

import xlwings
import xlwings.server as xs

import leverage as lv
from leverage_addin import bridge, cli, udfs

TIERS_5 = [
    ["min", "max", "mmr", "maint_amount", "max_leverage"],
    [0, 50_000, 0.004, 0, 125],
    [50_000, 250_000, 0.005, 50, 100],
    [250_000, 1_000_000, 0.01, 1_300, 50],
]
NA = {"type": "Error", "basicType": "Error", "basicValue": "#N/A", "errorType": "NotAvailable"}
DIV0 = {"type": "Error", "basicType": "Error", "basicValue": "#DIV/0!", "errorType": "Div0"}
VALUE_ERROR = {"type": "Error", "errorType": "Value"}
NUM_ERROR = {"type": "Error", "errorType": "Num"}

# One valid row per function, in SPEC argument order (required arguments only here).
CASES: dict[str, list[Any]] = {
    "EFFECTIVE_LEVERAGE": [100_000, 10_000],
    "NOTIONAL": [2, 50_000],
    "UNREALIZED_PNL": ["long", 2, 50_000, 49_000],
    "LIQ_PRICE": ["long", 1, 20_000, 400],
    "BANKRUPTCY_PRICE": ["short", 1, 20_000, 400],
    "MARGIN_TO_TARGET": [100_000, 10_000, 10],
    "MARGIN_FOR_LIQ_PRICE": ["long", 1, 20_000, 19_000],
    "MAX_WITHDRAWABLE": [100_000, 12_000, 500, 10],
    "LIQ_DISTANCE": ["long", 20_000, 19_000],
    "CROSS_LIQ_PRICE": ["long", 1, 20_000, 1_000],
    "FUNDING_PAYMENT": ["long", 100_000, 0.0001],
    "FUNDING_COST": ["short", 100_000, 0.0001, 21],
    "POSITION_SIZE": [10_000, 0.01, 50_000, 49_000],
    "GAP_LOSS": ["long", 1, 20_000, 400, 19_000],
    "MAINT_MARGIN": [100_000],
    "TIER": ["binance:BTCUSDT", 100_000],
    "AVG_ENTRY": [1, 20_000, 1, 18_000],
    "LIQ_AFTER_ADD": ["long", 1, 20_000, 400, 1, 19_000],
    "MAX_OPEN": [10_000, 50_000, 20],
    "HEDGE_LIQ_PRICE": [1, 20_000, 0.5, 21_000, 1_000],
    "ACCOUNT_SHOCK": ["long", 1, 20_000, 21_000, 2_000],  # one position: single cells
    "FUNDING_FROM_HISTORY": ["long", 2, 0, 0.0001, 50_000],  # one event
    "FUNDING_APR": [0.0001, 8],
    "LIQ_PROBABILITY": ["long", 20_000, 18_000, 0.6, 7],
    "SAFE_LEVERAGE": [0.6, 1, 0.01],
}
# Functions over ranges: one answer per column of the ranges, not per row.
RANGED = ("ACCOUNT_SHOCK", "FUNDING_FROM_HISTORY")
# A column of three rows per function: each row valid, rows differ.
COLUMNS: dict[str, list[list[Any]]] = {
    "EFFECTIVE_LEVERAGE": [[100_000, 50_000, 7_500], [10_000, 13_000, 2_500]],
    "NOTIONAL": [[2, 0.5, 10_000], [50_000, 3_000, 40_000], ["linear", "linear", "inverse"]],
    "UNREALIZED_PNL": [["long", "short", "buy"], [2, 1, 3], [50_000, 20_000, 100],
                       [49_000, 21_000, 120]],
    "LIQ_PRICE": [["long", "short", "long"], [1, 1, 0.3], [20_000, 20_000, 60_000],
                  [400, 400, 6_000]],
    "BANKRUPTCY_PRICE": [["long", "short", "sell"], [1, 2, 1], [20_000, 20_000, 100],
                         [400, 300, 5]],
    "MARGIN_TO_TARGET": [[100_000, 100_000, 30_000], [10_000, 10_000, 1_000], [10, 5, 20]],
    "MARGIN_FOR_LIQ_PRICE": [["long", "short", "long"], [1, 1, 2], [20_000, 20_000, 3_000],
                             [19_000, 21_000, 2_500]],
    "MAX_WITHDRAWABLE": [[100_000, 100_000, 50_000], [12_000, 10_000, 9_000],
                         [0, 2_000, -500], [10, 10, 20]],
    "LIQ_DISTANCE": [["long", "short", "long"], [20_000, 20_000, 3_000], [19_000, 21_000, 2_000]],
    "CROSS_LIQ_PRICE": [["long", "short", "long"], [1, 1, 2], [20_000, 20_000, 3_000],
                        [1_000, 2_000, 600]],
    "FUNDING_PAYMENT": [["long", "short", "long"], [100_000, 100_000, 5_000],
                        [0.0001, 0.0001, -0.0003]],
    "FUNDING_COST": [["long", "short", "long"], [100_000, 100_000, 5_000],
                     [0.0001, 0.0001, -0.0003], [21, 3, 90]],
    "POSITION_SIZE": [[10_000, 10_000, 2_000], [0.01, 0.02, 0.005], [50_000, 50_000, 3_000],
                      [49_000, 52_000, 2_900]],
    "GAP_LOSS": [["long", "short", "long"], [1, 1, 2], [20_000, 20_000, 3_000],
                 [400, 400, 100], [19_000, 21_000, 2_990]],
    "MAINT_MARGIN": [[100_000, 5_000, 1_000_000]],
    "TIER": [[[1_000], [100_000], [600_000]]],  # tiers given as a single cell below
    "AVG_ENTRY": [[1, 2, 10_000], [20_000, 30_000, 20_000], [1, 0, 10_000],
                  [18_000, 1, 10_000], ["linear", "linear", "inverse"]],
    "LIQ_AFTER_ADD": [["long", "short", "long"], [1, 1, 2], [20_000, 20_000, 3_000],
                      [400, 400, 100], [1, 0.5, 1], [19_000, 21_000, 2_900]],
    "MAX_OPEN": [[10_000, 1_000, 500], [50_000, 20_000, 3_000], [20, 125, 5]],
    "HEDGE_LIQ_PRICE": [[1, 1, 0], [20_000, 20_000, None], [0.5, 0, 2], [21_000, None, 3_000],
                        [1_000, 1_000, 600]],
    "FUNDING_APR": [[0.0001, -0.0002, 0.0003], [8, 4, 1]],
    "LIQ_PROBABILITY": [["long", "short", "long"], [20_000, 20_000, 3_000],
                        [18_000, 22_000, None], [0.6, 0.8, 0.5], [7, 30, 1]],
    "SAFE_LEVERAGE": [[0.3, 0.6, 1.2], [1, 7, 1], [0.01, 0.05, 0.02]],
}


# ---------------------------------------------------------------------------- helpers
def payload(func_name: str, args: list[Any], runtime: str = "1.4") -> dict[str, Any]:
    return {
        "client": "Office.js", "version": xlwings.__version__, "func_name": func_name,
        "args": args, "caller_address": "[Book1.xlsx]Sheet1!B2", "session_id": "test",
        "culture_info_name": "en-US", "date_format": "m/d/yyyy", "runtime": runtime,
    }


def call(func_name: str, *args: Any, runtime: str = "1.4") -> Any:
    """One custom-function call as Excel makes it; returns what goes back to Excel."""
    return asyncio.run(xs.custom_functions_call(payload(func_name, list(args), runtime), udfs))


def cell(v: Any) -> list[list[Any]]:
    return [[v]]


def column(values: list[Any]) -> list[list[Any]]:
    return [[v] for v in values]


def assert_number(got: Any, want: float) -> None:
    if math.isnan(want):
        assert got == "", f"expected a blank cell, got {got!r}"
    else:
        assert isinstance(got, float), f"expected a number, got {got!r}"
        assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


def core_scalar(name: str, args: list[Any]) -> Any:
    return lv.CATALOGUE[name](*args)


@pytest.fixture
def text_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """Errors as short texts (classic xlwings style) instead of Excel error values."""
    monkeypatch.setenv(bridge.ERROR_STYLE_ENV, "text")


# ---------------------------------------------------------------------------- metadata
def test_metadata_lists_the_whole_catalogue_with_docs() -> None:
    meta = xs.custom_functions_meta(udfs)
    by_name = {f["name"]: f for f in meta["functions"]}
    assert set(by_name) == set(lv.CATALOGUE)
    assert udfs.__all__ == list(lv.CATALOGUE)
    for name, core in lv.CATALOGUE.items():
        f = by_name[name]
        assert f["id"] == name
        assert "\n" not in f["description"] and len(f["description"]) > 20, name
        assert not f["description"].startswith("Python function"), name
        core_params = inspect.signature(core).parameters
        assert [p["name"] for p in f["parameters"]] == list(core_params), name
        for p in f["parameters"]:
            assert not p["description"].startswith("Positional argument"), (name, p)
            optional = core_params[p["name"]].default is not inspect.Parameter.empty
            assert p.get("optional", False) == optional, (name, p["name"])
            if optional and core_params[p["name"]].default is not None:
                assert "blank = " in p["description"], (name, p)
        assert f["result"]["dimensionality"] == "matrix"


def test_excel_names_are_the_python_names_and_category_is_leverage() -> None:
    for name in lv.CATALOGUE:
        fn = getattr(udfs, name)
        assert fn.__name__ == name  # classic xlwings names the Excel function after it
        assert fn.__xlfunc__["name"] == name
    assert udfs.CATEGORY == "Leverage"


def test_default_texts_come_from_the_core() -> None:
    meta = {f["name"]: f for f in xs.custom_functions_meta(udfs)["functions"]}
    mmr = next(p for p in meta["LIQ_PRICE"]["parameters"] if p["name"] == "mmr")
    assert mmr["description"].endswith(f"blank = {lv.DEFAULT_MMR:g}")
    flag = next(p for p in meta["MAX_WITHDRAWABLE"]["parameters"] if p["name"] == "count_profit")
    assert flag["description"].endswith("blank = TRUE")


# ---------------------------------------------------------------------------- runtime
def test_runtime_is_officejs_under_test_env() -> None:
    assert bridge.excel_runtime() == "officejs"
    assert bridge.error_style() == "values"
    assert udfs.READ_OPTIONS == {"convert": "raw"}


def test_runtime_detection(monkeypatch: pytest.MonkeyPatch) -> None:
    def fake_xlwings(module: str) -> types.SimpleNamespace:
        def func() -> None: ...

        func.__module__ = module
        return types.SimpleNamespace(func=func)

    monkeypatch.setitem(sys.modules, "xlwings", fake_xlwings("xlwings.udfs"))
    assert bridge.excel_runtime() == "classic"
    assert bridge.error_style() == "text"
    monkeypatch.setitem(sys.modules, "xlwings", fake_xlwings("xlwings"))  # no-op decorators
    assert bridge.excel_runtime() == "python"
    assert bridge.error_style() == "text"
    monkeypatch.setattr(sys, "platform", "emscripten")  # xlwings Lite (Pyodide)
    assert bridge.excel_runtime() == "officejs"
    monkeypatch.setenv(bridge.ERROR_STYLE_ENV, "text")
    assert bridge.error_style() == "text"
    monkeypatch.setenv(bridge.ERROR_STYLE_ENV, "nonsense")  # ignored, not fatal
    assert bridge.error_style() == "values"


# ---------------------------------------------------------------------------- numbers
@pytest.mark.parametrize("name", [n for n in CASES if n != "TIER"])
def test_single_cell_matches_core(name: str) -> None:
    args = CASES[name]
    got = call(name, *[cell(a) for a in args])
    assert len(got) == 1 and len(got[0]) == 1
    assert_number(got[0][0], core_scalar(name, args))


@pytest.mark.parametrize("name", [n for n in COLUMNS if n not in ("TIER", *RANGED)])
def test_column_matches_core(name: str) -> None:
    cols = COLUMNS[name]
    got = call(name, *[column(c) for c in cols])
    want = lv.CATALOGUE[name](*[np.array(c, dtype=object) for c in cols])
    assert len(got) == 3 and all(len(r) == 1 for r in got)
    for row, w in zip(got, want, strict=True):
        assert_number(row[0], float(w))


def test_column_with_scalar_arguments_broadcasts() -> None:
    got = call("MARGIN_TO_TARGET", column([100_000, 50_000]), cell(10_000), cell(5))
    want = lv.margin_to_target(np.array([100_000, 50_000]), 10_000, 5)
    assert [r[0] for r in got] == pytest.approx(list(want))


def test_row_orientation_is_kept() -> None:
    got = call("NOTIONAL", [[1, 2, 3]], cell(100))
    assert got == [[100.0, 200.0, 300.0]]


def test_spec_examples() -> None:
    assert call("EFFECTIVE_LEVERAGE", cell(100_000), cell(10_000)) == [[10.0]]
    assert call("MARGIN_TO_TARGET", cell(100_000), cell(10_000), cell(10), cell(2_000)) == [
        [-2000.0]
    ]
    got = call("EFFECTIVE_LEVERAGE", cell(100_000), cell(13_000), cell(-1_000))[0][0]
    assert got == pytest.approx(100_000 / 12_000)


@pytest.mark.parametrize("blank", [None, cell(None), cell(""), cell("   ")])
def test_blank_optional_takes_the_core_default(blank: Any) -> None:
    args = [cell("long"), cell(1), cell(20_000), cell(400)]
    want = lv.liq_price("long", 1, 20_000, 400)
    assert_number(call("LIQ_PRICE", *args, blank, blank, blank, blank, blank, blank)[0][0], want)
    assert_number(call("LIQ_PRICE", *args)[0][0], want)  # optional arguments left off
    got = call("MAX_WITHDRAWABLE", cell(100_000), cell(10_000), cell(2_000), cell(10), blank)
    assert_number(got[0][0], lv.max_withdrawable(100_000, 10_000, 2_000, 10))


def test_blank_optional_cells_inside_a_column_take_the_default() -> None:
    got = call("EFFECTIVE_LEVERAGE", column([100_000, 100_000]), column([10_000, 10_000]),
               column([None, -1_000]))
    assert got[0][0] == pytest.approx(10.0)
    assert got[1][0] == pytest.approx(100_000 / 9_000)


def test_optional_arguments_given() -> None:
    got = call("LIQ_PRICE", cell("long"), cell(1), cell(20_000), cell(400), cell(0.005),
               None, None, None, cell("bybit"))
    assert got == [[lv.liq_price("long", 1, 20_000, 400, exchange="bybit")]]
    got = call("LIQ_PRICE", column(["long", "short"]), column([1, 1]), cell(60_000),
               column([6_000, 6_000]), None, None, None, TIERS_5)
    want = lv.liq_price(np.array(["long", "short"], dtype=object), 1, 60_000,
                        6_000, tiers=TIERS_5)
    assert [r[0] for r in got] == pytest.approx(list(want))
    got = call("MAINT_MARGIN", cell(100_000), None, None, cell("binance:BTCUSDT"))
    assert got == [[pytest.approx(lv.maint_margin(100_000, tiers="binance:BTCUSDT"))]]


def test_none_result_is_a_blank_cell_not_num() -> None:
    # an over-collateralised long at mmr 0 cannot be liquidated: the core says nan
    args = ["long", 1, 20_000, 25_000, 0]
    assert math.isnan(lv.liq_price(*args))
    assert call("LIQ_PRICE", *[cell(a) for a in args]) == [[""]]
    assert call("LIQ_DISTANCE", cell("long"), cell(20_000), cell("")) == [[""]]


def test_tier_returns_three_columns_per_notional() -> None:
    got = call("TIER", cell("binance:BTCUSDT"), column([1_000, 100_000, None, 600_000]))
    assert len(got) == 4 and all(len(r) == 3 for r in got)
    for row, n in zip(got, [1_000, 100_000, None, 600_000], strict=True):
        if n is None:
            assert row == ["", "", ""]  # an empty row stays empty
        else:
            assert row == pytest.approx(list(lv.tier("binance:BTCUSDT", n)))
    got = call("TIER", TIERS_5, cell(60_000))
    assert got == [pytest.approx(list(lv.tier(TIERS_5, 60_000)))]


# ---------------------------------------------------------------------------- errors
def test_one_bad_row_gives_per_row_errors_and_the_rest_computes() -> None:
    notional = column([100_000, -5, 50_000, "abc", True, NA, 80_000, None])
    margin = column([10_000, 1_000, 0, 1_000, 1_000, 1_000, None, 10_000])
    got = call("EFFECTIVE_LEVERAGE", notional, margin)
    assert got[0][0] == pytest.approx(10.0)
    assert got[1][0] == VALUE_ERROR  # notional must be >= 0
    assert got[2][0] == NUM_ERROR  # bankrupt: valid inputs, no answer
    assert got[3][0] == VALUE_ERROR  # text
    assert got[4][0] == VALUE_ERROR  # TRUE is not a number
    assert got[5][0] == {"type": "Error", "errorType": "NotAvailable"}  # #N/A passes through
    assert got[6][0] == VALUE_ERROR  # margin is required
    assert got[7][0] == VALUE_ERROR  # notional is required


def test_per_row_messages_in_text_style(text_errors: None) -> None:
    got = call("EFFECTIVE_LEVERAGE", column([100_000, -5, 50_000, None, NA]),
               column([10_000, 1_000, 0, 10_000, 1]))
    assert got[0][0] == pytest.approx(10.0)
    assert got[1][0] == "#VALUE! notional must be >= 0, got -5"
    assert got[2][0].startswith("#NUM! margin + unrealized_pnl must be > 0, got 0")
    assert got[3][0] == "#VALUE! notional is required"
    assert got[4][0] == "#N/A in an input cell"
    got = call("LIQ_PRICE", column(["long", "sideways"]), column([1, -1]), cell(20_000),
               cell(400))
    assert got[0][0] == pytest.approx(lv.liq_price("long", 1, 20_000, 400))
    assert got[1][0] == "#VALUE! side must be long or short (also buy/sell, 1/-1), got 'sideways'"


def test_single_bad_cell_raises_xlwings_error_with_the_message() -> None:
    with pytest.raises(xlwings.XlwingsError, match=r"qty must be > 0, got -1"):
        call("LIQ_PRICE", cell("long"), cell(-1), cell(20_000), cell(400))
    with pytest.raises(xlwings.XlwingsError, match=r"EFFECTIVE_LEVERAGE: margin is required"):
        call("EFFECTIVE_LEVERAGE", cell(100), cell(""))
    with pytest.raises(xlwings.XlwingsError, match="target_liq_price must be on the losing side"):
        call("MARGIN_FOR_LIQ_PRICE", cell("long"), cell(1), cell(20_000), cell(21_000))


def test_single_excel_error_cell_passes_the_error_through() -> None:
    assert call("NOTIONAL", cell(DIV0), cell(100)) == [[{"type": "Error", "errorType": "Div0"}]]


def test_whole_call_errors() -> None:
    with pytest.raises(xlwings.XlwingsError, match=r"LIQ_PRICE: tiers must be a known table"):
        call("LIQ_PRICE", cell("long"), cell(1), cell(20_000), cell(400), None, None, None,
             cell("nope:XYZ"))
    with pytest.raises(xlwings.XlwingsError, match=r"exchange must be one of"):
        call("LIQ_PRICE", cell("long"), cell(1), cell(20_000), cell(400), None, None, None,
             None, cell("ftx"))
    with pytest.raises(xlwings.XlwingsError, match=r"columns differ in length"):
        call("NOTIONAL", column([1, 2, 3]), column([1, 2]))
    with pytest.raises(xlwings.XlwingsError, match=r"TIER: tiers is required"):
        call("TIER", cell(""), cell(1_000))


def test_whole_call_errors_in_text_style(text_errors: None) -> None:
    got = call("LIQ_PRICE", cell("long"), cell(1), cell(20_000), cell(400), None, None, None,
               [[0, 50_000, 0.004], [50_000, 100_000, 0.005]])
    assert got == [["#VALUE! LIQ_PRICE: tiers must have 4 columns (min_notional, max_notional, "
                    "mmr, max_leverage) or 5 (min_notional, max_notional, mmr, maint_amount, "
                    "max_leverage), got 3"]]


def test_empty_rows_stay_blank() -> None:
    # a column selected past the end of the data: the unused rows are not errors
    got = call("MARGIN_TO_TARGET", column([100_000, None, "", None]),
               column([10_000, None, None, 5_000]), cell(5))
    assert got[0][0] == pytest.approx(10_000.0)
    assert got[1][0] == "" and got[2][0] == ""
    assert got[3][0] == VALUE_ERROR  # notional missing but margin given: an error


def test_all_blank_single_cell_is_blank() -> None:
    assert call("EFFECTIVE_LEVERAGE", cell(None), cell("")) == [[""]]


HOSTILE = [
    "abc", "", "   ", None, True, False, NA, DIV0, {"type": "Error"}, {"type": "Double",
                                                                       "basicValue": 7.0},
    45_322.0, 1e308, -1e308, 10**400, -(10**400), 0, -0.0, "#N/A", "1e5", [[1, 2], [3]],
    {"weird": object.__name__},
]


@pytest.mark.parametrize("name", list(CASES))
def test_hostile_cells_never_escape(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every hostile value in every argument: in text style nothing raises and the answer is
    JSON Excel accepts; in values style only XlwingsError (an Excel #VALUE! with a message)."""
    base = CASES[name]
    n_params = len(inspect.signature(getattr(udfs, name)).parameters)
    args_full = [cell(a) for a in base] + [None] * (n_params - len(base))
    for style in ("text", "values"):
        monkeypatch.setenv(bridge.ERROR_STYLE_ENV, style)
        for pos in range(n_params):
            for value in HOSTILE:
                for shape in ("cell", "column"):
                    args = list(args_full)
                    args[pos] = cell(value) if shape == "cell" else column([value, base[0]
                                                                           if pos == 0
                                                                           else value])
                    try:
                        got = call(name, *args)
                    except xlwings.XlwingsError as exc:
                        assert style == "values", (name, pos, value, exc)
                        assert "Traceback" not in str(exc)
                        continue
                    json.dumps(got, allow_nan=False)  # Excel gets valid JSON, no NaN/inf
                    assert isinstance(got, list) and all(isinstance(r, list) for r in got)
                    for row in got:
                        for v in row:
                            if isinstance(v, str):
                                assert "Traceback" not in v
                                assert v == "" or v.startswith("#"), (name, pos, value, v)


def test_classic_shaped_inputs_in_text_mode(text_errors: None) -> None:
    """Classic COM hands over 2-D lists with Excel errors as text and dates as datetime."""
    import datetime as dt

    got = udfs.LIQ_PRICE([["long"], ["short"], ["long"]], [[1.0], ["#N/A"], [1.0]],
                         [[20_000.0], [20_000.0], [dt.datetime(2024, 1, 31)]], [[400.0]])
    assert got[0][0] == pytest.approx(lv.liq_price("long", 1, 20_000, 400))
    assert got[1][0] == "#N/A in an input cell"
    assert got[2][0] == "#VALUE! entry_price must be a number, got datetime"


def test_direct_python_call_accepts_plain_values(text_errors: None) -> None:
    assert udfs.NOTIONAL(2, 50_000) == [[100_000.0]]
    assert udfs.NOTIONAL(np.array([1.0, 2.0]), 10.0) == [[10.0], [20.0]]


def test_ten_thousand_rows_in_one_call() -> None:
    n = 10_000
    qty = column([float(i + 1) for i in range(n)])
    # every row at 50x: 400 of margin per BTC (a fixed 400 would leave all but the first
    # rows below maintenance at entry, errors)
    margin = column([400.0 * (i + 1) for i in range(n)])
    got = call("LIQ_PRICE", column(["long"] * n), qty, cell(20_000.0), margin)
    want = lv.liq_price("long", np.arange(1, n + 1, dtype=float), 20_000,
                        400 * np.arange(1, n + 1, dtype=float))
    assert len(got) == n
    assert np.allclose([r[0] for r in got], want, rtol=1e-12)


# --------------------------------------------------------------- planning formulas
def test_planning_formulas_known_values() -> None:
    """Each planning function through Excel gives the worked example of its docs."""
    got = {
        "AVG_ENTRY": call("AVG_ENTRY", cell(1), cell(20_000), cell(1), cell(18_000)),
        "LIQ_AFTER_ADD": call("LIQ_AFTER_ADD", cell("long"), cell(1), cell(20_000), cell(400),
                              cell(1), cell(19_000), cell(400)),
        "MAX_OPEN": call("MAX_OPEN", cell(10_000), cell(50_000), cell(20), None, cell(0.0005)),
        "HEDGE_LIQ_PRICE": call("HEDGE_LIQ_PRICE", cell(1), cell(20_000), cell(0.5),
                                cell(21_000), cell(1_000)),
        "ACCOUNT_SHOCK": call("ACCOUNT_SHOCK", column(["long", "short"]), column([1, 10]),
                              column([20_000, 1_500]), column([21_000, 1_400]), cell(2_000)),
        "FUNDING_FROM_HISTORY": call("FUNDING_FROM_HISTORY", cell("long"), cell(2),
                                     column([0, 1 / 3, 2 / 3]), column([1e-4] * 3),
                                     column([50e3, 51e3, 49e3])),
        "FUNDING_APR": call("FUNDING_APR", cell(0.0001), cell(8)),
        "LIQ_PROBABILITY": call("LIQ_PROBABILITY", cell("long"), cell(20_000), cell(18_000),
                                cell(0.6), cell(7)),
        "SAFE_LEVERAGE": call("SAFE_LEVERAGE", cell(0.6), cell(1), cell(0.01)),
    }
    want = {  # the numbers of docs/FORMULAS.md, with the digits it shows
        "AVG_ENTRY": (19_000, 2), "LIQ_AFTER_ADD": (19_195.98, 2), "MAX_OPEN": (3.9604, 4),
        "HEDGE_LIQ_PRICE": (17_258.88, 2), "ACCOUNT_SHOCK": (-0.5604, 4),
        "FUNDING_FROM_HISTORY": (-30, 9), "FUNDING_APR": (0.1095, 6),
        "LIQ_PROBABILITY": (0.216, 3), "SAFE_LEVERAGE": (12.1, 1),
    }
    assert set(got) == set(lv.planning.PLANNING_FORMULAS)
    for name, grid in got.items():
        assert len(grid) == 1 and len(grid[0]) == 1, name
        assert isinstance(grid[0][0], float), (name, grid)
        value, digits = want[name]
        assert round(grid[0][0], digits) == value, (name, grid)


def test_planning_formula_bad_row_is_its_own_error_cell(text_errors: None) -> None:
    got = call("AVG_ENTRY", column([1, -1, 2]), cell(20_000), cell(1), cell(18_000))
    assert got[0][0] == 19_000 and got[2][0] == pytest.approx(58_000 / 3)
    assert got[1][0] == "#VALUE! qty must be > 0, got -1"
    got = call("LIQ_PROBABILITY", column(["long", "short"]), cell(20_000),
               column([18_000, 22_000]), column([0.6, -0.1]), cell(7))
    assert isinstance(got[0][0], float)
    assert got[1][0] == "#VALUE! volatility must be >= 0, got -0.1"
    got = call("SAFE_LEVERAGE", column([0.6, 0.6]), cell(1), column([0.01, 2]))
    assert got[1][0] == "#VALUE! max_probability must be >= 0 and <= 1, got 2"


def test_below_maintenance_everywhere_is_num_never_blank() -> None:
    # the example: a cross short whose other positions lost more than the wallet
    got = call("CROSS_LIQ_PRICE", column(["short", "short"]), cell(1), cell(100), cell(10),
               column([-200, 0]), cell(0), cell(0.005))
    assert got[0][0] == NUM_ERROR
    assert got[1][0] == pytest.approx(lv.cross_liq_price("short", 1, 100, 10, 0, 0, 0.005))
    got = call("HEDGE_LIQ_PRICE", column([0, 0]), column([None, None]), cell(1), cell(100),
               cell(10), column([-200, 0]))
    assert got[0][0] == NUM_ERROR and isinstance(got[1][0], float)
    with pytest.raises(xlwings.XlwingsError, match="below maintenance margin at every price"):
        call("CROSS_LIQ_PRICE", cell("short"), cell(1), cell(100), cell(10), cell(-200))


def test_account_shock_one_answer_per_account_column() -> None:
    # two accounts side by side, the second with one position (its second row is padding)
    sides = [["long", "short"], ["short", None]]
    qtys = [[1, 2], [10, None]]
    entries = [[20_000, 3_000], [1_500, None]]
    marks = [[21_000, 2_900], [1_400, None]]
    got = call("ACCOUNT_SHOCK", sides, qtys, entries, marks, [[2_000, 1_000]])
    want = [lv.account_shock(["long", "short"], [1, 10], [20_000, 1_500], [21_000, 1_400],
                             2_000),
            lv.account_shock("short", 2, 3_000, 2_900, 1_000)]
    assert len(got) == 1 and got[0] == pytest.approx(want)
    # direction is one value for the call: "up" leaves a fall blank
    up = call("ACCOUNT_SHOCK", sides, qtys, entries, marks, [[2_000, 1_000]], None, None,
              cell("up"))
    assert up[0][0] == "" and up[0][1] == pytest.approx(want[1])


def test_account_shock_bad_column_is_its_own_error_cell(text_errors: None) -> None:
    got = call("ACCOUNT_SHOCK", [["long", "long"]], [[1, -1]], [[20_000, 20_000]],
               [[21_000, 21_000]], [[2_000]])
    assert isinstance(got[0][0], float)
    assert got[0][1] == "#VALUE! qtys must be >= 0, got -1 (row 1, column 2)"
    # already below maintenance at today's marks: a position error
    got = call("ACCOUNT_SHOCK", cell("long"), cell(1), cell(20_000), cell(10_000), cell(100))
    assert got[0][0].startswith("#NUM! the account is already below maintenance")


def test_liq_probability_negligible_volatility_is_0_or_1_not_num() -> None:
    assert call("LIQ_PROBABILITY", cell("long"), cell(20_000), cell(1e-300), cell(1e-300),
                cell(1)) == [[0.0]]
    assert call("LIQ_PROBABILITY", cell("long"), cell(20_000), cell(18_000), cell(1e-300),
                cell(365), cell(-1)) == [[1.0]]


def test_funding_from_history_ranges_and_blank_gap() -> None:
    # two positions side by side; the second's history is shorter (padding below)
    t = [[0, 0], [1 / 3, 1 / 24], [2 / 3, None]]
    r = [[0.0001, 0.0002], [0.0001, 0.0002], [0.0001, None]]
    m = [[50_000, 3_000], [50_000, 3_000], [50_000, None]]
    got = call("FUNDING_FROM_HISTORY", [["long", "short"]], [[1, 10]], t, r, m)
    assert got == [[pytest.approx(-15.0), pytest.approx(12.0)]]
    # a blank rate inside the window: the total is blank, never 0
    got = call("FUNDING_FROM_HISTORY", cell("long"), cell(1), column([0, 1 / 3, 2 / 3]),
               column([0.0001, None, 0.0001]), column([50_000] * 3))
    assert got == [[""]]


def test_funding_from_history_bad_column_is_its_own_error_cell(text_errors: None) -> None:
    t = [[0, 0], [1 / 3, 1 / 3]]
    r = [[0.0001, 0.0001], [0.0001, 0.0001]]
    m = [[50_000, 50_000], [50_000, 50_000]]
    got = call("FUNDING_FROM_HISTORY", cell("long"), [[1, -1]], t, r, m)
    assert got[0][0] == pytest.approx(-10.0)
    assert got[0][1] == "#VALUE! qty must be > 0, got -1"


# ---------------------------------------------------------------------------- CLI
def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="leverage")
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_desktop_writes_xlwings_conf(tmp_path: Any, capsys: pytest.CaptureFixture) -> None:
    args = parse(["addin", "desktop", "--out", str(tmp_path), "--interpreter",
                  r"C:\Python311\python.exe"])
    assert args.run(args) == 0
    text = (tmp_path / "xlwings.conf").read_text()
    assert text == ('"UDF Modules","leverage_addin.udfs"\n'
                    '"Interpreter_Win","C:\\Python311\\python.exe"\n')
    out = capsys.readouterr().out
    assert "leverage_addin.udfs" in out and "Import Functions" in out
    # run again with another interpreter: the previous file is kept as a backup
    args = parse(["addin", "desktop", "--out", str(tmp_path), "--interpreter", r"D:\py.exe"])
    args.run(args)
    assert (tmp_path / "xlwings.conf.bak").read_text() == text


def test_cli_desktop_prints_the_udf_modules_value(capsys: pytest.CaptureFixture) -> None:
    args = parse(["addin", "desktop"])
    assert args.run(args) == 0
    out = capsys.readouterr().out
    assert '"UDF Modules","leverage_addin.udfs"' in out
    assert "A1: UDF Modules" in out


def test_cli_lite_files_register_the_catalogue(tmp_path: Any) -> None:
    args = parse(["addin", "lite", "--out", str(tmp_path)])
    assert args.run(args) == 0
    requirements = (tmp_path / "requirements.txt").read_text()
    assert requirements.split() == ["xlwings", "numpy", "pydantic"]
    main = types.ModuleType("main")
    exec(compile((tmp_path / "main.py").read_text(), "main.py", "exec"), main.__dict__)
    names = {f["name"] for f in xs.custom_functions_meta(main)["functions"]}
    assert names == set(lv.CATALOGUE)
    got = asyncio.run(xs.custom_functions_call(payload("EFFECTIVE_LEVERAGE", [cell(100_000),
                                                                              cell(10_000)]),
                                               main))
    assert got == [[10.0]]


def test_cli_lite_wheel_url(capsys: pytest.CaptureFixture) -> None:
    args = parse(["addin", "lite", "--wheel-url", "https://example.org/lev-0.1.0-py3-none-any.whl"])
    args.run(args)
    assert "https://example.org/lev-0.1.0-py3-none-any.whl\n" in capsys.readouterr().out


@pytest.mark.parametrize("url", ["https://example.org/lev.whl\nevil==1.0",
                                 "https://example.org/lev.whl\r", "https://ex\x00ample.org/a.whl",
                                 "https://example.org/\x1b[2Ja.whl"])
def test_cli_lite_wheel_url_refuses_control_characters(url: str, tmp_path: Any) -> None:
    args = parse(["addin", "lite", "--wheel-url", url, "--out", str(tmp_path)])
    with pytest.raises(lv.InputError, match="--wheel-url must not contain control characters"):
        args.run(args)
    assert list(tmp_path.iterdir()) == []


def test_cli_lite_over_a_main_py_that_is_not_utf8(tmp_path: Any) -> None:
    mine = b"# \xff\xfe written in another encoding\n"
    (tmp_path / "main.py").write_bytes(mine)
    args = parse(["addin", "lite", "--out", str(tmp_path)])
    assert args.run(args) == 0
    assert (tmp_path / "main.py.bak").read_bytes() == mine  # kept as it was, byte for byte
    fresh = tmp_path / "fresh"
    args = parse(["addin", "lite", "--out", str(fresh)])
    assert args.run(args) == 0
    assert (tmp_path / "main.py").read_bytes() == (fresh / "main.py").read_bytes()


def test_cli_functions_lists_everything(capsys: pytest.CaptureFixture) -> None:
    args = parse(["addin", "functions"])
    assert args.run(args) == 0
    out = capsys.readouterr().out
    for name in lv.CATALOGUE:
        assert f"={name}(" in out
    assert "=LIQ_PRICE(side, qty, entry_price, margin, [mmr]," in out


def test_cli_rejects_a_file_as_out_folder(tmp_path: Any) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x")
    args = parse(["addin", "lite", "--out", str(target)])
    with pytest.raises(lv.InputError, match="--out must be a folder"):
        args.run(args)


def test_cli_is_registered_with_the_leverage_command(capsys: pytest.CaptureFixture) -> None:
    from leverage.cli import main

    assert main(["addin", "desktop"]) == 0
    assert "leverage_addin.udfs" in capsys.readouterr().out


def test_readme_section_exists_and_names_the_setup() -> None:
    from pathlib import Path

    text = (Path(cli.__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    for needle in ("## Use it in Excel", "xlwings addin install", "Import Functions",
                   "leverage addin desktop", "leverage addin lite", "UDF Modules",
                   "=EFFECTIVE_LEVERAGE(", "requirements.txt", "LEVERAGE_EXCEL_ERRORS"):
        assert needle in text, needle
