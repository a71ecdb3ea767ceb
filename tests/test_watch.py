"""``leverage watch``: real ccxt against the scripted-marks loopback Binance
(``leverage_exchange.recorded_watch``), a fake clock (no real sleeps), alerts collected by a sink
of the notification layer's shape (``send``/``check``/``describe``)."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import signal
import subprocess
import sys
import textwrap
import threading
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ccxt")

from fake_exchange import API_KEY, API_SECRET, keyed
from fake_sheets import FakeSheets, make_client

import leverage_exchange as xb
import leverage_sheets as sb
from leverage import core, layout
from leverage.cli import main
from leverage.errors import LeverageError
from leverage.models import AdjustmentRule
from leverage_exchange import recorded_watch as rw
from leverage_exchange import watch as xw

CREDS = {"apiKey": API_KEY, "secret": API_SECRET}
T0 = datetime(2026, 1, 1, tzinfo=UTC)
RULE = AdjustmentRule.build(min_liq_distance=0.10, max_leverage=10, max_liq_probability=0.05,
                            volatility=0.6, horizon_days=1)


class Clock:
    """UTC time that moves only when slept."""

    def __init__(self, start: datetime = T0) -> None:
        self.t = start
        self.slept: list[float] = []

    def __call__(self) -> datetime:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += timedelta(seconds=seconds)

    def cycle(self, interval: float = 60.0) -> int:
        return int((self.t - T0).total_seconds() // interval)


class Collect:
    """A channel set of ``leverage_exchange.notify.Channels``' shape that keeps what it gets."""

    def __init__(self, fail_check: bool = False) -> None:
        self.got: list[Any] = []
        self.fail_check = fail_check

    def send(self, alert: Any) -> list[str]:
        self.got.append(alert)
        return []

    def check(self) -> None:
        if self.fail_check:
            raise LeverageError("no alert channel can deliver: telegram refused the token")

    def describe(self) -> list[str]:
        return ["collect"]

    def kinds(self) -> list[tuple[str, str]]:
        return [(a.kind, a.key) for a in self.got]


BTC = "BTCUSDT-L-open"


def rebalance_book(tmp_path: Path) -> Any:
    book = sb.open_local(tmp_path / "rebalance.xlsx")
    sb.init(book, "rebalance")
    return book


def start(script: list[Any], clock: Clock, interval: float = 60.0) -> rw.ScriptedBinance:
    server = rw.ScriptedBinance(rw.watch_account(), script,
                                step=lambda: clock.cycle(interval))
    server.start()
    return server


def client(server: rw.ScriptedBinance) -> Any:
    return xb.connect("binanceusdm", CREDS, api_url=server.url, timeout_ms=30_000,
                      rate_limit_ms=1)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def path_server(clock: Clock) -> Iterator[rw.ScriptedBinance]:
    server = start(rw.towards_liquidation(), clock)
    yield server
    server.stop()
    assert not server.server_errors


def watcher(server: rw.ScriptedBinance, book: Any, sink: Collect, clock: Clock,
            **kw: Any) -> xw.Watcher:
    kw.setdefault("rules", RULE)
    return xw.Watcher(client(server), book, sink, clock=clock, sleep=clock.sleep, **kw)


