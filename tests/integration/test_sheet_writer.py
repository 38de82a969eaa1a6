"""write_rows_to_sheet with the real gspread client against the loopback Sheets v4 server."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from headwater.sinks.sheet_writer import MAX_COLUMNS, SheetWriteError, write_rows_to_sheet
from headwater.sources.sheets import WRITE_SCOPES, RetryPolicy, connect, read_spreadsheet_tabs

pytestmark = pytest.mark.integration

KEY = "1WrItEbAcKkEy"
OLD = [["old_a", "old_b", "old_c", "old_d", "old_e"]] + [[f"r{i}", i, "", "x", "tail"] for i in range(1, 9)]
SECRET = "cell-secret-value"


@pytest.fixture
def client(sheets: Any, service_account_info: dict[str, Any]) -> Any:
    retry = RetryPolicy(attempts=3, first_wait=0.01, max_wait=0.02)
    return connect(service_account_info, api_base=sheets.url, retry=retry, scopes=WRITE_SCOPES)


@pytest.fixture
def book(sheets: Any) -> Any:
    """A spreadsheet whose 'Report' tab holds OLD, next to a 'Lookup' tab (think: formulas reading Report)."""
    sheets.add_spreadsheet(KEY, {"Report": OLD, "Lookup": [["=COUNTA(Report!A:A)"]]}, title="Budget")
    return sheets


def tabs(client: Any) -> dict[str, dict[str, Any]]:
    """Tab title -> sheet properties (call after asserting on sheets.requests: this is a request too)."""
    meta = client.http_client.fetch_sheet_metadata(KEY)
    return {s["properties"]["title"]: s["properties"] for s in meta["sheets"]}


def requests_to(sheets: Any, fragment: str) -> int:
    return sum(fragment in path for _, path, _ in sheets.requests)


def resize(client: Any, sheet_id: int, **grid: int) -> None:
    """One updateSheetProperties per grid property, in the order given (the cell limit holds after each)."""
    updates = [
        {"properties": {"sheetId": sheet_id, "gridProperties": {name: value}}, "fields": f"gridProperties.{name}"}
        for name, value in grid.items()
    ]
    client.http_client.batch_update(KEY, {"requests": [{"updateSheetProperties": u} for u in updates]})


def numbered(n: int) -> Iterator[list[object]]:
    return ([i, f"name {i}", i * 0.5] for i in range(1, n + 1))


def test_replaces_longer_content_and_keeps_the_tab(book: Any, client: Any) -> None:
    before = tabs(client)
    book.requests.clear()
    header = ["id", "고객명", "amount", "active", "joined", "seen_at", "note"]
    rows = [
        [1, "김민준", Decimal("1234.50"), True, dt.date(2024, 1, 5), dt.datetime(2024, 1, 5, 9, 30), None],
        [2, None, Decimal("1E+3"), False, None, None, "=1+1"],
        [2**60, "서울", 0.125, None, dt.date(2026, 12, 31), None, ""],
        [4, "", Decimal("12345678901234567.89"), None, None, None, None],  # no double holds it: text
    ]
    result = write_rows_to_sheet(client, KEY, "Report", header, rows)
    assert book.tab_values(KEY, "Report") == [  # dates as serial numbers, "=1+1" as text (RAW)
        header,
        [1, "김민준", 1234.5, True, 45296, 45296 + 9.5 / 24],
        [2, "", 1000.0, False, "", "", "=1+1"],
        ["1152921504606846976", "서울", 0.125, "", 46387],
        [4, "", "12345678901234567.89"],
    ]
    formats = book.tab_formats(KEY, "Report")  # the date columns' data rows carry date formats, the header none
    assert {k for k, v in formats.items() if v["type"] == "DATE"} == {(r, 4) for r in range(1, 5)}
    assert {k for k, v in formats.items() if v["type"] == "DATE_TIME"} == {(r, 5) for r in range(1, 5)}
    assert (result.spreadsheet, result.tab, result.rows, result.columns) == (KEY, "Report", 4, 7)
    assert result.requests == 4 == len(book.requests)  # metadata, addSheet, one values write, publish
    after = tabs(client)
    assert list(after) == ["Report", "Lookup"]  # no staging tab left behind
    assert after["Report"]["sheetId"] == before["Report"]["sheetId"] == 0
    assert after["Report"]["index"] == 0
    assert after["Report"]["gridProperties"] == {"rowCount": 5, "columnCount": 7}
    assert book.tab_values(KEY, "Lookup") == [["=COUNTA(Report!A:A)"]]
    # as a Sheets user sees them: dates as dates, the formula-looking text as text (RAW, never USER_ENTERED)
    shown = read_spreadsheet_tabs(client, KEY, ["Report"])["Report"].rows
    assert [row[4:7] for row in shown[1:3]] == [["2024-01-05", "2024-01-05 09:30:00"], [None, None, "=1+1"]]


def test_large_result_in_chunks(book: Any, client: Any, caplog: pytest.LogCaptureFixture) -> None:
    seen: list[int] = []
    with caplog.at_level(logging.INFO, logger="headwater.sinks.sheet_writer"):
        result = write_rows_to_sheet(
            client, KEY, "Report", ["id", "name", "half"], numbered(12_345), chunk_rows=1000, progress=seen.append
        )
    values = book.tab_values(KEY, "Report")
    assert values == [["id", "name", "half"], *numbered(12_345)]
    assert result.rows == 12_345 and result.columns == 3
    assert requests_to(book, "values:batchUpdate") == 13  # the header travels with the first chunk
    assert requests_to(book, f"{KEY}:batchUpdate") == 1 + 12 + 1  # addSheet, 12 grows, publish
    assert result.requests == len(book.requests) == 1 + 13 + 14
    assert seen == [*range(1000, 12_001, 1000), 12_345]
    assert "Report': 12345 rows written to the staging tab" in caplog.text
    assert "replaced with 12345 rows x 3 columns" in caplog.text
    assert tabs(client)["Report"]["gridProperties"] == {"rowCount": 12_346, "columnCount": 3}


def test_failure_half_way_keeps_the_old_contents(book: Any, client: Any, caplog: pytest.LogCaptureFixture) -> None:
    book.fail_after(2, 500, path_contains="values:batchUpdate")  # the 3rd chunk fails on every attempt
    rows = ([i, SECRET] for i in range(5000))
    with caplog.at_level(logging.DEBUG), pytest.raises(SheetWriteError) as err:
        write_rows_to_sheet(client, KEY, "Report", ["id", "s"], rows, chunk_rows=1000)
    assert str(err.value) == (
        f"spreadsheet {KEY} (Budget), tab 'Report': writing sheet rows 2002-3001 to the staging tab failed: "
        "Sheets API answered HTTP 500: INTERNAL"
    )
    assert requests_to(book, "values:batchUpdate") == 2 + 3
    assert book.tab_values(KEY, "Report") == OLD
    assert list(tabs(client)) == ["Report", "Lookup"]
    assert SECRET not in caplog.text and SECRET not in str(err.value)


def test_429_on_a_chunk_is_retried(book: Any, client: Any) -> None:
    book.fail_next(429, times=1, path_contains="values:batchUpdate")
    write_rows_to_sheet(client, KEY, "Report", ["id", "name", "half"], list(numbered(25)), chunk_rows=10)
    assert book.tab_values(KEY, "Report") == [["id", "name", "half"], *numbered(25)]
    assert requests_to(book, "values:batchUpdate") == 3 + 1
    assert requests_to(book, f"{KEY}:batchUpdate") == 2  # a list's length sizes the staging tab: no grow requests


def test_a_sized_result_that_overstates_its_length(book: Any, client: Any) -> None:
    class Overstated(list[list[object]]):
        def __len__(self) -> int:
            return super().__len__() + 5

    write_rows_to_sheet(client, KEY, "Report", ["id", "name", "half"], Overstated(numbered(7)), chunk_rows=3)
    assert book.tab_values(KEY, "Report") == [["id", "name", "half"], *numbered(7)]
    assert tabs(client)["Report"]["gridProperties"] == {"rowCount": 8, "columnCount": 3}


def test_publish_failure_keeps_the_old_contents(book: Any, client: Any) -> None:
    # addSheet and one grow pass, the publish fails on all 3 attempts, the cleanup passes.
    book.fail_after(2, 503, path_contains=f"{KEY}:batchUpdate", times=3)
    with pytest.raises(SheetWriteError, match="publishing the staging tab failed: Sheets API answered HTTP 503"):
        write_rows_to_sheet(client, KEY, "Report", ["id", "name", "half"], numbered(15), chunk_rows=10)
    assert requests_to(book, f"{KEY}:batchUpdate") == 2 + 3 + 1
    assert book.tab_values(KEY, "Report") == OLD
    assert list(tabs(client)) == ["Report", "Lookup"]


def test_cleanup_failure_is_logged_and_the_first_error_raised(
    book: Any, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    book.fail_after(1, 500, path_contains="batchUpdate")  # the first values write and everything after fail
    with caplog.at_level(logging.WARNING), pytest.raises(SheetWriteError, match="writing sheet rows 1-11"):
        write_rows_to_sheet(client, KEY, "Report", ["id", "name", "half"], numbered(15), chunk_rows=10)
    assert "could not delete staging tab '_hw_stage_" in caplog.text and "_Report'" in caplog.text
    assert book.tab_values(KEY, "Report") == OLD


def test_staging_tab_is_hidden_while_writing(book: Any, client: Any) -> None:
    seen: list[dict[str, dict[str, Any]]] = []
    write_rows_to_sheet(client, KEY, "Report", ["id"], [[1]], progress=lambda n: seen.append(tabs(client)))
    [during] = seen
    staging = re.compile(r"_hw_stage_\d{8}T\d{6}Z_[0-9a-f]{8}_Report$")  # start time, token, tab
    [stage] = [props for title, props in during.items() if staging.match(title)]
    assert stage["hidden"] is True and stage["gridProperties"] == {"rowCount": 2, "columnCount": 1}
    assert list(tabs(client)) == ["Report", "Lookup"]


def test_missing_tab(book: Any, client: Any) -> None:
    with pytest.raises(SheetWriteError) as err:
        write_rows_to_sheet(client, KEY, "Nope", ["a"], [[1]])
    assert str(err.value) == f"spreadsheet {KEY} (Budget): no tab named 'Nope' (tabs: Report, Lookup)"
    assert len(book.requests) == 1


def test_not_shared_and_not_found(book: Any, client: Any, service_account_info: dict[str, Any]) -> None:
    book.deny(KEY)
    with pytest.raises(SheetWriteError) as err:
        write_rows_to_sheet(client, KEY, "Report", ["a"], [[1]])
    assert str(err.value) == (
        f"spreadsheet {KEY}, tab 'Report': reading the spreadsheet metadata failed: access denied (403); "
        f"share the spreadsheet with {service_account_info['client_email']} as an editor"
    )
    with pytest.raises(SheetWriteError) as err:
        write_rows_to_sheet(client, "missing-key", "Report", ["a"], [[1]])
    assert str(err.value) == (
        "spreadsheet missing-key, tab 'Report': reading the spreadsheet metadata failed: "
        "not found (404); check the spreadsheet URL or key"
    )


def test_shared_read_only(book: Any, client: Any) -> None:
    book.fail_next(403, path_contains=f"{KEY}:batchUpdate")
    with pytest.raises(
        SheetWriteError, match=r"\(Budget\), tab 'Report': adding the staging tab failed: access denied"
    ):
        write_rows_to_sheet(client, KEY, "Report", ["a"], [[1]])
    assert book.tab_values(KEY, "Report") == OLD


def test_too_wide_fails_before_any_request(book: Any, client: Any) -> None:
    header = [f"c{i}" for i in range(MAX_COLUMNS + 1)]
    with pytest.raises(SheetWriteError) as err:
        write_rows_to_sheet(client, KEY, "Report", header, [[1] * len(header)])
    assert str(err.value) == f"spreadsheet {KEY}, tab 'Report': result has 18279 columns; a sheet holds at most 18278"
    assert book.requests == []
    assert book.tab_values(KEY, "Report") == OLD


def test_row_wider_than_header(book: Any, client: Any) -> None:
    rows = [[1, "a", 0.5]] * 30 + [[1, "a", 0.5, SECRET]]
    with pytest.raises(SheetWriteError) as err:
        write_rows_to_sheet(client, KEY, "Report", ["id", "name", "half"], rows, chunk_rows=10)
    assert str(err.value).endswith("result row 31 has 4 values but the header has 3 columns")
    assert book.tab_values(KEY, "Report") == OLD
    assert list(tabs(client)) == ["Report", "Lookup"]


@pytest.fixture
def nearly_full(book: Any, client: Any) -> list[list[Any]]:
    """Report is 10 x 3 cells, Lookup 980,000 x 10: 9,800,030 cells of 10,000,000 are in use.

    Returns Report's contents after the resize."""
    resize(client, 0, rowCount=10, columnCount=3)
    resize(client, tabs(client)["Lookup"]["sheetId"], columnCount=10, rowCount=980_000)
    book.requests.clear()
    return list(book.tab_values(KEY, "Report"))


