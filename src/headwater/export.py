"""Streaming export of a query to the lake: many compressed parts in parallel, bounded memory.

The source streams whole-row CSV chunks (see ``headwater.sources.sql``); the part writer
(``headwater.parts``) compresses, uploads and publishes them with a manifest.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from headwater.lake import Lake
from headwater.parts import ExportOptions, ExportResult, Progress, write_stream_to_lake
from headwater.sources.sql import SqlSource

__all__ = ["ExportOptions", "ExportResult", "export_query_to_lake"]


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
