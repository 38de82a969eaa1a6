"""Every bad input fails loudly, names where, and leaves the published table as it was.

The flow is the DAG's (read the group, stage, load) with the real gspread client against the
loopback Sheets server, a local lake and a real PostgreSQL warehouse.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from headwater.config import SheetSource
from headwater.errors import HeadwaterError, WarehouseError
from headwater.identifiers import TableName
from headwater.lake import LocalLake
from headwater.pipeline import SourceGroup, load_table, read_group, stage_group
from headwater.sources.sheets import RetryPolicy, connect
from headwater.warehouse.postgres import PostgresWarehouse
from tests.conftest import free_port

pytestmark = pytest.mark.integration

KEY = "1BadInputSheetKey"
GOOD = [["ID", "Amount", "Day"], ["1", "10.50", "2026-01-01"], ["2", "3", "2026-01-02"]]


def flow(
    sheets: Any,
    info: dict[str, Any],
    lake: LocalLake,
    warehouse: PostgresWarehouse,
    target: TableName,
    tab: str = "Sales",
    run_id: str = "run",
    key: str = KEY,
) -> None:
    source = SheetSource(spreadsheet=key, tab=tab, table=str(target), columns={"amount": "numeric(10,2)"})
    group = SourceGroup("spreadsheet", key, (source,), "extract_x")
    client = connect(info, api_base=sheets.url, retry=RetryPolicy(attempts=2, first_wait=0.01, max_wait=0.01))
    when = datetime(2026, 1, 5)
    manifests = stage_group(group, read_group(group, lambda: client), lake, logical_date=when, run_id=run_id)
    load_table(warehouse, lake, manifests[source.task_stem], method="replace", logical_date=when)


@pytest.fixture
def published(
    sheets: Any, service_account_info: dict[str, Any], pg_conninfo: dict[str, Any], pg_schema: str, tmp_path: Path
) -> dict[str, Any]:
    lake = LocalLake(tmp_path / "lake")
    warehouse = PostgresWarehouse(pg_conninfo)
    target = TableName(pg_schema, "sales")
    sheets.add_spreadsheet(KEY, {"Sales": GOOD})
    flow(sheets, service_account_info, lake, warehouse, target, run_id="good")
    return {"lake": lake, "warehouse": warehouse, "target": target}


def rows(warehouse: PostgresWarehouse, target: TableName) -> list[tuple[Any, ...]]:
    with warehouse.session() as conn:
        return warehouse._run(conn, f"SELECT id, amount, day FROM {target.sql} ORDER BY id")


CASES = {
    "empty tab": ([], "tab 'Sales': the tab is empty"),
    "header-only tab": ([["ID", "Amount", "Day"]], "tab 'Sales': the tab has a header but no data rows"),
    "duplicate header": (
        [["ID", "Amount", "amount"], ["1", "2", "3"]],
        "row 1: duplicate header 'amount' in columns B and C",
    ),
    "blank header": ([["ID", "", "Day"], ["1", "2", "2026-01-01"]], "row 1, column B: the header is blank"),
    "ragged row": (
        [["ID", "Amount"], ["1", "2"], ["2", "3", "extra"]],
        "row 3, column C: holds a value but the column has no header",
    ),
    "value not fitting its type": (
        [["ID", "Amount"], ["1", "2"], ["2", "twelve"]],
        "row 3, column 'amount' (B): value does not fit type numeric(10,2)",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_tab_contents(
    case: str, published: dict[str, Any], sheets: Any, service_account_info: dict[str, Any]
) -> None:
    values, expected = CASES[case]
    before = rows(published["warehouse"], published["target"])
    sheets.add_spreadsheet(KEY, {"Sales": values})
    with pytest.raises(HeadwaterError) as err:
        flow(sheets, service_account_info, published["lake"], published["warehouse"], published["target"])
    assert str(err.value).startswith(f"spreadsheet {KEY}")
    assert expected in str(err.value)
    assert "twelve" not in str(err.value)
    assert rows(published["warehouse"], published["target"]) == before


@pytest.mark.parametrize(
    ("case", "expected"),
    [("missing tab", "no tab named 'Gone'"), ("not shared", "access denied (403)"), ("missing", "not found (404)")],
)
def test_unreadable_sources(
    case: str, expected: str, published: dict[str, Any], sheets: Any, service_account_info: dict[str, Any]
) -> None:
    before = rows(published["warehouse"], published["target"])
    tab, key = "Sales", KEY
    if case == "missing tab":
        tab = "Gone"
    elif case == "not shared":
        sheets.deny(KEY)
    else:
        key = "1NoSuchSpreadsheet"
    with pytest.raises(HeadwaterError, match=expected.replace("(", "\\(").replace(")", "\\)")):
        flow(
            sheets,
            service_account_info,
            published["lake"],
            published["warehouse"],
            published["target"],
            tab=tab,
            key=key,
        )
    assert rows(published["warehouse"], published["target"]) == before


def test_unreachable_warehouse(
    published: dict[str, Any], sheets: Any, service_account_info: dict[str, Any], pg_conninfo: dict[str, Any]
) -> None:
    before = rows(published["warehouse"], published["target"])
    sheets.add_spreadsheet(KEY, {"Sales": [*GOOD, ["3", "1", "2026-01-03"]]})
    down = PostgresWarehouse({**pg_conninfo, "port": free_port()})
    with pytest.raises(WarehouseError, match="cannot connect to the postgres"):
        flow(sheets, service_account_info, published["lake"], down, published["target"])
    assert rows(published["warehouse"], published["target"]) == before
