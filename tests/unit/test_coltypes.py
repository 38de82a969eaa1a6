import re
import time
from collections.abc import Iterator

import pytest

from headwater.coltypes import CastError, ColumnType, cast, check_settled, infer, settle

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["1", "-2", "300"], "integer"),
        (["1", "2.5", "-0.125"], "numeric(38,3)"),
        (["00501", "10001"], "text"),  # leading zeros are identifiers, not numbers
        (["true", "FALSE"], "boolean"),
        (["2024-01-02", "2024-12-31"], "date"),
        (["2024. 1. 5", "2024. 12. 25."], "date"),  # Korean-locale date format
        (["2024-01-02 10:00", "2024-01-02T10:00:00.5Z"], "timestamp"),
        (["2024-02-30"], "text"),  # not a real date
        (["1e5"], "text"),
        (["9223372036854775808"], "numeric(38,0)"),  # past int64
        ([], "text"),
        (["1", "x"], "text"),
    ],
)
def test_infer(values: list[str], expected: str) -> None:
    assert str(infer(values)) == expected


def test_cast_canonical_forms() -> None:
    assert cast("1,5".replace(",", ""), ColumnType("integer")) == "15"
    assert cast("2.50", ColumnType.parse("numeric(12,2)")) == "2.50"
    assert cast("yes", ColumnType("boolean")) == "true"
    assert cast("2024/1/5", ColumnType("date")) == "2024-01-05"
    assert cast("2024-01-02T10:00:00+09:00", ColumnType("timestamp")) == "2024-01-02 01:00:00"
    assert cast("3.0", ColumnType("integer")) == "3"


@pytest.mark.parametrize(
    ("value", "spec", "reason"),
    [
        ("abc", "integer", "not an integer"),
        ("1.5", "integer", "not an integer"),
        ("1.234", "numeric(12,2)", "more than 2 decimal places"),
        ("12345678901", "numeric(10,2)", "digits before the decimal point"),
        ("maybe", "boolean", "not a boolean"),
        ("2024-13-01", "date", "not a date"),
        ("noon", "timestamp", "not a timestamp"),
        ("NaN", "numeric", "not a finite number"),
    ],
)
def test_cast_errors_say_why_without_the_value(value: str, spec: str, reason: str) -> None:
    with pytest.raises(CastError) as err:
        cast(value, ColumnType.parse(spec))
    assert reason in str(err.value)
    assert value not in str(err.value)


def test_parse_types_and_settle_scale() -> None:
    assert ColumnType.parse("DECIMAL(10, 2)") == ColumnType("numeric", 10, 2)
    assert ColumnType.parse("bigint").kind == "integer"
    with pytest.raises(ValueError, match="unknown column type"):
        ColumnType.parse("money")
    with pytest.raises(ValueError, match="out of range"):
        ColumnType.parse("numeric(50,2)")
    assert settle(ColumnType("numeric"), ["1.5", "2.125"]) == ColumnType("numeric", 38, 3)


def test_wide_decimals_are_exact_or_refused_never_a_bare_decimal_error() -> None:
    thirty = "123456789012345678901234567890.12"
    assert infer([thirty]) == ColumnType("numeric", 38, 2)
    assert cast(thirty, ColumnType.parse("numeric(38,2)")) == thirty
    assert cast("1" * 37 + ".5", ColumnType.parse("numeric(38,1)")) == "1" * 37 + ".5"
    assert cast("1.2", ColumnType.parse("numeric(10,2)")) == "1.20"
    with pytest.raises(CastError, match="more than 2 decimal places"):
        cast(thirty + "3", ColumnType.parse("numeric(38,2)"))
    with pytest.raises(CastError, match="more than 36 digits before the decimal point"):
        cast("9" * 37 + ".1", ColumnType.parse("numeric(38,2)"))
    assert infer(["9" * 40]) == ColumnType("text")  # too wide for any decimal: kept exactly, as text


