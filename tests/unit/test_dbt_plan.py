"""The dbt graph headwater draws from a manifest: node filtering, selection, tasks and their order.

Manifests here are synthetic dicts in the shape dbt writes (``nodes``, ``sources``, ``unit_tests``); no dbt
runs and no service is needed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from headwater.errors import ConfigError
from headwater.transform.manifest import (
    DbtNode,
    DbtProject,
    ManifestNotBuiltError,
    load_project,
    manifest_problem,
    nodes_from_manifest,
    project_checksum,
    source_relations,
)
from headwater.transform.plan import SOURCE_TESTS, NodeTask, plan_tasks, select_nodes

pytestmark = pytest.mark.unit

PKG = "demo"
DEFAULT_MATERIALIZED = {"model": "view", "seed": "seed", "snapshot": "snapshot", "test": "test"}


def entry(
    uid: str,
    *,
    deps: tuple[str, ...] = (),
    materialized: str | None = None,
    tags: tuple[str, ...] | None = (),
    path: str | None = None,
    fqn: list[str] | None = None,
    package: str = PKG,
    enabled: bool = True,
    attached: str | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """One manifest entry as dbt writes it (only the keys headwater reads, plus a few it must ignore)."""
    kind = uid.split(".")[0]
    name = name or uid.split(".")[2]
    config: dict[str, Any] = {"enabled": enabled, "tags": list(tags or ())}
    if kind != "unit_test":
        config["materialized"] = materialized or DEFAULT_MATERIALIZED.get(kind, kind)
    return {
        "unique_id": uid,
        "resource_type": kind,
        "name": name,
        "package_name": package,
        "fqn": fqn or [package, name],
        "original_file_path": path or f"models/{name}.sql",
        "depends_on": {"macros": ["macro.dbt.test_not_null"] if kind == "test" else [], "nodes": list(deps)},
        "config": config,
        "tags": list(tags) if tags is not None else None,
        "attached_node": attached,
    }


SRC_ORDERS, SRC_CUSTOMERS = "source.demo.raw.orders", "source.demo.raw.customers"
CURRENCIES = "seed.demo.currencies"
STG_ORDERS, STG_CUSTOMERS = "model.demo.stg_orders", "model.demo.stg_customers"
INT_ORDERS = "model.demo.int_orders"  # ephemeral
FCT_ORDERS, DIM_CUSTOMERS = "model.demo.fct_orders", "model.demo.dim_customers"
SNAPSHOT = "snapshot.demo.customers_snapshot"
REL_TEST = "test.demo.relationships_dim_customers_last_order_id__id__ref_stg_orders_.c1d2e3f4a5"
SINGULAR = "test.demo.assert_customer_orders"
UNIT = "unit_test.demo.fct_orders.fct_orders_sums_amounts"


def demo_manifest() -> dict[str, Any]:
    """sources -> stg_orders, stg_customers; seed currencies; int_orders (ephemeral) -> fct_orders; ..."""
    nodes = [
        entry(CURRENCIES, path="seeds/currencies.csv", tags=("reference",)),
        entry(
            STG_ORDERS,
            deps=(SRC_ORDERS,),
            path="models/staging/stg_orders.sql",
            fqn=[PKG, "staging", "stg_orders"],
            tags=("staging",),
        ),
        entry(
            STG_CUSTOMERS,
            deps=(SRC_CUSTOMERS,),
            path="models/staging/stg_customers.sql",
            fqn=[PKG, "staging", "stg_customers"],
            tags=("staging", "pii"),
        ),
        entry(
            INT_ORDERS,
            deps=(STG_ORDERS, CURRENCIES),
            materialized="ephemeral",
            path="models/intermediate/int_orders.sql",
            fqn=[PKG, "intermediate", "int_orders"],
        ),
        entry(
            FCT_ORDERS,
            deps=(INT_ORDERS, STG_CUSTOMERS),
            materialized="table",
            path="models/marts/fct_orders.sql",
            fqn=[PKG, "marts", "fct_orders"],
            tags=("daily",),
        ),
        entry(
            DIM_CUSTOMERS,
            deps=(STG_CUSTOMERS,),
            materialized="table",
            path="models/marts/dim_customers.sql",
            fqn=[PKG, "marts", "dim_customers"],
            tags=("daily",),
        ),
        entry(
            SNAPSHOT,
            deps=(STG_CUSTOMERS,),
            path="snapshots/snapshots.yml",
            fqn=[PKG, "snapshots", "customers_snapshot"],
        ),
        # not ours to run: another package's model, a disabled model, an analysis, a package's test
        entry("model.dbt_utils.util_model", package="dbt_utils", path="models/util_model.sql"),
        entry("model.demo.old_model", deps=(STG_ORDERS,), enabled=False),
        entry("analysis.demo.explore", deps=(FCT_ORDERS,), path="analyses/explore.sql"),
        entry(
            "test.dbt_utils.not_null_util_model_id.0a0b0c0d0e",
            deps=("model.dbt_utils.util_model",),
            package="dbt_utils",
        ),
        # tests on sources only
        entry("test.demo.source_not_null_raw_orders_id.1a2b3c4d5e", deps=(SRC_ORDERS,), path="models/_sources.yml"),
        entry("test.demo.source_unique_raw_customers_id.2a2b3c4d5e", deps=(SRC_CUSTOMERS,), path="models/_sources.yml"),
        # generic tests on one node
        entry("test.demo.not_null_stg_orders_id.3a2b3c4d5e", deps=(STG_ORDERS,), attached=STG_ORDERS),
        entry("test.demo.unique_stg_orders_id.4a2b3c4d5e", deps=(STG_ORDERS,), attached=STG_ORDERS),
        entry("test.demo.unique_stg_customers_id.5a2b3c4d5e", deps=(STG_CUSTOMERS,), attached=STG_CUSTOMERS),
        entry("test.demo.not_null_currencies_code.6a2b3c4d5e", deps=(CURRENCIES,), attached=CURRENCIES),
        # a test declared on the ephemeral model: it runs after the built nodes the model reads
        entry("test.demo.not_null_int_orders_id.7a2b3c4d5e", deps=(INT_ORDERS,), attached=INT_ORDERS),
        # relationships declared on dim_customers (earlier in the order) pointing at stg_orders (later)
        entry(REL_TEST, deps=(STG_ORDERS, DIM_CUSTOMERS), attached=DIM_CUSTOMERS, path="models/marts/_marts.yml"),
        # a singular test reading dim_customers and stg_orders: no attached node
        entry(SINGULAR, deps=(DIM_CUSTOMERS, STG_ORDERS), path="tests/assert_customer_orders.sql"),
        entry("test.demo.disabled_test.8a2b3c4d5e", deps=(STG_ORDERS,), attached=STG_ORDERS, enabled=False),
    ]
    unit = entry(
        UNIT,
        deps=(FCT_ORDERS,),
        name="fct_orders_sums_amounts",
        path="models/marts/_marts.yml",
        fqn=[PKG, "marts", "fct_orders", "fct_orders_sums_amounts"],
        tags=None,  # dbt writes null tags on unit tests
    )
    unit["attached_node"] = None
    unit["tested_node_unique_id"] = None
    unit["model"] = "fct_orders"
    return {
        "metadata": {"dbt_version": "1.11.0"},
        "nodes": {n["unique_id"]: n for n in nodes},
        "sources": {
            s: {"unique_id": s, "resource_type": "source", "package_name": PKG} for s in (SRC_ORDERS, SRC_CUSTOMERS)
        },
        "unit_tests": {UNIT: unit},
    }


def project_of(manifest: dict[str, Any]) -> DbtProject:
    return DbtProject(
        path=Path("/nowhere"),
        name=PKG,
        profile=PKG,
        manifest_path=Path("/nowhere/target/manifest.json"),
        nodes=nodes_from_manifest(manifest, PKG, "manifest.json"),
    )


@pytest.fixture
def project() -> DbtProject:
    return project_of(demo_manifest())


def names(project: DbtProject, uids: set[str]) -> set[str]:
    return {project.nodes[u].name for u in uids}


def shape(tasks: list[NodeTask]) -> dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]]:
    return {t.task_id: (t.command, tuple(n.name for n in t.nodes), t.upstream) for t in tasks}


def assert_acyclic(tasks: list[NodeTask]) -> None:
    """Every upstream names a task of the plan, and the graph has an order (Kahn)."""
    ids = [t.task_id for t in tasks]
    assert len(set(ids)) == len(ids)
    waiting = {t.task_id: set(t.upstream) for t in tasks}
    assert set().union(*waiting.values()) <= set(ids)
    while waiting:
        ready = {t for t, ups in waiting.items() if not ups}
        assert ready, f"cycle among {sorted(waiting)}"
        waiting = {t: ups - ready for t, ups in waiting.items() if t not in ready}


# --- nodes_from_manifest ------------------------------------------------------------------------------


def test_nodes_from_manifest_keeps_the_projects_enabled_models_seeds_snapshots_and_tests(project: DbtProject) -> None:
    assert sorted(project.nodes) == sorted(
        [
            CURRENCIES,
            STG_ORDERS,
            STG_CUSTOMERS,
            INT_ORDERS,
            FCT_ORDERS,
            DIM_CUSTOMERS,
            SNAPSHOT,
            "test.demo.source_not_null_raw_orders_id.1a2b3c4d5e",
            "test.demo.source_unique_raw_customers_id.2a2b3c4d5e",
            "test.demo.not_null_stg_orders_id.3a2b3c4d5e",
            "test.demo.unique_stg_orders_id.4a2b3c4d5e",
            "test.demo.unique_stg_customers_id.5a2b3c4d5e",
            "test.demo.not_null_currencies_code.6a2b3c4d5e",
            "test.demo.not_null_int_orders_id.7a2b3c4d5e",
            REL_TEST,
            SINGULAR,
            UNIT,
        ]
    )
    assert project.nodes[FCT_ORDERS] == DbtNode(
        unique_id=FCT_ORDERS,
        resource_type="model",
        name="fct_orders",
        fqn=("demo", "marts", "fct_orders"),
        path="models/marts/fct_orders.sql",
        depends_on=(INT_ORDERS, STG_CUSTOMERS),
        tags=("daily",),
        materialized="table",
        attached_node=None,
    )
    assert project.nodes[REL_TEST].attached_node == DIM_CUSTOMERS
    assert project.nodes[REL_TEST].depends_on == (STG_ORDERS, DIM_CUSTOMERS)
    unit = project.nodes[UNIT]
    assert (unit.resource_type, unit.name, unit.tags, unit.attached_node, unit.depends_on) == (
        "unit_test",
        "fct_orders_sums_amounts",
        (),
        None,
        (FCT_ORDERS,),
    )
    assert [n.name for n in project.executable()] == [
        "currencies",
        "stg_orders",
        "stg_customers",
        "fct_orders",
        "dim_customers",
        "customers_snapshot",
    ]  # the ephemeral int_orders builds nothing
    assert project.nodes[INT_ORDERS].ephemeral and not project.nodes[FCT_ORDERS].ephemeral
    assert len(project.tests()) == 10


def test_nodes_from_manifest_uses_the_tested_node_when_attached_node_is_absent() -> None:
    test = entry("test.demo.not_null_a_id.1", deps=("model.demo.a",))
    del test["attached_node"]
    test["tested_node_unique_id"] = "model.demo.a"
    nodes = nodes_from_manifest({"nodes": {test["unique_id"]: test}}, PKG, "m.json")
    assert nodes["test.demo.not_null_a_id.1"].attached_node == "model.demo.a"


def test_node_selector_and_fallback_fqn() -> None:
    bare = entry("model.demo.a")
    del bare["fqn"]
    node = nodes_from_manifest({"nodes": {"model.demo.a": bare}}, PKG, "m.json")["model.demo.a"]
    assert node.fqn == ("demo", "a")
    assert node.selector == "fqn:demo.a"
    assert node.materialized == "view"


@pytest.mark.parametrize("manifest", [{}, {"nodes": []}, {"nodes": None}])
def test_nodes_from_manifest_refuses_what_is_not_a_manifest(manifest: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"^some/where/manifest\.json: not a dbt manifest \(no 'nodes'\)$"):
        nodes_from_manifest(manifest, PKG, "some/where/manifest.json")


# --- plan_tasks ---------------------------------------------------------------------------------------


def test_plan_tasks_for_everything(project: DbtProject) -> None:
    tasks = plan_tasks(project, select_nodes(project))
    assert shape(tasks) == {
        SOURCE_TESTS: ("test", ("source_not_null_raw_orders_id", "source_unique_raw_customers_id"), ()),
        "run__stg_customers": ("run", ("stg_customers",), (SOURCE_TESTS,)),
        "test__stg_customers": ("test", ("unique_stg_customers_id",), ("run__stg_customers",)),
        "run__dim_customers": ("run", ("dim_customers",), ("test__stg_customers",)),
        # the relationships test stays with the node it is declared on, after both parents are built
        "test__dim_customers": (
            "test",
            ("relationships_dim_customers_last_order_id__id__ref_stg_orders_",),
            ("run__dim_customers", "run__stg_orders"),
        ),
        "run__stg_orders": ("run", ("stg_orders",), (SOURCE_TESTS,)),
        # the singular test runs with the later of its two parents (stg_orders comes after dim_customers)
        "test__stg_orders": (
            "test",
            ("assert_customer_orders", "not_null_stg_orders_id", "unique_stg_orders_id"),
            ("run__dim_customers", "run__stg_orders"),
        ),
        "seed__currencies": ("seed", ("currencies",), (SOURCE_TESTS,)),
        # the ephemeral model's test: after the built nodes it reads (stg_orders, currencies), with the later
        "test__currencies": (
            "test",
            ("not_null_currencies_code", "not_null_int_orders_id"),
            ("run__stg_orders", "seed__currencies"),
        ),
        # int_orders is looked through: fct_orders waits for stg_orders and currencies (and their tests)
        "run__fct_orders": ("run", ("fct_orders",), ("test__currencies", "test__stg_customers", "test__stg_orders")),
        "test__fct_orders": ("test", ("fct_orders_sums_amounts",), ("run__fct_orders",)),
        "snapshot__customers_snapshot": ("snapshot", ("customers_snapshot",), ("test__stg_customers",)),
    }
    assert tasks[0].task_id == SOURCE_TESTS
    assert_acyclic(tasks)
    by_id = {t.task_id: t for t in tasks}
    ids = [t.task_id for t in tasks]
    for node in ("stg_customers", "dim_customers", "stg_orders", "fct_orders"):  # each test task right after its run
        assert f"run__{node}" in by_id[f"test__{node}"].upstream
        assert ids.index(f"test__{node}") > ids.index(f"run__{node}")
    assert "seed__currencies" in by_id["test__currencies"].upstream
    assert by_id["run__fct_orders"].selectors == ["fqn:demo.marts.fct_orders"]
    assert by_id["test__fct_orders"].selectors == ["fqn:demo.marts.fct_orders.fct_orders_sums_amounts"]
    assert by_id[SOURCE_TESTS].selectors == [
        "fqn:demo.source_not_null_raw_orders_id",
        "fqn:demo.source_unique_raw_customers_id",
    ]
    assert all(n.resource_type in ("test", "unit_test") for t in tasks if t.command == "test" for n in t.nodes)


def test_plan_tasks_for_part_of_the_project(project: DbtProject) -> None:
    # fct_orders alone: its parents are not built here, so it starts after the source tests; tests that
    # read only unselected nodes (the singular, int_orders') are not run.
    tasks = plan_tasks(project, select_nodes(project, ["fct_orders"]))
    assert shape(tasks) == {
        SOURCE_TESTS: ("test", ("source_not_null_raw_orders_id", "source_unique_raw_customers_id"), ()),
        "run__fct_orders": ("run", ("fct_orders",), (SOURCE_TESTS,)),
        "test__fct_orders": ("test", ("fct_orders_sums_amounts",), ("run__fct_orders",)),
    }
    # the relationships test follows its attached node even when the other parent is not selected ...
    tasks = plan_tasks(project, select_nodes(project, ["dim_customers"]))
    # (and so does the singular test, which reads dim_customers and an unselected stg_orders)
    assert shape(tasks)["test__dim_customers"] == (
        "test",
        ("assert_customer_orders", "relationships_dim_customers_last_order_id__id__ref_stg_orders_"),
        ("run__dim_customers",),
    )
    # ... and moves to the other parent when its attached node is not selected
    tasks = plan_tasks(project, select_nodes(project, ["stg_orders"]))
    assert shape(tasks)["test__stg_orders"] == (
        "test",
        (
            "assert_customer_orders",
            "not_null_int_orders_id",  # int_orders reads stg_orders and the unselected currencies
            "not_null_stg_orders_id",
            "relationships_dim_customers_last_order_id__id__ref_stg_orders_",
            "unique_stg_orders_id",
        ),
        ("run__stg_orders",),
    )


def test_plan_tasks_without_source_tests_has_no_source_task() -> None:
    manifest = demo_manifest()
    manifest["nodes"] = {k: v for k, v in manifest["nodes"].items() if ".source_" not in k}
    project = project_of(manifest)
    tasks = plan_tasks(project, select_nodes(project))
    assert SOURCE_TESTS not in {t.task_id for t in tasks}
    roots = {t.task_id: t.upstream for t in tasks if not t.upstream}
    assert roots == {"run__stg_customers": (), "run__stg_orders": (), "seed__currencies": ()}
    assert_acyclic(tasks)


def test_plan_tasks_refuses_a_cycle() -> None:
    a = entry("model.demo.a", deps=("model.demo.b",))
    b = entry("model.demo.b", deps=("model.demo.a",))
    project = project_of({"nodes": {"model.demo.a": a, "model.demo.b": b}})
    with pytest.raises(ConfigError, match=r"dbt graph has a cycle through model\.demo\.[ab]"):
        plan_tasks(project, select_nodes(project))


def test_task_ids_replace_characters_airflow_refuses() -> None:
    odd = entry("model.demo.odd", name="odd name+v2")
    project = project_of({"nodes": {"model.demo.odd": odd}})
    assert [t.task_id for t in plan_tasks(project, select_nodes(project))] == ["run__odd_name_v2"]


def test_a_relationships_test_pointing_at_a_descendant_keeps_the_graph_acyclic(project: DbtProject) -> None:
    manifest = demo_manifest()
    backwards = entry(
        "test.demo.relationships_stg_customers_id__customer_id__ref_fct_orders_.9a2b3c4d5e",
        deps=(FCT_ORDERS, STG_CUSTOMERS),
        attached=STG_CUSTOMERS,
    )
    manifest["nodes"][backwards["unique_id"]] = backwards
    project = project_of(manifest)
    assert_acyclic(plan_tasks(project, select_nodes(project)))


def test_a_test_on_an_ephemeral_model_over_sources_is_run() -> None:
    manifest = demo_manifest()
    events = entry("model.demo.stg_events", deps=("source.demo.raw.events",), materialized="ephemeral")
    fct = entry("model.demo.fct_events", deps=("model.demo.stg_events",), materialized="table")
    test = entry(
        "test.demo.not_null_stg_events_id.aa2b3c4d5e", deps=(events["unique_id"],), attached="model.demo.stg_events"
    )
    for item in (events, fct, test):
        manifest["nodes"][item["unique_id"]] = item
    project = project_of(manifest)
    planned = {n.name for t in plan_tasks(project, select_nodes(project)) for n in t.nodes}
    assert "not_null_stg_events_id" in planned


def test_plan_tasks_lists_every_task_after_its_upstream(project: DbtProject) -> None:
    seen: set[str] = set()
    for task in plan_tasks(project, select_nodes(project)):
        assert set(task.upstream) <= seen, (task.task_id, task.upstream)
        seen.add(task.task_id)


# --- select_nodes -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("select", "exclude", "expected"),
    [
        ((), (), {"currencies", "stg_orders", "stg_customers", "fct_orders", "dim_customers", "customers_snapshot"}),
        (["stg_orders", "dim_customers"], (), {"stg_orders", "dim_customers"}),
        (["fqn:demo.marts"], (), {"fct_orders", "dim_customers"}),
        (["staging"], (), {"stg_orders", "stg_customers"}),  # a folder of the fqn
        (["demo.marts.fct_orders"], (), {"fct_orders"}),
        (["tag:daily"], (), {"fct_orders", "dim_customers"}),
        (["tag:pii"], (), {"stg_customers"}),
        (["path:models/staging"], (), {"stg_orders", "stg_customers"}),
        (["path:models/staging/"], (), {"stg_orders", "stg_customers"}),
        (["path:models/marts/fct_orders.sql"], (), {"fct_orders"}),
        (["path:snapshots"], (), {"customers_snapshot"}),
        (["resource_type:seed"], (), {"currencies"}),
        (["resource_type:snapshot", "resource_type:seed"], (), {"customers_snapshot", "currencies"}),
        (["+fct_orders"], (), {"fct_orders", "stg_orders", "stg_customers", "currencies"}),  # through int_orders
        (["stg_customers+"], (), {"stg_customers", "fct_orders", "dim_customers", "customers_snapshot"}),
        (["currencies+"], (), {"currencies", "fct_orders"}),
        (["+dim_customers+"], (), {"dim_customers", "stg_customers"}),
        ([" tag:pii+ "], (), {"stg_customers", "fct_orders", "dim_customers", "customers_snapshot"}),
        (["stg_customers+"], ["resource_type:snapshot"], {"stg_customers", "fct_orders", "dim_customers"}),
        ((), ["tag:daily"], {"currencies", "stg_orders", "stg_customers", "customers_snapshot"}),
        ((), ["stg_customers+"], {"currencies", "stg_orders"}),
        (["tag:staging"], ["stg_orders", "tag:pii"], set()),
    ],
)
def test_select_nodes(project: DbtProject, select: list[str], exclude: list[str], expected: set[str]) -> None:
    assert names(project, select_nodes(project, select, exclude)) == expected


@pytest.mark.parametrize(
    ("select", "exclude", "message"),
    [
        (
            ["config.materialized:table"],
            (),
            r"dbt select 'config.materialized:table': unknown method 'config.materialized'",
        ),
        (["source:raw+"], (), r"dbt select 'source:raw\+': unknown method 'source' \(headwater reads tag, path, "),
        ((), ["state:modified"], r"dbt exclude 'state:modified': unknown method 'state'"),
        (["tag:nope"], (), r"^dbt select 'tag:nope' matches no model, seed or snapshot of the project$"),
        (["path:models/stag"], (), r"^dbt select 'path:models/stag' matches no model, seed or snapshot"),
        (["resource_type:test"], (), r"^dbt select 'resource_type:test' matches no model"),
        (["stg_orders"], ["no_such_model"], r"^dbt exclude 'no_such_model' matches no model"),
        (["old_model"], (), r"^dbt select 'old_model' matches no model"),  # disabled
        (["util_model"], (), r"^dbt select 'util_model' matches no model"),  # another package's
    ],
)
def test_select_nodes_refuses(project: DbtProject, select: list[str], exclude: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        select_nodes(project, select, exclude)


def test_selecting_the_descendants_of_an_ephemeral_model(project: DbtProject) -> None:
    assert names(project, select_nodes(project, ["int_orders+"])) == {"fct_orders"}


# --- load_project / manifest_problem ------------------------------------------------------------------


def write_project(root: Path, *, target: str = "target", manifest: dict[str, Any] | None = None) -> Path:
    project = root / "proj"
    (project / "models" / "staging").mkdir(parents=True)
    extra = f"target-path: {target}\n" if target != "target" else ""
    (project / "dbt_project.yml").write_text(f"name: demo\nprofile: hw_profile\nconfig-version: 2\n{extra}")
    (project / "models" / "staging" / "stg_orders.sql").write_text("select 1 as id\n")
    if manifest is not None:
        (project / target).mkdir()
        (project / target / "manifest.json").write_text(json.dumps(manifest))
    return project


def set_mtime(path: Path, when: float) -> None:
    os.utime(path, (when, when))


def age(project: Path, *, sources: float, manifest: float, target: str = "target") -> None:
    for path in project.rglob("*"):
        if path.is_file():
            set_mtime(path, sources)
    set_mtime(project / target / "manifest.json", manifest)


def test_load_project_reads_a_current_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    project_dir = write_project(tmp_path, manifest=demo_manifest())
    age(project_dir, sources=1_700_000_000, manifest=1_700_000_100)
    # what dbt writes under target/ and installs into dbt_packages/ is not the project's source
    for folder in ("target/compiled/demo/models", "dbt_packages/dbt_utils/models", "logs"):
        (project_dir / folder).mkdir(parents=True, exist_ok=True)
        (project_dir / folder / "late.sql").write_text("select 2\n")
    assert manifest_problem(project_dir) is None
    project = load_project(project_dir)
    assert (project.path, project.name, project.profile) == (project_dir.resolve(), "demo", "hw_profile")
    assert project.manifest_path == project_dir.resolve() / "target" / "manifest.json"
    assert project.nodes == nodes_from_manifest(demo_manifest(), "demo", "x")
    assert project.sources == source_relations(demo_manifest())
    assert project.checksum == project_checksum(demo_manifest(), "demo") and len(project.checksum) == 64


def test_load_project_follows_the_target_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    project_dir = write_project(tmp_path, target="build", manifest=demo_manifest())
    age(project_dir, sources=1_700_000_000, manifest=1_700_000_100, target="build")
    assert load_project(project_dir).manifest_path == project_dir.resolve() / "build" / "manifest.json"
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv("DBT_TARGET_PATH", str(elsewhere))
    with pytest.raises(ConfigError, match=f"{elsewhere / 'manifest.json'} does not exist"):
        load_project(project_dir)


def assert_rebuild_message(message: str, project_dir: Path, problem: str) -> None:
    """The project, the manifest's problem (its path first), and the command that rebuilds it."""
    assert message.startswith(f"dbt project {project_dir}: {problem}; "), message
    assert "`headwater dbt-parse" in message, message
    assert message.endswith("before Airflow reads the DAG"), message


