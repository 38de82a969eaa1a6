"""The real gspread client and google-auth credentials against the loopback Sheets v4 server."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from headwater.errors import SourceError
from headwater.sources.sheets import RetryPolicy, connect, read_spreadsheet_tabs

pytestmark = pytest.mark.integration

KEY = "1AbCdEfGhIjKlMnOp"
FAST = RetryPolicy(attempts=4, first_wait=0.01, max_wait=0.05)


@pytest.fixture
def client(sheets: Any, service_account_info: dict[str, Any]) -> Any:
    return connect(service_account_info, api_base=sheets.url, retry=FAST)


def api_requests(sheets: Any, fragment: str = "") -> list[tuple[str, str, dict[str, Any]]]:
    return [r for r in sheets.requests if fragment in r[1]]


def test_reads_many_tabs_with_two_requests(sheets: Any, client: Any) -> None:
    sheets.add_spreadsheet(
        KEY,
        {
            "Orders": [["Order ID", "Amount"], ["1", "$1,234.50"], ["2", "$3"]],
            "It's Korean": [["고객명", "도시"], ["김민준", "서울"]],
            "Unused": [["x"], ["y"]],
        },
    )
    tables = read_spreadsheet_tabs(client, KEY, ["Orders", "It's Korean"])
    assert tables["Orders"].rows == [["Order ID", "Amount"], ["1", "$1,234.50"], ["2", "$3"]]
    assert tables["It's Korean"].rows[1] == ["김민준", "서울"]
    assert tables["Orders"].where == f"spreadsheet {KEY}, tab 'Orders'"
    assert [(m, p) for m, p, _ in sheets.requests] == [
        ("GET", f"/v4/spreadsheets/{KEY}"),
        ("GET", f"/v4/spreadsheets/{KEY}/values:batchGet"),
    ]
    query = sheets.requests[1][2]
    assert query["ranges"] == ["'Orders'", "'It''s Korean'"]
    assert query["valueRenderOption"] == ["FORMATTED_VALUE"]


def test_unformatted_values_keep_numbers_exact(sheets: Any, client: Any) -> None:
    sheets.add_spreadsheet(KEY, {"T": [["n", "flag", "ratio"], [12, True, 0.125], [3.0, False, 1e-7]]})
    rows = read_spreadsheet_tabs(client, KEY, ["T"], render="unformatted")["T"].rows
    assert rows[1:] == [["12", "true", "0.125"], ["3", "false", "0.0000001"]]
    assert sheets.requests[-1][2]["valueRenderOption"] == ["UNFORMATTED_VALUE"]


def test_429_then_success_is_retried(sheets: Any, client: Any) -> None:
    sheets.add_spreadsheet(KEY, {"T": [["a"], ["1"]]})
    sheets.fail_next(429, times=2, path_contains="values:batchGet")
    assert read_spreadsheet_tabs(client, KEY, ["T"])["T"].rows == [["a"], ["1"]]
    assert len(api_requests(sheets, "values:batchGet")) == 3


def test_retries_are_bounded(sheets: Any, client: Any) -> None:
    sheets.add_spreadsheet(KEY, {"T": [["a"], ["1"]]})
    sheets.fail_next(500, times=50, path_contains="values:batchGet")
    with pytest.raises(SourceError, match=f"spreadsheet {KEY}: Sheets API answered HTTP 500"):
        read_spreadsheet_tabs(client, KEY, ["T"])
    assert len(api_requests(sheets, "values:batchGet")) == FAST.attempts


def test_not_shared_names_the_service_account(sheets: Any, client: Any, service_account_info: dict[str, Any]) -> None:
    sheets.add_spreadsheet(KEY, {"T": [["a"], ["1"]]})
    sheets.deny(KEY)
    with pytest.raises(SourceError) as err:
        read_spreadsheet_tabs(client, KEY, ["T"])
    assert str(err.value) == (
        f"spreadsheet {KEY}: access denied (403); share the spreadsheet with {service_account_info['client_email']}"
    )


def test_missing_spreadsheet_and_tab(sheets: Any, client: Any) -> None:
    with pytest.raises(SourceError, match=f"spreadsheet {KEY}: not found \\(404\\)"):
        read_spreadsheet_tabs(client, KEY, ["T"])
    sheets.add_spreadsheet(KEY, {"T": [["a"]], "U": [["b"]]}, title="Budget")
    with pytest.raises(SourceError, match=f"spreadsheet {KEY} \\(Budget\\): no tab named 'Nope' \\(tabs: T, U\\)"):
        read_spreadsheet_tabs(client, KEY, ["T", "Nope"])


def test_unreachable_token_endpoint(service_account_info: dict[str, Any], sheets: Any) -> None:
    from tests.conftest import free_port

    info = {**service_account_info, "token_uri": f"http://127.0.0.1:{free_port()}/token"}
    client = connect(info, api_base=sheets.url, retry=FAST)
    with pytest.raises(SourceError, match="cannot authenticate as headwater-test@"):
        read_spreadsheet_tabs(client, KEY, ["T"])


def test_the_key_and_cells_never_reach_the_logs(
    sheets: Any, client: Any, service_account_info: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    sheets.add_spreadsheet(KEY, {"T": [["a"], ["cell-secret-value"]]})
    sheets.fail_next(429, times=1, path_contains="values:batchGet")
    with caplog.at_level(logging.DEBUG):
        read_spreadsheet_tabs(client, KEY, ["T"])
    key_body = service_account_info["private_key"].splitlines()[1]
    assert "retry 1 of 3" in caplog.text
    assert key_body not in caplog.text and "cell-secret-value" not in caplog.text
