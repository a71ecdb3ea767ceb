"""A loopback exchange: Binance USDⓈ-M (``/fapi``) or COIN-M (``/dapi``) futures, in Binance's JSON.

Real ccxt exchange objects talk to it over HTTP once their API URLs point here
(``exchange_bridge.client.redirect``); nothing in ccxt is mocked. The server is stdlib only (a
``ThreadingHTTPServer`` on 127.0.0.1 in a background thread) and holds one recorded account:

- ``GET /fapi/v1/exchangeInfo``         markets (what ``load_markets`` reads)
- ``GET /fapi/v3/positionRisk``         open positions (``fetch_positions``)
- ``GET /fapi/v1/positionMargin/history`` margin changes (``fetch_margin_adjustment_history``)
- ``GET /fapi/v1/income``               income, ``FUNDING_FEE`` (``fetch_funding_history``)
- ``GET /fapi/v1/userTrades``           fills (``fetch_my_trades``)
- ``GET /fapi/v1/forceOrders``          liquidation orders (``fetch_my_liquidations``)
- ``GET /fapi/v1/leverageBracket``      tiers (``fetch_leverage_tiers``)
- ``GET /fapi/v1/premiumIndex``         mark prices (``fetch_mark_prices``)

With ``api="dapi"`` the same endpoints answer under ``/dapi`` (COIN-M: ``/dapi/v1/positionRisk``,
``/dapi/v2/leverageBracket`` with ``qtyFloor``/``qtyCap``, leverage from ``/dapi/v1/account``).
Shapes follow Binance's API docs (developers.binance.com, USDⓈ-M futures REST API) field for
field. Signed endpoints need ``X-MBX-APIKEY`` and a ``signature``; an unknown key gets Binance's
``-2015`` 401. Lists are filtered by ``symbol``/``startTime``/``endTime`` and cut at ``limit``
(each endpoint's documented default and maximum), oldest first, so a long history takes pages.
``fail(path, "429")`` answers the next request to ``path`` with Binance's ``-1003`` rate limit;
``fail(path, "timeout")`` stalls it longer than the client waits. Every request is logged.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlsplit

API_KEY = "test-read-only-key"
API_SECRET = "test-secret-never-shown"
DAY_MS = 86_400_000


class Logged(NamedTuple):
    method: str
    path: str
    params: dict[str, str]
    status: int


def market(symbol: str, base: str, quote: str = "USDT") -> dict[str, Any]:
    """One ``exchangeInfo`` symbol, as Binance lists a USDⓈ-M perpetual."""
    return {
        "symbol": symbol, "pair": symbol, "contractType": "PERPETUAL",
        "deliveryDate": 4133404800000, "onboardDate": 1569398400000, "status": "TRADING",
        "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
        "baseAsset": base, "quoteAsset": quote, "marginAsset": quote,
        "pricePrecision": 2, "quantityPrecision": 3, "baseAssetPrecision": 8,
        "quotePrecision": 8, "underlyingType": "COIN", "underlyingSubType": [],
        "triggerProtect": "0.0500", "liquidationFee": "0.012500", "marketTakeBound": "0.05",
        "maxMoveOrderLimit": 10000,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.10", "maxPrice": "4529764",
             "tickSize": "0.10"},
            {"filterType": "LOT_SIZE", "minQty": "0.001", "maxQty": "1000", "stepSize": "0.001"},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.001", "maxQty": "120",
             "stepSize": "0.001"},
            {"filterType": "MAX_NUM_ORDERS", "limit": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
            {"filterType": "MIN_NOTIONAL", "notional": "5"},
            {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500",
             "multiplierDecimal": "4"},
        ],
        "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT",
                       "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
        "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
    }


def position(symbol: str, side: str, amt: str, entry: str, mark: str, liq: str,
             isolated_margin: str, leverage: int = 10, update: int = 0) -> dict[str, Any]:
    """One ``positionRisk`` row (v3 fields, plus ``leverage``/``marginType`` of v2)."""
    notional = float(amt) * float(mark)
    upnl = (float(mark) - float(entry)) * float(amt) if float(amt) else 0.0
    return {
        "symbol": symbol, "positionSide": side, "positionAmt": amt, "entryPrice": entry,
        "breakEvenPrice": entry, "markPrice": mark, "unRealizedProfit": f"{upnl:.8f}",
        "liquidationPrice": liq, "isolatedMargin": isolated_margin,
        "notional": f"{notional:.8f}", "marginAsset": "USDT",
        "isolatedWallet": isolated_margin, "initialMargin": f"{abs(notional) / leverage:.8f}",
        "maintMargin": "0", "positionInitialMargin": f"{abs(notional) / leverage:.8f}",
        "openOrderInitialMargin": "0", "adl": 1, "bidNotional": "0", "askNotional": "0",
        "updateTime": update, "leverage": str(leverage),
        "marginType": "isolated" if float(isolated_margin) else "cross",
    }


@dataclass
class Account:
    """The recorded account the fake serves (Binance field names, strings as Binance sends)."""

    markets: list[dict[str, Any]] = field(default_factory=list)
    positions: list[dict[str, Any]] = field(default_factory=list)
    margin_history: list[dict[str, Any]] = field(default_factory=list)
    income: list[dict[str, Any]] = field(default_factory=list)
    trades: list[dict[str, Any]] = field(default_factory=list)
    force_orders: list[dict[str, Any]] = field(default_factory=list)
    brackets: list[dict[str, Any]] = field(default_factory=list)
    marks: dict[str, str] = field(default_factory=dict)
    symbol_config: list[dict[str, Any]] = field(default_factory=list)
    wallet_balance: str = "1000.00000000"


# (default limit, maximum limit, time field) of each list endpoint, from Binance's docs
_LISTS = {
    "/v1/positionMargin/history": (500, 500, "time"),
    "/v1/income": (100, 1000, "time"),
    "/v1/userTrades": (500, 1000, "time"),
    "/v1/forceOrders": (50, 100, "time"),
}
# the same endpoint under each API's version: USDⓈ-M (fapi) and COIN-M (dapi)
_VERSIONS = {
    "fapi": {"positions": ("/v3/positionRisk", "/v2/positionRisk"),
             "brackets": ("/v1/leverageBracket",), "account": ("/v3/account",)},
    "dapi": {"positions": ("/v1/positionRisk",), "brackets": ("/v2/leverageBracket",),
             "account": ("/v1/account",)},
}


class FakeBinanceFutures:
    """Binance USDⓈ-M futures on 127.0.0.1 (see the module docstring)."""

    def __init__(self, account: Account, *, stall_seconds: float = 3.0, api: str = "fapi") -> None:
        self.account = account
        self.api = api  # "fapi" (USDⓈ-M) or "dapi" (COIN-M)
        self.stall_seconds = stall_seconds
        self.log: list[Logged] = []
        self.server_errors: list[str] = []
        self._faults: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle
    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake._handle(self)

            def do_POST(self) -> None:
                fake._handle(self)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.01},
                         daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeBinanceFutures:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls
    def fail(self, path: str, *faults: str) -> None:
        """Answer the next requests to ``path`` with these faults: ``"429"`` or ``"timeout"``."""
        with self._lock:
            self._faults.setdefault(path, []).extend(faults)

    def paths(self) -> list[str]:
        return [e.path for e in self.log]

    def clear_log(self) -> None:
        with self._lock:
            self.log.clear()

    # -- serving
    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        url = urlsplit(req.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        length = int(req.headers.get("Content-Length") or 0)
        if length:
            params.update(parse_qsl(req.rfile.read(length).decode(), keep_blank_values=True))
        with self._lock:
            fault = self._faults[url.path].pop(0) if self._faults.get(url.path) else None
        if fault == "timeout":
            time.sleep(self.stall_seconds)
        try:
            status, body, headers = self._answer(req, url.path, params, fault)
        except Exception as exc:  # a bug in the fake: show it to the test, answer 500
            self.server_errors.append(repr(exc))
            status, body, headers = 500, {"code": -1000, "msg": "fake failed"}, {}
        with self._lock:
            self.log.append(Logged(req.command, url.path, params, status))
        data = json.dumps(body).encode()
        with contextlib.suppress(OSError):
            req.send_response(status)
            req.send_header("Content-Type", "application/json")
            req.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                req.send_header(k, v)
            req.end_headers()
            req.wfile.write(data)

    def _answer(self, req: Any, path: str, params: dict[str, str],
                fault: str | None) -> tuple[int, Any, dict[str, str]]:
        if fault == "429":
            return 429, {"code": -1003, "msg": "Too many requests; current limit of IP is 2400 "
                                               "requests per minute."}, {"Retry-After": "0"}
        acc = self.account
        signed = req.headers.get("X-MBX-APIKEY") == API_KEY and "signature" in params
        prefix = f"/{self.api}"
        if not path.startswith(prefix + "/"):
            return 404, {"code": -5000, "msg": f"Path {path}, Method GET is invalid"}, {}
        path = path[len(prefix):]
        ver = _VERSIONS[self.api]
        private = {*_LISTS, *ver["positions"], *ver["brackets"], *ver["account"],
                   "/v1/symbolConfig"}
        if path in private and not signed:
            return 401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for "
                                               "action."}, {}
        if path == "/v1/exchangeInfo":
            return 200, {"timezone": "UTC", "serverTime": _now(), "futuresType": "U_MARGINED",
                         "rateLimits": [], "exchangeFilters": [],
                         "assets": [{"asset": "USDT", "marginAvailable": True,
                                     "autoAssetExchange": "-10000"}],
                         "symbols": acc.markets}, {}
        if path == "/v1/time":
            return 200, {"serverTime": _now()}, {}
        if path in ver["positions"]:
            return 200, _by_symbol(acc.positions, params), {}
        if path == "/v1/symbolConfig" and self.api == "fapi":
            return 200, _by_symbol(acc.symbol_config, params), {}
        if path in ver["account"] and self.api == "dapi":
            return 200, _coinm_account(acc), {}
        if path in ver["account"]:
            w = acc.wallet_balance
            return 200, {"totalInitialMargin": "0", "totalMaintMargin": "0",
                         "totalWalletBalance": w, "totalUnrealizedProfit": "0",
                         "totalMarginBalance": w, "totalPositionInitialMargin": "0",
                         "totalOpenOrderInitialMargin": "0", "totalCrossWalletBalance": w,
                         "totalCrossUnPnl": "0", "availableBalance": w, "maxWithdrawAmount": w,
                         "assets": [{"asset": "USDT", "walletBalance": w, "unrealizedProfit": "0",
                                     "marginBalance": w, "maintMargin": "0",
                                     "initialMargin": "0", "positionInitialMargin": "0",
                                     "openOrderInitialMargin": "0", "crossWalletBalance": w,
                                     "crossUnPnl": "0", "availableBalance": w,
                                     "maxWithdrawAmount": w, "updateTime": _now()}],
                         "positions": []}, {}
        if path in ver["brackets"]:
            return 200, _by_symbol(acc.brackets, params), {}
        if path == "/v1/premiumIndex":
            rows = [{"symbol": s, "markPrice": p, "indexPrice": p, "estimatedSettlePrice": p,
                     "lastFundingRate": "0.00010000", "interestRate": "0.00010000",
                     "nextFundingTime": _now() + 3_600_000, "time": _now()}
                    for s, p in acc.marks.items()]
            rows = _by_symbol(rows, params)
            if "symbol" in params:
                return (200, rows[0], {}) if rows else (400, {"code": -1121,
                                                              "msg": "Invalid symbol."}, {})
            return 200, rows, {}
        if path in _LISTS:
            source = {
                "/v1/positionMargin/history": acc.margin_history,
                "/v1/income": acc.income,
                "/v1/userTrades": acc.trades,
                "/v1/forceOrders": acc.force_orders,
            }[path]
            return 200, _page(path, source, params), {}
        return 404, {"code": -5000, "msg": f"Path {path}, Method GET is invalid"}, {}


def _coinm_account(acc: Account) -> dict[str, Any]:
    """COIN-M ``/dapi/v1/account``: per-coin balances and each symbol's leverage."""
    coins = sorted({m["marginAsset"] for m in acc.markets})
    w = acc.wallet_balance
    return {
        "assets": [{"asset": c, "walletBalance": w, "unrealizedProfit": "0", "marginBalance": w,
                    "maintMargin": "0", "initialMargin": "0", "positionInitialMargin": "0",
                    "openOrderInitialMargin": "0", "maxWithdrawAmount": w,
                    "crossWalletBalance": w, "crossUnPnl": "0", "availableBalance": w}
                   for c in coins],
        "positions": [{"symbol": c["symbol"], "positionAmt": "0", "initialMargin": "0",
                       "maintMargin": "0", "unrealizedProfit": "0",
                       "positionInitialMargin": "0", "openOrderInitialMargin": "0",
                       "leverage": str(c["leverage"]), "isolated": c["marginType"] == "ISOLATED",
                       "positionSide": "BOTH", "entryPrice": "0.0", "maxQty": "250",
                       "updateTime": 0} for c in acc.symbol_config],
        "canDeposit": True, "canTrade": True, "canWithdraw": True, "feeTier": 0,
        "updateTime": _now(),
    }


