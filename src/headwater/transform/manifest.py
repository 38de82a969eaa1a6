"""A dbt project's prebuilt ``manifest.json`` read into the graph of nodes Airflow runs, without running dbt.

DAG parsing must never invoke dbt (seconds per parse, and a warehouse connection for some adapters), so
the DAG is drawn from the manifest dbt wrote at build time. A manifest older than any file of the project
is stale: it is refused with the command that rebuilds it, never silently used.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from headwater.errors import ConfigError

EXECUTABLE = ("model", "seed", "snapshot")  # nodes that build a relation, one Airflow task each
TEST_TYPES = ("test", "unit_test")
_PROJECT_SUFFIXES = (".sql", ".yml", ".yaml", ".csv", ".py", ".md")
_SKIP_DIRS = {"target", "dbt_packages", "logs", ".git", "__pycache__", "node_modules"}


class ManifestNotBuiltError(ConfigError):
    """The project's manifest is missing or older than its files: a build step to run, not a config mistake."""


@dataclass(frozen=True)
class DbtNode:
    """One manifest node headwater cares about: something built (model, seed, snapshot) or a test."""

    unique_id: str
    resource_type: str
    name: str
    fqn: tuple[str, ...]
    path: str  # original_file_path, relative to the project
    depends_on: tuple[str, ...]
    tags: tuple[str, ...] = ()
    materialized: str = ""
    attached_node: str | None = None  # a generic test: the model it is declared on

    @property
    def selector(self) -> str:
        """A dbt ``--select`` argument matching exactly this node."""
        return "fqn:" + ".".join(self.fqn)

    @property
    def ephemeral(self) -> bool:
        return self.resource_type == "model" and self.materialized == "ephemeral"


@dataclass
class DbtProject:
    """A dbt project folder and the graph its manifest describes."""

    path: Path
    name: str
    profile: str
    manifest_path: Path
    nodes: dict[str, DbtNode] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)  # the relations its sources read, as schema.table
    checksum: str = ""  # of its models, seeds, snapshots, tests, sources and macros as the manifest has them

    def executable(self) -> list[DbtNode]:
        return [n for n in self.nodes.values() if n.resource_type in EXECUTABLE and not n.ephemeral]

    def tests(self) -> list[DbtNode]:
        return [n for n in self.nodes.values() if n.resource_type in TEST_TYPES]


def read_project_file(project_dir: Path) -> dict[str, Any]:
    """``dbt_project.yml`` as a mapping; a missing folder or file is a config error naming the path."""
    if not project_dir.is_dir():
        raise ConfigError(f"dbt project folder {project_dir} does not exist")
    project_file = project_dir / "dbt_project.yml"
    try:
        data = yaml.safe_load(project_file.read_text(encoding="utf-8"))
    except OSError:
        raise ConfigError(f"{project_file}: no dbt_project.yml; {project_dir} is not a dbt project") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{project_file}: not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not data.get("name"):
        raise ConfigError(f"{project_file}: needs a 'name'")
    return data


def target_dir(project_dir: Path, project: dict[str, Any]) -> Path:
    raw = os.environ.get("DBT_TARGET_PATH") or project.get("target-path") or "target"
    path = Path(str(raw))
    return path if path.is_absolute() else project_dir / path


def newest_source(project_dir: Path) -> tuple[float, Path | None]:
    """The newest modification time among the project's own files (models, yml, seeds, macros...)."""
    newest, which = 0.0, None
    for root, dirs, files in os.walk(project_dir):
        dirs[:] = [d for d in dirs if d not in _SKIP_DIRS and not d.startswith(".")]
        for name in files:
            if name.endswith(_PROJECT_SUFFIXES):
                path = Path(root) / name
                mtime = path.stat().st_mtime
                if mtime > newest:
                    newest, which = mtime, path
    return newest, which


