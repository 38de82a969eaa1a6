"""Python values as Google Sheets cells for a RAW write: what each type becomes, the number format its column
needs to show it, and the bytes a row adds to a request body.

Dates and times become Sheets serial numbers (days since 1899-12-30) and their column gets a date format, so
Sheets shows, sorts and computes with them as dates; aware datetimes are written in UTC. Text is always RAW: a
value starting with ``=`` stays text, never a formula. NaN becomes an empty cell and infinities the text
``Infinity`` / ``-Infinity`` whatever the numeric type; binary and other objects are refused.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import numbers
import uuid
from decimal import Decimal

MAX_CELL_CHARS = 50_000
_EXACT_INT = 2**53  # Sheets stores numbers as doubles: larger ints are written as text to stay exact
_EPOCH = dt.datetime(1899, 12, 30)
_DAY = dt.timedelta(days=1)
NUMBER_FORMATS = {
    "DATE": {"type": "DATE", "pattern": "yyyy-mm-dd"},
    "DATE_TIME": {"type": "DATE_TIME", "pattern": "yyyy-mm-dd hh:mm:ss"},
    "TIME": {"type": "TIME", "pattern": "hh:mm:ss"},
}


class CellError(ValueError):
    """A value that has no cell form; the message says why, the caller names the row and column."""


def cell_value(value: object) -> tuple[object, str | None]:
    """(the cell for a RAW write, the kind of date format its column needs, or None)."""
    if value is None:
        return "", None
    if isinstance(value, str):
        if len(value) > MAX_CELL_CHARS:
            raise CellError(f"text of {len(value)} characters; a cell holds at most {MAX_CELL_CHARS}")
        return value, None
    if isinstance(value, bool):
        return value, None
    if isinstance(value, numbers.Integral):
        number = int(value)
        return (number if abs(number) <= _EXACT_INT else str(number)), None
    if isinstance(value, Decimal):
        if not value.is_finite():
            return _not_finite(value.is_nan(), value.is_signed()), None
        # A number when a double holds it exactly enough to print the same (sums, prices); text otherwise.
        as_float = float(value)
        return (as_float if Decimal(repr(as_float)) == value else format(value, "f")), None
    if isinstance(value, numbers.Real):
        real = float(value)
        return (real if math.isfinite(real) else _not_finite(math.isnan(real), real < 0)), None
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return _days(value - _EPOCH), "DATE_TIME"
    if isinstance(value, dt.date):
        return (value - _EPOCH.date()).days, "DATE"
    if isinstance(value, dt.time):
        return _days(dt.datetime.combine(_EPOCH.date(), value.replace(tzinfo=None)) - _EPOCH), "TIME"
    if isinstance(value, uuid.UUID):
        return str(value), None
    if isinstance(value, dict | list):  # JSON columns (psycopg returns jsonb as dicts and lists)
        return cell_value(json.dumps(value, ensure_ascii=False, default=str))
    if type(value).__module__ == "numpy" and hasattr(value, "item"):  # numpy scalars: bool_, str_, datetime64[us]
        return cell_value(value.item())
    if isinstance(value, bytes | bytearray | memoryview):
        raise CellError("a binary value has no cell form; select it as text, e.g. encode(col, 'hex') or hex(col)")
    raise CellError(f"a {type(value).__name__} value has no cell form; cast it to text or a number in the query")


def column_format(kinds: set[str]) -> dict[str, str]:
    """The number format for a column holding these kinds of dates (a mix shows date and time)."""
    return NUMBER_FORMATS[next(iter(kinds)) if len(kinds) == 1 else "DATE_TIME"]


def row_bytes(cells: list[object]) -> int:
    """Bytes the row adds to a JSON request body as gspread sends it (a non-ASCII character: a 6-byte \\u escape)."""
    return len(json.dumps(cells, ensure_ascii=True)) + 1


def _days(delta: dt.timedelta) -> float | int:
    days = delta / _DAY
    return int(days) if days.is_integer() else days


def _not_finite(nan: bool, negative: bool) -> str:
    return "" if nan else ("-Infinity" if negative else "Infinity")
