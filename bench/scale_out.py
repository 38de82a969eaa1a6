"""Scale-out with the deploy/ stack as local processes: PostgreSQL metadata DB, CeleryExecutor over Redis,
FAB users; the same DAG (8 parallel tasks of 4 s) on 1 worker, then on 2 workers of 4 slots each.

Run: ``python bench/scale_out.py`` (needs PostgreSQL and Redis on 127.0.0.1); writes docs/benchmarks.md.
"""

from __future__ import annotations

import sys
import tempfile
import textwrap
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _report import REPO, table, write_section

DAG = """
import time
from datetime import datetime

from airflow.sdk import DAG, task

with DAG("parallel_sleeps", schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
    for i in range(8):
        task(task_id=f"sleep_{i}")(lambda: time.sleep(4))()
"""


def run_once(workers: int) -> list[str]:
    import psycopg
    from airflow_client.client.models.dag_patch_body import DAGPatchBody
    from cryptography.fernet import Fernet

    from headwater.cli_cluster import celery_stack_settings
    from headwater.ops.airflow_api import AirflowApi
    from headwater.ops.local_cluster import LocalCluster

    database = f"hw_bench_{uuid.uuid4().hex[:8]}"
    admin = psycopg.connect(host="127.0.0.1", port=5432, dbname="test", user="postgres", autocommit=True)
    admin.execute(f'CREATE DATABASE "{database}"')
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        (base / "dags").mkdir()
        (base / "dags" / "parallel_sleeps.py").write_text(textwrap.dedent(DAG))
        settings = celery_stack_settings(
            REPO / "deploy" / "airflow.env",
            database_url=f"postgresql+psycopg2://postgres@127.0.0.1:5432/{database}",
            broker_url="redis://127.0.0.1:6379/0",
            queue=f"bench_{uuid.uuid4().hex[:8]}",
            log_folder=base / "logs",
            fernet_key=Fernet.generate_key().decode(),
        ) | {"AIRFLOW__CELERY__WORKER_CONCURRENCY": "4", "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5"}
        names = [f"w{i}" for i in range(1, workers + 1)]
        cluster = LocalCluster(home=base / "airflow", dags_folder=base / "dags", settings=settings, workers=names)
        started = time.perf_counter()
        try:
            cluster.start(timeout=300)
            up = time.perf_counter() - started
            api = AirflowApi(cluster.url, cluster.username, cluster.password)
            api.wait_for_dags(["parallel_sleeps"], timeout=120)
            api.dags.patch_dag("parallel_sleeps", DAGPatchBody(is_paused=False))
            when = datetime(2026, 1, 5, tzinfo=UTC)
            api.trigger("parallel_sleeps", when)
            while (run := api.run_at("parallel_sleeps", when)) is None or str(run.state.value) not in (
                "success",
                "failed",
            ):
                time.sleep(0.5)
            hosts = sorted({t.hostname for t in api.tasks("parallel_sleeps", run.dag_run_id)})
            api.close()
        finally:
            cluster.stop()
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    assert str(run.state.value) == "success", run.state
    return [
        f"{workers} x 4 slots",
        f"{up:.1f}",
        f"{run.duration:.1f}",
        ", ".join(hosts),
    ]


def main() -> None:
    rows = [run_once(1), run_once(2)]
    for row in rows:
        print("  ".join(row))
    body = table(["Celery workers", "stack up s", "run of 8 x 4 s tasks, s", "ran on"], rows)
    body += (
        "\n\nThe stack: `airflow db migrate` on a fresh PostgreSQL database, the first admin (FAB), api-server, "
        "scheduler, dag-processor, triggerer and the workers as local processes with deploy/airflow.env. The "
        "floor for 8 tasks of 4 s is one wave (4 s) on 2 x 4 slots and two waves (8 s) on 1 x 4 slots; the rest "
        "is queueing and each task's process start (importing Airflow, parsing the DAG file) on 2 cores."
    )
    write_section("scale_out", "Scale-out: 1 vs 2 Celery workers", body, "python bench/scale_out.py")


if __name__ == "__main__":
    main()
