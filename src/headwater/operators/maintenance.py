"""Housekeeping operators: ``LogCleanupOperator`` deletes task logs past a retention (headwater.log_cleanup);
``MetadataCleanupOperator`` runs ``airflow db clean``; ``MetadataBackupOperator`` dumps the metadata
database into the lake."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, Context

from headwater.operators.base import HeadwaterOperator

ACTIVE = ["running", "queued", "scheduled", "up_for_retry", "up_for_reschedule", "deferred", "restarting"]


class LogCleanupOperator(BaseOperator):
    """Delete task logs under ``folder`` (default: ``[logging] base_log_folder``) not modified for
    ``retention_days``, never a link and never the logs of a task instance that is still active (asked of
    Airflow for each old file's dag, run and task); ``dry_run`` only lists them. Returns the counts."""

    template_fields: Sequence[str] = ("folder",)
    ui_color = "#eaeded"

    def __init__(
        self, *, retention_days: float, dry_run: bool = False, folder: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.retention_days = retention_days
        self.list_only = dry_run  # not self.dry_run: BaseOperator has a dry_run() method
        self.folder = folder

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.configuration import conf
        from airflow.sdk.exceptions import AirflowFailException

        from headwater.errors import ConfigError
        from headwater.log_cleanup import clean_logs

        folder = Path(self.folder or conf.get("logging", "base_log_folder"))
        ti = context["ti"]
        asked: dict[tuple[str, str, str], bool] = {}

        def active(path: Path) -> bool:
            parts = dict(p.split("=", 1) for p in path.parts if "=" in p)
            key = (parts.get("dag_id", ""), parts.get("run_id", ""), parts.get("task_id", ""))
            if not all(key):
                return False  # not a task log (dag processor, scheduler)
            if key not in asked:
                count = ti.get_ti_count(dag_id=key[0], run_ids=[key[1]], task_ids=[key[2]], states=ACTIVE)
                asked[key] = count > 0
            return asked[key]

        try:
            report = clean_logs(folder, self.retention_days, dry_run=self.list_only, running=active)
        except ConfigError as exc:
            raise AirflowFailException(str(exc)) from exc
        for path in report.files[:50] if self.list_only else []:
            self.log.info("would delete %s", path)
        self.log.info("%s: %s", folder, report.summary())
        return {
            "dry_run": self.list_only,
            "files": len(report.files),
            "bytes": report.bytes,
            "folders": len(report.folders),
            "kept_running": len(report.kept_running),
            "skipped_links": len(report.skipped_links),
        }


class MetadataCleanupOperator(BaseOperator):
    """Run ``airflow db clean`` for rows older than ``retention_days``: archived (unless ``archive`` is off),
    in batches of ``batch_size``, failing on any cleanup error; ``dry_run`` only reports what it would do."""

    ui_color = "#eaeded"

    def __init__(
        self,
        *,
        retention_days: float,
        batch_size: int = 10000,
        archive: bool = True,
        tables: Sequence[str] = (),
        dry_run: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.retention_days = retention_days
        self.batch_size = batch_size
        self.archive = archive
        self.tables = list(tables)
        self.list_only = dry_run  # not self.dry_run: BaseOperator has a dry_run() method

    def command(self, now: datetime) -> list[str]:
        before = (now - timedelta(days=self.retention_days)).isoformat()
        args = [str(Path(sys.executable).with_name("airflow")), "db", "clean", "--clean-before-timestamp", before]
        args += ["--batch-size", str(self.batch_size), "--yes", "--error-on-cleanup-failure"]
        args += [] if self.archive else ["--skip-archive"]
        args += ["--tables", ",".join(self.tables)] if self.tables else []
        return args + (["--dry-run"] if self.list_only else [])

    def execute(self, context: Context) -> dict[str, Any]:
        import subprocess

        from airflow.sdk.exceptions import AirflowFailException

        now = datetime.now(UTC)
        args = self.command(now)
        done = subprocess.run(args, capture_output=True, text=True, timeout=3600, check=False)  # noqa: S603
        for line in (done.stdout + done.stderr).splitlines():
            if line.strip():
                self.log.info("%s", line)
        if done.returncode != 0:
            last = next((x for x in reversed((done.stderr or done.stdout).splitlines()) if x.strip()), "")
            raise AirflowFailException(f"airflow db clean failed (exit {done.returncode}): {last.strip()}")
        return {"clean_before": args[args.index("--clean-before-timestamp") + 1], "dry_run": self.list_only}


class MetadataBackupOperator(HeadwaterOperator):
    """Back up the PostgreSQL metadata database into the lake under ``prefix`` (headwater.ops.metadata_backup):
    ``pg_dump`` plus Connections and Variables with their secrets Fernet-encrypted with ``[core] fernet_key``
    (``secrets="encrypt"``) or left out (``"omit"``); keeps the newest ``keep`` backups.

    ``conn_id`` is a postgres Connection to the database; without one, Airflow's own
    ``[database] sql_alchemy_conn`` (which must then be PostgreSQL).
    """

    template_fields: Sequence[str] = ("conn_id", "prefix")
    ui_color = "#eaeded"

    def __init__(
        self,
        *,
        conn_id: str | None = None,
        keep: int = 7,
        secrets: str = "encrypt",
        prefix: str = "_backups/airflow_metadata",
        compress_level: int = 6,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.keep = keep
        self.secrets = secrets
        self.prefix = prefix
        self.compress_level = compress_level

    def run(self, context: Context) -> dict[str, Any]:
        import airflow
        from airflow.configuration import conf

        from headwater.ops.metadata_backup import backup_metadata, fernet_from_key

        lake = self.lake()
        cipher = fernet_from_key(conf.get("core", "fernet_key", fallback="")) if self.secrets == "encrypt" else None
        folder, manifest, pruned = backup_metadata(
            self.conninfo(),
            lake,
            f"{lake.url.rstrip('/')}/{self.prefix.strip('/')}",
            keep=self.keep,
            secrets=self.secrets,
            cipher=cipher,
            compress_level=self.compress_level,
            airflow_version=airflow.__version__,
        )
        self.log.info(
            "backup %s: %d tables, %d rows, %.1f MB; removed %d older backup(s)",
            folder,
            len(manifest.tables),
            manifest.rows,
            manifest.total_bytes / 1e6,
            len(pruned),
        )
        return {
            "backup": folder,
            "tables": len(manifest.tables),
            "rows": manifest.rows,
            "bytes": manifest.total_bytes,
            "removed": pruned,
        }

    def conninfo(self) -> dict[str, Any]:
        """libpq settings of the database to dump, from the Connection or Airflow's own metadata DB URL."""
        from airflow.configuration import conf

        from headwater.airflow.connections import get_connection, libpq_conninfo
        from headwater.errors import ConnectionConfigError

        if self.conn_id:
            conn = get_connection(self.conn_id)
            if conn is None:
                raise ConnectionConfigError(f"metadata_backup: Connection {self.conn_id!r} is not defined")
            if (conn.conn_type or "").lower() not in ("postgres", "postgresql"):
                raise ConnectionConfigError(
                    f"metadata_backup: Connection {self.conn_id!r} is of type {conn.conn_type!r}; "
                    "pg_dump needs a postgres Connection"
                )
            return libpq_conninfo(conn)
        return conninfo_from_sqlalchemy_url(conf.get("database", "sql_alchemy_conn"))


def conninfo_from_sqlalchemy_url(url: str) -> dict[str, Any]:
    """libpq settings from Airflow's ``[database] sql_alchemy_conn``; an error (never naming the password)
    when it is not PostgreSQL."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from headwater.errors import ConnectionConfigError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConnectionConfigError("metadata_backup: [database] sql_alchemy_conn is not a database URL") from None
    if parsed.get_backend_name() != "postgresql":
        raise ConnectionConfigError(
            f"metadata_backup: Airflow's metadata database is {parsed.get_backend_name()}, and pg_dump backs up "
            "PostgreSQL only; set maintenance.metadata_backup.conn_id to a postgres Connection"
        )
    info: dict[str, Any] = {
        "host": parsed.host or "localhost",
        "port": parsed.port,
        "user": parsed.username,
        "password": parsed.password,
        "dbname": parsed.database,
    }
    info.update(
        {k: v for k, v in parsed.query.items() if k in ("sslmode", "sslrootcert", "sslcert", "sslkey", "options")}
    )
    return {k: v for k, v in info.items() if v is not None}
