"""Turn an account's history (:class:`~leverage_exchange.fetch.Fetched`) into journal rows
that reproduce the exchange's positions when the journal replays them.

Fills are merged per order and replayed per symbol and position leg (``BOTH`` in one-way mode,
``LONG``/``SHORT`` in hedge mode). A fill from flat is an ``open``; a fill on the side of the
position is an ``increase`` (its price, qty, fee and the margin that came with it); a fill
against it is a ``partial_close`` or ``close`` (a fill through zero closes and opens the other
way); a fill of a liquidation order is a ``close`` at the fill's price, its reason saying
liquidation. Margin the trader moved becomes ``add_margin`` / ``withdraw_margin``; funding
becomes ``funding`` (the journal moves the isolated margin by it), including the
``FUNDING_FEE`` lines Binance lists among margin changes.

The margin of a fill is the exchange's own figure where it keeps one (Binance isolated writes a
margin-history line of deltaType ``TRADE`` at the fill: added on an open or increase, released
on a reduction); else an open or increase takes notional ÷ the symbol's leverage setting (the
exchange's initial-margin rule) and a reduction releases the closed share of the margin.

A position already open at the start date (``since``) is rolled back to its state then: the
exchange's size, entry and isolated wallet now, minus the fills, margin moves and funding inside
the window undone newest first. It is entered as an ``open`` dated at the start, and every
event inside the window follows it. Times are the exchange's (its server time and each row's
timestamp), never this computer's clock.

Every row carries the exchange's id in its reason, ``[binanceusdm trade 698759]``, which is how
a second import recognises what it already wrote. A position's id is its market, leg and
opening fill (``BTCUSDT-L-101``), or the start date when it opened before every import
(``BTCUSDT-L-since20240101``); a re-import continues an open journal position of the same
symbol and side (:func:`match_open`) instead of adding a second one.

Each position's ``margin_currency`` is the market's settle currency as ccxt names it (USDT for
USDⓈ-M, the coin for COIN-M); each fill's ``fee`` is the fee ccxt parsed from its trades
(positive: paid), summed per order, when it is in that currency. What cannot be said is
reported in the notes, not guessed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from leverage import core

from .client import parsing_answers
from .fetch import Fetched, margin_mode, venue
from .fetch import num as _num

TAG = re.compile(r"\[([a-z0-9]+ [a-z_]+ [^\]]+)\]")
_MATCH_MS = 2_000  # a margin line and the fill or funding it belongs to share a timestamp
_FLAT = 1e-12


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
    """An open position as the exchange reports it, sizes recomputed from contracts.

    ``margin`` is the isolated WALLET (margin posted, without unrealized PnL): Binance
    ``isolatedWallet``, Bybit ``positionIM``, OKX ``margin``; 0 for cross positions (they
    use the account's cross wallet)."""

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
    price_tick: float | None = None  # the market's price step (parity rounds entry to it)
    margin_currency: str = ""
    legs_open: int = 1  # open legs of the symbol (2: both hedge legs hold a position)


@dataclass
class Rows:
    positions: list[dict[str, Any]] = field(default_factory=list)  # journal Positions
    events: list[dict[str, Any]] = field(default_factory=list)  # journal Events (inputs)
    open_positions: list[OpenPosition] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


_YEAR_10000_MS = 253_402_300_800_000


def _when(ms: int) -> datetime:
    if not 0 <= int(ms) < _YEAR_10000_MS:  # past the calendar: an answer we cannot read
        raise ValueError(f"time {ms} ms is not a date")
    return datetime.fromtimestamp(int(ms) // 1000, UTC).replace(tzinfo=None)


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


def avg_entry(contract: str, qty: float, entry: float, add_qty: float, price: float) -> float:
    """Entry after adding ``add_qty`` at ``price`` to ``qty`` at ``entry``: the exchanges'
    volume-weighted average, arithmetic for linear (``(q·e + q'·p) / (q + q')``), harmonic for
    inverse (``(q + q') / (q/e + q'/p)``, qty in contracts' USD).

    >>> avg_entry("linear", 0.01, 60_000, 0.01, 62_000)
    61000.0
    >>> round(avg_entry("inverse", 100, 50_000, 100, 60_000), 2)
    54545.45
    """
    if contract == "inverse":
        return (qty + add_qty) / (qty / entry + add_qty / price)
    return (qty * entry + add_qty * price) / (qty + add_qty)


def _undo_entry(contract: str, qty: float, entry: float, add_qty: float, price: float) -> float:
    """The entry before an increase of ``add_qty`` at ``price`` that left ``qty`` at ``entry``
    (the inverse of :func:`avg_entry`)."""
    before = qty - add_qty
    if contract == "inverse":
        return before / (qty / entry - add_qty / price)
    return (qty * entry - add_qty * price) / before


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
                                    "fee": Decimal(0), "fee_unknown": None, "pnl": 0.0})
        f["q"] += sign * float(tr["amount"])
        f["cost"] += float(tr["amount"]) * float(tr["price"])
        # Binance's realizedPnl of a closing fill: how the entry of a position opened before
        # the start date is known when it closes inside the window
        pnl = _num((tr.get("info") or {}).get("realizedPnl"))
        f["pnl"] = None if pnl is None or f["pnl"] is None else f["pnl"] + pnl
        _add_fee(f, tr, margin_currency(got.markets.get(tr["symbol"]) or {}))
    for f in orders.values():
        f["price"] = f["cost"] / abs(f["q"]) if f["q"] else math.nan
    return sorted(orders.values(), key=lambda f: (f["t"], str(f["id"])))