INT64_MIN, INT64_MAX = str(-(2**63)), str(2**63 - 1)
KIND_LIST = "integer, numeric, double, boolean, date, timestamp, timestamptz, text"


def exactly(message: str) -> str:
    """A ``match=`` pattern that accepts this message and nothing longer or shorter."""
    return f"^{re.escape(message)}$"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([INT64_MIN, INT64_MAX], "integer"),  # both ends of int64 are still integers
        (["0." + "0" * 36 + "1"], "numeric(38,37)"),  # widest scale that leaves room for the leading 0
        (["0." + "0" * 37 + "1"], "text"),
        (["9" * 38], "numeric(38,0)"),
        (["9" * 39], "text"),
        (["2024-01-02 10:00", "2024-02-30 10:00"], "text"),  # shaped like timestamps, but one is no real day
        (["TRUE", "false", "True"], "boolean"),
        (["1", "0"], "integer"),  # 1/0 read as numbers, not booleans
    ],
)
def test_infer_at_the_edges_of_each_type(values: list[str], expected: str) -> None:
    assert str(infer(values)) == expected


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("int", ColumnType("integer")),
        ("bigint", ColumnType("integer")),
        ("INTEGER", ColumnType("integer")),
        ("decimal", ColumnType("numeric")),
        ("bool", ColumnType("boolean")),
        ("string", ColumnType("text")),
        ("varchar", ColumnType("text")),
        ("datetime", ColumnType("timestamp")),
        ("float", ColumnType("double")),
        ("timestamptz", ColumnType("timestamptz")),
        ("  Numeric ( 1 , 0 ) ", ColumnType("numeric", 1, 0)),  # smallest precision
        ("numeric(5,5)", ColumnType("numeric", 5, 5)),  # scale may equal precision
        ("numeric(38,38)", ColumnType("numeric", 38, 38)),
    ],
)
def test_parse_reads_aliases_and_precision_bounds(spec: str, expected: ColumnType) -> None:
    assert ColumnType.parse(spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("money", f"unknown column type 'money'; use one of {KIND_LIST} or numeric(p,s)"),
        ("double precision", f"unknown column type 'double precision'; use one of {KIND_LIST} or numeric(p,s)"),
        ("", f"unknown column type ''; use one of {KIND_LIST} or numeric(p,s)"),
        ("integer(10,2)", "only numeric takes (precision,scale), not 'integer(10,2)'"),
        ("numeric(0,0)", "numeric(0,0) is out of range (precision 1..38, scale <= precision)"),
        ("numeric(39,2)", "numeric(39,2) is out of range (precision 1..38, scale <= precision)"),
        ("numeric(5,6)", "numeric(5,6) is out of range (precision 1..38, scale <= precision)"),
    ],
)
def test_parse_rejects_bad_specs_with_a_clear_message(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=exactly(message)):
        ColumnType.parse(spec)


@pytest.mark.parametrize(
    ("ctype", "text"),
    [
        (ColumnType("numeric"), "numeric"),  # open scale: no "(38,None)"
        (ColumnType("numeric", 12, 2), "numeric(12,2)"),
        (ColumnType("integer"), "integer"),
        (ColumnType("timestamptz"), "timestamptz"),
    ],
)
def test_type_text_round_trips_through_parse(ctype: ColumnType, text: str) -> None:
    assert str(ctype) == text
    assert ctype.to_json() == text
    assert ColumnType.parse(text) == ctype


