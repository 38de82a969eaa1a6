"""``headwater export``: a query streamed into the lake as compressed parts and a manifest.

SIGTERM or SIGINT stops it cleanly (its uploaded parts and scratch removed, nothing published; exit 143 or
130); a second signal exits at once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn

from headwater.cli_common import (
    BAD_USAGE,
    Json,
    Output,
    Verbose,
    console,
    errors,
    fail,
    fail_on,
    print_json,
    progress_display,
    stdout_to_stderr,
    wants_json,
)
from headwater.errors import HeadwaterError
from headwater.signals import Terminated, exit_status, stop_on_signals, stop_signal

PROGRESS_LINE_SECONDS = 10.0


def export(
    source: Annotated[
        str,
        typer.Option(
            envvar="HEADWATER_SOURCE",
            help="an Airflow Connection id (its password stays out of the process list), env:VAR (a URL read "
            "from that environment variable), or a URL: postgresql://user:pass@host:port/db, "
            "mysql://user:pass@host/db, duckdb:///path/to/file.duckdb. A URL with a password is visible to "
            "other users in the process list: prefer a Connection id, env:VAR or $HEADWATER_SOURCE.",
        ),
    ],
    to: Annotated[str, typer.Option(help="s3://bucket/prefix, file:///path or a local folder")],
    query: Annotated[str | None, typer.Option(help="the SELECT to export")] = None,
    table: Annotated[str | None, typer.Option(help="schema.table to export whole (instead of --query)")] = None,
    fmt: Annotated[str, typer.Option("--format", help="csv.gz | csv.zst | csv | parquet")] = "csv.gz",
    rows_per_part: Annotated[int, typer.Option(help="rotate parts after this many rows")] = 2_000_000,
    mb_per_part: Annotated[int, typer.Option(help="...or after this many MB of uncompressed CSV")] = 256,
    parts_in_flight: Annotated[int, typer.Option(help="parts compressed/uploading at once")] = 3,
    output: Output = "table",
    as_json: Json = False,
    verbose: Verbose = False,
) -> None:
    """Export a query to the lake as compressed parts and a manifest, streaming with bounded memory.

    S3 credentials and endpoint come from the usual AWS environment (AWS_PROFILE, AWS_ENDPOINT_URL, ...).
    Exit status: 0 exported, 1 failed, 2 bad usage, 130/143 stopped by SIGINT/SIGTERM.
    """
    from headwater.export import ExportOptions, export_query_to_lake
    from headwater.export_endpoints import lake_for_destination, source_from_argument
    from headwater.identifiers import TableName

    json_mode = wants_json(output, as_json)
    if (query is None) == (table is None):
        fail("give exactly one of --query or --table", BAD_USAGE)
    started = time.monotonic()
    try:
        with stdout_to_stderr(json_mode), stop_on_signals():
            sql_source = source_from_argument(source)
            if table is not None:
                name = TableName.parse(table)
                query = f"SELECT * FROM {sql_source.quote(name.schema)}.{sql_source.quote(name.table)}"
            lake = lake_for_destination(to)
            prefix = to if "://" in to else Path(to).resolve().as_uri()
            options = ExportOptions(
                format=fmt,
                rows_per_part=rows_per_part,
                bytes_per_part=mb_per_part << 20,
                parts_in_flight=parts_in_flight,
            )
            display = progress_display(
                errors if json_mode else console,
                SpinnerColumn(),
                TextColumn("{task.description}"),
                BarColumn(bar_width=None),
                TextColumn("{task.fields[rows]:,} rows, {task.fields[mb]:.1f} MB, {task.fields[parts]} parts"),
                TimeElapsedColumn(),
            )
            with display:
                bar = display.add_task(f"exporting from {sql_source.label}", total=None, rows=0, mb=0.0, parts=0)
                last_line = [time.monotonic()]

                def update(rows: int, size: int, parts: int) -> None:
                    display.update(bar, rows=rows, mb=size / 1e6, parts=parts)
                    if display.disable and time.monotonic() - last_line[0] >= PROGRESS_LINE_SECONDS:
                        last_line[0] = time.monotonic()
                        errors.print(f"exported {rows:,} rows, {size / 1e6:.1f} MB, {parts} parts so far")

                result = export_query_to_lake(sql_source, query or "", lake, prefix, options=options, progress=update)
                display.update(bar, total=1, completed=1)
    except (KeyboardInterrupt, Terminated):
        signum = stop_signal() or 2
        errors.print(f"[bold red]stopped by {_name(signum)}[/]: its parts were removed; nothing was published")
        raise typer.Exit(exit_status(signum)) from None
    except (HeadwaterError, ValueError) as exc:
        fail_on(exc, verbose)
    seconds = time.monotonic() - started
    if json_mode:
        print_json({"rows": result.rows, "bytes": result.bytes, "parts": result.parts, "format": fmt,
                    "manifest_uri": result.manifest_uri, "seconds": round(seconds, 3)})  # fmt: skip
        return
    console.print(
        f"{result.rows:,} rows in {result.parts} parts ({result.bytes / 1e6:.1f} MB {fmt}) in {seconds:.1f}s"
        f" ({result.rows / max(seconds, 1e-9):,.0f} rows/s); manifest: {result.manifest_uri}"
    )


def _name(signum: int) -> str:
    import signal

    return signal.Signals(signum).name
