"""A workbook whose cells call every Excel function, computed by the ``formulas`` engine with
the UDFs bound to leverage_addin.udfs, checked cell by cell against the core.

Each function appears twice: one formula per row (single cells) and one ArrayFormula over the
whole column (the range form), on five positions of which one is bad.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import openpyxl
import pytest
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.formula import ArrayFormula

os.environ.setdefault("XLWINGS_ON_SERVER", "true")
os.environ.setdefault("XLWINGS_LICENSE_KEY", "noncommercial")

from xl_engine import compute

import leverage as lv
from leverage_addin import bridge, udfs

SHEET = "Positions"
FIRST, LAST = 2, 6  # data rows; row 5 is the bad one
BAD_ROW = 5
TIER_TABLE = "binance:BTCUSDT"

# input columns: header -> (column letter, values of rows 2..6)
INPUTS: dict[str, tuple[str, list[Any]]] = {
    "side": ("A", ["long", "short", "long", "sideways", "short"]),
    "qty": ("B", [1, 2, 0.5, -1, 3]),
    "entry_price": ("C", [20_000, 20_000, 60_000, 20_000, 3_000]),
    "margin": ("D", [400, 1_000, 3_000, 400, 500]),
    "mark_price": ("E", [19_500, 20_500, 61_000, 20_000, 2_900]),
    "notional": ("F", [20_000, 40_000, 30_000, -5, 9_000]),
    "unrealized_pnl": ("G", [-100, -500, 500, 0, 300]),
    "target_leverage": ("H", [10, 20, 5, 10, 15]),
    "target_liq_price": ("I", [19_000, 21_000, 55_000, 19_000, 3_200]),
    "max_leverage": ("J", [20, 50, 10, 20, 25]),
    "funding_rate": ("K", [0.0001, 0.0001, -0.0002, 0.0001, 0.0003]),
    "periods": ("L", [21, 3, 90, 21, 10]),
    "equity": ("M", [10_000, 5_000, 20_000, -10, 3_000]),
    "risk_fraction": ("N", [0.01, 0.02, 0.005, 0.01, 0.01]),
    "stop_price": ("O", [19_000, 21_000, 58_000, 19_000, 3_100]),
    "gap_price": ("P", [19_000, 21_500, 55_000, 19_000, 3_300]),
    "wallet_balance": ("Q", [1_000, 2_000, 5_000, 1_000, 800]),
    "mmr": ("R", [None, 0.01, None, 0.005, 0.004]),  # blanks: the default applies
    "liq_price": ("S", [19_100, 20_900, None, 19_000, 3_150]),  # blank: none -> blank
}
TIERS_CELL = "$T$2"

# function -> the input columns it is called with (a prefix of its SPEC arguments)
CALLS: dict[str, list[str]] = {
    "EFFECTIVE_LEVERAGE": ["notional", "margin", "unrealized_pnl"],
    "NOTIONAL": ["qty", "entry_price"],
    "UNREALIZED_PNL": ["side", "qty", "entry_price", "mark_price"],
    "LIQ_PRICE": ["side", "qty", "entry_price", "margin", "mmr"],
    "BANKRUPTCY_PRICE": ["side", "qty", "entry_price", "margin"],
    "MARGIN_TO_TARGET": ["notional", "margin", "target_leverage", "unrealized_pnl"],
    "MARGIN_FOR_LIQ_PRICE": ["side", "qty", "entry_price", "target_liq_price"],
    "MAX_WITHDRAWABLE": ["notional", "margin", "unrealized_pnl", "max_leverage"],
    "LIQ_DISTANCE": ["side", "mark_price", "liq_price"],
    "CROSS_LIQ_PRICE": ["side", "qty", "entry_price", "wallet_balance"],
    "FUNDING_PAYMENT": ["side", "notional", "funding_rate"],
    "FUNDING_COST": ["side", "notional", "funding_rate", "periods"],
    "POSITION_SIZE": ["equity", "risk_fraction", "entry_price", "stop_price"],
    "GAP_LOSS": ["side", "qty", "entry_price", "margin", "gap_price"],
    "MAINT_MARGIN": ["notional", "mmr"],
    "TIER": ["tiers", "notional"],
}


def _ref(arg: str, row: int | None) -> str:
    """A cell (row given) or the whole data column (row None) of an input."""
    if arg == "tiers":
        return TIERS_CELL
    col = INPUTS[arg][0]
    return f"{col}{row}" if row else f"{col}{FIRST}:{col}{LAST}"


def build(path: Path) -> dict[str, tuple[list[str], str]]:
    """Write the workbook; return, per function, its single-cell output cells (one per row)
    and the top-left cell of its range form."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = SHEET
    for header, (col, values) in INPUTS.items():
        ws[f"{col}1"] = header
        for i, v in enumerate(values):
            if v is not None:
                ws[f"{col}{FIRST + i}"] = v
    ws["T1"] = "tiers"
    ws["T2"] = TIER_TABLE
    layout: dict[str, tuple[list[str], str]] = {}
    col = 22  # outputs from column V on: single-cell form, then range form
    for name, args in CALLS.items():
        width = 3 if name == "TIER" else 1
        single_col = get_column_letter(col)
        range_col = get_column_letter(col + width)
        last_col = get_column_letter(col + width - 1)
        ws[f"{single_col}1"] = f"{name} (cell)"
        ws[f"{range_col}1"] = f"{name} (range)"
        singles = []
        for row in range(FIRST, LAST + 1):
            formula = f"={name}({','.join(_ref(a, row) for a in args)})"
            if width == 1:
                ws[f"{single_col}{row}"] = formula
            else:  # TIER spills three columns: a one-row array formula
                target = f"{single_col}{row}:{last_col}{row}"
                ws[f"{single_col}{row}"] = ArrayFormula(target, formula)
            singles.append(f"{single_col}{row}")
        range_last = get_column_letter(col + 2 * width - 1)
        ws[f"{range_col}{FIRST}"] = ArrayFormula(
            f"{range_col}{FIRST}:{range_last}{LAST}",
            f"={name}({','.join(_ref(a, None) for a in args)})",
        )
        layout[name] = (singles, f"{range_col}{FIRST}")
        col += 2 * width
    # IFERROR around a bad row behaves as in Excel when errors are real error values
    ws["A10"] = "=IFERROR(LIQ_PRICE(A5,B5,C5,D5),\"bad row\")"
    ws["A11"] = "=IFERROR(LIQ_PRICE(A2,B2,C2,D2),\"bad row\")"
    wb.save(path)
    return layout


