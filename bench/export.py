"""Exporting a big PostgreSQL table to files: ``headwater export`` against SqlToS3Operator and ``psql | gzip``.

The table is pgbench_accounts (100,000 rows per scale step) in the database headwater_bench; S3 is a
moto server on loopback inside this process. Every variant runs as its own subprocess: wall seconds
around it, peak RSS of its whole process tree (polled every 20 ms). A second section loads the
exported csv.gz parts into PostgreSQL and DuckDB against a plain ``\\copy``.
Run: ``python bench/export.py [--scales 20,100] [--quick] [--variants key,...]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import boto3
import psutil
from moto.server import ThreadedMotoServer

sys.path.insert(0, str(Path(__file__).parent))
from _report import REPO, table, write_section

DB = "headwater_bench"
PG = ["-h", "127.0.0.1", "-U", "postgres"]
PG_URL = f"postgresql://postgres@127.0.0.1:5432/{DB}"
QUERY = "select * from pgbench_accounts"
BUCKET = "headwater-bench"
BIN = REPO / ".venv" / "bin"
PNG = REPO / "docs" / "export_benchmark.png"
TIMEOUT = 3600
KEYS = ["psql-gzip", "hw-s3-csv.gz", "hw-s3-csv.zst", "hw-s3-parquet", "hw-local-csv.gz"]
KEYS += ["sqltos3-csv", "sqltos3-csv.gz"]
PSQL, HW_GZ, SQL_GZ = "psql \\copy, gzip -1 (local file)", "headwater csv.gz -> S3", "SqlToS3Operator csv.gz -> S3"
SQL_TO_S3 = """
import sys
from airflow.providers.amazon.aws.transfers.sql_to_s3 import SqlToS3Operator
key, gzip = sys.argv[1], sys.argv[2] == "gzip"
op = SqlToS3Operator(task_id="export", query=sys.argv[3], s3_bucket=sys.argv[4], s3_key=key, sql_conn_id="bench_pg",
                     aws_conn_id="bench_aws", file_format="csv", replace=True,
                     df_kwargs={"index": False, **({"compression": "gzip"} if gzip else {})})
