"""The chain under Airflow's real scheduler: api-server, scheduler, dag-processor and triggerer as child
processes over one SQLite metadata DB, runs triggered through the REST API, nothing run by ``dag.test``.

One cluster serves the module (it takes about 20 s to start); the tests run in order and share it. Its
fixture stops every process it started, also when a test fails, and checks none is left.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import textwrap
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from headwater.ops.airflow_api import AirflowApi
from headwater.ops.local_cluster import LocalCluster, session_pids
from tests.conftest import PG, REPO, free_port, service_missing
from tests.fakes.webhook import webhook_receiver

pytestmark = pytest.mark.integration

D1 = datetime(2026, 1, 5, tzinfo=UTC)
AT_9 = timedelta(hours=9)
AT_10 = timedelta(hours=10)

PIPELINES = """
pipelines:
  ingest:
    schedule: "0 9 * * *"
    start_date: 2026-01-01
    retries: 0
    triggers: [transform]
    sheets:
      - {workbook: items.csv, table: raw.items, load: replace}
  rates:
    schedule: "@daily"
    start_date: 2026-01-01
    retries: 0
    sheets:
      - {workbook: rates.csv, table: raw.rates, load: replace}
  transform:
    schedule: null
    retries: 0
    after:
      - {pipeline: rates, mode: reschedule, poke_seconds: 30, timeout_minutes: 10}
    dbt: {project: dbt_project}
  report:
    schedule: "0 10 * * *"
    start_date: 2026-01-01
    retries: 0
    after:
      - {pipeline: transform, mode: deferrable, poke_seconds: 5, timeout_minutes: 10}
    exports:
      - {name: item_totals, query: "SELECT * FROM marts.item_totals"}
  bad_ingest:
    schedule: "0 9 * * *"
    start_date: 2026-01-01
    retries: 0
    triggers: [bad_transform]
    sheets:
      - workbook: items.csv
        table: raw.bad_items
        checks: [{min_rows: 1000}]
  bad_transform:
    schedule: null
    retries: 0
    summaries:
      - {table: marts.never, select: "SELECT 1 AS one"}
  bad_report:
    schedule: "0 10 * * *"
    start_date: 2026-01-01
    retries: 0
    after:
      - {pipeline: bad_ingest, mode: deferrable, poke_seconds: 5, timeout_minutes: 10}
    exports:
      - {name: never, query: "SELECT 1 AS one"}
  daily:
    schedule: "@daily"
    start_date: 2026-01-01
    retries: 0
    triggers: [daily_export]
    sheets:
      - {workbook: items.csv, table: raw.daily_items, load: append}
    exports:
      - {name: daily_items, query: "SELECT count(*) AS n FROM raw.daily_items"}
  daily_export:
    schedule: null
    retries: 0
    exports:
      - {name: daily_copy, query: "SELECT count(*) AS n FROM raw.daily_items"}
  late:
    schedule: "0 11 * * *"
    start_date: 2026-01-01
    retries: 0
    alerts: {slack_conn_id: slack_late, deadline_minutes: 0.1}
    after:
      - {pipeline: rates, mode: deferrable, poke_seconds: 5, timeout_minutes: 1}
    sheets:
      - {workbook: items.csv, table: raw.late_items, load: replace}
