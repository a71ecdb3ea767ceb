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

from leverage import journal
from leverage.errors import InputError, LeverageError
from leverage.journal import JournalPosition
from leverage.portfolio import account_ratio

from . import parity  # noqa: F401  (journal beside exchange: leverage_exchange.parity)
from .client import ExchangeError, call, connect, read_credentials, redirect
from .convert import OpenPosition, Rows, build_rows, row_tag, shared_id
from .fetch import Fetched, fetch_account, fetch_open, num, venue
from .parity import Parity
from .parity import parity as journal_parity
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


REBALANCE_UPDATED = ("qty", "entry_price", "mark_price", "margin", "margin_mode", "mmr",
                     "maint_amount", "exchange_liq_price", "liq_gap_cause")
"""The rebalance Positions cells a re-import rewrites in an existing row: the position's open
state as the exchange shows it. The id, symbol, side and contract name the position; the
targets and the priority are the trader's and are never written after the row is added."""


@dataclass
class ImportReport:
    exchange: str
    sheet: Any  # sheets_bridge.append.AppendReport
    open_positions: list[OpenPosition] = field(default_factory=list)
    reconciled: list[Reconciled] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    exchange_requests: int = 0
    parity: list[Parity] = field(default_factory=list)  # one per open position

    def __str__(self) -> str:
        lines = [f"{self.exchange}: {self.exchange_requests} exchange requests", str(self.sheet)]
        if self.parity:
            lines.append("Parity: the journal's replayed state beside the exchange's")
            lines += [f"  {p}" for p in self.parity]
        lines += reconcile_lines(self.reconciled)
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def _money(x: float | None) -> str:
    return "none" if x is None else f"{x:,.2f}"


def _percent(x: float) -> str:
    return f"{x:.2%}" if x == x else "none"


def reconcile_lines(rows: list[Reconciled]) -> list[str]:
    """The reconcile table: per open position our liquidation price, the exchange's, the
    gap ``(ours − theirs) / theirs`` and its cause."""
    if not rows:
        return ["no open positions"]
    head = f"{'position':<24} {'mode':<8} {'ours':>12} {'exchange':>12} {'gap':>8}  likely cause"
    lines = [head]
    for r in rows:
        p = r.position
        label = p.position_id or f"{p.market_id} {p.side}"
        gap = "" if r.gap is None else f"{r.gap:+.2%}"
        lines.append(f"{label:<24} {p.margin_mode:<8} {_money(r.ours):>12} "
                     f"{_money(r.theirs):>12} {gap:>8}  {r.cause}")
    return lines


def rebalance_rows(positions: list[OpenPosition], tiers: Mapping[str, Any],
                   reconciled: list[Reconciled] | None = None) -> list[dict]:
    """Rows of the rebalance workbook's Positions sheet for the open positions, with the
    exchange's liquidation price and the likely cause of a gap (the sync computes the gap).

    Each row's id is :func:`~leverage_exchange.convert.shared_id`: the position's journal id
    (:attr:`OpenPosition.position_id`), so the journal and the rebalance name one exchange
    position alike. Target leverage and target
    distance are left blank: the exchange's leverage setting is not a target the trader set,
    and a target nobody asked for would make the sheet suggest margin moves.
    """
    rows = []
    causes = {id(r.position): r.cause for r in reconciled or []}
    for p in positions:
        table = tiers.get(p.symbol)
        mmr, maint = (None, None)
        if table is not None:
            r, a, _ = table.lookup(p.notional)
            mmr, maint = float(r), float(a)
        rows.append({"position_id": shared_id(p),
                     "symbol": p.market_id, "side": p.side, "contract": p.contract,
                     "qty": p.qty, "entry_price": p.entry, "mark_price": p.mark,
                     "margin": p.margin if p.margin_mode == "isolated" else None,
                     "margin_mode": p.margin_mode, "mmr": mmr, "maint_amount": maint,
                     "target_leverage": None,
                     "exchange_liq_price": p.exchange_liq,
                     "liq_gap_cause": causes.get(id(p))})
    return rows