op.execute(context={})
"""
LOAD = """
import sys
from headwater.lake import LocalLake
from headwater.parts import read_manifest
from headwater.warehouse.duckdb import DuckDBWarehouse
from headwater.warehouse.postgres import PostgresWarehouse
kind, root, uri, where = sys.argv[1:5]
lake = LocalLake(root)
pg = {"host": "127.0.0.1", "port": 5432, "user": "postgres", "dbname": where}
warehouse = PostgresWarehouse(pg) if kind == "postgres" else DuckDBWarehouse(where)
print(warehouse.load(read_manifest(lake, uri), lake, "replace").rows)
"""


@dataclass
class Run:
    variant: str
    scale: int
    rows: int
    seconds: float = 0.0
    rss: int = 0  # bytes, peak summed over the process tree
    output: int = 0  # bytes written
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error


def sh(*cmd: str, check: bool = True) -> str:
    return subprocess.run(cmd, check=check, capture_output=True, text=True).stdout.strip()


def tree_rss(root: psutil.Process) -> int:
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def measured(cmd: list[str], env: dict[str, str], log: Path) -> tuple[float, int, int]:
    """Run ``cmd``; return (wall seconds, peak tree RSS bytes, exit code). Output goes to ``log``."""
    peak = 0
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            peak = max(peak, tree_rss(root))
            if time.perf_counter() - started > TIMEOUT:
                for p in root.children(recursive=True):
                    p.kill()
                proc.kill()
            time.sleep(0.02)
        seconds = time.perf_counter() - started
    return seconds, peak, proc.returncode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(scale: int) -> None:
    """pgbench_accounts with scale * 100,000 rows in headwater_bench (re-initialised only if needed)."""
    if not sh("psql", *PG, "-d", "postgres", "-tAc", f"select 1 from pg_database where datname = '{DB}'"):
        sh("createdb", *PG, DB)
    count = sh("psql", *PG, "-d", DB, "-tAc", "select count(*) from pgbench_accounts", check=False)
    if count != str(scale * 100_000):
        print(f"pgbench -i -s {scale} ...", flush=True)
        started = time.perf_counter()
        sh("pgbench", "-i", "-s", str(scale), "-q", *PG, DB)
        print(f"  initialised in {time.perf_counter() - started:.0f} s", flush=True)
    # Let the load's writes settle (the first reader after a bulk load otherwise competes with the checkpoint).
    sh("psql", *PG, "-d", DB, "-c", "checkpoint", "-c", "select count(*) from pgbench_accounts")


class Bench:
    def __init__(self, work: Path, port: int) -> None:
        self.work = work
        self.endpoint = f"http://127.0.0.1:{port}"
        keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
        self.s3 = boto3.client("s3", endpoint_url=self.endpoint, **keys)
        self.s3.create_bucket(Bucket=BUCKET)
        extra = {"endpoint_url": self.endpoint, "region_name": "us-east-1"}
        aws = {"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra}
        pg = {"host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": DB}
        self.env = os.environ | {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AIRFLOW_HOME": str(work / "airflow"),
            "HEADWATER_HOME": str(work / "headwater"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
            "AIRFLOW_CONN_BENCH_PG": json.dumps({"conn_type": "postgres", **pg}),
            "AIRFLOW_CONN_BENCH_AWS": json.dumps(aws),
            "PYTHONWARNINGS": "ignore",
        }
        self.csv_bytes: dict[int, int] = {}  # plain CSV size per scale, from the psql output

    # --- outputs -----------------------------------------------------------------------------------
    def s3_output(self, prefix: str, manifest: bool) -> int:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        objects = [o for page in pages for o in page.get("Contents", [])]
        names = {o["Key"].rsplit("/", 1)[-1] for o in objects}
        for start in range(0, len(objects), 1000):
            batch = [{"Key": o["Key"]} for o in objects[start : start + 1000]]
            self.s3.delete_objects(Bucket=BUCKET, Delete={"Objects": batch, "Quiet": True})
        if not objects or (manifest and "_manifest.json" not in names):
            raise RuntimeError(f"no output under s3://{BUCKET}/{prefix}" + (" (or no _manifest.json)" * manifest))
        return sum(o["Size"] for o in objects)

    def local_output(self, path: Path) -> int:
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path] * path.exists()
        size = sum(p.stat().st_size for p in files)
        if not size:
            raise RuntimeError(f"no output at {path}")
        return size

    # --- variants ----------------------------------------------------------------------------------
    def variants(self, n: int) -> dict[str, tuple[str, list[str], Callable[[], int]]]:
        """key: (label, command, check that returns the output bytes) for scale ``n``."""
        hw = [str(BIN / "headwater"), "export", "--source", PG_URL, "--query", QUERY]
        py, out = str(BIN / "python"), self.work / "out"

        def hw_s3(fmt: str) -> tuple[list[str], Callable[[], int]]:
            prefix = f"hw/scale{n}/{fmt.replace('.', '_')}"
            return [*hw, "--to", f"s3://{BUCKET}/{prefix}", "--format", fmt], lambda: self.s3_output(prefix + "/", True)

        def sql_s3(gzip: str) -> tuple[list[str], Callable[[], int]]:
            cmd = [py, "-c", SQL_TO_S3, f"sqltos3/scale{n}/accounts.csv", gzip, QUERY, BUCKET]
            return cmd, lambda: self.s3_output(f"sqltos3/scale{n}/", False)

        gz, folder = out / f"psql_{n}.csv.gz", out / f"hw_{n}"
        psql = (
            f"psql {' '.join(PG)} -d {DB} -v ON_ERROR_STOP=1 -c '\\copy ({QUERY}) to stdout with csv' | gzip -1 > {gz}"
        )
        return {
            "psql-gzip": (PSQL, ["bash", "-o", "pipefail", "-c", psql], lambda: self.local_output(gz)),
            "hw-s3-csv.gz": (HW_GZ, *hw_s3("csv.gz")),
            "hw-s3-csv.zst": ("headwater csv.zst -> S3", *hw_s3("csv.zst")),
            "hw-s3-parquet": ("headwater parquet -> S3", *hw_s3("parquet")),
            "hw-local-csv.gz": (
                "headwater csv.gz -> local folder",
                [*hw, "--to", folder.as_uri(), "--format", "csv.gz"],
                lambda: self.local_output(folder),
            ),
            "sqltos3-csv": ("SqlToS3Operator csv -> S3", *sql_s3("plain")),
            "sqltos3-csv.gz": (SQL_GZ, *sql_s3("gzip")),
        }

    def run(self, key: str, label: str, cmd: list[str], output: Callable[[], int], scale: int) -> Run:
        run = Run(label, scale, scale * 100_000)
        log = self.work / "logs" / f"{key}_{scale}.log"
        log.parent.mkdir(exist_ok=True)
        run.seconds, run.rss, code = measured(cmd, self.env, log)
        try:
            run.output = output()
        except Exception as exc:
            run.error = f"no output ({exc})"
        if code:
            run.error = f"failed (exit {code})"
        if run.error:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            print(f"  {label}: {run.error}: " + " / ".join(tail)[:400], file=sys.stderr)
        print(f"{label:42s} scale {scale:4d}  " + "  ".join(cells(run, self.csv_bytes.get(scale))), flush=True)
        return run

    def export(self, scale: int, keys: list[str]) -> list[Run]:
        (self.work / "out").mkdir(exist_ok=True)
        runs = []
        for key, (label, cmd, output) in self.variants(scale).items():
            if key not in keys:
                continue
            runs.append(self.run(key, label, cmd, output, scale))
            if key == "psql-gzip" and runs[-1].ok:
                gz = self.work / "out" / f"psql_{scale}.csv.gz"
                self.csv_bytes[scale] = int(sh("bash", "-c", f"gzip -dc {gz} | wc -c"))
        return runs

    # --- loads -------------------------------------------------------------------------------------
    def staged(self, scale: int) -> str | None:
        """A copy of the local csv.gz export's manifest, aimed at bench.pgbench_accounts; None without one."""
        from headwater.lake import LocalLake
        from headwater.parts import Manifest, read_manifest

        found = sorted((self.work / "out" / f"hw_{scale}").glob("**/_manifest.json"))
        if not found:
            return None
        data = json.loads(found[0].read_text())
        data = {k: v for k, v in data.items() if k in Manifest.__dataclass_fields__}
        copy = self.work / "out" / f"manifest_{scale}.json"
        copy.write_text(json.dumps({**data, "target": "bench.pgbench_accounts"}))
        try:
            read_manifest(LocalLake(self.work), copy.as_uri())
        except Exception as exc:
            print(f"  the export's manifest does not load: {exc}", file=sys.stderr)
            return None
        return copy.as_uri()

    def check_rows(self, table: str | None, scale: int) -> int:
        count = sh("psql", *PG, "-d", DB, "-tAc", f"select count(*) from {table}", check=False) if table else ""
        if table and count != str(scale * 100_000):
            raise RuntimeError(f"{table} holds {count or 'no'} rows")
        return 0

    def load(self, scale: int, manifest_uri: str, has_cli: bool) -> list[Run]:
        manifest = json.loads(Path(manifest_uri.removeprefix("file://")).read_text())
        paths = [p["uri"].removeprefix("file://") for p in manifest["parts"]]
        ddl = "drop table if exists bench_copy; create table bench_copy (like pgbench_accounts)"
        copies = [f"\\copy bench_copy from program 'gzip -dc {f}' with (format csv, header true)" for f in paths]
        psql = ["psql", *PG, "-d", DB, "-1", "-v", "ON_ERROR_STOP=1", "-c", ddl]
        psql += [arg for c in copies for arg in ("-c", c)]
        duck = self.work / "warehouse.duckdb"  # a file named bench.duckdb clashes with schema bench
        py = [str(BIN / "python"), "-c", LOAD]
        variants = {
            "psql-copy": ("psql \\copy from gzip -dc, per part (one transaction)", psql),
            "pg": ("PostgresWarehouse.load(replace)", [*py, "postgres", str(self.work), manifest_uri, DB]),
            "duckdb": ("DuckDBWarehouse.load(replace)", [*py, "duckdb", str(self.work), manifest_uri, str(duck)]),
        }
        if has_cli:
            hw = [str(BIN / "headwater"), "load-parts", "--manifest", manifest_uri, "--to"]
            variants |= {
                "cli-pg": ("headwater load-parts --to postgres", [*hw, "postgres"]),
                "cli-duckdb": ("headwater load-parts --to duckdb", [*hw, "duckdb"]),
            }
        runs = []
        for key, (label, cmd) in variants.items():
            sh("psql", *PG, "-d", DB, "-c", "drop schema if exists bench cascade; drop table if exists bench_copy")
            duck.unlink(missing_ok=True)
            table = {"psql-copy": "bench_copy", "pg": "bench.pgbench_accounts"}.get(key)
            runs.append(self.run(f"load_{key}", label, cmd, lambda t=table: self.check_rows(t, scale), scale))
        return runs


