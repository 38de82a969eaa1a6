"""The part writer: rotating parts, the manifest, progress, and a clean lake and scratch after any failure."""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import re
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from headwater.coltypes import ColumnType
from headwater.errors import HeadwaterError, LakeError, SourceError
from headwater.lake import LocalLake
from headwater.parts import (
    ExportOptions,
    ExportResult,
    Manifest,
    RowStream,
    csv_line,
    read_manifest,
    write_stream_to_lake,
)
from headwater.parts.encoders import PartEncoder
from headwater.table import Column

pytestmark = pytest.mark.unit

ID = [Column("id", ColumnType("integer"))]
NOTE = [Column("note", ColumnType("text"))]
DECOMPRESS = {
    "csv": lambda data: data,
    "csv.gz": gzip.decompress,
    "csv.zst": lambda data: zstandard.ZstdDecompressor().decompressobj().decompress(data),
}


@pytest.fixture(autouse=True)
def scratch_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Scratch folders of this test go to a folder of its own, so a test can see that none is left."""
    root = tmp_path / "scratch"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    return root


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every write takes 2.5004 s by the writer's clock (reported to the millisecond: 2.5)."""
    monkeypatch.setattr("headwater.parts.writer.time", SimpleNamespace(monotonic=iter([100.0, 102.5004]).__next__))


def lines(start: int, n: int) -> bytes:
    return "".join(csv_line([str(i)]) for i in range(start, start + n)).encode()


def stream(sizes: list[int], columns: list[Column] = ID) -> RowStream:
    def chunks(boundary: int) -> Iterator[tuple[bytes, int]]:
        start = 0
        for n in sizes:
            yield lines(start, n), n
            start += n

    return RowStream(columns, chunks)


def export(lake: LocalLake, source: RowStream, **options: Any) -> ExportResult:
    return write_stream_to_lake(source, lake, f"{lake.url}/out", label="src", options=ExportOptions(**options))


def part_text(lake: LocalLake, uri: str, fmt: str) -> str:
    return str(DECOMPRESS[fmt](lake.read_bytes(uri)).decode("utf-8"))


@pytest.mark.parametrize(
    ("sizes", "options", "part_rows"),
    [
        ([5, 5, 5, 5, 5], {"rows_per_part": 10}, [10, 10, 5]),
        ([5, 5], {"rows_per_part": 10}, [10]),
        ([1] * 7, {"rows_per_part": 3}, [3, 3, 1]),
        ([1] * 5, {"bytes_per_part": 8}, [2, 2, 1]),  # every row is 4 bytes: '"3"\n'
        ([2, 1, 2], {"bytes_per_part": 8}, [2, 3]),
        ([1, 1], {"bytes_per_part": 9}, [2]),
        ([], {}, [0]),
    ],
)
@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "csv.zst"])
def test_parts_rotate_at_exact_row_and_byte_boundaries(
    tmp_path: Path, fmt: str, sizes: list[int], options: dict[str, int], part_rows: list[int]
) -> None:
    lake = LocalLake(tmp_path / "lake")
    result = export(lake, stream(sizes), format=fmt, **options)
    manifest = read_manifest(lake, result.manifest_uri)
    assert [p.rows for p in manifest.parts] == part_rows
    token = re.escape(manifest.parts[0].uri.rsplit("-", 1)[0])
    assert [re.fullmatch(f"{token}-(\\d+)\\.{re.escape(fmt)}", p.uri)[1] for p in manifest.parts] == [  # type: ignore[index]
        f"{i:05d}" for i in range(len(part_rows))
    ]
    texts = [part_text(lake, p.uri, fmt) for p in manifest.parts]
    assert [t.split("\n", 1)[0] for t in texts] == ['"id"'] * len(part_rows)
    assert "".join(t.split("\n", 1)[1] for t in texts) == lines(0, sum(sizes)).decode()
    assert sorted(lake.list_uris(f"{lake.url}/out")) == sorted([result.manifest_uri] + [p.uri for p in manifest.parts])


