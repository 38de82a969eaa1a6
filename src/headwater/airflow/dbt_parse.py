"""Build a dbt project's manifest with the profile of the warehouse Connection (``headwater dbt-parse``).

The DAG processor only reads manifests; this is what writes them: at deploy time, in CI, or by the
``headwater`` command before a local run when a project changed since its manifest was built.
"""

from __future__ import annotations

import logging
from pathlib import Path

from headwater.airflow.connections import warehouse_for
from headwater.config import LoadedConfig
from headwater.transform.manifest import manifest_problem, read_project_file, target_dir
from headwater.transform.profile import profile_for
from headwater.transform.runner import run_dbt

log = logging.getLogger(__name__)


def parse_project(project_dir: Path, warehouse_conn_id: str, aws_conn_id: str, schema: str) -> Path:
    """Run ``dbt parse`` and leave ``target/manifest.json`` (and dbt's parse cache) in the project."""
    project = read_project_file(project_dir)
    warehouse = warehouse_for(warehouse_conn_id, aws_conn_id)
    profile = profile_for(warehouse, str(project.get("profile") or project["name"]), schema)
    manifest = target_dir(project_dir, project) / "manifest.json"
    run_dbt(project_dir, "parse", profile, write_manifest_to=manifest)
    log.info("dbt manifest written: %s", manifest)
    return manifest


def dbt_projects(loaded: LoadedConfig, pipeline: str | None = None) -> dict[Path, str]:
    """Each configured dbt project folder (of one pipeline, or all) and the target schema it uses first."""
    found: dict[Path, str] = {}
    for name, spec in loaded.config.pipelines.items():
        if spec.dbt is not None and pipeline in (None, name):
            found.setdefault(loaded.relative_path(spec.dbt.project), spec.dbt.schema_)
    return found


def refresh_manifests(loaded: LoadedConfig, only_stale: bool = True, pipeline: str | None = None) -> list[Path]:
    """Parse every configured project (or one pipeline's) whose manifest is missing or stale (or all of them)."""
    defaults = loaded.config.defaults
    built = []
    for project_dir, schema in dbt_projects(loaded, pipeline).items():
        if only_stale and manifest_problem(project_dir) is None:
            continue
        built.append(parse_project(project_dir, defaults.warehouse_conn_id, defaults.aws_conn_id, schema))
    return built
