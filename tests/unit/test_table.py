import pytest

from headwater.coltypes import ColumnType
from headwater.errors import SourceError
from headwater.table import RawTable, TableRules, build_table

pytestmark = pytest.mark.unit


def raw(*rows: list[str | None]) -> RawTable:
    return RawTable("spreadsheet KEY123", "Sales", [list(r) for r in rows])


def test_types_cleaning_and_korean_headers() -> None:
    table = build_table(
        raw(
            ["Order ID", "Amount", "Rate", "고객명", " Paid? "],
            ["1", "$1,234.50", "12.5%", "김철수", "TRUE"],
            ["2", "(₩3,000)", "5%", None, "FALSE"],
            [None, None, None, None, None],  # blank rows are skipped
            ["3", None, "", "박", "true"],
        ),
        TableRules(currency=["amount"], percent=["rate"]),
    )
    assert [(c.name, str(c.type)) for c in table.columns] == [
        ("order_id", "integer"),
        ("amount", "numeric(38,2)"),
        ("rate", "numeric(38,3)"),
        ("고객명", "text"),
        ("paid", "boolean"),
    ]
    assert table.rows[1] == ["2", "-3000.00", "0.050", None, "false"]
    assert table.source_row_numbers == [2, 3, 5]


def test_short_rows_are_padded_like_the_sheets_api_trims_them() -> None:
    table = build_table(raw(["a", "b", "c"], ["1"], ["2", "x", "y"]), TableRules())
    assert table.rows[0] == ["1", None, None]


def problem(*rows: list[str | None], rules: TableRules | None = None) -> str:
    with pytest.raises(SourceError) as err:
        build_table(raw(*rows), rules or TableRules())
    message = str(err.value)
    assert message.startswith("spreadsheet KEY123, tab 'Sales'")
    return message


def test_empty_tab() -> None:
    assert "tab is empty" in problem()


def test_header_only_tab() -> None:
    assert "header but no data rows" in problem(["a", "b"])
    assert build_table(raw(["a", "b"]), TableRules(allow_empty=True)).rows == []


def test_duplicate_headers_name_both_columns() -> None:
    assert "duplicate header 'amount' in columns B and D" in problem(
        ["id", "Amount", "x", "amount "], ["1", "2", "3", "4"]
    )


def test_blank_header_over_data() -> None:
    assert "row 1, column B: the header is blank" in problem(["id", None, "c"], ["1", "2", "3"])


def test_blank_trailing_headers_without_data_are_ignored() -> None:
    table = build_table(raw(["id", "v", None, ""], ["1", "2"]), TableRules())
    assert [c.name for c in table.columns] == ["id", "v"]
    assert "row 2, column C: holds a value but the column has no header" in problem(["id", "v", None], ["1", "2", "3"])


def test_ragged_row_names_row_and_column() -> None:
    assert "row 3, column D: holds a value but the column has no header" in problem(
        ["a", "b", "c"], ["1", "2", "3"], ["1", "2", "3", "surprise"]
    )


def test_value_not_fitting_declared_type_names_row_and_column_but_not_value() -> None:
    message = problem(
        ["id", "price"],
        ["1", "10.00"],
        ["2", "secret-looking-value"],
        rules=TableRules(types={"price": ColumnType.parse("numeric(10,2)")}),
    )
    assert "row 3, column 'price' (B): value does not fit type numeric(10,2)" in message
    assert "secret-looking-value" not in message


def test_several_problems_are_reported_together() -> None:
    rows = [["id"]] + [[f"x{i}"] for i in range(8)]
    message = problem(*rows, rules=TableRules(types={"id": ColumnType("integer")}))
    assert message.count("does not fit") == 5 and "(and 3 more)" in message


def test_keys_must_be_present_and_unique() -> None:
    rules = TableRules(keys=["id"])
    assert "row 3, column 'id' (A): key column is empty" in problem(["id", "v"], ["1", "a"], [None, "b"], rules=rules)
    assert "row 4, column 'id' (A): duplicate key (same as row 2)" in problem(
        ["id", "v"], ["1", "a"], ["2", "b"], ["1", "c"], rules=rules
    )


def test_config_naming_unknown_columns() -> None:
    assert "keys names 'nope'" in problem(["id"], ["1"], rules=TableRules(keys=["nope"]))
