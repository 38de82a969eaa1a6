"""MySQL and MariaDB as a source.

Exports stream through MySQL's C client (the C extension of mysql-connector-python) on an unbuffered
cursor that returns each value as the server's own text, never converted to a Python type: whole batches
become Arrow columns and Arrow's C++ CSV writer quotes them, so no Python code runs per value. Measured
(bench/export.py, several runs): 0.9-1.3x the time of ``mysql --quick | gzip -1`` at 10M and 30M rows, where
PyMySQL's pure-Python rows were 10x slower. The text is exactly what the server prints: decimals to the last
digit, fractional seconds, JSON as written. Binary columns become PostgreSQL's bytea text (``\\x`` and
lowercase hex); zero dates ('0000-00-00', or a zero month or day) have no value in other databases and are
refused naming the row and column. Small queries (watermarks, counts) use PyMySQL. Queries run in a READ ONLY
transaction, one statement at a time.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from headwater.coltypes import ColumnType
from headwater.errors import SourceError
from headwater.identifiers import validate_identifier
from headwater.lean_imports import without
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
        mysql = _connector()

        query = check_single_select(query)
        conn = self._connect_c()
        try:
            cur = conn.cursor(raw=True)
            cur.execute("START TRANSACTION READ ONLY")
            cur.execute(query, tuple(params) or None)
            fields = conn._cmysql.fetch_fields()  # name, type, charset, flags and decimals: what description omits
            lengths = self._declared_lengths(query, params) if any(f[8] in (0, 246) for f in fields) else []
            columns = [_field_column(f, lengths[i] if i < len(lengths) else None) for i, f in enumerate(fields)]
            yield RowStream(columns, lambda boundary: self._chunks(conn, columns, fields, boundary))
        except mysql.connector.Error as exc:
            raise SourceError(f"{self.label}: query failed: {_c_error(exc)}", transient=_c_transient(exc)) from None
        finally:
            with contextlib.suppress(Exception):
                conn._cmysql.close()  # closing without reading the rest: an interrupted export ends at once

    def _declared_lengths(self, query: str, params: Sequence[Any]) -> list[int | None]:
        """The result columns' declared lengths, which give a DECIMAL's precision: the C client reports only the
        longest value read so far (nothing yet on an unbuffered result). MariaDB and MySQL answer a LIMIT 0
        without running the query."""
        import pymysql

        conn = self._connect()
        try:
            with conn.cursor() as cur:
                cur.execute("START TRANSACTION READ ONLY")
                cur.execute(f"SELECT * FROM ({query}\n) AS headwater_q LIMIT 0", tuple(params) or None)
                return [d[3] for d in cur.description or []]
        except pymysql.Error as exc:
            raise SourceError(f"{self.label}: query failed: {exc}", transient=_mysql_transient(exc)) from None
        finally:
            conn.close()

    def _connect_c(self) -> Any:
        mysql = _connector()
        from mysql.connector.constants import ClientFlag

        info = dict(self.conninfo)
        timeout = info.pop("connect_timeout", 10)
        try:
            conn = mysql.connector.connect(
                **info,
                use_pure=False,
                charset="utf8mb4",
                connection_timeout=timeout,
                autocommit=False,
                # its default lets "SELECT 1; DROP TABLE t" run both statements: one statement, always
                client_flags=[-ClientFlag.MULTI_STATEMENTS, -ClientFlag.MULTI_RESULTS],
            )
            conn.cmd_query("SET time_zone = '+00:00'")
        except mysql.connector.Error as exc:
            raise SourceError(f"{self.label}: cannot connect: {_c_error(exc)}", transient=_c_transient(exc)) from None
        except ImportError as exc:  # the wheel's C extension does not load on this machine
            raise SourceError(f"{self.label}: MySQL's C client (mysql-connector-python) does not load: {exc}") from None
        return conn

    def _chunks(
        self, conn: Any, columns: list[Column], fields: list[Any], boundary: int
    ) -> Iterator[tuple[bytes, int]]:
        mysql = _connector()
        import pyarrow as pa
        import pyarrow.csv as pacsv

        binary = [f[6] == _BINARY_CHARSET and f[8] in _BYTE_TYPES for f in fields]
        dated = [f[8] in _DATE_TYPES for f in fields]
        shape = pa.struct([(f"c{i}", pa.binary()) for i in range(len(columns))])
        options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
        total = 0
        client = conn._cmysql  # the C client itself: its rows one C call each, with no Python loop around them
        client.raw(True)
        rows_left = iter(client.fetch_row, None)
        try:
            while batch := list(itertools.islice(rows_left, min(self.fetch_rows, boundary - total % boundary))):
                rows = pa.array(batch, type=shape)
                arrays = []
                for index, column in enumerate(columns):
                    values = rows.field(index)
                    if binary[index]:
                        arrays.append(
                            pa.array([None if v is None else "\\x" + v.hex() for v in values.to_pylist()], pa.string())
                        )
                        continue
                    text = _utf8(values, column.name, total, self.label)
                    if dated[index]:
                        _refuse_zero_dates(text, column.name, total, self.label)
                    arrays.append(text)
                sink = pa.BufferOutputStream()
                pacsv.write_csv(pa.RecordBatch.from_arrays(arrays, names=[c.name for c in columns]), sink, options)
                total += len(batch)
                yield sink.getvalue().to_pybytes(), len(batch)
        except mysql.connector.Error as exc:
            raise SourceError(f"{self.label}: export failed: {_c_error(exc)}", transient=_c_transient(exc)) from None


def _connector() -> Any:
    """The ``mysql`` package with its connector, imported without dnspython and OpenTelemetry: it loads both for
    SRV lookups and tracing that headwater does not use, OpenTelemetry from its own bundled copy when the
    system has none (installed or bundled: 15 MB and 0.07 s)."""
    with without("dns", "opentelemetry", "mysql.opentelemetry"):
        import mysql.connector

    return mysql


_UNSIGNED = 32  # a field flag
_BINARY_CHARSET = 63  # the "binary" character set: bytes, not text
_BYTE_TYPES = {15, 16, 249, 250, 251, 252, 253, 254, 255}  # VARCHAR, BIT, BLOBs, VAR_STRING, STRING, GEOMETRY
_DATE_TYPES = {7, 10, 12, 14}  # TIMESTAMP, DATE, DATETIME, NEWDATE
_ZERO_DATE = r"^\d{4}-(00-\d\d|\d\d-00)"


def _utf8(values: Any, column: str, offset: int, label: str) -> Any:
    """The column's bytes as UTF-8 text (checked in C++); SourceError naming the row otherwise."""
    import pyarrow as pa

    text = values.view(pa.string())  # the same buffers, read as text; validate checks the UTF-8 in C++
    try:
        text.validate(full=True)
        return text
    except pa.ArrowInvalid:
        for index, value in enumerate(values.to_pylist()):
            try:
                value is None or value.decode("utf-8")
            except UnicodeDecodeError:
                raise SourceError(f"{label}: row {offset + index + 1}, column {column!r}: not UTF-8 text") from None
        raise


