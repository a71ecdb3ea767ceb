"""What an exchange answered, checked before the import reads it: garbage is an error, never data.

A proxy's HTML error page, a cut-off body, ``null``, ``{}``, plain text, NaN, a negative price
or a date in the year 3000 once all went through ccxt as "no rows" or as figures, so an import
ended with exit 0 and a wrong journal (and ``reconcile`` said "no open positions"). Two checks,
both called from :mod:`leverage_exchange.client`, where every answer passes:

* :func:`check_body`, on each HTTP answer as ccxt decoded it: it must be the JSON container
  the endpoint documents (Binance: a list or an object with its fields; Bybit v5: an object
  with ``retCode`` and a ``result`` object; OKX v5: an object with ``code`` and a ``data``
  list). ccxt hands a body that is not JSON on as a string; ``null`` and bare words too.
* :func:`check_answer`, on what a ccxt unified method returned, for the structures the import
  reads: positions, fills, funding, margin changes, liquidations, closed positions, balances,
  leverage tiers, leverage settings and mark prices. Timestamps must lie between 2017-01-01 and
  the exchange's clock (its ``Date`` header) plus a day; numbers must be finite, with the sign
  the figure has (a price > 0, a size >= 0; funding either sign).

Either raises :class:`BadAnswer`: one line naming the exchange, what was being read (the
unified method and the endpoint's path, never its signed query) and what was wrong.
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from leverage.errors import LeverageError

FIRST_MS = 1_483_228_800_000  # 2017-01-01T00:00:00Z: before any of these futures APIs
DAY_MS = 86_400_000

# What each unified method the import calls reads, for the messages
READS = {
    "load_markets": "the markets",
    "fetch_positions": "open positions",
    "fetch_balance": "the wallet balance",
    "fetch_my_trades": "fills",
    "fetch_funding_history": "funding",
    "fetch_margin_adjustment_history": "margin changes",
    "fetch_my_liquidations": "liquidation orders",
    "fetch_positions_history": "closed positions",
    "fetch_leverage_tiers": "leverage tiers",
    "fetch_market_leverage_tiers": "leverage tiers",
    "fetch_mark_prices": "mark prices",
    "fetch_tickers": "mark prices",
    "fetch_leverages": "leverage settings",
    # Hyperliquid's info requests read through ccxt's endpoint method (fetch_hyperliquid.py)
    "account_summary": "the account summary",
    "margin_tables_and_marks": "margin tables and mark prices",
    "leverage_setting": "leverage settings",
}


class BadAnswer(LeverageError):
    """The exchange answered 200 with something that is not a valid answer: the import stops
    before it writes anything."""


def reads(fn: Callable[..., Any]) -> str:
    """The unified method ``fn`` is (or the one a fetch.py helper stands in for)."""
    name = getattr(fn, "__name__", "")
    if "_okx_margin_bills" in getattr(fn, "__qualname__", ""):
        return "fetch_margin_adjustment_history"  # OKX's margin bills, parsed in fetch.py
    return name


def where(exchange: Any) -> str:
    """``GET /fapi/v3/positionRisk``: the last request's method and path, without the query
    (a signed query holds the signature)."""
    url = str(getattr(exchange, "last_request_url", "") or "")
    path = url.split("?", 1)[0]
    if "://" in path:
        path = "/" + path.split("://", 1)[1].partition("/")[2]
    method = getattr(exchange, "_leverage_last_method", "") or "GET"
    return f"{method} {path}{_info_type(exchange)}" if path else ""


def _info_type(exchange: Any) -> str:
    """`` clearinghouseState``: the request type of a Hyperliquid ``POST /info`` (one path for
    every request, the type in its JSON body); blank for other exchanges."""
    if getattr(exchange, "id", "") != "hyperliquid":
        return ""
    try:
        body = json.loads(getattr(exchange, "last_request_body", None) or "")
    except (TypeError, ValueError):
        return ""
    kind = body.get("type") if isinstance(body, dict) else None
    return f" {kind}" if isinstance(kind, str) else ""


def _shown(value: Any, limit: int = 60) -> str:
    text = " ".join(str(value).split())
    return repr(text[:limit] + ("…" if len(text) > limit else ""))


def _fail(exchange: Any, endpoint: str, problem: str) -> BadAnswer:
    """``binanceusdm sent a bad answer to GET /fapi/v3/positionRisk (reading open positions,
    fetch_positions): the body is an HTML page: '<!DOCTYPE html>…'``"""
    name = getattr(exchange, "id", "exchange")
    method = getattr(exchange, "_leverage_reading", "") or ""
    reading = f" (reading {READS.get(method, method)}, {method})" if method else ""
    return BadAnswer(f"{name} sent a bad answer to {endpoint or 'a request'}{reading}: "
                     f"{problem}")


# ------------------------------------------------------------------------ the body


_BINANCE_LISTS = ("/positionRisk", "/income", "/userTrades", "/forceOrders",
                  "/positionMargin/history", "/leverageBracket", "/symbolConfig")
_BINANCE_FIELDS = {"/exchangeInfo": "symbols", "/account": "assets", "/time": "serverTime"}


def check_body(exchange: Any, url: str, method: str, answer: Any) -> None:
    """Raise :class:`BadAnswer` unless ``answer`` (what ccxt's ``fetch`` decoded from the
    body of a 200) is the JSON container ``url``'s API documents."""
    path = url.split("?", 1)[0]
    endpoint = f"{method} /{path.split('://', 1)[-1].partition('/')[2]}{_info_type(exchange)}"
    what = "the body"

    def bad(problem: str) -> BadAnswer:
        return _fail(exchange, endpoint, problem)

    family = getattr(exchange, "id", "")
    if family == "hyperliquid" and endpoint.endswith(" userAbstraction") and isinstance(
            answer, str) and answer.strip('"').isalpha():
        return  # the account's mode, a JSON string ("default")
    if not isinstance(answer, dict | list):
        text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else answer
        kind = "an HTML page" if "<html" in str(text).lower()[:500] else "not JSON"
        if str(text).strip() == "null":
            kind = "null"
        raise bad(f"{what} is {kind}: {_shown(text)}")
    binance = family in ("binanceusdm", "binancecoinm")
    _check_leaves(answer, binance and not path.endswith("/exchangeInfo"), server_ms(exchange),
                  lambda problem: bad(f"{what} {problem}"), family,
                  _NOT_NEGATIVE | _HYPERLIQUID_NOT_NEGATIVE if family == "hyperliquid"
                  else _NOT_NEGATIVE)
    if family == "bitget":
        code = answer.get("code") if isinstance(answer, dict) else None
        if not (isinstance(code, str) and code.isdigit()):
            raise bad(f"{what} has no code (digits as text): {_shown(answer)}")
        if code != "00000":
            return  # Bitget's error (ccxt raises it)
        if "data" not in answer:
            raise bad(f"{what} is not Bitget's {{code, data}} object: {_shown(answer)}")
        return
    if family == "hyperliquid":
        _check_hyperliquid(endpoint.rpartition(" ")[2], answer, bad)
        return
    if family == "gate":
        _check_gate(path, answer, bad)
        return
    if family == "bybit":
        code = answer.get("retCode") if isinstance(answer, dict) else None
        if not isinstance(answer, dict) or not isinstance(code, int) or isinstance(code, bool):
            raise bad(f"{what} has no retCode (a whole number): {_shown(answer)}")
        if code != 0:
            return  # Bybit's error (ccxt raises it): its result may be empty
        if not isinstance(answer.get("result"), dict):
            raise bad(f"{what} is not Bybit's {{retCode, result}} object: {_shown(answer)}")
        inner = answer["result"].get("list")
        if "list" in answer["result"] and not isinstance(inner, list):
            raise bad(f"{what} has a result.list that is not a list: {_shown(inner)}")
        return
    if family == "okx":
        code = answer.get("code") if isinstance(answer, dict) else None
        if not (isinstance(answer, dict) and isinstance(code, str | int)
                and not isinstance(code, bool) and str(code).isdigit()):
            raise bad(f"{what} has no code (a number as text): {_shown(answer)}")
        if str(code) != "0":
            return  # OKX's error (ccxt raises it)
        if not isinstance(answer.get("data"), list):
            raise bad(f"{what} is not OKX's {{code, data}} object: {_shown(answer)}")
        return
    one = path.endswith("/leverageBracket") and isinstance(answer, dict) and "brackets" in answer
    if any(path.endswith(p) for p in _BINANCE_LISTS) and not isinstance(answer, list) and not one:
        raise bad(f"{what} is not a list: {_shown(answer)}")  # one symbol's brackets: a dict
    for suffix, key in _BINANCE_FIELDS.items():
        if suffix == "/account" and path.endswith("/papi/v1/account"):
            key = "uniMMR"  # portfolio margin's account: its ratio, no asset list
        if path.endswith(suffix) and not (isinstance(answer, dict) and key in answer):
            raise bad(f"{what} has no {key!r}: {_shown(answer)}")
    if path.endswith("/premiumIndex") and isinstance(answer, dict) and "markPrice" not in answer:
        raise bad(f"{what} has no 'markPrice': {_shown(answer)}")


