"""Part encoders: CSV chunks written through a compressor (gzip, zstd, none) or parsed into Parquet row groups."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from headwater.table import Column

ROW_GROUP_BYTES = 8 << 20  # Arrow bytes of parsed rows per Parquet row group (~70,000 rows of pgbench_accounts)
MAX_ROW_GROUP_ROWS = 1 << 20  # Arrow's own default cap


def csv_line(values: Sequence[str | None]) -> str:
    """One CSV record: text always quoted (quotes doubled), NULL as an empty unquoted field."""
    return ",".join("" if v is None else '"' + v.replace('"', '""') + '"' for v in values) + "\n"


class RowConversionError(Exception):
    """A value Arrow could not convert to its column's type: the column, the row within the chunk (1-based) and
    what went wrong, without the value itself (it is cell data)."""

    def __init__(self, column: str, row: int, detail: str) -> None:
        super().__init__(f"row {row} of the chunk, column {column!r}: {detail}")
        self.column, self.row, self.detail = column, row, detail


class PartEncoder:
    """A part file being written: header plus CSV chunks through a compressor, or Parquet row groups."""

    def __init__(self, path: Path, columns: list[Column], fmt: str, level: int | None = None) -> None:
        self.path = path
        self.columns = columns
        self.fmt = fmt
        self.level = level
        self.handle: IO[bytes] | None = None
        self.compressor: Any = None
        self.parquet: Any = None

    def __enter__(self) -> PartEncoder:
        fmt = self.fmt
        if fmt == "parquet":
            self.parquet = _ParquetPart(self.path, self.columns)
            return self
        self.handle = self.path.open("wb")
        if fmt == "csv.gz":
            import zlib

            self.compressor = zlib.compressobj(self.level or 1, zlib.DEFLATED, 31)
        elif fmt == "csv.zst":
            import zstandard

            self.compressor = zstandard.ZstdCompressor(level=self.level or 3).compressobj()
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

    Parsed chunks are held until they make ``row_group_bytes`` of Arrow data, then written as one row group
    (zero-copy): readers get row groups of useful size (about 70,000 rows of pgbench_accounts at 8 MB) while
    memory stays bounded by one row group. timestamptz columns are read as text, their ``+00`` offsets
    (PostgreSQL's) widened to ``+00:00``, and cast afterwards: older Arrow releases refuse the short form.
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
        # ignore_empty_lines off: in a one-column table an empty line is a NULL row, not nothing
        self.parse_options = pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False)
        self.convert_options = pacsv.ConvertOptions(
            column_types=read_types,
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t", "true", "1"],
            false_values=["f", "false", "0"],
        )
        # Dictionaries only for text: on unique numbers they cost ~4x the row group in memory and gain nothing zstd
        # does not already (measured: 16 MB row groups of pgbench_accounts, +68 MB RSS with them, +12 without).
        text = [f.name for f in self.schema if pa.types.is_string(f.type)]
        self.writer = pq.ParquetWriter(path, self.schema, compression="zstd", use_dictionary=text)
        self.row_group_bytes = ROW_GROUP_BYTES
        self.pending: list[Any] = []
        self.pending_bytes = 0

    def write(self, data: bytes) -> None:
        import pyarrow as pa

        try:
            table = self.read(
                pa.py_buffer(data),
                read_options=self.read_options,
                parse_options=self.parse_options,
                convert_options=self.convert_options,
            )
        except pa.ArrowInvalid as exc:
            raise self._conversion_error(str(exc)) from None
        if self.zoned:
            import pyarrow.compute as pc  # only here: its kernels cost 8 MB of memory to load

            for name in self.zoned:
                text = pc.replace_substring_regex(table.column(name), pattern=r"([+-]\d\d)$", replacement=r"\1:00")
                index = table.schema.get_field_index(name)
                table = table.set_column(index, name, pc.cast(text, self.schema.field(name).type))
        self.pending.append(table)
        self.pending_bytes += table.nbytes
        if self.pending_bytes >= self.row_group_bytes:
            self.flush()

    def _conversion_error(self, message: str) -> Exception:
        found = re.match(r"In CSV column #(\d+): Row #(\d+): ", message)
        if found is None:  # not a value's conversion: the chunk itself (never cell data in the message)
            return RuntimeError(f"Arrow could not read a chunk of CSV: {message.split(':', 1)[0]}")
        field = self.schema.field(int(found.group(1)))
        detail = f"a value that does not convert to {field.type}"
        if "precision" in message:
            detail += " (more digits than it holds)"
        return RowConversionError(field.name, int(found.group(2)), detail)

    def flush(self) -> None:
        import pyarrow as pa

        if self.pending:
            self.writer.write_table(pa.concat_tables(self.pending), row_group_size=MAX_ROW_GROUP_ROWS)
        self.pending, self.pending_bytes = [], 0

    def close(self) -> None:
        self.flush()
        self.writer.close()


def _arrow_type(column: Column) -> Any:
    import pyarrow as pa

    kind = column.type
    simple = {
        "integer": pa.int64(),
        "double": pa.float64(),
        "boolean": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
        "text": pa.string(),
    }.get(kind.kind)
    if simple is not None:
        return simple
    if kind.scale is None:
        return pa.string()  # a numeric of open scale stays exact as text; the loader settles its type
    return pa.decimal128(kind.precision, kind.scale)
