"""The ``headwater`` command: validate the config, run a pipeline's DAG in-process, show warehouse tables.

Airflow is imported only inside commands, after the environment (Airflow home, DAGs folder, config
path) has been set, so ``headwater --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from headwater.cli_api import health, trigger
from headwater.cli_backup import backups, restore
from headwater.cli_chain import chain
from headwater.cli_cluster import cluster_app
from headwater.cli_common import Json, Output, Verbose, console, fail_on, print_json, wants_json
from headwater.cli_export import export
from headwater.cli_run import refresh_dbt_manifests, run
from headwater.cli_users import create_admin, create_user
from headwater.errors import HeadwaterError
from headwater.lean_imports import without
from headwater.local_airflow import migrate, prepare_env

app = typer.Typer(
    help="headwater: Google Sheets and workbooks -> lake -> warehouse, on Apache Airflow 3. Exit status: 0 "
    "success, 1 a run, export or check failed, 2 bad usage or config, 130/143 stopped by SIGINT/SIGTERM.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.command(name="chain")(chain)
app.command(name="create-admin")(create_admin)
app.command(name="create-user")(create_user)
app.add_typer(cluster_app, name="cluster")
app.command(name="trigger")(trigger)
app.command(name="health")(health)
app.command(name="backups")(backups)
app.command(name="restore")(restore)
app.command(name="run")(run)
app.command(name="export")(export)
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="pipelines file (default: $HEADWATER_CONFIG or ./config/pipelines.yaml)"),
]


@app.command()
def validate(
    config: ConfigOption = None, output: Output = "table", as_json: Json = False, verbose: Verbose = False
) -> None:
    """Validate the pipelines file and list what it configures (exit 2 when it is invalid)."""
    from headwater.config import load_config

    try:
        loaded = load_config(config)
    except HeadwaterError as exc:
        fail_on(exc, verbose)
    rows: list[dict[str, Any]] = []
    for name, pipeline in loaded.config.pipelines.items():
        entry = {"pipeline": name, "schedule": pipeline.schedule}
        for source in pipeline.sheets:
            where = source.spreadsheet or source.workbook or ""
            rows.append({**entry, "table": source.table, "source": where, "tab": source.tab, "load": source.load.value})
        for spec in pipeline.tables:
            where = f"{spec.conn_id}: {spec.source_table or 'query'}"
            rows.append({**entry, "table": spec.table, "source": where, "tab": None, "load": spec.load})
        if pipeline.dbt is not None:
            rows.append({**entry, "table": "(dbt models)", "source": pipeline.dbt.project, "tab": None, "load": "dbt"})
        for summary in pipeline.summaries:
            rows.append({**entry, "table": summary.table, "source": "SELECT", "tab": None, "load": "summary"})
        for item in pipeline.sheet_exports:
            rows.append(
                {**entry, "table": f"sheet tab {item.tab}", "source": "query", "tab": None, "load": "write-back"}
            )
        for lake_export in pipeline.exports:
            target, fmt = f"lake {lake_export.target}", lake_export.format
            rows.append({**entry, "table": target, "source": "query", "tab": None, "load": fmt})
    links = [
        {"pipeline": name, "waits_for": wait.pipeline, "mode": wait.mode, "timeout_minutes": wait.timeout_minutes}
        for name, pipeline in loaded.config.pipelines.items()
        for wait in pipeline.after
    ] + [
        {"pipeline": name, "triggers": target}
        for name, pipeline in loaded.config.pipelines.items()
        for target in pipeline.triggers
    ]
    if wants_json(output, as_json):
        print_json({"config": str(loaded.path), "valid": True, "pipelines": list(loaded.config.pipelines),
                    "entries": rows, "links": links})  # fmt: skip
        return
    table = Table(title=f"{loaded.path}")
    for column in ("pipeline", "schedule", "table", "source", "tab", "load"):
        table.add_column(column)
    for row in rows:
        table.add_row(
            *(
                str(row[k] or ("-" if k == "schedule" else ""))
                for k in ("pipeline", "schedule", "table", "source", "tab", "load")
            )
        )
    console.print(table)
    for link in links:
        if "waits_for" in link:
            up_to = f"up to {link['timeout_minutes']:g} min"
            console.print(f"{link['pipeline']} waits for {link['waits_for']} ({link['mode']}, {up_to})")
        else:
            console.print(f"{link['pipeline']} triggers {link['triggers']} (same logical date)")


@app.command()
def init(config: ConfigOption = None) -> None:
    """Create or migrate the Airflow metadata database (SQLite under $HEADWATER_HOME unless configured)."""
    prepare_env(config)
    migrate()
    console.print(f"Airflow metadata database ready (AIRFLOW_HOME={os.environ['AIRFLOW_HOME']})")


@app.command(name="dbt-parse")
def dbt_parse(config: ConfigOption = None) -> None:
    """Build the manifest of every configured dbt project (run it where the DAG files are deployed)."""
    prepare_env(config)
    try:
        refresh_dbt_manifests()
    except HeadwaterError as exc:
        fail_on(exc)


@app.command()
def tables(
    config: ConfigOption = None, output: Output = "table", as_json: Json = False, verbose: Verbose = False
) -> None:
    """Row counts of every configured table in the warehouse (the Connection, or the embedded DuckDB)."""
    prepare_env(config)
    from headwater.airflow.connections import warehouse_for
    from headwater.config import load_config

    found: list[dict[str, Any]] = []
    try:
        loaded = load_config(os.environ.get("HEADWATER_CONFIG"))
        defaults = loaded.config.defaults
        warehouse = warehouse_for(defaults.warehouse_conn_id, defaults.aws_conn_id)
        listed: set[str] = set()
        for pipeline in loaded.config.pipelines.values():
            for source in [*pipeline.sheets, *pipeline.tables]:
                if source.table in listed:
                    continue
                listed.add(source.table)
                columns = warehouse.columns(source.target)
                rows = None if columns is None else warehouse.row_count(source.target)
                found.append(
                    {"table": source.table, "rows": rows, "columns": None if columns is None else len(columns)}
                )
    except HeadwaterError as exc:
        fail_on(exc, verbose)
    if wants_json(output, as_json):
        print_json({"warehouse": warehouse.describe(), "tables": found})
        return
    table = Table(title=f"warehouse: {warehouse.describe()}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("columns", justify="right")
    for item in found:
        table.add_row(item["table"], "-" if item["rows"] is None else f"{item['rows']:,}",
                      "-" if item["columns"] is None else str(item["columns"]))  # fmt: skip
    console.print(table)


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="one SELECT, run read-only in the warehouse")],
    config: ConfigOption = None,
    limit: Annotated[int, typer.Option(help="print at most this many rows")] = 50,
) -> None:
    """Print the result of one read-only SELECT in the warehouse (the Connection, or the embedded DuckDB)."""
    prepare_env(config)
    from headwater.airflow.connections import warehouse_for
    from headwater.config import load_config

    try:
        defaults = load_config(os.environ.get("HEADWATER_CONFIG")).config.defaults
        warehouse = warehouse_for(defaults.warehouse_conn_id, defaults.aws_conn_id)
        with warehouse.query_rows(sql) as (names, rows):
            table = Table(title=f"warehouse: {warehouse.describe()}")
            for name in names:
                table.add_column(name)
            for shown, row in enumerate(rows):
                if shown == limit:
                    table.caption = f"first {limit} rows shown"
                    break
                table.add_row(*("" if v is None else str(v) for v in row))
    except HeadwaterError as exc:
        fail_on(exc)
    console.print(table)


def main() -> None:  # pragma: no cover - console script entry (tests/integration/test_export_process.py)
    if sys.argv[1:2] == ["export"]:
        # An export process runs nothing but the export, which never needs numpy or pandas; pyarrow and DuckDB
        # import them when installed (as in Airflow's image): 15 MB and 0.1 s of the process for nothing.
        # Process-wide on purpose: pyarrow decides at import whether it has numpy, for the life of the process.
        with without("numpy", "pandas"):
            sys.exit(app())
    sys.exit(app())
