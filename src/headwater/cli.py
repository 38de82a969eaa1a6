"""The ``headwater`` command: validate the config, run a pipeline's DAG in-process, show warehouse tables.

Airflow is imported only inside commands, after the environment (Airflow home, DAGs folder, config
path) has been set, so ``headwater --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import os
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from headwater.cli_api import health, trigger
from headwater.cli_backup import backups, restore
from headwater.cli_chain import chain
from headwater.cli_cluster import cluster_app
from headwater.cli_users import create_admin, create_user
from headwater.errors import HeadwaterError
from headwater.export_endpoints import lake_for_destination, source_from_argument
from headwater.local_airflow import load_dag, migrate, one_line, prepare_env, run_lock
from headwater.signals import Terminated

app = typer.Typer(
    help="headwater: Google Sheets and workbooks -> lake -> warehouse, on Apache Airflow 3.",
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
console = Console()
errors = Console(stderr=True, soft_wrap=True, highlight=False)  # one unbroken line per error, for logs and grep
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="pipelines file (default: $HEADWATER_CONFIG or ./config/pipelines.yaml)"),
]


def _fail(exc: BaseException) -> NoReturn:
    errors.print(f"[bold red]error:[/] {escape(str(exc))}")
    raise typer.Exit(1)


@app.command()
def validate(config: ConfigOption = None) -> None:
    """Validate the pipelines file and list what it configures."""
    from headwater.config import load_config

    try:
        loaded = load_config(config)
    except HeadwaterError as exc:
        _fail(exc)
    table = Table(title=f"{loaded.path}")
    for column in ("pipeline", "schedule", "table", "source", "tab", "load"):
        table.add_column(column)
    for name, pipeline in loaded.config.pipelines.items():
        schedule = pipeline.schedule or "-"
        for source in pipeline.sheets:
            where = source.spreadsheet or source.workbook or ""
            table.add_row(name, schedule, source.table, where, source.tab or "", source.load.value)
        for spec in pipeline.tables:
            table.add_row(name, schedule, spec.table, f"{spec.conn_id}: {spec.source_table or 'query'}", "", spec.load)
        if pipeline.dbt is not None:
            table.add_row(name, schedule, "(dbt models)", pipeline.dbt.project, "", "dbt")
        for summary in pipeline.summaries:
            table.add_row(name, schedule, summary.table, "SELECT", "", "summary")
        for item in pipeline.sheet_exports:
            table.add_row(name, schedule, f"sheet tab {item.tab}", "query", "", "write-back")
        for export in pipeline.exports:
            table.add_row(name, schedule, f"lake {export.target}", "query", "", export.format)
    console.print(table)
    for name, pipeline in loaded.config.pipelines.items():
        for wait in pipeline.after:
            console.print(f"{name} waits for {wait.pipeline} ({wait.mode}, up to {wait.timeout_minutes:g} min)")
        for target in pipeline.triggers:
            console.print(f"{name} triggers {target} (same logical date)")


@app.command()
def init(config: ConfigOption = None) -> None:
    """Create or migrate the Airflow metadata database (SQLite under $HEADWATER_HOME unless configured)."""
    prepare_env(config)
    migrate()
    console.print(f"Airflow metadata database ready (AIRFLOW_HOME={os.environ['AIRFLOW_HOME']})")


@app.command()
def run(
    pipeline: Annotated[str, typer.Argument(help="pipeline name (the DAG id)")],
    config: ConfigOption = None,
    logical_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD or ISO timestamp (default: now)")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="show Airflow's task logs")] = False,
) -> None:
    """Run one pipeline's DAG in-process through Airflow (``dag.test``) and print what it loaded."""
    prepare_env(config, verbose)
    try:
        when = _parse_date(logical_date)
        from headwater.config import load_config

        spec = load_config(os.environ.get("HEADWATER_CONFIG")).pipeline(pipeline)
    except (HeadwaterError, ValueError) as exc:
        _fail(exc)
    os.environ["HEADWATER_LINKS"] = "off"  # one pipeline alone: its waits and triggers are the scheduler's
    if spec.after or spec.triggers:
        links = [f"waits for {w.pipeline}" for w in spec.after] + [f"triggers {t}" for t in spec.triggers]
        errors.print(f"{pipeline}: run alone; under the scheduler it also {', '.join(links)}")
    try:
        migrate()
        _refresh_dbt_manifests(pipeline)
        dag = load_dag(pipeline)
        lock = contextlib.ExitStack()
        lock.enter_context(run_lock(pipeline, when))
    except HeadwaterError as exc:
        _fail(exc)
    started = datetime.now(UTC)
    failures: dict[str, str] = {}
    with (
        lock,
        Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as progress,
    ):
        bar = progress.add_task(f"{pipeline}: running", total=len(dag.tasks))

        def advance(context: Any) -> None:
            progress.update(bar, advance=1, description=f"{pipeline}: {context['ti'].task_id} done")

        def failed(context: Any) -> None:
            failures[context["ti"].task_id] = one_line(context.get("exception"))

        for task in dag.tasks:
            task.on_success_callback = [*_as_list(task.on_success_callback), advance]
            task.on_failure_callback = [*_as_list(task.on_failure_callback), failed]  # alerts stay
        dag_run = dag.test(logical_date=when)
    _report(dag, dag_run, (datetime.now(UTC) - started).total_seconds(), failures)