# -- what happened to one leg, in time order ------------------------------------------------


@dataclass
class _Item:
    """One thing that changed a leg: a fill, a margin move or a funding payment."""

    t: int
    kind: str  # fill, add, withdraw, funding
    key: str  # the exchange id the row keeps
    reason: str
    q: float = 0.0  # fill: signed contracts
    price: float = math.nan
    amount: float | None = None  # margin moved / funding received (+) or paid (−)
    fill: dict[str, Any] | None = None
    add_margin: float | None = None  # margin the exchange added with the fill (TRADE line)
    released: float | None = None  # margin the exchange released with the fill


@dataclass
class _Segment:
    """One journal position: the items of a leg from an open (or the start date) to a close
    (or now)."""

    long: bool
    items: list[_Item] = field(default_factory=list)
    open_item: _Item | None = None  # None: open before the start date
    open_qty: float = 0.0  # contracts opened by open_item (a reversal opens the rest)
    closed: bool = False
    pre_window: bool = False
    broken: bool = False  # open before the start date and closed inside the window
    start: float = 0.0  # signed contracts at the start date (open before it)


def _delta(m: dict[str, Any]) -> str:
    return str((m.get("info") or {}).get("deltaType") or "USER_ADJUST").upper()


def _leg_of(p: dict[str, Any]) -> str:
    """The position's leg: BOTH (one-way mode), LONG or SHORT (hedge mode) from Binance's
    ``positionSide``, Bybit's ``positionIdx`` (1, 2), OKX's ``posSide`` (long, short),
    Bitget's ``holdSide`` in ``hedge_mode`` or Gate's ``mode`` (dual_long, dual_short)."""
    info = p.get("info") or {}
    if info.get("positionSide"):
        return str(info["positionSide"]).upper()
    if str(info.get("posMode")) == "hedge_mode":  # Bitget: holdSide, or the leg a fill names
        return _bitget_leg(info)
    if str(info.get("mode")) in ("dual_long", "dual_short"):  # Gate's hedge-mode positions
        return "LONG" if info["mode"] == "dual_long" else "SHORT"
    idx = str(info.get("positionIdx", ""))
    if idx in ("1", "2"):
        return "LONG" if idx == "1" else "SHORT"
    return {"long": "LONG", "short": "SHORT"}.get(str(info.get("posSide", "")).lower(), "BOTH")


def _bitget_leg(info: dict[str, Any]) -> str:
    """A Bitget hedge-mode position's or fill's leg: ``holdSide``, else the leg the fill's
    ``tradeSide`` names (``burst_close_long``), else its ``side``: in hedge mode Bitget's side
    names the leg (buy: long, sell: short), for opens and closes alike."""
    hold = str(info.get("holdSide") or "").lower()
    trade_side = str(info.get("tradeSide") or "").lower()
    if not hold and trade_side.endswith(("close_long", "close_short")):
        hold = trade_side.rsplit("_", 1)[1]
    if not hold:
        hold = "long" if str(info.get("side") or "").lower() == "buy" else "short"
    return "LONG" if hold == "long" else "SHORT"


def _trade_leg(tr: dict[str, Any], hedged: bool) -> str:
    """A fill's leg; Bybit's fills do not name it, so in hedge mode a fill that closes
    (``closedSize`` > 0) is on the other side's leg."""
    info = tr.get("info") or {}
    leg = _leg_of(tr)
    closed = info.get("closedSize", info.get("close_size"))  # Bybit; Gate (signed)
    if leg != "BOTH" or not hedged or closed is None:
        return leg
    closes = abs(float(closed or 0)) > 0
    return "LONG" if (tr["side"] == "buy") != closes else "SHORT"


def side_of(p: dict[str, Any]) -> str:
    """long or short: the hedge leg, else the sign of the size (ccxt derives ``side`` from
    the notional, which an exchange may report as 0)."""
    leg = _leg_of(p)
    if leg in ("LONG", "SHORT"):
        return leg.lower()
    # the exchange's JSON: a decimal string, a number or absent (float() sorts them out)
    amt: Any = (p.get("info") or {}).get("positionAmt")
    try:
        return "short" if float(amt) < 0 else "long"
    except (TypeError, ValueError):
        return "short" if p.get("side") == "short" else "long"


