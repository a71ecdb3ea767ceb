"""Benchmark 7: importing a long exchange history, through real ccxt against the loopback
recorded-exchange server (``leverage_exchange.recorded_exchange``): requests made and wall
time for 10,000 rows."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from ._util import ms, table

RATE_LIMIT_MS = 5  # ccxt's limiter stays on; 5 ms between requests instead of Binance's 50


def _long_binance_account(rows: int) -> Any:
    """One BTCUSDT isolated position opened and closed ``rows // 10`` times within 25 days,
    each open with 8 funding payments: 2 fills + 8 fundings = 10 history rows a cycle."""
    from leverage_exchange import recorded_exchange as r

    now = r._now()
    t0 = now - 25 * r.DAY_MS
    acc = r.Account(markets=[r.market("BTCUSDT", "BTC")], brackets=[r.bracket("BTCUSDT")],
                    marks={"BTCUSDT": "61000.00"},
                    symbol_config=[{"symbol": "BTCUSDT", "marginType": "ISOLATED",
                                    "isAutoAddMargin": "false", "leverage": 10,
                                    "maxNotionalValue": "1000000"}])
    step = 20 * r.DAY_MS // max(rows // 10, 1)
    for i in range(rows // 10):
        t = t0 + i * step
        acc.trades.append(r.trade(2 * i + 1, 2 * i + 1, "BTCUSDT", "BUY", "0.010", "60000.00", t))
        acc.trades.append(r.trade(2 * i + 2, 2 * i + 2, "BTCUSDT", "SELL", "0.010", "60100.00",
                                  t + step // 2))
        acc.income += [r.income(10 * i + k, "BTCUSDT", "FUNDING_FEE", "-0.01000000",
                                t + (k + 1) * step // 20) for k in range(8)]
    acc.income += [r.income(10**7 + j, tr["symbol"], "COMMISSION", "-" + tr["commission"],
                            tr["time"]) for j, tr in enumerate(acc.trades)]
    return acc


def import_requests() -> str:
    """7. Exchange import of 10,000 history rows (fills and funding) into a new local journal."""
    import leverage_exchange as xb
    import leverage_sheets as sb
    from leverage_exchange import recorded_exchange as r

    out = []
    for n in (1_000, 10_000):
        acc = _long_binance_account(n)
        history = len(acc.trades) + sum(1 for i in acc.income if i["incomeType"] != "COMMISSION")
        with r.FakeBinanceFutures(acc) as fake, tempfile.TemporaryDirectory() as tmp:
            ex = xb.connect("binanceusdm", {"apiKey": r.API_KEY, "secret": r.API_SECRET},
                            api_url=fake.url, rate_limit_ms=RATE_LIMIT_MS, timeout_ms=60_000)
            book = sb.open_local(Path(tmp) / "journal.xlsx")
            sb.init(book, "journal")
            start = time.perf_counter()
            got = xb.fetch_account(ex, xb.parse_since("2024-01-01"))
            fetched = time.perf_counter() - start
            start = time.perf_counter()
            xb.build_rows(got)
            converted = time.perf_counter() - start
            # the template is named: telling it from the tabs loads the whole .xlsx once more
            start = time.perf_counter()
            report = xb.import_account(ex, book, "2024-01-01", "journal")
            wall = time.perf_counter() - start
            start = time.perf_counter()
            again = xb.import_account(ex, book, "2024-01-01", "journal")
            rerun = time.perf_counter() - start
            rows = sum(report.sheet.appended.values())
            out.append(["binanceusdm", f"{history:,}", str(report.exchange_requests),
                        ms(fetched), ms(converted), f"{rows:,}", ms(wall),
                        str(again.exchange_requests), ms(rerun)])
    return table(
        "7. Exchange import through ccxt from the loopback recorded exchange (ccxt's rate limiter "
        f"on, its base delay set to {RATE_LIMIT_MS} ms for the loopback server)",
        ["exchange", "history rows", "exchange requests", "fetch (ccxt + HTTP)",
         "to journal rows", "rows written", "import into a new .xlsx journal",
         "second run: requests", "second run (nothing new)"],
        out,
    )
