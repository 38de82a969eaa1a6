"""Redshift as a source: it cannot stream a result out, so ``UNLOAD`` writes the parts to S3 in parallel.

Redshift's own manifest (``MANIFEST VERBOSE``: every file with its size, row count and the column
schema) is turned into a headwater manifest, with checksums computed as the parts are read once, so
the loaders treat UNLOAD output like any other export.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

from headwater.coltypes import ColumnType
from headwater.errors import LakeError, SourceError
from headwater.lake import S3Lake
from headwater.parts import ExportResult, Manifest, Part, claim_prefix
from headwater.signals import sigterm_deferred, sigterm_raises
from headwater.table import Column

log = logging.getLogger(__name__)

_FORMATS = {
    "csv.gz": "FORMAT AS CSV HEADER GZIP",
    "csv.zst": "FORMAT AS CSV HEADER ZSTD",
    "parquet": "FORMAT AS PARQUET",
}
_KINDS = {
    "smallint": "integer",
    "integer": "integer",
    "bigint": "integer",
    "boolean": "boolean",
    "date": "date",
    "timestamp without time zone": "timestamp",
    "timestamp with time zone": "timestamptz",
    "double precision": "double",
    "real": "double",
}


def unload_sql(
    query: str,
    part_prefix: str,
    fmt: str,
    *,
    iam_role: str | None = None,
    credentials: Mapping[str, str] | None = None,
    max_file_mb: int = 256,
) -> Any:
    """The UNLOAD statement; the query and credentials are quoted as literals (UNLOAD takes no bind parameters)."""
    from psycopg import sql

    if fmt not in _FORMATS:
        raise SourceError(f"redshift UNLOAD writes {', '.join(_FORMATS)}, not {fmt}")
    if iam_role:
        auth = sql.SQL("IAM_ROLE {}").format(sql.Literal(iam_role))
    elif credentials:
        auth = sql.SQL("ACCESS_KEY_ID {} SECRET_ACCESS_KEY {}").format(
            sql.Literal(credentials["access_key"]), sql.Literal(credentials["secret_key"])
        )
        if credentials.get("token"):
            auth = sql.SQL("{} SESSION_TOKEN {}").format(auth, sql.Literal(credentials["token"]))
    else:
        raise SourceError("redshift UNLOAD needs an IAM role or AWS credentials")
    return sql.SQL(
        "UNLOAD ({query}) TO {target} {auth} {format} MANIFEST VERBOSE ALLOWOVERWRITE PARALLEL ON MAXFILESIZE {size} MB"
    ).format(
        query=sql.Literal(query),
        target=sql.Literal(part_prefix),
        auth=auth,
        format=sql.SQL(_FORMATS[fmt]),
        size=sql.Literal(max_file_mb),
    )


def manifest_from_unload(
    lake: S3Lake,
    unload_manifest_uri: str,
    fmt: str,
    *,
    target: str = "",
    source: str = "",
    logical_date: str = "",
    run_id: str = "",
) -> Manifest:
    """A headwater manifest for the files Redshift's VERBOSE manifest lists (checksums computed here)."""
    try:
        data = json.loads(lake.read_bytes(unload_manifest_uri))
        entries = data["entries"]
        schema = data.get("schema", {}).get("elements", [])
    except (ValueError, KeyError) as exc:
        raise LakeError(f"{unload_manifest_uri}: not a Redshift UNLOAD manifest ({exc})") from None
    parts = []
    for entry in entries:
        digest = hashlib.sha256()
        size = 0
        with lake.open_read(entry["url"]) as body:
            while block := body.read(1 << 20):
                digest.update(block)
                size += len(block)
        parts.append(
            Part(uri=entry["url"], rows=int(entry["meta"]["record_count"]), bytes=size, sha256=digest.hexdigest())
        )
    columns = [Column(e["name"], _column_type(e.get("type", {}))) for e in schema]
    return Manifest(
        target=target,
        source=source,
        columns=[{"name": c.name, "type": c.type.to_json()} for c in columns],
        rows=sum(p.rows for p in parts),
        parts=parts,
        logical_date=logical_date,
        run_id=run_id,
        format=fmt,
    )


def _column_type(spec: Mapping[str, Any]) -> ColumnType:
    base = str(spec.get("base", "")).lower()
    if base in ("numeric", "decimal"):
        return ColumnType("numeric", min(int(spec.get("precision", 38)), 38), int(spec.get("scale", 0)))
    return ColumnType(_KINDS.get(base, "text"))


def unload_query_to_lake(
    conninfo: Mapping[str, Any],
    query: str,
    lake: S3Lake,
    prefix: str,
    *,
    fmt: str = "csv.gz",
    iam_role: str | None = None,
    credentials: Mapping[str, str] | None = None,
    target: str = "",
    logical_date: str = "",
    run_id: str = "",
) -> ExportResult:
    """Run UNLOAD into ``prefix``, then publish a headwater manifest beside Redshift's."""
    import psycopg

    started = time.monotonic()
    label = f"redshift {conninfo.get('host', '')}/{conninfo.get('dbname', '')}"
    with sigterm_raises():
        claim = claim_prefix(lake, prefix)
        try:
            statement = unload_sql(query, claim.part_prefix, fmt, iam_role=iam_role, credentials=credentials)
            try:
                with psycopg.connect(**{"connect_timeout": 10, "port": 5439, **conninfo}, autocommit=True) as conn:
                    conn.execute(statement)  # never logged: it carries credentials
            except psycopg.Error as exc:
                first = (str(exc).strip().splitlines() or ["?"])[0]
                raise SourceError(f"{label}: UNLOAD failed: {first}") from None
            unload_manifest = f"{claim.part_prefix}manifest"
            manifest = manifest_from_unload(
                lake,
                unload_manifest,
                fmt,
                target=target,
                source=label,
                logical_date=logical_date,
                run_id=run_id,
            )
            lake.delete([unload_manifest])  # converted; the next write here must not see it as foreign
            uri = claim.publish(manifest)
        except BaseException:
            with sigterm_deferred():
                claim.abandon()
            raise
    return ExportResult(
        uri,
        manifest.rows,
        len(manifest.parts),
        sum(p.bytes for p in manifest.parts),
        round(time.monotonic() - started, 3),
        manifest.typed_columns,
    )