def _signed(p: dict[str, Any]) -> float:
    size = abs(float(p.get("contracts") or 0))
    return size if side_of(p) == "long" else -size


def wallet_margin(exchange: str, p: dict[str, Any]) -> float | None:
    """An isolated position's margin WITHOUT its unrealized PnL, from the exchange's own field
    (ccxt's ``collateral`` adds the uPnL, so a liquidation price from it is off), which the
    exchange's fetch module reads (``wallet_margin``):

    - Binance (USDⓈ-M and COIN-M): ``isolatedWallet`` (= ``isolatedMargin`` − ``unRealizedProfit``)
    - Bybit v5: ``positionIM`` (without it, ccxt's ``initialMargin``: size × entry ÷ leverage)
    - OKX v5: ``margin``
    - Bitget v2: ``marginSize``; Gate v4: ``margin`` (with Gate's close-fee reserve)

    None for a cross position or when the exchange gives no figure.

    >>> wallet_margin("binanceusdm", {"marginMode": "isolated", "info": {
    ...     "isolatedMargin": "15517.54150468", "isolatedWallet": "13200.70726908"}})
    13200.70726908
    """
    if margin_mode(p) != "isolated":
        return None
    v = venue(exchange).wallet_margin(p)
    return v if v is not None and v > 0 else None


def price_tick(market: dict[str, Any]) -> float | None:
    """The market's price step: ccxt's ``precision.price`` (a tick size in ccxt 4.5's
    TICK_SIZE mode), else the exchange's ``PRICE_FILTER``/``tickSize``/``tickSz``."""
    info = market.get("info") or {}
    for f in info.get("filters") or []:
        if f.get("filterType") == "PRICE_FILTER" and _num(f.get("tickSize")):
            return float(f["tickSize"])
    for v in ((info.get("priceFilter") or {}).get("tickSize"), info.get("tickSz")):
        if v is not None and _num(v):
            return float(v)
    p = _num((market.get("precision") or {}).get("price"))
    return p or None


def _since_tag(since_ms: int) -> str:
    """The id part of a position entered at the start date: ``since20240101`` (and the time
    when the start is not midnight)."""
    if since_ms <= 0:
        return "open"
    when = _when(since_ms)
    return f"since{when:%Y%m%d}" + (f"T{when:%H%M}" if when.hour or when.minute else "")


# -- a re-import continues the journal's open positions --------------------------------------


@dataclass
class JournalOpen:
    """An open position already in the journal: its id, when it opened, its last event."""

    position_id: str
    symbol: str
    side: str
    opened: datetime
    last: datetime


def journal_open_positions(positions: Sequence[Mapping[str, Any]],
                           events: Sequence[Mapping[str, Any]]) -> list[JournalOpen]:
    """The journal's positions that have an ``open`` row and no ``close`` row, with the date
    of that open and of their latest row (rows with no readable date are left out)."""
    from leverage.errors import InputError
    from leverage.journal import read_date

    by_id = {str(p.get("position_id") or "").strip().casefold(): p for p in positions}
    opened: dict[str, datetime] = {}
    last: dict[str, datetime] = {}
    closed: set[str] = set()
    for e in events:
        pid = str(e.get("position_id") or "").strip().casefold()
        kind = str(e.get("event") or "").strip().lower()
        try:
            when = read_date(e.get("date"))
        except InputError:  # a typed row the journal itself flags: not a date to go by
            continue
        if kind == "open":
            opened.setdefault(pid, when)
        elif kind == "close":
            closed.add(pid)
        last[pid] = max(last.get(pid, when), when)
    out = []
    for pid, when in opened.items():
        p = by_id.get(pid)
        if p is None or pid in closed:
            continue
        out.append(JournalOpen(str(p.get("position_id")).strip(), str(p.get("symbol") or ""),
                               str(p.get("side") or "").strip().lower(), when, last[pid]))
    return out


def match_open(positions: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]],
               market_id: str, side: str) -> JournalOpen | None:
    """The journal's open position of ``market_id`` (the exchange's id, ``BTCUSDT``) and
    ``side`` (long/short), if there is one: the position a re-import continues rather than
    opening a second one. With several, the one opened last.

    >>> pos = [{"position_id": "BTCUSDT-L-since20240101", "symbol": "BTCUSDT", "side": "long"}]
    >>> ev = [{"date": "2024-01-01", "position_id": "BTCUSDT-L-since20240101", "event": "open"}]
    >>> match_open(pos, ev, "BTCUSDT", "long").position_id
    'BTCUSDT-L-since20240101'
    >>> match_open(pos, ev, "BTCUSDT", "short") is None
    True
    """
    found = [j for j in journal_open_positions(positions, events)
             if j.symbol.casefold() == market_id.casefold() and j.side == side]
    return max(found, key=lambda j: j.opened) if found else None


