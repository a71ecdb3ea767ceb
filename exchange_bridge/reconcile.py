"""Our liquidation price beside the exchange's, for every open position, and why they differ.

Ours comes from the core under the exchange's own convention (``leverage.liq_price`` with
``exchange=`` for isolated margin, ``leverage.cross_liq_price`` for cross) with the tier table
the exchange returned today, from the journal's replayed state when the import gives it
(:mod:`leverage_exchange.parity`), else from the exchange's size, entry and isolated wallet.
A cause is named only where its evidence holds:

- ``no per-position liquidation price``: a cross position of an account the exchange
  liquidates on its ratio (Bybit's unified account in cross or portfolio margin, Binance
  portfolio margin) when the exchange gives it no price: nothing to compare with.
- ``match``: the gap is under 0.05 % of the price.
- ``journal differs from the exchange``: the replayed size, entry or margin is not the
  exchange's (the parity line says which and by how much).
- ``hedge leg``: a cross position whose symbol has BOTH hedge legs open (the exchange nets them).
- ``other cross positions``: cross margin shared with other open cross positions.
- ``stale tiers``: no live table; the cached one is older than 30 days.
- ``tier``: the two prices fall in different tiers of the table.
- ``fee``: the exchange's figure is ours with the market's taker fee counted as maintenance.
  (Bitget and Gate count it in their published forms: ours includes it, :func:`close_fee`.)
- otherwise ``unexplained``, with both numbers and the gap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import leverage as lv
from leverage import core
from leverage.conventions import CCXT_IDS, CONVENTIONS
from leverage.portfolio import liq_gap
from leverage.tiers import STALE_AFTER_DAYS, TierTable, cache_age_days, table_name

from .convert import OpenPosition
from .fetch import Fetched, venue

CONVENTION = CCXT_IDS  # ccxt id → the convention of its liquidation price
MATCH = 0.0005  # a gap under 0.05% of the price is a match


@dataclass
class Reconciled:
    position: OpenPosition
    ours: float | None
    theirs: float | None
    gap: float | None  # (ours − theirs) / theirs
    cause: str
    parity: Any = None  # the position's parity line, when the import gave one

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
            positions: list[OpenPosition], fee_rate: float = 0.0) -> float | None:
    """The core's liquidation price for ``p`` (None: there is none); a cross position shares
    the account's cross wallet with the other cross ``positions``."""
    convention = CONVENTION.get(got.exchange, "binance")
    if p.margin_mode == "isolated":
        value = lv.liq_price(p.side, p.qty, p.entry, p.margin, contract=p.contract, tiers=table,
                             exchange=convention, fee_rate=fee_rate)
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
        shared = (got.wallet_balance or 0.0) + upnl - maint
        if fee_rate and CONVENTIONS[convention].fee_counts:
            # Bitget's and Gate's cross forms: the isolated one, with the fee, on the shared
            # margin (the core's cross_liq_price is Binance's, without a fee term)
            value = lv.liq_price(p.side, p.qty, p.entry, shared, contract=p.contract,
                                 tiers=table, exchange=convention, fee_rate=fee_rate)
        else:
            value = lv.cross_liq_price(p.side, p.qty, p.entry, got.wallet_balance or 0.0, upnl,
                                       maint, contract=p.contract, tiers=table)
    value = float(value)
    return value if math.isfinite(value) else None


def _as_journal(p: OpenPosition, line: Any) -> OpenPosition:
    """``p`` with the journal's replayed size, entry and margin (when the parity line has them)."""
    if line is None or line.qty is None:
        return p
    margin = line.margin if p.margin_mode == "isolated" else p.margin
    return replace(p, qty=line.qty, entry=line.entry, margin=margin)


def reconcile(got: Fetched, positions: list[OpenPosition],
              parity: list[Any] | None = None) -> list[Reconciled]:
    """One line per open position: ours, theirs, the gap and its cause (with evidence).

    ``parity``: the import's :func:`leverage_exchange.parity.parity` lines; ours is then the
    liquidation price of the journal's replayed state."""
    lines = {id(x.position): x for x in parity or []}
    states = [_as_journal(p, lines.get(id(p))) for p in positions]
    out = []
    for p, q in zip(positions, states, strict=True):
        table, age = _table(got, p.symbol)
        theirs = p.exchange_liq
        line = lines.get(id(p))
        try:
            ours = our_liq(got, q, table, states, close_fee(got, q))
        # a convention the core does not publish (Bybit inverse), or a position the core
        # calls liquidated at once (margin below maintenance at entry): that row only
        except lv.LeverageError as exc:
            out.append(Reconciled(p, None, theirs, None, f"not computed: {exc}", line))
            continue
        gap = liq_gap(ours, theirs)
        out.append(Reconciled(p, ours, theirs, gap, _cause(got, q, table, age, ours, theirs, gap,
                                                           states, line), line))
    return out


def close_fee(got: Fetched, p: OpenPosition) -> float:
    """The close-fee rate the exchange's own liquidation price counts, where its fetch module
    names one (``close_fee_rate``: Bitget's and Gate's listed taker rate of the contract);
    0 elsewhere (OKX's fee is then found as a cause, ``fee``)."""
    rate = getattr(venue(got.exchange), "close_fee_rate", None)
    market = got.markets.get(p.symbol)
    return float(rate(market) or 0.0) if rate is not None and market is not None else 0.0


def _fee_explains(got: Fetched, p: OpenPosition, table: TierTable | None,
                  positions: list[OpenPosition], theirs: float) -> float | None:
    """The market's taker fee rate when counting it as maintenance gives the exchange's figure
    (within the match), else None."""
    rate = (got.markets.get(p.symbol) or {}).get("taker")
    if not rate or p.margin_mode != "isolated":
        return None
    try:
        with_fee = our_liq(got, p, table, positions, float(rate))
    except lv.LeverageError:
        return None
    if with_fee is None:
        return None
    g = liq_gap(with_fee, theirs)
    return float(rate) if g is not None and abs(g) < MATCH else None


def on_ratio_cause(got: Fetched) -> str:
    """The cause of a cross position in an account the exchange liquidates on its ratio
    (Bybit unified cross / portfolio margin, Binance portfolio margin) that has no
    liquidation price of its own."""
    return (f"no per-position liquidation price: the account ratio decides ({got.ratio_account}"
            "; see the Account sheet's account ratio and ACCOUNT_SHOCK); the exchange shows none")


def _cause(got: Fetched, p: OpenPosition, table: TierTable | None, age: int | None,
           ours: float | None, theirs: float | None, gap: float | None,
           positions: list[OpenPosition], line: Any = None) -> str:
    if p.margin_mode != "isolated" and got.ratio_account and theirs is None:
        return on_ratio_cause(got)
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
    if line is not None and line.gaps:
        return "journal differs from the exchange: " + "; ".join(line.gaps)
    if p.margin_mode != "isolated" and p.hedged and p.legs_open > 1:
        return "hedge leg: both legs of the symbol are open and the exchange nets them in " \
               "cross margin"
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
    rate = _fee_explains(got, p, table, positions, theirs)
    if rate is not None:
        return f"fee: the exchange counts the taker fee ({rate:.4%}) to close as maintenance"
    return (f"unexplained: ours {ours:,.2f}, the exchange's {theirs:,.2f}, gap "
            f"{(gap or 0):+.3%}")
