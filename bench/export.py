"""Exporting a big table to files: ``headwater export`` against the tools a user would otherwise pick.

Sources: PostgreSQL (pgbench_accounts, 100,000 rows per scale step, database headwater_bench) and MariaDB (a
table of the same shape made by this script with the sequence engine in database ``test``, dropped after).
Peers, side by side: the database's own client piped to ``gzip -1`` (the floor), Airflow's ``SqlToS3Operator``
(with a postgres and a mysql Connection) and dlt (its fastest backend, ConnectorX, to Parquet). S3 is a moto
server on loopback inside this process. Every variant runs as its own subprocess, ``--repeat`` times with the
variants interleaved; the table shows the best wall time and the highest peak RSS of its whole process tree
(polled every 20 ms). Peers whose memory grows with the table stop at ``--peer-max-scale``. A second section
loads the exported csv.gz parts into PostgreSQL and DuckDB against a plain ``\\copy``.
Run: ``python bench/export.py [--sources pg,mysql] [--scales 20,100,300] [--repeat 3] [--quick]``.
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
MYSQL = ["mysql", "-h", "127.0.0.1", "-P", "3306", "-u", "root", "test"]
MYSQL_URL = "mysql://root@127.0.0.1:3306/test"
MYSQL_TABLE = "hw_bench_accounts"
BUCKET = "headwater-bench"
BIN = REPO / ".venv" / "bin"
PNG = REPO / "docs" / "export_benchmark.png"
TIMEOUT = 3600
KEYS = ["floor", "hw-s3-csv.gz", "hw-s3-csv.zst", "hw-s3-parquet", "hw-local-csv.gz", "hw-local-parquet"]
KEYS += ["sqltos3-csv", "sqltos3-csv.gz", "dlt-parquet"]
PEERS = {"sqltos3-csv", "sqltos3-csv.gz", "dlt-parquet"}  # memory grows with the table
HW_GZ, SQL_GZ = "headwater csv.gz -> S3", "SqlToS3Operator csv.gz -> S3"
FLOOR = {"pg": "psql \\copy piped to gzip -1 (local file)", "mysql": "mysql --quick piped to gzip -1 (local file)"}
SQL_TO_S3 = """
import sys
from airflow.providers.amazon.aws.transfers.sql_to_s3 import SqlToS3Operator
key, gzip, conn = sys.argv[1], sys.argv[2] == "gzip", sys.argv[5]
op = SqlToS3Operator(task_id="export", query=sys.argv[3], s3_bucket=sys.argv[4], s3_key=key, sql_conn_id=conn,
                     aws_conn_id="bench_aws", file_format="csv", replace=True,
                     df_kwargs={"index": False, **({"compression": "gzip"} if gzip else {})})
op.execute(context={})
"""
DLT = """
import os, sys
import dlt
from dlt.sources.sql_database import sql_table
url, name, out = sys.argv[1:4]
os.environ["DESTINATION__FILESYSTEM__BUCKET_URL"] = "file://" + out
os.environ["RUNTIME__LOG_LEVEL"] = "ERROR"
source = sql_table(credentials=url, table=name, backend="connectorx", chunk_size=100_000)
pipeline = dlt.pipeline(
    pipeline_name="bench", destination="filesystem", dataset_name="bench", pipelines_dir=out + "_state"
)
pipeline.run(source, loader_file_format="parquet")
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


@dataclass(frozen=True)
class Source:
    key: str
    name: str
    hw: list[str]  # headwater export --source ... --query/--table ...
    query: str
    conn: dict[str, object]  # the Airflow Connection SqlToS3Operator reads
    dlt_url: str
    dlt_table: str


SOURCES = {
    "pg": Source(
        "pg", "PostgreSQL", ["--source", PG_URL, "--query", "select * from pgbench_accounts"],
        "select * from pgbench_accounts",
        {"conn_type": "postgres", "host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": DB},
        f"postgresql+psycopg://postgres@127.0.0.1:5432/{DB}", "pgbench_accounts",
    ),
    "mysql": Source(
        "mysql", "MariaDB", ["--source", MYSQL_URL, "--table", f"test.{MYSQL_TABLE}"],
        f"select * from {MYSQL_TABLE}",
        {"conn_type": "mysql", "host": "127.0.0.1", "port": 3306, "login": "root", "schema": "test",
         "extra": {"client": "mysql-connector-python"}},
        "mysql+pymysql://root@127.0.0.1:3306/test", MYSQL_TABLE,
    ),
}  # fmt: skip


