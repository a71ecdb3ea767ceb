"""A recorded Hyperliquid account on loopback: ``POST /info`` answered in Hyperliquid's
documented JSON (Hyperliquid Docs, "Info endpoint" and its "Perpetuals" page; the shapes ccxt's
``hyperliquid`` quotes in its parsers), for real ccxt clients pointed here with ``--api-url``.

One path serves every request; the JSON body's ``type`` says what is asked:

- ``metaAndAssetCtxs``             markets, margin tables, marks (``load_markets``, the tiers)
- ``meta``                         the universe and margin tables alone
- ``spotMeta``                     the spot tokens (ccxt's currencies: USDC)
- ``exchangeStatus``               the exchange's clock (``fetch_time``)
- ``clearinghouseState``           positions and the account summary (``fetch_positions``)
- ``userFillsByTime``/``userFills`` fills (``fetch_my_trades``): by time, oldest first from
  ``startTime`` to ``endTime``, at most a page (2,000); without a time, the latest page
- ``userFunding``                  funding (``fetch_funding_history``): by time, 500 a page
- ``userNonFundingLedgerUpdates``  deposits, withdrawals, transfers (``fetch_ledger``)
- ``activeAssetData``              a coin's leverage setting
- ``userAbstraction``              the account's mode, a JSON string (``"default"``)

A body that is not JSON, an unknown type or a user that is not ``0x`` + 40 hex digits gets
Hyperliquid's 422 ``Failed to deserialize the JSON body into the target type``; an address with
no account gets an empty account. Faults as :class:`~.recorded_exchange.RecordedExchange`'s,
armed for one request type with ``fail("/info:clearinghouseState", ...)`` or for every request
with ``fail("/info", ...)``; ``"429"`` is Hyperliquid's HTTP 429 rate limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .recorded_exchange import DAY_MS, RecordedExchange, _now

ADDRESS = "0x0123456789abcdef0123456789abcdef01234567"
"""The recorded account's wallet address."""
PATH = "/info"
TAKER = 0.00035  # the taker rate freqtrade's recorded Hyperliquid positions show
_USER = re.compile(r"^0x[0-9a-fA-F]{40}$")
_BAD_BODY = "Failed to deserialize the JSON body into the target type"


@dataclass
class HyperliquidAccount:
    """A recorded account: the universe and margin tables, fills, funding, ledger, positions
    and the cross summary, as Hyperliquid sends them (numbers as decimal strings)."""

    universe: list[dict[str, Any]] = field(default_factory=list)
    margin_tables: list[list[Any]] = field(default_factory=list)
    ctxs: list[dict[str, Any]] = field(default_factory=list)
    fills: list[dict[str, Any]] = field(default_factory=list)
    funding: list[dict[str, Any]] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    positions: list[dict[str, Any]] = field(default_factory=list)  # assetPositions
    cross: dict[str, str] = field(default_factory=dict)  # crossMarginSummary
    summary: dict[str, str] = field(default_factory=dict)  # marginSummary
    cross_maintenance: str = "0.0"
    withdrawable: str = "0.0"
    leverages: dict[str, dict[str, Any]] = field(default_factory=dict)  # coin → leverage


def _by_time(rows: list[dict[str, Any]], params: dict[str, Any], page: int) -> list[dict]:
    start, end = int(params.get("startTime") or 0), params.get("endTime")
    kept = [r for r in rows if int(r["time"]) >= start
            and (end is None or int(r["time"]) <= int(end))]
    return sorted(kept, key=lambda r: int(r["time"]))[:page]


