"""Back up a PostgreSQL Airflow metadata database into the lake with ``pg_dump``.

Everything is read from one exported snapshot: the row count of every table, the Connection and Variable
rows, and the dump itself (``pg_dump --snapshot``), so they agree with each other exactly. The dump leaves
out the data of the ``connection`` and ``variable`` tables; those rows are written beside it with every
secret (password, extra, value) Fernet-encrypted, whether or not the database held it encrypted, or with
the secrets left out. Nothing in a backup holds a Connection's secret in clear.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from headwater.lake import Lake, sha256_file
from headwater.ops.backup_manifest import (
    ATTEMPT,
    DUMP,
    MANIFEST,
    OBJECT_NAMES,
    SECRET_MODES,
    SECRETS_FILE,
    BackupError,
    BackupManifest,
    BackupObject,
    prune_backups,
    write_attempt_marker,
)
from headwater.scratch import scratch_folder

log = logging.getLogger(__name__)

# secret column -> the flag column saying it holds Fernet ciphertext; the label column names a row
SECRET_COLUMNS = {
    "connection": {"password": "is_encrypted", "extra": "is_extra_encrypted"},
    "variable": {"val": "is_encrypted"},
}
ROW_LABEL = {"connection": "conn_id", "variable": "key"}
_PG_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "options": "PGOPTIONS",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
    "connect_timeout": "PGCONNECT_TIMEOUT",
}
PROGRESS_SECONDS = 15.0


class Cipher(Protocol):
    """What a backup needs of a Fernet (``cryptography.fernet.MultiFernet``)."""

    def encrypt(self, data: bytes) -> bytes: ...

    def decrypt(self, token: bytes | str, ttl: int | None = None) -> bytes: ...


def fernet_from_key(key: str | None) -> Cipher | None:
    """A MultiFernet for Airflow's ``[core] fernet_key`` (comma-separated keys, newest first), None if empty."""
    from cryptography.fernet import Fernet, MultiFernet

    if not key or not key.strip():
        return None
    try:
        return MultiFernet([Fernet(part.strip().encode()) for part in key.split(",") if part.strip()])
    except ValueError:
        raise BackupError("[core] fernet_key is set but is not a valid Fernet key (32 url-safe base64 bytes)") from None


def database_label(conninfo: dict[str, Any]) -> str:
    """``host:port/dbname`` for messages; never the user's password."""
    return f"{conninfo.get('host', 'localhost')}:{conninfo.get('port', 5432)}/{conninfo.get('dbname', '?')}"


