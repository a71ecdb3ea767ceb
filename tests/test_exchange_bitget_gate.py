"""Import from Bitget (v2 mix, USDT-M) and Gate (futures v4, USDT): real ccxt against the
loopback servers in ``leverage_exchange.recorded_bitget`` and ``recorded_gate``, which answer
in each exchange's documented JSON. The recorded accounts' figures are worked by hand in
their docstrings, under each exchange's own rules."""

from __future__ import annotations

import functools
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ccxt")

from fake_exchange import journal_tables

import leverage_exchange as xb
import leverage_sheets as sb
from leverage.cli import main
from leverage_exchange import cli as xcli
from leverage_exchange import fetch_bitget, fetch_gate
from leverage_exchange.recorded_bitget import FakeBitget, sample_bitget_account
from leverage_exchange.recorded_exchange import API_KEY, API_SECRET, DAY_MS, RecordedExchange
from leverage_exchange.recorded_gate import FakeGate, sample_gate_account

CREDS = {"apiKey": API_KEY, "secret": API_SECRET, "password": "test-passphrase"}
FAKES = {"bitget": (FakeBitget, sample_bitget_account), "gate": (FakeGate, sample_gate_account)}


@pytest.fixture(scope="module")
def bitget() -> Iterator[RecordedExchange]:
    with FakeBitget(sample_bitget_account(), stall_seconds=10.0) as server:
        yield server
    assert not server.server_errors


@pytest.fixture(scope="module")
def gate() -> Iterator[RecordedExchange]:
    with FakeGate(sample_gate_account(), stall_seconds=10.0) as server:
        yield server
    assert not server.server_errors


def client(fake: RecordedExchange, name: str, timeout_ms: float = 30_000) -> Any:
    return xb.connect(name, CREDS, api_url=fake.url, timeout_ms=timeout_ms, rate_limit_ms=1)


def since(days: int) -> str:
    return xb.convert._when(xb.client._ccxt().Exchange.milliseconds() - days * DAY_MS
                            ).date().isoformat()


def journal(folder: Path) -> Any:
    folder.mkdir(parents=True, exist_ok=True)
    book = sb.open_local(folder / "journal.xlsx")
    sb.init(book, "journal")
    return book


def inputs(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["position_id"], e["event"], e["price"], e["qty"],
             None if e["amount"] is None else round(e["amount"], 6), e["fee"])
            for e in events]


@pytest.fixture(scope="module")
def imported(bitget, gate, tmp_path_factory) -> dict[str, tuple[Any, Any]]:
    """Each account imported once into a fresh journal: (report, workbook)."""
    out = {}
    for name, fake in (("bitget", bitget), ("gate", gate)):
        book = journal(tmp_path_factory.mktemp(name))
        out[name] = (xb.import_account(client(fake, name), book, since(25)), book)
    return out


def test_gate_import_parity_and_reconcile(imported) -> None:
    report, book = imported["gate"]
    positions, events = journal_tables(book)
    assert [p["position_id"] for p in positions] == [
        "BTC_USDT-L-101", "ETH_USDT-L-201", "ETH_USDT-S-202", "SOL_USDT-L-301"]
    assert inputs(events) == [
        # one order, two fills; margin by Gate's rule: 240 / 10 + 240 × 0.075 % close-fee
        # reserve; fee the account's 0.05 %
        ("BTC_USDT-L-101", "open", 60000, 0.004, 24.18, 0.12),
        ("BTC_USDT-L-101", "funding", None, None, -0.3, None),
        ("BTC_USDT-L-101", "increase", 63000, 0.002, 12.6945, 0.063),  # the scale-in
        ("BTC_USDT-L-101", "partial_close", 62000, 0.002, None, 0.062),
        # cross hedge legs: margin the notional at the cross leverage limit (10)
        ("ETH_USDT-L-201", "open", 3000, 1, 300, 1.5),
        ("ETH_USDT-L-201", "funding", None, None, 0.05, None),  # only the long open then
        ("ETH_USDT-S-202", "open", 3100, 0.5, 155, 0.775),
        ("SOL_USDT-L-301", "open", 150, 10, 151.125, 0.75),
        ("SOL_USDT-L-301", "close", 135, None, None, 0.675),
    ]
    assert events[-1]["status"].startswith("liquidated at 135")  # its order is in liquidates
    assert "liquidation" in events[-1]["reason"]
    # the journal ends on Gate's size, entry and margin (24.383, the position's margin)
    assert [(x.position_id, x.gaps) for x in report.parity] == [
        ("BTC_USDT-L-101", []), ("ETH_USDT-L-201", []), ("ETH_USDT-S-202", [])]
    causes = {r.position.position_id: (r.ours, r.theirs, r.cause) for r in report.reconciled}
    # Gate's liq_price 55,166.29 = (61,000 − 24.383 / 0.004) / (1 − (0.004 + 0.00075))
    ours, theirs, cause = causes["BTC_USDT-L-101"]
    assert (round(ours, 2), theirs, cause) == (55_166.29, 55_166.29, "match")
    assert causes["ETH_USDT-L-201"][2].startswith("hedge leg")
    assert any("no history of margin" in n for n in report.notes)


