"""MySQL and MariaDB as a source: PyMySQL's unbuffered (server-side) cursor, rows written as CSV in Python.

Runs the configured query (one SELECT) in a READ ONLY transaction; PyMySQL sends one statement at a time.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from headwater.coltypes import ColumnType
from headwater.errors import SourceError
from headwater.identifiers import validate_identifier
from headwater.parts import RowStream
from headwater.sql_guard import check_single_select
from headwater.table import Column


class MySQLSource:
    """MySQL or MariaDB through PyMySQL's unbuffered (server-side) cursor."""

    def __init__(self, conninfo: Mapping[str, Any], fetch_rows: int = 10_000) -> None:
        self.conninfo = dict(conninfo)
        self.fetch_rows = fetch_rows
        self.label = f"mysql {self.conninfo.get('host', 'localhost')}/{self.conninfo.get('database', '')}"

    def quote(self, name: str) -> str:
        return "`" + validate_identifier(name) + "`"

    def _connect(self) -> Any:
        import pymysql

        try:
            return pymysql.connect(
                **{
                    "connect_timeout": 10,
                    "charset": "utf8mb4",
                    "init_command": "SET time_zone = '+00:00'",
                    **self.conninfo,
                }
            )
        except pymysql.Error as exc:
            raise SourceError(f"{self.label}: cannot connect: {exc}", transient=_mysql_transient(exc)) from None

    def scalar(self, query: str, params: Sequence[Any] = ()) -> Any:
        import pymysql

        query = check_single_select(query)
        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute("START TRANSACTION READ ONLY")
                cur.execute(query, tuple(params) or None)
                row = cur.fetchone()
        except pymysql.Error as exc:
            raise SourceError(f"{self.label}: query failed: {exc}", transient=_mysql_transient(exc)) from None
        finally:
            conn.close()
        return row[0] if row else None

    @contextlib.contextmanager
    def stream(self, query: str, params: Sequence[Any] = ()) -> Iterator[RowStream]:
        import pymysql
        import pymysql.cursors

        query = check_single_select(query)
        conn = self._connect()
        try:
            conn.query("START TRANSACTION READ ONLY")
            cur = conn.cursor(pymysql.cursors.SSCursor)
            cur.execute(query, tuple(params) or None)
            columns = [_mysql_column(d) for d in cur.description or []]
            yield RowStream(columns, lambda boundary: self._chunks(cur, boundary))
        except pymysql.Error as exc:
            raise SourceError(f"{self.label}: query failed: {exc}", transient=_mysql_transient(exc)) from None
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    def _chunks(self, cur: Any, boundary: int) -> Iterator[tuple[bytes, int]]:
        import pymysql

        total = 0
        try:
            while batch := cur.fetchmany(min(self.fetch_rows, boundary - total % boundary)):
                total += len(batch)
                yield "".join(_csv_record(row) for row in batch).encode("utf-8"), len(batch)
        except pymysql.Error as exc:
            raise SourceError(f"{self.label}: export failed: {exc}", transient=_mysql_transient(exc)) from None


def _mysql_column(desc: Sequence[Any]) -> Column:
    from pymysql.constants import FIELD_TYPE as T

    name, code, _, _, precision, scale = desc[:6]
    if code in (T.TINY, T.SHORT, T.LONG, T.LONGLONG, T.INT24, T.YEAR):
        return Column(name, ColumnType("integer"))
    if code in (T.DECIMAL, T.NEWDECIMAL):
        digits = int(precision or 38) - (1 if scale else 0) - 1  # display size counts sign and point
        return Column(name, ColumnType("numeric", max(1, min(38, digits)), int(scale or 0)))
    kinds = {T.FLOAT: "double", T.DOUBLE: "double", T.DATE: "date", T.DATETIME: "timestamp", T.TIMESTAMP: "timestamp"}
    return Column(name, ColumnType(kinds.get(code, "text")))


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, bytes | bytearray):
        text = value.decode("utf-8", errors="replace")
    elif isinstance(value, datetime):
        text = value.isoformat(sep=" ")
    elif isinstance(value, date | time | Decimal | timedelta):
        text = str(value)
    else:
        text = str(value)
    return '"' + text.replace('"', '""') + '"'


def _csv_record(row: Sequence[Any]) -> str:
    return ",".join(_csv_value(v) for v in row) + "\n"


# Lock wait timeout, deadlock, too many connections, server gone or shutting down, lost connection.
_MYSQL_TRANSIENT = {1040, 1053, 1205, 1213, 2002, 2003, 2006, 2013}


def _mysql_transient(exc: BaseException) -> bool:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
    return code in _MYSQL_TRANSIENT
