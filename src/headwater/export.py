"""Streaming export of a query to the lake: many compressed parts in parallel, bounded memory.

The source is read in whole-row chunks on the calling thread; a writer thread compresses them into
part files on local disk, rotating by rows or bytes; finished parts upload in parallel with a bounded
number in flight. Memory stays at (queued chunks + parts in flight), whatever the table size. The
manifest is written last, listing every part with rows, bytes and checksum, so a reader sees all or
nothing; what an earlier attempt of the same run left under the prefix is removed first.
"""

from __future__ import annotations

import logging
import queue
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from headwater.errors import HeadwaterError
from headwater.lake import Lake, sha256_file
from headwater.sources.sql import SqlSource
from headwater.staging import MANIFEST_NAME, Manifest, Part, RowStream, csv_line
from headwater.table import Column

log = logging.getLogger(__name__)

FORMATS = ("csv.gz", "csv.zst", "csv", "parquet")
_DONE = object()


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


def export_query_to_lake(
    source: SqlSource,
    query: str,
    lake: Lake,
    prefix: str,
    *,
    params: Sequence[Any] = (),
    options: ExportOptions | None = None,
    target: str = "",
    logical_date: str = "",
    run_id: str = "",
    progress: Progress | None = None,
) -> ExportResult:
    """Export ``query`` from ``source`` into parts and a manifest under ``prefix``; return what was written."""
    with source.stream(query, params) as stream:
        return write_stream_to_lake(
            stream,
            lake,
            prefix,
            label=source.label,
            options=options,
            target=target,
            logical_date=logical_date,
            run_id=run_id,
            progress=progress,
        )


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
    """Write a RowStream as rotating parts, then the manifest; on failure remove the parts again."""
    opts = options or ExportOptions()
    if opts.format not in FORMATS:
        raise HeadwaterError(f"unknown export format {opts.format!r}; use one of {', '.join(FORMATS)}")
    started = time.monotonic()
    prefix = prefix.rstrip("/")
    try:
        with tempfile.TemporaryDirectory(prefix="headwater-export-") as tmp:
            writer = _PartWriter(stream.columns, opts, Path(tmp), lake, prefix, progress)
            writer.run(stream)
    except BaseException:
        try:
            lake.clear(prefix)  # no manifest was written; don't leave orphan parts either
        except Exception:  # the original error matters more
            log.warning("could not remove the parts of the failed export under %s", prefix)
        raise
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
    manifest_uri = f"{prefix}/{MANIFEST_NAME}"
    lake.write_bytes(manifest_uri, manifest.to_json().encode("utf-8"))
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
        prefix,
        result.seconds,
    )
    return result


class _PartWriter:
    """Compresses chunks into rotating part files on a thread of its own and uploads finished parts."""

    def __init__(
        self,
        columns: list[Column],
        opts: ExportOptions,
        folder: Path,
        lake: Lake,
        prefix: str,
        progress: Progress | None,
    ) -> None:
        self.columns = columns
        self.opts = opts
        self.folder = folder
        self.lake = lake
        self.prefix = prefix
        self.progress = progress
        self.parts: list[Part] = []
        self.rows = 0
        self.bytes = 0
        self._lock = threading.Lock()
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=8)
        self._slots = threading.BoundedSemaphore(opts.parts_in_flight)
        self._uploads: list[Future[None]] = []
        self._error: BaseException | None = None
        self._cleared: Future[None]

    def run(self, stream: RowStream) -> None:
        pool = ThreadPoolExecutor(max_workers=self.opts.parts_in_flight, thread_name_prefix="headwater-upload")
        self._cleared = pool.submit(self._clear)  # overlaps the source's first rows; uploads wait for it
        worker = threading.Thread(target=self._write_parts, args=(pool,), name="headwater-compress", daemon=True)
        worker.start()
        try:
            for chunk in stream.chunks(self.opts.rows_per_part):
                while not self._put(chunk):
                    if self._error is not None:
                        raise self._error
        finally:
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
                rows, raw, pending = self._write_one(path, first, chunks)
                future = pool.submit(self._upload, path, rows)
                future.add_done_callback(lambda f: self._slots.release())
                self._uploads.append(future)
                index += 1
                if pending is None and rows < self.opts.rows_per_part and raw < self.opts.bytes_per_part:
                    break
        except BaseException as exc:  # surfaced on the reading thread
            self._error = exc
            while self._queue.get() is not _DONE:  # let the reader finish or fail
                pass

    def _write_one(
        self, path: Path, first: tuple[bytes, int] | None, chunks: Iterator[tuple[bytes, int]]
    ) -> tuple[int, int, tuple[bytes, int] | None]:
        """Fill one part; returns its rows, raw bytes, and a chunk that belongs to the next part."""
        rows = raw = 0
        with _encoder(path, self.columns, self.opts) as sink:
            item = first
            while item is not None:
                data, count = item
                sink.write(data)
                rows += count
                raw += len(data)
                if rows >= self.opts.rows_per_part or raw >= self.opts.bytes_per_part:
                    return rows, raw, next(chunks, None)
                item = next(chunks, None)
        return rows, raw, None

    def _clear(self) -> None:
        removed = self.lake.clear(self.prefix)
        if removed:
            log.info("removed %d objects an earlier attempt left under %s", removed, self.prefix)

    def _upload(self, path: Path, rows: int) -> None:
        self._cleared.result()
        checksum = sha256_file(path)
        size = path.stat().st_size
        uri = f"{self.prefix}/{path.name}"
        try:
            self.lake.write_file(uri, path)
        finally:
            path.unlink(missing_ok=True)
        with self._lock:
            self.parts.append(Part(uri=uri, rows=rows, bytes=size, sha256=checksum))
            self.rows += rows
            self.bytes += size
            done, total_rows, total_bytes = len(self.parts), self.rows, self.bytes
        if done % self.opts.log_every_parts == 0:
            log.info("export progress: %d parts, %d rows, %.1f MB uploaded", done, total_rows, total_bytes / 1e6)
        if self.progress:
            self.progress(total_rows, total_bytes, done)


