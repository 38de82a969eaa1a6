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


WHERE = "spreadsheet KEY123, tab 'Sales'"
TEXT = ColumnType("text")


def column_of(cells: list[str | None], rules: TableRules) -> tuple[str, list[str | None]]:
    """Build a two-column table (id, v) and return v's settled type and cells."""
    rows = [["id", "v"]] + [[str(i), cell] for i, cell in enumerate(cells, start=1)]
    table = build_table(raw(*rows), rules)
    assert [c.name for c in table.columns] == ["id", "v"]
    return str(table.columns[1].type), [r[1] for r in table.rows]


def test_values_after_a_blank_cell_in_a_declared_column_are_still_checked() -> None:
    message = problem(
        ["id", "amount"],
        ["1", "5"],
        ["2", None],
        ["3", "oops-value"],
        rules=TableRules(types={"amount": ColumnType("integer")}),
    )
    assert message == f"{WHERE}: row 4, column 'amount' (B): value does not fit type integer (is not an integer)"
    assert "oops-value" not in message


def test_values_after_a_blank_cell_are_still_cast_to_canonical_text() -> None:
    assert column_of(["+1", None, "+5"], TableRules()) == ("integer", ["1", None, "5"])


@pytest.mark.parametrize(
    ("cells", "expected_type", "expected"),
    [
        (["12.5%"], "numeric(38,3)", ["0.125"]),  # divided by 100 once, exactly
        (["5%"], "numeric(38,2)", ["0.05"]),
        (["50 %", "100%"], "numeric(38,2)", ["0.50", "1.00"]),
        (["1,250%"], "numeric(38,2)", ["12.50"]),
        (["0.00001%"], "numeric(38,7)", ["0.0000001"]),  # tiny rates stay plain decimals, no exponent
        (["0.5", "50%"], "numeric(38,2)", ["0.50", "0.50"]),  # a cell without % is already a fraction
        (["12.5%", None, "5%"], "numeric(38,3)", ["0.125", None, "0.050"]),  # cleaning goes on after a blank
        (["n/a%"], "text", ["n/a%"]),  # not a number: left alone
    ],
)
def test_percent_cells_become_fractions_exactly(
    cells: list[str | None], expected_type: str, expected: list[str | None]
) -> None:
    assert column_of(cells, TableRules(percent=["v"])) == (expected_type, expected)


def test_percent_column_declared_numeric_keeps_the_exact_fraction() -> None:
    assert column_of(["12.5%", "5%"], TableRules(types={"v": ColumnType("numeric")}, percent=["v"])) == (
        "numeric(38,3)",
        ["0.125", "0.05"],
    )
    assert column_of(["12.5%", "5%"], TableRules(types={"v": ColumnType("numeric", 6, 4)}, percent=["v"])) == (
        "numeric(6,4)",
        ["0.1250", "0.0500"],
    )


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("$1,234.50", "1234.50"),
        ("€ 1 000", "1000"),
        ("£3", "3"),
        ("¥4", "4"),
        ("₩5,000", "5000"),
        ("(1,234)", "-1234"),
        ("+$1,234.50", "1234.50"),
        ("+$15", "15"),
        ("$", "$"),  # nothing but junk: left as it was
        ("(12", "(12"),  # unbalanced parentheses are not a negative amount
        ("12)", "12)"),
        ("12.5%", "12.5%"),  # a currency column does not read percentages
    ],
)
def test_currency_cleaning_text(cell: str, expected: str) -> None:
    assert column_of([cell], TableRules(types={"v": TEXT}, currency=["v"])) == ("text", [expected])


def test_currency_cleaning_goes_on_after_a_blank_cell() -> None:
    assert column_of(["$1", None, "$2,000"], TableRules(currency=["v"])) == ("integer", ["1", None, "2000"])


def test_currency_star_cleans_every_column() -> None:
    table = build_table(
        raw(["price", "fee", "note"], ["$1,000", "(₩30)", "50%"]),
        TableRules(currency=["*"]),
    )
    assert [(c.name, str(c.type)) for c in table.columns] == [
        ("price", "integer"),
        ("fee", "integer"),
        ("note", "text"),
    ]
    assert table.rows == [["1000", "-30", "50%"]]


def test_percent_star_converts_every_column_and_other_columns_are_untouched() -> None:
    star = build_table(raw(["a", "b"], ["50%", "5%"]), TableRules(percent=["*"]))
    assert star.rows == [["0.50", "0.05"]]
    named = build_table(raw(["a", "b"], ["50%", "5%"]), TableRules(percent=["a"]))
    assert named.rows == [["0.50", "5%"]]
    assert [str(c.type) for c in named.columns] == ["numeric(38,2)", "text"]