def _now() -> int:
    return int(time.time() * 1000)


def _by_symbol(rows: list[dict[str, Any]], params: dict[str, str]) -> list[dict[str, Any]]:
    sym = params.get("symbol")
    return [r for r in rows if sym is None or r.get("symbol") == sym]


def _page(path: str, rows: list[dict[str, Any]], params: dict[str, str]) -> list[dict[str, Any]]:
    default, most, key = _LISTS[path]
    limit = min(int(params.get("limit") or default), most)
    start = int(params["startTime"]) if "startTime" in params else None
    end = int(params["endTime"]) if "endTime" in params else None
    kept = [r for r in _by_symbol(rows, params)
            if (start is None or r[key] >= start) and (end is None or r[key] <= end)
            and ("incomeType" not in params or r.get("incomeType") == params["incomeType"])]
    if "type" in params and path.endswith("positionMargin/history"):
        kept = [r for r in kept if str(r["type"]) == params["type"]]
    kept.sort(key=lambda r: r[key])
    return kept[:limit]


@contextlib.contextmanager
def serving(account: Account) -> Iterator[FakeBinanceFutures]:
    with FakeBinanceFutures(account) as fake:
        yield fake


# --------------------------------------------------------------------------------------------
# A recorded account with every case the import handles


def bracket(symbol: str) -> dict[str, Any]:
    """Binance's documented ``leverageBracket`` answer (the 125x BTCUSDT brackets 1-3)."""
    return {"symbol": symbol, "notionalCoef": 1.0, "brackets": [
        {"bracket": 1, "initialLeverage": 125, "notionalCap": 50000, "notionalFloor": 0,
         "maintMarginRatio": 0.004, "cum": 0.0},
        {"bracket": 2, "initialLeverage": 100, "notionalCap": 250000, "notionalFloor": 50000,
         "maintMarginRatio": 0.005, "cum": 50.0},
        {"bracket": 3, "initialLeverage": 50, "notionalCap": 3000000, "notionalFloor": 250000,
         "maintMarginRatio": 0.01, "cum": 1300.0},
    ]}


