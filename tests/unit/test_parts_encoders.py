"""Part encoders: CSV text through gzip, zstd or no compressor, and CSV chunks parsed into typed Parquet."""

from __future__ import annotations

import gzip
import random
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from headwater.coltypes import ColumnType
from headwater.parts import csv_line
from headwater.parts.encoders import PartEncoder, RowConversionError
from headwater.table import Column

pytestmark = pytest.mark.unit

TEXT_COLUMNS = [Column("id", ColumnType("integer")), Column("note", ColumnType("text"))]
ROWS = [["1", 'say "hi"'], ["2", None], ["3", "line\nbreak"], ["4", "Grüße"]]
EXPECTED_TEXT = '"id","note"\n"1","say ""hi"""\n"2",\n"3","line\nbreak"\n"4","Grüße"\n'
DECOMPRESS = {
    "csv": lambda data: data,
    "csv.gz": gzip.decompress,
    "csv.zst": lambda data: zstandard.ZstdDecompressor().decompressobj().decompress(data),
}


def encode(path: Path, columns: list[Column], fmt: str, chunks: list[bytes], level: int | None = None) -> bytes:
    with PartEncoder(path, columns, fmt, level) as sink:
        for chunk in chunks:
            sink.write(chunk)
    return path.read_bytes()


def chunks_of(rows: list[list[str | None]], size: int = 2) -> list[bytes]:
    return ["".join(csv_line(r) for r in rows[i : i + size]).encode("utf-8") for i in range(0, len(rows), size)]


@pytest.mark.parametrize(
    ("values", "line"),
    [
        (["a", "b"], '"a","b"\n'),
        ([None, "x", None], ',"x",\n'),
        ([""], '""\n'),
        (['he said "no"'], '"he said ""no"""\n'),
        (["a,b\nc"], '"a,b\nc"\n'),
        ([], "\n"),
    ],
)
def test_csv_line_quotes_text_and_leaves_null_empty(values: list[str | None], line: str) -> None:
    assert csv_line(values) == line


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "csv.zst"])
def test_a_csv_part_holds_the_header_then_the_chunks_text(tmp_path: Path, fmt: str) -> None:
    data = encode(tmp_path / f"part.{fmt}", TEXT_COLUMNS, fmt, chunks_of(ROWS))
    assert DECOMPRESS[fmt](data).decode("utf-8") == EXPECTED_TEXT


@pytest.mark.parametrize(
    ("fmt", "magic"),
    [("csv", b'"id",'), ("csv.gz", b"\x1f\x8b"), ("csv.zst", b"\x28\xb5\x2f\xfd")],
)
def test_each_csv_format_is_written_with_its_own_compressor(tmp_path: Path, fmt: str, magic: bytes) -> None:
    data = encode(tmp_path / f"part.{fmt}", TEXT_COLUMNS, fmt, chunks_of(ROWS))
    assert data[: len(magic)] == magic


@pytest.mark.parametrize("fmt", ["csv", "csv.gz", "csv.zst"])
def test_a_part_without_rows_holds_only_the_header(tmp_path: Path, fmt: str) -> None:
    data = encode(tmp_path / f"part.{fmt}", TEXT_COLUMNS, fmt, [])
    assert DECOMPRESS[fmt](data) == b'"id","note"\n'


def compressible(n: int = 3000) -> list[bytes]:
    return chunks_of([[str(i), f"row number {i * 7} with some repeated text"] for i in range(n)], 500)


@pytest.mark.parametrize(("level", "xfl"), [(None, 4), (1, 4), (9, 2)])
def test_gzip_parts_use_the_fastest_level_unless_told(tmp_path: Path, level: int | None, xfl: int) -> None:
    data = encode(tmp_path / "part.csv.gz", TEXT_COLUMNS, "csv.gz", compressible(), level)
    assert data[8] == xfl  # the gzip header's XFL: 4 = fastest, 2 = maximum compression
    assert gzip.decompress(data) == b'"id","note"\n' + b"".join(compressible())


