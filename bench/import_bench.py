"""Benchmark 6: how long Excel waits for the add-in module at start-up."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

from ._util import table


def _import_seconds(module: str, runs: int = 5) -> float:
    code = (
        "import time; t = time.perf_counter(); import " + module
        + "; print(time.perf_counter() - t)"
    )
    env = dict(os.environ, XLWINGS_ON_SERVER="true", XLWINGS_LICENSE_KEY="noncommercial")
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, check=True)
        times.append(float(out.stdout.strip()))
    return statistics.median(times)


def import_times() -> str:
    """6. Cold import of the add-in (a fresh interpreter each run), with and without xlwings."""
    rows = []
    for module, note in (
        ("xlwings", "xlwings alone (Excel has it loaded already)"),
        ("leverage", "the core"),
        ("addin.udfs", "the UDF module: xlwings + core + wrappers, cold"),
    ):
        rows.append([f"`import {module}`", note, f"{_import_seconds(module) * 1e3:,.0f} ms"])
    return table("6. Import time, cold, median of 5 fresh interpreters (target: addin < 300 ms)",
                 ["import", "what", "time"], rows)