# Gate v4's answers (no envelope): the endpoint's own container, and its key fields
_GATE_OBJECTS = {"/spot/time": "server_time", "/futures/usdt/accounts": "total",
                 "/account/detail": "key"}


def _check_gate(path: str, answer: Any, bad: Callable[[str], BadAnswer]) -> None:
    for suffix, key in _GATE_OBJECTS.items():
        if path.endswith(suffix):
            if not (isinstance(answer, dict) and key in answer):
                raise bad(f"the body has no {key!r}: {_shown(answer)}")
            return
    if "/futures/" in path and not isinstance(answer, list):
        raise bad(f"the body is not a list: {_shown(answer)}")


# Times of an event (a fill, a payment, a bill): required to be a real date when present.
# ccxt drops a row whose time is before ``since`` (a negative, null or zero time) without a
# word, so these are checked in the body, before ccxt parses it.
_EVENT_TIMES = frozenset({"time", "execTime", "ts", "fillTime", "tranTime"})
# Times of a state (a position's last update): 0 or blank means "never".
_STATE_TIMES = frozenset({"updateTime", "updatedTime", "uTime", "cTime", "createdTime",
                          "nextFundingTime"})
# Raw fields each API documents as a price, a size, a rate or a bound: never below zero (a
# negative tier bound or price gets through ccxt as a figure)
_NOT_NEGATIVE = frozenset({
    # Binance: leverageBracket, premiumIndex, userTrades, forceOrders, positionRisk
    "notionalCap", "notionalFloor", "maintMarginRatio", "initialLeverage", "qtyCap", "qtyFloor",
    "markPrice", "indexPrice", "price", "qty", "entryPrice", "leverage", "avgPrice",
    "executedQty", "origQty", "liquidationPrice",
    # Bybit v5: risk-limit, tickers, execution/list, position/list
    "riskLimitValue", "maintenanceMargin", "initialMargin", "maxLeverage", "execPrice",
    "execQty", "size", "positionValue",
    # OKX v5: position-tiers, mark-price, fills-history, positions
    "mmr", "imr", "maxLever", "minSz", "maxSz", "markPx", "fillPx", "fillSz", "avgPx", "lever",
    "liqPx",
})
_NOT_FINITE = frozenset({"nan", "-nan", "inf", "-inf", "+inf", "infinity", "-infinity",
                         "+infinity"})


