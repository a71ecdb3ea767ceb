"""Hyperliquid (``hyperliquid``): what :mod:`.fetch` asks of an exchange's fetch module (see its
doc), read by wallet address alone.

Hyperliquid's info endpoint (``POST /info``) is public: ccxt reads an account with its
``walletAddress`` and no key (:func:`leverage_exchange.client.wallet_credentials`). Positions and
the cross account come from ``clearinghouseState``, fills from ``userFillsByTime``, funding from
``userFunding``, maximum leverage and margin tables from ``metaAndAssetCtxs``, a closed
position's leverage setting from ``activeAssetData``.

Fills and funding are paged by time: each answer holds at most the server's page (2,000 fills,
500 funding rows), oldest first from ``startTime``, and the next page starts at the last row's
time; the loop ends when a page brings nothing new, whatever the server's page size.

What the import cannot read is said in its notes: Hyperliquid's ledger
(``userNonFundingLedgerUpdates``) lists deposits, withdrawals, transfers, vault flows and
liquidations, never isolated margin added to or removed from a position, so the net margin moved
on each open isolated position is journaled as one line at the import (the exchange's margin
less the journal's, :func:`leverage_exchange.convert._unseen_margin` with the margin history
starting at the exchange's now).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from leverage.conventions.hyperliquid import margin_table_tiers
from leverage.tiers import tables_from_ccxt

from .client import call
from .fetch import Fetched, num, rates_of

MARKET_TYPES = ("swap",)  # the USDC perpetuals only: spot and HIP-3 dexes are not read
# Hyperliquid settles funding into the position's margin (an isolated position's marginUsed
# moves with cumFunding.sinceOpen): the journal's rule
FUNDING_ON_BALANCE = False
MARGIN_FROM_LEVERAGE = True  # margin at an open is the notional ÷ the leverage setting ...
# ... less the fill's fee: Hyperliquid takes an isolated open's fee from the margin it posts
# (freqtrade's recorded positions: ETH 0.0199 at 2,459.5, 2x: 48.94405 / 2 − 0.035 % of
# 48.94405 = 24.454895, Hyperliquid's marginUsed at zero PnL)
FEE_FROM_MARGIN = True
BY_ADDRESS = True  # read by wallet address: no API key
UNSEEN_MARGIN = ("isolated margin added or removed (net: the exchange's margin now, less the "
                 "journal's): Hyperliquid's API lists no margin moves")


def journal_market(market: dict[str, Any]) -> dict[str, Any]:
    """The market as the journal names it: ccxt's id of a Hyperliquid perpetual is the asset's
    index (``"0"`` for BTC); the journal's symbol and position ids use the coin (``BTC``)."""
    return {**market, "id": str(market.get("baseName") or market["base"])}


def families(exchange: Any) -> list[dict[str, Any]]:
    return [{}]  # one clearinghouseState holds every perpetual position


def _state(exchange: Any) -> dict[str, Any]:
    """The account summary (``clearinghouseState``): ``crossMarginSummary``, ``withdrawable``,
    ``assetPositions``, read through ccxt's own endpoint method."""

    def account_summary() -> Any:
        return exchange.publicPostInfo({"type": "clearinghouseState",
                                        "user": exchange.walletAddress})

    state = call(exchange, account_summary)
    if not isinstance(state, dict):
        raise TypeError(f"clearinghouseState is {type(state).__name__}, not an object")
    return state


def _cross_wallet(state: dict[str, Any]) -> float | None:
    """The cross account without unrealized PnL: ``crossMarginSummary.accountValue`` (cross
    equity: the cross balance plus the cross positions' unrealized PnL; isolated margin is not
    in it) less the cross positions' ``unrealizedPnl``. The core adds each position's PnL back
    from its entry (``CROSS_LIQ_PRICE``'s ``wallet_balance``)."""
    value = num((state.get("crossMarginSummary") or {}).get("accountValue"))
    if value is None:
        return None
    for ap in state.get("assetPositions") or []:
        pos = ap.get("position") or {}
        if (pos.get("leverage") or {}).get("type") == "cross":
            value -= num(pos.get("unrealizedPnl")) or 0.0
    return value


def cross_wallet(exchange: Any, balance: dict[str, Any]) -> Any:
    info = balance.get("info") or {}
    # ccxt reads a unified account's spot balances instead: then the summary is asked for
    return _cross_wallet(info if "crossMarginSummary" in info else _state(exchange))


def balances(exchange: Any, wallet: float | None) -> tuple[Any, Any]:
    """The cross wallet (``wallet`` when the fetch had it) and ``withdrawable`` (what can leave
    the perp account, Hyperliquid's free balance)."""
    state = _state(exchange)
    return (_cross_wallet(state) if wallet is None else wallet), state.get("withdrawable")


