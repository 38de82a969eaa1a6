"""Replace a Google Sheet tab with a query result, atomically (the course's ``SQL_to_Sheet``, done right).

Rows stream into a hidden staging tab in chunks. One ``spreadsheets:batchUpdate`` then resizes the target
tab to the result, pastes the staged values over it and deletes the staging tab. Sheets applies a batch
all-or-nothing, so a failure at any point leaves the target with its previous contents; the target keeps its
sheetId, so formulas elsewhere that reference it survive. Cell values are never logged nor put in errors.
429/5xx retries are the client's (``headwater.sources.sheets.connect``), not this module's.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import numbers
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from decimal import Decimal
from itertools import islice
from typing import Any

import gspread
import requests
from google.auth.exceptions import GoogleAuthError
from gspread.exceptions import APIError

from headwater.errors import HeadwaterError, column_letter
from headwater.sources.sheets import account_email, quote_tab

log = logging.getLogger(__name__)

MAX_CELLS = 10_000_000  # per spreadsheet, every tab's grid counted
MAX_COLUMNS = 18_278  # column ZZZ
MAX_CELL_CHARS = 50_000
_EXACT_INT = 2**53  # Sheets stores numbers as doubles: larger ints are written as text to stay exact


class SheetWriteError(HeadwaterError):
    """A tab could not be written; the target tab keeps its previous contents."""


@dataclass(frozen=True)
class SheetWriteResult:
    """What a write did: data rows (header excluded), columns, wall time, API calls (HTTP retries not counted)."""

    spreadsheet: str
    tab: str
    rows: int
    columns: int
    seconds: float
    requests: int


def cell_value(value: object) -> object:
    """A value for a RAW write: None -> "", bool and numbers as is (Decimal too when a double holds it exactly),
    date/datetime/time -> ISO text."""
    if value is None:
        return ""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, numbers.Integral):
        number = int(value)
        return number if abs(number) <= _EXACT_INT else str(number)
    if isinstance(value, Decimal):
        # A number when a double holds it exactly enough to print the same (sums, prices); text otherwise.
        as_float = float(value)
        if value.is_finite() and Decimal(repr(as_float)) == value:
            return as_float
        return format(value, "f")  # plain notation: Decimal("1E+3") -> "1000"
    if isinstance(value, numbers.Real):
        real = float(value)
        return real if math.isfinite(real) else str(real)  # JSON has no NaN/Infinity
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def write_rows_to_sheet(
    client: gspread.Client,
    spreadsheet_key: str,
    tab: str,
    header: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    chunk_rows: int = 5000,
    progress: Callable[[int], None] | None = None,
) -> SheetWriteResult:
    """Replace the contents of ``tab`` with ``header`` + ``rows``; on failure the tab keeps its old contents.

    ``rows`` is consumed lazily, ``chunk_rows`` rows per write request (the header goes with the first);
    ``progress`` is called with the number of rows written so far after each chunk.
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    return _Writer(client, spreadsheet_key, tab, header).run(rows, chunk_rows, progress)


