"""Issue 20, item 7: the rebalance's account totals never leave a row out silently.

A row with an input error is left out of every total, a row with no margin move (a Status
after its inputs passed, e.g. liquidated at once) of the move totals: the Account sheet's
"Totals check" row says how many and names them, in the core, the native workbook
(LibreOffice and the ``formulas`` engine), the add-in workbook and the sync alike. A bad
Account input (a negative free balance, a blank cross wallet) is refused as the sync refuses
it, naming the cell; a blank isolated margin is "required", never read as 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import openpyxl
import pytest
from fake_sheets import FakeSheets
from test_rebalance_guardrails import _udfs, column, needs_lo, typed_workbook
from typed_books import typed_rebalance
from xl_engine import compute, read_values, recalc_many_with_libreoffice

import leverage_sheets as sb
import leverage_templates as templates
from leverage import layout as L
from leverage.errors import InputError
from leverage.portfolio import MARGIN_REQUIRED, rebalance

POS, ACC = L.REBALANCE_POSITIONS, L.REBALANCE_ACCOUNT


def _trader_rows() -> tuple[list[dict[str, Any]], float, float]:
    """The sample with the trader's mistakes: P1's qty typed negative, P5's isolated margin
    left blank, and an unnamed copy of P6 whose mmr 0.5 (50 %) liquidates it at once."""
    positions, wallet, free = templates.sample_portfolio()
    rows = [dict(p) for p in positions]
    rows[0]["qty"] = -0.5
    rows[4]["margin"] = None
    rows.append(dict(rows[5], position_id=None, mmr=0.5))
    return rows, wallet, free


ROWS, WALLET, FREE = _trader_rows()
LABELS = [f"row {L.FIRST_DATA_ROW + i}" for i in range(len(ROWS))]  # sheet rows
CHECK = ("2 rows with errors left out of every total: P1, P5; "
         "1 row with no margin move left out of the move totals: row 8; "
         "1 row with no liq. price left out of the worst liq. distance: row 8")


def test_the_core_names_the_rows_left_out_of_the_totals():
    r = rebalance(ROWS, WALLET, FREE, row_labels=LABELS)
    assert r.account["totals_check"] == CHECK
    # the numbers: P1 alone takes the notional from 131,000 to 99,000
    only_p1 = [dict(p) for p in templates.sample_portfolio()[0]]
    only_p1[0]["qty"] = -0.5
    r1 = rebalance(only_p1, WALLET, FREE)
    assert r1.account["total_notional"] == 99_000
    assert r1.account["totals_check"] == "1 row with errors left out of every total: P1"
    clean = rebalance(*templates.sample_portfolio())
    assert clean.account["totals_check"] == ""
    # without labels an unnamed row is named by its place in the list
    assert rebalance(ROWS, WALLET, FREE).account["totals_check"].endswith(": row 7")
    # a row liquidated at once has no liq. price: the worst distance does not see it
    assert r.account["worst_liq_distance"] == pytest.approx(min(
        d for d in r.columns["liq_distance"] if d == d))


def test_a_blank_isolated_margin_is_required_never_zero():
    r = rebalance(ROWS, WALLET, FREE)
    assert r.columns["status"][4] == MARGIN_REQUIRED
    assert "blank" in MARGIN_REQUIRED and "isolated" in MARGIN_REQUIRED
    assert "liquidated at once" not in r.columns["status"][4]
    assert r.columns["status"][2] == ""  # cross: the margin is not read


def _account(values: dict[tuple[str, str], Any], key: str) -> Any:
    got = values.get((ACC.title, f"B{L.account_row(key)}"))
    return None if got == "" else got


def _assert_as_core(values: dict[tuple[str, str], Any]) -> None:
    want = rebalance(ROWS, WALLET, FREE, row_labels=LABELS)
    assert _account(values, "totals_check") == want.account["totals_check"] == CHECK
    for key in ("total_notional", "total_equity", "account_leverage", "total_move",
                "total_allocated"):
        assert _account(values, key) == pytest.approx(want.account[key], rel=1e-9), key
    status = [s or "" for s in column(values, "status", len(ROWS))]
    assert status == want.columns["status"]


@pytest.fixture(scope="module")
def in_libreoffice(tmp_path_factory) -> dict[str, dict[tuple[str, str], Any]]:
    """The native workbooks of this file's LibreOffice tests (the trader's rows; the sample's
    with each bad Account input), recalculated in one LibreOffice run."""
    tmp = tmp_path_factory.mktemp("totals-lo")
    books = {"rows": (ROWS, WALLET, FREE),
             **{case: (ACCOUNT_ROWS, *balances) for case, balances in BAD_ACCOUNT.items()}}
    paths = [typed_workbook(tmp / f"{case.replace(' ', '-')}.xlsx", "native", rows, w, f)
             for case, (rows, w, f) in books.items()]
    outs = recalc_many_with_libreoffice(paths, tmp / "lo")
    return {case: read_values(out) for case, out in zip(books, outs, strict=True)}


@needs_lo
def test_native_workbook_names_the_rows_left_out_in_libreoffice(in_libreoffice):
    _assert_as_core(in_libreoffice["rows"])


def test_native_workbook_names_the_rows_left_out_in_formulas(tmp_path):
    path = typed_workbook(tmp_path / "r.xlsx", "native", ROWS, WALLET, FREE)
    _assert_as_core(compute(path))


def test_udf_workbook_names_the_rows_left_out(tmp_path):
    path = typed_workbook(tmp_path / "r.xlsx", "udf", ROWS, WALLET, FREE)
    _assert_as_core(compute(path, _udfs()))


# ------------------------------------------------------------------ Account inputs
BAD_ACCOUNT = {"negative free balance": (WALLET, -500.0), "blank cross wallet": (None, FREE)}
# An Account input refuses every row alike: one isolated and one cross row of the sample show
# it (the engine spends about 1 s a row; the sample's other rows are more of the same).
ACCOUNT_ROWS = [p for p in templates.sample_portfolio()[0] if p["position_id"] in ("P1", "P3")]


def _sync_says(tmp: Path, wallet: float | None, free: float) -> str:
    """The message of the sync, on a local .xlsx laid out by `sheets init`, for the sample
    rows and these balances."""
    path = tmp / "synced.xlsx"
    backend = sb.open_local(path)
    sb.init(backend, "rebalance")
    wb = openpyxl.load_workbook(path)
    wb[ACC.title][f"B{L.account_row('wallet_balance')}"] = wallet
    wb[ACC.title][f"B{L.account_row('free_balance')}"] = free
    for i, p in enumerate(ACCOUNT_ROWS):
        for key, v in p.items():
            wb[POS.title].cell(L.FIRST_DATA_ROW + i, POS.index(key) + 1, v)
    wb.save(path)
    with pytest.raises(InputError) as info:
        sb.sync(sb.open_local(path), "rebalance")
    return str(info.value)


def _assert_refused(values: dict[tuple[str, str], Any], says: str) -> None:
    """The Account input refused as the sync refuses it: its message in the totals check and
    every row's Status, no total and no row figure."""
    assert _account(values, "totals_check") == says
    for key, _label in L.ACCOUNT_OUTPUT_ROWS:
        if key != "totals_check":
            assert _account(values, key) is None, key
    n = len(ACCOUNT_ROWS)
    assert column(values, "status", n) == [says] * n
    for key in ("notional", "leverage", "move", "allocated"):
        assert all(v in (None, "") for v in column(values, key, n)), key