def test_load_project_refuses_a_missing_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    project_dir = write_project(tmp_path).resolve()
    manifest = project_dir / "target" / "manifest.json"
    assert manifest_problem(project_dir) == f"{manifest} does not exist"
    with pytest.raises(ManifestNotBuiltError) as caught:
        load_project(project_dir)
    assert isinstance(caught.value, ConfigError)
    assert_rebuild_message(str(caught.value), project_dir, f"{manifest} does not exist")


@pytest.mark.parametrize("changed", ["models/staging/stg_orders.sql", "dbt_project.yml", "models/staging/_new.yml"])
def test_load_project_refuses_a_stale_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, changed: str) -> None:
    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    project_dir = write_project(tmp_path, manifest=demo_manifest()).resolve()
    (project_dir / "models" / "staging" / "_new.yml").write_text("models: []\n")
    age(project_dir, sources=1_700_000_000, manifest=1_700_000_100)
    assert load_project(project_dir).nodes  # current
    set_mtime(project_dir / changed, 1_700_000_101)
    manifest = project_dir / "target" / "manifest.json"
    assert manifest_problem(project_dir) == f"{manifest} is older than {project_dir / changed}"
    with pytest.raises(ManifestNotBuiltError) as caught:
        load_project(project_dir)
    assert_rebuild_message(str(caught.value), project_dir, f"{manifest} is older than {project_dir / changed}")