def test_the_scripted_path_sends_exactly_the_expected_alerts(path_server, clock,
                                                             tmp_path) -> None:
    book = rebalance_book(tmp_path)
    sink = Collect()
    reports = watcher(path_server, book, sink, clock).run(len(rw.towards_liquidation()) + 2)
    assert sink.kinds() == [
        # the gap to 55,000 (distance 4.91 %) breaks the three rules at once
        ("breach", f"{BTC}:min_liq_distance"), ("breach", f"{BTC}:max_leverage"),
        ("breach", f"{BTC}:max_liq_probability"),
        # the probability re-arms first (at 56,000), the buffer and leverage at 59,200
        ("recovery", f"{BTC}:max_liq_probability"),
        ("recovery", f"{BTC}:min_liq_distance"), ("recovery", f"{BTC}:max_leverage"),
        # six cycles without an answer: one stale alert at the third, one recovery
        ("stale", "exchange:stale"), ("recovery", "exchange:stale"),
    ]
    at = {(a.kind, a.key): a for a in sink.got}
    breach = at[("breach", f"{BTC}:min_liq_distance")]
    assert breach.at == T0 + timedelta(minutes=6)  # the gap's cycle, not later
    # Binance USDⓈ-M isolated, bracket 1 (MMR 0.4 %, cum 0): the margin that puts the
    # liquidation at 55,000 × 0.9 = 49,500 is 0.006 × 60,000 − 49,500 × (0.006 − 0.006 × 0.004)
    # = 64.19; 47.45 is posted, so 16.74 to add
    need = core.margin_for_liq_price("long", 0.006, 60_000, 49_500, 0.004) - 47.45
    assert round(need, 2) == 16.74
    assert "add 16.74 USDT to the position" in breach.body
    assert "free balance 1,000.00 USDT covers it" in breach.body
    assert "mark 55,000.00, liquidation 52,300.87, distance 4.91%" in breach.body
    lev = at[("breach", f"{BTC}:max_leverage")]
    # equity 47.45 + 0.006 × (55,000 − 60,000) = 17.45; 330 / 10 − 17.45 = 15.55
    assert "leverage 18.91x" in lev.title and "add 15.55 USDT" in lev.body
    stale = at[("stale", "exchange:stale")]
    assert stale.title.startswith("data stale since 2026-01-01 00:13 UTC")
    assert stale.at == T0 + timedelta(minutes=16)  # the third failed cycle (14, 15, 16)
    # every cycle slept its interval (no real sleep), the reads failed only in the outage
    assert [r.read for r in reports].count(False) == 6
    assert all(s == 60.0 for s in clock.slept)


def test_the_sheet_shows_the_live_marks_and_keeps_the_traders_cells(clock, tmp_path) -> None:
    server = start([{"BTCUSDT": 61_000.0, "ETHUSDT": 2_900.0},
                    {"BTCUSDT": 57_000.0, "ETHUSDT": 2_950.0}], clock)
    try:
        book = rebalance_book(tmp_path)
        w = watcher(server, book, Collect(), clock)
        w.run_cycle()
        sheet = layout.REBALANCE_POSITIONS
        row = 2 + [r["symbol"] for r in _positions(book)].index("BTCUSDT")
        # the trader types a target: the watch never writes that cell
        book.write_ranges([sb.backend.Update(f"Positions!{sheet.letter('target_leverage')}{row}",
                                             [[4]])])
        clock.sleep(60)
        report = w.run_cycle()
    finally:
        server.stop()
    rows = {r["symbol"]: r for r in _positions(book)}
    assert rows["BTCUSDT"]["mark_price"] == 57_000 and rows["ETHUSDT"]["mark_price"] == 2_950
    assert rows["BTCUSDT"]["target_leverage"] == 4
    # the sheet's own computation of the live state: distance (57,000 − 52,300.87) / 57,000
    assert rows["BTCUSDT"]["liq_distance"] == pytest.approx((57_000 - 52_300.87) / 57_000,
                                                            abs=1e-4)
    assert report.positions[0].liq_distance == pytest.approx(rows["BTCUSDT"]["liq_distance"])
    assert len(rows) == 2  # updated in place, never appended again


def _positions(book: Any) -> list[dict[str, Any]]:
    [grid] = book.read_ranges(["Positions!A1:AB"])
    return [r for r in keyed(grid, layout.REBALANCE_POSITIONS) if r.get("symbol")]


def test_a_mark_oscillating_at_the_buffer_alerts_once(clock, tmp_path) -> None:
    # the 10 % buffer is crossed at 58,112.08 (52,300.87 / 0.9); re-armed at 11 %, 58,765.02
    around = [58_100.0, 58_130.0] * 5 + [58_700.0, 58_800.0, 58_100.0]
    server = start([{"BTCUSDT": m} for m in around], clock)
    try:
        sink = Collect()
        watcher(server, rebalance_book(tmp_path), sink, clock,
                rules=AdjustmentRule.build(min_liq_distance=0.10)).run(len(around))
    finally:
        server.stop()
    assert sink.kinds() == [("breach", f"{BTC}:min_liq_distance"),
                            ("recovery", f"{BTC}:min_liq_distance"),
                            ("breach", f"{BTC}:min_liq_distance")]
    assert [a.at for a in sink.got] == [T0, T0 + timedelta(minutes=11),
                                        T0 + timedelta(minutes=12)]


