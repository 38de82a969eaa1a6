"""The manifest: what one write published under a lake prefix, part by part with rows, bytes and checksum.

It is written after every part, so its presence means the write is complete. Reading one checks that it
is headwater's, that its format and column types are known, and that every part lies under the
manifest's own prefix, so a tampered manifest cannot make a loader read, or a rerun delete, elsewhere.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from headwater.coltypes import ColumnType
from headwater.errors import LakeError
from headwater.identifiers import IdentifierError, TableName, validate_identifier
from headwater.lake import Lake, check_relative_key
from headwater.table import Column

MANIFEST_NAME = "_manifest.json"
MANIFEST_VERSION = 1
FORMATS = ("csv.gz", "csv.zst", "csv", "parquet")


@dataclass
class Part:
    uri: str
    rows: int
    bytes: int
    sha256: str
    max_row_bytes: int = 0  # an upper bound on one row's CSV bytes (readers size their line buffers); 0 = unknown


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
        """Parse and check a manifest read from ``uri``; LakeError names the URI and what is wrong."""
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            if data.get("version") != MANIFEST_VERSION:
                raise LakeError(f"{uri}: manifest version {data.get('version')!r} is not {MANIFEST_VERSION}")
            data["parts"] = [Part(**p) for p in data["parts"]]
            manifest = cls(**data)
        except (ValueError, TypeError, KeyError) as exc:
            raise LakeError(f"{uri}: not a valid headwater manifest ({exc})") from None
        manifest.check(uri)
        return manifest

    def check(self, uri: str) -> None:
        """Format, columns and part locations are ones headwater writes and reads."""
        if self.format not in FORMATS:
            raise LakeError(f"{uri}: unknown part format {self.format!r}; headwater reads {', '.join(FORMATS)}")
        for index, column in enumerate(self.columns):
            try:
                validate_identifier(column["name"], "column")
                ColumnType.parse(column["type"])
            except (IdentifierError, ValueError, KeyError, TypeError) as exc:
                raise LakeError(f"{uri}: column {index + 1} of the manifest: {exc}") from None
        folder = uri.rsplit("/", 1)[0] + "/"
        for part in self.parts:
            if not isinstance(part.uri, str) or not part.uri.startswith(folder):
                raise LakeError(f"{uri}: part {part.uri!r} lies outside the manifest's own prefix {folder}")
            check_relative_key(part.uri[len(folder) :], part.uri)
        if self.rows != sum(p.rows for p in self.parts):
            raise LakeError(f"{uri}: lists {self.rows} rows but its parts add up to {sum(p.rows for p in self.parts)}")


def read_manifest(lake: Lake, uri: str) -> Manifest:
    data = lake.read_bytes(uri)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise LakeError(f"{uri}: not a headwater manifest (not UTF-8 text)") from None
    return Manifest.from_json(text, uri)
