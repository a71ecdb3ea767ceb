"""Issue 20, item 18: what the built and synced workbooks look like once printed or opened,
read from the files (openpyxl), not from pixels: liquidation prices formatted like prices
(no 8 decimals of float noise), the rule-break text in a column wide enough for it, charts
with one "Date" title, a distance axis that starts at 0 and stops at 100 % when a slot is
empty, series named by their cells, page breaks between charts, and every synced tab set to
print one page wide."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import openpyxl
import pytest

import leverage_sheets as sb
import leverage_templates as templates
from leverage import layout as L
from leverage.journal import replay
from leverage.models import AdjustmentRule
from leverage.rules import SEPARATOR

J = importlib.import_module("leverage_templates.journal")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    return templates.build_journal(tmp_path_factory.mktemp("look") / "j.xlsx", mode="native")


@pytest.fixture(scope="module")
def synced(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("look-sync") / "s.xlsx"
    backend = sb.open_local(path)
    sb.init(backend, "journal", sample=True)
    sb.sync(backend, "journal")
    return path


def _chart_xml(path: Path, n: int) -> str:
    import zipfile

    with zipfile.ZipFile(path) as z:
        return z.read(f"xl/charts/chart{n}.xml").decode()


def _shown(fmt: str, value: float) -> str:
    """The decimals a price format shows for a positive ``value``: the section whose
    condition holds (at most two conditions, then the default), its digits after the point."""
    sections = fmt.split(";")
    for s in sections:
        m = re.match(r"\[<([\d.]+)\](.*)", s)
        if m is None or value < float(m[1]):
            body = s if m is None else m[2]
            return body.split(".")[1] if "." in body else ""
    raise AssertionError(fmt)


def test_liquidation_prices_show_the_decimals_of_a_price_of_their_size():
    """0.6789012 next to an entry of 0.6200 shows 4 decimals, never 8; SHIB's 0.00001234
    keeps its digits; BTC's 54,216.87 keeps 2."""
    fmt = L.JOURNAL_EVENTS.columns[L.JOURNAL_EVENTS.index("liq_price")].number_format
    assert fmt == L.REBALANCE_POSITIONS.columns[
        L.REBALANCE_POSITIONS.index("liq_price")].number_format
    assert _shown(fmt, 0.6789012) == "0000"
    assert _shown(fmt, 0.00001234) == "00000000"
    assert _shown(fmt, 54_216.87) == "00"
    assert "#" not in fmt.split(";")[1]  # no optional digits: float noise never shows


def test_rule_break_text_wraps_in_a_row_tall_enough(built):
    """The sample's texts, as the core replays them (three rule breaks at once), wrap in
    their columns, and each row is tall enough for its longest text: LibreOffice does not
    grow a row to a formula's text as it opens the file, so the text was cut off or ran
    over the next row."""
    from leverage_templates._book import LINE_HEIGHT, wrapped_lines

    positions, events, rules = templates.sample_journal()
    columns = replay(positions, events, AdjustmentRule.build(**rules)).columns
    assert max(columns["rule_breaks"], key=len).count(SEPARATOR) == 2
    ws = openpyxl.load_workbook(built)[L.JOURNAL_EVENTS.title]
    wrapped = [c for c in L.JOURNAL_EVENTS.columns if L.wraps(c)]
    assert {"rule_breaks", "warnings", "status", "reason"} <= {c.key for c in wrapped}
    tall = 0
    for i, ev in enumerate(events):
        r = L.FIRST_DATA_ROW + i
        texts = {"reason": ev.get("reason"),
                 **{k: columns[k][i] for k in ("rule_breaks", "warnings", "status")}}
        lines = max(wrapped_lines(str(t), c.width) for c in wrapped
                    if (t := texts.get(c.key)))
        for c in wrapped:
            assert ws.cell(row=r, column=L.JOURNAL_EVENTS.index(c.key) + 1).alignment.wrap_text
        if lines > 1:
            tall += 1
            assert (ws.row_dimensions[r].height or 0) >= lines * LINE_HEIGHT, (r, texts)
    assert tall >= 3