"""
WEBHOOK_TOKEN = "T0000/B0000/LATEHOOK5e1d"

DBT_PROJECT = {
    "dbt_project.yml": """
        name: chain_test
        version: "1.0"
        profile: headwater
        model-paths: [models]
        models:
          chain_test:
            +schema: marts
            +materialized: table
    """,
    "macros/generate_schema_name.sql": """
        {% macro generate_schema_name(custom_schema_name, node) -%}
          {{ custom_schema_name or target.schema }}
        {%- endmacro %}
    """,
    "models/sources.yml": """
        version: 2
        sources:
          - name: raw
            schema: raw
            tables: [{name: items}, {name: rates}]
    """,
    "models/item_totals.sql": """
        select count(*) as items, sum(i.amount * r.rate) as total
        from {{ source('raw', 'items') }} i cross join {{ source('raw', 'rates') }} r
    """,
}


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The config, a dbt project and a running cluster with links and the ``daily`` schedule on."""
    from headwater.airflow.dbt_parse import refresh_manifests
    from headwater.config import load_config

    base = tmp_path_factory.mktemp("chain")
    config = base / "pipelines.yaml"
    config.write_text(PIPELINES, encoding="utf-8")
    (base / "items.csv").write_text("item,amount\napple,3\npear,4\n", encoding="utf-8")
    (base / "rates.csv").write_text("currency,rate\nKRW,1400\n", encoding="utf-8")
    for name, text in DBT_PROJECT.items():
        path = base / "dbt_project" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).strip() + "\n", encoding="utf-8")
    home = base / "hw"
    stack = contextlib.ExitStack()
    host, received = stack.enter_context(webhook_receiver())
    slack = {"conn_type": "slackwebhook", "host": host, "schema": "http", "password": WEBHOOK_TOKEN}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HEADWATER_HOME", str(home))
        refresh_manifests(load_config(config), only_stale=False)
    # PostgreSQL, not SQLite: a backfill POST that hits SQLite's lock rolls back dag runs the scheduler has
    # already loaded, and Airflow 3.3.2's scheduler then exits (ObjectDeletedError), stranding every later run
    database = _create_database()
    stack.callback(_drop_database, database)
    cluster = LocalCluster(
        home=base / "airflow",
        settings={
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{database}",
        },
        dags_folder=REPO / "dags",
        env={
            "HEADWATER_CONFIG": str(config),
            "HEADWATER_HOME": str(home),
            "HEADWATER_LINKS": "on",
            "HEADWATER_SCHEDULES": "daily",  # the others start only when triggered here
            "AIRFLOW_CONN_SLACK_LATE": json.dumps(slack),
        },
        port=free_port(),
    )
    sessions: list[int] = []
    try:
        cluster.start()
        sessions = [p.pid for p in cluster.processes.values()]
        api = AirflowApi(cluster.url, cluster.username, cluster.password)
        api.wait_for_dags(["ingest", "rates", "transform", "report", "daily"], timeout=120)
        yield {"api": api, "cluster": cluster, "base": base, "home": home, "received": received, "database": database}
        api.close()
    finally:
        cluster.stop()
        stack.close()
        left = session_pids(sessions)
        assert left == [], f"processes left behind: {left}"
        listening(cluster.port)


def _create_database() -> str:
    import psycopg

    try:
        admin = psycopg.connect(**PG, connect_timeout=3, autocommit=True)
    except psycopg.Error as exc:
        service_missing("PostgreSQL on 127.0.0.1:5432", str(exc).strip())
    name = f"hw_chain_{uuid.uuid4().hex[:10]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(**PG, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def listening(port: int) -> None:
    """Fail if anything still listens on ``port``."""
    import socket

    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def wait_run(api: AirflowApi, dag_id: str, when: datetime, timeout: float = 300) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = api.run_at(dag_id, when)
        if run is not None and str(run.state.value) in ("success", "failed"):
            return run
        time.sleep(1)
    raise AssertionError(f"{dag_id} at {when} did not finish within {timeout} s (last: {run})")


def states(api: AirflowApi, dag_id: str, run_id: str) -> dict[str, str]:
    return {t.task_id: str(t.state.value) if t.state else "none" for t in api.tasks(dag_id, run_id)}


def reschedules(database: str, dag_id: str, task_id: str, run_id: str) -> int:
    import psycopg

    with psycopg.connect(**{**PG, "dbname": database}) as db:
        row = db.execute(
            "SELECT count(*) FROM task_reschedule r JOIN task_instance t ON t.id = r.ti_id "
            "WHERE t.dag_id = %s AND t.task_id = %s AND t.run_id = %s",
            (dag_id, task_id, run_id),
        ).fetchone()
    return int(row[0]) if row else 0


def run_day(chain: dict[str, Any], day: datetime, *, rates_first: bool) -> dict[str, Any]:
    """Trigger ingest (09:00), rates (00:00) and report (10:00) for ``day``; wait for all four runs."""
    api: AirflowApi = chain["api"]
    if rates_first:
        api.trigger("rates", day)
    api.trigger("ingest", day + AT_9)
    api.trigger("report", day + AT_10)
    seen: set[str] = set()
    if not rates_first:  # let transform's wait find nothing, reschedule at least once, then release it
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            run = api.run_at("transform", day + AT_9)
            if run is not None:
                wait = next((t for t in api.tasks("transform", run.dag_run_id) if t.task_id == "wait_for__rates"), None)
                if wait is not None and wait.state is not None:
                    seen.add(str(wait.state.value))
                    if "up_for_reschedule" in seen:
                        break
            time.sleep(1)
        api.trigger("rates", day)
    runs = {
        name: wait_run(api, name, day + offset)
        for name, offset in (("ingest", AT_9), ("rates", timedelta(0)), ("transform", AT_9), ("report", AT_10))
    }
    return {"runs": runs, "seen": seen}


