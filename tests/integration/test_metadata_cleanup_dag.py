"""The ``maintenance.metadata_cleanup`` DAG run by Airflow (``dag.test``): ``airflow db clean`` moves
metadata rows past the retention into archive tables; a dry run changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.integration.test_end_to_end import run_dag

pytestmark = pytest.mark.integration


def config(tmp_path: Path, dry_run: bool) -> Path:
    (tmp_path / "a.csv").write_text("x\n1\n", encoding="utf-8")
    path = tmp_path / f"pipelines-{dry_run}.yaml"
    path.write_text(
        "pipelines:\n  p:\n    sheets: [{workbook: a.csv, table: raw.a}]\n"
        "maintenance:\n  metadata_cleanup:\n"
        f"    {{retention_days: 3650, tables: [dag_run], batch_size: 100, dry_run: {str(dry_run).lower()}}}\n",
        encoding="utf-8",
    )
    return path


def test_old_runs_are_archived_and_recent_ones_kept(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunType
    from sqlalchemy import inspect, select, text

    dag_id = f"ancient_{uuid.uuid4().hex[:8]}"  # rows of this test only: nothing else is ten years old
    now = datetime.now(UTC)
    with create_session() as session:
        for run_id, started in (
            ("old_1", datetime(2001, 1, 1, tzinfo=UTC)),
            ("old_2", datetime(2002, 1, 1, tzinfo=UTC)),
            ("recent", now - timedelta(days=1)),
        ):
            session.add(
                DagRun(
                    dag_id=dag_id,
                    run_id=run_id,
                    run_type=DagRunType.MANUAL,
                    start_date=started,
                    run_after=started,
                    logical_date=started,
                    state="success",
                )
            )

    def runs() -> list[str]:
        with create_session() as session:
            return sorted(session.scalars(select(DagRun.run_id).where(DagRun.dag_id == dag_id)))

    assert (
        run_dag(
            "headwater_metadata_cleanup", datetime(2026, 1, 5, tzinfo=UTC), monkeypatch, config(tmp_path, True)
        ).state
        == "success"
    )
    assert runs() == ["old_1", "old_2", "recent"]  # the dry run deleted nothing

    assert (
        run_dag(
            "headwater_metadata_cleanup", datetime(2026, 1, 6, tzinfo=UTC), monkeypatch, config(tmp_path, False)
        ).state
        == "success"
    )
    assert runs() == ["recent"]
    with create_session() as session:
        archives = [
            t for t in inspect(session.get_bind()).get_table_names() if t.startswith("_airflow_deleted__dag_run__")
        ]
        archived = sorted(
            r
            for t in archives
            for r in session.execute(text(f'SELECT run_id FROM "{t}" WHERE dag_id = :d'), {"d": dag_id}).scalars()
        )
    assert archived == ["old_1", "old_2"]
