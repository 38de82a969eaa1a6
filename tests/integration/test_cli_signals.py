"""The CLI under supervisors and scripts: SIGTERM / SIGINT stop ``run`` and ``export`` cleanly within
seconds (published data unchanged, nothing partial left, no process left), a second signal stops at once,
``--output json`` is one document on stdout, and output off a terminal is neither wrapped nor coloured."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.conftest import PG

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
FAST = "SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 100) g"
SLOW = "SELECT g AS id, md5(g::text) AS v FROM generate_series(1, 400000) g WHERE pg_sleep(0.0005) IS NOT NULL"


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HEADWATER"))}
    scratch = home / "tmp"
    scratch.mkdir(parents=True, exist_ok=True)
    return {**env, "HEADWATER_HOME": str(home), "TMPDIR": str(scratch), **extra}


def write_config(folder: Path, query: str, retries: int = 2) -> Path:
    path = folder / "p.yaml"
    path.write_text(
        f"pipelines:\n  slow:\n    retries: {retries}\n    tables:\n"
        f"      - {{conn_id: slowpg, query: {json.dumps(query)}, table: raw.slow}}\n",
        encoding="utf-8",
    )
    return path


def run_cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "headwater"), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


def wait_for(test: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if test():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout} s")


def leftover_processes(marker: str) -> list[str]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        with_marker = " ".join(process.info["cmdline"] or [])
        if marker in with_marker and process.pid != os.getpid():
            found.append(with_marker)
    return found


def published(home: Path) -> list[tuple[Any, ...]]:
    import duckdb

    with duckdb.connect(str(home / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute("SELECT id, v FROM raw.slow ORDER BY id").fetchall()


@pytest.fixture(scope="module")
def slow_run(tmp_path_factory: pytest.TempPathFactory, pg_conninfo: dict[str, Any]) -> dict[str, Any]:
    """A pipeline published once from a fast query (each test then configures the slow one)."""
    tmp_path = tmp_path_factory.mktemp("signals")
    home = tmp_path / "h"
    env = cli_env(home, AIRFLOW_CONN_SLOWPG=f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{PG['dbname']}")
    write_config(tmp_path, FAST)
    first = run_cli("run", "slow", "-c", "p.yaml", "--logical-date", "2026-01-05", "--json", env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    document = json.loads(first.stdout)  # stdout is the JSON document and nothing else
    assert document["state"] == "success" and document["interrupted"] is None
    assert [(t["table"], t["rows"], t["method"]) for t in document["tables"]] == [("raw.slow", 100, "replace")]
    assert document["failed"] == [] and document["logical_date"] == "2026-01-05T00:00:00+00:00"
    before = published(home)
    assert len(before) == 100
    return {"home": home, "env": env, "cwd": tmp_path, "before": before}


def start_slow_run(slow_run: dict[str, Any], day: int, *extra: str) -> subprocess.Popen[str]:
    write_config(slow_run["cwd"], SLOW)
    command = [str(BIN / "headwater"), "run", "slow", "-c", "p.yaml", "--logical-date", f"2026-01-{day:02d}", *extra]
    child = subprocess.Popen(
        command, env=slow_run["env"], cwd=slow_run["cwd"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lake = slow_run["home"] / "lake" / "raw" / "slow" / f"2026-01-{day:02d}"
    wait_for(lambda: lake.exists() and any(lake.rglob("_hw_attempt_*.json")), 120, "the export of the slow query")
    time.sleep(1)
    return child


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_a_run_within_seconds_leaving_the_published_table_and_nothing_else(
    slow_run: dict[str, Any], signum: int, status: int
) -> None:
    day = 6 if signum == signal.SIGTERM else 7
    child = start_slow_run(slow_run, day)
    sent = time.monotonic()
    child.send_signal(signum)
    stdout, stderr = child.communicate(timeout=60)
    took = time.monotonic() - sent
    assert child.returncode == status, stderr[-3000:]
    assert took < 10, f"took {took:.1f} s to stop"
    name = signal.Signals(signum).name
    lines = stderr.strip().splitlines()
    assert f"stopped by {name}: the running task failed and its staging was rolled back" in stderr
    assert lines[-1] == f"failed: export__raw__slow: stopped by {name}; what it had staged was removed"
    assert "Traceback" not in stdout + stderr
    assert published(slow_run["home"]) == slow_run["before"]
    lake = slow_run["home"] / "lake" / "raw" / "slow" / f"2026-01-{day:02d}"
    assert not lake.exists() or [p for p in lake.rglob("*") if p.is_file()] == []  # no part, no marker
    assert list((slow_run["home"] / "tmp").iterdir()) == []  # scratch folders removed
    assert leftover_processes(str(slow_run["cwd"] / "p.yaml")) == []

    if signum != signal.SIGTERM:
        return
    write_config(slow_run["cwd"], FAST)  # the stopped date runs again from the start, to success
    rerun = run_cli("run", "slow", "-c", "p.yaml", "--logical-date", "2026-01-06", "--output", "json",
                    env=slow_run["env"], cwd=slow_run["cwd"])  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert json.loads(rerun.stdout)["tables"][0]["rows"] == 100


def test_a_second_signal_stops_at_once(slow_run: dict[str, Any]) -> None:
    child = start_slow_run(slow_run, 8, "--output", "json")
    child.send_signal(signal.SIGTERM)
    time.sleep(0.3)  # two signals at once are one signal; the worker takes about 2 s to stop cleanly
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=30)
    assert child.returncode == 143
    assert "SIGTERM again: stopped at once, without cleanup" in stderr
    assert published(slow_run["home"]) == slow_run["before"]  # the load never ran: nothing published
    wait_for(lambda: leftover_processes(str(slow_run["cwd"] / "p.yaml")) == [], 10, "the worker being gone")


def test_export_stops_on_sigint_and_sigterm_publishing_nothing(tmp_path: Path, pg_conninfo: dict[str, Any]) -> None:
    url = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{PG['dbname']}"
    env = cli_env(tmp_path / "h")
    for signum, status in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        target = tmp_path / f"out-{status}"
        command = [str(BIN / "headwater"), "export", "--source", url, "--query", SLOW, "--to", str(target),
                   "--rows-per-part", "1000"]  # fmt: skip
        child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda t=target: t.exists() and any(t.glob("part-*")), 120, "the first part")  # type: ignore[misc]
        sent = time.monotonic()
        child.send_signal(signum)
        _, stderr = child.communicate(timeout=60)
        assert child.returncode == status, stderr
        assert time.monotonic() - sent < 10
        name = signal.Signals(signum).name
        assert stderr.strip().splitlines()[-1] == f"stopped by {name}: its parts were removed; nothing was published"
        assert list(target.iterdir()) == []
    assert list((tmp_path / "h" / "tmp").iterdir()) == []


def test_json_documents_and_unwrapped_uncoloured_output_off_a_terminal(
    tmp_path: Path, pg_conninfo: dict[str, Any]
) -> None:
    url = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{PG['dbname']}"
    env = cli_env(tmp_path / "h", COLUMNS="", FORCE_COLOR="")
    env.pop("COLUMNS")
    env.pop("FORCE_COLOR")
    deep = tmp_path / ("a_rather_long_folder_name_for_exports_" * 4) / "nested" / "revenue_by_region_and_day"
    done = run_cli("export", "--source", url, "--query", FAST, "--to", str(deep), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    manifest = (deep / "_manifest.json").as_uri()
    assert len(manifest) > 200
    line = next(x for x in done.stdout.splitlines() if "manifest:" in x)
    assert line.endswith(f"manifest: {manifest}") and line.startswith("100 rows in 1 parts")
    assert "\x1b[" not in done.stdout + done.stderr

    as_json = run_cli("export", "--source", url, "--query", FAST, "--to", str(deep), "--json", env=env, cwd=tmp_path)
    document = json.loads(as_json.stdout)
    assert document["rows"] == 100 and document["parts"] == 1 and document["manifest_uri"] == manifest
    assert document["bytes"] > 0 and document["format"] == "csv.gz"

    bad = run_cli("export", "--source", url, "--query", "SELECT nope FROM nowhere", "--to", str(tmp_path / "x"),
                  "--output", "json", env=env, cwd=tmp_path)  # fmt: skip
    assert bad.returncode == 1 and bad.stdout == ""
    assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    usage = run_cli("export", "--source", url, "--to", str(tmp_path / "x"), env=env, cwd=tmp_path)
    assert usage.returncode == 2 and usage.stderr.strip() == "error: give exactly one of --query or --table"

    repo_config = str(Path(__file__).resolve().parents[2] / "config" / "pipelines.yaml")
    validated = run_cli("validate", "-c", repo_config, "--output", "json", env=env, cwd=tmp_path)
    document = json.loads(validated.stdout)
    assert document["valid"] is True and "sample_sheets" in document["pipelines"]
    assert {"pipeline": "sample_sheets", "triggers": "transform"} in document["links"]
    assert any(e["table"] == "raw.orders" and e["load"] == "replace" for e in document["entries"])
    broken = tmp_path / "broken.yaml"
    broken.write_text("pipelines:\n  p:\n    sheets: [{workbook: a.csv, table: raw.t, load: merge}]\n")
    refused = run_cli("validate", "-c", str(broken), "--json", env=env, cwd=tmp_path)
    assert refused.returncode == 2 and refused.stdout == "" and "pipelines.p.sheets[0].load" in refused.stderr

    listed = run_cli("tables", "-c", repo_config, "--json", env=env, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    tables = json.loads(listed.stdout)
    assert {"table": "raw.orders", "rows": None, "columns": None} in tables["tables"]  # nothing loaded here yet
    assert tables["warehouse"].startswith("duckdb ")
    assert "\x1b[" not in validated.stdout + listed.stdout
