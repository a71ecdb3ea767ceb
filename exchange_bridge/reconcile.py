"""Our liquidation price beside the exchange's, for every open position, and why they differ.

Ours comes from the core under the exchange's own convention (``leverage.liq_price`` with
``exchange=`` for isolated margin, ``leverage.cross_liq_price`` for cross) with the tier table
the exchange returned today. The likely cause of a gap is named from what we know:

- ``hedge leg``: a hedge-mode leg in cross margin; the exchange nets both legs' margin.
- ``other cross positions``: cross margin shared with other positions, whose PnL moves.
- ``stale tiers``: no live table; the cached one is older than 30 days.
- ``tier``: the two prices fall in different tiers of the table.
- ``fee``: a small gap (< 1%): the exchange keeps a closing fee or rounds its figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import leverage as lv
from leverage import core
from leverage.portfolio import liq_gap
from leverage.tiers import STALE_AFTER_DAYS, TierTable, cache_age_days, table_name

from .convert import OpenPosition
from .fetch import Fetched

CONVENTION = {"binanceusdm": "binance", "binancecoinm": "binance", "bybit": "bybit", "okx": "okx"}
MATCH = 0.001  # a gap under 0.1% of the price is a match
SMALL = 0.01


@dataclass
class Reconciled:
    position: OpenPosition
    ours: float | None
    theirs: float | None
    gap: float | None  # (ours − theirs) / theirs
    cause: str

    def as_row(self) -> dict[str, Any]:
        p = self.position
        return {"position_id": p.position_id, "symbol": p.market_id, "side": p.side,
                "margin_mode": p.margin_mode, "qty": p.qty, "mark": p.mark,
                "notional": p.notional, "ours": self.ours, "theirs": self.theirs,
                "gap": self.gap, "cause": self.cause}


def _table(got: Fetched, symbol: str) -> tuple[TierTable | None, int | None]:
    if symbol in got.tiers:
        return got.tiers[symbol], None
    name = table_name(got.exchange, symbol)
    try:
        return lv.get_tier_table(name), cache_age_days(name)
    except lv.InputError:
        return None, None


def our_liq(got: Fetched, p: OpenPosition, table: TierTable | None,
            positions: list[OpenPosition]) -> float | None:
    """The core's liquidation price for ``p`` (None: there is none); a cross position shares
    the account's cross wallet with the other cross ``positions``."""
    convention = CONVENTION.get(got.exchange, "binance")
    if p.margin_mode == "isolated":
        value = lv.liq_price(p.side, p.qty, p.entry, p.margin, contract=p.contract, tiers=table,
                             exchange=convention)
    elif got.wallet_balance is None:
        return None  # no cross wallet figure (COIN-M keeps one per coin)
    else:
        others = [o for o in positions if o is not p and o.margin_mode != "isolated"]
        upnl = sum(core.unrealized_pnl(o.side, o.qty, o.entry, o.mark, o.contract) for o in others)
        maint = 0.0
        for o in others:
            t, _ = _table(got, o.symbol)
            if t is not None:
                r, a, _ = t.lookup(o.notional)
                maint += o.notional * float(r) - float(a)
            else:
                maint += o.notional * core.DEFAULT_MMR
        value = lv.cross_liq_price(p.side, p.qty, p.entry, got.wallet_balance or 0.0, upnl, maint,
                                   contract=p.contract, tiers=table)
    value = float(value)
    return value if math.isfinite(value) else None


def reconcile(got: Fetched, positions: list[OpenPosition]) -> list[Reconciled]:
    """One line per open position: ours, theirs, the gap and its likely cause."""
    out = []
    for p in positions:
        table, age = _table(got, p.symbol)
        theirs = p.exchange_liq
        try:
            ours = our_liq(got, p, table, positions)
        # a convention the core does not publish (Bybit inverse), or a position the core
        # calls liquidated at once (margin below maintenance at entry): that row only
        except lv.LeverageError as exc:
            out.append(Reconciled(p, None, theirs, None, f"not computed: {exc}"))
            continue
        gap = liq_gap(ours, theirs)
        out.append(Reconciled(p, ours, theirs, gap, _cause(got, p, table, age, ours, theirs, gap,
                                                           positions)))
    return out


def _cause(got: Fetched, p: OpenPosition, table: TierTable | None, age: int | None,
           ours: float | None, theirs: float | None, gap: float | None,
           positions: list[OpenPosition]) -> str:
    if p.margin_mode != "isolated" and got.wallet_balance is None:
        return "not computed: no single cross wallet balance (one per coin on COIN-M)"
    if ours is None and theirs is None:
        return "match (neither has a liquidation price)"
    if theirs is None:
        return "the exchange shows none (fully margined, or a cross account that covers it)"
    if ours is None:
        return "we find none: the margin covers a move to zero"
    if gap is not None and abs(gap) < MATCH:
        return "match"
    if p.margin_mode != "isolated" and p.hedged:
        return "hedge leg: the exchange nets both legs of the symbol in cross margin"
    if p.margin_mode != "isolated" and any(
        o is not p and o.margin_mode != "isolated" for o in positions
    ):
        return "other cross positions share the margin"
    if age is not None and age > STALE_AFTER_DAYS:
        return f"stale tiers (fetched {age} days ago)"
    if table is not None and int(table.index(p.qty * ours if p.contract == "linear"
                                             else p.qty / ours)) != int(
            table.index(p.qty * theirs if p.contract == "linear" else p.qty / theirs)):
        return "tier: the two prices fall in different tiers"
    if gap is not None and abs(gap) < SMALL:
        return "fee: the exchange keeps a closing fee or rounds"
    return "other: margin moved since the exchange's figure, or a rule we do not model"
