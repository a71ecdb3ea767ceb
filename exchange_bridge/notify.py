"""Alert channels for ``leverage watch``: the terminal, plus any apprise URL.

An :class:`Alert` is what the watch loop wants to say; :class:`Channels` says it on every
channel the trader configured and reports which ones failed. Channels other than the terminal
go through `apprise <https://github.com/caronc/apprise>`_ (one URL per channel), imported only
when such a channel is configured (``pip install "leverage-toolkit[watch]"``).

Configuration (both sources add up, duplicates are dropped):

* a file (``--alerts FILE``): one apprise URL per line; blank lines and lines starting with
  ``#`` are skipped;
* the environment variable ``LEVERAGE_ALERT_URLS``: URLs separated by commas or spaces.

``desktop://`` picks the desktop notifier of the running OS: ``windows://`` on Windows,
``macosx://`` on macOS, the first of ``dbus://``, ``glib://``, ``gnome://`` that apprise can use
on Linux (``pip install "leverage-toolkit[watch,desktop]"`` brings dbus-python on Linux and
pywin32 on Windows; macOS needs Homebrew's ``terminal-notifier``). The sender is named
"leverage watch" (:data:`APP_NAME`): the app a desktop notification shows.

Secrets in the URLs (bot tokens, webhook tokens, passwords) are never printed: channel names
come from apprise's privacy URL (``tgram://1...w/987654321``), the paths of generic webhooks
are hidden, and every secret a channel holds is masked in the log records of apprise, urllib3
and this module (apprise and urllib3 write full request URLs, tokens included, at DEBUG).

One channel that fails, raises or hangs never blocks the others: each delivery runs in its own
thread and is waited for at most ``timeout`` seconds; a channel still busy with an earlier
alert is reported failed at once instead of piling up threads.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from leverage.errors import InputError, LeverageError

log = logging.getLogger(__name__)

ENV_VAR = "LEVERAGE_ALERT_URLS"
KINDS = ("breach", "recovery", "stale", "write_failed", "summary", "started", "stopped")
# Seconds a channel gets for one alert, above apprise's own socket timeouts (4 s HTTP, 15 s SMTP
# connect) so that they, not this cut-off, normally end a dead channel.
DEFAULT_TIMEOUT = 20.0
APP_NAME = "leverage watch"
INSTALL_HINT = 'the [watch] extra: pip install "leverage-toolkit[watch]"'

# apprise's notify types colour the message (Slack/Discord) and pick the desktop icon.
_NOTIFY_TYPE = {
    "breach": "failure",
    "write_failed": "failure",
    "stale": "warning",
    "recovery": "success",
    "summary": "info",
    "started": "info",
    "stopped": "info",
}
# Generic webhooks often carry their token in the path (…/hooks/<token>): apprise's privacy URL
# shows the path, so these names hide it and the path counts as a secret.
_GENERIC_WEBHOOKS = frozenset({"json", "jsons", "form", "forms", "xml", "xmls"})
_DESKTOP_BY_OS = {"win32": ("windows",), "darwin": ("macosx",)}
_DESKTOP_LINUX = ("dbus", "glib", "gnome")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True)
class Alert:
    """One message of the watch loop.

    ``kind`` is one of :data:`KINDS`; ``key`` a stable dedupe key (e.g.
    ``"breach:binance:BTC/USDT:USDT:liq_buffer"``); ``title`` one line; ``body`` plain text;
    ``at`` a timezone-aware time (shown in UTC).
    """

    kind: str
    key: str
    title: str
    body: str
    at: datetime

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if not isinstance(self.key, str) or not self.key.strip():
            raise InputError(f"key must be a non-blank string, got {self.key!r}")
        if not isinstance(self.title, str) or not self.title.strip() or "\n" in self.title:
            raise InputError(f"title must be one non-blank line, got {self.title!r}")
        if not isinstance(self.body, str):
            raise InputError(f"body must be a string, got {type(self.body).__name__}")
        if not isinstance(self.at, datetime) or self.at.utcoffset() is None:
            raise InputError(f"at must be a timezone-aware datetime, got {self.at!r}")

    def when(self) -> str:
        """``at`` in UTC as ``2026-12-07 14:05:30 UTC``."""
        return (self.at - (self.at.utcoffset() or timedelta(0))).strftime("%Y-%m-%d %H:%M:%S UTC")


# --------------------------------------------------------------------------- redaction


class _Redactor(logging.Filter):
    """Masks every registered secret in the records of the loggers it is attached to.

    Attached to the loggers that write request URLs (apprise's plugins log the Telegram bot
    URL, urllib3 the request line), so a DEBUG log never holds a token."""

    LOGGERS = ("apprise", "urllib3.connectionpool", "urllib3.connection", "requests", __name__)

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    # Shorter pieces (a path segment "a", a port) are no secrets, and masking them would
    # garble every log line.
    MIN_LENGTH = 4

    def add(self, secrets: Iterable[str]) -> None:
        with self._lock:
            self._secrets.update(s for s in secrets if len(s) >= self.MIN_LENGTH)
            # longest first, so a token is masked whole before any of its pieces
            ordered = sorted(self._secrets, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, ordered))) if ordered else None

    def redact(self, text: str) -> str:
        pattern = self._pattern
        return pattern.sub("****", text) if pattern is not None else text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._pattern is None:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: keep only what cannot hold arguments
            message = str(record.msg)
        if record.exc_info:
            message += "\n" + logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
            record.exc_text = None
        record.msg = self.redact(message)
        record.args = None
        return True


_REDACTOR = _Redactor()
for _name in _Redactor.LOGGERS:
    logging.getLogger(_name).addFilter(_REDACTOR)


def redact(text: str) -> str:
    """``text`` with every secret of every configured channel replaced by ``****``."""
    return _REDACTOR.redact(text)


def _url_parts(url: str) -> set[str]:
    """User, password, host, path segments and query values of ``url``, unquoted."""
    parts = urlsplit(url)
    found: set[str] = set()
    userinfo, _, hostport = parts.netloc.rpartition("@")
    if userinfo:
        user, _, password = userinfo.partition(":")
        found.update({unquote(user), unquote(password)})
    host, _, port = hostport.rpartition(":")
    found.add(unquote(host if port.isdigit() else hostport))
    found.update(unquote(seg) for seg in parts.path.split("/"))
    found.update(value for _, value in parse_qsl(parts.query))
    found.discard("")
    return found


def _secrets_of(plugin: Any, scheme: str) -> set[str]:
    """What apprise itself masks in the privacy URL (tokens, keys, passwords), and for generic
    webhooks the whole path and the header values, in plain and percent-encoded forms."""
    full = str(plugin.url(privacy=False))
    private = str(plugin.url(privacy=True))
    secrets = _url_parts(full) - _url_parts(private)
    password = urlsplit(full).password
    if password:
        secrets.add(unquote(password))
    if scheme in _GENERIC_WEBHOOKS:
        parts = urlsplit(full)
        # the whole path, as request lines and logged URLs show it (its segments one by one
        # would mask common words such as "hook" everywhere)
        secrets.update({parts.path.strip("/"), unquote(parts.path.strip("/"))})
        secrets.update(v for k, v in parse_qsl(parts.query) if k[:1] in "+-:")
    secrets.discard("")
    return secrets | {quote(s, safe="") for s in secrets}


def _crude_secrets(url: str) -> set[str]:
    """Every piece of a URL not loaded yet, whole and split, to mask what apprise logs about
    it while parsing it."""
    rest = _SCHEME.sub("", url)
    return {rest, *re.split(r"[/:@?&=#,]+", rest)}


# --------------------------------------------------------------------------- channels


@dataclass
class _Channel:
    name: str  # redacted, safe to print
    deliver: Callable[[Alert], bool]
    busy: threading.Event
    last_ok: bool | None = None


def _format_terminal(alert: Alert) -> str:
    head = f"[{alert.when()}] {alert.kind.upper()}: {alert.title}"
    lines = [head, *("    " + line for line in alert.body.splitlines())]
    return "\n".join(lines) + "\n"


def _terminal_channel(stream: TextIO) -> _Channel:
    def deliver(alert: Alert) -> bool:
        stream.write(_format_terminal(alert))
        stream.flush()
        return True

    return _Channel("terminal", deliver, threading.Event())


def _import_apprise() -> ModuleType:
    try:
        import apprise
    except ImportError as exc:
        raise LeverageError(
            f"alert channels other than the terminal need apprise, {INSTALL_HINT}"
        ) from exc
    return apprise


def desktop_scheme(platform: str, enabled: Callable[[str], bool]) -> str:
    """The apprise scheme ``desktop://`` stands for on ``platform`` (a ``sys.platform``
    value): ``windows``, ``macosx``, or on Linux the first usable of dbus, glib, gnome."""
    for key, schemes in _DESKTOP_BY_OS.items():
        if platform.startswith(key):
            return schemes[0]
    return next((s for s in _DESKTOP_LINUX if enabled(s)), _DESKTOP_LINUX[0])


@dataclass(frozen=True)
class _Source:
    where: str  # "alerts.txt line 3" or "$LEVERAGE_ALERT_URLS item 2"
    url: str


def _read_sources(path: Path | None, env: Mapping[str, str]) -> list[_Source]:
    sources: list[_Source] = []
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise LeverageError(f"alerts file {path} cannot be read: {reason}") from None
        for number, line in enumerate(text.splitlines(), start=1):
            line = line.strip()
            if line and not line.startswith("#"):
                sources.append(_Source(f"alerts file {path} line {number}", line))
    raw = env.get(ENV_VAR, "")
    for number, item in enumerate((i for i in re.split(r"[,\s]+", raw) if i), start=1):
        sources.append(_Source(f"${ENV_VAR} item {number}", item))
    return sources


def _short_name(private_url: str, scheme: str) -> str:
    base = private_url.split("?", 1)[0].rstrip("/")
    if scheme in _GENERIC_WEBHOOKS:
        parts = urlsplit(base)
        base = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}" + ("/…" if parts.path else "")
    return base


def _apprise_channel(
    apprise: ModuleType, source: _Source, platform: str, asset: Any
) -> tuple[_Channel, str]:
    manager = apprise.NotificationManager()
    match = _SCHEME.match(source.url)
    if match is None:
        raise LeverageError(
            f"{source.where}: expected a channel URL such as json://host/path or "
            "tgram://token/chat_id, got text without 'scheme://'"
        )
    scheme = match.group(1).lower()
    url = source.url
    if scheme == "desktop":
        scheme = desktop_scheme(platform, lambda s: s in manager and bool(manager[s].enabled))
        url = f"{scheme}://" + url[match.end():]
    if scheme not in manager:
        raise LeverageError(
            f"{source.where}: unknown channel scheme '{scheme}://' (examples: json, mailtos, "
            "tgram, discord, slack, desktop; see apprise's list of services)"
        )
    if not manager[scheme].enabled:
        details = str(manager[scheme].requirements.get("details") or "").strip()
        raise LeverageError(
            f"{source.where}: '{scheme}://' cannot deliver on this system"
            + (f" ({details})" if details else "")
        )
    # While apprise parses the URL, nothing yet says which pieces are secret: every piece is
    # masked in what it logs (its reasons for refusing a URL go into the error below).
    parsing = _Redactor()
    parsing.add(_crude_secrets(url))
    captured: list[str] = []
    handler = _ListHandler(captured)
    apprise_log = logging.getLogger("apprise")
    apprise_log.addFilter(parsing)
    apprise_log.addHandler(handler)
    try:
        plugin = apprise.Apprise.instantiate(url, asset=asset)
    finally:
        apprise_log.removeHandler(handler)
        apprise_log.removeFilter(parsing)
    if plugin is None:
        why = "; ".join(m for m in captured if m)
        raise LeverageError(
            f"{source.where}: malformed '{scheme}://' URL" + (f" ({why})" if why else "")
        )
    secrets = _secrets_of(plugin, scheme)
    _REDACTOR.add(secrets)
    name = redact(_short_name(str(plugin.url(privacy=True)), scheme))

    def deliver(alert: Alert) -> bool:
        return bool(
            plugin.notify(
                body=alert.body or alert.title,
                title=alert.title,
                notify_type=_NOTIFY_TYPE[alert.kind],
                body_format="text",
            )
        )

    return _Channel(name, deliver, threading.Event()), str(plugin.url(privacy=False))


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record.getMessage())


class Channels:
    """The alert channels of one watch: the terminal and every configured apprise URL."""

    def __init__(self, channels: Sequence[_Channel], timeout: float = DEFAULT_TIMEOUT) -> None:
        if not timeout > 0:
            raise InputError(f"timeout must be > 0 seconds, got {timeout}")
        self._channels = list(channels)
        self.timeout = float(timeout)

    @classmethod
    def from_config(
        cls,
        path: Path | None = None,
        env: Mapping[str, str] | None = None,
        *,
        terminal: TextIO | None = sys.stdout,
        timeout: float = DEFAULT_TIMEOUT,
        platform: str = sys.platform,
    ) -> Channels:
        """Channels from the alerts file ``path`` and ``env[LEVERAGE_ALERT_URLS]`` (``env``
        defaults to ``os.environ``), plus the terminal unless ``terminal`` is None.

        A bad entry (no ``scheme://``, unknown scheme, malformed URL, a desktop notifier this
        system lacks) raises :class:`LeverageError` naming the file line or variable item, never
        the secret parts of the URL. ``timeout`` bounds each channel's delivery, in seconds.
        """
        env = os.environ if env is None else env
        sources = _read_sources(path, env)
        channels: list[_Channel] = []
        if terminal is not None:
            channels.append(_terminal_channel(terminal))
        if sources:
            apprise = _import_apprise()
            # app_id (apprise's default "Apprise"): the app a desktop notification names,
            # and the User-Agent, an email's X-Application and a Slack message's footer
            asset = apprise.AppriseAsset(app_id=APP_NAME, secure_logging=True)
            seen: set[str] = set()
            for source in sources:
                channel, identity = _apprise_channel(apprise, source, platform, asset)
                if identity in seen:
                    continue
                seen.add(identity)
                if channel.name in {c.name for c in channels}:
                    # two webhooks on one host differ only in their hidden paths
                    channel.name = f"{channel.name} (#{len(channels) + 1})"
                channels.append(channel)
        return cls(channels, timeout)

    def describe(self) -> list[str]:
        """The channels' names with their secrets masked, safe to print or log."""
        return [c.name for c in self._channels]

    def check(self) -> None:
        """Raise :class:`LeverageError` when no channel can deliver: none configured, or every
        channel failed its latest alert."""
        if not self._channels:
            raise LeverageError(
                f"no alert channel: keep the terminal, pass --alerts FILE or set ${ENV_VAR}"
            )
        if all(c.last_ok is False for c in self._channels):
            raise LeverageError(
                "no alert channel delivered the latest alert: " + ", ".join(self.describe())
            )

    def send(self, alert: Alert) -> list[str]:
        """Deliver ``alert`` on every channel at once; the names of those that failed, raised,
        were still busy with an earlier alert or did not finish within ``timeout`` seconds."""
        if not isinstance(alert, Alert):
            raise InputError(f"alert must be an Alert, got {type(alert).__name__}")
        outcome: dict[int, bool] = {}
        threads: list[tuple[int, threading.Thread]] = []
        for index, channel in enumerate(self._channels):
            if channel.busy.is_set():
                outcome[index] = False
                log.warning("alert channel %s is still busy with an earlier alert", channel.name)
                continue
            channel.busy.set()
            thread = threading.Thread(
                target=self._run, args=(channel, alert, outcome, index),
                name=f"alert-{index}", daemon=True,  # a hung channel must not keep the process up
            )
            thread.start()
            threads.append((index, thread))
        deadline = time.monotonic() + self.timeout  # one budget for all: they run at once
        for index, thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning(
                    "alert channel %s did not finish within %.0f s",
                    self._channels[index].name, self.timeout,
                )
        failed: list[str] = []
        for index, channel in enumerate(self._channels):
            ok = outcome.get(index, False)
            channel.last_ok = ok
            if not ok:
                failed.append(channel.name)
        return failed

    @staticmethod
    def _run(channel: _Channel, alert: Alert, outcome: dict[int, bool], index: int) -> None:
        try:
            ok = channel.deliver(alert)
            if not ok:
                log.warning("alert channel %s refused the alert", channel.name)
        except Exception as exc:  # one channel's bug must not stop the others
            ok = False
            why = redact(f"{type(exc).__name__}: {exc}")
            log.warning("alert channel %s failed: %s", channel.name, why)
        finally:
            channel.busy.clear()
        outcome[index] = ok


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """``python -m leverage_exchange.notify [--alerts FILE]``: send one test alert on every
    configured channel and say which failed (exit 1), so a new channel is tried before the
    night it matters."""
    import argparse

    out = sys.stdout if out is None else out
    parser = argparse.ArgumentParser(
        prog="python -m leverage_exchange.notify",
        description=f"Send a test alert on the terminal, --alerts FILE and ${ENV_VAR}.",
    )
    parser.add_argument("--alerts", type=Path, default=None, help="one apprise URL a line")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="seconds each channel gets (default %(default)s)")
    args = parser.parse_args(argv)
    try:
        channels = Channels.from_config(args.alerts, terminal=out, timeout=args.timeout)
        channels.check()
    except LeverageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    test = Alert(
        kind="started",
        key="test",
        title="leverage: test alert",
        body="If you read this, alerts of `leverage watch` reach you here.",
        at=datetime.now(UTC),
    )
    failed = channels.send(test)
    for name in channels.describe():
        print(f"{'FAILED' if name in failed else 'sent  '}  {name}", file=out)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
