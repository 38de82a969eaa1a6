"""``headwater chain`` as a user runs it: the chain under Airflow's processes, the UI left up and stopped
again, and Ctrl-C / SIGTERM stopping every process it started."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

HEADWATER = str(Path(sys.executable).with_name("headwater"))
CONFIG = """
pipelines:
  ingest:
    schedule: "0 9 * * *"
    retries: 0
    triggers: [report]
    sheets:
      - {workbook: items.csv, table: raw.items}
  report:
    schedule: null
    retries: 0
    exports:
      - {name: items, query: "SELECT * FROM raw.items"}
"""


def airflow_processes(home: Path) -> list[int]:
    """Processes whose AIRFLOW_HOME is under ``home`` (ours only: the test suite runs others)."""
    found = []
    for process in psutil.process_iter():
        try:
            if str(home) in process.environ().get("AIRFLOW_HOME", ""):
                found.append(process.pid)
        except (psutil.Error, OSError):
            continue
    return found


@pytest.fixture
def project(tmp_path: Path) -> tuple[dict[str, str], Path]:
    (tmp_path / "items.csv").write_text("item,amount\napple,3\n", encoding="utf-8")
    (tmp_path / "pipelines.yaml").write_text(CONFIG, encoding="utf-8")
    home = tmp_path / "hw"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HEADWATER_"))}
    env |= {"HEADWATER_HOME": str(home), "HEADWATER_CONFIG": str(tmp_path / "pipelines.yaml"), "COLUMNS": "200"}
    return env, home


def test_chain_keep_ui_then_stop(project: tuple[dict[str, str], Path]) -> None:
    env, home = project
    try:
        done = subprocess.run(
            [HEADWATER, "chain", "--logical-date", "2026-01-05T10:00", "--keep-ui"],
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
            cwd=REPO,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-3000:] + done.stdout[-3000:]
        out = done.stdout
        assert re.search(r"ingest  2026-01-05T09:00:00\+00:00  manual  success", out), out
        assert re.search(r"report  2026-01-05T09:00:00\+00:00  operator_triggered  success", out), out
        assert "raw.items: 1 rows, changed" in out and "triggered report" in out
        assert re.search(r"items: file://\S+/exports/items/2026-01-05T090000/\S+/_manifest\.json", out), out
        url, user, password = re.search(r"Airflow UI: (\S+)  user (\S+)  password (\S+)", out).groups()  # type: ignore[union-attr]
        assert airflow_processes(home), "--keep-ui left nothing running"
        token = httpx.post(f"{url}/auth/token", json={"username": user, "password": password}, timeout=30)
        assert token.status_code == 201
        dags = httpx.get(f"{url}/api/v2/dags", headers={"Authorization": f"Bearer {token.json()['access_token']}"})
        assert {d["dag_id"] for d in dags.json()["dags"]} == {"ingest", "report"}
        assert httpx.get(f"{url}/api/v2/dags", timeout=30).status_code == 401  # no anonymous access
    finally:
        stop = subprocess.run([HEADWATER, "chain", "--stop"], env=env, capture_output=True, text=True, timeout=120)
    assert stop.returncode == 0 and "stopped: " in stop.stdout, stop.stdout + stop.stderr
    assert airflow_processes(home) == []
    assert not (home / "scheduler" / "simple_auth_manager_passwords.json").exists()


def test_sigterm_stops_every_process(project: tuple[dict[str, str], Path]) -> None:
    """What a supervisor sends; Ctrl-C takes the same path (KeyboardInterrupt) with status 130."""
    signum, status = signal.SIGTERM, 143
    env, home = project
    process = subprocess.Popen(
        [HEADWATER, "chain", "--logical-date", "2026-01-05T10:00"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert process.stderr is not None
        for line in process.stderr:  # interrupt once the components run and the chain was triggered
            if "triggering the chain" in line:
                break
        time.sleep(2)
        assert airflow_processes(home)
        process.send_signal(signum)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == status, err
    assert "interrupted: stopping Airflow" in err
    assert airflow_processes(home) == []
