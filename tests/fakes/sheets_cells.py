"""Cell values in the fake Sheets server: what ``valueInputOption`` makes of a written value, and how
``valueRenderOption`` / ``dateTimeRenderOption`` render a stored one back (with the cell's number format).

Modelled as Sheets documents them: RAW stores values as given; USER_ENTERED parses text as if typed into the
UI (``=`` starts a formula, numbers, TRUE/FALSE and ISO dates become values, a leading ``'`` keeps text).
Formulas compute only number arithmetic (``=1+2*3``); anything else computes to ``#NAME?``.
"""

from __future__ import annotations

import ast
import datetime as dt
import operator
import re
from dataclasses import dataclass
from typing import Any

EPOCH = dt.datetime(1899, 12, 30)  # day 0 of Sheets' serial numbers
DATE = {"type": "DATE", "pattern": "yyyy-mm-dd"}
DATE_TIME = {"type": "DATE_TIME", "pattern": "yyyy-mm-dd hh:mm:ss"}
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_ISO = re.compile(r"(\d{4})-(\d\d)-(\d\d)(?:[ T](\d\d):(\d\d)(?::(\d\d)(\.\d+)?)?)?")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


@dataclass(frozen=True)
class Formula:
    text: str  # as entered, with the leading "="
    value: Any  # what it computes to


def entered(value: Any, option: str) -> tuple[Any, dict[str, str] | None]:
    """(the stored value, the number format the entry sets or None) for a value written with ``option``."""
    if option == "RAW" or not isinstance(value, str):
        return value, None
    if value.startswith("'"):
        return value[1:], None
    if value.startswith("="):
        return Formula(value, _compute(value[1:])), None
    if _NUMBER.fullmatch(value.strip()):
        number = float(value)
        return (int(number) if number.is_integer() and abs(number) < 2**53 else number), None
    if value.strip().upper() in ("TRUE", "FALSE"):
        return value.strip().upper() == "TRUE", None
    if m := _ISO.fullmatch(value.strip()):
        y, mo, d, h, mi, s, frac = m.groups()
        moment = dt.datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0))
        moment += dt.timedelta(seconds=float(frac or 0))
        return serial(moment), (DATE_TIME if h else DATE)
    return value, None


def rendered(value: Any, fmt: dict[str, str] | None, render: str, dates: str) -> Any:
    """A stored value as a read with these render options returns it."""
    if isinstance(value, Formula):
        if render == "FORMULA":
            return value.text
        value = value.value
    if isinstance(value, bool):
        return ("TRUE" if value else "FALSE") if render == "FORMATTED_VALUE" else value
    if isinstance(value, int | float):
        if fmt and fmt.get("type") in ("DATE", "DATE_TIME", "TIME"):
            if render == "FORMATTED_VALUE" or dates == "FORMATTED_STRING":
                return _date_text(value, fmt.get("pattern", ""))
            return value
        if render == "FORMATTED_VALUE":
            return str(int(value)) if float(value).is_integer() else format(value, ".15g")
        return int(value) if isinstance(value, float) and value.is_integer() else value
    return value


def serial(moment: dt.date) -> float:
    """Sheets' serial number of a date or datetime: days since 1899-12-30, the time as a fraction."""
    if not isinstance(moment, dt.datetime):
        moment = dt.datetime(moment.year, moment.month, moment.day)
    days = (moment - EPOCH) / dt.timedelta(days=1)
    return int(days) if days.is_integer() else days


def pasted(value: Any, paste_type: str) -> Any:
    """The value a copyPaste of this paste type puts down (formats are the caller's)."""
    return value.value if isinstance(value, Formula) and paste_type == "PASTE_VALUES" else value


def _date_text(number: float, pattern: str) -> str:
    moment = EPOCH + dt.timedelta(days=number)
    moment = (moment + dt.timedelta(microseconds=500_000)).replace(microsecond=0)  # shown to the second
    out = pattern.replace("yyyy", "%Y").replace("dd", "%d").replace("hh", "%H").replace("ss", "%S")
    out = out.replace("%H:mm", "%H:%M").replace("mm", "%m")
    return moment.strftime(out)


def _compute(expression: str) -> Any:
    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return float(_OPS[type(node.op)](walk(node.left), walk(node.right)))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        raise ValueError(expression)

    try:
        result = walk(ast.parse(expression, mode="eval").body)
    except (ValueError, SyntaxError, ZeroDivisionError):
        return "#NAME?"
    return int(result) if float(result).is_integer() else result
