"""Staging typed tables in the lake as gzip CSV parts, and the manifest that publishes them."""

from __future__ import annotations

import gzip
import itertools
import json
import logging
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from headwater.coltypes import ColumnType
from headwater.errors import LakeError
from headwater.identifiers import TableName
from headwater.lake import Lake, sha256_file
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


def write_csv_parts(
    rows: Iterable[list[str | None]], header: list[str], folder: Path, rows_per_part: int = ROWS_PER_PART
) -> Iterator[tuple[Path, int]]:
    """Write rows into numbered gzip CSV files with a header; yield each finished file and its row count.

    Every text value is quoted and NULL is an unquoted empty field, so an empty string and NULL stay
    apart and no value can be read as COPY's end-of-data marker. No rows still gives one part.
    """
    remaining = iter(rows)
    index = 0
    while True:
        path = folder / f"part-{index:05d}.csv.gz"
        count = 0
        with gzip.open(path, "wt", encoding="utf-8", newline="", compresslevel=6) as handle:
            handle.write(csv_line(header))
            for row in itertools.islice(remaining, rows_per_part):
                handle.write(csv_line(row))
                count += 1
        if count == 0 and index > 0:
            path.unlink()
            return
        yield path, count
        if count < rows_per_part:
            return
        index += 1


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
    prefix = lake.run_prefix(target, logical_date, run_id)
    removed = lake.clear(prefix)
    if removed:
        log.info("removed %d objects left by an earlier attempt under %s", removed, prefix)
    parts: list[Part] = []
    header = [c.name for c in table.columns]
    with tempfile.TemporaryDirectory(prefix="headwater-stage-") as tmp:
        for path, rows in write_csv_parts(table.rows, header, Path(tmp), rows_per_part):
            uri = f"{prefix}/{path.name}"
            lake.write_file(uri, path)
            parts.append(Part(uri=uri, rows=rows, bytes=path.stat().st_size, sha256=sha256_file(path)))
            path.unlink()
            log.info("staged part %d (%d rows) at %s", len(parts), rows, uri)
    manifest = Manifest(
        target=str(target),
        source=source,
        columns=[{"name": c.name, "type": c.type.to_json()} for c in table.columns],
        rows=sum(p.rows for p in parts),
        parts=parts,
        logical_date=logical_date.isoformat(),
        run_id=run_id,
    )
    uri = f"{prefix}/{MANIFEST_NAME}"
    lake.write_bytes(uri, manifest.to_json().encode("utf-8"))
    return uri


def read_manifest(lake: Lake, uri: str) -> Manifest:
    return Manifest.from_json(lake.read_bytes(uri).decode("utf-8"), uri)
