"""Coin-margined money on Google Sheets reads to the satoshi, USDT money at 2 decimals.

Excel and LibreOffice switch a coin row's money to 8 decimals by a conditional format; Google's
conditional formats cannot set a number format, so the sync gives each computed money cell its
row's format itself, in the same all-or-nothing write as the values, at no extra request.
Checked on the number formats the loopback Google Sheets server (tests/fake_sheets.py) stores
per cell, through the real gspread client.
"""

from __future__ import annotations

from typing import Any

import pytest
from fake_sheets import FakeSheets, make_client

import leverage_sheets as sb
from leverage.layout import (
    COIN_MONEY,
    JOURNAL_EVENTS,
    JOURNAL_POSITIONS,
    JOURNAL_SUMMARY,
    MONEY,
    SUMMARY_TOTALS,
    TYPED_MONEY,
    Sheet,
    coin_money,
    money_format,
)

EVENTS = JOURNAL_EVENTS.title
COIN_KEYS = coin_money(JOURNAL_EVENTS)[1]  # type: ignore[index]


def _journal(fake: FakeSheets, **policy: Any) -> tuple[str, sb.GoogleBackend]:
    """A Google journal laid out by init with the sample rows (a BTC-margined inverse
    position next to two USDT ones), synced once."""
    key = fake.create_spreadsheet("journal")
    backend = sb.open_google(key, client=make_client(fake, timeout=30),
                             policy=sb.RetryPolicy(**({"sleep": lambda s: None} | policy)))
    sb.init(backend, "journal", sample=True)
    sb.sync(backend, "journal")
    return key, backend


def _money_formats(fake: FakeSheets, key: str, spec: Sheet, title: str) -> list[
        tuple[str, list[str | None]]]:
    """(currency, number formats of the coin-capable money cells) of each filled row."""
    keys = coin_money(spec)[1]  # type: ignore[index]
    out = []
    rows = fake.values(key, title)[1:]
    currency = spec.first_column - 1 + spec.index("currency")
    for r, row in enumerate(rows, start=2):
        if currency < len(row) and row[currency]:
            out.append((str(row[currency]), [fake.number_format(key, title, f"{spec.letter(k)}{r}")
                                             for k in keys]))
    return out


def _assert_formats_follow_currency(fake: FakeSheets, key: str) -> set[str]:
    seen = set()
    for spec in (JOURNAL_EVENTS, JOURNAL_SUMMARY, SUMMARY_TOTALS):
        for currency, formats in _money_formats(fake, key, spec, spec.title):
            seen.add(currency)
            want = COIN_MONEY if currency in ("BTC", "ETH") else MONEY  # USDT, quote
            assert formats == [want] * len(formats), (spec.title, currency)
    return seen


def _set(fake: FakeSheets, key: str, title: str, a1: str, value: Any) -> None:
    """Type into one cell as the trader would."""
    ws = make_client(fake).open_by_key(key).worksheet(title)
    ws.update(values=[[value]], range_name=a1, value_input_option="RAW")


def test_each_rows_money_takes_its_currencys_decimals_at_no_extra_request(
        fake: FakeSheets) -> None:
    key = fake.create_spreadsheet("journal")
    backend = sb.open_google(key, client=make_client(fake, timeout=30))
    sb.init(backend, "journal", sample=True)
    fake.reset_log()
    report = sb.sync(backend, "journal")
    assert report.requests == 2 == len(fake.requests)  # one read, one write
    assert _assert_formats_follow_currency(fake, key) == {"BTC", "USDT"}
    # the BTC position's first margin, 0.1 BTC, and its 0.00005 BTC funding, now readable
    events = fake.values(key, EVENTS)
    btc = [r for r, row in enumerate(events[1:], start=2) if row[1] == "BTC-INV"]
    fees = JOURNAL_EVENTS.letter("fees")
    assert [fake.number_format(key, EVENTS, f"{fees}{r}") for r in btc] == [COIN_MONEY] * 4
    # only the computed money cells: the trader's own Amount keeps init's format and value
    amount = JOURNAL_EVENTS.letter("amount")
    assert fake.number_format(key, EVENTS, f"{amount}{btc[0]}") == TYPED_MONEY
    assert events[btc[0] - 1][JOURNAL_EVENTS.index("amount")] == 0.1
    # the BTC rows only: the USDT ones already had init's 2 decimals, so they are left alone
    assert report.formats_set == (len(btc) * len(COIN_KEYS)
                                  + len(coin_money(JOURNAL_SUMMARY)[1])  # type: ignore[index]
                                  + len(coin_money(SUMMARY_TOTALS)[1]))  # type: ignore[index]
    fake.reset_log()
    again = sb.sync(backend, "journal")
    assert (again.requests, again.changed, len(fake.requests)) == (1, False, 1)


