"""Alert channels (exchange_bridge/notify.py) delivered end to end on loopback.

Telegram, Discord and Slack go through apprise's own plugins to their real API paths; the
HTTPS proxy of tests/fake_channels.py plays the three hosts (TLS with a test CA), so what is
asserted is the request each service would receive. Email goes over SMTP with STARTTLS and
AUTH to aiosmtpd; the generic webhook to a loopback HTTP receiver. Desktop notifiers: the
per-OS choice, the refusal where the notifier cannot run, and a desktop with no session bus
here; tests/test_watch_channels.py delivers a simulated day to a notification server on a
private session bus.
"""

from __future__ import annotations

import html
import io
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from fake_channels import (
    DISCORD_ID,
    DISCORD_TOKEN,
    HOOK_SECRET,
    MAIL_PASSWORD,
    MAIL_USER,
    SLACK_A,
    SLACK_B,
    SLACK_C,
    TG_CHAT,
    TG_TOKEN,
    ServiceProxy,
    SmtpServer,
    TestPki,
    WebhookReceiver,
    every_channel,
    route_services,
)
from fake_desktop import missing

from leverage.errors import InputError, LeverageError
from leverage_exchange.notify import ENV_VAR, Alert, Channels, desktop_scheme
from leverage_exchange.notify import main as notify_main

SECRETS = (TG_TOKEN, DISCORD_TOKEN, SLACK_C, SLACK_B, MAIL_PASSWORD, HOOK_SECRET, "AAHdqTcvCH1v")

AT = datetime(2026, 12, 7, 3, 14, 15, tzinfo=UTC)
BREACH = Alert(
    kind="breach",
    key="breach:binance:BTC/USDT:USDT:liq_buffer",
    title="BTC/USDT:USDT long: liquidation buffer 7.9 % < rule 10 %",
    body="mark 61,250.00, liquidation 56,410.00\nadd 1,840.25 USDT margin to restore 10 %\n"
    "free balance 5,000.00 USDT covers it",
    at=AT,
)


def test_alert_rejects_bad_fields() -> None:
    with pytest.raises(InputError, match="kind must be one of"):
        Alert("panic", "k", "t", "b", AT)
    with pytest.raises(InputError, match="at must be a timezone-aware"):
        Alert("breach", "k", "t", "b", datetime(2026, 12, 7))
    with pytest.raises(InputError, match="title must be one non-blank line"):
        Alert("breach", "k", "two\nlines", "b", AT)
    with pytest.raises(InputError, match="key must be"):
        Alert("breach", " ", "t", "b", AT)


def test_terminal_prints_the_alert_in_utc() -> None:
    out = io.StringIO()
    channels = Channels.from_config(env={}, terminal=out)
    assert channels.describe() == ["terminal"]
    channels.check()
    in_paris = AT.astimezone(timezone(timedelta(hours=1)))
    later = Alert("recovery", "k", "BTC recovered", "buffer 12 %", in_paris)
    assert channels.send(BREACH) == []
    assert channels.send(later) == []
    text = out.getvalue()
    assert text.startswith(f"[2026-12-07 03:14:15 UTC] BREACH: {BREACH.title}\n")
    assert "    add 1,840.25 USDT margin to restore 10 %\n" in text
    assert "[2026-12-07 03:14:15 UTC] RECOVERY: BTC recovered\n    buffer 12 %\n" in text


def test_no_channel_at_all_is_refused_by_check() -> None:
    channels = Channels.from_config(env={}, terminal=None)
    assert channels.describe() == []
    with pytest.raises(LeverageError, match="no alert channel"):
        channels.check()


def test_apprise_is_imported_only_for_other_channels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # as if not installed
    assert Channels.from_config(env={}, terminal=io.StringIO()).describe() == ["terminal"]
    hint = r'need apprise, the \[watch\] extra: pip install "leverage-toolkit\[watch\]"'
    with pytest.raises(LeverageError, match=hint):
        Channels.from_config(env={ENV_VAR: "json://127.0.0.1:9/x"}, terminal=None)


