import pytest

from headwater.coltypes import CastError, ColumnType, cast, infer, settle

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
