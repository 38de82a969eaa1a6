import re

import pytest

from headwater.identifiers import (
    MAX_IDENTIFIER_BYTES,
    IdentifierError,
    TableName,
    normalize_header,
    quote,
    validate_identifier,
)

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("bad", ['a"b', "a b", "1abc", "", "x;drop", "a-b", "가" * 22])
def test_bad_identifiers_are_refused(bad: str) -> None:
    with pytest.raises(IdentifierError):
        quote(bad)


def test_quote_and_table_names() -> None:
    assert quote("고객명") == '"고객명"'
    assert TableName.parse("raw.orders").sql == '"raw"."orders"'
    with pytest.raises(IdentifierError):
        TableName.parse("raw.orders.x")


@pytest.mark.parametrize(
    ("header", "name"),
    [("Order ID", "order_id"), (" Paid? ", "paid"), ("고객 명", "고객_명"), ("2024 Sales", "_2024_sales"), ("%", "")],
)
def test_normalize_header(header: str, name: str) -> None:
    assert normalize_header(header) == name


NOT_VALID = "is not a valid identifier (letters, digits and underscores, not starting with a digit)"


@pytest.mark.parametrize("good", ["a", "_", "order_id", "Order2", "고객명", "_2024", "a" * 63, "가" * 21])
def test_valid_identifiers_are_returned_unchanged(good: str) -> None:
    assert validate_identifier(good) == good
    assert quote(good) == f'"{good}"'


@pytest.mark.parametrize(
    ("name", "what", "message"),
    [
        ("a b", None, f"identifier 'a b' {NOT_VALID}"),
        ("1abc", "column", f"column '1abc' {NOT_VALID}"),
        ("", "key column", f"key column '' {NOT_VALID}"),
        (5, None, f"identifier 5 {NOT_VALID}"),
        ("a" * 64, None, f"identifier '{'a' * 64}' is longer than 63 bytes"),
        ("가" * 22, "column", f"column '{'가' * 22}' is longer than 63 bytes"),
    ],
)
def test_refusal_names_what_and_the_name(name: object, what: str | None, message: str) -> None:
    with pytest.raises(IdentifierError, match=f"^{re.escape(message)}$"):
        if what is None:
            validate_identifier(name)  # type: ignore[arg-type]
        else:
            validate_identifier(name, what)  # type: ignore[arg-type]


def test_length_limit_counts_utf8_bytes_up_to_63() -> None:
    assert MAX_IDENTIFIER_BYTES == 63
    assert validate_identifier("a" * 62 + "_") == "a" * 62 + "_"
    with pytest.raises(IdentifierError, match="is longer than 63 bytes$"):
        validate_identifier("가" * 21 + "a")  # 64 bytes in 22 characters


def test_quote_uses_the_generic_name_in_errors() -> None:
    with pytest.raises(IdentifierError, match=f"^identifier 'a-b' {re.escape(NOT_VALID)}$"):
        quote("a-b")


@pytest.mark.parametrize(
    ("schema", "table", "message"),
    [
        ("1raw", "orders", f"schema '1raw' {NOT_VALID}"),
        ("raw", "or ders", f"table 'or ders' {NOT_VALID}"),
        ("s" * 64, "orders", f"schema '{'s' * 64}' is longer than 63 bytes"),
        ("raw", "t" * 64, f"table '{'t' * 64}' is longer than 63 bytes"),
    ],
)
def test_table_name_errors_say_schema_or_table(schema: str, table: str, message: str) -> None:
    with pytest.raises(IdentifierError, match=f"^{re.escape(message)}$"):
        TableName(schema, table)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("raw", "table 'raw' must be written as schema.table"),
        ("raw.orders.x", "table 'raw.orders.x' must be written as schema.table"),
        ("", "table '' must be written as schema.table"),
        (".orders", f"schema '' {NOT_VALID}"),
        ("raw.", f"table '' {NOT_VALID}"),
    ],
)
def test_parse_needs_exactly_schema_dot_table(text: str, message: str) -> None:
    with pytest.raises(IdentifierError, match=f"^{re.escape(message)}$"):
        TableName.parse(text)


def test_table_name_text_forms() -> None:
    name = TableName.parse("raw.orders")
    assert (name.schema, name.table) == ("raw", "orders")
    assert str(name) == "raw.orders"
    assert repr(name) == "TableName('raw', 'orders')"
    assert name.sql == '"raw"."orders"'


def test_with_table_keeps_the_schema() -> None:
    staged = TableName("raw", "orders").with_table("_hw_stage_1")
    assert (staged.schema, staged.table) == ("raw", "_hw_stage_1")
    with pytest.raises(IdentifierError, match=f"^table 'x y' {re.escape(NOT_VALID)}$"):
        TableName("raw", "orders").with_table("x y")


@pytest.mark.parametrize(
    ("other", "equal"),
    [
        (TableName("raw", "orders"), True),
        (TableName("raw", "items"), False),
        (TableName("stage", "orders"), False),
        ("raw.orders", False),
        (("raw", "orders"), False),
    ],
)
def test_equality_is_by_schema_and_table(other: object, equal: bool) -> None:
    name = TableName("raw", "orders")
    assert (name == other) is equal
    assert (name != other) is not equal


def test_equal_names_hash_alike() -> None:
    assert hash(TableName("raw", "orders")) == hash(("raw", "orders"))
    assert {TableName("raw", "orders"), TableName("raw", "orders"), TableName("raw", "items")} == {
        TableName("raw", "items"),
        TableName("raw", "orders"),
    }


@pytest.mark.parametrize("name", ["abc\n", "raw\n", "id\r\n"])
def test_a_trailing_newline_is_not_part_of_an_identifier(name: str) -> None:
    with pytest.raises(IdentifierError, match="is not a valid identifier"):
        validate_identifier(name)
    with pytest.raises(IdentifierError, match="is not a valid identifier"):
        TableName.parse(f"raw.{name}")


def test_result_columns_are_identifiers_distinct_with_case_ignored() -> None:
    from headwater.errors import SourceError
    from headwater.identifiers import check_column_names

    check_column_names(["id", "이름", "straße", "strasse", "_x1"], "src")  # lower() differs: both kept
    for names, message in [
        (["id", "note", "ID"], "src: columns 'id' and 'ID' (column 3) have the same name to a warehouse; name the"),
        (["a", "a"], "src: columns 'a' and 'a' (column 2)"),
        (["ok", "count(*)"], "src: column 2 'count(*)' is not a valid identifier"),
        (["?column?"], "src: column 1 '?column?' is not a valid identifier"),
    ]:
        with pytest.raises(SourceError) as caught:
            check_column_names(names, "src")
        assert str(caught.value).startswith(message)
        assert str(caught.value).endswith("name the query's columns (expression AS name)")
