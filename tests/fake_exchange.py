"""A loopback exchange: Binance USDⓈ-M futures (``/fapi``) answered in Binance's documented JSON.

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
    "/fapi/v1/positionMargin/history": (500, 500, "time"),
    "/fapi/v1/income": (100, 1000, "time"),
    "/fapi/v1/userTrades": (500, 1000, "time"),
    "/fapi/v1/forceOrders": (50, 100, "time"),
}
_SIGNED = {*_LISTS, "/fapi/v3/positionRisk", "/fapi/v2/positionRisk", "/fapi/v1/leverageBracket",
           "/fapi/v1/symbolConfig", "/fapi/v3/account"}


class FakeBinanceFutures:
    """Binance USDⓈ-M futures on 127.0.0.1 (see the module docstring)."""

    def __init__(self, account: Account, *, stall_seconds: float = 3.0) -> None:
        self.account = account
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
        if path in _SIGNED and not signed:
            return 401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for "
                                               "action."}, {}
        if path == "/fapi/v1/exchangeInfo":
            return 200, {"timezone": "UTC", "serverTime": _now(), "futuresType": "U_MARGINED",
                         "rateLimits": [], "exchangeFilters": [],
                         "assets": [{"asset": "USDT", "marginAvailable": True,
                                     "autoAssetExchange": "-10000"}],
                         "symbols": acc.markets}, {}
        if path == "/fapi/v1/time":
            return 200, {"serverTime": _now()}, {}
        if path in ("/fapi/v3/positionRisk", "/fapi/v2/positionRisk"):
            return 200, _by_symbol(acc.positions, params), {}
        if path == "/fapi/v1/symbolConfig":
            return 200, _by_symbol(acc.symbol_config, params), {}
        if path == "/fapi/v3/account":
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
        if path == "/fapi/v1/leverageBracket":
            return 200, _by_symbol(acc.brackets, params), {}
        if path == "/fapi/v1/premiumIndex":
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
                "/fapi/v1/positionMargin/history": acc.margin_history,
                "/fapi/v1/income": acc.income,
                "/fapi/v1/userTrades": acc.trades,
                "/fapi/v1/forceOrders": acc.force_orders,
            }[path]
            return 200, _page(path, source, params), {}
        return 404, {"code": -5000, "msg": f"Path {path}, Method GET is invalid"}, {}


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
