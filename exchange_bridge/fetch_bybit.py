"""Bybit v5 (``bybit``): what :mod:`.fetch` asks of an exchange's fetch module (see its doc).

Fills, liquidation fills (``BustTrade``), funding and closed positions in windows of at most
7 days, each paged with the ``cursor`` Bybit returns; no margin-change history.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from leverage.portfolio import BYBIT_UTA_THRESHOLD
from leverage.tiers import tables_from_ccxt

from .client import call
from .fetch import PAGE, Fetched, num, rates_of, unified_balances, windows

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
    for start, end in windows(since, until):
        cursor = None
        while True:
            extra = {"until": end, "limit": PAGE["bybit"], **({"cursor": cursor} if cursor else {})}
            page = call(exchange, fetch, since=start, params={**params, **extra}, **kwargs)
            out.extend(page)
            cursor = next((r["info"]["nextPageCursor"] for r in page
                           if (r.get("info") or {}).get("nextPageCursor")), None)
            if not cursor or not page:
                break
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


RATIO_MODES = {"REGULAR_MARGIN": "cross margin", "PORTFOLIO_MARGIN": "portfolio margin"}
"""The unified account's margin modes (``GET /v5/account/info`` ``marginMode``) in which Bybit
liquidates the account when its account MM rate reaches 100 %; in ``ISOLATED_MARGIN`` each
position has its own liquidation price."""


def ratio_account(exchange: Any, got: Fetched) -> None:
    """A unified trading account in cross or portfolio margin: ``GET /v5/account/wallet-balance``
    (``accountType`` UNIFIED; ccxt's ``fetch_balance`` keeps it in ``info``) gives
    ``totalMaintenanceMargin`` and the equity Bybit's account MM rate divides it by:
    ``totalMarginBalance`` in cross margin, ``totalEquity`` in portfolio margin (help centre,
    "Glossary (Unified Trading Account)": Account MM Rate = Total Maintenance Margin /
    (Margin Balance − Haircut Loss + Order Loss); the haircut and order losses are not in the
    API). The maintenance and equity are taken, not ``accountMMRate``, which Bybit rounds to
    4 decimals (ccxt's quoted answer: maintenance 0.38106773 on 18,070.33 shows "0"); a
    rate that disagrees beyond that rounding is noted."""
    mode = str(((call(exchange, exchange.private_get_v5_account_info) or {}).get("result")
                or {}).get("marginMode") or "")
    if mode not in RATIO_MODES:
        return
    info = call(exchange, exchange.fetch_balance).get("info") or {}
    rows = (info.get("result") or {}).get("list") or []
    acct = next((r for r in rows if r.get("accountType") == "UNIFIED"), None)
    if acct is None:
        return
    equity = num(acct.get("totalMarginBalance" if mode == "REGULAR_MARGIN" else "totalEquity"))
    maint = num(acct.get("totalMaintenanceMargin"))
    if equity is None or maint is None:
        got.notes.append(f"Bybit unified account ({RATIO_MODES[mode]}) without its equity or "
                         "maintenance margin in the wallet balance: no account ratio")
        return
    got.account_equity, got.account_maint = equity, maint
    got.liq_threshold = BYBIT_UTA_THRESHOLD
    got.ratio_account = (f"Bybit unified trading account, {RATIO_MODES[mode]}: liquidated when "
                         "the account MM rate reaches 100%")
    rate = num(acct.get("accountMMRate"))
    if rate is not None and equity > 0 and abs(maint / equity - rate) > 0.00005 + 1e-12:
        got.notes.append(f"Bybit's account MM rate {rate:.2%} is not its maintenance ÷ margin "
                         f"balance ({maint / equity:.2%}): haircut or order losses count in it")
