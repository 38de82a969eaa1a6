"""Metadata backup and restore on the real PostgreSQL: an Airflow metadata database migrated by Airflow,
backed up by the ``headwater_metadata_backup`` DAG (run by Airflow) into the lake, restored by
``headwater restore`` into an empty database, and compared table by table; secrets never in clear."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PG, service_missing
from tests.integration.test_end_to_end import run_dag

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
PASSWORD = "pw-Zq8#only-in-the-connection"
EXTRA_SECRET = "tok-9f3e-extra-secret"
VARIABLE_SECRET = "var-51b7-api-token"
CLEAR_PASSWORD = "clear-77c1-stored-unencrypted"
SECRETS = (PASSWORD, EXTRA_SECRET, VARIABLE_SECRET, CLEAR_PASSWORD)

POPULATE = f"""
import json
from airflow.models import Connection, Variable
from airflow.utils.session import create_session
with create_session() as session:
    session.add(Connection(conn_id="warehouse_pg", conn_type="postgres", host="db.internal", login="etl",
                           password={PASSWORD!r}, port=5432, extra=json.dumps({{"token": {EXTRA_SECRET!r}}})))
    session.add(Connection(conn_id="plain_http", conn_type="http", host="example.invalid"))
    Variable.set("api_token", {VARIABLE_SECRET!r}, session=session)
    Variable.set("settings", {{"days": 3}}, serialize_json=True, session=session)
"""


def _pg(dbname: str, **kwargs: Any) -> Any:
    import psycopg

    return psycopg.connect(**{**PG, "dbname": dbname}, **kwargs)


def _create_database(prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with _pg("test", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def _drop_database(name: str) -> None:
    with _pg("test", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def counts(dbname: str) -> dict[str, int]:
    from headwater.ops.metadata_backup import row_counts

    with _pg(dbname) as conn:
        return row_counts(conn)


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A PostgreSQL Airflow metadata DB, migrated by ``airflow db migrate`` and holding Connections and
    Variables (encrypted by Airflow with the key, and one of each stored in clear), plus event-log rows."""
    import psycopg
    from cryptography.fernet import Fernet

    try:
        _pg("test", connect_timeout=3).close()
    except psycopg.Error as exc:
        service_missing("PostgreSQL on 127.0.0.1:5432", str(exc).strip())
    if shutil.which("pg_dump") is None or shutil.which("pg_restore") is None:
        service_missing("pg_dump and pg_restore", "postgresql-client is not installed")
    key = Fernet.generate_key().decode()
    database = _create_database("hw_meta_src")
    home = tmp_path_factory.mktemp("meta_airflow")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{database}",
        "AIRFLOW__CORE__FERNET_KEY": key,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    try:
        for args in ([str(BIN / "airflow"), "db", "migrate"], [sys.executable, "-c", POPULATE]):
            done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, check=False)
            assert done.returncode == 0, done.stderr[-3000:]
        with _pg(database, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO connection (conn_id, conn_type, password, is_encrypted, is_extra_encrypted) "
                "VALUES ('legacy_clear', 'postgres', %s, false, false)",
                (CLEAR_PASSWORD,),
            )
            conn.execute("INSERT INTO variable (key, val, is_encrypted) VALUES ('legacy_var', 'plain', false)")
            conn.execute(
                "INSERT INTO log (dttm, event, dag_id) SELECT now() - g * interval '1 minute', 'e' || g, 'd' "
                "FROM generate_series(1, 1500) g"
            )
        yield {"database": database, "key": key, "env": env}
    finally:
        _drop_database(database)


def config(tmp_path: Path, **backup: Any) -> Path:
    (tmp_path / "a.csv").write_text("x\n1\n", encoding="utf-8")
    path = tmp_path / "pipelines.yaml"
    settings = {"conn_id": "hw_meta_source", "keep": 2, **backup}
    path.write_text(
        "pipelines:\n  p:\n    sheets: [{workbook: a.csv, table: raw.a}]\n"
        f"maintenance:\n  metadata_backup: {json.dumps(settings)}\n",
        encoding="utf-8",
    )
    return path


