"""The exchange commands' overall deadline: real ccxt against the loopback Binance server.
A clock that counts the server's answers, or a fake sleep, stands in for wall-clock time;
the one test with a real watchdog only asserts what was said, never how fast."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ccxt")

from fake_exchange import API_KEY, API_SECRET, FakeBinanceFutures, income, sample_account

import leverage_exchange as xb
import leverage_sheets as sb
from leverage.cli import main
from leverage_exchange import fetch as xfetch
from leverage_exchange.client import Deadline

CREDS = {"apiKey": API_KEY, "secret": API_SECRET}
SINCE = "2024-01-01"


@pytest.fixture
def fake() -> Iterator[FakeBinanceFutures]:
    with FakeBinanceFutures(sample_account(), stall_seconds=1.5) as server:
        yield server
    assert not server.server_errors


def book(tmp_path: Path) -> Any:
    b = sb.open_local(tmp_path / "journal.xlsx")
    sb.init(b, "journal")
    return b


def test_pages_that_never_end_stop_at_the_deadline(fake, tmp_path, monkeypatch) -> None:
    # a long history, two rows a page; time is the number of answers the server gave
    monkeypatch.setitem(xfetch.PAGE, "income", 2)
    base = fake.account.income[0]["time"]
    fake.account.income.extend(
        income(9000 + i, "BTCUSDT", "FUNDING_FEE", "-0.01000000", base + 1 + i * 60_000)
        for i in range(400))
    deadline = Deadline(12, clock=lambda: float(len(fake.log)))
    ex = xb.connect("binanceusdm", CREDS, api_url=fake.url, timeout_ms=1000, rate_limit_ms=1,
                    deadline=deadline)
    target = book(tmp_path)
    before = (tmp_path / "journal.xlsx").read_bytes()
    with pytest.raises(xb.ExchangeError, match="did not finish within the deadline of 12 s"):
        xb.import_account(ex, target, SINCE)
    assert len(fake.log) == 12  # none started after it
    assert (tmp_path / "journal.xlsx").read_bytes() == before


def _fake_time() -> tuple[Deadline, list[float]]:
    now = [0.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    return Deadline(60, clock=lambda: now[0], sleep=sleep), waits


def test_retry_after_is_waited_within_the_deadline(fake, tmp_path) -> None:
    deadline, waits = _fake_time()
    ex = xb.connect("binanceusdm", CREDS, api_url=fake.url, timeout_ms=1000, rate_limit_ms=1,
                    deadline=deadline)
    fake.fail("/fapi/v1/income", "429 retry-after=7")
    report = xb.import_account(ex, book(tmp_path), SINCE)
    assert report.sheet.appended["Events"] == 9
    assert waits == [7.0]  # what the server asked, not the 0.5 s back-off


def test_retry_after_past_the_deadline_gives_up_at_once(fake, tmp_path) -> None:
    deadline, waits = _fake_time()
    ex = xb.connect("binanceusdm", CREDS, api_url=fake.url, timeout_ms=1000, rate_limit_ms=1,
                    deadline=deadline)
    fake.fail("/fapi/v1/income", "429 retry-after=1000")
    with pytest.raises(xb.ExchangeError, match="it asked to wait 1000 s before retrying"):
        xb.import_account(ex, book(tmp_path), SINCE)
    assert waits == []


def test_a_trickled_answer_is_cut_at_the_deadline(fake, capsys, monkeypatch) -> None:
    # the status line, headers and body a byte every 0.25 s: each read is well within --timeout,
    # so only the deadline ends it (released after 60 s, so the code before it fails, not hangs)
    monkeypatch.setenv(xb.client.KEY_ENV, API_KEY)
    monkeypatch.setenv(xb.client.SECRET_ENV, API_SECRET)
    fake.fail("/fapi/v3/positionRisk", "trickle")
    release = threading.Timer(60, fake.release)
    release.start()
    try:
        code = main(["exchange", "reconcile", "--api-url", fake.url, "--timeout", "30",
                     "--deadline", "3"])
    finally:
        release.cancel()
        fake.release()
    err = capsys.readouterr().err
    assert code == 2, err
    assert "did not finish within the deadline of 3 s" in err and err.count("\n") == 1
