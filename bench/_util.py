"""Timing helpers shared by the benchmarks: medians of repeated runs, printed as a table."""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
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


def interleaved(
    fns: dict[str, Callable[[], Any]], rounds: int = 9, warmup: int = 1
) -> dict[str, list[float]]:
    """Wall times of each ``fn()`` over ``rounds`` rounds, run A, B, A, B, ...

    Alternating the candidates inside one loop exposes them to the same machine load (other
    processes on a shared 2-core box come and go), so their ratio is fair even when the
    absolute times drift. Garbage collector off while timing.
    """
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    gc_was_on = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for name, fn in fns.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    finally:
        if gc_was_on:
            gc.enable()
    return times


def spread(times: list[float]) -> str:
    """``median (min–max)`` in ms, the way the tables show a timing."""
    return (f"{statistics.median(times) * 1e3:,.2f} ms "
            f"({min(times) * 1e3:,.2f}–{max(times) * 1e3:,.2f})")


def peak_bytes(fn: Callable[[], Any]) -> int:
    """Peak memory allocated while ``fn()`` runs, above what was allocated before it.

    numpy reports its data buffers to tracemalloc, so this counts the temporaries of a
    vectorized call, not only Python objects. Tracing slows the call: never time under it.
    """
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
        del result
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return peak - before


# Targets of the run, in the order the sections met them, for the summary at the end.
TARGETS: list[list[str]] = []


def verdict(ratio: float, limit: float) -> str:
    """``met`` when ``ratio <= limit``, else ``missed``."""
    return "met" if ratio <= limit else "missed"


def record_target(target: str, measured: str, result: str, note: str = "") -> None:
    """Keep one target's outcome (``met``, ``missed``, ``reported``, ``skipped``) for
    :func:`targets_summary`."""
    TARGETS.append([target, measured, result, note])


def targets_summary() -> str:
    """Every target the sections of this run measured, with its figure and met/missed."""
    return table("Targets of this run (issue 15)", ["target", "measured", "result", "note"],
                 TARGETS or [["(no target measured: run the sections that record them)",
                              "", "", ""]])
