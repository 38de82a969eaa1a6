"""Small builders shared by the integration tests."""

from __future__ import annotations

from datetime import datetime

from headwater.coltypes import ColumnType
from headwater.identifiers import TableName
from headwater.lake import Lake
from headwater.parts import Manifest, read_manifest
from headwater.staging import stage_table
from headwater.table import Column, TypedTable

COLUMNS = (("id", "integer"), ("name", "text"), ("amount", "numeric(38,2)"))


def stage(
    lake: Lake,
    target: TableName,
    rows: list[list[str | None]],
    *,
    columns: tuple[tuple[str, str], ...] = COLUMNS,
    run_id: str = "run1",
    rows_per_part: int = 1000,
    when: datetime = datetime(2026, 1, 5),
) -> Manifest:
    table = TypedTable([Column(n, ColumnType.parse(t)) for n, t in columns], rows)
    uri = stage_table(
        lake, table, target=target, source="test", logical_date=when, run_id=run_id, rows_per_part=rows_per_part
    )
    return read_manifest(lake, uri)
