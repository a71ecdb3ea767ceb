"""``leverage demo``: the main job end to end on the local embedded backend.

1. Builds both ready-made workbooks with their worked samples (`templates`), in both formula
   modes: plain spreadsheet formulas (open anywhere) and Excel add-in formulas.
2. Lays the same samples into local workbooks and syncs them, exactly as `leverage sheets sync`
   would a Google spreadsheet (the local .xlsx is the embedded default backend).
3. Imports a recorded Binance USDⓈ-M account through ccxt from a recorded-exchange server on
   127.0.0.1 (no account, no network): its history into the journal, its open positions (under the
   journal's ids) and its wallet into a blank rebalance workbook with the reconcile column
   (our liquidation price beside the exchange's), and checks that the journal reproduces the
   account: its replayed size, entry and margin beside the exchange's (parity).
4. Watches that account for 24 one-minute cycles of accelerated fake time while BTCUSDT's
   mark slides towards its liquidation, gaps through the journal's buffer, recovers and the
   exchange goes quiet (``leverage watch``, into a throw-away copy of the rebalance workbook,
   with the journal's own Rules), and prints the alerts it would send.
5. Reads back what the sync wrote and prints what a trader checks: each position's leverage,
   liquidation price and distance, the margin moves to its target, the reconcile column, each
   closed position's net PnL (fees included), the journal's rule breaks and the Summary's
   totals per margin currency; draws effective leverage and liquidation distance over time.

Every file is written byte-for-byte the same on each run (fixed workbook timestamps, fixed
PNG metadata), so running it twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import os
import re
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import openpyxl

import leverage_templates as templates
from leverage import layout
from leverage.errors import InputError
from leverage_sheets import SyncReport, init, open_local, sync

FIXED_TIME = dt.datetime(2024, 1, 1)  # stamped into every file so reruns are identical
# the recorded exchange account: its history ends on this day, the import starts at FIXED_TIME
RECORDED_UNTIL = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "demo",
        help="build both workbooks, sync them locally and print a trader's report",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    p.add_argument("--out", default="out", help="folder for the workbooks and chart (out/)")
    p.set_defaults(run=lambda args: run(Path(args.out)))


def run(out: Path, echo: Any = print) -> int:
    """Run the demo into ``out``; returns the process exit code."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out must be a folder, got the file {str(out)!r}")
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for mode, suffix in (("native", ""), ("udf", "-excel-addin")):
        written.append(templates.build_journal(out / f"journal{suffix}.xlsx", mode=mode))
        written.append(templates.build_rebalance(out / f"rebalance{suffix}.xlsx", mode=mode))
    reports: dict[str, SyncReport] = {}
    synced: dict[str, Path] = {}
    for template in ("journal", "rebalance"):
        path = out / f"{template}-synced.xlsx"
        path.unlink(missing_ok=True)  # start from the sample each run
        backend = open_local(path)
        init(backend, template, sample=True)
        reports[template] = sync(backend, template)
        synced[template] = path
        written.append(path)
    exchange_book = out / "rebalance-exchange.xlsx"
    imported = import_recorded(synced["journal"], exchange_book)
    if exchange_book.exists():
        written.append(exchange_book)
    for path in written:
        make_reproducible(path)
    chart = out / "journal-chart.png"
    events = read_journal(synced["journal"])
    draw_chart(events, chart)
    written.append(chart)

    echo("leverage demo: the main job on the local embedded backend (no Google account needed)")
    echo("")
    for template, report in reports.items():
        echo(f"  sync {synced[template].name}: {report}")
    echo("")
    for line in imported:
        echo(line)
    echo("")
    if exchange_book.exists():
        for line in watch_recorded(synced["journal"], exchange_book):
            echo(line)
        echo("")
    for line in portfolio_lines(synced["rebalance"]):
        echo(line)
    echo(tier_line())
    echo("")
    if exchange_book.exists():
        for line in portfolio_lines(exchange_book):
            echo(line)
        echo("")
        for line in reconcile_lines(exchange_book):
            echo(line)
    echo("")
    cross = set()
    if exchange_book.exists():
        cross = {str(r["position_id"]) for r in _rows(exchange_book, layout.REBALANCE_POSITIONS)
                 if r.get("margin_mode") == "cross"}
    for line in journal_lines(events, cross):
        echo(line)
    echo("")
    for line in summary_lines(synced["journal"]):
        echo(line)
    echo("")
    echo(f"Files in {out}/:")
    for path in written:
        echo(f"  {path.name:<32} {describe(path)}")
    return 0