def manifest_problem(project_dir: Path) -> str | None:
    """Why the project's manifest cannot be used as it is (missing, stale), or None when it is current."""
    project = read_project_file(project_dir)
    manifest = target_dir(project_dir, project) / "manifest.json"
    if not manifest.is_file():
        return f"{manifest} does not exist"
    newest, which = newest_source(project_dir)
    if newest > manifest.stat().st_mtime:
        return f"{manifest} is older than {which}"
    return None


def load_project(project_dir: str | Path) -> DbtProject:
    """The project's graph from its manifest; refuses a missing or stale one with the command that rebuilds it."""
    path = Path(project_dir).expanduser().resolve()
    project = read_project_file(path)
    problem = manifest_problem(path)
    if problem:
        raise ManifestNotBuiltError(
            f"dbt project {path}: {problem}; build it with `headwater dbt-parse` (or `dbt parse` in the project) "
            "before Airflow reads the DAG"
        )
    manifest_path = target_dir(path, project) / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{manifest_path}: not a readable dbt manifest ({type(exc).__name__})") from None
    return DbtProject(
        path=path,
        name=str(project["name"]),
        profile=str(project.get("profile") or project["name"]),
        manifest_path=manifest_path,
        nodes=nodes_from_manifest(manifest, str(project["name"]), manifest_path),
        sources=source_relations(manifest),
        checksum=project_checksum(manifest, str(project["name"])),
    )


def source_relations(manifest: dict[str, Any]) -> list[str]:
    """``schema.table`` of every source the project declares (those of its packages too: they are read)."""
    found = set()
    for entry in (manifest.get("sources") or {}).values():
        if not isinstance(entry, dict):
            continue
        schema, table = entry.get("schema"), entry.get("identifier") or entry.get("name")
        if schema and table:
            found.add(f"{schema}.{table}".lower())
    return sorted(found)


def project_checksum(manifest: dict[str, Any], package: str) -> str:
    """A hash of the project's definition: a change to any model, test, seed, snapshot, source or macro moves it."""
    items = []
    for group in ("nodes", "sources", "unit_tests"):
        for uid, entry in sorted((manifest.get(group) or {}).items()):
            if not isinstance(entry, dict):
                continue
            raw = entry.get("checksum")
            checksum = str(raw.get("checksum") if isinstance(raw, dict) else raw or "")
            config = json.dumps(entry.get("config") or {}, sort_keys=True, default=str)
            items.append(f"{uid}|{checksum}|{hashlib.sha256(config.encode()).hexdigest()}")
    for uid, entry in sorted((manifest.get("macros") or {}).items()):
        if isinstance(entry, dict) and entry.get("package_name") == package:
            items.append(f"{uid}|{hashlib.sha256(str(entry.get('macro_sql') or '').encode()).hexdigest()}")
    return hashlib.sha256("\n".join(items).encode()).hexdigest()


def nodes_from_manifest(manifest: dict[str, Any], package: str, where: Path | str) -> dict[str, DbtNode]:
    """The project's own models, seeds, snapshots and tests (packages' nodes are dependencies, not tasks)."""
    if not isinstance(manifest.get("nodes"), dict):
        raise ConfigError(f"{where}: not a dbt manifest (no 'nodes')")
    entries = list(manifest["nodes"].values()) + list((manifest.get("unit_tests") or {}).values())
    nodes: dict[str, DbtNode] = {}
    for entry in entries:
        kind = entry.get("resource_type")
        if kind not in EXECUTABLE + TEST_TYPES or entry.get("package_name") != package:
            continue
        config = entry.get("config") or {}
        if config.get("enabled") is False:
            continue
        depends = (entry.get("depends_on") or {}).get("nodes") or []
        node = DbtNode(
            unique_id=entry["unique_id"],
            resource_type=kind,
            name=entry["name"],
            fqn=tuple(entry.get("fqn") or (package, entry["name"])),
            path=entry.get("original_file_path") or "",
            depends_on=tuple(depends),
            tags=tuple(entry.get("tags") or ()),
            materialized=str(config.get("materialized") or ""),
            attached_node=entry.get("attached_node") or entry.get("tested_node_unique_id"),
        )
        nodes[node.unique_id] = node
    return nodes
