"""DuckDB, the embedded default warehouse: a single file, bulk-loaded with its own CSV reader.

DuckDB lets one process write a database file at a time, so every session here takes an exclusive
lock on a side file first: parallel load tasks queue instead of failing on DuckDB's own lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from headwater.coltypes import ColumnType
from headwater.errors import LakeError, WarehouseError
from headwater.identifiers import TableName, quote
from headwater.lake import Lake, sha256_file
from headwater.parts import Manifest
from headwater.warehouse.base import Warehouse

_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


log = logging.getLogger(__name__)
_LOCK_HOLDER = re.compile(r"Conflicting lock is held in (.+?) \(PID (\d+)\)")
_DEFAULT_LINE = 2_000_000  # DuckDB's default max_line_size


def _line_size(max_row_bytes: int) -> str:
    """read_csv options for rows longer than DuckDB's default line limit (the part says how long they get)."""
    if max_row_bytes < _DEFAULT_LINE:
        return ""
    line = max_row_bytes + 1024
    return f", max_line_size = {line}, buffer_size = {max(2 * line, 16 << 20)}"


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"
    row_order: str | None = "rowid"

    def __init__(self, path: str | Path, lock_timeout: float = 600.0) -> None:
        self.path = Path(path).expanduser().resolve()
        self.lock_timeout = lock_timeout

    def describe(self) -> str:
        return f"duckdb {self.path}"

    @property
    def _db_errors(self) -> tuple[type[BaseException], ...]:
        import duckdb

        return (duckdb.Error,)

    @contextlib.contextmanager
    def _file_lock(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a") as handle:
            deadline = time.monotonic() + self.lock_timeout
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() > deadline:
                        raise WarehouseError(
                            f"{self.describe()}: another writer held the lock for {self.lock_timeout:.0f}s",
                            transient=True,
                        ) from None
                    time.sleep(0.2)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._file_lock():
            yield

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        with self._file_lock(), super().session() as conn:
            yield conn

    def _connect(self) -> Any:
        return self._open(read_only=False)

    def _open(self, read_only: bool) -> Any:
        """Connect, waiting (up to ``lock_timeout``) while another program holds the file open for writing.

        headwater's own processes queue on the side lock above; this covers the DuckDB CLI, a notebook or
        a BI tool that has the file open.
        """
        import duckdb

        deadline = time.monotonic() + self.lock_timeout
        told = False
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=read_only)
            except duckdb.IOException as exc:
                holder = _LOCK_HOLDER.search(str(exc))
                if holder is None:
                    raise
                who = f"{holder.group(1)} (PID {holder.group(2)})"
                if time.monotonic() >= deadline:
                    raise WarehouseError(
                        f"{self.describe()}: held open by {who} for {self.lock_timeout:.0f}s; close it and rerun",
                        transient=True,
                    ) from None
                if not told:
                    log.warning("%s is held open by %s; waiting up to %.0fs", self.path, who, self.lock_timeout)
                    told = True
                time.sleep(0.5)

    def _begin(self, conn: Any) -> None:
        conn.execute("BEGIN TRANSACTION")

    def _run(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cursor = conn.execute(sql.replace("%s", "?"), list(params))
        return cursor.fetchall() if cursor.description else []

    def _query_columns(self, conn: Any, sql: str) -> list[str]:
        # conn.cursor() would open a second connection, outside this transaction
        return [d[0] for d in conn.execute(f"SELECT * FROM ({sql}) AS q LIMIT 0").description or []]

    @contextlib.contextmanager
    def _read_session(self) -> Iterator[Any]:
        """A read-only connection: the query can neither write nor run DDL, whatever it says."""
        import duckdb

        with self._file_lock():
            try:
                conn = self._open(read_only=True)
            except duckdb.Error as exc:
                raise WarehouseError(f"cannot open the {self.describe()} warehouse: {exc}") from None
            try:
                yield conn
            finally:
                conn.close()

    def _stream_cursor(self, conn: Any, sql: str) -> Any:
        import duckdb

        if len(duckdb.extract_statements(sql)) != 1:
            raise WarehouseError(f"{self.describe()}: the query must be exactly one statement")
        return conn.execute(sql)

    def type_sql(self, ctype: ColumnType) -> str:
        return {
            "integer": "BIGINT",
            "numeric": f"DECIMAL({ctype.precision},{10 if ctype.scale is None else ctype.scale})",
            "boolean": "BOOLEAN",
            "date": "DATE",
            "timestamp": "TIMESTAMP",
            "timestamptz": "TIMESTAMPTZ",
            "double": "DOUBLE",
            "text": "VARCHAR",
        }[ctype.kind]

    def _column_type(self, data_type: str, precision: Any, scale: Any) -> ColumnType | None:
        upper = data_type.upper()
        match = _DECIMAL.match(upper)
        if match:
            return ColumnType("numeric", int(match.group(1)), int(match.group(2)))
        return {
            "BIGINT": ColumnType("integer"),
            "INTEGER": ColumnType("integer"),
            "HUGEINT": None,
            "BOOLEAN": ColumnType("boolean"),
            "DATE": ColumnType("date"),
            "TIMESTAMP": ColumnType("timestamp"),
            "TIMESTAMP WITH TIME ZONE": ColumnType("timestamptz"),
            "DOUBLE": ColumnType("double"),
            "VARCHAR": ColumnType("text"),
        }.get(upper)

    def _bulk_copy(
        self, conn: Any, staging: TableName, manifest: Manifest, lake: Lake, types: dict[str, ColumnType]
    ) -> int:
        sql_types = {name: self.type_sql(ctype) for name, ctype in types.items()}
        # Names and types are validated identifiers and fixed keywords, so they are safe in a literal.
        columns = "{" + ", ".join(f"'{name}': '{sql}'" for name, sql in sql_types.items()) + "}"
        copied = 0
        for part in manifest.parts:
            with lake.local_copy(part.uri) as path:
                if sha256_file(path) != part.sha256:
                    raise LakeError(f"{part.uri}: checksum does not match the manifest; the part changed after staging")
                before = copied
                if manifest.format == "parquet":
                    names = ", ".join(quote(c.name) for c in manifest.typed_columns)
                    reader = f"SELECT {names} FROM read_parquet(%s)"
                else:
                    compression = {"csv.gz": "gzip", "csv.zst": "zstd", "csv": "none"}[manifest.format]
                    reader = (
                        f"SELECT * FROM read_csv(%s, header = true, auto_detect = false, columns = {columns},"
                        " delim = ',', quote = '\"', escape = '\"', nullstr = '', allow_quoted_nulls = false,"
                        f" compression = '{compression}'{_line_size(part.max_row_bytes)})"
                    )
                copied += int(self._run(conn, f"INSERT INTO {staging.sql} {reader}", (str(path),))[0][0])
                if copied - before != part.rows:
                    raise LakeError(f"{part.uri}: holds {copied - before} rows, the manifest says {part.rows}")
        return copied
