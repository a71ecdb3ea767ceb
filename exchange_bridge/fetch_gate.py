"""Gate futures v4, USDT-settled perpetuals (``gate``): what :mod:`.fetch` asks of an
exchange's fetch module (see its doc).

Fills (``GET /futures/usdt/my_trades_timerange``) and funding (``account_book``, type
``fund``) from the start date on, paged by time; liquidations per symbol (``liquidates``).

Gate's API keeps no history of margin added to or removed from a position (the account book
has no such type): the import says so in its notes. What an opening fill posts as isolated
margin is Gate's own rule, notional ÷ leverage plus the close-fee reserve, notional × the
contract's listed taker rate (``taker_fee_rate``, 0.075 %): ccxt's ``parse_position`` counts
the same, and the real LTC_USDT position of ccxt's static test answers shows it to the last
digit (7.435 / 5 + 7.435 × 0.00075 = 1.49257625, its ``margin``). Each opening order's margin
is written as such a line, so the journal's margin is the position's ``margin``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from leverage.conventions.gate import CLOSE_FEE_RATE
from leverage.tiers import tables_from_ccxt

from .client import call
from .fetch import Fetched, num, rates_of

MARKET_TYPES = ("swap",)  # futures only: spot, delivery and option lists are not read
# fetch_balance, my_trades, account_book: the futures account; markets: the USDT-settled
# perpetuals only (the BTC-settled inverse ones follow a form the convention does not cover)
OPTIONS: dict[str, Any] = {"defaultType": "swap",
                           "swap": {"fetchMarkets": {"settlementCurrencies": ["usdt"]}}}
SETTLE = {"type": "swap", "settle": "usdt"}
PAGE = 1000  # my_trades_timerange and account_book: at most 1000 rows a request
FUNDING_ON_BALANCE = False  # taken as from the position margin, as Binance and OKX do
MARGIN_FROM_LEVERAGE = False  # notional ÷ leverage misses Gate's close-fee reserve


def families(exchange: Any) -> list[dict[str, Any]]:
    return [dict(SETTLE)]


def _account(balance: dict[str, Any]) -> dict[str, Any]:
    info = balance.get("info")
    if isinstance(info, list):
        info = next((a for a in info if str(a.get("currency", "")).upper() == "USDT"), {})
    return info if isinstance(info, dict) else {}


def cross_wallet(exchange: Any, balance: dict[str, Any]) -> Any:
    """``total`` − ``isolated_position_margin`` of ``GET /futures/usdt/accounts``: the
    futures wallet (without unrealized PnL) less the margin isolated positions hold."""
    info = _account(balance)
    total, isolated = num(info.get("total")), num(info.get("isolated_position_margin"))
    return None if total is None else total - (isolated or 0.0)


def balances(exchange: Any, wallet: float | None) -> tuple[Any, Any]:
    """The cross wallet (``wallet`` when the fetch had it) and ``available``."""
    balance = call(exchange, exchange.fetch_balance, dict(SETTLE))
    return (cross_wallet(exchange, balance) if wallet is None else wallet,
            _account(balance).get("available"))


def wallet_margin(p: dict[str, Any]) -> float | None:
    """``margin``: the position margin Gate's formula divides by multiplier and contracts
    (with its close-fee reserve; ccxt's ``collateral`` adds the unrealized PnL)."""
    return num((p.get("info") or {}).get("margin"))


def close_fee_rate(market: dict[str, Any]) -> float:
    """The contract's listed ``taker_fee_rate``: what Gate's liquidation price counts, not the
    account's own fee (leverage.conventions.gate)."""
    return num((market.get("info") or {}).get("taker_fee_rate")) or CLOSE_FEE_RATE


def rates(exchange: Any, got: Fetched, todo: list[str]) -> None:
    """Risk-limit tiers (``risk_limit_tiers``, all contracts paged), marks from the tickers."""
    raw = call(exchange, exchange.fetch_leverage_tiers, todo, dict(SETTLE))
    got.tiers.update({s: t for s, t in tables_from_ccxt(raw).items() if s in todo})
    marks = call(exchange, exchange.fetch_tickers, todo, dict(SETTLE))
    got.marks.update({s: float(t["markPrice"]) for s, t in marks.items()
                      if s in todo and t.get("markPrice")})


def _symbol(exchange: Any, row: dict[str, Any]) -> dict[str, Any]:
    """A row whose ``symbol`` is its ``contract``'s market (ccxt reads the funding's market
    from ``text``, which may carry more than the contract name) and whose ``id`` is Gate's."""
    info = row.get("info") or {}
    contract = info.get("contract")
    symbol = row.get("symbol")
    if contract and contract in exchange.markets_by_id:
        symbol = exchange.safe_market(contract)["symbol"]
    ident = row.get("id") or info.get("id") or f"{contract}-{info.get('time')}"
    return {**row, "symbol": symbol, "id": str(ident)}


def paged_offset(exchange: Any, fetch: Callable[..., list[dict[str, Any]]], since: int,
                 params: dict[str, Any], **kwargs: Any) -> list[dict[str, Any]]:
    """Every row from ``since`` (ms) on: Gate's time-range lists come newest first, so the
    pages are taken by ``offset`` (:data:`PAGE` a request) until a short one."""
    out: list[dict[str, Any]] = []
    offset = 0
    while True:
        page = call(exchange, fetch, since=since, limit=PAGE,
                    params={**SETTLE, **params, "offset": offset}, **kwargs)
        out.extend(page)
        if len(page) < PAGE:
            return out
        offset += PAGE


def history(exchange: Any, got: Fetched) -> None:
    since, now = got.since_ms, got.now_ms
    got.trades = paged_offset(exchange, exchange.fetch_my_trades, since,
                              {"until": now})
    got.funding = [_symbol(exchange, f) for f in paged_offset(
        exchange, exchange.fetch_funding_history, since, {"to": now // 1000})]
    isolated = {p["symbol"] for p in got.positions if num(p.get("leverage"))}
    for p in got.positions:
        # a cross position's leverage is 0; its margin at open is the notional at the
        # cross leverage limit (what Gate's cross initial margin counts)
        limit = num((p.get("info") or {}).get("cross_leverage_limit"))
        if not num(p.get("leverage")) and limit:
            got.leverages.setdefault(p["symbol"], limit)
    for sym in sorted({t["symbol"] for t in got.trades}):
        for liq in call(exchange, exchange.fetch_my_liquidations, sym, since):
            info = liq.get("info") or {}
            got.liquidation_orders.add(str(info.get("order_id")))
            if num(info.get("leverage")):
                got.leverages.setdefault(sym, float(info["leverage"]))
                isolated.add(sym)
    got.margin = opening_margin(got, isolated)
    got.notes.append("Gate's API keeps no history of margin added to or removed from a "
                     "position: adds and withdrawals are not in the import")
    rates_of(exchange, got, got.traded_symbols())


def opening_margin(got: Fetched, isolated: set[str]) -> list[dict[str, Any]]:
    """One ``TRADE`` margin line per opening order of an ``isolated`` symbol (leverage
    setting above 0; Gate's 0 is cross): the opened notional ÷ leverage + notional × the
    contract's close-fee rate. A fill opens ``|size| − |close_size|`` contracts."""
    hedged = {p["symbol"] for p in got.positions
              if str((p.get("info") or {}).get("mode", "")).startswith("dual")}
    orders: dict[tuple[str, str], dict[str, Any]] = {}
    for tr in got.trades:
        info = tr.get("info") or {}
        lev = got.leverages.get(tr["symbol"])
        market = got.markets.get(tr["symbol"]) or {}
        opened = abs(float(info.get("size") or 0)) - abs(float(info.get("close_size") or 0))
        if not lev or opened <= 0 or tr["symbol"] not in isolated:
            continue
        notional = opened * float(market.get("contractSize") or 1.0) * float(tr["price"])
        leg = "BOTH"
        if tr["symbol"] in hedged:
            leg = "LONG" if tr["side"] == "buy" else "SHORT"
        line = orders.setdefault((tr["symbol"], str(tr.get("order") or tr.get("id"))), {
            "symbol": tr["symbol"], "type": "add", "amount": 0.0, "timestamp": tr["timestamp"],
            "info": {"deltaType": "TRADE", "positionSide": leg}})
        line["amount"] += notional / lev + notional * close_fee_rate(market)
        line["timestamp"] = min(line["timestamp"], tr["timestamp"])
    return list(orders.values())
