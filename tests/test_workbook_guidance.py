"""The built workbooks say what to type where: an Instructions tab first, a prompt on every
typed column (one data validation per cell, a drop-down keeping its list), headers that wrap
in a row tall enough, and prices shown with enough significant digits."""

from __future__ import annotations

import csv
import shutil
import subprocess
import uuid
from pathlib import Path

import openpyxl
import pytest
from openpyxl.utils import get_column_letter
from xl_engine import libreoffice_available

import leverage_templates as templates
from leverage import layout as L
from leverage.instructions import EXAMPLES, INSTRUCTIONS, INSTRUCTIONS_SHEET, PROMPTS, TIE_RULE
from leverage_templates._book import BOLD_CHAR, LINE_HEIGHT, wrapped_lines

needs_lo = pytest.mark.skipif(not libreoffice_available(), reason="LibreOffice not installed")
TEMPLATES = ["rebalance", "journal"]


@pytest.fixture(scope="module", params=[(t, m) for t in TEMPLATES for m in L.MODES],
                ids=lambda p: "-".join(p))
def built(request, tmp_path_factory) -> tuple[str, openpyxl.Workbook]:
    template, mode = request.param
    path = tmp_path_factory.mktemp(template) / f"{template}-{mode}.xlsx"
    getattr(templates, f"build_{template}")(path, mode=mode)
    return template, openpyxl.load_workbook(path)


def _texts(ws) -> list[str]:
    return [str(c.value) for row in ws.iter_rows() for c in row if c.value is not None]


def test_the_instructions_tab_comes_first_and_says_everything(built):
    template, wb = built
    assert wb.sheetnames[0] == INSTRUCTIONS_SHEET and wb.active.title == INSTRUCTIONS_SHEET
    texts = _texts(wb[INSTRUCTIONS_SHEET])
    for heading, text in INSTRUCTIONS[template]:
        assert heading in texts and text in texts, heading
    sheets = {s.title: s for s in L.TEMPLATES[template]}
    for sheet, row in EXAMPLES[template]:
        for key in row:
            assert sheets[sheet].columns[sheets[sheet].index(key)].header in texts
    if template == "rebalance":
        assert any(TIE_RULE in t for t in texts)


def test_instruction_rows_are_tall_enough_for_their_wrapped_text(built):
    _, wb = built
    ws = wb[INSTRUCTIONS_SHEET]
    width = ws.column_dimensions["B"].width
    for row in ws.iter_rows(min_col=2, max_col=2):
        c = row[0]
        if isinstance(c.value, str) and c.alignment.wrap_text:
            lines = wrapped_lines(c.value, width)
            height = ws.row_dimensions[c.row].height or LINE_HEIGHT
            assert height >= lines * LINE_HEIGHT, (c.coordinate, lines, height)
            assert lines < 10  # the estimate is not absurdly generous


def _validations(ws, column: int, row: int) -> list:
    from openpyxl.worksheet.cell_range import CellRange

    ref = f"{get_column_letter(column)}{row}"
    return [dv for dv in ws.data_validations.dataValidation
            if any(ref in CellRange(str(r)) for r in dv.sqref.ranges)]


def test_every_typed_cell_has_one_validation_with_its_prompt(built):
    template, wb = built
    for sheet in L.TEMPLATES[template]:
        if sheet.title not in wb.sheetnames or not sheet.keys("input"):
            continue
        ws = wb[sheet.title]
        for i, col in enumerate(sheet.columns, start=1):
            if col.role == "computed":
                continue
            for row in (L.FIRST_DATA_ROW, L.FIRST_DATA_ROW + 1):
                found = _validations(ws, i, row)
                assert len(found) == 1, (sheet.title, col.key, row, len(found))
                dv = found[0]
                assert (dv.promptTitle, dv.prompt) == PROMPTS[(sheet.title, col.key)]
                assert dv.showInputMessage
                if col.choices:  # the drop-down keeps its list and still refuses typos
                    assert dv.type == "list" and dv.showErrorMessage
                    assert all(c in dv.formula1 for c in col.choices)