class FakeHyperliquid(RecordedExchange):
    """Hyperliquid's ``POST /info`` on 127.0.0.1 (see the module docstring). ``fill_page`` and
    ``funding_page``: the most rows an answer holds (Hyperliquid's 2,000 and 500)."""

    def __init__(self, account: HyperliquidAccount, *, stall_seconds: float = 3.0,
                 fill_page: int = 2000, funding_page: int = 500) -> None:
        super().__init__(account, stall_seconds=stall_seconds)
        self.fill_page, self.funding_page = fill_page, funding_page

    def __enter__(self) -> FakeHyperliquid:
        self.start()
        return self

    def _fault_keys(self, path: str, params: dict[str, Any]) -> tuple[str, ...]:
        return (f"{path}:{params.get('type')}", path)

    def _answer(self, req: Any, path: str, params: dict[str, Any],
                fault: str | None) -> tuple[int, Any, dict[str, str]]:
        if fault == "429":
            return 429, None, {}
        if path != PATH or req.command != "POST":
            return 404, None, {}
        acc: HyperliquidAccount = self.account
        kind, user = params.get("type"), params.get("user")
        if user is not None and not (isinstance(user, str) and _USER.match(user)):
            return 422, _BAD_BODY, {}
        mine = isinstance(user, str) and user.lower() == ADDRESS
        meta = {"universe": acc.universe, "marginTables": acc.margin_tables}
        if kind == "metaAndAssetCtxs":
            return 200, [meta, acc.ctxs], {}
        if kind == "meta":
            return 200, meta, {}
        if kind == "spotMeta":  # ccxt's currencies: USDC, the perpetuals' collateral
            return 200, {"universe": [], "tokens": [{
                "name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0,
                "tokenId": "0x6d1e7cde53ba9467b783cb7c530ce054", "isCanonical": True,
                "evmContract": None, "fullName": None}]}, {}
        if kind == "exchangeStatus":
            return 200, {"specialStatuses": None, "time": str(_now())}, {}
        if user is None:
            return 422, _BAD_BODY, {}
        if kind == "userAbstraction":
            return 200, "default", {}
        if kind == "clearinghouseState":
            return 200, self._state(acc if mine else HyperliquidAccount()), {}
        if kind == "userFillsByTime":
            return 200, _by_time(acc.fills if mine else [], params, self.fill_page), {}
        if kind == "userFills":
            rows = sorted(acc.fills if mine else [], key=lambda r: -int(r["time"]))
            return 200, rows[:self.fill_page], {}
        if kind == "userFunding":
            return 200, _by_time(acc.funding if mine else [], params, self.funding_page), {}
        if kind == "userNonFundingLedgerUpdates":
            return 200, _by_time(acc.ledger if mine else [], params, 2000), {}
        if kind == "activeAssetData":
            coin = params.get("coin")
            if coin is None or coin not in {u["name"] for u in acc.universe}:
                return 422, _BAD_BODY, {}
            lev = (acc.leverages.get(coin) if mine else None) or {"type": "cross", "value": 20}
            ctx = acc.ctxs[[u["name"] for u in acc.universe].index(coin)]
            return 200, {"user": user, "coin": coin, "leverage": lev,
                         "maxTradeSzs": ["0.0", "0.0"], "availableToTrade": ["0.0", "0.0"],
                         "markPx": ctx["markPx"]}, {}
        return 422, _BAD_BODY, {}

    @staticmethod
    def _state(acc: HyperliquidAccount) -> dict[str, Any]:
        zero = {"accountValue": "0.0", "totalNtlPos": "0.0", "totalRawUsd": "0.0",
                "totalMarginUsed": "0.0"}
        return {"marginSummary": acc.summary or zero, "crossMarginSummary": acc.cross or zero,
                "crossMaintenanceMarginUsed": acc.cross_maintenance,
                "withdrawable": acc.withdrawable, "assetPositions": acc.positions,
                "time": _now()}


# -- building a recorded account ------------------------------------------------------------


def _s(x: float, places: int = 6) -> str:
    """A decimal string as Hyperliquid writes it (``"61500.0"``, ``"136.08975"``)."""
    text = f"{x:.{places}f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def universe_asset(name: str, max_leverage: int, sz_decimals: int,
                   margin_table: int | None = None) -> dict[str, Any]:
    """One ``meta.universe`` asset (``marginTableId``: its margin table; under 50 a single tier
    at that leverage)."""
    return {"name": name, "szDecimals": sz_decimals, "maxLeverage": max_leverage,
            "marginTableId": margin_table if margin_table is not None else max_leverage}


def asset_ctx(mark: str) -> dict[str, Any]:
    """One asset context of ``metaAndAssetCtxs`` (mark, oracle and mid at ``mark``)."""
    return {"funding": "0.0000125", "openInterest": "1000.0", "prevDayPx": mark,
            "dayNtlVlm": "100000000.0", "premium": "0.0", "oraclePx": mark, "markPx": mark,
            "midPx": mark, "impactPxs": [mark, mark], "dayBaseVlm": "1000.0"}


def fill(tid: int, oid: int, coin: str, side: str, sz: float, px: float, t: int, direction: str,
         start: float, closed_pnl: float = 0.0, liquidation: dict[str, str] | None = None
         ) -> dict[str, Any]:
    """One ``userFills`` row: ``side`` B (buy) or A (sell), the taker fee at :data:`TAKER`;
    ``liquidation``: ``{liquidatedUser, markPx, method}`` on a fill of a liquidation."""
    return {"coin": coin, "px": _s(px), "sz": _s(sz), "side": side, "time": t,
            "startPosition": _s(start), "dir": direction, "closedPnl": _s(closed_pnl),
            "hash": f"0x{tid:064x}", "oid": oid, "crossed": True, "fee": _s(px * sz * TAKER),
            "tid": tid, "feeToken": "USDC", "liquidation": liquidation, "twapId": None}


