"""PostgreSQL: parts streamed from the lake through ``COPY ... FROM STDIN``, checksums checked on the way."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import zlib
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any

from headwater.coltypes import ColumnType
from headwater.errors import LakeError
from headwater.identifiers import TableName, quote
from headwater.lake import Lake
from headwater.parts import Manifest
from headwater.warehouse.base import Warehouse

_PG_TYPES = {
    "bigint": "integer",
    "integer": "integer",
    "smallint": "integer",
    "boolean": "boolean",
    "date": "date",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "double precision": "double",
    "text": "text",
    "character varying": "text",
    "character": "text",
}


class _HashingReader:
    """Reads through a binary stream while counting bytes and hashing them."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.digest.update(data)
        self.size += len(data)
        return data

    def finish(self) -> None:
        """Hash what was not read yet (after a failure half-way through the part)."""
        with contextlib.suppress(Exception):
            while self.read(1 << 20):
                pass


def _changed(uri: str) -> LakeError:
    return LakeError(f"{uri}: checksum does not match the manifest; the part changed after staging")


def _decompressed(reader: _HashingReader, fmt: str, uri: str) -> Any:
    """A readable stream of the part's CSV bytes."""
    if fmt == "csv.gz":
        return gzip.GzipFile(fileobj=reader, mode="rb")  # type: ignore[call-overload]
    if fmt == "csv.zst":
        import zstandard

        return zstandard.ZstdDecompressor().stream_reader(reader)  # type: ignore[arg-type]
    if fmt == "csv":
        return reader
    raise LakeError(f"{uri}: PostgreSQL loads CSV parts (csv, csv.gz, csv.zst), not {fmt}")


class PostgresWarehouse(Warehouse):
    dialect = "postgres"
    row_order: str | None = "ctid"
    unbounded_numeric = True

    def __init__(self, conninfo: Mapping[str, Any]) -> None:
        """``conninfo``: psycopg keyword arguments (host, port, dbname, user, password, sslmode...)."""
        self.conninfo = dict(conninfo)

    def describe(self) -> str:
        info = self.conninfo
        return f"{self.dialect} {info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"

    @property
    def _db_errors(self) -> tuple[type[BaseException], ...]:
        import psycopg

        return (psycopg.Error,)

    def _transient(self, exc: BaseException) -> bool:
        import psycopg

        return isinstance(exc, psycopg.OperationalError)

    def _connect(self) -> Any:
        import psycopg

        params = {"connect_timeout": 10, "application_name": "headwater", **self.conninfo}
        return psycopg.connect(**params)

    def _run(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with conn.cursor() as cur:
            cur.execute(sql, list(params) or None)
            return cur.fetchall() if cur.description else []

    @contextlib.contextmanager
    def _read_session(self) -> Iterator[Any]:
        with self.session() as conn:
            conn.read_only = True  # BEGIN READ ONLY; the named cursor below allows one statement only
            yield conn

    def _stream_cursor(self, conn: Any, sql: str) -> Any:
        cursor = conn.cursor(name="headwater_rows")  # server-side: rows arrive as they are fetched
        cursor.execute(sql)
        return cursor

    def type_sql(self, ctype: ColumnType) -> str:
        return {
            "integer": "BIGINT",
            "numeric": "NUMERIC" if ctype.scale is None else f"NUMERIC({ctype.precision},{ctype.scale})",
            "boolean": "BOOLEAN",
            "date": "DATE",
            "timestamp": "TIMESTAMP",
            "timestamptz": "TIMESTAMPTZ",
            "double": "DOUBLE PRECISION",
            "text": "TEXT",
        }[ctype.kind]

    def _column_type(self, data_type: str, precision: Any, scale: Any) -> ColumnType | None:
        if data_type == "numeric":
            return ColumnType("numeric", int(precision), int(scale or 0)) if precision else ColumnType("numeric")
        kind = _PG_TYPES.get(data_type)
        return ColumnType(kind) if kind else None

    def _copy_part(self, cur: Any, staging: TableName, names: str, reader: _HashingReader, fmt: str, uri: str) -> None:
        unzipped = _decompressed(reader, fmt, uri)
        with cur.copy(f"COPY {staging.sql} ({names}) FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            try:
                while chunk := unzipped.read(1 << 20):
                    copy.write(chunk)
            except (EOFError, OSError, zlib.error, ValueError) as exc:
                raise LakeError(f"{uri}: the part is damaged ({type(exc).__name__})") from None

    def _bulk_copy(
        self, conn: Any, staging: TableName, manifest: Manifest, lake: Lake, types: dict[str, ColumnType]
    ) -> int:
        names = ", ".join(quote(c["name"]) for c in manifest.columns)
        copied = 0
        with conn.cursor() as cur:
            for part in manifest.parts:
                with lake.open_read(part.uri) as raw:
                    reader = _HashingReader(raw)
                    try:
                        self._copy_part(cur, staging, names, reader, manifest.format, part.uri)
                    except BaseException:
                        reader.finish()  # a changed part explains the failure better than its symptom
                        if reader.digest.hexdigest() != part.sha256:
                            raise _changed(part.uri) from None
                        raise
                    if reader.digest.hexdigest() != part.sha256:
                        raise _changed(part.uri)
                if cur.rowcount != part.rows:
                    raise LakeError(f"{part.uri}: holds {cur.rowcount} rows, the manifest says {part.rows}")
                copied += cur.rowcount
        return copied