def test_chain_runs_by_itself_with_trigger_conf_reschedule_wait_assets_and_export(chain: dict[str, Any]) -> None:
    api: AirflowApi = chain["api"]
    result = run_day(chain, D1, rates_first=False)
    runs = result["runs"]
    assert {name: str(run.state.value) for name, run in runs.items()} == dict.fromkeys(runs, "success")

    transform = runs["transform"]  # triggered by ingest, with its logical date and what changed
    assert transform.logical_date == D1 + AT_9
    assert str(transform.run_type.value) == "operator_triggered"
    conf = transform.conf["headwater"]
    assert conf["triggered_by"]["dag_id"] == "ingest"
    assert conf["triggered_by"]["logical_date"] == (D1 + AT_9).isoformat()
    assert conf["tables"]["raw.items"]["changed"] is True and conf["tables"]["raw.items"]["rows"] == 2

    # the reschedule wait: up_for_reschedule between looks (no slot held), several looks, still try 1
    assert "up_for_reschedule" in result["seen"]
    looks = reschedules(chain["database"], "transform", "wait_for__rates", transform.dag_run_id)
    assert looks >= 1
    wait = next(t for t in api.tasks("transform", transform.dag_run_id) if t.task_id == "wait_for__rates")
    assert str(wait.state.value) == "success" and wait.try_number == 1  # Airflow 3.3 keeps the try on reschedule

    transform_states = states(api, "transform", transform.dag_run_id)
    assert transform_states["build_needed"] == "success" and transform_states["inputs_unchanged"] == "skipped"
    assert transform_states["dbt.run__item_totals"] == "success"
    assert transform_states["record_inputs"] == "success"

    # an Asset event per loaded table, saying what the load did
    for dag_id, table in (("ingest", "raw.items"), ("rates", "raw.rates")):
        events = api.asset_events(dag_id, runs[dag_id].dag_run_id)
        assert [e.uri for e in events] == [f"x-headwater://headwater_warehouse/{table}"]
        assert events[0].extra["changed"] is True and events[0].extra["rows"] >= 1

    report_states = states(api, "report", runs["report"].dag_run_id)
    assert report_states["wait_for__transform"] == "success" and report_states["export__item_totals"] == "success"
    manifest = api.xcom("report", runs["report"].dag_run_id, "export__item_totals")
    assert manifest.endswith("_manifest.json") and json.loads(Path(manifest.removeprefix("file://")).read_text())


def test_branch_skips_the_transform_when_no_input_changed_and_runs_it_when_one_did(chain: dict[str, Any]) -> None:
    api: AirflowApi = chain["api"]
    same = run_day(chain, D1 + timedelta(days=1), rates_first=True)["runs"]
    assert all(str(r.state.value) == "success" for r in same.values())
    assert same["transform"].conf["headwater"]["tables"]["raw.items"]["changed"] is False
    unchanged = states(api, "transform", same["transform"].dag_run_id)
    assert unchanged["inputs_unchanged"] == "success" and unchanged["build_needed"] == "skipped"
    assert unchanged["dbt.run__item_totals"] == "skipped" and unchanged["record_inputs"] == "skipped"

    (chain["base"] / "rates.csv").write_text("currency,rate\nKRW,1450\n", encoding="utf-8")  # one input moves
    moved = run_day(chain, D1 + timedelta(days=2), rates_first=True)["runs"]
    assert all(str(r.state.value) == "success" for r in moved.values())
    changed = states(api, "transform", moved["transform"].dag_run_id)
    assert changed["build_needed"] == "success" and changed["dbt.run__item_totals"] == "success"


