"""``leverage tiers fetch``: each exchange's leverage tiers, through ccxt, with no key where
the exchange publishes them.

- Bybit: ``GET /v5/market/risk-limit`` (public), ccxt ``fetch_leverage_tiers``.
- OKX: ``GET /api/v5/public/position-tiers`` (public), ccxt ``fetch_market_leverage_tiers``
  per market; OKX bounds its swap tiers in contracts, which are turned into quote notional
  at the fetch's mark (:func:`exchange_bridge.fetch_okx.okx_tiers_in_notional`).
- Gate (``GET /futures/usdt/risk_limit_tiers``) and Bitget (``GET /api/v2/mix/market/
  query-position-lever``): public too, ccxt ``fetch_leverage_tiers`` /
  ``fetch_market_leverage_tiers``, as soon as their conventions are registered.
- Hyperliquid: ccxt reads no tiers; ``POST /info {"type": "meta"}`` (public) gives each
  asset's margin table (or only its ``maxLeverage``), and its maintenance margin is half the
  initial margin at a tier's maximum leverage: rate ``1 / (2 × maxLeverage)``.
- Binance: ``/fapi/v1/leverageBracket`` needs a key; without one the shipped snapshot of every
  USDⓈ-M symbol answers (leverage/data/SOURCES.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from leverage.conventions.hyperliquid import margin_table_tiers

from .client import ExchangeError, call

KEYED = frozenset({"binanceusdm", "binancecoinm"})
"""The exchanges whose tiers ccxt reads only with an API key."""
PARAMS: dict[str, dict[str, str]] = {"gate": {"type": "swap"}}  # ccxt's default there: spot


def _symbols(exchange: Any, wanted: Sequence[str] | None) -> list[str]:
    """ccxt symbols of ``wanted`` (a market id ``BTCUSDT`` or a ccxt symbol), or every
    active linear perpetual."""
    if wanted:
        out = []
        for s in wanted:
            market = exchange.markets.get(s) or exchange.markets_by_id.get(s)
            if isinstance(market, list):  # ccxt keeps a list per id
                market = market[0] if market else None
            if market is None:
                raise ExchangeError(f"symbol must be a market of {exchange.id}, got {s!r}")
            out.append(market["symbol"])
        return out
    return sorted(s for s, m in exchange.markets.items()
                  if m.get("swap") and m.get("linear") and m.get("active") is not False)


def fetch_tiers(exchange: Any, wanted: Sequence[str] | None = None) -> dict[str, Any]:
    """ccxt ``fetch_leverage_tiers()``-shaped tables ({symbol: [tier, ...]}) of ``wanted``
    (default: every active linear perpetual) from ``exchange``, a connected ccxt client."""
    symbols = _symbols(exchange, wanted)
    if exchange.id == "hyperliquid":
        return _hyperliquid_tiers(exchange, symbols)
    if exchange.id == "okx":
        from .fetch_okx import okx_tiers_in_notional

        marks = call(exchange, exchange.fetch_mark_prices, symbols)
        out = {}
        for s in symbols:
            mark = (marks.get(s) or {}).get("markPrice")
            rows = call(exchange, exchange.fetch_market_leverage_tiers, s)
            out[s] = okx_tiers_in_notional(rows, exchange.market(s),
                                           float(mark) if mark else None)
        return out
    has = exchange.has
    if has.get("fetchLeverageTiers") and (not wanted or exchange.id in KEYED):
        fetched = call(exchange, exchange.fetch_leverage_tiers, symbols if wanted else None,
                       params=PARAMS.get(exchange.id, {}))
        return {s: t for s, t in fetched.items() if s in symbols}
    if has.get("fetchMarketLeverageTiers"):
        return {s: call(exchange, exchange.fetch_market_leverage_tiers, s) for s in symbols}
    raise ExchangeError(f"ccxt reads no leverage tiers of {exchange.id}")


def _hyperliquid_tiers(exchange: Any, symbols: list[str]) -> dict[str, Any]:
    """Hyperliquid's ``POST /info {"type": "meta"}``: each asset's margin table
    (``marginTables``, by the asset's ``marginTableId``: tiers from ``lowerBound`` at up to
    ``maxLeverage``), else one tier at its ``maxLeverage``. Maintenance margin is half the
    initial margin at a tier's maximum leverage: rate ``1 / (2 × maxLeverage)``; the
    maintenance amount follows from continuity (Hyperliquid's "maintenance deduction")."""
    meta = call(exchange, exchange.publicPostInfo, {"type": "meta"})
    tables = {int(t[0]): (t[1] or {}).get("marginTiers") or []
              for t in meta.get("marginTables") or [] if isinstance(t, list) and len(t) == 2}
    universe = meta.get("universe") or []
    out: dict[str, Any] = {}
    for s in symbols:
        market = exchange.market(s)
        asset = universe[int(market["id"])] if str(market["id"]).isdigit() \
            and int(market["id"]) < len(universe) else market.get("info") or {}
        tiers = tables.get(int(asset.get("marginTableId", -1)), []) or [
            {"lowerBound": "0", "maxLeverage": asset.get("maxLeverage")}]
        try:
            rows = margin_table_tiers(tiers)
        except ValueError:
            continue  # no readable table: no tiers for this asset (the body check names bad ones)
        for row in rows:
            row["currency"] = market.get("quote")
        if rows:
            out[s] = rows
    return out