def test_declared_plain_numeric_takes_its_scale_from_the_data() -> None:
    rules = TableRules(types={"v": ColumnType.parse("numeric")})
    assert column_of(["1.5", None, "2.125", "3"], rules) == ("numeric(38,3)", ["1.5", None, "2.125", "3"])
    assert column_of(["7", "8"], rules) == ("numeric(38,0)", ["7", "8"])
    assert column_of([None, None], rules) == ("numeric(38,0)", [None, None])


def test_keys_that_are_present_and_unique_load() -> None:
    table = build_table(
        raw(["id", "part", "v"], ["1", "a", "x"], ["1", "b", "y"], ["2", "a", "z"]),
        TableRules(keys=["id", "part"]),
    )
    assert [r[:2] for r in table.rows] == [["1", "a"], ["1", "b"], ["2", "a"]]
    assert table.source_row_numbers == [2, 3, 4]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([["1", "a"], [None, "b"]], "row 3, column 'id' (A): key column is empty"),
        ([["1", "a"], ["2", None]], "row 3, column 'part' (B): key column is empty"),
        (
            [["1", "a"], ["2", "a"], ["1", "a"]],
            "row 4, column 'id' (A): duplicate key (same as row 2)",
        ),
    ],
)
def test_key_problems_name_row_and_column_exactly(rows: list[list[str | None]], message: str) -> None:
    assert problem(["id", "part"], *rows, rules=TableRules(keys=["id", "part"])) == f"{WHERE}: {message}"


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (TableRules(types={"nope": TEXT}), "columns names 'nope', not among the columns (id, v)"),
        (TableRules(keys=["a", "b"]), "keys names 'a', 'b', not among the columns (id, v)"),
        (TableRules(currency=["*", "x"]), "clean.currency names 'x', not among the columns (id, v)"),
        (TableRules(percent=["y"]), "clean.percent names 'y', not among the columns (id, v)"),
    ],
)
def test_config_naming_unknown_columns_says_which_setting(rules: TableRules, message: str) -> None:
    assert problem(["id", "v"], ["1", "2"], rules=rules) == f"{WHERE}: {message}"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ("%%%", "column '' is not a valid identifier (letters, digits and underscores, not starting with a digit)"),
        ("x" * 64, f"column '{'x' * 64}' is longer than 63 bytes"),
    ],
)
def test_header_without_a_usable_name(header: str, reason: str) -> None:
    message = problem(["id", header], ["1", "2"])
    assert message == f"{WHERE}: row 1, column B: header gives no usable name ({reason})"


NOT_AN_INTEGER = "value does not fit type integer (is not an integer)"


@pytest.mark.parametrize(
    ("bad_rows", "tail"),
    [
        (1, "row 2, column 'n' (A): value does not fit type integer (is not an integer)"),
        (
            2,
            "row 2, column 'n' (A): value does not fit type integer (is not an integer); "
            "row 3, column 'n' (A): value does not fit type integer (is not an integer)",
        ),
        (
            6,
            "; ".join(f"row {r}, column 'n' (A): {NOT_AN_INTEGER}" for r in range(2, 7)) + " (and 1 more)",
        ),
    ],
)
def test_problem_summary_is_exact(bad_rows: int, tail: str) -> None:
    rows = [["n"]] + [[f"bad{i}"] for i in range(bad_rows)]
    assert problem(*rows, rules=TableRules(types={"n": ColumnType("integer")})) == f"{WHERE}: {tail}"


@pytest.mark.parametrize("cell", ["NaN%", "Infinity%", "1_000%"])
def test_percent_cells_that_are_not_plain_numbers_stay_as_they_are(cell: str) -> None:
    table = build_table(raw(["rate"], ["5%"], [cell]), TableRules(percent=["rate"]))
    assert table.columns[0].type == ColumnType("text") and [r[0] for r in table.rows] == ["0.05", cell]


def test_a_declared_numeric_refuses_values_no_decimal_holds_exactly() -> None:
    rows = [["amount"], ["1" * 30], ["0.5"], ["0.0000000001"]]
    assert problem(*rows, rules=TableRules(types={"amount": ColumnType("numeric")})) == (
        "spreadsheet KEY123, tab 'Sales': row 2, column 'amount' (A): value does not fit a decimal column exactly"
        " (needs 30 digits before the"
        " decimal point, but with the column's 10 decimal places a decimal holds 28)"
    )
