"""A 200-model dbt project in Airflow: headwater's ``dbt_task_group`` against astronomer-cosmos' ``DbtDag``.

A deterministic project is generated in a temp folder (20 seeds -> 20 staging views -> 100 intermediate
views -> 80 mart tables, generic tests on every model) on a DuckDB file there; its manifest is built
with headwater's own ``run_dbt(..., "parse")``. Then:

- DAG parse time: each DAG file is parsed by ``DagBag`` in a fresh interpreter (Airflow imported first,
  outside the clock; the library's import timed apart from the DAG file's own work); best of N.
- build wall time: ``dbt build`` on the command line (threads=2) against ``dag.test()`` of each DAG in a
  fresh interpreter (one process, tasks one after another) on a fresh DuckDB file each run; best of N.

Run: ``python bench/dbt_build.py [--parse-rounds 3] [--cli-rounds 2] [--build-rounds 1] [--no-watcher] [--quick]``
(about half an hour on 2 cores: each Airflow build runs some 420 dbt invocations one after another).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _report import table, write_section

SEED = 20261126
PROJECT = "bench_dbt"
PROFILE = "bench"
SCHEMA = "analytics"
FULL = (20, 100, 80)  # seeds (one staging view each), intermediate views, mart tables: 200 models
QUICK = (3, 6, 4)  # --quick: a smoke run of the whole script
ROWS = 200  # rows per seed
CATEGORIES = ("new", "active", "paused", "churned")
REGIONS = ("north", "south", "east", "west", "central")
DBT = Path(sys.executable).parent / "dbt"
TIMEOUT = 1800
# what cosmos' DAG file needs (cosmos' own package __init__ is lazy): imported apart from the render
COSMOS = "cosmos.airflow.dag,cosmos.config,cosmos.constants,cosmos.operators."

# ----------------------------------------------------------------------------------------------------
# The project


def generate_project(root: Path, shape: tuple[int, int, int]) -> tuple[Path, dict[str, int]]:
    """Write the dbt project under ``root``; return its folder and counts of what is in it."""
    n_seeds, n_intermediate, n_marts = shape
    rng = random.Random(SEED)
    project = root / "project"
    for sub in ("seeds", "models/staging", "models/intermediate", "models/marts"):
        (project / sub).mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        textwrap.dedent(f"""\
            name: {PROJECT}
            version: "1.0.0"
            config-version: 2
            profile: {PROFILE}
            model-paths: ["models"]
            seed-paths: ["seeds"]
            models:
              {PROJECT}:
                staging:
                  +materialized: view
                  +schema: staging
                intermediate:
                  +materialized: view
                  +schema: intermediate
                marts:
                  +materialized: table
                  +schema: marts
            seeds:
              {PROJECT}:
                +schema: raw
            """)
    )
    tests = 0

    # seeds -> staging views (unique, not_null, accepted_values)
    seed_yml = ["version: 2", "seeds:"]
    stg_yml = ["version: 2", "models:"]
    for k in range(n_seeds):
        lines = ["id,category,region,amount,updated_at"]
        for i in range(1, ROWS + 1):
            day = rng.randrange(1, 29)
            amount = f"{rng.uniform(1, 1000):.2f}"
            lines.append(f"{i},{rng.choice(CATEGORIES)},{rng.choice(REGIONS)},{amount},2026-{1 + k % 12:02d}-{day:02d}")
        (project / "seeds" / f"raw_{k:02d}.csv").write_text("\n".join(lines) + "\n")
        seed_yml += [
            f"  - name: raw_{k:02d}",
            "    config:",
            "      column_types: {id: integer, amount: 'decimal(12,2)', updated_at: date}",
        ]
        (project / "models" / "staging" / f"stg_{k:02d}.sql").write_text(
            textwrap.dedent(f"""\
                select
                    id,
                    lower(category) as category,
                    region,
                    cast(amount as decimal(12, 2)) as amount,
                    updated_at
                from {{{{ ref('raw_{k:02d}') }}}}
                """)
        )
        stg_yml += [
            f"  - name: stg_{k:02d}",
            "    columns:",
            "      - name: id",
            "        data_tests: [unique, not_null]",
            "      - name: category",
            "        data_tests:",
            "          - accepted_values:",
            f"              arguments: {{values: {list(CATEGORIES)}}}",
        ]
        tests += 3
        if k % 2 == 0:
            stg_yml += ["      - name: region", "        data_tests: [not_null]"]
            tests += 1
    (project / "seeds" / "_seeds.yml").write_text("\n".join(seed_yml) + "\n")
    (project / "models" / "staging" / "_staging.yml").write_text("\n".join(stg_yml) + "\n")

    # intermediate: each joins 1-3 staging models on id (unique, not_null)
    int_yml = ["version: 2", "models:"]
    for j in range(n_intermediate):
        parents = rng.sample(range(n_seeds), rng.randint(1, min(3, n_seeds)))
        ctes = [f"s{n} as (select * from {{{{ ref('stg_{p:02d}') }}}})" for n, p in enumerate(parents)]
        joins = [f"left join s{n} on s{n}.id = s0.id" for n in range(1, len(parents))]
        amount = " + ".join(["s0.amount", *(f"coalesce(s{n}.amount, 0)" for n in range(1, len(parents)))])
        latest = ", ".join(f"s{n}.updated_at" for n in range(len(parents)))
        last = f"greatest({latest})" if len(parents) > 1 else latest
        sql = [
            "with " + ",\n".join(ctes),
            f"select s0.id, s0.category, s0.region, {amount} as amount, {last} as updated_at",
            "from s0",
            *joins,
        ]
        (project / "models" / "intermediate" / f"int_{j:03d}.sql").write_text("\n".join(sql) + "\n")
        int_yml += [
            f"  - name: int_{j:03d}",
            "    columns:",
            "      - name: id",
            "        data_tests: [unique, not_null]",
        ]
        tests += 2
    (project / "models" / "intermediate" / "_intermediate.yml").write_text("\n".join(int_yml) + "\n")

    # marts: tables joining 2-4 intermediates; facts at id grain, every fourth an aggregate per category
    mart_yml = ["version: 2", "models:"]
    relationships = 0
    for m in range(n_marts):
        parents = rng.sample(range(n_intermediate), rng.randint(2, 4))
        ctes = [f"i{n} as (select * from {{{{ ref('int_{p:03d}') }}}})" for n, p in enumerate(parents)]
        joins = [f"left join i{n} on i{n}.id = i0.id" for n in range(1, len(parents))]
        total = " + ".join(["i0.amount", *(f"coalesce(i{n}.amount, 0)" for n in range(1, len(parents)))])
        if m % 4 == 3:
            select = [
                "select i0.category, count(*) as customers, sum(" + total + ") as total_amount,",
                "    max(i0.updated_at) as last_updated",
            ]
            tail = ["group by i0.category"]
            mart_yml += [
                f"  - name: mart_{m:02d}",
                "    columns:",
                "      - name: category",
                "        data_tests:",
                "          - unique",
                "          - not_null",
                "          - accepted_values:",
                f"              arguments: {{values: {list(CATEGORIES)}}}",
            ]
            tests += 3
        else:
            amounts = ", ".join(f"i{n}.amount as amount_{n}" for n in range(len(parents)))
            select = [
                f"select i0.id, i0.category, i0.region, {amounts}, {total} as total_amount,",
                "    rank() over (partition by i0.region order by " + total + " desc) as region_rank",
            ]
            tail = []
            mart_yml += [
                f"  - name: mart_{m:02d}",
                "    columns:",
                "      - name: id",
                "        data_tests:",
                "          - unique",
                "          - not_null",
            ]
            tests += 2
            if m % 5 == 0:
                mart_yml += [
                    "          - relationships:",
                    f"              arguments: {{to: ref('int_{parents[-1]:03d}'), field: id}}",
                ]
                relationships += 1
                tests += 1
            mart_yml += ["      - name: region", "        data_tests: [not_null]"]
            tests += 1
        sql = ["with " + ",\n".join(ctes), *select, "from i0", *joins, *tail]
        (project / "models" / "marts" / f"mart_{m:02d}.sql").write_text("\n".join(sql) + "\n")
    (project / "models" / "marts" / "_marts.yml").write_text("\n".join(mart_yml) + "\n")
    counts = {
        "seeds": n_seeds,
        "staging": n_seeds,
        "intermediate": n_intermediate,
        "marts": n_marts,
        "tests": tests,
        "relationships": relationships,
    }
    return project, counts


def write_profiles(root: Path, duckdb: Path, threads: int = 2) -> Path:
    """A plain profiles.yml for the dbt CLI and cosmos (headwater derives its own from the warehouse)."""
    folder = root / "profiles"
    folder.mkdir(exist_ok=True)
    (folder / "profiles.yml").write_text(
        textwrap.dedent(f"""\
            {PROFILE}:
              target: bench
              outputs:
                bench:
                  type: duckdb
                  path: "{duckdb}"
                  schema: {SCHEMA}
                  threads: {threads}
            """)
    )
    return folder


def build_manifest(project: Path, duckdb: Path) -> float:
    """``dbt parse`` through headwater's runner, writing target/manifest.json; returns seconds."""
    from headwater.transform.profile import profile_for
    from headwater.transform.runner import run_dbt
    from headwater.warehouse.duckdb import DuckDBWarehouse

    profile = profile_for(DuckDBWarehouse(duckdb), PROFILE, SCHEMA)
    started = time.perf_counter()
    run_dbt(project, "parse", profile, write_manifest_to=project / "target" / "manifest.json")
    return time.perf_counter() - started


