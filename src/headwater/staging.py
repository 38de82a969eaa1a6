"""Staging typed tables (validated sheet and workbook tabs) in the lake through the part writer."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from headwater.identifiers import TableName
from headwater.lake import Lake
from headwater.parts import ExportOptions, RowStream, csv_line, write_stream_to_lake
from headwater.table import TypedTable

ROWS_PER_PART = 250_000


def table_stream(table: TypedTable) -> RowStream:
    """A typed table as a RowStream (CSV chunks of whole rows), for the part writer."""

    def chunks(boundary: int) -> Iterator[tuple[bytes, int]]:
        step = min(boundary, 10_000)
        for start in range(0, len(table.rows), step):
            batch = table.rows[start : start + step]
            yield "".join(csv_line(row) for row in batch).encode("utf-8"), len(batch)

    return RowStream(table.columns, chunks)


def stage_table(
    lake: Lake,
    table: TypedTable,
    *,
    target: TableName,
    source: str,
    logical_date: datetime,
    run_id: str,
    rows_per_part: int = ROWS_PER_PART,
) -> str:
    """Write ``table`` as parts under its run prefix, then the manifest; return the manifest URI.

    What an earlier attempt of the same run published or left under the prefix is replaced.
    """
    result = write_stream_to_lake(
        table_stream(table),
        lake,
        lake.run_prefix(target, logical_date, run_id),
        label=source,
        options=ExportOptions(format="csv.gz", rows_per_part=rows_per_part, parts_in_flight=2),
        target=str(target),
        logical_date=logical_date.isoformat(),
        run_id=run_id,
    )
    return result.manifest_uri