def wallet_margin(p: dict[str, Any]) -> float | None:
    """``marginUsed − unrealizedPnl``. Hyperliquid's formula (docs, "Liquidations") evaluates
    ``margin_available = isolated_margin − maintenance`` at the mark price, where its isolated
    margin is ``marginUsed``: the margin posted plus the position's unrealized PnL. The
    journal's margin is evaluated at entry, so the PnL comes off. Not ``positionValue ÷
    leverage``: that is the initial margin the position would need at today's mark, blind to
    margin added, funding and the opening fee."""
    pos = (p.get("info") or {}).get("position") or {}
    used, upnl = num(pos.get("marginUsed")), num(pos.get("unrealizedPnl"))
    return None if used is None else used - (upnl or 0.0)


def rates(exchange: Any, got: Fetched, todo: list[str]) -> None:
    """Tiers and marks from one ``metaAndAssetCtxs`` (an asset's margin table, or its maximum
    leverage as a single tier: docs, "Margin tiers", a table id under 50 is one tier at that
    leverage); the leverage setting of a traded symbol with no open position from
    ``activeAssetData`` (today's setting, as Binance's ``symbolConfig``)."""

    def margin_tables_and_marks() -> Any:
        return exchange.publicPostInfo({"type": "metaAndAssetCtxs"})

    answer = call(exchange, margin_tables_and_marks)
    meta, ctxs = answer[0], answer[1]
    tables = {int(i): t.get("marginTiers") for i, t in meta.get("marginTables") or []}
    by_name = {u["name"]: (u, ctxs[i] if i < len(ctxs) else {})
               for i, u in enumerate(meta["universe"])}
    raw: dict[str, Any] = {}
    for s in todo:
        coin = exchange.market(s).get("baseName")
        asset, ctx = by_name.get(coin, (None, {}))
        if asset is None:
            continue
        tiers = tables.get(int(asset.get("marginTableId") or -1)) or [
            {"lowerBound": "0", "maxLeverage": asset["maxLeverage"]}]
        raw[s] = margin_table_tiers(tiers)
        mark = num(ctx.get("markPx"))
        if mark is not None and mark > 0:
            got.marks[s] = mark
        if s not in got.leverages:
            setting = _leverage_setting(exchange, coin)
            lev = num(setting.get("value"))
            if lev:
                got.leverages[s] = lev
            if setting.get("type") in ("isolated", "cross"):
                got.margin_modes.setdefault(s, str(setting["type"]))
    got.tiers.update({s: t for s, t in tables_from_ccxt(raw).items() if s in todo})


def _leverage_setting(exchange: Any, coin: str) -> dict[str, Any]:
    """The coin's leverage setting today (``{"type": "isolated", "value": 5}``)."""

    def leverage_setting() -> Any:
        return exchange.publicPostInfo({"type": "activeAssetData",
                                        "user": exchange.walletAddress, "coin": coin})

    answer = call(exchange, leverage_setting)
    return (answer or {}).get("leverage") or {}


def paged_by_time(exchange: Any, fetch: Callable[..., list[dict[str, Any]]], since: int,
                  until: int, key: Callable[[dict[str, Any]], Any]) -> list[dict[str, Any]]:
    """Every row from ``since`` to ``until`` (ms): each page starts at the last row's time
    (rows sharing it are asked for again and dropped by ``key``); a page of nothing new moves
    past that time, and an empty page ends it. The page size is the server's: no count of rows
    says a page was the last."""
    out: list[dict[str, Any]] = []
    seen: set[Any] = set()
    while since <= until:
        page = call(exchange, fetch, since=since, params={"until": until})
        if not page:
            break
        fresh = [r for r in page if key(r) not in seen]
        out.extend(fresh)
        seen.update(key(r) for r in fresh)
        last = max(int(r["timestamp"]) for r in page)
        since = last if fresh and last > since else max(last, since) + 1
    return out


def history(exchange: Any, got: Fetched) -> None:
    user = str(exchange.walletAddress).lower()
    got.trades = paged_by_time(exchange, exchange.fetch_my_trades, got.since_ms, got.now_ms,
                               lambda t: t.get("id"))
    got.trades.sort(key=lambda t: (int(t["timestamp"]), str(t.get("id"))))
    # a fill of this account's liquidation names the account as the liquidated user
    got.liquidation_orders.update(
        str(t.get("order")) for t in got.trades
        if str(((t.get("info") or {}).get("liquidation") or {}).get("liquidatedUser")
               or "").lower() == user)
    funding = paged_by_time(exchange, exchange.fetch_funding_history, got.since_ms, got.now_ms,
                            lambda f: (f.get("timestamp"), f.get("symbol")))
    # Hyperliquid's funding rows carry an all-zero hash: the coin and the hour name each one
    # (``usdc`` is what the account received, the journal's sign)
    got.funding = [{**f, "id": f"{(f.get('info') or {}).get('delta', {}).get('coin')}-"
                               f"{f['timestamp']}"} for f in funding]
    got.margin_since = got.now_ms
    got.notes.append("Hyperliquid's API keeps no history of isolated margin added or removed: "
                     "the net margin moved on each open isolated position is journaled as one "
                     "line at the import (the exchange's margin less the journal's)")
    rates_of(exchange, got, got.traded_symbols())
