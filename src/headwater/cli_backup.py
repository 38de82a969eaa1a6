"""``headwater backups`` lists the metadata backups in the lake; ``headwater restore`` brings one back into
an empty PostgreSQL database (headwater.ops.metadata_restore).

The lake and backup folder come from the pipelines file (``defaults.lake_url``,
``maintenance.metadata_backup.prefix``) unless given; the Fernet key from Airflow's ``[core] fernet_key``
(``AIRFLOW__CORE__FERNET_KEY``), which must be the key of the Airflow that made the backup.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from headwater.cli_common import Output, console, errors, fail
from headwater.errors import HeadwaterError

DEFAULT_PREFIX = "_backups/airflow_metadata"

ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="pipelines file")]
LakeOption = Annotated[
    str | None, typer.Option("--lake", help="lake URL (default: $HEADWATER_LAKE_URL, defaults.lake_url, embedded)")
]
PrefixOption = Annotated[
    str | None, typer.Option(help="backups folder under the lake (default: maintenance.metadata_backup.prefix)")
]


def _where(config: Path | None, lake_url: str | None, prefix: str | None) -> tuple[Any, str]:
    """The lake and the backups folder URI."""
    from headwater.config import load_config
    from headwater.local_airflow import prepare_env

    prepare_env(config)
    from headwater.airflow.connections import lake_from_url, resolved_lake_url

    settings = load_config(os.environ.get("HEADWATER_CONFIG")).config
    configured = settings.maintenance.metadata_backup
    lake = lake_from_url(lake_url or resolved_lake_url(settings.defaults.lake_url), settings.defaults.aws_conn_id)
    folder = (prefix or (configured.prefix if configured else DEFAULT_PREFIX)).strip("/")
    return lake, f"{lake.url.rstrip('/')}/{folder}"


def backups(
    config: ConfigOption = None, lake: LakeOption = None, prefix: PrefixOption = None, output: Output = "table"
) -> None:
    """List the complete metadata backups in the lake, oldest first."""
    from headwater.ops.backup_manifest import list_backups

    try:
        store, folder = _where(config, lake, prefix)
        found = list_backups(store, folder)
    except HeadwaterError as exc:
        fail(str(exc))
    if output == "json":
        rows = [
            {"name": b.name, "uri": b.uri, "created_at": b.manifest.created_at, "database": b.manifest.database,
             "tables": len(b.manifest.tables), "rows": b.manifest.rows, "bytes": b.manifest.total_bytes,
             "secrets": b.manifest.secrets, "airflow_version": b.manifest.airflow_version}
            for b in found
        ]  # fmt: skip
        print(json.dumps(rows))
        return
    table = Table(title=folder)
    for column in ("backup", "created", "database", "tables", "rows", "MB", "secrets", "airflow"):
        table.add_column(column)
    for b in found:
        m = b.manifest
        table.add_row(b.name, m.created_at[:19], m.database, str(len(m.tables)), f"{m.rows:,}",
                      f"{m.total_bytes / 1e6:.1f}", m.secrets, m.airflow_version or "")  # fmt: skip
    console.print(table)


def restore(
    backup: Annotated[str, typer.Argument(help="'latest', a backup name from 'headwater backups', or its URI")],
    to: Annotated[
        str,
        typer.Option(
            envvar="HEADWATER_RESTORE_TO",
            help="the EMPTY PostgreSQL database to restore into: an Airflow Connection id, env:VAR holding a "
            "URL, or postgresql://user@host:port/db (a password in a URL shows in the process list)",
        ),
    ],
    config: ConfigOption = None,
    lake: LakeOption = None,
    prefix: PrefixOption = None,
    output: Output = "table",
) -> None:
    """Restore a metadata backup into an empty PostgreSQL database and check every table's row count."""
    from headwater.export_endpoints import postgres_from_argument
    from headwater.ops.backup_manifest import find_backup
    from headwater.ops.metadata_backup import fernet_from_key
    from headwater.ops.metadata_restore import restore_metadata

    try:
        store, folder = _where(config, lake, prefix)
        target = postgres_from_argument(to, "--to")
        chosen = find_backup(store, folder, backup)
        from airflow.configuration import conf

        cipher = fernet_from_key(conf.get("core", "fernet_key", fallback=""))
        with errors.status(f"restoring {chosen.name} ({chosen.manifest.total_bytes / 1e6:.1f} MB)"):
            report = restore_metadata(store, chosen, target, cipher=cipher)
    except HeadwaterError as exc:
        fail(str(exc))
    manifest = chosen.manifest
    if output == "json":
        print(json.dumps({"backup": chosen.uri, "database": report.database, "tables": report.tables,
                          "rows": sum(report.tables.values()), "schema_revision": manifest.schema_revision,
                          "airflow_version": manifest.airflow_version}))  # fmt: skip
        return
    console.print(
        f"restored {chosen.uri} into {report.database}: {len(report.tables)} tables, "
        f"{sum(report.tables.values()):,} rows, every count as at the backup",
        soft_wrap=True,
    )
    console.print(
        f"backup made by Airflow {manifest.airflow_version or '?'} (schema revision {manifest.schema_revision}); "
        "point [database] sql_alchemy_conn at it and run `airflow db migrate` if this Airflow is newer",
        soft_wrap=True,
    )