def account_figures(exchange: Any, got: Fetched) -> dict[str, float | None]:
    """The rebalance Account inputs the exchange states: ``wallet_balance`` (the cross wallet
    without isolated margin) and ``free_balance`` (what is free for margin moves), in USDT.

    Binance USDⓈ-M (``GET /fapi/v3/account``): ``totalCrossWalletBalance`` and
    ``availableBalance``. Bybit v5 unified and OKX v5: the USDT line of ccxt's
    ``parse_balance`` (Bybit ``walletBalance`` / ``availableToWithdraw``, OKX ``eq`` /
    ``availEq``); Bitget v2 ``accountEquity − unrealizedPL − isolatedMargin`` / ``available``;
    Gate v4 ``total − isolated_position_margin`` / ``available``. COIN-M keeps one wallet
    per coin: no single figure (None, the sheet keeps what it has). The cross wallet is the
    one the reconcile used (``got.wallet_balance``) when the fetch had it.

    An account the exchange liquidates on its ratio (Bybit's unified account in cross or
    portfolio margin, Binance portfolio margin) also gives ``account_equity``,
    ``account_maint`` (USD) and ``liq_threshold`` (equity ÷ maintenance at liquidation: 1
    Bybit, 1.05 Binance), from which the sheet shows the account ratio and ACCOUNT_SHOCK.
    """
    wallet, free = venue(exchange.id).balances(exchange, got.wallet_balance)
    return {"wallet_balance": num(wallet), "free_balance": num(free),
            # an account liquidated on its ratio (fetch: ``ratio_account``); None elsewhere
            # (the sheet keeps what it has)
            "account_equity": got.account_equity, "account_maint": got.account_maint,
            "liq_threshold": got.liq_threshold}


def _key_text(v: Any) -> str:
    return str(v if v is not None else "").strip().casefold()