def shared_id(p: OpenPosition, positions: Sequence[Mapping[str, Any]] = (),
              events: Sequence[Mapping[str, Any]] = ()) -> str:
    """The one id of an open exchange position in the journal and the rebalance workbook: the
    journal's open position of its symbol and side when there is one (:func:`match_open`),
    else the id the import gave it (``BTCUSDT-L-101``), else ``{market}-{L|S}-open``.

    >>> p = OpenPosition("", "BTC/USDT:USDT", "BTCUSDT", "long", "linear", 1, 1, 1, 1, 1,
    ...                  "isolated", False, None, None)
    >>> shared_id(p)
    'BTCUSDT-L-open'
    >>> shared_id(p, [{"position_id": "BTCUSDT-L-101", "symbol": "BTCUSDT", "side": "long"}],
    ...           [{"date": "2024-01-02", "position_id": "BTCUSDT-L-101", "event": "open"}])
    'BTCUSDT-L-101'
    """
    found = match_open(positions, events, p.market_id, p.side)
    if found is not None:
        return found.position_id
    return p.position_id or f"{p.market_id}-{p.side[0].upper()}-open"


# -- building the rows -------------------------------------------------------------------------


@parsing_answers
def build_rows(got: Fetched, journal_positions: Sequence[Mapping[str, Any]] = (),
               journal_events: Sequence[Mapping[str, Any]] = ()) -> Rows:
    """Journal rows (positions and events, in time order) for everything in ``got``.

    ``journal_positions``/``journal_events``: what the workbook already holds; an open
    position there of the same symbol and side is continued (same id, no second open), and
    rows dated before its open are left out (its open already holds them)."""
    out = Rows(notes=list(got.notes))
    fills = _fills(got)
    now_open = {(p["symbol"], _leg_of(p)): p for p in got.positions}
    keys = sorted({*now_open, *((f["symbol"], f["leg"]) for f in fills)})
    start_size = {k: _signed(now_open[k]) if k in now_open else 0.0 for k in keys}
    for f in fills:
        start_size[(f["symbol"], f["leg"])] -= f["q"]
    items = _leg_items(got, out, fills, start_size)
    existing = journal_open_positions(journal_positions, journal_events)
    used: set[str] = set()
    pids: dict[tuple[str, str], str] = {}
    for key in keys:
        market = got.markets.get(key[0])
        if market is None:
            continue
        segments = _segments(key, start_size[key], items.get(key, []))
        for n, seg in enumerate(segments):
            is_now = n == len(segments) - 1 and key in now_open and not seg.closed
            pid = _journal_segment(got, out, market, key, seg, now_open.get(key) if is_now
                                   else None, existing, used)
            if is_now and pid:
                pids[key] = pid
    legs_open: dict[str, int] = {}
    for p in got.positions:
        legs_open[p["symbol"]] = legs_open.get(p["symbol"], 0) + 1
    for p in got.positions:
        key = (p["symbol"], _leg_of(p))
        out.open_positions.append(_open(got, p, pids.get(key, ""), legs_open[p["symbol"]]))
    out.events.sort(key=lambda e: (e["_t"], e["event"] != "open"))
    first: dict[str, int] = {}
    for e in out.events:
        first.setdefault(e["position_id"], e["_t"])
    out.positions.sort(key=lambda p: first.get(p["position_id"], 0))
    return out


