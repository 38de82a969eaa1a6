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


def test_validate_names_the_bad_key(tmp_path: Path) -> None:
    config = tmp_path / "p.yaml"
    config.write_text("pipelines:\n  p:\n    sheets:\n      - {workbook: a.csv, table: raw.t, load: merge}\n")
    result = runner.invoke(app, ["validate", "--config", str(config)])
    assert result.exit_code == 1
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
