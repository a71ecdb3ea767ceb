"""Bitget v2 mix, USDT-M perpetuals (``bitget``): what :mod:`.fetch` asks of an exchange's
fetch module (see its doc).

Fills (``GET /api/v2/mix/order/fills``), funding (``contract_settle_fee`` bills) and margin
moves (``append_margin`` / ``reduce_margin`` bills of ``GET /api/v2/mix/account/bill``), per
symbol, in windows of at most 7 days (the API's widest for fills), each window paged
backwards with ``idLessThan`` (the oldest id of the page before); closed positions
(``history-position``) name the symbols traded and closed inside the window. The key needs
its passphrase (``LEVERAGE_EXCHANGE_PASSWORD``, as for OKX).

Bitget's hedge mode names the leg in a fill's ``side``: opening and closing a long are both
``buy`` (``tradeSide`` open / close; ccxt passes ``side`` on as it is, e.g. ccxt's own
fetchMyTrades example, a ``buy`` that closes a long at 37,271.4). The fills are given the
side of the trade they are (a long's close sells) before the import reads them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from leverage.tiers import tables_from_ccxt

from .client import call
from .fetch import Fetched, num, rates_of, windows

MARKET_TYPES = ("swap",)  # futures only: spot and margin lists are not read
OPTIONS: dict[str, Any] = {"defaultType": "swap"}  # fetch_balance: the futures account
PRODUCT = {"productType": "USDT-FUTURES"}
PAGE = 100  # fills and bills: at most 100 rows a request
FUNDING_ON_BALANCE = False  # taken as from the position margin, as Binance and OKX do
MARGIN_FROM_LEVERAGE = False
# the bills of the trader's own margin moves, and their direction (auto-append is the
# exchange's, as OKX's 162 is left out)
MARGIN_BILLS = {"append_margin": "add", "reduce_margin": "reduce"}


def families(exchange: Any) -> list[dict[str, Any]]:
    return [dict(PRODUCT)]


def _usdt(balance: dict[str, Any]) -> dict[str, Any]:
    info = balance.get("info")
    rows = info if isinstance(info, list) else [info] if isinstance(info, dict) else []
    return next((a for a in rows if isinstance(a, dict)
                 and str(a.get("marginCoin", "")).upper() == "USDT"), {})


def cross_wallet(exchange: Any, balance: dict[str, Any]) -> Any:
    """``accountEquity − unrealizedPL − isolatedMargin`` of ``GET /api/v2/mix/account/
    accounts``: the account's assets without open PnL and without what isolated positions
    hold (Bitget's "total asset balance" of its cross formula)."""
    row = _usdt(balance)
    equity = num(row.get("accountEquity"))
    if equity is None:
        return None
    return equity - (num(row.get("unrealizedPL")) or 0.0) - (num(row.get("isolatedMargin")) or 0.0)


def balances(exchange: Any, wallet: float | None) -> tuple[Any, Any]:
    """The cross wallet (``wallet`` when the fetch had it) and ``available``."""
    balance = call(exchange, exchange.fetch_balance, dict(PRODUCT))
    return (cross_wallet(exchange, balance) if wallet is None else wallet,
            _usdt(balance).get("available"))


def wallet_margin(p: dict[str, Any]) -> float | None:
    """``marginSize``: the isolated position's margin, the "position margin" of Bitget's
    formula (ccxt's ``collateral`` adds ``unrealizedPL``)."""
    return num((p.get("info") or {}).get("marginSize"))


def close_fee_rate(market: dict[str, Any]) -> float:
    """The contract's ``takerFeeRate``: the TakerFeeRatio of Bitget's formula."""
    return num((market.get("info") or {}).get("takerFeeRate")) or num(market.get("taker")) or 0.0


def rates(exchange: Any, got: Fetched, todo: list[str]) -> None:
    """Marks from the tickers, tiers per symbol (``query-position-lever``)."""
    marks = call(exchange, exchange.fetch_tickers, todo, dict(PRODUCT))
    got.marks.update({s: float(t["markPrice"]) for s, t in marks.items()
                      if s in todo and t.get("markPrice")})
    raw = {s: call(exchange, exchange.fetch_market_leverage_tiers, s) for s in todo}
    got.tiers.update({s: t for s, t in tables_from_ccxt(raw).items() if s in todo})


def paged_windows(exchange: Any, fetch: Callable[..., list[dict[str, Any]]], since: int,
                  until: int, key: str, **kwargs: Any) -> list[dict[str, Any]]:
    """Every row from ``since`` to ``until`` (ms), in 7-day windows, each paged backwards:
    rows come newest first, the next page is ``idLessThan`` the oldest ``key`` (an id of
    the row's ``info``) of the page before, until a short page."""
    out: list[dict[str, Any]] = []
    for start, end in windows(since, until):
        before = None
        while True:
            extra = {**PRODUCT, "until": end, **({"idLessThan": before} if before else {})}
            page = call(exchange, fetch, since=start, limit=PAGE, params=extra, **kwargs)
            out.extend(page)
            ids = [int((r.get("info") or {})[key]) for r in page
                   if (r.get("info") or {}).get(key)]
            if len(page) < PAGE or not ids:
                break
            before = str(min(ids))
    return out


def as_traded(tr: dict[str, Any]) -> dict[str, Any]:
    """A fill with the side of the trade it is. In hedge mode Bitget's ``side`` names the
    leg (buy: long), so a ``close`` (or ``burst_close_long``…) trades the other way."""
    info = tr.get("info") or {}
    if str(info.get("posMode")) != "hedge_mode":
        return tr
    trade_side = str(info.get("tradeSide") or "").lower()
    raw = str(info.get("side") or tr.get("side") or "").lower()
    if trade_side.endswith(("close_long", "close_short")):
        long = trade_side.endswith("long")
        closes = True
    else:
        long, closes = raw == "buy", trade_side != "open"
    return {**tr, "side": "buy" if long != closes else "sell"}


def history(exchange: Any, got: Fetched) -> None:
    since, now = got.since_ms, got.now_ms
    closed = paged_windows(exchange, exchange.fetch_positions_history, since, now, "positionId")
    symbols = sorted({*(p["symbol"] for p in got.positions),
                      *(c["symbol"] for c in closed if c.get("symbol"))})
    for sym in symbols:
        trades = [as_traded(t) for t in
                  paged_windows(exchange, exchange.fetch_my_trades, since, now, "tradeId",
                                symbol=sym)]
        got.trades.extend(trades)
        got.liquidation_orders.update(
            str(t.get("order")) for t in trades
            if "burst" in str((t.get("info") or {}).get("tradeSide") or ""))
        got.funding.extend(paged_windows(exchange, exchange.fetch_funding_history, since, now,
                                         "billId", symbol=sym))
        for business in MARGIN_BILLS:
            got.margin.extend(paged_windows(exchange, _margin_bills(exchange, business), since,
                                            now, "billId", symbol=sym))
        if sym not in got.leverages:  # a closed position: the symbol's leverage setting
            lev = call(exchange, exchange.fetch_leverage, sym, dict(PRODUCT))
            value = num(lev.get("longLeverage")) or num(lev.get("shortLeverage"))
            if value:
                got.leverages[sym] = value
    rates_of(exchange, got, got.traded_symbols())


def _margin_bills(exchange: Any, business: str) -> Callable[..., list[dict[str, Any]]]:
    """Bitget's margin moves (the bills of ``businessType`` ``business``, one of
    :data:`MARGIN_BILLS`) as ccxt's margin modifications. ccxt has no unified method for
    them on Bitget: the bills are asked for through ccxt's own endpoint method and parsed
    here. A bill names no leg: the import puts it on the symbol's open leg (and says so when
    both hedge legs are open)."""

    def fetch_margin_adjustment_history(symbol: str, since: int, limit: int,
                                        params: dict[str, Any]) -> list[dict[str, Any]]:
        market = exchange.market(symbol)
        request = {"symbol": market["id"], "marginCoin": market["settleId"],
                   "productType": params["productType"], "businessType": business,
                   "startTime": since,
                   "endTime": params["until"], "limit": limit,
                   **({"idLessThan": params["idLessThan"]} if params.get("idLessThan") else {})}
        data = exchange.privateMixGetV2MixAccountBill(request).get("data") or {}
        out = []
        for b in data.get("bills") or []:
            out.append({"info": b, "symbol": symbol, "marginMode": "isolated",
                        "type": MARGIN_BILLS[business],
                        "amount": abs(float(b["amount"])), "timestamp": int(b["cTime"])})
        return out

    return fetch_margin_adjustment_history
