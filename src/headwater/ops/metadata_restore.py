"""Restore a metadata backup into an empty PostgreSQL database and prove it complete.

Before the target is touched, every object is checked against the manifest's sha256 and the Fernet key
is shown to decrypt the backup's secrets. The dump is restored in one transaction (``pg_restore
--single-transaction``); the Connections and Variables then go in with their ciphertext unchanged, and
the row count of every table is compared with the counts taken at the backup's snapshot.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headwater.lake import Lake
from headwater.ops.backup_manifest import DUMP, SECRETS_FILE, BackupError, StoredBackup
from headwater.ops.metadata_backup import (
    SECRET_COLUMNS,
    Cipher,
    database_label,
    pg_env,
    row_counts,
    run_pg_tool,
    scalar,
)
from headwater.scratch import scratch_folder

log = logging.getLogger(__name__)


@dataclass
class RestoreReport:
    database: str
    tables: dict[str, int]
    backup: StoredBackup


def restore_metadata(
    lake: Lake, backup: StoredBackup, conninfo: dict[str, Any], *, cipher: Cipher | None
) -> RestoreReport:
    """Restore ``backup`` into the empty database of ``conninfo``; BackupError names what stopped it."""
    manifest = backup.manifest
    label = database_label(conninfo)
    with scratch_folder() as tmp:
        for obj in manifest.objects:
            path = tmp / obj.name
            _download(lake, f"{backup.uri}/{obj.name}", path, obj.bytes, obj.sha256)
        rows = {t: _secret_file(tmp / n, t) for t, n in SECRETS_FILE.items() if (tmp / n).exists()}
        if manifest.secrets == "encrypt":
            _check_key(rows, cipher, backup.uri)
        _check_empty(conninfo, label)
        log.info("restoring %s into %s", backup.uri, label)
        args = ["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction"]
        args += ["--no-password", f"--dbname={conninfo.get('dbname', 'postgres')}", str(tmp / DUMP)]
        env = pg_env({k: v for k, v in conninfo.items() if k != "dbname"})
        run_pg_tool(args, env, f"restore into {label}")
    tables = _insert_secrets(conninfo, label, manifest.schema, rows)
    differ = {t: (n, tables.get(t)) for t, n in manifest.tables.items() if tables.get(t) != n}
    if differ:
        detail = ", ".join(f"{t}: {got} rows, backup had {want}" for t, (want, got) in list(differ.items())[:5])
        raise BackupError(
            f"restore into {label} does not match the backup ({detail}); the database was empty before, so "
            "drop and recreate it before trying again"
        )
    return RestoreReport(label, tables, backup)


def _download(lake: Lake, uri: str, path: Path, size: int, sha256: str) -> None:
    digest = hashlib.sha256()
    with lake.open_read(uri) as source, path.open("wb") as target:
        while chunk := source.read(1 << 20):
            digest.update(chunk)
            target.write(chunk)
    got = path.stat().st_size
    if got != size or digest.hexdigest() != sha256:
        raise BackupError(
            f"{uri}: {got} bytes with sha256 {digest.hexdigest()[:12]}..., but the backup's manifest says "
            f"{size} bytes with {sha256[:12]}...; the object is damaged, nothing was restored"
        )


def _secret_file(path: Path, table: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(gzip.decompress(path.read_bytes()))
    if (
        data.get("table") != table
        or not isinstance(data.get("columns"), list)
        or not isinstance(data.get("rows"), list)
    ):
        raise BackupError(f"{path.name}: not the {table} rows of a headwater backup")
    return data


def _check_key(rows: dict[str, dict[str, Any]], cipher: Cipher | None, uri: str) -> None:
    """The key must decrypt one secret of each table, or the restored Airflow could not read them."""
    for table, data in rows.items():
        for column, flag in SECRET_COLUMNS[table].items():
            if column not in data["columns"]:
                continue
            at, marked = data["columns"].index(column), data["columns"].index(flag)
            sample = next((r[at] for r in data["rows"] if r[at] is not None and r[marked]), None)
            if sample is None:
                continue
            if cipher is None:
                raise BackupError(
                    f"{uri}: its {table} secrets are Fernet-encrypted and no [core] fernet_key is set here; set "
                    "AIRFLOW__CORE__FERNET_KEY to the key of the Airflow that made the backup (it needs it too)"
                )
            try:
                cipher.decrypt(str(sample).encode())
            except Exception:
                raise BackupError(
                    f"{uri}: the [core] fernet_key set here cannot decrypt its {table} secrets; set "
                    "AIRFLOW__CORE__FERNET_KEY to the key of the Airflow that made the backup"
                ) from None


def _check_empty(conninfo: dict[str, Any], label: str) -> None:
    import psycopg

    try:
        with psycopg.connect(**{"connect_timeout": 30, **conninfo}) as conn:
            found = conn.execute(
                "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname NOT IN ('pg_catalog', "
                "'information_schema') AND n.nspname NOT LIKE 'pg_toast%' ORDER BY 1"
            ).fetchall()
    except psycopg.OperationalError as exc:
        raise BackupError(f"{label}: cannot connect: {str(exc).strip()}") from None
    if found:
        raise BackupError(
            f"{label} is not empty ({len(found)} relations, first: {found[0][0]}); headwater restores only into "
            "an empty database: create one (createdb) and restore into it"
        )


def _insert_secrets(
    conninfo: dict[str, Any], label: str, schema: str, rows: dict[str, dict[str, Any]]
) -> dict[str, int]:
    """Insert the Connection and Variable rows as backed up, move their id sequences past them, and count
    every table, in one transaction."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(**conninfo) as conn:
        for table, data in rows.items():
            if not data["rows"]:
                continue
            columns = sql.SQL(", ").join(map(sql.Identifier, data["columns"]))
            marks = sql.SQL(", ").join(sql.Placeholder() * len(data["columns"]))
            name = sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(table))
            with conn.cursor() as cursor:
                cursor.executemany(
                    sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(name, columns, marks), data["rows"]
                )
            if "id" in data["columns"]:
                qualified = f'"{schema}"."{table}"'
                sequence = scalar(conn, "SELECT pg_get_serial_sequence(%s, 'id')", (qualified,))
                if sequence is not None:
                    top = scalar(conn, sql.SQL("SELECT max(id) FROM {}").format(name))
                    conn.execute("SELECT setval(%s, %s)", (sequence, top))
        counts = row_counts(conn)
    log.info("%s: %d tables, %d rows restored", label, len(counts), sum(counts.values()))
    return counts


def pg_tools_missing() -> str | None:
    """Why a backup or restore cannot run here, or None."""
    missing = [t for t in ("pg_dump", "pg_restore") if shutil.which(t) is None]
    return f"{' and '.join(missing)} not installed (apt install postgresql-client)" if missing else None
