"""The ``maintenance.log_cleanup`` DAG run by Airflow (``dag.test``): a dry run lists, a real run deletes,
old files only, and the task asks Airflow whether each old log's task is still active."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.test_end_to_end import run_dag

pytestmark = pytest.mark.integration


def config(tmp_path: Path, logs: Path, dry_run: bool) -> Path:
    (tmp_path / "a.csv").write_text("x\n1\n", encoding="utf-8")
    path = tmp_path / f"pipelines-{dry_run}.yaml"
    path.write_text(
        "pipelines:\n  p:\n    sheets: [{workbook: a.csv, table: raw.a}]\n"
        f"maintenance:\n  log_cleanup: {{retention_days: 30, dry_run: {str(dry_run).lower()}, folder: {logs}}}\n",
        encoding="utf-8",
    )
    return path


def test_the_log_cleanup_dag_lists_then_deletes_old_task_logs(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    logs = tmp_path / "logs"
    old = logs / "dag_id=p/run_id=scheduled__2025-01-01T00:00:00+00:00/task_id=load__raw__a/attempt=1.log"
    new = logs / "dag_id=p/run_id=scheduled__2026-11-20T00:00:00+00:00/task_id=load__raw__a/attempt=1.log"
    for path, age in ((old, 60), (new, 1)):
        path.parent.mkdir(parents=True)
        path.write_text("log line\n")
        os.utime(path, (time.time() - age * 86400,) * 2)

    def run(dry_run: bool, day: int) -> dict[str, object]:
        dag_run = run_dag(
            "headwater_log_cleanup", datetime(2026, 1, day, tzinfo=UTC), monkeypatch, config(tmp_path, logs, dry_run)
        )
        assert dag_run.state == "success"
        with create_session() as session:
            query = XComModel.get_many(run_id=dag_run.run_id, dag_ids="headwater_log_cleanup", key="return_value")
            [row] = list(session.execute(query).scalars())
            return dict(XComModel.deserialize_value(row))

    listed = run(True, 5)
    assert listed == {"dry_run": True, "files": 1, "bytes": 9, "folders": 2, "kept_running": 0, "skipped_links": 0}
    assert old.exists()
    deleted = run(False, 6)
    assert deleted == listed | {"dry_run": False}
    assert not old.exists() and not old.parent.parent.exists() and new.exists()
