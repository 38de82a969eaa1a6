"""The headwater command: validate, and export with its progress output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from headwater.cli import app
from headwater.lake import LocalLake
from headwater.parts import read_manifest

pytestmark = pytest.mark.integration
runner = CliRunner()


def test_validate_lists_the_shipped_config() -> None:
    result = runner.invoke(app, ["validate", "--config", "config/pipelines.yaml"])
    assert result.exit_code == 0, result.output
    assert "raw.orders" in result.output and "upsert" in result.output
    assert "sample_sheets triggers transform (same logical date)" in result.output
    assert "transform waits for exchange_rates (reschedule, up to 60 min)" in result.output
    assert "daily_report waits for transform (deferrable, up to 60 min)" in result.output


def test_validate_refuses_a_cycle_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "p.yaml"
    config.write_text(
        "pipelines:\n"
        "  a: {triggers: [b], sheets: [{workbook: a.csv, table: raw.a}]}\n"
        "  b: {after: [a], triggers: [c], sheets: [{workbook: b.csv, table: raw.b}]}\n"
        "  c: {sheets: [{workbook: c.csv, table: raw.c}]}\n"
        "  d: {after: [c], triggers: [a], sheets: [{workbook: d.csv, table: raw.d}]}\n"
    )
    result = runner.invoke(app, ["validate", "--config", str(config)])
    assert result.exit_code == 2  # bad config
    assert "the links form a cycle: a -> b -> c -> d -> a" in " ".join(result.output.split())


def test_validate_names_the_bad_key(tmp_path: Path) -> None:
    config = tmp_path / "p.yaml"
    config.write_text("pipelines:\n  p:\n    sheets:\n      - {workbook: a.csv, table: raw.t, load: merge}\n")
    result = runner.invoke(app, ["validate", "--config", str(config)])
    assert result.exit_code == 2
    assert "pipelines.p.sheets[0].load" in " ".join(result.output.split())


def test_export_from_a_postgres_url_to_a_folder(tmp_path: Path, pg_conninfo: dict[str, Any]) -> None:
    url = f"postgresql://{pg_conninfo['user']}@{pg_conninfo['host']}:{pg_conninfo['port']}/{pg_conninfo['dbname']}"
    target = tmp_path / "out" / "series"
    result = runner.invoke(
        app,
        [
            "export",
            "--source",
            url,
            "--query",
            "SELECT g, 'row ' || g AS label FROM generate_series(1, 25000) g",
            "--to",
            str(target),
            "--rows-per-part",
            "10000",
            "--format",
            "csv.zst",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "25,000 rows in 3 parts" in result.output
    lake = LocalLake(tmp_path / "out")
    manifest = read_manifest(lake, (target / "_manifest.json").as_uri())
    assert [p.rows for p in manifest.parts] == [10000, 10000, 5000] and manifest.format == "csv.zst"


def test_export_with_a_bad_query_fails_cleanly(tmp_path: Path, pg_conninfo: dict[str, Any]) -> None:
    url = f"postgresql://{pg_conninfo['user']}@{pg_conninfo['host']}:{pg_conninfo['port']}/{pg_conninfo['dbname']}"
    result = runner.invoke(
        app, ["export", "--source", url, "--table", "public.no_such_table", "--to", str(tmp_path / "x")]
    )
    assert result.exit_code == 1
    assert "does not exist" in result.output
    assert not (tmp_path / "x" / "_manifest.json").exists()


def test_export_reads_the_source_url_from_the_environment(
    tmp_path: Path, pg_conninfo: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"postgresql://{pg_conninfo['user']}@{pg_conninfo['host']}:{pg_conninfo['port']}/{pg_conninfo['dbname']}"
    monkeypatch.setenv("MY_PG_URL", url)
    query = ["--query", "SELECT 1 AS one"]
    result = runner.invoke(app, ["export", "--source", "env:MY_PG_URL", *query, "--to", str(tmp_path / "a")])
    assert result.exit_code == 0, result.output
    monkeypatch.setenv("HEADWATER_SOURCE", url)
    result = runner.invoke(app, ["export", *query, "--to", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["export", "--source", "env:NOT_SET_HW", *query, "--to", str(tmp_path / "c")])
    assert result.exit_code == 1 and "the environment variable NOT_SET_HW is not set" in result.output
    assert "process list" in " ".join(runner.invoke(app, ["export", "--help"]).output.split())


def test_the_demo_commands_in_process(airflow_db: Path, hw_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What `make demo` runs: init, run, tables, with their output and exit codes."""
    monkeypatch.setenv("HEADWATER_CONFIG", "config/pipelines.yaml")  # run sets it; monkeypatch restores it
    monkeypatch.setenv("HEADWATER_RUN_WORKER", "1")  # in this process, not under run's supervisor
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    assert f"Airflow metadata database ready (AIRFLOW_HOME={airflow_db})" in " ".join(result.output.split())
    result = runner.invoke(app, ["run", "sample_sheets", "--logical-date", "2026-01-05"])
    assert result.exit_code == 0, result.output
    lines = " ".join(result.output.split())
    for table, method, rows, columns in (
        ("raw.orders", "replace", 240, 8),
        ("raw.customers", "upsert", 40, 7),
        ("raw.products", "replace", 30, 5),
    ):
        assert f"{table} │ {method} │ {rows} │ {columns} │ {rows} │" in lines
    assert "(success)" in lines
    result = runner.invoke(app, ["tables"])
    assert result.exit_code == 0, result.output
    lines = " ".join(result.output.split())
    for table, rows in (("raw.orders", 240), ("raw.customers", 40), ("raw.products", 30), ("raw.exchange_rates", "-")):
        assert f"{table} │ {rows} │" in lines
    assert f"warehouse: duckdb {hw_home / 'warehouse.duckdb'}".replace(" ", "") in lines.replace(" ", "")


def test_a_failing_run_in_process_names_the_task_and_the_cell(
    airflow_db: Path, hw_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "bad.csv").write_text("id,amount\n1,10\n2,twelve\n")
    config = tmp_path / "p.yaml"
    config.write_text(
        "pipelines:\n  bad_one:\n    retries: 0\n    sheets:\n"
        "      - {workbook: bad.csv, table: raw.bad, columns: {amount: integer}}\n"
    )
    monkeypatch.setenv("HEADWATER_CONFIG", str(config))
    monkeypatch.setenv("HEADWATER_RUN_WORKER", "1")  # in this process, not under run's supervisor
    result = runner.invoke(app, ["run", "bad_one", "--logical-date", "2026-01-05"])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"failed: extract_bad: workbook {tmp_path / 'bad.csv'}, tab 'bad': row 3, column 'amount' (B): "
        "value does not fit type integer (is not an integer)"
    )
    assert "not run: check__raw__bad, load__raw__bad (an upstream task failed)" in result.stderr
    assert "twelve" not in result.output
    result = runner.invoke(app, ["run", "no_such_pipeline"])
    assert result.exit_code == 2
    assert f"{config}: no pipeline named 'no_such_pipeline' (configured: bad_one)" in result.stderr
    result = runner.invoke(app, ["run", "bad_one", "--logical-date", "5 Jan"])
    assert result.exit_code == 2
    assert "--logical-date '5 Jan' is not YYYY-MM-DD or an ISO timestamp" in result.stderr