def funding_row(coin: str, usdc: float, szi: float, t: int) -> dict[str, Any]:
    """One ``userFunding`` row (``usdc``: received +, paid −; the hash all zero, as
    Hyperliquid sends it)."""
    return {"time": t, "hash": "0x" + "0" * 64,
            "delta": {"type": "funding", "coin": coin, "usdc": _s(usdc), "szi": _s(szi),
                      "fundingRate": "0.0000125", "nSamples": None}}


def asset_position(coin: str, szi: float, entry: float, mark: float, margin_used: float,
                   liq: float | None, mode: str, leverage: int, max_leverage: int,
                   funding: float = 0.0) -> dict[str, Any]:
    """One ``clearinghouseState.assetPositions`` row (``marginUsed``: isolated, the margin
    posted plus the unrealized PnL; cross, the position value ÷ leverage)."""
    value = abs(szi) * mark
    upnl = szi * (mark - entry)
    return {"type": "oneWay", "position": {
        "coin": coin, "szi": _s(szi), "entryPx": _s(entry), "positionValue": _s(value),
        "unrealizedPnl": _s(upnl), "returnOnEquity": _s(upnl / margin_used, 8),
        "liquidationPx": None if liq is None else _s(liq, 8), "marginUsed": _s(margin_used),
        "maxLeverage": max_leverage,
        "leverage": {"type": mode, "value": leverage,
                     **({"rawUsd": _s(margin_used - value)} if mode == "isolated" else {})},
        "cumFunding": {"allTime": _s(-funding), "sinceOpen": _s(-funding),
                       "sinceChange": _s(-funding)}}}


def _liq(mark: float, side: int, margin_available: float, size: float,
         maint_rate: float) -> float:
    """Hyperliquid's formula (docs, "Liquidations"), at the mark price:
    ``liq_price = price − side × margin_available / position_size / (1 − l × side)``, ``l``
    the maintenance rate."""
    return mark - side * margin_available / size / (1 - maint_rate * side)