def _leg_items(got: Fetched, out: Rows, fills: list[dict[str, Any]],
               start_size: dict[tuple[str, str], float]) -> dict[tuple[str, str], list[_Item]]:
    """Each leg's fills, margin moves and funding, in time order. A margin or funding line
    that names no leg goes to the leg of its symbol open at that time (noted when none or
    both hedge legs are)."""
    ex = got.exchange
    funding_on_balance = venue(ex).FUNDING_ON_BALANCE
    legs: dict[tuple[str, str], list[_Item]] = {}
    trade_lines = [m for m in got.margin if _delta(m) == "TRADE"]
    taken: set[int] = set()

    def trade_line(f: dict[str, Any], kind: str) -> float | None:
        for i, m in enumerate(trade_lines):
            info = m.get("info") or {}
            if (i not in taken and m["symbol"] == f["symbol"] and m.get("type") == kind
                    and abs(int(m["timestamp"]) - int(f["t"])) <= _MATCH_MS
                    and str(info.get("positionSide") or "BOTH").upper() == f["leg"]):
                taken.add(i)
                return abs(float(m["amount"]))
        return None

    for f in fills:
        legs.setdefault((f["symbol"], f["leg"]), []).append(_Item(
            int(f["t"]), "fill", tag(ex, "trade", f["id"]), "imported fill", q=f["q"],
            price=f["price"], fill=f, add_margin=trade_line(f, "add"),
            released=trade_line(f, "reduce")))
    sizes: dict[tuple[str, str], list[tuple[int, float]]] = {}
    for key, its in legs.items():
        size = start_size.get(key, 0.0)
        path = [(-1, size)]
        for it in its:
            size += it.q
            path.append((it.t, size))
        sizes[key] = path
    for key, size in start_size.items():
        sizes.setdefault(key, [(-1, size)])

    def open_at(symbol: str, t: int) -> list[tuple[str, str]]:
        found = []
        for key, path in sizes.items():
            if key[0] != symbol:
                continue
            size = next(s for ts, s in reversed(path) if ts < t)
            if abs(size) > _FLAT:
                found.append(key)
        return found

    def place(symbol: str, leg: str, t: int, item: _Item, what: str) -> None:
        keys = open_at(symbol, t)
        if leg != "BOTH":
            keys = [k for k in keys if k[1] == leg] or [(symbol, leg)]
        if len(keys) == 1 and (keys[0] in sizes and abs(
                next(s for ts, s in reversed(sizes[keys[0]]) if ts < t)) > _FLAT):
            legs.setdefault(keys[0], []).append(item)
            if item.kind == "funding" and funding_on_balance and item.amount:
                # Bybit pays and credits funding on the available balance, not the isolated
                # position margin (help centre, "Position Margin": only when the balance
                # cannot cover it does it come from the position margin); the journal takes
                # funding from the margin, so the margin is put back beside it
                back = "add" if item.amount < 0 else "withdraw"
                legs[keys[0]].append(_Item(
                    t, back, item.key.replace(" income ", " balance ", 1),
                    "Bybit settles funding on the available balance: the position margin is "
                    "unchanged", amount=abs(item.amount)))
            return
        why = "no open position" if len(keys) <= 1 else "both hedge legs open"
        out.notes.append(f"{what} on {symbol} at {_when(t):%Y-%m-%d %H:%M}: {why} on the "
                         "exchange then, not journaled")

    income = [(f["symbol"], int(f["timestamp"]), float(f["amount"])) for f in got.funding]
    for m in got.margin:
        info = m.get("info") or {}
        delta, t, sym = _delta(m), int(m["timestamp"]), m["symbol"]
        if delta == "TRADE":
            continue  # the fill it belongs to carries it
        amount = abs(float(m["amount"]))
        market_id = (got.markets.get(sym) or {}).get("id", sym)
        ident = f"{market_id}-{info['billId']}" if info.get("billId") else \
            f"{market_id}-{t}-{info.get('type')}"
        leg = str(info.get("positionSide") or "BOTH").upper()
        if delta == "FUNDING_FEE":
            signed = amount if m.get("type") == "add" else -amount
            if any(s == sym and abs(ts - t) <= _MATCH_MS and abs(a - signed) < 1e-9
                   for s, ts, a in income):
                continue  # the same payment from the income history is imported as funding
            place(sym, leg, t, _Item(t, "funding", tag(ex, "margin", ident),
                                     "funding (from margin history)", amount=signed), "funding")
            continue
        kind = "add" if m.get("type") == "add" else "withdraw"
        place(sym, leg, t, _Item(t, kind, tag(ex, "margin", ident),
                                 "imported (price: last fill before it)", amount=amount),
              "margin change")
    for f in got.funding:
        t = int(f["timestamp"])
        place(f["symbol"], "BOTH", t, _Item(t, "funding", tag(ex, "income", f["id"]),
                                            "funding fee", amount=float(f["amount"])), "funding")
    order = {"funding": 0, "add": 1, "withdraw": 1, "fill": 2}
    for its in legs.values():
        its.sort(key=lambda it: (it.t, order[it.kind]))
    return legs


def _segments(key: tuple[str, str], start: float, items: list[_Item]) -> list[_Segment]:
    """Split a leg's items into positions: each from an open (or the start date, if the leg
    was open then) to the fill that closes it; a fill through zero ends one and starts the
    next."""
    segs: list[_Segment] = []
    size = start
    leg = key[1]
    cur: _Segment | None = None
    if abs(start) > _FLAT:
        cur = _Segment(long=start > 0, pre_window=True, start=start)
        segs.append(cur)
    for it in items:
        if it.kind != "fill":
            if cur is not None:
                cur.items.append(it)
            continue
        before, size = size, size + it.q
        if abs(before) <= _FLAT:
            long = it.q > 0 if leg == "BOTH" else leg == "LONG"
            cur = _Segment(long=long, open_item=it, open_qty=abs(it.q))
            segs.append(cur)
            continue
        assert cur is not None
        cur.items.append(it)
        if abs(size) <= _FLAT or size * before < 0:
            cur.closed = True
            if cur.pre_window:
                cur.broken = True
            cur = None
            if abs(size) > _FLAT:  # through zero: the rest opens the other way
                cur = _Segment(long=size > 0, open_item=it, open_qty=abs(size))
                segs.append(cur)
    return segs