def test_gzip_without_a_level_is_byte_identical_to_level_1(tmp_path: Path) -> None:
    default = encode(tmp_path / "a.csv.gz", TEXT_COLUMNS, "csv.gz", compressible())
    assert default == encode(tmp_path / "b.csv.gz", TEXT_COLUMNS, "csv.gz", compressible(), 1)
    assert default != encode(tmp_path / "c.csv.gz", TEXT_COLUMNS, "csv.gz", compressible(), 2)


def test_zstd_without_a_level_is_byte_identical_to_level_3(tmp_path: Path) -> None:
    default = encode(tmp_path / "a.csv.zst", TEXT_COLUMNS, "csv.zst", compressible())
    assert default == encode(tmp_path / "b.csv.zst", TEXT_COLUMNS, "csv.zst", compressible(), 3)
    assert len(default) != len(encode(tmp_path / "c.csv.zst", TEXT_COLUMNS, "csv.zst", compressible(), 4))


def test_a_zstd_level_is_passed_to_the_compressor(tmp_path: Path) -> None:
    fast = encode(tmp_path / "a.csv.zst", TEXT_COLUMNS, "csv.zst", compressible(), 1)
    best = encode(tmp_path / "b.csv.zst", TEXT_COLUMNS, "csv.zst", compressible(), 19)
    assert len(best) < len(fast) < len(encode(tmp_path / "c.csv.zst", TEXT_COLUMNS, "csv.zst", compressible(), 3))


TYPED = [
    ("i", "integer", pa.int64(), ['"9007199254740993"', '"-1"', ""], [9007199254740993, -1, None]),
    ("d", "double", pa.float64(), ['"1.5"', '"-2e3"', ""], [1.5, -2000.0, None]),
    ("day", "date", pa.date32(), ['"2026-01-05"', '"1999-12-31"', ""], [date(2026, 1, 5), date(1999, 12, 31), None]),
    (
        "ts",
        "timestamp",
        pa.timestamp("us"),
        ['"2026-01-05 10:30:00.123456"', '"2026-01-05 00:00:00"', ""],
        [datetime(2026, 1, 5, 10, 30, 0, 123456), datetime(2026, 1, 5), None],
    ),
    (
        "tz",
        "timestamptz",
        pa.timestamp("us", tz="UTC"),
        ['"2026-01-05 10:00:00+00"', '"2026-01-05 19:00:00+09"', '"2026-01-05 04:30:00-05:30"'],
        [datetime(2026, 1, 5, 10, tzinfo=UTC)] * 3,
    ),
    (
        "n",
        "numeric(12,2)",
        pa.decimal128(12, 2),
        ['"12.34"', '"-0.50"', ""],
        [Decimal("12.34"), Decimal("-0.50"), None],
    ),
    (
        "big",
        "numeric",
        pa.string(),
        ['"123456789012345678901234567890.123456789"', '"1e-40"', ""],
        ["123456789012345678901234567890.123456789", "1e-40", None],
    ),
    ("t", "text", pa.string(), ['"say ""hi"""', '""', ""], ['say "hi"', "", None]),
]


def read_parquet(path: Path) -> pa.Table:
    return pq.read_table(path)


def test_parquet_parts_keep_each_columns_arrow_type_and_values(tmp_path: Path) -> None:
    columns = [Column(name, ColumnType.parse(spec)) for name, spec, *_ in TYPED]
    lines = [",".join(cells[row] for _, _, _, cells, _ in TYPED) + "\n" for row in range(3)]
    encode(tmp_path / "part.parquet", columns, "parquet", [lines[0].encode(), (lines[1] + lines[2]).encode()])
    table = read_parquet(tmp_path / "part.parquet")
    assert table.schema == pa.schema([(name, arrow) for name, _, arrow, _, _ in TYPED])
    assert {name: table.column(name).to_pylist() for name, *_ in TYPED} == {n: v for n, _, _, _, v in TYPED}