@pytest.mark.parametrize("k", [1, 3])
def test_the_stale_alert_comes_within_k_cycles_and_once(clock, tmp_path, k) -> None:
    script = [{"BTCUSDT": 61_000.0}, {"BTCUSDT": 61_000.0}] + [None] * 8
    server = start(script, clock)
    try:
        sink = Collect()
        reports = watcher(server, rebalance_book(tmp_path), sink, clock,
                          stale_after=k).run(len(script))
    finally:
        server.stop()
    assert sink.kinds() == [("stale", "exchange:stale")]
    assert sink.got[0].at == T0 + timedelta(minutes=1 + k)
    assert "since 2026-01-01 00:01 UTC" in sink.got[0].title  # the last good read
    # after the first cycle (markets' tiers): positions and balance, and one try a failed
    # cycle (no storm of retries against a broken exchange)
    assert [r.exchange_requests for r in reports[1:]] == [2] + [1] * 8


def test_once_runs_remember_what_they_said(clock, tmp_path) -> None:
    script = [{"BTCUSDT": m} for m in (61_000.0, 55_000.0, 55_500.0, 55_000.0, 60_000.0)]
    server = start(script, clock)
    state = tmp_path / "state.json"
    book = rebalance_book(tmp_path)
    sink = Collect()
    try:
        for _ in script:  # each run a new process would make: a new watcher, one cycle
            xw.run_cycle(client(server), book, sink, rules=RULE, state_path=state, clock=clock,
                         sleep=clock.sleep)
            clock.sleep(60)
    finally:
        server.stop()
    assert sink.kinds() == [
        ("breach", f"{BTC}:min_liq_distance"), ("breach", f"{BTC}:max_leverage"),
        ("breach", f"{BTC}:max_liq_probability"),
        ("recovery", f"{BTC}:min_liq_distance"), ("recovery", f"{BTC}:max_leverage"),
        ("recovery", f"{BTC}:max_liq_probability")]
    saved = json.loads(state.read_text())
    assert saved["fired"] == {} and saved["failures"] == 0


def test_a_closed_position_clears_its_alert_and_unreadable_rules_are_said(clock,
                                                                          tmp_path) -> None:
    server = start([{"BTCUSDT": 55_000.0}, {"BTCUSDT": None}, {"BTCUSDT": None}], clock)
    broken = {"now": False}

    def rules() -> AdjustmentRule:
        if broken["now"]:
            raise LeverageError("Rules!B9 (min_liq_distance): must be a rate, got 'ten'")
        return AdjustmentRule.build(min_liq_distance=0.10)

    sink = Collect()
    w = watcher(server, rebalance_book(tmp_path), sink, clock, rules=rules)
    try:
        w.run_cycle()
        clock.sleep(60)
        broken["now"] = True
        w.run_cycle()  # the rules break: said once, the last rules still apply
        clock.sleep(60)
        w.run_cycle()
        broken["now"] = False
        clock.sleep(60)
        w.run_cycle()
    finally:
        server.stop()
    assert sink.kinds() == [("breach", f"{BTC}:min_liq_distance"), ("stale", "rules:read"),
                            ("recovery", f"{BTC}:min_liq_distance"),
                            ("recovery", "rules:read")]
    assert "no longer open" in sink.got[2].title
    assert "Rules!B9" in sink.got[1].body


