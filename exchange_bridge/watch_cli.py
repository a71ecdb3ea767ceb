"""``leverage watch``: live marks in the rebalance workbook and alerts from the Rules.

    leverage watch --file rebalance.xlsx --rules journal.xlsx          # every 60 s, Ctrl-C ends
    leverage watch --key <SHEET> --rules journal.xlsx --once           # one cycle (a scheduler)
    leverage watch --file rebalance.xlsx --rule min_liq_distance=10% --alerts alerts.txt

The API key is read as ``leverage exchange import`` reads it (a read-only key). Alerts go to
the terminal and to every channel of ``--alerts FILE`` (one apprise URL a line) or
``$LEVERAGE_ALERT_URLS``; a watch whose channels cannot deliver refuses to start.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
from pathlib import Path
from typing import Any

from leverage.errors import InputError, LeverageError
from leverage.models import AdjustmentRule
from leverage_sheets.cli import seconds

from .cli import _client, _client_options


def _channels(args: argparse.Namespace) -> Any:
    """The alert channels (:class:`leverage_exchange.notify.Channels`), checked."""
    try:
        from .notify import Channels
    except ImportError:
        raise LeverageError("leverage watch needs the alert channels (leverage_exchange.notify), "
                            "which this installation lacks") from None
    # sys.stdout as it is now (the default binds the one of import time)
    channels = Channels.from_config(Path(args.alerts) if args.alerts else None,
                                    terminal=sys.stdout)
    channels.check()  # a watch that cannot alert exits here, not blind later
    return channels


def _rule_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    name = name.strip().lower().replace("-", "_")
    if not sep or name not in AdjustmentRule.model_fields:
        raise argparse.ArgumentTypeError(
            f"must be NAME=VALUE with NAME one of {', '.join(AdjustmentRule.model_fields)}, "
            f"got {text!r}")
    return name, value.strip()


def _rules(args: argparse.Namespace) -> Any:
    from .watch import rules_from_workbook, rules_reader, with_overrides

    overrides = dict(args.rule or [])
    if args.rules:
        path = Path(args.rules)
        if not path.exists():
            raise InputError(f"rules must be a journal workbook with a Rules sheet, "
                             f"{args.rules!r} does not exist")
        read = rules_reader(path)
        read()  # a bad rule cell is said now, before the watch starts
        if not overrides:
            return read
        return lambda: with_overrides(read(), overrides)
    if args.rules_key:
        from leverage_sheets import open_google

        base = rules_from_workbook(open_google(args.rules_key, args.credentials))
        return with_overrides(base, overrides)
    return with_overrides(None, overrides)


def _backend(args: argparse.Namespace) -> Any:
    from leverage_sheets import Backend, RetryPolicy, init, open_google, open_local
    from leverage_sheets.engine import detect_template

    backend: Backend
    if args.file is not None:
        fresh = not Path(args.file).exists()
        backend = open_local(args.file)
        if fresh:
            init(backend, "rebalance")
    else:
        backend = open_google(args.key, args.credentials,
                              policy=RetryPolicy(deadline=max(min(args.interval, 120.0), 30.0)))
    template = detect_template(backend)
    if template != "rebalance":
        raise InputError(f"{backend.name} is a {template} workbook: the watch writes live marks "
                         "into a rebalance workbook (--file/--key); give the journal with "
                         "--rules so its Rules sheet sets the alerts")
    return backend


def _state_path(args: argparse.Namespace) -> Path:
    if args.state:
        return Path(args.state)
    if args.file:
        f = Path(args.file)
        return f.with_name(f"{f.stem}.watch-state.json")
    key = re.sub(r"[^A-Za-z0-9_-]", "", str(args.key).rstrip("/").split("/")[-1])[:40]
    return Path(f"watch-state-{key or 'sheet'}.json")


def _cmd_watch(args: argparse.Namespace) -> int:
    from .watch import WATCHED_RULES, Watcher, parse_hhmm

    summary_at = parse_hhmm(args.daily_summary) if args.daily_summary else None
    rules = _rules(args)
    channels = _channels(args)
    exchange = _client(args)
    backend = _backend(args)
    watcher = Watcher(exchange, backend, channels, rules=rules, interval=args.interval,
                      stale_after=args.stale_after, state_path=_state_path(args),
                      daily_summary=summary_at)
    rule = rules() if callable(rules) else rules
    set_rules = [f"{n}={getattr(rule, n)}" for n in WATCHED_RULES if getattr(rule, n) is not None]
    if not set_rules:
        print("note: no rule to watch (min_liq_distance, max_leverage, max_liq_probability are "
              "blank): only stale data and failed writes alert", file=sys.stderr)
    if args.once:
        report = watcher.run_cycle()
        print(report)
        return 0 if report.read else 1
    what = [f"account: {exchange.id}, every {args.interval:g} s, into {backend.name}",
            f"rules: {', '.join(set_rules) or 'none'}",
            f"channels: {', '.join(channels.describe())}"]
    watcher.started(what)

    def stop(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)  # a service manager's stop: said, like Ctrl-C
    try:
        watcher.run(args.cycles, on_cycle=print)
    except KeyboardInterrupt:
        watcher.stopped("interrupted")
        return 130
    except BaseException as exc:
        watcher.stopped(f"error: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        raise
    watcher.stopped(f"{args.cycles} cycles done")
    return 0


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return n


def register(subparsers: Any) -> None:
    """Add ``leverage watch``."""
    p = subparsers.add_parser(
        "watch", help="watch an exchange account: live marks in the rebalance workbook, an "
                      "alert (with the margin that fixes it) when a position breaks a Rule")
    _client_options(p)
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--file", help="local rebalance .xlsx (created if missing)")
    where.add_argument("--key", help="Google spreadsheet ID or URL of a rebalance workbook")
    p.add_argument("--credentials", help="Google service-account key file (with --key)")
    rules = p.add_mutually_exclusive_group()
    rules.add_argument("--rules", help="journal .xlsx whose Rules sheet sets the alerts "
                                       "(re-read when the file changes)")
    rules.add_argument("--rules-key", help="Google journal whose Rules sheet sets the alerts")
    p.add_argument("--rule", action="append", type=_rule_pair, metavar="NAME=VALUE",
                   help="a rule in place of the sheet's, e.g. min_liq_distance=10%% (repeat)")
    p.add_argument("--interval", type=seconds, default=60.0, metavar="SECONDS",
                   help="seconds between cycles (default %(default)g)")
    p.add_argument("--once", action="store_true",
                   help="one cycle, then exit (for cron, a systemd timer, Task Scheduler)")
    p.add_argument("--cycles", type=_positive_int, help="stop after this many cycles")
    p.add_argument("--stale-after", type=_positive_int, default=3, metavar="K",
                   help="alert 'data stale' after K cycles without an answer (default 3)")
    p.add_argument("--state", help="state file (alerts already sent); default: beside the "
                                   "workbook, <name>.watch-state.json")
    p.add_argument("--daily-summary", metavar="HH:MM", help="send a summary once a day at this "
                                                            "time (UTC)")
    p.add_argument("--alerts", help="file of alert channels, one apprise URL a line "
                                    "(default: $LEVERAGE_ALERT_URLS; the terminal always)")
    p.set_defaults(run=_cmd_watch)
