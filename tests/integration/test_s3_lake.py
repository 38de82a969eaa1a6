"""The S3 lake over real HTTP (moto's server on loopback), and loading from it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from headwater.errors import LakeError, SourceError, WarehouseError
from headwater.identifiers import TableName
from headwater.lake import S3Lake
from headwater.warehouse.duckdb import DuckDBWarehouse
from headwater.warehouse.postgres import PostgresWarehouse
from headwater.warehouse.redshift import RedshiftWarehouse
from tests.integration.helpers import stage

pytestmark = pytest.mark.integration

ROWS = [[str(i), f"name {i} 이름", f"{i}.25"] for i in range(1, 26)]


def test_parts_and_manifest_round_trip(s3: tuple[Any, str]) -> None:
    client, bucket = s3
    lake = S3Lake(client, f"s3://{bucket}/lake")
    manifest = stage(lake, TableName("raw", "t"), ROWS, rows_per_part=10)
    raw_keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
    keys = [re.sub(r"part-[0-9a-f]{12}-", "part-", k) for k in raw_keys]
    assert keys == [
        f"lake/raw/t/2026-01-05/run1/{n}"
        for n in ("_manifest.json", "part-00000.csv.gz", "part-00001.csv.gz", "part-00002.csv.gz")
    ]
    assert manifest.rows == 25 and [p.rows for p in manifest.parts] == [10, 10, 5]
    assert [p.uri for p in manifest.parts] == [f"s3://{bucket}/{k}" for k in raw_keys if "/part-" in k]


def test_rerun_clears_stale_objects(s3: tuple[Any, str]) -> None:
    client, bucket = s3
    lake = S3Lake(client, f"s3://{bucket}/lake")
    stage(lake, TableName("raw", "t"), ROWS, rows_per_part=5)
    stage(lake, TableName("raw", "t"), ROWS[:3], rows_per_part=5)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert len(keys) == 2


def test_load_postgres_and_duckdb_from_s3(
    s3: tuple[Any, str], pg_conninfo: dict[str, Any], pg_schema: str, tmp_path: Path
) -> None:
    client, bucket = s3
    lake = S3Lake(client, f"s3://{bucket}/lake")
    for warehouse, target in (
        (PostgresWarehouse(pg_conninfo), TableName(pg_schema, "t")),
        (DuckDBWarehouse(tmp_path / "w.duckdb"), TableName("raw", "t")),
    ):
        manifest = stage(lake, target, ROWS, rows_per_part=7)
        result = warehouse.load(manifest, lake, "replace")
        assert result.table_rows == 25


def test_missing_bucket_is_a_lake_error(s3: tuple[Any, str]) -> None:
    client, _ = s3
    lake = S3Lake(client, "s3://no-such-bucket-hw/lake")
    with pytest.raises(LakeError, match="no-such-bucket-hw"):
        lake.read_bytes("s3://no-such-bucket-hw/lake/x")


def test_redshift_copy_uses_an_exact_manifest(s3: tuple[Any, str]) -> None:
    """Redshift itself is not available here: check the manifest it would read and the COPY it would run."""
    import json

    from psycopg import sql

    client, bucket = s3
    lake = S3Lake(client, f"s3://{bucket}/lake")
    manifest = stage(lake, TableName("raw", "t"), ROWS, rows_per_part=10)
    # An unrelated object under the same prefix must not be loaded.
    client.put_object(Bucket=bucket, Key="lake/raw/t/2026-01-05/run1/stray.csv.gz", Body=b"junk")
    redshift = RedshiftWarehouse({"host": "example"}, iam_role="arn:aws:iam::123:role/copy")
    entries = json.loads(redshift.copy_manifest(manifest))["entries"]
    assert [e["url"] for e in entries] == [p.uri for p in manifest.parts]
    assert [(e["mandatory"], e["meta"]["content_length"]) for e in entries] == [(True, p.bytes) for p in manifest.parts]
    # The whole statements, against Redshift's documented COPY syntax: table (columns), FROM the manifest,
    # authorization, REGION, MANIFEST, then the format and its parameters.
    statement = redshift.copy_sql(TableName("raw", "_hw_stage_x"), ["id", "name"], "s3://b/m.manifest")
    text = statement.as_string(None) if isinstance(statement, sql.Composable) else str(statement)
    assert text == (
        'COPY "raw"."_hw_stage_x" ("id", "name") FROM \'s3://b/m.manifest\' IAM_ROLE \'arn:aws:iam::123:role/copy\''
        " MANIFEST FORMAT AS CSV GZIP IGNOREHEADER 1 EMPTYASNULL DATEFORMAT 'auto' TIMEFORMAT 'auto'"
        " COMPUPDATE OFF STATUPDATE OFF"
    )
    keyed = RedshiftWarehouse(
        {"host": "example"},
        aws_credentials={"access_key": "AK", "secret_key": "S'K", "token": "TOK"},
        region="eu-west-1",
    )
    keys = "ACCESS_KEY_ID 'AK' SECRET_ACCESS_KEY 'S''K' SESSION_TOKEN 'TOK' REGION 'eu-west-1'"  # quoted, never raw
    assert keyed.copy_sql(TableName("raw", "s"), ["id"], "s3://b/m", "parquet").as_string(None) == (
        f'COPY "raw"."s" ("id") FROM \'s3://b/m\' {keys} MANIFEST FORMAT AS PARQUET COMPUPDATE OFF STATUPDATE OFF'
    )
    assert keyed.copy_sql(TableName("raw", "s"), ["id"], "s3://b/m", "csv.zst").as_string(None) == (
        f'COPY "raw"."s" ("id") FROM \'s3://b/m\' {keys} MANIFEST FORMAT AS CSV ZSTD IGNOREHEADER 1'
        " EMPTYASNULL DATEFORMAT 'auto' TIMEFORMAT 'auto' COMPUPDATE OFF STATUPDATE OFF"
    )
    with pytest.raises(WarehouseError, match="redshift: COPY needs an IAM role"):
        RedshiftWarehouse({"host": "example"})


def test_redshift_unload_statement_and_manifest_conversion(s3: tuple[Any, str]) -> None:
    """No Redshift here: check the UNLOAD it would run, and that its VERBOSE manifest becomes ours."""
    import gzip
    import json

    from headwater.sources.redshift_unload import manifest_from_unload, unload_sql

    text = unload_sql(
        "select * from sales where note = 'it''s'", "s3://b/x/part-", "csv.gz", iam_role="arn:aws:iam::1:role/r"
    ).as_string(None)
    assert text == (  # Redshift's UNLOAD: ('query') TO 'prefix' authorization, then the options
        "UNLOAD ('select * from sales where note = ''it''''s''') TO 's3://b/x/part-' IAM_ROLE 'arn:aws:iam::1:role/r'"
        " FORMAT AS CSV HEADER GZIP MANIFEST VERBOSE ALLOWOVERWRITE PARALLEL ON MAXFILESIZE 256 MB"
    )
    keyed = unload_sql(
        "select 1", "s3://b/x/part-", "parquet", credentials={"access_key": "AK", "secret_key": "SK", "token": "T"}
    ).as_string(None)
    assert keyed == (
        "UNLOAD ('select 1') TO 's3://b/x/part-' ACCESS_KEY_ID 'AK' SECRET_ACCESS_KEY 'SK' SESSION_TOKEN 'T'"
        " FORMAT AS PARQUET MANIFEST VERBOSE ALLOWOVERWRITE PARALLEL ON MAXFILESIZE 256 MB"
    )
    zst = unload_sql("select 1", "s3://b/p-", "csv.zst", iam_role="r").as_string(None)
    assert " FORMAT AS CSV HEADER ZSTD MANIFEST VERBOSE " in zst
    with pytest.raises(SourceError, match="redshift UNLOAD writes csv.gz, csv.zst, parquet, not csv"):
        unload_sql("select 1", "s3://b/p-", "csv", iam_role="r")
    with pytest.raises(SourceError, match="redshift UNLOAD needs an IAM role or AWS credentials"):
        unload_sql("select 1", "s3://b/p-", "csv.gz")
    client, bucket = s3
    lake = S3Lake(client, f"s3://{bucket}/lake")
    bodies = [gzip.compress(b"id,name\n1,a\n2,b\n"), gzip.compress(b"id,name\n3,c\n")]
    entries = []
    for i, body in enumerate(bodies):
        key = f"lake/u/part-000{i}_part_00.gz"
        client.put_object(Bucket=bucket, Key=key, Body=body)
        entries.append({"url": f"s3://{bucket}/{key}", "meta": {"content_length": len(body), "record_count": 2 - i}})
    schema = {
        "elements": [
            {"name": "id", "type": {"base": "integer"}},
            {"name": "name", "type": {"base": "character varying", "max_length": 10}},
        ]
    }
    client.put_object(
        Bucket=bucket, Key="lake/u/part-manifest", Body=json.dumps({"entries": entries, "schema": schema}).encode()
    )
    manifest = manifest_from_unload(lake, f"s3://{bucket}/lake/u/part-manifest", "csv.gz", target="raw.t")
    assert manifest.rows == 3 and [p.rows for p in manifest.parts] == [2, 1]
    assert manifest.columns == [{"name": "id", "type": "integer"}, {"name": "name", "type": "text"}]