def test_bitget_import_parity_and_reconcile(imported) -> None:
    report, book = imported["bitget"]
    positions, events = journal_tables(book)
    assert inputs(events) == [
        ("BTCUSDT-L-101", "open", 60000, 0.004, 24, 0.144),  # 0.06 % taker
        ("BTCUSDT-L-101", "funding", None, None, -0.3, None),
        ("BTCUSDT-L-101", "add_margin", 60000, None, 20, None),  # an append_margin bill
        ("BTCUSDT-L-101", "increase", 63000, 0.002, 12.6, 0.0756),  # the scale-in
        ("BTCUSDT-L-101", "partial_close", 62000, 0.003, None, 0.1116),
        ("ETHUSDT-L-201", "open", 3000, 0.5, 300, 0.9),
        ("ETHUSDT-S-202", "open", 3100, 0.2, 124, 0.372),
        # Bitget's "buy" with tradeSide close: a sale from the long leg, not a buy of more
        ("ETHUSDT-L-201", "partial_close", 3050, 0.1, None, 0.183),
        ("SOLUSDT-L-301", "open", 150, 10, 150, 0.9),
        ("LTCUSDT-L-401", "open", 70, 1, 7, 0.042),
        ("LTCUSDT-L-401", "close", 63, None, None, 0.0378),  # burst_sell_single
    ]
    assert events[-1]["status"].startswith("liquidated at 63")
    assert [p["symbol"] for p in positions][-1] == "LTCUSDT"  # known from closed positions
    assert all(not x.gaps for x in report.parity) and len(report.parity) == 4
    # every liquidation price is Bitget's to the cent: isolated with the 0.06 % fee and the
    # tier at the liquidation price; SOLUSDT cross on the 1,000 wallet
    assert [(r.position.position_id, r.theirs, r.cause) for r in report.reconciled] == [
        ("BTCUSDT-L-101", 51_855.2, "match"), ("ETHUSDT-L-201", 2_411.09, "match"),
        ("ETHUSDT-S-202", 3_702.97, "match"), ("SOLUSDT-L-301", 50.23, "match")]


@pytest.mark.parametrize("name", ["bitget", "gate"])
def test_a_second_import_adds_nothing(name, imported, bitget, gate) -> None:
    book = imported[name][1]
    fake = bitget if name == "bitget" else gate
    again = xb.import_account(client(fake, name), book, since(25))
    assert again.sheet.cells_written == 0 and not again.sheet.changed
    assert sb.sync(book, "journal").changed is False


