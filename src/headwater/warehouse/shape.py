"""Pure decisions every warehouse shares: staging column types, which types fit, safe error messages.

No connection here, so unit tests (and mutation testing) reach every branch without a database.
"""

from __future__ import annotations

import re

from headwater.coltypes import ColumnType
from headwater.errors import WarehouseError
from headwater.identifiers import TableName
from headwater.table import Column

BATCH_COLUMN = "_hw_batch"  # appended tables: which logical date a row came from

_SAFE_DETAIL = ("CONTEXT:", "Error when converting column", "DETAIL:  Key (")
_TRAILING_VALUE = re.compile(r'(:\s*)"(?:[^"]|"")*"?\s*$')
_STRING_VALUE = re.compile(r"""(string )(?:"(?:[^"]|"")*"|'(?:[^']|'')*')""")
_KEY_VALUE = re.compile(r"(Key \([^)]*\)=)\(.*?\)( already exists| is not present| conflicts)")


def safe_db_message(exc: BaseException) -> str:
    """A database error's message without the cell values some drivers quote (CSV lines, bad inputs)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    kept = lines[:1] + [line for line in lines[1:] if line.startswith(_SAFE_DETAIL)]
    redacted = [
        _KEY_VALUE.sub(r"\1(<value>)\2", _STRING_VALUE.sub(r"\1<value>", _TRAILING_VALUE.sub(r"\1<value>", line)))
        for line in kept
    ]
    return " | ".join(redacted) or type(exc).__name__


def fits(source: ColumnType, target: ColumnType | None) -> bool:
    """Can values of ``source`` go into an existing column of ``target`` without loss?

    A numeric of open scale is let through here: the load checks its actual values (``staged.settle_numerics``).
    """
    if target is None or target.kind == "text" or source == target:
        return True
    if source.kind == target.kind == "numeric":
        return (source.scale or 0) <= (target.scale or 0)
    return (source.kind, target.kind) in {("integer", "numeric"), ("date", "timestamp")}


def plan_stage_types(
    target: TableName,
    method: str,
    columns: list[Column],
    existing: dict[str, ColumnType | None] | None,
) -> dict[str, ColumnType]:
    """Types for the staging table; for append/upsert into an existing table, check the shapes agree."""
    types = {c.name: c.type for c in columns}
    if existing is None or method == "replace":
        return types
    wanted = [c.name for c in columns] + ([BATCH_COLUMN] if method == "append" else [])
    extra = [n for n in wanted if n not in existing]
    lacking = [n for n in existing if n not in wanted]
    if extra or lacking:
        parts = []
        if extra:
            parts.append(f"the source has columns the table lacks: {', '.join(extra)}")
        if lacking:
            parts.append(f"the table has columns the source lacks: {', '.join(lacking)}")
        raise WarehouseError(f"{target}: cannot {method}: " + "; ".join(parts) + " (load with replace to rebuild it)")
    for column in columns:
        current = existing[column.name]
        if not fits(column.type, current):
            raise WarehouseError(
                f"{target}: cannot {method}: column {column.name!r} is {column.type} in the source but "
                f"{current} in the table; declare its type in the config or load with replace"
            )
        if current is not None:
            types[column.name] = current
    return types
