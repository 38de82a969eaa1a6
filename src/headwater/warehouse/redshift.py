"""Amazon Redshift: ``COPY`` from S3 driven by an exact manifest, so no stray object under the prefix loads.

Credentials for COPY come from the Connection (an IAM role ARN, or AWS keys) and are quoted into the
statement in memory only; the statement is never logged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from headwater.coltypes import ColumnType
from headwater.errors import LakeError, WarehouseError
from headwater.identifiers import TableName, quote
from headwater.lake import Lake, S3Lake
from headwater.parts import Manifest
from headwater.warehouse.postgres import PostgresWarehouse

COPY_MANIFEST_NAME = "_redshift_copy.manifest"
_CSV_OPTIONS = "IGNOREHEADER 1 EMPTYASNULL DATEFORMAT 'auto' TIMEFORMAT 'auto'"
_COPY_FORMATS = {
    "csv.gz": f"FORMAT AS CSV GZIP {_CSV_OPTIONS}",
    "csv.zst": f"FORMAT AS CSV ZSTD {_CSV_OPTIONS}",
    "csv": f"FORMAT AS CSV {_CSV_OPTIONS}",
    "parquet": "FORMAT AS PARQUET",
}


class RedshiftWarehouse(PostgresWarehouse):
    dialect = "redshift"
    row_order = None  # no ctid: errors give counts, not row numbers
    unbounded_numeric = False

    def __init__(
        self,
        conninfo: Mapping[str, Any],
        *,
        iam_role: str | None = None,
        aws_credentials: Mapping[str, str] | None = None,
        region: str | None = None,
    ) -> None:
        super().__init__({"port": 5439, **conninfo})
        if not iam_role and not aws_credentials:
            raise WarehouseError("redshift: COPY needs an IAM role (extra 'iam_role') or AWS credentials")
        self.iam_role = iam_role
        self.aws_credentials = dict(aws_credentials or {})
        self.region = region

    def type_sql(self, ctype: ColumnType) -> str:
        if ctype.kind == "text":
            return "VARCHAR(65535)"
        return super().type_sql(ctype)

    def copy_manifest(self, manifest: Manifest) -> str:
        """The Redshift manifest (``entries`` with ``mandatory`` and ``content_length``) for the parts."""
        entries = [{"url": p.uri, "mandatory": True, "meta": {"content_length": p.bytes}} for p in manifest.parts]
        return json.dumps({"entries": entries})

    def copy_sql(self, staging: TableName, columns: list[str], manifest_uri: str, fmt: str = "csv.gz") -> Any:
        """The COPY statement, composed with psycopg's literal quoting (COPY takes no bind parameters)."""
        from psycopg import sql

        if self.iam_role:
            auth = sql.SQL("IAM_ROLE {}").format(sql.Literal(self.iam_role))
        else:
            creds = self.aws_credentials
            auth = sql.SQL("ACCESS_KEY_ID {} SECRET_ACCESS_KEY {}").format(
                sql.Literal(creds["access_key"]), sql.Literal(creds["secret_key"])
            )
            if creds.get("token"):
                auth = sql.SQL("{} SESSION_TOKEN {}").format(auth, sql.Literal(creds["token"]))
        region = sql.SQL(" REGION {}").format(sql.Literal(self.region)) if self.region else sql.SQL("")
        return sql.SQL(
            "COPY {table} ({columns}) FROM {manifest} {auth}{region} MANIFEST {format} COMPUPDATE OFF STATUPDATE OFF"
        ).format(
            table=sql.SQL(staging.sql),
            columns=sql.SQL(", ".join(quote(c) for c in columns)),
            manifest=sql.Literal(manifest_uri),
            auth=auth,
            region=region,
            format=sql.SQL(_COPY_FORMATS[fmt]),
        )

    def _bulk_copy(
        self, conn: Any, staging: TableName, manifest: Manifest, lake: Lake, types: dict[str, ColumnType]
    ) -> int:
        if not isinstance(lake, S3Lake):
            raise LakeError("redshift loads only from an s3:// lake; set lake_url to an S3 location")
        manifest_uri = manifest.parts[0].uri.rsplit("/", 1)[0] + "/" + COPY_MANIFEST_NAME
        lake.write_bytes(manifest_uri, self.copy_manifest(manifest).encode())
        with conn.cursor() as cur:
            cur.execute(self.copy_sql(staging, [c["name"] for c in manifest.columns], manifest_uri, manifest.format))
            cur.execute("SELECT pg_last_copy_count()")
            row = cur.fetchone()
        return int(row[0]) if row else 0
