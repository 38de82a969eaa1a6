"""The Sheets v4 discovery contract (tests/fakes/sheets_discovery.py) the fake Sheets server is held to."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import gspread
import pytest
import requests
from gspread.utils import quote

from tests.fakes.sheets_discovery import DiscoveryError, Operation, sheets_api, validate_request

pytestmark = pytest.mark.unit

KEY = "1AbC-key_9"
BATCH_UPDATE = f"/v4/spreadsheets/{KEY}:batchUpdate"


def refused(fn: Any, *args: Any) -> DiscoveryError:
    with pytest.raises(DiscoveryError) as info:
        fn(*args)
    return info.value


def op(method: str, path: str) -> Operation:
    return sheets_api().match(method, path)


def bad_request(message: str, field: str | None) -> dict[str, Any]:
    violation = ({"field": field} if field else {}) | {"description": message}
    details = [{"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}]
    return {"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT", "details": details}}


def batch_update(*reqs: dict[str, Any]) -> None:
    sheets_api().validate_body(op("POST", BATCH_UPDATE), {"requests": list(reqs)})


# ---- matching ------------------------------------------------------------------------------------
RANGES = ["Sheet1!A1:B2", "'My Sheet'!A:A", "'It''s here'!A2:B", "매출 2024!A1", "Data", "'a/b'!C3"]


@pytest.mark.parametrize("rng", RANGES)
@pytest.mark.parametrize(
    ("method", "suffix", "op_id"),
    [
        ("GET", "", "sheets.spreadsheets.values.get"),
        ("PUT", "", "sheets.spreadsheets.values.update"),
        ("POST", ":append", "sheets.spreadsheets.values.append"),
        ("POST", ":clear", "sheets.spreadsheets.values.clear"),
    ],
)
def test_range_paths_match_with_the_range_decoded(method: str, suffix: str, op_id: str, rng: str) -> None:
    found = op(method, f"/v4/spreadsheets/{KEY}/values/{quote(rng)}{suffix}")  # gspread encodes with safe=""
    assert (found.id, found.http_method) == (op_id, method)
    assert found.path_params == {"spreadsheetId": KEY, "range": rng}
    assert found.path == "v4/spreadsheets/{spreadsheetId}/values/{range}" + suffix


@pytest.mark.parametrize(
    ("method", "path", "op_id", "request_schema", "response_schema"),
    [
        ("GET", f"/v4/spreadsheets/{KEY}", "sheets.spreadsheets.get", None, "Spreadsheet"),
        ("POST", BATCH_UPDATE, "sheets.spreadsheets.batchUpdate", "BatchUpdateSpreadsheetRequest", None),
        ("GET", f"/v4/spreadsheets/{KEY}/values:batchGet", "sheets.spreadsheets.values.batchGet", None, None),
        ("POST", f"/v4/spreadsheets/{KEY}/values:batchUpdate", "sheets.spreadsheets.values.batchUpdate", None, None),
        ("POST", f"/v4/spreadsheets/{KEY}/values:batchClear", "sheets.spreadsheets.values.batchClear", None, None),
        ("POST", f"/v4/spreadsheets/{KEY}/sheets/123:copyTo", "sheets.spreadsheets.sheets.copyTo", None, None),
    ],
)
def test_spreadsheet_paths_match(
    method: str, path: str, op_id: str, request_schema: str | None, response_schema: str | None
) -> None:
    found = op(method, path + "?fields=x")  # a query string on the path is ignored
    assert found.id == op_id and found.path_params["spreadsheetId"] == KEY
    assert request_schema is None or found.request == request_schema
    assert response_schema is None or found.response == response_schema


def test_copy_to_and_hand_written_unencoded_ranges() -> None:
    assert op("POST", f"/v4/spreadsheets/{KEY}/sheets/123:copyTo").path_params == {
        "spreadsheetId": KEY,
        "sheetId": "123",
    }
    # `!`, `:` and `'` are legal in a path segment; Google's own docs write ranges unencoded
    assert op("GET", f"/v4/spreadsheets/{KEY}/values/Sheet1!A1:B2").path_params["range"] == "Sheet1!A1:B2"
    appended = op("POST", f"/v4/spreadsheets/{KEY}/values/Sheet1!A1:B2:append")
    assert (appended.id, appended.path_params["range"]) == ("sheets.spreadsheets.values.append", "Sheet1!A1:B2")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v4/spreadsheets/k/values"),
        ("GET", "/v4/spreadsheets/k/nope/x"),
        ("DELETE", "/v4/spreadsheets/k"),  # a known path with the wrong verb
        ("POST", "/v4/spreadsheets/k/values/A1"),  # values/{range} takes POST only with :append / :clear
        ("POST", "/v4/spreadsheets/k/values/A1:frobnicate"),
        ("GET", "/v3/spreadsheets/k"),
    ],
)
def test_unknown_paths_are_404(method: str, path: str) -> None:
    err = refused(op, method, path)
    assert err.code == 404
    assert err.body() == {"error": {"code": 404, "message": err.message, "status": "NOT_FOUND"}}
    assert path.split("?")[0] in err.message


# ---- query parameters ----------------------------------------------------------------------------
def test_batch_get_query_as_gspread_sends_it_passes() -> None:
    query = {
        "ranges": ["Data!A2:B", "'It''s here'", "매출!A:A"],
        "majorDimension": ["ROWS"],
        "valueRenderOption": ["UNFORMATTED_VALUE"],
        "dateTimeRenderOption": ["SERIAL_NUMBER"],
        "fields": ["valueRanges(range,values)"],
        "prettyPrint": ["false"],
        "$.xgafv": ["2"],
        "quotaUser": ["u"],
    }
    assert validate_request("GET", f"/v4/spreadsheets/{KEY}/values:batchGet", query, None).id.endswith("batchGet")
    sheets_api().validate_query(op("GET", f"/v4/spreadsheets/{KEY}"), {"includeGridData": ["False"]})


def test_unknown_query_parameter() -> None:
    err = refused(sheets_api().validate_query, op("GET", f"/v4/spreadsheets/{KEY}"), {"foo": ["1"]})
    message = (
        'Invalid JSON payload received. Unknown name "foo": Cannot bind query parameter. '
        "Field 'foo' could not be found in request message."
    )
    assert err.body() == bad_request(message, None)


@pytest.mark.parametrize(
    ("method", "path", "param", "value", "field", "type_name"),
    [
        ("GET", "values:batchGet", "majorDimension", "ROW", "major_dimension", "Dimension"),
        ("PUT", "values/A1", "valueInputOption", "RAWW", "value_input_option", "ValueInputOption"),
        ("GET", "values/A1", "valueRenderOption", "RAW", "value_render_option", "ValueRenderOption"),
        ("POST", "values/A1:append", "insertDataOption", "INSERT", "insert_data_option", "InsertDataOption"),
    ],
)
def test_bad_enum_in_query(method: str, path: str, param: str, value: str, field: str, type_name: str) -> None:
    found = op(method, f"/v4/spreadsheets/{KEY}/{path}")
    err = refused(sheets_api().validate_query, found, {param: [value]})
    message = f"Invalid value at '{field}' (type.googleapis.com/google.apps.sheets.v4.{type_name}), \"{value}\""
    assert err.body() == bad_request(message, field)


def test_query_types_and_repetition() -> None:
    api, get = sheets_api(), op("GET", f"/v4/spreadsheets/{KEY}")
    api.validate_query(get, {"ranges": ["A1", "B2"], "includeGridData": ["true"]})  # ranges is repeated
    assert refused(api.validate_query, get, {"includeGridData": ["yes"]}).message == (
        "Invalid value at 'include_grid_data' (TYPE_BOOL), \"yes\""
    )
    assert refused(api.validate_query, get, {"includeGridData": ["true", "false"]}).code == 400
    assert refused(api.validate_query, get, {"fields": ["a", "b"]}).code == 400
    copy = op("POST", f"/v4/spreadsheets/{KEY}/sheets/abc:copyTo")  # a path parameter is typed too
    assert refused(api.validate_query, copy, {}).message == "Invalid value at 'sheet_id' (TYPE_INT32), \"abc\""


# ---- request bodies ------------------------------------------------------------------------------
def test_valid_batch_update_requests_pass() -> None:
    grid = {"rowCount": 1000, "columnCount": "26"}  # an int32 may come as a JSON number or a numeric string
    batch_update(
        {"addSheet": {"properties": {"title": "New", "hidden": True, "gridProperties": grid}}},
        {
            "updateSheetProperties": {
                "properties": {"sheetId": 7, "hidden": False, "title": "x"},
                "fields": "hidden,title",
            }
        },
        {
            "updateSheetProperties": {
                "properties": {"gridProperties": {"frozenRowCount": 1}},
                "fields": "gridProperties.frozenRowCount",
            }
        },
        {"deleteSheet": {"sheetId": 7}},
        {"appendDimension": {"sheetId": 0, "dimension": "ROWS", "length": 5}},
        {"delete_dimension": {"range": {"sheet_id": 0, "dimension": "COLUMNS", "start_index": 0, "end_index": 1}}},
        {"copyPaste": {"source": {"sheetId": 1}, "destination": {"sheetId": 0}, "pasteType": "PASTE_VALUES"}},
    )


def test_valid_values_bodies_pass() -> None:
    api = sheets_api()
    data = [
        {"range": "'My Sheet'!A1:C2", "majorDimension": "ROWS", "values": [["a", 1, 2.5], [True, None, ""]]},
        {"range": "매출!A1", "values": [[]]},
    ]
    api.validate_body(
        op("POST", f"/v4/spreadsheets/{KEY}/values:batchUpdate"), {"valueInputOption": "RAW", "data": data}
    )
    api.validate_body(op("PUT", f"/v4/spreadsheets/{KEY}/values/A1"), {"values": [["x"]], "majorDimension": "COLUMNS"})
    api.validate_body(op("POST", f"/v4/spreadsheets/{KEY}/values:batchClear"), {"ranges": ["A1", "B2:C"]})
    api.validate_body(op("POST", f"/v4/spreadsheets/{KEY}/values/A1:clear"), {})
    api.validate_body(op("POST", f"/v4/spreadsheets/{KEY}/sheets/1:copyTo"), {"destinationSpreadsheetId": "k2"})


def test_unknown_body_field() -> None:
    err = refused(
        batch_update, {"updateSheetProperties": {"properties": {"sheetId": 0, "hiden": True}, "fields": "hidden"}}
    )
    path = "requests[0].update_sheet_properties.properties"
    message = f"Invalid JSON payload received. Unknown name \"hiden\" at '{path}': Cannot find field."
    assert err.body() == bad_request(message, path)
    top = refused(sheets_api().validate_body, op("POST", BATCH_UPDATE), {"requests": [], "bogus": 1})
    assert top.body() == bad_request('Invalid JSON payload received. Unknown name "bogus": Cannot find field.', None)


def test_bad_enum_in_body() -> None:
    copy = {"source": {"sheetId": 1}, "destination": {"sheetId": 0}, "pasteType": "PASTE_NORMALL"}
    err = refused(batch_update, {"deleteSheet": {"sheetId": 3}}, {"copyPaste": copy})
    field = "requests[1].copy_paste.paste_type"
    assert (
        err.message
        == f"Invalid value at '{field}' (type.googleapis.com/google.apps.sheets.v4.PasteType), \"PASTE_NORMALL\""
    )
    assert err.body()["error"]["details"][0]["fieldViolations"][0]["field"] == field


@pytest.mark.parametrize(
    ("value", "shown"),
    [("abc", '"abc"'), (2.5, "2.5"), (True, "true"), (2**31, str(2**31)), ("1e3", '"1e3"')],
)
def test_wrong_scalar_type(value: Any, shown: str) -> None:
    err = refused(batch_update, {"addSheet": {"properties": {"gridProperties": {"rowCount": value}}}})
    assert (
        err.message
        == f"Invalid value at 'requests[0].add_sheet.properties.grid_properties.row_count' (TYPE_INT32), {shown}"
    )


@pytest.mark.parametrize(
    ("req", "message"),
    [
        (
            {"addSheet": {"properties": {"title": 5}}},
            "Invalid value at 'requests[0].add_sheet.properties.title' (TYPE_STRING), 5",
        ),
        (
            {"addSheet": {"properties": {"hidden": "true"}}},
            "Invalid value at 'requests[0].add_sheet.properties.hidden' (TYPE_BOOL), \"true\"",
        ),
        (
            {"addSheet": {"properties": "x"}},
            "Invalid value at 'requests[0].add_sheet.properties' "
            '(type.googleapis.com/google.apps.sheets.v4.SheetProperties), "x"',
        ),
        (
            {"addSheet": {"properties": {"title": ["x"]}}},
            'Invalid JSON payload received. Unknown name "title" at '
            "'requests[0].add_sheet.properties': Proto field is not repeating, cannot start list.",
        ),
    ],
)
def test_wrong_json_shapes(req: dict[str, Any], message: str) -> None:
    assert refused(batch_update, req).message == message


def test_request_is_a_oneof() -> None:
    err = refused(batch_update, {"addSheet": {}, "deleteSheet": {"sheetId": 1}})
    message = "Invalid value at 'requests[0]' (oneof), oneof field 'kind' is already set. Cannot set 'deleteSheet'"
    assert err.body() == bad_request(message, "requests[0]")
    assert refused(batch_update, {}).message == "Invalid requests[0]: No request set."
    assert refused(batch_update, {"frobnicate": {}}).message == (
        "Invalid JSON payload received. Unknown name \"frobnicate\" at 'requests[0]': Cannot find field."
    )


def test_update_mask_names_fields_of_properties() -> None:
    err = refused(batch_update, {"updateSheetProperties": {"properties": {"sheetId": 0}, "fields": "hiden,title"}})
    assert err.message == "Invalid requests[0].updateSheetProperties: Invalid field: hiden"
    assert "details" not in err.body()["error"]
    batch_update({"updateSheetProperties": {"properties": {"sheetId": 0}, "fields": "*"}})


def test_values_cells_must_be_scalars() -> None:
    found = op("POST", f"/v4/spreadsheets/{KEY}/values:batchUpdate")
    body = {"valueInputOption": "RAW", "data": [{"range": "A1", "values": [["a", ["b", 1]]]}]}
    err = refused(sheets_api().validate_body, found, body)
    cells = '  values {\n    string_value: "b"\n  }\n  values {\n    number_value: 1.0\n  }\n'
    assert err.message == "Invalid values[0][1]: list_value {\n" + cells + "}\n"
    assert err.body()["error"]["status"] == "INVALID_ARGUMENT"
    nested = refused(
        sheets_api().validate_body, op("PUT", f"/v4/spreadsheets/{KEY}/values/A1"), {"values": [[{"k": "v"}]]}
    )
    assert nested.message.startswith('Invalid values[0][0]: struct_value {\n  fields {\n    key: "k"')
    flat = refused(sheets_api().validate_body, found, {"data": [{"values": ["x"]}]})  # a row must be a list
    assert flat.message == "Invalid value at 'data[0].values[0]' (type.googleapis.com/google.protobuf.ListValue), \"x\""


# ---- fields masks --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fields",
    [
        "sheets.properties,sheets.protectedRanges",
        "namedRanges",
        "sheets(properties(title,sheetId)),spreadsheetId",
        "sheets/properties/gridProperties/rowCount",
        "*",
        "sheets(*)",
        "sheets/data/rowData/values/formattedValue",
        "properties/title , spreadsheet_url",
    ],
)
def test_valid_fields_masks(fields: str) -> None:
    sheets_api().validate_fields_mask(op("GET", f"/v4/spreadsheets/{KEY}"), fields)


@pytest.mark.parametrize(
    ("fields", "bad_path"),
    [
        ("sheets.propertie.title", "sheets.propertie.title"),
        ("spreadsheetId,sheets(properties(title,sheetid))", "sheets.properties.sheetid"),
        ("properties/title/x", "properties.title.x"),
    ],
)
def test_misspelt_fields_mask(fields: str, bad_path: str) -> None:
    err = refused(sheets_api().validate_fields_mask, op("GET", f"/v4/spreadsheets/{KEY}"), fields)
    description = f"Error expanding 'fields' parameter. Cannot find matching fields for path '{bad_path}'."
    expected = bad_request(description, fields)
    expected["error"]["message"] = "Request contains an invalid argument."
    assert err.body() == expected


def test_malformed_fields_mask_and_validate_request_checks_fields() -> None:
    for fields in ("sheets(properties", "a,,b", "a)"):
        assert refused(sheets_api().validate_fields_mask, op("GET", f"/v4/spreadsheets/{KEY}"), fields).code == 400
    err = refused(validate_request, "GET", f"/v4/spreadsheets/{KEY}", {"fields": ["sheets.propertie.title"]}, None)
    assert err.message == "Request contains an invalid argument."


def test_apply_fields_mask() -> None:
    api = sheets_api()
    book = {
        "spreadsheetId": "k",
        "properties": {"title": "Book", "locale": "en_US"},
        "sheets": [
            {"properties": {"sheetId": 0, "title": "A", "index": 0, "gridProperties": {"rowCount": 5}}},
            {"properties": {"sheetId": 9, "title": "B", "index": 1}, "protectedRanges": []},
        ],
    }
    assert api.apply_fields_mask(book, "sheets.properties(title,sheetId)") == {
        "sheets": [{"properties": {"sheetId": 0, "title": "A"}}, {"properties": {"sheetId": 9, "title": "B"}}]
    }
    assert api.apply_fields_mask(book, "spreadsheetId,sheets/properties/title") == {
        "spreadsheetId": "k",
        "sheets": [{"properties": {"title": "A"}}, {"properties": {"title": "B"}}],
    }
    assert api.apply_fields_mask(book, "sheets/properties/grid_properties,properties") == {
        "properties": {"title": "Book", "locale": "en_US"},
        "sheets": [{"properties": {"gridProperties": {"rowCount": 5}}}, {"properties": {}}],
    }
    assert api.apply_fields_mask(book, "*") == book
    assert api.apply_fields_mask(book, "sheets(*)")["sheets"] == book["sheets"]


# ---- responses -----------------------------------------------------------------------------------
def test_validate_response() -> None:
    api, get = sheets_api(), op("GET", f"/v4/spreadsheets/{KEY}")
    good = {
        "spreadsheetId": "k",
        "properties": {"title": "Book", "autoRecalc": "ON_CHANGE"},
        "sheets": [
            {"properties": {"sheetId": 0, "title": "A", "sheetType": "GRID", "gridProperties": {"rowCount": 5}}}
        ],
    }
    assert api.validate_response(get, good) == []
    bad = {
        "spreadsheetId": "k",
        "sheets": [{"properties": {"sheetId": "0", "hiden": True, "sheet_type": "GRID", "title": None}}],
    }
    assert api.validate_response(get, bad) == [
        "Invalid value at 'sheets[0].properties.sheet_id' (TYPE_INT32), \"0\"",  # emitted as a number by Google
        "Invalid JSON payload received. Unknown name \"hiden\" at 'sheets[0].properties': Cannot find field.",
        "Invalid JSON payload received. Unknown name \"sheet_type\" at 'sheets[0].properties': Cannot find field.",
        "sheets[0].properties.title: null is never emitted",
    ]
    values = op("GET", f"/v4/spreadsheets/{KEY}/values/A1")
    assert api.validate_response(values, {"range": "Sheet1!A1", "majorDimension": "ROWS", "values": [["a", 1]]}) == []
    assert api.validate_response(values, {"range": "A1", "majorDimension": "ROW"}) == [
        "Invalid value at 'major_dimension' (type.googleapis.com/google.apps.sheets.v4.Dimension), \"ROW\""
    ]


# ---- gspread end to end, in process --------------------------------------------------------------
class _Loopback(requests.adapters.BaseAdapter):
    """Answers gspread's real requests from the fake server in process, validating both directions."""

    def __init__(self, server: Any) -> None:
        super().__init__()
        self.server = server
        self.seen: list[str] = []
        self.problems: list[str] = []

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        url = urlsplit(request.url or "")
        raw = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        found = validate_request(request.method or "", url.path, parse_qs(url.query), json.loads(raw) if raw else None)
        self.seen.append(found.id)
        target = url.path + (f"?{url.query}" if url.query else "")
        status, answer = self.server._handle(request.method, target, "Bearer unit", raw)
        if status == 200:
            self.problems += [f"{found.id}: {p}" for p in sheets_api().validate_response(found, answer)]
        response = requests.Response()
        response.status_code, response._content, response.request, response.url = (
            status,
            json.dumps(answer).encode(),
            request,
            request.url or "",
        )
        response.headers["Content-Type"] = "application/json"
        return response

    def close(self) -> None:
        pass


