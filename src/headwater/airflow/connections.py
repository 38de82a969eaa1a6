"""Airflow Connections turned into the core's clients: warehouse, lake and Google Sheets.

Secrets are read from the Connection into memory and handed to client libraries; nothing here writes
them to disk or logs them. A warehouse Connection that is not defined at all means the embedded DuckDB
file (and the log says so); one that is defined but malformed is an error naming it.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from headwater.errors import ConnectionConfigError, LakeError, SourceError, WarehouseError
from headwater.lake import Lake, LocalLake, S3Lake
from headwater.settings import LAKE_ENV, default_duckdb_path, default_lake_url
from headwater.warehouse.base import Warehouse

if TYPE_CHECKING:
    import gspread

log = logging.getLogger(__name__)

_LIBPQ_EXTRAS = ("sslmode", "sslrootcert", "sslcert", "sslkey", "options", "target_session_attrs", "keepalives")


def get_connection(conn_id: str) -> Any | None:
    """The Connection ``conn_id`` from Airflow (env, secrets backend or metadata DB), or None if undefined.

    Airflow reports a Connection that is set but does not parse as "not defined"; here it is an error
    naming the id, the backend and what is wrong (never the secret itself), so nothing falls back to a
    default behind the user's back.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    conn: Any
    try:
        conn = BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        conn = _ask_backends_again(conn_id)
        if conn is None:
            return None
    _check_fields(conn_id, conn)
    return conn


_PARSE_ERRORS = (ValueError, TypeError, KeyError)  # json.JSONDecodeError is a ValueError


def _ask_backends_again(conn_id: str) -> Any | None:
    """Ask each secrets backend again, keeping the error Airflow only logs at debug level.

    A Connection that does not parse is an error naming it; a backend that cannot be reached (a timeout,
    an API error) is a transient error, never "undefined"; one that answers this time is used.
    """
    from airflow.sdk.execution_time.supervisor import ensure_secrets_backend_loaded

    for backend in ensure_secrets_backend_loaded():
        try:
            found = backend.get_connection(conn_id=conn_id)
        except _PARSE_ERRORS as exc:
            raise ConnectionConfigError(
                f"Connection {conn_id!r} ({type(backend).__name__}) is set but does not parse: {_parse_problem(exc)}"
            ) from None
        except Exception as exc:
            raise ConnectionConfigError(
                f"Connection {conn_id!r}: the secrets backend {type(backend).__name__} failed ({type(exc).__name__})",
                transient=True,
            ) from None
        if found is not None:
            return found
    return None


def _parse_problem(exc: BaseException) -> str:
    """What is wrong with a Connection, in words that never repeat its values (they may hold the password)."""
    text = str(exc)
    if "Port could not be cast" in text:
        return (
            "the port is not a number; a '#', '/', '?' or '@' in the login or password must be "
            "percent-encoded in a URI (for example %23 for '#')"
        )
    if "Expected integer value for `port`" in text:
        return "the port is not an integer"
    unknown = re.search(r"unexpected keyword argument '(\w+)'", text)
    if unknown:
        return f"unknown field {unknown.group(1)!r}"
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON (line {exc.lineno}, column {exc.colno})"
    return f"{type(exc).__name__}"


def _check_fields(conn_id: str, conn: Any) -> None:
    if not (conn.conn_type or "").strip():
        raise ConnectionConfigError(f"Connection {conn_id!r} has no connection type (is it a valid URI or JSON?)")
    extra = conn.extra
    if extra:
        try:
            parsed = json.loads(extra)
        except ValueError as exc:
            raise ConnectionConfigError(
                f"Connection {conn_id!r}: its extra is not valid JSON (line {exc.lineno}, column {exc.colno})"  # type: ignore[attr-defined]
            ) from None
        if not isinstance(parsed, dict):
            raise ConnectionConfigError(f"Connection {conn_id!r}: its extra must be a JSON object")


def warehouse_for(conn_id: str, aws_conn_id: str | None = None) -> Warehouse:
    """The warehouse of Connection ``conn_id``; the embedded DuckDB file only when the id is undefined."""
    conn = get_connection(conn_id)
    warehouse = warehouse_from_connection(conn, aws_conn_id)
    if conn is None:
        log.info("Connection %r is not defined: using the embedded warehouse %s", conn_id, warehouse.describe())
    return warehouse


def libpq_conninfo(conn: Any) -> dict[str, Any]:
    """psycopg keyword arguments from a postgres or redshift Connection (libpq options may sit in the extra)."""
    extra = conn.extra_dejson or {}
    info = {
        "host": conn.host or "localhost",
        "dbname": conn.schema or extra.get("dbname") or "postgres",
        "user": conn.login or None,
        "password": conn.password or None,
        "port": int(conn.port) if conn.port else (5439 if (conn.conn_type or "").lower() == "redshift" else None),
        **{k: extra[k] for k in _LIBPQ_EXTRAS if k in extra},
    }
    return {k: v for k, v in info.items() if v is not None}


def duckdb_path(conn: Any) -> str:
    path = (conn.extra_dejson or {}).get("path") or conn.host
    if not path:
        raise ConnectionConfigError(f"Connection {conn.conn_id!r}: a duckdb Connection needs extra 'path' (or host)")
    return str(path)


