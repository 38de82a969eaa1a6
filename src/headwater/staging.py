"""Staging typed tables in the lake as gzip CSV parts, and the manifest that publishes them."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from headwater.coltypes import ColumnType
from headwater.errors import LakeError
from headwater.identifiers import TableName
from headwater.lake import Lake
from headwater.table import Column, TypedTable

log = logging.getLogger(__name__)

MANIFEST_NAME = "_manifest.json"
MANIFEST_VERSION = 1
ROWS_PER_PART = 250_000


@dataclass
class Part:
    uri: str
    rows: int
    bytes: int
    sha256: str


@dataclass
class Manifest:
    """What one run staged for one table; written after every part, so its presence means complete."""

    target: str
    source: str
    columns: list[dict[str, str]]
    rows: int
    parts: list[Part]
    logical_date: str
    run_id: str
    format: str = "csv.gz"
    version: int = MANIFEST_VERSION
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def table(self) -> TableName:
        return TableName.parse(self.target)

    @property
    def typed_columns(self) -> list[Column]:
        return [Column(c["name"], ColumnType.parse(c["type"])) for c in self.columns]

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1)

    @classmethod
    def from_json(cls, text: str, uri: str) -> Manifest:
        try:
            data = json.loads(text)
            if data.get("version") != MANIFEST_VERSION:
                raise LakeError(f"{uri}: manifest version {data.get('version')!r} is not {MANIFEST_VERSION}")
            data["parts"] = [Part(**p) for p in data["parts"]]
            return cls(**data)
        except (ValueError, TypeError, KeyError) as exc:
            raise LakeError(f"{uri}: not a valid headwater manifest ({exc})") from None


def csv_line(values: Sequence[str | None]) -> str:
    """One CSV record: text always quoted (quotes doubled), NULL as an empty unquoted field."""
    return ",".join("" if v is None else '"' + v.replace('"', '""') + '"' for v in values) + "\n"


@dataclass
class RowStream:
    """An open result: its columns, and ``chunks(boundary)``: (CSV bytes of whole rows, row count) pairs.

    A chunk never straddles a multiple of ``boundary`` rows, so parts can rotate at exact row counts.
    """

    columns: list[Column]
    chunks: Callable[[int], Iterator[tuple[bytes, int]]]


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

    Anything an earlier attempt of the same run left under the prefix is removed first.
    """
    from headwater.export import ExportOptions, write_stream_to_lake  # the exporter builds on this module

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


def read_manifest(lake: Lake, uri: str) -> Manifest:
    return Manifest.from_json(lake.read_bytes(uri).decode("utf-8"), uri)
