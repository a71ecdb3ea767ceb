"""``leverage``: the figures a trader checks before adjusting margin, from the shell.

    leverage liq --side long --qty 1 --entry 60000 --margin 6000 --tiers binance:BTCUSDT
    leverage tiers binance:BTCUSDT
    leverage tiers fetch --exchange binanceusdm   (with the exchange extra)

Other parts of the toolkit add their own subcommands (``leverage addin``, ``leverage
templates``, ``leverage sheets``, ``leverage demo``) through the ``leverage.cli`` entry-point
group, so this core module imports none of them.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import re
import sys
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, entry_points, requires, version
from typing import Any

from . import core
from ._args import percent_text
from .errors import LeverageError, LeverageWarning
from .tiers import STALE_AFTER_DAYS, get_tier_table, table_date, tier_table_names

PLUGIN_GROUP = "leverage.cli"
DISTRIBUTION = "leverage-toolkit"


def _num(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None


def _rate(text: str) -> float:
    """A rate typed as a fraction (``0.005``) or a percent (``0.5%``)."""
    value = percent_text(text)
    if value is not None:
        return value
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number or a percent like 0.5%, got {text!r}"
        ) from None


def _money(x: float) -> str:
    return "none" if math.isnan(x) else f"{x:,.2f}"


def position_report(
    side: str,
    qty: float,
    entry: float,
    margin: float,
    mark: float | None = None,
    mmr: float = core.DEFAULT_MMR,
    maint_amount: float = 0.0,
    contract: str = "linear",
    tiers: Any = None,
    exchange: str = "binance",
    target_leverage: float | None = None,
) -> list[tuple[str, str]]:
    """The check-before-adjusting figures as (label, value) lines."""
    mark = entry if mark is None else mark
    notional = core.notional(qty, mark, contract)
    pnl = core.unrealized_pnl(side, qty, entry, mark, contract)
    liq = core.liq_price(side, qty, entry, margin, mmr, maint_amount, contract, tiers, exchange)
    lines = [
        ("notional", _money(notional)),
        ("unrealized PnL", _money(pnl)),
        ("leverage (margin)", f"{core.effective_leverage(notional, margin):.2f}x"),
        ("leverage (equity)", f"{core.effective_leverage(notional, margin, pnl):.2f}x"),
        ("liquidation price", _money(liq)),
        ("liquidation distance",
         "none" if math.isnan(liq) else f"{core.liq_distance(side, mark, liq):.2%}"),
        ("bankruptcy price", _money(core.bankruptcy_price(side, qty, entry, margin, contract))),
    ]
    if tiers is not None:
        row = core.tier(tiers, notional)
        lines.append(("tier at mark", f"mmr {row.mmr:.2%}, maint. amount {row.maint_amount:,.2f}, "
                                      f"max {row.max_leverage:g}x"))
    if target_leverage is not None:
        move = core.margin_to_target(notional, margin, target_leverage, pnl, tiers)
        verb = "add" if move >= 0 else "withdraw"
        lines.append((f"to reach {target_leverage:g}x (equity)", f"{verb} {abs(move):,.2f}"))
    return lines


def _cmd_liq(args: argparse.Namespace) -> int:
    lines = position_report(
        args.side, args.qty, args.entry, args.margin, args.mark, args.mmr, args.maint_amount,
        args.contract, args.tiers, args.exchange, args.target,
    )
    width = max(len(k) for k, _ in lines)
    for k, v in lines:
        print(f"{k:<{width}}  {v}")
    return 0


def _cmd_tiers(args: argparse.Namespace) -> int:
    if args.name == "fetch":
        fetch = getattr(args, "fetch_tiers", None)
        if fetch is None:  # the exchange_bridge package adds it; it needs ccxt
            raise LeverageError("`leverage tiers fetch` needs the exchange extra: "
                                "pip install 'leverage-toolkit[exchange]'")
        return int(fetch(args) or 0)
    if not args.name:
        print("\n".join(tier_table_names()))
        return 0
    table = get_tier_table(args.name)
    print(f"{table.name}  ({table.currency})  source: {table.source}")
    day = table_date(table.name)
    if day is not None:  # tables change often: say how old this one is
        age = (datetime.now(UTC).date() - day).days
        print(f"dated {day.isoformat()}, {age} days old"
              + (": run `leverage tiers fetch` for a fresh one" if age > STALE_AFTER_DAYS
                 else ""))
    print(f"{'tier':>4} {'from':>16} {'to':>16} {'mmr':>8} {'maint. amount':>16} {'max lev':>8}")
    for i, t in enumerate(table.tiers, 1):
        lev = "-" if t.max_leverage is None else f"{t.max_leverage:g}x"
        print(f"{i:>4} {t.min_notional:>16,.2f} {t.max_notional:>16,.2f} {t.mmr:>8.2%} "
              f"{t.maint_amount:>16,.2f} {lev:>8}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leverage", description="Adjustable-leverage figures for crypto perpetuals."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    liq = sub.add_parser("liq", help="leverage, liquidation price and distance of a position")
    liq.add_argument("--side", required=True, help="long or short")
    liq.add_argument("--qty", required=True, type=_num, help="size (base units; USD if inverse)")
    liq.add_argument("--entry", required=True, type=_num, help="entry price")
    liq.add_argument("--margin", required=True, type=_num, help="isolated margin posted")
    liq.add_argument("--mark", type=_num, help="mark price (default: entry)")
    liq.add_argument("--mmr", type=_rate, default=core.DEFAULT_MMR,
                     help="maintenance margin rate: 0.005 or 0.5%% (not 0.5, which is 50%%)")
    liq.add_argument("--maint-amount", type=_num, default=0.0, help="maintenance amount (cum)")
    liq.add_argument("--contract", default="linear", help="linear or inverse")
    liq.add_argument("--tiers", help="tier table name, e.g. binance:BTCUSDT (overrides --mmr)")
    liq.add_argument(
        "--exchange", default="binance", help=", ".join(core.EXCHANGES) + " convention"
    )
    liq.add_argument("--target", type=_num, help="target leverage: print the margin move")
    liq.set_defaults(run=_cmd_liq)
    tiers = sub.add_parser(
        "tiers", help="list the tier tables (shipped and fetched), show one, or `fetch` an "
        "exchange's tables into the local cache"
    )
    tiers.add_argument("name", nargs="?", help="e.g. binance:BTCUSDT, or fetch")
    tiers.set_defaults(run=_cmd_tiers)
    plugins, missing = _plugins()
    for register in plugins:
        register(sub)
    for name, module in missing.items():
        sub.add_parser(name, help=f"(not installed: {install_hint(module, name)})")
    for command in sub.choices.values():
        # a description taken from a docstring: its reStructuredText literals as plain text
        if command.description:
            command.description = command.description.replace("``", "")
    return parser


def package_version() -> str:
    """The installed distribution's version (the source tree's when run uninstalled)."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        from . import __version__

        return __version__