def manifest_counts(project: Path) -> dict[str, int]:
    manifest = json.loads((project / "target" / "manifest.json").read_text())
    counts: dict[str, int] = {}
    for node in manifest["nodes"].values():
        counts[node["resource_type"]] = counts.get(node["resource_type"], 0) + 1
    return counts


# ----------------------------------------------------------------------------------------------------
# DAG files

HEADWATER_DAG = '''\
"""headwater: the generated dbt project as one task per node plus one test task per tested node."""
from datetime import datetime

from airflow.sdk import DAG

from headwater.airflow.dbt_group import dbt_task_group

with DAG({dag_id!r}, schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    dbt_task_group({project!r}, target_schema={schema!r}{extra})
'''

COSMOS_DAG = '''\
"""astronomer-cosmos: the generated dbt project as a DbtDag rendered from its manifest (an airflow DAG)."""
from datetime import datetime

from cosmos import DbtDag, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import ExecutionMode, InvocationMode, LoadMode

dag = DbtDag(
    dag_id={dag_id!r},
    project_config=ProjectConfig(dbt_project_path={project!r}, manifest_path={manifest!r}),
    profile_config=ProfileConfig(profile_name={profile!r}, target_name="bench", profiles_yml_filepath={profiles!r}),
    render_config=RenderConfig(load_method=LoadMode.DBT_MANIFEST{render}),
    execution_config=ExecutionConfig(execution_mode=ExecutionMode.{mode}, invocation_mode=InvocationMode.DBT_RUNNER),
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
)
{after}'''
DETACH = ", should_detach_multiple_parents_tests=True"
# dag.test runs one task at a time and a deferred task's trigger inline, in the same thread: a consumer sensor
# that defers before the producer has run polls for the producer's XCom forever. In reschedule mode it gives
# the slot back and is retried after poke_interval, so the producer gets to run.
RESCHEDULE = """
for task in dag.tasks:
    if hasattr(task, "producer_task_id"):  # the watcher's consumer sensors
        task.deferrable = False
        task.mode = "reschedule"
        task.poke_interval = 1
"""


