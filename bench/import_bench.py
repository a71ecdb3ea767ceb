"""Benchmark 6: how long Excel waits for the add-in module at start-up."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys

from ._util import table


def _import_seconds(module: str, runs: int = 5, without: str = "") -> float:
    # Hiding a package (sys.modules[name] = None) makes its import fail as if not installed.
    hide = f"import sys; sys.modules[{without!r}] = None; " if without else ""
    code = (
        hide + "import time; t = time.perf_counter(); import " + module
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
    for module, without, note in (
        ("leverage", "", "the core"),
        ("xlwings", "", "xlwings alone, matplotlib installed (xlwings imports pyplot then)"),
        ("leverage_addin.udfs", "",
         "the UDF module, cold, in this dev venv (matplotlib installed)"),
        ("xlwings", "matplotlib", "xlwings alone, as `pip install leverage-toolkit[excel]`"),
        ("leverage_addin.udfs", "matplotlib", "the UDF module, cold, as `[excel]` installs it"),
    ):
        seconds = _import_seconds(module, without=without)
        rows.append([f"`import {module}`", note, f"{seconds * 1e3:,.0f} ms"])
    return table("6. Import time, cold, median of 5 fresh interpreters (target: addin < 300 ms)",
                 ["import", "what", "time"], rows)
