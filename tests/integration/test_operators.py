"""headwater's operators in a hand-written DAG (examples/dags/handwritten.py) run through Airflow against
PostgreSQL, the Sheets test server, a local lake and DuckDB; templated SQL per logical date; parse-time
argument errors; the OpenLineage events of the run."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from headwater.errors import ConfigError
from headwater.identifiers import TableName
from headwater.warehouse.duckdb import DuckDBWarehouse
from tests.conftest import REPO

pytestmark = pytest.mark.integration

SHEET = "1HandwrittenSummaryKey"
ORDERS = [  # (id, sku, quantity, created_at): two on Jan 5, three on Jan 6, one outside both days
    (1, "00037", 2, "2026-01-05 08:00:00+00"),
    (2, "00074", 1, "2026-01-05 23:59:59+00"),
    (3, "00037", 5, "2026-01-06 00:00:00+00"),
    (4, "00111", 1, "2026-01-06 12:00:00+00"),
    (5, "00111", 3, "2026-01-06 18:30:00+00"),
    (6, "00037", 9, "2026-01-07 00:00:00+00"),
]


@pytest.fixture
def handwritten(
    airflow_db: Path,
    hw_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    pg_conninfo: dict[str, Any],
    pg_schema: str,
    sheets: Any,
    service_account_info: dict[str, Any],
) -> Iterator[Any]:
    import psycopg

    with psycopg.connect(**pg_conninfo, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{pg_schema}"')
        conn.execute(f'CREATE TABLE "{pg_schema}".orders (id int, sku text, quantity int, created_at timestamptz)')
        with conn.cursor() as cur:
            cur.executemany(f'INSERT INTO "{pg_schema}".orders VALUES (%s, %s, %s, %s)', ORDERS)
    pg = {"conn_type": "postgres", "host": pg_conninfo["host"], "port": pg_conninfo["port"]}
    pg |= {"login": pg_conninfo["user"], "schema": pg_conninfo["dbname"]}
    monkeypatch.setenv("AIRFLOW_CONN_APP_DB", json.dumps(pg))
    extra = {"keyfile_dict": service_account_info, "api_base": sheets.url, "retry_first_wait": 0.01}
    monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_SHEETS_DEFAULT", json.dumps({"conn_type": "generic", "extra": extra}))
    monkeypatch.setenv("HEADWATER_EXAMPLE_SCHEMA", pg_schema)
    monkeypatch.setenv("HEADWATER_EXAMPLE_SHEET", SHEET)
    sheets.add_spreadsheet(SHEET, {"Daily": [["stale"]]})
    events = tmp_path / "openlineage.json"
    transport = {"type": "file", "log_file_path": str(events), "append": True}
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", json.dumps(transport))
    fresh_openlineage_client(monkeypatch)
    from airflow import settings
    from airflow.dag_processing.dagbag import DagBag

    folder = str(REPO / "examples" / "dags")
    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", folder)  # dag.test serializes the DAG from its bundle
    monkeypatch.setattr(settings, "DAGS_FOLDER", folder)
    bag = DagBag(dag_folder=str(REPO / "examples" / "dags"))
    assert bag.import_errors == {}
    dag = bag.dags["handwritten_orders"]
    for task in dag.tasks:
        task.retries = 0
    yield dag, events
    fresh_openlineage_client(None)


def fresh_openlineage_client(monkeypatch: pytest.MonkeyPatch | None) -> None:
    """The provider caches its settings and client per process, and Airflow registers its listener only if
    OpenLineage was configured when the plugins first loaded: make this test's transport the one used."""
    from airflow.listeners.listener import get_listener_manager as core_listeners
    from airflow.providers.openlineage import conf
    from airflow.providers.openlineage.plugins.listener import get_openlineage_listener
    from airflow.sdk.listener import get_listener_manager as task_listeners

    for value in vars(conf).values():
        if hasattr(value, "cache_clear"):
            value.cache_clear()
    listener = get_openlineage_listener()
    for manager in (task_listeners(), core_listeners()):
        if monkeypatch is not None and not manager.pm.is_registered(listener):
            manager.add_listener(listener)
            _added.append(manager)
        elif monkeypatch is None and manager in _added:
            manager.pm.unregister(listener)
            _added.remove(manager)
    if monkeypatch is not None:
        monkeypatch.setattr(listener.adapter, "_client", None)