@dataclass
class Variant:
    key: str
    label: str
    dag_id: str
    library: str  # modules (comma-separated) imported apart, so their import is timed apart from the DAG file's
    build: bool = True  # also build the project through dag.test (else parse only)
    stuck: int = 0  # a build that may hang: stop it after this many XCom polls (see run_build)
    parse: dict[str, Any] = field(default_factory=dict)
    builds: list[dict[str, Any]] = field(default_factory=list)
    folder: Path = Path()  # the DAGs folder holding only this variant's file


def variants_for(quick: bool, watcher: bool) -> list[Variant]:
    local, watch = COSMOS + "local", COSMOS + "watcher"
    found = [
        Variant("hw", "headwater `dbt_task_group`", "headwater_dbt", "headwater.airflow.dbt_group"),
        Variant(
            "hw_build", "headwater `dbt_task_group(mode='build')`", "headwater_build", "headwater.airflow.dbt_group"
        ),
        Variant("cosmos_default", "cosmos `DbtDag` LOCAL, default RenderConfig", "cosmos_default", local, build=quick),
        Variant("cosmos", "cosmos `DbtDag` LOCAL, tests with 2 parents detached", "cosmos_local", local),
    ]
    if watcher:
        found += [
            Variant("watcher", "cosmos `DbtDag` WATCHER (stock)", "cosmos_watcher", watch, stuck=12),
            Variant("watcher_rs", "cosmos `DbtDag` WATCHER, sensors in reschedule mode", "cosmos_watcher_rs", watch),
        ]
    return found


