"""Turn an account's history (:class:`~leverage_exchange.fetch.Fetched`) into journal rows.

Fills are replayed per symbol and position leg (``BOTH`` in one-way mode, ``LONG``/``SHORT``
in hedge mode): a fill from flat opens a position, a fill against it closes part or all of it
(a fill through zero closes and opens the other way), a fill of a liquidation order is a close
marked as a liquidation. Margin changes the trader made become ``add_margin`` /
``withdraw_margin``; funding becomes ``funding``, including the ``FUNDING_FEE`` lines Binance
lists among margin changes (they are funding taken from an isolated margin, not withdrawals).
Every row carries the exchange's id in its reason, ``[binanceusdm trade 698759]``, which is how
a second import recognises what it already wrote.

What the journal cannot say is reported, not guessed: a fill that adds to an open position
(the journal has no "increase" event), funding or margin moves with no open position, fills
of a position that was already open before the start date, a fee the exchange charged in
another currency than the position's margin (BNB, say) or paid back as a rebate.

Each position's ``margin_currency`` is the market's settle currency as ccxt names it (USDT for
USDⓈ-M, the coin for COIN-M); each fill's ``fee`` is the fee ccxt parsed from its trades
(positive: paid), summed per order, when it is in that currency.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from leverage import core

from .client import parsing_answers
from .fetch import Fetched, margin_mode

TAG = re.compile(r"\[([a-z0-9]+ [a-z_]+ [^\]]+)\]")
_MATCH_MS = 2_000  # a margin line and the fill or funding it belongs to share a timestamp


def tag(exchange: str, kind: str, ident: Any) -> str:
    """The id an imported row keeps: ``binanceusdm trade 698759``."""
    return f"{exchange} {kind} {ident}"


def row_tag(reason: Any) -> str | None:
    """The import id in a reason cell, or None for a row the trader typed."""
    m = TAG.search(str(reason or ""))
    return m.group(1) if m else None


def liq_or_none(value: Any) -> float | None:
    """An exchange's liquidation price: ``0``, ``""``, missing or not a number mean none."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) and x > 0 else None


@dataclass
class OpenPosition:
    """An open position as the exchange reports it, sizes recomputed from contracts."""

    position_id: str
    symbol: str  # ccxt unified symbol
    market_id: str
    side: str
    contract: str
    qty: float  # contracts × contract size
    entry: float
    mark: float
    notional: float  # recomputed: contracts × contract size × mark (÷ mark for inverse)
    margin: float
    margin_mode: str
    hedged: bool
    exchange_liq: float | None
    leverage: float | None


@dataclass
class Rows:
    positions: list[dict[str, Any]] = field(default_factory=list)  # journal Positions
    events: list[dict[str, Any]] = field(default_factory=list)  # journal Events (inputs)
    open_positions: list[OpenPosition] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class _Leg:
    symbol: str
    leg: str
    pos: float = 0.0  # the exchange's signed size
    jqty: float = 0.0  # the journal's open qty (differs after an increase it cannot show)
    pid: str | None = None
    skipping: bool = False  # open before the start date: wait until flat