def test_a_cross_position_is_told_what_to_move_into_the_cross_wallet(clock, tmp_path) -> None:
    # ETHUSDT: cross short 0.5 at 3,000, marked 2,900, the only cross position of a 1,000 USDT
    # wallet (liquidation 4,980.08, distance 71.7 %); BTCUSDT isolated, at 61,000
    server = start([{"BTCUSDT": 61_000.0, "ETHUSDT": 2_900.0}], clock)
    try:
        sink = Collect()
        report = watcher(server, rebalance_book(tmp_path), sink, clock,
                         rules=AdjustmentRule.build(min_liq_distance=0.75, max_leverage=1.2)
                         ).run_cycle()
    finally:
        server.stop()
    eth = {a.key.split(":")[1]: a for a in sink.got if a.key.startswith("ETHUSDT")}
    assert sorted(eth) == ["max_leverage", "min_liq_distance"]

    def added(alert: Any) -> float:
        return float(alert.body.split("To restore it: add ")[1].split(" USDT")[0].replace(",", ""))

    buffer = added(eth["min_liq_distance"])
    assert "to the cross wallet" in eth["min_liq_distance"].body
    # the forward check: with that much more in the wallet, the core's cross liquidation
    # price is 75 % above the mark (2,900 × 1.75 = 5,075), to the cent
    liq = core.cross_liq_price("short", 0.5, 3_000, 1_000 + buffer, 0.0, 0.0, 0.004)
    assert liq == pytest.approx(5_075, abs=0.01 / 0.5)
    # the cross account's one leverage, 1,450 / (wallet + PnL 50), down to 1.2x
    lev = added(eth["max_leverage"])
    assert 1_450 / (1_000 + lev + 50) == pytest.approx(1.2, abs=1e-3)
    assert [p.margin_mode for p in report.positions] == ["isolated", "cross"]


def test_a_state_file_that_is_not_the_watchs_is_refused(tmp_path) -> None:
    bad = tmp_path / "state.json"
    bad.write_text("{not json")
    with pytest.raises(LeverageError, match="is not the watch's state"):
        xw.WatchState.load(bad)


def test_google_one_read_and_at_most_one_write_a_cycle(clock) -> None:
    path = [{"BTCUSDT": m} for m in (61_000.0, 60_000.0, 60_000.0, 55_000.0)]
    server = start(path, clock)
    try:
        with FakeSheets() as sheets:
            key = sheets.create_spreadsheet("Rebalance")
            book = sb.open_google(key, client=make_client(sheets, timeout=5))
            sb.init(book, "rebalance")
            sheets.reset_log()
            w = watcher(server, book, Collect(), clock)
            per_cycle = []
            for _ in path:
                sheets.reset_log()
                report = w.run_cycle()
                writes = [r for r in sheets.requests if r.method in ("POST", "PUT")]
                per_cycle.append((len(sheets.requests), len(writes), report.cells_written))
                clock.sleep(60)
            assert not sheets.server_errors
            marks = {r[1]: r[6] for r in sheets.values(key, "Positions")[1:]}
    finally:
        server.stop()
    assert [(n, w) for n, w, _ in per_cycle] == [(2, 1), (2, 1), (1, 0), (2, 1)]
    assert per_cycle[2][2] == 0  # nothing moved: nothing written
    assert marks["BTCUSDT"] == 55_000


def test_a_failed_write_alerts_once_and_its_recovery_too(clock, tmp_path) -> None:
    server = start([{"BTCUSDT": 61_000.0}], clock)
    book = rebalance_book(tmp_path)
    sink = Collect()
    w = watcher(server, book, sink, clock)
    header = f"Positions!{layout.REBALANCE_POSITIONS.letter('qty')}1"
    try:
        w.run_cycle()
        book.write_ranges([sb.backend.Update(header, [["Quantity"]])])  # a renamed column
        for _ in range(3):
            clock.sleep(60)
            report = w.run_cycle()
            assert report.write_error and "must read 'Qty'" in report.write_error
        book.write_ranges([sb.backend.Update(header, [["Qty"]])])
        clock.sleep(60)
        assert w.run_cycle().write_error is None
    finally:
        server.stop()
    assert sink.kinds() == [("write_failed", "workbook:write"), ("recovery", "workbook:write")]
    assert "must read 'Qty'" in sink.got[0].body


