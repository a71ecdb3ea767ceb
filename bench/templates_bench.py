"""Benchmark 5: building a big journal workbook."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from ._util import table


def journal_build(n: int = 10_000) -> str:
    """5. A journal with ``n`` events (the sample's events repeated), both formula modes."""
    import leverage_templates as templates

    positions, events, rules = templates.sample_journal()
    big = [dict(events[i % len(events)]) for i in range(n)]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("native", "udf"):
            path = Path(tmp) / f"journal-{mode}.xlsx"
            times = []
            for _ in range(3):
                start = time.perf_counter()
                templates.build_journal(path, mode=mode, positions=positions, events=big,
                                        rule_values=rules)
                times.append(time.perf_counter() - start)
            times.sort()
            size = f"{path.stat().st_size / 1e6:.1f} MB"
            rows.append([mode, f"{n:,}", f"{times[1]:.2f} s", size])
    return table("5. Journal workbook build (target: 10,000 events in under 3 s)",
                 ["formulas", "events", "build time (median of 3)", "file size"], rows)