def test_rule_meanings_wrap_in_rows_tall_enough(built):
    """The Rules sheet's "What it means" texts wrap in their column and each row is tall
    enough (the probability rule's ran past the printed page)."""
    from leverage_templates._book import LINE_HEIGHT, wrapped_lines

    sheet = L.JOURNAL_RULES
    ws = openpyxl.load_workbook(built)[sheet.title]
    meaning = next(c for c in sheet.columns if c.key == "meaning")
    assert L.wraps(meaning)
    tall = 0
    for r in range(L.FIRST_DATA_ROW, ws.max_row + 1):
        cell = ws.cell(row=r, column=sheet.index("meaning") + 1)
        if ws.cell(row=r, column=1).value is None or cell.value is None:
            continue  # the blank row and the note under the rules
        assert cell.alignment.wrap_text, cell.coordinate
        lines = wrapped_lines(str(cell.value), meaning.width)
        if lines > 1:
            tall += 1
            assert (ws.row_dimensions[r].height or 0) >= lines * LINE_HEIGHT, cell.value
    assert tall >= 1


def _wrapped_rows(path: Path) -> dict[int, int]:
    """Row -> lines its longest wrapped text needs at the file's own column widths, for each
    Events row with a text in a wrapped column; and asserts the sync's (computed) wrapped
    cells with a text wrap."""
    ws = openpyxl.load_workbook(path)[L.JOURNAL_EVENTS.title]
    wrapped = [(i, c) for i, c in enumerate(L.JOURNAL_EVENTS.columns, start=1) if L.wraps(c)]
    out = {}
    for r in range(L.FIRST_DATA_ROW, ws.max_row + 1):
        lines = 0
        for i, c in wrapped:
            cell = ws.cell(row=r, column=i)
            if cell.value in (None, ""):
                continue
            width = ws.column_dimensions[cell.column_letter].width
            lines = max(lines, L.wrapped_lines(str(cell.value), width))
            if c.role == "computed":
                assert cell.alignment.wrap_text, cell.coordinate
        if lines:
            out[r] = lines
    return out


def test_a_local_sync_wraps_long_texts_in_rows_tall_enough(tmp_path):
    """`sheets sync --file` writes Status, Check and Rule breaks as the built workbooks show
    them: wrapped, each row as tall as its longest text needs (neither Excel nor LibreOffice
    grows a row to a value a program wrote: a long Status ran over the next cells on one
    line). A row whose text is short again gets its default height back; a row the trader
    made taller keeps its height."""
    from leverage_sheets.backend import Update

    path = tmp_path / "j.xlsx"
    backend = sb.open_local(path)
    sb.init(backend, "journal", sample=True)
    sb.sync(backend, "journal")
    backend.write_ranges([Update("'Events'!A20:H22", [  # three rows the replay refuses
        [45400, "BTC-L1", "add_margin", 60000, None, -5, None, None],
        [45401, "NOPE-1", "open", 100, 1, 10, None, None],
        [45402, "ETH-S1", "withdraw_margin", 3500, None, 99999, None, None]])])
    sb.sync(backend, "journal")
    ws = openpyxl.load_workbook(path)[L.JOURNAL_EVENTS.title]
    status = L.JOURNAL_EVENTS.index("status") + 1
    assert all(len(ws.cell(row=r, column=status).value) > 50 for r in (20, 21, 22))
    need = _wrapped_rows(path)
    assert {20, 21, 22} <= {r for r, n in need.items() if n > 1}
    for r, lines in need.items():
        height = ws.row_dimensions[r].height
        if lines > 1:
            assert height is not None and height >= lines * L.LINE_HEIGHT, (r, lines, height)
    breaks = L.JOURNAL_EVENTS.index("rule_breaks") + 1
    assert sum(bool(ws.cell(row=r, column=breaks).value) for r in need) >= 4
    # the trader clears row 20's event, makes row 21 taller by hand and mends its id
    backend.write_ranges([Update("'Events'!A20:H20", [[None] * 8])])
    _set_row_height(path, 21, 120)
    backend.write_ranges([Update("'Events'!B21:B21", [["NOPE-2"]])])
    sb.sync(backend, "journal")
    ws = openpyxl.load_workbook(path)[L.JOURNAL_EVENTS.title]
    assert "NOPE-2" in ws.cell(row=21, column=status).value  # the row was written again
    assert ws.row_dimensions[20].height is None  # one line again: the default height
    assert ws.row_dimensions[21].height == 120  # the trader's, taller than needed