@dataclass
class Run:
    source: str
    variant: str
    scale: int
    rows: int
    seconds: float = 0.0  # the best of the runs
    rss: int = 0  # bytes, peak summed over the process tree, the highest of the runs
    output: int = 0  # bytes written
    runs: int = 0
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and self.runs > 0


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
        return int(s.getsockname()[1])


def prepare(source: str, scale: int) -> None:
    """The source table with scale * 100,000 rows (re-made only when its row count differs)."""
    rows, started = scale * 100_000, time.perf_counter()
    if source == "pg":
        if not sh("psql", *PG, "-d", "postgres", "-tAc", f"select 1 from pg_database where datname = '{DB}'"):
            sh("createdb", *PG, DB)
        if sh("psql", *PG, "-d", DB, "-tAc", "select count(*) from pgbench_accounts", check=False) != str(rows):
            print(f"pgbench -i -s {scale} ...", flush=True)
            sh("pgbench", "-i", "-s", str(scale), "-q", *PG, DB)
        # Let the load's writes settle (the first reader after a bulk load otherwise competes with the checkpoint).
        sh("psql", *PG, "-d", DB, "-c", "checkpoint", "-c", "select count(*) from pgbench_accounts")
    else:
        count = sh(*MYSQL, "-N", "-e", f"select count(*) from {MYSQL_TABLE}", check=False)
        if count != str(rows):
            print(f"MariaDB {MYSQL_TABLE} with {rows:,} rows ...", flush=True)
            sql = (
                f"DROP TABLE IF EXISTS {MYSQL_TABLE}; CREATE TABLE {MYSQL_TABLE} (aid INT NOT NULL PRIMARY KEY,"
                " bid INT, abalance INT, filler CHAR(84)) ENGINE=InnoDB; SET unique_checks = 0;"
                f" INSERT INTO {MYSQL_TABLE} SELECT seq, (seq - 1) DIV 100000 + 1, 0, REPEAT(' ', 84)"
                f" FROM seq_1_to_{rows};"
            )
            subprocess.run([*MYSQL, "-e", sql], check=True)
    print(f"{SOURCES[source].name} table of {rows:,} rows ready in {time.perf_counter() - started:.0f} s", flush=True)


