"""Claiming a lake prefix for one write, and replacing only what headwater can prove it wrote there.

A write first lists the prefix. Every object must be headwater's: the manifest, the parts it lists, an
attempt marker, or a part named after a marked attempt (a write that died before publishing). Anything
else belongs to someone else, and the write is refused before it reads a row or deletes a byte. The
write then leaves its own marker, names its parts after its attempt, and publishes the manifest last;
only after that are the previous publish and abandoned attempts removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from headwater.errors import LakeError
from headwater.lake import Lake
from headwater.parts.manifest import MANIFEST_NAME, Manifest, read_manifest

log = logging.getLogger(__name__)

ATTEMPT_MARKER = re.compile(r"^_hw_attempt_([0-9a-f]{12})\.json$")
_LOCAL_TEMP = re.compile(r"^\.([^/]+)\.\d+\.tmp$")
REDSHIFT_COPY_MANIFEST = "_redshift_copy.manifest"  # written beside the parts by the Redshift loader


@dataclass
class Claim:
    """One write's hold on a prefix: its attempt token and what to remove once it has published."""

    lake: Lake
    prefix: str
    token: str
    stale: list[str] = field(default_factory=list)
    published: bool = False

    @property
    def marker_uri(self) -> str:
        return f"{self.prefix}/_hw_attempt_{self.token}.json"

    @property
    def part_prefix(self) -> str:
        """Every object this attempt writes starts with this (Redshift UNLOAD appends its own suffixes)."""
        return f"{self.prefix}/part-{self.token}-"

    def part_uri(self, index: int, fmt: str) -> str:
        return f"{self.part_prefix}{index:05d}.{fmt}"

    def publish(self, manifest: Manifest) -> str:
        """Write the manifest (the moment the new data becomes visible), then remove what it replaced.

        From the manifest write on, the attempt is published: a failure or a signal during the cleanup
        never removes the parts just published, and what could not be removed stays vouched for (this
        attempt's marker lists it) so the next write here sweeps it.
        """
        from headwater.signals import sigterm_deferred

        uri = f"{self.prefix}/{MANIFEST_NAME}"
        manifest.check(uri)
        self.lake.write_bytes(uri, manifest.to_json().encode("utf-8"))
        self.published = True
        keep = {uri} | {p.uri for p in manifest.parts}
        old = [u for u in self.stale if u not in keep]
        with sigterm_deferred():
            try:
                self.lake.delete(old)
                self.lake.delete([self.marker_uri])
            except Exception as exc:  # published already; the marker keeps vouching for the leftovers
                log.warning("published %s; %d replaced object(s) and the attempt marker remain: %s", uri, len(old), exc)
                with contextlib.suppress(Exception):
                    self._write_marker(leftovers=old)
            else:
                if old:
                    log.info("removed %d objects the previous write to %s left", len(old), self.prefix)
        return uri

    def _write_marker(self, leftovers: list[str] | None = None) -> None:
        record = {
            "headwater_attempt": self.token,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started_at": datetime.now(UTC).isoformat(),
            "leftovers": leftovers or [],
        }
        self.lake.write_bytes(self.marker_uri, json.dumps(record).encode("utf-8"))

    def abandon(self) -> None:
        """Remove this attempt's parts and marker after a failure (best effort; the next write sweeps the rest).

        Does nothing once the manifest is published: its parts are the published data.
        """
        if self.published:
            return
        try:
            mine = [u for u in self.lake.list_uris(self.prefix) if u.startswith(self.part_prefix)]
            self.lake.delete([*mine, self.marker_uri])
        except Exception as exc:
            log.warning("could not remove the parts of the failed write under %s: %s", self.prefix, exc)


def claim_prefix(lake: Lake, prefix: str) -> Claim:
    """Check that everything under ``prefix`` is headwater's and mark a new attempt; LakeError if not."""
    prefix = prefix.rstrip("/")
    uris = lake.list_uris(prefix)
    owned = _owned(lake, prefix, uris)
    foreign = [u for u in uris if u not in owned]
    if foreign:
        raise LakeError(
            f"{prefix}: holds {len(foreign)} object(s) headwater did not write (first: {foreign[0]}); "
            "nothing was written or deleted. Export to an empty location, or to a new prefix."
        )
    _refuse_live_attempt(lake, prefix, uris)
    claim = Claim(lake, prefix, uuid.uuid4().hex[:12], stale=sorted(owned))
    claim._write_marker()
    return claim


def _owned(lake: Lake, prefix: str, uris: list[str]) -> set[str]:
    present = set(uris)
    owned: set[str] = set()
    manifest_uri = f"{prefix}/{MANIFEST_NAME}"
    if manifest_uri in present:
        try:
            manifest = read_manifest(lake, manifest_uri)
        except LakeError:
            pass  # not a manifest headwater can read: it stays foreign
        else:
            owned |= {manifest_uri} | ({p.uri for p in manifest.parts} & present)
    tokens: list[str] = []
    for uri in uris:
        name = uri[len(prefix) + 1 :]
        match = ATTEMPT_MARKER.match(name)
        record = _marker(lake, uri) if match else None
        if match and record is not None and record.get("headwater_attempt") == match.group(1):
            tokens.append(match.group(1))
            owned.add(uri)
            owned |= {u for u in uris if u.startswith(f"{prefix}/part-{match.group(1)}-")}
            leftovers = record.get("leftovers")
            if isinstance(leftovers, list):  # what a published write could not remove after publishing
                owned |= {u for u in leftovers if isinstance(u, str) and u in present and u.startswith(prefix + "/")}
    for uri in uris:  # a local lake's half-written file (".<name>.<pid>.tmp") left by a killed process
        temp = _LOCAL_TEMP.match(uri[len(prefix) + 1 :])
        if temp and (
            f"{prefix}/{temp.group(1)}" in owned
            or temp.group(1) == MANIFEST_NAME
            or ATTEMPT_MARKER.match(temp.group(1))
            or any(temp.group(1).startswith(f"part-{t}-") for t in tokens)
        ):
            owned.add(uri)
    copy_manifest = f"{prefix}/{REDSHIFT_COPY_MANIFEST}"
    if copy_manifest in present and _entries_within(lake, copy_manifest, owned):
        owned.add(copy_manifest)
    return owned


def _marker(lake: Lake, uri: str) -> dict[str, Any] | None:
    try:
        record = json.loads(lake.read_bytes(uri))
    except (LakeError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _entries_within(lake: Lake, uri: str, owned: set[str]) -> bool:
    try:
        entries = json.loads(lake.read_bytes(uri))["entries"]
        return bool(entries) and all(entry["url"] in owned for entry in entries)
    except (LakeError, ValueError, KeyError, TypeError):
        return False


def _refuse_live_attempt(lake: Lake, prefix: str, uris: list[str]) -> None:
    """Another write to the same prefix by a live process on this host: refuse rather than race it."""
    host = socket.gethostname()
    for uri in uris:
        if not ATTEMPT_MARKER.match(uri[len(prefix) + 1 :]):
            continue
        try:
            record = json.loads(lake.read_bytes(uri))
            pid = int(record["pid"])
        except (LakeError, ValueError, KeyError, TypeError):
            continue
        if record.get("host") == host and pid != os.getpid() and _alive(pid):
            raise LakeError(
                f"{prefix}: another headwater write (process {pid}, started {record.get('started_at')}) "
                "is still running here; wait for it or stop it",
                transient=True,
            )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
