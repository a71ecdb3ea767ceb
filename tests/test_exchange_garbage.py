"""Garbage from an exchange is an error, never data (issue 20, item 3).

Real ccxt against the loopback exchanges, each endpoint the import reads answering 200 with a
spoiled body (``RecordedExchange.fail(path, kind)``, kinds in ``recorded_exchange.GARBAGE``): an
HTML error page, the JSON cut in half, ``null``, ``{}``, plain text, or the honest JSON with
every number NaN, negated or null, or every millisecond timestamp in the year 3000. Before, each
ended with exit 0 and a journal unlike the honest import's (an HTML ``positionRisk`` read as "no
open positions"). Now: exit 2, one line naming the exchange, the endpoint and what was wrong,
and the journal's bytes as they were."""

from __future__ import annotations

import datetime as dt
import functools
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ccxt")

import leverage_exchange as xb
import leverage_sheets as sb
from leverage.cli import main
from leverage_exchange import cli as xcli
from leverage_exchange.recorded_exchange import (
    API_KEY,
    API_SECRET,
    GARBAGE,
    FakeBinanceFutures,
    FakeBybit,
    FakeOkx,
    RecordedExchange,
    sample_account,
    sample_bybit_account,
    sample_okx_account,
)

# Every endpoint each import reads (the paths an honest import requests, from the fakes' logs)
BINANCE = ("/fapi/v1/exchangeInfo", "/fapi/v3/positionRisk", "/fapi/v3/account",
           "/fapi/v1/income", "/fapi/v1/userTrades", "/fapi/v1/positionMargin/history",
           "/fapi/v1/forceOrders", "/fapi/v1/symbolConfig", "/fapi/v1/leverageBracket",
           "/fapi/v1/premiumIndex")
BYBIT = ("/v5/market/instruments-info", "/v5/position/list", "/v5/account/wallet-balance",
         "/v5/execution/list", "/v5/position/closed-pnl", "/v5/market/risk-limit",
         "/v5/market/tickers")
OKX = ("/api/v5/public/instruments", "/api/v5/account/positions", "/api/v5/account/balance",
       "/api/v5/trade/fills-history", "/api/v5/account/bills-archive",
       "/api/v5/account/positions-history", "/api/v5/public/position-tiers",
       "/api/v5/public/mark-price")
# Spoiling changes nothing the import reads: these answers hold no millisecond timestamp
# (tiers, leverage settings), or only ones the import never reads (a market's listing date)
NO_OP = {("/fapi/v1/exchangeInfo", "year-3000"), ("/fapi/v1/symbolConfig", "year-3000"),
         ("/fapi/v1/leverageBracket", "year-3000"), ("/api/v5/public/instruments", "year-3000"),
         ("/api/v5/public/position-tiers", "year-3000")}
FAKES = {"binanceusdm": (FakeBinanceFutures, sample_account), "bybit": (FakeBybit,
         sample_bybit_account), "okx": (FakeOkx, sample_okx_account)}


def _cases() -> list[Any]:
    """Every shape on every Binance endpoint; on Bybit's and OKX's, one of the five spoiled
    bodies and one of the four spoiled-number shapes each, rotating, so each shape meets
    several endpoints of each exchange."""
    cases = [("binanceusdm", p, k) for p in BINANCE for k in GARBAGE]
    for name, paths in (("bybit", BYBIT), ("okx", OKX)):
        for i, p in enumerate(paths):
            cases += [(name, p, GARBAGE[i % 5]), (name, p, GARBAGE[5 + i % 4])]
    return [pytest.param(n, p, k, id=f"{n}{p}-{k}") for n, p, k in cases
            if (p, k) not in NO_OP]


@pytest.fixture(scope="module")
def laid_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("journal") / "journal.xlsx"
    sb.init(sb.open_local(path), "journal")
    return path


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(xb.client.KEY_ENV, API_KEY)
    monkeypatch.setenv(xb.client.SECRET_ENV, API_SECRET)
    monkeypatch.setenv(xb.client.PASSWORD_ENV, "test-passphrase")
    # ccxt's limiter would pace the requests by the exchange's weights: not what this checks
    monkeypatch.setattr(xcli, "connect", functools.partial(xcli.connect, rate_limit_ms=1))
    yield


