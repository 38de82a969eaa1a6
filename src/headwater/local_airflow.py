"""Airflow in-process for the ``headwater`` command: its environment, the metadata DB, run locks, DAG runs.

Airflow is imported only inside these functions, after ``prepare_env`` has pointed it at headwater's
home, DAGs folder and config, so ``headwater --help`` stays fast.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from headwater.errors import HeadwaterError

PACKAGE_DAGS = Path(__file__).parent / "airflow" / "dags"


def prepare_env(config: Path | None, verbose: bool = False) -> None:
    """Point Airflow at headwater's home, DAGs folder and config before anything imports airflow.

    Without AIRFLOW__CORE__DAGS_FOLDER the package's own DAG file is used, so the command works from any
    directory; quiet mode keeps Airflow's task logs (and their tracebacks) off the terminal.
    """
    from headwater import settings
    from headwater.config import CONFIG_ENV, default_config_path

    os.environ[CONFIG_ENV] = str((config or default_config_path()).resolve())
    home = settings.home()
    os.environ.setdefault(settings.HOME_ENV, str(home))
    os.environ.setdefault("AIRFLOW_HOME", str(home / "airflow"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(PACKAGE_DAGS))
    if not verbose:
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "CRITICAL")
        warnings.filterwarnings("ignore", message=".*httpx.*starlette.testclient.*")  # dag.test's in-process API


@contextlib.contextmanager
def _flock(path: Path, *, wait: bool) -> Iterator[bool]:
    """An exclusive lock on ``path``; yields False instead of waiting when ``wait`` is off and it is taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def migrate() -> None:
    """Bring the metadata DB to Airflow's schema once per database and Airflow version.

    Concurrent first runs queue on a lock instead of migrating the same database at once; a marker in
    AIRFLOW_HOME records the last success, so later runs skip the alembic check (about 2 s).
    """
    import airflow
    from airflow.configuration import conf

    url = conf.get("database", "sql_alchemy_conn")
    digest = hashlib.sha256(f"{airflow.__version__} {url}".encode()).hexdigest()[:16]
    home = Path(os.environ["AIRFLOW_HOME"])
    marker = home / f".headwater-db-{digest}"
    sqlite_file = Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None

    def done() -> bool:
        return marker.exists() and (sqlite_file is None or sqlite_file.exists())

    if done():
        return
    with _flock(home / ".headwater-migrate.lock", wait=True):
        if done():  # another process migrated while this one waited
            return
        from airflow.utils.db import check_migrations, upgradedb

        logging.getLogger("alembic").setLevel(logging.WARNING)
        try:
            check_migrations(timeout=0)  # type: ignore[no-untyped-call]
        except Exception:  # absent or behind: migrate
            upgradedb()
        marker.touch()


@contextlib.contextmanager
def run_lock(pipeline: str, logical_date: datetime) -> Iterator[None]:
    """Refuse a second run of the same pipeline and logical date while the first is still going."""
    stamp = re.sub(r"[^0-9A-Za-z]+", "", logical_date.isoformat())
    path = Path(os.environ["AIRFLOW_HOME"]) / "locks" / f"{pipeline}-{stamp}.lock"
    with _flock(path, wait=False) as held:
        if not held:
            raise HeadwaterError(
                f"pipeline {pipeline!r} for {logical_date.isoformat()} is already running on this machine "
                f"(lock {path}); wait for it to finish"
            )
        yield


def load_dag(pipeline: str) -> Any:
    from airflow.dag_processing.dagbag import DagBag

    folder = os.environ["AIRFLOW__CORE__DAGS_FOLDER"]
    bag = DagBag(dag_folder=folder)
    if bag.import_errors:
        raise HeadwaterError("DAG import errors:\n" + "\n".join(f"{k}: {v}" for k, v in bag.import_errors.items()))
    dag = bag.get_dag(pipeline)
    if dag is None:
        raise HeadwaterError(f"no DAG {pipeline!r} in {folder}")
    return dag


def one_line(exc: BaseException | None) -> str:
    """An error as one line: its first line, or its type when it has no message."""
    if exc is None:
        return "failed (see the task log)"
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
