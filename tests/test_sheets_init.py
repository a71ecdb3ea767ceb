"""``sheets init`` on both backends: what it lays out (wrapped headers, the layout's number
formats, input prompts, the Instructions sheet, the charts) and what it refuses before it
changes anything."""

from __future__ import annotations

from pathlib import Path

import openpyxl
import pytest
from fake_sheets import FakeSheets, make_client

import leverage_sheets as sb
from leverage.layout import JOURNAL_EVENTS, REBALANCE_POSITIONS


@pytest.fixture(scope="module")
def fake() -> FakeSheets:
    with FakeSheets() as server:
        yield server
        assert not server.server_errors, server.server_errors[0]


# ------------------------------------------------------------------ refusing before changing


@pytest.mark.parametrize("template", ["journal", "rebalance"])
@pytest.mark.parametrize("mode", ["native", "udf"])
def test_init_refuses_a_self_computing_workbook_and_changes_no_byte(
    tmp_path: Path, template: str, mode: str
) -> None:
    import leverage_templates as templates

    build = templates.build_journal if template == "journal" else templates.build_rebalance
    path = build(tmp_path / "built.xlsx", mode=mode)
    before = path.read_bytes()
    with pytest.raises(sb.LayoutError) as caught:
        sb.init(sb.open_local(path), template)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("init changed nothing: workbook ")
    assert "cannot be synced" in message and "holds a formula" in message
    assert path.read_bytes() == before


def test_init_refuses_merged_cells_over_computed_columns(tmp_path: Path) -> None:
    path = tmp_path / "j.xlsx"
    sb.init(sb.open_local(path), "journal", sample=True)
    wb = openpyxl.load_workbook(path)
    status = JOURNAL_EVENTS.letter("status")
    wb["Events"].merge_cells(f"{status}2:{status}3")
    wb.save(path)
    before = path.read_bytes()
    with pytest.raises(sb.LayoutError, match=r"init changed nothing: .* merged range"):
        sb.init(sb.open_local(path), "journal")
    assert path.read_bytes() == before


def test_google_init_refuses_a_self_computing_sheet_without_writing(fake: FakeSheets) -> None:
    headers = REBALANCE_POSITIONS.headers
    row = ["p1", "BTCUSDT", "long", "linear", 1, 60_000, 59_000, 5_000, "isolated", 5, 0.2,
           1, 0.005, 0]
    notional = REBALANCE_POSITIONS.letter("notional")
    formula_row = [*row, "=E2*G2"]
    key = fake.create_spreadsheet(
        "uploaded", sheets={"Account": [["Item", "Value"]], "Positions": [headers, formula_row]},
        value_input_option="USER_ENTERED")
    backend = sb.open_google(key, client=make_client(fake))
    fake.reset_log()
    with pytest.raises(sb.LayoutError) as caught:
        sb.init(backend, "rebalance")
    message = str(caught.value)
    assert f"Positions!{notional}2 holds a formula" in message and "init changed nothing" in message
    assert "\n" not in message
    assert [r.method for r in fake.requests] == ["GET", "GET"]  # tabs, then the read: no write
    assert fake.batch_requests(key) == []