@pytest.mark.parametrize(
    ("cells", "values"),
    [
        (["t", "true", "1", '"t"'], [True, True, True, True]),
        (["f", "false", "0", '"f"'], [False, False, False, False]),
        (["", "f", "t", "0"], [None, False, True, False]),
    ],
)
def test_parquet_booleans_read_postgres_and_plain_spellings(
    tmp_path: Path, cells: list[str], values: list[Any]
) -> None:
    data = "".join(f"{i},{cell}\n" for i, cell in enumerate(cells)).encode()
    columns = [Column("id", ColumnType("integer")), Column("flag", ColumnType("boolean"))]
    encode(tmp_path / "part.parquet", columns, "parquet", [data])
    table = read_parquet(tmp_path / "part.parquet")
    assert table.schema == pa.schema([("id", pa.int64()), ("flag", pa.bool_())])
    assert table.column("flag").to_pylist() == values


def test_parquet_text_is_null_only_when_unquoted_and_empty(tmp_path: Path) -> None:
    # PostgreSQL's CSV COPY leaves plain values unquoted: words like NA or NULL are text, not NULL
    data = b'1,NA\n2,NULL\n3,\n4,""\n5,"a\nb"\n6,null\n'
    encode(tmp_path / "part.parquet", TEXT_COLUMNS, "parquet", [data])
    table = read_parquet(tmp_path / "part.parquet")
    assert table.column("id").to_pylist() == [1, 2, 3, 4, 5, 6]
    assert table.column("note").to_pylist() == ["NA", "NULL", None, "", "a\nb", "null"]