def _journal_segment(got: Fetched, out: Rows, market: dict[str, Any], key: tuple[str, str],
                     seg: _Segment, now: dict[str, Any] | None, existing: list[JournalOpen],
                     used: set[str]) -> str | None:
    """Write one position's rows; returns its id (None: not journaled)."""
    ex, contract = got.exchange, _contract(market)
    side = "long" if seg.long else "short"
    s = 1.0 if seg.long else -1.0
    letter = "L" if seg.long else "S"
    if seg.open_item is not None:
        reversed_open = abs(seg.open_item.q) - seg.open_qty > _FLAT
        # an open is a fill item (_segments opens only on fills), which keeps its fill
        assert seg.open_item.fill is not None
        ident = f"{seg.open_item.fill['id']}" + ("r" if reversed_open else "")
    else:
        ident = _since_tag(got.since_ms)
    pid = f"{market['id']}-{letter}-{ident}"
    if any(j.position_id.casefold() == pid.casefold() for j in existing):
        used.add(pid.casefold())  # the journal has this very position: not one to continue
    cont = None
    if not seg.closed or seg.pre_window:
        cont = next((j for j in existing if j.position_id.casefold() not in used
                     and j.symbol.casefold() == str(market["id"]).casefold() and j.side == side
                     and (seg.pre_window or j.position_id.casefold() != pid.casefold())), None)
    since_dt = None
    if cont is not None:
        used.add(cont.position_id.casefold())
        pid, since_dt = cont.position_id, cont.opened
        out.notes.append(f"{pid}: continued (the journal has it open since "
                         f"{since_dt:%Y-%m-%d %H:%M}); rows dated before that are left out")
    events: list[dict[str, Any]] = []

    def fee_of(it: _Item, share: Decimal = Decimal(1)) -> float | None:
        f = it.fill or {}
        why = f.get("fee_unknown") or (
            f"its fees net to a rebate of {-f['fee']}" if f.get("fee", 0) < 0 else None)
        if why:
            out.notes.append(f"{pid}: fill {f.get('id')}: {why}; its Fee paid is left blank")
            return None
        return float(f["fee"] * share)

    lev = got.leverages.get(key[0])

    fee_from_margin = (getattr(venue(ex), "FEE_FROM_MARGIN", False)
                       and got.margin_modes.get(key[0]) == "isolated")

    def added_margin(it: _Item, qty: float, price: float) -> float | None:
        if it.add_margin is not None:
            return it.add_margin
        if not lev:
            return None
        margin = float(core.notional(qty, price, contract)) / lev
        f = it.fill or {}
        if fee_from_margin and not f.get("fee_unknown") and f.get("q"):
            # Hyperliquid: the fee of the qty opened comes out of the margin it posts
            margin -= float(f["fee"]) * qty / _qty(abs(f["q"]), market)
        return margin

    # the state at the start: the exchange's now (or, for one closed inside the window, the
    # state its closing fill shows), with the window's items undone newest first
    if seg.open_item is None:
        if seg.broken:
            start = _before_close(got, market, seg, added_margin)
        else:
            start = _rollback(got, market, seg, now, added_margin) if now is not None else None
        if start is None and cont is not None:
            # the journal's own open holds the start: only a price for the margin rows
            first = next((it.price for it in seg.items if it.kind == "fill"), None)
            start = (0.0, first or got.marks.get(key[0]) or math.nan, 0.0)
        if start is None and seg.broken:
            out.notes.append(
                f"{market['id']} {key[1]}: fills before it was first flat are not "
                "journaled (the position opened before the start date and closed inside "
                "the window; the exchange does not say its entry or margin then)")
            return None
        if start is None:
            out.notes.append(f"{pid}: its state at the start date is not known: not journaled")
            return None
        qty0, entry0, margin0 = start
        open_t, open_price, open_fee = got.since_ms, entry0, None
        open_reason = ("open before the start date: size, entry and margin then (the "
                       "exchange's now, less the fills, margin moves and funding since)")
        open_key = tag(ex, "start", pid)
    else:
        it = seg.open_item
        qty0 = _qty(seg.open_qty, market)
        share = Decimal(1)
        if abs(it.q) - seg.open_qty > _FLAT:  # a reversal: the new side's share of the fill
            share = Decimal(repr(seg.open_qty)) / Decimal(repr(abs(it.q)))
        entry0, open_t, open_key = it.price, it.t, tag(ex, "trade", ident)
        # a reversal's new side takes the margin line Binance wrote for it, else its own
        # notional at the leverage setting
        opening_margin = added_margin(it, qty0, it.price)
        open_price = it.price
        open_reason = "imported fill (reversed)" if share != 1 else "imported fill"
        open_fee = fee_of(it, share)
        if opening_margin is None:
            out.notes.append(f"{pid}: no opening margin known (no margin line, no leverage): "
                             "not journaled")
            return None
        margin0 = opening_margin
    if cont is None:
        table = got.tiers.get(key[0])
        mmr, maint = (core.DEFAULT_MMR, 0.0)
        if table is not None:
            r, a, _ = table.lookup(core.notional(qty0, entry0, contract))
            mmr, maint = float(r), float(a)
        out.positions.append({"position_id": pid, "symbol": market["id"], "side": side,
                              "contract": contract, "margin_currency": margin_currency(market),
                              "mmr": mmr, "maint_amount": maint, "_key": tag(ex, "position", pid)})
        events.append(_event(open_t, pid, "open", open_key, open_reason, open_price, qty0,
                             margin0, open_fee))
    if seg.open_item is not None:
        size = s * seg.open_qty
    else:
        size = s * _contract_count(now) - sum(it.q for it in seg.items if it.kind == "fill")
    last_price = open_price
    for it in seg.items:
        if it.kind == "funding":
            events.append(_event(it.t, pid, "funding", it.key, it.reason, amount=it.amount))
            continue
        if it.kind in ("add", "withdraw"):
            events.append(_event(it.t, pid, f"{it.kind}_margin", it.key, it.reason,
                                 last_price, None, it.amount))
            continue
        before, size = size, size + it.q
        last_price = it.price
        liq = it.fill is not None and it.fill["order"] in got.liquidation_orders
        if before * it.q > 0:
            q = _qty(abs(it.q), market)
            events.append(_event(it.t, pid, "increase", it.key, it.reason, it.price, q,
                                 added_margin(it, q, it.price), fee_of(it)))
            continue
        reason = "liquidation" if liq else "imported fill"
        if abs(size) <= _FLAT or size * before < 0:
            share = Decimal(1)
            if size * before < 0:
                share = Decimal(repr(abs(before))) / Decimal(repr(abs(it.q)))
            events.append(_event(it.t, pid, "close", it.key, reason, it.price,
                                 fee=fee_of(it, share)))
            break
        events.append(_event(it.t, pid, "partial_close", it.key, reason, it.price,
                             _qty(abs(it.q), market), it.released, fee_of(it)))
    horizon = got.margin_since
    # a cross position's margin is the account's: only an isolated one has moves to net
    if (horizon > got.since_ms and seg.open_item is not None and not seg.closed
            and now is not None and open_t < horizon and margin_mode(now) == "isolated"):
        unseen = _unseen_margin(got, market, seg, now, added_margin, margin0, qty0, horizon)
        if unseen is not None:
            price = next((it.price for it in reversed(seg.items)
                          if it.kind == "fill" and it.t < horizon), open_price)
            events.append(_event(
                horizon, pid, "add_margin" if unseen > 0 else "withdraw_margin",
                tag(ex, "unseen", pid), getattr(venue(ex), "UNSEEN_MARGIN", UNSEEN_MARGIN),
                price, None, abs(unseen)))
    if since_dt is not None:
        events = [e for e in events if e["date"] >= since_dt]
    out.events.extend(events)
    return pid