_added: list[Any] = []


@pytest.mark.parametrize("lake", ["local folder", "s3"])
def test_the_handwritten_dag_runs_one_window_per_logical_date(
    handwritten: Any, hw_home: Path, sheets: Any, lake: str, request: pytest.FixtureRequest
) -> None:
    if lake == "s3":
        moto_endpoint = request.getfixturevalue("moto_endpoint")
        _, bucket = request.getfixturevalue("s3")
        monkeypatch = request.getfixturevalue("monkeypatch")
        aws = {"conn_type": "aws", "login": "testing", "password": "testing"}
        aws["extra"] = {"endpoint_url": moto_endpoint, "region_name": "us-east-1"}
        monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", json.dumps(aws))
        monkeypatch.setenv("HEADWATER_LAKE_URL", f"s3://{bucket}/lake")
    dag, _ = handwritten
    # dag.test makes manual runs, whose data interval is the day that ends at the logical date.
    for day in (6, 7, 7):  # Jan 7 twice: a rerun replaces its own batch
        assert dag.test(logical_date=datetime(2026, 1, day, tzinfo=UTC)).state == "success"
    warehouse = DuckDBWarehouse(hw_home / "warehouse.duckdb")
    target = TableName("raw", "daily_orders")
    assert [warehouse.row_count(target, batch=b) for b in ("2026-01-06", "2026-01-07")] == [2, 3]
    with warehouse.query_rows("SELECT id FROM raw.daily_orders ORDER BY id") as (_, rows):
        assert [r[0] for r in rows] == [1, 2, 3, 4, 5]
    if lake == "s3":
        client, bucket = request.getfixturevalue("s3")
        keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
        assert (
            sum(k.startswith("lake/raw/daily_orders/2026-01-07/") and k.endswith("_manifest.json") for k in keys) == 2
        )
    values = sheets.tab_values(SHEET, "Daily")
    assert values[0] == ["sku", "product_name", "orders", "units"]
    assert [row[0] for row in values[1:]] == ["00037", "00074", "00111"]
    assert [(row[2], row[3]) for row in values[1:]] == [(2, 7), (1, 1), (2, 4)]


def test_bad_arguments_fail_when_the_dag_is_parsed_naming_task_and_argument() -> None:
    from headwater.operators import LakeToWarehouseOperator, SheetsToLakeOperator, SqlToLakeOperator

    cases = [
        (
            lambda: SqlToLakeOperator(task_id="x1", conn_id="db", sql="SELECT 1; DROP TABLE t", target="raw.t"),
            "x1",
            "sql",
        ),
        (lambda: SqlToLakeOperator(task_id="x2", conn_id="db", table="no_schema"), "x2", "table"),
        (lambda: SqlToLakeOperator(task_id="x3", conn_id="db", table="a.b", format="xlsx"), "x3", "format"),
        (lambda: SqlToLakeOperator(task_id="x4", conn_id="db", sql="SELECT 1"), "x4", "target"),
        (
            lambda: SqlToLakeOperator(task_id="x5", conn_id="db", table="a.b", incremental={"col": "x"}),
            "x5",
            "incremental",
        ),
        (lambda: LakeToWarehouseOperator(task_id="x6", manifest_uri="u", load="merge"), "x6", "load"),
        (lambda: LakeToWarehouseOperator(task_id="x7", manifest_uri="u", load="upsert"), "x7", "keys"),
        (lambda: SheetsToLakeOperator(task_id="x8", workbook="a.csv", tabs=[{"table": "bad name"}]), "x8", "tabs[0]"),
    ]
    for build, task, argument in cases:
        with pytest.raises(ConfigError, match=rf"^task '{task}': argument '{re.escape(argument)}': "):
            build()
    templated = SqlToLakeOperator(task_id="ok", conn_id="db", sql="SELECT * FROM {{ params.t }}", target="raw.t")
    assert templated.sql == "SELECT * FROM {{ params.t }}"  # checked after rendering instead