def expected(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Core values, messages and position-error flags, (rows, width)."""
    cols = [np.array(INPUTS[a][1], dtype=object) for a in CALLS[name] if a != "tiers"]
    if name == "TIER":
        values, errors = lv.tier_rows(TIER_TABLE, cols[0])
        errors = np.full(len(cols[0]), None, object) if errors is None else errors
        return values, np.repeat(errors[:, None], 3, 1), np.zeros(values.shape, bool)
    res = lv.CATALOGUE[name].rows(*cols)
    position = np.zeros(res.values.shape, bool) if res.position_rows is None else (
        res.position_rows)
    return res.values[:, None], res.errors[:, None], position[:, None]


def shift(cell: str, rows: int = 0, cols: int = 0) -> str:
    c, r = openpyxl.utils.cell.coordinate_from_string(cell)
    return f"{get_column_letter(openpyxl.utils.column_index_from_string(c) + cols)}{r + rows}"


def check(got: Any, want: float, error: str | None, position: bool, style: str,
          single: bool) -> str:
    """Assert one cell; return its kind ("number", "blank", "error") for the tally."""
    if error is not None:
        code = "#NUM!" if position else "#VALUE!"
        if style == "text":
            assert got == f"{code} {error}"
        elif single:  # a raised XlwingsError: #VALUE! (the message is the hover text)
            assert got == "#VALUE!"
        else:
            assert got == code
        return "error"
    if math.isnan(want):
        assert got == ""  # xlwings writes None as an empty text: the cell looks blank
        return "blank"
    assert isinstance(got, float), got
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
    return "number"


@pytest.mark.parametrize("style", ["values", "text"])
def test_workbook_formulas_match_the_core(style: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(bridge.ERROR_STYLE_ENV, style)
    path = tmp_path / "udfs.xlsx"
    layout = build(path)
    cells = compute(path, {name: getattr(udfs, name) for name in lv.CATALOGUE})
    tally = {"number": 0, "blank": 0, "error": 0}
    for name, (singles, range_top) in layout.items():
        values, errors, position = expected(name)
        width = values.shape[1]
        for i in range(LAST - FIRST + 1):
            for j in range(width):
                want, err, pos = float(values[i, j]), errors[i, j], bool(position[i, j])
                got_single = cells[(SHEET, shift(singles[i], cols=j))]
                got_range = cells[(SHEET, shift(range_top, rows=i, cols=j))]
                tally[check(got_single, want, err, pos, style, single=True)] += 1
                check(got_range, want, err, pos, style, single=False)
        assert errors[BAD_ROW - FIRST, 0] is not None, f"{name}: the bad row must be bad"
    # every function computed its good rows; the bad row is an error everywhere
    assert tally["number"] >= 16 * 3
    assert tally["blank"] >= 1  # LIQ_DISTANCE with no liquidation price
    assert cells[(SHEET, "A11")] == pytest.approx(lv.liq_price("long", 1, 20_000, 400))
    if style == "values":
        assert cells[(SHEET, "A10")] == "bad row"
    else:  # classic style: a text message, which IFERROR does not catch
        assert cells[(SHEET, "A10")].startswith("#VALUE! side must be long or short")


# ---------------------------------------------------------------- the engine helpers
def _native_book(path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Native"
    ws["A1"], ws["A2"] = 100_000, 10_000
    ws["B1"] = "=A1/A2"
    ws["B2"] = '=IFERROR(A1/0,"none")'
    ws["B3"] = "=SUMPRODUCT(A1:A2,A1:A2)"
    ws["B4"] = "=EFFECTIVE_LEVERAGE(A1,A2)"
    wb.save(path)


def test_compute_runs_native_formulas_and_unbinds_udfs(tmp_path: Path) -> None:
    path = tmp_path / "native.xlsx"
    _native_book(path)
    cells = compute(path, {"EFFECTIVE_LEVERAGE": udfs.EFFECTIVE_LEVERAGE})
    assert cells[("Native", "B1")] == pytest.approx(10.0)
    assert cells[("Native", "B2")] == "none"
    assert cells[("Native", "B3")] == pytest.approx(100_000**2 + 10_000**2)
    assert cells[("Native", "B4")] == pytest.approx(10.0)
    import formulas

    assert "EFFECTIVE_LEVERAGE" not in formulas.get_functions()  # registered for one call only


@pytest.mark.skipif(not __import__("xl_engine").libreoffice_available(),
                    reason="LibreOffice (soffice) is not installed: `make libreoffice`")
def test_libreoffice_recalculates_native_formulas(tmp_path: Path) -> None:
    from xl_engine import read_values, recalc_with_libreoffice

    path = tmp_path / "native.xlsx"
    _native_book(path)
    out = recalc_with_libreoffice(path, tmp_path / "lo")
    cells = read_values(out)
    assert cells[("Native", "B1")] == pytest.approx(10.0)
    assert cells[("Native", "B2")] == "none"
    assert cells[("Native", "B3")] == pytest.approx(100_000**2 + 10_000**2)
    assert cells[("Native", "B4")] == "#NAME?"  # UDFs do not exist in LibreOffice
    with pytest.raises(ValueError, match="outdir must differ"):
        recalc_with_libreoffice(path, tmp_path)