def _set_row_height(path: Path, row: int, points: float) -> None:
    """Give a row of the Events sheet a height of its own, as the trader dragging it would."""
    import zipfile

    from leverage_sheets.xlsx_package import Package

    part = Package(path.read_bytes(), "j").sheets[L.JOURNAL_EVENTS.title]
    with zipfile.ZipFile(path) as src:
        members = {i.filename: src.read(i) for i in src.infolist()}
    xml = re.sub(rb'\s(?:ht|customHeight)="[^"]*"', b"", members[part].split(
        f'<row r="{row}"'.encode(), 1)[1].split(b">", 1)[0])
    head, rest = members[part].split(f'<row r="{row}"'.encode(), 1)
    rest = rest.split(b">", 1)[1]
    members[part] = (head + f'<row r="{row}"'.encode() + xml
                     + f' ht="{points:g}" customHeight="1">'.encode() + rest)
    with zipfile.ZipFile(path, "w") as out:
        for name, data in members.items():
            out.writestr(name, data)


def test_rebalance_check_text_wraps_in_a_row_tall_enough(tmp_path):
    """P4's Check (the cross target note, ~150 characters) wraps in a row sized for it."""
    from leverage.portfolio import rebalance
    from leverage_templates._book import LINE_HEIGHT, wrapped_lines

    path = templates.build_rebalance(tmp_path / "r.xlsx", mode="native")
    ws = openpyxl.load_workbook(path)[L.REBALANCE_POSITIONS.title]
    rows, wallet, free = templates.sample_portfolio()
    checks = rebalance(rows, wallet, free).columns["warnings"]
    i = max(range(len(rows)), key=lambda j: len(checks[j] or ""))
    col = L.REBALANCE_POSITIONS.columns[L.REBALANCE_POSITIONS.index("warnings")]
    lines = wrapped_lines(checks[i], col.width)
    cell = ws.cell(row=L.FIRST_DATA_ROW + i, column=L.REBALANCE_POSITIONS.index("warnings") + 1)
    assert lines >= 3 and cell.alignment.wrap_text
    assert ws.row_dimensions[L.FIRST_DATA_ROW + i].height >= lines * LINE_HEIGHT


def test_money_shows_two_decimals_with_its_sign_and_coin_rows_eight():
    """769.725833 USDT shows 769.73: one fixed format (no size condition: LibreOffice drops
    the minus sign of a small negative amount in a conditional section), the minus written;
    the coin-margined rows (BTC) switch to 8 decimals by a conditional format."""
    for sheet in (L.JOURNAL_EVENTS, L.JOURNAL_SUMMARY, L.SUMMARY_TOTALS):
        for c in sheet.columns:
            if c.role == "computed" and c.number_format.startswith("#,##0"):
                assert c.number_format == L.MONEY == "#,##0.00;-#,##0.00", (sheet.title, c.key)
    assert "[" not in L.MONEY and "[" not in L.COIN_MONEY
    assert L.COIN_MONEY.split(";")[0].split(".")[1] == "0" * 8
    formula, keys = L.coin_money(L.SUMMARY_TOTALS)
    assert keys == ("expectancy", "total_net_pnl")
    assert f"${L.SUMMARY_TOTALS.letter('currency')}2" in formula


def _coin_rules(ws) -> dict[str, str]:
    """Each conditional format's ranges -> its number format, for those that set one."""
    out = {}
    for cf in ws.conditional_formatting:
        for rule in cf.rules:
            if rule.dxf is not None and rule.dxf.numFmt is not None:
                out[str(cf.sqref)] = rule.dxf.numFmt.formatCode
    return out


@pytest.mark.parametrize("which", ["built", "synced"])
def test_workbooks_show_coin_money_at_eight_decimals(which, request):
    wb = openpyxl.load_workbook(request.getfixturevalue(which))
    for sheet in (L.JOURNAL_EVENTS, L.JOURNAL_SUMMARY, L.SUMMARY_TOTALS):
        rules = _coin_rules(wb[sheet.title])
        _formula, keys = L.coin_money(sheet)
        ref = next(r for r in rules if r.startswith(f"{sheet.letter(keys[0])}2:"))
        assert rules[ref] == L.COIN_MONEY
        assert {part.split(":")[0] for part in ref.split()} == {f"{sheet.letter(k)}2"
                                                                  for k in keys}