@pytest.mark.parametrize(
    ("value", "spec", "expected"),
    [
        ("42", "integer", "42"),
        (" -7 ", "integer", "-7"),
        ("+5", "integer", "5"),
        ("1e3", "integer", "1000"),
        (INT64_MIN, "integer", INT64_MIN),
        (INT64_MAX, "integer", INT64_MAX),
        ("1.5", "numeric", "1.5"),
        ("1e3", "numeric", "1000"),  # never exponent notation
        ("-0.5", "numeric(3,2)", "-0.50"),
        ("1e30", "numeric(38,2)", "1" + "0" * 30 + ".00"),
        ("9" * 38, "numeric(38,0)", "9" * 38),  # scale 0 leaves all 38 digits for the integer part
        ("9" * 38, "numeric", "9" * 38),
        ("1e-1000", "numeric", "0." + "0" * 999 + "1"),  # smallest exponent still accepted
        ("1.5", "double", "1.5"),
        ("1e3", "double", "1000.0"),
        ("-0.25", "double", "-0.25"),
        ("Y", "boolean", "true"),
        ("t", "boolean", "true"),
        ("No", "boolean", "false"),
        ("0", "boolean", "false"),
        ("2024.1.5.", "date", "2024-01-05"),
        ("2024-01-02 10:00", "timestamp", "2024-01-02 10:00:00"),  # no seconds: exactly :00
        ("2024-01-02 9:05", "timestamp", "2024-01-02 09:05:00"),
        ("2024-01-02 10:00:00.5", "timestamp", "2024-01-02 10:00:00.500000"),  # .5 s, not 5 us
        ("2024-01-02T10:00:00.000123", "timestamp", "2024-01-02 10:00:00.000123"),
        ("2024-01-02T10:00:07", "timestamp", "2024-01-02 10:00:07"),
        ("2024-01-02T23:30:00Z", "timestamp", "2024-01-02 23:30:00"),
        ("2024-01-02T10:00:00+0930", "timestamp", "2024-01-02 00:30:00"),  # offset without a colon
        ("2024-01-01 22:00:00 -05:00", "timestamp", "2024-01-02 03:00:00"),
        ("2024/1/5", "timestamp", "2024-01-05 00:00:00"),  # a bare date is midnight
        ("2024-01-02T10:00:00+09:00", "timestamptz", "2024-01-02 01:00:00+00:00"),
        ("2024-01-02 10:00", "timestamptz", "2024-01-02 10:00:00+00:00"),
        ("  kept as is ", "text", "  kept as is "),
    ],
)
def test_cast_gives_exact_canonical_text(value: str, spec: str, expected: str) -> None:
    assert cast(value, ColumnType.parse(spec)) == expected


@pytest.mark.parametrize(
    ("value", "ctype", "message"),
    [
        ("abc", ColumnType("integer"), "is not an integer"),
        ("1.5", ColumnType("integer"), "is not an integer"),
        ("inf", ColumnType("integer"), "is not an integer"),
        ("9223372036854775808", ColumnType("integer"), "is outside the 64-bit integer range"),
        ("-9223372036854775809", ColumnType("integer"), "is outside the 64-bit integer range"),
        ("abc", ColumnType("numeric"), "is not a number"),
        ("1_000", ColumnType("numeric"), "is not a number"),
        ("1e9999999999999999999999999", ColumnType("numeric"), "is not a number"),
        ("NaN", ColumnType("numeric"), "is not a finite number"),
        ("-Infinity", ColumnType("numeric"), "is not a finite number"),
        ("+nan", ColumnType("numeric"), "is not a finite number"),
        ("1e1001", ColumnType("numeric"), "is out of range"),
        ("1e-1001", ColumnType("numeric"), "is out of range"),
        ("1e1000", ColumnType("numeric"), "has more than 38 digits before the decimal point"),
        ("1" + "0" * 38, ColumnType("numeric", 38, 0), "has more than 38 digits before the decimal point"),
        ("123.4", ColumnType("numeric", 4, 2), "has more than 2 digits before the decimal point"),
        ("abc", ColumnType("double"), "is not a number"),
        ("maybe", ColumnType("boolean"), "is not a boolean (true/false)"),
        ("2024-13-01", ColumnType("date"), "is not a date (YYYY-MM-DD)"),
        ("noon", ColumnType("timestamp"), "is not a timestamp (YYYY-MM-DD HH:MM:SS)"),
        ("2024-02-30 10:00", ColumnType("timestamp"), "is not a valid timestamp"),
        ("2024-01-02 24:00", ColumnType("timestamptz"), "is not a valid timestamp"),
        ("x", ColumnType("money"), "unknown type money"),
    ],
)
def test_cast_refusals_give_the_exact_reason_without_the_value(value: str, ctype: ColumnType, message: str) -> None:
    with pytest.raises(CastError, match=exactly(message)) as err:
        cast(value, ctype)
    assert value not in str(err.value)


