"""Checks on a filled staging table before anything is published: keys, and numbers of open scale.

Both run inside the load's transaction, so a failure rolls back and the published table is untouched.
Row numbers count the staged rows from 1 in manifest order (where the dialect can tell the order).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from headwater.coltypes import MAX_PRECISION, ColumnType
from headwater.errors import WarehouseError
from headwater.identifiers import TableName, quote
from headwater.table import Column

if TYPE_CHECKING:
    from headwater.warehouse.base import Warehouse

NON_FINITE = ("NaN", "Infinity", "-Infinity")


def is_open_numeric(ctype: ColumnType) -> bool:
    """A numeric whose scale the source did not declare (PostgreSQL ``numeric``): staged as text, then settled."""
    return ctype.kind == "numeric" and ctype.scale is None


def first_row(wh: Warehouse, conn: Any, staging: TableName, condition: str) -> str:
    """`` (first at row N)`` for the first staged row matching ``condition``, when the dialect keeps order."""
    if wh.row_order is None:
        return ""
    rows = wh._run(
        conn,
        f"SELECT n FROM (SELECT row_number() OVER (ORDER BY {wh.row_order}) AS n, * FROM {staging.sql}) AS r"
        f" WHERE {condition} ORDER BY n LIMIT 1",
    )
    return f" (first at row {rows[0][0]})" if rows else ""


def check_keys(
    wh: Warehouse,
    conn: Any,
    target: TableName,
    staging: TableName,
    columns: list[Column],
    keys: Sequence[str],
    where: str,
) -> None:
    """Every key column exists, is never NULL, and the key never repeats in what is about to be published."""
    if not keys:
        return
    names = [c.name for c in columns]
    missing = [k for k in keys if k not in names]
    if missing:
        raise WarehouseError(f"{where} -> {target}: key column(s) {', '.join(missing)} not in the source's columns")
    quoted = [quote(k) for k in keys]
    null = " OR ".join(f"{k} IS NULL" for k in quoted)
    count = int(wh._run(conn, f"SELECT count(*) FROM {staging.sql} WHERE {null}")[0][0])
    if count:
        raise WarehouseError(
            f"{where} -> {target}: key ({', '.join(keys)}) is empty in {count} row(s)"
            f"{first_row(wh, conn, staging, null)}; nothing was published"
        )
    group = ", ".join(quoted)
    dup_sql = f"SELECT count(*) FROM (SELECT {group} FROM {staging.sql} GROUP BY {group} HAVING count(*) > 1) AS d"
    repeated = int(wh._run(conn, dup_sql)[0][0])
    if repeated:
        match = " AND ".join(f"d.{k} = r.{k}" for k in quoted)
        dup_keys = f"SELECT {group} FROM {staging.sql} GROUP BY {group} HAVING count(*) > 1"
        condition = f"EXISTS (SELECT 1 FROM ({dup_keys}) AS d WHERE {match})"
        raise WarehouseError(
            f"{where} -> {target}: key ({', '.join(keys)}) repeats: {repeated} key value(s) occur in more than one "
            f"row{first_row(wh, conn, staging, condition)}; nothing was published"
        )


def settle_numerics(
    wh: Warehouse,
    conn: Any,
    target: TableName,
    staging: TableName,
    columns: list[Column],
    existing: dict[str, ColumnType | None] | None,
    method: str,
    where: str,
) -> list[Column]:
    """Give each open numeric the exact type its staged text needs, or refuse; never round.

    The staging table holds those columns as text. A dialect with bounded decimals needs every value
    within 38 digits; an existing column (append, upsert) must hold the values without rounding.
    """
    settled: list[Column] = []
    for column in columns:
        if not is_open_numeric(column.type):
            settled.append(column)
            continue
        name = quote(column.name)
        finite = f"{name} IS NOT NULL AND {name} NOT IN ({', '.join(repr(v) for v in NON_FINITE)})"
        scale_sql = f"CASE WHEN strpos({name}, '.') > 0 THEN length({name}) - strpos({name}, '.') ELSE 0 END"
        digits_sql = f"length(ltrim(split_part(ltrim({name}, '-'), '.', 1), '0'))"
        stats = wh._run(
            conn,
            f"SELECT max(CASE WHEN {finite} THEN {scale_sql} ELSE 0 END),"
            f" max(CASE WHEN {finite} THEN {digits_sql} ELSE 0 END),"
            f" sum(CASE WHEN {name} IN ({', '.join(repr(v) for v in NON_FINITE)}) THEN 1 ELSE 0 END)"
            f" FROM {staging.sql}",
        )[0]
        scale, digits, non_finite = int(stats[0] or 0), int(stats[1] or 0), int(stats[2] or 0)
        current = existing.get(column.name) if existing is not None and method != "replace" else None
        label = f"{where} -> {target}: column {column.name!r}"
        if current is not None and current.kind == "text":
            settled.append(Column(column.name, current))
            continue
        if non_finite and not (wh.unbounded_numeric and (current is None or current.scale is None)):
            bad = f"{name} IN ({', '.join(repr(v) for v in NON_FINITE)})"
            raise WarehouseError(
                f"{label}: {non_finite} value(s) are NaN or Infinity, which a {wh.dialect} decimal cannot hold"
                f"{first_row(wh, conn, staging, bad)}; nothing was published"
            )
        wanted = _type_for(wh, scale, digits, current)
        if wanted is None:
            limit = current if current is not None else ColumnType("numeric", MAX_PRECISION, min(scale, MAX_PRECISION))
            allowed_scale = limit.scale or 0
            bad = f"{finite} AND ({scale_sql} > {allowed_scale} OR {digits_sql} > {limit.precision - allowed_scale})"
            raise WarehouseError(
                f"{label}: values need {digits} digits before and {scale} after the decimal point, more than "
                f"{limit} holds exactly{first_row(wh, conn, staging, bad)}; nothing was published (declare the column "
                "as text in a query cast, or load into PostgreSQL, whose numeric is unbounded)"
            )
        settled.append(Column(column.name, wanted))
    return settled


def _type_for(wh: Warehouse, scale: int, digits: int, current: ColumnType | None) -> ColumnType | None:
    """The exact type for values of at most ``digits`` + ``scale`` digits, or None if none fits."""
    if current is not None:
        if current.scale is None:  # PostgreSQL's unconstrained numeric
            return current
        return current if scale <= current.scale and digits <= current.precision - current.scale else None
    if wh.unbounded_numeric:
        return ColumnType("numeric")
    if scale <= MAX_PRECISION and digits + scale <= MAX_PRECISION:
        return ColumnType("numeric", MAX_PRECISION, scale)
    return None


def rebuild_staging(wh: Warehouse, conn: Any, staging: TableName, columns: list[Column]) -> TableName:
    """A new staging table with ``columns``' types, cast from the text-typed one (CTAS works on every dialect)."""
    rebuilt = staging.with_table(staging.table + "_t")
    select = ", ".join(f"CAST({quote(c.name)} AS {wh.type_sql(c.type)}) AS {quote(c.name)}" for c in columns)
    wh._run(conn, f"CREATE TABLE {rebuilt.sql} AS SELECT {select} FROM {staging.sql}")
    wh._run(conn, f"DROP TABLE {staging.sql}")
    return rebuilt
