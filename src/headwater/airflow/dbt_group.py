"""A dbt project drawn as Airflow tasks from its prebuilt manifest: parsing the DAG never runs dbt."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import TaskGroup

from headwater.operators.dbt import DbtOperator
from headwater.transform.manifest import load_project
from headwater.transform.plan import plan_tasks, select_nodes


def dbt_task_group(
    project_dir: str | Path,
    *,
    group_id: str = "dbt",
    select: Sequence[str] = (),
    exclude: Sequence[str] = (),
    target_schema: str = "analytics",
    dbt_vars: Mapping[str, Any] | None = None,
    **operator_kwargs: Any,
) -> TaskGroup:
    """One task per selected model, seed and snapshot, each followed by a task running its tests.

    Call it inside a DAG. ``operator_kwargs`` go to every ``DbtOperator`` (``warehouse_conn_id``...).
    A missing or stale ``target/manifest.json`` raises ConfigError (an import error in the UI).
    """
    project = load_project(project_dir)
    tasks: dict[str, DbtOperator] = {}
    plans = plan_tasks(project, select_nodes(project, select, exclude))
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
    return group