def _rebalance_plan(rows: list[dict[str, Any]], renamed: dict[str, str],
                    notes: list[str]) -> Any:
    """The rebalance rows, each under the id of the workbook row already holding its exchange
    position: the same id, else an imported row (one with a reconcile cause) of the same
    symbol and side. ``renamed`` gets new id → workbook id; ``notes`` a line per imported
    row whose position is no longer open (left as it is: the trader removes it)."""

    def plan(existing: Mapping[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        held = existing["Positions"]
        ids = {_key_text(r.get("position_id")) for r in held}
        new_ids = {_key_text(r["position_id"]) for r in rows}
        # imported rows (they have a cause) not claimed by an id: each may hold a position
        # imported under another id (another start date)
        free = [r for r in held if _key_text(r.get("liq_gap_cause"))
                and _key_text(r.get("position_id")) not in new_ids | {""}]
        out = []
        for row in rows:
            row = dict(row)
            if _key_text(row["position_id"]) not in ids:
                same = next((r for r in free if _key_text(r.get("symbol")) ==
                             _key_text(row["symbol"]) and _key_text(r.get("side")) ==
                             _key_text(row["side"])), None)
                if same is not None:
                    free.remove(same)
                    renamed[row["position_id"]] = str(same["position_id"])
                    row["position_id"] = same["position_id"]
            out.append(row)
        notes.extend(f"{r['position_id']}: not open on the exchange any more; its row is left "
                     "as it is" for r in free)
        return {"Positions": out}

    return plan


def import_account(exchange: Any, backend: Any, since: str | date | datetime,
                   template: str | None = None, now_ms: int | None = None) -> ImportReport:
    """Fetch the account's history since ``since`` and bring the workbook up to it.

    Into a journal: Positions and Events rows (each event's reason keeps the exchange id, so
    a second import adds only what is new); a position the journal already holds (the same
    exchange position, entered at another start date) is continued, never added twice. Into
    a rebalance workbook: a Positions row per open position, under the journal's id; a row
    already there has its open state (``REBALANCE_UPDATED``) updated in place, and the
    Account sheet's wallet and free balance are the exchange's. One read and one write of
    the workbook, all or nothing. After it, ``parity`` holds one line per open position (the
    journal's replayed size, entry and margin beside the exchange's).

    ``now_ms``: the exchange time the account is read at (epoch ms); blank: the exchange's
    server time. A recorded account replayed later passes the time it was recorded at, so
    the exchange's history windows (Binance's 30 days of margin changes) are the recorded
    ones.
    """
    from leverage_sheets.append import append_rows
    from leverage_sheets.engine import detect_template

    since_ms = parse_since(since)
    if now_ms is not None and (isinstance(now_ms, bool) or not isinstance(now_ms, int)
                               or now_ms <= since_ms):
        raise InputError(f"now_ms must be epoch milliseconds after since ({since_ms}), "
                         f"got {now_ms!r}")
    template = template or detect_template(backend)
    before = _requests(exchange)
    got = fetch_account(exchange, since_ms, now_ms)
    built: dict[str, Any] = {}
    renamed: dict[str, str] = {}

    def journal_plan(existing: Mapping[str, list[dict[str, Any]]]) -> dict[str, list[dict]]:
        held_p, held_e = _filled(existing["Positions"]), _filled(existing["Events"])
        rows = built["rows"] = build_rows(got, held_p, held_e)
        new_p = _new(rows.positions, held_p, "Positions")
        new_e = _new([_inputs(e) for e in rows.events], held_e, "Events")
        built["journal"] = (held_p + new_p, held_e + new_e)
        return {"Positions": rows.positions, "Events": [_inputs(e) for e in rows.events]}

    if template == "journal":
        report = append_rows(backend, "journal", journal_plan, journal_key)
        rows = built["rows"]
        journal_p, journal_e = built["journal"]
    else:
        rows = build_rows(got)
        journal_p, journal_e = rows.positions, [_inputs(e) for e in rows.events]
    # the journal as it stands after the import, replayed, beside the exchange
    lines = journal_parity(_journal_positions(journal_p),
                           [{k: e.get(k) for k in journal.INPUT_COLUMNS} for e in journal_e],
                           rows.open_positions)
    reconciled = reconcile(got, rows.open_positions, lines)
    notes = list(rows.notes)
    if got.ratio_account:
        ratio = account_ratio(got.account_equity, got.account_maint, got.liq_threshold)
        notes.append(f"{got.ratio_account}; now account MM rate "
                     f"{_percent(ratio['account_mm_rate'])}, uniMMR {_percent(ratio['uni_mmr'])} "
                     f"(equity {_money(got.account_equity)}, maintenance "
                     f"{_money(got.account_maint)} USD)")
    if template != "journal":
        report = append_rows(backend, "rebalance",
                             _rebalance_plan(rebalance_rows(rows.open_positions, got.tiers,
                                                            reconciled), renamed, notes),
                             journal_key, update={"Positions": REBALANCE_UPDATED},
                             account=account_figures(exchange, got))
    for p in rows.open_positions:  # the reports name each position as the workbook does
        p.position_id = renamed.get(p.position_id, p.position_id)
    for line in lines:
        line.position_id = renamed.get(line.position_id or "", line.position_id)
    return ImportReport(exchange.id, report, rows.open_positions, reconciled, notes,
                        _requests(exchange) - before, lines)


def _journal_positions(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Positions rows the journal can replay: blank cells take the journal's defaults,
    a row the journal refuses (its events then show why) is left out of the parity."""
    out = []
    for r in rows:
        fields = {k: r[k] for k in journal.POSITION_COLUMNS
                  if r.get(k) is not None and str(r[k]).strip() != ""}
        try:
            JournalPosition.build(**fields)
        except LeverageError:
            continue
        out.append(fields)
    return out


def _inputs(row: Mapping[str, Any]) -> dict[str, Any]:
    """An import row without its private fields (``_t``, ``_key``)."""
    return {k: v for k, v in row.items() if not k.startswith("_")}


def _filled(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if any(v not in (None, "") for v in r.values())]


def _new(rows: list[dict[str, Any]], held: list[dict[str, Any]], title: str) -> list[dict]:
    """The rows ``append_rows`` adds: those whose key the workbook does not hold yet."""
    seen = {journal_key(title, r) for r in held} - {None}
    out = []
    for r in rows:
        k = journal_key(title, r)
        if k is None or k not in seen:
            out.append(r)
            if k is not None:
                seen.add(k)
    return out


def _requests(exchange: Any) -> int:
    return int(getattr(exchange, "_leverage_requests", 0))


__all__ = [
    "REBALANCE_UPDATED",
    "ExchangeError",
    "Fetched",
    "ImportReport",
    "InputError",
    "OpenPosition",
    "Parity",
    "Reconciled",
    "Rows",
    "account_figures",
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
    "reconcile_lines",
    "redirect",
]