@pytest.mark.parametrize(
    ("ctype", "canonical", "expected"),
    [
        (ColumnType("numeric"), [], ColumnType("numeric", 38, 0)),  # no values: scale 0
        (ColumnType("numeric"), ["1", "2.50", "-0.125"], ColumnType("numeric", 38, 3)),
        (ColumnType("numeric", 10), ["0.123456789012"], ColumnType("numeric", 10, 12)),  # check_settled refuses it
        (ColumnType("numeric", 12, 2), ["1.5"], ColumnType("numeric", 12, 2)),  # a declared scale stays
        (ColumnType("text"), ["1.5"], ColumnType("text")),
    ],
)
def test_settle_fixes_an_open_numeric_scale_from_the_data(
    ctype: ColumnType, canonical: list[str], expected: ColumnType
) -> None:
    assert settle(ctype, canonical) == expected


@pytest.fixture
def seoul_local_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("TZ", "KST-9")  # POSIX rule, needs no tz database
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("seoul_local_time")
def test_offsets_convert_to_utc_whatever_the_machine_timezone() -> None:
    assert cast("2024-01-02T10:00:00+09:00", ColumnType("timestamp")) == "2024-01-02 01:00:00"
    assert cast("2024-01-02T10:00:00Z", ColumnType("timestamptz")) == "2024-01-02 10:00:00+00:00"


def test_a_column_of_dates_and_timestamps_is_a_timestamp() -> None:
    values = ["2024-01-02", "2024-01-02 10:00"]
    assert infer(values) == ColumnType("timestamp")
    assert [cast(v, ColumnType("timestamp")) for v in values] == ["2024-01-02 00:00:00", "2024-01-02 10:00:00"]


@pytest.mark.parametrize(("cell", "expected"), [("1_000", None), ("1e3", "1000.0"), ("-inf", "-inf"), ("NaN", "nan")])
def test_double_cells_are_plain_numbers_or_ieee_specials(cell: str, expected: str | None) -> None:
    if expected is None:
        with pytest.raises(CastError, match="is not a number"):
            cast(cell, ColumnType("double"))
    else:
        assert cast(cell, ColumnType("double")) == expected


@pytest.mark.parametrize(
    ("text", "ctype", "problem"),
    [
        ("0." + "0" * 39 + "1", ColumnType("numeric", 38, 40), "has 40 decimal places; a decimal holds at most 38"),
        (
            "1" * 30,
            ColumnType("numeric", 38, 10),
            "needs 30 digits before the decimal point, but with the column's 10 decimal places a decimal holds 28",
        ),
    ],
)
def test_a_settled_numeric_refuses_values_it_cannot_hold_exactly(text: str, ctype: ColumnType, problem: str) -> None:
    with pytest.raises(CastError, match=re.escape(problem)):
        check_settled(text, ctype)
    check_settled("1.5", ColumnType("numeric", 38, 2))  # fits: no error


@pytest.mark.parametrize(
    ("text", "ctype"),
    [
        ("1" * 28 + ".5", ColumnType("numeric", 38, 10)),  # exactly the 28 digits left before the point
        ("1" * 38, ColumnType("numeric", 38, 0)),  # scale 0: all 38 digits before the point
        ("0." + "1" * 38, ColumnType("numeric", 38, 40)),  # this value's own 38 places still fit a decimal
    ],
)
def test_a_settled_numeric_holds_values_at_its_limits(text: str, ctype: ColumnType) -> None:
    check_settled(text, ctype)