def test_the_daily_summary_comes_once_a_day(tmp_path) -> None:
    clock = Clock(T0 + timedelta(hours=7, minutes=58))
    server = rw.ScriptedBinance(rw.watch_account(), [{"BTCUSDT": 61_000.0}])
    server.start()
    try:
        sink = Collect()
        watcher(server, rebalance_book(tmp_path), sink, clock, interval=3600,
                daily_summary=xw.parse_hhmm("08:00")).run(30)
    finally:
        server.stop()
    summaries = [a for a in sink.got if a.kind == "summary"]
    assert [a.at for a in summaries] == [T0 + timedelta(hours=8, minutes=58),
                                        T0 + timedelta(days=1, hours=8, minutes=58)]
    assert "BTCUSDT-L-open: mark 61,000.00" in summaries[0].body
    assert "Since the last summary: 2 cycles" in summaries[0].body
    with pytest.raises(LeverageError, match="daily-summary must be a time like 08:00"):
        xw.parse_hhmm("8h")


def test_rules_come_from_the_journals_rules_sheet_and_edits_are_picked_up(tmp_path) -> None:
    journal = tmp_path / "journal.xlsx"
    book = sb.open_local(journal)
    sb.init(book, "journal")
    names = [r[0] for r in layout.RULE_ROWS]
    row = 2 + names.index("min_liq_distance")
    book.write_ranges([sb.backend.Update(f"Rules!B{row}", [[0.12]])])
    read = xw.rules_reader(journal)
    assert read().min_liq_distance == 0.12 and read().max_leverage is None
    book.write_ranges([sb.backend.Update(f"Rules!B{row}", [[0.2]])])
    assert read().min_liq_distance == 0.2
    assert xw.with_overrides(read(), {"max_leverage": "8"}).max_leverage == 8
    book.write_ranges([sb.backend.Update(f"Rules!B{row}", [[-1]])])
    with pytest.raises(LeverageError, match=r"Rules!B\d+ \(min_liq_distance\)"):
        read()


def test_cli_once_alerts_on_the_terminal_and_a_watch_that_cannot_alert_refuses(
        clock, tmp_path, monkeypatch, capsys) -> None:
    server = start([{"BTCUSDT": 55_000.0}], clock)
    monkeypatch.delenv("LEVERAGE_ALERT_URLS", raising=False)
    monkeypatch.setenv("LEVERAGE_EXCHANGE_KEY", API_KEY)
    monkeypatch.setenv("LEVERAGE_EXCHANGE_SECRET", API_SECRET)
    book = tmp_path / "rebalance.xlsx"
    args = ["watch", "--api-url", server.url, "--file", str(book), "--once",
            "--rule", "min_liq_distance=10%", "--rule", "max_leverage=40"]
    try:
        assert main(args) == 0
        out = capsys.readouterr().out
        assert "BREACH: BTCUSDT-L-open: liquidation closer than the buffer (distance 4.91%" in out
        assert "1 alert(s)" in out and "leverage above max" not in out
        assert main(args) == 0  # the second run remembers the first's alert
        assert "BREACH" not in capsys.readouterr().out
        assert (tmp_path / "rebalance.watch-state.json").exists()
        server.clear_log()
        alerts = tmp_path / "alerts.txt"
        alerts.write_text("foo://not-a-channel\n")
        assert main([*args, "--alerts", str(alerts)]) == 2
        assert "line 1: unknown channel scheme 'foo://'" in capsys.readouterr().err
        assert server.log == []  # refused before reading anything
    finally:
        server.stop()


def test_cli_refuses_a_journal_as_the_watched_workbook(tmp_path, monkeypatch, capsys) -> None:
    journal = tmp_path / "journal.xlsx"
    sb.init(sb.open_local(journal), "journal")
    server = rw.ScriptedBinance(rw.watch_account(), [{"BTCUSDT": 61_000.0}])
    server.start()
    monkeypatch.delenv("LEVERAGE_ALERT_URLS", raising=False)
    monkeypatch.setenv("LEVERAGE_EXCHANGE_KEY", API_KEY)
    monkeypatch.setenv("LEVERAGE_EXCHANGE_SECRET", API_SECRET)
    try:
        assert main(["watch", "--api-url", server.url, "--file", str(journal), "--once"]) == 2
    finally:
        server.stop()
    assert "give the journal with --rules" in capsys.readouterr().err


