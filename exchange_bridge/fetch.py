"""Read an account's futures history through ccxt's unified methods, page by page.

Everything an import needs is fetched here (and nothing is written): open positions, margin
changes, funding, fills, liquidation orders, tiers and mark prices. "Now" is the exchange's
server time (``fetch_time``), never this computer's clock: the windows below count from it.

Each exchange's API sets its own paging rules, so what differs lives in one fetch module per
exchange convention, ``fetch_<convention>.py`` (:func:`venue`: the convention of a ccxt id is
:data:`leverage.conventions.CCXT_IDS`). A fetch module provides:

- ``MARKET_TYPES``: the ccxt market types to load (empty: ccxt's own list);
- ``families(exchange)``: the ``params`` that cover every futures family in one list call each;
- ``cross_wallet(exchange, balance)``: the cross wallet in ccxt's ``fetch_balance`` answer;
- ``balances(exchange, wallet)``: the cross wallet (``wallet`` when the fetch had it) and the
  free balance, for the rebalance sheet;
- ``wallet_margin(position)``: an isolated position's margin without its unrealized PnL;
- ``rates(exchange, got, symbols)``: tiers, marks and leverage settings;
- ``history(exchange, got)``: fills, funding, margin changes and liquidations, then the rates;
- ``FUNDING_ON_BALANCE``: funding is paid from the available balance, not the position margin;
- ``MARGIN_FROM_LEVERAGE``: a position's margin may be taken as its notional ÷ its leverage.

and, where the exchange needs them: ``OPTIONS`` (ccxt options the client is made with: Bitget,
Gate ``defaultType`` swap), ``close_fee_rate(market)`` (the fee rate the exchange's own
liquidation price counts, which the reconcile's price counts too: Bitget, Gate),
``FEE_FROM_MARGIN`` (an isolated open's fee comes out of the margin it posts), ``UNSEEN_MARGIN``
(the reason of the net margin line of moves the exchange does not list),
``journal_market(market)`` (the market as the journal names it), ``BY_ADDRESS`` (the account
is read by wallet address, with no API key), ``ratio_account(exchange, got)`` (where the
exchange liquidates the account on its ratio rather than per position: Bybit's unified account
in cross or portfolio margin, Binance portfolio margin; its equity, maintenance margin and
threshold into ``got``).
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from leverage.conventions import CCXT_IDS, CONVENTIONS
from leverage.tiers import TierTable

from .client import SUPPORTED, ExchangeError, call, parsing_answers

BINANCE = CONVENTIONS["binance"].ccxt_ids  # the same API rules under /fapi and /dapi
IMPORTS = SUPPORTED
DAY_MS = 86_400_000
TRADE_WINDOW_MS = 7 * DAY_MS
PAGE = {"income": 1000, "margin": 500, "trades": 1000, "bybit": 100, "okx": 100}


@dataclass
class Fetched:
    """One account's raw history as ccxt returns it (unified structures, ``info`` kept)."""

    exchange: str
    since_ms: int
    now_ms: int  # the exchange's server time when the import began
    markets: dict[str, dict[str, Any]]
    positions: list[dict[str, Any]] = field(default_factory=list)
    margin: list[dict[str, Any]] = field(default_factory=list)
    funding: list[dict[str, Any]] = field(default_factory=list)
    trades: list[dict[str, Any]] = field(default_factory=list)
    liquidation_orders: set[str] = field(default_factory=set)
    leverages: dict[str, float] = field(default_factory=dict)
    margin_modes: dict[str, str] = field(default_factory=dict)  # symbol → isolated / cross
    tiers: dict[str, TierTable] = field(default_factory=dict)
    marks: dict[str, float] = field(default_factory=dict)
    wallet_balance: float | None = None  # cross wallet, for cross positions' liquidation
    # an account the exchange liquidates on its ratio (unified / portfolio margin): its
    # equity and maintenance margin (USD) as the exchange states them, the equity ÷
    # maintenance at which it liquidates, and what the account is, in the exchange's words;
    # None / "": an account liquidated per position
    account_equity: float | None = None
    account_maint: float | None = None
    liq_threshold: float | None = None
    ratio_account: str = ""
    # the earliest time the margin history covers (Binance 30 days, OKX 3 months back from
    # the exchange's now); 0: all of the window
    margin_since: int = 0
    notes: list[str] = field(default_factory=list)

    def traded_symbols(self) -> list[str]:
        """Every symbol with a fill, an open position or a funding row."""
        return sorted({*(t["symbol"] for t in self.trades),
                       *(p["symbol"] for p in self.positions),
                       *(f["symbol"] for f in self.funding if f.get("symbol"))})


def paged(
    exchange: Any,
    fetch: Callable[..., list[dict[str, Any]]],
    since: int,
    limit: int,
    until: int | None = None,
    **kwargs: Any,
) -> list[dict[str, Any]]:
    """Every row from ``since`` (ms) on, ``limit`` rows a request, oldest first.

    The next page starts at the last row's time (rows sharing that millisecond are asked for
    again and dropped by id), so nothing on a page boundary is lost.
    """
    out: list[dict[str, Any]] = []
    seen: set[Any] = set()
    params = dict(kwargs.pop("params", {}) or {}, **({"until": until} if until else {}))
    while True:
        page = call(exchange, fetch, since=since, limit=limit, params=params, **kwargs)
        fresh = [r for r in page if _row_id(r) not in seen]
        out.extend(fresh)
        seen.update(_row_id(r) for r in fresh)
        if len(page) < limit or not fresh:
            return out
        last = max(int(r["timestamp"]) for r in page)
        since = last if last > since else since + 1


