"""A rebalance as a trader gets it from ``sheets init`` and types into it: in Google (the
loopback fake) or in a local .xlsx file, so a sync test can run the same rows through both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
from fake_sheets import FakeSheets, make_client

import leverage_sheets as sb
from leverage import layout as L

Grid = list[list[Any]]


def typed_rebalance(kind: str, fake: FakeSheets, folder: Path, account: list[Any],
                    positions: Grid) -> tuple[Any, Callable[[str], Grid]]:
    """Lay a rebalance out (``kind``: "google" or "xlsx"), type ``account`` down the Account
    sheet's column B from its first input row and ``positions`` on the Positions sheet from
    its first data row (``None`` or "" is a blank cell). Returns the backend to sync and a
    reader of one tab's values after it."""
    acc, pos = L.REBALANCE_ACCOUNT, L.REBALANCE_POSITIONS
    if kind == "google":
        key = fake.create_spreadsheet("typed")
        backend: Any = sb.open_google(key, client=make_client(fake))
        sb.init(backend, "rebalance")
        book = make_client(fake).open_by_key(key)
        book.worksheet(acc.title).update(values=[["" if v is None else v] for v in account],
                                         range_name=f"B{L.FIRST_DATA_ROW}",
                                         value_input_option="RAW")
        book.worksheet(pos.title).update(
            values=[["" if v is None else v for v in row] for row in positions],
            range_name=f"A{L.FIRST_DATA_ROW}", value_input_option="RAW")
        return backend, lambda title: fake.values(key, title)
    path = folder / "book.xlsx"
    sb.init(sb.open_local(path), "rebalance")
    wb = openpyxl.load_workbook(path)
    for r, v in enumerate(account, start=L.FIRST_DATA_ROW):
        wb[acc.title].cell(r, 2, None if v == "" else v)
    for r, row in enumerate(positions, start=L.FIRST_DATA_ROW):
        for c, v in enumerate(row, start=1):
            wb[pos.title].cell(r, c, v)
    wb.save(path)
    return sb.open_local(path), lambda title: [
        [c.value for c in row] for row in openpyxl.load_workbook(path)[title].iter_rows()]
