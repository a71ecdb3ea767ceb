"""Watch an exchange account: live marks in the rebalance workbook, and an alert when an open
position crosses one of the trader's own rules, naming the margin that restores it.

    from leverage_exchange import connect, read_credentials
    from leverage_exchange.watch import Watcher
    from leverage_exchange.notify import Channels
    from leverage_sheets import open_local
    w = Watcher(connect("binanceusdm", read_credentials()), open_local("rebalance.xlsx"),
                Channels.from_config(), rules=rules_from_workbook(open_local("journal.xlsx")))
    w.run()                      # every 60 s until Ctrl-C; or w.run_cycle() once

One cycle (:meth:`Watcher.run_cycle`):

1. reads the open positions (their marks come with them), the balance once, and the tier
   table of a symbol the watch has not seen (cached for a day): 2 exchange requests a cycle
   for an isolated-only account, 2 with cross positions (the balance answer is shared), plus
   3 the first time a symbol appears;
2. computes each position with :func:`leverage.portfolio.rebalance` (the numbers the sheet
   shows: leverage, liquidation price, distance, probability);
3. writes the open state into the rebalance workbook the way ``leverage exchange import``
   does (:func:`leverage_sheets.append.append_rows`: one read and at most one write request,
   only the exchange's cells of a row, never the trader's targets);
4. checks every position against the Rules (``min_liq_distance``, ``max_leverage``,
   ``max_liq_probability``) and sends what changed: a breach once, a recovery once;
5. saves its state (alerts fired, failures, the last good read) to a small JSON file, written
   atomically, so ``--once`` runs from a scheduler remember what they already said.

Hysteresis: a rule fires when the value crosses its threshold (distance below the buffer,
leverage or probability above the maximum, as :mod:`leverage.rules` flags them) and re-arms
only once the value is back past the threshold by a tenth of it (:data:`HYSTERESIS`): with a
10 % buffer the recovery comes at 11 % distance; with a 10x maximum at 9x. A mark that
oscillates around the threshold therefore alerts once, not every cycle.

Never silent: ``stale_after`` cycles in a row without an answer from the exchange send
"data stale since <time of the last good read>" once (and a recovery when it answers again);
a write to the workbook that fails is an alert too (once, until a write succeeds).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any, Protocol

from leverage import core, portfolio
from leverage.errors import InputError, LeverageError
from leverage.models import AdjustmentRule
from leverage.planning import safe_leverage
from leverage.rules import RULE_TEXT

from .client import Deadline
from .convert import OpenPosition
from .notify import Alert

HYSTERESIS = 0.10
"""A fired rule re-arms once its value is back past the threshold by this fraction of it."""
WATCHED_RULES = ("min_liq_distance", "max_leverage", "max_liq_probability")
TIER_REFRESH = timedelta(days=1)
STATE_VERSION = 1


class Sink(Protocol):
    """Where alerts go: :class:`leverage_exchange.notify.Channels`."""

    def send(self, alert: Alert) -> list[str]: ...

    def check(self) -> None: ...

    def describe(self) -> list[str]: ...


def utcnow() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------ state


@dataclass
class WatchState:
    """What the watch remembers between cycles (and between ``--once`` runs): JSON on disk.

    ``fired``: alert key → when it fired and the value then; ``failures``: cycles in a row the
    exchange could not be read; ``ids``: ``SYMBOL:side`` → the workbook's id of that position
    (the alert keys stay the same whatever a cycle's write did)."""

    fired: dict[str, dict[str, Any]] = field(default_factory=dict)
    failures: int = 0
    last_ok: str | None = None
    first_failure: str | None = None
    stale_fired: bool = False
    write_failed: bool = False
    summary_day: str | None = None
    ids: dict[str, str] = field(default_factory=dict)
    # since the last daily summary
    cycles: int = 0
    failed_cycles: int = 0
    alerts_sent: int = 0
    version: int = STATE_VERSION

    @classmethod
    def load(cls, path: Path | None) -> WatchState:
        """The state saved at ``path``; a fresh one when there is no file. A file that is not
        the watch's JSON is an error naming it (never silently forgotten: the alerts it holds
        would be sent again)."""
        if path is None or not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("version") != STATE_VERSION:
                raise ValueError("not a watch state")
            known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
            return cls(**known)
        except (OSError, ValueError, TypeError):
            raise InputError(f"state file {str(path)!r} is not the watch's state (JSON): move "
                             "it away or give another --state") from None

    def save(self, path: Path | None) -> None:
        """Write the state atomically: a temporary file beside it, then a rename, so a kill
        leaves the old state or the new one. A ``kill -9`` amid the write leaves its
        temporary file (``.NAME.xxxxxxxx.tmp``, the workbook saves' pattern): the next save
        removes those older than its own run, as a workbook save does."""
        if path is None:
            return
        from leverage_sheets.xlsx_package import remove_stale_temps

        text = json.dumps(asdict(self), indent=1, sort_keys=True)
        folder = path.parent or Path(".")
        remove_stale_temps(folder, path.name)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


# ------------------------------------------------------------------------------ positions


@dataclass
class PositionView:
    """One open position as the sheet shows it after the cycle's write."""

    position_id: str
    symbol: str
    side: str
    margin_mode: str
    qty: float
    entry: float
    mark: float
    margin: float  # isolated: posted; cross: the cross wallet's margin for it (see fix)
    notional: float
    upnl: float
    maint_margin: float
    leverage: float
    liq_price: float
    liq_distance: float
    liq_probability: float
    mmr: float
    maint_amount: float
    status: str | None = None

    @property
    def sign(self) -> float:
        return 1.0 if self.side == "long" else -1.0


def _f(v: Any) -> float:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return math.nan
    return x


def position_views(rows: Sequence[Mapping[str, Any]], wallet: float, free: float,
                   rule: AdjustmentRule) -> list[PositionView]:
    """Each rebalance row computed by :func:`leverage.portfolio.rebalance` (at the rule's
    volatility and horizon for the probability)."""
    inputs = [{k: r.get(k) for k in portfolio.INPUT_COLUMNS} for r in rows]
    vol_h = rule.liq_probability_inputs()
    result = portfolio.rebalance(inputs, wallet, free, *(vol_h or (None, None)))
    out = []
    for i, r in enumerate(rows):
        c = result.row(i)
        cross = r.get("margin_mode") == "cross"
        out.append(PositionView(
            str(r["position_id"]), str(r["symbol"]), str(r["side"]), str(r["margin_mode"]),
            _f(r["qty"]), _f(r["entry_price"]), _f(r["mark_price"]),
            math.nan if cross else _f(r.get("margin")),
            _f(c["notional"]), _f(c["unrealized_pnl"]), _f(c["maint_margin"]),
            _f(c["leverage"]), _f(c["liq_price"]), _f(c["liq_distance"]),
            _f(c["liq_probability"]) if vol_h else math.nan,
            _f(r.get("mmr")) if r.get("mmr") is not None else core.DEFAULT_MMR,
            _f(r.get("maint_amount")) if r.get("maint_amount") is not None else 0.0,
            c.get("status") or None))
    return out


# ------------------------------------------------------------------------------ the fix


@dataclass
class Fix:
    """The margin that restores a rule, from the core (never recomputed here)."""

    amount: float | None  # USDT to add; None: the core has no amount (``why`` says)
    how: str
    why: str = ""


def _posted(v: PositionView, views: Sequence[PositionView], wallet: float) -> float:
    """The margin behind ``v``'s liquidation price: isolated, what is posted; cross, Binance's
    cross rule ``wallet + other cross PnL − other cross maintenance`` (see
    :func:`leverage.core.cross_liq_price`)."""
    if v.margin_mode != "cross":
        return v.margin
    others = [o for o in views if o.margin_mode == "cross" and o is not v]
    return wallet + sum(o.upnl for o in others) - sum(o.maint_margin for o in others)


def margin_for_distance(v: PositionView, views: Sequence[PositionView], wallet: float,
                        distance: float) -> Fix:
    """Margin to add so liquidation is ``distance`` away from the mark:
    ``MARGIN_FOR_LIQ_PRICE(side, qty, entry, mark × (1 − s × distance)) − margin posted``
    (cross: to the cross wallet, the other cross positions held as they are)."""
    target = v.mark * (1.0 - v.sign * distance)
    try:
        need = float(core.margin_for_liq_price(v.side, v.qty, v.entry, target, v.mmr,
                                               v.maint_amount))
    except LeverageError as exc:
        return Fix(None, "", str(exc))
    add = need - _posted(v, views, wallet)
    where = "to the cross wallet" if v.margin_mode == "cross" else "to the position"
    return Fix(max(add, 0.0), f"add {_money(max(add, 0.0))} USDT {where} (MARGIN_FOR_LIQ_PRICE "
                              f"at {_money(target)})")


def margin_for_leverage(v: PositionView, views: Sequence[PositionView], wallet: float,
                        target: float) -> Fix:
    """``MARGIN_TO_TARGET(notional, margin, target, PnL)``; cross: over the cross account
    (its one leverage, ``Σ notional / (wallet + Σ PnL)``)."""
    if v.margin_mode == "cross":
        cross = [o for o in views if o.margin_mode == "cross"]
        notional, margin, upnl = (sum(o.notional for o in cross), wallet,
                                  sum(o.upnl for o in cross))
    else:
        notional, margin, upnl = v.notional, v.margin, v.upnl
    try:
        add = float(core.margin_to_target(notional, margin, target, upnl))
    except LeverageError as exc:
        return Fix(None, "", str(exc))
    where = "to the cross wallet" if v.margin_mode == "cross" else "to the position"
    return Fix(max(add, 0.0), f"add {_money(max(add, 0.0))} USDT {where} (MARGIN_TO_TARGET "
                              f"{target:g}x)")


def distance_for_probability(v: PositionView, most: float, volatility: float,
                             horizon_days: float) -> float:
    """The liquidation distance at which LIQ_PROBABILITY equals ``most``: ``1 /
    SAFE_LEVERAGE(volatility, horizon_days, most, mmr=0)`` (with no maintenance margin an
    isolated position at leverage L is liquidated 1/L from its entry, so the core's safest
    leverage is the inverse of the distance the odds allow; nan where there is none)."""
    lev = float(safe_leverage(volatility, horizon_days, most, 0.0, v.side))
    return 1.0 / lev if lev > 0 else math.nan


# ------------------------------------------------------------------------------ cycle


@dataclass
class CycleReport:
    """What one cycle did."""

    at: datetime
    read: bool
    positions: list[PositionView] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    failed_channels: list[str] = field(default_factory=list)
    exchange_requests: int = 0
    sheet_requests: int = 0
    cells_written: int = 0
    error: str | None = None
    write_error: str | None = None

    def __str__(self) -> str:
        when = self.at.strftime("%Y-%m-%d %H:%M:%S UTC")
        if not self.read:
            return f"{when}: exchange not read ({self.error}); {len(self.alerts)} alert(s)"
        worst = min((p.liq_distance for p in self.positions
                     if not math.isnan(p.liq_distance)), default=math.nan)
        return (f"{when}: {len(self.positions)} open, worst distance {_pct(worst)}, "
                f"{self.exchange_requests} exchange + {self.sheet_requests} sheet requests, "
                f"{self.cells_written} cells written, {len(self.alerts)} alert(s)"
                + (f"; sheet NOT written: {self.write_error}" if self.write_error else ""))


def _money(x: float | None) -> str:
    return "none" if x is None or math.isnan(x) else f"{x:,.2f}"


def _pct(x: float) -> str:
    return "none" if math.isnan(x) else f"{x:.2%}"


def _stamp(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def parse_hhmm(value: str) -> dtime:
    """``HH:MM`` (UTC) as a time of day."""
    try:
        h, m = str(value).strip().split(":")
        return dtime(int(h), int(m), tzinfo=UTC)
    except (ValueError, TypeError):
        raise InputError(f"daily-summary must be a time like 08:00 (UTC), got {value!r}") from None


RulesFn = Callable[[], AdjustmentRule]


class Watcher:
    """The watch of one account into one rebalance workbook (see the module doc).

    ``clock`` (UTC datetimes) and ``sleep`` are injectable: a simulated day runs in seconds.
    ``rules``: an :class:`AdjustmentRule`, or a function returning the current one (read
    from the journal's Rules sheet, so an edit is picked up). ``state_path``: where the state
    is kept (None: in memory only).
    """

    def __init__(self, exchange: Any, backend: Any, channels: Sink, *,
                 rules: AdjustmentRule | RulesFn | None = None,
                 interval: float = 60.0, stale_after: int = 3,
                 state_path: Path | None = None, daily_summary: dtime | None = None,
                 clock: Callable[[], datetime] = utcnow,
                 sleep: Callable[[float], None] = time.sleep,
                 cycle_deadline: float | None = None) -> None:
        if not (isinstance(interval, int | float) and math.isfinite(interval) and interval > 0):
            raise InputError(f"interval must be > 0 seconds, got {interval!r}")
        if isinstance(stale_after, bool) or not isinstance(stale_after, int) or stale_after < 1:
            raise InputError(f"stale_after must be a whole number >= 1, got {stale_after!r}")
        self.exchange = exchange
        self.backend = backend
        self.channels = channels
        fixed = rules if isinstance(rules, AdjustmentRule) else AdjustmentRule()
        self._rules: RulesFn = rules if callable(rules) else (lambda: fixed)
        self.interval = float(interval)
        self.stale_after = stale_after
        self.state_path = state_path
        self.state = WatchState.load(state_path)
        self.daily_summary = daily_summary
        self.clock = clock
        self.sleep = sleep
        # each cycle's exchange part ends within the interval (retries and slow answers
        # included), so a stuck cycle never delays the next one
        self.cycle_deadline = cycle_deadline or max(min(self.interval, 120.0), 10.0)
        self._last_rule: AdjustmentRule | None = None
        self._tiers: dict[str, Any] = {}
        self._tiers_at: datetime | None = None
        self._share_balance()

    # -- the exchange
    def _share_balance(self) -> None:
        """One balance request a cycle: the cross wallet (fetch_open) and the free balance
        (account_figures) both come from it."""
        fetch = self.exchange.fetch_balance
        cache: dict[str, Any] = {}
        self._balance_cache = cache

        def fetch_balance(params: dict[str, Any] | None = None) -> Any:
            if "answer" not in cache:
                cache["answer"] = fetch(params or {})
            return cache["answer"]

        self.exchange.fetch_balance = fetch_balance

    def _read(self, now: datetime) -> tuple[list[OpenPosition], dict[str, float | None], Any]:
        from . import account_figures, build_rows, reconcile
        from .client import call
        from .fetch import fetch_open, rates_of

        self._balance_cache.clear()
        ticks = now.timestamp()
        self.exchange._leverage_deadline = Deadline(
            self.cycle_deadline, clock=lambda: ticks + (self.clock() - now).total_seconds(),
            sleep=self.sleep)
        if self._tiers_at is None or now - self._tiers_at >= TIER_REFRESH:
            if self._tiers_at is not None:  # a day on: markets listed since are known too
                call(self.exchange, self.exchange.load_markets, True)
            self._tiers, self._tiers_at = {}, now
        got = fetch_open(self.exchange, now_ms=int(now.timestamp() * 1000), rates=False)
        got.tiers.update(self._tiers)
        rates_of(self.exchange, got, sorted({p["symbol"] for p in got.positions}))
        self._tiers.update(got.tiers)
        # every position's own markPrice (read with it), not a mark of another moment
        got.marks.clear()
        rows = build_rows(got)
        figures = account_figures(self.exchange, got)
        return rows.open_positions, figures, (got, reconcile(got, rows.open_positions))

    # -- one cycle
    def run_cycle(self) -> CycleReport:
        """Read, write, check and alert once (see the module doc); the state is saved."""
        now = self.clock()
        st = self.state
        st.cycles += 1
        report = CycleReport(now, read=False)
        before = int(getattr(self.exchange, "_leverage_requests", 0))
        try:
            positions, figures, (got, reconciled) = self._read(now)
        except LeverageError as exc:
            report.error = str(exc)
            report.exchange_requests = int(getattr(self.exchange, "_leverage_requests", 0)) - before
            self._failed_read(now, str(exc), report)
            self._summary(now, report, [])
            st.save(self.state_path)
            return report
        report.read = True
        report.exchange_requests = int(getattr(self.exchange, "_leverage_requests", 0)) - before
        self._read_again(now, report)
        rows = self._write(got, positions, reconciled, figures, now, report)
        wallet = figures.get("wallet_balance")
        free = figures.get("free_balance")
        rule = self._rule(report)
        try:
            views = position_views(rows, wallet or 0.0, free or 0.0, rule or AdjustmentRule())
        except LeverageError as exc:  # the account figures refused: said, the watch goes on
            report.error = f"positions not computed: {exc}"
            views = []
        report.positions = views
        if rule is not None:
            self._check(views, rule, wallet or 0.0, free, now, report)
        self._summary(now, report, views)
        st.save(self.state_path)
        return report

    def _rule(self, report: CycleReport) -> AdjustmentRule | None:
        """The rules now; when they cannot be read (a bad cell typed overnight), the last
        ones read, and an alert once (then a recovery when they read again)."""
        st, now = self.state, report.at
        try:
            rule = self._rules()
        except LeverageError as exc:
            report.error = f"rules not read: {exc}"
            if "rules:read" not in st.fired:
                st.fired["rules:read"] = {"since": now.isoformat(), "value": None}
                kept = ("the watch goes on with the rules it read last" if self._last_rule
                        else "no rule is checked until they read")
                self._send(Alert("stale", "rules:read", "the Rules cannot be read",
                                 f"{exc}\nFix the cell: {kept}.", now), report)
            return self._last_rule
        if st.fired.pop("rules:read", None) is not None:
            self._send(Alert("recovery", "rules:read", "the Rules read again",
                             "The alerts follow the Rules as they are now.", now), report)
        self._last_rule = rule
        return rule

    def _send(self, alert: Alert, report: CycleReport) -> None:
        report.alerts.append(alert)
        self.state.alerts_sent += 1
        failed = self.channels.send(alert)
        report.failed_channels.extend(failed)

    # -- never silent
    def _failed_read(self, now: datetime, error: str, report: CycleReport) -> None:
        st = self.state
        st.failures += 1
        st.failed_cycles += 1
        st.first_failure = st.first_failure or now.isoformat()
        if st.failures >= self.stale_after and not st.stale_fired:
            since = st.last_ok or st.first_failure
            st.stale_fired = True
            self._send(Alert(
                "stale", "exchange:stale",
                f"data stale since {_stamp(datetime.fromisoformat(since))}: the exchange "
                f"could not be read for {st.failures} cycles",
                "\n".join([
                    f"The watch could not read the account for {st.failures} cycles in a row "
                    f"(every {self.interval:g} s).",
                    f"Last good read: {_stamp(datetime.fromisoformat(st.last_ok))}"
                    if st.last_ok else "No good read since the watch started.",
                    f"Last error: {error}",
                    "The workbook keeps the marks of the last good read; no rule can be "
                    "checked until the exchange answers. You will hear when it does.",
                ]), now), report)

    def _read_again(self, now: datetime, report: CycleReport) -> None:
        st = self.state
        if st.stale_fired:
            self._send(Alert(
                "recovery", "exchange:stale",
                f"exchange data fresh again after {st.failures} failed cycles",
                f"The account was read at {_stamp(now)}; the last good read before was "
                f"{_stamp(datetime.fromisoformat(st.last_ok)) if st.last_ok else 'none'}.",
                now), report)
        st.failures, st.first_failure, st.stale_fired = 0, None, False
        st.last_ok = now.isoformat()

    # -- the workbook
    def _write(self, got: Any, positions: list[OpenPosition], reconciled: Any,
               figures: dict[str, float | None], now: datetime,
               report: CycleReport) -> list[dict[str, Any]]:
        """The rebalance rows of the cycle, under the workbook's ids, written the way
        ``exchange import`` writes them. A failed write is an alert (once until a write
        succeeds); the rows are returned either way so the rules are still checked."""
        from leverage_sheets.append import append_rows

        from . import REBALANCE_UPDATED, _rebalance_plan, journal_key, rebalance_rows

        rows = rebalance_rows(positions, got.tiers, reconciled)
        renamed: dict[str, str] = {}
        notes: list[str] = []
        before = int(getattr(self.backend, "requests", 0))
        st = self.state
        try:
            sheet = append_rows(self.backend, "rebalance", _rebalance_plan(rows, renamed, notes),
                                journal_key, update={"Positions": REBALANCE_UPDATED},
                                account=figures)
            report.cells_written = sheet.cells_written
            if st.write_failed:
                st.write_failed = False
                self._send(Alert("recovery", "workbook:write",
                                 f"{self.backend.name} written again",
                                 f"The cycle at {_stamp(now)} wrote the open state.", now),
                           report)
        except (LeverageError, OSError) as exc:
            report.write_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if not st.write_failed:
                st.write_failed = True
                self._send(Alert(
                    "write_failed", "workbook:write",
                    f"{self.backend.name} could not be written",
                    "\n".join([f"The cycle at {_stamp(now)} could not write the workbook: "
                               f"{report.write_error}",
                               "The sheet shows the marks of the last write; the alerts go on "
                               "from the exchange's numbers. You will hear when a write "
                               "succeeds again."]), now), report)
        report.sheet_requests = int(getattr(self.backend, "requests", 0)) - before
        for r in rows:  # one id per exchange position, whatever this cycle's write did
            side_key = f"{r['symbol']}:{r['side']}"
            pid = renamed.get(r["position_id"], r["position_id"])
            if renamed or report.write_error is None:
                st.ids[side_key] = str(pid)
            r["position_id"] = st.ids.get(side_key, pid)
        open_keys = {f"{r['symbol']}:{r['side']}" for r in rows}
        st.ids = {k: v for k, v in st.ids.items() if k in open_keys}  # bounded: open only
        return rows

    # -- the rules
    def _check(self, views: list[PositionView], rule: AdjustmentRule, wallet: float,
               free: float | None, now: datetime, report: CycleReport) -> None:
        st = self.state
        seen: set[str] = set()
        for v in views:
            if v.status:
                continue  # the sheet shows why the row is not computed
            for name in WATCHED_RULES:
                limit = getattr(rule, name)
                if limit is None:
                    continue
                value, breached, recovered = self._measure(v, name, float(limit), rule)
                if value is None:
                    continue
                key = f"{v.position_id}:{name}"
                seen.add(key)
                if key not in st.fired and breached:
                    st.fired[key] = {"since": now.isoformat(), "value": value}
                    self._send(self._breach(v, views, name, float(limit), value, rule, wallet,
                                            free, now), report)
                elif key in st.fired and recovered:
                    del st.fired[key]
                    self._send(self._recovery(v, name, float(limit), value, now), report)
        for key in sorted(set(st.fired) - seen):
            pid, _, name = key.rpartition(":")
            if name not in WATCHED_RULES:
                continue  # not a position's (rules:read)
            if any(v.position_id == pid for v in views):
                continue  # open, its rule removed or not measurable this cycle: kept
            del st.fired[key]
            self._send(Alert("recovery", key, f"{pid}: no longer open ({name} cleared)",
                             f"{pid} is not open on the exchange any more (closed, or "
                             f"liquidated): its {name} alert is cleared.", now), report)

    @staticmethod
    def _measure(v: PositionView, name: str, limit: float,
                 rule: AdjustmentRule) -> tuple[float | None, bool, bool]:
        """(value now, crossed, back past the re-arm level); value None: not measurable."""
        if name == "min_liq_distance":
            d = v.liq_distance
            if math.isnan(d):
                return (None, False, True)
            return d, limit > d, d >= limit * (1 + HYSTERESIS)
        if name == "max_leverage":
            lev = v.leverage
            if math.isnan(lev):
                return (None, False, True)
            return lev, lev > limit, lev <= limit * (1 - HYSTERESIS)
        if rule.liq_probability_inputs() is None or math.isnan(v.liq_probability):
            return (None, False, True)
        p = v.liq_probability
        return p, p > limit, p <= limit * (1 - HYSTERESIS)

    def _breach(self, v: PositionView, views: Sequence[PositionView], name: str, limit: float,
                value: float, rule: AdjustmentRule, wallet: float, free: float | None,
                now: datetime) -> Alert:
        if name == "min_liq_distance":
            now_text, limit_text = f"distance {_pct(value)}", f"buffer {_pct(limit)}"
            fix = margin_for_distance(v, views, wallet, limit)
            rearm = f"distance at or above {_pct(limit * (1 + HYSTERESIS))}"
        elif name == "max_leverage":
            now_text, limit_text = f"leverage {value:.2f}x", f"max {limit:g}x"
            fix = margin_for_leverage(v, views, wallet, limit)
            rearm = f"leverage at or below {limit * (1 - HYSTERESIS):.2f}x"
        else:
            vol, horizon = rule.liq_probability_inputs() or (math.nan, math.nan)
            now_text, limit_text = f"probability {_pct(value)}", f"max {_pct(limit)}"
            d = distance_for_probability(v, limit, vol, horizon)
            fix = margin_for_distance(v, views, wallet, d)
            fix.how += f" (distance {_pct(d)}: probability {_pct(limit)} at {vol:.0%} " \
                       f"volatility over {horizon:g} day(s))"
            rearm = f"probability at or below {_pct(limit * (1 - HYSTERESIS))}"
        if fix.amount is None:
            action = f"no margin amount: {fix.why}"
            cover = ""
        else:
            action = fix.how
            if free is None:
                cover = "free balance unknown (the exchange did not say it)"
            elif free >= fix.amount:
                cover = f"the free balance {_money(free)} USDT covers it"
            else:
                cover = (f"the free balance {_money(free)} USDT does NOT cover it (short by "
                         f"{_money(fix.amount - free)}): reduce the position instead")
        body = [
            f"Position {v.position_id}: {v.symbol} {v.side}, {v.margin_mode}",
            f"Rule {name} ({RULE_TEXT[name]}): {limit_text}",
            f"Now: mark {_money(v.mark)}, liquidation {_money(v.liq_price)}, "
            f"distance {_pct(v.liq_distance)}, leverage {v.leverage:.2f}x"
            + ("" if math.isnan(v.liq_probability)
               else f", probability {_pct(v.liq_probability)}"),
            f"To restore it: {action}",
        ]
        if cover:
            body.append(cover[0].upper() + cover[1:])
        body.append(f"One alert per breach: the next comes once {rearm} (then a recovery).")
        return Alert("breach", f"{v.position_id}:{name}",
                     f"{v.position_id}: {RULE_TEXT[name]} ({now_text}, {limit_text})"
                     + (f"; add {_money(fix.amount)} USDT" if fix.amount else ""),
                     "\n".join(body), now)

    def _recovery(self, v: PositionView, name: str, limit: float, value: float,
                  now: datetime) -> Alert:
        shown = (f"distance {_pct(value)}" if name == "min_liq_distance"
                 else f"leverage {value:.2f}x" if name == "max_leverage"
                 else f"probability {_pct(value)}")
        return Alert("recovery", f"{v.position_id}:{name}",
                     f"{v.position_id}: back within {name} ({shown})",
                     f"Position {v.position_id} ({v.symbol} {v.side}) is back within {name} "
                     f"({shown}; mark {_money(v.mark)}, liquidation {_money(v.liq_price)}). "
                     "The rule is armed again.", now)

    # -- the daily summary
    def _summary(self, now: datetime, report: CycleReport, views: list[PositionView]) -> None:
        at = self.daily_summary
        st = self.state
        if at is None:
            return
        day = now.date().isoformat()
        due = now.astimezone(UTC).time().replace(tzinfo=UTC) >= at
        if not due or st.summary_day == day:
            return
        st.summary_day = day
        lines = [f"{len(views)} open position(s)" if report.read
                 else "The exchange could not be read this cycle."]
        for v in sorted(views, key=lambda x: (math.isnan(x.liq_distance), x.liq_distance)):
            lines.append(f"  {v.position_id}: mark {_money(v.mark)}, liquidation "
                         f"{_money(v.liq_price)}, distance {_pct(v.liq_distance)}, "
                         f"leverage {v.leverage:.2f}x")
        lines.append(f"Open breaches: {', '.join(sorted(st.fired)) or 'none'}")
        lines.append(f"Since the last summary: {st.cycles} cycles, {st.failed_cycles} without "
                     f"an answer, {st.alerts_sent} alerts")
        st.cycles = st.failed_cycles = st.alerts_sent = 0
        self._send(Alert("summary", f"summary:{day}", f"daily summary {day}",
                         "\n".join(lines), now), report)

    # -- the loop
    def run(self, cycles: int | None = None,
            on_cycle: Callable[[CycleReport], None] | None = None) -> list[CycleReport]:
        """Run a cycle every ``interval`` seconds, ``cycles`` times (None: until interrupted).

        The next cycle starts ``interval`` after the previous one started (a slow cycle is
        not followed by a longer wait). Returns the last reports (at most 100: memory stays
        bounded over a day)."""
        if cycles is not None and (isinstance(cycles, bool) or cycles < 1):
            raise InputError(f"cycles must be >= 1, got {cycles!r}")
        reports: list[CycleReport] = []
        done = 0
        while cycles is None or done < cycles:
            started = self.clock()
            report = self.run_cycle()
            done += 1
            reports.append(report)
            del reports[:-100]
            if on_cycle is not None:
                on_cycle(report)
            if cycles is not None and done >= cycles:
                break
            spent = (self.clock() - started).total_seconds()
            self.sleep(max(self.interval - spent, 0.0))
        return reports

    def started(self, what: Sequence[str]) -> Alert:
        now = self.clock()
        alert = Alert("started", "watch:started", "watch started",
                      "\n".join(what), now)
        self.channels.send(alert)
        return alert

    def stopped(self, why: str) -> Alert:
        now = self.clock()
        alert = Alert("stopped", "watch:stopped", f"watch stopped: {why}",
                      f"The watch stopped at {_stamp(now)} ({why}). Nothing is watched until "
                      "it runs again.", now)
        self.channels.send(alert)
        return alert


def rules_from_workbook(backend: Any) -> AdjustmentRule:
    """The rules on a journal workbook's Rules sheet (one read), as the sync reads them."""
    from leverage.layout import JOURNAL_RULES
    from leverage_sheets.backend import a1
    from leverage_sheets.engine import _read_rules

    [grid] = backend.read_ranges([a1(JOURNAL_RULES.title, 1, 1, len(JOURNAL_RULES.columns),
                                     None)])
    return _read_rules(JOURNAL_RULES, grid)


def rules_reader(path: Path) -> RulesFn:
    """The Rules of the journal at ``path``, read again whenever the file changes (an edit
    the trader saves is picked up at the next cycle)."""
    from leverage_sheets import open_local

    seen: dict[str, Any] = {}

    def read() -> AdjustmentRule:
        try:
            mtime = path.stat().st_mtime_ns
        except OSError:
            raise InputError(f"rules file {str(path)!r} cannot be read") from None
        if seen.get("mtime") != mtime:
            seen["rule"], seen["mtime"] = rules_from_workbook(open_local(path)), mtime
        rule: AdjustmentRule = seen["rule"]
        return rule

    return read


def with_overrides(base: AdjustmentRule | None, overrides: Mapping[str, Any]) -> AdjustmentRule:
    """``base`` with ``overrides`` (rule name → value) in place, checked as the sheet's."""
    values = {k: v for k, v in (base or AdjustmentRule()).model_dump().items() if v is not None}
    for k, v in overrides.items():  # typed on a command line: "8" is 8, "10%" stays a rate
        try:
            values[k] = float(v) if isinstance(v, str) else v
        except ValueError:
            values[k] = v
    return AdjustmentRule.build(**values)


def run_cycle(exchange: Any, backend: Any, channels: Sink, **kwargs: Any) -> CycleReport:
    """One cycle (``leverage watch --once``): :meth:`Watcher.run_cycle` of a new watcher;
    pass ``state_path`` so what was already said is remembered between runs."""
    return Watcher(exchange, backend, channels, **kwargs).run_cycle()


def watch(exchange: Any, backend: Any, channels: Sink, cycles: int | None = None,
          **kwargs: Any) -> list[CycleReport]:
    """Watch until interrupted (or ``cycles`` cycles): :meth:`Watcher.run`. The channels are
    checked first: a watch that cannot alert refuses to start."""
    channels.check()
    return Watcher(exchange, backend, channels, **kwargs).run(cycles)


__all__ = [
    "HYSTERESIS",
    "WATCHED_RULES",
    "Alert",
    "CycleReport",
    "Fix",
    "PositionView",
    "Sink",
    "WatchState",
    "Watcher",
    "distance_for_probability",
    "margin_for_distance",
    "margin_for_leverage",
    "parse_hhmm",
    "position_views",
    "rules_from_workbook",
    "rules_reader",
    "run_cycle",
    "watch",
    "with_overrides",
]