def tier_line() -> str:
    """One rebalance row with its Maint. margin rate left blank: the rate comes from its
    Symbol's tier (leverage.tiers.symbol_rate), as in the workbooks and the sync."""
    from leverage.portfolio import rebalance
    from leverage.tiers import symbol_table, table_date

    row = {"position_id": "SOL-L", "symbol": "SOLUSDT", "side": "long", "qty": 400,
           "entry_price": 150, "mark_price": 150, "margin": 6_000}
    table = symbol_table(row["symbol"])
    result = rebalance([row], 0.0, 0.0)
    notional = row["qty"] * row["entry_price"]
    if table is None:
        return "  Rate from the Symbol: no table for SOLUSDT"
    mmr, amount, _ = table.lookup(notional)
    k = int(table.index(notional)) + 1
    return (f"  Rate from the Symbol: SOL-L (SOLUSDT, 400 @ 150, rate left blank) uses "
            f"{table.name} tier {k}: {float(mmr):.2%} less {float(amount):,.2f} at "
            f"{notional:,.0f} notional (table dated {table_date(table.name)}); liq. price "
            f"{result.columns['liq_price'][0]:,.2f}")


def import_recorded(journal: Path, rebalance: Path) -> list[str]:
    """``leverage exchange import`` of a recorded Binance USDⓈ-M account, served on
    127.0.0.1 (real ccxt, no network, no key of anyone's): its history into the synced
    ``journal``, its open positions and wallet into a new blank ``rebalance`` workbook.
    Returns the lines to print: what each import wrote, the parity of the journal with the
    exchange, the notes; a missing ccxt is said, not fatal."""
    try:
        import ccxt  # noqa: F401
    except ImportError:
        return ["Exchange import: skipped (pip install 'leverage-toolkit[exchange]' for ccxt)"]
    import leverage_exchange as xb
    from leverage_exchange import recorded_exchange

    recorded = int(RECORDED_UNTIL.timestamp() * 1000)
    account = recorded_exchange.sample_account(recorded)
    creds = {"apiKey": recorded_exchange.API_KEY, "secret": recorded_exchange.API_SECRET}
    lines = ["Exchange import: a recorded Binance USDⓈ-M account, served on 127.0.0.1 through "
             "ccxt (no account needed)"]
    rebalance.unlink(missing_ok=True)  # a blank workbook each run: the Account from the exchange
    backend = open_local(rebalance)
    init(backend, "rebalance")
    with recorded_exchange.FakeBinanceFutures(account) as server:
        for path, book, template in ((journal, open_local(journal), "journal"),
                                     (rebalance, backend, "rebalance")):
            exchange = xb.connect("binanceusdm", creds, api_url=server.url, rate_limit_ms=1)
            # read at the time it was recorded: its history windows are the recorded ones
            report = xb.import_account(exchange, book, FIXED_TIME.date(), template,
                                       now_ms=recorded)
            added = ", ".join(f"{n} {t}" for t, n in report.sheet.appended.items() if n)
            lines.append(f"  into {path.name}: {report.exchange_requests} exchange "
                         f"requests, added {added or 'nothing'}")
            lines += [f"  Account {k}: {_num(new, ',.2f')} USDT (the exchange's)"
                      for k, (_, new) in report.sheet.account.items()]
            if template == "journal":  # what the journal cannot express, said not guessed
                lines.append("  Parity: the journal's replayed state beside the exchange's")
                lines += [f"    {p}" for p in report.parity]
                lines += [f"  note: {n}" for n in report.notes]
    return lines