# The recorded accounts hold the last 20 days: a start 30 days back covers them all, and the
# import asks no empty 7-day windows back to a fixed date (2024-01-01 cost ~150 of them on
# Bybit and OKX, growing every week).
SINCE = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).strftime("%Y-%m-%d")


def _serve(name: str) -> RecordedExchange:
    fake_class, account = FAKES[name]
    return fake_class(account(), stall_seconds=1.5)


@pytest.mark.parametrize(("name", "path", "kind"), _cases())
def test_a_spoiled_answer_stops_the_import_and_changes_no_byte(
        name: str, path: str, kind: str, laid_out: Path, tmp_path: Path, keys: None,
        capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "journal.xlsx"
    shutil.copy(laid_out, journal)
    before = journal.read_bytes()
    with _serve(name) as fake:
        fake.fail(path, *[kind] * 50)  # every request to it (a page of rows may come later)
        code = main(["exchange", "import", "--exchange", name, "--since", SINCE,
                     "--file", str(journal), "--api-url", fake.url, "--timeout", "30"])
    out, err = capsys.readouterr()
    assert not fake.server_errors
    assert code == 2, out
    assert err.count("\n") == 1, err
    assert err.startswith(f"leverage: error: {name} sent a bad answer to GET {path} (reading "), err
    assert journal.read_bytes() == before


def test_the_honest_answers_still_import(laid_out: Path, tmp_path: Path, keys: None,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The checks refuse garbage only: the same fakes, unspoiled, import as before."""
    for name in FAKES:
        journal = tmp_path / f"{name}.xlsx"
        shutil.copy(laid_out, journal)
        with _serve(name) as fake:
            assert main(["exchange", "import", "--exchange", name, "--since", SINCE,
                         "--file", str(journal), "--api-url", fake.url]) == 0
        assert "Events" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["html", "null", "empty-object", "null-numbers"])
def test_reconcile_on_a_spoiled_position_list_says_so(
        kind: str, keys: None, capsys: pytest.CaptureFixture[str]) -> None:
    """It used to print "no open positions" for an HTML page from a proxy."""
    with _serve("binanceusdm") as fake:
        fake.fail("/fapi/v3/positionRisk", kind)
        code = main(["exchange", "reconcile", "--api-url", fake.url, "--timeout", "30"])
    out, err = capsys.readouterr()
    assert code == 2 and "no open positions" not in out
    assert err.count("\n") == 1
    assert err.startswith("leverage: error: binanceusdm sent a bad answer to GET "
                          "/fapi/v3/positionRisk (reading open positions, fetch_positions): ")


@pytest.mark.parametrize(("exchange", "url", "body"), [
    # a hedge leg never traded: Binance sends updateTime 0 (USDⓈ-M docs, GET /fapi/v3/positionRisk)
    ("binanceusdm", "http://h/fapi/v3/positionRisk",
     [{"symbol": "BTCUSDT", "positionAmt": "0", "entryPrice": "0.0", "updateTime": 0}]),
    # a perpetual's tickers: nextFundingTime, deliveryTime blank or 0 (Bybit v5 docs, tickers)
    ("bybit", "http://h/v5/market/tickers",
     {"retCode": 0, "retMsg": "OK", "time": 1717200000000, "result": {"list": [
         {"symbol": "BTCUSDT", "markPrice": "61000", "nextFundingTime": "",
          "deliveryTime": "0"}]}}),
    # OKX leaves figures it does not have blank: lever "" and liqPx "" (OKX v5 docs, positions)
    ("okx", "http://h/api/v5/account/positions",
     {"code": "0", "msg": "", "data": [{"instId": "BTC-USDT-SWAP", "lever": "", "liqPx": "",
                                        "uTime": "1717200000000", "cTime": "0"}]}),
    # an error answer is ccxt's to raise, not garbage (OKX's 51001: instrument does not exist)
    ("okx", "http://h/api/v5/public/mark-price", {"code": "51001", "msg": "x", "data": []}),
])
def test_honest_blanks_and_zeros_are_not_garbage(exchange: str, url: str, body: Any) -> None:
    from types import SimpleNamespace

    from leverage_exchange.answers import check_body

    stand_in = SimpleNamespace(id=exchange, last_response_headers={})  # this machine's clock
    check_body(stand_in, url, "GET", body)  # raises BadAnswer on garbage
