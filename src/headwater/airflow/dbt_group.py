"""A dbt project drawn as Airflow tasks from its prebuilt manifest: parsing the DAG never runs dbt."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import Asset, TaskGroup

from headwater.errors import ConfigError
from headwater.operators.dbt import DbtOperator
from headwater.transform.manifest import DbtNode, DbtProject, load_project
from headwater.transform.plan import plan_tasks, select_nodes


def dbt_task_group(
    project_dir: str | Path,
    *,
    group_id: str = "dbt",
    select: Sequence[str] = (),
    exclude: Sequence[str] = (),
    target_schema: str = "analytics",
    dbt_vars: Mapping[str, Any] | None = None,
    mode: str = "tasks",
    source_freshness: bool = False,
    project: DbtProject | None = None,
    **operator_kwargs: Any,
) -> TaskGroup:
    """One task per selected model, seed and snapshot, each followed by a task running its tests.

    ``mode="build"`` draws one task running ``dbt build`` over the selection instead (dbt's own order and
    skipping), which costs one dbt start instead of one per node; each model, seed and snapshot is an
    outlet Asset of that task, so Airflow records an event per node (with its status and seconds) when
    the build succeeds. Call it inside a DAG. ``operator_kwargs`` go to every ``DbtOperator``
    (``warehouse_conn_id``...). ``source_freshness`` adds a first task running ``dbt source freshness``.
    A missing or stale ``target/manifest.json`` raises ConfigError. ``project``: the project already
    loaded from ``project_dir`` (its manifest is then not read again).
    """
    project = project or load_project(project_dir)
    selected = select_nodes(project, select, exclude)
    if mode == "build":
        return _build_group(
            project, selected, group_id, select, exclude, target_schema, dbt_vars, source_freshness, operator_kwargs
        )
    if mode != "tasks":
        raise ConfigError(f"dbt mode {mode!r} is not 'tasks' or 'build'")
    tasks: dict[str, DbtOperator] = {}
    plans = plan_tasks(project, selected)
    with TaskGroup(group_id, tooltip=f"dbt project {project.name} ({project.path})") as group:
        for plan in plans:
            names = ", ".join(n.name for n in plan.nodes[:10]) + (" ..." if len(plan.nodes) > 10 else "")
            task = DbtOperator(
                task_id=plan.task_id,
                project_dir=project.path,
                command=plan.command,
                select=plan.selectors,
                target_schema=target_schema,
                dbt_vars=dbt_vars,
                threads=1 if plan.command != "test" else 4,
                doc_md=f"`dbt {plan.command}` of {names} ({plan.nodes[0].path}).",
                **operator_kwargs,
            )
            tasks[plan.task_id] = task
        for plan in plans:
            for upstream in plan.upstream:
                tasks[upstream] >> tasks[plan.task_id]
        if source_freshness:
            first = _freshness_task(project, target_schema, dbt_vars, operator_kwargs)
            first >> [tasks[p.task_id] for p in plans if not p.upstream]
    return group


def _freshness_task(
    project: DbtProject, target_schema: str, dbt_vars: Mapping[str, Any] | None, operator_kwargs: dict[str, Any]
) -> DbtOperator:
    return DbtOperator(
        task_id="source_freshness",
        project_dir=project.path,
        command="source freshness",
        target_schema=target_schema,
        dbt_vars=dbt_vars,
        doc_md="`dbt source freshness`: a source past its `error_after` stops everything after it.",
        **operator_kwargs,
    )


def node_asset(project: DbtProject, node: DbtNode) -> Asset:
    """The Asset standing for a dbt node: ``x-dbt://<project>/<unique id>``."""
    return Asset(name=f"dbt.{project.name}.{node.name}", uri=f"x-dbt://{project.name}/{node.unique_id}")


def _build_group(
    project: DbtProject,
    selected: set[str],
    group_id: str,
    select: Sequence[str],
    exclude: Sequence[str],
    target_schema: str,
    dbt_vars: Mapping[str, Any] | None,
    source_freshness: bool,
    operator_kwargs: dict[str, Any],
) -> TaskGroup:
    nodes = sorted((project.nodes[uid] for uid in selected), key=lambda n: n.unique_id)
    with TaskGroup(group_id, tooltip=f"dbt project {project.name} ({project.path}), one dbt build") as group:
        build = DbtOperator(
            task_id="build",
            project_dir=project.path,
            command="build",
            select=list(select),
            exclude=list(exclude),
            target_schema=target_schema,
            dbt_vars=dbt_vars,
            outlets=[node_asset(project, n) for n in nodes],
            doc_md=f"`dbt build` of {len(nodes)} models, seeds and snapshots and their tests.",
            **operator_kwargs,
        )
        if source_freshness:
            _freshness_task(project, target_schema, dbt_vars, operator_kwargs) >> build
    return group
