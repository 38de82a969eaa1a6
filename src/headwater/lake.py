"""The lake: run-scoped part files and manifests on a local folder (``file://``) or S3 (``s3://``).

Writers replace whatever their own run wrote before and put the manifest last, so a reader that goes
by the manifest sees every part of one complete run or nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from headwater.errors import LakeError
from headwater.identifiers import TableName
from headwater.scratch import scratch_folder

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_UNSAFE = re.compile(r"[^A-Za-z0-9._=-]+")
_DOTS = re.compile(r"\.{2,}")


def slug(text: str) -> str:
    """A key-safe rendering of a run id, never trusted as a path: one segment of ``A-Za-z0-9._=-``.

    Other characters become ``_``, a leading dot or a run of dots becomes ``_`` (no ``.`` or ``..``
    segment), and when anything was changed a short hash of the original keeps distinct ids apart.
    """
    cleaned = _DOTS.sub("_", _UNSAFE.sub("_", text)).strip("_")[:120] or "_"
    if cleaned.startswith("."):
        cleaned = "_" + cleaned[1:]
    if cleaned != text:
        cleaned += "-" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return cleaned


def check_relative_key(relative: str, uri: str) -> str:
    """Refuse a key below a prefix that could reach outside it: ``.``/``..`` or empty segments, backslashes."""
    segments = relative.split("/")
    if not relative or "\\" in relative or any(s in ("", ".", "..") for s in segments):
        raise LakeError(f"{uri}: a lake path may not contain '.', '..' or empty segments")
    return relative


def date_slug(logical_date: datetime) -> str:
    if (logical_date.hour, logical_date.minute, logical_date.second, logical_date.microsecond) == (0, 0, 0, 0):
        return logical_date.strftime("%Y-%m-%d")
    return logical_date.strftime("%Y-%m-%dT%H%M%S")


class Lake(ABC):
    """Common interface of the local and S3 lakes; URIs are absolute (``file:///...`` or ``s3://bucket/key``)."""

    url: str

    def run_prefix(self, target: TableName, logical_date: datetime, run_id: str) -> str:
        """Where one run of one table keeps its parts and manifest."""
        return f"{self.url.rstrip('/')}/{target.schema}/{target.table}/{date_slug(logical_date)}/{slug(run_id)}"

    @abstractmethod
    def write_file(self, uri: str, source: Path) -> None:
        """Publish a finished local file at ``uri`` atomically."""

    @abstractmethod
    def write_bytes(self, uri: str, data: bytes) -> None: ...

    @abstractmethod
    def read_bytes(self, uri: str) -> bytes: ...

    @abstractmethod
    def open_read(self, uri: str) -> contextlib.AbstractContextManager[IO[bytes]]: ...

    @abstractmethod
    def list_uris(self, prefix: str) -> list[str]:
        """Every object URI under ``prefix`` (a folder-like URI)."""

    @abstractmethod
    def delete(self, uris: list[str]) -> None: ...

    @contextlib.contextmanager
    def local_copy(self, uri: str) -> Iterator[Path]:
        """A local file with the object's bytes, for readers that need a path (DuckDB)."""
        with scratch_folder() as tmp:
            path = tmp / uri.rsplit("/", 1)[-1]
            with self.open_read(uri) as src, path.open("wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            yield path


class LocalLake(Lake):
    """A folder on this machine; writes go to a temporary name and are renamed into place."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = self.root.as_uri()

    def _path(self, uri: str) -> Path:
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            raise LakeError(f"{uri}: not a file:// URI of the local lake at {self.url}")
        raw = unquote(parsed.path).rstrip("/")
        if raw:
            check_relative_key(raw.lstrip("/"), uri)
        path = Path(os.path.normpath(raw or "/"))
        if path != self.root and self.root not in path.parents:
            raise LakeError(f"{uri}: outside the local lake at {self.url}")
        return path

    def write_file(self, uri: str, source: Path) -> None:
        path = self._path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        shutil.copyfile(source, tmp)
        tmp.replace(path)

    def write_bytes(self, uri: str, data: bytes) -> None:
        path = self._path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)

    def read_bytes(self, uri: str) -> bytes:
        try:
            return self._path(uri).read_bytes()
        except FileNotFoundError:
            raise LakeError(f"{uri}: not found in the lake") from None

    @contextlib.contextmanager
    def open_read(self, uri: str) -> Iterator[IO[bytes]]:
        try:
            handle = self._path(uri).open("rb")
        except FileNotFoundError:
            raise LakeError(f"{uri}: not found in the lake") from None
        with handle:
            yield handle

    @contextlib.contextmanager
    def local_copy(self, uri: str) -> Iterator[Path]:
        path = self._path(uri)
        if not path.exists():
            raise LakeError(f"{uri}: not found in the lake")
        yield path

    def list_uris(self, prefix: str) -> list[str]:
        folder = self._path(prefix)
        if not folder.is_dir():
            return []
        return sorted(p.as_uri() for p in folder.rglob("*") if p.is_file())

    def delete(self, uris: list[str]) -> None:
        for uri in uris:
            self._path(uri).unlink(missing_ok=True)


class S3Lake(Lake):
    """A bucket and prefix on S3 or any S3-compatible store, through a boto3 client."""

    def __init__(self, client: S3Client, url: str) -> None:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise LakeError(f"{url}: an S3 lake URL looks like s3://bucket/prefix")
        self.client = client
        self.bucket = parsed.netloc
        self.url = f"s3://{self.bucket}/{parsed.path.strip('/')}".rstrip("/")

    def _key(self, uri: str) -> str:
        parsed = urlparse(uri)
        if parsed.scheme != "s3" or parsed.netloc != self.bucket:
            raise LakeError(f"{uri}: not in the lake bucket s3://{self.bucket}")
        key = parsed.path.lstrip("/")
        if key.rstrip("/"):
            check_relative_key(key.rstrip("/"), uri)
        return key

    def write_file(self, uri: str, source: Path) -> None:
        try:
            self.client.upload_file(str(source), self.bucket, self._key(uri))
        except Exception as exc:  # boto3 raises several unrelated types
            raise LakeError(f"{uri}: upload failed: {exc}", transient=s3_transient(exc)) from exc

    def write_bytes(self, uri: str, data: bytes) -> None:
        try:
            self.client.put_object(Bucket=self.bucket, Key=self._key(uri), Body=data)
        except Exception as exc:
            raise LakeError(f"{uri}: write failed: {exc}", transient=s3_transient(exc)) from exc

    def read_bytes(self, uri: str) -> bytes:
        with self.open_read(uri) as body:
            return body.read()

    @contextlib.contextmanager
    def open_read(self, uri: str) -> Iterator[IO[bytes]]:
        try:
            response: Any = self.client.get_object(Bucket=self.bucket, Key=self._key(uri))
        except self.client.exceptions.NoSuchKey:
            raise LakeError(f"{uri}: not found in the lake") from None
        except Exception as exc:
            raise LakeError(f"{uri}: read failed: {exc}", transient=s3_transient(exc)) from exc
        body = response["Body"]
        try:
            yield body
        finally:
            body.close()

    def list_uris(self, prefix: str) -> list[str]:
        key = self._key(prefix).rstrip("/") + "/"
        uris: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=key):
                uris += [f"s3://{self.bucket}/{item['Key']}" for item in page.get("Contents", [])]
        except Exception as exc:
            raise LakeError(f"{prefix}: listing failed: {exc}", transient=s3_transient(exc)) from exc
        return sorted(uris)

    def delete(self, uris: list[str]) -> None:
        keys = [self._key(u) for u in uris]
        for start in range(0, len(keys), 1000):
            batch: Any = [{"Key": k} for k in keys[start : start + 1000]]
            answer: Any = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            if answer.get("Errors"):  # per-key refusals come back in a 200 answer
                first = answer["Errors"][0]
                raise LakeError(
                    f"s3://{self.bucket}/{first.get('Key')}: delete refused ({first.get('Code')}); "
                    f"{len(answer['Errors'])} object(s) not deleted"
                )


_S3_CODE = re.compile(r"An error occurred \((\w+)\)")
_CLIENT_CODES = {"NoSuchKey", "InvalidRequest", "EntityTooLarge", "400", "403", "404"}
_PERMANENT_S3_CODES = {
    "AccessDenied",
    "NoSuchBucket",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidBucketName",
}


def s3_transient(exc: BaseException) -> bool:
    """Throttling, 5xx and network failures may heal; a missing bucket or a denied key will not.

    boto3's upload wrapper keeps only the text of the ClientError it caught, so its code is read from there.
    """
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            code = str(response.get("Error", {}).get("Code", ""))
            status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code in _PERMANENT_S3_CODES:
                return False
            return status >= 500 or status == 429 or "Throttl" in code or code == "SlowDown"
        seen = seen.__cause__ or seen.__context__
    quoted = _S3_CODE.search(str(exc))
    if quoted is not None:
        return quoted.group(1) not in _PERMANENT_S3_CODES and quoted.group(1) not in _CLIENT_CODES
    return True  # connection errors, timeouts, a broken pipe mid-upload


def read_json_object(lake: Lake, uri: str) -> dict[str, Any] | None:
    """A small JSON object headwater keeps in the lake (a watermark, a load record), or None when absent."""
    try:
        data = json.loads(lake.read_bytes(uri))
    except LakeError as exc:
        if "not found" in str(exc):
            return None
        raise
    except ValueError:
        raise LakeError(f"{uri}: not valid JSON; headwater wrote it, so it was damaged: delete it") from None
    if not isinstance(data, dict):
        raise LakeError(f"{uri}: not a JSON object")
    return data


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