# Gate v4: sizes are signed (a short's is negative); times are seconds
_GATE_SIGNED = frozenset({"size", "close_size", "left"})
_GATE_TIMES = frozenset({"time", "create_time", "update_time", "open_time", "server_time"})


# Hyperliquid's POST /info: the container each request type documents (a list, or an object
# with these fields)
_HYPERLIQUID_LISTS = frozenset({"userFills", "userFillsByTime", "userFunding",
                                "userNonFundingLedgerUpdates", "metaAndAssetCtxs"})
_HYPERLIQUID_FIELDS = {"clearinghouseState": ("assetPositions", "crossMarginSummary"),
                       "meta": ("universe",), "exchangeStatus": ("time",),
                       "activeAssetData": ("leverage",)}
# its prices, sizes and margins (``szi`` and ``startPosition`` are signed: a short is negative)
_HYPERLIQUID_NOT_NEGATIVE = frozenset({"px", "sz", "entryPx", "liquidationPx", "marginUsed",
                                       "oraclePx", "accountValue", "withdrawable",
                                       "lowerBound"})


def _check_hyperliquid(kind: str, answer: Any, bad: Callable[[str], BadAnswer]) -> None:
    """``answer`` is the container Hyperliquid documents for the request type ``kind``
    (``metaAndAssetCtxs``: ``[meta, asset contexts]``)."""
    if kind in _HYPERLIQUID_LISTS and not isinstance(answer, list):
        raise bad(f"the body is not a list: {_shown(answer)}")
    if kind == "metaAndAssetCtxs" and not (
            len(answer) == 2 and isinstance(answer[0], dict) and "universe" in answer[0]
            and isinstance(answer[1], list)):
        raise bad(f"the body is not [meta, asset contexts]: {_shown(answer)}")
    for key in _HYPERLIQUID_FIELDS.get(kind, ()):
        if not (isinstance(answer, dict) and key in answer):
            raise bad(f"the body has no {key!r}: {_shown(answer)}")


