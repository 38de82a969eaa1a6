import pytest

from headwater.identifiers import IdentifierError, TableName, normalize_header, quote

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