def trade(tid: int, order: int, symbol: str, side: str, qty: str, price: str, t: int,
          position_side: str = "BOTH", pnl: str = "0") -> dict[str, Any]:
    """One ``userTrades`` row."""
    return {"buyer": side == "BUY", "commission": f"{float(qty) * float(price) * 0.0005:.8f}",
            "commissionAsset": "USDT", "id": tid, "maker": False, "orderId": order,
            "price": price, "qty": qty, "quoteQty": f"{float(qty) * float(price):.8f}",
            "realizedPnl": pnl, "side": side, "positionSide": position_side, "symbol": symbol,
            "time": t}


def income(tran: int, symbol: str, kind: str, amount: str, t: int) -> dict[str, Any]:
    """One ``income`` row."""
    return {"symbol": symbol, "incomeType": kind, "income": amount, "asset": "USDT",
            "info": kind, "time": t, "tranId": tran, "tradeId": ""}


def margin_line(symbol: str, kind: int, delta: str, amount: str, t: int,
                position_side: str = "BOTH") -> dict[str, Any]:
    """One ``positionMargin/history`` row (``type`` 1 add, 2 reduce)."""
    return {"symbol": symbol, "type": kind, "deltaType": delta, "amount": amount,
            "asset": "USDT", "time": t, "positionSide": position_side, "clientTranId": ""}