def test_headers_wrap_in_a_row_tall_enough(built):
    template, wb = built
    for sheet in L.TEMPLATES[template]:
        if sheet.title not in wb.sheetnames or sheet.title == L.SUMMARY_SHEET:
            continue
        ws = wb[sheet.title]
        height = ws.row_dimensions[L.HEADER_ROW].height
        for i, col in enumerate(sheet.columns, start=1):
            c = ws.cell(L.HEADER_ROW, i)
            assert c.value == col.header and c.alignment.wrap_text
            width = ws.column_dimensions[get_column_letter(i)].width
            lines = wrapped_lines(col.header, width, BOLD_CHAR)
            assert height >= lines * LINE_HEIGHT, (sheet.title, col.header, height)


def test_wrapped_lines_breaks_at_words_and_long_words():
    assert wrapped_lines("Liq. distance", 10, 1.0) == 2
    assert wrapped_lines("Position ID", 12, 1.0) == 1
    assert wrapped_lines("x" * 25, 11, 1.0) == 3  # 10 a line
    assert wrapped_lines("", 10) == 1


@needs_lo
@pytest.mark.parametrize(("fmt", "prices"), [
    (L.PRICE, {0.00001234: "0.00001234", 0.16: "0.1600", 0.137374: "0.137374",
               0.675248: "0.675248", 1.5: "1.50", 87.8894472: "87.8894",
               123.456789: "123.46", 60_000: "60,000.00", 100_502.51256: "100,502.51"}),
    # a computed (liquidation) price: a price's decimals, not the float's (issue 20, item 18)
    (L.COMPUTED_PRICE, {0.0000111111: "0.00001111", 0.678901234: "0.6789", 0.62: "0.6200",
                        2.67891: "2.68", 54_216.867469: "54,216.87"}),
], ids=["typed", "computed"])
def test_libreoffice_shows_prices_with_enough_significant_digits(tmp_path, fmt, prices):
    """The layout's price formats as LibreOffice displays them (a CSV export of the
    formatted text): SHIB, DOGE and BTC prices each readable."""
    wb = openpyxl.Workbook()
    for i, v in enumerate(prices, start=1):
        wb.active.cell(i, 1, v).number_format = fmt
    src = tmp_path / "prices.xlsx"
    wb.save(src)
    profile = tmp_path / f"profile-{uuid.uuid4().hex[:8]}"
    # token 9 "true": export the cells as shown, not their stored values
    subprocess.run([shutil.which("soffice"), f"-env:UserInstallation={profile.as_uri()}",
                    "--headless", "--norestore", "--convert-to",
                    "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,true,true",
                    "--outdir", str(tmp_path / "out"), str(src)],
                   capture_output=True, timeout=120, check=True)
    with open(tmp_path / "out" / "prices.csv", newline="") as f:
        shown = [row[0] for row in csv.reader(f)]
    assert shown == list(prices.values())


def test_every_price_column_uses_the_price_format():
    for sheets in L.TEMPLATES.values():
        for sheet in sheets:
            for col in sheet.columns:
                if col.key.endswith("price") or col.key == "price":
                    want = L.COMPUTED_PRICE if col.key == "liq_price" else L.PRICE
                    assert col.number_format == want, (sheet.title, col.key)


def test_built_workbooks_keep_the_price_format(tmp_path):
    path = Path(templates.build_rebalance(tmp_path / "r.xlsx", mode="native"))
    ws = openpyxl.load_workbook(path)[L.REBALANCE_POSITIONS.title]
    for key in ("entry_price", "mark_price", "liq_price", "exchange_liq_price"):
        cell = ws[f"{L.REBALANCE_POSITIONS.letter(key)}{L.FIRST_DATA_ROW}"]
        assert cell.number_format == (L.COMPUTED_PRICE if key == "liq_price" else L.PRICE), key
