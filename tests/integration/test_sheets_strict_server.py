"""The loopback Sheets server holds every request to Google's published Sheets v4 description: invalid requests
get the real API's 400 error body, answers carry only what a ``fields`` mask asks for."""

from __future__ import annotations

from typing import Any

import pytest
from gspread.exceptions import APIError

from headwater.sources.sheets import WRITE_SCOPES, RetryPolicy, connect

pytestmark = pytest.mark.integration

KEY = "1StRiCtKeY"


@pytest.fixture
def client(sheets: Any, service_account_info: dict[str, Any]) -> Any:
    sheets.add_spreadsheet(KEY, {"Data": [["a", "b"], [1, 2]]}, title="Strict")
    retry = RetryPolicy(attempts=1, first_wait=0.01, max_wait=0.02)
    return connect(service_account_info, api_base=sheets.url, retry=retry, scopes=WRITE_SCOPES)


def refused(client: Any, sheets: Any, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """The error body of a request the server must refuse with 400; it must not have changed anything."""
    before = sheets.tab_values(KEY, "Data")
    with pytest.raises(APIError) as caught:
        client.http_client.request(method, f"https://sheets.googleapis.com/v4/spreadsheets/{KEY}{path}", **kwargs)
    assert caught.value.response.status_code == 400
    assert sheets.tab_values(KEY, "Data") == before
    sheets.refused.clear()  # refused on purpose: the fixture checks that headwater's own requests never are
    error: dict[str, Any] = caught.value.response.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    return error


def violations(error: dict[str, Any]) -> list[str]:
    return [v["description"] for d in error.get("details", []) for v in d.get("fieldViolations", [])]


def test_an_unknown_field_in_a_request_body(client: Any, sheets: Any) -> None:
    body = {"requests": [{"updateSheetProperties": {"properties": {"sheetId": 0, "hiden": True}, "fields": "hidden"}}]}
    error = refused(client, sheets, "post", ":batchUpdate", json=body)
    want = "Invalid JSON payload received. Unknown name \"hiden\" at 'requests[0].update_sheet_properties.properties'"
    assert error["message"].startswith(want) and violations(error)
    assert error["details"][0]["@type"] == "type.googleapis.com/google.rpc.BadRequest"


def test_a_bad_enum_in_a_body_and_in_the_query(client: Any, sheets: Any) -> None:
    grid = {"sheetId": 0, "startRowIndex": 0, "endRowIndex": 1, "startColumnIndex": 0, "endColumnIndex": 1}
    paste = {"copyPaste": {"source": grid, "destination": grid, "pasteTyp": "PASTE_VALUES"}}
    assert (
        'Unknown name "pasteTyp"'
        in refused(client, sheets, "post", ":batchUpdate", json={"requests": [paste]})["message"]
    )
    paste["copyPaste"]["pasteType"] = paste["copyPaste"].pop("pasteTyp")
    paste["copyPaste"]["pasteType"] = "PASTE_VALUE"
    assert "PASTE_VALUE" in refused(client, sheets, "post", ":batchUpdate", json={"requests": [paste]})["message"]
    error = refused(client, sheets, "get", "/values:batchGet", params={"ranges": "Data", "majorDimension": "ROW"})
    assert error["message"].startswith("Invalid value at 'major_dimension'")
    body = {"values": [["=1+1"]]}
    error = refused(client, sheets, "put", "/values/Data!A1", params={"valueInputOption": "RAWW"}, json=body)
    assert "value_input_option" in error["message"] and '"RAWW"' in error["message"]


def test_a_misspelt_fields_mask_and_an_unknown_query_parameter(client: Any, sheets: Any) -> None:
    error = refused(client, sheets, "get", "", params={"fields": "sheets.propertie.title"})
    assert error["message"] == "Request contains an invalid argument."
    assert "sheets.propertie.title" in violations(error)[0]
    error = refused(client, sheets, "get", "/values/Data", params={"valueRenderOptions": "FORMULA"})
    assert 'Unknown name "valueRenderOptions": Cannot bind query parameter' in error["message"]


def test_a_cell_that_is_not_a_scalar_and_a_request_of_two_kinds(client: Any, sheets: Any) -> None:
    body = {"valueInputOption": "RAW", "data": [{"range": "Data!A1", "values": [["x", ["nested"]]]}]}
    assert refused(client, sheets, "post", "/values:batchUpdate", json=body)["message"].startswith(
        "Invalid values[0][1]: list_value"
    )
    two = {"deleteSheet": {"sheetId": 0}, "addSheet": {"properties": {"title": "X"}}}
    assert "oneof field" in refused(client, sheets, "post", ":batchUpdate", json={"requests": [two]})["message"]


def test_a_fields_mask_selects_the_answer(client: Any) -> None:
    answer = client.http_client.fetch_sheet_metadata(KEY, params={"fields": "sheets.properties(title,sheetId)"})
    assert answer == {"sheets": [{"properties": {"sheetId": 0, "title": "Data"}}]}