def dag_files(root: Path, project: Path, profiles: Path, variants: list[Variant]) -> None:
    manifest = project / "target" / "manifest.json"
    for v in variants:
        v.folder = root / f"dags_{v.key}"
        v.folder.mkdir()
        if v.key.startswith("hw"):
            extra = ', mode="build", threads=2' if v.key == "hw_build" else ""
            text = HEADWATER_DAG.format(dag_id=v.dag_id, project=str(project), schema=SCHEMA, extra=extra)
        else:
            text = COSMOS_DAG.format(
                dag_id=v.dag_id,
                project=str(project),
                manifest=str(manifest),
                profile=PROFILE,
                profiles=str(profiles / "profiles.yml"),
                mode="WATCHER" if v.key.startswith("watcher") else "LOCAL",
                render=DETACH if v.key == "cosmos" else "",
                after=RESCHEDULE if v.key == "watcher_rs" else "",
            )
        (v.folder / f"{v.dag_id}.py").write_text(text)


# ----------------------------------------------------------------------------------------------------
# Probes, each in a fresh interpreter

PARSE_PROBE = """
import json, sys, time
t0 = time.perf_counter()
import airflow.sdk
from airflow.dag_processing.dagbag import DagBag
t1 = time.perf_counter()
import importlib
for name in sys.argv[2].split(","):
    importlib.import_module(name)
t2 = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
t3 = time.perf_counter()
dag = next(iter(bag.dags.values()), None)
print(json.dumps({"airflow": t1 - t0, "library": t2 - t1, "render": t3 - t2,
                  "tasks": len(dag.tasks) if dag else 0, "errors": {k: v for k, v in bag.import_errors.items()}}))
"""

BUILD_PROBE = """
import json, os, sys, time, warnings
warnings.filterwarnings("ignore")
t0 = time.perf_counter()
from airflow.dag_processing.dagbag import DagBag
from airflow.models.asset import AssetEvent
from airflow.models.taskinstance import TaskInstance
from airflow.utils.session import create_session
from headwater.local_airflow import migrate
migrate()
bag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
if bag.import_errors:
    raise SystemExit(f"import errors: {bag.import_errors}")
dag = bag.get_dag(sys.argv[1])
t1 = time.perf_counter()
run = dag.test()
t2 = time.perf_counter()
with create_session() as session:
    tis = session.query(TaskInstance).filter_by(dag_id=dag.dag_id, run_id=run.run_id).all()
    states = {}
    for ti in tis:
        states[str(ti.state)] = states.get(str(ti.state), 0) + 1
    failed = sorted(ti.task_id for ti in tis if str(ti.state) not in ("success", "skipped"))[:5]
    assets = session.query(AssetEvent).filter_by(source_dag_id=dag.dag_id, source_run_id=run.run_id).count()
print("BENCH " + json.dumps({"setup": t1 - t0, "run": t2 - t1, "state": str(run.state), "tasks": len(dag.tasks),
                             "states": states, "failed": failed, "assets": assets,
                             "headwater": sys.modules["headwater"].__file__ if "headwater" in sys.modules else ""}))
"""