UNSEEN_MARGIN = ("margin moved before the exchange's margin history begins (net: the exchange's "
                 "margin then, less the journal's)")


def _unseen_margin(got: Fetched, market: dict[str, Any], seg: _Segment, now: dict[str, Any],
                   added_margin: Any, margin0: float, qty0: float, horizon: int) -> float | None:
    """The net margin moved before ``horizon`` (where the exchange's margin history starts:
    Binance keeps 30 days, OKX 3 months) that the import cannot see: the exchange's margin at
    the horizon (its now, the later items undone) less the journal's (the open and the
    earlier items applied). None when it is within the exchange's rounding."""
    at = _rollback(got, market, seg, now, added_margin,
                   [it for it in seg.items if it.t >= horizon])
    if at is None:
        return None
    margin, qty = margin0, qty0
    for it in seg.items:
        if it.t >= horizon:
            break
        if it.kind in ("funding", "add"):
            margin += it.amount or 0.0
        elif it.kind == "withdraw":
            margin -= it.amount or 0.0
        elif it.q * (1.0 if seg.long else -1.0) > 0:
            q = _qty(abs(it.q), market)
            m = added_margin(it, q, it.price)
            if m is None:
                return None
            margin, qty = margin + m, qty + q
        else:
            q = _qty(abs(it.q), market)
            margin -= it.released if it.released is not None else margin * q / qty
            qty -= q
    gap = at[2] - margin
    tolerance = 5e-9 if _contract(market) == "inverse" else 0.005
    return gap if abs(gap) > tolerance else None


def _contract_count(p: dict[str, Any] | None) -> float:
    return abs(float((p or {}).get("contracts") or 0))