def sample_account(now_ms: int | None = None) -> Account:
    """BTCUSDT isolated one-way (open, funding twice, margin add, partial close, still open),
    ETHUSDT cross hedge mode (an empty LONG leg, an open SHORT), SOLUSDT isolated opened and
    liquidated. Times are within the last 30 days (Binance keeps margin history that long)."""
    now = now_ms or _now()
    t0 = now - 20 * DAY_MS
    h = 3_600_000
    acc = Account(
        markets=[market("BTCUSDT", "BTC"), market("ETHUSDT", "ETH"), market("SOLUSDT", "SOL")],
        brackets=[bracket("BTCUSDT"), bracket("ETHUSDT"), bracket("SOLUSDT")],
        marks={"BTCUSDT": "61000.00", "ETHUSDT": "2900.00", "SOLUSDT": "140.00"},
        symbol_config=[
            {"symbol": s, "marginType": m, "isAutoAddMargin": "false", "leverage": lev,
             "maxNotionalValue": "1000000"}
            for s, m, lev in (("BTCUSDT", "ISOLATED", 10), ("ETHUSDT", "CROSSED", 5),
                              ("SOLUSDT", "ISOLATED", 10))
        ],
    )
    acc.trades = [
        trade(101, 1, "BTCUSDT", "BUY", "0.004", "60000.00", t0),
        trade(102, 1, "BTCUSDT", "BUY", "0.006", "60000.00", t0 + 50),
        trade(103, 2, "BTCUSDT", "SELL", "0.004", "62000.00", t0 + 2 * DAY_MS, pnl="8.0"),
        trade(201, 3, "ETHUSDT", "SELL", "0.500", "3000.00", t0 + 3 * DAY_MS, "SHORT"),
        trade(301, 4, "SOLUSDT", "BUY", "10", "150.00", t0 + 4 * DAY_MS),
        trade(302, 5, "SOLUSDT", "SELL", "10", "136.50", t0 + 5 * DAY_MS, pnl="-135.0"),
    ]
    acc.force_orders = [{"orderId": 5, "symbol": "SOLUSDT", "status": "FILLED",
                         "clientOrderId": "autoclose-1", "price": "136.50", "avgPrice": "136.50",
                         "origQty": "10", "executedQty": "10", "cumQuote": "1365",
                         "timeInForce": "IOC", "type": "LIMIT", "reduceOnly": False,
                         "closePosition": False, "side": "SELL", "positionSide": "BOTH",
                         "stopPrice": "0", "workingType": "CONTRACT_PRICE",
                         "origType": "LIMIT", "time": t0 + 5 * DAY_MS,
                         "updateTime": t0 + 5 * DAY_MS}]
    acc.income = [
        income(1001, "BTCUSDT", "FUNDING_FEE", "-0.30000000", t0 + 8 * h),
        income(1002, "ETHUSDT", "FUNDING_FEE", "-0.10000000", t0 + 3 * DAY_MS + 8 * h),
    ] + [income(2000 + i, tr["symbol"], "COMMISSION", "-" + tr["commission"], tr["time"])
         for i, tr in enumerate(acc.trades)]
    acc.margin_history = [
        margin_line("BTCUSDT", 1, "TRADE", "60.00000000", t0),
        margin_line("BTCUSDT", 2, "FUNDING_FEE", "0.30000000", t0 + 8 * h),  # also in income
        margin_line("BTCUSDT", 2, "FUNDING_FEE", "0.25000000", t0 + 16 * h),  # only here
        margin_line("BTCUSDT", 1, "USER_ADJUST", "20.00000000", t0 + DAY_MS),
        margin_line("BTCUSDT", 2, "TRADE", "32.00000000", t0 + 2 * DAY_MS),
    ]
    acc.positions = [
        position("BTCUSDT", "BOTH", "0.006", "60000.00", "61000.00", "53345.81", "47.45",
                 10, t0 + 2 * DAY_MS),
        position("ETHUSDT", "LONG", "0.000", "0.00", "2900.00", "0", "0", 5),
        position("ETHUSDT", "SHORT", "-0.500", "3000.00", "2900.00", "4890.10", "0", 5,
                 t0 + 3 * DAY_MS),
    ]
    acc.positions[0]["notional"] = "0"  # a bad figure: the import recomputes it from contracts
    return acc


