"""What every warehouse does the same way: staging, atomic replace, append by batch, upsert on keys.

A load runs in one transaction: create a staging table, bulk-copy the manifest's parts into it,
check its row count against the manifest, then publish. Any failure rolls back, so the published
table keeps its previous contents and readers never see it empty or half-loaded.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from headwater.checks import TableCheck, run_checks
from headwater.coltypes import ColumnType
from headwater.errors import HeadwaterError, WarehouseError, connect_transient
from headwater.identifiers import TableName, quote
from headwater.lake import Lake
from headwater.parts import Manifest
from headwater.sql_guard import check_single_select
from headwater.table import Column
from headwater.warehouse.shape import BATCH_COLUMN, plan_stage_types, safe_db_message
from headwater.warehouse.staged import check_keys, is_open_numeric, rebuild_staging, settle_numerics

log = logging.getLogger(__name__)


@dataclass
class LoadResult:
    table: str
    method: str
    rows: int  # rows this load published
    table_rows: int  # rows in the table afterwards
    columns: int
    seconds: float
    rebuilt: bool  # the table was created or replaced by the staging table


class Warehouse(ABC):
    """A SQL warehouse reached through a DB-API connection; subclasses give dialect details."""

    dialect = "sql"
    row_order: str | None = None  # an expression ordering a fresh staging table's rows as copied (for row numbers)
    unbounded_numeric = False  # does NUMERIC without precision hold any value exactly?

    # --- dialect hooks -------------------------------------------------------------------------
    @abstractmethod
    def _connect(self) -> Any: ...

    @abstractmethod
    def type_sql(self, ctype: ColumnType) -> str: ...

    @abstractmethod
    def _bulk_copy(
        self, conn: Any, staging: TableName, manifest: Manifest, lake: Lake, types: dict[str, ColumnType]
    ) -> int:
        """Copy every part of ``manifest`` into ``staging`` (whose column types are ``types``); return the rows."""

    @abstractmethod
    def _column_type(self, data_type: str, precision: Any, scale: Any) -> ColumnType | None: ...

    @abstractmethod
    def _run(self, conn: Any, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def _begin(self, conn: Any) -> None:  # noqa: B027 - a hook most dialects need not override
        """Start a transaction (drivers that open one implicitly do nothing)."""

    @property
    def _db_errors(self) -> tuple[type[BaseException], ...]:
        return ()

    def _transient(self, exc: BaseException) -> bool:
        """Could this database error heal by itself (lost connection, lock, deadlock)?"""
        return False

    def describe(self) -> str:
        return self.dialect

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Held while another program (dbt) writes through its own connection; a no-op where writers coexist."""
        yield

    # --- sessions ------------------------------------------------------------------------------
    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        try:
            conn = self._connect()
        except HeadwaterError:
            raise
        except Exception as exc:
            raise WarehouseError(
                f"cannot connect to the {self.describe()} warehouse: {exc}", transient=connect_transient(exc)
            ) from None
        try:
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def transaction(self, failure: str) -> Iterator[Any]:
        """A session in one transaction: committed when the block ends, rolled back on any exception.

        A database error becomes a WarehouseError ``"<failure>: <what the database said>"`` (transient when
        the connection was lost or a lock timed out); headwater's own errors pass through unchanged.
        """
        with self.session() as conn:
            self._begin(conn)
            try:
                yield conn
                conn.commit()
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    conn.rollback()
                if isinstance(exc, self._db_errors):
                    raise WarehouseError(f"{failure}: {safe_db_message(exc)}", transient=self._transient(exc)) from None
                raise

    # --- operations ----------------------------------------------------------------------------
    def load(
        self,
        manifest: Manifest,
        lake: Lake,
        method: str,
        keys: Sequence[str] = (),
        batch: str | None = None,
        checks: Sequence[TableCheck] = (),
        logical_date: datetime | None = None,
    ) -> LoadResult:
        """Publish the manifest's rows into its target table by ``method`` in one transaction.

        ``checks`` run on the staged rows before publishing; the first failure rolls everything back.
        """
        started = time.monotonic()
        target = manifest.table
        columns = manifest.typed_columns
        if method == "append" and not batch:
            raise WarehouseError(f"{target}: append needs a batch (the logical date)")
        staging = target.with_table(f"_hw_stage_{uuid.uuid4().hex[:12]}")
        with self.transaction(f"{self.describe()} {target}: load failed, nothing published") as conn:
            self._run(conn, f"CREATE SCHEMA IF NOT EXISTS {quote(target.schema)}")
            existing = self.existing_columns(conn, target)
            planned = plan_stage_types(target, method, columns, existing)
            open_names = {c.name for c in columns if is_open_numeric(c.type)}  # staged as text, then settled
            stage_types = {n: ColumnType("text") if n in open_names else t for n, t in planned.items()}
            defs = ", ".join(f"{quote(c.name)} {self.type_sql(stage_types[c.name])}" for c in columns)
            self._run(conn, f"CREATE TABLE {staging.sql} ({defs})")
            copied = self._bulk_copy(conn, staging, manifest, lake, stage_types)
            if copied != manifest.rows:
                raise WarehouseError(
                    f"{target}: copied {copied} rows but the manifest lists {manifest.rows}; nothing was published"
                )
            if open_names:
                plan = [Column(c.name, c.type if c.name in open_names else planned[c.name]) for c in columns]
                columns = settle_numerics(self, conn, target, staging, plan, existing, method, manifest.source)
                staging = rebuild_staging(self, conn, staging, columns)
            check_keys(self, conn, target, staging, columns, keys, manifest.source)  # on the typed values
            if checks:
                published = self._count(conn, target) if existing is not None else None
                names = [c.name for c in columns]
                run_checks(self, conn, target, staging, names, checks, keys, manifest.source, logical_date, published)
            rebuilt = self._publish(conn, target, staging, method, columns, keys, batch, existing)
            table_rows = self._count(conn, target)
        result = LoadResult(
            str(target), method, manifest.rows, table_rows, len(columns), round(time.monotonic() - started, 3), rebuilt
        )
        log.info(
            "loaded %s by %s: %d rows, %d columns, %.2fs", target, method, result.rows, result.columns, result.seconds
        )
        return result

    def row_count(self, target: TableName, batch: str | None = None) -> int:
        with self.session() as conn:
            try:
                return self._count(conn, target, batch)
            except self._db_errors as exc:
                raise WarehouseError(
                    f"{self.describe()} {target}: cannot count rows: {safe_db_message(exc)}",
                    transient=self._transient(exc),
                ) from None

    def columns(self, target: TableName) -> list[str] | None:
        with self.session() as conn:
            existing = self.existing_columns(conn, target)
            return None if existing is None else list(existing)

    @contextlib.contextmanager
    def query_rows(self, sql: str, batch: int = 5000) -> Iterator[tuple[list[str], Iterator[Sequence[Any]]]]:
        """Column names and a lazy row iterator for one read-only query, fetched in batches (not all at once).

        The query must be a single SELECT and runs where it cannot write: a read-only transaction or
        connection it cannot end.
        """
        sql = check_single_select(sql)
        with self._read_session() as conn:
            try:
                cursor = self._stream_cursor(conn, sql)
                names = [d[0] for d in cursor.description or []]

                def rows() -> Iterator[Sequence[Any]]:
                    while chunk := cursor.fetchmany(batch):
                        yield from chunk

                yield names, rows()
            except self._db_errors as exc:
                raise WarehouseError(
                    f"{self.describe()}: query failed: {safe_db_message(exc)}", transient=self._transient(exc)
                ) from None

    @contextlib.contextmanager
    def _read_session(self) -> Iterator[Any]:
        """A session whose transaction is read-only (dialects override how)."""
        with self.session() as conn:
            yield conn

    def _stream_cursor(self, conn: Any, sql: str) -> Any:
        cursor = conn.cursor()
        cursor.execute(sql)
        return cursor

    def existing_columns(self, conn: Any, target: TableName) -> dict[str, ColumnType | None] | None:
        """The table's columns in order with their logical types, or None if there is no such table."""
        rows = self._run(
            conn,
            "SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns"
            " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
            (target.schema, target.table),
        )
        if not rows:
            return None
        return {name: self._column_type(str(dtype), prec, scale) for name, dtype, prec, scale in rows}

    def _query_columns(self, conn: Any, sql: str) -> list[str]:
        """The column names a query returns (it runs with LIMIT 0)."""
        cursor = conn.cursor()
        cursor.execute(f"SELECT * FROM ({sql}) AS q LIMIT 0")
        return [d[0] for d in cursor.description or []]

    # --- internals -----------------------------------------------------------------------------
    def _count(self, conn: Any, target: TableName, batch: str | None = None) -> int:
        if batch is None:
            return int(self._run(conn, f"SELECT count(*) FROM {target.sql}")[0][0])
        sql = f"SELECT count(*) FROM {target.sql} WHERE {quote(BATCH_COLUMN)} = %s"
        return int(self._run(conn, sql, (batch,))[0][0])

    def _publish(
        self,
        conn: Any,
        target: TableName,
        staging: TableName,
        method: str,
        columns: list[Column],
        keys: Sequence[str],
        batch: str | None,
        existing: dict[str, ColumnType | None] | None,
    ) -> bool:
        names = ", ".join(quote(c.name) for c in columns)
        if method == "replace":
            same = (
                existing is not None
                and list(existing) == [c.name for c in columns]
                and all(existing[c.name] == c.type for c in columns)
            )
            if same:  # keep the table (and views, grants on it); swap its rows
                self._run(conn, f"DELETE FROM {target.sql}")
                self._run(conn, f"INSERT INTO {target.sql} ({names}) SELECT {names} FROM {staging.sql}")
                self._run(conn, f"DROP TABLE {staging.sql}")
                return False
            if existing is not None:
                self._run(conn, f"DROP TABLE {target.sql}")
            self._run(conn, f"ALTER TABLE {staging.sql} RENAME TO {quote(target.table)}")
            return True
        created = existing is None
        if created:
            defs = [f"{quote(c.name)} {self.type_sql(c.type)}" for c in columns]
            if method == "append":
                defs.append(f"{quote(BATCH_COLUMN)} {self.type_sql(ColumnType('text'))}")
            self._run(conn, f"CREATE TABLE {target.sql} ({', '.join(defs)})")
        if method == "append":
            batch_col = quote(BATCH_COLUMN)
            self._run(conn, f"DELETE FROM {target.sql} WHERE {batch_col} = %s", (batch,))
            self._run(
                conn, f"INSERT INTO {target.sql} ({names}, {batch_col}) SELECT {names}, %s FROM {staging.sql}", (batch,)
            )
        elif method == "upsert":
            match = " AND ".join(f"{target.sql}.{quote(k)} = {staging.sql}.{quote(k)}" for k in keys)
            self._run(conn, f"DELETE FROM {target.sql} USING {staging.sql} WHERE {match}")
            self._run(conn, f"INSERT INTO {target.sql} ({names}) SELECT {names} FROM {staging.sql}")
        else:
            raise WarehouseError(f"{target}: unknown load method {method!r}")
        self._run(conn, f"DROP TABLE {staging.sql}")
        return created