def watch_recorded(journal: Path, rebalance: Path, cycles: int = 24) -> list[str]:
    """``leverage watch`` over the recorded account, in fake time (a minute a cycle, no
    wait): BTCUSDT's mark follows ``recorded_watch.towards_liquidation``, the alerts follow
    the Rules of ``journal`` and go into the lines returned (as the terminal channel would
    print them). It writes into a temporary copy of ``rebalance``: the demo's files stay as
    they are."""
    try:
        import ccxt  # noqa: F401
    except ImportError:
        return ["Watch: skipped (pip install 'leverage-toolkit[exchange]' for ccxt)"]
    import shutil
    import tempfile

    import leverage_exchange as xb
    from leverage_exchange import recorded_exchange, recorded_watch
    from leverage_exchange.watch import Watcher, rules_from_workbook

    start = RECORDED_UNTIL
    now = [start]

    class Printed:  # the alerts as lines, in the shape of leverage_exchange.notify.Channels
        def __init__(self) -> None:
            self.lines: list[str] = []

        def send(self, alert: Any) -> list[str]:
            self.lines.append(f"  {alert.at:%H:%M} [{alert.kind}] {alert.title}")
            self.lines += [f"      {line}" for line in alert.body.splitlines()]
            return []

        def check(self) -> None:
            return None

        def describe(self) -> list[str]:
            return ["demo"]

    def sleep(seconds: float) -> None:
        now[0] += dt.timedelta(seconds=seconds)

    recorded = int(start.timestamp() * 1000)
    script = recorded_watch.towards_liquidation()
    creds = {"apiKey": recorded_exchange.API_KEY, "secret": recorded_exchange.API_SECRET}
    rule = rules_from_workbook(open_local(journal))
    out = Printed()
    with tempfile.TemporaryDirectory() as tmp, recorded_watch.ScriptedBinance(
            recorded_watch.watch_account(recorded), script,
            step=lambda: int((now[0] - start).total_seconds() // 60)) as server:
        copy = Path(tmp) / rebalance.name
        shutil.copyfile(rebalance, copy)
        exchange = xb.connect("binanceusdm", creds, api_url=server.url, rate_limit_ms=1)
        watcher = Watcher(exchange, open_local(copy), out, rules=rule, interval=60,
                          stale_after=3, clock=lambda: now[0], sleep=sleep)
        reports = watcher.run(cycles)
    lines = [f"Watch: {cycles} one-minute cycles of the recorded account in fake time "
             f"(`leverage watch`), the journal's Rules (min_liq_distance "
             f"{rule.min_liq_distance:.0%}, max_leverage {rule.max_leverage:g}x); BTCUSDT's "
             "mark drifts from 61,000 to 58,500, gaps to 55,000, slides to 54,000, recovers "
             "to 60,000, then the exchange does not answer for 6 cycles",
             f"  {sum(r.exchange_requests for r in reports)} exchange requests, "
             f"{sum(1 for r in reports if r.cells_written)} cycles wrote the sheet; "
             "the alerts it would send:"]
    return lines + (out.lines or ["  none"])


def reconcile_lines(path: Path) -> list[str]:
    """The reconcile column of the imported positions, read back from the workbook."""
    rows = [r for r in _rows(path, layout.REBALANCE_POSITIONS)
            if r.get("liq_gap_cause") or r.get("exchange_liq_price")]
    head = f"{'position':<16}{'mode':<10}{'our liq.':>11}{'exchange':>11}{'gap':>9}  likely cause"
    lines = [f"Reconcile ({path.name}): our liquidation price beside the exchange's",
             head, "-" * len(head)]
    for r in rows:
        gap = r.get("liq_gap")
        if isinstance(gap, float) and abs(gap) < 5e-5:
            gap = 0.0  # a match to the cent prints +0.00%, never -0.00%
        lines.append(
            f"{r['position_id']!s:<16}{r['margin_mode']!s:<10}"
            f"{_num(r.get('liq_price'), ',.2f'):>11}{_num(r.get('exchange_liq_price'), ',.2f'):>11}"
            f"{_num(gap, '+.2%', ''):>9}  {r.get('liq_gap_cause') or ''}".rstrip()
        )
    return lines


def describe(path: Path) -> str:
    name = path.name
    if name.endswith(".png"):
        return "effective leverage and liquidation distance over time"
    if "exchange" in name:
        return "portfolio rebalance of the recorded exchange account (imported)"
    kind = "trading journal" if name.startswith("journal") else "portfolio rebalance"
    if "synced" in name:
        return f"{kind}, values written by the sync (as in Google Sheets)"
    if "excel-addin" in name:
        return f"{kind}, formulas call the Excel add-in (=LIQ_PRICE(...))"
    return f"{kind}, plain formulas: opens and computes in any spreadsheet app"


# ---------------------------------------------------------------- reading back
def _rows(path: Path, sheet: layout.Sheet) -> list[dict[str, Any]]:
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        ws = book[sheet.title]
        keys = sheet.keys()
        out = []
        first = sheet.first_column  # a table right of another on the same sheet (Summary)
        for row in ws.iter_rows(min_row=layout.FIRST_DATA_ROW, min_col=first,
                                max_col=first + len(keys) - 1, values_only=True):
            if all(v is None for v in row):
                continue
            out.append(dict(zip(keys, row, strict=False)))
        return out
    finally:
        book.close()


def read_journal(path: Path) -> list[dict[str, Any]]:
    return _rows(path, layout.JOURNAL_EVENTS)


def _num(v: Any, fmt: str, none: str = "none") -> str:
    if v is None or v == "" or (isinstance(v, float) and math.isnan(v)):
        return none
    return format(v, fmt)


def _money(v: Any, currency: str) -> str:
    """An amount in its margin currency: cents for dollar-like ones, 8 places for a coin."""
    dollars = currency == "quote" or currency.upper().startswith(("USD", "BUSD", "FDUSD"))
    return _num(v, ",.2f" if dollars else ",.8f")


def summary_lines(path: Path) -> list[str]:
    """The Summary sheet's totals per margin currency, for the currencies with a closed
    position (an amount in USDT and one in BTC are never added)."""
    lines = ["Summary (journal-synced.xlsx): closed positions per margin currency"]
    with_stop: dict[str, int] = {}  # closed positions with an R multiple (a stop), per currency
    for p in _rows(path, layout.JOURNAL_SUMMARY):
        if p.get("state") in ("closed", "liquidated") and isinstance(p.get("r_multiple"),
                                                                     int | float):
            ccy = str(p.get("currency") or "")
            with_stop[ccy] = with_stop.get(ccy, 0) + 1
    for t in _rows(path, layout.SUMMARY_TOTALS):
        if not t.get("closed"):
            continue
        ccy = str(t.get("currency") or "")
        r, n = t.get("expectancy_r"), with_stop.get(ccy, 0)
        # the R multiple is a mean over the positions with a stop only, which it names
        in_r = f"; {r:.2f}R over the {n} with a stop" if isinstance(r, int | float) else ""
        gone = t.get("liquidations")
        liquidated = f", {gone:g} liquidated" if isinstance(gone, int | float) and gone else ""
        lines.append(
            f"  {ccy:<6} {t['closed']:g} closed, {_num(t.get('wins'), 'g')} won "
            f"({_num(t.get('win_rate'), '.0%')}){liquidated}; expectancy "
            f"{_money(t.get('expectancy'), ccy)}"
            f" a position (all {t['closed']:g}){in_r}; total net PnL "
            f"{_money(t.get('total_net_pnl'), ccy)} {ccy}")
    return lines


def portfolio_lines(path: Path) -> list[str]:
    rows = _rows(path, layout.REBALANCE_POSITIONS)
    head = (f"{'position':<16}{'side':<7}{'mode':<10}{'leverage':>10}{'liq. price':>13}"
            f"{'distance':>10}{'target':>9}{'move':>12}{'allocated':>12}  note")
    lines = [f"Portfolio ({path.name}): margin moves that reach each target", head,
             "-" * len(head)]
    for r in rows:
        if isinstance(r.get("target_leverage"), int | float):
            target = f"{r['target_leverage']:g}x"
        elif isinstance(r.get("target_liq_distance"), int | float):
            target = f"{r['target_liq_distance']:.0%} away"
        else:
            target = "none"  # watched, not steered: no move
        lev = f"{r['leverage']:.2f}x" if isinstance(r.get("leverage"), int | float) else "none"
        move = r.get("move")
        verb = "" if not isinstance(move, int | float) else ("add " if move > 0 else "take ")
        lines.append(
            f"{r['position_id']!s:<16}{r['side']!s:<7}{r['margin_mode']!s:<10}"
            f"{lev:>10}{_num(r.get('liq_price'), ',.2f'):>13}"
            f"{_num(r.get('liq_distance'), '.1%'):>10}{target:>9}"
            f"{verb + _num(abs(move) if isinstance(move, int | float) else None, ',.0f'):>12}"
            f"{_num(r.get('allocated'), ',.0f', ''):>12}  {r.get('status') or ''}".rstrip()
        )
    account = _account(path)
    lines.append(
        f"Account: notional {_num(account.get('total_notional'), ',.0f')}, leverage "
        f"{_num(account.get('account_leverage'), '.2f')}x, worst liquidation distance "
        f"{_num(account.get('worst_liq_distance'), '.1%')}, shortfall "
        f"{_num(account.get('shortfall'), ',.0f')} (free balance funds adds by priority)"
    )
    return lines


def _account(path: Path) -> dict[str, Any]:
    book = openpyxl.load_workbook(path, read_only=True)
    try:
        ws = book[layout.REBALANCE_ACCOUNT.title]
        labels = {label: key for key, label in layout.ACCOUNT_OUTPUT_ROWS}
        return {labels[a]: b for a, b, *_ in ws.iter_rows(values_only=True) if a in labels}
    finally:
        book.close()


def journal_lines(events: Sequence[dict[str, Any]], cross: set[str] | frozenset[str] = frozenset()
                  ) -> list[str]:
    """Each position after its latest event, the rule breaks and the refused rows. ``cross``:
    ids of positions in cross margin on the exchange, whose liquidation price the journal
    (isolated margin only) cannot give: said, with where the exchange's figure is."""
    last: dict[str, dict[str, Any]] = {}
    for e in events:
        if e.get("position_id"):
            last[str(e["position_id"])] = e
    lines = ["Journal (journal-synced.xlsx): each position after its latest event"]
    w = max((len(pid) for pid in last), default=0)
    for pid, e in last.items():
        if e.get("qty_open") in (0, 0.0):
            ccy = e.get("currency") or ""
            how = "liquidated" if _liquidated(e) else "closed"
            lines.append(f"  {pid:<{w}} {how}; realized PnL {_money(e.get('realized_pnl'), ccy)}, "
                         f"funding {_money(e.get('funding'), ccy)}, fees "
                         f"{_money(e.get('fees'), ccy)}: net {_money(e.get('net_pnl'), ccy)} {ccy}")
            continue
        if pid in cross:
            lines.append(f"  {pid:<{w}} cross margin on the exchange: the journal counts its "
                         f"margin alone (liquidation at {_num(e.get('liq_price'), ',.2f')} if "
                         "isolated); the account's figure is in the Reconcile above")
            continue
        lines.append(
            f"  {pid:<{w}} leverage {_num(e.get('margin_leverage'), '.2f')}x on margin, "
            f"{_num(e.get('effective_leverage'), '.2f')}x on equity; liquidation at "
            f"{_num(e.get('liq_price'), ',.2f')} ({_num(e.get('liq_distance'), '.1%')} away)"
        )
    breaks = [e for e in events if e.get("rule_breaks")]
    lines.append(f"Rule breaks found: {len(breaks)}")
    for e in breaks:
        when = e["date"].strftime("%Y-%m-%d") if isinstance(e.get("date"), dt.datetime) else ""
        lines.append(f"  {when} {e['position_id']} {e['event']}: {e['rule_breaks']}")
    for e in events:  # a liquidation is applied (the position's end), not refused
        if e.get("status"):
            what = "liquidation" if _liquidated(e) else "refused row"
            lines.append(f"  {what}: {e['position_id']} {e['event']}: {e['status']}")
    return lines


def _liquidated(e: dict[str, Any]) -> bool:
    """The journal's status of the event that liquidated its position (``liquidated at
    {price}: ...``); any other status is a refused row."""
    return str(e.get("status") or "").startswith("liquidated at ")


# ------------------------------------------------------------------------ chart
def draw_chart(events: Sequence[dict[str, Any]], path: Path) -> Path:
    """Effective (equity-based) leverage and liquidation distance per position over time."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[tuple[dt.datetime, float, float]]] = {}
    for e in events:
        lev, dist = e.get("effective_leverage"), e.get("liq_distance")
        if isinstance(e.get("date"), dt.datetime) and isinstance(lev, int | float):
            d = dist if isinstance(dist, int | float) else math.nan
            series.setdefault(str(e["position_id"]), []).append((e["date"], lev, d))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, dpi=100)
    for pid, points in series.items():
        when = [p[0] for p in points]
        top.plot(when, [p[1] for p in points], marker="o", label=pid)
        bottom.plot(when, [p[2] * 100 for p in points], marker="o", label=pid)
    top.set_ylabel("effective leverage (x)")
    top.set_title("Leverage on equity, and how far liquidation is, after each journal event")
    bottom.set_ylabel("liquidation distance (%)")
    top.legend(loc="upper left", fontsize=8)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    path.write_bytes(buf.getvalue())
    return path


# -------------------------------------------------------------- reproducible files
def make_reproducible(path: Path) -> None:
    """Rewrite an .xlsx with fixed timestamps (zip entries and document properties) so the
    same content gives the same bytes."""
    book = zipfile.ZipFile(path)
    with book:
        entries = [(info, book.read(info.filename)) for info in book.infolist()]
    stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for info, data in entries:
            if info.filename == "docProps/core.xml":
                data = _fix_core_dates(data, stamp)
            fixed = zipfile.ZipInfo(info.filename, date_time=FIXED_TIME.timetuple()[:6])
            fixed.compress_type = zipfile.ZIP_DEFLATED
            fixed.external_attr = info.external_attr
            z.writestr(fixed, data)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)


def _fix_core_dates(xml: bytes, stamp: bytes) -> bytes:
    return re.sub(
        rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:(?:created|modified)>)",
        lambda m: m.group(1) + stamp + m.group(2),
        xml,
    )
