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


def test_rule_break_text_fits_its_column():
    """The sample's rule-break texts, as the core replays them (three rules at once), fit
    the column (a width in characters of the default font)."""
    width = L.JOURNAL_EVENTS.columns[L.JOURNAL_EVENTS.index("rule_breaks")].width
    positions, events, rules = templates.sample_journal()
    texts = replay(positions, events, AdjustmentRule.build(**rules)).columns["rule_breaks"]
    widest = max(texts, key=len)
    assert widest.count(SEPARATOR) == 2 and width >= len(widest), (width, widest)


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
