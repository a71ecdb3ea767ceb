"""``sheets init --file`` holds a row at a time, not the workbook's cells (issue 20, item 13).

A 10,000-event journal took 1.08 GB to re-lay out, and laying out 100,000 rows went past 19 GB:
openpyxl held every cell (the Charts tab's 3,000 chart-data formulas per position, the Events
rows), and the Charts tab was first built as a grid of slots x 20 rows by 3 x slots columns.
The peaks here are tracemalloc's (deterministic for the same code and data); the figures at
10,000 and 100,000 rows are in bench/RESULTS.md (``python -m bench init_memory``).
"""

from __future__ import annotations

import gc
import re
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import leverage_sheets as sb
from bench.measure import sample_grids
from leverage_sheets.charts import chart_cells, slot_count

# 200 events: 10 positions, 12 chart slots, 36,000 chart-data formulas. Before the fix, laying
# the journal out peaked at 23.5 MB and re-laying it out at 23.8 MB (openpyxl held every
# cell); since, 3.9 MB and 5.9 MB. The bound sits between, with a 2x margin each way.
EVENTS = 200
PEAK_BOUND = 12e6


def _peak(fn: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _rows_below_header(path: Path, part: str) -> bytes:
    xml = zipfile.ZipFile(path).read(part)
    data = xml[xml.index(b"<sheetData>"):xml.index(b"</sheetData>")]
    return data[data.index(b"</row>"):]  # row 1 gets init's header styles


def test_init_of_a_journal_holds_no_sheet_of_cells(tmp_path: Path) -> None:
    path = tmp_path / "journal.xlsx"
    grids = sample_grids("journal", EVENTS)
    fresh = _peak(lambda: sb.open_local(path).lay_out("journal", grids))
    assert fresh < PEAK_BOUND, f"laying out {EVENTS} events peaked at {fresh / 1e6:.1f} MB"
    sb.sync(sb.open_local(path), "journal")
    charts = "xl/worksheets/sheet6.xml"
    before = _rows_below_header(path, charts)
    again = _peak(lambda: sb.init(sb.open_local(path), "journal"))
    assert again < PEAK_BOUND, f"re-laying out {EVENTS} events peaked at {again / 1e6:.1f} MB"
    # the chart data init streams back is what openpyxl wrote (the sync does not touch it)
    assert _rows_below_header(path, charts) == before
    book = zipfile.ZipFile(path).read(charts)
    slots = slot_count(EVENTS // 20)
    # each slot's chart data, on 1,000 rows, and each chart's "no points" note
    assert book.count(b"<f>") == slots * 3 * 1000 + slots + 1
    assert re.search(rb'<dimension ref="A1:[A-Z]+1001"/>', book)


def test_chart_cells_grow_with_positions_not_their_square() -> None:
    """The Charts tab's filled cells: slots x 3 series x 1,000 rows of formulas, the equity
    curve's 2 x 500, one header a series and two label cells a slot; never the empty grid
    (slots x 20 rows by 3 x slots columns: 5,000 positions would be 1.5 billion cells)."""
    for positions in (0, 10, 400):
        slots = slot_count(positions)
        cells = list(chart_cells([f"P{i}" for i in range(positions)], "USDT", "excel", 1000))
        filled = [c for c in cells if c[2] is not None]
        # "Position ID" each, the ids, the currency's two, an empty chart's note each
        labels = slots + positions + 2 + slots + 1
        assert len(filled) == slots * 3 * 1000 + 2 * 500 + slots * 3 + 2 + labels
        assert len(cells) == len({(r, c) for r, c, _v in cells})  # no cell twice


def test_a_tab_with_links_or_merged_cells_keeps_them_through_init(tmp_path: Path) -> None:
    """openpyxl binds a hyperlink and a merged range to their cells as it loads: such a tab is
    loaded whole (not streamed), so init keeps the trader's link, note and merge."""
    import openpyxl

    path = tmp_path / "journal.xlsx"
    sb.init(sb.open_local(path), "journal", sample=True)
    book = openpyxl.load_workbook(path)
    ws = book["Events"]
    ws["AH5"] = "see"
    ws["AH5"].hyperlink = "https://example.com/trade/5"
    ws.merge_cells("AI6:AJ7")
    ws["AI6"] = "note"
    book.save(path)
    sb.init(sb.open_local(path), "journal")
    ws = openpyxl.load_workbook(path)["Events"]
    assert (ws["AH5"].value, ws["AH5"].hyperlink.target) == ("see", "https://example.com/trade/5")
    assert ws["AI6"].value == "note"
    assert [str(r) for r in ws.merged_cells.ranges] == ["AI6:AJ7"]
