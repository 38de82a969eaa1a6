"""Write-back within the real Sheets API's limits, against the strict loopback server: request bodies under
2 MB, resizes that never cross 10 million cells, lost replies and crashed runs that leave nothing behind, and
values as a spreadsheet user expects them."""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

from headwater.sinks.sheet_writer import MAX_BODY_BYTES, SheetWriteError, write_rows_to_sheet
from headwater.sources.sheets import WRITE_SCOPES, RetryPolicy, connect

pytestmark = pytest.mark.integration

KEY = "1LiMiTsKeY"
OLD = [["old"], ["kept"]]
HEADER = ["id", "name", "amount"]
ROWS = [[1, "가나다", 1.5], [2, "라마바", 2.5], [3, "사아자", 3.5]]


@pytest.fixture
def client(sheets: Any, service_account_info: dict[str, Any]) -> Any:
    sheets.add_spreadsheet(KEY, {"Report": OLD, "Lookup": [["x"]]}, title="Limits")
    retry = RetryPolicy(attempts=3, first_wait=0.01, max_wait=0.02)
    return connect(service_account_info, api_base=sheets.url, retry=retry, scopes=WRITE_SCOPES)


def titles(sheets: Any) -> list[str]:
    return [t.title for t in sheets._books[KEY].tabs]


def test_5000_rows_of_korean_text_go_in_requests_under_2_mb(sheets: Any, client: Any) -> None:
    header = [f"열{i}" for i in range(10)]
    rows = [[f"{n}번째 행의 한국어 텍스트 값 {i}" * 2 for i in range(10)] for n in range(5000)]
    result = write_rows_to_sheet(client, KEY, "Report", header, rows)
    writes = [size for (_, path, _), size in zip(sheets.requests, sheets.body_bytes, strict=True) if "values:" in path]
    assert len(writes) >= 3 and max(writes) <= MAX_BODY_BYTES  # one request of 5,000 rows would be ~6 MB
    assert sum(writes) > 5_000_000  # \uXXXX escaping counted: the rows really are that large as sent
    assert result.rows == 5000 and sheets.tab_values(KEY, "Report") == [header, *rows]


def test_a_resize_never_crosses_the_cell_limit_on_the_way(sheets: Any, client: Any) -> None:
    # 9.9M cells in a wide target; the narrow result needs its columns shrunk before its rows grow.
    sheets.add_spreadsheet(KEY, {"Report": [["old"]]}, rows=1100, cols=9000)
    rows = [[i, "x"] for i in range(3000)]
    write_rows_to_sheet(client, KEY, "Report", ["id", "s"], rows, chunk_rows=3000)
    assert sheets.tab_values(KEY, "Report") == [["id", "s"], *rows]
    grid = sheets._books[KEY].tabs[0]
    assert (grid.rows, grid.cols) == (3001, 2)


@pytest.mark.parametrize(
    ("what", "fault"),
    [
        ("adding the staging tab", {"path_contains": f"{KEY}:batchUpdate"}),
        ("the values write", {"path_contains": "values:batchUpdate"}),
        ("the publish", {"path_contains": f"{KEY}:batchUpdate", "n_ok": 1}),
    ],
)
def test_a_step_applied_whose_reply_is_lost_ends_right_with_no_staging_tab(
    sheets: Any, client: Any, caplog: pytest.LogCaptureFixture, what: str, fault: dict[str, Any]
) -> None:
    sheets.lose_reply(503, method="POST", **fault)
    with caplog.at_level(logging.INFO):
        result = write_rows_to_sheet(client, KEY, "Report", HEADER, ROWS)
    assert result.rows == 3 and sheets.tab_values(KEY, "Report") == [HEADER, *ROWS]
    assert titles(sheets) == ["Report", "Lookup"]
    assert "HTTP 503" in caplog.text  # the lost reply really happened and was retried


