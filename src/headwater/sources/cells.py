"""Rendering spreadsheet cell values (numbers, booleans, dates) as the text the table builder reads."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal


def cell_text(value: object) -> str | None:
    """Text of one cell; None for an empty cell. Floats keep their shortest exact decimal form."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 2**53:
            return str(int(value))
        return format(Decimal(repr(value)), "f")
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    text = str(value)
    return text if text.strip() else None
