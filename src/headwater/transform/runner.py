"""Run one dbt command in this process (dbt's own ``dbtRunner``) and turn its outcome into one-line reasons.

In-process because importing dbt costs about 3 s: a subprocess per task would pay it every time. The
profile's values are put into the environment only for the length of the call, and dbt writes its
artifacts and parse cache into a scratch folder, so tasks sharing one project folder never collide
and nothing dbt writes outlives the call.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headwater.errors import HeadwaterError
from headwater.scratch import scratch_folder
from headwater.transform.manifest import read_project_file, target_dir
from headwater.transform.profile import TARGET, DbtProfile

log = logging.getLogger(__name__)
_ENV_LOCK = threading.Lock()
_FAILED = {"error", "fail", "runtime error"}
_TRANSIENT = re.compile(
    r"could not connect|connection refused|server closed the connection|timeout expired|timed out|"
    r"connection reset|deadlock detected|could not obtain lock|too many connections|terminating connection",
    re.IGNORECASE,
)
_QUIET_ENV = {"DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DBT_VERSION_CHECK": "false", "DO_NOT_TRACK": "1"}


class DbtError(HeadwaterError):
    """A dbt command failed: a model or test failed, or the project does not compile."""


@dataclass
class NodeResult:
    unique_id: str
    name: str
    resource_type: str
    path: str
    status: str
    seconds: float
    message: str = ""
    failures: int | None = None

    @property
    def failed(self) -> bool:
        return self.status in _FAILED

    def reason(self) -> str:
        what = f"{self.resource_type} {self.name} ({self.path})"
        if self.resource_type in ("test", "unit_test") and self.status == "fail":
            detail = f"{self.failures} failing row(s)" if self.failures is not None else first_line(self.message)
            if self.resource_type == "unit_test":
                detail = "actual rows differ from the expected rows"
            return f"{what} failed: {detail}"
        return f"{what} {self.status}: {first_line(self.message)}"


@dataclass
class DbtRun:
    command: str
    seconds: float
    results: list[NodeResult] = field(default_factory=list)

    @property
    def failed(self) -> list[NodeResult]:
        return [r for r in self.results if r.failed]


def first_line(text: str) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return " ".join(lines[:3])[:500] if lines else "no message"


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set ``values`` in os.environ for the block only (dbt reads env_var() from there), then restore."""
    with _ENV_LOCK:
        saved = {k: os.environ.get(k) for k in values}
        os.environ.update(values)
        try:
            yield
        finally:
            for key, old in saved.items():
                if old is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = old