def extras_providing(module: str) -> list[str]:
    """The extras of this distribution that install the top-level ``module`` (e.g.
    ``xlwings`` -> ``["excel"]``), read from the installed metadata's ``Requires-Dist``.

    >>> extras_providing("gspread")
    ['sheets']
    >>> extras_providing("no_such_module")
    []
    """
    try:
        lines = requires(DISTRIBUTION) or []
    except PackageNotFoundError:
        return []
    top = module.split(".")[0].replace("_", "-").lower()
    found = []
    for line in lines:
        m = re.match(r"\s*([A-Za-z0-9._-]+).*extra\s*==\s*['\"]([^'\"]+)['\"]", line)
        if m and m.group(2) != "dev":
            dist = m.group(1).replace("_", "-").lower()
            if (dist == top or dist.startswith(top + "-")) and m.group(2) not in found:
                found.append(m.group(2))
    return found


def _extras_included(extra: str) -> list[str]:
    """The extras that ``extra`` installs through this distribution itself
    (``leverage-toolkit[sheets]; extra == "exchange"``: ``exchange`` includes ``sheets``)."""
    if not extra:
        return []
    try:
        lines = requires(DISTRIBUTION) or []
    except PackageNotFoundError:
        return []
    found: list[str] = []
    for line in lines:
        m = re.match(r"\s*([A-Za-z0-9._-]+)\s*\[([^\]]*)\].*extra\s*==\s*['\"]([^'\"]+)['\"]",
                     line)
        if m and m.group(1).replace("_", "-").lower() == DISTRIBUTION and m.group(3) == extra:
            found += [e.strip() for e in m.group(2).split(",") if e.strip()]
    return found


def install_hint(module: str, command: str = "") -> str:
    """``pip install "leverage-toolkit[sheets]"`` for a missing ``module``; the extra named
    like ``command`` first when several extras install it (openpyxl: sheets, templates)."""
    extras = extras_providing(module)
    if command in extras or set(extras) & set(_extras_included(command)):
        # the command's own extra brings the missing one (and whatever else it needs):
        # naming it says everything missing at once
        extras = [command]
    if not extras:
        return f"the Python package {module!r} is missing: pip install {module}"
    return f"needs the [{extras[0]}] extra: pip install \"{DISTRIBUTION}[{extras[0]}]\""


def _plugins() -> tuple[list[Callable[[Any], None]], dict[str, str]]:
    """The installed subcommands' ``register`` functions, and {command: missing module} for
    those whose extra is not installed (they are listed with the extra to install)."""
    found, missing = [], {}
    for ep in sorted(entry_points(group=PLUGIN_GROUP), key=lambda e: e.name):
        try:
            found.append(ep.load())
        except ModuleNotFoundError as exc:
            missing[ep.name] = exc.name or ep.value.split(":")[0]
    return found, missing


def _missing_command(argv: Sequence[str]) -> str | None:
    """The message for ``leverage <command> ...`` when ``<command>``'s extra is absent."""
    words = [a for a in argv if not a.startswith("-")]
    if not words:
        return None
    missing = _plugins()[1]
    if words[0] not in missing:
        return None
    return f"leverage {words[0]} {install_hint(missing[words[0]], words[0])}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    message = _missing_command(argv)
    if message:
        print(f"leverage: error: {message}", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    with _flags_on_stderr():
        return _run(args)


@contextlib.contextmanager
def _flags_on_stderr() -> Any:
    """Each :class:`LeverageWarning` (a flag on an answer that stands) as one line
    ``warning: <message>`` on stderr, after what the command printed; other warnings as
    Python shows them."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LeverageWarning)
        try:
            yield
        finally:
            for w in caught:
                if issubclass(w.category, LeverageWarning):
                    print(f"warning: {w.message}", file=sys.stderr)
                else:
                    warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def _run(args: argparse.Namespace) -> int:
    try:
        code = int(args.run(args) or 0)
        sys.stdout.flush()  # inside the try: a closed pipe fails here, not at exit
        return code
    except BrokenPipeError:
        # The reader went away (`leverage addin functions | head`): stop quietly, and point
        # stdout at devnull so that the interpreter's last flush does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except ModuleNotFoundError as exc:
        command = getattr(args, "command", "")
        hint = install_hint(exc.name or "", getattr(exc, "extra", command))
        print(f"leverage: error: leverage {command} {hint}", file=sys.stderr)
        return 2
    except LeverageError as exc:
        print(f"leverage: error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # a folder that is a file, no permission, a full disk...
        where = f": {exc.filename}" if exc.filename else ""
        print(f"leverage: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
