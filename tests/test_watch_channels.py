"""A simulated day of ``leverage watch`` through every alert channel, end to end on loopback.

Real ccxt reads the scripted-marks Binance (``leverage_exchange.recorded_watch``); real gspread
writes the loopback Google Sheets server (tests/fake_sheets.py); the alerts go through
``leverage_exchange.notify.Channels`` to the terminal, a generic JSON webhook, email (SMTP with
STARTTLS and AUTH, aiosmtpd), Telegram, Discord and Slack (apprise's own plugins, their hosts
played by the TLS proxy of tests/fake_channels.py) and, on Linux where dbus-python is installed,
the desktop (apprise's ``dbus://`` over a private session bus to the notification server of
tests/fake_desktop.py). A fake clock: the day runs in seconds.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest

pytest.importorskip("ccxt")
pytest.importorskip("apprise")

from fake_channels import (
    DISCORD_TOKEN,
    HOOK_SECRET,
    MAIL_PASSWORD,
    MAIL_USER,
    SLACK_C,
    TG_TOKEN,
    ServiceProxy,
    SmtpServer,
    TestPki,
    WebhookReceiver,
    every_channel,
    route_services,
)
from fake_desktop import NotificationServer, PrivateSessionBus, missing
from fake_exchange import API_KEY, API_SECRET
from fake_sheets import FakeSheets, make_client

import leverage_exchange as xb
import leverage_sheets as sb
from leverage.models import AdjustmentRule
from leverage_exchange import recorded_watch as rw
from leverage_exchange.notify import Alert, Channels
from leverage_exchange.watch import CycleReport, Watcher, parse_hhmm

T0 = datetime(2026, 12, 7, tzinfo=UTC)
INTERVAL = 20 * 60  # a cycle every 20 minutes: 72 cycles a day
BTC = "BTCUSDT-L-open"


def day_script() -> list[rw.Step]:
    """72 cycles: quiet until 06:00, a slow drift into the 10 % buffer until 09:00, a gap
    through it, a recovery by noon, an outage of 2 hours in the afternoon, quiet again."""
    def at(m: float) -> rw.Step:
        return {"BTCUSDT": m, "ETHUSDT": 2_900.0}

    quiet = [at(61_000.0)] * 18  # 00:00 to 05:40
    drift = [at(m) for m in rw.drift(61_000, 58_200, 9)]  # 06:00 to 08:40, 10.1 % at the end
    gap = [at(55_000.0), at(54_500.0), at(55_500.0)]  # 09:00 to 09:40
    back = [at(m) for m in rw.drift(56_500, 60_000, 6)]  # 10:00 to 11:40
    calm = [at(60_000.0)] * 12  # 12:00 to 15:40
    outage: list[rw.Step] = [None] * 6  # 16:00 to 17:40
    evening = [at(60_500.0)] * 18  # 18:00 to 23:40
    return quiet + drift + gap + back + calm + outage + evening


@pytest.fixture(scope="module")
def desktop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NotificationServer | None]:
    """The desktop's notification server on a private session bus, or None where apprise's
    ``dbus://`` cannot run here (the day then runs without the desktop channel)."""
    if missing() is not None:
        yield None
        return
    bus = PrivateSessionBus(tmp_path_factory.mktemp("session-bus"))
    try:
        server = NotificationServer(bus.address)
        try:
            with pytest.MonkeyPatch.context() as env:
                # where libdbus looks for the session bus (read once, at the first connection)
                env.setenv("DBUS_SESSION_BUS_ADDRESS", bus.address)
                yield server
        finally:
            server.close()
    finally:
        bus.close()


@dataclass
class Day:
    reports: list[CycleReport]
    sent: list[Alert]
    per_cycle: list[tuple[int, int]]  # Sheets requests, of which writes, each cycle
    terminal: str
    hooks: WebhookReceiver
    proxy: ServiceProxy
    smtp: SmtpServer


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory,
        desktop: NotificationServer | None) -> Iterator[Day]:
    """The simulated day, run once: every channel reachable here is on."""
    folder = tmp_path_factory.mktemp("channels")
    pki = TestPki(folder)
    hooks, proxy = WebhookReceiver(), ServiceProxy(pki)
    smtp = SmtpServer(pki, MAIL_USER, MAIL_PASSWORD)
    alerts = folder / "alerts.txt"
    alerts.write_text(every_channel(hooks.port, smtp.port)
                      + ("desktop://\n" if desktop is not None else ""))
    try:
        with pytest.MonkeyPatch.context() as env:
            route_services(env, proxy.url, pki.ca_file)
            # apprise spaces two sends to one email server by 5.5 s and to Slack by 1.2 s
            # (real time, its plugins' request_rate_per_sec): kept in use, but a day of fake
            # time here
            from apprise.plugins.email import NotifyEmail
            from apprise.plugins.slack import NotifySlack

            env.setattr(NotifyEmail, "request_rate_per_sec", 0)
            env.setattr(NotifySlack, "request_rate_per_sec", 0)
            yield simulate_day(alerts, hooks, proxy, smtp)
    finally:
        hooks.close()
        proxy.close()
        smtp.close()


