"""Loopback servers answering the public tier endpoints of exchanges whose conventions other
modules add (the tier fetch works for them through ccxt as soon as they are registered).

Gate (API v4, ``https://api.gateio.ws/api/v4``):

- ``GET /api/v4/spot/currencies``                    currencies (``load_markets``; empty)
- ``GET /api/v4/futures/{settle}/contracts``         markets (``load_markets``, swaps)
- ``GET /api/v4/futures/{settle}/risk_limit_tiers``  tiers (``fetch_leverage_tiers``: pages of
  ``limit`` contracts from ``offset``; ``contract=`` for one)

Hyperliquid (``https://api.hyperliquid.xyz``): ``POST /info`` with ``{"type": "meta"}``
(universe and margin tables) and ``{"type": "metaAndAssetCtxs"}`` (``load_markets``), shapes
of Hyperliquid's docs (Info endpoint, Perpetuals: "Retrieve perpetuals metadata", "...asset
contexts").

Bitget (``https://api.bitget.com``): ``GET /api/v2/spot/public/coins`` (empty) and
``GET /api/v2/mix/market/contracts`` (``load_markets``,
per ``productType``) and ``GET /api/v2/mix/market/query-position-lever`` (tiers, per
symbol), in Bitget's ``{"code": "00000", "data": ...}`` envelope, rows as ccxt's ``bitget.py``
quotes them.

Gate rows are Gate's documented shapes: the contract as quoted in ccxt's ``gate.py``
(``parse_contract_market``), the tier as in ccxt's ``fetch_market_leverage_tiers`` comment
and Gate's "List risk limit tiers" (``tier, risk_limit, initial_rate, maintenance_rate,
leverage_max, contract, deduction``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .recorded_exchange import ReplayServer


@dataclass
class GateAccount:
    contracts: list[dict[str, Any]] = field(default_factory=list)  # USDT-settled swaps
    tiers: list[dict[str, Any]] = field(default_factory=list)


def gate_contract(name: str, mark: str, leverage_max: str = "125") -> dict[str, Any]:
    """A USDT perpetual as ``GET /futures/usdt/contracts`` lists it (ccxt gate.py's quoted
    example, 0G_USDT, with the name, mark and leverage changed)."""
    return {"name": name, "type": "direct", "quanto_multiplier": "0.0001",
            "mark_type": "index", "last_price": mark, "mark_price": mark, "index_price": mark,
            "maintenance_rate": "0.004", "leverage_min": "1", "leverage_max": leverage_max,
            "risk_limit_base": "1000000", "risk_limit_step": "1000000",
            "risk_limit_max": "2000000", "order_price_round": "0.1",
            "mark_price_round": "0.01", "order_size_min": 1, "order_size_max": 1000000,
            "maker_fee_rate": "-0.0001", "taker_fee_rate": "0.00075", "funding_rate": "0.0001",
            "funding_interval": 28800, "funding_next_apply": 1784131200,
            "in_delisting": False, "status": "trading", "contract_type": "",
            "enable_decimal": False, "create_time": 1758124392, "launch_time": 1758124392}


def gate_tiers(contract: str) -> list[dict[str, Any]]:
    """Two tiers: tier 1 is ccxt's quoted Gate tier (0.4 %, 125x, risk limit 1,000,000);
    tier 2 (0.6 % to 2,000,000, 83x) is ours, with the deduction Gate's continuity rule
    gives: 1,000,000 × (0.006 − 0.004) = 2,000."""
    return [{"tier": 1, "risk_limit": "1000000", "initial_rate": "0.008",
             "maintenance_rate": "0.004", "leverage_max": "125", "contract": contract,
             "deduction": "0"},
            {"tier": 2, "risk_limit": "2000000", "initial_rate": "0.012",
             "maintenance_rate": "0.006", "leverage_max": "83.33", "contract": contract,
             "deduction": "2000"}]


def sample_gate_account() -> GateAccount:
    return GateAccount(contracts=[gate_contract("BTC_USDT", "61000.0"),
                                  gate_contract("ETH_USDT", "2900.0", "100")],
                       tiers=[*gate_tiers("BTC_USDT"), *gate_tiers("ETH_USDT")])


class FakeGate(ReplayServer):
    """Gate's public futures endpoints on 127.0.0.1 (see the module docstring); every other
    path is Gate's ``404`` (a private call would need a key)."""

    def _answer(self, req: Any, path: str, params: dict[str, str],
                fault: str | None) -> tuple[int, Any, dict[str, str]]:
        acc: GateAccount = self.account
        if fault == "429":
            return 429, {"label": "TOO_MANY_REQUESTS", "message": "Request Rate limit"}, {}
        if path == "/api/v4/spot/currencies":  # ccxt's load_markets asks; none needed here
            return 200, [], {}
        if path == "/api/v4/futures/usdt/contracts":
            return 200, acc.contracts, {}
        if path.startswith("/api/v4/futures/") and path.endswith("/contracts"):
            return 200, [], {}  # no BTC-settled swaps
        if path == "/api/v4/futures/usdt/risk_limit_tiers":
            rows = [t for t in acc.tiers if params.get("contract") in (None, "", t["contract"])]
            names = sorted({t["contract"] for t in rows})
            offset, limit = int(params.get("offset", 0)), int(params.get("limit", 100))
            page = set(names[offset:offset + limit])
            return 200, [t for t in rows if t["contract"] in page], {}
        return 404, {"label": "NOT_FOUND", "message": f"{path} not found"}, {}


