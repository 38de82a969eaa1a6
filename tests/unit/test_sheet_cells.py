"""Python values as Sheets cells: the RAW value, the date format a column needs, the size a row adds."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest

from headwater.sinks.sheet_cells import CellError, cell_value, column_format, row_bytes

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("value", "cell", "kind"),
    [
        (None, "", None),
        ("=1+1", "=1+1", None),
        (True, True, None),
        (2**53, 2**53, None),
        (2**53 + 1, str(2**53 + 1), None),
        (Decimal("1234.50"), 1234.5, None),
        (Decimal("12345678901234567.89"), "12345678901234567.89", None),
        (Decimal("1E+3"), 1000.0, None),
        (Decimal("NaN"), "", None),
        (float("nan"), "", None),
        (float("-inf"), "-Infinity", None),
        (Decimal("Infinity"), "Infinity", None),
        (Decimal("-Infinity"), "-Infinity", None),
        (Decimal("1.00000000000000000001E+25"), "10000000000000000000100000", None),  # plain, never 1E+25
        (0.125, 0.125, None),
        (-2.5, -2.5, None),
        ("x" * 50_000, "x" * 50_000, None),
        ({"d": Decimal("1.5"), "t": dt.date(2024, 1, 5)}, '{"d": "1.5", "t": "2024-01-05"}', None),
        (dt.date(1899, 12, 30), 0, "DATE"),
        (dt.date(2024, 1, 5), 45296, "DATE"),
        (dt.datetime(2024, 1, 5, 12), 45296.5, "DATE_TIME"),
        (dt.datetime(2024, 1, 5, 21, tzinfo=dt.timezone(dt.timedelta(hours=9))), 45296.5, "DATE_TIME"),
        (dt.time(18), 0.75, "TIME"),
        (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001", None),
        ({"k": ["é", 1]}, '{"k": ["é", 1]}', None),
    ],
)
def test_values_become_cells(value: object, cell: object, kind: str | None) -> None:
    assert cell_value(value) == (cell, kind)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"\x00", "a binary value has no cell form"),
        (bytearray(b"x"), "a binary value has no cell form"),
        (dt.timedelta(1), "a timedelta value has no cell form"),
        (object(), "a object value has no cell form"),
        ("x" * 50_001, "text of 50001 characters; a cell holds at most 50000"),
        ({"k": "x" * 50_000}, "text of 50009 characters"),
    ],
)
def test_values_with_no_cell_form_are_refused(value: object, message: str) -> None:
    with pytest.raises(CellError, match=message):
        cell_value(value)


def test_whole_days_are_integers_and_aware_times_are_utc_whatever_the_machine_zone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time

    assert type(cell_value(dt.datetime(2024, 1, 5))[0]) is int and type(cell_value(dt.date(2024, 1, 5))[0]) is int
    monkeypatch.setenv("TZ", "Asia/Seoul")
    time.tzset()
    try:
        aware = dt.datetime(2024, 1, 5, 12, tzinfo=dt.UTC)
        assert cell_value(aware) == (45296.5, "DATE_TIME")  # noon UTC, not 21:00 in the machine's zone
    finally:
        monkeypatch.undo()
        time.tzset()


def test_numpy_scalars_become_their_python_values() -> None:
    np = pytest.importorskip("numpy")  # a test dependency; users' pandas results carry numpy scalars
    assert cell_value(np.bool_(True)) == (True, None)
    assert cell_value(np.int64(7)) == (7, None)
    assert cell_value(np.float32("nan")) == ("", None)
    assert cell_value(np.datetime64("2024-01-05T12:00:00.000000", "us")) == (45296.5, "DATE_TIME")


def test_a_column_of_mixed_dates_shows_date_and_time() -> None:
    assert column_format({"DATE"}) == {"type": "DATE", "pattern": "yyyy-mm-dd"}
    assert column_format({"TIME"})["type"] == "TIME"
    assert column_format({"DATE", "DATE_TIME"})["type"] == "DATE_TIME"


def test_row_bytes_count_non_ascii_as_sent() -> None:
    assert row_bytes(["a", 1]) == len('["a", 1]') + 1
    assert row_bytes(["가"]) == len('["\\uac00"]') + 1  # six bytes on the wire, not three