def _leaves(answer: Any) -> Iterator[tuple[str, Any]]:
    """Every value of a JSON body that is neither an object nor a list, with the key it
    stands under ("" at the top; a list's items under the list's key)."""
    stack: list[tuple[str, Any]] = [("", answer)]
    while stack:
        key, v = stack.pop()
        if isinstance(v, dict):
            stack.extend(v.items())
        elif isinstance(v, list):
            stack.extend((key, x) for x in v)
        else:
            yield key, v


def _check_leaves(answer: Any, no_nulls: bool, now_ms: int,
                  bad: Callable[[str], BadAnswer], family: str = "",
                  not_negative: frozenset[str] = _NOT_NEGATIVE) -> None:
    """Every value of the body: no NaN or infinity (as a number or as text), event times
    between 2017 and the exchange's clock plus a day, and (``no_nulls``: Binance, which
    never sends null in these answers) no null, which ccxt reads as "none"."""
    if family == "gate":
        _check_gate_leaves(answer, now_ms, bad)
        return
    for key, v in _leaves(answer):
        if v is None:
            if no_nulls or key in _EVENT_TIMES:
                raise bad(f"has {key or 'a value'} null")
            continue
        if isinstance(v, bool):
            continue
        if (isinstance(v, float) and not math.isfinite(v)) or (
                isinstance(v, str) and v.strip().lower() in _NOT_FINITE):
            raise bad(f"has {key or 'a value'} {_shown(v)}")
        if key in not_negative and isinstance(v, int | float | str):
            try:
                negative = float(v) < 0
            except ValueError:
                negative = False  # "" (none) is Bybit's and OKX's blank
            if negative:
                raise bad(f"has {key} {_shown(v)} (must be >= 0)")
        if key in _STATE_TIMES and v == "":
            continue  # Bybit's and OKX's blank: no such time (a perpetual's next delivery)
        if key in _EVENT_TIMES or key in _STATE_TIMES:
            try:
                t = float(v)
            except (TypeError, ValueError):
                raise bad(f"has {key} {_shown(v)}, not a time") from None
            if key in _STATE_TIMES and t == 0:
                continue  # never updated
            if not FIRST_MS <= t <= now_ms + DAY_MS:
                raise bad(f"has {key} {_shown(v)}: {_date(t)}, outside 2017-01-01 to the "
                          "exchange's clock plus a day")


