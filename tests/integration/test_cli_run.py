"""``headwater run`` as users and schedulers call it: from any directory, failing fast with one clear line,
and safe when two runs start at the same moment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration


def cli_env(home: Path) -> dict[str, str]:
    """The environment of a user's shell: no test Airflow home, no DAGs folder, a fresh headwater home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HEADWATER"))}
    return {**env, "HEADWATER_HOME": str(home)}


def headwater(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-c", "from headwater.cli import app; app()", *args]
    return subprocess.run(command, cwd=cwd, env=cli_env(home), capture_output=True, text=True, timeout=240)


def test_an_empty_tab_fails_at_once_with_one_clear_line_from_any_directory(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("id,name\n")
    (tmp_path / "p.yaml").write_text(
        "pipelines:\n  emp:\n    retries: 5\n    retry_delay_minutes: 30\n"
        "    sheets:\n      - {workbook: empty.csv, table: raw.emp}\n"
    )
    # Retried, this would sleep 30 minutes and hit the test timeout; it must end on the first try.
    result = headwater("run", "emp", "-c", "p.yaml", "--logical-date", "2026-01-05", cwd=tmp_path, home=tmp_path / "h")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == (
        "failed: extract_empty: workbook empty.csv, tab 'empty': the tab has a header but no data rows "
        "(set allow_empty to load it)"
    )
    assert "Traceback" not in result.stdout + result.stderr


def test_two_first_runs_at_once_both_succeed(tmp_path: Path) -> None:
    home = tmp_path / "h"
    config = tmp_path / "pipelines.yaml"
    shutil.copy(REPO / "config" / "pipelines.yaml", config)
    shutil.copytree(REPO / "examples", tmp_path / "examples")
    (tmp_path / "config").mkdir()
    shutil.move(config, tmp_path / "config" / "pipelines.yaml")
    command = [sys.executable, "-c", "from headwater.cli import app; app()", "run"]
    procs = [
        subprocess.Popen(
            [*command, name, "--logical-date", "2026-01-05"],
            cwd=tmp_path,
            env=cli_env(home),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("sample_sheets", "exchange_rates")
    ]
    outputs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs


def test_the_same_pipeline_and_date_twice_at_once_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datetime import UTC, datetime

    from headwater.local_airflow import run_lock

    home = tmp_path / "h"
    (tmp_path / "a.csv").write_text("id\n1\n")
    (tmp_path / "p.yaml").write_text("pipelines:\n  one:\n    sheets:\n      - {workbook: a.csv, table: raw.one}\n")
    monkeypatch.setenv("AIRFLOW_HOME", str(home / "airflow"))
    with run_lock("one", datetime(2026, 1, 5, tzinfo=UTC)):
        result = headwater("run", "one", "-c", "p.yaml", "--logical-date", "2026-01-05", cwd=tmp_path, home=home)
    assert result.returncode == 1
    assert "'one' for 2026-01-05T00:00:00+00:00 is already running" in result.stderr


def test_a_malformed_warehouse_connection_fails_the_run_naming_it(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id\n1\n")
    (tmp_path / "p.yaml").write_text("pipelines:\n  one:\n    sheets:\n      - {workbook: a.csv, table: raw.one}\n")
    home = tmp_path / "h"
    env = {**cli_env(home), "AIRFLOW_CONN_HEADWATER_WAREHOUSE": "postgres://u:hunter#2@127.0.0.1:5432/test"}
    command = [sys.executable, "-c", "from headwater.cli import app; app()", "run", "one", "-c", "p.yaml"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("failed: load__raw__one: Connection 'headwater_warehouse'") and "percent-encoded" in last
    assert "hunter" not in result.stdout + result.stderr
    assert not (home / "warehouse.duckdb").exists()  # no silent fallback to the embedded warehouse
