"""DAG parse time: 200 configured sheets in headwater against 200 dag-factory YAML DAGs of 3 tasks each.

Each variant is parsed by a fresh interpreter (Airflow imported first, outside the timing) with
``DagBag(dag_folder=...)``; the median of several rounds is reported. Run: ``python bench/parse_dags.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _report import REPO, median, table, write_section

N = 200
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
PROBE = """
import json, sys, time
import airflow.sdk, airflow.dag_processing.dagbag
from airflow.dag_processing.dagbag import DagBag
t = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
elapsed = time.perf_counter() - t
print(json.dumps({"seconds": elapsed, "dags": len(bag.dags), "tasks": sum(len(d.tasks) for d in bag.dags.values()),
                  "errors": len(bag.import_errors)}))
"""


def headwater_variant(root: Path, pipelines: int, sheets_each: int) -> Path:
    folder = root / f"hw_{pipelines}x{sheets_each}"
    (folder / "dags").mkdir(parents=True)
    lines = ["pipelines:"]
    for p in range(pipelines):
        lines += [f"  pipeline_{p:03d}:", "    schedule: '0 9 * * *'", "    sheets:"]
        for s in range(sheets_each):
            lines += [
                f"      - spreadsheet: https://docs.google.com/spreadsheets/d/KEY{p:04d}xxxxxxxxxxxx/edit",
                f"        tab: Tab{s}",
                f"        table: raw.sheet_{p:03d}_{s:03d}",
                "        load: upsert",
                "        keys: [id]",
                "        columns: {id: integer, amount: numeric}",
            ]
    (folder / "pipelines.yaml").write_text("\n".join(lines) + "\n")
    (folder / "dags" / "headwater_pipelines.py").write_text((REPO / "dags" / "headwater_pipelines.py").read_text())
    return folder


def dagfactory_variant(root: Path) -> Path:
    folder = root / "dag_factory"
    (folder / "dags").mkdir(parents=True)
    config: dict[str, object] = {}
    for p in range(N):
        config[f"df_{p:03d}"] = {
            "default_args": {"owner": "bench", "start_date": "2026-01-01"},
            "schedule": "0 9 * * *",
            "tasks": [
                {
                    "task_id": "extract",
                    "operator": "airflow.providers.standard.operators.bash.BashOperator",
                    "bash_command": "echo extract",
                },
                {
                    "task_id": "load",
                    "operator": "airflow.providers.standard.operators.bash.BashOperator",
                    "bash_command": "echo load",
                    "dependencies": ["extract"],
                },
                {
                    "task_id": "check",
                    "operator": "airflow.providers.standard.operators.bash.BashOperator",
                    "bash_command": "echo check",
                    "dependencies": ["load"],
                },
            ],
        }
    (folder / "dags" / "dags.yaml").write_text(json.dumps(config))  # JSON is YAML
    (folder / "dags" / "load_dags.py").write_text(
        "# airflow DAG loader\nfrom pathlib import Path\nfrom dagfactory import load_yaml_dags\n"
        "load_yaml_dags(globals_dict=globals(), dags_folder=str(Path(__file__).parent))\n"
    )
    return folder


def measure(folder: Path, env: dict[str, str]) -> dict[str, float]:
    runs = []
    for _ in range(ROUNDS):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, str(folder / "dags")], env=env, capture_output=True, text=True, check=True
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    if runs[0]["errors"]:
        raise SystemExit(f"{folder}: import errors while parsing")
    return {"seconds": median([r["seconds"] for r in runs]), "dags": runs[0]["dags"], "tasks": runs[0]["tasks"]}


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base_env = {
            **os.environ,
            "AIRFLOW_HOME": str(root / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
            "PYTHONWARNINGS": "ignore",
        }
        variants = [
            ("headwater: 200 pipelines x 1 sheet", headwater_variant(root, N, 1)),
            ("headwater: 1 pipeline x 200 sheets", headwater_variant(root, 1, N)),
            ("dag-factory 1.1: 200 YAML DAGs x 3 tasks", dagfactory_variant(root)),
        ]
        for label, folder in variants:
            env = {**base_env, "HEADWATER_CONFIG": str(folder / "pipelines.yaml")}
            result = measure(folder, env)
            rows.append([label, result["dags"], result["tasks"], f"{result['seconds']:.2f}"])
            print(f"{label:45s} {result['dags']:4d} DAGs {result['tasks']:5d} tasks {result['seconds']:.2f} s")
    body = table(["variant", "DAGs", "tasks", "DagBag fill, median s"], rows)
    body += (
        f"\n\nMedian of {ROUNDS} fresh interpreters each; Airflow is imported before the clock starts, so the"
        " time is the DAG files' own work (reading YAML, validating, building operators)."
    )
    write_section("parse_dags", "DAG parse time, 200 configured sheets", body, "python bench/parse_dags.py")


if __name__ == "__main__":
    main()