def sample_hyperliquid_account(now_ms: int | None = None) -> HyperliquidAccount:
    """BTC isolated long at 10x: one order of two fills, funding, a scale-in, 50 USDC of margin
    added (Hyperliquid's ledger does not list it), a partial close, still open; ETH cross short
    at 5x, open; SOL cross long at 10x opened before the import's start (its fill 10 days
    before ``t0``), funding inside it; DOGE isolated at 5x: a long flipped short by one order,
    then closed; AVAX isolated at 10x: a long liquidated.

    The figures by Hyperliquid's rules, taker fee 0.035 %, the fee of an isolated open taken
    from the margin it posts:

    - BTC margin: 600 / 10 − 0.21 (fee) = 59.79; − 0.12 funding = 59.67; the scale-in 620 / 10
      − 0.217 = 61.783 → 121.453; + 50 added → 171.453; the close of 0.005 of 0.02 keeps 75 %:
      128.58975. At mark 61,500 the PnL is 0.015 × 500 = 7.5, so ``marginUsed`` 136.08975.
      BTC's margin table is 40x up to 150M: ``l = 1/80``; ``margin_available = 136.08975 −
      0.015 × 61,500 / 80 = 124.5585``; ``liq = 61,500 − 124.5585 / 0.015 / 0.9875 =
      53,090.9873``.
    - Cross: wallet 3,000 without PnL; ETH short 0.5 at 3,000 (mark 2,900, +50), SOL long 100
      at 150 (mark 140, −1,000): account value 2,050; maintenance 0.5 × 2,900 / 50 (ETH 25x)
      + 100 × 140 / 40 (SOL 20x) = 29 + 350 = 379; ``margin_available`` 1,671. ETH: 2,900 +
      1,671 / 0.5 / 1.02 = 6,176.4706; SOL: 140 − 1,671 / 100 / 0.975 = 122.8615.
    - AVAX 10 at 30, 10x: margin 30 − 0.105 = 29.895; AVAX 10x: ``l = 1/20``, liquidation
      (30 − 29.895 / 10) / 0.95 = 28.4321; the liquidation's fill at 28.40.
    """
    now = now_ms or _now()
    t0 = now - 20 * DAY_MS
    h = 3_600_000
    acc = HyperliquidAccount(
        universe=[universe_asset("BTC", 40, 5, 56), universe_asset("ETH", 25, 4, 55),
                  universe_asset("SOL", 20, 2), universe_asset("DOGE", 10, 0),
                  universe_asset("AVAX", 10, 2)],
        margin_tables=[
            [55, {"description": "tiered 25x", "marginTiers": [
                {"lowerBound": "0.0", "maxLeverage": 25},
                {"lowerBound": "100000000.0", "maxLeverage": 15}]}],
            [56, {"description": "tiered 40x", "marginTiers": [
                {"lowerBound": "0.0", "maxLeverage": 40},
                {"lowerBound": "150000000.0", "maxLeverage": 20}]}]],
        ctxs=[asset_ctx("61500.0"), asset_ctx("2900.0"), asset_ctx("140.0"), asset_ctx("0.1"),
              asset_ctx("27.0")],
        leverages={"BTC": {"type": "isolated", "value": 10}, "ETH": {"type": "cross", "value": 5},
                   "SOL": {"type": "cross", "value": 10}, "DOGE": {"type": "isolated", "value": 5},
                   "AVAX": {"type": "isolated", "value": 10}},
    )
    acc.fills = [
        fill(90, 900, "SOL", "B", 100, 150.0, t0 - 10 * DAY_MS, "Open Long", 0),
        fill(101, 1001, "BTC", "B", 0.004, 60000.0, t0, "Open Long", 0),
        fill(102, 1001, "BTC", "B", 0.006, 60000.0, t0 + 50, "Open Long", 0.004),
        fill(103, 1002, "BTC", "B", 0.01, 62000.0, t0 + DAY_MS, "Open Long", 0.01),
        fill(104, 1003, "BTC", "A", 0.005, 63000.0, t0 + 3 * DAY_MS, "Close Long", 0.02, 10.0),
        fill(201, 1004, "ETH", "A", 0.5, 3000.0, t0 + 4 * DAY_MS, "Open Short", 0),
        fill(301, 1005, "DOGE", "B", 1000, 0.1, t0 + 5 * DAY_MS, "Open Long", 0),
        fill(302, 1006, "DOGE", "A", 1500, 0.11, t0 + 6 * DAY_MS, "Long > Short", 1000, 10.0),
        fill(303, 1007, "DOGE", "B", 500, 0.105, t0 + 7 * DAY_MS, "Close Short", -500, 2.5),
        fill(401, 1008, "AVAX", "B", 10, 30.0, t0 + 8 * DAY_MS, "Open Long", 0),
        fill(402, 1009, "AVAX", "A", 10, 28.4, t0 + 9 * DAY_MS, "Close Long", 10, -16.0,
             {"liquidatedUser": ADDRESS, "markPx": "28.43", "method": "market"}),
    ]
    acc.funding = [
        funding_row("BTC", -0.12, 0.01, t0 + 8 * h),
        funding_row("SOL", -0.8, 100, t0 + 16 * h),
        funding_row("ETH", 0.15, -0.5, t0 + 4 * DAY_MS + 8 * h),
    ]
    acc.ledger = [{"time": t0 - 30 * DAY_MS, "hash": "0x" + "ab" * 32,
                   "delta": {"type": "deposit", "usdc": "20000.0"}}]
    btc_margin = 128.58975 + 0.015 * (61500 - 61000)
    btc_available = btc_margin - 0.015 * 61500 / 80
    cross_value = 3000.0 + 0.5 * (3000 - 2900) + 100 * (140 - 150)
    maintenance = 0.5 * 2900 / 50 + 100 * 140 / 40
    available = cross_value - maintenance
    acc.positions = [
        asset_position("BTC", 0.015, 61000.0, 61500.0, btc_margin,
                       _liq(61500.0, 1, btc_available, 0.015, 1 / 80), "isolated", 10, 40, -0.12),
        asset_position("ETH", -0.5, 3000.0, 2900.0, 0.5 * 2900 / 5,
                       _liq(2900.0, -1, available, 0.5, 1 / 50), "cross", 5, 25, 0.15),
        asset_position("SOL", 100, 150.0, 140.0, 100 * 140 / 10,
                       _liq(140.0, 1, available, 100, 1 / 40), "cross", 10, 20, -0.8),
    ]
    cross_used = 0.5 * 2900 / 5 + 100 * 140 / 10
    acc.cross = {"accountValue": _s(cross_value), "totalNtlPos": _s(1450 + 14000),
                 "totalRawUsd": _s(cross_value - (-1450 + 14000)),
                 "totalMarginUsed": _s(cross_used)}
    total = cross_value + btc_margin
    acc.summary = {"accountValue": _s(total), "totalNtlPos": _s(922.5 + 1450 + 14000),
                   "totalRawUsd": _s(total - (922.5 - 1450 + 14000)),
                   "totalMarginUsed": _s(cross_used + btc_margin)}
    acc.cross_maintenance = _s(maintenance)
    acc.withdrawable = _s(cross_value - cross_used)
    return acc


__all__ = ["ADDRESS", "FakeHyperliquid", "HyperliquidAccount", "asset_ctx", "asset_position",
           "fill", "funding_row", "sample_hyperliquid_account", "universe_asset"]
