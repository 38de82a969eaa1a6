"""Turning a grid of cells (a tab, a CSV) into a typed table, with errors naming tab, row and column.

Nothing here logs or raises cell contents: messages carry positions and reasons only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from headwater.coltypes import PLAIN_NUMBER, CastError, ColumnType, cast, check_settled, infer, settle
from headwater.errors import SourceError, column_letter
from headwater.identifiers import IdentifierError, normalize_header, validate_identifier

MAX_REPORTED_ERRORS = 5
_CURRENCY_JUNK = re.compile(r"[$₩€£¥,\s]")


@dataclass
class RawTable:
    """Cells as read from a source: ``rows[0]`` is the header; cells are text or None (empty)."""

    source: str  # e.g. "spreadsheet 1AbC" or "examples/sample.xlsx"
    tab: str
    rows: list[list[str | None]]

    @property
    def where(self) -> str:
        return f"{self.source}, tab {self.tab!r}"


@dataclass
class Column:
    name: str
    type: ColumnType


@dataclass
class TypedTable:
    """Columns with settled types and rows of canonical text (None for NULL)."""

    columns: list[Column]
    rows: list[list[str | None]]
    source_row_numbers: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class TableRules:
    """What the config says about a table: declared types, cleaning, keys."""

    types: Mapping[str, ColumnType] = field(default_factory=dict)
    currency: Sequence[str] = ()  # column names, or ["*"] for all
    percent: Sequence[str] = ()
    keys: Sequence[str] = ()
    allow_empty: bool = False


class _Problems:
    """Collects the first few cell problems so one run reports several at once."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.items: list[str] = []
        self.count = 0

    def add(self, row: int, col: int, name: str, reason: str) -> None:
        self.count += 1
        if len(self.items) < MAX_REPORTED_ERRORS:
            label = f"column {name!r} ({column_letter(col)})" if name else f"column {column_letter(col)}"
            self.items.append(f"row {row}, {label}: {reason}")

    def raise_if_any(self) -> None:
        if self.items:
            more = f" (and {self.count - len(self.items)} more)" if self.count > len(self.items) else ""
            raise SourceError(f"{self.where}: " + "; ".join(self.items) + more)


def build_table(raw: RawTable, rules: TableRules) -> TypedTable:
    """Validate header and rows, clean, type and cast every cell; raise SourceError on any problem."""
    if not raw.rows or not any(_filled(c) for c in raw.rows[0]):
        raise SourceError(f"{raw.where}: the tab is empty (no header row)")
    names = _header(raw)
    width = len(names)
    problems = _Problems(raw.where)
    body: list[list[str | None]] = []
    numbers: list[int] = []
    for offset, row in enumerate(raw.rows[1:], start=2):
        if not any(_filled(c) for c in row):
            continue
        for col in range(width, len(row)):
            if _filled(row[col]):
                problems.add(offset, col, "", "holds a value but the column has no header")
                break
        cells = [_strip(c) for c in row[:width]] + [None] * (width - len(row))
        body.append(cells)
        numbers.append(offset)
    problems.raise_if_any()
    if not body and not rules.allow_empty:
        raise SourceError(f"{raw.where}: the tab has a header but no data rows (set allow_empty to load it)")
    _check_named(raw, names, rules)
    _clean(body, names, rules)
    columns: list[Column] = []
    for col, name in enumerate(names):
        declared = rules.types.get(name)
        values = [r[col] for r in body if r[col] is not None]
        ctype = declared or infer([v for v in values if v is not None])
        canonical: list[str] = []
        cast_rows: list[int] = []
        for r, number in zip(body, numbers, strict=True):
            value = r[col]
            if value is None:
                continue
            try:
                r[col] = cast(value, ctype)
            except CastError as exc:
                problems.add(number, col, name, f"value does not fit type {ctype} ({exc})")
                continue
            canonical.append(r[col] or "")
            cast_rows.append(number)
        settled = settle(ctype, canonical)
        if settled != ctype:  # a declared plain numeric: every value must fit the scale the data gave it
            for text, number in zip(canonical, cast_rows, strict=True):
                try:
                    check_settled(text, settled)
                except CastError as exc:
                    problems.add(number, col, name, f"value does not fit a decimal column exactly ({exc})")
                    break
        columns.append(Column(name, settled))
    problems.raise_if_any()
    _check_keys(names, body, numbers, rules.keys, problems)
    return TypedTable(columns, body, numbers)