def pg_env(conninfo: dict[str, Any]) -> dict[str, str]:
    """The environment for pg_dump / pg_restore: this process's minus any inherited PG* variable, plus the
    connection as libpq variables, so the password is never on a command line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    for key, value in conninfo.items():
        if key in _PG_ENV and value is not None:
            env[_PG_ENV[key]] = str(value)
    return env


def run_pg_tool(args: list[str], env: dict[str, str], what: str, progress: Callable[[], None] | None = None) -> None:
    """Run pg_dump or pg_restore; BackupError with its last message line if it fails (transient when the
    server could not be reached). The child is killed if this process is interrupted."""
    tool = args[0]
    if shutil.which(tool) is None:
        raise BackupError(f"{what}: {tool} is not installed (Debian/Ubuntu: apt install postgresql-client)")
    with subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as child:  # noqa: S603
        try:
            while True:
                try:
                    child.wait(timeout=PROGRESS_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    if progress is not None:
                        progress()
            stderr = child.stderr.read().decode("utf-8", "replace") if child.stderr else ""
        finally:
            if child.poll() is None:
                child.kill()
    if child.returncode != 0:
        lines = [x.strip() for x in stderr.splitlines() if x.strip()]
        message = lines[-1] if lines else f"exit status {child.returncode}"
        if "server version mismatch" in stderr:
            message += f" (use a {tool} at least as new as the server)"
        transient = any(m in stderr for m in ("could not connect", "Connection refused", "timeout expired"))
        raise BackupError(f"{what}: {tool} failed: {message}", transient=transient)


def scalar(conn: Any, query: Any, params: Any = None) -> Any:
    """The first column of the first row of ``query``."""
    row = conn.execute(query, params).fetchone()
    if row is None:
        raise BackupError("the database returned no row for a query that always has one")
    return row[0]


def row_counts(conn: Any) -> dict[str, int]:
    """``schema.table`` -> rows for every ordinary table outside the system schemas."""
    from psycopg import sql

    names = conn.execute(
        "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
        "AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' ORDER BY 1, 2"
    ).fetchall()
    counts = {}
    for schema, table in names:
        query = sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
        counts[f"{schema}.{table}"] = int(scalar(conn, query))
    return counts


def airflow_schema(conn: Any, label: str) -> str:
    """The schema holding Airflow's ``connection`` and ``variable`` tables; BackupError if there is none."""
    rows = conn.execute(
        "SELECT table_schema FROM information_schema.columns WHERE table_name IN ('connection', 'variable') "
        "AND column_name = 'is_encrypted' GROUP BY table_schema HAVING count(DISTINCT table_name) = 2"
    ).fetchall()
    if len(rows) != 1:
        found = "none" if not rows else ", ".join(r[0] for r in rows)
        raise BackupError(
            f"{label}: not one Airflow metadata database (schemas with Airflow's connection and variable "
            f"tables: {found})"
        )
    return str(rows[0][0])


def table_columns(conn: Any, schema: str, table: str) -> list[str]:
    rows = conn.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
        "ORDER BY ordinal_position",
        (schema, table),
    ).fetchall()
    return [r[0] for r in rows]


def secret_rows(conn: Any, schema: str, table: str, secrets: str, cipher: Cipher | None) -> dict[str, Any]:
    """The rows of ``connection`` or ``variable`` with every secret column encrypted (or nulled for ``omit``).

    Values the database already holds encrypted are kept as they are (same key, or an older key of the
    list); values held in clear are encrypted with the first key. A clear secret without a key is an error
    naming the rows, never a clear copy.
    """
    from psycopg import sql

    columns = table_columns(conn, schema, table)
    query = sql.SQL("SELECT {} FROM {}.{} ORDER BY 1").format(
        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(schema), sql.Identifier(table)
    )
    rows, in_clear = [], []
    for values in conn.execute(query).fetchall():
        record = dict(zip(columns, values, strict=True))
        for column, flag in SECRET_COLUMNS[table].items():
            if record.get(column) is None:
                continue
            if secrets == "omit":
                record[column], record[flag] = None, False
            elif not record.get(flag):
                if cipher is None:
                    in_clear.append(str(record.get(ROW_LABEL[table])))
                    continue
                record[column], record[flag] = cipher.encrypt(str(record[column]).encode()).decode(), True
        rows.append([record[c] for c in columns])
    if in_clear:
        names = ", ".join(sorted(set(in_clear))[:10])
        raise BackupError(
            f"{table} rows {names} hold secrets in clear and [core] fernet_key is empty: set a Fernet key "
            "(the backup encrypts them with it) or back up with secrets: omit"
        )
    return {"table": table, "columns": columns, "rows": rows}