def simulate_day(alerts: Path, hooks: WebhookReceiver, proxy: ServiceProxy,
                 smtp: SmtpServer) -> Day:
    now = [T0]

    def sleep(seconds: float) -> None:
        now[0] += timedelta(seconds=seconds)

    script = day_script()
    assert len(script) == 72
    terminal = io.StringIO()
    channels = Channels.from_config(alerts, env={}, terminal=terminal)
    channels.check()
    rule = AdjustmentRule.build(min_liq_distance=0.10, max_leverage=10)
    server = rw.ScriptedBinance(rw.watch_account(), script,
                                step=lambda: int((now[0] - T0).total_seconds() // INTERVAL))
    server.start()
    per_cycle: list[tuple[int, int]] = []
    try:
        with FakeSheets() as sheets:
            key = sheets.create_spreadsheet("Rebalance")
            book = sb.open_google(key, client=make_client(sheets, timeout=10))
            sb.init(book, "rebalance")
            exchange = xb.connect("binanceusdm", {"apiKey": API_KEY, "secret": API_SECRET},
                                  api_url=server.url, timeout_ms=30_000, rate_limit_ms=1)
            watcher = Watcher(exchange, book, channels, rules=rule, interval=INTERVAL,
                              stale_after=3, clock=lambda: now[0], sleep=sleep,
                              daily_summary=parse_hhmm("23:30"))
            seen = [len(sheets.requests)]  # from the watch's first cycle on

            def count(_report: object) -> None:
                log = sheets.requests[seen[0]:]
                seen[0] += len(log)
                per_cycle.append((len(log), sum(r.method in ("POST", "PUT") for r in log)))

            reports = watcher.run(72, on_cycle=count)
            assert not sheets.server_errors
    finally:
        server.stop()
    assert not server.server_errors
    sent = [a for r in reports for a in r.alerts]
    return Day(reports, sent, per_cycle, terminal.getvalue(), hooks, proxy, smtp)


def test_a_simulated_day_through_every_channel(day: Day) -> None:
    reports, sent, per_cycle = day.reports, day.sent, day.per_cycle
    expected = [
        ("breach", f"{BTC}:min_liq_distance", "09:00"), ("breach", f"{BTC}:max_leverage", "09:00"),
        ("recovery", f"{BTC}:min_liq_distance", "11:20"),
        ("recovery", f"{BTC}:max_leverage", "11:20"),
        ("stale", "exchange:stale", "16:40"), ("recovery", "exchange:stale", "18:00"),
        ("summary", "summary:2026-12-07", "23:40"),
    ]
    assert [(a.kind, a.key, f"{a.at:%H:%M}") for a in sent] == expected
    assert [r.failed_channels for r in reports if r.failed_channels] == []
    breach = sent[0]
    assert "add 16.74 USDT to the position" in breach.body  # see test_watch: 64.19 − 47.45
    assert "covers it" in breach.body
    assert sent[4].title.startswith("data stale since 2026-12-07 15:40 UTC")
    # the Sheets quota: one read and at most one write a cycle (none while the exchange is out)
    assert all(n <= 2 and w <= 1 for n, w in per_cycle)
    assert [n for n, _ in per_cycle[48:54]] == [0] * 6

    titles = [a.title for a in sent]
    hooked = [json.loads(h.body)["title"] for h in day.hooks.wait_for(len(sent))]
    assert hooked == titles
    mails = day.smtp.wait_for(len(sent))
    parsed = [message_from_bytes(m.body, policy=policy.default) for m in mails]
    assert [m["Subject"] for m in parsed] == titles
    assert {m["X-Application"] for m in parsed} == {"leverage watch"}  # not "Apprise"
    by_host: dict[str, list[str]] = {}
    for r in day.proxy.wait_for(3 * len(sent)):
        by_host.setdefault(r.host, []).append(r.text())
    assert sorted(by_host) == ["api.telegram.org", "discord.com", "hooks.slack.com"]
    for host, bodies in by_host.items():
        assert len(bodies) == len(sent), host
        assert sum("add 16.74 USDT" in b for b in bodies) == 1, host  # the breach, once
    printed = day.terminal
    assert printed.count("BREACH: ") == 2 and printed.count("STALE: ") == 1
    for secret in (TG_TOKEN, DISCORD_TOKEN, SLACK_C, MAIL_PASSWORD, HOOK_SECRET):
        assert secret not in printed


def test_the_same_day_on_the_linux_desktop(day: Day, desktop: NotificationServer | None) -> None:
    """apprise's ``dbus://`` (dbus-python, libdbus) to a notification server on a real session
    bus: the summaries and bodies the desktop shows, the same alerts as every other channel."""
    if desktop is None:
        pytest.skip(f"desktop notifications cannot be delivered here: {missing()}")
    shown = desktop.wait_for(len(day.sent))
    assert desktop.refused == []  # every Notify had the spec's signature
    # apprise keeps a desktop notification to its first 10 lines, joined with CR LF
    assert [(n.summary, n.body) for n in shown] == [
        (a.title, "\r\n".join(a.body.splitlines()[:10])) for a in day.sent
    ]
    assert all(n.app_name == "leverage watch" and n.replaces_id == 0 for n in shown)
    # the breach's action is within what the desktop shows, not cut off below line 10
    assert ["add 16.74 USDT to the position" in n.body for n in shown].count(True) == 1