def snapshot_source(root: Path) -> tuple[Path, str]:
    """A copy of src/headwater measured throughout (others may edit the tree meanwhile), and its git state."""
    repo = Path(__file__).resolve().parents[1]

    def git(*cmd: str) -> str:
        return subprocess.run(["git", *cmd], cwd=repo, capture_output=True, text=True, check=False).stdout.strip()

    folder = root / "src"
    shutil.copytree(repo / "src" / "headwater", folder / "headwater", ignore=shutil.ignore_patterns("__pycache__"))
    state = f"commit {git('rev-parse', '--short', 'HEAD')}"
    if git("status", "--porcelain", "--", "src"):
        state += " with uncommitted changes in src/"
    return folder, state


def base_env(root: Path, source: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(source), os.environ.get("PYTHONPATH")])),
        "AIRFLOW_HOME": str(root / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
        "AIRFLOW__COSMOS__CACHE_DIR": str(root / "cosmos_cache"),
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "DO_NOT_TRACK": "1",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "HEADWATER_HOME": str(root / "headwater"),
        "PYTHONWARNINGS": "ignore",
    }
    for name in list(env):
        if name.startswith(("AIRFLOW_CONN_", "HEADWATER_CONFIG", "AIRFLOW__CORE__DAGS_FOLDER")):
            del env[name]
    return env


def measure_parse(v: Variant, env: dict[str, str], rounds: int) -> None:
    runs = []
    for _ in range(rounds):
        out = subprocess.run(
            [sys.executable, "-c", PARSE_PROBE, str(v.folder), v.library],
            env={**env, "AIRFLOW__CORE__DAGS_FOLDER": str(v.folder)},
            capture_output=True,
            text=True,
            check=False,
            timeout=TIMEOUT,
        )
        error = out.stderr[-6000:] if out.returncode else ""
        result = json.loads(out.stdout.strip().splitlines()[-1]) if not error else {}
        error = error or "\n".join(result["errors"].values())
        if error:  # the DAG file does not import: reported with its traceback, not built
            print(f"{v.label}: the DAG file fails to parse:\n{error}", flush=True)
            v.parse, v.build = {"error": error.strip().splitlines()[-1], "tasks": 0}, False
            return
        runs.append(result)
    best = min(runs, key=lambda r: r["library"] + r["render"])
    v.parse = {
        "library": best["library"],
        "render": best["render"],
        "airflow": best["airflow"],
        "tasks": best["tasks"],
        "render_min": min(r["render"] for r in runs),
        "library_min": min(r["library"] for r in runs),
    }


def fresh_duckdb(duckdb: Path) -> None:
    for path in duckdb.parent.glob(duckdb.name + "*"):  # the file, its .wal and headwater's .lock
        path.unlink()


def run_build(cmd: list[str], env: dict[str, str], log: Path, stuck: int = 0) -> tuple[float, int, str]:
    """Run ``cmd`` with its output in ``log``; exit code -1 when it was stopped as hung.

    ``stuck``: stop it once its log shows that many "XCom not found" polls (a watcher consumer sensor whose
    trigger runs inline, waiting for a producer that dag.test will never start); 0 never checks.
    """
    started = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        while True:
            try:
                proc.wait(timeout=2)  # returns as soon as it exits: the clock is not rounded to the poll
                break
            except subprocess.TimeoutExpired:
                hung = stuck and log.read_text(errors="replace").count("XCom not found") >= stuck
                if hung or time.perf_counter() - started > TIMEOUT:
                    proc.kill()
                    proc.wait()
                    return time.perf_counter() - started, -1, log.read_text(errors="replace")
        seconds = time.perf_counter() - started
    return seconds, proc.returncode, log.read_text(errors="replace")