def test_result_that_would_exceed_10m_cells_fails_before_writing(
    book: Any, nearly_full: list[list[Any]], client: Any
) -> None:
    # 50,001 x 2 staged cells, and the same again for the resized target while both exist during publish.
    rows = [[i, "x"] for i in range(50_000)]
    with pytest.raises(SheetWriteError) as err:
        write_rows_to_sheet(client, KEY, "Report", ["id", "s"], rows)
    assert str(err.value) == (
        f"spreadsheet {KEY} (Budget), tab 'Report': result of 50000 rows x 2 columns does not fit: replacing the "
        "tab needs 10000004 cells at its peak (the staging tab included, 9800030 in use now) and a spreadsheet "
        "holds at most 10000000 cells"
    )
    assert len(book.requests) == 1  # the metadata only
    assert book.tab_values(KEY, "Report") == nearly_full


def test_result_at_exactly_10m_cells_at_its_peak_is_written(
    book: Any, nearly_full: list[list[Any]], client: Any
) -> None:
    rows = [[i, "x"] for i in range(49_999)]
    assert write_rows_to_sheet(client, KEY, "Report", ["id", "s"], rows, chunk_rows=20_000).rows == 49_999
    assert book.tab_values(KEY, "Report") == [["id", "s"], *rows]


def test_streamed_result_that_outgrows_10m_cells_stops_before_the_limit(
    book: Any, nearly_full: list[list[Any]], client: Any
) -> None:
    rows = ([i, "x"] for i in range(80_000))
    with pytest.raises(SheetWriteError, match="result of at least 60000 rows x 2 columns does not fit"):
        write_rows_to_sheet(client, KEY, "Report", ["id", "s"], rows, chunk_rows=20_000)
    assert requests_to(book, "values:batchUpdate") == 2
    assert book.tab_values(KEY, "Report") == nearly_full
    assert list(tabs(client)) == ["Report", "Lookup"]


def test_frozen_header_and_empty_result(book: Any, client: Any) -> None:
    resize(client, 0, frozenRowCount=1, frozenColumnCount=2)
    write_rows_to_sheet(client, KEY, "Report", ["only"], iter([]))
    assert book.tab_values(KEY, "Report") == [["only"]]
    assert tabs(client)["Report"]["gridProperties"] == {
        "rowCount": 2,
        "columnCount": 3,
        "frozenRowCount": 1,
        "frozenColumnCount": 2,
    }