def test_bad_config_names_the_line_and_hides_secrets(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alerts = tmp_path / "alerts.txt"
    alerts.write_text(f"# mine\n\njson://127.0.0.1:9/{HOOK_SECRET}\nfoo://{MAIL_PASSWORD}@x\n")
    with pytest.raises(LeverageError) as error:
        Channels.from_config(alerts, env={})
    assert str(error.value) == (
        f"alerts file {alerts} line 4: unknown channel scheme 'foo://' (examples: json, mailtos, "
        "tgram, discord, slack, desktop; see apprise's list of services)"
    )
    alerts.write_text(f"tgram://{TG_TOKEN[:9]}\n")  # a bot token without its secret half
    with pytest.raises(LeverageError, match=r"line 1: malformed 'tgram://' URL") as error:
        Channels.from_config(alerts, env={})
    assert TG_TOKEN[:9] not in str(error.value)
    alerts.write_text(f"mailtos://{MAIL_USER}:{MAIL_PASSWORD}@\n")  # no server
    with pytest.raises(LeverageError, match=r"line 1: malformed 'mailtos://' URL") as error:
        Channels.from_config(alerts, env={})
    assert MAIL_PASSWORD not in str(error.value)
    alerts.write_text(f"{MAIL_PASSWORD}\n")
    with pytest.raises(LeverageError, match="line 1: expected a channel URL") as error:
        Channels.from_config(alerts, env={})
    assert MAIL_PASSWORD not in str(error.value)
    with pytest.raises(LeverageError, match=r"alerts file .*missing.txt cannot be read: No such"):
        Channels.from_config(tmp_path / "missing.txt", env={})
    with pytest.raises(LeverageError, match=rf"\${ENV_VAR} item 2: unknown channel scheme 'nope://'"):
        Channels.from_config(env={ENV_VAR: "json://127.0.0.1:9/a, nope://x"})
    assert "Unparseable" in caplog.text  # apprise did say why, and masked
    for secret in (TG_TOKEN[:9], MAIL_PASSWORD, HOOK_SECRET):
        assert secret not in caplog.text, secret


def test_env_urls_split_on_commas_and_spaces_and_duplicates_drop() -> None:
    urls = f"json://127.0.0.1:9/{HOOK_SECRET},  json://127.0.0.1:9/other json://127.0.0.1:9/{HOOK_SECRET}"
    channels = Channels.from_config(env={ENV_VAR: urls}, terminal=None)
    assert channels.describe() == ["json://127.0.0.1:9/…", "json://127.0.0.1:9/… (#2)"]


def test_desktop_picks_the_notifier_of_each_os(monkeypatch: pytest.MonkeyPatch) -> None:
    assert desktop_scheme("win32", lambda s: False) == "windows"
    assert desktop_scheme("darwin", lambda s: False) == "macosx"
    assert desktop_scheme("linux", lambda s: s == "glib") == "glib"
    assert desktop_scheme("linux", lambda s: s in {"dbus", "gnome"}) == "dbus"
    assert desktop_scheme("linux", lambda s: False) == "dbus"  # refused below, with the reason
    # On this headless Linux none of them can deliver: the watch refuses at start, saying why,
    # instead of dropping alerts at night.
    with pytest.raises(LeverageError, match=r"item 1: 'windows://' cannot deliver on this system"):
        Channels.from_config(env={ENV_VAR: "desktop://"}, platform="win32")
    with pytest.raises(LeverageError, match=r"item 1: 'macosx://' cannot deliver on this system"):
        Channels.from_config(env={ENV_VAR: "desktop://"}, platform="darwin")
    try:
        channels = Channels.from_config(env={ENV_VAR: "desktop://"}, platform="linux")
    except LeverageError as error:
        assert "cannot deliver on this system (" in str(error)
    else:  # dbus-python is installed: the URL is accepted as the OS's notifier
        assert channels.describe()[1].split("://")[0] in {"dbus", "glib", "gnome"}


def test_a_desktop_without_a_session_bus_fails_its_alerts_and_says_so(tmp_path) -> None:
    # cron gives no DBUS_SESSION_BUS_ADDRESS: each desktop alert fails, named, and the other
    # channels still deliver (a process of its own: libdbus reads the address once a process)
    if (why := missing()) is not None:
        pytest.skip(f"desktop notifications cannot be tried here: {why}")
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR")}
    env.update(DBUS_SESSION_BUS_ADDRESS=f"unix:path={tmp_path / 'no-bus'}",
               **{ENV_VAR: "desktop://"})
    done = subprocess.run([sys.executable, "-m", "leverage_exchange.notify"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[-2:] == ["sent    terminal", "FAILED  dbus://_"]
    assert "STARTED: leverage: test alert" in done.stdout
    assert "alert channel dbus://_ refused the alert" in done.stderr


# ----------------------------------------------------------------------------- end to end


@dataclass
class World:
    pki: TestPki
    hooks: WebhookReceiver
    proxy: ServiceProxy
    smtp: SmtpServer
    alerts: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("channels")
    pki = TestPki(folder)
    hooks, proxy = WebhookReceiver(), ServiceProxy(pki)
    smtp = SmtpServer(pki, MAIL_USER, MAIL_PASSWORD)
    alerts = folder / "alerts.txt"
    alerts.write_text("# one channel a line\n" + every_channel(hooks.port, smtp.port))
    with pytest.MonkeyPatch.context() as env:
        route_services(env, proxy.url, pki.ca_file)
        try:
            yield World(pki, hooks, proxy, smtp, alerts)
        finally:
            hooks.close()
            proxy.close()
            smtp.close()


def test_every_channel_receives_the_alert_and_no_secret_leaks(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    out = io.StringIO()
    channels = Channels.from_config(world.alerts, env={}, terminal=out)
    names = channels.describe()
    assert names == [
        "terminal",
        f"json://127.0.0.1:{world.hooks.port}/…",
        f"mailtos://alerts:****@127.0.0.1:{world.smtp.port}/trader%40example.org",
        f"tgram://1...w/{TG_CHAT}",
        "discord://1...6/A...9",
        "slack://T...2/A...D/T...Q/%23alerts",
    ]
    channels.check()
    caplog.set_level(logging.DEBUG)  # apprise and urllib3 write full request URLs at DEBUG
    assert channels.send(BREACH) == []
    channels.check()

    hook = world.hooks.wait_for(1)[0]
    assert hook.path == f"/hook/{HOOK_SECRET}"
    payload = json.loads(hook.body)
    assert (payload["title"], payload["message"], payload["type"]) == (
        BREACH.title, BREACH.body, "failure",
    )

    by_host = {r.host: r for r in world.proxy.wait_for(3)}
    assert world.proxy.refused == []
    telegram = by_host["api.telegram.org"]
    assert telegram.path == f"/bot{TG_TOKEN}/sendMessage"
    sent = json.loads(telegram.body)
    assert str(sent["chat_id"]) == TG_CHAT
    assert sent["parse_mode"] == "HTML"  # the "<" of the title arrives escaped, shown as typed
    assert f"<b>{html.escape(BREACH.title, quote=False)}</b>" in sent["text"]
    assert "add 1,840.25 USDT margin" in sent["text"]
    discord = by_host["discord.com"]
    assert discord.path.startswith(f"/api/webhooks/{DISCORD_ID}/{DISCORD_TOKEN}")
    assert BREACH.title in discord.text() and "add 1,840.25 USDT margin" in discord.text()
    slack = by_host["hooks.slack.com"]
    assert slack.path == f"/services/{SLACK_A}/{SLACK_B}/{SLACK_C}"
    posted = json.loads(slack.body)
    assert posted["channel"] == "#alerts"
    # Slack's message format escapes <, > and & (shown as typed)
    assert posted["attachments"][0]["title"] == html.escape(BREACH.title, quote=False)
    assert "add 1,840.25 USDT margin" in posted["attachments"][0]["text"]

    mail = world.smtp.wait_for(1)[0]
    assert mail.path == "trader@example.org" and mail.headers["tls"] == "True"
    assert world.smtp.handler.logins == [MAIL_USER]
    message = message_from_bytes(mail.body, policy=policy.default)
    assert message["Subject"] == BREACH.title
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "add 1,840.25 USDT margin to restore 10 %" in text

    # The secrets reached the services (above) and nowhere else.
    logged = caplog.text
    assert "Telegram POST URL: https://api.telegram.org/bot****/sendMessage" in logged
    for secret in SECRETS:
        assert secret not in logged, secret
        assert secret not in out.getvalue(), secret
        assert not any(secret in name for name in names), secret


def test_a_failing_raising_or_hanging_channel_does_not_block_the_others(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    from apprise.decorators import notify

    @notify(on="boomtest")
    def boom(body: str, title: str, notify_type: str, *args: object, **kwargs: object) -> bool:
        raise RuntimeError(f"plugin bug while holding {HOOK_SECRET}")

    port = world.hooks.port
    urls = (
        f"json://127.0.0.1:{port}/hang/{HOOK_SECRET}?rto=60 json://127.0.0.1:{port}/fail "
        f"boomtest://{HOOK_SECRET}@x json://127.0.0.1:{port}/ok"
    )
    out = io.StringIO()
    channels = Channels.from_config(env={ENV_VAR: urls}, terminal=out, timeout=8.0)
    _terminal, hang, fail, raising, _ok = channels.describe()
    before = len(world.hooks.requests)
    started = time.monotonic()
    failed = channels.send(BREACH)
    took = time.monotonic() - started
    assert failed == [hang, fail, raising]
    # bounded by the timeout (8 s: long enough for a healthy loopback channel on a busy
    # machine), not by the hanging receiver (held 60 s)
    assert took < 45
    paths = [r.path for r in world.hooks.wait_for(before + 3)[before:]]
    assert sorted(paths) == sorted([f"/hang/{HOOK_SECRET}", "/fail", "/ok"])
    assert BREACH.title in out.getvalue()
    # Still hanging (its read timeout is 60 s): the next alert skips it at once rather than
    # starting a second thread.
    assert channels.send(BREACH) == [hang, fail, raising]
    assert f"alert channel {hang} is still busy" in caplog.text
    assert HOOK_SECRET not in caplog.text
    channels.check()  # the terminal and /ok deliver

    alone = Channels.from_config(env={ENV_VAR: f"json://127.0.0.1:{port}/fail"}, terminal=None)
    alone.check()  # not tried yet
    assert alone.send(BREACH) == alone.describe()
    with pytest.raises(LeverageError, match="no alert channel delivered the latest alert"):
        alone.check()


def test_test_alert_command_says_which_channel_failed(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    port = world.hooks.port
    alerts = tmp_path / "alerts.txt"
    alerts.write_text(f"json://127.0.0.1:{port}/ok/{HOOK_SECRET}\njson://127.0.0.1:{port}/fail\n")
    out = io.StringIO()
    before = len(world.hooks.requests)
    assert notify_main(["--alerts", str(alerts)], out=out) == 1
    assert out.getvalue().endswith(
        f"sent    terminal\nsent    json://127.0.0.1:{port}/…\n"
        f"FAILED  json://127.0.0.1:{port}/… (#3)\n"
    )
    assert "STARTED: leverage: test alert" in out.getvalue()
    received = world.hooks.wait_for(before + 2)[before:]
    assert sorted(r.path for r in received) == ["/fail", f"/ok/{HOOK_SECRET}"]
    assert all(json.loads(r.body)["title"] == "leverage: test alert" for r in received)

    alerts.write_text(f"foo://{HOOK_SECRET}\n")
    assert notify_main(["--alerts", str(alerts)], out=out) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: alerts file {alerts} line 1: unknown channel scheme 'foo://'")
    assert HOOK_SECRET not in error
