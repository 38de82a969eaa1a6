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

    if url.startswith("env:"):
        name = url.removeprefix("env:")
        value = os.environ.get(name)
        if not value:
            raise HeadwaterError(f"--source env:{name}: the environment variable {name} is not set")
        if "://" not in value:
            raise HeadwaterError(f"--source env:{name}: the variable does not hold a URL (scheme://...)")
        url = value

    if "://" not in url:  # an Airflow Connection id (env var, secrets backend or metadata DB)
        prepare_env(None)
        from headwater.airflow.connections import get_connection, sql_source_from_connection

        conn = get_connection(url)
        if conn is None:
            raise HeadwaterError(f"--source: no Airflow Connection {url!r}, and not a URL")
        return sql_source_from_connection(conn)
    parsed = urlparse(url)
    scheme = parsed.scheme.split("+")[0]
    if scheme == "duckdb":
        return DuckDBSource(unquote(parsed.path))
    try:
        port = parsed.port
    except ValueError:  # its message would quote part of the password
        raise HeadwaterError(
            "--source: the URL's port is not a number; a '#', '/', '?' or '@' in the password must be "
            "percent-encoded (for example %23 for '#')"
        ) from None
    info = {
        "host": parsed.hostname or "localhost",
        "user": unquote(parsed.username or "") or None,
        "password": unquote(parsed.password or "") or None,
        "port": port,
    }
    database = parsed.path.lstrip("/") or None
    if scheme in ("postgres", "postgresql"):
        return PostgresSource({k: v for k, v in {**info, "dbname": database}.items() if v is not None})
    if scheme in ("mysql", "mariadb"):
        return MySQLSource({k: v for k, v in {**info, "database": database}.items() if v is not None})
    raise HeadwaterError(f"--source: unknown scheme {parsed.scheme!r} (postgresql, mysql, duckdb)")


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