def _as_list(callbacks: Any) -> list[Any]:
    if callbacks is None:
        return []
    return list(callbacks) if isinstance(callbacks, list | tuple) else [callbacks]


def _refresh_dbt_manifests(pipeline: str | None = None) -> None:
    """Rebuild the manifest of the pipeline's dbt project if it changed since it was built (all, when None)."""
    from headwater.airflow.dbt_parse import refresh_manifests
    from headwater.config import load_config

    loaded = load_config(os.environ.get("HEADWATER_CONFIG"))
    for path in refresh_manifests(loaded, only_stale=pipeline is not None, pipeline=pipeline):
        errors.print(f"dbt manifest rebuilt: {path}")


@app.command(name="dbt-parse")
def dbt_parse(config: ConfigOption = None) -> None:
    """Build the manifest of every configured dbt project (run it where the DAG files are deployed)."""
    prepare_env(config)
    try:
        _refresh_dbt_manifests()
    except HeadwaterError as exc:
        _fail(exc)


def _parse_date(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--logical-date {text!r} is not YYYY-MM-DD or an ISO timestamp") from None
    if isinstance(value, date) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def _report(dag: Any, dag_run: Any, seconds: float, failures: dict[str, str]) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    results = {}
    with create_session() as session:
        query = XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag.dag_id, key="return_value")
        rows: list[Any] = list(session.execute(query).scalars())
        dbt_nodes: list[dict[str, Any]] = []
        for row in rows:
            if row.task_id.startswith("load__"):
                results[row.task_id] = XComModel.deserialize_value(row)
            elif isinstance(value := XComModel.deserialize_value(row), dict) and "nodes" in value:
                dbt_nodes += value["nodes"]
        instances = {
            ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances(session=session)
        }
        failed = [task for task, state in instances.items() if state not in ("success", "skipped")]
        exports = {row.task_id: XComModel.deserialize_value(row) for row in rows if row.task_id.startswith("export__")}
    table = Table(title=f"{dag.dag_id} run {dag_run.run_id} ({dag_run.state})")
    for column, justify in (
        ("table", "left"),
        ("load", "left"),
        ("rows", "right"),
        ("columns", "right"),
        ("table rows", "right"),
        ("seconds", "right"),
    ):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for result in results.values():
        table.add_row(
            result["table"],
            result["method"],
            f"{result['rows']:,}",
            str(result["columns"]),
            f"{result['table_rows']:,}",
            f"{result['seconds']:.2f}",
        )
    if results or not (dbt_nodes or exports or "inputs_unchanged" in instances):
        console.print(table)
    if instances.get("inputs_unchanged") == "success":
        console.print("dbt: skipped, no input table changed since the last build")
    for task, uri in sorted(exports.items()):
        if isinstance(uri, str) and uri.endswith("_manifest.json"):
            console.print(f"{task.removeprefix('export__')}: {uri}", soft_wrap=True)
    if dbt_nodes:
        counts: dict[tuple[str, str], int] = {}
        for node in dbt_nodes:
            key = (node["type"], node["status"])
            counts[key] = counts.get(key, 0) + 1
        parts = [f"{n} {kind}{'s' if n > 1 else ''} {status}" for (kind, status), n in sorted(counts.items())]
        console.print("dbt: " + ", ".join(parts))
    console.print(f"finished in {seconds:.1f}s")
    if str(dag_run.state) != "success":
        others = [t for t in failed if t not in failures]
        if others:
            errors.print(f"not run: {', '.join(others)} (an upstream task failed)")
        errors.print("(rerun with --verbose for the task logs)")
        for task_id, message in failures.items():
            errors.print(f"[bold red]failed:[/] {task_id}: {escape(message)}")
        if not failures:
            errors.print(f"[bold red]run failed[/]; tasks not successful: {', '.join(failed) or '?'}")
        raise typer.Exit(1)


