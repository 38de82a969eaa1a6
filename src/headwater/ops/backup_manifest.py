"""What one metadata backup holds, and finding, checking and pruning backups in the lake.

A backup is one folder under the backups prefix. Its manifest (``_backup.json``) is written last, so its
presence means the backup is complete; it lists each object with bytes and sha256, the row count of every
table at the dump's snapshot, and how secrets were handled. Pruning deletes only folders whose manifest
headwater wrote (and only the objects it lists), plus attempts that died before publishing, recognised by
headwater's attempt marker and only their known objects.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from headwater.errors import HeadwaterError, LakeError
from headwater.lake import Lake

log = logging.getLogger(__name__)

KIND = "headwater_metadata_backup"
FORMAT_VERSION = 1
MANIFEST = "_backup.json"
ATTEMPT = "_hw_backup_attempt.json"
DUMP = "metadata.dump"
SECRETS_FILE = {"connection": "connections.json.gz", "variable": "variables.json.gz"}
OBJECT_NAMES = (DUMP, *SECRETS_FILE.values())
SECRET_MODES = ("encrypt", "omit")
FOLDER = re.compile(r"^\d{8}T\d{6}(\.\d{6})?Z-[0-9a-f]{6}$")  # UTC start time (sorts as it), token
ABANDONED_AFTER = timedelta(days=1)  # an attempt without a manifest this old died; a live backup is never this slow


class BackupError(HeadwaterError):
    """A metadata backup or restore failed; the message names the database, backup or object."""


@dataclass
class BackupObject:
    name: str
    bytes: int
    sha256: str


@dataclass
class BackupManifest:
    """One complete backup: its objects, the row count of each table at the snapshot, where secrets went."""

    database: str
    server_version: str
    schema: str
    schema_revision: str | None
    secrets: str
    objects: list[BackupObject]
    tables: dict[str, int]
    airflow_version: str | None = None
    kind: str = KIND
    version: int = FORMAT_VERSION
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())

    @property
    def rows(self) -> int:
        return sum(self.tables.values())

    @property
    def total_bytes(self) -> int:
        return sum(o.bytes for o in self.objects)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, data: bytes, uri: str) -> BackupManifest:
        """Parse and check a backup manifest; BackupError names the URI and what is wrong."""
        try:
            raw = json.loads(data)
            if not isinstance(raw, dict) or raw.get("kind") != KIND:
                raise ValueError("not a headwater metadata backup manifest")
            if raw.get("version") != FORMAT_VERSION:
                raise ValueError(f"format version {raw.get('version')!r} is not {FORMAT_VERSION}")
            raw["objects"] = [BackupObject(**o) for o in raw["objects"]]
            manifest = cls(**raw)
        except (ValueError, TypeError, KeyError) as exc:
            raise BackupError(f"{uri}: {exc}") from None
        names = [o.name for o in manifest.objects]
        if DUMP not in names or any(n not in OBJECT_NAMES for n in names) or len(set(names)) != len(names):
            raise BackupError(f"{uri}: lists objects {names}, not the ones a headwater backup holds")
        if manifest.secrets not in SECRET_MODES:
            raise BackupError(f"{uri}: unknown secrets mode {manifest.secrets!r}")
        return manifest


@dataclass
class StoredBackup:
    """A complete backup found in the lake."""

    uri: str  # the backup's folder
    manifest: BackupManifest

    @property
    def name(self) -> str:
        return self.uri.rsplit("/", 1)[-1]


def list_backups(lake: Lake, prefix: str) -> list[StoredBackup]:
    """Every complete backup under ``prefix``, oldest first; a folder whose manifest does not parse is
    reported and left out (never deleted: headwater cannot prove it wrote it)."""
    prefix = prefix.rstrip("/")
    found = []
    for uri in lake.list_uris(prefix):
        folder, _, name = uri.rpartition("/")
        if name != MANIFEST or folder.rpartition("/")[0] != prefix or not FOLDER.match(folder.rpartition("/")[2]):
            continue
        try:
            found.append(StoredBackup(folder, BackupManifest.from_json(lake.read_bytes(uri), uri)))
        except (BackupError, LakeError) as exc:
            log.warning("skipping %s: %s", folder, exc)
    return sorted(found, key=lambda b: (b.manifest.created_at, b.name))


def find_backup(lake: Lake, prefix: str, which: str) -> StoredBackup:
    """The backup called ``which``: ``latest``, a folder name under ``prefix``, or a folder URI."""
    backups = list_backups(lake, prefix)
    if which == "latest":
        if not backups:
            raise BackupError(f"{prefix}: holds no complete metadata backup")
        return backups[-1]
    for backup in backups:
        if which in (backup.name, backup.uri, backup.uri + "/"):
            return backup
    if "://" in which:  # a backup kept somewhere else
        uri = which.rstrip("/")
        return StoredBackup(uri, BackupManifest.from_json(_read(lake, f"{uri}/{MANIFEST}"), f"{uri}/{MANIFEST}"))
    known = ", ".join(b.name for b in backups[-5:]) or "none"
    raise BackupError(f"no backup {which!r} under {prefix} (latest: {known})")


def _read(lake: Lake, uri: str) -> bytes:
    try:
        return lake.read_bytes(uri)
    except LakeError as exc:
        raise BackupError(f"{uri}: {exc}") from None


def prune_backups(lake: Lake, prefix: str, keep: int, now: datetime | None = None) -> list[str]:
    """Delete all but the newest ``keep`` complete backups, and attempts abandoned for a day; returns the
    folders removed. Only objects a manifest or an attempt marker vouches for are deleted."""
    if keep < 1:
        raise BackupError(f"keep must be at least 1, not {keep}")
    prefix = prefix.rstrip("/")
    removed = []
    for backup in list_backups(lake, prefix)[:-keep]:
        lake.delete([f"{backup.uri}/{o.name}" for o in backup.manifest.objects])
        lake.delete([f"{backup.uri}/{MANIFEST}"])
        removed.append(backup.uri)
    now = now or datetime.now(UTC)
    uris = lake.list_uris(prefix)
    complete = {u.rpartition("/")[0] for u in uris if u.endswith("/" + MANIFEST)}
    for marker in (u for u in uris if u.endswith("/" + ATTEMPT)):
        folder = marker.rpartition("/")[0]
        if folder in complete or folder.rpartition("/")[0] != prefix:
            continue
        started = _attempt_started(lake, marker)
        if started is None or now - started < ABANDONED_AFTER:
            continue
        lake.delete([u for u in uris if u.rpartition("/")[0] == folder and u.rpartition("/")[2] in OBJECT_NAMES])
        lake.delete([marker])
        removed.append(folder)
    for folder in removed:
        log.info("removed backup %s", folder)
    return removed


def _attempt_started(lake: Lake, marker: str) -> datetime | None:
    try:
        record: Any = json.loads(lake.read_bytes(marker))
        return datetime.fromisoformat(record["started_at"])
    except (LakeError, ValueError, TypeError, KeyError):
        return None


def write_attempt_marker(lake: Lake, folder: str, record: dict[str, Any]) -> None:
    lake.write_bytes(f"{folder}/{ATTEMPT}", json.dumps(record).encode("utf-8"))
