from pathlib import Path

import pytest

from headwater.errors import SourceError
from headwater.sources.workbook import read_workbook
from headwater.table import TableRules, build_table

pytestmark = pytest.mark.unit

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_sample_orders_tab_types() -> None:
    raw = read_workbook(EXAMPLES / "sample_workbook.xlsx", "Orders")
    assert raw.rows[0][:3] == ["Order ID", "Ordered At", "Customer ID"]
    table = build_table(raw, TableRules(currency=["amount"], percent=["discount"]))
    types = {c.name: str(c.type) for c in table.columns}
    assert types["order_id"] == "integer"
    assert types["ordered_at"] == "timestamp"
    assert types["amount"] == "numeric(38,2)"
    assert types["paid"] == "boolean"
    assert len(table.rows) == 240


def test_sample_korean_headers_and_dates() -> None:
    table = build_table(read_workbook(EXAMPLES / "sample_workbook.xlsx", "Customers"), TableRules())
    types = {c.name: str(c.type) for c in table.columns}
    assert types["가입일"] == "date" and types["고객명"] == "text"


def test_percent_formatted_cells_are_fractions_and_leading_zeros_stay() -> None:
    table = build_table(read_workbook(EXAMPLES / "sample_workbook.xlsx", "Products"), TableRules())
    types = {c.name: str(c.type) for c in table.columns}
    assert types["sku"] == "text" and types["margin"].startswith("numeric")
    assert table.rows[0][0] == "00037"


def test_csv_workbook(tmp_path: Path) -> None:
    path = tmp_path / "rates.csv"
    path.write_text('\ufeffDay,Rate\n2026-01-01,"1,380.5"\n2026-01-02,\n', encoding="utf-8")
    raw = read_workbook(path, None)
    assert raw.tab == "rates" and raw.rows == [["Day", "Rate"], ["2026-01-01", "1,380.5"], ["2026-01-02", None]]


def test_missing_tab_and_file(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"no tab named 'Nope' \(tabs: Orders, Customers, Products\)"):
        read_workbook(EXAMPLES / "sample_workbook.xlsx", "Nope")
    with pytest.raises(SourceError, match="file not found"):
        read_workbook(tmp_path / "missing.xlsx", "T")
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a zip")
    with pytest.raises(SourceError, match="cannot open as .xlsx"):
        read_workbook(bad, "T")