def _check_gate_leaves(answer: Any, now_ms: int, bad: Callable[[str], BadAnswer]) -> None:
    """Gate's body: no NaN or infinity; prices, rates and bounds not negative (sizes are
    signed); times (seconds, ``server_time`` ms) from 2017 to the clock plus a day, 0 or
    blank: never."""
    for key, v in _leaves(answer):
        if v is None and key in _GATE_TIMES:  # ccxt would drop the row without a word
            raise bad(f"has {key} null")
        if v is None or isinstance(v, bool):
            continue
        if (isinstance(v, float) and not math.isfinite(v)) or (
                isinstance(v, str) and v.strip().lower() in _NOT_FINITE):
            raise bad(f"has {key or 'a value'} {_shown(v)}")
        try:
            x = float(v)
        except (TypeError, ValueError):
            continue
        if key in _GATE_TIMES and x not in (0.0,):
            ms = x if key == "server_time" else x * 1000
            if not FIRST_MS <= ms <= now_ms + DAY_MS:
                raise bad(f"has {key} {_shown(v)}: {_date(ms)}, outside 2017-01-01 to the "
                          "exchange's clock plus a day")
        elif (key in _NOT_NEGATIVE or key.endswith(("price", "_rate", "risk_limit"))) and \
                key not in _GATE_SIGNED and x < 0 and not key.endswith("fee_rate"):
            raise bad(f"has {key} {_shown(v)} (must be >= 0)")


def _date(ms: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(min(max(ms, -1e14), 1e14) / 1000))


def check_error_body(exchange: Any) -> None:
    """When ccxt raised an exchange error: raise :class:`BadAnswer` instead if the body it
    read is not the API's error either (Bybit's and OKX's always carry a numeric code; ccxt
    reads ``{}`` or a null code as an error without a word of what came)."""
    if getattr(exchange, "id", "") not in ("bybit", "okx", "bitget"):
        return  # Binance's errors have no one shape to check against
    body = getattr(exchange, "last_json_response", None)
    if body is None:
        body = getattr(exchange, "last_http_response", None)
    url = str(getattr(exchange, "last_request_url", "") or "")
    if url and body is not None:
        check_body(exchange, url, getattr(exchange, "_leverage_last_method", "GET"), body)


# ------------------------------------------------------------------------ unified structures


def server_ms(exchange: Any) -> int:
    """The exchange's clock: its last answer's ``Date`` header (HTTP's clock, to the second),
    else this machine's."""
    headers = getattr(exchange, "last_response_headers", None) or {}
    stamp = headers.get("Date") or headers.get("date") if isinstance(headers, Mapping) else None
    if stamp:
        try:
            return int(email.utils.parsedate_to_datetime(stamp).timestamp() * 1000)
        except (TypeError, ValueError, IndexError, OverflowError):
            pass
    return int(time.time() * 1000)


class _Checker:
    def __init__(self, exchange: Any, method: str) -> None:
        self.exchange, self.method = exchange, method
        self.latest = server_ms(exchange) + DAY_MS

    def fail(self, problem: str) -> BadAnswer:
        return _fail(self.exchange, where(self.exchange), problem)

    def number(self, row: Mapping[str, Any], key: str, label: str, rule: str = "any",
               required: bool = False) -> None:
        """``row[key]`` as a finite number of the ``rule``'s sign (``> 0``, ``>= 0``, ``any``);
        absent or None is allowed unless ``required``."""
        v = row.get(key)
        if v is None or v == "":
            if required:
                raise self.fail(f"{label} has no {key}")
            return
        try:
            x = float(v)
        except (TypeError, ValueError):
            raise self.fail(f"{label} has {key} {_shown(v)}, not a number") from None
        if not math.isfinite(x):
            raise self.fail(f"{label} has {key} {_shown(v)} (must be a finite number)")
        if (rule == "> 0" and x <= 0) or (rule == ">= 0" and x < 0):
            raise self.fail(f"{label} has {key} {_shown(v)} (must be {rule})")

    def stamp(self, row: Mapping[str, Any], label: str, required: bool = True) -> None:
        """``row["timestamp"]`` a date from 2017 to the exchange's clock plus a day; when not
        ``required`` (a state's last update, not an event) it may be absent or 0 (never)."""
        v = row.get("timestamp")
        if v is None or (not required and v in (0, "0")):
            if required:
                raise self.fail(f"{label} has no timestamp")
            return
        self.number(row, "timestamp", label)
        if not FIRST_MS <= float(v) <= self.latest:
            raise self.fail(f"{label} is dated {_date(float(v))} (timestamp {_shown(v)}): "
                            "outside 2017-01-01 to the exchange's clock plus a day")

    def rows(self, answer: Any, noun: str) -> list[Mapping[str, Any]]:
        if not isinstance(answer, list) or not all(isinstance(r, Mapping) for r in answer):
            raise self.fail(f"the {noun}s are not a list of records: {_shown(answer)}")
        return answer

    def table(self, answer: Any, noun: str) -> Mapping[str, Any]:
        if not isinstance(answer, Mapping):
            raise self.fail(f"the {noun}s are not a table by symbol: {_shown(answer)}")
        return answer