def windows(since: int, until: int, width: int = TRADE_WINDOW_MS) -> Iterator[tuple[int, int]]:
    """``(start, end)`` in ms of the consecutive windows ``width`` wide that cover ``since``
    to ``until``, both ends inclusive, the last one cut at ``until`` (an API that takes at
    most 7 days a request is asked window by window).

    >>> list(windows(0, 20 * DAY_MS))[-1] == (14 * DAY_MS, 20 * DAY_MS)
    True
    """
    start = since
    while start <= until:
        end = min(start + width - 1, until)
        yield start, end
        start = end + 1


def _row_id(row: dict[str, Any]) -> Any:
    info = row.get("info") or {}
    return (row.get("id") or info.get("tranId") or info.get("id"), row.get("timestamp"),
            row.get("symbol"), str(row.get("amount")), info.get("type"), info.get("positionSide"))


def _supported(exchange: Any) -> None:
    if exchange.id not in IMPORTS:
        raise ExchangeError(f"importing from {exchange.id} is not available yet: "
                            f"{' and '.join(IMPORTS)} are supported")


def venue(exchange_id: str) -> ModuleType:
    """The fetch module of the convention ``exchange_id`` follows (``fetch_binance`` for
    ``binanceusdm``): what differs between exchanges (see the module doc)."""
    name = CCXT_IDS.get(exchange_id)
    if name is None:
        raise ExchangeError(f"importing from {exchange_id} is not available yet: "
                            f"{' and '.join(IMPORTS)} are supported")
    return importlib.import_module(f"{__package__}.fetch_{name}")


def num(v: Any) -> float | None:
    """A finite float from an exchange's number or decimal string; None otherwise."""
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def unified_balances(exchange: Any, wallet: float | None) -> tuple[Any, Any]:
    """A unified account's USDT line of ccxt's ``parse_balance`` (Bybit ``walletBalance`` /
    ``availableToWithdraw``, OKX ``eq`` / ``availEq``): the wallet (``wallet`` when the fetch
    had it) and the free balance."""
    usdt = call(exchange, exchange.fetch_balance).get("USDT") or {}
    return usdt.get("total") if wallet is None else wallet, usdt.get("free")


@parsing_answers
def fetch_open(exchange: Any, since_ms: int = 0, now_ms: int | None = None,
               rates: bool = True) -> Fetched:
    """Open positions with what reconciling them needs: tiers, marks, the cross wallet.

    A hedge-mode leg with no contracts is left out (it is not a flat position of the symbol:
    the other leg may be open)."""
    _supported(exchange)
    # the exchange's clock, not this computer's: windows (Binance's 30 days of margin
    # history) and the dates of the rows count from it
    now_ms = now_ms or int(call(exchange, exchange.fetch_time))
    rules = venue(exchange.id)
    # the market as the journal names it (Hyperliquid: the coin, not ccxt's asset index)
    named = getattr(rules, "journal_market", None) or (lambda m: m)
    markets = {s: named(m) for s, m in exchange.markets.items() if m.get("contract")}
    got = Fetched(exchange.id, since_ms, now_ms, markets)
    got.positions = [p for params in rules.families(exchange)
                     for p in call(exchange, exchange.fetch_positions, params=params) if _size(p)]
    for p in got.positions:
        if p.get("leverage"):
            got.leverages.setdefault(p["symbol"], float(p["leverage"]))
        got.margin_modes.setdefault(p["symbol"], margin_mode(p))
    on_ratio = getattr(rules, "ratio_account", None)
    if on_ratio is not None:
        on_ratio(exchange, got)
    if any(margin_mode(p) != "isolated" for p in got.positions):
        wallet = rules.cross_wallet(exchange, call(exchange, exchange.fetch_balance))
        got.wallet_balance = None if wallet in (None, "") else float(wallet)
    if rates:
        rates_of(exchange, got, sorted({p["symbol"] for p in got.positions}))
    return got


def rates_of(exchange: Any, got: Fetched, symbols: list[str]) -> None:
    """Tiers, marks and leverage settings of ``symbols`` not fetched yet (the exchange's
    fetch module asks for them)."""
    todo = [s for s in symbols if s not in got.tiers]
    if todo:
        venue(exchange.id).rates(exchange, got, todo)


def margin_mode(p: dict[str, Any]) -> str:
    """isolated or cross: ccxt's field, else Bybit's ``tradeMode`` (1 isolated)."""
    mode = p.get("marginMode")
    if not mode and str((p.get("info") or {}).get("tradeMode")) == "1":
        return "isolated"
    return str(mode or "cross")


@parsing_answers
def fetch_account(exchange: Any, since_ms: int, now_ms: int | None = None) -> Fetched:
    """Fetch what :mod:`leverage_exchange.convert` turns into journal rows."""
    got = fetch_open(exchange, since_ms, now_ms, rates=False)
    venue(exchange.id).history(exchange, got)
    return got


def _size(position: dict[str, Any]) -> float:
    return abs(float(position.get("contracts") or 0))