def test_the_manifest_describes_every_part_and_the_write(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    chunks = [(csv_line(["a" * 30]).encode(), 1), (csv_line(["b"]).encode() * 2, 2), (csv_line(["c" * 5]).encode(), 1)]
    source = RowStream(NOTE, lambda boundary: iter(chunks))
    result = write_stream_to_lake(
        source,
        lake,
        f"{lake.url}/out",
        label="sheet Überblick",
        options=ExportOptions(format="csv.gz", rows_per_part=3),
        target="raw.notes",
        logical_date="2026-01-05T00:00:00",
        run_id="manual__1",
    )
    manifest = read_manifest(lake, result.manifest_uri)
    assert (manifest.target, manifest.source, manifest.logical_date, manifest.run_id) == (
        "raw.notes",
        "sheet Überblick",
        "2026-01-05T00:00:00",
        "manual__1",
    )
    assert (manifest.format, manifest.columns, manifest.rows) == ("csv.gz", [{"name": "note", "type": "text"}], 4)
    assert [(p.rows, p.max_row_bytes) for p in manifest.parts] == [(3, 33), (1, 8)]
    for part in manifest.parts:
        data = lake.read_bytes(part.uri)
        assert (part.bytes, part.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert "Überblick" in lake.read_bytes(result.manifest_uri).decode("utf-8")


def test_a_write_without_target_or_run_leaves_those_fields_empty(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    manifest = read_manifest(lake, export(lake, stream([1])).manifest_uri)
    assert (manifest.target, manifest.logical_date, manifest.run_id, manifest.format) == ("", "", "", "csv.gz")


def test_the_result_counts_rows_parts_bytes_and_time(tmp_path: Path, clock: None) -> None:
    lake = LocalLake(tmp_path / "lake")
    result = export(lake, stream([2, 2, 1]), format="csv", rows_per_part=2)
    manifest = read_manifest(lake, result.manifest_uri)
    assert result == ExportResult(f"{lake.url}/out/_manifest.json", 5, 3, 13 + 13 + 9, 2.5, ID)
    assert [p.bytes for p in manifest.parts] == [13, 13, 9]  # '"id"\n' and 4 bytes a row


def test_progress_reports_running_totals_after_every_part(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    lake = LocalLake(tmp_path / "lake")
    calls: list[tuple[int, int, int]] = []
    caplog.set_level(logging.INFO, logger="headwater.parts.writer")
    write_stream_to_lake(
        stream([2, 2, 1]),
        lake,
        f"{lake.url}/out",
        label="src",
        options=ExportOptions(format="csv", rows_per_part=2, parts_in_flight=1, log_every_parts=2),
        progress=lambda rows, size, parts: calls.append((rows, size, parts)),
    )
    assert calls == [(2, 13, 1), (4, 26, 2), (5, 35, 3)]
    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith("export progress")]
    assert progress == ["export progress: 2 parts, 4 rows, 0.0 MB uploaded"]


def test_progress_and_summary_log_lines_give_megabytes(
    tmp_path: Path, clock: None, caplog: pytest.LogCaptureFixture
) -> None:
    lake = LocalLake(tmp_path / "lake")
    row = csv_line(["x" * 49_990]).encode()  # with the header '"note"\n' the part is exactly 50,000 bytes
    caplog.set_level(logging.INFO, logger="headwater.parts.writer")
    result = write_stream_to_lake(
        RowStream(NOTE, lambda boundary: iter([(row, 1)])),
        lake,
        f"{lake.url}/out",
        label="s",
        options=ExportOptions("csv"),
    )
    assert result.bytes == 50_000
    assert [r.getMessage() for r in caplog.records if r.name == "headwater.parts.writer"] == [
        "export progress: 1 parts, 1 rows, 0.1 MB uploaded",
        f"exported 1 rows in 1 parts (0.1 MB) to {lake.url}/out in 2.5s",
    ]


def test_parquet_parts_rotate_and_keep_arrow_types(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    columns = [
        Column("id", ColumnType("integer")),
        Column("at", ColumnType("timestamptz")),
        Column("n", ColumnType("numeric")),
    ]
    data = [b'"1","2026-01-05 10:00:00+00","1.50"\n', b'"2","2026-01-05 19:00:00+09","2.000"\n', b'"3",,\n']
    source = RowStream(columns, lambda boundary: iter([(line, 1) for line in data]))
    manifest = read_manifest(lake, export(lake, source, format="parquet", rows_per_part=2).manifest_uri)
    assert (manifest.format, [p.rows for p in manifest.parts]) == ("parquet", [2, 1])
    tables = [pq.read_table(io.BytesIO(lake.read_bytes(p.uri))) for p in manifest.parts]
    schema = pa.schema([("id", pa.int64()), ("at", pa.timestamp("us", tz="UTC")), ("n", pa.string())])
    assert [t.schema for t in tables] == [schema, schema]
    assert pa.concat_tables(tables).to_pydict() == {
        "id": [1, 2, 3],
        "at": [datetime(2026, 1, 5, 10, tzinfo=UTC)] * 2 + [None],
        "n": ["1.50", "2.000", None],
    }


def test_the_compression_level_option_reaches_the_parts(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    fast = read_manifest(lake, export(lake, stream([50])).manifest_uri).parts[0]
    assert lake.read_bytes(fast.uri)[8] == 4  # gzip XFL: fastest
    best = read_manifest(lake, export(lake, stream([50]), level=9).manifest_uri).parts[0]
    assert lake.read_bytes(best.uri)[8] == 2  # gzip XFL: maximum compression


def test_an_unknown_format_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    message = "unknown export format 'xml'; use one of csv.gz, csv.zst, csv, parquet"
    with pytest.raises(HeadwaterError, match=f"^{re.escape(message)}$"):
        export(lake, stream([1]), format="xml")
    assert not (tmp_path / "lake").exists()


class Broken(Exception):
    pass


def failing(sizes: list[int], error: BaseException, columns: list[Column] = ID) -> RowStream:
    def chunks(boundary: int) -> Iterator[tuple[bytes, int]]:
        yield from stream(sizes, columns).chunks(boundary)
        raise error

    return RowStream(columns, chunks)


@pytest.mark.parametrize("error", [Broken("source broke"), KeyboardInterrupt("source broke")])
def test_a_failing_source_leaves_the_previous_publish_and_nothing_else(
    tmp_path: Path, scratch_root: Path, error: BaseException
) -> None:
    lake = LocalLake(tmp_path / "lake")
    before = export(lake, stream([3]))
    listing = lake.list_uris(f"{lake.url}/out")
    with pytest.raises(type(error), match="^source broke$"):
        export(lake, failing([2, 2, 2], error), rows_per_part=2)
    assert lake.list_uris(f"{lake.url}/out") == listing
    assert read_manifest(lake, before.manifest_uri).rows == 3
    assert list(scratch_root.iterdir()) == []


def test_columns_a_warehouse_cannot_name_are_refused_before_a_row_is_read(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    read: list[int] = []

    def chunks(boundary: int) -> Iterator[tuple[bytes, int]]:
        read.append(boundary)
        yield lines(0, 1), 1

    columns = [Column("id", ColumnType("integer")), Column("ID", ColumnType("integer"))]
    with pytest.raises(SourceError) as caught:
        export(lake, RowStream(columns, chunks))
    assert str(caught.value).startswith("src: columns 'id' and 'ID' (column 2) have the same name to a warehouse")
    assert read == [] and lake.list_uris(lake.url) == []


def test_a_part_that_cannot_be_encoded_fails_the_write_and_leaves_nothing(tmp_path: Path, scratch_root: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    # Rows 1-10 fill two parts; row 14 (the 2nd of a 2-row chunk in the third part) is bad; then far more chunks
    # than the queue holds: the writer drains them after failing.
    good = [(lines(i, 1), 1) for i in range(1, 13)]
    bad = RowStream(ID, lambda boundary: iter([*good, (b'13\n"abc"\n', 2)] + [(lines(i, 1), 1) for i in range(40)]))
    with pytest.raises(SourceError) as caught:
        export(lake, bad, format="parquet", rows_per_part=5)
    assert str(caught.value) == "src: row 14, column 'id': a value that does not convert to int64"
    assert lake.list_uris(f"{lake.url}/out") == []
    assert list(scratch_root.iterdir()) == []


class FullDiskEncoder(PartEncoder):
    """The scratch disk fills up as a part is flushed, after the writer has taken the end of the stream."""

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        raise OSError(28, "No space left on device")


@pytest.mark.parametrize("sizes", [[1], [2], []])  # the last part ends short, exactly at rows_per_part, or empty
def test_a_failure_after_the_last_chunk_fails_the_write_promptly_and_leaves_nothing(
    tmp_path: Path, scratch_root: Path, monkeypatch: pytest.MonkeyPatch, sizes: list[int]
) -> None:
    monkeypatch.setattr("headwater.parts.writer.PartEncoder", FullDiskEncoder)
    lake = LocalLake(tmp_path / "lake")
    with pytest.raises(OSError, match=r"^\[Errno 28\] No space left on device$"):
        export(lake, stream(sizes), rows_per_part=2)
    assert lake.list_uris(f"{lake.url}/out") == []
    assert list(scratch_root.iterdir()) == []


class FlakyLake(LocalLake):
    """Uploads the first part, then fails."""

    def write_file(self, uri: str, source: Path) -> None:
        if not uri.endswith("-00000.csv.gz"):
            raise LakeError(f"{uri}: upload failed: disk full", transient=True)
        super().write_file(uri, source)


def test_a_failed_upload_fails_the_write_and_removes_the_parts_already_uploaded(
    tmp_path: Path, scratch_root: Path
) -> None:
    lake = FlakyLake(tmp_path / "lake")
    with pytest.raises(LakeError, match=r"part-[0-9a-f]{12}-00001\.csv\.gz: upload failed: disk full$"):
        export(lake, stream([2, 2, 2]), rows_per_part=2)
    assert lake.list_uris(f"{lake.url}/out") == []
    assert list(scratch_root.iterdir()) == []


class SlowLake(LocalLake):
    """Reads a part, takes ``delay`` seconds (only the first ``slow`` uploads), then publishes it."""

    def __init__(self, root: Path, delay: float, slow: int = 1_000) -> None:
        super().__init__(root)
        self.delay, self.slow = delay, slow
        self.started = threading.Event()
        self.lock = threading.Condition()
        self.busy = self.calls = 0

    def write_file(self, uri: str, source: Path) -> None:
        data = source.read_bytes()
        with self.lock:
            self.busy += 1
            self.calls += 1
            slow = self.calls <= self.slow
        self.started.set()
        if slow:
            time.sleep(self.delay)
        self.write_bytes(uri, data)
        with self.lock:
            self.busy -= 1
            self.lock.notify_all()

    def wait_idle(self) -> None:
        with self.lock:
            assert self.lock.wait_for(lambda: self.busy == 0, timeout=5)


def test_a_failure_waits_for_uploads_in_flight_before_removing_the_parts(tmp_path: Path, scratch_root: Path) -> None:
    lake = SlowLake(tmp_path / "lake", delay=0.2)

    def chunks(boundary: int) -> Iterator[tuple[bytes, int]]:
        yield lines(0, 1), 1
        yield lines(1, 1), 1
        assert lake.started.wait(5)
        raise Broken("source broke")

    with pytest.raises(Broken, match="^source broke$"):
        export(lake, RowStream(ID, chunks), rows_per_part=1, parts_in_flight=2)
    lake.wait_idle()
    assert lake.list_uris(f"{lake.url}/out") == []
    assert list(scratch_root.iterdir()) == []


def test_a_slow_upload_holds_the_reader_back_without_losing_rows(tmp_path: Path) -> None:
    lake = SlowLake(tmp_path / "lake", delay=0.65, slow=1)  # longer than the reader waits for queue room
    result = export(lake, stream([1] * 12), format="csv", rows_per_part=1, parts_in_flight=1)
    manifest = read_manifest(lake, result.manifest_uri)
    assert [p.rows for p in manifest.parts] == [1] * 12
    assert "".join(part_text(lake, p.uri, "csv").split("\n", 1)[1] for p in manifest.parts) == lines(0, 12).decode()


class MovingLake(LocalLake):
    """Takes the finished part file itself (moves it into place), as a lake on the same disk may."""

    def write_file(self, uri: str, source: Path) -> None:
        self.write_bytes(uri, source.read_bytes())
        source.unlink()


def test_a_lake_that_moves_the_part_file_into_place_is_fine(tmp_path: Path, scratch_root: Path) -> None:
    lake = MovingLake(tmp_path / "lake")
    result = export(lake, stream([2, 2, 1]), rows_per_part=2)
    assert [p.rows for p in read_manifest(lake, result.manifest_uri).parts] == [2, 2, 1]
    assert list(scratch_root.iterdir()) == []


def test_a_published_manifest_is_what_the_writer_returned(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path / "lake")
    result = export(lake, stream([3, 1]), rows_per_part=3)
    manifest = Manifest.from_json(lake.read_bytes(result.manifest_uri).decode(), result.manifest_uri)
    assert (manifest.rows, len(manifest.parts), sum(p.bytes for p in manifest.parts)) == (
        result.rows,
        result.parts,
        result.bytes,
    )
