"""Replace a Google Sheet tab with a query result, atomically (the course's ``SQL_to_Sheet``, done right).

Rows stream into a hidden staging tab in requests of at most 2 MB. One ``spreadsheets:batchUpdate`` then
resizes the target tab to the result (shrinking before growing, so no step crosses the 10-million-cell limit),
pastes the staged values over it, gives date columns a date format and deletes the staging tab. Sheets applies
a batch all-or-nothing, so a failure at any point leaves the target with its previous contents; the target
keeps its sheetId, so formulas elsewhere that reference it survive. Every step survives a lost reply: a
retried ``addSheet`` that had taken effect finds its tab by its unique title, a publish whose reply was lost is
recognised by its staging tab being gone, and staging tabs a crashed run left behind are removed by the next
write to that spreadsheet. Cell values are never logged nor put in errors. 429/5xx retries are the client's
(``headwater.sources.sheets.connect``), not this module's.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass
from typing import Any

import gspread
import requests
from google.auth.exceptions import GoogleAuthError
from gspread.exceptions import APIError

from headwater.errors import HeadwaterError, column_letter
from headwater.sinks.sheet_cells import MAX_CELL_CHARS, CellError, cell_value, column_format, row_bytes
from headwater.sources.sheets import account_email, quote_tab

log = logging.getLogger(__name__)

MAX_CELLS = 10_000_000  # per spreadsheet, every tab's grid counted
MAX_COLUMNS = 18_278  # column ZZZ
MAX_BODY_BYTES = 2_000_000  # per values request, as Google advises (it refuses bodies past about 10 MB)
MAX_ROW_BYTES = 9_000_000  # a single row past this cannot be sent at all
_ENVELOPE = 4096  # the request's JSON around the rows: range (a title of up to 100 escaped characters), options
STAGING_PREFIX = "_hw_stage_"
STALE_STAGING = dt.timedelta(hours=6)  # a staging tab this old belongs to a run that died
_STAGING = re.compile(rf"^{STAGING_PREFIX}(\d{{8}}T\d{{6}}Z)_[0-9a-f]{{8}}_")
__all__ = ["MAX_CELL_CHARS", "SheetWriteError", "SheetWriteResult", "write_rows_to_sheet"]


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
        # Set from the metadata: cells of every tab, the target's grid, the minimum grid of the result.
        self.used = self.old = 0
        self.old_rows = self.old_cols = 0
        self.min_rows, self.cols = 1, len(self.header)
        self.dates: dict[int, set[str]] = {}  # column index -> kinds of dates written there
        self.carry: list[object] | None = None  # a converted row that did not fit in the last request

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
        first = self.chunk(it, chunk_rows, 1, row_bytes(list(self.header)))
        grid_rows = max(known, 1 + len(first), self.min_rows)
        self.fits(grid_rows)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        title = f"{STAGING_PREFIX}{stamp}_{secrets.token_hex(4)}_{self.tab[:60]}"
        stage = self.add_staging(title, grid_rows)
        log.info("%s tab %r: writing through hidden staging tab %r", self.label, self.tab, title)
        chunk: list[list[object]] = [list(self.header), *first]
        start, written = 1, 0  # start: the sheet row the chunk goes to
        try:
            while chunk:
                end = start + len(chunk) - 1
                if end > grid_rows:  # streaming: grow the staging grid by exactly this chunk
                    self.fits(end)
                    self.batch("growing the staging tab", *_resize(stage, grid_rows, self.cols, end, self.cols))
                    grid_rows = end
                body = {
                    "valueInputOption": "RAW",  # text stays text: "=..." is never run as a formula
                    "data": [{"range": f"{quote_tab(title)}!A{start}", "majorDimension": "ROWS", "values": chunk}],
                }
                what = f"writing sheet rows {start}-{end} to the staging tab"
                self.call(what, self.http.values_batch_update, self.key, body, has_values=True)
                start, written = end + 1, end - 1
                log.info("%s tab %r: %d rows written to the staging tab", self.label, self.tab, written)
                if progress is not None:
                    progress(written)
                chunk = self.chunk(it, chunk_rows, start - 1)
            self.publish(target, stage, max(1 + written, self.min_rows))
        except BaseException:
            self.drop(stage, title)
            raise
        seconds = time.monotonic() - self.started
        what = "%s tab %r: replaced with %d rows x %d columns in %.1f s (%d requests)"
        log.info(what, self.label, self.tab, written, width, seconds, self.requests)
        return SheetWriteResult(self.key, self.tab, written, width, seconds, self.requests)

    def open(self) -> int:
        """Read the metadata (one request): the target's sheetId, its grid and frozen panes, the cells in use;
        staging tabs that runs which died left behind are deleted."""
        meta = self.metadata()
        self.label += f" ({meta.get('properties', {}).get('title', '')})"
        sheets = [s.get("properties", {}) for s in meta.get("sheets", [])]
        target = next((p for p in sheets if p.get("title") == self.tab), None)
        if target is None:
            names = ", ".join(str(p.get("title", "")) for p in sheets if not _STAGING.match(str(p.get("title"))))
            raise SheetWriteError(f"{self.label}: no tab named {self.tab!r} (tabs: {names})")
        stale = [p for p in sheets if _stale_staging(str(p.get("title", "")))]
        if stale and self.sweep(stale):
            sheets = [p for p in sheets if p not in stale]
        grid = target.get("gridProperties", {})
        self.used = sum(_cells(p) for p in sheets)
        self.old = _cells(target)
        self.old_rows, self.old_cols = int(grid.get("rowCount", 0)), int(grid.get("columnCount", 0))
        # Sheets refuses to shrink a tab to nothing but its frozen rows/columns: keep one more of each.
        self.min_rows = int(grid.get("frozenRowCount", 0)) + 1
        self.cols = max(self.cols, int(grid.get("frozenColumnCount", 0)) + 1)
        return int(target.get("sheetId", 0))

    def metadata(self) -> dict[str, Any]:
        params = {"fields": "properties.title,sheets.properties"}
        meta: dict[str, Any] = self.call(
            "reading the spreadsheet metadata", self.http.fetch_sheet_metadata, self.key, params
        )
        return meta

    def sweep(self, stale: list[dict[str, Any]]) -> bool:
        """Delete staging tabs older than STALE_STAGING (their runs died); a failure here is only logged."""
        names = ", ".join(repr(p.get("title")) for p in stale)
        try:
            self.batch("removing stale staging tabs", *({"deleteSheet": {"sheetId": p["sheetId"]}} for p in stale))
        except SheetWriteError as exc:
            log.warning("%s: could not remove stale staging tabs %s (%s)", self.label, names, exc)
            return False
        log.warning("%s: removed %d staging tab(s) left by runs that died: %s", self.label, len(stale), names)
        return True

    def add_staging(self, title: str, rows: int) -> int:
        """Add the hidden staging tab; a retried request whose first attempt took effect finds it by its title."""
        props = {"title": title, "hidden": True, "gridProperties": {"rowCount": rows, "columnCount": self.cols}}
        try:
            reply = self.batch("adding the staging tab", {"addSheet": {"properties": props}})
            return int(reply["replies"][0]["addSheet"]["properties"]["sheetId"])
        except SheetWriteError:
            sheets = [s.get("properties", {}) for s in self.metadata().get("sheets", [])]
            found = next((p for p in sheets if p.get("title") == title), None)
            if found is None:
                raise
            log.info("%s: the staging tab was added though its reply was lost; using it", self.label)
            return int(found.get("sheetId", 0))

    def publish(self, target: int, stage: int, size: int) -> None:
        """One batch: resize the target, paste the staged values, date formats, delete the staging tab.
        If it fails, the staging tab still being there tells that the batch did not happen (it is atomic)."""
        whole = {"startRowIndex": 0, "endRowIndex": size, "startColumnIndex": 0, "endColumnIndex": self.cols}
        paste = {"source": {"sheetId": stage, **whole}, "destination": {"sheetId": target, **whole}}
        formats = [
            {
                "repeatCell": {
                    "range": {"sheetId": target, "startRowIndex": 1, "endRowIndex": size,
                              "startColumnIndex": col, "endColumnIndex": col + 1},
                    "cell": {"userEnteredFormat": {"numberFormat": column_format(kinds)}},
                    "fields": "userEnteredFormat.numberFormat",
                }
            }
            for col, kinds in sorted(self.dates.items())
            if size > 1
        ]  # fmt: skip
        try:
            self.batch(
                "publishing the staging tab",
                *_resize(target, self.old_rows, self.old_cols, size, self.cols),
                {"copyPaste": {**paste, "pasteType": "PASTE_VALUES"}},
                *formats,
                {"deleteSheet": {"sheetId": stage}},
            )
        except SheetWriteError:
            if any(s.get("properties", {}).get("sheetId") == stage for s in self.metadata().get("sheets", [])):
                raise
            log.info("%s tab %r: published, though the reply was lost", self.label, self.tab)

    def fits(self, sheet_rows: int, exact: bool = False) -> None:
        """Fail unless the peak fits in MAX_CELLS: while publishing, the staging tab and the resized target coexist
        (the resize shrinks before it grows, so no step in between is larger)."""
        staged = max(sheet_rows, self.min_rows) * self.cols
        peak = self.used + staged + max(0, staged - self.old)
        if peak > MAX_CELLS:
            many = "" if exact else "at least "
            raise self.error(
                f"result of {many}{sheet_rows - 1} rows x {self.cols} columns does not fit: replacing the tab needs "
                f"{peak} cells at its peak (the staging tab included, {self.used} in use now) and a spreadsheet "
                f"holds at most {MAX_CELLS} cells"
            )

    def chunk(self, rows: Iterator[Sequence[object]], size: int, first: int, spent: int = 0) -> list[list[object]]:
        """The next rows as RAW cells for one request: at most ``size`` rows and MAX_BODY_BYTES of JSON
        (``spent`` already taken, by the header); ``first`` is the 1-based result row number of the first one."""
        out: list[list[object]] = []
        n = first
        while len(out) < size:
            if self.carry is not None:
                cells, self.carry = self.carry, None
            else:
                row = next(rows, None)
                if row is None:
                    break
                cells = self.convert(row, n)
            need = row_bytes(cells)
            if need > MAX_ROW_BYTES:
                raise self.error(f"result row {n} is {need} bytes as JSON; one request holds at most {MAX_ROW_BYTES}")
            if out and spent + need > MAX_BODY_BYTES - _ENVELOPE:
                self.carry = cells
                break
            out.append(cells)
            spent += need
            n += 1
        return out

    def convert(self, row: Sequence[object], n: int) -> list[object]:
        """One result row (``n``, 1-based) as cells; a value with no cell form fails naming row and column."""
        if len(row) > len(self.header):
            raise self.error(f"result row {n} has {len(row)} values but the header has {len(self.header)} columns")
        cells = []
        for j, value in enumerate(row):
            try:
                cell, date_kind = cell_value(value)
            except CellError as exc:
                raise self.error(f"result row {n}, column {column_letter(j)} ({self.header[j]}): {exc}") from None
            if date_kind is not None:
                self.dates.setdefault(j, set()).add(date_kind)
            cells.append(cell)
        return cells

    def drop(self, sheet_id: int, title: str) -> None:
        """Delete the staging tab, best effort: the caller sees the original error, a failure here is logged
        (the next write to this spreadsheet removes it once it is STALE_STAGING old)."""
        self.requests += 1
        try:
            self.http.batch_update(self.key, {"requests": [{"deleteSheet": {"sheetId": sheet_id}}]})
        except Exception as exc:
            why = _reason(exc, self.client, False) if isinstance(exc, APIError) else type(exc).__name__
            log.warning("%s: could not delete staging tab %r (%s); the next write removes it", self.label, title, why)


def _stale_staging(title: str) -> bool:
    """A staging tab (by its headwater title) older than STALE_STAGING."""
    found = _STAGING.match(title)
    if found is None:
        return False
    started = dt.datetime.strptime(found.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    return dt.datetime.now(dt.UTC) - started > STALE_STAGING


def _resize(sheet_id: int, old_rows: int, old_cols: int, rows: int, cols: int) -> list[dict[str, Any]]:
    """updateSheetProperties requests taking a grid from old to new size, a shrinking dimension first: growing
    rows before dropping columns could cross the spreadsheet's cell limit on the way."""
    steps = [("rowCount", old_rows, rows), ("columnCount", old_cols, cols)]
    steps.sort(key=lambda step: step[2] - step[1])  # the largest shrink first
    return [
        {
            "updateSheetProperties": {
                "properties": {"sheetId": sheet_id, "gridProperties": {name: new}},
                "fields": f"gridProperties.{name}",
            }
        }
        for name, old, new in steps
        if new != old
    ]


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