def test_a_contract_changed_between_syncs_gets_its_format_at_the_next_sync(
        fake: FakeSheets) -> None:
    key, backend = _journal(fake)
    rows = {row[0]: r for r, row in enumerate(fake.values(key, "Positions")[1:], start=2)}
    contract = JOURNAL_POSITIONS.letter("contract")
    currency = JOURNAL_POSITIONS.letter("margin_currency")
    # the trader turns the BTC position into a USDⓈ-margined one (margin currency blank: the
    # quote) and the ETH short into an ETH-margined one
    for pid, kind, margin in (("BTC-INV", "linear", ""), ("ETH-S1", "inverse", "ETH")):
        _set(fake, key, "Positions", f"{contract}{rows[pid]}", kind)
        _set(fake, key, "Positions", f"{currency}{rows[pid]}", margin)
    fake.reset_log()
    report = sb.sync(backend, "journal")
    assert report.requests == 2 and report.formats_set > 0
    assert _assert_formats_follow_currency(fake, key) == {"ETH", "quote", "USDT"}


def test_a_coin_cell_the_trader_reformatted_is_set_back_without_rewriting_values(
        fake: FakeSheets) -> None:
    key, backend = _journal(fake)
    events = fake.values(key, EVENTS)
    row = next(r for r, line in enumerate(events[1:], start=2) if line[1] == "BTC-INV")
    cell = f"{JOURNAL_EVENTS.letter('margin')}{row}"
    ws = make_client(fake).open_by_key(key).worksheet(EVENTS)
    ws.format(cell, {"numberFormat": {"type": "NUMBER", "pattern": "0.00"}})
    fake.reset_log()
    report = sb.sync(backend, "journal")
    assert (report.requests, report.cells_written, report.formats_set) == (2, 0, len(COIN_KEYS))
    assert fake.number_format(key, EVENTS, cell) == COIN_MONEY
    assert fake.values(key, EVENTS) == events
    sb.init(backend, "journal")  # a second init gives whole columns their layout format again
    assert fake.number_format(key, EVENTS, cell) == MONEY
    assert sb.sync(backend, "journal").formats_set > 0  # and the next sync sets coins back
    _assert_formats_follow_currency(fake, key)


@pytest.mark.parametrize("fault", ["500", "reset applied"])
def test_a_failed_write_leaves_values_and_formats_old_or_new(fake: FakeSheets,
                                                           fault: str) -> None:
    key, backend = _journal(fake, max_attempts=1)
    rows = {row[0]: r for r, row in enumerate(fake.values(key, "Positions")[1:], start=2)}
    _set(fake, key, "Positions", f"{JOURNAL_POSITIONS.letter('contract')}{rows['ETH-S1']}",
         "inverse")
    _set(fake, key, "Positions", f"{JOURNAL_POSITIONS.letter('margin_currency')}"
                                 f"{rows['ETH-S1']}", "ETH")

    def state() -> tuple[Any, ...]:
        return (fake.values(key, EVENTS), _money_formats(fake, key, JOURNAL_EVENTS, EVENTS),
                _money_formats(fake, key, JOURNAL_SUMMARY, JOURNAL_SUMMARY.title))

    old = state()
    if fault == "500":
        fake.inject(500, at=1)  # the write
    else:
        fake.inject_reset(at=1, applied=True)  # written, but the answer never came
    with pytest.raises(sb.RequestFailed):
        sb.sync(backend, "journal")
    fake.clear_faults()
    after = state()
    sb.sync(backend, "journal")
    new = state()
    assert after in (old, new) and old != new
    assert {c for c, _ in new[1]} == {"ETH", "BTC", "USDT"}
    _assert_formats_follow_currency(fake, key)


def test_the_rule_is_the_workbooks_conditional_format_in_python() -> None:
    """money_format says coin exactly where the workbooks' conditional format (coin_money's
    formula, computed by the formulas engine) does: not blank, not the linear default label
    ``quote``, no "USD" in it, in any case."""
    import formulas

    formula, _ = coin_money(JOURNAL_EVENTS)  # type: ignore[misc]
    rule = formulas.Parser().ast("=" + formula)[1].compile()
    for currency in ("BTC", "eth", "coin", "USDT", "usdc", "USD", "quote", "Quote", ""):
        coin = money_format(currency) == COIN_MONEY
        assert bool(rule(currency)) is coin, currency
        assert coin is (currency in ("BTC", "eth", "coin")), currency
    assert money_format(None) == MONEY
