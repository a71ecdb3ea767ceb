"""Benchmark 4: a sync's API requests and wall time against the loopback Sheets server, and the
naive per-cell sync it replaces."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ._util import ms, table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def _sizes(fake: object, session: object) -> tuple[int, int]:
    """(bytes of the first read's answer, bytes of the write's body) of the requests the
    fake logged: the read sent again as it was (its answer is not logged), the write's JSON
    as the client sent it (whitespace aside)."""
    import json

    from fake_sheets import SHEETS_API

    log = fake.requests  # type: ignore[attr-defined]
    read = next(r for r in log if r.method == "GET")
    answer = session.get(SHEETS_API + read.path, params=read.query)  # type: ignore[attr-defined]
    writes = [r for r in log if r.method == "POST"]
    return len(answer.content), sum(len(json.dumps(r.body)) for r in writes)


def sync_requests() -> str:
    from fake_sheets import FakeSheets, make_client, make_session

    import leverage_sheets as sb

    from .measure import naive_sync, sample_grids

    rows = []
    with FakeSheets() as fake:
        client = make_client(fake, timeout=60)
        session = make_session(fake.url)
        for template in ("journal", "rebalance"):
            for n in (10, 1_000, 10_000):
                key = fake.create_spreadsheet("bench", sheets=sample_grids(template, n))
                backend = sb.open_google(key, client=client)
                fake.reset_log()
                start = time.perf_counter()
                report = sb.sync(backend, template)
                wall = time.perf_counter() - start
                read_bytes, write_bytes = _sizes(fake, session)
                start = time.perf_counter()
                again = sb.sync(backend, template)  # nothing changed: read only
                reread = time.perf_counter() - start
                rows.append([template, f"{n:,}", "batched sync", str(report.requests),
                             str(report.cells_written), str(report.formats_set), ms(wall),
                             f"{read_bytes / 1e6:.2f} MB", f"{write_bytes / 1e6:.2f} MB",
                             str(again.requests), ms(reread)])
            key = fake.create_spreadsheet("naive", sheets=sample_grids(template, 100))
            start = time.perf_counter()
            calls = naive_sync(client, key, template)
            wall = time.perf_counter() - start
            rows.append([template, "100", "naive: update_cell per computed cell", str(calls),
                         "", "", ms(wall), "", "", "", ""])
    return table(
        "4. Sheets sync against the loopback Sheets API server (target: <= 3 requests per sync)",
        ["template", "rows", "method", "API requests", "cells written", "formats set",
         "wall time", "read answer", "write body", "re-sync requests", "re-sync time"],
        rows,
    )


def local_sync() -> str:
    """The local .xlsx backend: read the package, compute, patch the computed cells back."""
    import tempfile

    import leverage_sheets as sb

    from .measure import sample_grids

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for n in (10_000, 100_000):
            path = Path(folder) / f"journal-{n}.xlsx"
            sb.open_local(path).lay_out("journal", sample_grids("journal", n))
            backend = sb.open_local(path)
            start = time.perf_counter()
            report = sb.sync(backend, "journal")
            first = time.perf_counter() - start
            start = time.perf_counter()
            sb.sync(backend, "journal")  # nothing changed: read and compute only
            again = time.perf_counter() - start
            rows.append([f"{n:,}", str(report.cells_written), f"{first:.1f} s", f"{again:.1f} s",
                         f"{path.stat().st_size / 1e6:.1f} MB"])
    return table(
        "4b. Local .xlsx sync (journal): sheet XML patched inside the package",
        ["rows", "cells written", "first sync", "re-sync (no change)", "file size"],
        rows,
    )