def run_dbt(
    project_dir: str | Path,
    command: str,
    profile: DbtProfile,
    *,
    select: Sequence[str] = (),
    exclude: Sequence[str] = (),
    dbt_vars: Mapping[str, Any] | None = None,
    full_refresh: bool = False,
    write_manifest_to: Path | None = None,
) -> DbtRun:
    """Run ``dbt <command>`` on the project through ``profile``; raise DbtError naming what failed.

    ``write_manifest_to``: copy the manifest dbt built here (``parse``) into that file.
    """
    from dbt.cli.main import dbtRunner

    project = Path(project_dir).expanduser().resolve()
    settings = read_project_file(project)  # a missing project fails here, before dbt starts
    started = time.monotonic()
    with scratch_folder() as scratch:
        (scratch / "profiles.yml").write_text(profile.text, encoding="utf-8")
        target = scratch / "target"
        target.mkdir()
        cache = target_dir(project, settings) / "partial_parse.msgpack"
        if cache.is_file():
            shutil.copy2(cache, target / cache.name)  # dbt checks it against the project and reparses if stale
        args = [
            *command.split(),
            "--project-dir", str(project),
            "--profiles-dir", str(scratch),
            "--target", TARGET,
            "--target-path", str(target),
            "--log-path", str(scratch / "logs"),
            "--log-level", "none",
            "--log-level-file", "none",
            "--no-use-colors",
            "--no-version-check",
            "--no-send-anonymous-usage-stats",
        ]  # fmt: skip
        if select:
            args += ["--select", *select]
        if exclude:
            args += ["--exclude", *exclude]
        if dbt_vars:
            import json

            args += ["--vars", json.dumps(dict(dbt_vars))]
        if full_refresh:
            args.append("--full-refresh")
        if write_manifest_to is None:
            args.append("--no-write-json")  # results come back as objects; writing the artifacts costs seconds
        with _environment({**_QUIET_ENV, **profile.env}):
            try:
                outcome = dbtRunner(callbacks=[_log_event]).invoke(args)
            finally:
                _release_connections(profile.adapter)
        if outcome.success:
            _keep_parse_cache(target / cache.name, cache)
        if write_manifest_to is not None and outcome.success:
            write_manifest_to.parent.mkdir(parents=True, exist_ok=True)
            for name in ("partial_parse.msgpack", "manifest.json"):  # the manifest last: it marks the build done
                if (target / name).is_file():
                    _install(target / name, write_manifest_to.parent / name)
    run = DbtRun(command, round(time.monotonic() - started, 3))
    exception = outcome.exception
    if exception is not None and not isinstance(exception, Exception):
        raise exception  # SIGTERM, Ctrl-C: not dbt's to swallow
    run.results = _results(outcome.result)
    for result in run.results:
        log.info("dbt %s %s: %s in %.2fs", result.resource_type, result.name, result.status, result.seconds)
    if exception is not None:
        message = str(exception)
        raise DbtError(f"dbt {command} failed: {first_line(message)}", transient=bool(_TRANSIENT.search(message)))
    failed = run.failed
    if failed:
        reasons = "; ".join(r.reason() for r in failed[:5])
        more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
        transient = all(_TRANSIENT.search(r.message or "") for r in failed)
        raise DbtError(f"dbt {command}: {len(failed)} failed: {reasons}{more}", transient=transient)
    if not outcome.success:
        raise DbtError(f"dbt {command} did not succeed (no node failed; see the dbt output above)")
    return run


def _keep_parse_cache(fresh: Path, cache: Path) -> None:
    """Put dbt's parse cache back into the project when this call had to rebuild it, so the next call skips
    the parse (about 2 s). dbt's profile check hashes connection values, so a manifest built elsewhere (CI,
    another path) is reparsed once, then reused. Atomic; silently skipped on a read-only project."""
    if not fresh.is_file():
        return
    with contextlib.suppress(OSError):
        same_size = cache.is_file() and cache.stat().st_size == fresh.stat().st_size
        if same_size and cache.read_bytes() == fresh.read_bytes():
            return
        _install(fresh, cache)


def _install(source: Path, destination: Path) -> None:
    """Copy ``source`` over ``destination`` atomically: a reader (the DAG processor) never sees half a file."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    temporary = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    try:
        shutil.copy2(source, temporary)
        temporary.replace(destination)
    finally:
        temporary.unlink(missing_ok=True)


def _release_connections(adapter: str) -> None:
    """Close what dbt keeps open between invocations in this process.

    dbt-duckdb holds its DuckDB connection in a class-level environment until the process exits; left
    open, it keeps the file locked for every other writer and stops this process opening it read-only.
    """
    from dbt.adapters.factory import cleanup_connections

    with contextlib.suppress(Exception):
        cleanup_connections()  # type: ignore[no-untyped-call]
    if adapter == "duckdb":
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager

        with DuckDBConnectionManager._LOCK:
            env = DuckDBConnectionManager._ENV
            DuckDBConnectionManager._ENV = None
            if env is not None:
                with contextlib.suppress(Exception):
                    env.close()


def _results(result: Any) -> list[NodeResult]:
    found: list[NodeResult] = []
    for item in getattr(result, "results", None) or []:
        node = getattr(item, "node", None)
        if node is None:
            continue
        found.append(
            NodeResult(
                unique_id=node.unique_id,
                name=node.name,
                resource_type=str(node.resource_type),
                path=getattr(node, "original_file_path", "") or "",
                status=str(getattr(item.status, "value", item.status)),
                seconds=round(float(item.execution_time or 0), 3),
                message=str(item.message or ""),
                failures=item.failures,
            )
        )
    return found


def _log_event(event: Any) -> None:
    """dbt's warnings and errors into our log (its stdout is off); the per-node lines come from the results."""
    level = getattr(event.info, "level", "")
    if level in ("warn", "error"):
        log.warning("dbt: %s", event.info.msg)
