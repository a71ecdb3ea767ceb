"""Benchmark 3: the Excel add-in path, as xlwings' Office.js runtime (xlwings Lite/Server) calls it.

xlwings registers its Office.js decorators only when XLWINGS_ON_SERVER=true is set before it is
imported, and xlwings.server wants a licence key: the noncommercial key, set here for this
benchmark process only (library code never sets it), exactly as the tests do.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import numpy as np

from ._util import median_seconds, ms, record_target, table

os.environ.setdefault("XLWINGS_ON_SERVER", "true")
os.environ.setdefault("XLWINGS_LICENSE_KEY", "noncommercial")


def _payload(func_name: str, args: list[Any]) -> dict[str, Any]:
    import xlwings

    return {
        "client": "Office.js", "version": xlwings.__version__, "func_name": func_name,
        "args": args, "caller_address": "[Book1.xlsx]Sheet1!B2", "session_id": "bench",
        "culture_info_name": "en-US", "date_format": "m/d/yyyy", "runtime": "1.4",
    }


def one_call_vs_per_cell(n: int = 10_000) -> str:
    """3. One n-row call through custom_functions_call vs n single-cell calls."""
    import xlwings.server as xs

    from leverage_addin import udfs

    rng = np.random.default_rng(3)
    qty = rng.uniform(0.01, 5, n)
    entry = rng.uniform(20_000, 80_000, n)
    margin = qty * entry / rng.uniform(2, 50, n)
    side = np.where(rng.random(n) < 0.5, "long", "short")
    cases = {
        "LIQ_PRICE": [[[s] for s in side], [[q] for q in qty], [[e] for e in entry],
                      [[m] for m in margin]],
        "MARGIN_TO_TARGET": [[[q * e] for q, e in zip(qty, entry, strict=True)],
                             [[m] for m in margin], [[5.0]]],
    }
    loop = asyncio.new_event_loop()

    def run(name: str, args: list[Any]) -> Any:
        return loop.run_until_complete(xs.custom_functions_call(_payload(name, args), udfs))

    rows = []
    for name, args in cases.items():
        result = run(name, args)
        assert len(result) == n
        whole = median_seconds(lambda name=name, args=args: run(name, args), repeat=5)
        sample = 500  # per-cell calls: time a slice and scale (linear in calls)
        cells = [[[col[i] if len(col) > 1 else col[0]] for col in args] for i in range(sample)]
        start = time.perf_counter()
        for cell_args in cells:
            run(name, cell_args)
        per_cell = (time.perf_counter() - start) * n / sample
        rows.append([name, f"{n:,}", ms(whole), f"{whole / n * 1e6:.1f} µs",
                     ms(per_cell), f"{per_cell / whole:,.0f}x"])
    loop.close()
    return table(
        "3. Excel add-in: one 10,000-row call vs 10,000 single-cell calls (target: < 50 ms)",
        ["function", "rows", "one call", "per row", "single-cell calls (scaled from 500)",
         "speed-up"],
        rows,
    )


def _journal_columns(n: int, blank: int) -> dict[str, list[Any]]:
    """Argument columns for the journal's add-in calls: ``n`` open positions (random, as
    in the section above) then ``blank`` unused rows, which the sheet hands over as ""."""
    import leverage as lv

    rng = np.random.default_rng(5)
    side = np.where(rng.random(n) < 0.5, 1.0, -1.0)
    qty = rng.uniform(0.01, 5, n)
    entry = rng.uniform(20_000, 80_000, n)
    mark = entry * rng.uniform(0.98, 1.02, n)
    margin = qty * entry / rng.uniform(2, 20, n)  # none bankrupt: what the sheet computes
    cols: dict[str, Any] = {
        "side": side, "qty": qty, "entry_price": entry, "mark_price": mark, "price": mark,
        "margin": margin, "mmr": np.full(n, 0.005), "maint_amount": np.zeros(n),
        "contract": ["linear"] * n, "notional": qty * mark,
        "unrealized_pnl": side * qty * (mark - entry),
        "liq_price": lv.liq_price(side, qty, entry, margin),
        # the Rules sheet's market for the liquidation-probability rule
        "volatility": np.full(n, 0.6), "horizon_days": np.full(n, 7.0),
    }
    return {k: [None if isinstance(v, float) and v != v else v for v in np.asarray(c).tolist()]
            + [""] * blank for k, c in cols.items()}


def _call_args(call: str, columns: dict[str, list[Any]], rows: slice) -> list[Any]:
    """The 2-D arguments of ``call`` (a column call of the journal, ``NAME(ref,...)``) for
    ``rows``, each argument taken from the column named like the core's parameter."""
    import inspect

    import leverage as lv

    name, refs = call[: call.index("(")], call[call.index("(") + 1 : -1].split(",")
    params = list(inspect.signature(lv.CATALOGUE[name]).parameters)[: len(refs)]
    return [[[v] for v in columns[p][rows]] for p in params]


