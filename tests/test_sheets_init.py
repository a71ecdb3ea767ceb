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


# ------------------------------------------------------------------ what init lays out: Google


def _one_layout(fake: FakeSheets, key: str) -> list[dict]:
    """The requests of init's one batchUpdate (and check it was one)."""
    posts = [r for r in fake.requests if r.method == "POST" and r.path.endswith(":batchUpdate")]
    assert len(posts) == 1, [r.path for r in fake.requests]
    return posts[0].body["requests"]


@pytest.mark.parametrize("template", ["journal", "rebalance"])
def test_google_init_wraps_headers_formats_prompts_and_instructions_in_one_batch(
    fake: FakeSheets, template: str
) -> None:
    from leverage.instructions import INSTRUCTIONS, PROMPTS
    from leverage_sheets.content import bridge_sheets, header_lines

    key = fake.create_spreadsheet("new")
    backend = sb.open_google(key, client=make_client(fake))
    fake.reset_log()
    sb.init(backend, template)
    requests = _one_layout(fake, key)
    titles = backend.sheet_titles()
    assert titles[0] == "Instructions"
    guide = fake.values(key, "Instructions")
    assert guide[0][:2] == ["Topic", "What to know"]
    assert [r[:2] for r in guide[1: 1 + len(INSTRUCTIONS[template])]] == [
        list(row) for row in INSTRUCTIONS[template]]
    ids = {fake.sheet_properties(key, t)["sheetId"]: t for t in titles}
    for sheet in bridge_sheets(template):
        sid = fake.sheet_properties(key, sheet.title)["sheetId"]
        mine = [r for r in requests if sid in _ids(r)]
        # row 1 wraps, and is tall enough for the longest header
        wraps = [r["repeatCell"] for r in mine if "repeatCell" in r and r["repeatCell"]["cell"][
            "userEnteredFormat"].get("wrapStrategy") == "WRAP"]
        assert any(w["range"]["startRowIndex"] == 0 and w["range"]["endRowIndex"] == 1
                   and w["range"]["endColumnIndex"] == len(sheet.columns) for w in wraps)
        heights = [r["updateDimensionProperties"] for r in mine
                   if r.get("updateDimensionProperties", {}).get("range", {}).get(
                       "dimension") == "ROWS"]
        assert heights and heights[0]["properties"]["pixelSize"] >= 17 * header_lines(sheet)
        # every column's number format, as the layout gives it (the price format included)
        formats = {r["repeatCell"]["range"]["startColumnIndex"]:
                   r["repeatCell"]["cell"]["userEnteredFormat"]["numberFormat"]["pattern"]
                   for r in mine if "repeatCell" in r
                   and "numberFormat" in r["repeatCell"]["cell"]["userEnteredFormat"]
                   and r["repeatCell"]["range"]["startRowIndex"] == 1
                   and r["repeatCell"]["range"].get("endColumnIndex", 0)
                   - r["repeatCell"]["range"]["startColumnIndex"] == 1}
        if sheet.title not in ("Rules", "Account"):
            for i, col in enumerate(sheet.columns):
                if col.number_format != "General":
                    assert formats[i] == col.number_format, (sheet.title, col.key)
        # a prompt on every typed column; a drop-down keeps its list in the same rule
        rules = {r["setDataValidation"]["range"]["startColumnIndex"]:
                 r["setDataValidation"]["rule"] for r in mine if "setDataValidation" in r}
        for i, col in enumerate(sheet.columns):
            prompt = PROMPTS.get((sheet.title, col.key))
            if col.role == "computed" or prompt is None:
                assert i not in rules or sheet.title == "Account", (sheet.title, col.key)
                continue
            rule = rules[i]
            assert rule["inputMessage"] == f"{prompt[0]}: {prompt[1]}"
            if col.choices and col.role == "input":
                assert rule["condition"] == {"type": "ONE_OF_LIST", "values": [
                    {"userEnteredValue": v} for v in col.choices]}
                assert rule["strict"] and rule["showCustomUi"]
            else:
                assert rule["strict"] is False
    assert ids  # every tab found by id


def _ids(payload: object) -> set[int]:
    out: set[int] = set()
    if isinstance(payload, dict):
        for k, v in payload.items():
            if k == "sheetId":
                out.add(v)
            else:
                out |= _ids(v)
    elif isinstance(payload, list):
        for v in payload:
            out |= _ids(v)
    return out


