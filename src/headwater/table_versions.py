"""Which warehouse tables changed, decided from content, never from the clock.

Every load records, in the lake, the content hash of the manifest it published and the table's
resulting *version*: a replace or upsert of the same content as the table's last load, or a rerun of an
append batch with the same content, leaves the version as it was; anything else moves it. A transform
remembers the versions it last built from, so a later run can be skipped when none of them moved.

    <lake>/_loads/<warehouse>/tables/<schema>.<table>.json     the last load of each table
    <lake>/_loads/<warehouse>/consumers/<pipeline>.json         what a transform last built from
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from headwater.errors import LakeError
from headwater.lake import Lake, read_json_object, slug
from headwater.parts.manifest import Manifest


def content_sha256(manifest: Manifest) -> str:
    """A hash of what a manifest published: its columns and every part's checksum, in part order.

    Equal hashes mean equal data. Part files are written deterministically (gzip without a timestamp),
    so the same rows in the same order give the same hash; a source returning rows in another order
    gives another hash, which only costs an unneeded rebuild, never a missed one.
    """
    parts = sorted(manifest.parts, key=lambda p: p.uri.rsplit("/", 1)[-1])
    payload = {
        "columns": manifest.columns,
        "format": manifest.format,
        "parts": [[p.rows, p.sha256] for p in parts],
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass
class LoadRecord:
    """The last load of one table: what it published and the table's version after it."""

    table: str
    method: str
    content_sha256: str
    rows: int
    logical_date: str
    run_id: str
    dag_id: str
    version: str
    changed: bool
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())


def next_version(
    previous: LoadRecord | None, method: str, content: str, rows: int, logical_date: str
) -> tuple[str, bool]:
    """The table's version after this load, and whether the load changed the table."""
    if previous is not None:
        same = previous.content_sha256 == content
        if method == "replace" and same:
            return previous.version, False
        if method == "upsert" and (rows == 0 or (same and previous.method == "upsert")):
            return previous.version, False
        if method == "append" and same and previous.method == "append" and previous.logical_date == logical_date:
            return previous.version, False  # the same batch loaded again: it replaced itself
    base = previous.version if previous else ""
    digest = hashlib.sha256(f"{base}|{method}|{logical_date}|{content}".encode()).hexdigest()
    return digest[:20], True


def _root(lake: Lake, warehouse: str) -> str:
    return f"{lake.url.rstrip('/')}/_loads/{slug(warehouse)}"


def record_uri(lake: Lake, warehouse: str, table: str) -> str:
    return f"{_root(lake, warehouse)}/tables/{table.lower()}.json"


def consumer_uri(lake: Lake, warehouse: str, consumer: str) -> str:
    return f"{_root(lake, warehouse)}/consumers/{slug(consumer)}.json"


def read_record(lake: Lake, warehouse: str, table: str) -> LoadRecord | None:
    uri = record_uri(lake, warehouse, table)
    data = read_json_object(lake, uri)
    if data is None:
        return None
    try:
        return LoadRecord(**data)
    except TypeError as exc:
        raise LakeError(f"{uri}: not a headwater load record ({exc})") from None


def record_load(
    lake: Lake, warehouse: str, manifest: Manifest, method: str, *, logical_date: str, run_id: str, dag_id: str
) -> LoadRecord:
    """After a load committed: record its content hash and the table's new version."""
    previous = read_record(lake, warehouse, manifest.target)
    content = content_sha256(manifest)
    version, changed = next_version(previous, method, content, manifest.rows, logical_date)
    record = LoadRecord(
        table=manifest.target,
        method=method,
        content_sha256=content,
        rows=manifest.rows,
        logical_date=logical_date,
        run_id=run_id,
        dag_id=dag_id,
        version=version,
        changed=changed,
    )
    lake.write_bytes(record_uri(lake, warehouse, manifest.target), json.dumps(asdict(record), indent=1).encode())
    return record


@dataclass
class InputsDecision:
    """Whether a transform must run, with one reason per input that moved (or that nobody can vouch for)."""

    changed: bool
    reasons: list[str]
    versions: dict[str, str | None]


def decide(lake: Lake, warehouse: str, consumer: str, tables: list[str], project: str) -> InputsDecision:
    """Compare the inputs' versions now with those the consumer last built from.

    It runs when it never ran, when its own definition (``project``: a checksum of the dbt project and
    its options) changed, or when any input moved or has no load record (loaded by something other
    than headwater, so nothing proves it unchanged).
    """
    versions = {t: (r.version if (r := read_record(lake, warehouse, t)) else None) for t in sorted(set(tables))}
    last = read_json_object(lake, consumer_uri(lake, warehouse, consumer))
    reasons: list[str] = []
    if last is None:
        reasons.append(f"{consumer} has not run on this warehouse yet")
    elif last.get("project") != project:
        reasons.append(f"{consumer}'s definition changed (dbt project files or options)")
    built_from = (last or {}).get("inputs") or {}
    for table, version in versions.items():
        if version is None:
            reasons.append(f"{table} has no headwater load record, so nothing proves it unchanged")
        elif last is not None and built_from.get(table) != version:
            reasons.append(f"{table} changed (version {built_from.get(table) or 'none'} -> {version})")
    return InputsDecision(bool(reasons), reasons, versions)


def record_consumed(
    lake: Lake,
    warehouse: str,
    consumer: str,
    versions: dict[str, str | None],
    project: str,
    *,
    run_id: str,
    logical_date: str,
) -> None:
    """After a transform succeeded: the input versions it was built from."""
    record = {
        "consumer": consumer,
        "inputs": versions,
        "project": project,
        "run_id": run_id,
        "logical_date": logical_date,
        "built_at": datetime.now(UTC).isoformat(),
    }
    lake.write_bytes(consumer_uri(lake, warehouse, consumer), json.dumps(record, indent=1).encode())
