"""Loopback fake of the Google Sheets API v4 and Google's OAuth2 token endpoint.

Real gspread + real google-auth service-account credentials talk to it over HTTP on 127.0.0.1; request
paths are the real ones (``/v4/spreadsheets/{id}/values:batchGet`` ...) and bodies mirror the real JSON
shapes and error bodies. Cell values are stored and returned as given (render/input options are ignored).
Run this file to self-test it.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import re
import secrets
import threading
import zlib
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from tests.fakes.sheets_cells import entered, pasted, rendered
from tests.fakes.sheets_discovery import DiscoveryError, sheets_api, validate_request

CELL_LIMIT = 10_000_000
MAX_BODY = 10 * 1024 * 1024  # Google refuses larger request bodies
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_MESSAGES = {
    401: "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
    "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    500: "Internal error encountered.",
    503: "The service is currently unavailable.",
    504: "The request timed out. Please try again.",
}
_CELL = re.compile(r"^\$?([A-Za-z]{0,3})\$?(\d*)$")


class ApiError(Exception):
    """An error answered as a Google-style ``{"error": {code, message, status}}`` body."""

    def __init__(self, code: int, message: str | None = None, method: str = "GET") -> None:
        if message is None and code == 429:
            kind = "Read" if method == "GET" else "Write"
            message = (
                f"Quota exceeded for quota metric '{kind} requests' and limit '{kind} requests per minute "
                "per user' of service 'sheets.googleapis.com' for consumer 'project_number:000000000000'."
            )
        super().__init__(message or _MESSAGES.get(code, f"HTTP {code}"))
        self.code, self.message = code, str(self)

    def body(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code, "message": self.message, "status": _STATUS.get(self.code, "UNKNOWN")}
        if self.code == 429:
            err["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "RATE_LIMIT_EXCEEDED",
                    "domain": "googleapis.com",
                    "metadata": {"service": "sheets.googleapis.com"},
                }
            ]
        return {"error": err}


@dataclass
class _Tab:
    title: str
    sheet_id: int
    rows: int
    cols: int
    data: list[list[Any]]  # ragged; "" is an empty cell
    hidden: bool = False
    frozen_rows: int = 0
    frozen_cols: int = 0
    formats: dict[tuple[int, int], dict[str, str]] = field(default_factory=dict)  # (row, col) 0-based -> numberFormat

    def props(self, index: int) -> dict[str, Any]:
        grid = {"rowCount": self.rows, "columnCount": self.cols}
        if self.frozen_rows:
            grid["frozenRowCount"] = self.frozen_rows
        if self.frozen_cols:
            grid["frozenColumnCount"] = self.frozen_cols
        out = {"sheetId": self.sheet_id, "title": self.title, "index": index, "sheetType": "GRID"}
        return {**out, **({"hidden": True} if self.hidden else {}), "gridProperties": grid}


@dataclass
class _Book:
    key: str
    title: str
    tabs: list[_Tab]


def _col_num(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n


def _col_letters(n: int) -> str:
    s = ""
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(65 + r) + s
    return s


def _quote_title(title: str, force: bool = False) -> str:
    plain = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", title) and not re.fullmatch(r"[A-Za-z]{1,3}\d+", title)
    return title if plain and not force else "'" + title.replace("'", "''") + "'"


def _fmt(tab: _Tab, r1: int, c1: int, r2: int, c2: int, force: bool = False) -> str:
    a1 = f"{_col_letters(c1)}{r1}" + ("" if (r1, c1) == (r2, c2) else f":{_col_letters(c2)}{r2}")
    return f"{_quote_title(tab.title, force)}!{a1}"


def _trim(rows: list[list[Any]]) -> list[list[Any]]:
    out = []
    for row in rows:
        row = list(row)
        while row and row[-1] in ("", None):
            row.pop()
        out.append(["" if v is None else v for v in row])
    while out and not out[-1]:
        out.pop()
    return out


def _transpose(values: list[list[Any]]) -> list[list[Any]]:
    width = max((len(r) for r in values), default=0)
    return [[r[i] if i < len(r) else None for r in values] for i in range(width)]


def _parse(book: _Book, a1: str) -> tuple[_Tab, int, int, int | None, int | None, bool]:
    """A1 -> (tab, r1, c1, r2|None, c2|None, single_cell); None ends are open (to the grid edge)."""
    bad = ApiError(400, f"Unable to parse range: {a1}")
    s, titles = a1.strip(), {t.title: t for t in book.tabs}
    if s.startswith("'"):
        i, parts = 1, []
        while True:
            j = s.find("'", i)
            if j < 0:
                raise bad
            if s[j + 1 : j + 2] == "'":
                parts.append(s[i : j + 1])
                i = j + 2
                continue
            parts.append(s[i:j])
            title, rest = "".join(parts), s[j + 1 :]
            break
        if rest and (not rest.startswith("!") or len(rest) == 1):
            raise bad
        cells = rest[1:]
    elif "!" in s:
        title, cells = s.rsplit("!", 1)
    elif s in titles:
        title, cells = s, ""
    else:
        title, cells = book.tabs[0].title, s
    if title not in titles:
        raise bad
    tab = titles[title]
    if not cells:
        return tab, 1, 1, None, None, False
    ends = [_CELL.match(p) for p in cells.split(":")]
    if len(ends) > 2 or not all(ends) or not any(ends[0].groups()):  # type: ignore[union-attr]
        raise bad
    (l1, d1), (l2, d2) = ends[0].groups(), ends[-1].groups()  # type: ignore[union-attr]
    single = len(ends) == 1
    if single and not (l1 and d1):
        raise bad
    r1, c1 = int(d1 or 1), _col_num(l1) if l1 else 1
    r2, c2 = (int(d2) if d2 else None), (_col_num(l2) if l2 else None)
    if r1 < 1 or (r2 is not None and r2 < 1):
        raise bad
    if r2 is not None and r2 < r1:
        r1, r2 = r2, r1
    if c2 is not None and c2 < c1:
        c1, c2 = c2, c1
    return tab, r1, c1, r2, c2, single


def _rect(book: _Book, a1: str) -> tuple[_Tab, int, int, int, int]:
    """Parse a range for reading/clearing; it must lie inside the grid."""
    tab, r1, c1, r2, c2, single = _parse(book, a1)
    r2, c2 = (r1, c1) if single else (r2 or tab.rows, c2 or tab.cols)
    _check_grid(tab, r1, c1, r2, c2)
    return tab, r1, c1, r2, c2


def _check_grid(tab: _Tab, r1: int, c1: int, r2: int, c2: int) -> None:
    if r2 > tab.rows or c2 > tab.cols:
        raise ApiError(
            400,
            f"Range ({_fmt(tab, r1, c1, r2, c2, force=True)}) exceeds grid limits. "
            f"Max rows: {tab.rows}, max columns: {tab.cols}",
        )


def _check_cells(before: int, tabs: list[_Tab]) -> None:
    after = sum(t.rows * t.cols for t in tabs)
    if after > CELL_LIMIT and after > before:
        raise ApiError(
            400,
            f"This action would increase the number of cells in the workbook above the limit of {CELL_LIMIT} cells.",
        )


def _want(fields: set[str], field: str) -> bool:
    """Does a (normalised, dot-separated) field mask cover `field`?"""
    return "*" in fields or field in fields or field.split(".")[0] in fields


def _write(tab: _Tab, r1: int, c1: int, values: list[list[Any]]) -> None:
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            if v is None:  # null means "leave this cell alone"
                continue
            r, c = r1 - 1 + i, c1 - 1 + j
            while len(tab.data) <= r:
                tab.data.append([])
            line = tab.data[r]
            if len(line) <= c:
                if v == "":
                    continue
                line.extend([""] * (c + 1 - len(line)))
            line[c] = v


def _clear(tab: _Tab, r1: int, c1: int, r2: int, c2: int) -> None:
    for line in tab.data[r1 - 1 : r2]:
        for c in range(c1 - 1, min(c2, len(line))):
            line[c] = ""


class FakeSheetsServer:
    """Fake Sheets v4 + OAuth2 token server on 127.0.0.1 (see module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._books: dict[str, _Book] = {}
        self._denied: set[str] = set()
        self._faults: list[dict[str, Any]] = []
        self._tokens: set[str] = set()
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []  # (method, unquoted path, parse_qs)
        self.strict = True  # every request checked against Google's discovery document (tests/fakes/sheets_discovery)
        self.body_bytes: list[int] = []  # request body sizes, in the order of self.requests
        self.refused: list[tuple[str, str, str]] = []  # (method, path, message) of requests the document refused
        self.bad_answers: list[tuple[str, list[str]]] = []  # (method id, problems) of answers off the document
        self._httpd: ThreadingHTTPServer | None = None
        self.url = self.token_uri = ""

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeSheetsServer:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # else Nagle + delayed ACK add ~40 ms per request

            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, obj = fake._handle(self.command, self.path, self.headers.get("Authorization", ""), body)
                data = json.dumps(obj).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Connection", "close")  # no keep-alive: nothing outlives stop()
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self.token_uri = self.url + "/token"
        threading.Thread(target=self._httpd.serve_forever, args=(0.05,), name="fake-sheets", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._httpd.shutdown()
        self._httpd.server_close()
        self._httpd = None

    def __enter__(self) -> FakeSheetsServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- test controls ---------------------------------------------------------------------------
    def add_spreadsheet(
        self,
        key: str,
        tabs: dict[str, list[list[Any]]],
        title: str = "Spreadsheet",
        rows: int | None = None,
        cols: int | None = None,
    ) -> None:
        """Create (or replace) a spreadsheet; tab order is sheet index, first tab has sheetId 0."""
        book = _Book(key, title, [])
        for name, values in (tabs or {"Sheet1": []}).items():
            data = [["" if v is None else v for v in row] for row in values]
            nr = rows if rows is not None else max(1000, len(data))
            nc = cols if cols is not None else max([26] + [len(r) for r in data])
            book.tabs.append(_Tab(name, self._new_sheet_id(book, name), nr, nc, [r[:nc] for r in data[:nr]]))
        with self._lock:
            self._books[key] = book

    def tab_values(self, key: str, tab: str) -> list[list[Any]]:
        """Current contents of a tab, trimmed like the API does."""
        with self._lock:
            return _trim({t.title: t for t in self._books[key].tabs}[tab].data)

    def tab_formats(self, key: str, tab: str) -> dict[tuple[int, int], dict[str, str]]:
        """Number formats of a tab's cells: (row, column), 0-based -> numberFormat."""
        with self._lock:
            return dict({t.title: t for t in self._books[key].tabs}[tab].formats)

    def deny(self, key: str) -> None:
        with self._lock:
            self._denied.add(key)

    def fail_next(self, status: int, times: int = 1, path_contains: str = "", method: str | None = None) -> None:
        """Answer the next `times` matching /v4 requests with `status` (path_contains="/token" targets OAuth)."""
        self._add_fault(status, 0, times, path_contains, method)

    def fail_after(
        self, n_ok: int, status: int, path_contains: str = "", method: str | None = None, times: int | None = None
    ) -> None:
        """Let `n_ok` matching requests through, then fail the next `times` ones (None: every further one)."""
        self._add_fault(status, n_ok, times, path_contains, method)

    def lose_reply(
        self, status: int, path_contains: str = "", method: str | None = None, n_ok: int = 0, times: int = 1
    ) -> None:
        """Apply the matching request (after `n_ok` untouched ones), then answer `status` as if its reply was lost."""
        self._add_fault(status, n_ok, times, path_contains, method, applied=True)

    def reset(self) -> None:
        """Forget spreadsheets, denials, injected faults and the request log (issued tokens stay valid)."""
        with self._lock:
            self._books.clear()
            self._denied.clear()
            self._faults.clear()
            self.requests.clear()
            self.body_bytes.clear()
            self.refused.clear()
            self.bad_answers.clear()
            self.strict = True

    def _add_fault(
        self, status: int, ok: int, times: int | None, path: str, method: str | None, applied: bool = False
    ) -> None:
        with self._lock:
            upper = method.upper() if method else None
            fault = {"status": status, "ok": ok, "left": times, "path": path, "method": upper, "applied": applied}
            self._faults.append(fault)

    def _fault(self, method: str, path: str) -> dict[str, Any] | None:
        for f in self._faults:
            if f["path"] not in path or (f["method"] and f["method"] != method):
                continue
            if not path.startswith("/v4/") and not f["path"]:
                continue
            if f["ok"] > 0:
                f["ok"] -= 1
                continue
            if f["left"] is not None:
                f["left"] -= 1
                if f["left"] <= 0:
                    self._faults.remove(f)
            return f
        return None

    @staticmethod
    def _new_sheet_id(book: _Book, title: str) -> int:
        ids = {t.sheet_id for t in book.tabs}
        sid = 0 if not book.tabs else zlib.crc32(f"{book.key}\0{title}".encode()) % 2_000_000_000 + 1
        while sid in ids:
            sid += 1
        return sid

    # ---- HTTP ------------------------------------------------------------------------------------
    def _handle(self, method: str, target: str, auth: str, raw: bytes) -> tuple[int, Any]:
        raw_path, _, qs = target.partition("?")
        path, query = unquote(raw_path), parse_qs(qs, keep_blank_values=True)
        with self._lock:
            try:
                if path == "/token":
                    if (fault := self._fault(method, path)) is not None:
                        raise ApiError(fault["status"], method=method)
                    return self._token(method, raw)
                if not path.startswith("/v4/spreadsheets/"):
                    raise ApiError(404, f"Fake Sheets server: unsupported endpoint {method} {path}")
                self.requests.append((method, path, query))
                self.body_bytes.append(len(raw))
                if not auth.startswith("Bearer ") or auth[7:] not in self._tokens:
                    raise ApiError(401)
                fault = self._fault(method, path)
                if fault is not None and not fault["applied"]:
                    raise ApiError(fault["status"], method=method)
                if len(raw) > MAX_BODY:
                    raise ApiError(400, f"Request payload size exceeds the limit: {MAX_BODY} bytes.")
                try:
                    body = json.loads(raw) if raw.strip() else None
                except ValueError:
                    raise ApiError(400, "Invalid JSON payload received.") from None
                # Google's own API description decides what is a valid request
                op = validate_request(method, raw_path, query, body) if self.strict else None
                answer = self._route(method, raw_path.split("/")[3:], query, body or {})
                if op is not None and (problems := sheets_api().validate_response(op, answer)):
                    self.bad_answers.append((op.id, problems))  # the fake itself strayed from the description
                if fault is not None:  # applied; the reply is lost
                    raise ApiError(fault["status"], method=method)
                if "fields" in query:
                    answer = sheets_api().apply_fields_mask(answer, query["fields"][0])
                return 200, answer
            except ApiError as e:
                return e.code, e.body()
            except DiscoveryError as e:
                self.refused.append((method, path, e.message))
                return e.code, e.body()

    def _token(self, method: str, raw: bytes) -> tuple[int, Any]:
        form = {k: v[0] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()}
        parts = form.get("assertion", "").split(".")
        try:
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        except (IndexError, ValueError):
            claims = {}
        ok = isinstance(claims, dict) and all(claims.get(k) for k in ("iss", "scope", "aud"))
        if method != "POST" or form.get("grant_type") != JWT_GRANT or len(parts) != 3 or not ok:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT grant."}
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        self._tokens.add(token)
        return 200, {"access_token": token, "expires_in": 3600, "token_type": "Bearer"}

    def _route(self, method: str, segs: list[str], q: dict[str, list[str]], body: dict[str, Any]) -> Any:
        key, _, verb = unquote(segs[0]).partition(":")
        if key in self._denied:
            raise ApiError(403)
        if key not in self._books:
            raise ApiError(404)
        book = self._books[key]
        op = (method, verb, *segs[1:2])
        if len(segs) == 1 and op == ("GET", ""):
            sheets = [{"properties": t.props(i)} for i, t in enumerate(book.tabs)]
            return {
                "spreadsheetId": key,
                "properties": {
                    "title": book.title,
                    "locale": "en_US",
                    "autoRecalc": "ON_CHANGE",
                    "timeZone": "Etc/GMT",
                },
                "sheets": sheets,
                "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{key}/edit",
            }
        if len(segs) == 1 and op == ("POST", "batchUpdate"):
            return self._batch_update(book, body)
        if len(segs) == 2 and op == ("GET", "", "values:batchGet"):
            out: dict[str, Any] = {"spreadsheetId": key}
            if q.get("ranges"):
                out["valueRanges"] = [self._get(book, r, q) for r in q["ranges"]]
            return out
        if len(segs) == 2 and op == ("POST", "", "values:batchUpdate"):
            option = self._input_option(body.get("valueInputOption"))
            plans = [
                self._plan(book, d.get("range", ""), d.get("values") or [], d.get("majorDimension"), option)
                for d in body.get("data") or []
            ]
            for apply, _ in plans:
                apply()
            resps = [r for _, r in plans]
            total = {
                f"total{k[0].upper()}{k[1:]}": sum(r.get(k, 0) for r in resps)
                for k in ("updatedRows", "updatedColumns", "updatedCells")
            }
            total["totalUpdatedSheets"] = len({r["updatedRange"].rsplit("!", 1)[0] for r in resps})
            return {"spreadsheetId": key, **{k: v for k, v in total.items() if v}, "responses": resps}
        if len(segs) == 2 and op == ("POST", "", "values:batchClear"):
            rects = [_rect(book, r) for r in body.get("ranges") or []]
            for rect in rects:
                _clear(*rect)
            return {"spreadsheetId": key, "clearedRanges": [_fmt(*rect) for rect in rects]}
        if len(segs) == 3 and segs[1] == "values":
            rng, verb = segs[2], ""
            if ":" in rng and rng.rsplit(":", 1)[1] in ("append", "clear"):
                rng, verb = rng.rsplit(":", 1)
            rng = unquote(rng)
            if (method, verb) == ("GET", ""):
                return self._get(book, rng, q)
            if (method, verb) == ("PUT", ""):
                option = self._input_option(q.get("valueInputOption", [None])[0])
                apply, resp = self._plan(book, rng, body.get("values") or [], body.get("majorDimension"), option)
                apply()
                return resp
            if (method, verb) == ("POST", "clear"):
                rect = _rect(book, rng)
                _clear(*rect)
                return {"spreadsheetId": key, "clearedRange": _fmt(*rect)}
            if (method, verb) == ("POST", "append"):
                option = self._input_option(q.get("valueInputOption", [None])[0])
                return self._append(book, rng, body, q.get("insertDataOption", ["OVERWRITE"])[0], option)
        raise ApiError(404, f"Fake Sheets server: unsupported endpoint {method} /v4/spreadsheets/{'/'.join(segs)}")

    # ---- values ----------------------------------------------------------------------------------
    @staticmethod
    def _input_option(opt: str | None) -> str:
        if not opt:
            raise ApiError(400, "'valueInputOption' is required but not specified")
        if opt not in ("RAW", "USER_ENTERED"):
            raise ApiError(400, f"Invalid value at 'value_input_option' ({opt})")
        return opt

    @staticmethod
    def _get(book: _Book, a1: str, q: dict[str, list[str]]) -> dict[str, Any]:
        major = q.get("majorDimension", ["ROWS"])[0]
        render = q.get("valueRenderOption", ["FORMATTED_VALUE"])[0]
        dates = q.get("dateTimeRenderOption", ["SERIAL_NUMBER"])[0]
        tab, r1, c1, r2, c2 = _rect(book, a1)
        values = _trim(
            [
                [rendered(v, tab.formats.get((r, c)), render, dates) for c, v in enumerate(line[c1 - 1 : c2], c1 - 1)]
                for r, line in enumerate(tab.data[r1 - 1 : r2], r1 - 1)
            ]
        )
        if major == "COLUMNS":
            values = _trim(_transpose(values))
        out: dict[str, Any] = {"range": _fmt(tab, r1, c1, r2, c2), "majorDimension": major}
        if values:
            out["values"] = values
        return out

    def _plan(
        self, book: _Book, a1: str, values: list[list[Any]], major: str | None, option: str
    ) -> tuple[Any, dict[str, Any]]:
        """Validate one write; return (apply, UpdateValuesResponse) so batches are all-or-nothing."""
        tab, r1, c1, r2, c2, single = _parse(book, a1)
        if major == "COLUMNS":
            values = _transpose(values)
        formats: dict[tuple[int, int], dict[str, str]] = {}
        stored = []
        for i, row in enumerate(values):
            line = []
            for j, v in enumerate(row):
                value, fmt = entered(v, option)
                line.append(value)
                if fmt is not None:
                    formats[(r1 - 1 + i, c1 - 1 + j)] = fmt
            stored.append(line)
        nrows, ncols = len(values), max((len(r) for r in values), default=0)
        er, ec = r1 + max(nrows, 1) - 1, c1 + max(ncols, 1) - 1
        if not single and r2 is not None and er > r2:
            raise ApiError(400, f"Requested writing within range [{a1}], but tried writing to row [{er}]")
        if not single and c2 is not None and ec > c2:
            raise ApiError(
                400, f"Requested writing within range [{a1}], but tried writing to column [{_col_letters(ec)}]"
            )
        _check_grid(tab, r1, c1, er, ec)
        cells = sum(v is not None for row in values for v in row)
        resp = {
            "spreadsheetId": book.key,
            "updatedRange": _fmt(tab, r1, c1, er, ec),
            "updatedRows": nrows,
            "updatedColumns": ncols,
            "updatedCells": cells,
        }

        def apply() -> None:
            _write(tab, r1, c1, stored)
            tab.formats.update(formats)

        return apply, {k: v for k, v in resp.items() if v}

    def _append(self, book: _Book, a1: str, body: dict[str, Any], mode: str, option: str) -> dict[str, Any]:
        tab, r1, c1, _, c2, _ = _parse(book, a1)
        values = body.get("values") or []
        if body.get("majorDimension") == "COLUMNS":
            values = _transpose(values)
        last_col = c2 or tab.cols  # the "table" is searched across the range (all columns for a cell)
        table = _trim([line[c1 - 1 : last_col] for line in tab.data[r1 - 1 :]])
        start = r1 + len(table)
        nrows, ncols = len(values), max((len(r) for r in values), default=0)
        before = sum(t.rows * t.cols for t in book.tabs)
        new_rows = tab.rows + nrows if mode == "INSERT_ROWS" else max(tab.rows, start + nrows - 1)
        new_cols = max(tab.cols, c1 + ncols - 1)
        _check_cells(before, [replace(t, rows=new_rows, cols=new_cols) if t is tab else t for t in book.tabs])
        if mode == "INSERT_ROWS" and start <= len(tab.data):
            tab.data[start - 1 : start - 1] = [[] for _ in range(nrows)]
        tab.rows, tab.cols = new_rows, new_cols
        apply, updates = self._plan(book, _fmt(tab, start, c1, start, c1, force=True), values, None, option)
        apply()
        out: dict[str, Any] = {"spreadsheetId": book.key, "updates": updates}
        if table:
            out["tableRange"] = _fmt(tab, r1, c1, start - 1, c1 + max(len(r) for r in table) - 1)
        return out

    # ---- spreadsheets:batchUpdate ----------------------------------------------------------------
    def _batch_update(self, book: _Book, body: dict[str, Any]) -> dict[str, Any]:
        tabs = [replace(t) for t in book.tabs]  # copies; data lists are only ever replaced, never mutated here
        before, replies = sum(t.rows * t.cols for t in tabs), []

        def find(sid: Any, where: str) -> _Tab:
            for t in tabs:
                if t.sheet_id == (sid or 0):
                    return t
            raise ApiError(400, f"{where}No grid with id: {sid or 0}")

        def resize(t: _Tab, rows: int, cols: int, where: str, refreeze: bool = False) -> None:
            if rows < 1 or cols < 1:
                raise ApiError(400, f"{where}A sheet must have at least one row and one column.")
            if refreeze and (t.frozen_rows >= rows or t.frozen_cols >= cols):
                dim = "rows" if t.frozen_rows >= rows else "columns"
                raise ApiError(400, f"{where}You can't freeze all visible {dim} on the sheet.")
            for frozen, size, dim in ((t.frozen_rows, rows, "rows"), (t.frozen_cols, cols, "columns")):
                if frozen >= size:
                    raise ApiError(400, f"{where}Sorry, it is not possible to delete all non-frozen {dim}.")
            t.rows, t.cols, t.data = rows, cols, [line[:cols] for line in t.data[:rows]]
            t.formats = {k: v for k, v in t.formats.items() if k[0] < rows and k[1] < cols}

        def grid_range(g: dict[str, Any], where: str) -> tuple[_Tab, int, int, int, int]:
            t = find(g.get("sheetId"), where)
            r1, r2 = int(g.get("startRowIndex", 0)), int(g.get("endRowIndex", t.rows))
            c1, c2 = int(g.get("startColumnIndex", 0)), int(g.get("endColumnIndex", t.cols))
            if not (0 <= r1 < r2 and 0 <= c1 < c2):
                raise ApiError(400, f"{where}Invalid range: start index must be below end index.")
            _check_grid(t, r1 + 1, c1 + 1, r2, c2)
            return t, r1, c1, r2, c2

        for i, req in enumerate(body.get("requests") or []):
            kind, a = next(iter(req.items())) if len(req) == 1 else ("", {})
            where, reply = f"Invalid requests[{i}].{kind}: ", {}
            if kind == "updateSheetProperties":
                p, t = a.get("properties", {}), find(a.get("properties", {}).get("sheetId"), where)
                fields = {f.strip().replace("/", ".") for f in (a.get("fields") or "").split(",") if f.strip()}
                if not fields:
                    raise ApiError(400, f"{where}At least one field must be specified.")
                gp = p.get("gridProperties", {})
                if _want(fields, "hidden"):
                    t.hidden = bool(p.get("hidden", False))
                refreeze = False
                for name, attr in (("frozenRowCount", "frozen_rows"), ("frozenColumnCount", "frozen_cols")):
                    if _want(fields, f"gridProperties.{name}"):
                        setattr(t, attr, int(gp.get(name, 0)))
                        refreeze = True
                if _want(fields, "title"):
                    title = p.get("title") or ""
                    if not title or any(o.title == title and o is not t for o in tabs):
                        raise ApiError(
                            400, f'{where}A sheet with the name "{title}" already exists. Please enter another name.'
                        )
                    t.title = title
                # Rows first, then columns, the cell limit checked in between: a request that grows one and
                # shrinks the other may cross it on the way (the order inside one request is not documented).
                new_cols = gp.get("columnCount", 0) if _want(fields, "gridProperties.columnCount") else t.cols
                resize(t, gp.get("rowCount", 0) if _want(fields, "gridProperties.rowCount") else t.rows, t.cols, where)
                _check_cells(before, tabs)
                resize(t, t.rows, new_cols, where, refreeze)
                if _want(fields, "index"):
                    tabs.remove(t)
                    tabs.insert(min(int(p.get("index", 0)), len(tabs)), t)
            elif kind in ("appendDimension", "insertDimension", "deleteDimension"):
                rng = a if kind == "appendDimension" else a.get("range", {})
                t, rows_dim = find(rng.get("sheetId"), where), rng.get("dimension") == "ROWS"
                size = t.rows if rows_dim else t.cols
                if kind == "appendDimension":
                    s = e = size
                    n = int(a.get("length", 0))
                else:
                    s, e = int(rng.get("startIndex", 0)), int(rng.get("endIndex", size))
                    n = e - s
                if n < 1 or s < 0 or e > size or rng.get("dimension") not in ("ROWS", "COLUMNS"):
                    raise ApiError(400, f"{where}Invalid dimension range [{s}, {e}) (size {size}).")
                if kind == "deleteDimension":
                    if n >= size:
                        raise ApiError(
                            400, f"{where}You can't delete all the {'rows' if rows_dim else 'columns'} on the sheet."
                        )
                    t.data = t.data[:s] + t.data[e:] if rows_dim else [line[:s] + line[e:] for line in t.data]
                    n = -n
                elif kind == "insertDimension":
                    t.data = (
                        t.data[:s] + [[] for _ in range(n)] + t.data[s:]
                        if rows_dim
                        else [line[:s] + [""] * n + line[s:] if len(line) > s else line for line in t.data]
                    )
                if rows_dim:
                    t.rows += n
                else:
                    t.cols += n
            elif kind == "addSheet":
                p = a.get("properties", {})
                title = p.get("title") or next(
                    f"Sheet{n}" for n in range(1, 999) if f"Sheet{n}" not in {t.title for t in tabs}
                )
                if any(t.title == title for t in tabs):
                    raise ApiError(
                        400, f'{where}A sheet with the name "{title}" already exists. Please enter another name.'
                    )
                gp = p.get("gridProperties", {})
                sid = p["sheetId"] if "sheetId" in p else self._new_sheet_id(replace(book, tabs=tabs), title)
                if any(t.sheet_id == sid for t in tabs):
                    raise ApiError(400, f"{where}Sheet with id {sid} already exists.")
                t = _Tab(title, sid, int(gp.get("rowCount", 1000)), int(gp.get("columnCount", 26)), [])
                t.hidden = bool(p.get("hidden", False))
                tabs.insert(min(int(p.get("index", len(tabs))), len(tabs)), t)
                reply = {"addSheet": {"properties": t.props(tabs.index(t))}}
            elif kind == "copyPaste":
                # The source is pasted once at the destination's top-left cell (tiling a larger destination
                # is not modelled). Values (PASTE_VALUES: formulas as what they compute), formulas and number
                # formats are modelled; empty source cells overwrite the destination, as in Sheets.
                paste = a.get("pasteType", "PASTE_NORMAL")
                if a.get("pasteOrientation", "NORMAL") != "NORMAL":
                    raise ApiError(400, f"{where}Fake Sheets server: unsupported pasteOrientation")
                st, sr1, sc1, sr2, sc2 = grid_range(a.get("source") or {}, where)
                dst = a.get("destination") or {}
                t = find(dst.get("sheetId"), where)
                dr, dc = int(dst.get("startRowIndex", 0)), int(dst.get("startColumnIndex", 0))
                _check_grid(t, dr + 1, dc + 1, dr + sr2 - sr1, dc + sc2 - sc1)
                if paste in ("PASTE_NORMAL", "PASTE_NO_BORDERS", "PASTE_FORMAT"):
                    t.formats = {k: v for k, v in t.formats.items() if not (dr <= k[0] < dr + sr2 - sr1
                                 and dc <= k[1] < dc + sc2 - sc1)}  # fmt: skip
                    for (r, c), fmt in st.formats.items():
                        if sr1 <= r < sr2 and sc1 <= c < sc2:
                            t.formats[(dr + r - sr1, dc + c - sc1)] = fmt
                if paste in ("PASTE_NORMAL", "PASTE_NO_BORDERS", "PASTE_VALUES", "PASTE_FORMULA"):
                    block = [
                        [pasted(line[c], paste) if c < len(line) else "" for c in range(sc1, sc2)]
                        for line in st.data[sr1:sr2]
                    ]
                    block += [[""] * (sc2 - sc1) for _ in range(sr2 - sr1 - len(block))]
                    t.data = [list(line) for line in t.data]  # a new list: the batch must stay all-or-nothing
                    _write(t, dr + 1, dc + 1, block)
            elif kind == "repeatCell":
                t, r1, c1, r2, c2 = grid_range(a.get("range") or {}, where)
                masks = {f.strip() for f in (a.get("fields") or "").split(",") if f.strip()}
                if not masks:
                    raise ApiError(400, f"{where}At least one field must be specified.")
                if masks & {"*", "userEnteredFormat", "userEnteredFormat.numberFormat"}:
                    fmt = (a.get("cell") or {}).get("userEnteredFormat", {}).get("numberFormat")
                    t.formats = dict(t.formats)
                    for r in range(r1, r2):
                        for c in range(c1, c2):
                            if fmt:
                                t.formats[(r, c)] = dict(fmt)
                            else:
                                t.formats.pop((r, c), None)
            elif kind == "deleteSheet":
                t = find(a.get("sheetId"), where)
                if len(tabs) == 1:
                    raise ApiError(400, f"{where}You can't remove all the sheets in a document.")
                tabs.remove(t)
            else:
                raise ApiError(
                    400,
                    f"Invalid JSON payload received. Unknown name \"{kind}\" at 'requests[{i}]': Cannot find field.",
                )
            _check_cells(before, tabs)
            replies.append(reply)
        book.tabs = tabs
        return {"spreadsheetId": book.key, "replies": replies}


@functools.lru_cache(maxsize=1)
def _private_key_pem() -> str:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def make_service_account_info(
    token_uri: str, email: str = "headwater-test@example.iam.gserviceaccount.com"
) -> dict[str, str]:
    """A complete service-account JSON dict with a (per-process cached) freshly generated RSA key."""
    pem = _private_key_pem()
    return {
        "type": "service_account",
        "project_id": "headwater-test",
        "private_key_id": hashlib.sha1(pem.encode()).hexdigest(),
        "private_key": pem,
        "client_email": email,
        "client_id": "100000000000000000001",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{quote(email)}",
        "universe_domain": "googleapis.com",
    }


def _selftest() -> None:
    """Drive the fake with real google-auth + real gspread over HTTP."""
    import gspread
    import requests
    from google.auth.transport.requests import AuthorizedSession
    from google.oauth2.service_account import Credentials
    from gspread.exceptions import APIError

    def raises(fn: Any, code: int, text: str = "") -> None:
        try:
            fn()
        except APIError as e:
            assert e.code == code and text in str(e), (e.code, str(e))
        else:
            raise AssertionError(f"expected HTTP {code}")

    with FakeSheetsServer() as srv:

        class LocalHTTPClient(gspread.http_client.HTTPClient):
            def request(self, method: str, endpoint: str, *args: Any, **kwargs: Any) -> Any:
                endpoint = endpoint.replace("https://sheets.googleapis.com", srv.url, 1)
                return super().request(method, endpoint, *args, **kwargs)

        scopes = ["https://www.googleapis.com/auth/spreadsheets"]
        creds = Credentials.from_service_account_info(make_service_account_info(srv.token_uri), scopes=scopes)
        session = AuthorizedSession(creds)
        assert session.get(srv.url + "/v4/spreadsheets/nope").json()["error"]["status"] == "NOT_FOUND"
        assert requests.get(srv.url + "/v4/spreadsheets/nope", timeout=5).status_code == 401
        assert requests.post(srv.token_uri, data={"grant_type": "password"}, timeout=5).json() == {
            "error": "invalid_grant",
            "error_description": "Invalid JWT grant.",
        }

        gc = gspread.Client(creds, http_client=LocalHTTPClient)
        srv.add_spreadsheet(
            "k1",
            {"Data": [["id", "name"], [1, "a", ""], [], [3, "c"], ["", ""]], "It's here": [["x", "", "z"]]},
            title="Book",
        )
        sh = gc.open_by_key("k1")
        assert sh.title == "Book" and [w.title for w in sh.worksheets()] == ["Data", "It's here"]
        ws = sh.worksheet("Data")
        assert (ws.id, ws.row_count, ws.col_count) == (0, 1000, 26) and sh.worksheet("It's here").id != 1
        assert ws.get_all_values() == [["id", "name"], [1, "a"], ["", ""], [3, "c"]]
        got = sh.values_batch_get(["Data!A2:B", "'It''s here'", "B1:B2", "Data!A:A"])["valueRanges"]
        assert [g["range"] for g in got] == ["Data!A2:B1000", "'It''s here'!A1:Z1000", "Data!B1:B2", "Data!A1:A1000"]
        assert got[0]["values"] == [[1, "a"], [], [3, "c"]] and got[1]["values"] == [["x", "", "z"]]
        assert srv.requests[-1][2]["ranges"][1] == "'It''s here'"
        cols = sh.values_get("Data!A1:B2", params={"majorDimension": "COLUMNS"})
        assert cols["values"] == [["id", 1], ["name", "a"]], cols
        assert "values" not in sh.values_get("Data!C1:D9")
        raises(lambda: sh.values_get("Nope!A1"), 400, "Unable to parse range: Nope!A1")

        srv.fail_next(429)
        raises(ws.get_all_values, 429, "Quota exceeded")
        assert ws.get_all_values()[0] == ["id", "name"]
        srv.fail_next(401)  # google-auth refreshes the token and retries by itself
        assert ws.acell("A1").value == "id"

        srv.add_spreadsheet("secret", {"S": [["x"]]})
        srv.deny("secret")
        for key, exc in (("secret", PermissionError), ("missing", gspread.SpreadsheetNotFound)):
            try:
                gc.open_by_key(key)
            except exc:
                pass
            else:
                raise AssertionError(key)

        res = ws.update([["x", "y"], ["z"]], "C1:D2")
        assert res["updatedRange"] == "Data!C1:D2" and res["updatedCells"] == 3, res
        assert srv.tab_values("k1", "Data")[:2] == [["id", "name", "x", "y"], [1, "a", "z"]]
        raises(lambda: ws.update([[1, 2, 3]], "A1:B1"), 400, "but tried writing to column [C]")
        ws.resize(rows=5, cols=4)
        meta = sh.fetch_sheet_metadata()["sheets"][0]["properties"]["gridProperties"]
        assert meta == {"rowCount": 5, "columnCount": 4}, meta
        raises(
            lambda: ws.update([[1] * 5], "A1"),
            400,
            "Range ('Data'!A1:E1) exceeds grid limits. Max rows: 5, max columns: 4",
        )
        raises(lambda: ws.get("A1:A6"), 400, "exceeds grid limits")
        raises(lambda: ws.resize(rows=3_000_000), 400, "above the limit of 10000000 cells")
        ws.batch_clear(["A2:B2", "D1"])
        assert srv.tab_values("k1", "Data")[:2] == [["id", "name", "x"], ["", "", "z"]]

        srv.fail_after(1, 503, path_contains="values:batchUpdate")
        ws.batch_update([{"range": "A5", "values": [["ok"]]}])
        raises(lambda: ws.batch_update([{"range": "A5", "values": [["no"]]}]), 503, "unavailable")
        raises(lambda: ws.batch_update([{"range": "A5", "values": [["no"]]}]), 503)
        srv.reset()
        assert srv.requests == []

        srv.add_spreadsheet("k2", {"T": [["h1", "h2"], ["a", "b"]]}, rows=2, cols=2)
        ws = gc.open_by_key("k2").sheet1
        res = ws.append_rows([["c", "d", "e"]])
        assert res["tableRange"] == "T!A1:B2" and res["updates"]["updatedRange"] == "T!A3:C3", res
        assert srv.tab_values("k2", "T") == [["h1", "h2"], ["a", "b"], ["c", "d", "e"]]
        ws.delete_rows(2)
        ws.delete_columns(1)
        assert srv.tab_values("k2", "T") == [["h2"], ["d", "e"]]
        new = ws.spreadsheet.add_worksheet("New", rows=10, cols=3)
        assert new.row_count == 10 and new.index == 1
        ws.spreadsheet.del_worksheet(new)
        ws.clear()
        assert srv.tab_values("k2", "T") == [] and ws.get_all_values() == [[]]
        raises(lambda: gc.http_client.batch_update("k2", {"requests": [{"bogus": {}}]}), 400, "Unknown name")

        srv.add_spreadsheet("k3", {"T": [["a", "b", "c"], ["d", "e", "f"], ["g"]]}, rows=3, cols=3)
        hu = gc.http_client.batch_update
        new_id = hu("k3", {"requests": [{"addSheet": {"properties": {"title": "S", "hidden": True}}}]})["replies"][0]
        sid = new_id["addSheet"]["properties"]["sheetId"]
        assert new_id["addSheet"]["properties"]["hidden"] is True
        gc.http_client.values_update("k3", "S!A1", params={"valueInputOption": "RAW"}, body={"values": [["x", ""]]})
        src = {"sheetId": sid, "startRowIndex": 0, "endRowIndex": 2, "startColumnIndex": 0, "endColumnIndex": 2}
        hu(
            "k3",
            {"requests": [{"copyPaste": {"source": src, "destination": {"sheetId": 0}, "pasteType": "PASTE_VALUES"}}]},
        )
        assert srv.tab_values("k3", "T") == [["x", "", "c"], ["", "", "f"], ["g"]]
        bad = {"copyPaste": {"source": src, "destination": {"sheetId": 0, "startRowIndex": 2}}}
        raises(lambda: hu("k3", {"requests": [{"deleteSheet": {"sheetId": sid}}, bad]}), 400, "No grid with id")
        raises(
            lambda: hu("k3", {"requests": [{**bad, "copyPaste": {**bad["copyPaste"], "source": {"sheetId": sid}}}]}),
            400,
        )
        assert [t["properties"]["title"] for t in gc.open_by_key("k3").fetch_sheet_metadata()["sheets"]] == ["T", "S"]
        freeze = {
            "properties": {"sheetId": 0, "gridProperties": {"frozenRowCount": 1}},
            "fields": "gridProperties.frozenRowCount",
        }
        hu("k3", {"requests": [{"updateSheetProperties": freeze}]})
        shrink = {"properties": {"sheetId": 0, "gridProperties": {"rowCount": 1}}, "fields": "gridProperties.rowCount"}
        raises(lambda: hu("k3", {"requests": [{"updateSheetProperties": shrink}]}), 400, "delete all non-frozen rows")
    print("sheets_server self-test OK")


if __name__ == "__main__":
    _selftest()