def measure_dbt_cli(
    root: Path, project: Path, profiles: Path, duckdb: Path, env: dict[str, str], rounds: int
) -> list[dict[str, Any]]:
    results = []
    for n in range(rounds):
        fresh_duckdb(duckdb)
        cmd = [str(DBT), "build", "--project-dir", str(project), "--profiles-dir", str(profiles)]
        cmd += ["--target-path", str(root / "cli_target"), "--log-path", str(root / "cli_logs"), "--threads", "2"]
        seconds, code, output = run_build(cmd, env, root / f"cli_{n}.log")
        if code:
            raise SystemExit(f"dbt build failed (exit {code}):\n{output[-4000:]}")
        done = next((line for line in output.splitlines() if "Done. PASS=" in line), "")
        results.append({"wall": seconds, "summary": done.split("Done. ")[-1].strip()})
        print(f"  dbt build CLI: run {n + 1}: {seconds:.1f} s ({results[-1]['summary']})", flush=True)
    return results


def measure_airflow(v: Variant, env: dict[str, str], duckdb: Path, root: Path, rounds: int) -> None:
    conn = json.dumps({"conn_type": "duckdb", "extra": {"path": str(duckdb)}})
    for n in range(rounds):
        fresh_duckdb(duckdb)
        run_env = {**env, "AIRFLOW__CORE__DAGS_FOLDER": str(v.folder), "AIRFLOW_CONN_HEADWATER_WAREHOUSE": conn}
        log = root / f"{v.key}_{n}.log"
        cmd = [sys.executable, "-c", BUILD_PROBE, v.dag_id]
        seconds, code, output = run_build(cmd, run_env, log, v.stuck)
        line = next((x for x in output.splitlines() if x.startswith("BENCH ")), None)
        if line is None:
            tail = "\n".join([x for x in output.splitlines() if "XCom not found" not in x][-30:])
            if code == -1:
                error = f"hung: stopped after {seconds:.0f} s"
                if polls := output.count("XCom not found"):
                    error += f", a deferred consumer sensor had polled {polls} times for XCom the producer never wrote"
            else:
                error = f"exit {code}: {tail.splitlines()[-1] if tail else 'no output'}"
            v.builds.append({"wall": seconds, "error": error})
            print(f"  {v.label}: run {n + 1}: {error}; log {log}:\n{tail}", flush=True)
            continue
        result = json.loads(line.removeprefix("BENCH "))
        result["wall"] = seconds
        v.builds.append(result)
        print(
            f"  {v.label}: run {n + 1}: {seconds:.1f} s wall, dag.test {result['run']:.1f} s, "
            f"{result['state']}, {result['states']}, not successful: {result['failed']}, {result['assets']} asset"
            f" events, headwater from {result['headwater']}",
            flush=True,
        )


def migrate_once(env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "from headwater.local_airflow import migrate; migrate()"],
        env=env,
        check=True,
        capture_output=True,
        timeout=TIMEOUT,
    )
    return time.perf_counter() - started


