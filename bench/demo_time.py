"""Wall time of ``make demo`` from an empty HEADWATER_HOME (metadata DB created, both demo pipelines run).

Run: ``python bench/demo_time.py``; writes its table into docs/benchmarks.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _report import REPO, table, write_section

STEPS = [
    ("headwater init (SQLite metadata DB)", [".venv/bin/headwater", "init"]),
    (
        "headwater run sample_sheets (3 tabs, 310 rows)",
        [".venv/bin/headwater", "run", "sample_sheets", "--logical-date", "2026-01-05"],
    ),
    (
        "headwater run exchange_rates (1 CSV, 42 rows)",
        [".venv/bin/headwater", "run", "exchange_rates", "--logical-date", "2026-01-05"],
    ),
    ("headwater tables", [".venv/bin/headwater", "tables"]),
]


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HEADWATER_HOME": tmp}
        env.pop("AIRFLOW_HOME", None)
        started = time.perf_counter()
        subprocess.run(["make", "demo"], cwd=REPO, env=env, check=True, capture_output=True)
        total = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HEADWATER_HOME": tmp}
        env.pop("AIRFLOW_HOME", None)
        for label, command in STEPS:
            t = time.perf_counter()
            subprocess.run(command, cwd=REPO, env=env, check=True, capture_output=True)
            rows.append([label, f"{time.perf_counter() - t:.1f}"])
    rows.append(["**`make demo` in all** (environment already synced)", f"**{total:.1f}**"])
    for label, seconds in rows:
        print(f"{label:60s} {seconds}")
    body = table(["step", "wall s"], rows)
    body += (
        "\n\nEach `headwater` command is a fresh interpreter that imports Airflow (about 3 s) before it does"
        " anything; the loads themselves take well under a second (see the `seconds` column the demo prints)."
    )
    write_section("demo_time", "Demo wall time", body, "python bench/demo_time.py")


if __name__ == "__main__":
    main()
