"""Does the journal reproduce the exchange? For each open exchange position, the size, entry
and margin the journal's replay ends with, beside the exchange's.

Equal means equal within the exchange's own rounding: size exactly (contracts × contract
size; a float's last bit aside), entry within half the market's price tick, isolated margin
within 0.01 of a stablecoin (USDT, USD) or 1e-8 of a coin (a satoshi: COIN-M margins are a few
thousandths of a BTC, where 0.01 would hide everything). A cross position's margin is the
account's cross wallet, not the position's, so only its size and entry are compared.

A pure function of (journal positions, journal events, exchange open positions): it works on
the rows an import just built together with what the workbook already held.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from leverage import journal

from .convert import OpenPosition, match_open

QTY_REL = 1e-9  # "exact" for floats: contracts × contract size agree to the last bits
COIN_MARGIN = 1e-8


@dataclass
class Parity:
    """One open exchange position beside the journal's replayed state.

    ``gaps``: one line per field that differs (``"margin: journal 47.67, exchange 47.45,
    gap +0.22 USDT"``); empty when the journal matches."""

    position: OpenPosition
    position_id: str | None
    qty: float | None = None
    entry: float | None = None
    margin: float | None = None
    gaps: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.position_id is not None and not self.gaps

    def __str__(self) -> str:
        p = self.position
        head = f"{self.position_id or p.market_id} {p.side}"
        if self.ok:
            return (f"{head}: journal = exchange (size {_g(p.qty)}, entry {_g(p.entry)}"
                    + (f", margin {_g(p.margin)} {p.margin_currency}".rstrip()
                       if p.margin_mode == "isolated" else "") + ")")
        return f"{head}: " + "; ".join(self.gaps)


def _g(x: float | None) -> str:
    return "none" if x is None else f"{x:,.10g}"


def margin_tolerance(p: OpenPosition) -> float:
    """0.01 of a stablecoin margin (the cent exchanges show), 1e-8 of a coin margin.

    >>> from leverage_exchange.convert import OpenPosition
    >>> usdt = OpenPosition("", "", "", "long", "linear", 1, 1, 1, 1, 1, "isolated", False,
    ...                     None, None, margin_currency="USDT")
    >>> margin_tolerance(usdt)
    0.01
    """
    return COIN_MARGIN if p.contract == "inverse" else 0.01


def replayed_state(positions: Sequence[Mapping[str, Any]], events: Sequence[Mapping[str, Any]],
                   result: journal.JournalResult | None = None
                   ) -> dict[str, tuple[float, float, float]]:
    """Position id (casefolded) → (qty, entry, margin) after its latest applied event, for
    the journal's positions still open. The journal shows no entry column, so the entry comes
    from the row's unrealized PnL at its mark: linear ``entry = mark − upnl / (s·qty)``,
    inverse ``1/entry = 1/mark + upnl / (s·qty)``."""
    result = result or journal.replay(positions, events)
    sides = {str(p.get("position_id") or "").strip().casefold():
             (str(p.get("side") or "").strip().lower(), str(p.get("contract") or "linear"))
             for p in positions}
    last: dict[str, tuple[Any, int]] = {}
    for i, e in enumerate(events):
        pid = str(e.get("position_id") or "").strip().casefold()
        when = result.dates[i]
        if not result.applied[i] or when is None:
            continue
        if pid not in last or (when, i) >= last[pid]:
            last[pid] = (when, i)
    out: dict[str, tuple[float, float, float]] = {}
    cols = result.columns
    for pid, (_, i) in last.items():
        qty = float(cols["qty_open"][i])
        if not qty > 0:
            continue
        side, contract = sides.get(pid, ("long", "linear"))
        s = -1.0 if side.startswith("s") else 1.0
        mark, upnl = float(cols["mark_price"][i]), float(cols["unrealized_pnl"][i])
        if contract.startswith("inv"):
            entry = 1.0 / (1.0 / mark + upnl / (s * qty))
        else:
            entry = mark - upnl / (s * qty)
        out[pid] = (qty, entry, float(cols["margin"][i]))
    return out


def parity(journal_positions: Sequence[Mapping[str, Any]],
           journal_events: Sequence[Mapping[str, Any]],
           open_positions: Sequence[OpenPosition]) -> list[Parity]:
    """One :class:`Parity` per open exchange position: the journal position it is (its
    ``position_id``, else the journal's open position of the same symbol and side) and the
    gaps between the journal's replayed size, entry and margin and the exchange's.

    ``journal_positions``/``journal_events``: rows as the journal sheets hold them (what the
    workbook had plus what the import adds); replayed with :func:`leverage.journal.replay`.

    Worked example: opened 0.01 BTC at 60,000 on 60 USDT, 0.3 funding paid (taken from the
    margin); the exchange shows 0.01 at 60,000 with a 59.70 wallet, then 59.50:

    >>> pos = [{"position_id": "B", "symbol": "BTCUSDT", "side": "long"}]
    >>> ev = [{"date": "2026-01-01", "position_id": "B", "event": "open", "price": 60_000,
    ...        "qty": 0.01, "amount": 60},
    ...       {"date": "2026-01-02", "position_id": "B", "event": "funding", "amount": -0.3}]
    >>> ex = OpenPosition("B", "BTC/USDT:USDT", "BTCUSDT", "long", "linear", 0.01, 60_000,
    ...                   61_000, 610, 59.7, "isolated", False, None, 10, 0.1, "USDT")
    >>> parity(pos, ev, [ex])[0].ok
    True
    >>> ex.margin = 59.5
    >>> print(parity(pos, ev, [ex])[0])
    B long: margin: journal 59.7, exchange 59.5, gap +0.2 USDT
    """
    positions = [p for p in journal_positions if str(p.get("position_id") or "").strip()]
    events = list(journal_events)
    state = replayed_state(positions, events) if positions else {}
    known = {str(p.get("position_id")).strip().casefold() for p in positions}
    out = []
    for p in open_positions:
        pid = p.position_id if p.position_id and p.position_id.casefold() in known else None
        if pid is None:
            found = match_open(positions, events, p.market_id, p.side)
            pid = found.position_id if found else None
        line = Parity(p, pid)
        out.append(line)
        if pid is None:
            line.gaps.append(f"no open journal position of {p.market_id} {p.side}")
            continue
        got = state.get(pid.casefold())
        if got is None:
            line.gaps.append("the journal's replay does not leave it open")
            continue
        line.qty, line.entry, line.margin = got
        if abs(line.qty - p.qty) > QTY_REL * max(1.0, p.qty):
            line.gaps.append(f"size: journal {_g(line.qty)}, exchange {_g(p.qty)}, gap "
                             f"{line.qty - p.qty:+.10g}")
        tick = p.price_tick or 0.0
        if abs(line.entry - p.entry) > tick / 2 + 1e-9 * p.entry:
            line.gaps.append(f"entry: journal {_g(line.entry)}, exchange {_g(p.entry)}, gap "
                             f"{line.entry - p.entry:+.10g} (tick {_g(tick or None)})")
        if p.margin_mode == "isolated" and abs(line.margin - p.margin) > margin_tolerance(p) * (
                1 + 1e-9):
            line.gaps.append(f"margin: journal {_g(line.margin)}, exchange {_g(p.margin)}, gap "
                             f"{line.margin - p.margin:+.10g} {p.margin_currency}".rstrip())
        if not math.isfinite(line.entry):
            line.gaps.append("entry: the journal's is not a number")
    return out


__all__ = ["Parity", "margin_tolerance", "parity", "replayed_state"]