def test_google_init_adds_open_ended_charts_once(fake: FakeSheets) -> None:
    from leverage_sheets.charts import DATA_COLUMN, slot_count

    key = fake.create_spreadsheet("new")
    backend = sb.open_google(key, client=make_client(fake))
    fake.reset_log()
    sb.init(backend, "journal", sample=True)
    requests = _one_layout(fake, key)
    charts_id = fake.sheet_properties(key, "Charts")["sheetId"]
    picks = [r[0] for r in fake.values(key, "Charts")[1::20] if r and r[0]]
    positions = [r[0] for r in fake.values(key, "Positions")[1:]]
    assert picks[: len(positions)] == positions  # prefilled: one slot per position
    slots = slot_count(len(positions))
    added = [r["addChart"]["chart"] for r in requests if "addChart" in r]
    assert len(added) == slots + 1 == len(fake.charts(key, "Charts"))  # + the equity curve
    for chart in added:
        spec = chart["spec"]
        assert spec["hiddenDimensionStrategy"] == "SHOW_ALL"
        ranges = [spec["basicChart"]["domains"][0]["domain"]] + [
            s["series"] for s in spec["basicChart"]["series"]]
        for data in ranges:
            (grid,) = data["sourceRange"]["sources"]
            assert grid["sheetId"] == charts_id and "endRowIndex" not in grid  # grows
            assert grid["startColumnIndex"] >= DATA_COLUMN - 1
    # the chart data: one formula per slot over open-ended ranges, closed rows left out
    row2 = fake.values(key, "Charts")[1]
    first = row2[DATA_COLUMN - 1]
    assert fake.is_formula(key, "Charts", f"{_letter(DATA_COLUMN)}2")
    assert "FILTER(" in first and "Events!$B$2:$B=$A$2" in first
    qty = JOURNAL_EVENTS.letter("qty_open")
    assert f"Events!${qty}$2:${qty}>0" in first
    # every series sorts on (date, row): its points stay aligned with the dates on a tie
    date = JOURNAL_EVENTS.letter("date")
    assert all(f"TRUE, FILTER(ROW(Events!${date}$2:${date})," in f for f in row2[DATA_COLUMN - 1:]
               if isinstance(f, str) and f.startswith("=") and "Events!" in f)
    hidden = [r["updateDimensionProperties"] for r in requests
              if r.get("updateDimensionProperties", {}).get("properties", {}).get(
                  "hiddenByUser")]
    assert {h["range"]["startIndex"] for h in hidden} >= {DATA_COLUMN - 1}
    # again: the trader's picks and the charts stay, nothing stacks
    backend.sheet_titles()
    sb.init(backend, "journal")
    assert len(fake.charts(key, "Charts")) == slots + 1


def _letter(col: int) -> str:
    from leverage.layout import column_letter

    return column_letter(col)


def test_init_refuses_a_tab_named_like_ours_holding_something_else(
    fake: FakeSheets, tmp_path: Path
) -> None:
    key = fake.create_spreadsheet("x", sheets={"Instructions": [["my notes"]]})
    backend = sb.open_google(key, client=make_client(fake))
    fake.reset_log()
    with pytest.raises(sb.LayoutError, match="tab 'Instructions' already exists"):
        sb.init(backend, "journal")
    assert not [r for r in fake.requests if r.method == "POST"]
    wb = openpyxl.Workbook()
    wb.active.title = "Charts"
    wb.active["A1"] = "my chart"
    wb.save(tmp_path / "x.xlsx")
    before = (tmp_path / "x.xlsx").read_bytes()
    with pytest.raises(sb.LayoutError, match="tab 'Charts' already exists"):
        sb.init(sb.open_local(tmp_path / "x.xlsx"), "journal")
    assert (tmp_path / "x.xlsx").read_bytes() == before


# ------------------------------------------------------------------ what init lays out: local


@pytest.mark.parametrize("template", ["journal", "rebalance"])
def test_local_init_wraps_headers_formats_prompts_and_instructions(
    tmp_path: Path, template: str
) -> None:
    from leverage.instructions import INSTRUCTIONS, PROMPTS
    from leverage_sheets.content import bridge_sheets, header_lines

    path = tmp_path / "b.xlsx"
    for _ in range(2):  # a second init stacks nothing
        sb.init(sb.open_local(path), template, sample=True)
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames[0] == "Instructions"
    guide = wb["Instructions"]
    assert [guide.cell(row=1, column=c).value for c in (1, 2)] == ["Topic", "What to know"]
    for r, (heading, text) in enumerate(INSTRUCTIONS[template], start=2):
        assert (guide.cell(row=r, column=1).value, guide.cell(row=r, column=2).value) == (
            heading, text)
        assert guide.cell(row=r, column=2).alignment.wrap_text
    for sheet in bridge_sheets(template):
        ws = wb[sheet.title]
        assert all(ws.cell(row=1, column=i + 1).alignment.wrap_text
                   for i in range(len(sheet.columns)))
        assert ws.row_dimensions[1].height >= 13 * header_lines(sheet)
        if sheet.title not in ("Rules", "Account"):
            for i, col in enumerate(sheet.columns, start=1):
                if col.number_format != "General":
                    letter = openpyxl.utils.get_column_letter(i)
                    assert ws.column_dimensions[letter].number_format == col.number_format
        rules = {}
        for dv in ws.data_validations.dataValidation:
            (ref,) = str(dv.sqref).split()
            col = openpyxl.utils.cell.range_boundaries(ref)[0]
            assert col not in rules, f"two rules on {sheet.title} column {col}"
            rules[col] = dv
        for i, col in enumerate(sheet.columns, start=1):
            prompt = PROMPTS.get((sheet.title, col.key))
            if col.role == "computed" or prompt is None:
                continue
            dv = rules[i]
            assert (dv.promptTitle, dv.prompt, dv.showInputMessage) == (*prompt, True)
            assert len(dv.promptTitle) <= 32 and len(dv.prompt) <= 255
            if col.choices and col.role == "input":
                assert dv.type == "list" and dv.formula1 == '"' + ",".join(col.choices) + '"'
                assert dv.showErrorMessage
    if template == "journal":
        assert len(wb["Charts"]._charts) > 0