def test_bitget_pages_backwards_in_7_day_windows(bitget, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(fetch_bitget, "PAGE", 1)
    bitget.clear_log()
    report = xb.import_account(client(bitget, "bitget"), journal(tmp_path), since(25))
    assert report.sheet.appended["Events"] == 11 and all(not x.gaps for x in report.parity)
    fills = [e.params for e in bitget.log if e.path == "/api/v2/mix/order/fills"]
    assert all(int(p["endTime"]) - int(p["startTime"]) < 7 * DAY_MS for p in fills)
    # the two BTCUSDT b1 fills share a window: the second page asks below the first's id
    assert any(p.get("idLessThan") == "102" for p in fills)


def test_gate_pages_by_offset(gate, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(fetch_gate, "PAGE", 1)
    gate.clear_log()
    report = xb.import_account(client(gate, "gate"), journal(tmp_path), since(25))
    assert report.sheet.appended["Events"] == 9
    offsets = [int(e.params["offset"]) for e in gate.log
               if e.path == "/api/v4/futures/usdt/my_trades_timerange"]
    assert offsets == list(range(9))  # 8 fills, one a page, then an empty page


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(xb.client.KEY_ENV, API_KEY)
    monkeypatch.setenv(xb.client.SECRET_ENV, API_SECRET)
    monkeypatch.setenv(xb.client.PASSWORD_ENV, "test-passphrase")
    monkeypatch.setattr(xcli, "connect", functools.partial(xcli.connect, rate_limit_ms=1))


@pytest.mark.parametrize(("name", "path", "kind"), [
    ("bitget", "/api/v2/mix/position/all-position", "html"),
    ("bitget", "/api/v2/mix/order/fills", "nan"),
    ("bitget", "/api/v2/mix/account/bill", "year-3000"),
    ("gate", "/api/v4/futures/usdt/positions", "empty-object"),
    ("gate", "/api/v4/futures/usdt/my_trades_timerange", "negative"),
    ("gate", "/api/v4/futures/usdt/account_book", "null-numbers"),
])
def test_garbage_answer_is_one_line_and_exit_2(name, path, kind, keys, tmp_path,
                                               capsys) -> None:
    fake_class, account = FAKES[name]
    target = tmp_path / "journal.xlsx"
    sb.init(sb.open_local(target), "journal")
    before = target.read_bytes()
    with fake_class(account(), stall_seconds=1.5) as fake:
        fake.fail(path, *[kind] * 50)
        code = main(["exchange", "import", "--exchange", name, "--since", since(25),
                     "--file", str(target), "--api-url", fake.url, "--timeout", "30"])
    out, err = capsys.readouterr()
    assert code == 2, out
    assert err.count("\n") == 1, err
    assert err.startswith(f"leverage: error: {name} sent a bad answer to GET {path}"), err
    assert target.read_bytes() == before


@pytest.mark.parametrize("name", ["bitget", "gate"])
def test_refused_key_and_a_429(name, bitget, gate, tmp_path, capsys, monkeypatch) -> None:
    fake = bitget if name == "bitget" else gate
    monkeypatch.setenv(xb.client.KEY_ENV, "wrong-key-123")
    monkeypatch.setenv(xb.client.SECRET_ENV, "wrong-secret-456")
    monkeypatch.setenv(xb.client.PASSWORD_ENV, "wrong-pass-789")
    code = main(["exchange", "import", "--exchange", name, "--since", since(25),
                 "--file", str(tmp_path / "j.xlsx"), "--api-url", fake.url, "--timeout", "30"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "refused the API key" in err
    assert "wrong-key-123" not in err and "wrong-secret-456" not in err
    positions = ("/api/v2/mix/position/all-position" if name == "bitget"
                 else "/api/v4/futures/usdt/positions")
    fake.fail(positions, "429")
    fake.clear_log()
    report = xb.import_account(client(fake, name), journal(tmp_path / "b"), since(25))
    assert [e.status for e in fake.log if e.path == positions][:2] == [429, 200]
    assert report.open_positions


@pytest.mark.parametrize("name", ["bitget", "gate"])
def test_reconcile_command(name, bitget, gate, keys, capsys) -> None:
    fake = bitget if name == "bitget" else gate
    code = main(["exchange", "reconcile", "--exchange", name, "--api-url", fake.url,
                 "--timeout", "30"])
    out = capsys.readouterr().out
    assert code == 0 and "match" in out


def test_rebalance_import_states_the_account(gate, tmp_path) -> None:
    path = tmp_path / "rebalance.xlsx"
    book = sb.open_local(path)
    sb.init(book, "rebalance")
    report = xb.import_account(client(gate, "gate"), book, since(25))
    assert len(report.open_positions) == 3
    # the cross wallet: total 1,000 less the 24.383 isolated margin (GET /futures/usdt/accounts)
    figures = xb.account_figures(client(gate, "gate"), xb.fetch_open(client(gate, "gate")))
    assert figures["wallet_balance"] == pytest.approx(975.617)
    shutil.rmtree(tmp_path, ignore_errors=True)