def _when(ms: int) -> datetime:
    if not 0 <= int(ms) < _YEAR_10000_MS:  # past the calendar: an answer we cannot read
        raise ValueError(f"time {ms} ms is not a date")
    return datetime.fromtimestamp(int(ms) // 1000, UTC).replace(tzinfo=None)


_YEAR_10000_MS = 253_402_300_800_000


def _contract(market: dict[str, Any]) -> str:
    return "inverse" if market.get("inverse") else "linear"


def _qty(contracts: float, market: dict[str, Any]) -> float:
    return contracts * float(market.get("contractSize") or 1.0)


def margin_currency(market: dict[str, Any]) -> str:
    """The currency a contract's margin, PnL and fees are in: ccxt's ``settle`` (USDT for
    USDⓈ-M, BTC for BTCUSD_PERP); blank (the journal's quote/coin default) if ccxt has none.

    >>> margin_currency({"id": "BTCUSDT", "settle": "USDT"})
    'USDT'
    >>> margin_currency({"id": "BTCUSD_PERP", "settle": "BTC"}), margin_currency({})
    ('BTC', '')
    """
    return str(market.get("settle") or "")


def _event(t: int, pid: str, kind: str, key: str, reason: str, price: float | None = None,
           qty: float | None = None, amount: float | None = None,
           fee: float | None = None) -> dict[str, Any]:
    return {"date": _when(t), "position_id": pid, "event": kind, "price": price, "qty": qty,
            "amount": amount, "fee": fee, "reason": f"{reason} [{key}]".strip(), "_t": int(t)}


def _trade_fees(tr: dict[str, Any]) -> list[dict[str, Any]]:
    """A ccxt trade's fees: ``fees`` when ccxt lists several, else its one ``fee``."""
    fees = [f for f in tr.get("fees") or [] if f]
    return fees or ([tr["fee"]] if tr.get("fee") else [])


def _add_fee(f: dict[str, Any], tr: dict[str, Any], currency: str) -> None:
    """Adds a trade's fee to its order's sum (a Decimal of ccxt's numbers, so 0.15 + 0.15 is
    0.3), or records why the order's fee cannot be said in ``currency``."""
    fees = _trade_fees(tr)
    if not fees:
        f["fee_unknown"] = f"trade {tr.get('id')} has no fee"
    for fee in fees:
        cost, ccy = fee.get("cost"), fee.get("currency")
        if cost is None:
            f["fee_unknown"] = f"trade {tr.get('id')} has no fee amount"
        elif currency and ccy and ccy != currency:
            f["fee_unknown"] = f"trade {tr.get('id')} paid its fee in {ccy}, not {currency}"
        else:
            f["fee"] += Decimal(str(cost))


def _fills(got: Fetched) -> list[dict[str, Any]]:
    """Trades merged per order: one fill per order, volume-weighted price, first trade's id."""
    orders: dict[tuple[str, str, str], dict[str, Any]] = {}
    hedged = {p["symbol"] for p in got.positions if _leg_of(p) != "BOTH"}
    for tr in sorted(got.trades, key=lambda x: (x["timestamp"], str(x.get("id")))):
        leg = _trade_leg(tr, tr["symbol"] in hedged)
        sign = 1.0 if tr["side"] == "buy" else -1.0
        key = (tr["symbol"], leg, str(tr.get("order") or tr.get("id")))
        f = orders.setdefault(key, {"symbol": tr["symbol"], "leg": leg, "t": tr["timestamp"],
                                    "id": tr.get("id"), "order": key[2], "q": 0.0, "cost": 0.0,
                                    "fee": Decimal(0), "fee_unknown": None})
        f["q"] += sign * float(tr["amount"])
        f["cost"] += float(tr["amount"]) * float(tr["price"])
        _add_fee(f, tr, margin_currency(got.markets.get(tr["symbol"]) or {}))
    for f in orders.values():
        f["price"] = f["cost"] / abs(f["q"]) if f["q"] else math.nan
    return sorted(orders.values(), key=lambda f: (f["t"], str(f["id"])))


@parsing_answers
def build_rows(got: Fetched) -> Rows:
    """Journal rows (positions and events, in time order) for everything in ``got``."""
    ex = got.exchange
    out = Rows(notes=list(got.notes))
    fills = _fills(got)
    legs: dict[tuple[str, str], _Leg] = {}
    now_open = {(p["symbol"], _leg_of(p)): p for p in got.positions}
    # the size each leg had at the start date: today's size minus the fills since
    start_size: dict[tuple[str, str], float] = {
        k: _signed(p) for k, p in now_open.items()
    }
    for f in fills:
        start_size[(f["symbol"], f["leg"])] = start_size.get((f["symbol"], f["leg"]), 0.0) - f["q"]
    spans: dict[str, list[tuple[int, int | None, str, str]]] = {}  # symbol → (from, to, leg, pid)
    trade_margin = [m for m in got.margin if _delta(m) == "TRADE" and m.get("type") == "add"]
    last_price: dict[str, list[tuple[int, float]]] = {}

    def fee_of(f: dict[str, Any], pid: str, share: Decimal = Decimal(1)) -> float | None:
        """The fill's fee (``share`` of it, for a fill that closes and reverses) in the
        margin currency, or None (reported) when the exchange did not say it in that one."""
        why = f["fee_unknown"] or (
            f"its fees net to a rebate of {-f['fee']}" if f["fee"] < 0 else None)
        if why:
            out.notes.append(f"{pid}: fill {f['id']}: {why}; its Fee paid is left blank")
            return None
        return float(f["fee"] * share)

    def open_position(leg: _Leg, t: int, long: bool, price: float, qty: float, ident: str,
                      reason: str, amount: float | None = None,
                      fill: dict[str, Any] | None = None, share: Decimal = Decimal(1)) -> None:
        market = got.markets[leg.symbol]
        pid = f"{market['id']}-{'L' if long else 'S'}-{ident}"
        if amount is None:
            notional = float(core.notional(qty, price, _contract(market)))
            amount = _opening_margin(got, trade_margin, leg, t, notional, market)
        if amount is None:
            out.notes.append(f"{pid}: no opening margin known (no margin line, no leverage): "
                             "not journaled")
            leg.skipping = True
            return
        table = got.tiers.get(leg.symbol)
        mmr, maint = (core.DEFAULT_MMR, 0.0)
        if table is not None:
            notional = core.notional(qty, price, _contract(market))
            r, a, _ = table.lookup(notional)
            mmr, maint = float(r), float(a)
        out.positions.append({"position_id": pid, "symbol": market["id"],
                              "side": "long" if long else "short",
                              "contract": _contract(market),
                              "margin_currency": margin_currency(market), "mmr": mmr,
                              "maint_amount": maint, "_key": tag(ex, "position", pid)})
        fee = fee_of(fill, pid, share) if fill is not None else None
        out.events.append(_event(t, pid, "open", tag(ex, "trade", ident), reason, price, qty,
                                 amount, fee))
        leg.pid, leg.jqty = pid, qty
        spans.setdefault(leg.symbol, []).append((t, None, leg.leg, pid))

    def end_span(leg: _Leg, t: int) -> None:
        spans[leg.symbol] = [(a, t if (b is None and p == leg.pid) else b, lg, p)
                             for a, b, lg, p in spans[leg.symbol]]
        leg.pid, leg.jqty = None, 0.0

    for key, size in start_size.items():
        leg = legs.setdefault(key, _Leg(*key, pos=size))
        if abs(size) > 1e-12:
            leg.skipping = True
    for f in fills:
        key = (f["symbol"], f["leg"])
        leg = legs.setdefault(key, _Leg(*key))
        last_price.setdefault(f["symbol"], []).append((f["t"], f["price"]))
        market = got.markets.get(f["symbol"])
        if market is None:
            continue
        q, t, price, ident = f["q"], f["t"], f["price"], str(f["id"])
        before, leg.pos = leg.pos, leg.pos + q
        if leg.skipping:
            if abs(leg.pos) < 1e-12:
                leg.skipping = False
                out.notes.append(f"{market['id']} {leg.leg}: fills before it was first flat are "
                                 "not journaled (the position opened before the start date)")
            continue
        liq = f["order"] in got.liquidation_orders
        if abs(before) < 1e-12:
            long = q > 0 if leg.leg == "BOTH" else leg.leg == "LONG"
            open_position(leg, t, long, price, _qty(abs(q), market), ident, "imported fill",
                          fill=f)
            continue
        if leg.pid is None:
            continue
        if before * q > 0:  # adds to the position
            out.notes.append(f"{leg.pid}: fill {ident} adds to the open position; the journal "
                             "has no increase event, so its qty stays the opening qty (and "
                             "its fee is not counted)")
            continue
        closed = min(abs(q), abs(before))
        reason = "liquidation" if liq else "imported fill"
        rest = abs(q) - abs(before)
        # a fill through zero: its fee split by volume between the close and the new open
        close_share = Decimal(repr(abs(before))) / Decimal(repr(abs(q))) if rest > 1e-12 \
            else Decimal(1)
        if closed >= abs(before) - 1e-12:
            out.events.append(_event(t, leg.pid, "close", tag(ex, "trade", ident), reason, price,
                                     fee=fee_of(f, leg.pid, close_share)))
            end_span(leg, t)
            if rest > 1e-12:
                open_position(leg, t, q > 0, price, _qty(rest, market), f"{ident}r",
                              "imported fill (reversed)", fill=f, share=1 - close_share)
        else:
            share = leg.jqty * closed / abs(before)
            leg.jqty -= share
            out.events.append(_event(t, leg.pid, "partial_close", tag(ex, "trade", ident),
                                     reason, price, share, fee=fee_of(f, leg.pid)))
    # positions open since before the start date: the exchange's state now, dated at the start
    for key, p in now_open.items():
        leg = legs[key]
        if leg.skipping and p["symbol"] in got.markets:
            market = got.markets[p["symbol"]]
            long = side_of(p) == "long"
            leg.skipping = False
            # dated now: its margin already holds every move and payment since the start
            open_position(leg, got.now_ms, long, float(p["entryPrice"]),
                          _qty(abs(_signed(p)), market), _since_tag(got),
                          "open before the start date: size, entry and margin as the exchange "
                          "shows them now", amount=_margin_of(p) or _initial(p))
            out.notes.append(f"{market['id']} {leg.leg}: opened before the start date, so it "
                             "is entered once, dated now, as the exchange shows it (its fills, "
                             "margin moves and funding since are in that state)")
    for p in got.positions:
        out.open_positions.append(_open(got, p, legs.get((p["symbol"], _leg_of(p)))))
    _margin_and_funding(got, out, spans, last_price)
    out.events.sort(key=lambda e: (e["_t"], e["event"] != "open"))
    return out


def _since_tag(got: Fetched) -> str:
    """Id of a position entered as it stands: by the start date, or "open" without history."""
    return f"since{_when(got.since_ms):%Y%m%d}" if got.since_ms > 0 else "open"


def _delta(m: dict[str, Any]) -> str:
    return str((m.get("info") or {}).get("deltaType") or "USER_ADJUST").upper()


def _leg_of(p: dict[str, Any]) -> str:
    """The position's leg: BOTH (one-way mode), LONG or SHORT (hedge mode) from Binance's
    ``positionSide``, Bybit's ``positionIdx`` (1, 2) or OKX's ``posSide`` (long, short)."""
    info = p.get("info") or {}
    if info.get("positionSide"):
        return str(info["positionSide"]).upper()
    idx = str(info.get("positionIdx", ""))
    if idx in ("1", "2"):
        return "LONG" if idx == "1" else "SHORT"
    return {"long": "LONG", "short": "SHORT"}.get(str(info.get("posSide", "")).lower(), "BOTH")


def _trade_leg(tr: dict[str, Any], hedged: bool) -> str:
    """A fill's leg; Bybit's fills do not name it, so in hedge mode a fill that closes
    (``closedSize`` > 0) is on the other side's leg."""
    info = tr.get("info") or {}
    leg = _leg_of(tr)
    if leg != "BOTH" or not hedged or "closedSize" not in info:
        return leg
    closes = float(info.get("closedSize") or 0) > 0
    return "LONG" if (tr["side"] == "buy") != closes else "SHORT"


def side_of(p: dict[str, Any]) -> str:
    """long or short: the hedge leg, else the sign of the size (ccxt derives ``side`` from
    the notional, which an exchange may report as 0)."""
    leg = _leg_of(p)
    if leg in ("LONG", "SHORT"):
        return leg.lower()
    amt = (p.get("info") or {}).get("positionAmt")
    try:
        return "short" if float(amt) < 0 else "long"
    except (TypeError, ValueError):
        return "short" if p.get("side") == "short" else "long"


def _signed(p: dict[str, Any]) -> float:
    size = abs(float(p.get("contracts") or 0))
    return size if side_of(p) == "long" else -size


def _margin_of(p: dict[str, Any]) -> float | None:
    for k in ("collateral", "initialMargin"):
        v = p.get(k)
        if v not in (None, "") and float(v) > 0:
            return float(v)
    return None


def _initial(p: dict[str, Any]) -> float | None:
    v = p.get("initialMargin")
    return float(v) if v not in (None, "") else None


def _opening_margin(got: Fetched, trade_margin: list[dict[str, Any]], leg: _Leg, t: int,
                    notional: float, market: dict[str, Any]) -> float | None:
    """Isolated: the margin line Binance writes with the opening fill; else notional ÷
    the symbol's leverage setting (the exchange's initial-margin rule)."""
    for m in trade_margin:
        info = m.get("info") or {}
        if (m["symbol"] == leg.symbol and abs(int(m["timestamp"]) - t) <= _MATCH_MS
                and str(info.get("positionSide") or "BOTH").upper() == leg.leg):
            return float(m["amount"])
    lev = got.leverages.get(leg.symbol)
    return notional / lev if lev else None


def _open(got: Fetched, p: dict[str, Any], leg: _Leg | None) -> OpenPosition:
    market = got.markets[p["symbol"]]
    contract = _contract(market)
    qty = _qty(abs(float(p.get("contracts") or 0)), market)
    mark = got.marks.get(p["symbol"]) or float(p.get("markPrice") or 0) or float(p["entryPrice"])
    lev = p.get("leverage")
    mode = margin_mode(p)
    return OpenPosition(
        position_id=leg.pid if leg and leg.pid else "",
        symbol=p["symbol"], market_id=market["id"], side=side_of(p), contract=contract,
        qty=qty, entry=float(p["entryPrice"]), mark=mark,
        notional=float(core.notional(qty, mark, contract)),
        margin=(_margin_of(p) if mode == "isolated" else _initial(p)) or 0.0, margin_mode=mode,
        hedged=_leg_of(p) != "BOTH", exchange_liq=liq_or_none(p.get("liquidationPrice")),
        leverage=float(lev) if lev not in (None, "") else None,
    )


class _Holders:
    """Which journal position of a symbol (and leg) was open at a time: one binary search per
    leg, as a leg's positions follow one another (a long history has thousands)."""

    def __init__(self, spans: dict[str, list[tuple[int, int | None, str, str]]]) -> None:
        self.legs: dict[str, dict[str, tuple[list[int], list[tuple[int | None, str]]]]] = {}
        for symbol, items in spans.items():
            legs = self.legs.setdefault(symbol, {})
            for a, b, lg, pid in sorted(items, key=lambda x: x[0]):
                starts, rest = legs.setdefault(lg, ([], []))
                starts.append(a)
                rest.append((b, pid))

    def at(self, symbol: str, t: int, leg: str | None) -> list[str]:
        out = []
        for lg, (starts, rest) in self.legs.get(symbol, {}).items():
            if leg not in (None, "BOTH") and lg != leg:
                continue
            i = bisect.bisect_right(starts, t) - 1
            if i >= 0 and (rest[i][0] is None or t < rest[i][0]):
                out.append(rest[i][1])
        return out


def _price_at(last_price: dict[str, list[tuple[int, float]]], symbol: str, t: int) -> float | None:
    before = [p for s, p in last_price.get(symbol, []) if s <= t]
    return before[-1] if before else None


def _margin_and_funding(got: Fetched, out: Rows, spans: dict[str, Any],
                        last_price: dict[str, list[tuple[int, float]]]) -> None:
    ex = got.exchange
    income = [(f["symbol"], int(f["timestamp"]), float(f["amount"])) for f in got.funding]

    holders_at = _Holders(spans).at

    def assign(symbol: str, t: int, leg: str | None, what: str) -> str | None:
        holders = holders_at(symbol, t, leg)
        if len(holders) == 1:
            return holders[0]
        why = "no open position" if not holders else "both hedge legs open"
        out.notes.append(f"{what} on {symbol} at {_when(t):%Y-%m-%d %H:%M}: {why} in the "
                         "journal, not journaled")
        return None

    for m in got.margin:
        info = m.get("info") or {}
        delta, t, sym = _delta(m), int(m["timestamp"]), m["symbol"]
        amount = abs(float(m["amount"]))
        market_id = (got.markets.get(sym) or {}).get("id", sym)
        ident = f"{market_id}-{info['billId']}" if info.get("billId") else \
            f"{market_id}-{t}-{info.get('type')}"
        if delta == "TRADE":
            continue  # margin moved by a fill: the open or close it belongs to carries it
        if delta == "FUNDING_FEE":
            signed = amount if m.get("type") == "add" else -amount
            if any(s == sym and abs(ts - t) <= _MATCH_MS and abs(a - signed) < 1e-9
                   for s, ts, a in income):
                continue  # the same payment from the income history is imported as funding
            pid = assign(sym, t, str(info.get("positionSide") or "BOTH").upper(), "funding")
            if pid:
                out.events.append(_event(t, pid, "funding", tag(ex, "margin", ident),
                                         "funding (from margin history)", amount=signed))
            continue
        pid = assign(sym, t, str(info.get("positionSide") or "BOTH").upper(), "margin change")
        if pid is None:
            continue
        kind = "add_margin" if m.get("type") == "add" else "withdraw_margin"
        price = _price_at(last_price, sym, t) or got.marks.get(sym)
        out.events.append(_event(t, pid, kind, tag(ex, "margin", ident),
                                 "imported (price: last fill before it)", price, None, amount))
    for f in got.funding:
        t = int(f["timestamp"])
        pid = assign(f["symbol"], t, None, "funding")
        if pid:
            out.events.append(_event(t, pid, "funding", tag(ex, "income", f["id"]), "funding fee",
                                     amount=float(f["amount"])))