@pytest.mark.parametrize("case", BAD_ACCOUNT)
def test_the_sync_names_the_bad_account_cell(case, tmp_path):
    wallet, free = BAD_ACCOUNT[case]
    says = _sync_says(tmp_path, wallet, free)
    key = "free_balance" if free < 0 else "wallet_balance"
    assert says.startswith(f"{ACC.title}!B{L.account_row(key)} ({key}): ")


@needs_lo
@pytest.mark.parametrize("case", BAD_ACCOUNT)
def test_native_workbook_refuses_a_bad_account_input_in_libreoffice(case, tmp_path,
                                                                    in_libreoffice):
    wallet, free = BAD_ACCOUNT[case]
    _assert_refused(in_libreoffice[case], _sync_says(tmp_path, wallet, free))


@pytest.mark.parametrize("mode", ["native", "udf"])
@pytest.mark.parametrize("case", BAD_ACCOUNT)
def test_workbook_refuses_a_bad_account_input_in_formulas(case, mode, tmp_path):
    wallet, free = BAD_ACCOUNT[case]
    path = typed_workbook(tmp_path / "r.xlsx", mode, ACCOUNT_ROWS, wallet, free)
    values = compute(path, _udfs() if mode == "udf" else None)
    _assert_refused(values, _sync_says(tmp_path, wallet, free))


# ------------------------------------------------------------------ the sync
@pytest.mark.parametrize("kind", ["google", "xlsx"])
def test_the_sync_writes_the_totals_check(kind: str, fake: FakeSheets, tmp_path: Path):
    keys = POS.keys("input")
    typed = [[p.get(k) for k in keys] for p in ROWS]
    backend, read = typed_rebalance(kind, fake, tmp_path, [WALLET, FREE], typed)
    report = sb.sync(backend, "rebalance")
    assert report.rows_with_errors == 3
    grid, rows = read(ACC.title), read(POS.title)
    assert grid[L.account_row("totals_check") - 1][1] == CHECK
    assert rows[1 + 4][POS.index("status")] == MARGIN_REQUIRED  # P5: blank, not 0