def test_openlineage_events_name_every_input_and_output(handwritten: Any, hw_home: Path, pg_schema: str) -> None:
    dag, events = handwritten
    assert dag.test(logical_date=datetime(2026, 1, 6, tzinfo=UTC)).state == "success"
    completed = {}
    for line in events.read_text().splitlines():
        event = json.loads(line)
        if event["eventType"] == "COMPLETE" and "job" in event and "." in event["job"]["name"]:
            completed[event["job"]["name"].split(".", 1)[1]] = event
    lake = (hw_home / "lake").as_posix()
    export = completed["export_orders"]
    assert [(d["namespace"], d["name"]) for d in export["inputs"]] == [
        ("postgres://127.0.0.1:5432", f"test.{pg_schema}.orders")
    ]
    (out,) = export["outputs"]
    assert out["namespace"] == "file" and out["name"] == f"{lake}/raw/daily_orders"
    assert [f["name"] for f in out["facets"]["schema"]["fields"]] == ["id", "sku", "quantity", "created_at"]
    assert out["outputFacets"]["outputStatistics"]["rowCount"] == 2
    load = completed["load_orders"]
    assert [(d["namespace"], d["name"]) for d in load["outputs"]] == [
        (f"duckdb://{hw_home / 'warehouse.duckdb'}", "raw.daily_orders")
    ]
    assert load["inputs"][0]["name"] == out["name"]
    products = completed["read_products"]
    assert products["inputs"][0]["name"] == f"{REPO / 'examples' / 'sample_workbook.xlsx'}/Products"
    summary = completed["write_summary"]
    assert {d["name"] for d in summary["inputs"]} == {"raw.daily_orders", "raw.example_products"}
    assert [(d["namespace"], d["name"]) for d in summary["outputs"]] == [
        ("https://docs.google.com", f"spreadsheets/d/{SHEET}/Daily")
    ]


def test_every_example_in_the_operator_docs_builds_a_dag(
    demo_dbt_manifest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The snippets of docs/operators.md, pasted in order into one DAG file, parse and wire up."""
    from airflow.sdk import DAG

    monkeypatch.chdir(REPO)  # the dbt example names this repo's project folder
    text = (REPO / "docs" / "operators.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 8
    namespace: dict[str, Any] = {}
    with DAG("docs_examples", schedule=None, start_date=datetime(2026, 1, 1)) as dag:
        for block in blocks:
            exec(block, namespace)
    dbt_tasks = {t for t in dag.task_ids if t.startswith("dbt.")}
    assert sorted(set(dag.task_ids) - dbt_tasks) == [
        "advance_orders",
        "check_orders",
        "export_orders",
        "freshness",
        "load_budget",
        "load_orders",
        "publish_summary",
        "read_budget",
        "region_revenue",
    ]
    assert "dbt.run__fct_daily_revenue" in dbt_tasks and "dbt.run__dim_customers" not in dbt_tasks  # +fct only
    assert dag.get_task("dbt.test__sources").upstream_task_ids == {"freshness"}
    assert dag.get_task("load_orders").upstream_task_ids == {"export_orders"}
    assert dag.get_task("advance_orders").upstream_task_ids == {"check_orders"}


def test_keys_given_as_one_string_are_refused_at_parse_time() -> None:
    from headwater.operators import LakeToWarehouseOperator

    with pytest.raises(ConfigError, match=r"^task 'k': argument 'keys': a list of column names, not the string 'id'"):
        LakeToWarehouseOperator(task_id="k", manifest_uri="u", load="upsert", keys="id")  # type: ignore[arg-type]
