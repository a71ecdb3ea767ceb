"""``leverage exchange import|reconcile`` and ``leverage tiers fetch``.

    leverage exchange import --exchange binanceusdm --since 2024-01-01 --file journal.xlsx
    leverage exchange reconcile --exchange binanceusdm
    leverage tiers fetch --exchange bybit            (public: no key)
    leverage tiers fetch --exchange binanceusdm      (Binance: a read-only key)

The API key comes from $LEVERAGE_EXCHANGE_KEY and $LEVERAGE_EXCHANGE_SECRET, or a JSON key
file (--key-file or $LEVERAGE_EXCHANGE_KEY_FILE). Use a read-only key. Hyperliquid needs no
key: ``--exchange hyperliquid --address 0x...`` reads the account by its wallet address. ccxt
is imported when a command runs, not when ``leverage`` starts.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Any

from leverage.errors import InputError
from leverage_sheets.cli import DEFAULT_DEADLINE, seconds

from .client import SUPPORTED, Deadline, connect, read_credentials, wallet_credentials


def _client_options(parser: argparse.ArgumentParser, default: str | None = "binanceusdm",
                    sheets: bool = False) -> None:
    """The exchange connection's options (``sheets``: the command also writes a Google
    spreadsheet within the same deadline: import)."""
    parser.add_argument("--exchange", default=default, choices=SUPPORTED,
                        help="ccxt exchange id " + ("(default: %(default)s)" if default
                                                    else "(needed by fetch)"))
    parser.add_argument("--key-file", help="JSON file with apiKey and secret (a read-only key)")
    parser.add_argument("--address", help="wallet address (0x + 40 hex digits): hyperliquid "
                                          "is read by address alone, with no API key")
    parser.add_argument("--sandbox", action="store_true", help="use the exchange's testnet")
    parser.add_argument("--api-url", help="send every request to this base URL (a proxy or a "
                                          "local test server), keeping each endpoint's path")
    parser.add_argument("--portfolio-margin", action="store_true",
                        help="a Binance portfolio-margin account (USDⓈ-M through /papi; the "
                             "Account sheet gets its uniMMR)")
    parser.add_argument("--timeout", type=seconds, default=10.0, metavar="SECONDS",
                        help="seconds per request (default: %(default)g)")
    parser.add_argument(
        "--deadline", type=seconds, default=DEFAULT_DEADLINE, metavar="SECONDS",
        help="give up when the exchange part has not finished after SECONDS, retries, "
             "Retry-After waits and slow answers included"
             + (" (and, with --key, the Sheets part likewise)" if sheets else "")
             + f" (default {DEFAULT_DEADLINE:g})")


def _client(args: argparse.Namespace, public: bool = False) -> Any:
    # ccxt before the key: a trader without the [exchange] extra hears of it first, not
    # after setting a key (a ModuleNotFoundError: the command names the extra)
    importlib.import_module("ccxt")
    creds = _credentials(args, public)
    return connect(args.exchange, creds, api_url=args.api_url, sandbox=args.sandbox,
                   timeout_ms=int(args.timeout * 1000), deadline=Deadline(args.deadline),
                   portfolio_margin=args.portfolio_margin)


def _credentials(args: argparse.Namespace, public: bool = False) -> dict[str, str] | None:
    """A key for the exchanges that need one; the wallet address (and no key, whatever the
    environment holds) for one read by address (Hyperliquid), which a ``public`` command
    (public endpoints only) may leave out."""
    from .fetch import venue

    by_address = bool(args.exchange) and getattr(venue(args.exchange), "BY_ADDRESS", False)
    address = getattr(args, "address", None)
    if by_address:
        if address is None and public:
            return {}
        if address is None:
            raise InputError(f"address is required for {args.exchange}: --address 0x... (the "
                             "account's wallet address; no API key is needed)")
        return wallet_credentials(address)
    if address is not None:
        raise InputError(f"address is only for an exchange read by wallet address "
                         f"(hyperliquid), not {args.exchange}: use its API key")
    if public and not _has_key(args):
        return None  # public endpoints: no key asked for
    return read_credentials(args.key_file)


def _has_key(args: argparse.Namespace) -> bool:
    import os

    from .client import KEY_ENV, KEY_FILE_ENV

    return bool(args.key_file or os.environ.get(KEY_FILE_ENV) or os.environ.get(KEY_ENV))


def _backend(args: argparse.Namespace) -> Any:
    from leverage_sheets import RetryPolicy, init, open_google, open_local

    if args.file is not None:
        fresh = not Path(args.file).exists()
        backend = open_local(args.file)
        if fresh:
            init(backend, args.template or "journal")
        return backend
    return open_google(args.key, args.credentials, policy=RetryPolicy(deadline=args.deadline))


def print_reconcile(rows: list[Any]) -> None:
    from . import reconcile_lines

    print("\n".join(reconcile_lines(rows)))


def _cmd_import(args: argparse.Namespace) -> int:
    from . import import_account, parse_since

    parse_since(args.since)  # a bad date is refused before any request
    exchange = _client(args)
    created = args.file is not None and not Path(args.file).exists()
    backend = _backend(args)
    try:
        report = import_account(exchange, backend, args.since, args.template)
    except Exception:
        if created:  # a refused key or no answer leaves no empty journal behind
            Path(args.file).unlink(missing_ok=True)
        raise
    print(report)  # the sheet's changes, parity per open position, the reconcile lines
    return 0


def _cmd_reconcile(args: argparse.Namespace) -> int:
    from . import build_rows, fetch_open, reconcile

    exchange = _client(args)
    got = fetch_open(exchange)
    rows = build_rows(got)
    print_reconcile(reconcile(got, rows.open_positions))
    return 0


def _cmd_tiers_fetch(args: argparse.Namespace) -> int:
    from leverage.tiers import full_snapshot_date, save_tier_cache

    from .client import ExchangeError
    from .tiers_fetch import KEYED, fetch_tiers

    if not args.exchange:
        raise InputError(f"exchange is required: --exchange {' or '.join(SUPPORTED)}")
    # a missing [exchange] extra is said before the key is asked for
    importlib.import_module("ccxt")
    if args.exchange in KEYED and not _has_key(args):
        raise ExchangeError(
            f"{args.exchange}'s leverage brackets need a read-only API key (set "
            "LEVERAGE_EXCHANGE_KEY and LEVERAGE_EXCHANGE_SECRET, or --key-file); without one "
            f"the shipped snapshot of every USDⓈ-M symbol, dated {full_snapshot_date()}, "
            "answers")
    exchange = _client(args, public=True)
    fetched = fetch_tiers(exchange, args.symbol)
    path, count = save_tier_cache(exchange.id, fetched, folder=args.out)
    print(f"saved {count} tier tables of {exchange.id} to {path}")
    if args.out is not None:
        print(f"the toolkit reads them with LEVERAGE_TIERS_CACHE={args.out}")
    return 0


def register(subparsers: Any) -> None:
    """Add ``leverage exchange import|reconcile``; teach ``leverage tiers`` to ``fetch``."""
    ex = subparsers.add_parser("exchange", help="import positions and history from an exchange "
                                                "(read-only API key), reconcile liquidation")
    sub = ex.add_subparsers(dest="exchange_command", required=True)
    imp = sub.add_parser("import", help="bring a journal or rebalance workbook up to the account: "
                                     "new history appended, open positions updated")
    _client_options(imp, sheets=True)
    imp.add_argument("--since", required=True, help="start date, e.g. 2024-01-01 (UTC)")
    where = imp.add_mutually_exclusive_group(required=True)
    where.add_argument("--file", help="local .xlsx workbook (created as a journal if missing)")
    where.add_argument("--key", help="Google spreadsheet ID or URL")
    imp.add_argument("--credentials", help="Google service-account key file (with --key)")
    imp.add_argument("--template", choices=("journal", "rebalance"),
                     help="default: tell from the tabs")
    imp.set_defaults(run=_cmd_import)
    rec = sub.add_parser("reconcile", help="our liquidation price beside the exchange's")
    _client_options(rec)
    rec.set_defaults(run=_cmd_reconcile)
    tiers = subparsers.choices.get("tiers")
    if tiers is not None:
        _client_options(tiers, default=None)
        tiers.add_argument("--symbol", action="append",
                           help="fetch: only this market (BTCUSDT or BTC/USDT:USDT); repeat "
                                "for more (default: every linear perpetual)")
        tiers.add_argument("--out", help="fetch: save in this folder instead of the user "
                                         "cache (read it with LEVERAGE_TIERS_CACHE)")
        tiers.set_defaults(fetch_tiers=_cmd_tiers_fetch)
