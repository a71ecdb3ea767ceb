"""The exchange facts live on the conventions (leverage.conventions): every list of exchanges,
ccxt ids and fee-counting conventions elsewhere is built from, or checked against, that
registry, so a new convention cannot be half-added."""

from __future__ import annotations

import importlib
import re

import leverage as lv
from leverage.conventions import CCXT_IDS, CONVENTIONS, FEE_COUNTS
from leverage.tiers import table_name
from leverage_exchange import client, fetch


def test_every_convention_names_its_ccxt_ids_once() -> None:
    ids = [i for c in CONVENTIONS.values() for i in c.ccxt_ids]
    assert all(c.ccxt_ids for c in CONVENTIONS.values()), "a convention with no ccxt id"
    assert len(ids) == len(set(ids)), "a ccxt id claimed by two conventions"
    assert {i: n for n, c in CONVENTIONS.items() for i in c.ccxt_ids} == CCXT_IDS


def test_the_bridge_lists_come_from_the_registry() -> None:
    assert set(client.SUPPORTED) == set(CCXT_IDS)
    assert set(fetch.IMPORTS) == set(CCXT_IDS)
    assert set(fetch.BINANCE) == set(CONVENTIONS["binance"].ccxt_ids)
    # the package exports a function of the same name: the module by its full name
    assert importlib.import_module("leverage_exchange.reconcile").CONVENTION == CCXT_IDS


def test_tier_table_family_is_the_convention_of_the_ccxt_id() -> None:
    for ccxt_id, name in CCXT_IDS.items():
        assert table_name(ccxt_id, "BTC/USDT:USDT") == f"{name}:BTCUSDT"
    assert table_name("kraken", "BTC/USDT:USDT") == "kraken:BTCUSDT"  # not in the registry


def _docstring_exchanges(doc: str) -> set[str]:
    return set(re.findall(r'``exchange="(\w+)"``', doc))


def test_liq_price_docstring_lists_exactly_the_registry() -> None:
    # written from the registry: each convention states its own rule (a subclass of Binance
    # that forgot to would show Binance's words under its name)
    assert _docstring_exchanges(lv.liq_price.__doc__ or "") == set(CONVENTIONS)
    assert [n for n, c in CONVENTIONS.items() if "rule" not in vars(type(c))] == []
    for c in CONVENTIONS.values():
        assert " ".join(c.rule.split()[:4]) in " ".join((lv.liq_price.__doc__ or "").split())


def test_fee_rate_help_names_the_fee_counting_conventions() -> None:
    from leverage_addin import udfs

    help_text = udfs.ARG_DOCS["fee_rate"]
    assert tuple(n for n, c in CONVENTIONS.items() if c.fee_counts) == FEE_COUNTS
    for name in CONVENTIONS:
        assert (re.search(rf"\b{name}\b", help_text) is not None) == (name in FEE_COUNTS), name
    assert udfs.ARG_DOCS["exchange"].endswith(", ".join(CONVENTIONS))


HOOKS = ("MARKET_TYPES", "FUNDING_ON_BALANCE", "MARGIN_FROM_LEVERAGE", "families",
         "cross_wallet", "balances", "wallet_margin", "rates", "history")


def test_every_convention_has_a_fetch_module_with_every_hook() -> None:
    # what differs between exchanges in an import lives in fetch_<convention>.py (see the
    # doc of leverage_exchange.fetch): a new exchange is its convention, its fetch module
    # and its registry line
    for ccxt_id, name in CCXT_IDS.items():
        module = fetch.venue(ccxt_id)
        assert module.__name__ == f"leverage_exchange.fetch_{name}"
        assert [h for h in HOOKS if not hasattr(module, h)] == [], name


def test_formulas_md_names_every_convention_and_who_counts_the_fee() -> None:
    """docs/FORMULAS.md's "The exchange argument" lists every convention and, in its
    ``fee_rate`` sentence, exactly the fee-counting ones; each has its own section under
    "Exchange conventions" (titled as the exchange is written there)."""
    from pathlib import Path

    text = (Path(__file__).parents[1] / "docs" / "FORMULAS.md").read_text(encoding="utf-8")
    section = text.split("### The exchange argument", 1)[1].split("\n#", 1)[0]
    named, fee = section.split("`fee_rate`", 1)
    assert set(re.findall(r"`(\w+)`", named)) - {"LIQ_PRICE", "MARGIN_FOR_LIQ_PRICE",
                                                  "exchange"} == set(CONVENTIONS)
    assert set(re.findall(r"`(\w+)`", fee)) == set(FEE_COUNTS)
    conventions = text.split("\n## Exchange conventions", 1)[1].split("\n## ", 1)[0]
    headings = {h.casefold() for h in re.findall(r"^### (.+)$", conventions, re.M)}
    assert headings == set(CONVENTIONS)
