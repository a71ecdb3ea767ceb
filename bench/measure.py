"""Sample spreadsheets of any size, and the naive per-cell sync the batched sync replaces
(for the bench and the tests, which point the real gspread client at the fake Sheets server).
"""

from __future__ import annotations

import random

import gspread
from gspread.utils import ValueRenderOption

from leverage.layout import TEMPLATES
from leverage_sheets.backend import Grid, parse_a1
from leverage_sheets.content import bridge_sheets, layout_rows
from leverage_sheets.engine import plan_sync
from leverage_sheets.http import RetryingHTTPClient, RetryPolicy


def sample_grids(template: str, rows: int, seed: int = 5) -> dict[str, Grid]:
    """A laid-out spreadsheet (headers, rules, account labels) with ``rows`` data rows of
    plausible, valid input: journal events (20 per position) or rebalance positions."""
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise ValueError(f"rows must be an integer >= 0, got {rows!r}")
    rng = random.Random(seed)
    grids = layout_rows(template)
    if template == "journal":
        positions_sheet, events_sheet, _summary, rules_sheet = TEMPLATES[template]
        grids[rules_sheet.title][1][1] = 10  # max_leverage
        grids[rules_sheet.title][7][1] = 0.05  # min_liq_distance
        events: Grid = []
        positions: Grid = []
        pid = 0
        while len(events) < rows:
            pid += 1
            side = rng.choice(("long", "short"))
            positions.append([f"P{pid}", "BTCUSDT", side, "linear", "USDT", 0.005, 0, None])
            price = rng.uniform(20_000, 80_000)
            margin = round(price / rng.uniform(2, 5), 2)  # 2x to 5x
            cycle = [("open", price, 1.0, margin)]
            for _ in range(18):
                price *= 1 + rng.uniform(-0.005, 0.005)
                kind = rng.choice(("add_margin", "funding", "add_margin", "withdraw_margin"))
                amount = round(rng.uniform(-5, 5), 2) if kind == "funding" else 10.0
                cycle.append((kind, round(price, 2), None, amount))
            cycle.append(("close", round(price * 1.001, 2), None, None))
            for kind, p, qty, amount in cycle[: rows - len(events)]:
                events.append([45_000 + len(events) / 24, f"P{pid}", kind, p, qty, amount, None,
                               "bench"])
        grids[positions_sheet.title] += positions
        grids[events_sheet.title] += events
    else:
        _, positions_sheet = TEMPLATES[template]
        grids["Account"][1][1] = 50_000.0
        grids["Account"][2][1] = 20_000.0
        for i in range(rows):
            entry = rng.uniform(100, 60_000)
            qty = round(10_000 / entry, 6)
            grids[positions_sheet.title].append([
                f"R{i + 1}", "XUSDT", rng.choice(("long", "short")), "linear", qty,
                round(entry, 2), round(entry * (1 + rng.uniform(-0.05, 0.05)), 2),
                round(rng.uniform(500, 3_000), 2), rng.choice(("isolated", "cross")),
                rng.choice((3, 5, 10)), None, rng.randint(1, 3), 0.005, 0,
            ])
    return grids


def naive_sync(client: gspread.Client, key: str, template: str) -> int:
    """The per-cell way: open the spreadsheet, read each tab, then ``update_cell`` for every
    computed cell. Returns the requests it sent (compare with ``sync``'s report)."""
    original = client.http_client
    counter = RetryingHTTPClient(None, original.session)  # counts; never retries
    counter.timeout = original.timeout
    client.http_client = counter.follow(RetryPolicy(max_attempts=1, timeout=None))
    try:
        book = client.open_by_key(key)
        grids = [
            book.worksheet(s.title).get_all_values(
                value_render_option=ValueRenderOption.unformatted
            )
            for s in bridge_sheets(template)
        ]
        todo = plan_sync(template, grids)
        for block in todo.targets:
            box = parse_a1(block.range)
            ws = book.worksheet(box.title)
            for r, row in enumerate(block.values, start=box.first_row):
                for c, value in enumerate(row, start=box.first_col):
                    ws.update_cell(r, c, value)
    finally:
        client.http_client = original
    return counter.attempts