def warehouse_from_connection(conn: Any | None, aws_conn_id: str | None = None) -> Warehouse:
    """A warehouse for a Connection of type postgres, redshift or duckdb; None gives the embedded DuckDB."""
    from headwater.warehouse.duckdb import DuckDBWarehouse

    if conn is None:
        return DuckDBWarehouse(default_duckdb_path())
    extra = conn.extra_dejson or {}
    kind = (conn.conn_type or "").lower()
    if kind == "duckdb":
        try:
            lock_timeout = float(extra.get("lock_timeout", 600))
        except (TypeError, ValueError):
            raise ConnectionConfigError(f"Connection {conn.conn_id!r}: extra 'lock_timeout' must be seconds") from None
        return DuckDBWarehouse(duckdb_path(conn), lock_timeout=lock_timeout)
    conninfo = libpq_conninfo(conn)
    if kind in ("postgres", "postgresql"):
        from headwater.warehouse.postgres import PostgresWarehouse

        return PostgresWarehouse(conninfo)
    if kind == "redshift":
        from headwater.warehouse.redshift import RedshiftWarehouse

        role = extra.get("iam_role")
        credentials = None
        if not role:
            credentials = aws_credentials(extra.get("aws_conn_id") or aws_conn_id or "aws_default")
        return RedshiftWarehouse(conninfo, iam_role=role, aws_credentials=credentials, region=extra.get("region"))
    raise WarehouseError(
        f"Connection {conn.conn_id!r}: type {conn.conn_type!r} is not a warehouse headwater knows "
        "(postgres, redshift, duckdb)"
    )


def sql_source_from_connection(conn: Any) -> Any:
    """A streaming SQL source for a postgres, mysql (MariaDB too) or duckdb Connection."""
    from headwater.sources.mysql import MySQLSource
    from headwater.sources.sql import DuckDBSource, PostgresSource

    kind = (conn.conn_type or "").lower()
    if kind in ("postgres", "postgresql", "redshift"):  # Redshift: describe and plan here; export by UNLOAD
        return PostgresSource(libpq_conninfo(conn))
    if kind in ("mysql", "mariadb"):
        info = {
            "host": conn.host or "localhost",
            "database": conn.schema or None,
            "user": conn.login or "root",
            "password": conn.password or "",
            "port": int(conn.port) if conn.port else 3306,
        }
        return MySQLSource({k: v for k, v in info.items() if v is not None})
    if kind == "duckdb":
        return DuckDBSource(duckdb_path(conn))
    raise SourceError(
        f"Connection {conn.conn_id!r}: type {conn.conn_type!r} is not a source headwater can export "
        "from (postgres, mysql, duckdb)"
    )


def aws_credentials(aws_conn_id: str) -> dict[str, str]:
    from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook

    frozen = AwsBaseHook(aws_conn_id=aws_conn_id, client_type="sts").get_credentials()
    creds = {"access_key": str(frozen.access_key), "secret_key": str(frozen.secret_key)}
    if frozen.token:
        creds["token"] = str(frozen.token)
    return creds


def resolved_lake_url(configured: str | None) -> str:
    """$HEADWATER_LAKE_URL, else the configured lake URL, else the embedded lake folder."""
    return os.environ.get(LAKE_ENV) or configured or default_lake_url()


def lake_from_url(url: str, aws_conn_id: str = "aws_default") -> Lake:
    """A LocalLake for an absolute path or ``file://`` URL, an S3Lake through the AWS Connection for ``s3://``.

    Anything else (another scheme, a relative path, ``s3:/bucket``) is refused rather than taken as a folder.
    """
    from urllib.parse import unquote, urlparse

    parsed = urlparse(url)
    if parsed.scheme == "s3":
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        get_connection(aws_conn_id)  # a malformed AWS Connection is an error, not anonymous access
        return S3Lake(S3Hook(aws_conn_id=aws_conn_id).get_conn(), url)
    if parsed.scheme == "file" and parsed.netloc in ("", "localhost"):
        return LocalLake(unquote(parsed.path))
    if not parsed.scheme and url.startswith("/"):
        return LocalLake(url)
    raise LakeError(
        f"lake URL {url!r} is not s3://bucket/prefix, file:///absolute/path or an absolute path "
        f"(set by defaults.lake_url or ${LAKE_ENV})"
    )


def sheets_client(conn_id: str, scopes: Sequence[str] | None = None) -> gspread.Client:
    """A gspread client from the Connection holding a service-account JSON key.

    The key may sit in the extra as ``keyfile_dict`` (as the Google provider keeps it) or as the
    Connection's password. Extra ``api_base`` points the client at another endpoint (a proxy, a test server).
    """
    from headwater.sources.sheets import READ_SCOPES, RetryPolicy, connect

    conn = get_connection(conn_id)
    if conn is None:
        raise SourceError(
            f"reading a Google Sheet needs the Airflow Connection {conn_id!r} holding a service-account JSON key "
            "(extra 'keyfile_dict', or the password)"
        )
    extra = conn.extra_dejson or {}
    raw = extra.get("keyfile_dict") or extra.get("extra__google_cloud_platform__keyfile_dict") or conn.password
    if not raw:
        raise SourceError(f"Connection {conn_id!r} has no service-account key (extra 'keyfile_dict' or password)")
    try:
        info = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except ValueError:
        raise SourceError(f"Connection {conn_id!r}: the service-account key is not valid JSON") from None
    retry = RetryPolicy(
        attempts=int(extra.get("retry_attempts", RetryPolicy.attempts)),
        first_wait=float(extra.get("retry_first_wait", RetryPolicy.first_wait)),
        max_wait=float(extra.get("retry_max_wait", RetryPolicy.max_wait)),
    )
    return connect(
        info,
        api_base=extra.get("api_base"),
        retry=retry,
        timeout=float(extra.get("timeout", 60)),
        scopes=scopes or READ_SCOPES,
    )