def test_load_project_refuses_what_is_not_a_project_or_a_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DBT_TARGET_PATH", raising=False)
    with pytest.raises(ConfigError, match=r"dbt project folder .*nowhere does not exist"):
        load_project(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"empty/dbt_project\.yml: no dbt_project\.yml"):
        load_project(tmp_path / "empty")
    project_dir = write_project(tmp_path, manifest={}).resolve()
    (project_dir / "target" / "manifest.json").write_text("{not json")
    age(project_dir, sources=1_700_000_000, manifest=1_700_000_100)
    with pytest.raises(ConfigError, match=r"target/manifest\.json: not a readable dbt manifest \(JSONDecodeError\)$"):
        load_project(project_dir)
    (project_dir / "target" / "manifest.json").write_text("{}")
    set_mtime(project_dir / "target" / "manifest.json", 1_700_000_100)
    with pytest.raises(ConfigError, match=r"target/manifest\.json: not a dbt manifest \(no 'nodes'\)$"):
        load_project(project_dir)


# --- what a transform reads and what defines it (the inputs-changed branch) ------------------------------


def test_source_relations_are_the_schema_and_identifier_of_every_source() -> None:
    manifest = {
        "sources": {
            "source.demo.raw.orders": {"schema": "RAW", "identifier": "Orders", "name": "orders"},
            "source.demo.raw.customers": {"schema": "raw", "name": "customers"},  # no identifier: the name
            "source.pkg.ext.events": {"schema": "ext", "identifier": "events"},  # a package's source is read too
            "source.demo.raw.dup": {"schema": "raw", "identifier": "orders"},
            "source.demo.bad.noschema": {"identifier": "x"},
            "source.demo.bad.notable": {"schema": "raw", "identifier": "", "name": ""},
            "broken": "not an entry",
        }
    }
    assert source_relations(manifest) == ["ext.events", "raw.customers", "raw.orders"]
    assert source_relations({}) == [] and source_relations({"sources": None}) == []