def cells(run: Run, csv_bytes: int | None) -> list[str]:
    if not run.ok:
        return [f"{run.rows:,}", run.error, "", "", "", ""]
    mbs = f"{csv_bytes / 1e6 / run.seconds:.1f}" if csv_bytes else "-"
    out = f"{run.output / 1e6:.1f}" if run.output else "-"
    return [f"{run.rows:,}", f"{run.seconds:.1f}", f"{run.rows / run.seconds:,.0f}", mbs, f"{run.rss / 1e6:.0f}", out]


def targets(runs: list[Run]) -> list[str]:
    def get(label: str) -> Run | None:
        return next((r for r in runs if r.scale == 20 and r.variant == label and r.ok), None)

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    hw, sql, psql = get(HW_GZ), get(SQL_GZ), get(PSQL)
    missing = "**not measured** (a variant did not run at scale 20)"
    speedup = sql.seconds / hw.seconds if hw and sql else 0
    ratio = hw.seconds / psql.seconds if hw and psql else 0
    lines = [
        "- scale 20, headwater >= 8x faster than SqlToS3Operator (csv.gz both): "
        + (f"{speedup:.1f}x, {verdict(speedup >= 8)}" if speedup else missing),
        "- scale 20, headwater within 2x of psql piped to gzip: "
        + (f"{ratio:.2f}x its time, {verdict(ratio <= 2)}" if ratio else missing),
    ]
    peaks: dict[str, Run] = {}
    for r in runs:
        if r.variant.startswith("headwater") and r.ok and r.rss >= getattr(peaks.get(r.variant), "rss", 0):
            peaks[r.variant] = r
    scales = sorted({r.scale for r in runs if r.variant in peaks})
    met = all(r.rss <= 150e6 for r in peaks.values()) and {20, 100} <= set(scales)
    each = "; ".join(
        f"{v.removeprefix('headwater ')}: {r.rss / 1e6:.0f} MB (scale {r.scale})" for v, r in peaks.items()
    )
    lines.append(
        f"- headwater peak RSS <= 150 MB at scales 20 and 100 (measured at {', '.join(map(str, scales)) or 'none'}),"
        f" highest per variant: {each or 'none ran'}; {verdict(met) if peaks else '**not measured**'}"
    )
    return lines


