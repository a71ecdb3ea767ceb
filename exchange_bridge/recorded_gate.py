"""A recorded Gate account on loopback: Gate futures API v4 (USDT-settled perpetuals) in Gate's
JSON, for real ccxt ``gate`` objects (``leverage_exchange.client.redirect``).

- ``GET /api/v4/spot/time``                          server time (``fetch_time``)
- ``GET /api/v4/spot/currencies``                    currencies (ccxt's ``load_markets``)
- ``GET /api/v4/futures/usdt/contracts``             markets (``load_markets``; another
  settle currency's list is empty)
- ``GET /api/v4/account/detail``                     the key's account mode (ccxt asks once)
- ``GET /api/v4/futures/usdt/positions``             open positions (``fetch_positions``)
- ``GET /api/v4/futures/usdt/accounts``              the futures wallet (``fetch_balance``)
- ``GET /api/v4/futures/usdt/my_trades_timerange``   fills (``fetch_my_trades``)
- ``GET /api/v4/futures/usdt/account_book``          funding, ``type=fund``
  (``fetch_funding_history``)
- ``GET /api/v4/futures/usdt/liquidates``            liquidations (``fetch_my_liquidations``)
- ``GET /api/v4/futures/usdt/risk_limit_tiers``      tiers (``fetch_leverage_tiers``)
- ``GET /api/v4/futures/usdt/tickers``               mark prices (``fetch_tickers``)

Shapes follow Gate's API v4 documentation (gate.com/docs/developers/apiv4, "Futures") and
the answers quoted in ccxt's sources (ts/src/gate.ts comments; ts/src/test/static/response/
gate.json: the LTC_USDT position, the swap fill, the BTC_USD contract): numbers as strings,
times in seconds (fills with milliseconds as decimals). Lists are newest first, filtered by
``contract``, ``from``/``to`` (seconds) and ``type``, and cut at ``offset``/``limit`` (default
100, at most 1000), so a long history takes pages. Private endpoints check Gate's signature
(``KEY``, ``Timestamp`` and ``SIGN``, the hex HMAC-SHA512 of the request: :func:`_signed`);
anything else gets Gate's 401 ``INVALID_KEY``.
``fail(path, "429")`` answers with Gate's ``TOO_MANY_REQUESTS``; the other faults are
:meth:`RecordedExchange.fail`'s.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from .recorded_exchange import API_KEY, API_SECRET, DAY_MS, RecordedExchange

PREFIX = "/api/v4"
FUTURES = "/api/v4/futures/usdt"


@dataclass
class GateAccount:
    """A recorded Gate futures account: rows as Gate sends them."""

    contracts: list[dict[str, Any]] = field(default_factory=list)
    positions: list[dict[str, Any]] = field(default_factory=list)
    trades: list[dict[str, Any]] = field(default_factory=list)
    book: list[dict[str, Any]] = field(default_factory=list)  # account_book rows
    liquidates: list[dict[str, Any]] = field(default_factory=list)
    tiers: list[dict[str, Any]] = field(default_factory=list)
    total: str = "1000"  # the futures account's total (without unrealized PnL)
    server_time: int | None = None


def _now() -> int:
    return int(time.time() * 1000)


def _error(label: str, message: str) -> dict[str, str]:
    return {"label": label, "message": message}


def _seconds(row: dict[str, Any], key: str) -> float:
    return float(row[key])


def _list(rows: list[dict[str, Any]], params: dict[str, str], time_key: str,
          filters: tuple[str, ...] = ("contract",)) -> list[dict[str, Any]]:
    """Gate's time-range lists: newest first, ``from``/``to`` in seconds (inclusive),
    ``offset``/``limit`` (default 100, at most 1000)."""
    limit = min(int(params.get("limit") or 100), 1000)
    offset = int(params.get("offset") or 0)
    start, end = params.get("from"), params.get("to")
    kept = [r for r in rows if all(params.get(f) in (None, str(r.get(f))) for f in filters)
            and (start is None or _seconds(r, time_key) >= float(start))
            and (end is None or _seconds(r, time_key) <= float(end))]
    kept.sort(key=lambda r: _seconds(r, time_key), reverse=True)
    return kept[offset:offset + limit]


class FakeGate(RecordedExchange):
    """Gate futures v4 on 127.0.0.1 (see the module docstring)."""

    def _answer(self, req: Any, path: str, params: dict[str, str],
                fault: str | None) -> tuple[int, Any, dict[str, str]]:
        if fault == "429":
            return 429, _error("TOO_MANY_REQUESTS", "Request Rate limit Exceeded"), {}
        acc: GateAccount = self.account
        now = acc.server_time or _now()
        if path == f"{PREFIX}/spot/time":
            return 200, {"server_time": now}, {}
        if path == f"{PREFIX}/spot/currencies":  # ccxt's load_markets reads it (public)
            return 200, [{"currency": c, "name": c, "delisted": False, "withdraw_disabled": False,
                          "withdraw_delayed": False, "deposit_disabled": False,
                          "trade_disabled": False, "chain": c, "chains": []}
                         for c in ("USDT", "BTC", "ETH", "SOL")], {}
        if path == f"{FUTURES}/contracts":
            return 200, acc.contracts, {}
        if path.startswith(f"{PREFIX}/futures/") and path.endswith("/contracts"):
            return 200, [], {}  # public too; the account has no BTC-settled swaps
        if path == f"{FUTURES}/risk_limit_tiers":
            rows = [t for t in acc.tiers if params.get("contract") in (None, t["contract"])]
            offset, limit = int(params.get("offset") or 0), int(params.get("limit") or 100)
            if "contract" not in params:  # paged by contract, as ccxt asks
                names = sorted({t["contract"] for t in rows})[offset:offset + limit]
                rows = [t for t in rows if t["contract"] in names]
            return 200, rows, {}
        if path == f"{FUTURES}/tickers":
            return 200, [_ticker(c) for c in acc.contracts
                         if params.get("contract") in (None, c["name"])], {}
        if not _signed(req, path):
            return 401, _error("INVALID_KEY", "Invalid key provided"), {}
        if path == f"{PREFIX}/account/detail":
            return 200, {"user_id": 10406147, "ip_whitelist": [], "currency_pairs": [],
                         "key": {"mode": 1}, "tier": 0}, {}
        if path == f"{FUTURES}/positions":
            rows = [p for p in acc.positions if params.get("holding") != "true"
                    or float(p["size"]) != 0]
            return 200, rows, {}
        if path == f"{FUTURES}/accounts":
            isolated = sum(float(p["margin"]) for p in acc.positions if p["leverage"] != "0")
            return 200, _futures_account(acc.total, isolated), {}
        if path == f"{FUTURES}/my_trades_timerange":
            return 200, _list(acc.trades, params, "create_time"), {}
        if path == f"{FUTURES}/account_book":
            return 200, _list(acc.book, params, "time", ("contract", "type")), {}
        if path == f"{FUTURES}/liquidates":
            return 200, _list(acc.liquidates, params, "time"), {}
        return 404, _error("NOT_FOUND", f"{path} not found"), {}


def _signed(req: Any, path: str) -> bool:
    """Gate's APIv4 signature: ``SIGN`` = hex HMAC-SHA512 under the secret of method, path,
    the query as sent (unescaped), the hex SHA-512 of the body ("" for a GET) and
    ``Timestamp``, one a line; ``KEY`` the key."""
    headers = req.headers
    if headers.get("KEY") != API_KEY or not headers.get("Timestamp"):
        return False
    query = unquote(urlsplit(req.path).query)
    payload = "\n".join((req.command, path, query, hashlib.sha512(b"").hexdigest(),
                          headers["Timestamp"]))
    want = hmac.new(API_SECRET.encode(), payload.encode(), hashlib.sha512).hexdigest()
    return hmac.compare_digest(want, headers.get("SIGN") or "")


def _futures_account(total: str, isolated: float) -> dict[str, Any]:
    """``GET /futures/usdt/accounts`` (Gate's documented FuturesAccount fields)."""
    available = f"{float(total) - isolated:.8f}"
    return {
        "user": 10406147, "currency": "USDT", "total": total, "unrealised_pnl": "0",
        "position_margin": f"{isolated:.8f}", "order_margin": "0", "available": available,
        "point": "0", "bonus": "0", "in_dual_mode": True, "enable_evolved_classic": True,
        "cross_initial_margin": "0", "cross_maintenance_margin": "0", "cross_order_margin": "0",
        "cross_unrealised_pnl": "0", "cross_available": available,
        "cross_margin_balance": available, "cross_mmr": "0", "cross_imr": "0",
        "isolated_position_margin": f"{isolated:.8f}", "enable_new_dual_mode": True,
        "margin_mode": 0, "enable_tiered_mm": True,
        "history": {"dnw": total, "pnl": "0", "fee": "0", "refr": "0", "fund": "0",
                    "point_dnw": "0", "point_fee": "0", "point_refr": "0", "bonus_dnw": "0",
                    "bonus_offset": "0"},
    }


def gate_contract(name: str, multiplier: str, mark: str, mmr: str = "0.004") -> dict[str, Any]:
    """One ``futures/usdt/contracts`` row (the fields of ccxt's static BTC_USD answer)."""
    return {
        "name": name, "type": "direct", "quanto_multiplier": multiplier,
        "ref_discount_rate": "0", "order_price_deviate": "0.5", "maintenance_rate": mmr,
        "mark_type": "index", "last_price": mark, "mark_price": mark, "index_price": mark,
        "funding_rate_indicative": "0.0001", "mark_price_round": "0.01", "funding_offset": 0,
        "in_delisting": False, "risk_limit_base": "500000", "interest_rate": "0.0003",
        "order_price_round": "0.1", "order_size_min": 1, "ref_rebate_rate": "0.2",
        "funding_interval": 28800, "risk_limit_step": "500000", "leverage_min": "1",
        "leverage_max": "100", "risk_limit_max": "2000000", "maker_fee_rate": "-0.0001",
        "taker_fee_rate": "0.00075", "funding_rate": "0.0001", "order_size_max": 1000000,
        "funding_next_apply": 1741363200, "short_users": 207, "config_change_time": 1732783287,
        "create_time": 1545235200, "trade_size": 59939537641, "position_size": 11835253,
        "long_users": 486, "funding_impact_value": "0.5", "orders_limit": 50,
        "trade_id": 46136002, "orderbook_id": 4871277879, "enable_bonus": False,
        "enable_credit": True, "funding_cap_ratio": "0.75", "voucher_leverage": "0",
        "is_pre_market": False, "status": "trading", "cross_leverage_default": "10",
    }


def _ticker(c: dict[str, Any]) -> dict[str, Any]:
    """One ``futures/usdt/tickers`` row from its contract."""
    return {"contract": c["name"], "last": c["last_price"], "mark_price": c["mark_price"],
            "index_price": c["index_price"], "funding_rate": c["funding_rate"],
            "funding_rate_indicative": c["funding_rate_indicative"], "change_percentage": "0",
            "total_size": "1000", "volume_24h": "1000", "volume_24h_base": "10",
            "volume_24h_quote": "100000", "volume_24h_settle": "100000", "low_24h": "1",
            "high_24h": "2", "lowest_ask": c["last_price"], "highest_bid": c["last_price"]}


def gate_tiers(contract: str) -> list[dict[str, Any]]:
    """Gate's documented ``risk_limit_tiers`` rows: tiers 1-3 of a 100x contract."""
    return [{"tier": i + 1, "risk_limit": lim, "initial_rate": ir, "maintenance_rate": mmr,
             "leverage_max": lev, "contract": contract, "deduction": ded}
            for i, (lim, ir, mmr, lev, ded) in enumerate((
                ("500000", "0.01", "0.004", "100", "0"),
                ("1000000", "0.02", "0.005", "50", "500"),
                ("2000000", "0.03", "0.01", "33.33", "5500")))]


def gate_position(contract: str, size: str, entry: str, mark: str, liq: str, margin: str,
                  leverage: str, mode: str = "single", multiplier: str = "1",
                  t: int = 0) -> dict[str, Any]:
    """One ``futures/usdt/positions`` row (ccxt's static LTC_USDT answer, field for field);
    ``leverage`` "0" is cross margin, ``size`` is negative for a short."""
    value = abs(float(size)) * float(multiplier) * float(mark)
    upnl = float(size) * float(multiplier) * (float(mark) - float(entry))
    return {
        "value": f"{value:.8f}", "leverage": leverage, "mode": mode, "realised_point": "0",
        "contract": contract, "entry_price": entry, "mark_price": mark, "history_point": "0",
        "realised_pnl": "0", "close_order": None, "size": size,
        "cross_leverage_limit": "10" if leverage == "0" else "0", "pending_orders": "0",
        "adl_ranking": "5", "maintenance_rate": "0.004", "unrealised_pnl": f"{upnl:.8f}",
        "user": "10406147", "leverage_max": "100", "history_pnl": "0",
        "risk_limit": "500000", "margin": margin, "last_close_pnl": "0", "liq_price": liq,
        "update_time": str(t // 1000), "update_id": "10", "initial_margin": "0",
        "maintenance_margin": "0", "open_time": str(t // 1000), "trade_max_size": "0",
    }


def gate_trade(trade_id: str, order: str, contract: str, size: str, price: str, t: int,
               close_size: str = "0", multiplier: str = "1") -> dict[str, Any]:
    """One ``my_trades_timerange`` row (ccxt's static swap fill): ``size`` signed (+ buy),
    ``close_size`` the part that closes (signed like the position closed), the fee 0.05 %
    of the value (the account's own taker rate; Gate's liquidation counts 0.075 %)."""
    fee = abs(float(size)) * float(multiplier) * float(price) * 0.0005
    return {"price": price, "text": "api", "fee": f"{fee:.8f}",
            "create_time": f"{t / 1000:.3f}", "point_fee": "0", "trade_id": trade_id,
            "id": trade_id, "contract": contract, "role": "taker", "order_id": order,
            "size": size, "close_size": close_size, "biz_info": "ch:ccxt",
            "amend_text": "-"}


def gate_book(book_id: str, contract: str, kind: str, change: str, t: int) -> dict[str, Any]:
    """One ``account_book`` row (``type`` fund: funding, + received)."""
    return {"time": f"{t / 1000:.3f}", "change": change, "balance": "1000",
            "text": f"{contract}:{book_id}", "type": kind, "contract": contract,
            "trade_id": "", "id": book_id}


def sample_gate_account(now_ms: int | None = None) -> GateAccount:
    """BTC_USDT isolated one-way (contracts of 0.0001 BTC, leverage 10): opened by one order
    in two fills, funding, a scale-in, a partial close, still open; ETH_USDT cross in hedge
    (dual) mode, both legs open; SOL_USDT isolated, opened and liquidated.

    Gate's figures by hand (Gate's rules, leverage.conventions.gate): BTC margin = 24.18 (open
    40 contracts = 0.004 BTC at 60,000: 240 / 10 + 240 × 0.075 % close-fee reserve) − 0.30
    (funding) + 12.6945 (scale-in of 20 at 63,000: 126 / 10 + 126 × 0.075 %) − 12.1915 (the
    closed third, 20 of 60) = 24.383; entry (240 + 126) / 0.006 = 61,000; liquidation
    (61,000 − 24.383 / 0.004) / (1 − (0.004 + 0.00075)) = 55,166.29. SOL 10 at 150 (10x):
    margin 150 + 1.125, liquidated at (150 − 151.125 / 10) / (1 − 0.00475) = 135.53, the
    liquidation order filled at 135. The ETH legs' ``liq_price`` are figures of the shape
    Gate sends, not worked out: Gate nets cross hedge legs, and the reconcile says so (cause
    "hedge leg") instead of comparing."""
    now = now_ms or _now()
    t0 = now - 20 * DAY_MS
    h = 3_600_000
    acc = GateAccount(
        server_time=now_ms,
        contracts=[gate_contract("BTC_USDT", "0.0001", "61500"),
                   gate_contract("ETH_USDT", "0.01", "3050"),
                   gate_contract("SOL_USDT", "1", "140")],
        tiers=[*gate_tiers("BTC_USDT"), *gate_tiers("ETH_USDT"), *gate_tiers("SOL_USDT")],
    )
    btc, eth = "0.0001", "0.01"
    acc.trades = [
        gate_trade("101", "o1", "BTC_USDT", "30", "60000", t0, multiplier=btc),
        gate_trade("102", "o1", "BTC_USDT", "10", "60000", t0 + 40, multiplier=btc),
        gate_trade("103", "o2", "BTC_USDT", "20", "63000", t0 + DAY_MS, multiplier=btc),
        gate_trade("104", "o3", "BTC_USDT", "-20", "62000", t0 + 2 * DAY_MS, "-20", btc),
        gate_trade("201", "o4", "ETH_USDT", "100", "3000", t0 + 3 * DAY_MS, multiplier=eth),
        gate_trade("202", "o5", "ETH_USDT", "-50", "3100", t0 + 3 * DAY_MS + 2 * h,
                   multiplier=eth),
        gate_trade("301", "o6", "SOL_USDT", "10", "150", t0 + 4 * DAY_MS),
        gate_trade("302", "o7", "SOL_USDT", "-10", "135", t0 + 5 * DAY_MS, "-10"),
    ]
    acc.book = [
        gate_book("9001", "BTC_USDT", "fund", "-0.3", t0 + 8 * h),
        gate_book("9002", "ETH_USDT", "fund", "0.05", t0 + 3 * DAY_MS + h),
        gate_book("9003", "BTC_USDT", "fee", "-0.12", t0),  # not funding: not asked for
    ]
    acc.liquidates = [{
        "time": (t0 + 5 * DAY_MS) // 1000, "contract": "SOL_USDT", "leverage": "10",
        "size": 10, "margin": "151.125", "entry_price": "150", "liq_price": "135.53",
        "mark_price": "135.5", "order_id": "o7", "order_price": "135", "fill_price": "135",
        "left": 0}]
    acc.positions = [
        gate_position("BTC_USDT", "40", "61000", "61500", "55166.29", "24.383", "10",
                      multiplier=btc, t=t0 + 2 * DAY_MS),
        gate_position("ETH_USDT", "100", "3000", "3050", "2091.6", "0", "0", "dual_long",
                      eth, t0 + 3 * DAY_MS),
        gate_position("ETH_USDT", "-50", "3100", "3050", "4950.2", "0", "0", "dual_short",
                      eth, t0 + 3 * DAY_MS + 2 * h),
    ]
    return acc


__all__ = ["FakeGate", "GateAccount", "gate_book", "gate_contract", "gate_position",
           "gate_tiers", "gate_trade", "sample_gate_account"]