def test_channels_that_cannot_deliver_stop_the_watch_before_it_runs(tmp_path) -> None:
    server = rw.ScriptedBinance(rw.watch_account(), [{"BTCUSDT": 61_000.0}])
    server.start()
    try:
        with pytest.raises(LeverageError, match="no alert channel can deliver"):
            xw.watch(client(server), rebalance_book(tmp_path), Collect(fail_check=True))
        assert [p for p in server.paths() if "positionRisk" in p] == []
    finally:
        server.stop()


CHILD = textwrap.dedent("""
    # A watch in a process of its own: `watch BOOK STATE TARGET N` runs cycles until it is
    # stopped and, after N cycles, stops itself inside the next save of TARGET (workbook or
    # state) when half the bytes of its temporary file are on disk: it prints "mid-write PATH"
    # and waits for the parent's signal. `once BOOK STATE [BOOK STATE ...]` runs one cycle on
    # each pair (the next run, one process for all).
    # The wrap is the test's: tempfile.mkstemp and os.fdopen of this process only, so the
    # production code saves as always.
    import hashlib, os, signal, sys, tempfile, time
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    import leverage_exchange as xb, leverage_sheets as sb
    from leverage.models import AdjustmentRule
    from leverage_exchange import recorded_watch as rw, watch as xw
    from leverage_exchange.recorded_exchange import API_KEY, API_SECRET

    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as in a terminal
    mode = sys.argv[1]
    if mode == "watch":
        pairs = [(Path(sys.argv[2]), Path(sys.argv[3]))]
        target = {"workbook": pairs[0][0], "state": pairs[0][1]}[sys.argv[4]]
        arm_after = int(sys.argv[5])
    else:
        pairs = [(Path(b), Path(s)) for b, s in zip(sys.argv[2::2], sys.argv[3::2])]
        target, arm_after = None, 0

    temps, armed = {}, [False]
    real_mkstemp, real_fdopen = tempfile.mkstemp, os.fdopen

    def mkstemp(*args, **kwargs):
        fd, path = real_mkstemp(*args, **kwargs)
        temps[fd] = path
        return fd, path

    class StopMidWrite:
        def __init__(self, f, path, stop_at):
            self.f, self.path, self.room = f, path, stop_at

        def write(self, data):
            if len(data) < self.room:
                self.room -= len(data)
                return self.f.write(data)
            self.f.write(data[:self.room])
            self.f.flush()
            os.fsync(self.f.fileno())
            print("mid-write", self.path, flush=True)
            while True:  # until the parent's SIGINT (KeyboardInterrupt here) or SIGKILL
                time.sleep(3600)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self.f.__exit__(*exc)

    def fdopen(fd, *args, **kwargs):
        f = real_fdopen(fd, *args, **kwargs)
        path = temps.pop(fd, None)
        if armed[0] and path and os.path.basename(path).startswith(f".{target.name}."):
            armed[0] = False
            return StopMidWrite(f, path, target.stat().st_size // 2)
        return f

    tempfile.mkstemp, os.fdopen = mkstemp, fdopen

    def digest(p):
        return hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else "-"

    T0 = datetime(2026, 1, 1, tzinfo=UTC)
    marks = [61000.0 - 10 * i for i in range(500)]
    t = [T0]
    def sleep(s): t[0] += timedelta(seconds=s)
    server = rw.ScriptedBinance(rw.watch_account(), [{"BTCUSDT": m} for m in marks],
                                step=lambda: int((t[0] - T0).total_seconds() // 60))
    server.start()
    ex = xb.connect("binanceusdm", {"apiKey": API_KEY, "secret": API_SECRET},
                    api_url=server.url, rate_limit_ms=1)
    class Sink:
        def send(self, a): return []
        def check(self): pass
        def describe(self): return ["none"]

    for book, state in pairs:
        w = xw.Watcher(ex, sb.open_local(book), Sink(), state_path=state,
                       rules=AdjustmentRule.build(min_liq_distance=0.1), clock=lambda: t[0],
                       sleep=sleep)
        done = [0]

        def cycle(report, book=book, state=state):
            done[0] += 1
            print("cycle", digest(book), digest(state), flush=True)
            armed[0] = done[0] == arm_after

        w.run(None if mode == "watch" else 1, on_cycle=cycle)
    server.stop()
""")