def test_an_upstream_failure_stops_the_chain_with_a_clear_reason(chain: dict[str, Any]) -> None:
    api: AirflowApi = chain["api"]
    api.trigger("bad_ingest", D1 + AT_9)
    api.trigger("bad_report", D1 + AT_10)
    ingest = wait_run(api, "bad_ingest", D1 + AT_9)
    report = wait_run(api, "bad_report", D1 + AT_10)
    assert str(ingest.state.value) == "failed" and str(report.state.value) == "failed"
    ingest_states = states(api, "bad_ingest", ingest.dag_run_id)
    assert ingest_states["load__raw__bad_items"] == "failed"
    assert ingest_states["trigger__bad_transform"] == "upstream_failed"
    assert api.run_at("bad_transform", D1 + AT_9) is None  # never triggered
    report_states = states(api, "bad_report", report.dag_run_id)
    assert report_states["wait_for__bad_ingest"] == "failed" and report_states["export__never"] == "upstream_failed"
    logs = chain["cluster"].home / "logs" / "dag_id=bad_report"
    text = "\n".join(p.read_text(errors="replace") for p in logs.rglob("*.log"))
    assert (
        "waiting for pipeline 'bad_ingest' (its run at 2026-01-05T09:00:00+00:00): that run failed, "
        "so this run stops here" in text
    )


def test_backfill_runs_each_date_in_turn_and_skips_stale_exports(chain: dict[str, Any]) -> None:
    api: AirflowApi = chain["api"]
    start, end = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 3, tzinfo=UTC)
    api.backfill("daily", start, end, max_active_runs=1)
    days = [start + timedelta(days=i) for i in range(3)]
    runs = [wait_run(api, "daily", day) for day in days]
    assert [str(r.run_type.value) for r in runs] == ["backfill"] * 3
    assert all(str(r.state.value) == "success" for r in runs)
    for before, after in itertools.pairwise(runs):
        assert after.start_date >= before.end_date  # one at a time
    for run, day in zip(runs, days, strict=True):
        run_states = states(api, "daily", run.dag_run_id)
        assert run_states["load__raw__daily_items"] == "success"
        assert run_states["export__daily_items"] == "skipped"  # latest only: a backfill exports nothing
        assert api.xcom("daily", run.dag_run_id, "load__raw__daily_items")["rows"] == 2
        triggered = wait_run(api, "daily_export", day)  # triggered by a backfill run: stale too
        assert str(triggered.run_type.value) == "operator_triggered"
        assert triggered.conf["headwater"]["root_run_type"] == "backfill"
        assert states(api, "daily_export", triggered.dag_run_id)["export__daily_copy"] == "skipped"
    staged = {p.name for p in (chain["home"] / "lake" / "raw" / "daily_items").iterdir()}
    assert {d.strftime("%Y-%m-%d") for d in days} <= staged  # each run staged under its own date

    # the scheduler's own latest run of the same DAG (its schedule is on here) does export, and so does
    # the run it triggers
    [latest] = [r for r in api.runs("daily") if str(r.run_type.value) == "scheduled"]
    latest = wait_run(api, "daily", latest.logical_date)
    assert states(api, "daily", latest.dag_run_id)["export__daily_items"] == "success"
    follower = wait_run(api, "daily_export", latest.logical_date)
    assert states(api, "daily_export", follower.dag_run_id)["export__daily_copy"] == "success"


def test_a_run_past_its_deadline_sends_one_late_alert_while_it_runs(chain: dict[str, Any]) -> None:
    """Airflow 3's Deadline Alert (what SLA misses became): ``late`` waits for a rates run that never comes,
    so it is still running 6 s after it was queued; the scheduler sees the deadline pass and the triggerer
    posts the message."""
    api: AirflowApi = chain["api"]
    when = datetime(2030, 1, 1, 11, tzinfo=UTC)
    api.trigger("late", when)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not chain["received"]:
        time.sleep(1)
    assert [r["path"] for r in chain["received"]] == [f"/{WEBHOOK_TOKEN}"]
    run = api.run_at("late", when)
    assert run is not None and str(run.state.value) in ("queued", "running")  # told before the run ended
    lines = chain["received"][0]["body"]["text"].splitlines()
    assert lines[0].startswith(f":hourglass: headwater: run `{run.dag_run_id}` of `late` has not finished 0.1 minutes")
    assert lines[1].startswith("logical date: 2030-01-01T11:00:00")
    assert WEBHOOK_TOKEN.split("/")[-1] not in json.dumps(chain["received"][0]["body"])
