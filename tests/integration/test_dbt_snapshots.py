"""dbt through ``run_dbt`` against real warehouses: SCD2 snapshots row by row, and the errors it raises.

Each test writes a tiny dbt project into ``tmp_path``. The snapshot test rewrites the source table
directly (duckdb / psycopg) between three ``dbt snapshot`` runs and checks every version of every key:
its column values, ``dbt_valid_from`` and ``dbt_valid_to``. Times dbt takes from the warehouse clock are
checked against that same clock read just before and just after the run.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from headwater.transform.profile import profile_for
from headwater.transform.runner import DbtError, run_dbt
from headwater.warehouse.base import Warehouse
from headwater.warehouse.duckdb import DuckDBWarehouse
from headwater.warehouse.postgres import PostgresWarehouse

pytestmark = pytest.mark.integration

PROJECT = "hw_snap"
SNAPSHOT_COLUMNS = [
    "id",
    "name",
    "tier",
    "updated_at",
    "dbt_scd_id",
    "dbt_updated_at",
    "dbt_valid_from",
    "dbt_valid_to",
]  # what dbt 1.11 writes with hard_deletes: invalidate (dbt_is_deleted comes only with new_record)

# Custom schemas are used as given, like the demo project's macro (dbt's default would prefix the target).
GENERATE_SCHEMA_NAME = """\
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
"""


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass
class Backend:
    """One warehouse: the profile dbt uses, where things live, and a direct connection for the test."""

    name: str
    warehouse: Warehouse
    target_schema: str  # the profile's schema
    source_schema: str  # where the test creates raw.customers
    snapshot_schema: str  # the snapshots' `schema:` config, used as given by GENERATE_SCHEMA_NAME
    execute: Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]

    def sql(self, statement: str, *params: Any) -> list[tuple[Any, ...]]:
        return self.execute(statement, params)

    def now(self) -> datetime:
        """The warehouse clock as dbt's snapshot_get_time stores it (timestamp without time zone)."""
        return self.sql("SELECT CAST(now() AS TIMESTAMP)")[0][0]