def _filled(cell: str | None) -> bool:
    return cell is not None and cell.strip() != ""


def _strip(cell: str | None) -> str | None:
    if cell is None:
        return None
    text = cell.strip()
    return text or None


def _header(raw: RawTable) -> list[str]:
    """Column names from row 1; blank cells at its right end are unused columns (data there is caught later)."""
    header = list(raw.rows[0])
    while header and not _filled(header[-1]):
        header.pop()
    names: list[str] = []
    seen: dict[str, int] = {}
    for col, cell in enumerate(header):
        if not _filled(cell):
            raise SourceError(f"{raw.where}: row 1, column {column_letter(col)}: the header is blank")
        name = normalize_header(cell or "")
        try:
            validate_identifier(name, "column")
        except IdentifierError as exc:
            raise SourceError(
                f"{raw.where}: row 1, column {column_letter(col)}: header gives no usable name ({exc})"
            ) from None
        if name in seen:
            raise SourceError(
                f"{raw.where}: row 1: duplicate header {name!r} in columns "
                f"{column_letter(seen[name])} and {column_letter(col)}"
            )
        seen[name] = col
        names.append(name)
    return names


def _check_named(raw: RawTable, names: list[str], rules: TableRules) -> None:
    for what, listed in (
        ("columns", rules.types),
        ("keys", rules.keys),
        ("clean.currency", rules.currency),
        ("clean.percent", rules.percent),
    ):
        missing = [n for n in listed if n != "*" and n not in names]
        if missing:
            raise SourceError(
                f"{raw.where}: {what} names {', '.join(map(repr, missing))}, not among the columns ({', '.join(names)})"
            )


def _clean(body: list[list[str | None]], names: list[str], rules: TableRules) -> None:
    for col, name in enumerate(names):
        currency = "*" in rules.currency or name in rules.currency
        percent = "*" in rules.percent or name in rules.percent
        if not (currency or percent):
            continue
        for row in body:
            value = row[col]
            if value is None:
                continue
            if percent and value.endswith("%"):
                value = _percent(value)
            if currency:
                value = _currency(value)
            row[col] = value


def _currency(value: str) -> str:
    """``$1,234.50`` -> ``1234.50``; ``(1,234)`` -> ``-1234``; anything else unchanged but for the junk."""
    text = _CURRENCY_JUNK.sub("", value)
    if text.startswith("(") and text.endswith(")"):
        text = "-" + text[1:-1]
    if text.startswith("+"):
        text = text[1:]
    return text if text else value


def _percent(value: str) -> str:
    """``12.5%`` -> ``0.125`` exactly (Decimal), or the value unchanged if it is not a number."""
    number = value[:-1].strip().replace(",", "")
    if not PLAIN_NUMBER.fullmatch(number):  # Decimal() would also take "NaN", "Infinity" and "1_000"
        return value
    try:
        return format(Decimal(number).scaleb(-2), "f")
    except InvalidOperation:
        return value


def _check_keys(
    names: list[str],
    body: list[list[str | None]],
    numbers: list[int],
    keys: Sequence[str],
    problems: _Problems,
) -> None:
    if not keys:
        return
    idx = [names.index(k) for k in keys]
    first_seen: dict[tuple[str | None, ...], int] = {}
    for row, number in zip(body, numbers, strict=True):
        for i in idx:
            if row[i] is None:
                problems.add(number, i, names[i], "key column is empty")
        key = tuple(row[i] for i in idx)
        if key in first_seen:
            problems.add(number, idx[0], names[idx[0]], f"duplicate key (same as row {first_seen[key]})")
        else:
            first_seen[key] = number
    problems.raise_if_any()
