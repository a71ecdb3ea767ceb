"""Bybit v5 (``bybit``): what :mod:`.fetch` asks of an exchange's fetch module (see its doc).

Fills, liquidation fills (``BustTrade``), funding and closed positions in windows of at most
7 days, each paged with the ``cursor`` Bybit returns; no margin-change history.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from leverage.tiers import tables_from_ccxt

from .client import call
from .fetch import PAGE, TRADE_WINDOW_MS, Fetched, num, rates_of, unified_balances

MARKET_TYPES = ("linear", "inverse")  # futures only: spot and option lists are not read
# Bybit pays and credits funding on the available balance, not the isolated position margin
# (help centre, "Position Margin"): the import puts the margin back beside each funding row
FUNDING_ON_BALANCE = True
MARGIN_FROM_LEVERAGE = False
balances = unified_balances


def families(exchange: Any) -> list[dict[str, Any]]:
    kinds = [k for k in ("linear", "inverse")
             if any(m.get(k) and m.get("swap") for m in exchange.markets.values())]
    return [{"subType": k} for k in kinds]


def cross_wallet(exchange: Any, balance: dict[str, Any]) -> Any:
    return (balance.get("USDT") or {}).get("total")  # the unified account's USDT wallet


def wallet_margin(p: dict[str, Any]) -> float | None:
    """``positionIM`` (without it, ccxt's ``initialMargin``: size × entry ÷ leverage)."""
    return num((p.get("info") or {}).get("positionIM")) or num(p.get("initialMargin"))


def rates(exchange: Any, got: Fetched, todo: list[str]) -> None:
    """Tiers per family, marks from the tickers."""
    raw: dict[str, Any] = {}
    for family in ("linear", "inverse"):
        group = [s for s in todo if exchange.market(s).get(family)]
        if group:
            raw.update(call(exchange, exchange.fetch_leverage_tiers, group,
                            params={"subType": family}))
            marks = call(exchange, exchange.fetch_tickers, group)
            got.marks.update({s: float(t["markPrice"]) for s, t in marks.items()
                              if s in group and t.get("markPrice")})
    got.tiers.update({s: t for s, t in tables_from_ccxt(raw).items() if s in todo})


def paged_cursor(exchange: Any, fetch: Callable[..., list[dict[str, Any]]], since: int,
                 until: int, params: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    """Every row from ``since`` to ``until`` (ms), in 7-day windows (the API's widest), each
    window paged with the ``cursor`` the previous page returned."""
    out: list[dict[str, Any]] = []
    start = since
    while start <= until:
        end = min(start + TRADE_WINDOW_MS - 1, until)
        cursor = None
        while True:
            extra = {"until": end, "limit": PAGE["bybit"], **({"cursor": cursor} if cursor else {})}
            page = call(exchange, fetch, since=start, params={**params, **extra}, **kwargs)
            out.extend(page)
            cursor = next((r["info"]["nextPageCursor"] for r in page
                           if (r.get("info") or {}).get("nextPageCursor")), None)
            if not cursor or not page:
                break
        start = end + 1
    return out


def history(exchange: Any, got: Fetched) -> None:
    for params in families(exchange):
        span = (got.since_ms, got.now_ms, params)
        got.trades.extend(paged_cursor(exchange, exchange.fetch_my_trades, *span))
        busts = paged_cursor(exchange, exchange.fetch_my_trades, got.since_ms, got.now_ms,
                             {**params, "execType": "BustTrade"})
        got.trades.extend(busts)
        got.liquidation_orders.update(str(t.get("order")) for t in busts)
        # Bybit's funding ``execFee`` is what the account paid (ccxt passes it on): the
        # journal's funding is what it received
        got.funding.extend({**f, "amount": -float(f["amount"])} for f in
                           paged_cursor(exchange, exchange.fetch_funding_history, *span))
        for closed in paged_cursor(exchange, exchange.fetch_positions_history, *span):
            lev = (closed.get("info") or {}).get("leverage")
            if closed.get("symbol") and lev:
                got.leverages.setdefault(closed["symbol"], float(lev))
    got.notes.append("Bybit's API keeps no history of margin added or removed: adds and "
                     "withdrawals are not in the import")
    rates_of(exchange, got, got.traded_symbols())