class Bench:
    def __init__(self, work: Path, port: int) -> None:
        self.work = work
        self.endpoint = f"http://127.0.0.1:{port}"
        keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
        self.s3 = boto3.client("s3", endpoint_url=self.endpoint, **keys)
        self.s3.create_bucket(Bucket=BUCKET)
        extra = {"endpoint_url": self.endpoint, "region_name": "us-east-1"}
        aws = {"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra}
        self.env = os.environ | {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AIRFLOW_HOME": str(work / "airflow"),
            "HEADWATER_HOME": str(work / "headwater"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
            "AIRFLOW_CONN_BENCH_AWS": json.dumps(aws),
            "PYTHONWARNINGS": "ignore",
        }
        for src in SOURCES.values():
            self.env[f"AIRFLOW_CONN_BENCH_{src.key.upper()}"] = json.dumps(src.conn)
        self.csv_bytes: dict[tuple[str, int], int] = {}  # plain CSV size per source and scale (the floor's)
        self.floors: list[Run] = []

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

    def local_output(self, path: Path, keep: bool = False) -> int:
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path] * path.exists()
        size = sum(p.stat().st_size for p in files)
        if not size:
            raise RuntimeError(f"no output at {path}")
        if not keep:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        return size

    # --- variants ----------------------------------------------------------------------------------
    def variants(self, src: Source, n: int) -> dict[str, tuple[str, list[str], Callable[[], int]]]:
        """key: (label, command, check that returns the output bytes and removes it) for ``src`` at scale ``n``."""
        hw = [str(BIN / "headwater"), "export", *src.hw]
        py, out = str(BIN / "python"), self.work / "out"
        tag = f"{src.key}{n}"

        def hw_s3(fmt: str) -> tuple[list[str], Callable[[], int]]:
            prefix = f"hw/{tag}/{fmt.replace('.', '_')}"
            return [*hw, "--to", f"s3://{BUCKET}/{prefix}", "--format", fmt], lambda: self.s3_output(prefix + "/", True)

        def sql_s3(gzip: str) -> tuple[list[str], Callable[[], int]]:
            cmd = [py, "-c", SQL_TO_S3, f"sqltos3/{tag}/accounts.csv", gzip, src.query, BUCKET, f"bench_{src.key}"]
            return cmd, lambda: self.s3_output(f"sqltos3/{tag}/", False)

        gz, folder, parquet, dlt = (
            out / f"floor_{tag}.csv.gz",
            out / f"hw_{tag}",
            out / f"hwpq_{tag}",
            out / f"dlt_{tag}",
        )
        if src.key == "pg":
            floor = f"psql {' '.join(PG)} -d {DB} -v ON_ERROR_STOP=1 -c '\\copy ({src.query}) to stdout with csv'"
        else:
            floor = f"{' '.join(MYSQL)} --quick --batch -e '{src.query}'"
        variants = {
            "floor": (FLOOR[src.key], ["bash", "-o", "pipefail", "-c", f"{floor} | gzip -1 > {gz}"],
                      lambda: self.local_output(gz, keep=True)),
            "hw-s3-csv.gz": (HW_GZ, *hw_s3("csv.gz")),
            "hw-s3-csv.zst": ("headwater csv.zst -> S3", *hw_s3("csv.zst")),
            "hw-s3-parquet": ("headwater parquet -> S3", *hw_s3("parquet")),
            "hw-local-csv.gz": ("headwater csv.gz -> local folder",
                                [*hw, "--to", folder.as_uri(), "--format", "csv.gz"],
                                lambda: self.local_output(folder, keep=src.key == "pg")),
            "hw-local-parquet": ("headwater parquet -> local folder",
                                 [*hw, "--to", parquet.as_uri(), "--format", "parquet"],
                                 lambda: self.local_output(parquet)),
            "sqltos3-csv": ("SqlToS3Operator csv -> S3", *sql_s3("plain")),
            "sqltos3-csv.gz": (SQL_GZ, *sql_s3("gzip")),
            "dlt-parquet": ("dlt 1.31 (ConnectorX) parquet -> local folder",
                            [py, "-c", DLT, src.dlt_url, src.dlt_table, str(dlt)],
                            lambda: self.dlt_output(dlt)),
        }  # fmt: skip
        return variants

    def dlt_output(self, folder: Path) -> int:
        size = sum(p.stat().st_size for p in folder.rglob("*.parquet"))
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(str(folder) + "_state", ignore_errors=True)
        if not size:
            raise RuntimeError(f"no parquet under {folder}")
        return size

    def once(self, run: Run, key: str, cmd: list[str], output: Callable[[], int]) -> None:
        log = self.work / "logs" / f"{run.source}_{key}_{run.scale}.log"
        log.parent.mkdir(exist_ok=True)
        seconds, rss, code = measured(cmd, self.env, log)
        try:
            size = output()
        except Exception as exc:
            run.error = f"no output ({exc})"
            size = 0
        if code:
            run.error = f"failed (exit {code})"
        if run.error:
            tail = log.read_text(errors="replace").strip().splitlines()[-3:]
            print(f"  {run.variant}: {run.error}: " + " / ".join(tail)[:400], file=sys.stderr)
            return
        run.seconds = seconds if not run.runs else min(run.seconds, seconds)
        run.rss, run.output, run.runs = max(run.rss, rss), size, run.runs + 1

    def export(self, source: str, scale: int, keys: list[str], repeat: int, peer_max: int) -> list[Run]:
        (self.work / "out").mkdir(exist_ok=True)
        src = SOURCES[source]
        chosen = {
            key: spec
            for key, spec in self.variants(src, scale).items()
            if key in keys and not (key in PEERS and scale > peer_max) and not (key == "sqltos3-csv" and source != "pg")
        }
        runs = {key: Run(source, label, scale, scale * 100_000) for key, (label, _, _) in chosen.items()}
        for attempt in range(repeat):
            for key, (_, cmd, output) in chosen.items():
                if runs[key].error:
                    continue
                if key == "hw-local-csv.gz" and attempt:  # keep the first run's parts for the load section
                    shutil.rmtree(self.work / "out" / f"hw_{source}{scale}", ignore_errors=True)
                self.once(runs[key], key, cmd, output)
                if key == "floor" and runs[key].ok and (source, scale) not in self.csv_bytes:
                    gz = self.work / "out" / f"floor_{source}{scale}.csv.gz"
                    self.csv_bytes[source, scale] = int(sh("bash", "-c", f"gzip -dc {gz} | wc -c"))
        for run in runs.values():
            print(f"{src.name:10s} {run.variant:46s} scale {scale:4d}  " + "  ".join(self.cells(run)), flush=True)
        return list(runs.values())

    def cells(self, run: Run, with_output: bool = True) -> list[str]:
        if not run.ok:
            return [f"{run.rows:,}", run.error or "not run", "", "", "", "", *([""] * with_output)]
        csv_bytes = self.csv_bytes.get((run.source, run.scale))
        floor = next((r for r in self.floors if (r.source, r.scale) == (run.source, run.scale)), None)
        mbs = f"{csv_bytes / 1e6 / run.seconds:.1f}" if csv_bytes else "-"
        vs = f"{run.seconds / floor.seconds:.2f}x" if floor and floor.ok else "-"
        out = [f"{run.rows:,}", f"{run.seconds:.2f}", vs, mbs, f"{run.rss / 1e6:.0f}"]
        return out + ([f"{run.output / 1e6:.1f}" if run.output else "-"] if with_output else [])

    # --- loads -------------------------------------------------------------------------------------
    def staged(self, scale: int) -> str | None:
        """A copy of the local csv.gz export's manifest, aimed at bench.pgbench_accounts; None without one."""
        from headwater.lake import LocalLake
        from headwater.parts import Manifest, read_manifest

        found = sorted((self.work / "out" / f"hw_pg{scale}").glob("**/_manifest.json"))
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

    def load(self, scale: int, manifest_uri: str) -> list[Run]:
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
        runs = []
        for key, (label, cmd) in variants.items():
            sh("psql", *PG, "-d", DB, "-c", "drop schema if exists bench cascade; drop table if exists bench_copy")
            duck.unlink(missing_ok=True)
            target = {"psql-copy": "bench_copy", "pg": "bench.pgbench_accounts"}.get(key)
            run = Run("pg", label, scale, scale * 100_000)
            self.once(run, f"load_{key}", cmd, lambda t=target: self.check_rows(t, scale))
            print(f"load {label:46s} scale {scale:4d}  " + "  ".join(self.cells(run, False)), flush=True)
            runs.append(run)
        return runs


def targets(runs: list[Run]) -> list[str]:
    def get(source: str, label: str, scale: int = 20) -> Run | None:
        return next((r for r in runs if (r.source, r.variant, r.scale) == (source, label, scale) and r.ok), None)

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    missing = "**not measured** (a variant did not run at scale 20)"
    lines = []
    for source, goal in (("pg", 2.0), ("mysql", 1.5)):
        hw, sql, floor = get(source, HW_GZ), get(source, SQL_GZ), get(source, FLOOR[source])
        name = SOURCES[source].name
        if sql:
            speedup = sql.seconds / hw.seconds if hw else 0
            lines.append(
                f"- {name}, scale 20, headwater faster than SqlToS3Operator (csv.gz both): "
                + (f"{speedup:.1f}x" if speedup else missing)
            )
        ratio = hw.seconds / floor.seconds if hw and floor else 0
        for scale in sorted({r.scale for r in runs if r.source == source and r.scale > 20}):
            big, big_floor = get(source, HW_GZ, scale), get(source, FLOOR[source], scale)
            if big and big_floor:
                lines.append(
                    f"- {name}, scale {scale}, headwater csv.gz: {big.seconds / big_floor.seconds:.2f}x the floor"
                )
        lines.append(
            f"- {name}, scale 20, headwater csv.gz within {goal}x of its client piped to gzip -1: "
            + (f"{ratio:.2f}x its time, {verdict(ratio <= goal)}" if ratio else missing)
        )
    parquet = [r for r in runs if r.ok and r.variant.startswith("headwater parquet")]
    if parquet:
        worst = max(parquet, key=lambda r: r.rss)
        local = [r for r in parquet if "local" in r.variant]
        worst_local = max(local, key=lambda r: r.rss) if local else worst
        lines.append(
            f"- headwater Parquet peak RSS <= 150 MB: to a local folder at most {worst_local.rss / 1e6:.0f} MB "
            f"({SOURCES[worst_local.source].name}, scale {worst_local.scale}), {verdict(worst_local.rss <= 150e6)};"
            f" to S3 at most {worst.rss / 1e6:.0f} MB ({SOURCES[worst.source].name}, scale {worst.scale}:"
            " boto3 and its S3 client are about 40 MB of it)"
        )
    for source in SOURCES:
        mine = [r for r in runs if r.ok and r.source == source and r.variant.startswith("headwater")]
        scales = sorted({r.scale for r in mine})
        if len(scales) > 1:
            low = max((r.rss for r in mine if r.scale == scales[0]), default=0)
            high = max((r.rss for r in mine if r.scale == scales[-1]), default=0)
            lines.append(
                f"- {SOURCES[source].name}: headwater's highest peak {low / 1e6:.0f} MB at {scales[0] / 10:g}M rows,"
                f" {high / 1e6:.0f} MB at {scales[-1] / 10:g}M rows: {verdict(high <= low * 1.15)} (flat memory)"
            )
    return lines


def plot(runs: list[Run]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sources = [s for s in SOURCES.values() if any(r.source == s.key and r.ok for r in runs)]
    fig, axes = plt.subplots(len(sources), 2, figsize=(12, 4.5 * len(sources)), squeeze=False)
    for (left, right), source in zip(axes, sources, strict=True):
        mine = [r for r in runs if r.source == source.key and r.ok]
        for label in dict.fromkeys(r.variant for r in mine):
            points = sorted((r.rows / 1e6, r.seconds, r.rss / 1e6) for r in mine if r.variant == label)
            left.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=label)
            right.plot([p[0] for p in points], [p[2] for p in points], marker="o", label=label)
        for ax, ylabel in ((left, "best wall seconds"), (right, "peak RSS, MB (process tree, log scale)")):
            ax.set_xlabel("rows, millions")
            ax.set_ylabel(ylabel)
            ax.set_title(f"Exporting from {source.name}")
            ax.grid(alpha=0.3)
        right.set_yscale("log")
        right.legend(handles=[right.axhline(150, color="grey", linestyle="--", label="150 MB target")], fontsize=7)
        left.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(PNG, dpi=100)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", default="pg,mysql", help="of: pg, mysql")
    parser.add_argument("--scales", default="20,100", help="scales, comma-separated (100,000 rows each); 300 = 30M")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each variant, interleaved; the best is kept")
    parser.add_argument("--peer-max-scale", type=int, default=100, help="no SqlToS3Operator or dlt above this scale")
    parser.add_argument("--big-repeat", type=int, default=1, help="runs of each variant above --peer-max-scale")
    parser.add_argument("--quick", action="store_true", help="scale 1, one run each: a smoke run")
    parser.add_argument("--variants", default="", help=f"only these variants, of: {','.join(KEYS)}")
    parser.add_argument("--keep-tables", action="store_true", help="leave the source tables for the next run")
    args = parser.parse_args()
    scales = [1] if args.quick else [int(s) for s in args.scales.split(",")]
    repeat = 1 if args.quick else args.repeat
    sources = args.sources.split(",")
    keys = args.variants.split(",") if args.variants else KEYS
    if unknown := (set(keys) - set(KEYS)) | (set(sources) - set(SOURCES)):
        parser.error(f"unknown variants or sources: {', '.join(sorted(unknown))}")
    port = free_port()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    work = Path(tempfile.mkdtemp(prefix="headwater-export-bench-"))
    exports: list[Run] = []
    loads: list[Run] = []
    try:
        bench = Bench(work, port)
        for scale in scales:
            for source in sources:
                prepare(source, scale)
                times = repeat if scale <= args.peer_max_scale else min(repeat, args.big_repeat)
                runs = bench.export(source, scale, keys, times, args.peer_max_scale)
                bench.floors += [r for r in runs if r.variant == FLOOR[source]]
                exports += runs
                if source == "pg" and (manifest := bench.staged(scale)):
                    loads += bench.load(scale, manifest)
                shutil.rmtree(work / "out")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
        if "mysql" in sources and not args.keep_tables:
            subprocess.run([*MYSQL, "-e", f"DROP TABLE IF EXISTS {MYSQL_TABLE}"], check=False)
        if 300 in scales and not args.keep_tables:  # 30M rows of pgbench_accounts: 4 GB of disk
            subprocess.run(["dropdb", *PG, "--if-exists", DB], check=False)

    headers = [
        "source",
        "variant",
        "scale",
        "rows",
        "best wall s",
        "x the client",
        "CSV MB/s",
        "peak RSS MB",
        "output MB",
    ]
    rows = [[SOURCES[r.source].name, r.variant, r.scale, *bench.cells(r)] for r in exports]
    print("\n" + table(headers, rows))
    plot(exports)
    body = table(headers, rows) + "\n\n![export benchmark](export_benchmark.png)\n\nTargets:\n\n"
    body += "\n".join(targets(exports)) + (
        f"\n\nEach variant ran {repeat} time(s) (above scale {args.peer_max_scale}: {min(repeat, args.big_repeat)}),"
        " the variants interleaved, each run a fresh subprocess; wall time is"
        " the best run's, peak RSS the highest run's, summed over the whole process tree (the client, gzip and the"
        " bash that pipes them, for the floors), polled every 20 ms; MB = 10^6 bytes; the database server's own"
        ' memory is not counted. "x the client" divides by the floor: the database\'s own command-line client'
        " streaming text into `gzip -1` (note that `mysql --batch` cannot tell NULL from the string 'NULL', which"
        " headwater's CSV does). CSV MB/s is the table's plain CSV size (the floor's output) over the wall time."
        " S3 is a moto server on loopback in the benchmark process (its memory is not counted). SqlToS3Operator"
        " (amazon provider) reads with a postgres Connection and a mysql Connection (the MySQL provider's"
        " mysql-connector-python client); dlt reads with ConnectorX into Arrow and writes Parquet. Both hold the"
        f" whole result in memory, so they stop at scale {args.peer_max_scale}. pgbench's filler column is blank,"
        " so the data compresses far better than real tables. Wall time includes each interpreter's start and"
        " imports (Airflow's take a few seconds), as a task would pay them."
    )
    write_section("export", "Exporting a table to files", body, "python bench/export.py " + " ".join(sys.argv[1:]))
    if loads:
        headers = ["variant", "scale", "rows", "best wall s", "x the client", "CSV MB/s", "peak RSS MB"]
        rows = [[r.variant, r.scale, *bench.cells(r, False)] for r in loads]
        print("\n" + table(headers, rows))
        body = table(headers, rows) + (
            "\n\nLoading the csv.gz parts (a header each) of `headwater export --to file://...` from PostgreSQL at"
            " each scale. The psql row decompresses the same parts into one `\\copy` into a fresh table; the"
            " warehouse rows run `load(manifest, LocalLake, 'replace')` in a fresh interpreter (staging table,"
            " checksums, row count check, publish). DuckDB's file and the target table are dropped before each run."
            ' "x the client" compares with the export\'s floor, not with the psql load.'
        )
        write_section("load", "Loading exported parts into PostgreSQL and DuckDB", body, "python bench/export.py")


if __name__ == "__main__":
    main()