def test_gspread_requests_pass_and_fake_answers_conform() -> None:
    from tests.fakes.sheets_server import FakeSheetsServer

    server = FakeSheetsServer()
    server._tokens.add("unit")
    server.add_spreadsheet(KEY, {"Data": [["id", "name"], [1, "a"]], "매출 2024": [["x"]], "It's here": []})
    loop = _Loopback(server)
    session = requests.Session()
    session.mount("https://", loop)
    book = gspread.Client(None, session=session).open_by_key(KEY)  # type: ignore[arg-type]
    ws = book.worksheet("Data")
    assert ws.get_all_values() == [["id", "name"], ["1", "a"]]  # FORMATTED_VALUE: numbers as shown
    book.values_batch_get(["Data!A1:B2", "'매출 2024'!A1", "'It''s here'"], params={"majorDimension": "COLUMNS"})
    ws.update([["x", 2, True]], "A3:C3", value_input_option=gspread.utils.ValueInputOption.raw)
    ws.batch_update([{"range": "A5", "values": [["ok"]]}])
    ws.append_rows([["c", "d"]])
    ws.batch_clear(["A5", "B1:B2"])
    book.worksheet("매출 2024").clear()
    new = book.add_worksheet("New", rows=10, cols=3)
    new.update_title("Renamed")
    new.hide()
    new.freeze(rows=1)
    ws.resize(rows=20, cols=5)
    ws.delete_rows(2)
    book.del_worksheet(new)
    book.fetch_sheet_metadata(params={"fields": "sheets.properties,sheets.protectedRanges"})
    with pytest.raises(gspread.exceptions.APIError):  # the request is valid; the fake answers 404 for copyTo
        ws.copy_to("other-key")
    assert set(loop.seen) >= {
        "sheets.spreadsheets.get",
        "sheets.spreadsheets.values.get",
        "sheets.spreadsheets.values.batchGet",
        "sheets.spreadsheets.values.update",
        "sheets.spreadsheets.values.batchUpdate",
        "sheets.spreadsheets.values.append",
        "sheets.spreadsheets.values.batchClear",
        "sheets.spreadsheets.values.clear",
        "sheets.spreadsheets.batchUpdate",
        "sheets.spreadsheets.sheets.copyTo",
    }
    assert loop.problems == []


def test_document_comes_from_the_installed_client_and_is_loaded_once() -> None:
    api = sheets_api()
    assert api is sheets_api()
    assert api.doc["id"] == "sheets:v4" and api.doc["revision"]
    assert len(api.methods) >= 17 and "Request" in api.schemas
