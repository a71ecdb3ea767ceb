"""Recorded exchanges on loopback: servers that answer with a recorded account in each
exchange's documented JSON:
Binance USDⓈ-M / COIN-M (:class:`FakeBinanceFutures`), Bybit v5 (:class:`FakeBybit`) and OKX v5
(:class:`FakeOkx`). The tests, ``leverage demo`` and the benchmark import through them.

Real ccxt exchange objects talk to them over HTTP once their API URLs point here
(``leverage_exchange.client.redirect``); nothing in ccxt is mocked. Each server is stdlib only (a
``ThreadingHTTPServer`` on 127.0.0.1 in a background thread) and holds one recorded account.
Binance:

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
``fail(path, "timeout")`` stalls it longer than the client waits; ``"429 retry-after=N"`` is
the rate limit asking to wait N seconds; ``"trickle"`` sends the whole answer, status line
first, one byte every 0.25 s (until :meth:`RecordedExchange.release` or the client hangs up).
Every request is logged.
"""

from __future__ import annotations

import contextlib
import json
import re
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
    params: dict[str, Any]
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
             wallet: str, leverage: int = 10, update: int = 0) -> dict[str, Any]:
    """One ``positionRisk`` row (v3 fields, plus ``leverage``/``marginType`` of v2).

    ``wallet`` is the isolated wallet (margin posted; "0": a cross position); Binance's
    ``isolatedMargin`` is it plus the unrealized PnL at the mark."""
    notional = float(amt) * float(mark)
    upnl = (float(mark) - float(entry)) * float(amt) if float(amt) else 0.0
    isolated = float(wallet) > 0
    isolated_margin = f"{float(wallet) + upnl:.8f}" if isolated else "0"
    return {
        "symbol": symbol, "positionSide": side, "positionAmt": amt, "entryPrice": entry,
        "breakEvenPrice": entry, "markPrice": mark, "unRealizedProfit": f"{upnl:.8f}",
        "liquidationPrice": liq, "isolatedMargin": isolated_margin,
        "notional": f"{notional:.8f}", "marginAsset": "USDT",
        "isolatedWallet": wallet, "initialMargin": f"{abs(notional) / leverage:.8f}",
        "maintMargin": "0", "positionInitialMargin": f"{abs(notional) / leverage:.8f}",
        "openOrderInitialMargin": "0", "adl": 1, "bidNotional": "0", "askNotional": "0",
        "updateTime": update, "leverage": str(leverage),
        "marginType": "isolated" if isolated else "cross",
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
    server_time: int | None = None  # the exchange's clock (ms) when recorded; None: now


# (default limit, maximum limit, time field) of each list endpoint, from Binance's docs
_LISTS = {
    "/v1/positionMargin/history": (500, 500, "time"),
    "/v1/income": (100, 1000, "time"),
    "/v1/userTrades": (500, 1000, "time"),
    "/v1/forceOrders": (50, 100, "time"),
}
# the same endpoint under each API's version: USDⓈ-M (fapi) and COIN-M (dapi)
_VERSIONS: dict[str, dict[str, tuple[str, ...]]] = {
    "fapi": {"positions": ("/v3/positionRisk", "/v2/positionRisk"),
             "brackets": ("/v1/leverageBracket",), "account": ("/v3/account",)},
    "dapi": {"positions": ("/v1/positionRisk",), "brackets": ("/v2/leverageBracket",),
             "account": ("/v1/account",)},
}


# Spoiled 200 answers ``fail(path, kind)`` injects: what a proxy, a captive portal or a broken
# exchange node has been seen to send instead of the API's JSON (issue 20, item 3)
GARBAGE = ("html", "truncated", "null", "empty-object", "text", "nan", "negative",
           "null-numbers", "year-3000")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
YEAR_3000_MS = 32_503_680_000_000  # 3000-01-01T00:00:00Z


def garbage(kind: str, body: Any) -> tuple[bytes, str]:
    """The body (and its Content-Type) of a spoiled answer of ``kind`` for the honest ``body``:
    an HTML error page, the JSON cut in half, ``null``, ``{}``, plain text, or the honest JSON
    with every number (numbers and numeric strings) NaN, negated, null, or with every
    millisecond timestamp (2001 to 2096) moved to the year 3000."""
    text = json.dumps(body)
    fixed = {
        "html": (b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>"
                 b"<h1>502 Bad Gateway</h1><hr><center>nginx</center></body></html>", "text/html"),
        "truncated": (text[: max(1, len(text) // 2)].encode(), "application/json"),
        "null": (b"null", "application/json"),
        "empty-object": (b"{}", "application/json"),
        "text": (b"upstream connect error or disconnect/reset before headers", "text/plain"),
    }
    if kind in fixed:
        return fixed[kind]

    def spoil(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: spoil(x) for k, x in v.items()}
        if isinstance(v, list):
            return [spoil(x) for x in v]
        number = (isinstance(v, int | float) and not isinstance(v, bool)) or (
            isinstance(v, str) and _NUMBER.match(v) is not None)
        if not number:
            return v
        if kind == "nan":
            return "NaN" if isinstance(v, str) else float("nan")
        if kind == "null-numbers":
            return None
        if kind == "negative":
            return v if float(v) <= 0 else (f"-{v}" if isinstance(v, str) else -v)
        stamp = 1e12 <= float(v) < 4e12  # year-3000: timestamps in ms only
        return (str(YEAR_3000_MS) if isinstance(v, str) else YEAR_3000_MS) if stamp else v

    return json.dumps(spoil(body)).encode(), "application/json"


class RecordedExchange:
    """The HTTP side every fake exchange shares: serving, the request log, injected faults.
    A subclass answers requests in ``_answer`` (status, JSON body, headers)."""

    def __init__(self, account: Any, *, stall_seconds: float = 3.0) -> None:
        self.account = account
        self.stall_seconds = stall_seconds
        self.log: list[Logged] = []
        self.server_errors: list[str] = []
        self._faults: dict[str, list[str]] = {}
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.released = threading.Event()  # ends every "trickle" answer

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

    def release(self) -> None:
        """End the answers being trickled: the rest is sent at once."""
        self.released.set()

    def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        # the stub's bytes are for addresses handed in; a bound AF_INET socket reports a str
        assert isinstance(host, str)
        return f"http://{host}:{port}"

    def __enter__(self) -> RecordedExchange:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls
    def fail(self, path: str, *faults: str) -> None:
        """Answer the next requests to ``path`` with these faults: ``"429"``, ``"timeout"``,
        or one of :data:`GARBAGE` (a 200 whose body is spoiled)."""
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
            raw = req.rfile.read(length).decode()
            if "json" in str(req.headers.get("Content-Type") or ""):
                params.update(self._json_body(raw))  # an API that posts JSON (Hyperliquid)
            else:
                params.update(parse_qsl(raw, keep_blank_values=True))
        with self._lock:
            fault = None
            for key in self._fault_keys(url.path, params):
                if self._faults.get(key):
                    fault = self._faults[key].pop(0)
                    break
        if fault == "timeout":  # held until released (stop() does), stall_seconds at most
            self.released.wait(self.stall_seconds)
        try:
            status, body, headers = self._answer(req, url.path, params, fault)
        except Exception as exc:  # a bug in the fake: show it to the test, answer 500
            self.server_errors.append(repr(exc))
            status, body, headers = 500, {"code": -1000, "msg": "fake failed"}, {}
        with self._lock:
            self.log.append(Logged(req.command, url.path, params, status))
        data = json.dumps(body).encode()
        content_type = "application/json"
        if fault in GARBAGE and status == 200:  # the answer's body, spoiled (issue 20)
            data, content_type = garbage(fault, body)
        if fault == "trickle":
            self._trickle(req, status, headers, data)
            return
        with contextlib.suppress(OSError):
            req.send_response(status)
            req.send_header("Content-Type", content_type)
            req.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                req.send_header(k, v)
            req.end_headers()
            req.wfile.write(data)

    @staticmethod
    def _json_body(raw: str) -> dict[str, Any]:
        """A JSON request body's fields (``{"_body": raw}`` when it is not a JSON object: the
        subclass answers it as the API answers a body it cannot read)."""
        try:
            body = json.loads(raw)
        except ValueError:
            return {"_body": raw}
        return body if isinstance(body, dict) else {"_body": raw}

    def _fault_keys(self, path: str, params: dict[str, Any]) -> tuple[str, ...]:
        """Where an armed fault for this request is looked up, most specific first (an API
        with one path for every request keys them by the request too)."""
        return (path,)

    def _trickle(self, req: BaseHTTPRequestHandler, status: int, headers: dict[str, str],
                 data: bytes) -> None:
        head = "".join(f"{k}: {v}\r\n" for k, v in {
            "Content-Type": "application/json", "Content-Length": str(len(data)), **headers
        }.items())
        raw = f"HTTP/1.1 {status} OK\r\n{head}\r\n".encode() + data
        with contextlib.suppress(OSError):
            for i in range(len(raw)):
                if self.released.is_set():
                    req.wfile.write(raw[i:])
                    break
                req.wfile.write(raw[i:i + 1])
                req.wfile.flush()
                self.released.wait(0.25)
            req.wfile.flush()
        req.close_connection = True

    def _answer(self, req: Any, path: str, params: dict[str, Any],
                fault: str | None) -> tuple[int, Any, dict[str, str]]:
        raise NotImplementedError  # pragma: no cover


class FakeBinanceFutures(RecordedExchange):
    """Binance USDⓈ-M futures on 127.0.0.1 (see the module docstring)."""

    def __init__(self, account: Account, *, stall_seconds: float = 3.0, api: str = "fapi") -> None:
        super().__init__(account, stall_seconds=stall_seconds)
        self.api = api  # "fapi" (USDⓈ-M) or "dapi" (COIN-M)

    def __enter__(self) -> FakeBinanceFutures:
        self.start()
        return self

    def _answer(self, req: Any, path: str, params: dict[str, str],
                fault: str | None) -> tuple[int, Any, dict[str, str]]:
        if fault is not None and fault.startswith("429"):
            wait = fault.partition("retry-after=")[2] or "0"
            return 429, {"code": -1003, "msg": "Too many requests; current limit of IP is 2400 "
                                               "requests per minute."}, {"Retry-After": wait}
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
            return 200, {"timezone": "UTC", "serverTime": acc.server_time or _now(),
                         "futuresType": "U_MARGINED",
                         "rateLimits": [], "exchangeFilters": [],
                         "assets": [{"asset": "USDT", "marginAvailable": True,
                                     "autoAssetExchange": "-10000"}],
                         "symbols": acc.markets}, {}
        if path == "/v1/time":
            return 200, {"serverTime": acc.server_time or _now()}, {}
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
    liquidated. Times are within the last 30 days (Binance keeps margin history that long).

    The exchange's figures follow Binance's rules by hand (bracket 1: MMR 0.4 %, cum 0):

    - BTCUSDT isolated wallet = 60 (TRADE, the opening fill's margin) − 0.30 − 0.25 (funding,
      taken from the isolated margin) + 20 (added) − 32 (TRADE, released by the partial close)
      = 47.45; liquidation (Binance USDⓈ-M isolated, one-way) =
      (47.45 + 0 − 0.006 × 60,000) / (0.006 × 0.004 − 0.006) = 52,300.87.
    - ETHUSDT cross short, the only cross position, cross wallet 1,000:
      (1,000 − 0 + 0 + 0 + 0.5 × 3,000) / (0.5 × 0.004 + 0.5) = 4,980.08.
    - SOLUSDT 10 at 150, isolated margin 150 (TRADE line, 10x): liquidation
      (150 − 1,500) / (10 × 0.004 − 10) = 135.54; the liquidation order fills at the bankruptcy
      price 150 − 150 / 10 = 135.00 (Binance closes a liquidated position there), PnL −150."""
    now = now_ms or _now()
    t0 = now - 20 * DAY_MS
    h = 3_600_000
    acc = Account(
        server_time=now_ms,
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
        trade(302, 5, "SOLUSDT", "SELL", "10", "135.00", t0 + 5 * DAY_MS, pnl="-150.0"),
    ]
    acc.force_orders = [{"orderId": 5, "symbol": "SOLUSDT", "status": "FILLED",
                         "clientOrderId": "autoclose-1", "price": "135.00", "avgPrice": "135.00",
                         "origQty": "10", "executedQty": "10", "cumQuote": "1350",
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
        margin_line("SOLUSDT", 1, "TRADE", "150.00000000", t0 + 4 * DAY_MS),
    ]
    acc.positions = [
        position("BTCUSDT", "BOTH", "0.006", "60000.00", "61000.00", "52300.87", "47.45",
                 10, t0 + 2 * DAY_MS),
        position("ETHUSDT", "LONG", "0.000", "0.00", "2900.00", "0", "0", 5),
        position("ETHUSDT", "SHORT", "-0.500", "3000.00", "2900.00", "4980.08", "0", 5,
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
    added, 4 contracts closed at 52,000, 6 still open; one funding payment in BTC.

    By Binance's rules, by hand: isolated wallet = 0.002 (TRADE: 1,000 / 50,000 / 10x) + 0.002
    (added) − 0.000005 (funding) − 0.001598 (TRADE: released by closing 4 of 10 contracts, the
    closed share of the 0.003995 posted) = 0.002397 BTC; unrealized PnL at the 51,000 mark =
    600 × (1/50,000 − 1/51,000) = 0.00023529; liquidation (COIN-M isolated long, bracket 1:
    MMR 0.4 %, cum 0) = 600 × (1 + 0.004) / (0.002397 + 0 + 600 / 50,000) = 41,842.05."""
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
        margin_line("BTCUSD_PERP", 2, "TRADE", "0.00159800", t0 + DAY_MS),
    ]
    for r in acc.margin_history:
        r["asset"] = "BTC"
    acc.positions = [{
        "symbol": "BTCUSD_PERP", "positionAmt": "6", "entryPrice": "50000.0",
        "breakEvenPrice": "50000.0", "markPrice": "51000.0", "unRealizedProfit": "0.00023529",
        "liquidationPrice": "41842.05", "leverage": "10", "maxQty": "250",
        "marginType": "isolated", "isolatedMargin": "0.00263229", "isAutoAddMargin": "false",
        "positionSide": "BOTH", "notionalValue": "0.01176471", "isolatedWallet": "0.00239700",
        "updateTime": t0 + DAY_MS}]
    return acc


# --------------------------------------------------------------------------------------------
# Bybit v5 (linear and inverse perpetuals), in Bybit's JSON (bybit-exchange.github.io/docs/v5)

BYBIT_WINDOW_MS = 7 * DAY_MS  # execution and closed-PnL queries span at most 7 days


def _bybit_ok(result: Any) -> dict[str, Any]:
    return {"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": _now()}


def _bybit_error(code: int, msg: str) -> dict[str, Any]:
    return {"retCode": code, "retMsg": msg, "result": {}, "retExtInfo": {}, "time": _now()}


@dataclass
class BybitAccount:
    """A recorded Bybit unified account: rows as Bybit sends them, each with its ``category``."""

    instruments: list[dict[str, Any]] = field(default_factory=list)
    positions: list[dict[str, Any]] = field(default_factory=list)
    executions: list[dict[str, Any]] = field(default_factory=list)  # Trade, BustTrade, Funding
    closed_pnl: list[dict[str, Any]] = field(default_factory=list)
    risk_limits: list[dict[str, Any]] = field(default_factory=list)
    tickers: list[dict[str, Any]] = field(default_factory=list)
    wallet_balance: str = "1000"


def _cursor_page(rows: list[dict[str, Any]], params: dict[str, str], default: int,
                 most: int) -> dict[str, Any]:
    """Bybit's cursor paging: ``cursor`` is where the previous page stopped."""
    limit = min(int(params.get("limit") or params.get("size") or default), most)
    start = int(str(params.get("cursor") or "0").replace("%3A", ":").split(":")[0] or 0)
    page = rows[start:start + limit]
    more = start + limit < len(rows)
    return {"list": page, "nextPageCursor": f"{start + limit}%3A{start + limit}" if more else ""}


class FakeBybit(RecordedExchange):
    """Bybit v5 on 127.0.0.1: the endpoints ccxt's ``bybit`` calls for an import.

    - ``GET /v5/market/instruments-info``  markets (``load_markets``, per category)
    - ``GET /v5/position/list``            open positions (``fetch_positions``)
    - ``GET /v5/execution/list``           fills (``execType=Trade``), liquidation fills
      (``BustTrade``) and funding (``Funding``; ``fetch_funding_history``), newest first, 7 days
      at most per query, cursor paging
    - ``GET /v5/position/closed-pnl``      closed positions (``fetch_positions_history``)
    - ``GET /v5/market/risk-limit``        tiers (``fetch_leverage_tiers``)
    - ``GET /v5/market/tickers``           mark prices
    - ``GET /v5/account/wallet-balance``, ``/v5/account/info``, ``/v5/user/query-api``: the
      cross wallet (``fetch_balance``)

    Private endpoints need ``X-BAPI-API-KEY`` and ``X-BAPI-SIGN``; an unknown key gets Bybit's
    ``10003``. ``fail(path, "429")`` answers with HTTP 429 and Bybit's ``10006``.
    """

    def _answer(self, req: Any, path: str, params: dict[str, str],
                fault: str | None) -> tuple[int, Any, dict[str, str]]:
        if fault == "429":
            return 429, _bybit_error(10006, "Too many visits!"), {"Retry-After": "0"}
        acc: BybitAccount = self.account
        cat = params.get("category")
        if path.startswith("/v5/market/"):
            if path == "/v5/market/time":
                t = _now()
                result = {"timeSecond": str(t // 1000), "timeNano": str(t * 10**6)}
                return 200, _bybit_ok(result), {}
            rows = {"/v5/market/instruments-info": acc.instruments,
                    "/v5/market/risk-limit": acc.risk_limits,
                    "/v5/market/tickers": acc.tickers}.get(path)
            if rows is None:
                return 404, _bybit_error(10001, "route not found"), {}
            rows = [_public(r) for r in rows if r["category"] == cat
                    and params.get("symbol") in (None, r["symbol"])
                    and params.get("status") in (None, r.get("status"))]
            return 200, _bybit_ok({"category": cat, **_cursor_page(rows, params, 500, 1000)}), {}
        signed = req.headers.get("X-BAPI-API-KEY") == API_KEY and req.headers.get("X-BAPI-SIGN")
        if not signed:
            return 401, _bybit_error(10003, "API key is invalid."), {}
        if path == "/v5/user/query-api":
            return 200, _bybit_ok({"id": "1", "note": "read-only", "apiKey": API_KEY,
                                   "readOnly": 1, "permissions": {"ContractTrade": [],
                                                                  "Spot": [], "Wallet": []},
                                   "uta": 1, "unified": 0, "isMaster": True}), {}
        if path == "/v5/asset/coin/query-info":
            return 200, _bybit_ok({"rows": [
                {"name": c, "coin": c, "remainAmount": "150000", "chains": [
                    {"chainType": c, "confirmation": "10000", "withdrawFee": "0.5",
                     "depositMin": "0", "withdrawMin": "1", "chain": c, "chainDeposit": "1",
                     "chainWithdraw": "1", "minAccuracy": "8", "withdrawPercentageFee": "0"}]}
                for c in ("BTC", "USDT")]}), {}
        if path == "/v5/account/info":
            return 200, _bybit_ok({"unifiedMarginStatus": 5, "marginMode": "REGULAR_MARGIN",
                                   "isMasterTrader": False, "spotHedgingStatus": "OFF",
                                   "updatedTime": str(_now()), "dcpStatus": "OFF",
                                   "timeWindow": 0, "smpGroup": 0}), {}
        if path == "/v5/account/wallet-balance":
            w = acc.wallet_balance
            coin = {"coin": "USDT", "equity": w, "usdValue": w, "walletBalance": w,
                    "free": "", "locked": "0", "spotHedgingQty": "0", "borrowAmount": "0",
                    "availableToWithdraw": "", "accruedInterest": "0", "totalOrderIM": "0",
                    "totalPositionIM": "0", "totalPositionMM": "0", "unrealisedPnl": "0",
                    "cumRealisedPnl": "0", "bonus": "0", "marginCollateral": True,
                    "collateralSwitch": True, "availableToBorrow": ""}
            return 200, _bybit_ok({"list": [{
                "accountType": "UNIFIED", "totalEquity": w, "totalWalletBalance": w,
                "totalMarginBalance": w, "totalAvailableBalance": w, "totalPerpUPL": "0",
                "totalInitialMargin": "0", "totalMaintenanceMargin": "0", "accountIMRate": "0",
                "accountMMRate": "0", "accountLTV": "0", "coin": [coin]}]}), {}
        if path == "/v5/position/list":
            rows = [_public(r) for r in acc.positions if r["category"] == cat
                    and params.get("symbol") in (None, r["symbol"])
                    and params.get("settleCoin") in (None, _bybit_settle(acc, r["symbol"]))]
            return 200, _bybit_ok({"category": cat, **_cursor_page(rows, params, 20, 200)}), {}
        if path in ("/v5/execution/list", "/v5/position/closed-pnl"):
            execution = path == "/v5/execution/list"
            key = "execTime" if execution else "updatedTime"
            end = int(params.get("endTime") or 0) or None
            start = int(params.get("startTime") or 0) or None
            if start is None:
                if end is None:
                    end = _now()
                start = end - BYBIT_WINDOW_MS
            if end is None:
                end = start + BYBIT_WINDOW_MS
            if end - start > BYBIT_WINDOW_MS:
                return 200, _bybit_error(10001, "startTime and endTime must be within 7 days"), {}
            source = acc.executions if execution else acc.closed_pnl
            rows = [_public(r) for r in source if r["category"] == cat
                    and params.get("symbol") in (None, r["symbol"])
                    and params.get("execType") in (None, r.get("execType"))
                    and start <= int(r[key]) <= end]
            rows.sort(key=lambda r: int(r[key]), reverse=True)
            return 200, _bybit_ok({"category": cat, **_cursor_page(rows, params, 50, 100)}), {}
        return 404, _bybit_error(10001, "route not found"), {}


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "category"}


def _bybit_settle(acc: BybitAccount, symbol: str) -> str | None:
    return next((m["settleCoin"] for m in acc.instruments if m["symbol"] == symbol), None)


def bybit_instrument(symbol: str, base: str, category: str = "linear") -> dict[str, Any]:
    """One ``instruments-info`` row: a USDT (linear) or coin-margined (inverse) perpetual."""
    quote = "USDT" if category == "linear" else "USD"
    return {
        "category": category, "symbol": symbol,
        "contractType": "LinearPerpetual" if category == "linear" else "InversePerpetual",
        "status": "Trading", "baseCoin": base, "quoteCoin": quote,
        "launchTime": "1585526400000", "deliveryTime": "0", "deliveryFeeRate": "",
        "priceScale": "2",
        "leverageFilter": {"minLeverage": "1", "maxLeverage": "100.00", "leverageStep": "0.01"},
        "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
        "lotSizeFilter": ({"maxOrderQty": "1190.000", "minOrderQty": "0.001",
                           "qtyStep": "0.001", "postOnlyMaxOrderQty": "1190.000",
                           "maxMktOrderQty": "500.000", "minNotionalValue": "5"}
                          if category == "linear" else  # inverse: whole USD contracts
                          {"maxOrderQty": "1000000", "minOrderQty": "1", "qtyStep": "1",
                           "postOnlyMaxOrderQty": "1000000", "maxMktOrderQty": "500000"}),
        "unifiedMarginTrade": True, "fundingInterval": 480,
        "settleCoin": quote if category == "linear" else base, "copyTrading": "both",
        "upperFundingRate": "0.00375", "lowerFundingRate": "-0.00375",
        "isPreListing": False, "preListingInfo": None,
    }


def bybit_position(category: str, symbol: str, idx: int, side: str, size: str, avg: str,
                   mark: str, liq: str, balance: str, leverage: str = "10",
                   isolated: bool = True, t: int = 0) -> dict[str, Any]:
    """One ``position/list`` row (``side`` "Buy"/"Sell"/"" for an empty hedge leg)."""
    value = float(size) * float(avg)
    return {
        "category": category, "positionIdx": idx, "riskId": 1, "riskLimitValue": "2000000",
        "symbol": symbol, "side": side, "size": size, "avgPrice": avg,
        "positionValue": f"{value:.2f}" if category == "linear" else "0",
        "tradeMode": 1 if isolated else 0, "positionStatus": "Normal", "autoAddMargin": 0,
        "adlRankIndicator": 2, "leverage": leverage, "positionBalance": balance,
        "markPrice": mark, "liqPrice": liq, "bustPrice": "", "positionMM": "0",
        "positionIM": balance, "tpslMode": "Full", "takeProfit": "0", "stopLoss": "0",
        "trailingStop": "0", "unrealisedPnl": "0", "curRealisedPnl": "0",
        "cumRealisedPnl": "0", "seq": 1, "isReduceOnly": False, "mmrSysUpdateTime": "",
        "leverageSysUpdatedTime": "", "createdTime": str(t), "updatedTime": str(t),
    }


def bybit_execution(category: str, exec_id: str, order: str, symbol: str, side: str,
                    qty: str, price: str, t: int, exec_type: str = "Trade",
                    closed: str = "0", fee: str | None = None) -> dict[str, Any]:
    """One ``execution/list`` row (a fill, a ``BustTrade`` or a ``Funding`` payment)."""
    value = float(qty) * float(price) if category == "linear" else float(qty) / float(price)
    return {
        "category": category, "symbol": symbol, "orderId": order, "orderLinkId": "",
        "side": side, "orderPrice": price, "orderQty": qty, "leavesQty": "0",
        "createType": "CreateByUser", "orderType": "Market", "stopOrderType": "",
        "execFee": fee if fee is not None else f"{value * 0.00055:.8f}", "execId": exec_id,
        "execPrice": price, "execQty": qty, "execType": exec_type,
        "execValue": f"{value:.8f}", "execTime": str(t), "feeCurrency": "",
        "isMaker": False, "feeRate": "0.00055", "tradeIv": "", "markIv": "",
        "markPrice": price, "indexPrice": "", "underlyingPrice": "", "blockTradeId": "",
        "closedSize": closed, "seq": 1, "extraFees": "",
    }


def bybit_risk_limits(category: str, symbol: str) -> list[dict[str, Any]]:
    """Bybit's documented BTCUSDT risk limits 1-3 (``market/risk-limit``)."""
    return [{"category": category, "id": i + 1, "symbol": symbol, "riskLimitValue": cap,
             "maintenanceMargin": mm, "initialMargin": im, "isLowestRisk": int(i == 0),
             "maxLeverage": lev, "mmDeduction": ded}
            for i, (cap, mm, im, lev, ded) in enumerate((
                ("2000000", "0.005", "0.01", "100.00", ""),
                ("2600000", "0.0056", "0.0112", "89.28", "1200"),
                ("3200000", "0.0062", "0.0124", "80.64", "2760")))]


def bybit_ticker(category: str, symbol: str, mark: str) -> dict[str, Any]:
    return {"category": category, "symbol": symbol, "lastPrice": mark, "indexPrice": mark,
            "markPrice": mark, "prevPrice24h": mark, "price24hPcnt": "0", "highPrice24h": mark,
            "lowPrice24h": mark, "prevPrice1h": mark, "openInterest": "1000",
            "openInterestValue": "1000000", "turnover24h": "1000000", "volume24h": "100",
            "fundingRate": "0.0001", "nextFundingTime": str(_now() + 3_600_000),
            "predictedDeliveryPrice": "", "basisRate": "", "deliveryFeeRate": "",
            "deliveryTime": "0", "ask1Size": "1", "bid1Price": mark, "ask1Price": mark,
            "bid1Size": "1", "basis": ""}


def sample_bybit_account(now_ms: int | None = None) -> BybitAccount:
    """BTCUSDT isolated one-way: opened (two fills of one order), funding, partial close,
    still open; ETHUSDT in hedge mode: an empty long leg (side "") and an open short with no
    liquidation price (liqPrice ""); SOLUSDT opened and liquidated (a ``BustTrade``);
    BTCUSD inverse: 100 contracts of 1 USD, open, liqPrice "0".

    Bybit's figures by hand (help centre: "Liquidation Price Calculation under Isolated Mode",
    "Position Margin"): BTCUSDT positionIM = 0.006 × 60,000 / 10 = 36 (funding is paid from the
    available balance, not the position margin, while the balance covers it); liquidation =
    entry − (IM − MM) / qty = 60,000 − (36 − 0.005 × 360) / 0.006 = 54,300. SOLUSDT 10 at 150,
    10x: the BustTrade fills at the bankruptcy price 150 − 150 / 10 = 135.00, PnL −150."""
    now = now_ms or _now()
    t0 = now - 20 * DAY_MS
    h = 3_600_000
    ex = bybit_execution
    acc = BybitAccount(
        instruments=[bybit_instrument("BTCUSDT", "BTC"), bybit_instrument("ETHUSDT", "ETH"),
                     bybit_instrument("SOLUSDT", "SOL"),
                     bybit_instrument("BTCUSD", "BTC", "inverse")],
        risk_limits=[*bybit_risk_limits("linear", "BTCUSDT"),
                     *bybit_risk_limits("linear", "ETHUSDT"),
                     *bybit_risk_limits("linear", "SOLUSDT"),
                     *bybit_risk_limits("inverse", "BTCUSD")],
        tickers=[bybit_ticker("linear", "BTCUSDT", "61000.00"),
                 bybit_ticker("linear", "ETHUSDT", "2900.00"),
                 bybit_ticker("linear", "SOLUSDT", "140.00"),
                 bybit_ticker("inverse", "BTCUSD", "61000.00")],
    )
    acc.executions = [
        ex("linear", "e-101", "o-1", "BTCUSDT", "Buy", "0.004", "60000.00", t0),
        ex("linear", "e-102", "o-1", "BTCUSDT", "Buy", "0.006", "60000.00", t0 + 50),
        ex("linear", "f-1", "", "BTCUSDT", "Buy", "0.010", "60000.00", t0 + 8 * h, "Funding",
           fee="0.30"),
        ex("linear", "e-103", "o-2", "BTCUSDT", "Sell", "0.004", "62000.00", t0 + 2 * DAY_MS,
           closed="0.004"),
        ex("linear", "e-201", "o-3", "ETHUSDT", "Sell", "0.50", "3000.00", t0 + 3 * DAY_MS),
        ex("linear", "e-301", "o-4", "SOLUSDT", "Buy", "10", "150.00", t0 + 9 * DAY_MS),
        ex("linear", "e-302", "o-5", "SOLUSDT", "Sell", "10", "135.00", t0 + 10 * DAY_MS,
           "BustTrade", closed="10"),
        ex("inverse", "e-401", "o-6", "BTCUSD", "Buy", "100", "60000.00", t0 + 12 * DAY_MS,
           fee="0.00000090"),
    ]
    acc.closed_pnl = [{
        "category": "linear", "symbol": s, "orderId": o, "side": "Sell", "qty": q,
        "orderPrice": px, "orderType": "Market", "execType": kind, "closedSize": q,
        "cumEntryValue": f"{float(q) * float(entry):.2f}", "avgEntryPrice": entry,
        "cumExitValue": f"{float(q) * float(px):.2f}", "avgExitPrice": px,
        "closedPnl": pnl, "fillCount": "1", "leverage": "10", "createdTime": str(t),
        "updatedTime": str(t)}
        for s, o, q, px, entry, kind, pnl, t in (
            ("BTCUSDT", "o-2", "0.004", "62000.00", "60000.00", "Trade", "8", t0 + 2 * DAY_MS),
            ("SOLUSDT", "o-5", "10", "135.00", "150.00", "BustTrade", "-150",
             t0 + 10 * DAY_MS))]
    acc.positions = [
        bybit_position("linear", "BTCUSDT", 0, "Buy", "0.006", "60000.00", "61000.00",
                       "54300.00", "36.00", "10", True, t0),
        bybit_position("linear", "ETHUSDT", 1, "", "0", "0", "2900.00", "", "0", "5", False),
        bybit_position("linear", "ETHUSDT", 2, "Sell", "0.50", "3000.00", "2900.00", "",
                       "300.00", "5", False, t0 + 3 * DAY_MS),
        bybit_position("inverse", "BTCUSD", 0, "Buy", "100", "60000.00", "61000.00", "0",
                       "0.00016667", "10", True, t0 + 12 * DAY_MS),
    ]
    return acc


# --------------------------------------------------------------------------------------------
# OKX v5 (perpetual swaps), in OKX's JSON (www.okx.com/docs-v5)


@dataclass
class OkxAccount:
    """A recorded OKX account: rows as OKX sends them (strings, ``instId`` BTC-USDT-SWAP)."""

    instruments: list[dict[str, Any]] = field(default_factory=list)
    positions: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    bills: list[dict[str, Any]] = field(default_factory=list)  # funding (8), margin (6)
    positions_history: list[dict[str, Any]] = field(default_factory=list)
    tiers: list[dict[str, Any]] = field(default_factory=list)
    marks: dict[str, str] = field(default_factory=dict)
    cash_balance: str = "1000"


def _okx_ok(data: list[Any]) -> dict[str, Any]:
    return {"code": "0", "msg": "", "data": data}


def _okx_page(rows: list[dict[str, Any]], params: dict[str, str], key: str, time_key: str,
              filters: tuple[str, ...]) -> list[dict[str, Any]]:
    """OKX's paging: newest first, at most ``limit`` (100), ``after``: older than that id."""
    limit = min(int(params.get("limit") or 100), 100)
    begin, end = params.get("begin"), params.get("end")
    after = params.get("after")
    kept = [r for r in rows if all(params.get(f) in (None, r.get(f)) for f in filters)
            and (begin is None or int(r[time_key]) >= int(begin))
            and (end is None or int(r[time_key]) <= int(end))
            and (after is None or int(r[key]) < int(after))]
    kept.sort(key=lambda r: int(r[key]), reverse=True)
    return kept[:limit]


class FakeOkx(RecordedExchange):
    """OKX v5 on 127.0.0.1: the endpoints ccxt's ``okx`` calls for an import of swaps.

    - ``GET /api/v5/public/instruments``          markets (``load_markets``, ``instType=SWAP``)
    - ``GET /api/v5/account/positions``           open positions (``fetch_positions``)
    - ``GET /api/v5/trade/fills-history``         fills (``fetch_my_trades``)
    - ``GET /api/v5/account/bills[-archive]``     funding (type 8, ``fetch_funding_history``)
      and margin moves (type 6, subType 160 add / 161 reduce,
      ``fetch_margin_adjustment_history``)
    - ``GET /api/v5/account/positions-history``   closed positions, liquidations
      (``fetch_positions_history``; type 3/4)
    - ``GET /api/v5/public/position-tiers``       tiers (``fetch_market_leverage_tiers``)
    - ``GET /api/v5/public/mark-price``           mark prices (``fetch_mark_prices``)
    - ``GET /api/v5/account/balance``             the cross wallet (``fetch_balance``)

    Lists are newest first, 100 a page, and page backwards with ``after`` (a bill or trade id,
    or ``uTime`` for positions history). Private endpoints need ``OK-ACCESS-KEY``,
    ``OK-ACCESS-SIGN`` and ``OK-ACCESS-PASSPHRASE``; an unknown key gets OKX's ``50111``.
    ``fail(path, "429")`` answers with HTTP 429 and OKX's ``50011``.
    """

    def _answer(self, req: Any, path: str, params: dict[str, str],
                fault: str | None) -> tuple[int, Any, dict[str, str]]:
        if fault == "429":
            return 429, {"code": "50011", "msg": "Too Many Requests", "data": []}, {}
        acc: OkxAccount = self.account
        if path == "/api/v5/public/time":
            return 200, _okx_ok([{"ts": str(_now())}]), {}
        if path == "/api/v5/public/instruments":
            rows = [m for m in acc.instruments if m["instType"] == params.get("instType")
                    and params.get("instId") in (None, m["instId"])]
            return 200, _okx_ok(rows), {}
        if path == "/api/v5/public/position-tiers":
            family = params.get("instFamily") or params.get("uly")
            rows = [t for t in acc.tiers if family in (None, t["instFamily"])]
            return 200, _okx_ok(rows), {}
        if path == "/api/v5/public/mark-price":
            return 200, _okx_ok([{"instType": "SWAP", "instId": i, "markPx": px,
                                  "ts": str(_now())} for i, px in acc.marks.items()
                                 if params.get("instId") in (None, i)]), {}
        signed = (req.headers.get("OK-ACCESS-KEY") == API_KEY
                  and req.headers.get("OK-ACCESS-SIGN")
                  and req.headers.get("OK-ACCESS-PASSPHRASE"))
        if not signed:
            return 401, {"code": "50111", "msg": "Invalid OK-ACCESS-KEY", "data": []}, {}
        if path == "/api/v5/account/positions":
            rows = [p for p in acc.positions if params.get("instId") in (None, p["instId"])
                    and params.get("instType") in (None, p["instType"])]
            return 200, _okx_ok(rows), {}
        if path == "/api/v5/asset/currencies":
            return 200, _okx_ok([{"ccy": c, "name": c, "chain": f"{c}-{c}", "canDep": True,
                                  "canWd": True, "canInternal": True, "minDep": "0.00005",
                                  "minWd": "0.0002", "maxWd": "1000", "wdTickSz": "8",
                                  "minFee": "0.0001", "maxFee": "0.0002", "mainNet": True,
                                  "logoLink": "", "needTag": False, "wdQuota": "10000000",
                                  "usedWdQuota": "0", "minDepArrivalConfirm": "1",
                                  "minWdUnlockConfirm": "2", "depQuotaFixed": "",
                                  "usedDepQuotaFixed": "", "depQuoteDailyLayer2": ""}
                                 for c in ("BTC", "ETH", "SOL", "USDT")]), {}
        if path == "/api/v5/account/balance":
            c = acc.cash_balance
            return 200, _okx_ok([{"adjEq": c, "totalEq": c, "imr": "0", "mmr": "0",
                                  "isoEq": "0", "mgnRatio": "", "notionalUsd": "0",
                                  "ordFroz": "0", "upl": "0", "uTime": str(_now()),
                                  "details": [{"ccy": "USDT", "eq": c, "cashBal": c,
                                               "availBal": c, "availEq": c, "frozenBal": "0",
                                               "ordFrozen": "0", "upl": "0", "isoEq": "0",
                                               "disEq": c, "eqUsd": c, "liab": "",
                                               "uTime": str(_now())}]}]), {}
        if path == "/api/v5/trade/fills-history":
            return 200, _okx_ok(_okx_page(acc.fills, params, "billId", "ts",
                                          ("instType", "instId"))), {}
        if path in ("/api/v5/account/bills", "/api/v5/account/bills-archive"):
            return 200, _okx_ok(_okx_page(acc.bills, params, "billId", "ts",
                                          ("instType", "instId", "type", "subType",
                                           "mgnMode", "ccy"))), {}
        if path == "/api/v5/account/positions-history":
            return 200, _okx_ok(_okx_page(acc.positions_history, params, "uTime", "uTime",
                                          ("instType", "instId", "type", "mgnMode"))), {}
        return 404, {"code": "50000", "msg": f"path {path} not found", "data": []}, {}


def okx_instrument(base: str, ct_val: str = "0.01") -> dict[str, Any]:
    """One ``public/instruments`` SWAP row: a USDT-margined perpetual of ``ct_val`` coins."""
    return {
        "instType": "SWAP", "instId": f"{base}-USDT-SWAP", "uly": f"{base}-USDT",
        "instFamily": f"{base}-USDT", "baseCcy": "", "quoteCcy": "", "settleCcy": "USDT",
        "ctValCcy": base, "ctVal": ct_val, "ctMult": "1", "ctType": "linear",
        "listTime": "1611916800000", "expTime": "", "lever": "100", "tickSz": "0.1",
        "lotSz": "1", "minSz": "1", "maxLmtSz": "100000000", "maxMktSz": "10000",
        "maxTwapSz": "", "maxIcebergSz": "", "maxTriggerSz": "", "maxStopSz": "",
        "state": "live", "alias": "", "category": "1", "optType": "", "stk": "",
        "settleCcyList": [], "ruleType": "normal", "contTdSwTime": "", "openType": "",
    }


def okx_position(inst: str, pos_side: str, pos: str, avg: str, mark: str, liq: str,
                 margin: str, mode: str = "isolated", lever: str = "10",
                 t: int = 0) -> dict[str, Any]:
    """One ``account/positions`` row (``posSide`` net, or long/short in hedge mode)."""
    return {
        "adl": "1", "availPos": pos, "avgPx": avg, "bePx": avg, "cTime": str(t), "ccy": "USDT",
        "deltaBS": "", "deltaPA": "", "gammaBS": "", "gammaPA": "", "imr": "" if
        mode == "isolated" else margin, "instId": inst, "instType": "SWAP", "interest": "",
        "idxPx": mark, "last": mark, "usdPx": "", "lever": lever, "liab": "", "liabCcy": "",
        "liqPx": liq, "markPx": mark, "margin": margin if mode == "isolated" else "",
        "mgnMode": mode, "mgnRatio": "", "mmr": "0", "notionalUsd": "0", "optVal": "",
        "pTime": str(t), "pendingCloseOrdLiabVal": "", "pos": pos, "baseBorrowed": "",
        "baseInterest": "", "quoteBorrowed": "", "quoteInterest": "", "posCcy": "",
        "posId": f"p-{inst}-{pos_side}", "posSide": pos_side, "spotInUseAmt": "",
        "spotInUseCcy": "", "clSpotInUseAmt": "", "maxSpotInUseAmt": "", "bizRefId": "",
        "bizRefType": "", "thetaBS": "", "thetaPA": "", "tradeId": "", "uTime": str(t),
        "upl": "0", "uplLastPx": "0", "uplRatio": "0", "uplRatioLastPx": "0", "vegaBS": "",
        "vegaPA": "", "realizedPnl": "0", "pnl": "0", "fee": "0", "fundingFee": "0",
        "liqPenalty": "0", "closeOrderAlgo": [],
    }


def okx_fill(bill: int, trade: str, order: str, inst: str, side: str, pos_side: str,
             size: str, price: str, t: int) -> dict[str, Any]:
    """One ``trade/fills-history`` row (``fillSz`` in contracts)."""
    return {"instType": "SWAP", "instId": inst, "tradeId": trade, "ordId": order,
            "clOrdId": "", "billId": str(bill), "subType": "1", "tag": "", "fillPx": price,
            "fillSz": size, "fillIdxPx": "", "fillPnl": "0", "fillPxVol": "",
            "fillPxUsd": "", "fillMarkVol": "", "fillFwdPx": "", "fillMarkPx": price,
            "side": side, "posSide": pos_side, "execType": "T", "feeCcy": "USDT",
            "fee": "-0.01", "ts": str(t), "fillTime": str(t)}


def okx_bill(bill: int, inst: str, kind: str, sub: str, change: str, t: int,
             mode: str = "isolated") -> dict[str, Any]:
    """One ``account/bills`` row (type 8 funding, 6 margin transfer)."""
    return {"bal": "1000", "balChg": change, "billId": str(bill), "ccy": "USDT",
            "clOrdId": "", "execType": "", "fee": "0", "fillFwdPx": "", "fillIdxPx": "",
            "fillMarkPx": "", "fillMarkVol": "", "fillPxUsd": "", "fillPxVol": "",
            "fillTime": str(t), "from": "", "instId": inst, "instType": "SWAP",
            "interest": "0", "mgnMode": mode, "notes": "", "ordId": "", "pnl": "0",
            "posBal": "0", "posBalChg": change if kind == "6" else "0", "px": "",
            "subType": sub, "sz": change, "tag": "", "to": "", "tradeId": "", "ts": str(t),
            "type": kind}


def okx_tiers(family: str) -> list[dict[str, Any]]:
    """OKX's documented BTC-USDT swap tiers 1-3 (``public/position-tiers``, contracts)."""
    return [{"uly": family, "instFamily": family, "instId": "", "tier": str(i + 1),
             "minSz": lo, "maxSz": hi, "mmr": mmr, "imr": imr, "maxLever": lev,
             "optMgnFactor": "0", "quoteMaxLoan": "", "baseMaxLoan": ""}
            for i, (lo, hi, mmr, imr, lev) in enumerate((
                ("0", "500", "0.004", "0.008", "125"),
                ("501", "1000", "0.006", "0.01", "100"),
                ("1001", "1500", "0.01", "0.02", "50")))]


def sample_okx_account(now_ms: int | None = None) -> OkxAccount:
    """BTC-USDT-SWAP isolated net mode (contracts of 0.01 BTC): opened, margin added, funding,
    partial close, still open; ETH-USDT-SWAP cross hedge mode: an open short, no long leg
    (liqPx ""); SOL-USDT-SWAP (1 SOL contracts) opened and liquidated (positions history
    type 3).

    OKX's figures by hand: BTC isolated margin = 60 (0.01 BTC × 60,000 / 10x) − 0.3 (funding,
    from the isolated margin) + 20 (added) − 31.88 (the closed share, 0.4 of 1 contract × 0.01
    BTC = 40 % of the 79.7 posted) = 47.82; liquidation (OKX isolated long, tier 1 MMR 0.4 %,
    the 0.05 % taker fee to close counted as maintenance) = (60,000 − 47.82 / 0.006) /
    (1 − 0.004 − 0.0005) = 52,265.2. SOL 10 at 150, 10x: liquidated at the bankruptcy price
    150 − 150 / 10 = 135.0."""
    now = now_ms or _now()
    t0 = now - 20 * DAY_MS
    h = 3_600_000
    acc = OkxAccount(
        instruments=[okx_instrument("BTC"), okx_instrument("ETH", "0.1"),
                     okx_instrument("SOL", "1")],
        tiers=[*okx_tiers("BTC-USDT"), *okx_tiers("ETH-USDT"), *okx_tiers("SOL-USDT")],
        marks={"BTC-USDT-SWAP": "61000.0", "ETH-USDT-SWAP": "2900.0",
               "SOL-USDT-SWAP": "140.0"},
    )
    f = okx_fill
    acc.fills = [
        f(9001, "101", "o1", "BTC-USDT-SWAP", "buy", "net", "0.4", "60000.0", t0),
        f(9002, "102", "o1", "BTC-USDT-SWAP", "buy", "net", "0.6", "60000.0", t0 + 50),
        f(9003, "103", "o2", "BTC-USDT-SWAP", "sell", "net", "0.4", "62000.0", t0 + 2 * DAY_MS),
        f(9004, "201", "o3", "ETH-USDT-SWAP", "sell", "short", "5", "3000.0", t0 + 3 * DAY_MS),
        f(9005, "301", "o4", "SOL-USDT-SWAP", "buy", "net", "10", "150.0", t0 + 4 * DAY_MS),
        f(9006, "302", "o5", "SOL-USDT-SWAP", "sell", "net", "10", "135.0", t0 + 5 * DAY_MS),
    ]
    acc.bills = [
        okx_bill(8001, "BTC-USDT-SWAP", "8", "174", "-0.3", t0 + 8 * h),  # funding paid
        okx_bill(8002, "BTC-USDT-SWAP", "6", "160", "20", t0 + DAY_MS),  # margin added
        okx_bill(8003, "ETH-USDT-SWAP", "8", "173", "0.1", t0 + 3 * DAY_MS + 8 * h, "cross"),
    ]
    acc.positions_history = [{
        "instType": "SWAP", "instId": "SOL-USDT-SWAP", "mgnMode": "isolated", "type": "3",
        "cTime": str(t0 + 4 * DAY_MS), "uTime": str(t0 + 5 * DAY_MS), "openAvgPx": "150.0",
        "closeAvgPx": "135.0", "posId": "p-sol", "openMaxPos": "10", "closeTotalPos": "10",
        "realizedPnl": "-150", "fee": "-0.1", "fundingFee": "0", "liqPenalty": "-1.7",
        "pnl": "-150", "pnlRatio": "-0.9", "posSide": "net", "lever": "10", "direction": "long",
        "triggerPx": "", "uly": "SOL-USDT", "ccy": "USDT", "nonSettleAvgPx": "",
        "settledPnl": ""}]
    acc.positions = [
        okx_position("BTC-USDT-SWAP", "net", "0.6", "60000.0", "61000.0", "52265.2", "47.82",
                     t=t0 + 2 * DAY_MS),
        okx_position("ETH-USDT-SWAP", "short", "5", "3000.0", "2900.0", "", "290.0",
                     "cross", "5", t0 + 3 * DAY_MS),
    ]
    return acc


__all__ = [
    "API_KEY", "API_SECRET", "DAY_MS", "Account", "BybitAccount", "FakeBinanceFutures",
    "FakeBybit", "FakeOkx", "Logged", "OkxAccount", "RecordedExchange", "bracket",
    "bybit_execution", "bybit_instrument", "bybit_position", "bybit_risk_limits",
    "bybit_ticker", "coinm_market", "income", "margin_line", "market", "okx_bill",
    "okx_fill", "position", "sample_account", "sample_bybit_account", "sample_coinm_account",
    "sample_okx_account", "serving", "trade",
]
