"""dbt in Airflow: ``DbtOperator`` runs one dbt command over some nodes, with a profile derived from the
warehouse Connection; ``dbt_task_group`` draws a project's models, seeds, snapshots and tests as tasks."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import Context

from headwater.operators.base import HeadwaterOperator

COMMANDS = ("run", "seed", "snapshot", "test", "build", "source freshness")


class DbtOperator(HeadwaterOperator):
    """Run ``dbt <command> --select ...`` on the project at ``project_dir`` against the warehouse Connection.

    The profile comes from ``warehouse_conn_id`` (postgres, redshift, duckdb, or the embedded DuckDB
    when undefined): the secrets stay in memory. A failing model or test fails the task at once (no
    retry) with a one-line reason naming the node and its file; a lost connection is retried.
    """

    template_fields: Sequence[str] = ("select", "exclude", "dbt_vars", "target_schema", "warehouse_conn_id")
    ui_color = "#fde2cf"

    def __init__(
        self,
        *,
        project_dir: str | Path,
        command: str = "build",
        select: Sequence[str] = (),
        exclude: Sequence[str] = (),
        dbt_vars: Mapping[str, Any] | None = None,
        target_schema: str = "analytics",
        threads: int = 4,
        full_refresh: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from headwater.identifiers import validate_identifier

        if command not in COMMANDS:
            raise self.argument_error("command", f"{command!r} is not one of {', '.join(COMMANDS)}")
        for name, value in (("select", select), ("exclude", exclude)):
            if isinstance(value, str):
                raise self.argument_error(name, f"a list of dbt selectors, not the string {value!r}")
        self.project_dir = str(project_dir)
        self.command = command
        self.select = list(select)
        self.exclude = list(exclude)
        self.dbt_vars = dict(dbt_vars or {})
        self.target_schema = self.check("target_schema", target_schema, lambda v: validate_identifier(v, "schema"))
        self.threads = threads
        self.full_refresh = full_refresh

    def run(self, context: Context) -> dict[str, Any]:
        from headwater.transform.manifest import read_project_file
        from headwater.transform.profile import profile_for
        from headwater.transform.runner import run_dbt

        project = read_project_file(Path(self.project_dir))
        warehouse = self.warehouse()
        profile = profile_for(
            warehouse, str(project.get("profile") or project["name"]), self.target_schema, self.threads
        )
        with warehouse.exclusive():
            result = run_dbt(
                self.project_dir,
                self.command,
                profile,
                select=self.select,
                exclude=self.exclude,
                dbt_vars=self.dbt_vars,
                full_refresh=self.full_refresh,
            )
        self._record_outlet_events(context, result.results)
        return {
            "command": self.command,
            "seconds": result.seconds,
            "nodes": [{"name": r.name, "type": r.resource_type, "status": r.status} for r in result.results],
        }

    def _record_outlet_events(self, context: Context, results: Sequence[Any]) -> None:
        """Each outlet Asset of a dbt node (``x-dbt://project/unique_id``) gets that node's status and time."""
        by_id = {r.unique_id: r for r in results}
        events = context.get("outlet_events")
        for outlet in self.outlets or []:
            uri = str(getattr(outlet, "uri", ""))
            if events is None or not uri.startswith("x-dbt://"):
                continue
            found = by_id.get(uri.split("/", 3)[-1])
            if found is not None:
                events[outlet].extra = {"status": found.status, "seconds": found.seconds}


class DbtProjectProblemOperator(HeadwaterOperator):
    """Stands in for a dbt project that cannot be drawn (no folder, a missing or stale manifest, a selector
    matching nothing): fails at once with the reason. The DAG factory draws it instead of refusing the whole
    DAG file, so the other pipelines keep running."""

    ui_color = "#f5b7b1"

    def __init__(self, *, problem: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.problem = problem

    def run(self, context: Context) -> None:
        from headwater.errors import ConfigError

        raise ConfigError(self.problem)
