"""Benchmark 4c: ``leverage sheets init --file`` on a journal of 10,000 and 100,000 events: wall
time and peak memory of laying it out afresh and of laying it out again over the synced file.

Each step runs in its own process (``python -m bench.init_bench STEP ...``), so its peak
resident memory (``ru_maxrss``: the interpreter, openpyxl and lxml included, not only what
tracemalloc sees) is its own. The journal is :func:`bench.measure.sample_grids`: 20 events a
position, so 500 and 5,000 positions, each with a Charts slot of 3 x 1,000 formulas.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._util import table

SIZES = (10_000, 100_000)


def _step(step: str, path: Path, rows: int) -> dict[str, float]:
    """Run one step in a fresh interpreter; its wall time and peak RSS."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.init_bench", step, str(path), str(rows)],
        capture_output=True, text=True, check=True,
        cwd=Path(__file__).resolve().parent.parent,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def _run(step: str, path: Path, rows: int) -> None:
    import leverage_sheets as sb

    from .measure import sample_grids

    grids = sample_grids("journal", rows) if step == "layout" else None
    start = time.perf_counter()
    if step == "layout":
        sb.open_local(path).lay_out("journal", grids)  # what `init --sample` does, bigger
    elif step == "sync":
        sb.sync(sb.open_local(path), "journal")
    else:
        sb.init(sb.open_local(path), "journal")  # `leverage sheets init --file` again
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KB on Linux
    print(json.dumps({"seconds": seconds, "peak": peak, "size": path.stat().st_size}))


def init_memory() -> str:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for n in SIZES:
            path = Path(folder) / f"journal-{n}.xlsx"
            fresh = _step("layout", path, n)
            _step("sync", path, n)
            again = _step("init", path, n)
            rows.append([f"{n:,}", f"{again['size'] / 1e6:.1f} MB",
                         f"{fresh['seconds']:.0f} s", f"{fresh['peak'] / 1e6:,.0f} MB",
                         f"{again['seconds']:.0f} s", f"{again['peak'] / 1e6:,.0f} MB"])
            os.unlink(path)
    return table(
        "4c. Local .xlsx `sheets init` (journal): each step in its own process, peak RSS",
        ["events", "file size", "lay out afresh", "peak memory", "init again (synced file)",
         "peak memory"],
        rows,
    )


if __name__ == "__main__":
    _run(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]))
