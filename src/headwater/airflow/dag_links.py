"""The parts of a generated DAG that link it to others or gate its work: waits (``after:``), the dbt build
behind an inputs-changed branch, exports behind a latest-only gate, triggers (``triggers:``), and the
Asset each load publishes."""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import Asset, BaseOperator

from headwater.chain import effective_schedule
from headwater.config import LoadedConfig, Pipeline
from headwater.outputs_config import PodExport

log = logging.getLogger(__name__)


def table_asset(warehouse_conn_id: str, table: str) -> Asset:
    """The Asset standing for a warehouse table: ``x-headwater://<warehouse Connection>/<schema.table>``."""
    uri = f"x-headwater://{warehouse_conn_id}/{table.lower()}"
    return Asset(name=uri, uri=uri)


def wait_tasks(loaded: LoadedConfig, pipeline: Pipeline) -> list[BaseOperator]:
    """One sensor per ``after:`` entry, each on the upstream's run at the aligned logical date."""
    from headwater.operators.chain import wait_for_pipeline

    return [
        wait_for_pipeline(
            task_id=f"wait_for__{wait.pipeline}",
            pipeline=wait.pipeline,
            schedule=effective_schedule(loaded.config.pipelines, wait.pipeline),
            timeout_minutes=wait.timeout_minutes,
            poke_seconds=wait.poke_seconds,
            mode=wait.mode,
        )
        for wait in pipeline.after
    ]


def dbt_tasks(loaded: LoadedConfig, name: str, pipeline: Pipeline, where: dict[str, Any]) -> list[Any]:
    """The dbt build of a pipeline as ``[first, ..., last]``: with ``skip_unchanged``, a branch on the
    inputs' versions, the build, and a task recording what it was built from. A project Airflow cannot
    read becomes one failing task, so the other pipelines still import."""
    from headwater.airflow.dbt_group import dbt_task_group
    from headwater.errors import ConfigError
    from headwater.operators.dbt import DbtProjectProblemOperator
    from headwater.transform.manifest import load_project

    dbt = pipeline.dbt
    assert dbt is not None
    path = loaded.relative_path(dbt.project)
    try:
        project = load_project(path)
        models = dbt_task_group(
            path,
            project=project,
            select=dbt.select,
            exclude=dbt.exclude,
            target_schema=dbt.schema_,
            dbt_vars=dbt.vars,
            mode=dbt.mode,
            source_freshness=dbt.source_freshness,
            **where,
        )
    except ConfigError as exc:  # no project, no manifest, a bad selector: fail this DAG, not every import
        log.error("%s: %s", name, exc)
        return [DbtProjectProblemOperator(task_id="dbt_project", problem=str(exc), retries=0, **where)]
    if not pipeline.skip_unchanged:
        return [models]
    from headwater.operators.chain import InputsChangedOperator, RecordInputsOperator

    options = dbt.model_dump(mode="json", by_alias=True, exclude={"after", "source_freshness"})
    definition = hashlib.sha256(json.dumps([project.checksum, options], sort_keys=True).encode()).hexdigest()
    inputs = sorted(set(project.sources) | {s.table for s in pipeline.sheets} | {t.table for t in pipeline.tables})
    branch = InputsChangedOperator(
        task_id="inputs_changed",
        consumer=f"{name}.dbt",
        tables=inputs,
        project=definition,
        changed="build_needed",
        unchanged="inputs_unchanged",
        retries=0,
        doc_md="Runs the dbt build only when an input table's version or the project changed since it last ran.",
        **where,
    )
    build_needed = EmptyOperator(task_id="build_needed")
    inputs_unchanged = EmptyOperator(task_id="inputs_unchanged")
    branch >> inputs_unchanged
    record = RecordInputsOperator(
        task_id="record_inputs", consumer=f"{name}.dbt", project=definition, branch_task_id=branch.task_id, **where
    )
    branch >> build_needed >> models >> record
    return [branch, record]


def output_tasks(loaded: LoadedConfig, pipeline: Pipeline, where: dict[str, Any]) -> list[BaseOperator]:
    """Warehouse -> lake exports, exports in pods, and Google Sheet writes, after the pipeline's own work."""
    from headwater.operators import SqlToLakeOperator, WarehouseToSheetOperator

    defaults = loaded.config.defaults

    tasks: list[BaseOperator] = [
        SqlToLakeOperator(
            task_id=f"export__{item.name}",
            conn_id=defaults.warehouse_conn_id,
            sql=item.query,
            target=item.target,
            format=item.format,
            rows_per_part=item.rows_per_part,
            trigger_rule="none_failed",
            doc_md=f"Exports a warehouse query into the lake as `{item.target}`.",
            **where,
        )
        for item in pipeline.exports
    ]
    tasks += [
        WarehouseToSheetOperator(
            task_id=f"write_sheet__{item.name}",
            sql=item.query,
            spreadsheet=item.spreadsheet,
            tab=item.tab,
            chunk_rows=item.chunk_rows,
            sheets_conn_id=item.sheets_conn_id or defaults.sheets_conn_id,
            trigger_rule="none_failed",
            doc_md=f"Writes a query result into tab {item.tab!r}.",
            **where,
        )
        for item in pipeline.sheet_exports
    ]
    return tasks + [pod_export_task(loaded, item) for item in pipeline.pod_exports]


def pod_export_task(loaded: LoadedConfig, item: PodExport) -> BaseOperator:
    """``headwater export`` in a pod of its own: the source URL (and any other secret) reaches the container
    as an environment variable from a Kubernetes Secret, so no value is ever in the pod spec."""
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from airflow.providers.cncf.kubernetes.secret import Secret

    what = ["--query", item.query] if item.query is not None else ["--table", str(item.table)]
    destination = ["--to", f"{item.to}/{{{{ ts_nodash }}}}"]
    refs = {"HEADWATER_SOURCE": item.source_secret, **item.env_secrets}
    secrets = [Secret("env", env, ref.name, ref.key) for env, ref in refs.items()]  # type: ignore[no-untyped-call]
    return KubernetesPodOperator(
        task_id=f"pod_export__{item.name}",
        name=f"headwater-export-{item.name.replace('_', '-')}"[:63],
        namespace=item.namespace,
        image=item.image,
        pod_template_file=str(loaded.relative_path(item.pod_template)),
        cmds=["headwater"],
        arguments=["export", "--source", "env:HEADWATER_SOURCE", *what, "--format", item.format, *destination],
        secrets=secrets,
        get_logs=True,
        on_finish_action="delete_pod",
        trigger_rule="none_failed",
        retries=1,
        doc_md=f"`headwater export` in a Kubernetes pod, into `{item.to}/<logical date>/`.",
    )


def latest_only_gate(pipeline: Pipeline) -> BaseOperator | None:
    """A gate skipping the exports of stale runs (backfills, past scheduled runs), when ``latest_only``."""
    if not pipeline.latest_only:
        return None
    from headwater.operators.chain import LatestRunOnlyOperator

    return LatestRunOnlyOperator(task_id="latest_only", trigger_rule="none_failed")


def trigger_tasks(pipeline: Pipeline, after: list[Any], loads: list[str]) -> None:
    """One trigger per ``triggers:`` entry, after this pipeline's loads, checks and transforms."""
    from headwater.operators.chain import TriggerPipelineOperator

    for target in pipeline.triggers:
        trigger = TriggerPipelineOperator(
            task_id=f"trigger__{target}",
            trigger_dag_id=target,
            load_task_ids=loads,
            trigger_rule="none_failed",
            retries=1,
            doc_md=f"Starts `{target}` for this run's logical date, with the changed tables in its conf.",
        )
        after >> trigger