def _label(noun: str, i: int, row: Mapping[str, Any]) -> str:
    symbol = row.get("symbol")
    return f"{noun} {i + 1}" + (f" ({symbol})" if symbol else "")


def _positions(c: _Checker, answer: Any) -> None:
    for i, p in enumerate(c.rows(answer, "position")):
        label = _label("position", i, p)
        c.number(p, "contracts", label, ">= 0", required=True)
        if float(p["contracts"]) > 0:
            c.number(p, "entryPrice", label, "> 0", required=True)
        c.number(p, "markPrice", label, "> 0")
        c.number(p, "liquidationPrice", label, ">= 0")
        # Gate's leverage 0 is cross margin
        c.number(p, "leverage", label, ">= 0" if c.exchange.id == "gate" else "> 0")
        c.number(p, "contractSize", label, "> 0")
        c.number(p, "notional", label)
        for key in ("collateral", "initialMargin", "maintenanceMargin"):
            c.number(p, key, label, ">= 0")
        c.stamp(p, label, required=False)
        if p.get("side") not in (None, "long", "short"):
            raise c.fail(f"{label} has side {_shown(p.get('side'))}")


def _trades(c: _Checker, answer: Any) -> None:
    for i, t in enumerate(c.rows(answer, "fill")):
        label = _label("fill", i, t)
        c.stamp(t, label)
        c.number(t, "price", label, "> 0", required=True)
        c.number(t, "amount", label, "> 0", required=True)
        c.number(t, "cost", label, ">= 0")
        fee = t.get("fee")
        if isinstance(fee, Mapping):
            c.number(fee, "cost", f"{label}'s fee")
        if t.get("side") not in ("buy", "sell"):
            raise c.fail(f"{label} has side {_shown(t.get('side'))}")


def _funding(c: _Checker, answer: Any) -> None:
    for i, f in enumerate(c.rows(answer, "funding payment")):
        label = _label("funding payment", i, f)
        c.stamp(f, label)
        c.number(f, "amount", label, required=True)  # paid or received: either sign


def _margin(c: _Checker, answer: Any) -> None:
    for i, m in enumerate(c.rows(answer, "margin change")):
        label = _label("margin change", i, m)
        c.stamp(m, label)
        c.number(m, "amount", label, ">= 0", required=True)  # the sign is in its type
        c.number(m, "total", label, ">= 0")


def _dated(noun: str) -> Callable[[_Checker, Any], None]:
    def check(c: _Checker, answer: Any) -> None:
        for i, r in enumerate(c.rows(answer, noun)):
            c.stamp(r, _label(noun, i, r))
            raw = r.get("info")
            info: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
            for key in ("lever", "leverage"):
                c.number(info, key, _label(noun, i, r), "> 0")
    return check