def test_position_chart_has_one_date_title_and_a_bounded_distance_axis(built):
    xml = _chart_xml(built, 2)  # chart1 is the equity curve
    assert xml.count("<a:t>Date</a:t>") == 1
    # the distance axis (id 200) crosses its own hidden x axis, and shows 0 to 100 %
    axes = re.findall(r"<valAx>(.*?)</valAx>", xml)
    dist = next(a for a in axes if '<axId val="200"/>' in a)
    assert '<min val="0"/>' in dist and '<max val="1"/>' in dist
    hidden = [a for a in axes if '<delete val="1"/>' in a]
    assert len(hidden) == 1 and "<title>" not in hidden[0]


def test_equity_chart_series_are_named_by_their_cells(built):
    xml = _chart_xml(built, 1)
    assert "openpyxl" not in xml
    assert xml.count("<strRef>") >= 3


def test_built_charts_sheet_breaks_pages_between_charts(built):
    ws = openpyxl.load_workbook(built)[J.CHARTS_SHEET]
    breaks = [b.id for b in ws.row_breaks.brk]
    assert breaks and all((b + 1 - J.slot_row(0)) % (2 * J.SLOT_ROWS) == 0 for b in breaks)


def test_synced_tabs_print_one_page_wide_with_breaks_between_charts(synced):
    from leverage_sheets import charts

    wb = openpyxl.load_workbook(synced)
    for ws in wb.worksheets:
        if ws.sheet_state != "visible":
            continue
        assert ws.sheet_properties.pageSetUpPr.fitToPage, ws.title
        assert (ws.page_setup.fitToWidth, ws.page_setup.fitToHeight) == (1, 0), ws.title
        assert ws.page_setup.orientation == "landscape", ws.title
    breaks = [b.id for b in wb[J.CHARTS_SHEET].row_breaks.brk]
    assert breaks and all((b + 1 - charts.slot_row(0)) % charts.SLOT_ROWS == 0
                          for b in breaks)


def test_synced_distance_charts_show_0_to_100_percent(synced):
    """An empty slot's liquidation-distance chart shows 0-100 %, not the app's 0-1200 %."""
    import zipfile

    with zipfile.ZipFile(synced) as z:
        xmls = [z.read(n).decode() for n in z.namelist() if n.startswith("xl/charts/chart")]
    dist = [x for x in xmls if "liquidation distance" in x]
    assert dist and all('<min val="0"/>' in x and '<max val="1"/>' in x for x in dist)


def test_google_layout_wraps_texts_and_draws_charts_from_zero_with_a_note_when_empty():
    """Through the fake Google server: the text columns wrap on every data row, the position
    charts' axes start at 0 with the top left to Google (EXPLICIT without a max: scaled to
    the data, not a fixed 0-1200 %), and each slot has a note cell saying when its chart has
    no point."""
    from fake_sheets import FakeSheets, make_client

    from leverage_sheets.charts import EMPTY_NOTES, slot_count, slot_row

    with FakeSheets() as fake:
        key = fake.create_spreadsheet("look")
        sb.init(sb.open_google(key, client=make_client(fake)), "journal", sample=True)
        requests = fake.batch_requests(key)
        ids = {t: fake.sheet_properties(key, t)["sheetId"] for t in ("Events", "Charts")}
        charts = fake.charts(key, "Charts")
        values = fake.values(key, "Charts")
        formulas = [fake.is_formula(key, "Charts", f"A{slot_row(k) + 2}") for k in range(3)]
    wrapped = {(r["repeatCell"]["range"]["startColumnIndex"])
               for r in requests if "repeatCell" in r
               and r["repeatCell"]["range"]["sheetId"] == ids["Events"]
               and r["repeatCell"]["range"].get("startRowIndex") == 1
               and r["repeatCell"]["cell"]["userEnteredFormat"].get("wrapStrategy") == "WRAP"}
    assert wrapped == {i for i, c in enumerate(L.JOURNAL_EVENTS.columns) if L.wraps(c)}
    positions = 3
    slots = slot_count(positions)
    assert len(charts) == slots + 1
    for chart in charts[:slots]:
        for axis in chart["spec"]["basicChart"]["axis"]:
            if axis["position"] != "BOTTOM_AXIS":
                assert axis["viewWindowOptions"] == {"viewWindowMin": 0,
                                                     "viewWindowMode": "EXPLICIT"}
    assert all(formulas)
    notes = [values[slot_row(k) + 1][0] for k in range(slots)]
    assert all(EMPTY_NOTES[0] in str(n) for n in notes), notes


