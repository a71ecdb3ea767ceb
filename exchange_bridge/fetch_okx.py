"""OKX v5 (``okx``): what :mod:`.fetch` asks of an exchange's fetch module (see its doc).

Fills, bills (funding, margin moves) and closed positions newest first, paged backwards with
``after``; margin moves for the last 3 months only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from leverage.tiers import tables_from_ccxt

from .client import call
from .fetch import PAGE, Fetched, num, rates_of, unified_balances

MARKET_TYPES = ("swap",)  # futures only: spot and option lists are not read
OKX_MARGIN_MS = 90 * 86_400_000
FUNDING_ON_BALANCE = False
MARGIN_FROM_LEVERAGE = False
balances = unified_balances


def families(exchange: Any) -> list[dict[str, Any]]:
    return [{"instType": "SWAP", "type": "swap"}]


def cross_wallet(exchange: Any, balance: dict[str, Any]) -> Any:
    return (balance.get("USDT") or {}).get("total")  # the unified account's USDT wallet


def wallet_margin(p: dict[str, Any]) -> float | None:
    """``margin``."""
    return num((p.get("info") or {}).get("margin"))


def rates(exchange: Any, got: Fetched, todo: list[str]) -> None:
    """Marks, then tiers per symbol (in contracts: turned into notional at the mark)."""
    raw: dict[str, Any] = {}
    marks = call(exchange, exchange.fetch_mark_prices, todo)
    got.marks.update({s: float(t["markPrice"]) for s, t in marks.items()
                      if s in todo and t.get("markPrice")})
    for s in todo:
        rows = call(exchange, exchange.fetch_market_leverage_tiers, s)
        raw[s] = okx_tiers_in_notional(rows, exchange.market(s), got.marks.get(s))
    got.tiers.update({s: t for s, t in tables_from_ccxt(raw).items() if s in todo})


def okx_tiers_in_notional(rows: list[dict[str, Any]], market: dict[str, Any],
                          mark: float | None) -> list[dict[str, Any]]:
    """OKX's swap tiers are bounded in contracts (``minSz``/``maxSz``, the next tier starting at
    the previous maximum + 1), which ccxt passes on as notional. In quote currency at today's
    mark: bound × contract size × mark (e.g. 500 contracts of 0.01 BTC at 61,000 = 305,000 USDT),
    each tier starting where the previous one ends. Without a mark they are left as they are.
    """
    if not mark or not market.get("linear"):
        return rows
    size = float(market.get("contractSize") or 1.0) * mark
    out: list[dict[str, Any]] = []
    for r in rows:
        lo, hi = r.get("minNotional"), r.get("maxNotional")
        if out and lo is not None and float(lo) == float(rows[len(out) - 1]["maxNotional"]) + 1:
            lo = rows[len(out) - 1]["maxNotional"]
        out.append({**r, "minNotional": None if lo is None else float(lo) * size,
                    "maxNotional": None if hi is None else float(hi) * size})
    return out


def paged_after(exchange: Any, fetch: Callable[..., list[dict[str, Any]]], since: int,
                key: str, params: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    """Rows come newest first; the next page is ``after`` the oldest row's ``key`` (a bill
    id, or ``uTime`` for closed positions), until a short page or ``since``."""
    out: list[dict[str, Any]] = []
    after = None
    while True:
        extra = {"limit": PAGE["okx"], **({"after": after} if after else {})}
        page = call(exchange, fetch, since=since, params={**params, **extra}, **kwargs)
        out.extend(r for r in page if int(r.get("timestamp") or since) >= since)
        ids = [int(r["info"][key]) for r in page if (r.get("info") or {}).get(key)]
        if len(page) < PAGE["okx"] or not ids or any(
                int(r.get("timestamp") or since) < since for r in page):
            return out
        after = str(min(ids))


def history(exchange: Any, got: Fetched) -> None:
    swap = {"type": "swap"}
    got.trades = paged_after(exchange, exchange.fetch_my_trades, got.since_ms, "billId", swap)
    got.funding = paged_after(exchange, exchange.fetch_funding_history, got.since_ms, "billId",
                              swap)
    margin_since = max(got.since_ms, got.now_ms - OKX_MARGIN_MS + 60_000)
    if margin_since > got.since_ms:
        got.notes.append("OKX keeps margin changes for 3 months: older adds and withdrawals "
                         "are not in the import")
    got.margin_since = margin_since
    got.margin = paged_after(exchange, _okx_margin_bills(exchange), margin_since, "billId",
                             {"type": "6", "mgnMode": "isolated"})
    closed = paged_after(exchange, exchange.fetch_positions_history, got.since_ms, "uTime",
                         {"instType": "SWAP"})
    for c in closed:
        info = c.get("info") or {}
        if info.get("lever") and c.get("symbol"):
            got.leverages.setdefault(c["symbol"], float(info["lever"]))
        if str(info.get("type")) in ("3", "4"):  # full or partial liquidation
            t = int(info.get("uTime") or 0)
            got.liquidation_orders.update(
                str(tr.get("order")) for tr in got.trades
                if tr["symbol"] == c.get("symbol") and abs(int(tr["timestamp"]) - t) <= 2_000)
    rates_of(exchange, got, got.traded_symbols())


def _okx_margin_bills(exchange: Any) -> Callable[..., list[dict[str, Any]]]:
    """OKX's margin moves (bills of type 6: 160 added, 161 reduced by the trader), as ccxt's
    margin modifications. ccxt's ``fetch_margin_adjustment_history`` reads the same bills but
    its parser fails on them (``type['type']`` on a string, ccxt 4.5), so the bills are asked
    for through ccxt's own endpoint method and parsed here."""

    def fetch(since: int, params: dict[str, Any]) -> list[dict[str, Any]]:
        request = {"instType": "SWAP", "begin": since, **params}
        rows = exchange.privateGetAccountBillsArchive(request).get("data") or []
        out = []
        for b in rows:
            if str(b.get("subType")) not in ("160", "161"):
                continue  # 162: added by auto-margin, not by the trader
            market = exchange.safe_market(b.get("instId"))
            change = float(b.get("posBalChg") or b.get("balChg") or 0)
            out.append({"info": b, "symbol": market["symbol"], "marginMode": "isolated",
                        "type": "add" if change > 0 else "reduce", "amount": abs(change),
                        "timestamp": int(b["ts"])})
        return out

    return fetch