class _Writer:
    """One write: the API calls (counted, failures turned into SheetWriteError) and the cell budget."""

    def __init__(self, client: gspread.Client, key: str, tab: str, header: Sequence[str]) -> None:
        self.client, self.http, self.key, self.tab = client, client.http_client, key, tab
        self.header = [str(h) for h in header]
        self.label = f"spreadsheet {key}"
        self.requests = 0
        self.started = time.monotonic()
        # Set from the metadata: cells of every tab, the target's cells, the minimum grid of the result.
        self.used = self.old = 0
        self.min_rows, self.cols = 1, len(self.header)

    def error(self, what: str) -> SheetWriteError:
        return SheetWriteError(f"{self.label}, tab {self.tab!r}: {what}")

    def call(self, what: str, fn: Callable[..., Any], *args: Any, has_values: bool = False) -> Any:
        self.requests += 1
        try:
            return fn(*args)
        except (APIError, GoogleAuthError, requests.RequestException) as exc:
            error = self.error(f"{what} failed: {_reason(exc, self.client, has_values)}")
            error.transient = _transient(exc)
            raise error from None

    def batch(self, what: str, *reqs: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = self.call(what, self.http.batch_update, self.key, {"requests": list(reqs)})
        return answer

    def run(
        self, rows: Iterable[Sequence[object]], chunk_rows: int, progress: Callable[[int], None] | None
    ) -> SheetWriteResult:
        width = len(self.header)
        if width > MAX_COLUMNS:
            raise self.error(f"result has {width} columns; a sheet holds at most {MAX_COLUMNS}")
        if width == 0:
            raise self.error("the header has no columns")
        target = self.open()
        known = 1 + len(rows) if isinstance(rows, Sized) else 0  # a known length sizes the staging tab at once
        if known:
            self.fits(known, exact=True)
        it = iter(rows)
        first = self.chunk(it, chunk_rows, 1)
        grid_rows = max(known, 1 + len(first), self.min_rows)
        self.fits(grid_rows)
        title = f"_hw_stage_{self.tab[:80]}_{secrets.token_hex(4)}"
        props = {"title": title, "hidden": True, "gridProperties": {"rowCount": grid_rows, "columnCount": self.cols}}
        reply = self.batch("adding the staging tab", {"addSheet": {"properties": props}})
        stage = int(reply["replies"][0]["addSheet"]["properties"]["sheetId"])
        log.info("%s tab %r: writing through hidden staging tab %r", self.label, self.tab, title)
        chunk: list[list[object]] = [list(self.header), *first]
        start, written = 1, 0  # start: the sheet row the chunk goes to
        try:
            while chunk:
                end = start + len(chunk) - 1
                if end > grid_rows:  # streaming: grow the staging grid by exactly this chunk
                    self.fits(end)
                    grid_rows = end
                    self.batch("growing the staging tab", _resize(stage, grid_rows, self.cols))
                body = {
                    "valueInputOption": "RAW",
                    "data": [{"range": f"{quote_tab(title)}!A{start}", "majorDimension": "ROWS", "values": chunk}],
                }
                what = f"writing sheet rows {start}-{end} to the staging tab"
                self.call(what, self.http.values_batch_update, self.key, body, has_values=True)
                start, written = end + 1, end - 1
                log.info("%s tab %r: %d rows written to the staging tab", self.label, self.tab, written)
                if progress is not None:
                    progress(written)
                chunk = self.chunk(it, chunk_rows, start - 1)
            size = max(1 + written, self.min_rows)  # the staging grid may be larger if len(rows) overstated
            whole = {"startRowIndex": 0, "endRowIndex": size, "startColumnIndex": 0, "endColumnIndex": self.cols}
            self.batch(
                "publishing the staging tab",
                _resize(target, size, self.cols),
                {
                    "copyPaste": {
                        "source": {"sheetId": stage, **whole},
                        "destination": {"sheetId": target, **whole},
                        "pasteType": "PASTE_VALUES",
                    }
                },
                {"deleteSheet": {"sheetId": stage}},
            )
        except BaseException:
            self.drop(stage, title)
            raise
        seconds = time.monotonic() - self.started
        what = "%s tab %r: replaced with %d rows x %d columns in %.1f s (%d requests)"
        log.info(what, self.label, self.tab, written, width, seconds, self.requests)
        return SheetWriteResult(self.key, self.tab, written, width, seconds, self.requests)

    def open(self) -> int:
        """Read the metadata (one request): the target's sheetId, its frozen panes and the cells in use."""
        params = {"fields": "properties.title,sheets.properties"}
        meta = self.call("reading the spreadsheet metadata", self.http.fetch_sheet_metadata, self.key, params)
        self.label += f" ({meta.get('properties', {}).get('title', '')})"
        sheets = [s.get("properties", {}) for s in meta.get("sheets", [])]
        target = next((p for p in sheets if p.get("title") == self.tab), None)
        if target is None:
            names = ", ".join(str(p.get("title", "")) for p in sheets)
            raise SheetWriteError(f"{self.label}: no tab named {self.tab!r} (tabs: {names})")
        grid = target.get("gridProperties", {})
        self.used = sum(_cells(p) for p in sheets)
        self.old = _cells(target)
        # Sheets refuses to shrink a tab to nothing but its frozen rows/columns: keep one more of each.
        self.min_rows = int(grid.get("frozenRowCount", 0)) + 1
        self.cols = max(self.cols, int(grid.get("frozenColumnCount", 0)) + 1)
        return int(target.get("sheetId", 0))

    def fits(self, sheet_rows: int, exact: bool = False) -> None:
        """Fail unless the peak fits in MAX_CELLS: while publishing, the staging tab and the resized target coexist."""
        staged = max(sheet_rows, self.min_rows) * self.cols
        peak = self.used + staged + max(0, staged - self.old)
        if peak > MAX_CELLS:
            many = "" if exact else "at least "
            raise self.error(
                f"result of {many}{sheet_rows - 1} rows x {self.cols} columns does not fit: replacing the tab needs "
                f"{peak} cells at its peak (the staging tab included, {self.used} in use now) and a spreadsheet "
                f"holds at most {MAX_CELLS} cells"
            )

    def chunk(self, rows: Iterator[Sequence[object]], size: int, first: int) -> list[list[object]]:
        """The next ``size`` rows as RAW cells; ``first`` is the 1-based result row number of the first one."""
        out, width = [], len(self.header)
        for n, row in enumerate(islice(rows, size), start=first):
            if len(row) > width:
                raise self.error(f"result row {n} has {len(row)} values but the header has {width} columns")
            cells = [cell_value(v) for v in row]
            for j, v in enumerate(cells):
                if isinstance(v, str) and len(v) > MAX_CELL_CHARS:
                    raise self.error(
                        f"result row {n}, column {column_letter(j)} ({self.header[j]}): text of {len(v)} "
                        f"characters; a cell holds at most {MAX_CELL_CHARS}"
                    )
            out.append(cells)
        return out

    def drop(self, sheet_id: int, title: str) -> None:
        """Delete the staging tab, best effort: the caller sees the original error, a failure here is logged."""
        self.requests += 1
        try:
            self.http.batch_update(self.key, {"requests": [{"deleteSheet": {"sheetId": sheet_id}}]})
        except Exception as exc:
            why = _reason(exc, self.client, False) if isinstance(exc, APIError) else type(exc).__name__
            log.warning("%s: could not delete staging tab %r (%s); delete it by hand", self.label, title, why)


def _resize(sheet_id: int, rows: int, cols: int) -> dict[str, Any]:
    props = {"sheetId": sheet_id, "gridProperties": {"rowCount": rows, "columnCount": cols}}
    fields = "gridProperties.rowCount,gridProperties.columnCount"
    return {"updateSheetProperties": {"properties": props, "fields": fields}}


def _cells(props: dict[str, Any]) -> int:
    grid = props.get("gridProperties", {})
    return int(grid.get("rowCount", 0)) * int(grid.get("columnCount", 0))


def _transient(exc: BaseException) -> bool:
    """429, 5xx and network failures (after the client's own retries) may heal; 403/404 will not."""
    if isinstance(exc, APIError):
        status = exc.response.status_code
        return status == 429 or status >= 500
    return isinstance(exc, requests.RequestException)


def _reason(exc: BaseException, client: gspread.Client, has_values: bool) -> str:
    """Why a call failed, without the API's message when the request carried cell values (it may echo them)."""
    if isinstance(exc, APIError):
        status = exc.response.status_code
        if status == 403:
            return f"access denied (403); share the spreadsheet with {account_email(client)} as an editor"
        if status == 404:
            return "not found (404); check the spreadsheet URL or key"
        error = exc.error if isinstance(exc.error, dict) else {}
        detail = str(error.get("status" if has_values else "message", ""))
        return f"Sheets API answered HTTP {status}" + (f": {detail}" if detail else "")
    if isinstance(exc, GoogleAuthError):
        return f"cannot authenticate as {account_email(client)}: {exc}"
    return f"Sheets API unreachable ({type(exc).__name__})"