@app.command()
def tables(config: ConfigOption = None) -> None:
    """Row counts of every configured table in the warehouse (the Connection, or the embedded DuckDB)."""
    prepare_env(config)
    from headwater.airflow.connections import warehouse_for
    from headwater.config import load_config

    try:
        loaded = load_config(os.environ.get("HEADWATER_CONFIG"))
        defaults = loaded.config.defaults
        warehouse = warehouse_for(defaults.warehouse_conn_id, defaults.aws_conn_id)
        table = Table(title=f"warehouse: {warehouse.describe()}")
        table.add_column("table")
        table.add_column("rows", justify="right")
        table.add_column("columns", justify="right")
        listed: set[str] = set()
        for pipeline in loaded.config.pipelines.values():
            for source in [*pipeline.sheets, *pipeline.tables]:
                if source.table in listed:
                    continue
                listed.add(source.table)
                columns = warehouse.columns(source.target)
                rows = "-" if columns is None else f"{warehouse.row_count(source.target):,}"
                table.add_row(source.table, rows, "-" if columns is None else str(len(columns)))
    except HeadwaterError as exc:
        _fail(exc)
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
        _fail(exc)
    console.print(table)


@app.command()
def export(
    source: Annotated[
        str,
        typer.Option(
            envvar="HEADWATER_SOURCE",
            help="an Airflow Connection id (its password stays out of the process list), env:VAR (a URL read "
            "from that environment variable), or a URL: postgresql://user:pass@host:port/db, "
            "mysql://user:pass@host/db, duckdb:///path/to/file.duckdb. A URL with a password is visible to "
            "other users in the process list: prefer a Connection id, env:VAR or $HEADWATER_SOURCE.",
        ),
    ],
    to: Annotated[str, typer.Option(help="s3://bucket/prefix, file:///path or a local folder")],
    query: Annotated[str | None, typer.Option(help="the SELECT to export")] = None,
    table: Annotated[str | None, typer.Option(help="schema.table to export whole (instead of --query)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv.gz | csv.zst | csv | parquet")] = "csv.gz",
    rows_per_part: Annotated[int, typer.Option(help="rotate parts after this many rows")] = 2_000_000,
    mb_per_part: Annotated[int, typer.Option(help="...or after this many MB of uncompressed CSV")] = 256,
    parts_in_flight: Annotated[int, typer.Option(help="parts compressed/uploading at once")] = 3,
) -> None:
    """Export a query to the lake as compressed parts and a manifest, streaming with bounded memory.

    S3 credentials and endpoint come from the usual AWS environment (AWS_PROFILE, AWS_ENDPOINT_URL, ...).
    """
    import time

    from headwater.export import ExportOptions, export_query_to_lake
    from headwater.identifiers import TableName

    try:
        if (query is None) == (table is None):
            raise HeadwaterError("give exactly one of --query or --table")
        sql_source = source_from_argument(source)
        if table is not None:
            name = TableName.parse(table)
            query = f"SELECT * FROM {sql_source.quote(name.schema)}.{sql_source.quote(name.table)}"
        lake = lake_for_destination(to)
        prefix = to if "://" in to else Path(to).resolve().as_uri()
        options = ExportOptions(
            format=fmt, rows_per_part=rows_per_part, bytes_per_part=mb_per_part << 20, parts_in_flight=parts_in_flight
        )
        started = time.monotonic()
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(bar_width=None),
            TextColumn("{task.fields[rows]:,} rows, {task.fields[mb]:.1f} MB, {task.fields[parts]} parts"),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            bar = progress.add_task(f"exporting from {sql_source.label}", total=None, rows=0, mb=0.0, parts=0)

            def update(rows: int, size: int, parts: int) -> None:
                progress.update(bar, rows=rows, mb=size / 1e6, parts=parts)

            result = export_query_to_lake(sql_source, query or "", lake, prefix, options=options, progress=update)
            progress.update(bar, total=1, completed=1)
    except (HeadwaterError, ValueError) as exc:
        _fail(exc)
    except Terminated:
        errors.print("[bold red]stopped by SIGTERM[/]: this export's parts were removed; nothing was published")
        raise typer.Exit(143) from None
    seconds = time.monotonic() - started
    console.print(
        f"{result.rows:,} rows in {result.parts} parts ({result.bytes / 1e6:.1f} MB {fmt}) in {seconds:.1f}s"
        f" ({result.rows / max(seconds, 1e-9):,.0f} rows/s); manifest: {result.manifest_uri}"
    )


def main() -> None:  # pragma: no cover - console script entry
    sys.exit(app())
