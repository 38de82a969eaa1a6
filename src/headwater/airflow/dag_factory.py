"""DAGs generated from the pipelines file: per source group an extract task, per table a load and a check.

Parsing reads only the YAML file: no Connection, Variable or network access, and no heavy imports.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import DAG, BaseOperator

from headwater.airflow.alerts import alert_callbacks, deadline_alert
from headwater.airflow.dag_links import (
    dbt_tasks,
    latest_only_gate,
    output_tasks,
    table_asset,
    trigger_tasks,
    wait_tasks,
)
from headwater.config import (
    Defaults,
    LoadedConfig,
    Pipeline,
    SheetSource,
    TableSource,
    load_config,
)
from headwater.operators import (
    AdvanceWatermarkOperator,
    BuildSummaryOperator,
    LakeToWarehouseOperator,
    RowCountCheckOperator,
    SheetsToLakeOperator,
    SqlToLakeOperator,
)
from headwater.ops_config import Maintenance
from headwater.pipeline import group_sources

log = logging.getLogger(__name__)


LINKS_ENV = "HEADWATER_LINKS"  # "off": DAGs without their waits and triggers (``headwater run``: one pipeline alone)
SCHEDULES_ENV = "HEADWATER_SCHEDULES"  # "off", or the pipelines keeping theirs: the rest start only when triggered


def _keeps_schedule(name: str) -> bool:
    setting = os.environ.get(SCHEDULES_ENV, "on").strip()
    if setting in ("on", ""):
        return True
    if setting == "off":
        return False
    return name in {p.strip() for p in setting.split(",")}


def build_dags(config_path: str | Path | None = None, links: bool | None = None) -> dict[str, DAG]:
    """One DAG per configured pipeline, keyed by DAG id; raises ConfigError (an import error in the UI)."""
    loaded = load_config(config_path)
    if links is None:
        links = os.environ.get(LINKS_ENV, "on") != "off"
    dags = {name: build_dag(loaded, name, pipeline, links) for name, pipeline in loaded.config.pipelines.items()}
    dags.update(maintenance_dags(loaded.config.maintenance, loaded.config.defaults))
    return dags


def maintenance_dags(maintenance: Maintenance, defaults: Defaults) -> dict[str, DAG]:
    """The housekeeping DAGs the ``maintenance:`` section asks for, one task each."""
    from headwater.operators.maintenance import (
        LogCleanupOperator,
        MetadataBackupOperator,
        MetadataCleanupOperator,
    )

    dags = {}
    jobs: list[tuple[str, str, str, type[BaseOperator], dict[str, Any]]] = []
    if (logs := maintenance.log_cleanup) is not None:
        what = f"task logs older than {logs.retention_days:g} days" + (" (dry run)" if logs.dry_run else "")
        jobs.append(("headwater_log_cleanup", logs.schedule, what, LogCleanupOperator, logs.model_dump()))
    if (meta := maintenance.metadata_cleanup) is not None:
        what = f"metadata rows older than {meta.retention_days:g} days (airflow db clean)"
        what += " (dry run)" if meta.dry_run else ""
        jobs.append(("headwater_metadata_cleanup", meta.schedule, what, MetadataCleanupOperator, meta.model_dump()))
    if (backup := maintenance.metadata_backup) is not None:
        what = f"pg_dump of the metadata database into the lake, newest {backup.keep} kept"
        where = {"lake_url": defaults.lake_url, "aws_conn_id": defaults.aws_conn_id}
        jobs.append(
            (
                "headwater_metadata_backup",
                backup.schedule,
                what,
                MetadataBackupOperator,
                {**backup.model_dump(), **where},
            )
        )
    for dag_id, schedule, what, operator, settings in jobs:
        settings.pop("schedule")
        task_id = "backup" if operator is MetadataBackupOperator else "clean"
        with DAG(
            dag_id=dag_id,
            description=what,
            schedule=schedule if _keeps_schedule(dag_id) else None,
            start_date=datetime(2026, 1, 1, tzinfo=UTC),
            catchup=False,
            max_active_runs=1,
            tags=["headwater", "maintenance"],
            default_args={"owner": defaults.owner, "retries": 1, "retry_delay": timedelta(minutes=5)},
        ) as dag:
            operator(task_id=task_id, **settings)
        dags[dag_id] = dag
    return dags


def build_dag(loaded: LoadedConfig, name: str, pipeline: Pipeline, links: bool = True) -> DAG:
    defaults = loaded.config.defaults
    start = pipeline.start_date
    with DAG(
        dag_id=name,
        description=pipeline.description
        or f"sources -> lake -> warehouse ({len(pipeline.sheets) + len(pipeline.tables)} tables)",
        schedule=pipeline.schedule if _keeps_schedule(name) else None,
        start_date=datetime(start.year, start.month, start.day, tzinfo=UTC),
        catchup=pipeline.catchup,
        max_active_runs=1,
        tags=["headwater", "sheets", *pipeline.tags],
        doc_md=_doc(loaded, name, pipeline),
        deadline=deadline_alert(pipeline.alerts),
        default_args={
            "owner": defaults.owner,
            "retries": pipeline.retries,
            "retry_delay": timedelta(minutes=pipeline.retry_delay_minutes),
            "retry_exponential_backoff": True,
            **alert_callbacks(pipeline.alerts),
        },
    ) as dag:
        where = _where(defaults)
        waits = wait_tasks(loaded, pipeline) if links else []
        checks: list[Any] = []
        loaded_by: dict[str, Any] = {}  # table -> the check after which it is published
        loads: list[str] = []  # the load task ids, whose results say what changed
        for group in group_sources(loaded, pipeline):
            extract = SheetsToLakeOperator(
                task_id=group.task_id,
                tabs=[
                    s.model_dump(mode="json", exclude={"spreadsheet", "workbook", "sheets_conn_id", "checks"})
                    for s in group.sources
                ],
                sheets_conn_id=group.conn_id or defaults.sheets_conn_id,
                doc_md=f"Reads {group.label} and stages its tables in the lake.",
                **({"spreadsheet": group.location} if group.kind == "spreadsheet" else {"workbook": group.location}),
                **where,
            )
            for source in group.sources:
                checks.append(_load_and_check(extract, source.task_stem, source, defaults))
                loads.append(f"load__{source.task_stem}")
                loaded_by[source.table] = checks[-1]
        for spec in pipeline.tables:
            export = SqlToLakeOperator(
                task_id=f"export__{spec.task_stem}",
                conn_id=spec.conn_id,
                sql=spec.query,
                table=spec.source_table,
                target=spec.table,
                format=spec.format,
                rows_per_part=spec.rows_per_part,
                incremental=spec.incremental.model_dump() if spec.incremental else None,
                xcom_key=spec.task_stem,
                doc_md=f"Exports {spec.source_table or 'a query'} from `{spec.conn_id}`.",
                **where,
            )
            check = _load_and_check(export, spec.task_stem, spec, defaults)
            loads.append(f"load__{spec.task_stem}")
            checks.append(check)
            loaded_by[spec.table] = check
            if spec.incremental is not None and spec.incremental.mode == "watermark":
                advance = AdvanceWatermarkOperator(
                    task_id=f"advance_watermark__{spec.task_stem}",
                    table=spec.table,
                    column=spec.incremental.column,
                    export_task_id=export.task_id,
                    xcom_key=spec.task_stem,
                    **where,
                )
                check >> advance
        if pipeline.dbt is not None:
            models = dbt_tasks(loaded, name, pipeline, where)
            first = [loaded_by[t] for t in pipeline.dbt.after] if pipeline.dbt.after is not None else list(checks)
            first >> models[0]
            checks.append(models[-1])
        built: list[Any] = []
        for summary in pipeline.summaries:  # after the loads and the dbt models they may read
            task = BuildSummaryOperator(
                task_id=f"summary__{summary.target.schema}__{summary.target.table}",
                summary=summary.model_dump(mode="json", exclude_none=True),
                doc_md=summary.description or f"Builds {summary.table} from a SELECT, checked before the swap.",
                trigger_rule="none_failed",  # also when the dbt build was skipped: nothing changed
                **where,
            )
            checks >> task
            built.append(task)
        checks += built
        writes = output_tasks(loaded, pipeline, where)
        if writes:
            gate = latest_only_gate(pipeline)
            if gate is not None:
                checks >> gate
            for write in writes:
                (gate or checks) >> write
        if links:
            trigger_tasks(pipeline, checks, loads)
        roots = [t for t in dag.tasks if not t.upstream_list and t not in waits]
        for wait in waits:
            wait >> roots
    return dag


def _where(defaults: Defaults) -> dict[str, Any]:
    """The lake, AWS and warehouse Connections every operator of the pipeline uses."""
    return {
        "lake_url": defaults.lake_url,
        "aws_conn_id": defaults.aws_conn_id,
        "warehouse_conn_id": defaults.warehouse_conn_id,
    }


def _load_and_check(
    upstream: BaseOperator, stem: str, source: SheetSource | TableSource, defaults: Defaults
) -> BaseOperator:
    """``upstream >> load__<table> >> check__<table>``, both reading the manifest upstream pushed; returns the check."""
    common: dict[str, Any] = {
        "manifest_uri": upstream.output[stem],  # type: ignore[index]  # the XComArg of that key
        "load": source.load.value,
        "keys": source.keys,
        **_where(defaults),
    }
    checks = [c.model_dump(mode="json", exclude_none=True) for c in source.checks]
    asset = table_asset(defaults.warehouse_conn_id, source.table)
    load = LakeToWarehouseOperator(task_id=f"load__{stem}", checks=checks, outlets=[asset], **common)
    check = RowCountCheckOperator(task_id=f"check__{stem}", **common)
    load >> check
    return check


def _doc(loaded: LoadedConfig, name: str, pipeline: Pipeline) -> str:
    rows = "\n".join(
        f"| `{s.table}` | {s.spreadsheet or s.workbook} | {s.tab or ''} | {s.load.value} | {', '.join(s.keys)} |"
        for s in pipeline.sheets
    )
    rows += "".join(
        f"\n| `{t.table}` | `{t.conn_id}`: {t.source_table or 'query'} | | {t.load.value} | {', '.join(t.keys)} |"
        + (f" incremental on `{t.incremental.column}` ({t.incremental.mode})" if t.incremental else "")
        for t in pipeline.tables
    )
    return (
        f"# {name}\n\n{pipeline.description}\n\nGenerated by headwater from `{loaded.path}`.\n\n"
        "Each source is read, validated, typed and staged as gzip CSV parts with a manifest under a run-scoped "
        "lake prefix; each table is then loaded in one transaction (replace swaps atomically) and its row "
        "count checked against the manifest.\n\n"
        "| table | source | tab | load | keys |\n|---|---|---|---|---|\n" + rows + "\n"
    )
