"""What ``headwater export`` reads from and writes to, from its ``--source`` and ``--to`` arguments."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from headwater.errors import HeadwaterError
from headwater.local_airflow import prepare_env


def source_from_argument(url: str) -> Any:
    """The streaming source ``--source`` names: an Airflow Connection id, ``env:VAR`` holding a URL, or a URL."""
    from urllib.parse import unquote, urlparse

    from headwater.sources.mysql import MySQLSource
    from headwater.sources.sql import DuckDBSource, PostgresSource

    url = _from_env(url, "--source")
    if "://" not in url:  # an Airflow Connection id (env var, secrets backend or metadata DB)
        from headwater.airflow.connections import sql_source_from_connection

        return sql_source_from_connection(_connection(url, "--source"))
    parsed = urlparse(url)
    scheme = parsed.scheme.split("+")[0]
    if scheme == "duckdb":
        return DuckDBSource(unquote(parsed.path))
    info = _url_info(url, "--source")
    if scheme in ("postgres", "postgresql"):
        return PostgresSource(info)
    if scheme in ("mysql", "mariadb"):
        info["database"] = info.pop("dbname", None)
        return MySQLSource({k: v for k, v in info.items() if v is not None})
    raise HeadwaterError(f"--source: unknown scheme {parsed.scheme!r} (postgresql, mysql, duckdb)")


def postgres_from_argument(value: str, option: str) -> dict[str, Any]:
    """libpq settings for a PostgreSQL database named by a Connection id, ``env:VAR`` or a postgresql:// URL."""
    value = _from_env(value, option)
    if "://" not in value:
        from headwater.airflow.connections import libpq_conninfo

        conn = _connection(value, option)
        if (conn.conn_type or "").lower() not in ("postgres", "postgresql"):
            raise HeadwaterError(f"{option}: Connection {value!r} is of type {conn.conn_type!r}, not postgres")
        return libpq_conninfo(conn)
    if value.split("://", 1)[0].split("+")[0] not in ("postgres", "postgresql"):
        raise HeadwaterError(f"{option}: not a postgresql:// URL")
    return _url_info(value, option)


def _from_env(value: str, option: str) -> str:
    if not value.startswith("env:"):
        return value
    name = value.removeprefix("env:")
    found = os.environ.get(name)
    if not found:
        raise HeadwaterError(f"{option} env:{name}: the environment variable {name} is not set")
    if "://" not in found:
        raise HeadwaterError(f"{option} env:{name}: the variable does not hold a URL (scheme://...)")
    return found


def _connection(conn_id: str, option: str) -> Any:
    prepare_env(None)
    from headwater.airflow.connections import get_connection

    conn = get_connection(conn_id)
    if conn is None:
        raise HeadwaterError(f"{option}: no Airflow Connection {conn_id!r}, and not a URL")
    return conn


def _url_info(url: str, option: str) -> dict[str, Any]:
    """host, port, user, password and dbname of a database URL (percent-decoded)."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(url)
    try:
        port = parsed.port
    except ValueError:  # its message would quote part of the password
        raise HeadwaterError(
            f"{option}: the URL's port is not a number; a '#', '/', '?' or '@' in the password must be "
            "percent-encoded (for example %23 for '#')"
        ) from None
    info = {
        "host": parsed.hostname or "localhost",
        "user": unquote(parsed.username or "") or None,
        "password": unquote(parsed.password or "") or None,
        "port": port,
        "dbname": parsed.path.lstrip("/") or None,
    }
    return {k: v for k, v in info.items() if v is not None}


def lake_for_destination(to: str) -> Any:
    """The lake holding ``--to``: S3 (the default boto3 credentials) or the local folder above the path."""
    from urllib.parse import urlparse

    from headwater.lake import LocalLake, S3Lake

    if to.startswith("s3://"):
        import boto3

        parsed = urlparse(to)
        return S3Lake(boto3.client("s3"), f"s3://{parsed.netloc}")
    path = Path(urlparse(to).path if to.startswith("file://") else to).resolve()
    return LocalLake(path.parent)
