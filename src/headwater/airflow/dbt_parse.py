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


def dbt_projects(loaded: LoadedConfig) -> dict[Path, str]:
    """Each configured dbt project folder and the target schema its first pipeline uses."""
    found: dict[Path, str] = {}
    for pipeline in loaded.config.pipelines.values():
        if pipeline.dbt is not None:
            found.setdefault(loaded.relative_path(pipeline.dbt.project), pipeline.dbt.schema_)
    return found


def refresh_manifests(loaded: LoadedConfig, only_stale: bool = True) -> list[Path]:
    """Parse every configured project whose manifest is missing or older than its files (or all of them)."""
    defaults = loaded.config.defaults
    built = []
    for project_dir, schema in dbt_projects(loaded).items():
        if only_stale and manifest_problem(project_dir) is None:
            continue
        built.append(parse_project(project_dir, defaults.warehouse_conn_id, defaults.aws_conn_id, schema))
    return built