# ----------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parse-rounds", type=int, default=3, help="fresh interpreters per DAG parse (best kept)")
    parser.add_argument("--cli-rounds", type=int, default=2, help="`dbt build` runs (best kept)")
    parser.add_argument("--build-rounds", type=int, default=1, help="dag.test runs per Airflow variant (best kept)")
    parser.add_argument("--no-watcher", action="store_true", help="skip cosmos ExecutionMode.WATCHER")
    parser.add_argument("--quick", action="store_true", help="a 13-model smoke run; prints, writes no docs")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (its path is printed)")
    args = parser.parse_args()
    shape = QUICK if args.quick else FULL
    if installed("astronomer-cosmos") == "(not installed)":
        parser.error("astronomer-cosmos is not installed: run `uv sync --frozen --group bench` first")
    started = time.perf_counter()
    root = Path(tempfile.mkdtemp(prefix="headwater-dbt-bench-"))
    print(f"work folder {root}", flush=True)
    try:
        source, counts_state = snapshot_source(root)
        sys.path.insert(0, str(source))  # build_manifest imports headwater from the snapshot too
        project, counts = generate_project(root, shape)
        counts["source"] = counts_state
        counts["load_start"] = os.getloadavg()[0]
        duckdb = root / "warehouse.duckdb"
        profiles = write_profiles(root, duckdb)
        counts["parse_seconds"] = build_manifest(project, duckdb)
        counts.update(manifest_counts(project))
        print(f"manifest by headwater's run_dbt('parse') in {counts['parse_seconds']:.1f} s: {counts}", flush=True)
        variants = variants_for(args.quick, watcher=not args.no_watcher)
        dag_files(root, project, profiles, variants)
        env = base_env(root, source)
        print(f"airflow db migrate: {migrate_once(env):.1f} s", flush=True)
        for v in variants:
            measure_parse(v, env, args.parse_rounds)
            p = v.parse
            if "error" not in p:
                print(
                    f"parse {v.label}: {p['tasks']} tasks, import {p['library']:.2f} s + render {p['render']:.2f} s",
                    flush=True,
                )
        cli = measure_dbt_cli(root, project, profiles, duckdb, env, args.cli_rounds)
        for v in variants:
            if v.build:
                measure_airflow(v, env, duckdb, root, args.build_rounds)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    report(counts, variants, cli, args, time.perf_counter() - started)


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def parse_table(variants: list[Variant]) -> str:
    rows = []
    for v in variants:
        p = v.parse
        if "error" in p:
            rows.append([v.label, "-", "-", "-", f"import error: {p['error']}"])
            continue
        rows.append([v.label, p["tasks"], fmt(p["library"]), fmt(p["render"]), fmt(p["library"] + p["render"])])
    return table(["DAG file", "Airflow tasks", "library import s", "DAG file render s", "together s"], rows)


def build_table(variants: list[Variant], cli: list[dict[str, Any]]) -> str:
    best_cli = min(cli, key=lambda r: r["wall"])
    rows = [["`dbt build --threads 2` (CLI)", "-", fmt(best_cli["wall"], 1), "-", "-", best_cli["summary"]]]
    for v in variants:
        if not v.builds:
            continue
        ok = [b for b in v.builds if "error" not in b and b["state"] == "success"]
        if not ok:
            b = v.builds[0]
            what = b.get("error") or f"DAG run {b['state']}; {states_text(b)}; not successful: {', '.join(b['failed'])}"
            rows.append([v.label, v.parse["tasks"], fmt(b["wall"], 1), fmt(b.get("run"), 1), "-", what])
            continue
        best = min(ok, key=lambda b: b["wall"])
        per_task = fmt(best["run"] / best["tasks"]) if best["tasks"] else "-"
        outcome = f"DAG run success; {states_text(best)}"
        rows.append([v.label, best["tasks"], fmt(best["wall"], 1), fmt(best["run"], 1), per_task, outcome])
    headers = ["variant", "Airflow tasks", "wall s (process)", "dag.test s", "s per task", "outcome"]
    return table(headers, rows)


def states_text(build: dict[str, Any]) -> str:
    text = "task states: " + ", ".join(f"{k} {n}" for k, n in sorted(build["states"].items()))
    return text + (f"; {build['assets']} asset events" if build.get("assets") else "")