def _rollback(got: Fetched, market: dict[str, Any], seg: _Segment, now: dict[str, Any],
              added_margin: Any, items: list[_Item] | None = None
              ) -> tuple[float, float, float] | None:
    """(qty, entry, margin) of a position at the start date: the exchange's state now with
    the window's items (``items``; default: all of the segment's) undone newest first."""
    contract = _contract(market)
    qty = _qty(_contract_count(now), market)
    entry = float(now["entryPrice"])
    margin = wallet_margin(got.exchange, now)
    if margin is None:
        if margin_mode(now) != "isolated":
            lev = got.leverages.get(now["symbol"]) or _num(now.get("leverage"))
            if not lev:
                return None
            margin = float(core.notional(qty, entry, contract)) / lev
        else:
            return None
    return _undo(market, seg, (qty, entry, margin), seg.items if items is None else items,
                 added_margin)


def _before_close(got: Fetched, market: dict[str, Any], seg: _Segment,
                  added_margin: Any) -> tuple[float, float, float] | None:
    """(qty, entry, margin) at the start date of a position open then and closed inside the
    window, from its closing fill: the qty it closed, the entry its realized PnL implies
    (linear ``entry = price − pnl / (s·qty)``, inverse ``1/entry = 1/price + pnl / (s·qty)``)
    and the margin the exchange released with it (Binance's TRADE line; a cross position:
    its notional at the leverage setting); the earlier items undone. None when the exchange
    does not say the PnL or the margin."""
    fills = [i for i, it in enumerate(seg.items) if it.kind == "fill"]
    if not fills:
        return None
    last = seg.items[fills[-1]]
    pnl = (last.fill or {}).get("pnl")
    contract, s = _contract(market), (1.0 if seg.long else -1.0)
    before = abs(seg.start + sum(it.q for it in seg.items[:fills[-1]] if it.kind == "fill"))
    if pnl is None or before <= _FLAT:
        return None
    qty = _qty(before, market)
    if contract == "inverse":
        entry = 1.0 / (1.0 / last.price + pnl / (s * qty))
    else:
        entry = last.price - pnl / (s * qty)
    margin = last.released
    if margin is None:
        lev = got.leverages.get(last.fill["symbol"]) if last.fill else None
        if not lev or not venue(got.exchange).MARGIN_FROM_LEVERAGE:
            return None
        margin = float(core.notional(qty, entry, contract)) / lev
    return _undo(market, seg, (qty, entry, margin), seg.items[:fills[-1]], added_margin)


def _undo(market: dict[str, Any], seg: _Segment, state: tuple[float, float, float],
          items: list[_Item], added_margin: Any) -> tuple[float, float, float] | None:
    """``state`` with ``items`` undone newest first. Undoing an increase of q' at p: qty −= q',
    entry = the average's inverse, margin −= its margin; a reduction: qty += q', margin +=
    what it released (the margin line, else the closed share of the margin before it);
    funding and margin moves: margin −= what they added."""
    contract = _contract(market)
    qty, entry, margin = state
    s = 1.0 if seg.long else -1.0
    for it in reversed(items):
        if it.kind in ("funding", "add"):
            margin -= it.amount or 0.0
        elif it.kind == "withdraw":
            margin += it.amount or 0.0
        elif it.q * s > 0:  # an increase
            q = _qty(abs(it.q), market)
            m = added_margin(it, q, it.price)
            if m is None:
                return None
            entry = _undo_entry(contract, qty, entry, q, it.price)
            qty -= q
            margin -= m
        else:
            q = _qty(abs(it.q), market)
            margin = margin + it.released if it.released is not None else margin * (qty + q) / qty
            qty += q
    if qty <= _FLAT or margin <= 0 or not math.isfinite(entry) or entry <= 0:
        return None
    return qty, entry, margin


def _open(got: Fetched, p: dict[str, Any], pid: str, legs_open: int) -> OpenPosition:
    market = got.markets[p["symbol"]]
    contract = _contract(market)
    qty = _qty(abs(float(p.get("contracts") or 0)), market)
    mark = got.marks.get(p["symbol"]) or float(p.get("markPrice") or 0) or float(p["entryPrice"])
    lev = p.get("leverage")
    mode = margin_mode(p)
    return OpenPosition(
        position_id=pid,
        symbol=p["symbol"], market_id=market["id"], side=side_of(p), contract=contract,
        qty=qty, entry=float(p["entryPrice"]), mark=mark,
        notional=float(core.notional(qty, mark, contract)),
        margin=(wallet_margin(got.exchange, p) or 0.0) if mode == "isolated" else 0.0,
        margin_mode=mode, hedged=_leg_of(p) != "BOTH",
        exchange_liq=liq_or_none(p.get("liquidationPrice")),
        leverage=float(lev) if lev not in (None, "") else None,
        price_tick=price_tick(market), margin_currency=margin_currency(market),
        legs_open=legs_open,
    )