def backup_folders(hw_home: Path) -> list[Path]:
    root = hw_home / "lake" / "_backups" / "airflow_metadata"
    return sorted(p for p in root.iterdir() if (p / "_backup.json").exists()) if root.exists() else []


def headwater(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "headwater"), *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 1 and len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    return lines[0]


@pytest.fixture
def backed_up(
    source: dict[str, Any], airflow_db: Path, hw_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Three runs of the backup DAG through Airflow with keep 2; what the lake then holds."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_HW_META_SOURCE", f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{source['database']}"
    )
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", source["key"])
    path = config(tmp_path)
    for day in (5, 6, 7):
        run = run_dag("headwater_metadata_backup", datetime(2026, 1, day, tzinfo=UTC), monkeypatch, path)
        assert run.state == "success"
    env = {**os.environ, "HEADWATER_HOME": str(hw_home), "AIRFLOW__CORE__FERNET_KEY": source["key"]}
    env["HEADWATER_CONFIG"] = str(path)
    return {"folders": backup_folders(hw_home), "env": env, "config": path}


def test_backup_restores_every_table_and_airflow_reads_the_secrets(
    source: dict[str, Any], backed_up: dict[str, Any]
) -> None:
    folders = backed_up["folders"]
    assert len(folders) == 2  # keep: 2, after three backups
    manifest = json.loads((folders[-1] / "_backup.json").read_text())
    names = sorted(o["name"] for o in manifest["objects"])
    assert names == ["connections.json.gz", "metadata.dump", "variables.json.gz"]
    assert manifest["tables"] == counts(source["database"])  # one snapshot, nothing wrote since
    assert manifest["tables"]["public.log"] >= 1500 and manifest["tables"]["public.connection"] == 3

    listed = headwater("backups", "--output", "json", env=backed_up["env"])
    assert listed.returncode == 0, listed.stderr
    assert [b["name"] for b in json.loads(listed.stdout)] == [f.name for f in folders]

    target = _create_database("hw_meta_dst")
    try:
        url = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{target}"
        done = headwater("restore", "latest", "--to", url, "--output", "json", env=backed_up["env"])
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["backup"].endswith(folders[-1].name)
        restored, original = counts(target), counts(source["database"])
        assert restored == original and len(restored) > 50  # the row count of every metadata table

        airflow_env = {
            **source["env"],
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{PG['user']}@{PG['host']}:{PG['port']}/{target}",
        }
        for conn_id, password in (("warehouse_pg", PASSWORD), ("legacy_clear", CLEAR_PASSWORD)):
            got = subprocess.run(
                [str(BIN / "airflow"), "connections", "get", conn_id, "-o", "json"],
                env=airflow_env, capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert got.returncode == 0, got.stderr[-2000:]
            assert json.loads(got.stdout)[0]["password"] == password
        got = subprocess.run(
            [str(BIN / "airflow"), "variables", "get", "api_token"],
            env=airflow_env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert got.stdout.strip() == VARIABLE_SECRET, got.stderr[-2000:]
        with _pg(target) as conn:  # a new Connection gets a fresh id after the restored ones
            conn.execute(
                "INSERT INTO connection (conn_id, conn_type, is_encrypted, is_extra_encrypted) "
                "VALUES ('after_restore', 'http', false, false)"
            )
            assert conn.execute("SELECT max(id) FROM connection").fetchone()[0] == 4

        refused = headwater("restore", "latest", "--to", url, env=backed_up["env"])  # no longer empty
        assert "is not empty" in one_error_line(refused)
        assert counts(target)["public.connection"] == 4
    finally:
        _drop_database(target)


def test_no_secret_is_in_clear_in_any_backup_object(backed_up: dict[str, Any]) -> None:
    for folder in backed_up["folders"]:
        texts = [(folder / "_backup.json").read_bytes()]
        texts += [gzip.decompress((folder / n).read_bytes()) for n in ("connections.json.gz", "variables.json.gz")]
        as_sql = subprocess.run(
            ["pg_restore", "--file=-", str(folder / "metadata.dump")], capture_output=True, timeout=120, check=True
        )
        texts.append(as_sql.stdout)
        assert b"CREATE TABLE public.connection" in as_sql.stdout  # the tables are there, not their rows
        for text in texts:
            for secret in SECRETS:
                assert secret.encode() not in text


def test_a_damaged_object_or_a_wrong_key_is_refused_before_the_target_is_touched(
    backed_up: dict[str, Any],
) -> None:
    from cryptography.fernet import Fernet

    target = _create_database("hw_meta_dst")
    try:
        url = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{target}"
        newest = backed_up["folders"][-1].name
        wrong_key = {**backed_up["env"], "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode()}
        assert "cannot decrypt" in one_error_line(headwater("restore", newest, "--to", url, env=wrong_key))
        no_key = {k: v for k, v in backed_up["env"].items() if k != "AIRFLOW__CORE__FERNET_KEY"}
        no_key["AIRFLOW__CORE__FERNET_KEY"] = ""
        assert "fernet_key" in one_error_line(headwater("restore", newest, "--to", url, env=no_key))
        missing = headwater("restore", "20200101T000000Z-abcdef", "--to", url, env=backed_up["env"])
        assert "no backup '20200101T000000Z-abcdef'" in one_error_line(missing)

        dump = backed_up["folders"][-1] / "metadata.dump"
        data = bytearray(dump.read_bytes())
        data[len(data) // 2] ^= 0xFF
        dump.write_bytes(bytes(data))
        damaged = one_error_line(headwater("restore", newest, "--to", url, env=backed_up["env"]))
        assert "metadata.dump" in damaged and "damaged, nothing was restored" in damaged
        assert counts(target) == {}
    finally:
        _drop_database(target)


def test_secrets_left_out_and_a_clear_secret_without_a_key(
    source: dict[str, Any], hw_home: Path, tmp_path: Path
) -> None:
    from headwater.lake import LocalLake
    from headwater.ops.backup_manifest import BackupError, list_backups
    from headwater.ops.metadata_backup import backup_metadata

    conninfo = {**PG, "dbname": source["database"]}
    lake = LocalLake(tmp_path / "lake")
    prefix = f"{lake.url}/_backups/m"
    with pytest.raises(BackupError, match=r"connection rows legacy_clear hold secrets in clear"):
        backup_metadata(conninfo, lake, prefix, keep=3, cipher=None)
    assert lake.list_uris(prefix) == []  # the failed attempt removed what it wrote

    folder, manifest, _ = backup_metadata(conninfo, lake, prefix, keep=3, secrets="omit")
    written = tmp_path / "lake" / folder.split("/lake/")[1] / "connections.json.gz"
    rows = json.loads(gzip.decompress(written.read_bytes()))
    at = rows["columns"].index("password")
    assert {r[rows["columns"].index("conn_id")]: r[at] for r in rows["rows"]} == {
        "warehouse_pg": None, "plain_http": None, "legacy_clear": None,
    }  # fmt: skip
    assert [b.uri for b in list_backups(lake, prefix)] == [folder] and manifest.secrets == "omit"


def test_pruning_removes_only_what_headwater_wrote(tmp_path: Path) -> None:
    from headwater.lake import LocalLake
    from headwater.ops.backup_manifest import ATTEMPT, MANIFEST, BackupManifest, BackupObject, prune_backups

    lake = LocalLake(tmp_path)
    root = tmp_path / "b"
    for index in range(3):
        folder = root / f"2026010{index + 1}T000000Z-00000{index}"
        folder.mkdir(parents=True)
        (folder / "metadata.dump").write_bytes(b"dump")
        (folder / "notes.txt").write_text("someone else's")  # not in the manifest: stays
        made = BackupManifest("h:5432/db", "15", "public", None, "encrypt", [BackupObject("metadata.dump", 4, "x")], {})
        made.created_at = f"2026-01-0{index + 1}T00:00:00+00:00"
        (folder / MANIFEST).write_text(made.to_json())
    dead = root / "20251201T000000Z-dead00"  # an attempt that died two days ago
    dead.mkdir()
    (dead / "metadata.dump").write_bytes(b"partial")
    started = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    (dead / ATTEMPT).write_text(json.dumps({"started_at": started}))
    live = root / "20261126T000000Z-11fe00"  # one running now
    live.mkdir()
    (live / "metadata.dump").write_bytes(b"partial")
    (live / ATTEMPT).write_text(json.dumps({"started_at": datetime.now(UTC).isoformat()}))
    foreign = root / "20200101T000000Z-abcdef"  # looks like a backup, has no headwater manifest or marker
    foreign.mkdir()
    (foreign / "metadata.dump").write_bytes(b"theirs")

    removed = prune_backups(lake, lake.url + "/b", keep=1)
    assert sorted(u.rsplit("/", 1)[1] for u in removed) == [
        "20251201T000000Z-dead00", "20260101T000000Z-000000", "20260102T000000Z-000001",
    ]  # fmt: skip
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    assert left == [
        "20200101T000000Z-abcdef/metadata.dump",
        "20260101T000000Z-000000/notes.txt",
        "20260102T000000Z-000001/notes.txt",
        "20260103T000000Z-000002/_backup.json",
        "20260103T000000Z-000002/metadata.dump",
        "20260103T000000Z-000002/notes.txt",
        f"20261126T000000Z-11fe00/{ATTEMPT}",
        "20261126T000000Z-11fe00/metadata.dump",
    ]


def test_the_metadata_database_url_must_be_postgresql() -> None:
    from headwater.errors import ConnectionConfigError
    from headwater.operators.maintenance import conninfo_from_sqlalchemy_url

    info = conninfo_from_sqlalchemy_url("postgresql+psycopg2://airflow:p%40ss@db.internal:6543/meta?sslmode=require")
    assert info == {"host": "db.internal", "port": 6543, "user": "airflow", "password": "p@ss", "dbname": "meta",
                    "sslmode": "require"}  # fmt: skip
    with pytest.raises(ConnectionConfigError, match="metadata database is sqlite, and pg_dump backs up PostgreSQL"):
        conninfo_from_sqlalchemy_url("sqlite:////tmp/airflow.db")
    with pytest.raises(ConnectionConfigError, match="not a database URL") as caught:
        conninfo_from_sqlalchemy_url("postgres ql://u:secret-pw@h/db")
    assert "secret-pw" not in str(caught.value)


def test_backups_in_an_s3_lake_are_kept_pruned_and_restored(source: dict[str, Any], s3: tuple[Any, str]) -> None:
    from headwater.lake import S3Lake
    from headwater.ops.backup_manifest import find_backup, list_backups
    from headwater.ops.metadata_backup import backup_metadata, fernet_from_key
    from headwater.ops.metadata_restore import restore_metadata

    client, bucket = s3
    client.put_object(Bucket=bucket, Key="lake/_backups/m/README.txt", Body=b"not headwater's")
    lake = S3Lake(client, f"s3://{bucket}/lake")
    prefix = f"s3://{bucket}/lake/_backups/m"
    cipher = fernet_from_key(source["key"])
    conninfo = {**PG, "dbname": source["database"]}
    made = [backup_metadata(conninfo, lake, prefix, keep=1, cipher=cipher)[0] for _ in range(2)]
    assert [b.uri for b in list_backups(lake, prefix)] == made[1:]
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys[-1] == "lake/_backups/m/README.txt" and len(keys) == 5  # one backup of four objects, and theirs
    target = _create_database("hw_meta_dst")
    try:
        report = restore_metadata(lake, find_backup(lake, prefix, "latest"), {**PG, "dbname": target}, cipher=cipher)
        assert report.tables == counts(source["database"])
    finally:
        _drop_database(target)
