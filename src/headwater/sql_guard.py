"""Config SQL stays one read-only statement: checked when the config is read, enforced again at run time.

The check here tokenizes (strings, quoted names, comments and dollar quotes are understood), so a
``;`` or ``--`` inside a literal is harmless and a trailing comment or semicolon is fine. It cannot see
everything (a data-modifying CTE looks like a SELECT), which is why every source and warehouse also runs
config SQL in a read-only transaction or connection that the query cannot end.
"""

from __future__ import annotations

from typing import Any

import sqlparse
from sqlparse import tokens

from headwater.errors import HeadwaterError

_READ_KEYWORDS = {"SELECT", "WITH", "VALUES", "TABLE", "SHOW", "EXPLAIN"}


class UnsafeQueryError(HeadwaterError, ValueError):
    """A query is not exactly one read-only statement."""


def check_single_select(sql: str, what: str = "query") -> str:
    """Return ``sql`` without a trailing ``;`` or comment if it is exactly one SELECT-like statement; else raise."""
    statements = [s for s in sqlparse.parse(sql) if _meaningful(s)]
    if not statements:
        raise UnsafeQueryError(f"{what} is empty")
    if len(statements) > 1:
        raise UnsafeQueryError(
            f"{what} holds {len(statements)} statements; give exactly one SELECT (no ';' between statements)"
        )
    statement: Any = statements[0]
    first = next((t for t in _flat(statement) if not (t.is_whitespace or t.ttype in tokens.Comment)), None)
    word = (first.normalized.upper() if first is not None else "").strip()
    if word != "(" and word not in _READ_KEYWORDS:
        raise UnsafeQueryError(f"{what} must be a SELECT (or WITH ... SELECT), not {word or '?'}")
    flat = list(_flat(statement))
    while flat and (flat[-1].is_whitespace or flat[-1].ttype in tokens.Comment or flat[-1].value == ";"):
        flat.pop()  # a trailing comment or ';' would swallow or break the wrappers headwater puts around it
    return "".join(t.value for t in flat).strip()


def _meaningful(statement: Any) -> bool:
    """A statement with something other than whitespace, comments and ';' in it."""
    return any(
        not (t.is_whitespace or t.ttype in tokens.Comment or t.ttype is tokens.Punctuation) for t in _flat(statement)
    )


def _flat(statement: Any) -> list[Any]:
    """The statement's leaf tokens (sqlparse has no type hints)."""
    return list(statement.flatten())