class _encoder:  # noqa: N801 - a context manager
    """A part file being written: header plus CSV chunks through a compressor, or Parquet row groups."""

    def __init__(self, path: Path, columns: list[Column], opts: ExportOptions) -> None:
        self.path = path
        self.columns = columns
        self.opts = opts
        self.handle: IO[bytes] | None = None
        self.compressor: Any = None
        self.parquet: Any = None

    def __enter__(self) -> _encoder:
        fmt = self.opts.format
        if fmt == "parquet":
            self.parquet = _ParquetPart(self.path, self.columns)
            return self
        self.handle = self.path.open("wb")
        if fmt == "csv.gz":
            import zlib

            self.compressor = zlib.compressobj(self.opts.level or 1, zlib.DEFLATED, 31)
        elif fmt == "csv.zst":
            import zstandard

            self.compressor = zstandard.ZstdCompressor(level=self.opts.level or 3).compressobj()
        self.write(csv_line([c.name for c in self.columns]).encode("utf-8"))
        return self

    def write(self, data: bytes) -> None:
        if self.parquet is not None:
            self.parquet.write(data)
            return
        assert self.handle is not None
        self.handle.write(self.compressor.compress(data) if self.compressor else data)

    def __exit__(self, *exc: object) -> None:
        if self.parquet is not None:
            self.parquet.close()
            return
        assert self.handle is not None
        if self.compressor is not None:
            self.handle.write(self.compressor.flush())
        self.handle.close()


class _ParquetPart:
    """CSV chunks parsed by Arrow with the source's column types and written as Parquet row groups.

    timestamptz columns are read as text and cast afterwards: PostgreSQL writes offsets as ``+00``,
    which Arrow's CSV timestamp parsers refuse.
    """

    def __init__(self, path: Path, columns: list[Column]) -> None:
        import pyarrow as pa
        import pyarrow.csv as pacsv
        import pyarrow.parquet as pq

        self.schema = pa.schema([(c.name, _arrow_type(c)) for c in columns])
        self.zoned = [c.name for c in columns if c.type.kind == "timestamptz"]
        read_types = pa.schema([pa.field(f.name, pa.string()) if f.name in self.zoned else f for f in self.schema])
        self.read = pacsv.read_csv
        self.read_options = pacsv.ReadOptions(column_names=[c.name for c in columns], use_threads=False)
        self.parse_options = pacsv.ParseOptions(newlines_in_values=True)
        self.convert_options = pacsv.ConvertOptions(
            column_types=read_types,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t", "true", "1"],
            false_values=["f", "false", "0"],
        )
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd")

    def write(self, data: bytes) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        table = self.read(
            pa.py_buffer(data),
            read_options=self.read_options,
            parse_options=self.parse_options,
            convert_options=self.convert_options,
        )
        for name in self.zoned:
            text = pc.replace_substring_regex(table.column(name), pattern=r"([+-]\d\d)$", replacement=r"\1:00")
            index = table.schema.get_field_index(name)
            table = table.set_column(index, name, pc.cast(text, self.schema.field(name).type))
        self.writer.write_table(table)

    def close(self) -> None:
        self.writer.close()


def _arrow_type(column: Column) -> Any:
    import pyarrow as pa

    kind = column.type
    return {
        "integer": pa.int64(),
        "double": pa.float64(),
        "boolean": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "text": pa.string(),
    }.get(kind.kind) or pa.decimal128(kind.precision, 10 if kind.scale is None else kind.scale)
