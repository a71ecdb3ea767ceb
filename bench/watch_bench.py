"""Benchmark: one cycle of ``leverage watch`` (read the account, write the rebalance workbook,
check the Rules) for 10 and 200 open positions, through real ccxt against the scripted-marks
loopback Binance (``leverage_exchange.recorded_watch``) and the loopback Sheets API server
(``tests/fake_sheets.py``) or a local .xlsx. Every mark moves each cycle, so every cycle
writes. Fake clock: no waiting between cycles."""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ._util import ms, table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

RATE_LIMIT_MS = 5  # ccxt's limiter stays on; 5 ms between requests instead of Binance's 50
CYCLES = 9


class _Quiet:
    def send(self, alert: Any) -> list[str]:
        return []

    def check(self) -> None:
        return None

    def describe(self) -> list[str]:
        return ["none"]


def _run(n: int, backend_kind: str) -> list[str]:
    from fake_sheets import FakeSheets, make_client

    import leverage_exchange as xb
    import leverage_sheets as sb
    from leverage.models import AdjustmentRule
    from leverage_exchange import recorded_exchange as rx
    from leverage_exchange import recorded_watch as rw
    from leverage_exchange.watch import Watcher

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    now = [t0]
    acc = rw.many_positions(n)
    script = [{p["symbol"]: 101.0 + 0.25 * i for p in acc.positions} for i in range(CYCLES + 1)]
    with tempfile.TemporaryDirectory() as folder, FakeSheets() as sheets, rw.ScriptedBinance(
            acc, script, step=lambda: int((now[0] - t0).total_seconds() // 60)) as server:
        if backend_kind == "google":
            key = sheets.create_spreadsheet("bench")
            book = sb.open_google(key, client=make_client(sheets, timeout=60))
        else:
            book = sb.open_local(Path(folder) / "rebalance.xlsx")
        sb.init(book, "rebalance")
        ex = xb.connect("binanceusdm", {"apiKey": rx.API_KEY, "secret": rx.API_SECRET},
                        api_url=server.url, rate_limit_ms=RATE_LIMIT_MS)

        def sleep(s: float) -> None:
            now[0] += timedelta(seconds=s)

        w = Watcher(ex, book, _Quiet(), interval=60, clock=lambda: now[0], sleep=sleep,
                    rules=AdjustmentRule.build(min_liq_distance=0.1, max_leverage=20,
                                               max_liq_probability=0.05, volatility=0.6,
                                               horizon_days=1))
        walls, reports = [], []
        for _ in range(CYCLES + 1):
            sheets.reset_log()
            start = time.perf_counter()
            report = w.run_cycle()
            walls.append(time.perf_counter() - start)
            reports.append((report, len(sheets.requests)))
            sleep(60)
        first, steady = reports[0], reports[1:]
        sheet_req = (lambda r: str(r[1])) if backend_kind == "google" else (lambda r: "0 (file)")
        return [f"{n}", backend_kind, str(first[0].exchange_requests), sheet_req(first),
                ms(walls[0]), str(steady[-1][0].exchange_requests), sheet_req(steady[-1]),
                f"{statistics.median(r.cells_written for r, _ in steady):,.0f}",
                ms(statistics.median(walls[1:]))]


def watch_cycle() -> str:
    rows = [_run(n, kind) for n in (10, 200) for kind in ("google", "local")]
    return table(
        "8. One `leverage watch` cycle (read positions and balance, write the rebalance "
        f"workbook, check 3 rules): first cycle, then the median of {CYCLES}",
        ["open positions", "workbook", "first: exchange requests", "first: Sheets requests",
         "first: wall", "cycle: exchange requests", "cycle: Sheets requests",
         "cycle: cells written", "cycle: wall"],
        rows,
    )


if __name__ == "__main__":
    print(watch_cycle())