def _tier_list(c: _Checker, tiers: Any, symbol: str) -> None:
    for i, t in enumerate(c.rows(tiers, f"{symbol} tier")):
        label = f"{symbol} tier {i + 1}"
        c.number(t, "minNotional", label, ">= 0")
        c.number(t, "maxNotional", label, "> 0")
        c.number(t, "maintenanceMarginRate", label, ">= 0", required=True)
        if float(t["maintenanceMarginRate"]) >= 1:
            raise c.fail(f"{label} has maintenanceMarginRate {_shown(t['maintenanceMarginRate'])}"
                         " (must be below 1)")
        c.number(t, "maxLeverage", label, "> 0")


def _tiers(c: _Checker, answer: Any) -> None:
    for symbol, tiers in c.table(answer, "tier table").items():
        _tier_list(c, tiers, str(symbol))


def _marks(c: _Checker, answer: Any) -> None:
    for symbol, t in c.table(answer, "mark price").items():
        if not isinstance(t, Mapping):
            raise c.fail(f"the mark price of {symbol} is {_shown(t)}")
        c.number(t, "markPrice", f"the mark price of {symbol}", "> 0", required=True)
        c.stamp(t, f"the mark price of {symbol}", required=False)


def _leverages(c: _Checker, answer: Any) -> None:
    for symbol, v in c.table(answer, "leverage setting").items():
        if not isinstance(v, Mapping):
            raise c.fail(f"the leverage of {symbol} is {_shown(v)}")
        for key in ("longLeverage", "shortLeverage"):
            c.number(v, key, f"the leverage of {symbol}", "> 0")
        if v.get("longLeverage") in (None, "") and v.get("shortLeverage") in (None, ""):
            raise c.fail(f"the leverage of {symbol} has no figure")


def _balance(c: _Checker, answer: Any) -> None:
    if not isinstance(answer, Mapping):
        raise c.fail(f"the balance is not an object: {_shown(answer)}")
    raw = answer.get("info")
    if c.exchange.id == "binanceusdm" and isinstance(raw, list):
        # portfolio margin (GET /papi/v1/balance): one row per asset, the UM wallet in each
        for row in raw:
            c.number(row if isinstance(row, Mapping) else {}, "umWalletBalance",
                     "an asset of the account", ">= 0", required=True)
        return
    info = raw if isinstance(raw, Mapping) else {}
    if c.exchange.id == "binanceusdm":  # one cross wallet (COIN-M: one per coin)
        key = "totalCrossWalletBalance" if "totalCrossWalletBalance" in info else \
            "totalWalletBalance"
        c.number(info, key, "the account", ">= 0", required=True)
    usdt = answer.get("USDT")
    if c.exchange.id not in ("binanceusdm", "binancecoinm") and isinstance(usdt, Mapping):
        c.number(usdt, "total", "the USDT wallet", ">= 0", required=True)


def _markets(c: _Checker, answer: Any) -> None:
    for symbol, m in c.table(answer, "market").items():
        if not isinstance(m, Mapping) or not m.get("contract"):
            continue
        c.number(m, "contractSize", f"market {symbol}", "> 0")
        for kind in ("amount", "price"):
            raw = m.get("precision")
            precision: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
            c.number(precision, kind, f"market {symbol}'s {kind} precision", "> 0",
                     required=True)


_CHECKS: dict[str, Callable[[_Checker, Any], None]] = {
    "load_markets": _markets,
    "fetch_positions": _positions,
    "fetch_balance": _balance,
    "fetch_my_trades": _trades,
    "fetch_funding_history": _funding,
    "fetch_margin_adjustment_history": _margin,
    "fetch_my_liquidations": _dated("liquidation order"),
    "fetch_positions_history": _dated("closed position"),
    "fetch_leverage_tiers": _tiers,
    "fetch_market_leverage_tiers": lambda c, a: _tier_list(c, a, "the market's"),
    "fetch_mark_prices": _marks,
    "fetch_tickers": _marks,
    "fetch_leverages": _leverages,
}


def check_answer(exchange: Any, method: str, answer: Any) -> None:
    """Raise :class:`BadAnswer` when ``answer``, what the unified ``method`` returned, holds
    something the import must not read as data (see the module docstring). Methods the
    import does not call are not checked."""
    check = _CHECKS.get(method)
    if check is not None:
        check(_Checker(exchange, method), answer)