def workbook_recalc(sizes: tuple[int, ...] = (100, 10_000)) -> str:
    """3b. A full recalculation of the udf journal: add-in calls made and their time through
    ``xlwings.server.custom_functions_call``, one call per cell (before) vs one array
    formula per column call (after, templates._book.ColumnCalls)."""
    import xlwings.server as xs

    from leverage_addin import udfs
    from leverage_templates import journal

    calls = journal.column_calls("udf")
    assert calls is not None
    loop = asyncio.new_event_loop()

    def run(name: str, args: list[Any]) -> Any:
        return loop.run_until_complete(xs.custom_functions_call(_payload(name, args), udfs))

    # one call per cell: every call site of a row, timed on single cells and scaled
    sample = 200
    cols = _journal_columns(sample, 0)
    per_site = {}
    for c in calls.calls:
        cells = [_call_args(c.call, cols, slice(i, i + 1)) for i in range(sample)]
        run(c.name, cells[0])
        start = time.perf_counter()
        for args in cells:
            run(c.name, args)
        per_site[c.call] = (time.perf_counter() - start) / sample
    per_row = sum(c.sites * per_site[c.call] for c in calls.calls)

    rows, after_times, after_calls = [], {}, {}
    for n in sizes:
        table_rows = n + journal.BLANK_EXTRA_ROWS
        cols = _journal_columns(n, journal.BLANK_EXTRA_ROWS)
        arg_sets = [(c.name, _call_args(c.call, cols, slice(None))) for c in calls.calls]
        for name, args in arg_sets:
            assert len(run(name, args)) == table_rows
        after = median_seconds(lambda arg_sets=arg_sets: [run(nm, a) for nm, a in arg_sets],
                               repeat=5)
        before_calls, before = calls.sites_per_row * n, per_row * n
        after_times[n], after_calls[n] = after, len(arg_sets)
        rows.append([f"{n:,}", f"{table_rows:,}", f"{before_calls:,}", ms(before),
                     f"{len(arg_sets)}", ms(after), f"{before / after:,.0f}x"])
    loop.close()
    small, big = min(sizes), max(sizes)
    same_calls = after_calls[small] == after_calls[big]
    ratio = after_times[big] / after_times[small]
    record_target(
        f"3b. add-in journal recalculation: calls do not grow with rows ({big:,} vs {small:,} "
        "events)",
        f"{after_calls[big]} vs {after_calls[small]} calls; {ms(after_times[big])} vs "
        f"{ms(after_times[small])} ({ratio:.1f}x)",
        "met" if same_calls else "missed",
        f"per-cell before: {calls.sites_per_row * big:,} calls, "
        f"{per_row * big:.1f} s",
    )
    return table(
        "3b. Add-in journal, full recalculation: calls of the add-in and their time through "
        "xlwings.server, one call per cell (before) vs one array formula per column call "
        "(after) (target: as many calls for 10,000 events as for 100)",
        ["events", "formula rows", "calls, per cell", "time, per cell (scaled from "
         f"{sample} calls per site)", "calls, per column", "time, per column (median of 5)",
         "speed-up"],
        rows,
    )
