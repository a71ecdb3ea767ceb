"""Binance USDⓈ-M and COIN-M (``binanceusdm``, ``binancecoinm``): the same API rules under
/fapi and /dapi. What :mod:`.fetch` asks of an exchange's fetch module (see its doc).

Fills come in windows of at most 7 days (so they are only asked for in the weeks where the
income history shows a commission), margin changes only for the last 30 days.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from leverage.portfolio import BINANCE_PM_THRESHOLD
from leverage.tiers import tables_from_ccxt

from .client import call
from .fetch import PAGE, TRADE_WINDOW_MS, Fetched, num, paged, rates_of

MARKET_TYPES: tuple[str, ...] = ()  # ccxt's own list: the futures markets of /fapi or /dapi
MARGIN_HISTORY_MS = 30 * 86_400_000
FUNDING_ON_BALANCE = False  # funding moves the isolated margin (the journal's rule)
MARGIN_FROM_LEVERAGE = True  # an old position's margin may be its notional ÷ its leverage


def families(exchange: Any) -> list[dict[str, Any]]:
    return [{}]  # one list call covers every futures market of the API


def cross_wallet(exchange: Any, balance: dict[str, Any]) -> Any:
    # USDⓈ-M has one cross wallet; COIN-M one per coin, so no single figure (None)
    info = balance.get("info") or {}
    if isinstance(info, list):  # portfolio margin (GET /papi/v1/balance): one row per asset
        usdt = next((r for r in info if isinstance(r, dict) and r.get("asset") == "USDT"), {})
        return usdt.get("umWalletBalance")
    return info.get("totalCrossWalletBalance") or info.get("totalWalletBalance")


def balances(exchange: Any, wallet: float | None) -> tuple[Any, Any]:
    """The cross wallet (``wallet`` when the fetch had it) and the free balance
    (``GET /fapi/v3/account``: ``totalCrossWalletBalance`` and ``availableBalance``); COIN-M
    keeps one wallet per coin: no single figure."""
    if exchange.id == "binancecoinm":
        return None, None
    if portfolio_margin(exchange):
        # the UM wallet; portfolio margin states no free balance for margin moves (its
        # positions are all cross): the sheet keeps the trader's figure
        return (cross_wallet(exchange, call(exchange, exchange.fetch_balance))
                if wallet is None else wallet), None
    info = call(exchange, exchange.fetch_balance).get("info") or {}
    return (info.get("totalCrossWalletBalance") if wallet is None else wallet,
            info.get("availableBalance"))


def wallet_margin(p: dict[str, Any]) -> float | None:
    """``isolatedWallet`` (= ``isolatedMargin`` − ``unRealizedProfit``)."""
    info = p.get("info") or {}
    v = num(info.get("isolatedWallet"))
    if v is None and num(info.get("isolatedMargin")) is not None:
        v = float(info["isolatedMargin"]) - (num(info.get("unRealizedProfit")) or 0.0)
    return v


def rates(exchange: Any, got: Fetched, todo: list[str]) -> None:
    lev = call(exchange, exchange.fetch_leverages, todo)
    got.leverages.update({s: float(v["longLeverage"] or v["shortLeverage"] or 0)
                          for s, v in lev.items()
                          if v.get("longLeverage") or v.get("shortLeverage")})
    raw_tiers = call(exchange, exchange.fetch_leverage_tiers, todo)
    got.tiers.update({s: t for s, t in tables_from_ccxt(raw_tiers).items() if s in todo})
    marks = call(exchange, exchange.fetch_mark_prices, todo)
    got.marks.update({s: float(t["markPrice"]) for s, t in marks.items() if t.get("markPrice")})


def history(exchange: Any, got: Fetched) -> None:
    since_ms, now_ms, markets = got.since_ms, got.now_ms, got.markets
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
    if margin_since > since_ms and not portfolio_margin(exchange):
        got.notes.append("Binance keeps margin changes for 30 days: older adds and withdrawals "
                         "are not in the import")
    for sym in symbols:
        # portfolio margin's UM positions are all cross: no isolated margin moves to read (and
        # ccxt reads them from /fapi, which a portfolio-margin key may not reach)
        if not portfolio_margin(exchange):
            got.margin.extend(paged(exchange, exchange.fetch_margin_adjustment_history,
                                    margin_since, PAGE["margin"], symbol=sym))
        liq = paged(exchange, exchange.fetch_my_liquidations, since_ms, 100, symbol=sym)
        got.liquidation_orders.update(str((x.get("info") or {}).get("orderId")) for x in liq)
    rates_of(exchange, got, symbols)


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


def portfolio_margin(exchange: Any) -> bool:
    """The client speaks to a Binance portfolio-margin account: ccxt's ``portfolioMargin``
    option (``connect(..., portfolio_margin=True)``, ``--portfolio-margin``). Binance does
    not say it on the futures API, and a portfolio-margin key cannot use /fapi, so it is the
    trader's word."""
    return bool((getattr(exchange, "options", None) or {}).get("portfolioMargin"))


def ratio_account(exchange: Any, got: Fetched) -> None:
    """Binance portfolio margin: ``GET /papi/v1/account`` gives ``accountEquity`` and
    ``accountMaintMargin`` (USD) and ``uniMMR`` = adjusted equity ÷ maintenance; Binance
    liquidates at uniMMR ≤ 105 % (FAQ "What Is the Unified Account Maintenance Margin Ratio
    (uniMMR)": ∑adjustedEquity = ∑Equity − ∑OpenLoss). The equity taken is the one uniMMR
    divides (``uniMMR × accountMaintMargin``) when Binance states both, so the sheet's ratio
    is the exchange's; else ``accountEquity``."""
    if not portfolio_margin(exchange) or exchange.id != "binanceusdm":
        return
    acct = call(exchange, exchange.papi_get_account) or {}
    equity, maint = num(acct.get("accountEquity")), num(acct.get("accountMaintMargin"))
    uni = num(acct.get("uniMMR"))
    if maint is None or (equity is None and uni is None):
        got.notes.append("Binance portfolio margin without its equity or maintenance margin "
                         "(/papi/v1/account): no account ratio")
        return
    adjusted = uni * maint if uni is not None and maint > 0 else equity
    if equity is not None and adjusted is not None and abs(adjusted - equity) > 0.01:
        got.notes.append(f"Binance's uniMMR counts {equity - adjusted:,.2f} USD of open loss "
                         f"off the account equity {equity:,.2f}")
    got.account_equity, got.account_maint = adjusted, maint
    got.liq_threshold = BINANCE_PM_THRESHOLD
    got.ratio_account = "Binance portfolio margin: liquidated when uniMMR falls to 105%"