@pytest.fixture(scope="module")
def synced_pdf(synced, tmp_path_factory) -> tuple[int, str]:
    """The synced sample journal printed by headless LibreOffice as it is (no print area
    trimmed): its page count and text."""
    import shutil
    import subprocess

    if not all(shutil.which(t) for t in ("soffice", "pdfinfo", "pdftotext")):
        pytest.skip("needs LibreOffice and poppler")
    out = tmp_path_factory.mktemp("look-pdf")
    profile = (out / "profile").as_uri()
    subprocess.run(["soffice", f"-env:UserInstallation={profile}", "--headless", "--norestore",
                    "--convert-to", "pdf", "--outdir", str(out), str(synced)],
                   capture_output=True, timeout=300, check=True)
    pdf = out / (synced.stem + ".pdf")
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    pages = int(re.search(r"^Pages:\s+(\d+)", info.stdout, re.M)[1])
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout
    return pages, text


def test_synced_journal_prints_a_page_a_tab_and_a_chart_slot_a_page(synced_pdf):
    """29 pages before: Instructions, Positions, Events, Summary and Rules a page each, then
    the Charts tab one slot (leverage and distance charts side by side) a page, and the
    equity curve: 5 + 5 slots + 1 = 11 for the sample's 3 positions."""
    pages, _text = synced_pdf
    assert pages == 5 + 5 + 1


def test_synced_journal_prints_money_at_two_decimals_and_coin_at_eight(synced_pdf):
    """As printed: the USDT expectancy 1,145.405 shows 1,145.40 or 1,145.41 (never 3 or more
    decimals), the BTC position's net PnL 0.00713267 whole, empty slots say so."""
    _pages, text = synced_pdf
    lines = text.splitlines()
    summary = next(line for line in lines if line.startswith("BTC-L1") and " win " in line)
    assert re.search(r"\b1,145\.4[01]\b", summary) and "1,145.405" not in summary
    assert not re.search(r"\d\.\d{3,}", summary), summary
    btc = next(line for line in lines if line.startswith("BTC-INV") and " open" in line)
    assert "0.00713267" in btc
    assert text.count("No points to draw") >= 2  # slots 4 and 5 have no position yet


def test_built_charts_say_when_a_slot_has_no_point(built):
    """Beside each slot's Position ID, a formula shows a note while the slot's leverage
    column of the chart data holds no number (an empty slot printed a bare grid)."""
    ws = openpyxl.load_workbook(built)[J.CHARTS_SHEET]
    data = openpyxl.load_workbook(built)[J.CHART_DATA_SHEET]
    slots = 0
    while ws.cell(row=J.slot_row(slots), column=1).value == "Position ID":
        note = ws.cell(row=J.slot_row(slots), column=3).value
        lev = openpyxl.utils.get_column_letter(2 + 2 * slots)
        assert J.EMPTY_SLOT_NOTE in note and f"COUNT('{J.CHART_DATA_SHEET}'!${lev}$2:" in note
        assert data.cell(row=1, column=2 + 2 * slots).value  # a series' header there
        slots += 1
    assert slots >= 5


@pytest.mark.parametrize("mode", ["native", "udf"])
def test_account_labels_are_not_cut_off(mode: str, tmp_path: Path) -> None:
    """The Account sheet's Item column is as wide as its longest label: the account-ratio
    rows' labels were cut off by the blank Value cell beside them in the render."""
    path = templates.build_rebalance(tmp_path / "r.xlsx", mode=mode, sample=False)
    ws = openpyxl.load_workbook(path)[L.REBALANCE_ACCOUNT.title]
    labels = [label for _, label in (*L.ACCOUNT_INPUT_ROWS, *L.ACCOUNT_OUTPUT_ROWS)]
    assert ws.column_dimensions["A"].width >= max(len(label) for label in labels)
