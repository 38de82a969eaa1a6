"""Which rows an export takes: everything, a watermark window, or the run's data interval.

Watermarks live in the lake (``<lake>/_watermarks/<dag id>/<schema>.<table>.json``) and move only
after a publish succeeded, so a failed run is retried from the same mark and updated rows are never
skipped. The window is inclusive at the low end: rows sharing the last mark are exported again and
the upsert on keys makes that harmless.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from headwater.config import Incremental
from headwater.identifiers import TableName
from headwater.lake import Lake, read_json_object
from headwater.sources.sql import SqlSource
from headwater.sql_guard import check_single_select


@dataclass
class ExportWindow:
    query: str
    params: list[Any]
    high: str | None = None  # the watermark to store once this export is published
    description: str = "full"


def base_query(source: SqlSource, query: str | None, source_table: str | None) -> str:
    """The export's query: the configured SELECT (checked: one read-only statement), or the whole table."""
    if query is not None:
        return check_single_select(query)
    table = TableName.parse(source_table or "")
    return f"SELECT * FROM {source.quote(table.schema)}.{source.quote(table.table)}"


def plan_export(
    source: SqlSource,
    *,
    query: str | None = None,
    source_table: str | None = None,
    incremental: Incremental | None = None,
    watermark: str | None = None,
    interval: tuple[datetime, datetime] | None = None,
) -> ExportWindow:
    """The query and parameters for this run's export of ``query`` or ``source_table``."""
    base = base_query(source, query, source_table)
    inc = incremental
    if inc is None:
        return ExportWindow(base, [])
    col = source.quote(inc.column)
    wrapped = f"SELECT * FROM ({base}\n) AS headwater_src WHERE "
    if inc.mode == "interval":
        if interval is None:
            raise ValueError("interval mode needs the run's data interval")
        start, end = interval
        return ExportWindow(
            wrapped + f"{col} >= %s AND {col} < %s",
            [start, end],
            description=f"{inc.column} in [{start.isoformat()}, {end.isoformat()})",
        )
    high = source.scalar(f"SELECT max({col}) FROM ({base}\n) AS headwater_src")
    if high is None:
        return ExportWindow(wrapped + "1 = 0", [], None, "no rows yet")
    high_text = to_text(high)
    low = watermark or inc.initial
    if low is None:
        return ExportWindow(wrapped + f"{col} <= %s", [high], high_text, f"{inc.column} <= {high_text}")
    return ExportWindow(
        wrapped + f"{col} >= %s AND {col} <= %s", [low, high], high_text, f"{inc.column} in [{low}, {high_text}]"
    )


def to_text(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | Decimal | int | float):
        return str(value)
    return str(value)


def watermark_uri(lake: Lake, dag_id: str, target: TableName) -> str:
    return f"{lake.url.rstrip('/')}/_watermarks/{dag_id}/{target}.json"


def read_watermark(lake: Lake, uri: str) -> str | None:
    data = read_json_object(lake, uri)
    if data is None:
        return None
    value = data.get("value")
    return None if value is None else str(value)


def write_watermark(lake: Lake, uri: str, column: str, value: str, run_id: str) -> None:
    record = {"column": column, "value": value, "run_id": run_id, "updated_at": datetime.now(UTC).isoformat()}
    lake.write_bytes(uri, json.dumps(record).encode("utf-8"))