def backup_metadata(
    conninfo: dict[str, Any],
    lake: Lake,
    prefix: str,
    *,
    keep: int,
    secrets: str = "encrypt",
    cipher: Cipher | None = None,
    compress_level: int = 6,
    airflow_version: str | None = None,
) -> tuple[str, BackupManifest, list[str]]:
    """Dump the database into a new folder under ``prefix``, publish its manifest, then keep the newest
    ``keep`` backups. Returns the new folder, its manifest and the folders pruned. On failure the new
    folder's objects are removed and older backups are untouched."""
    if secrets not in SECRET_MODES:
        raise BackupError(f"secrets must be one of {', '.join(SECRET_MODES)}, not {secrets!r}")
    if keep < 1:
        raise BackupError(f"keep must be at least 1, not {keep}")
    label = database_label(conninfo)
    folder = f"{prefix.rstrip('/')}/{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}-{uuid.uuid4().hex[:6]}"
    write_attempt_marker(lake, folder, {"host": socket.gethostname(), "pid": os.getpid(), "started_at": _now()})
    try:
        with scratch_folder() as tmp:
            manifest = _dump(conninfo, label, tmp, secrets, cipher, compress_level, airflow_version)
            for obj in manifest.objects:
                lake.write_file(f"{folder}/{obj.name}", tmp / obj.name)
        lake.write_bytes(f"{folder}/{MANIFEST}", manifest.to_json().encode("utf-8"))
    except BaseException:
        try:
            lake.delete([f"{folder}/{name}" for name in (*OBJECT_NAMES, ATTEMPT)])
        except Exception as exc:  # the marker stays; a later backup sweeps the folder
            log.warning("could not remove the failed backup's objects under %s: %s", folder, exc)
        raise
    lake.delete([f"{folder}/{ATTEMPT}"])
    log.info("backup of %s published: %s (%.1f MB)", label, folder, manifest.total_bytes / 1e6)
    return folder, manifest, prune_backups(lake, prefix, keep)


def _dump(
    conninfo: dict[str, Any],
    label: str,
    tmp: Path,
    secrets: str,
    cipher: Cipher | None,
    compress_level: int,
    airflow_version: str | None,
) -> BackupManifest:
    import psycopg

    from headwater.errors import connect_transient

    try:
        conn = psycopg.connect(**{"connect_timeout": 30, **conninfo}, autocommit=False)
    except psycopg.OperationalError as exc:
        raise BackupError(f"{label}: cannot connect: {str(exc).strip()}", transient=connect_transient(exc)) from None
    with conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        snapshot = scalar(conn, "SELECT pg_export_snapshot()")  # held while the transaction lives
        schema = airflow_schema(conn, label)
        tables = row_counts(conn)
        revision = None
        if f"{schema}.alembic_version" in tables:
            from psycopg import sql

            got = conn.execute(sql.SQL("SELECT version_num FROM {}.alembic_version").format(sql.Identifier(schema)))
            revision = next((str(r[0]) for r in got.fetchall()), None)
        log.info("%s: %d tables, %d rows at the snapshot; dumping", label, len(tables), sum(tables.values()))
        for table, name in SECRETS_FILE.items():
            data = json.dumps(secret_rows(conn, schema, table, secrets, cipher), default=str).encode("utf-8")
            (tmp / name).write_bytes(gzip.compress(data, mtime=0))
        args = ["pg_dump", "--format=custom", f"--compress={compress_level}", f"--snapshot={snapshot}"]
        args += ["--no-password", f"--file={tmp / DUMP}"]
        args += [f'--exclude-table-data="{schema}"."{table}"' for table in SECRET_COLUMNS]
        started = time.monotonic()

        def progress() -> None:
            size = (tmp / DUMP).stat().st_size if (tmp / DUMP).exists() else 0
            log.info("pg_dump of %s: %.1f MB written, %.0f s", label, size / 1e6, time.monotonic() - started)

        run_pg_tool(args, pg_env(conninfo), f"backup of {label}", progress)
        server_version = str(scalar(conn, "SHOW server_version"))
        conn.rollback()
    objects = [BackupObject(n, (tmp / n).stat().st_size, sha256_file(tmp / n)) for n in OBJECT_NAMES]
    return BackupManifest(
        database=label,
        server_version=server_version,
        schema=schema,
        schema_revision=revision,
        secrets=secrets,
        objects=objects,
        tables=tables,
        airflow_version=airflow_version,
    )


def _now() -> str:
    return datetime.now(UTC).isoformat()