# ------------------------------------------------------------------ Hyperliquid
HYPERLIQUID_META: dict[str, Any] = {
    # Hyperliquid docs, "Retrieve perpetuals metadata (universe and margin tables)": BTC and
    # ETH on table 50 (one tier, 50x), a tiered table 51 (10x, then 5x from 3,000,000)
    "universe": [{"name": "BTC", "szDecimals": 5, "maxLeverage": 50, "marginTableId": 50},
                 {"name": "ETH", "szDecimals": 4, "maxLeverage": 50, "marginTableId": 50},
                 {"name": "HPOS", "szDecimals": 0, "maxLeverage": 10, "marginTableId": 51}],
    "marginTables": [
        [50, {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": 50}]}],
        [51, {"description": "tiered 10x", "marginTiers": [
            {"lowerBound": "0.0", "maxLeverage": 10},
            {"lowerBound": "3000000.0", "maxLeverage": 5}]}]],
}


def _asset_ctx(mark: str) -> dict[str, Any]:
    """An asset context as ``metaAndAssetCtxs`` lists it (Hyperliquid's documented fields)."""
    return {"dayNtlVlm": "1169046.29406", "funding": "0.0000125", "impactPxs": [mark, mark],
            "markPx": mark, "midPx": mark, "openInterest": "688.11", "oraclePx": mark,
            "premium": "0.00031774", "prevDayPx": mark}


class FakeHyperliquid(ReplayServer):
    """Hyperliquid's public ``POST /info`` on 127.0.0.1 (``meta``, ``metaAndAssetCtxs``,
    an empty ``spotMeta``)."""

    def _answer(self, req: Any, path: str, params: dict[str, str],
                fault: str | None) -> tuple[int, Any, dict[str, str]]:
        # the base class hands a JSON body over as its object
        body = params
        if path != "/info":
            return 404, {"error": f"{path} not found"}, {}
        kind = body.get("type")
        if kind == "meta":
            return 200, HYPERLIQUID_META, {}
        if kind == "spotMeta":  # ccxt's currency list asks: no spot tokens here
            return 200, {"tokens": [], "universe": []}, {}
        if kind == "metaAndAssetCtxs":
            return 200, [HYPERLIQUID_META, [_asset_ctx("61000.0"), _asset_ctx("2900.0"),
                                            _asset_ctx("14.3")]], {}
        return 422, {"error": f"unknown info type {kind!r}"}, {}


# ------------------------------------------------------------------ Bitget
def bitget_contract(symbol: str, base: str) -> dict[str, Any]:
    """A USDT perpetual as ``GET /api/v2/mix/market/contracts`` lists it (ccxt bitget.py's
    quoted BTCUSDT row, base changed)."""
    return {"symbol": symbol, "baseCoin": base, "quoteCoin": "USDT", "buyLimitPriceRatio": "0.01",
            "sellLimitPriceRatio": "0.01", "feeRateUpRatio": "0.005", "makerFeeRate": "0.0002",
            "takerFeeRate": "0.0006", "openCostUpRatio": "0.01", "supportMarginCoins": ["USDT"],
            "minTradeNum": "0.001", "priceEndStep": "1", "volumePlace": "3", "pricePlace": "1",
            "sizeMultiplier": "0.001", "symbolType": "perpetual", "minTradeUSDT": "5",
            "maxSymbolOrderNum": "200", "maxProductOrderNum": "400", "maxPositionNum": "150",
            "symbolStatus": "normal", "offTime": "-1", "limitOpenTime": "-1",
            "deliveryTime": "", "deliveryStartTime": "", "deliveryPeriod": "", "launchTime": "",
            "fundInterval": "8", "minLever": "1", "maxLever": "125", "posLimit": "0.05",
            "maintainTime": ""}


def bitget_levels(symbol: str) -> list[dict[str, Any]]:
    """Level 1 as ccxt's bitget.py quotes Bitget's query-position-lever (0-150,000 USDT,
    125x, 0.4 %); level 2 (to 300,000, 100x, 0.5 %) is ours, in the same shape."""
    return [{"symbol": symbol, "level": "1", "startUnit": "0", "endUnit": "150000",
             "leverage": "125", "keepMarginRate": "0.004"},
            {"symbol": symbol, "level": "2", "startUnit": "150000", "endUnit": "300000",
             "leverage": "100", "keepMarginRate": "0.005"}]


class FakeBitget(ReplayServer):
    """Bitget's public mix-market endpoints on 127.0.0.1 (see the module docstring)."""

    def _answer(self, req: Any, path: str, params: dict[str, str],
                fault: str | None) -> tuple[int, Any, dict[str, str]]:
        def ok(data: Any) -> dict[str, Any]:
            return {"code": "00000", "msg": "success", "requestTime": 1700000000000,
                    "data": data}

        usdt = params.get("productType", "").upper() == "USDT-FUTURES"
        if path == "/api/v2/spot/public/coins":  # ccxt's currency list asks: none needed
            return 200, ok([]), {}
        if path == "/api/v2/mix/market/contracts":
            return 200, ok([bitget_contract("BTCUSDT", "BTC")] if usdt else []), {}
        if path == "/api/v2/mix/market/query-position-lever" and usdt:
            return 200, ok(bitget_levels(params.get("symbol", ""))), {}
        return 404, {"code": "40404", "msg": "Request URL NOT FOUND", "data": None}, {}
