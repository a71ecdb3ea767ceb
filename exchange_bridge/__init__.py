"""Import an exchange account's positions and history into the journal, and reconcile
liquidation prices with the exchange's, through ccxt (the ``[exchange]`` extra).

    from leverage_exchange import connect, import_account, read_credentials
    from leverage_sheets import open_local
    ex = connect("binanceusdm", read_credentials())
    print(import_account(ex, open_local("journal.xlsx"), since="2024-01-01"))

ccxt is imported only when a client is made (:func:`connect`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from leverage.errors import InputError

from . import parity  # noqa: F401  (journal beside exchange: leverage_exchange.parity)
from .client import ExchangeError, call, connect, read_credentials, redirect
from .convert import OpenPosition, Rows, build_rows, row_tag
from .fetch import Fetched, fetch_account, fetch_open
from .reconcile import Reconciled, reconcile


def parse_since(value: str | date | datetime) -> int:
    """A start date (``2024-01-01``, UTC) as epoch milliseconds."""
    if isinstance(value, datetime):
        when = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, date):
        when = datetime(value.year, value.month, value.day, tzinfo=UTC)
    else:
        try:
            when = datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise InputError(f"since must be a date like 2024-01-01, got {value!r}") from None
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
    ms = int(when.timestamp() * 1000)
    if ms > int(datetime.now(UTC).timestamp() * 1000):
        raise InputError(f"since must not be in the future, got {value!r}")
    return ms


def journal_key(title: str, row: Mapping[str, Any]) -> str | None:
    """How an imported row is recognised in the journal: a position by its id, an event by
    the exchange id in its reason."""
    if title == "Positions":
        pid = str(row.get("position_id") or "").strip().casefold()
        return pid or None
    return row_tag(row.get("reason"))


@dataclass
class ImportReport:
    exchange: str
    sheet: Any  # sheets_bridge.append.AppendReport
    open_positions: list[OpenPosition] = field(default_factory=list)
    reconciled: list[Reconciled] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    exchange_requests: int = 0

    def __str__(self) -> str:
        lines = [f"{self.exchange}: {self.exchange_requests} exchange requests", str(self.sheet)]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def rebalance_rows(positions: list[OpenPosition], tiers: Mapping[str, Any],
                   reconciled: list[Reconciled] | None = None) -> list[dict]:
    """Rows of the rebalance workbook's Positions sheet for the open positions, with the
    exchange's liquidation price and the likely cause of a gap (the sync computes the gap)."""
    rows = []
    causes = {id(r.position): r.cause for r in reconciled or []}
    for p in positions:
        table = tiers.get(p.symbol)
        mmr, maint = (None, None)
        if table is not None:
            r, a, _ = table.lookup(p.notional)
            mmr, maint = float(r), float(a)
        rows.append({"position_id": p.position_id or f"{p.market_id}-{p.side[0].upper()}",
                     "symbol": p.market_id, "side": p.side, "contract": p.contract,
                     "qty": p.qty, "entry_price": p.entry, "mark_price": p.mark,
                     "margin": p.margin if p.margin_mode == "isolated" else None,
                     "margin_mode": p.margin_mode, "mmr": mmr, "maint_amount": maint,
                     # a first target: the exchange's leverage setting (the trader edits it)
                     "target_leverage": p.leverage,
                     "exchange_liq_price": p.exchange_liq,
                     "liq_gap_cause": causes.get(id(p))})
    return rows


def import_account(exchange: Any, backend: Any, since: str | date | datetime,
                   template: str | None = None) -> ImportReport:
    """Fetch the account's history since ``since`` and append what the workbook lacks.

    Into a journal: Positions and Events rows (each event's reason keeps the exchange id, so
    a second import adds only what is new). Into a rebalance workbook: a Positions row per
    open position not there yet. One read and one write of the workbook, all or nothing.
    """
    from leverage_sheets.append import append_rows
    from leverage_sheets.engine import detect_template

    since_ms = parse_since(since)
    template = template or detect_template(backend)
    before = _requests(exchange)
    got = fetch_account(exchange, since_ms) if template == "journal" else fetch_open(exchange)
    rows = build_rows(got)
    reconciled = reconcile(got, rows.open_positions)
    if template == "journal":
        clean = [{k: v for k, v in e.items() if not k.startswith("_")} for e in rows.events]
        report = append_rows(backend, "journal", {"Positions": rows.positions, "Events": clean},
                             journal_key)
    else:
        report = append_rows(backend, "rebalance",
                             {"Positions": rebalance_rows(rows.open_positions, got.tiers,
                                                          reconciled)},
                             journal_key)
    return ImportReport(exchange.id, report, rows.open_positions, reconciled, rows.notes,
                        _requests(exchange) - before)


def _requests(exchange: Any) -> int:
    return int(getattr(exchange, "_leverage_requests", 0))


__all__ = [
    "ExchangeError",
    "Fetched",
    "ImportReport",
    "InputError",
    "OpenPosition",
    "Reconciled",
    "Rows",
    "build_rows",
    "call",
    "connect",
    "fetch_account",
    "fetch_open",
    "import_account",
    "journal_key",
    "parse_since",
    "read_credentials",
    "rebalance_rows",
    "reconcile",
    "redirect",
]
