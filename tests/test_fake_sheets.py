"""The fake Sheets server, driven by the real gspread client over HTTP.

Each test states a behaviour of Google's API that code under test may rely on, so a change to
the fake that breaks Google-compatibility fails here first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import gspread
import pytest
import requests
from fake_sheets import FakeSheets, make_client, make_session
from gspread.exceptions import APIError, SpreadsheetNotFound, WorksheetNotFound
from gspread.utils import ValueInputOption, ValueRenderOption

TRADES = [["id", "qty", "price"], ["t1", 2, 10.5], ["t2", 3, "11"]]
QUOTED = "It's a sheet"


@pytest.fixture
def fake() -> Iterator[FakeSheets]:
    with FakeSheets() as server:
        yield server
        assert not server.server_errors, server.server_errors[0]


@pytest.fixture
def key(fake: FakeSheets) -> str:
    return fake.create_spreadsheet("Journal", sheets={"Trades": TRADES, QUOTED: [["x"]]})


# Generous: a healthy answer is never raced against the clock (a busy machine is slow); the
# timeout tests shorten it for the one request the fake holds until released.
HEALTHY_TIMEOUT = 30


@pytest.fixture
def client(fake: FakeSheets) -> gspread.Client:
    return make_client(fake, timeout=HEALTHY_TIMEOUT)


@pytest.fixture
def sh(client: gspread.Client, key: str) -> gspread.Spreadsheet:
    return client.open_by_key(key)


@pytest.fixture
def ws(sh: gspread.Spreadsheet) -> gspread.Worksheet:
    return sh.worksheet("Trades")


def _api_error(excinfo: pytest.ExceptionInfo[APIError]) -> tuple[int, str, str]:
    error = excinfo.value.error
    return excinfo.value.code, error["status"], error["message"]


# -- opening and reading -----------------------------------------------------------------------


def test_open_by_key_reads_metadata_without_drive(
    fake: FakeSheets, client: gspread.Client, key: str
) -> None:
    sh = client.open_by_key(key)
    assert sh.title == "Journal"
    assert (sh.locale, sh.timezone) == ("en_US", "Etc/GMT")
    assert [w.title for w in sh.worksheets()] == ["Trades", QUOTED]
    first = sh.sheet1
    assert (first.id, first.index, first.row_count, first.col_count) == (0, 0, 1000, 26)
    assert first.frozen_row_count == 0
    assert sh.worksheet(QUOTED).id != 1  # ids are not indexes, as at Google
    assert all(r.path.startswith("/v4/spreadsheets/") for r in fake.requests)


def test_unknown_spreadsheet_sheet_and_drive_calls(
    client: gspread.Client, sh: gspread.Spreadsheet
) -> None:
    with pytest.raises(SpreadsheetNotFound):
        client.open_by_key("no-such-key")
    with pytest.raises(WorksheetNotFound):
        sh.worksheet("Nope")
    with pytest.raises(APIError) as info:
        client.open("Journal")  # lists files through the Drive API, which is not faked
    assert info.value.code == 404
    assert "open_by_key" in info.value.error["message"]


def test_get_all_values_formats_like_google(ws: gspread.Worksheet) -> None:
    assert ws.get_all_values() == [["id", "qty", "price"], ["t1", "2", "10.5"], ["t2", "3", "11"]]
    unformatted = ws.get("A2:C3", value_render_option=ValueRenderOption.unformatted)
    assert unformatted == [["t1", 2, 10.5], ["t2", 3, "11"]]
    assert ws.col_values(2) == ["qty", "2", "3"]  # majorDimension=COLUMNS


def test_values_get_ranges_and_trimming(fake: FakeSheets, sh: gspread.Spreadsheet) -> None:
    whole = sh.values_get("'Trades'")
    assert whole["range"] == "Trades!A1:Z1000"  # the requested range clamped to the grid
    assert whole["majorDimension"] == "ROWS"
    assert sh.values_get("Trades!B2:C")["range"] == "Trades!B2:C1000"
    assert sh.values_get("Trades!C:C")["values"] == [["price"], ["10.5"], ["11"]]
    assert "values" not in sh.values_get("Trades!E5:F6")  # Google omits an empty range's values
    key = fake.create_spreadsheet("Gaps", sheets={"G": [["a", None, "c", ""], [], [None, "b"], []]})
    gaps = sh.client.values_get(key, "G")
    assert gaps["values"] == [["a", "", "c"], [], ["", "b"]]
    columns = sh.client.values_get(key, "G", params={"majorDimension": "COLUMNS"})
    assert columns["values"] == [["a"], ["", "", "b"], ["c"]]


def test_batch_get_ranges_shapes(ws: gspread.Worksheet) -> None:
    got = ws.batch_get(["A1:B2", "C:C", "A2:C", "E1"])
    assert [vr.range for vr in got] == [
        "Trades!A1:B2",
        "Trades!C1:C1000",
        "Trades!A2:C1000",
        "Trades!E1",
    ]
    assert {vr.major_dimension for vr in got} == {"ROWS"}
    assert got[0] == [["id", "qty"], ["t1", "2"]]
    assert got[3] == []


def test_quoted_sheet_names(fake: FakeSheets, key: str, sh: gspread.Spreadsheet) -> None:
    quoted = sh.worksheet(QUOTED)
    res = quoted.update(values=[[1, 2]], range_name="B2")
    assert res["updatedRange"] == "'It''s a sheet'!B2:C2"
    assert fake.values(key, QUOTED) == [["x", None, None], [None, 1, 2]]
    assert sh.values_get("'It''s a sheet'!A1:C2")["values"] == [["x"], ["", "1", "2"]]
    with pytest.raises(APIError) as info:
        sh.values_get("'Missing'!A1")
    assert _api_error(info)[:2] == (400, "INVALID_ARGUMENT")
    assert "Unable to parse range" in _api_error(info)[2]


# -- writing values --------------------------------------------------------------------------


def test_update_raw_keeps_text(fake: FakeSheets, key: str, ws: gspread.Worksheet) -> None:
    ws.update(values=[["=SUM(B2:B3)", "42", "'007"]], range_name="A5")  # RAW is gspread's default
    assert fake.values(key, "Trades")[4] == ["=SUM(B2:B3)", "42", "'007"]
    assert fake.cell_input_mode(key, "Trades", "A5") == "RAW"
    assert not fake.is_formula(key, "Trades", "A5")


def test_update_user_entered_parses(fake: FakeSheets, key: str, ws: gspread.Worksheet) -> None:
    row = ["=SUM(B2:B3)", "42", "'007", "1.5e3", "TRUE", "abc"]
    ws.update(values=[row], range_name="A5", value_input_option=ValueInputOption.user_entered)
    assert fake.values(key, "Trades")[4] == ["=SUM(B2:B3)", 42, "007", 1500.0, True, "abc"]
    assert fake.is_formula(key, "Trades", "A5")
    assert fake.cell_input_mode(key, "Trades", "B5") == "USER_ENTERED"
    assert fake.cell_input_mode(key, "Trades", "A9") is None
    formulas = ws.get("A5:B5", value_render_option=ValueRenderOption.formula)
    assert formulas == [["=SUM(B2:B3)", 42]]
    # Nothing is evaluated: formatted reads return the formula text too.
    assert ws.get("A5:E5") == [["=SUM(B2:B3)", "42", "007", "1500", "TRUE"]]


def test_update_none_skips_and_empty_string_clears(
    fake: FakeSheets, key: str, ws: gspread.Worksheet
) -> None:
    ws.update(values=[[None, ""]], range_name="A2")
    assert fake.values(key, "Trades")[1] == ["t1", None, 10.5]


def test_update_without_range_writes_from_a1(
    fake: FakeSheets, key: str, ws: gspread.Worksheet
) -> None:
    res = ws.update(values=[["a", "b"], ["c"]])
    assert res["updatedRange"] == "Trades!A1:B2"
    assert (res["updatedRows"], res["updatedColumns"], res["updatedCells"]) == (2, 2, 3)
    assert fake.values(key, "Trades")[:2] == [["a", "b", "price"], ["c", 2, 10.5]]


def test_writes_past_the_range_or_grid_fail_and_change_nothing(
    fake: FakeSheets, key: str, sh: gspread.Spreadsheet, ws: gspread.Worksheet
) -> None:
    with pytest.raises(APIError) as info:
        ws.update(values=[[1, 2, 3]], range_name="A1:B1")
    assert "tried writing to column [C]" in _api_error(info)[2]
    small = sh.add_worksheet("Small", rows=2, cols=2)
    with pytest.raises(APIError) as info:
        small.update(values=[[1], [2], [3]], range_name="A1")
    assert _api_error(info)[0] == 400
    assert "exceeds grid limits. Max rows: 2, max columns: 2" in _api_error(info)[2]
    assert fake.values(key, "Small") == []
    assert fake.values(key, "Trades")[0] == ["id", "qty", "price"]
    small.add_rows(1)  # updateSheetProperties rowCount, as gspread sends it
    small.update(values=[[1], [2], [3]], range_name="A1")
    assert fake.values(key, "Small") == [[1], [2], [3]]
    small.resize(rows=1)  # shrinking deletes what falls outside, as in Google
    assert fake.values(key, "Small") == [[1]]
    with pytest.raises(APIError):
        sh.values_get("Small!A2")


def test_batch_update_values_totals_and_atomicity(
    fake: FakeSheets, key: str, sh: gspread.Spreadsheet, ws: gspread.Worksheet
) -> None:
    res = ws.batch_update(
        [
            {"range": "A2", "values": [["u1"]]},
            {"range": "B2:C3", "values": [["5", "=B2*2"], [6, 7]]},
        ],
        value_input_option=ValueInputOption.user_entered,
    )
    assert res["totalUpdatedCells"] == 5
    assert res["totalUpdatedRows"] == 3
    assert res["totalUpdatedSheets"] == 1
    assert [r["updatedRange"] for r in res["responses"]] == ["Trades!A2", "Trades!B2:C3"]
    assert fake.values(key, "Trades")[1:3] == [["u1", 5, "=B2*2"], ["t2", 6, 7]]
    before = fake.values(key, "Trades")
    with pytest.raises(APIError):
        sh.values_batch_update(
            {
                "valueInputOption": "RAW",
                "data": [
                    {"range": "Trades!A1", "values": [["lost"]]},
                    {"range": "Nope!A1", "values": [["x"]]},
                ],
            }
        )
    assert fake.values(key, "Trades") == before  # all or nothing
    res = sh.values_batch_update(
        {
            "valueInputOption": "RAW",
            "data": [
                {"range": "Trades!D1", "values": [["d"]]},
                {"range": f"'{QUOTED.replace(chr(39), chr(39) * 2)}'!B1", "values": [["y"]]},
            ],
        }
    )
    assert res["totalUpdatedSheets"] == 2


def test_add_and_rename_worksheets(
    fake: FakeSheets, key: str, sh: gspread.Spreadsheet
) -> None:
    summary = sh.add_worksheet("Summary", rows=10, cols=4, index=0)
    assert summary.index == 0
    assert [w.title for w in sh.worksheets()] == ["Summary", "Trades", QUOTED]
    grid = fake.sheet_properties(key, "Summary")["gridProperties"]
    assert grid == {"rowCount": 10, "columnCount": 4}
    with pytest.raises(APIError) as info:
        sh.add_worksheet("summary", rows=1, cols=1)  # titles are unique ignoring case
    assert "already exists" in _api_error(info)[2]
    summary.update_title("Totals")
    assert sh.worksheets()[0].title == "Totals"


def test_formatting_requests_are_recorded(
    fake: FakeSheets, key: str, sh: gspread.Spreadsheet, ws: gspread.Worksheet
) -> None:
    ws.format("A1:C1", {"textFormat": {"bold": True}})
    ws.freeze(rows=1)
    grid_range = {"sheetId": ws.id, "startRowIndex": 1, "startColumnIndex": 1, "endColumnIndex": 2}
    res = sh.batch_update(
        {
            "requests": [
                {
                    "setDataValidation": {
                        "range": grid_range,
                        "rule": {
                            "condition": {
                                "type": "NUMBER_GREATER",
                                "values": [{"userEnteredValue": "0"}],
                            },
                            "strict": True,
                        },
                    }
                },
                {
                    "addConditionalFormatRule": {
                        "rule": {
                            "ranges": [grid_range],
                            "booleanRule": {"condition": {"type": "NUMBER_LESS"}, "format": {}},
                        },
                        "index": 0,
                    }
                },
                {
                    "updateDimensionProperties": {
                        "range": {
                            "sheetId": ws.id,
                            "dimension": "COLUMNS",
                            "startIndex": 0,
                            "endIndex": 1,
                        },
                        "properties": {"pixelSize": 120},
                        "fields": "pixelSize",
                    }
                },
            ]
        }
    )
    assert res == {"spreadsheetId": key, "replies": [{}, {}, {}]}
    kinds = [next(iter(request)) for request in fake.batch_requests(key)]
    assert kinds == [
        "repeatCell",
        "updateSheetProperties",
        "setDataValidation",
        "addConditionalFormatRule",
        "updateDimensionProperties",
    ]
    assert sh.worksheet("Trades").frozen_row_count == 1
    meta = sh.fetch_sheet_metadata()
    assert meta["sheets"][0]["conditionalFormats"][0]["ranges"] == [grid_range]
    assert "conditionalFormats" not in meta["sheets"][1]


def test_batch_update_is_atomic_and_refuses_unknown_requests(
    fake: FakeSheets, key: str, sh: gspread.Spreadsheet
) -> None:
    bad_id = {"sheetId": 999, "startRowIndex": 0}
    with pytest.raises(APIError) as info:
        sh.batch_update(
            {
                "requests": [
                    {"addSheet": {"properties": {"title": "Lost"}}},
                    {"repeatCell": {"range": bad_id, "cell": {}, "fields": "userEnteredFormat"}},
                ]
            }
        )
    assert _api_error(info)[2] == "Invalid requests[1].repeatCell: No grid with id: 999"
    assert [w.title for w in sh.worksheets()] == ["Trades", QUOTED]
    assert fake.batch_requests(key) == []
    with pytest.raises(APIError) as info:
        sh.batch_update({"requests": [{"sortRange": {"range": {"sheetId": 0}}}]})
    assert "not supported by FakeSheets" in _api_error(info)[2]


# -- cell formats and grid data ------------------------------------------------------------

GRID_MASK = ("sheets(properties(sheetId,title),data(startRow,startColumn,"
             "rowData.values(effectiveValue,userEnteredFormat.numberFormat.pattern)))")
TWO_DECIMALS = {"type": "NUMBER", "pattern": "0.00"}


def test_cell_formats_follow_the_field_masks(
    fake: FakeSheets, key: str, sh: gspread.Spreadsheet, ws: gspread.Worksheet
) -> None:
    """repeatCell and updateCells replace what their ``fields`` name, from the cell given or
    cleared where it has none, and nothing else: other format parts and values stay."""
    box = {"sheetId": ws.id, "startRowIndex": 1, "endRowIndex": 3, "startColumnIndex": 1,
           "endColumnIndex": 3}  # B2:C3
    red = {"red": 1}
    sh.batch_update({"requests": [
        {"repeatCell": {"range": box, "cell": {"userEnteredFormat": {
            "numberFormat": TWO_DECIMALS, "backgroundColor": red}},
            "fields": "userEnteredFormat(numberFormat,backgroundColor)"}},
        {"repeatCell": {"range": {**box, "endRowIndex": 2}, "cell": {"userEnteredFormat": {
            "textFormat": {"bold": True}}}, "fields": "userEnteredFormat.textFormat"}},
    ]})
    assert fake.cell_format(key, "Trades", "B2") == {
        "numberFormat": TWO_DECIMALS, "backgroundColor": red, "textFormat": {"bold": True}}
    assert fake.cell_format(key, "Trades", "C3") == {"numberFormat": TWO_DECIMALS,
                                                     "backgroundColor": red}
    assert fake.cell_format(key, "Trades", "A2") == {} and fake.number_format(
        key, "Trades", "D2") is None  # outside the range
    # a CellData without the masked field clears it (B2); values and the fill stay
    sh.batch_update({"requests": [{"updateCells": {
        "start": {"sheetId": ws.id, "rowIndex": 1, "columnIndex": 1},
        "rows": [{"values": [{}, {"userEnteredFormat": {"numberFormat": {
            "type": "NUMBER", "pattern": "0.0000"}}}]}],
        "fields": "userEnteredFormat.numberFormat"}}]})
    assert fake.cell_format(key, "Trades", "B2") == {"backgroundColor": red,
                                                     "textFormat": {"bold": True}}
    assert fake.number_format(key, "Trades", "C2") == "0.0000"
    assert fake.values(key, "Trades") == TRADES
    ws.format("A1", {"numberFormat": {"type": "PERCENT", "pattern": "0%"}})  # gspread's call
    assert fake.number_format(key, "Trades", "A1") == "0%"
    before = fake.batch_requests(key)
    for bad, message in (
        ({"updateCells": {"start": {"sheetId": ws.id}, "rows": [{"values": [{
            "userEnteredFormat": {"numberFormat": {"type": "MONEY", "pattern": "0"}}}]}],
            "fields": "userEnteredFormat.numberFormat"}}, "numberFormat.type: MONEY"),
        ({"repeatCell": {"range": box, "cell": {"userEnteredValue": {"numberValue": 1}},
                         "fields": "userEnteredValue"}}, "repeats formats only"),
        ({"repeatCell": {"range": box, "cell": {}, "fields": "note"}}, "keeps no note"),
        ({"repeatCell": {"range": box, "cell": {}, "fields": "userEnteredFormat("}},
         "Invalid field selection"),
    ):
        with pytest.raises(APIError) as info:
            sh.batch_update({"requests": [bad]})
        assert message in _api_error(info)[2]
    assert fake.batch_requests(key) == before


def test_grid_data_reads_follow_the_ranges_and_the_field_mask(
    fake: FakeSheets, key: str, sh: gspread.Spreadsheet, ws: gspread.Worksheet
) -> None:
    """spreadsheets.get with ``ranges`` answers the sheets they touch, one GridData a range
    (startRow/startColumn left out at 0, empty cells as {}, trailing ones trimmed), with the
    fields the mask names; a mask overrides includeGridData."""
    ws.format("C2:C5", {"numberFormat": TWO_DECIMALS})
    http = sh.client  # gspread's HTTPClient
    got = http.fetch_sheet_metadata(key, params={"ranges": ["Trades!B2:C9", "Trades!A1"],
                                                 "fields": GRID_MASK})
    pattern = {"userEnteredFormat": {"numberFormat": {"pattern": "0.00"}}}
    assert got == {"sheets": [{"properties": {"sheetId": ws.id, "title": "Trades"}, "data": [
        {"startRow": 1, "startColumn": 1, "rowData": [
            {"values": [{"effectiveValue": {"numberValue": 2}},
                        {"effectiveValue": {"numberValue": 10.5}, **pattern}]},
            {"values": [{"effectiveValue": {"numberValue": 3}},
                        {"effectiveValue": {"stringValue": "11"}, **pattern}]},  # RAW text
            {"values": [{}, pattern]},  # a formatted empty cell
            {"values": [{}, pattern]},
        ]},
        {"rowData": [{"values": [{"effectiveValue": {"stringValue": "id"}}]}]},
    ]}]}
    whole = http.fetch_sheet_metadata(key, params={"ranges": ["'It''s a sheet'!A1:B2"],
                                                   "includeGridData": "true"})
    assert [s["properties"]["title"] for s in whole["sheets"]] == [QUOTED]
    assert whole["sheets"][0]["data"] == [{"rowData": [{"values": [{
        "userEnteredValue": {"stringValue": "x"}, "effectiveValue": {"stringValue": "x"},
        "formattedValue": "x"}]}]}]
    masked = http.fetch_sheet_metadata(key, params={"includeGridData": "true",
                                                    "fields": "sheets.properties.title"})
    assert masked == {"sheets": [{"properties": {"title": "Trades"}},
                                 {"properties": {"title": QUOTED}}]}
    for fields, message in (("sheets.data.rowData.values.note", "keeps no note"),
                            ("sheets(properties", "Invalid field selection")):
        with pytest.raises(APIError) as info:
            http.fetch_sheet_metadata(key, params={"ranges": ["Trades!A1"], "fields": fields})
        assert message in _api_error(info)[2]
    with pytest.raises(APIError) as info:
        http.fetch_sheet_metadata(key, params={"ranges": ["Nope!A1"], "fields": GRID_MASK})
    assert _api_error(info)[2] == "Unable to parse range: Nope!A1"


# -- faults ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "google_status"),
    [(429, "RESOURCE_EXHAUSTED"), (500, "INTERNAL"), (503, "UNAVAILABLE")],
)
def test_injected_status_fails_without_writing(
    fake: FakeSheets, key: str, ws: gspread.Worksheet, status: int, google_status: str
) -> None:
    fake.inject(status)
    with pytest.raises(APIError) as info:
        ws.update(values=[["changed"]], range_name="A1")
    assert _api_error(info)[:2] == (status, google_status)
    assert fake.values(key, "Trades")[0][0] == "id"
    ws.update(values=[["changed"]], range_name="A1")  # the fault was one request only
    assert fake.values(key, "Trades")[0][0] == "changed"


def test_inject_counts_from_the_next_request(fake: FakeSheets, ws: gspread.Worksheet) -> None:
    fake.reset_log()
    fake.inject(503, at=1, times=2)
    assert ws.acell("A1").value == "id"  # request 0 passes
    for _ in range(2):
        with pytest.raises(APIError):
            ws.acell("A1")
    assert ws.acell("A1").value == "id"
    assert len(fake.requests) == 4
    assert "Quota exceeded" not in repr(fake.requests)


def test_inject_timeout_surfaces_as_requests_timeout(
    fake: FakeSheets, key: str, client: gspread.Client, ws: gspread.Worksheet
) -> None:
    client.set_timeout(0.2)
    fake.inject_timeout(seconds=None)  # held until clear_faults(): the client's timeout fires
    with pytest.raises(requests.exceptions.Timeout):
        ws.update(values=[["changed"]], range_name="A1")
    assert fake.values(key, "Trades")[0][0] == "id"
    client.set_timeout(HEALTHY_TIMEOUT)
    assert ws.acell("A1").value == "id"  # other connections are served meanwhile
    fake.clear_faults()


def test_inject_timeout_applied_is_the_ambiguous_case(
    fake: FakeSheets, key: str, client: gspread.Client, ws: gspread.Worksheet
) -> None:
    client.set_timeout(0.2)
    fake.inject_timeout(seconds=None, applied=True)
    with pytest.raises(requests.exceptions.Timeout):
        ws.update(values=[["changed"]], range_name="A1")
    assert fake.values(key, "Trades")[0][0] == "changed"  # the write landed all the same
    fake.clear_faults()


def test_a_client_timeout_applies_to_the_held_request_only(
    fake: FakeSheets, key: str, client: gspread.Client, ws: gspread.Worksheet
) -> None:
    fake.inject_timeout(at=1, seconds=None, client_timeout=0.2)
    assert ws.acell("A1").value == "id"  # request 0: the client's own (generous) timeout
    with pytest.raises(requests.exceptions.Timeout):
        ws.acell("B1")  # request 1: held, and the client waits 0.2 s for it
    fake.clear_faults()
    assert client.http_client.timeout == HEALTHY_TIMEOUT
    assert ws.acell("B1").value == "qty"


@pytest.mark.parametrize("applied", [False, True])
def test_inject_reset_surfaces_as_connection_error(
    fake: FakeSheets, key: str, ws: gspread.Worksheet, applied: bool
) -> None:
    fake.inject_reset(applied=applied)
    with pytest.raises(requests.exceptions.ConnectionError):
        ws.update(values=[["changed"]], range_name="A1")
    assert (fake.values(key, "Trades")[0][0] == "changed") is applied
    assert ws.acell("B1").value == "qty"  # a fresh connection works


# -- log, auth, lifecycle ----------------------------------------------------------------------


def test_request_log_records_method_path_query_body(
    fake: FakeSheets, key: str, ws: gspread.Worksheet
) -> None:
    fake.reset_log()
    ws.update(values=[["a"]], range_name="A1", value_input_option=ValueInputOption.user_entered)
    ws.batch_get(["A1", "B1"])
    put, get = fake.requests
    assert put == (
        "PUT",
        f"/v4/spreadsheets/{key}/values/'Trades'!A1",
        {"valueInputOption": "USER_ENTERED"},
        {"values": [["a"]], "majorDimension": None},
    )
    assert get.method == "GET"
    assert get.path == f"/v4/spreadsheets/{key}/values:batchGet"
    assert get.query == {"ranges": ["'Trades'!A1", "'Trades'!B1"]}
    assert get.body is None


def test_requests_without_bearer_token_get_401(fake: FakeSheets, key: str) -> None:
    url = f"{fake.url}/v4/spreadsheets/{key}"
    with requests.Session() as bare:
        bare.trust_env = False
        res = bare.get(url, timeout=HEALTHY_TIMEOUT)
    assert res.status_code == 401
    assert res.json()["error"]["status"] == "UNAUTHENTICATED"
    with make_session(fake.url) as session:
        res = session.get(f"https://sheets.googleapis.com/v4/spreadsheets/{key}",
                          timeout=HEALTHY_TIMEOUT)
    assert res.json()["sheets"][0]["properties"]["title"] == "Trades"


def test_create_spreadsheet_seeding_rules(fake: FakeSheets) -> None:
    key = fake.create_spreadsheet(
        "Seed", sheets={"S": [["=1+1", "5"]]}, rows=1, cols=1, value_input_option="USER_ENTERED"
    )
    assert fake.values(key, "S") == [["=1+1", 5]]
    assert fake.is_formula(key, "S", "A1")
    props = fake.sheet_properties(key, "S")
    assert props["gridProperties"] == {"rowCount": 1, "columnCount": 2}  # grown to fit
    with pytest.raises(ValueError):
        fake.create_spreadsheet("Dup", key=key)
    with pytest.raises(ValueError):
        fake.create_spreadsheet("Bad", sheets={"S": [[{"not": "a scalar"}]]})


def test_stop_is_prompt_with_stalled_and_idle_connections() -> None:
    fake = FakeSheets()
    fake.start()
    key = fake.create_spreadsheet("Journal")
    client = make_client(fake, timeout=HEALTHY_TIMEOUT)
    ws = client.open_by_key(key).sheet1  # leaves an idle keep-alive connection
    client.set_timeout(0.2)
    fake.inject_timeout(seconds=None)  # held until stop(): stop must not wait for it
    with pytest.raises(requests.exceptions.Timeout):
        ws.acell("A1")
    started = time.monotonic()
    fake.stop()
    assert time.monotonic() - started < 2
    assert not [t for t in threading.enumerate() if t.name == "fake-sheets"]
    with pytest.raises(RuntimeError):
        _ = fake.url