NOTES = (
    "Notes. cosmos' default RenderConfig renders each model's tests as one `dbt test` task after the model;"
    " dbt's eager indirect selection then also picks a `relationships` test (two parents) in the task of the"
    " model it points to, before the model it is declared on exists, so that test fails and the models"
    " after that test task are upstream_failed (`--quick` builds this variant and shows it: `int_002.test` fails,"
    " `mart_00.run` is upstream_failed). `RenderConfig(should_detach_multiple_parents_tests=True)` moves such"
    " tests to a task of their own after all their parents; that is the cosmos LOCAL row built here. headwater"
    " puts a test with several parents in the test task of the model it is declared on, after all its parents."
    " WATCHER runs one `dbt build` in a producer task and one sensor per node; `dag.test()` runs one task at a"
    " time and a deferred task's trigger inline, so when a root sensor is picked before the producer it waits"
    " for the producer's XCom forever (the stock row is stopped once it has polled 12 times). Whether that"
    " happens depends on which ready task `dag.test()` picks first (a scheduler with a triggerer was not"
    " tried here)."
    " The reschedule row sets the watcher's sensors to `mode='reschedule'` in the DAG file, which `dag.test()`"
    " can interleave with the producer. headwater's `mode='build'` (here with `threads=2`, like the CLI row) is"
    " one task running `dbt build` over the selection, with one outlet Asset per model and seed: per-node"
    " status shows as asset events, not as task states."
)


def installed(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "(not installed)"


def report(counts: dict[str, Any], variants: list[Variant], cli: list[dict[str, Any]], args: Any, total: float) -> None:
    parse, build = parse_table(variants), build_table(variants, cli)
    print("\n" + parse + "\n\n" + build)
    print(f"\nthe benchmark took {total / 60:.1f} min")
    if args.quick:
        return
    dists = ("dbt-core", "dbt-duckdb", "duckdb", "apache-airflow", "astronomer-cosmos")
    versions = ", ".join(f"{name} {installed(name)}" for name in dists)
    body = (
        f"The project: {counts['seeds']} seeds -> {counts['staging']} staging views -> {counts['intermediate']}"
        f" intermediate views (each joins 1-3 staging models) -> {counts['marts']} mart tables (each joins 2-4"
        f" intermediates; every fourth aggregates per category), {counts['tests']} generic tests"
        f" ({counts['relationships']} relationships), {ROWS} rows per seed, random seed {SEED}, on one DuckDB"
        f" file. Its manifest ({counts.get('model', 0)} models, {counts.get('seed', 0)} seeds,"
        f" {counts.get('test', 0)} tests) is built by headwater's `run_dbt(project, 'parse', profile_for("
        f"DuckDBWarehouse(...), ...))` in {counts['parse_seconds']:.1f} s. {versions}."
        f"\n\nDAG parse time, best of {args.parse_rounds} fresh interpreters each: Airflow is imported first,"
        " outside the clock; then the modules the DAG file uses (`headwater.airflow.dbt_group`; cosmos'"
        " `airflow.dag`, `config`, `constants` and the mode's operator module: cosmos' package `__init__` is"
        " lazy); then `DagBag(dag_folder=<the one DAG file>)`.\n\n"
        + parse
        + f"\n\nBuild wall time on a fresh DuckDB file each run. The CLI row is `dbt build` in a subprocess"
        f" (best of {args.cli_rounds}); the Airflow rows are `dag.test()` in a fresh interpreter on a SQLite"
        f" metadata DB (one process, tasks one after another; best of {args.build_rounds}). Wall time includes"
        " interpreter start, imports and the DAG parse; `dag.test s` is the call alone.\n\n"
        + build
        + "\n\n"
        + NOTES
        + f"\n\nThe whole script took {total / 60:.1f} min; load average (1 min) {counts['load_start']:.1f} at the"
        f" start, {os.getloadavg()[0]:.1f} at the end; headwater at {counts['source']} (copied at the start)."
    )
    command = "python bench/dbt_build.py"
    defaults = {"parse_rounds": 3, "cli_rounds": 2, "build_rounds": 1}
    for name, default in defaults.items():
        if getattr(args, name) != default:
            command += f" --{name.replace('_', '-')} {getattr(args, name)}"
    if args.no_watcher:
        command += " --no-watcher"
    write_section("dbt", "A 200-model dbt project in Airflow: headwater against cosmos", body, command)


if __name__ == "__main__":
    main()
