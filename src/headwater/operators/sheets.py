"""Google Sheets and workbooks: ``SheetsToLakeOperator`` (tabs validated, typed and staged) and
``WarehouseToSheetOperator`` (a query result written back into a tab, never half-written)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import Context

from headwater.operators.base import HeadwaterOperator, check_query, is_templated, logical_date_of
from headwater.operators.lineage import (
    lake_table_dataset,
    sheet_dataset,
    tables_in,
    warehouse_dataset,
    workbook_dataset,
)


class SheetsToLakeOperator(HeadwaterOperator):
    """Read tabs of one Google Sheet (one batched request) or one workbook (.xlsx, .csv), validate and type
    them, and stage each as parts plus a manifest.

    ``tabs``: one mapping per tab with the keys of a ``sheets:`` entry of pipelines.yaml (``tab``, ``table``,
    ``columns``, ``keys``, ``clean``, ``allow_empty``, ``render``, ``load``). Pushes each table's manifest URI
    under XCom key ``schema__table`` and returns them all. Every tab is validated before any is staged.
    """

    template_fields: Sequence[str] = ("spreadsheet", "workbook", "lake_url")

    def __init__(
        self,
        *,
        tabs: Sequence[Mapping[str, Any]],
        spreadsheet: str | None = None,
        workbook: str | None = None,
        sheets_conn_id: str = "google_sheets_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (spreadsheet is None) == (workbook is None):
            raise self.argument_error(
                "spreadsheet", "give exactly one of 'spreadsheet' (URL or key) or 'workbook' (a path)"
            )
        if not tabs:
            raise self.argument_error("tabs", "name at least one tab")
        self.spreadsheet = spreadsheet
        self.workbook = workbook
        self.tabs = [dict(t) for t in tabs]
        self.sheets_conn_id = sheets_conn_id
        if not any(map(is_templated, (spreadsheet, workbook))):
            self.sources()  # cheap: the same pydantic checks as pipelines.yaml

    def sources(self) -> Any:
        """The rendered arguments as the core's source group."""
        from pydantic import ValidationError

        from headwater.config import SheetSource
        from headwater.outputs_config import spreadsheet_key
        from headwater.pipeline import SourceGroup

        where: dict[str, Any] = {"spreadsheet": self.spreadsheet} if self.spreadsheet else {"workbook": self.workbook}
        built = []
        for index, tab in enumerate(self.tabs):
            try:
                built.append(SheetSource.model_validate({**tab, **where}))
            except ValidationError as exc:
                problem = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'tab'}: {e['msg']}" for e in exc.errors())
                raise self.argument_error(f"tabs[{index}]", problem.replace("Value error, ", "")) from None
        if self.spreadsheet:
            return SourceGroup("spreadsheet", spreadsheet_key(self.spreadsheet), tuple(built), self.task_id)
        path = Path(str(self.workbook)).expanduser()
        return SourceGroup("workbook", str(path.resolve()), tuple(built), self.task_id)

    def run(self, context: Context) -> dict[str, str]:
        from headwater.airflow.connections import sheets_client
        from headwater.pipeline import read_group, stage_group

        group = self.sources()
        raws = read_group(group, sheets_client=lambda: sheets_client(self.sheets_conn_id))
        lake = self.lake()
        manifests = stage_group(group, raws, lake, logical_date=logical_date_of(context), run_id=context["run_id"])
        for source in group.sources:
            context["ti"].xcom_push(key=source.task_stem, value=manifests[source.task_stem])
            if group.kind == "spreadsheet":
                self._inputs.append(sheet_dataset(group.location, source.tab or ""))
            else:
                self._inputs.append(workbook_dataset(group.location, source.tab))
            self._outputs.append(_staged(lake, manifests[source.task_stem]))
        return manifests


class WarehouseToSheetOperator(HeadwaterOperator):
    """Run one read-only warehouse query (templated; a ``.sql`` file works) and replace a tab's contents with
    the result, through a hidden staging tab and one atomic update: the tab is never left half-written."""

    template_fields: Sequence[str] = ("sql", "spreadsheet", "tab", "warehouse_conn_id")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql"}  # noqa: RUF012 - Airflow's own declaration style
    ui_color = "#e8daef"

    def __init__(
        self,
        *,
        sql: str,
        spreadsheet: str,
        tab: str,
        chunk_rows: int = 5000,
        sheets_conn_id: str = "google_sheets_default",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from headwater.outputs_config import spreadsheet_key

        self.sql = self.check("sql", sql, check_query)
        self.spreadsheet = self.check("spreadsheet", spreadsheet, spreadsheet_key)
        self.tab = tab
        if not isinstance(chunk_rows, int) or chunk_rows < 1:
            raise self.argument_error("chunk_rows", f"{chunk_rows!r} is not a positive number")
        self.chunk_rows = chunk_rows
        self.sheets_conn_id = sheets_conn_id

    def run(self, context: Context) -> dict[str, Any]:
        from headwater.airflow.connections import sheets_client
        from headwater.outputs_config import spreadsheet_key
        from headwater.sinks.sheet_writer import write_rows_to_sheet
        from headwater.sources.sheets import WRITE_SCOPES

        client = sheets_client(self.sheets_conn_id, scopes=WRITE_SCOPES)
        key = spreadsheet_key(self.spreadsheet)
        warehouse = self.warehouse()
        with warehouse.query_rows(self.sql, batch=self.chunk_rows) as (names, rows):
            result = write_rows_to_sheet(
                client,
                key,
                self.tab,
                names,
                rows,
                chunk_rows=self.chunk_rows,
                progress=lambda n: self.log.info("%s: %d rows written to the staging tab", self.tab, n),
            )
        self._inputs = [warehouse_dataset(warehouse, name) for name in tables_in(self.sql)]
        output = sheet_dataset(key, self.tab)
        output.rows = result.rows
        self._outputs = [output]
        return {
            "spreadsheet": result.spreadsheet,
            "tab": result.tab,
            "rows": result.rows,
            "columns": result.columns,
            "seconds": result.seconds,
        }


def _staged(lake: Any, manifest_uri: str) -> Any:
    from headwater.parts import read_manifest

    manifest = read_manifest(lake, manifest_uri)
    size = sum(p.bytes for p in manifest.parts)
    return lake_table_dataset(lake.url, manifest.target, manifest.typed_columns, manifest.rows, size)