def _refuse_zero_dates(text: Any, column: str, offset: int, label: str) -> None:
    import pyarrow.compute as pc

    zero = pc.match_substring_regex(text, _ZERO_DATE)
    if pc.any(zero).as_py():
        index = pc.index(zero, True).as_py()
        raise SourceError(
            f"{label}: row {offset + index + 1}, column {column!r}: the zero date {text[index].as_py()!r} has no "
            f"value in other databases; select NULLIF({column}, ...) or a real date instead"
        )


def _field_column(field: Sequence[Any], length: int | None = None) -> Column:
    """A column from the C client's field metadata (catalog, db, table, org_table, name, org_name, charset,
    max_length, type, flags, decimals) and the column's declared length (a DECIMAL's precision comes from it)."""
    name, charset, code, flags, decimals = field[4], field[6], field[8], field[9], field[10]
    if isinstance(name, bytes):
        name = name.decode("utf-8")
    if code in (246, 0):  # NEWDECIMAL, DECIMAL: the display length counts the sign and the point
        digits = int(length or 40) - (1 if decimals else 0) - 1
        return Column(name, ColumnType("numeric", max(1, min(38, digits)), int(decimals or 0)))
    if code == 8 and flags & _UNSIGNED:  # BIGINT UNSIGNED reaches 2**64 - 1, past every warehouse's bigint
        return Column(name, ColumnType("numeric", 20, 0))
    if charset == _BINARY_CHARSET and code in _BYTE_TYPES:
        return Column(name, ColumnType("text"))
    return _mysql_column((name, code, None, None, None, None))


def _c_error(exc: BaseException) -> str:
    errno, msg = getattr(exc, "errno", None), getattr(exc, "msg", None) or str(exc)
    return f'({errno}, "{msg}")' if errno else str(msg)


def _c_transient(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) in _MYSQL_TRANSIENT


def _mysql_column(desc: Sequence[Any]) -> Column:
    """A column from a DB-API description: (name, MySQL field type code, ..., precision, scale)."""
    name, code, _, _, precision, scale = desc[:6]
    if code in _INTEGER_TYPES:
        return Column(name, ColumnType("integer"))
    if code in (0, 246):  # DECIMAL, NEWDECIMAL
        digits = int(precision or 38) - (1 if scale else 0) - 1  # display size counts sign and point
        return Column(name, ColumnType("numeric", max(1, min(38, digits)), int(scale or 0)))
    return Column(name, ColumnType(_OTHER_KINDS.get(code, "text")))


# MySQL's wire protocol field type codes (the same in every client library).
_INTEGER_TYPES = {1, 2, 3, 8, 9, 13}  # TINY, SHORT, LONG, LONGLONG, INT24, YEAR
_OTHER_KINDS = {4: "double", 5: "double", 10: "date", 12: "timestamp", 7: "timestamp"}  # FLOAT, DOUBLE, DATE...


# Lock wait timeout, deadlock, too many connections, server gone or shutting down, lost connection.
_MYSQL_TRANSIENT = {1040, 1053, 1205, 1213, 2002, 2003, 2006, 2013}


def _mysql_transient(exc: BaseException) -> bool:
    code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else 0
    return code in _MYSQL_TRANSIENT
