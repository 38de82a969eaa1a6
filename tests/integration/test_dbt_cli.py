"""Bad dbt, check and summary input through ``headwater run``: one line naming what failed, no traceback,
and the published tables as they were."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from tests.integration.test_cli_run import headwater

pytestmark = pytest.mark.integration


def _project(root: Path, model_sql: str = "select id, name from {{ source('landing', 'people') }}") -> Path:
    project = root / "proj"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: proj\nversion: '1.0'\nconfig-version: 2\nprofile: proj\n")
    (project / "models" / "schema.yml").write_text(
        textwrap.dedent(
            """\
            version: 2
            sources:
              - name: landing
                schema: landing
                tables: [{name: people}]
            models:
              - name: people_clean
                columns:
                  - name: id
                    data_tests: [unique]
              - name: people_report
            """
        )
    )
    (project / "models" / "people_clean.sql").write_text(model_sql + "\n")
    (project / "models" / "people_report.sql").write_text("select count(*) as n from {{ ref('people_clean') }}\n")
    return project


def _config(root: Path, extra: str = "") -> None:
    (root / "people.csv").write_text("ID,Name\n1,Ann\n1,Ann again\n")  # id repeats: the dbt test fails
    (root / "p.yaml").write_text(
        "pipelines:\n  people:\n    retries: 3\n    retry_delay_minutes: 30\n"
        "    sheets: [{workbook: people.csv, table: landing.people}]\n"
        "    dbt: {project: proj}\n" + extra
    )


def _last_lines(stderr: str) -> list[str]:
    return [line for line in stderr.strip().splitlines() if line.startswith(("error:", "failed:"))]


def test_a_missing_dbt_project_is_one_line(tmp_path: Path) -> None:
    _config(tmp_path)
    result = headwater("run", "people", "-c", "p.yaml", cwd=tmp_path, home=tmp_path / "h")
    assert result.returncode == 2  # bad config
    assert _last_lines(result.stderr) == [f"error: dbt project folder {tmp_path / 'proj'} does not exist"]
    assert "Traceback" not in result.stderr + result.stdout


def test_a_model_that_does_not_compile_names_its_file_and_line(tmp_path: Path) -> None:
    _project(tmp_path, "select id,\n  name\nfrom {{ source('landing', 'people' }}")
    _config(tmp_path)
    result = headwater("run", "people", "-c", "p.yaml", cwd=tmp_path, home=tmp_path / "h")
    assert result.returncode == 1
    [line] = _last_lines(result.stderr)
    assert line.startswith("error: dbt parse failed: Compilation Error in model people_clean (models/people_clean.sql)")
    assert "line 3" in line
    assert "Traceback" not in result.stderr + result.stdout


def test_a_connection_dbt_cannot_use_is_one_line(tmp_path: Path) -> None:
    _project(tmp_path)
    _config(tmp_path)
    import os

    from tests.integration.test_cli_run import cli_env

    env = {**cli_env(tmp_path / "h"), "AIRFLOW_CONN_HEADWATER_WAREHOUSE": "mysql://root@127.0.0.1:3306/test"}
    import subprocess
    import sys

    command = [sys.executable, "-c", "from headwater.cli import app; app()", "run", "people", "-c", "p.yaml"]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 1, result.stderr
    assert _last_lines(result.stderr) == [
        "error: Connection 'headwater_warehouse': type 'mysql' is not a warehouse headwater knows "
        "(postgres, redshift, duckdb)"
    ]
    assert os.environ.get("AIRFLOW_CONN_HEADWATER_WAREHOUSE") is None


def test_failing_dbt_test_check_and_summary_each_fail_their_task_with_one_line(tmp_path: Path) -> None:
    _project(tmp_path)
    _config(
        tmp_path,
        "  report:\n"
        "    summaries:\n"
        "      - table: reports.people_summary\n"
        "        select: SELECT count(*) AS people, max(no_such_column) AS x FROM landing.people\n"
        "  guarded:\n"
        "    sheets:\n"
        "      - workbook: people.csv\n"
        "        table: landing.guarded\n"
        "        checks: [{not_null: [nmae]}]\n",
    )
    home = tmp_path / "h"
    result = headwater("run", "people", "-c", "p.yaml", "--logical-date", "2026-01-05", cwd=tmp_path, home=home)
    assert result.returncode == 1
    failed = _last_lines(result.stderr)
    assert (
        "failed: dbt.test__people_clean: dbt test: 1 failed: test unique_people_clean_id (models/schema.yml) "
        "failed: 1 failing row(s)" in failed
    )
    assert "not run: dbt.run__people_report" in result.stderr  # downstream of the failed test
    assert "Traceback" not in result.stderr + result.stdout

    report = headwater("run", "report", "-c", "p.yaml", "--logical-date", "2026-01-05", cwd=tmp_path, home=home)
    [summary] = _last_lines(report.stderr)
    assert summary.startswith("failed: summary__reports__people_summary: summary reports.people_summary: its SELECT")
    assert "no_such_column" in summary and summary.endswith("nothing was published")

    guarded = headwater("run", "guarded", "-c", "p.yaml", "--logical-date", "2026-01-05", cwd=tmp_path, home=home)
    assert guarded.returncode == 1
    assert _last_lines(guarded.stderr) == [
        f"failed: load__landing__guarded: workbook {tmp_path / 'people.csv'} -> landing.guarded: check not_null(nmae): "
        "no column 'nmae' in the table (columns: id, name)"
    ]
    tables = headwater("tables", "-c", "p.yaml", cwd=tmp_path, home=home)
    assert "│ landing.guarded │    - │       - │" in tables.stdout  # never published