def test_parquet_row_groups_are_sized_by_bytes_zstd_compressed_dictionaries_for_text_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encode(tmp_path / "one.parquet", TEXT_COLUMNS, "parquet", chunks_of(ROWS))
    meta = pq.ParquetFile(tmp_path / "one.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [4]  # chunks gathered
    assert {meta.row_group(0).column(i).compression for i in range(2)} == {"ZSTD"}
    encodings = [set(meta.row_group(0).column(i).encodings) for i in range(2)]
    assert "RLE_DICTIONARY" not in encodings[0] and "RLE_DICTIONARY" in encodings[1]  # id plain, note dictionary
    monkeypatch.setattr("headwater.parts.encoders.ROW_GROUP_BYTES", 1)  # every chunk is past the size
    encode(tmp_path / "part.parquet", TEXT_COLUMNS, "parquet", chunks_of(ROWS))
    meta = pq.ParquetFile(tmp_path / "part.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [2, 2]
    assert read_parquet(tmp_path / "part.parquet").to_pylist() == [
        {"id": 1, "note": 'say "hi"'},
        {"id": 2, "note": None},
        {"id": 3, "note": "line\nbreak"},
        {"id": 4, "note": "Grüße"},
    ]


def test_a_parquet_part_without_rows_holds_the_schema(tmp_path: Path) -> None:
    encode(tmp_path / "part.parquet", TEXT_COLUMNS, "parquet", [])
    table = read_parquet(tmp_path / "part.parquet")
    assert (table.num_rows, table.schema) == (0, pa.schema([("id", pa.int64()), ("note", pa.string())]))


def test_a_value_that_does_not_fit_its_parquet_column_fails_the_part(tmp_path: Path) -> None:
    with pytest.raises(RowConversionError) as caught:
        encode(tmp_path / "part.parquet", TEXT_COLUMNS, "parquet", [b'1,"x\ny"\n2,"z"\nabc,"w"\n'])
    assert (caught.value.column, caught.value.row, caught.value.detail) == (
        "id",
        3,
        "a value that does not convert to int64",
    )
    assert "abc" not in str(caught.value)  # cell data


def test_a_decimal_with_more_digits_than_its_column_says_so(tmp_path: Path) -> None:
    columns = [Column("note", ColumnType("text")), Column("amount", ColumnType("numeric", 5, 2))]
    with pytest.raises(RowConversionError) as caught:
        encode(tmp_path / "part.parquet", columns, "parquet", [b'"a",1.5\n"b",12345.5\n'])
    assert str(caught.value) == (
        "row 2 of the chunk, column 'amount': "
        "a value that does not convert to decimal128(5, 2) (more digits than it holds)"
    )


def test_a_chunk_arrow_cannot_parse_is_an_error_without_its_text(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError) as caught:
        encode(tmp_path / "part.parquet", TEXT_COLUMNS, "parquet", [b'1,"x",3\n'])
    assert str(caught.value) == "Arrow could not read a chunk of CSV: CSV parse error"


def test_a_row_group_closes_once_its_chunks_reach_the_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks add up to ROW_GROUP_BYTES of Arrow data: at exactly two chunks' worth, four chunks make two groups."""
    import pyarrow.csv as pacsv

    rows = [[str(i), "ab"] for i in range(1, 5)]  # four one-row chunks of the same Arrow size
    chunks = chunks_of(rows, size=1)
    one = pacsv.read_csv(pa.py_buffer(chunks[0]), read_options=pacsv.ReadOptions(column_names=["id", "note"]))
    monkeypatch.setattr("headwater.parts.encoders.ROW_GROUP_BYTES", 2 * one.nbytes)
    encode(tmp_path / "part.parquet", TEXT_COLUMNS, "parquet", chunks)
    meta = pq.ParquetFile(tmp_path / "part.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [2, 2]


def test_parquet_text_with_line_breaks_survives_chunks_larger_than_arrows_read_block(tmp_path: Path) -> None:
    rng = random.Random(7)
    notes = ["".join(rng.choice('ab\n,"') for _ in range(rng.randint(0, 40))) for _ in range(40_000)]
    data = "".join(csv_line([str(i), note]) for i, note in enumerate(notes)).encode()
    assert len(data) > 1 << 20  # more than one block of Arrow's CSV reader
    encode(tmp_path / "part.parquet", TEXT_COLUMNS, "parquet", [data])
    table = read_parquet(tmp_path / "part.parquet")
    assert table.column("note").to_pylist() == notes
    assert table.column("id").to_pylist() == list(range(40_000))


def test_a_timestamptz_value_arrow_cannot_read_fails_the_part_naming_it(tmp_path: Path) -> None:
    columns = [Column("id", ColumnType("integer")), Column("at", ColumnType("timestamptz"))]
    message = "Failed to parse string: 'yesterday' as a scalar of type timestamp[us, tz=UTC]: expected a zone offset"
    with pytest.raises(pa.ArrowInvalid, match=f"^{re.escape(message)}"):
        encode(tmp_path / "part.parquet", columns, "parquet", [b'"1","2026-01-05 10:00:00+00"\n"2","yesterday"\n'])


def test_a_null_row_of_a_one_column_table_is_kept_in_parquet(tmp_path: Path) -> None:
    """An empty CSV line is a NULL row there; skipping it would lose rows the manifest counts."""
    import pyarrow.parquet as pq

    path = tmp_path / "p.parquet"
    with PartEncoder(path, [Column("v", ColumnType("integer"))], "parquet") as sink:
        sink.write(b'"1"\n\n"3"\n')
    assert pq.read_table(path).column("v").to_pylist() == [1, None, 3]


def test_the_writer_lets_pyarrow_probe_for_pandas_only_while_pandas_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import contextlib

    import headwater.parts.writer as writer

    refused: list[tuple[str, ...]] = []

    @contextlib.contextmanager
    def recording(*packages: str) -> Any:
        refused.append(packages)
        yield

    monkeypatch.setattr(writer, "without", recording)
    writer._lean_arrow_memory()
    assert refused == [("pandas",)]