def plot(runs: list[Run]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for label in dict.fromkeys(r.variant for r in runs):
        points = sorted((r.rows / 1e6, r.seconds, r.rss / 1e6) for r in runs if r.variant == label and r.ok)
        if points:
            left.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
            right.plot([p[0] for p in points], [p[2] for p in points], marker="o", label=label)
    for ax, ylabel in ((left, "wall seconds"), (right, "peak RSS, MB (process tree, log scale)")):
        ax.set_xlabel("rows, millions")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    right.set_yscale("log")
    right.legend(handles=[right.axhline(150, color="grey", linestyle="--", label="150 MB target")], fontsize=7)
    left.legend(fontsize=7)
    fig.suptitle("Exporting pgbench_accounts from PostgreSQL")
    fig.tight_layout()
    fig.savefig(PNG, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default="20,100", help="pgbench scales, comma-separated (100,000 rows each)")
    parser.add_argument("--quick", action="store_true", help="scale 1 only, a smoke run")
    parser.add_argument("--variants", default="", help=f"only these export variants, of: {','.join(KEYS)}")
    args = parser.parse_args()
    scales = [1] if args.quick else [int(s) for s in args.scales.split(",")]
    has_cli = "load-parts" in sh(str(BIN / "headwater"), "--help", check=False)
    port = free_port()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    work = Path(tempfile.mkdtemp(prefix="headwater-export-bench-"))
    exports: list[Run] = []
    loads: list[Run] = []
    try:
        bench = Bench(work, port)
        keys = args.variants.split(",") if args.variants else KEYS
        if unknown := set(keys) - set(KEYS):
            parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
        for scale in scales:
            prepare(scale)
            exports += bench.export(scale, keys)
            if manifest := bench.staged(scale):
                loads += bench.load(scale, manifest, has_cli)
            shutil.rmtree(work / "out")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)

    headers = ["variant", "scale", "rows", "wall s", "rows/s", "CSV MB/s", "peak RSS MB", "output MB"]
    rows = [[r.variant, r.scale, *cells(r, bench.csv_bytes.get(r.scale))] for r in exports]
    print("\n" + table(headers, rows))
    plot(exports)
    body = table(headers, rows) + "\n\n![export benchmark](export_benchmark.png)\n\nTargets:\n\n"
    body += "\n".join(targets(exports)) + (
        "\n\nOne run per variant, each a fresh subprocess; peak RSS is summed over the whole process tree"
        " (psql and gzip together, plus the bash that pipes them), polled every 20 ms; MB = 10^6 bytes; the"
        " PostgreSQL server's own memory is not counted."
        " CSV MB/s is the table's plain CSV size (psql's output) over the wall time. S3 is a moto server on"
        " loopback in the benchmark process (its memory is not counted). pgbench's filler column is blank,"
        " so the data compresses far better than real tables. Wall time includes each interpreter's start and"
        " imports (Airflow's take a few seconds), as a task would pay them."
    )
    write_section("export", "Exporting a PostgreSQL table to files", body, "python bench/export.py")
    if loads:
        headers = ["variant", "scale", "rows", "wall s", "rows/s", "CSV MB/s", "peak RSS MB"]
        rows = [[r.variant, r.scale, *cells(r, bench.csv_bytes.get(r.scale))[:-1]] for r in loads]
        print("\n" + table(headers, rows))
        body = table(headers, rows) + (
            "\n\nLoading the csv.gz parts (a header each) of `headwater export --to file://...` at each scale. The psql"
            " row decompresses the same parts into one `\\copy` into a fresh table; the warehouse rows"
            " run `load(manifest, LocalLake, 'replace')` in a fresh interpreter (staging table, checksums, row"
            " count check, publish). DuckDB's file and the target table are dropped before each run."
        )
        write_section("load", "Loading exported parts into PostgreSQL and DuckDB", body, "python bench/export.py")


if __name__ == "__main__":
    main()
