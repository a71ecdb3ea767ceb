"""The journal's Charts tab in a local workbook, recomputed by LibreOffice after a sync: each
slot plots its position's open rows only (closed rows and other positions are #N/A, which the
chart spans), rows added later appear, and the equity curve runs in close-date order."""

from __future__ import annotations

import math
from pathlib import Path

import openpyxl
import pytest
from xl_engine import libreoffice_available, recalc_with_libreoffice

import leverage_sheets as sb
from leverage.layout import JOURNAL_EVENTS, JOURNAL_SUMMARY
from leverage_sheets.backend import serial_date
from leverage_sheets.charts import EQUITY_ROWS, data_column, slot_count, slot_row

pytestmark = pytest.mark.skipif(not libreoffice_available(), reason="needs LibreOffice")


def _column(ws: openpyxl.worksheet.worksheet.Worksheet, col: int, rows: int) -> list[object]:
    return [ws.cell(row=r, column=col).value for r in range(2, rows + 2)]


def test_local_chart_data_plots_open_rows_per_position_and_grows(tmp_path: Path) -> None:
    path = tmp_path / "j.xlsx"
    book = sb.open_local(path)
    sb.init(book, "journal", sample=True)
    sb.sync(book, "journal")
    # a row typed after init: the chart data must take it in
    wb = openpyxl.load_workbook(path)
    events = wb["Events"]
    last = events.max_row
    pid = wb["Charts"]["A2"].value
    open_rows = [r for r in range(2, last + 1) if events.cell(row=r, column=2).value == pid]
    closed = any(events.cell(row=r, column=3).value == "close" for r in open_rows)
    if closed:  # add to a position that is still open instead
        pid = wb["Charts"]["A42"].value
        open_rows = [r for r in range(2, last + 1) if events.cell(row=r, column=2).value == pid]
    new = last + 1
    # a small funding payment: it is paid from the margin, and the open position (BTC-INV,
    # margined in BTC) stays open
    for c, v in enumerate([serial_date(events.cell(row=open_rows[-1], column=1).value) + 0.5,
                           pid, "funding", None, None, -0.0001, None, "later row"], start=1):
        events.cell(row=new, column=c).value = v
    wb.save(path)
    sb.sync(book, "journal")

    out = recalc_with_libreoffice(path, tmp_path / "lo")
    got = openpyxl.load_workbook(out, data_only=True)
    synced = openpyxl.load_workbook(path, data_only=True)["Events"]
    charts = got["Charts"]
    idx = {k: JOURNAL_EVENTS.index(k) + 1 for k in
           ("position_id", "qty_open", "effective_leverage", "liq_distance")}
    positions = [r[0] for r in got["Positions"].iter_rows(min_row=2, values_only=True) if r[0]]
    for k in range(slot_count(len(positions))):
        pick = charts.cell(row=slot_row(k) + 1, column=1).value
        first = data_column(k)
        xs, levs, dists = (_column(charts, first + j, new) for j in range(3))
        for r in range(2, new + 1):
            row = {key: synced.cell(row=r, column=c).value for key, c in idx.items()}
            shown = (pick is not None and row["position_id"] == pick
                     and isinstance(row["qty_open"], float | int) and row["qty_open"] > 0
                     and isinstance(row["effective_leverage"], float | int))
            i = r - 2
            if not shown:  # other positions, closed rows, blank slots: no point
                assert (xs[i], levs[i], dists[i]) == ("#N/A", "#N/A", "#N/A"), (k, r)
                continue
            assert math.isclose(xs[i], serial_date(synced.cell(row=r, column=1).value))
            assert math.isclose(levs[i], row["effective_leverage"])
            assert math.isclose(dists[i], row["liq_distance"])
    # the row added after init is plotted in its position's slot
    k = positions.index(pid)
    assert isinstance(_column(charts, data_column(k) + 1, new)[new - 2], float)


def test_local_equity_curve_runs_in_close_date_order(tmp_path: Path) -> None:
    path = tmp_path / "j.xlsx"
    book = sb.open_local(path)
    sb.init(book, "journal", sample=True)
    sb.sync(book, "journal")
    out = recalc_with_libreoffice(path, tmp_path / "lo")
    got = openpyxl.load_workbook(out, data_only=True)
    charts = got["Charts"]
    positions = [r[0] for r in got["Positions"].iter_rows(min_row=2, values_only=True) if r[0]]
    slots = slot_count(len(positions))
    currency = charts.cell(row=slot_row(slots) + 1, column=1).value
    summary = [dict(zip(JOURNAL_SUMMARY.keys(), row, strict=False))
               for row in got["Summary"].iter_rows(min_row=2, values_only=True) if row[0]]
    want = sorted((serial_date(p["closed"]), p["equity_after"]) for p in summary
                  if p["currency"] == currency and isinstance(p["equity_after"], float | int))
    assert want, "the sample closes a position"
    xs = _column(charts, data_column(slots), EQUITY_ROWS)
    ys = _column(charts, data_column(slots) + 1, EQUITY_ROWS)
    points = [(x, y) for x, y in zip(xs, ys, strict=True) if x != "#N/A"]
    assert all(x == "#N/A" and y == "#N/A" for x, y in zip(xs[len(points):], ys[len(points):],
                                                          strict=True))
    assert len(points) == len(want)
    for (x, y), (wx, wy) in zip(points, want, strict=True):
        assert abs(x - wx) < 1e-5 and math.isclose(y, wy)
