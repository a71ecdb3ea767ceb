"""``make bench``: every benchmark in one run, printed as Markdown tables.

Benchmarks are not tests: nothing here asserts a time. Paste the output into bench/RESULTS.md.
"""

from __future__ import annotations

import os
import platform
import sys
import time

from . import (
    addin_bench,
    compare_bench,
    core_bench,
    exchange_bench,
    import_bench,
    init_bench,
    sheets_bench,
    templates_bench,
    watch_bench,
)
from ._util import targets_summary


def main() -> int:
    started = time.perf_counter()
    print(f"# Benchmarks, {time.strftime('%Y-%m-%d')}\n")
    print(f"Command: `make bench` (python -m bench). Python {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} cores.\n")
    sections = [
        core_bench.floor_vs_core,
        core_bench.vector_vs_scalar,
        core_bench.scalar_vs_plain,
        core_bench.journal_replay,
        compare_bench.vs_freqtrade_and_ccxt,
        addin_bench.one_call_vs_per_cell,
        addin_bench.workbook_recalc,
        sheets_bench.sync_requests,
        sheets_bench.local_sync,
        init_bench.init_memory,
        templates_bench.journal_build,
        import_bench.import_times,
        exchange_bench.import_requests,
        watch_bench.watch_cycle,
        targets_summary,
    ]
    only = set(sys.argv[1:])
    for section in sections:
        if only and section.__name__ not in only:
            continue
        print(section(), flush=True)
    print(f"Total bench time: {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
