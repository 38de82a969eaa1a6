"""Google Sheets through the real gspread client, with service-account credentials kept in memory.

Reading a spreadsheet costs two requests whatever the number of tabs: one for its metadata (the tab
names) and one ``values:batchGet``. 429 and 5xx answers are retried with exponential backoff.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import gspread
import requests
from google.auth.exceptions import GoogleAuthError
from google.oauth2.service_account import Credentials
from gspread.exceptions import APIError
from gspread.http_client import HTTPClient
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from headwater.errors import SourceError
from headwater.sources.cells import cell_text
from headwater.table import RawTable

log = logging.getLogger(__name__)

SHEETS_API = "https://sheets.googleapis.com"
READ_SCOPES = ("https://www.googleapis.com/auth/spreadsheets.readonly",)
WRITE_SCOPES = ("https://www.googleapis.com/auth/spreadsheets",)
_TRANSIENT = {408, 429, 500, 502, 503, 504}


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to retry 429/5xx: ``attempts`` tries in all, waits doubling from ``first_wait`` up to ``max_wait``."""

    attempts: int = 6
    first_wait: float = 1.0
    max_wait: float = 32.0


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, APIError):
        return exc.response.status_code in _TRANSIENT
    return isinstance(exc, requests.ConnectionError | requests.Timeout)


class SheetsHTTPClient(HTTPClient):
    """gspread's HTTP client with bounded exponential-backoff retries and a configurable API base URL."""

    api_base: str = SHEETS_API
    retry_policy: RetryPolicy = RetryPolicy()

    def request(self, method: str, endpoint: str, *args: Any, **kwargs: Any) -> requests.Response:
        if self.api_base != SHEETS_API and endpoint.startswith(SHEETS_API):
            endpoint = self.api_base.rstrip("/") + endpoint[len(SHEETS_API) :]
        policy = self.retry_policy
        retrying = Retrying(
            stop=stop_after_attempt(policy.attempts),
            wait=wait_exponential_jitter(initial=policy.first_wait, max=policy.max_wait, jitter=policy.first_wait / 2),
            retry=retry_if_exception(_transient),
            reraise=True,
            before_sleep=lambda state: log.warning(
                "Sheets API %s %s failed (%s); retry %d of %d",
                method.upper(),
                endpoint.split("?")[0],
                _short(state.outcome.exception() if state.outcome else None),
                state.attempt_number,
                policy.attempts - 1,
            ),
        )
        return retrying(super().request, method, endpoint, *args, **kwargs)


def _short(exc: BaseException | None) -> str:
    if isinstance(exc, APIError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__


def connect(
    service_account_info: Mapping[str, Any],
    *,
    api_base: str | None = None,
    retry: RetryPolicy | None = None,
    scopes: Sequence[str] = READ_SCOPES,
    timeout: float = 60.0,
) -> gspread.Client:
    """A gspread client for a service account; the key stays in memory (nothing is written to disk)."""
    try:
        credentials = Credentials.from_service_account_info(  # type: ignore[no-untyped-call]
            dict(service_account_info), scopes=list(scopes)
        )
    except (ValueError, KeyError) as exc:
        raise SourceError(f"Google service account credentials are not usable: {type(exc).__name__}") from None
    client = gspread.Client(credentials, http_client=SheetsHTTPClient)
    http = client.http_client
    assert isinstance(http, SheetsHTTPClient)
    http.api_base = api_base or SHEETS_API
    http.retry_policy = retry or RetryPolicy()
    client.set_timeout(timeout)
    return client


def account_email(client: gspread.Client) -> str:
    return str(getattr(client.http_client.auth, "service_account_email", "the service account"))


def read_spreadsheet_tabs(
    client: gspread.Client, key: str, tabs: Sequence[str], render: str = "formatted"
) -> dict[str, RawTable]:
    """Read whole tabs of one spreadsheet with one metadata request and one batched values request."""
    label = f"spreadsheet {key}"
    with _api_errors(client, label):
        metadata = client.http_client.fetch_sheet_metadata(key)
    title = metadata.get("properties", {}).get("title", "")
    names = [s["properties"]["title"] for s in metadata.get("sheets", [])]
    missing = [t for t in tabs if t not in names]
    if missing:
        raise SourceError(f"{label} ({title}): no tab named {', '.join(map(repr, missing))} (tabs: {', '.join(names)})")
    params: dict[str, Any] = {
        "valueRenderOption": "UNFORMATTED_VALUE" if render == "unformatted" else "FORMATTED_VALUE",
        "dateTimeRenderOption": "FORMATTED_STRING",
        "majorDimension": "ROWS",
    }
    with _api_errors(client, label):
        answer = client.http_client.values_batch_get(key, [quote_tab(t) for t in tabs], params=params)
    ranges = answer.get("valueRanges", [])
    if len(ranges) != len(tabs):
        raise SourceError(f"{label}: asked for {len(tabs)} tabs, the API returned {len(ranges)}")
    tables = {}
    for tab, value_range in zip(tabs, ranges, strict=True):
        rows = [[cell_text(v) for v in row] for row in value_range.get("values", [])]
        tables[tab] = RawTable(source=label, tab=tab, rows=rows)
        log.info("read %s tab %r: %d rows", label, tab, max(len(rows) - 1, 0))
    return tables


def quote_tab(tab: str) -> str:
    """A1-notation range for a whole tab: ``'Tab name'`` with inner quotes doubled."""
    return "'" + tab.replace("'", "''") + "'"


class _api_errors:  # noqa: N801 - used as a context manager
    """Turn gspread/google-auth/requests failures into SourceError naming the spreadsheet."""

    def __init__(self, client: gspread.Client, label: str) -> None:
        self.client = client
        self.label = label

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if exc is None:
            return
        if isinstance(exc, APIError):
            status = exc.response.status_code
            if status == 403:
                raise SourceError(
                    f"{self.label}: access denied (403); share the spreadsheet with {account_email(self.client)}"
                ) from None
            if status == 404:
                raise SourceError(f"{self.label}: not found (404); check the spreadsheet URL or key") from None
            message = exc.error.get("message", "") if isinstance(exc.error, dict) else ""
            transient = status == 429 or status >= 500
            raise SourceError(
                f"{self.label}: Sheets API answered HTTP {status}: {message}", transient=transient
            ) from None
        if isinstance(exc, GoogleAuthError):
            raise SourceError(f"{self.label}: cannot authenticate as {account_email(self.client)}: {exc}") from None
        if isinstance(exc, requests.RequestException):
            raise SourceError(f"{self.label}: Sheets API unreachable ({type(exc).__name__})", transient=True) from None
