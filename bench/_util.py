"""Timing helpers shared by the benchmarks: medians of repeated runs, printed as a table."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any


def median_seconds(fn: Callable[[], Any], repeat: int = 7, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``repeat`` runs (garbage collector off while timing)."""
    for _ in range(warmup):
        fn()
    times = []
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeat):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    finally:
        if gc_was_on:
            gc.enable()
    return statistics.median(times)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.2f} ms"


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table, so the output pastes straight into bench/RESULTS.md."""
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"
