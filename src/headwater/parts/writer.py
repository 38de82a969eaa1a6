"""The one part writer: a stream of whole-row CSV chunks into rotating compressed parts, then a manifest.

The source is read in whole-row chunks on the calling thread; a writer thread compresses them into part
files in a scratch folder, rotating by rows or bytes; finished parts upload in parallel with a bounded
number in flight. Memory stays at (queued chunks + parts in flight), whatever the table size. The
manifest is written last, so a reader sees all or nothing. A failure, Ctrl-C or SIGTERM removes this
attempt's parts and scratch files; only what headwater wrote under the prefix is ever deleted.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headwater.errors import HeadwaterError, SourceError
from headwater.identifiers import check_column_names
from headwater.lake import Lake, sha256_file
from headwater.lean_imports import without
from headwater.parts.destination import Claim, claim_prefix
from headwater.parts.encoders import PartEncoder, RowConversionError
from headwater.parts.manifest import FORMATS, Manifest, Part
from headwater.scratch import scratch_folder
from headwater.signals import sigterm_deferred, sigterm_raises
from headwater.table import Column

log = logging.getLogger(__name__)

_DONE = object()


@dataclass
class RowStream:
    """An open result: its columns, and ``chunks(boundary)``: (CSV bytes of whole rows, row count) pairs.

    A chunk never straddles a multiple of ``boundary`` rows, so parts can rotate at exact row counts.
    """

    columns: list[Column]
    chunks: Callable[[int], Iterator[tuple[bytes, int]]]


@dataclass(frozen=True)
class ExportOptions:
    format: str = "csv.gz"
    rows_per_part: int = 2_000_000
    bytes_per_part: int = 256 << 20  # uncompressed CSV bytes
    parts_in_flight: int = 3
    level: int | None = None  # compression level; None = the format's fast default
    log_every_parts: int = 1


@dataclass
class ExportResult:
    manifest_uri: str
    rows: int
    parts: int
    bytes: int
    seconds: float
    columns: list[Column] = field(default_factory=list)


Progress = Callable[[int, int, int], None]  # rows so far, compressed bytes so far, parts finished


def write_stream_to_lake(
    stream: RowStream,
    lake: Lake,
    prefix: str,
    *,
    label: str,
    options: ExportOptions | None = None,
    target: str = "",
    logical_date: str = "",
    run_id: str = "",
    progress: Progress | None = None,
) -> ExportResult:
    """Write a RowStream as rotating parts under ``prefix``, then the manifest; on failure remove the parts."""
    opts = options or ExportOptions()
    if opts.format not in FORMATS:
        raise HeadwaterError(f"unknown export format {opts.format!r}; use one of {', '.join(FORMATS)}")
    check_column_names([c.name for c in stream.columns], label)  # before a row is read
    _lean_arrow_memory()
    started = time.monotonic()
    with sigterm_raises():
        claim = claim_prefix(lake, prefix)
        try:
            with scratch_folder() as tmp:
                writer = _PartWriter(stream.columns, opts, tmp, claim, progress, label)
                writer.run(stream)
            parts = sorted(writer.parts, key=lambda p: p.uri)
            manifest = Manifest(
                target=target,
                source=label,
                columns=[{"name": c.name, "type": c.type.to_json()} for c in stream.columns],
                rows=sum(p.rows for p in parts),
                parts=parts,
                logical_date=logical_date,
                run_id=run_id,
                format=opts.format,
            )
            manifest_uri = claim.publish(manifest)
        except BaseException:
            with sigterm_deferred():
                claim.abandon()
            raise
    result = ExportResult(
        manifest_uri,
        manifest.rows,
        len(parts),
        sum(p.bytes for p in parts),
        round(time.monotonic() - started, 3),
        stream.columns,
    )
    log.info(
        "exported %d rows in %d parts (%.1f MB) to %s in %.1fs",
        result.rows,
        result.parts,
        result.bytes / 1e6,
        claim.prefix,
        result.seconds,
    )
    return result


def _lean_arrow_memory() -> None:
    """Arrow's jemalloc pool for the batches and Parquet row groups: it hands freed memory back, where the
    default (mimalloc) kept 10-15 MB more at the peak of a 2M-row Parquet export (bench/export.py).

    And pyarrow without pandas: ``pa.array(list)`` imports pandas, if installed (as in Airflow's image), only to
    ask whether the list is a pandas object: 50 MB of RSS and 0.7 s for nothing. pyarrow is made to ask once
    while pandas cannot be imported; its pandas conversions (``to_pandas``) still import pandas when called.
    """
    import pyarrow as pa

    with contextlib.suppress(NotImplementedError):  # a pyarrow built without jemalloc keeps its default pool
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    with without("pandas"):
        pa.lib._pandas_api.have_pandas  # noqa: B018 - the probe pyarrow remembers for the process


class _PartWriter:
    """Compresses chunks into rotating part files on a thread of its own and uploads finished parts."""

    def __init__(
        self,
        columns: list[Column],
        opts: ExportOptions,
        folder: Path,
        claim: Claim,
        progress: Progress | None,
        label: str,
    ) -> None:
        self.columns = columns
        self.label = label
        self.written = 0  # rows handed to the parts before the one being written
        self.opts = opts
        self.folder = folder
        self.claim = claim
        self.progress = progress
        self.parts: list[Part] = []
        self.rows = 0
        self.bytes = 0
        self._lock = threading.Lock()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=4)
        self._slots = threading.BoundedSemaphore(opts.parts_in_flight)
        self._uploads: list[Future[None]] = []
        self._error: BaseException | None = None
        self._drained = False  # the writer has taken the end-of-stream marker

    def run(self, stream: RowStream) -> None:
        pool = ThreadPoolExecutor(max_workers=self.opts.parts_in_flight, thread_name_prefix="headwater-upload")
        worker = threading.Thread(target=self._write_parts, args=(pool,), name="headwater-compress", daemon=True)
        worker.start()
        try:
            for chunk in stream.chunks(self.opts.rows_per_part):
                while not self._put(chunk):
                    if self._error is not None:
                        raise self._error
        finally:
            with sigterm_deferred():  # the threads must finish before anything is cleaned up
                while not self._put(_DONE):  # the writer consumes it, or drains up to it after failing
                    pass
                worker.join()
                pool.shutdown(wait=True)
        if self._error is not None:
            raise self._error
        for upload in self._uploads:
            upload.result()

    def _put(self, item: Any) -> bool:
        try:
            self._queue.put(item, timeout=0.5)
            return True
        except queue.Full:
            return False

    def _items(self) -> Iterator[tuple[bytes, int]]:
        while (item := self._queue.get()) is not _DONE:
            yield item
        self._drained = True

    def _write_parts(self, pool: ThreadPoolExecutor) -> None:
        try:
            index = 0
            chunks = self._items()
            pending: tuple[bytes, int] | None = None
            while True:
                first = pending or next(chunks, None)
                if first is None and index > 0:
                    break
                self._slots.acquire()
                path = self.folder / f"part-{index:05d}.{self.opts.format}"
                rows, raw, widest, pending = self._write_one(path, first, chunks)
                self.written += rows
                uri = self.claim.part_uri(index, self.opts.format)
                future = pool.submit(self._upload, path, uri, rows, widest)
                future.add_done_callback(lambda f: self._slots.release())
                self._uploads.append(future)
                index += 1
                if pending is None and rows < self.opts.rows_per_part and raw < self.opts.bytes_per_part:
                    break
        except BaseException as exc:  # surfaced on the reading thread
            self._error = exc
            while not self._drained and self._queue.get() is not _DONE:  # let the reader finish or fail
                pass

    def _write_one(
        self, path: Path, first: tuple[bytes, int] | None, chunks: Iterator[tuple[bytes, int]]
    ) -> tuple[int, int, int, tuple[bytes, int] | None]:
        """Fill one part; returns its rows, raw bytes, largest chunk (bounds any row), and the next part's chunk."""
        rows = raw = widest = 0
        with PartEncoder(path, self.columns, self.opts.format, self.opts.level) as sink:
            item = first
            while item is not None:
                data, count = item
                try:
                    sink.write(data)
                except RowConversionError as exc:
                    row = self.written + rows + exc.row
                    raise SourceError(f"{self.label}: row {row}, column {exc.column!r}: {exc.detail}") from None
                rows += count
                raw += len(data)
                widest = max(widest, len(data))
                if rows >= self.opts.rows_per_part or raw >= self.opts.bytes_per_part:
                    return rows, raw, widest, next(chunks, None)
                item = next(chunks, None)
        return rows, raw, widest, None

    def _upload(self, path: Path, uri: str, rows: int, widest: int) -> None:
        checksum = sha256_file(path)
        size = path.stat().st_size
        try:
            self.claim.lake.write_file(uri, path)
        finally:
            path.unlink(missing_ok=True)
        with self._lock:
            self.parts.append(Part(uri=uri, rows=rows, bytes=size, sha256=checksum, max_row_bytes=widest))
            self.rows += rows
            self.bytes += size
            done, total_rows, total_bytes = len(self.parts), self.rows, self.bytes
        if done % self.opts.log_every_parts == 0:
            log.info("export progress: %d parts, %d rows, %.1f MB uploaded", done, total_rows, total_bytes / 1e6)
        if self.progress:
            self.progress(total_rows, total_bytes, done)
