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

from ._util import median_seconds, ms, table

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

    from addin import udfs

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
