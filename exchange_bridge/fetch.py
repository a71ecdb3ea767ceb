"""Read an account's futures history through ccxt's unified methods, page by page.

Everything an import needs is fetched here (and nothing is written): open positions, margin
changes, funding, fills, liquidation orders, tiers and mark prices. "Now" is the exchange's
server time (``fetch_time``), never this computer's clock: the windows below count from it.
Each exchange's API sets the paging rules:

- Binance: fills come in windows of at most 7 days (so fills are only asked for in the weeks
  where the income history shows a commission), margin changes only for the last 30 days.
- Bybit v5: fills, liquidation fills (``BustTrade``), funding and closed positions in windows
  of at most 7 days, each paged with the ``cursor`` Bybit returns; no margin-change history.
- OKX v5: fills, bills (funding, margin moves) and closed positions newest first, paged
  backwards with ``after``; margin moves for the last 3 months only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from leverage.conventions import CONVENTIONS
from leverage.tiers import TierTable, tables_from_ccxt

from .client import SUPPORTED, ExchangeError, call, parsing_answers

BINANCE = CONVENTIONS["binance"].ccxt_ids  # the same API rules under /fapi and /dapi
IMPORTS = SUPPORTED
DAY_MS = 86_400_000
TRADE_WINDOW_MS = 7 * DAY_MS
MARGIN_HISTORY_MS = 30 * DAY_MS
OKX_MARGIN_MS = 90 * DAY_MS
PAGE = {"income": 1000, "margin": 500, "trades": 1000, "bybit": 100, "okx": 100}


@dataclass
class Fetched:
    """One account's raw history as ccxt returns it (unified structures, ``info`` kept)."""

    exchange: str
    since_ms: int
    now_ms: int  # the exchange's server time when the import began
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
    # the earliest time the margin history covers (Binance 30 days, OKX 3 months back from
    # the exchange's now); 0: all of the window
    margin_since: int = 0
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


@parsing_answers
def fetch_open(exchange: Any, since_ms: int = 0, now_ms: int | None = None,
               rates: bool = True) -> Fetched:
    """Open positions with what reconciling them needs: tiers, marks, the cross wallet.

    A hedge-mode leg with no contracts is left out (it is not a flat position of the symbol:
    the other leg may be open)."""
    _supported(exchange)
    # the exchange's clock, not this computer's: windows (Binance's 30 days of margin
    # history) and the dates of the rows count from it
    now_ms = now_ms or int(call(exchange, exchange.fetch_time))
    markets = {s: m for s, m in exchange.markets.items() if m.get("contract")}
    got = Fetched(exchange.id, since_ms, now_ms, markets)
    got.positions = [p for params in _families(exchange)
                     for p in call(exchange, exchange.fetch_positions, params=params) if _size(p)]
    for p in got.positions:
        if p.get("leverage"):
            got.leverages.setdefault(p["symbol"], float(p["leverage"]))
    if any(margin_mode(p) != "isolated" for p in got.positions):
        balance = call(exchange, exchange.fetch_balance)
        info = balance.get("info") or {}
        # USDⓈ-M has one cross wallet; COIN-M one per coin, so no single figure (None)
        wallet = info.get("totalCrossWalletBalance") or info.get("totalWalletBalance")
        if exchange.id not in BINANCE:  # unified accounts: the USDT wallet
            wallet = (balance.get("USDT") or {}).get("total")
        got.wallet_balance = None if wallet in (None, "") else float(wallet)
    if rates:
        _rates(exchange, got, sorted({p["symbol"] for p in got.positions}))
    return got


def _rates(exchange: Any, got: Fetched, symbols: list[str]) -> None:
    """Tiers, marks and leverage settings of ``symbols`` (one request each, all symbols)."""
    todo = [s for s in symbols if s not in got.tiers]
    if not todo:
        return
    if exchange.id not in BINANCE:
        _rates_v5(exchange, got, todo)
        return
    lev = call(exchange, exchange.fetch_leverages, todo)
    got.leverages.update({s: float(v["longLeverage"] or v["shortLeverage"] or 0)
                          for s, v in lev.items()
                          if v.get("longLeverage") or v.get("shortLeverage")})
    raw_tiers = call(exchange, exchange.fetch_leverage_tiers, todo)
    got.tiers.update({s: t for s, t in tables_from_ccxt(raw_tiers).items() if s in todo})
    marks = call(exchange, exchange.fetch_mark_prices, todo)
    got.marks.update({s: float(t["markPrice"]) for s, t in marks.items() if t.get("markPrice")})


def _families(exchange: Any) -> list[dict[str, Any]]:
    """The ``params`` that cover every futures family of the exchange in one list call each."""
    if exchange.id == "bybit":
        kinds = [k for k in ("linear", "inverse")
                 if any(m.get(k) and m.get("swap") for m in exchange.markets.values())]
        return [{"subType": k} for k in kinds]
    if exchange.id == "okx":
        return [{"instType": "SWAP", "type": "swap"}]
    return [{}]


def margin_mode(p: dict[str, Any]) -> str:
    """isolated or cross: ccxt's field, else Bybit's ``tradeMode`` (1 isolated)."""
    mode = p.get("marginMode")
    if not mode and str((p.get("info") or {}).get("tradeMode")) == "1":
        return "isolated"
    return str(mode or "cross")


def _rates_v5(exchange: Any, got: Fetched, todo: list[str]) -> None:
    """Bybit and OKX: tiers (Bybit per family, OKX per symbol) and mark prices."""
    raw: dict[str, Any] = {}
    if exchange.id == "bybit":
        for family in ("linear", "inverse"):
            group = [s for s in todo if exchange.market(s).get(family)]
            if group:
                raw.update(call(exchange, exchange.fetch_leverage_tiers, group,
                                params={"subType": family}))
                marks = call(exchange, exchange.fetch_tickers, group)
                got.marks.update({s: float(t["markPrice"]) for s, t in marks.items()
                                  if s in group and t.get("markPrice")})
    else:
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


def paged_cursor(exchange: Any, fetch: Callable[..., list[dict[str, Any]]], since: int,
                 until: int, params: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    """Bybit: every row from ``since`` to ``until`` (ms), in 7-day windows (the API's widest),
    each window paged with the ``cursor`` the previous page returned."""
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


def paged_after(exchange: Any, fetch: Callable[..., list[dict[str, Any]]], since: int,
                key: str, params: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    """OKX: rows come newest first; the next page is ``after`` the oldest row's ``key``
    (a bill id, or ``uTime`` for closed positions), until a short page or ``since``."""
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


def _fetch_bybit(exchange: Any, got: Fetched) -> None:
    for params in _families(exchange):
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


def _fetch_okx(exchange: Any, got: Fetched) -> None:
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


@parsing_answers
def fetch_account(exchange: Any, since_ms: int, now_ms: int | None = None) -> Fetched:
    """Fetch what :mod:`leverage_exchange.convert` turns into journal rows."""
    got = fetch_open(exchange, since_ms, now_ms, rates=False)
    if exchange.id not in BINANCE:
        (_fetch_bybit if exchange.id == "bybit" else _fetch_okx)(exchange, got)
        symbols = sorted({*(t["symbol"] for t in got.trades), *(p["symbol"] for p in got.positions),
                          *(f["symbol"] for f in got.funding if f.get("symbol"))})
        _rates(exchange, got, symbols)
        return got
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
    margin_since = got.margin_since = max(since_ms, now_ms - MARGIN_HISTORY_MS + 60_000)
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
