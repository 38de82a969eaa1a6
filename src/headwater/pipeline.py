"""The steps of a sheets pipeline as plain functions: read a source group, stage its tables, load, check.

The Airflow operators call these; so can tests and scripts, with no scheduler around.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from headwater.config import LoadedConfig, Pipeline, SheetSource
from headwater.errors import WarehouseError
from headwater.lake import Lake, date_slug
from headwater.outputs_config import spreadsheet_key
from headwater.parts import Manifest, read_manifest
from headwater.sources.workbook import read_workbook
from headwater.staging import stage_table
from headwater.table import RawTable, build_table
from headwater.warehouse.base import LoadResult, Warehouse

if TYPE_CHECKING:
    import gspread

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceGroup:
    """Sources read together: the tabs of one spreadsheet (one batched request) or of one workbook file."""

    kind: str  # "spreadsheet" or "workbook"
    location: str  # spreadsheet key, or absolute workbook path
    sources: tuple[SheetSource, ...]
    task_id: str
    conn_id: str | None = None  # the sources' own sheets_conn_id, if they name one

    @property
    def label(self) -> str:
        return f"{self.kind} {self.location}"


def group_sources(loaded: LoadedConfig, pipeline: Pipeline) -> list[SourceGroup]:
    """Group a pipeline's sources by spreadsheet or workbook, keeping config order."""
    groups: dict[tuple[str, str, str | None], list[SheetSource]] = {}
    for source in pipeline.sheets:
        if source.spreadsheet is not None:
            key = ("spreadsheet", spreadsheet_key(source.spreadsheet), source.sheets_conn_id)
        else:
            key = ("workbook", str(loaded.workbook_path(source)), None)
        groups.setdefault(key, []).append(source)
    result: list[SourceGroup] = []
    used: set[str] = set()
    for (kind, location, conn_id), items in groups.items():
        name = Path(location).stem if kind == "workbook" else "sheet_" + location[:12]
        task_id = "extract_" + (re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_").lower() or "source")
        base, n = task_id, 2
        while task_id in used:
            task_id, n = f"{base}_{n}", n + 1
        used.add(task_id)
        result.append(SourceGroup(kind, location, tuple(items), task_id, conn_id))
    return result


def read_group(
    group: SourceGroup, sheets_client: Callable[[], gspread.Client] | None = None, display_root: Path | None = None
) -> dict[str, RawTable]:
    """Read every source of the group, keyed by the source's ``task_stem``.

    A spreadsheet costs one metadata and one batched values request (per render option in use).
    """
    if group.kind == "workbook":
        path = Path(group.location)
        label = _display(path, display_root)
        return {s.task_stem: read_workbook(path, s.tab, label=label) for s in group.sources}
    from headwater.sources.sheets import read_spreadsheet_tabs

    if sheets_client is None:
        raise ValueError("reading a Google Sheet needs a sheets client")
    client = sheets_client()
    raws: dict[str, RawTable] = {}
    for render in sorted({s.render for s in group.sources}):
        wanted = [s for s in group.sources if s.render == render]
        tabs = read_spreadsheet_tabs(client, group.location, list(dict.fromkeys(s.tab or "" for s in wanted)), render)
        raws.update({s.task_stem: tabs[s.tab or ""] for s in wanted})
    return raws


def stage_group(
    group: SourceGroup, raws: dict[str, RawTable], lake: Lake, *, logical_date: datetime, run_id: str
) -> dict[str, str]:
    """Validate, type and stage each source of the group; return manifest URIs by source ``task_stem``.

    Every table is validated before any is staged, so one bad tab stages nothing for the group.
    """
    typed = [(source, build_table(raws[source.task_stem], source.rules())) for source in group.sources]
    manifests = {}
    for source, table in typed:
        label = f"{group.label} tab {source.tab}" if source.tab else group.label
        manifests[source.task_stem] = stage_table(
            lake, table, target=source.target, source=label, logical_date=logical_date, run_id=run_id
        )
        log.info("staged %s: %d rows, %d columns", source.table, len(table.rows), len(table.columns))
    return manifests


def batch_of(logical_date: datetime) -> str:
    """The batch label an appended row carries: its run's logical date."""
    return date_slug(logical_date)


def load_table(
    warehouse: Warehouse,
    lake: Lake,
    manifest_uri: str,
    *,
    method: str,
    keys: Sequence[str] = (),
    logical_date: datetime | None = None,
) -> LoadResult:
    manifest = read_manifest(lake, manifest_uri)
    batch = batch_of(logical_date) if logical_date is not None else None
    return warehouse.load(manifest, lake, method, keys, batch=batch)


def check_row_count(
    warehouse: Warehouse, manifest: Manifest, *, method: str, logical_date: datetime | None = None
) -> int:
    """Check the published table against the manifest: exact count for replace and for this run's append batch."""
    target = manifest.table
    if method == "append":
        assert logical_date is not None
        count = warehouse.row_count(target, batch=batch_of(logical_date))
    else:
        count = warehouse.row_count(target)
    if method == "upsert":
        if count < manifest.rows:
            raise WarehouseError(f"{target}: holds {count} rows, fewer than the {manifest.rows} just upserted")
    elif count != manifest.rows:
        what = "this run's batch of " if method == "append" else ""
        raise WarehouseError(f"{target}: {what}{count} rows in the warehouse, but {manifest.rows} were staged")
    log.info("%s: row count %d matches the manifest (%s)", target, count, method)
    return count


def _display(path: Path, root: Path | None) -> str:
    base = root or Path.cwd()
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
