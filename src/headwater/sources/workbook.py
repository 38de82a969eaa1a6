"""Local workbooks: one tab of a ``.xlsx`` file, or a ``.csv`` file, read into a RawTable."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

from headwater.errors import SourceError
from headwater.sources.cells import cell_text
from headwater.table import RawTable


def read_workbook(path: Path, tab: str | None, label: str | None = None) -> RawTable:
    """Read ``tab`` of an ``.xlsx`` workbook, or the whole ``.csv`` file (``tab`` is then just a label)."""
    label = label or str(path)
    if not path.is_file():
        raise SourceError(f"workbook {label}: file not found")
    if path.suffix.lower() == ".csv":
        return _read_csv(path, label, tab or path.stem)
    return _read_xlsx(path, label, tab or "")


def _read_csv(path: Path, label: str, tab: str) -> RawTable:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            rows = [[cell if cell.strip() else None for cell in row] for row in csv.reader(handle)]
    except UnicodeDecodeError as exc:
        raise SourceError(f"workbook {label}: not UTF-8 text (byte {exc.start})") from None
    except csv.Error as exc:
        raise SourceError(f"workbook {label}: malformed CSV: {exc}") from None
    return RawTable(source=f"workbook {label}", tab=tab, rows=rows)


def _read_xlsx(path: Path, label: str, tab: str) -> RawTable:
    from openpyxl import load_workbook

    try:
        book = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises zipfile, KeyError and its own errors for bad files
        raise SourceError(f"workbook {label}: cannot open as .xlsx ({type(exc).__name__})") from None
    try:
        if tab not in book.sheetnames:
            raise SourceError(f"workbook {label}: no tab named {tab!r} (tabs: {', '.join(book.sheetnames)})")
        rows: list[list[str | None]] = []
        for row in book[tab].iter_rows():
            rows.append([_xlsx_cell(cell) for cell in row])
        while rows and not any(c is not None for c in rows[-1]):
            rows.pop()
        for row in rows:
            while row and row[-1] is None:
                row.pop()
        return RawTable(source=f"workbook {label}", tab=tab, rows=rows)
    finally:
        book.close()


def _xlsx_cell(cell: object) -> str | None:
    value = getattr(cell, "value", None)
    if isinstance(value, datetime) and value.time() == datetime.min.time():
        number_format = str(getattr(cell, "number_format", "")).lower()
        if not any(mark in number_format for mark in ("h", "s")):
            return value.date().isoformat()
    return cell_text(value)
