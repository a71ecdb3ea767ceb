"""Read an account's futures history through ccxt's unified methods, page by page.

Everything an import needs is fetched here (and nothing is written): open positions, margin
changes, funding, fills, liquidation orders, tiers and mark prices. Binance USDⓈ-M's API sets
the paging rules: fills come in windows of at most 7 days (so fills are only asked for in the
weeks where the income history shows a commission), and margin changes only for the last
30 days (older ones are not kept by the exchange).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from leverage.tiers import TierTable, tables_from_ccxt

from .client import ExchangeError, call

IMPORTS = ("binanceusdm", "binancecoinm")  # the same API rules under /fapi and /dapi
DAY_MS = 86_400_000
TRADE_WINDOW_MS = 7 * DAY_MS
MARGIN_HISTORY_MS = 30 * DAY_MS
PAGE = {"income": 1000, "margin": 500, "trades": 1000}


@dataclass
class Fetched:
    """One account's raw history as ccxt returns it (unified structures, ``info`` kept)."""

    exchange: str
    since_ms: int
    now_ms: int
    markets: dict[str, dict[str, Any]]
    positions: list[dict[str, Any]] = field(default_factory=list)
    margin: list[dict[str, Any]] = field(default_factory=list)
    funding: list[dict[str, Any]] = field(default_factory=list)
    trades: list[dict[str, Any]] = field(default_factory=list)
    liquidation_orders: set[str] = field(default_factory=set)
    leverages: dict[str, float] = field(default_factory=dict)
    tiers: dict[str, TierTable] = field(default_factory=dict)
    marks: dict[str, float] = field(default_factory=dict)
    wallet_balance: float | None = None  # cross wallet, for cross positions' liquidation
    notes: list[str] = field(default_factory=list)


def paged(
    exchange: Any,
    fetch: Callable[..., list[dict[str, Any]]],
    since: int,
    limit: int,
    until: int | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Every row from ``since`` (ms) on, ``limit`` rows a request, oldest first.

    The next page starts at the last row's time (rows sharing that millisecond are asked for
    again and dropped by id), so nothing on a page boundary is lost.
    """
    out: list[dict[str, Any]] = []
    seen: set[Any] = set()
    params = dict(kwargs.pop("params", {}) or {}, **({"until": until} if until else {}))
    while True:
        page = call(exchange, fetch, since=since, limit=limit, params=params, **kwargs)
        fresh = [r for r in page if _row_id(r) not in seen]
        out.extend(fresh)
        seen.update(_row_id(r) for r in fresh)
        if len(page) < limit or not fresh:
            return out
        last = max(int(r["timestamp"]) for r in page)
        since = last if last > since else since + 1


def _row_id(row: dict[str, Any]) -> Any:
    info = row.get("info") or {}
    return (row.get("id") or info.get("tranId") or info.get("id"), row.get("timestamp"),
            row.get("symbol"), str(row.get("amount")), info.get("type"), info.get("positionSide"))


def _supported(exchange: Any) -> None:
    if exchange.id not in IMPORTS:
        raise ExchangeError(f"importing from {exchange.id} is not available yet: "
                            f"{' and '.join(IMPORTS)} are supported")


def fetch_open(exchange: Any, since_ms: int = 0, now_ms: int | None = None,
               rates: bool = True) -> Fetched:
    """Open positions with what reconciling them needs: tiers, marks, the cross wallet.

    A hedge-mode leg with no contracts is left out (it is not a flat position of the symbol:
    the other leg may be open)."""
    _supported(exchange)
    now_ms = now_ms or exchange.milliseconds()
    markets = {s: m for s, m in exchange.markets.items() if m.get("contract")}
    got = Fetched(exchange.id, since_ms, now_ms, markets)
    got.positions = [p for p in call(exchange, exchange.fetch_positions) if _size(p)]
    if any(p.get("marginMode") != "isolated" for p in got.positions):
        info = call(exchange, exchange.fetch_balance).get("info") or {}
        # USDⓈ-M has one cross wallet; COIN-M one per coin, so no single figure (None)
        wallet = info.get("totalCrossWalletBalance") or info.get("totalWalletBalance")
        got.wallet_balance = None if wallet in (None, "") else float(wallet)
    if rates:
        _rates(exchange, got, sorted({p["symbol"] for p in got.positions}))
    return got


def _rates(exchange: Any, got: Fetched, symbols: list[str]) -> None:
    """Tiers, marks and leverage settings of ``symbols`` (one request each, all symbols)."""
    todo = [s for s in symbols if s not in got.tiers]
    if not todo:
        return
    lev = call(exchange, exchange.fetch_leverages, todo)
    got.leverages.update({s: float(v["longLeverage"] or v["shortLeverage"] or 0)
                          for s, v in lev.items()
                          if v.get("longLeverage") or v.get("shortLeverage")})
    raw_tiers = call(exchange, exchange.fetch_leverage_tiers, todo)
    got.tiers.update({s: t for s, t in tables_from_ccxt(raw_tiers).items() if s in todo})
    marks = call(exchange, exchange.fetch_mark_prices, todo)
    got.marks.update({s: float(t["markPrice"]) for s, t in marks.items() if t.get("markPrice")})


def fetch_account(exchange: Any, since_ms: int, now_ms: int | None = None) -> Fetched:
    """Fetch what :mod:`exchange_bridge.convert` turns into journal rows."""
    got = fetch_open(exchange, since_ms, now_ms, rates=False)
    now_ms, markets = got.now_ms, got.markets
    got.funding = paged(exchange, exchange.fetch_funding_history, since_ms, PAGE["income"])
    commission = paged(exchange, exchange.fetch_funding_history, since_ms, PAGE["income"],
                       params={"incomeType": "COMMISSION"})
    by_id = {m["id"]: s for s, m in markets.items()}
    traded: dict[str, list[int]] = {}
    for c in commission:
        sym = c.get("symbol") or by_id.get((c.get("info") or {}).get("symbol"))
        if sym:
            traded.setdefault(sym, []).append(int(c["timestamp"]))
    symbols = sorted({*traded, *(p["symbol"] for p in got.positions),
                      *(f["symbol"] for f in got.funding if f.get("symbol"))})
    for sym in symbols:
        got.trades.extend(_trades(exchange, sym, traded.get(sym, []), since_ms))
    margin_since = max(since_ms, now_ms - MARGIN_HISTORY_MS + 60_000)
    if margin_since > since_ms:
        got.notes.append("Binance keeps margin changes for 30 days: older adds and withdrawals "
                         "are not in the import")
    for sym in symbols:
        got.margin.extend(paged(exchange, exchange.fetch_margin_adjustment_history, margin_since,
                                PAGE["margin"], symbol=sym))
        liq = paged(exchange, exchange.fetch_my_liquidations, since_ms, 100, symbol=sym)
        got.liquidation_orders.update(str((x.get("info") or {}).get("orderId")) for x in liq)
    _rates(exchange, got, symbols)
    return got


def _size(position: dict[str, Any]) -> float:
    return abs(float(position.get("contracts") or 0))


def _trades(exchange: Any, symbol: str, stamps: Iterable[int], since_ms: int) -> list[dict]:
    """Fills of ``symbol`` in each 7-day window that holds a commission (Binance's limit)."""
    out: list[dict[str, Any]] = []
    start = None
    for t in sorted(stamps):
        if start is not None and t < start + TRADE_WINDOW_MS:
            continue
        start = max(t, since_ms)
        out.extend(paged(exchange, exchange.fetch_my_trades, start, PAGE["trades"],
                         until=start + TRADE_WINDOW_MS - 1, symbol=symbol))
    return out