@pytest.fixture(params=["duckdb", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    if request.param == "duckdb":
        import duckdb

        path = tmp_path / "warehouse.duckdb"

        def run_duckdb(statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
            with duckdb.connect(str(path)) as conn:
                cur = conn.execute(statement, list(params))
                return cur.fetchall() if cur.description else []

        yield Backend("duckdb", DuckDBWarehouse(path), "analytics", "raw", "snapshots", run_duckdb)
        return
    import psycopg

    conninfo = request.getfixturevalue("pg_conninfo")
    schema = request.getfixturevalue("pg_schema")

    def run_postgres(statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        with psycopg.connect(**conninfo, autocommit=True) as conn:
            cur = conn.execute(statement.replace("?", "%s"), list(params) if params else None)
            return cur.fetchall() if cur.description else []

    # One schema for the source, the target and the snapshots, so the pg_schema fixture drops it all.
    yield Backend("postgres", PostgresWarehouse(conninfo), schema, schema, schema, run_postgres)


def write_snapshot_project(root: Path, source_schema: str, snapshot_schema: str) -> Path:
    project = root / "project"
    for folder in ("models", "snapshots", "macros"):
        (project / folder).mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        yaml.safe_dump({"name": PROJECT, "version": "1.0.0", "config-version": 2, "profile": PROJECT})
    )
    (project / "macros" / "generate_schema_name.sql").write_text(GENERATE_SCHEMA_NAME)
    sources = {"sources": [{"name": "raw", "schema": source_schema, "tables": [{"name": "customers"}]}]}
    (project / "models" / "_sources.yml").write_text(yaml.safe_dump(sources, sort_keys=False))
    # ephemeral: `dbt snapshot` alone reads the source through it, with no `dbt run` between the rewrites
    (project / "models" / "stg_customers.sql").write_text(
        "{{ config(materialized='ephemeral') }}\n"
        "select id, name, tier, updated_at from {{ source('raw', 'customers') }}\n"
    )
    common = {"schema": snapshot_schema, "unique_key": "id", "hard_deletes": "invalidate"}
    snapshots = {
        "snapshots": [
            {
                "name": "customers_ts",
                "relation": "ref('stg_customers')",
                "config": {**common, "strategy": "timestamp", "updated_at": "updated_at"},
            },
            {
                "name": "customers_check",
                "relation": "ref('stg_customers')",
                "config": {**common, "strategy": "check", "check_cols": ["name", "tier"]},
            },
        ]
    }
    (project / "snapshots" / "snapshots.yml").write_text(yaml.safe_dump(snapshots, sort_keys=False))
    return project


def snapshot_rows(backend: Backend, table: str) -> dict[int, list[tuple[Any, ...]]]:
    """Each key's versions, oldest first: (name, tier, updated_at, dbt_updated_at, valid_from, valid_to)."""
    rows = backend.sql(
        "SELECT id, name, tier, updated_at, dbt_updated_at, dbt_valid_from, dbt_valid_to "
        f'FROM "{backend.snapshot_schema}"."{table}" ORDER BY id, dbt_valid_from'
    )
    found: dict[int, list[tuple[Any, ...]]] = {}
    for key, *rest in rows:
        found.setdefault(key, []).append(tuple(rest))
    return found


def check_scd_ids(backend: Backend, table: str) -> None:
    ids = [r[0] for r in backend.sql(f'SELECT dbt_scd_id FROM "{backend.snapshot_schema}"."{table}"')]
    assert len(set(ids)) == len(ids)
    assert all(isinstance(i, str) and len(i) == 32 and int(i, 16) >= 0 for i in ids), ids


@dataclass(frozen=True)
class Window:
    """The warehouse clock just before and just after one dbt run."""

    start: datetime
    end: datetime

    def time_of(self, values: set[datetime]) -> datetime:
        """The one snapshot time ``values`` share, checked to fall within this run."""
        assert len(values) == 1, values
        (value,) = values
        assert self.start <= value <= self.end, (self, value)
        return value

    def holds(self, value: Any) -> bool:
        return isinstance(value, datetime) and self.start <= value <= self.end


def snapshot_run(backend: Backend, project: Path, profile: Any) -> Window:
    start = backend.now()
    result = run_dbt(project, "snapshot", profile)
    end = backend.now()
    assert sorted((r.name, r.status) for r in result.results) == [
        ("customers_check", "success"),
        ("customers_ts", "success"),
    ]
    return Window(start, end)


# updated_at values the source carries (the timestamp strategy versions by them)
A1, B1, C1 = ts("2026-01-01 09:00:00"), ts("2026-01-01 09:30:00"), ts("2026-01-01 10:00:00.250000")
A2, B2, D2 = ts("2026-01-02 08:00:00"), ts("2026-01-02 08:30:00"), ts("2026-01-02 09:00:00")
D3 = ts("2026-01-03 07:00:00")


def test_snapshots_version_updates_inserts_and_hard_deletes(backend: Backend, tmp_path: Path) -> None:
    project = write_snapshot_project(tmp_path, backend.source_schema, backend.snapshot_schema)
    profile = profile_for(backend.warehouse, PROJECT, backend.target_schema, threads=2)
    src = f'"{backend.source_schema}"."customers"'
    backend.sql(f'CREATE SCHEMA IF NOT EXISTS "{backend.source_schema}"')
    backend.sql(f"CREATE TABLE {src} (id integer, name varchar(40), tier varchar(20), updated_at timestamp)")
    # Parse once into the project's target folder: run_dbt reuses its partial-parse cache (0.6 s a run, not 3 s).
    run_dbt(project, "parse", profile, write_manifest_to=project / "target" / "manifest.json")
    assert (project / "target" / "partial_parse.msgpack").is_file()

    # run 1: three rows
    for row in [(1, "Ada", "gold", A1), (2, "Bo", "silver", B1), (3, "Cy", "bronze", C1)]:
        backend.sql(f"INSERT INTO {src} VALUES (?, ?, ?, ?)", *row)
    run1 = snapshot_run(backend, project, profile)

    # Where dbt put the snapshots: the schema as configured (dbt's own macro would have made it
    # "<target>_<schema>"); the DuckDB file is ours alone, PostgreSQL's database is shared with other tests.
    tables = backend.sql(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema LIKE ? AND table_name LIKE ? ORDER BY table_schema, table_name",
        "%" if backend.name == "duckdb" else f"{backend.target_schema}%",
        "customers%",
    )
    assert tables == sorted(
        [
            (backend.source_schema, "customers"),
            (backend.snapshot_schema, "customers_check"),
            (backend.snapshot_schema, "customers_ts"),
        ]
    )
    for table in ("customers_ts", "customers_check"):
        columns = backend.sql(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
            "ORDER BY ordinal_position",
            backend.snapshot_schema,
            table,
        )
        assert [c[0] for c in columns] == SNAPSHOT_COLUMNS

    assert snapshot_rows(backend, "customers_ts") == {
        1: [("Ada", "gold", A1, A1, A1, None)],
        2: [("Bo", "silver", B1, B1, B1, None)],
        3: [("Cy", "bronze", C1, C1, C1, None)],
    }
    check = snapshot_rows(backend, "customers_check")
    t1 = run1.time_of({v[0][4] for v in check.values()})
    assert check == {
        1: [("Ada", "gold", A1, t1, t1, None)],
        2: [("Bo", "silver", B1, t1, t1, None)],
        3: [("Cy", "bronze", C1, t1, t1, None)],
    }

    # run 2: 1 changes tier with a new updated_at; 2 gets a new updated_at only; 3 changes name but keeps
    # its updated_at (the timestamp strategy cannot see that); 4 is new.
    backend.sql(f"UPDATE {src} SET tier = 'platinum', updated_at = ? WHERE id = 1", A2)
    backend.sql(f"UPDATE {src} SET updated_at = ? WHERE id = 2", B2)
    backend.sql(f"UPDATE {src} SET name = 'Cyrus' WHERE id = 3")
    backend.sql(f"INSERT INTO {src} VALUES (4, 'Di', 'gold', ?)", D2)
    run2 = snapshot_run(backend, project, profile)

    assert snapshot_rows(backend, "customers_ts") == {
        1: [("Ada", "gold", A1, A1, A1, A2), ("Ada", "platinum", A2, A2, A2, None)],
        2: [("Bo", "silver", B1, B1, B1, B2), ("Bo", "silver", B2, B2, B2, None)],
        3: [("Cy", "bronze", C1, C1, C1, None)],
        4: [("Di", "gold", D2, D2, D2, None)],
    }
    check = snapshot_rows(backend, "customers_check")
    t2 = run2.time_of({check[1][-1][4], check[3][-1][4], check[4][-1][4]})
    assert check == {
        1: [("Ada", "gold", A1, t1, t1, t2), ("Ada", "platinum", A2, t2, t2, None)],
        2: [("Bo", "silver", B1, t1, t1, None)],  # updated_at is not a check column
        3: [("Cy", "bronze", C1, t1, t1, t2), ("Cyrus", "bronze", C1, t2, t2, None)],
        4: [("Di", "gold", D2, t2, t2, None)],
    }

    # run 3: 2 is deleted from the source, 4 renamed with a new updated_at; 1 and 3 unchanged.
    backend.sql(f"DELETE FROM {src} WHERE id = 2")
    backend.sql(f"UPDATE {src} SET name = 'Dee', updated_at = ? WHERE id = 4", D3)
    run3 = snapshot_run(backend, project, profile)

    stamp = snapshot_rows(backend, "customers_ts")
    deleted_ts = stamp[2][-1][5]
    assert run3.holds(deleted_ts), (run3, deleted_ts)
    assert stamp == {
        1: [("Ada", "gold", A1, A1, A1, A2), ("Ada", "platinum", A2, A2, A2, None)],
        2: [("Bo", "silver", B1, B1, B1, B2), ("Bo", "silver", B2, B2, B2, deleted_ts)],
        3: [("Cy", "bronze", C1, C1, C1, None)],
        4: [("Di", "gold", D2, D2, D2, D3), ("Dee", "gold", D3, D3, D3, None)],
    }
    check = snapshot_rows(backend, "customers_check")
    t3 = run3.time_of({check[4][-1][4]})
    deleted_check = check[2][-1][5]
    assert run3.holds(deleted_check), (run3, deleted_check)
    assert check == {
        1: [("Ada", "gold", A1, t1, t1, t2), ("Ada", "platinum", A2, t2, t2, None)],
        2: [("Bo", "silver", B1, t1, t1, deleted_check)],
        3: [("Cy", "bronze", C1, t1, t1, t2), ("Cyrus", "bronze", C1, t2, t2, None)],
        4: [("Di", "gold", D2, t2, t2, t3), ("Dee", "gold", D3, t3, t3, None)],
    }
    assert t1 < t2 < t3
    for table in ("customers_ts", "customers_check"):
        check_scd_ids(backend, table)


def write_project(root: Path, files: dict[str, str]) -> Path:
    project = root / "project"
    project.mkdir()
    (project / "dbt_project.yml").write_text(
        yaml.safe_dump({"name": "hw_errors", "version": "1.0.0", "config-version": 2, "profile": "hw_errors"})
    )
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(textwrap.dedent(text))
    return project


ORDERS = "select * from (values (1, 10), (2, null), (3, null), (4, 5)) as t(id, amount)\n"


def test_a_failing_data_test_names_the_test_its_file_and_the_failing_rows(tmp_path: Path) -> None:
    project = write_project(
        tmp_path,
        {
            "models/orders.sql": ORDERS,
            "models/_models.yml": """\
                models:
                  - name: orders
                    columns:
                      - name: id
                        data_tests: [unique]
                      - name: amount
                        data_tests: [not_null]
            """,
            "tests/assert_small_amounts.sql": "select * from {{ ref('orders') }} where coalesce(amount, 0) < 6\n",
        },
    )
    profile = profile_for(DuckDBWarehouse(tmp_path / "w.duckdb"), "hw_errors", "main", threads=1)
    with pytest.raises(DbtError) as caught:
        run_dbt(project, "build", profile)
    message = str(caught.value)
    assert message.startswith("dbt build: 2 failed: "), message
    assert "test not_null_orders_amount (models/_models.yml) failed: 2 failing row(s)" in message
    assert "test assert_small_amounts (tests/assert_small_amounts.sql) failed: 3 failing row(s)" in message
    assert "unique_orders_id" not in message  # it passed
    assert caught.value.transient is False


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            "select 1 as a\nunion all\nselect {{ ref('orders' }}\n",
            [
                "dbt run failed: Compilation Error in model bad (models/bad.sql) ",
                "unexpected '}', expected ')'",
                "line 3",
            ],
            id="jinja",
        ),
        pytest.param(
            "select 1 as a\nfrom {{ ref('orders') }}\nwhere wher id = 1\n",
            [
                "dbt run: 1 failed: model bad (models/bad.sql) error: Runtime Error in model bad (models/bad.sql) ",
                'syntax error at or near "id"',
            ],
            id="sql",
        ),
    ],
)
def test_a_model_that_does_not_compile_names_its_file(tmp_path: Path, body: str, expected: list[str]) -> None:
    project = write_project(tmp_path, {"models/orders.sql": ORDERS, "models/bad.sql": body})
    profile = profile_for(DuckDBWarehouse(tmp_path / "w.duckdb"), "hw_errors", "main", threads=1)
    with pytest.raises(DbtError) as caught:
        run_dbt(project, "run", profile)
    message = str(caught.value)
    for part in expected:
        assert part in message, (part, message)
    assert message.startswith(expected[0])
    assert caught.value.transient is False


def test_the_profile_text_holds_no_password_and_the_env_does() -> None:
    info = {"host": "db.internal", "port": 6543, "dbname": "wh", "user": "loader", "password": "s3cret"}
    profile = profile_for(PostgresWarehouse(info), "hw", "analytics")
    assert "s3cret" not in profile.text
    assert profile.env["HEADWATER_DBT_PASSWORD"] == "s3cret"
    output = yaml.safe_load(profile.text)["hw"]["outputs"]["headwater"]
    assert output["password"] == "{{ env_var('HEADWATER_DBT_PASSWORD') }}"
    assert output["type"] == "postgres"
    assert {k: profile.env[f"HEADWATER_DBT_{k}"] for k in ("HOST", "PORT", "USER", "DBNAME", "SCHEMA")} == {
        "HOST": "db.internal",
        "PORT": "6543",
        "USER": "loader",
        "DBNAME": "wh",
        "SCHEMA": "analytics",
    }
    assert all("s3cret" not in v for k, v in profile.env.items() if k != "HEADWATER_DBT_PASSWORD")
