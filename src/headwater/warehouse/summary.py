"""Summary tables built in one transaction: input checks, ``CREATE TABLE staging AS SELECT``, output checks,
then an atomic swap that keeps the table (and every view and grant on it) when its columns are unchanged.

Unlike the course's Build_Summary (``DROP TABLE ... CASCADE`` then rename), nothing that depends on the
summary is dropped: a change of columns with views on the table is refused with a message, and any
failure rolls back to the previous summary.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from headwater.checks import run_checks
from headwater.coltypes import ColumnType
from headwater.errors import WarehouseError
from headwater.identifiers import TableName, quote
from headwater.table import Column
from headwater.warehouse.shape import safe_db_message
from headwater.warehouse.staged import check_keys

if TYPE_CHECKING:
    from headwater.transform.config import Summary
    from headwater.warehouse.base import Warehouse

log = logging.getLogger(__name__)


@dataclass
class SummaryResult:
    table: str
    rows: int
    columns: int
    seconds: float
    rebuilt: bool  # created, or replaced because its columns changed (else its rows were swapped in place)


def build_summary(wh: Warehouse, summary: Summary, logical_date: datetime | None = None) -> SummaryResult:
    """Build ``summary`` as the module docstring says; raise WarehouseError naming the check or the failure."""
    started = time.monotonic()
    target = summary.target
    label = f"summary {target}"
    staging = target.with_table(f"_hw_stage_{uuid.uuid4().hex[:12]}")
    with wh.transaction(f"{label}: build failed, nothing published") as conn:
        for check in summary.input_checks:
            _input_check(wh, conn, label, check)
        wh._run(conn, f"CREATE SCHEMA IF NOT EXISTS {quote(target.schema)}")
        try:
            wh._run(conn, f"CREATE TABLE {staging.sql} AS {summary.select}")
        except wh._db_errors as exc:
            raise WarehouseError(f"{label}: its SELECT failed: {safe_db_message(exc)}; nothing was published") from None
        new = _raw_columns(wh, conn, staging)
        old = _raw_columns(wh, conn, target)
        if summary.keys:
            columns = [Column(name, ColumnType("text")) for name in new]  # check_keys reads only the names
            check_keys(wh, conn, target, staging, columns, summary.keys, label)
        if summary.checks:
            published = int(wh._run(conn, f"SELECT count(*) FROM {target.sql}")[0][0]) if old else None
            run_checks(
                wh, conn, target, staging, list(new), summary.checks, summary.keys, label, logical_date, published
            )
        rebuilt = _swap(wh, conn, label, target, staging, new, old)
        for grantee in summary.grants:
            _grant(wh, conn, target, grantee)
        rows = int(wh._run(conn, f"SELECT count(*) FROM {target.sql}")[0][0])
    result = SummaryResult(str(target), rows, len(new), round(time.monotonic() - started, 3), rebuilt)
    log.info("built %s: %d rows, %d columns, %.2fs", target, rows, len(new), result.seconds)
    return result


def _input_check(wh: Warehouse, conn: Any, label: str, check: Any) -> None:
    where = f"{label}: input check {check.label}"
    try:
        if check.table is not None:
            table = TableName.parse(check.table)
            exists = wh.existing_columns(conn, table) is not None
            count = int(wh._run(conn, f"SELECT count(*) FROM {table.sql}")[0][0]) if exists else 0
            if count < check.min_rows:
                found = f"{count} row(s)" if exists else "no such table"
                raise WarehouseError(f"{where} failed: {check.table} has {found}, fewer than {check.min_rows}")
            return
        count = int(wh._run(conn, f"SELECT count(*) FROM ({check.sql}) AS c")[0][0])
    except wh._db_errors as exc:
        raise WarehouseError(f"{where}: its query failed: {safe_db_message(exc)}") from None
    if count:
        raise WarehouseError(f"{where} failed: {count} offending row(s); nothing was built")


def _raw_columns(wh: Warehouse, conn: Any, table: TableName) -> dict[str, tuple[Any, ...]]:
    """Column name -> (data type, precision, scale) as the catalog reports it; empty if no such table."""
    rows = wh._run(
        conn,
        "SELECT column_name, data_type, numeric_precision, numeric_scale, character_maximum_length"
        " FROM information_schema.columns WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (table.schema, table.table),
    )
    return {str(r[0]): tuple(r[1:]) for r in rows}


def _swap(
    wh: Warehouse,
    conn: Any,
    label: str,
    target: TableName,
    staging: TableName,
    new: dict[str, tuple[Any, ...]],
    old: dict[str, tuple[Any, ...]],
) -> bool:
    if old and list(old.items()) == list(new.items()):  # same columns: swap the rows, keep the table and its views
        names = ", ".join(quote(n) for n in new)
        wh._run(conn, f"DELETE FROM {target.sql}")
        wh._run(conn, f"INSERT INTO {target.sql} ({names}) SELECT {names} FROM {staging.sql}")
        wh._run(conn, f"DROP TABLE {staging.sql}")
        return False
    if old:
        try:
            wh._run(conn, f"DROP TABLE {target.sql}")  # never CASCADE: a view on it makes this fail, loudly
        except wh._db_errors as exc:
            raise WarehouseError(
                f"{label}: its columns changed and other objects (views) depend on the table; change or drop "
                f"them first ({safe_db_message(exc)}); nothing was published"
            ) from None
    wh._run(conn, f"ALTER TABLE {staging.sql} RENAME TO {quote(target.table)}")
    return True


def _grant(wh: Warehouse, conn: Any, target: TableName, grantee: str) -> None:
    if wh.dialect == "duckdb":
        log.info("grants skipped: DuckDB has no users (%s for %s)", target, grantee)
        return
    try:
        wh._run(conn, f"GRANT SELECT ON {target.sql} TO {quote(grantee)}")
    except wh._db_errors as exc:
        raise WarehouseError(f"summary {target}: GRANT SELECT to {grantee} failed: {safe_db_message(exc)}") from None