def test_a_failure_before_anything_applied_still_keeps_the_old_contents(sheets: Any, client: Any) -> None:
    sheets.fail_after(1, 400, path_contains=f"{KEY}:batchUpdate", method="POST", times=1)  # the publish, refused
    with pytest.raises(SheetWriteError, match="publishing the staging tab failed"):
        write_rows_to_sheet(client, KEY, "Report", HEADER, ROWS)
    assert sheets.tab_values(KEY, "Report") == OLD and titles(sheets) == ["Report", "Lookup"]


def test_staging_tabs_left_by_dead_runs_are_swept_by_the_next_write(
    sheets: Any, client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    fresh = f"_hw_stage_{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}_0123abcd_Report"  # a run still writing
    tabs = {
        "Report": OLD,
        "_hw_stage_20240101T000000Z_deadbeef_Report": [["partial"]],
        "_hw_stage_20240101T000000Z_beefdead_Other tab": [],
        fresh: [["in progress"]],
        "_hw_stage_notes": [["a user's own tab"]],
    }
    sheets.add_spreadsheet(KEY, tabs, title="Limits")
    with caplog.at_level(logging.WARNING):
        write_rows_to_sheet(client, KEY, "Report", HEADER, ROWS)
    assert titles(sheets) == ["Report", fresh, "_hw_stage_notes"]
    assert "removed 2 staging tab(s) left by runs that died" in caplog.text
    assert sheets.tab_values(KEY, "Report") == [HEADER, *ROWS]


@pytest.mark.parametrize(
    ("value", "found"),
    [
        (b"\x00\x01", "a binary value has no cell form"),
        (memoryview(b"ab"), "a binary value has no cell form"),
        (dt.timedelta(hours=1), "a timedelta value has no cell form"),
        ("x" * 50_001, "text of 50001 characters; a cell holds at most 50000"),
    ],
)
def test_a_value_with_no_cell_form_is_refused_naming_row_and_column(
    sheets: Any, client: Any, value: object, found: str
) -> None:
    rows = [[1, "a", 1.0], [2, "b", value]]
    with pytest.raises(SheetWriteError) as err:
        write_rows_to_sheet(client, KEY, "Report", HEADER, rows)
    assert f"tab 'Report': result row 2, column C (amount): {found}" in str(err.value)
    assert sheets.tab_values(KEY, "Report") == OLD and titles(sheets) == ["Report", "Lookup"]
    assert not [p for _, p, _ in sheets.requests if "values" in p]  # refused before any cell was sent


def test_nan_and_infinities_are_written_the_same_from_every_numeric_type(sheets: Any, client: Any) -> None:
    rows = [
        [1, "float", math.nan], [2, "decimal", Decimal("NaN")], [3, "numpy", np.float32("nan")],
        [4, "float", math.inf], [5, "decimal", Decimal("-Infinity")], [6, "numpy", np.float64("-inf")],
        [7, "json", {"a": [1, "é"]}], [8, "numpy int", np.int64(2**40)], [9, "numpy bool", np.bool_(True)],
    ]  # fmt: skip
    write_rows_to_sheet(client, KEY, "Report", HEADER, rows)
    values = sheets.tab_values(KEY, "Report")
    assert [row[2] if len(row) > 2 else "" for row in values[1:]] == [
        "", "", "", "Infinity", "-Infinity", "-Infinity", json.dumps({"a": [1, "é"]}, ensure_ascii=False), 2**40, True
    ]  # fmt: skip


def test_aware_timestamps_are_written_in_utc_and_times_as_times(sheets: Any, client: Any) -> None:
    seoul = dt.timezone(dt.timedelta(hours=9))
    rows = [[1, dt.datetime(2026, 1, 5, 18, 0, tzinfo=seoul), dt.time(6, 30)]]
    write_rows_to_sheet(client, KEY, "Report", ["id", "at", "when"], rows)
    assert sheets.tab_values(KEY, "Report")[1] == [1, 46027 + 9 / 24, 6.5 / 24]
    formats = sheets.tab_formats(KEY, "Report")
    assert (formats[(1, 1)]["type"], formats[(1, 2)]["type"]) == ("DATE_TIME", "TIME")
