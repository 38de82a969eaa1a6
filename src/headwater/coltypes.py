"""Logical column types: parsing declared types, inferring them from text, and casting values.

Every value leaves here as canonical text (or None for NULL) that PostgreSQL, Redshift and DuckDB
all read with a plain CSV COPY, so loaders never guess.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation, localcontext

KINDS = ("integer", "numeric", "double", "boolean", "date", "timestamp", "timestamptz", "text")
MAX_PRECISION = 38
_INT64 = (-(2**63), 2**63 - 1)

_INTEGER = re.compile(r"^[+-]?(0|[1-9]\d*)$")
_DECIMAL = re.compile(r"^[+-]?(0|[1-9]\d*)?\.\d+$|^[+-]?(0|[1-9]\d*)\.?$")
_DATE = re.compile(r"^(\d{4})[-/.]\s?(\d{1,2})[-/.]\s?(\d{1,2})\.?$")
_TIMESTAMP = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{1,2}):(\d{2})(?::(\d{2})(\.\d{1,6})?)?\s*(Z|[+-]\d{2}:?\d{2})?$"
)
PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")  # what a cell may hold as a number
_NON_FINITE = {"nan", "inf", "infinity", "snan"}
_TYPE_SPEC = re.compile(r"^\s*(\w+)\s*(?:\(\s*(\d+)\s*,\s*(\d+)\s*\))?\s*$")
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}


class CastError(ValueError):
    """A value does not fit a column type (the message never carries the value itself)."""


@dataclass(frozen=True)
class ColumnType:
    """A logical type; ``precision``/``scale`` apply to numeric only."""

    kind: str
    precision: int = MAX_PRECISION
    scale: int | None = None  # numeric without a declared scale takes it from the data

    @classmethod
    def parse(cls, spec: str) -> ColumnType:
        """Parse ``integer``, ``numeric``, ``numeric(12,2)``, ``boolean``, ``date``, ``timestamp``, ``text``."""
        match = _TYPE_SPEC.match(spec.lower())
        aliases = {
            "int": "integer",
            "bigint": "integer",
            "decimal": "numeric",
            "bool": "boolean",
            "string": "text",
            "varchar": "text",
            "datetime": "timestamp",
            "float": "double",
        }
        kind = aliases.get(match.group(1), match.group(1)) if match else ""
        if kind not in KINDS:
            raise ValueError(f"unknown column type {spec!r}; use one of {', '.join(KINDS)} or numeric(p,s)")
        if match and match.group(2):
            if kind != "numeric":
                raise ValueError(f"only numeric takes (precision,scale), not {spec!r}")
            precision, scale = int(match.group(2)), int(match.group(3))
            if not 1 <= precision <= MAX_PRECISION or scale > precision:
                raise ValueError(f"numeric({precision},{scale}) is out of range (precision 1..38, scale <= precision)")
            return cls("numeric", precision, scale)
        return cls(kind)

    def __str__(self) -> str:
        if self.kind == "numeric" and self.scale is not None:
            return f"numeric({self.precision},{self.scale})"
        return self.kind

    def to_json(self) -> str:
        return str(self)


def cast(value: str, ctype: ColumnType) -> str:
    """Return the canonical text of ``value`` as ``ctype``; raise CastError if it does not fit."""
    kind = ctype.kind
    if kind == "text":
        return value
    if kind == "integer":
        return str(_to_int(value))
    if kind == "numeric":
        return _fixed(_to_decimal(value), ctype)
    if kind == "double":
        text = value.strip()
        if not PLAIN_NUMBER.fullmatch(text) and text.lower().lstrip("+-") not in _NON_FINITE:
            raise CastError("is not a number")  # float() would also take "1_000"
        return repr(float(text))
    if kind == "boolean":
        low = value.lower()
        if low in _TRUE:
            return "true"
        if low in _FALSE:
            return "false"
        raise CastError("is not a boolean (true/false)")
    if kind == "date":
        return _to_date(value).isoformat()
    if kind == "timestamp":
        return _to_timestamp(value).isoformat(sep=" ")
    if kind == "timestamptz":
        return _to_timestamp(value).isoformat(sep=" ") + "+00:00"
    raise CastError(f"unknown type {kind}")


def infer(values: list[str]) -> ColumnType:
    """The narrowest type that every non-null value fits; text when none (or no value) does."""
    if not values:
        return ColumnType("text")
    lowered = {v.lower() for v in values}
    if lowered <= {"true", "false"}:
        return ColumnType("boolean")
    if all(_INTEGER.match(v) and _INT64[0] <= int(v) <= _INT64[1] for v in values):
        return ColumnType("integer")
    if all(_DECIMAL.match(v) for v in values):
        scale = max(_scale(v) for v in values)
        digits = max(len(v.lstrip("+-").replace(".", "").lstrip("0")) for v in values)
        if max(digits, scale + 1) <= MAX_PRECISION:
            return ColumnType("numeric", MAX_PRECISION, scale)
    if all(_DATE.match(v) for v in values) and _all_cast(values, _to_date):
        return ColumnType("date")
    if all(_TIMESTAMP.match(v) or _DATE.match(v) for v in values) and _all_cast(values, _to_timestamp):
        return ColumnType("timestamp")
    return ColumnType("text")


def _all_cast(values: list[str], fn: object) -> bool:
    try:
        for v in values:
            fn(v)  # type: ignore[operator]
    except CastError:
        return False
    return True


def _scale(v: str) -> int:
    return len(v.split(".", 1)[1]) if "." in v else 0


def _to_int(value: str) -> int:
    text = value.strip()
    try:
        number = int(text)
    except ValueError:
        try:
            dec = Decimal(text)
        except InvalidOperation:
            raise CastError("is not an integer") from None
        if not dec.is_finite() or dec != dec.to_integral_value():
            raise CastError("is not an integer") from None
        number = int(dec)
    if not _INT64[0] <= number <= _INT64[1]:
        raise CastError("is outside the 64-bit integer range")
    return number


def _to_decimal(value: str) -> Decimal:
    text = value.strip()
    if not PLAIN_NUMBER.fullmatch(text):  # Decimal() also takes "1_000", "NaN", "Infinity"; a cell should not
        raise CastError("is not a finite number" if text.lower().lstrip("+-") in _NON_FINITE else "is not a number")
    try:
        dec = Decimal(text)
    except InvalidOperation:
        raise CastError("is not a number") from None
    if abs(dec.adjusted()) > 1000:
        raise CastError("is out of range")
    return dec


def _fixed(dec: Decimal, ctype: ColumnType) -> str:
    scale = ctype.scale
    if scale is not None:
        exact = _quantized(dec, scale)
        if exact != dec:
            raise CastError(f"has more than {scale} decimal places")
        dec = exact
    text = format(dec, "f")
    integer_digits = len(text.lstrip("-").split(".")[0].lstrip("0"))
    if integer_digits > ctype.precision - (scale or 0):
        raise CastError(f"has more than {ctype.precision - (scale or 0)} digits before the decimal point")
    return text


def _quantized(dec: Decimal, scale: int) -> Decimal:
    """``dec`` rounded to ``scale`` places, in a context wide enough for any value a cell can hold."""
    shape = dec.as_tuple()
    digits = len(shape.digits) + abs(int(shape.exponent)) + scale + 2
    with localcontext(prec=max(digits, 28)):
        return dec.quantize(Decimal(1).scaleb(-scale))


def settle(ctype: ColumnType, canonical: list[str]) -> ColumnType:
    """Fix an open numeric scale from the canonical values it was cast to (the widest scale among them).

    The result may not hold every value (over 38 digits in all): ``check_settled`` says which do not.
    """
    if ctype.kind != "numeric" or ctype.scale is not None:
        return ctype
    return ColumnType("numeric", ctype.precision, max((_scale(v) for v in canonical), default=0))


def check_settled(canonical: str, ctype: ColumnType) -> None:
    """Raise CastError if a canonical value does not fit the settled numeric type exactly."""
    scale = ctype.scale or 0
    if scale > ctype.precision:
        if _scale(canonical) > ctype.precision:
            raise CastError(f"has {_scale(canonical)} decimal places; a decimal holds at most {ctype.precision}")
        return
    digits = len(canonical.lstrip("-").split(".")[0].lstrip("0"))
    if digits > ctype.precision - scale:
        raise CastError(
            f"needs {digits} digits before the decimal point, but with the column's {scale} decimal places "
            f"a decimal holds {ctype.precision - scale}"
        )


def _to_date(value: str) -> date:
    match = _DATE.match(value.strip())
    if match:
        try:
            return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
        except ValueError:
            pass
    raise CastError("is not a date (YYYY-MM-DD)")


def _to_timestamp(value: str) -> datetime:
    text = value.strip()
    match = _TIMESTAMP.match(text)
    if not match:
        if _DATE.match(text):
            return datetime.combine(_to_date(text), datetime.min.time())
        raise CastError("is not a timestamp (YYYY-MM-DD HH:MM:SS)")
    year, month, day, hour, minute = (int(match.group(i)) for i in range(1, 6))
    second = int(match.group(6) or 0)
    micro = int((match.group(7) or ".0")[1:].ljust(6, "0"))
    try:
        stamp = datetime(year, month, day, hour, minute, second, micro)
    except ValueError:
        raise CastError("is not a valid timestamp") from None
    zone = match.group(8)
    if zone:
        stamp = datetime.fromisoformat(stamp.isoformat() + ("+00:00" if zone == "Z" else _colon(zone)))
        stamp = stamp.astimezone(UTC).replace(tzinfo=None)
    return stamp


def _colon(zone: str) -> str:
    return zone if ":" in zone else zone[:3] + ":" + zone[3:]
