"""The main job (`make demo`): both workbooks, a local sync, the report and the chart."""

from __future__ import annotations

import hashlib
from pathlib import Path

import openpyxl
import pytest

import leverage as lv
import leverage_demo as demo
from leverage import layout
from leverage.cli import main as cli_main


def _hashes(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_demo_writes_everything_and_is_idempotent(tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    assert cli_main(["demo", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    names = {p.name for p in out.iterdir()}
    assert names == {
        "journal.xlsx", "rebalance.xlsx", "journal-excel-addin.xlsx",
        "rebalance-excel-addin.xlsx", "journal-synced.xlsx", "rebalance-synced.xlsx",
        "rebalance-exchange.xlsx", "journal-chart.png",
    }
    first = _hashes(out)
    assert demo.run(out, echo=lambda *_: None) == 0
    assert _hashes(out) == first  # running it twice gives the same files
    assert (out / "journal-chart.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for path in out.glob("*.xlsx"):
        openpyxl.load_workbook(path).close()
    assert "Rule breaks found:" in text and "leverage above max" in text
    assert "Portfolio (rebalance-synced.xlsx)" in text
    assert "Rate from the Symbol: SOL-L (SOLUSDT, 400 @ 150, rate left blank) uses " \
           "binance:SOLUSDT tier 2: 0.65% less 75.00" in text
    # the imported Binance fills carry their USDT commissions: SOL's 0.75 (10 × 150 × 0.05 %)
    # + 0.675 (10 × 135 × 0.05 %) in its net; its liquidation fill at the bankruptcy price
    # 135 is beyond the journal's liquidation price 135.54, so the journal marks it
    # liquidated with its 150 of margin lost
    assert "SOLUSDT-L-301 liquidated; realized PnL -150.00, funding 0.00, fees 1.43: net " \
           "-151.43 USDT" in text
    assert "liquidation: SOLUSDT-L-301 close: liquidated at 135" in text
    assert "refused row" not in text
    assert "  USDT   3 closed, 1 won (33%)" in text  # the Summary's totals, one currency
    assert "  USDT   3 closed, 1 won (33%), 1 liquidated;" in text  # SOL
    # the R multiple is a mean over the closed positions with a stop (BTC-L1 and ETH-S1; the
    # imported SOL position has none), and says so
    assert "over the 2 with a stop" in text and "a position (all 3)" in text
    # the journal reproduces the account: parity per open position, nothing unexplained
    assert "BTCUSDT-L-101 long: journal = exchange (size 0.006, entry 60,000, margin 47.45 " \
           "USDT)" in text
    assert "ETHUSDT-S-201 short: journal = exchange (size 0.5, entry 3,000)" in text
    assert "unexplained" not in text
    assert f"Files in {out}/:" in text


def test_demo_names_each_exchange_position_alike_in_both_workbooks(tmp_path: Path) -> None:
    demo.run(tmp_path, echo=lambda *_: None)
    events = demo.read_journal(tmp_path / "journal-synced.xlsx")
    rows = {r["position_id"]: r for r in
            demo._rows(tmp_path / "rebalance-exchange.xlsx", layout.REBALANCE_POSITIONS)}
    assert list(rows) == ["BTCUSDT-L-101", "ETHUSDT-S-201"]
    assert set(rows) <= {e["position_id"] for e in events}
    # one liquidation price for BTC: the journal's after its latest event, the rebalance's
    # (from the exchange's isolated wallet) and the exchange's agree
    btc = [e for e in events if e["position_id"] == "BTCUSDT-L-101"]
    latest = max(btc, key=lambda e: e["date"])
    assert latest["liq_price"] == pytest.approx(rows["BTCUSDT-L-101"]["liq_price"], rel=1e-12)
    assert rows["BTCUSDT-L-101"]["liq_price"] == pytest.approx(
        rows["BTCUSDT-L-101"]["exchange_liq_price"], abs=0.01)
    # no target typed: the sheet suggests no move; the wallet is the exchange's
    assert [(r["target_leverage"], r["move"], r["status"]) for r in rows.values()] == [
        (None, None, None)] * 2
    account = demo._account(tmp_path / "rebalance-exchange.xlsx")
    assert account["total_equity"] > 0


def test_demo_report_numbers_come_from_the_synced_workbook(tmp_path: Path) -> None:
    demo.run(tmp_path, echo=lambda *_: None)
    events = demo.read_journal(tmp_path / "journal-synced.xlsx")
    first = events[0]  # BTC-L1 opened: 0.5 BTC at 60,000 on 3,000 margin
    assert first["effective_leverage"] == 10
    # workbooks keep 15-16 significant digits, as spreadsheet apps do
    assert first["liq_price"] == pytest.approx(
        lv.liq_price("long", 0.5, 60_000, 3_000, 0.004), rel=1e-14
    )
    lines = demo.portfolio_lines(tmp_path / "rebalance-synced.xlsx")
    assert any(line.startswith("P1") for line in lines)


def test_demo_rejects_a_file_as_out(tmp_path: Path, capsys) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    assert cli_main(["demo", "--out", str(f)]) == 2
    assert "--out must be a folder" in capsys.readouterr().err