class Child:
    """A child process of CHILD whose printed lines are read by a thread, so the test waits for
    a line with a hang guard instead of blocking forever."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, *args], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())
        self.lines.put("")  # the end of its output

    def until(self, prefix: str, hang_guard: float = 300.0) -> tuple[str, list[str]]:
        """The first printed line starting with ``prefix`` and the lines before it."""
        before: list[str] = []
        while True:
            line = self.lines.get(timeout=hang_guard)
            if line.startswith(prefix):
                return line, before
            if not line:
                self.process.wait()
                raise AssertionError(f"the child ended before {prefix!r}: "
                                     f"{self.process.stderr.read() if self.process.stderr else ''}")
            before.append(line)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def test_ctrl_c_or_kill_9_inside_a_save_leave_the_old_file_whole(tmp_path) -> None:
    # Three watches at once (one process start's cost), each stopped by the parent only once it
    # says it is inside a save, half of the temporary file written: Ctrl-C amid the workbook's
    # save, kill -9 amid the workbook's, kill -9 amid the state file's.
    cases = {"int-book": (signal.SIGINT, "workbook"), "kill-book": (signal.SIGKILL, "workbook"),
             "kill-state": (signal.SIGKILL, "state")}
    children: dict[str, Child] = {}
    files: dict[str, tuple[Path, Path]] = {}
    try:
        for name, (_, target) in cases.items():
            folder = tmp_path / name
            folder.mkdir()
            book, state = rebalance_book(folder).path, folder / "state.json"
            files[name] = (book, state)
            children[name] = Child("watch", str(book), str(state), target, "3")
        for name, child in children.items():
            sig, target = cases[name]
            line, before = child.until("mid-write ")
            assert len(before) == 3, before  # three whole cycles, then the stop inside a save
            _, old_book, old_state = before[-1].split()  # the files as the last cycle left them
            temp = Path(line.removeprefix("mid-write "))
            book, state = files[name]
            assert temp.parent == book.parent and temp.name.startswith(
                f".{(book if target == 'workbook' else state).name}.")
            half = temp.stat().st_size
            child.process.send_signal(sig)
            assert child.process.wait(timeout=120) == -sig  # Ctrl-C: uncaught KeyboardInterrupt
            # the file being saved is the old one at its path, byte for byte, and opens; a
            # cycle saves the workbook, then the state: amid the state's, the workbook is new
            assert _sha(state) == old_state, name
            assert json.loads(state.read_text())["cycles"] == 3
            assert (_sha(book) == old_book) == (target == "workbook"), name
            rows = _positions(sb.open_local(book))
            assert {r["symbol"] for r in rows} == {"BTCUSDT", "ETHUSDT"}
            mark = next(r["mark_price"] for r in rows if r["symbol"] == "BTCUSDT")
            assert mark == (60_980.0 if target == "workbook" else 60_970.0), name  # cycle 3, 4
            if sig == signal.SIGINT:  # the save's own cleanup ran
                assert not temp.exists()
            else:  # no cleanup runs under kill -9: the half file is left, and is half
                assert temp.stat().st_size == half > 0
                if target == "workbook":
                    assert half < book.stat().st_size and not zipfile.is_zipfile(temp)
                else:
                    with pytest.raises(json.JSONDecodeError):
                        json.loads(temp.read_text())
        # the next run (a new process, as after a reboot or cron's next minute) removes what
        # the killed saves left, and writes both files again
        killed = [name for name in cases if cases[name][0] == signal.SIGKILL]
        children["next"] = Child("once", *(str(f) for name in killed for f in files[name]))
        for _ in killed:
            children["next"].until("cycle ")
        assert children["next"].process.wait(timeout=120) == 0
        for name in killed:
            book, state = files[name]
            assert sorted(p.name for p in book.parent.iterdir()) == [
                "rebalance.xlsx", "state.json"], name
            assert json.loads(state.read_text())["cycles"] == 4
            rows = _positions(sb.open_local(book))
            assert next(r["mark_price"] for r in rows if r["symbol"] == "BTCUSDT") == 61_000.0
    finally:
        for child in children.values():
            child.close()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cli_without_once_says_when_it_starts_and_stops(clock, tmp_path, monkeypatch,
                                                       capsys) -> None:
    server = start([{"BTCUSDT": 61_000.0}], clock)
    monkeypatch.delenv("LEVERAGE_ALERT_URLS", raising=False)
    monkeypatch.setenv("LEVERAGE_EXCHANGE_KEY", API_KEY)
    monkeypatch.setenv("LEVERAGE_EXCHANGE_SECRET", API_SECRET)
    try:  # one cycle: no wait after it
        assert main(["watch", "--api-url", server.url, "--file", str(tmp_path / "r.xlsx"),
                     "--cycles", "1", "--rule", "max_leverage=20"]) == 0
    finally:
        server.stop()
    out = capsys.readouterr().out
    assert "STARTED: watch started" in out and "rules: max_leverage=20.0" in out
    assert "channels: terminal" in out
    assert "STOPPED: watch stopped: 1 cycles done" in out
    assert out.index("STARTED") < out.index("2 open") < out.index("STOPPED")


def test_bad_arguments_are_refused_with_their_name(tmp_path) -> None:
    with pytest.raises(LeverageError, match="interval must be > 0 seconds"):
        xw.Watcher(None, None, Collect(), interval=0)
    with pytest.raises(LeverageError, match="stale_after must be a whole number >= 1"):
        xw.Watcher(None, None, Collect(), stale_after=0)



def test_the_demo_watch_prints_the_alerts_and_leaves_the_workbook_as_it_was(tmp_path) -> None:
    import leverage_demo as demo

    journal = tmp_path / "journal.xlsx"
    sb.init(sb.open_local(journal), "journal", sample=True)  # its Rules: buffer 5 %, max 12x
    book = rebalance_book(tmp_path)
    before = book.path.read_bytes()
    lines = demo.watch_recorded(journal, book.path)
    assert book.path.read_bytes() == before
    text = "\n".join(lines)
    # 5 % of 55,000 below: 52,250; 0.006 × 60,000 − 52,250 × 0.005976 = 47.75, 47.45 posted
    assert "00:06 [breach] BTCUSDT-L-open: liquidation closer than the buffer (distance " \
           "4.91%, buffer 5.00%); add 0.30 USDT" in text
    assert "00:16 [stale] data stale since 2024-03-01 00:13 UTC" in text
    assert [line.split("]")[0].split("[")[1] for line in lines if "] " in line] == [
        "breach", "breach", "breach", "recovery", "recovery", "recovery", "stale", "recovery"]


@pytest.mark.parametrize("side", ["long", "short"])
def test_the_distance_the_odds_allow_has_exactly_those_odds(side: str) -> None:
    """The distance the probability rule's fix aims for: LIQ_PROBABILITY there is the rule's
    maximum (the core's SAFE_LEVERAGE inverted at mmr 0, not a search of the bridge's own)."""
    from leverage.planning import liq_probability

    v = xw.PositionView("P", "BTCUSDT", side, "isolated", 1.0, 60_000.0, 60_000.0, 6_000.0,
                        60_000.0, 0.0, 300.0, 10.0, 0.0, 0.0, 0.2, 0.005, 0.0)
    d = xw.distance_for_probability(v, 0.05, 0.8, 7)
    assert 0 < d < 1
    s = 1 if side == "long" else -1
    p = float(liq_probability(side, v.mark, v.mark * (1 - s * d), 0.8, 7))
    assert p == pytest.approx(0.05, rel=1e-6)
