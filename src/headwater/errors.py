"""Exceptions headwater raises: each names where the problem is (file, tab, row, column, table)."""

from __future__ import annotations


class HeadwaterError(Exception):
    """Base class for every error headwater raises on purpose.

    ``transient`` marks a failure that may heal on its own (network, throttling, 5xx, locks, a lost
    connection): only those are worth a retry. Everything else (bad input or config, a failing check)
    fails the same way every time, so a task ends at once.
    """

    def __init__(self, *args: object, transient: bool = False) -> None:
        super().__init__(*args)
        self.transient = transient


class ConfigError(HeadwaterError):
    """The pipelines file is missing, unreadable or invalid."""


class ConnectionConfigError(HeadwaterError):
    """An Airflow Connection (or a setting) is present but malformed; the message names it, never its secret."""


class SourceError(HeadwaterError):
    """A source (spreadsheet, workbook, database) could not be read or holds bad data."""


class LakeError(HeadwaterError):
    """The lake could not be read or written, or a manifest is missing or inconsistent."""


class WarehouseError(HeadwaterError):
    """The warehouse could not be reached, or a load or check failed."""


def connect_transient(exc: BaseException) -> bool:
    """Could a failed database connect succeed later? A refused login (SQLSTATE 28) or a missing database
    (3D) cannot; a network failure may."""
    state = str(getattr(exc, "sqlstate", None) or "")
    if state:
        return not state.startswith(("28", "3D"))
    text = str(exc)  # libpq reports a server's refusal during connect as text only
    return not any(marker in text for marker in _REFUSED_CONNECT)


_REFUSED_CONNECT = (
    "password authentication failed",
    "authentication failed",
    "no pg_hba.conf entry",
    "does not exist",  # database or role
    "permission denied for database",
)


def column_letter(index: int) -> str:
    """Spreadsheet column letter for a 0-based column index (0 -> A, 26 -> AA)."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters
