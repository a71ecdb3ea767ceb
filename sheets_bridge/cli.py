"""``leverage sheets init|sync``: lay out and sync a Google spreadsheet or a local .xlsx.

    leverage sheets init --key KEY --template journal --sample
    leverage sheets sync --key KEY --watch 60
    leverage sheets sync --file journal.xlsx
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from leverage.errors import InputError, LeverageError

from . import init
from .backend import Backend, deadline
from .credentials import CREDENTIALS_ENV
from .engine import TEMPLATE_NAMES, Progress, SyncReport, detect_template, sync, watch
from .google import open_google
from .http import MAX_SECONDS, RetryPolicy, check_seconds
from .local import open_local

DEFAULT_DEADLINE = 300.0


def seconds(text: str) -> float:
    """An argparse type: a number of seconds in (0, MAX_SECONDS]."""
    try:
        return check_seconds("the value", float(text))
    except (ValueError, InputError):
        raise argparse.ArgumentTypeError(
            f"must be a number of seconds in (0, {MAX_SECONDS:g}], got {text!r}"
        ) from None


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


def _target(parser: argparse.ArgumentParser, watch: bool = False) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--key", help="Google spreadsheet ID (from its URL: /d/<ID>/edit) or URL")
    where.add_argument("--file", help="local .xlsx workbook instead of Google Sheets")
    parser.add_argument(
        "--credentials",
        help=f"service-account key file (default: ${CREDENTIALS_ENV}, then "
        "~/.config/gspread/service_account.json)",
    )
    parser.add_argument(
        "--deadline", type=seconds, default=DEFAULT_DEADLINE, metavar="SECONDS",
        help=f"with --key: give up when the command {'(each run, with --watch) ' if watch else ''}"
        f"has not finished after SECONDS, retries and slow answers included "
        f"(default {DEFAULT_DEADLINE:g})",
    )


def _backend(args: argparse.Namespace) -> Backend:
    if args.file is not None:
        if args.credentials:
            raise InputError("--credentials applies to --key (Google Sheets), not to --file")
        return open_local(args.file)
    return open_google(args.key, args.credentials, policy=RetryPolicy(deadline=args.deadline))


def _cmd_init(args: argparse.Namespace) -> int:
    backend = _backend(args)
    with deadline(backend):
        init(backend, args.template, sample=args.sample)
        print(f"laid out the {args.template} template in {backend.name}")
        if args.sample:
            print(sync(backend, args.template))
    return 0


def _cmd_sync(args: argparse.Namespace) -> int:
    if args.max_runs is not None and args.watch is None:
        raise InputError("--max-runs needs --watch SECONDS")
    backend = _backend(args)
    progress = Progress(True if args.progress else None)
    if args.watch is None:
        with deadline(backend):
            template = args.template if args.template != "auto" else detect_template(backend)
            print(sync(backend, template, progress), flush=True)
        return 0
    with deadline(backend):
        template = args.template if args.template != "auto" else detect_template(backend)

    def show(report: SyncReport) -> None:
        print(report, flush=True)

    def complain(exc: LeverageError) -> None:
        print(f"leverage: sync refused: {exc}", file=sys.stderr, flush=True)

    try:
        watch(backend, template, args.watch, args.max_runs, on_report=show, on_error=complain,
              progress=progress)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    return 0


def register(subparsers: Any) -> None:
    """Add ``leverage sheets init`` and ``leverage sheets sync``."""
    sheets = subparsers.add_parser(
        "sheets", help="lay out and sync a Google spreadsheet (or a local .xlsx) with the core"
    )
    sub = sheets.add_subparsers(dest="sheets_command", required=True)

    p_init = sub.add_parser("init", help="lay the template's tabs, headers and formats out")
    _target(p_init)
    p_init.add_argument("--template", required=True, choices=TEMPLATE_NAMES)
    p_init.add_argument("--sample", action="store_true", help="add sample rows, then sync them")
    p_init.set_defaults(run=_cmd_init)

    p_sync = sub.add_parser("sync", help="compute every derived column and write it back")
    _target(p_sync, watch=True)
    p_sync.add_argument(
        "--template", default="auto", choices=("auto", *TEMPLATE_NAMES),
        help="default: tell from the tabs (one extra request)",
    )
    p_sync.add_argument("--watch", type=seconds, metavar="SECONDS",
                        help="sync again every SECONDS; a run with no change writes nothing")
    p_sync.add_argument("--max-runs", type=_count, metavar="N",
                        help="with --watch: stop after N runs")
    p_sync.add_argument("--progress", action="store_true",
                        help="progress bar on stderr even when it is not a terminal")
    p_sync.set_defaults(run=_cmd_sync)