def _checksum_manifest() -> dict[str, Any]:
    return {
        "nodes": {
            "model.demo.a": {"checksum": {"name": "sha256", "checksum": "c1"}, "config": {"materialized": "view"}},
            "seed.demo.s": {"checksum": "plain-string", "config": {}},
            "junk": "not an entry",
        },
        "sources": {"source.demo.raw.t": {"config": {"enabled": True}}},
        "unit_tests": {"unit_test.demo.a.u": {"checksum": {"checksum": "u1"}}},
        "macros": {
            "macro.demo.m": {"package_name": "demo", "macro_sql": "{% macro m() %}1{% endmacro %}"},
            "macro.dbt.other": {"package_name": "dbt", "macro_sql": "{% macro o() %}1{% endmacro %}"},
            "junk": "not an entry",
        },
    }


def test_project_checksum_is_pinned_and_moves_with_every_part_of_the_definition() -> None:
    import copy

    base = _checksum_manifest()
    digest = project_checksum(base, "demo")
    # recorded in the lake after every build: changing the formula rebuilds every project once
    assert digest == "b9f0ba8ac1470544f8988d594a24610833d95573068e41ef1d94f87027b10ddc"
    changes = [
        lambda m: m["nodes"]["model.demo.a"]["checksum"].update(checksum="c2"),
        lambda m: m["nodes"]["model.demo.a"]["config"].update(materialized="table"),
        lambda m: m["nodes"]["seed.demo.s"].update(checksum="other-string"),
        lambda m: m["sources"]["source.demo.raw.t"]["config"].update(enabled=False),
        lambda m: m["unit_tests"]["unit_test.demo.a.u"]["checksum"].update(checksum="u2"),
        lambda m: m["macros"]["macro.demo.m"].update(macro_sql="{% macro m() %}2{% endmacro %}"),
        lambda m: m["nodes"].update({"model.demo.b": {"checksum": {"checksum": "c3"}}}),
    ]
    for change in changes:
        edited = copy.deepcopy(base)
        change(edited)
        assert project_checksum(edited, "demo") != digest
    other_package = copy.deepcopy(base)
    other_package["macros"]["macro.dbt.other"]["macro_sql"] = "changed"  # dbt's own macros: not the project
    assert project_checksum(other_package, "demo") == digest
    reordered = copy.deepcopy(base)
    reordered["nodes"] = dict(reversed(list(reordered["nodes"].items())))
    assert project_checksum(reordered, "demo") == digest
