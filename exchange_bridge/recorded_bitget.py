"""A recorded Bitget account on loopback: Bitget's v2 mix REST API (USDT-M perpetuals) in
Bitget's JSON, for real ccxt ``bitget`` objects (``leverage_exchange.client.redirect``).

- ``GET /api/v2/public/time``                  server time (``fetch_time``)
- ``GET /api/v2/spot/public/coins``            currencies (ccxt's ``load_markets``)
- ``GET /api/v2/mix/market/contracts``         markets per ``productType`` (``load_markets``)
- ``GET /api/v2/mix/market/tickers``           mark prices (``fetch_tickers``)
- ``GET /api/v2/mix/market/query-position-lever``  tiers (``fetch_market_leverage_tiers``)
- ``GET /api/v2/mix/position/all-position``    open positions (``fetch_positions``)
- ``GET /api/v2/mix/position/history-position``  closed positions (``fetch_positions_history``)
- ``GET /api/v2/mix/account/accounts``         the futures account (``fetch_balance``)
- ``GET /api/v2/mix/account/account``          a symbol's leverage (``fetch_leverage``)
- ``GET /api/v2/mix/order/fills``              fills (``fetch_my_trades``)
- ``GET /api/v2/mix/account/bill``             bills: funding (``contract_settle_fee``,
  ``fetch_funding_history``), margin moves (``append_margin``, ``reduce_margin``)

Shapes follow Bitget's API docs (bitget.com/api-doc/contract) and the answers quoted in
ccxt's ts/src/bitget.ts (its parsePosition, parseTrade and fetchPositionsHistory examples):
the ``{"code": "00000", "msg": "success", "requestTime", "data"}`` envelope, numbers as
strings, times in ms. Lists come newest first, filtered by ``symbol``, ``businessType`` and
``startTime``/``endTime``, cut at ``limit`` (100 at most) below ``idLessThan``, with the page's
oldest id as ``endId``. Private endpoints check Bitget's signature: ``ACCESS-SIGN`` = base64
HMAC-SHA256 of timestamp + method + path + ``?`` + query under the secret, with
``ACCESS-KEY``, ``ACCESS-TIMESTAMP`` and ``ACCESS-PASSPHRASE``; anything else gets Bitget's
``40037`` "Apikey does not exist". ``fail(path, "429")`` answers with Bitget's ``429``; the
other faults are :meth:`RecordedExchange.fail`'s.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .recorded_exchange import API_KEY, API_SECRET, DAY_MS, RecordedExchange

PASSPHRASE = "test-passphrase"
MIX = "/api/v2/mix"


@dataclass
class BitgetAccount:
    """A recorded Bitget USDT-M account: rows as Bitget sends them."""

    contracts: list[dict[str, Any]] = field(default_factory=list)
    tiers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    marks: dict[str, str] = field(default_factory=dict)
    positions: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)  # closed positions
    fills: list[dict[str, Any]] = field(default_factory=list)
    bills: list[dict[str, Any]] = field(default_factory=list)
    leverages: dict[str, str] = field(default_factory=dict)
    wallet: str = "1000"  # the cross wallet: assets without open PnL or isolated margin
    server_time: int | None = None


def _now() -> int:
    return int(time.time() * 1000)


def _ok(data: Any) -> dict[str, Any]:
    return {"code": "00000", "msg": "success", "requestTime": _now(), "data": data}


def _error(code: str, msg: str) -> dict[str, Any]:
    return {"code": code, "msg": msg, "requestTime": _now(), "data": None}


def _page(rows: list[dict[str, Any]], params: dict[str, str], key: str,
          filters: tuple[str, ...]) -> list[dict[str, Any]]:
    """Newest first, ``startTime``/``endTime`` (ms, inclusive), below ``idLessThan``, at
    most ``limit`` (100)."""
    limit = min(int(params.get("limit") or 100), 100)
    start, end = params.get("startTime"), params.get("endTime")
    below = params.get("idLessThan")
    kept = [r for r in rows if all(params.get(f) in (None, r.get(f)) for f in filters)
            and (start is None or int(r["cTime"]) >= int(start))
            and (end is None or int(r["cTime"]) <= int(end))
            and (below is None or int(r[key]) < int(below))]
    kept.sort(key=lambda r: int(r[key]), reverse=True)
    return kept[:limit]


class FakeBitget(RecordedExchange):
    """Bitget v2 mix on 127.0.0.1 (see the module docstring)."""

    def _signed(self, req: Any, path: str) -> bool:
        headers = req.headers
        if (headers.get("ACCESS-KEY") != API_KEY or headers.get("ACCESS-PASSPHRASE") != PASSPHRASE
                or not headers.get("ACCESS-TIMESTAMP")):
            return False
        query = urlsplit(req.path).query
        auth = headers["ACCESS-TIMESTAMP"] + req.command + path + (f"?{query}" if query else "")
        want = base64.b64encode(hmac.new(API_SECRET.encode(), auth.encode(),
                                         hashlib.sha256).digest()).decode()
        return hmac.compare_digest(want, headers.get("ACCESS-SIGN") or "")

    def _answer(self, req: Any, path: str, params: dict[str, str],
                fault: str | None) -> tuple[int, Any, dict[str, str]]:
        if fault == "429":
            return 429, _error("429", "Too Many Requests"), {}
        acc: BitgetAccount = self.account
        usdt = params.get("productType") in (None, "USDT-FUTURES")
        if path == "/api/v2/public/time":
            return 200, _ok({"serverTime": str(acc.server_time or _now())}), {}
        if path == "/api/v2/spot/public/coins":  # ccxt's load_markets reads it (public)
            return 200, _ok([{"coinId": str(i + 1), "coin": c, "transfer": "true",
                              "areaCoin": "no", "chains": []}
                             for i, c in enumerate(("USDT", "BTC", "ETH", "SOL", "LTC"))]), {}
        if path == f"{MIX}/market/contracts":
            return 200, _ok(acc.contracts if usdt else []), {}
        if path == f"{MIX}/market/tickers":
            return 200, _ok([_ticker(c["symbol"], acc.marks[c["symbol"]])
                             for c in acc.contracts if usdt]), {}
        if path == f"{MIX}/market/query-position-lever":
            rows = acc.tiers.get(params.get("symbol", ""))
            if rows is None:
                return 400, _error("40034", "Parameter symbol does not exist"), {}
            return 200, _ok(rows), {}
        if not self._signed(req, path):
            return 400, _error("40037", "Apikey does not exist"), {}
        if path == f"{MIX}/position/all-position":
            return 200, _ok([p for p in acc.positions if usdt]), {}
        if path == f"{MIX}/position/history-position":
            rows = _page(acc.history, params, "positionId", ("symbol",))
            end = rows[-1]["positionId"] if rows else ""
            return 200, _ok({"list": rows, "endId": end}), {}
        if path == f"{MIX}/account/accounts":
            return 200, _ok([_account(acc)]), {}
        if path == f"{MIX}/account/account":
            lev = acc.leverages.get(params.get("symbol", ""), "20")
            return 200, _ok({**_account(acc), "crossedMarginLeverage": lev,
                             "isolatedLongLever": lev, "isolatedShortLever": lev,
                             "marginMode": "isolated", "posMode": "one_way_mode"}), {}
        if path == f"{MIX}/order/fills":
            rows = _page(acc.fills, params, "tradeId", ("symbol",))
            return 200, _ok({"fillList": rows, "endId": rows[-1]["tradeId"] if rows else ""}), {}
        if path == f"{MIX}/account/bill":
            rows = _page(acc.bills, params, "billId", ("symbol", "businessType"))
            return 200, _ok({"bills": rows, "endId": rows[-1]["billId"] if rows else ""}), {}
        return 404, _error("40404", "Request URL NOT FOUND"), {}


def _account(acc: BitgetAccount) -> dict[str, Any]:
    """One ``account/accounts`` row: equity = the cross wallet + isolated margin + open PnL."""
    isolated = sum(float(p["marginSize"]) for p in acc.positions
                   if p["marginMode"] == "isolated")
    upnl = sum(float(p["unrealizedPL"]) for p in acc.positions)
    equity = float(acc.wallet) + isolated + upnl
    return {"marginCoin": "USDT", "locked": "0", "available": acc.wallet,
            "crossedMaxAvailable": acc.wallet, "isolatedMaxAvailable": acc.wallet,
            "maxTransferOut": acc.wallet, "accountEquity": f"{equity:.8f}",
            "usdtEquity": f"{equity:.8f}", "btcEquity": "0", "crossedRiskRate": "0",
            "unrealizedPL": f"{upnl:.8f}", "coupon": "0", "unionTotalMagin": "0",
            "unionAvailable": "0", "unionMm": "0", "assetList": [],
            "isolatedMargin": f"{isolated:.8f}", "crossedMargin": "0",
            "crossedUnrealizedPL": "0", "isolatedUnrealizedPL": "0", "assetMode": "single"}


def bitget_contract(symbol: str, base: str, size_step: str = "0.001") -> dict[str, Any]:
    """One ``market/contracts`` row (Bitget's documented Get-All-Symbols-Contracts fields)."""
    return {
        "symbol": symbol, "baseCoin": base, "quoteCoin": "USDT", "buyLimitPriceRatio": "0.9",
        "sellLimitPriceRatio": "0.9", "feeRateUpRatio": "0.1", "makerFeeRate": "0.0002",
        "takerFeeRate": "0.0006", "openCostUpRatio": "0.1", "supportMarginCoins": ["USDT"],
        "minTradeNum": size_step, "priceEndStep": "1", "volumePlace": "3", "pricePlace": "1",
        "sizeMultiplier": size_step, "symbolType": "perpetual", "minTradeUSDT": "5",
        "maxSymbolOrderNum": "999999", "maxProductOrderNum": "999999",
        "maxPositionNum": "150", "symbolStatus": "normal", "offTime": "-1",
        "limitOpenTime": "-1", "deliveryTime": "", "deliveryStartTime": "",
        "deliveryPeriod": "", "launchTime": "", "fundInterval": "8", "minLever": "1",
        "maxLever": "125", "posLimit": "0.05", "maintainTime": "",
    }


def _ticker(symbol: str, mark: str) -> dict[str, Any]:
    """One ``market/tickers`` row."""
    return {"symbol": symbol, "lastPr": mark, "askPr": mark, "bidPr": mark, "bidSz": "1",
            "askSz": "1", "high24h": mark, "low24h": mark, "ts": str(_now()),
            "change24h": "0", "baseVolume": "100", "quoteVolume": "100000",
            "usdtVolume": "100000", "openUtc": mark, "changeUtc24h": "0", "indexPrice": mark,
            "fundingRate": "0.0001", "holdingAmount": "100", "deliveryStartTime": None,
            "deliveryTime": None, "deliveryStatus": "", "open24h": mark, "markPrice": mark}


def bitget_tiers(symbol: str) -> list[dict[str, Any]]:
    """``query-position-lever`` rows: Bitget's BTCUSDT tiers 1-3 of its tiered-maintenance
    example (tier 1 to 200,000 USDT at 0.40 %, tier 2 at 0.50 %)."""
    return [{"symbol": symbol, "level": str(i + 1), "startUnit": lo, "endUnit": hi,
             "leverage": lev, "keepMarginRate": mmr}
            for i, (lo, hi, lev, mmr) in enumerate((
                ("0", "200000", "125", "0.004"), ("200000", "1000000", "100", "0.005"),
                ("1000000", "5000000", "50", "0.01")))]


def bitget_position(symbol: str, hold: str, total: str, entry: str, mark: str, liq: str,
                    margin: str, mode: str = "isolated", pos_mode: str = "one_way_mode",
                    leverage: str = "10", t: int = 0) -> dict[str, Any]:
    """One ``all-position`` row (ccxt's parsePosition example, field for field);
    ``marginSize`` the isolated margin (cross: the notional at the leverage)."""
    s = 1 if hold == "long" else -1
    upnl = s * float(total) * (float(mark) - float(entry))
    return {"marginCoin": "USDT", "symbol": symbol, "holdSide": hold, "openDelegateSize": "0",
            "marginSize": margin, "available": total, "locked": "0", "total": total,
            "leverage": leverage, "achievedProfits": "0", "openPriceAvg": entry,
            "marginMode": "isolated" if mode == "isolated" else "crossed", "posMode": pos_mode,
            "unrealizedPL": f"{upnl:.8f}", "liquidationPrice": liq, "keepMarginRate": "0.004",
            "markPrice": mark, "marginRatio": "0.01", "cTime": str(t), "uTime": str(t)}


def bitget_fill(trade_id: str, order: str, symbol: str, side: str, trade_side: str,
                size: str, price: str, t: int, pos_mode: str = "one_way_mode",
                profit: str = "0") -> dict[str, Any]:
    """One ``order/fills`` row (ccxt's parseTrade example): the fee 0.06 % of the value."""
    value = float(size) * float(price)
    return {"tradeId": trade_id, "symbol": symbol, "orderId": order, "price": price,
            "baseVolume": size, "feeDetail": [{"deduction": "no", "feeCoin": "USDT",
                                               "totalDeductionFee": None,
                                               "totalFee": f"{-value * 0.0006:.8f}"}],
            "side": side, "quoteVolume": f"{value:.8f}", "profit": profit,
            "enterPointSource": "api", "tradeSide": trade_side, "posMode": pos_mode,
            "tradeScope": "taker", "cTime": str(t)}


def bitget_bill(bill_id: str, symbol: str, business: str, amount: str, t: int) -> dict[str, Any]:
    """One ``account/bill`` row."""
    return {"billId": bill_id, "symbol": symbol, "amount": amount, "fee": "0",
            "feeByCoupon": "", "businessType": business, "coin": "USDT", "balance": "1000",
            "cTime": str(t)}


def sample_bitget_account(now_ms: int | None = None) -> BitgetAccount:
    """BTCUSDT isolated one-way (opened by one order in two fills, funding, margin added, a
    scale-in, half closed, still open); ETHUSDT isolated hedge mode, both legs open, part of
    the long closed by a ``buy`` (Bitget's hedge-mode close of a long); SOLUSDT cross one-way,
    open; LTCUSDT isolated, opened and liquidated (``burst_sell_single``).

    Bitget's figures by hand (leverage.conventions.bitget, taker 0.06 %, tier 1 0.40 %):
    BTC margin = 24 (0.004 at 60,000, 10x) − 0.30 (funding) + 20 (added) + 12.6 (scale-in of
    0.002 at 63,000) − 28.15 (half closed) = 28.15, entry 61,000, liquidation
    (28.15 − 0.003 × 61,000) / (0.003 × (0.004 + 0.0006 − 1)) = 51,855.20. ETH long 0.4 at
    3,000 on 240 (5x, 300 less the closed fifth): 2,411.09; short 0.2 at 3,100 on 124:
    (124 + 620) / (0.2 × (1.0046)) = 3,702.97. SOL cross 10 at 150, the only cross position,
    cross wallet 1,000: (1,000 − 1,500) / (10 × (0.0046 − 1)) = 50.23."""
    now = now_ms or _now()
    t0 = now - 20 * DAY_MS
    h = 3_600_000
    symbols = (("BTCUSDT", "BTC", "61500"), ("ETHUSDT", "ETH", "3050"),
               ("SOLUSDT", "SOL", "140"), ("LTCUSDT", "LTC", "66"))
    acc = BitgetAccount(
        server_time=now_ms,
        contracts=[bitget_contract(s, b) for s, b, _ in symbols],
        tiers={s: bitget_tiers(s) for s, _, _ in symbols},
        marks={s: m for s, _, m in symbols},
        leverages={"LTCUSDT": "10"},
    )
    hedge = "hedge_mode"
    f = bitget_fill
    acc.fills = [
        f("101", "b1", "BTCUSDT", "buy", "buy_single", "0.003", "60000", t0),
        f("102", "b1", "BTCUSDT", "buy", "buy_single", "0.001", "60000", t0 + 30),
        f("103", "b2", "BTCUSDT", "buy", "buy_single", "0.002", "63000", t0 + DAY_MS),
        f("104", "b3", "BTCUSDT", "sell", "sell_single", "0.003", "62000", t0 + 2 * DAY_MS,
          profit="3"),
        f("201", "b4", "ETHUSDT", "buy", "open", "0.5", "3000", t0 + 3 * DAY_MS, hedge),
        f("202", "b5", "ETHUSDT", "sell", "open", "0.2", "3100", t0 + 3 * DAY_MS + h, hedge),
        # Bitget's hedge mode: closing a long is a "buy" with tradeSide close
        f("203", "b6", "ETHUSDT", "buy", "close", "0.1", "3050", t0 + 3 * DAY_MS + 2 * h,
          hedge, profit="5"),
        f("301", "b7", "SOLUSDT", "buy", "buy_single", "10", "150", t0 + 4 * DAY_MS),
        f("401", "b8", "LTCUSDT", "buy", "buy_single", "1", "70", t0 + 5 * DAY_MS),
        f("402", "b9", "LTCUSDT", "sell", "burst_sell_single", "1", "63", t0 + 6 * DAY_MS,
          profit="-7"),
    ]
    acc.bills = [
        bitget_bill("9001", "BTCUSDT", "contract_settle_fee", "-0.3", t0 + 8 * h),
        bitget_bill("9002", "BTCUSDT", "append_margin", "-20", t0 + 12 * h),
        bitget_bill("9003", "BTCUSDT", "open_long", "-0.144", t0),  # a fee: not asked for
    ]
    acc.history = [{
        "positionId": "5001", "symbol": "LTCUSDT", "marginCoin": "USDT", "holdSide": "long",
        "openAvgPrice": "70", "closeAvgPrice": "63", "marginMode": "isolated",
        "openTotalPos": "1", "closeTotalPos": "1", "pnl": "-7", "netProfit": "-7.08",
        "totalFunding": "0", "openFee": "-0.042", "closeFee": "-0.0378",
        "utime": str(t0 + 6 * DAY_MS), "ctime": str(t0 + 5 * DAY_MS),
        "cTime": str(t0 + 5 * DAY_MS)}]
    acc.positions = [
        bitget_position("BTCUSDT", "long", "0.003", "61000", "61500", "51855.2", "28.15",
                        t=t0 + 2 * DAY_MS),
        bitget_position("ETHUSDT", "long", "0.4", "3000", "3050", "2411.09", "240",
                        pos_mode=hedge, leverage="5", t=t0 + 3 * DAY_MS),
        bitget_position("ETHUSDT", "short", "0.2", "3100", "3050", "3702.97", "124",
                        pos_mode=hedge, leverage="5", t=t0 + 3 * DAY_MS + h),
        bitget_position("SOLUSDT", "long", "10", "150", "140", "50.23", "150", "crossed",
                        t=t0 + 4 * DAY_MS),
    ]
    return acc


__all__ = ["PASSPHRASE", "BitgetAccount", "FakeBitget", "bitget_bill", "bitget_contract",
           "bitget_fill", "bitget_position", "bitget_tiers", "sample_bitget_account"]
