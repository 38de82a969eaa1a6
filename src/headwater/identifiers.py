"""Validation and quoting of SQL identifiers; the only place identifiers become SQL text."""

from __future__ import annotations

import re

from headwater.errors import HeadwaterError, SourceError

# A letter (any script) or underscore, then letters, digits or underscores.
_IDENTIFIER = re.compile(r"[^\W\d]\w*")
MAX_IDENTIFIER_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1; the strictest of our dialects


class IdentifierError(HeadwaterError, ValueError):
    """A schema, table or column name is not a safe identifier."""


def validate_identifier(name: str, what: str = "identifier") -> str:
    """Return ``name`` if it is a plain identifier, else raise IdentifierError naming it."""
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name):  # fullmatch: "$" would allow a final "\n"
        raise IdentifierError(
            f"{what} {name!r} is not a valid identifier (letters, digits and underscores, not starting with a digit)"
        )
    if len(name.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        raise IdentifierError(f"{what} {name!r} is longer than {MAX_IDENTIFIER_BYTES} bytes")
    return name


def check_column_names(names: list[str], source: str) -> None:
    """A query's result columns, before a row is read: every name an identifier, and no two alike with case
    ignored (DuckDB and Redshift ignore it); SourceError naming ``source`` otherwise."""
    seen: dict[str, str] = {}
    for index, name in enumerate(names):
        try:
            validate_identifier(name, f"column {index + 1}")
        except IdentifierError as exc:
            raise SourceError(f"{source}: {exc}; {_ALIAS}") from None
        if (key := name.lower()) in seen:
            raise SourceError(
                f"{source}: columns {seen[key]!r} and {name!r} (column {index + 1}) have the same name to a "
                f"warehouse; {_ALIAS}"
            )
        seen[key] = name


_ALIAS = "name the query's columns (expression AS name)"


def quote(name: str) -> str:
    """Validate and double-quote one identifier."""
    return '"' + validate_identifier(name) + '"'


def normalize_header(name: str) -> str:
    """Turn a spreadsheet header into a column name: trimmed, lower case, runs of other characters as ``_``.

    Letters of every script are kept, so a Korean header stays Korean.
    """
    text = re.sub(r"[^\w]+", "_", name.strip().lower()).strip("_")
    if text and text[0].isdigit():
        text = "_" + text
    return text


class TableName:
    """A validated ``schema.table`` pair."""

    __slots__ = ("schema", "table")

    def __init__(self, schema: str, table: str) -> None:
        self.schema = validate_identifier(schema, "schema")
        self.table = validate_identifier(table, "table")

    @classmethod
    def parse(cls, text: str) -> TableName:
        parts = text.split(".")
        if len(parts) != 2:
            raise IdentifierError(f"table {text!r} must be written as schema.table")
        return cls(parts[0], parts[1])

    @property
    def sql(self) -> str:
        return f"{quote(self.schema)}.{quote(self.table)}"

    def with_table(self, table: str) -> TableName:
        return TableName(self.schema, table)

    def __str__(self) -> str:
        return f"{self.schema}.{self.table}"

    def __repr__(self) -> str:
        return f"TableName({self.schema!r}, {self.table!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TableName) and (self.schema, self.table) == (other.schema, other.table)

    def __hash__(self) -> int:
        return hash((self.schema, self.table))