def coinm_market(symbol: str, base: str) -> dict[str, Any]:
    """One COIN-M ``exchangeInfo`` symbol (a perpetual of 100 USD contracts)."""
    m = market(symbol, base, "USD")
    m.update({"pair": f"{base}USD", "marginAsset": base, "contractSize": 100,
              "contractStatus": "TRADING", "equalQtyPrecision": 4})
    m.pop("status", None)
    return m


def sample_coinm_account(now_ms: int | None = None) -> Account:
    """BTCUSD_PERP isolated: opened with 10 contracts (1,000 USD) at 50,000, 0.002 BTC margin
    added, 4 contracts closed at 52,000, 6 still open; one funding payment in BTC."""
    now = now_ms or _now()
    t0 = now - 10 * DAY_MS
    acc = Account(
        markets=[coinm_market("BTCUSD_PERP", "BTC")],
        brackets=[{"symbol": "BTCUSD_PERP", "notionalCoef": 1.0, "brackets": [
            {"bracket": 1, "initialLeverage": 125, "qtyCap": 5, "qtyFloor": 0,
             "maintMarginRatio": 0.004, "cum": 0.0},
            {"bracket": 2, "initialLeverage": 100, "qtyCap": 10, "qtyFloor": 5,
             "maintMarginRatio": 0.005, "cum": 0.005}]}],
        marks={"BTCUSD_PERP": "51000.0"},
        symbol_config=[{"symbol": "BTCUSD_PERP", "marginType": "ISOLATED", "leverage": 10}],
        wallet_balance="0.10000000",
    )
    rows = [(401, 7, "BUY", "10", "50000.0", t0), (402, 8, "SELL", "4", "52000.0", t0 + DAY_MS)]
    acc.trades = [
        {"symbol": "BTCUSD_PERP", "id": i, "orderId": o, "pair": "BTCUSD", "side": side,
         "price": px, "qty": q, "realizedPnl": "0", "marginAsset": "BTC",
         "baseQty": f"{float(q) * 100 / float(px):.8f}", "commission": "0.00000100",
         "commissionAsset": "BTC", "time": t, "positionSide": "BOTH", "buyer": side == "BUY",
         "maker": False}
        for i, o, side, q, px, t in rows
    ]
    acc.income = [income(3001, "BTCUSD_PERP", "FUNDING_FEE", "-0.00000500", t0 + 8 * 3_600_000)]
    acc.income += [income(3100 + i, "BTCUSD_PERP", "COMMISSION", "-0.00000100", tr["time"])
                   for i, tr in enumerate(acc.trades)]
    for r in acc.income:
        r["asset"] = "BTC"
    acc.margin_history = [
        margin_line("BTCUSD_PERP", 1, "TRADE", "0.00200000", t0),
        margin_line("BTCUSD_PERP", 1, "USER_ADJUST", "0.00200000", t0 + 3_600_000),
    ]
    for r in acc.margin_history:
        r["asset"] = "BTC"
    acc.positions = [{
        "symbol": "BTCUSD_PERP", "positionAmt": "6", "entryPrice": "50000.0",
        "breakEvenPrice": "50000.0", "markPrice": "51000.0", "unRealizedProfit": "0.00000470",
        "liquidationPrice": "41000.5", "leverage": "10", "maxQty": "250",
        "marginType": "isolated", "isolatedMargin": "0.00240000", "isAutoAddMargin": "false",
        "positionSide": "BOTH", "notionalValue": "0.01176471", "isolatedWallet": "0.00240000",
        "updateTime": t0 + DAY_MS}]
    return acc
