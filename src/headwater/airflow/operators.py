"""Thin operators: each ``execute`` resolves Connections into clients and calls one core function.

Tasks pass lake URIs (manifests) to each other through XCom, never local paths, so any worker can
run any task.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from airflow.sdk import BaseOperator, Context

from headwater.config import Defaults, SheetExport, TableSource
from headwater.pipeline import SourceGroup


def logical_date_of(context: Context) -> datetime:
    """The run's logical date; a manual run without one uses its ``run_after``."""
    value: datetime | None = context.get("logical_date")
    return value if value is not None else context["dag_run"].run_after


class _HeadwaterOperator(BaseOperator):
    ui_color = "#d6eaf8"

    def __init__(self, *, defaults: Defaults, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.defaults = defaults

    def execute(self, context: Context) -> Any:
        """Run the task; a deterministic failure (bad input, config or check) fails at once, with no retry."""
        from airflow.sdk.exceptions import AirflowFailException

        from headwater.errors import HeadwaterError

        try:
            return self._execute(context)
        except HeadwaterError as exc:
            if exc.transient:
                raise
            raise AirflowFailException(str(exc)) from exc

    def _execute(self, context: Context) -> Any:
        raise TypeError(f"{type(self).__name__} does not define _execute")

    def _lake(self) -> Any:
        from headwater.airflow.connections import lake_from_url, lake_url

        return lake_from_url(lake_url(self.defaults), self.defaults.aws_conn_id)

    def _warehouse(self) -> Any:
        from headwater.airflow.connections import warehouse_for

        warehouse = warehouse_for(self.defaults.warehouse_conn_id, self.defaults.aws_conn_id)
        self.log.info("warehouse: %s", warehouse.describe())
        return warehouse


class SheetsToLakeOperator(_HeadwaterOperator):
    """Read the tabs of one spreadsheet or workbook, validate and type them, and stage them in the lake.

    Pushes one XCom per table (key: the table's task stem) holding its manifest URI.
    """

    def __init__(self, *, group: SourceGroup, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.group = group

    def _execute(self, context: Context) -> dict[str, str]:
        from headwater.airflow.connections import sheets_client
        from headwater.pipeline import read_group, stage_group

        group = self.group
        conn_id = group.conn_id or self.defaults.sheets_conn_id
        raws = read_group(group, sheets_client=lambda: sheets_client(conn_id))
        manifests = stage_group(
            group, raws, self._lake(), logical_date=logical_date_of(context), run_id=context["run_id"]
        )
        for stem, uri in manifests.items():
            context["ti"].xcom_push(key=stem, value=uri)
        return manifests


class SqlToLakeOperator(_HeadwaterOperator):
    """Export one query or table from a database Connection into the lake as parts plus a manifest.

    Streams with bounded memory (see ``headwater.export``). Pushes the manifest URI under the table's
    task stem and, for a watermark export, the new high-water mark under ``<stem>__watermark``.
    """

    def __init__(self, *, spec: TableSource, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec

    def _execute(self, context: Context) -> dict[str, Any]:
        from headwater.airflow.connections import get_connection, sql_source_from_connection
        from headwater.errors import SourceError
        from headwater.export import ExportOptions, export_query_to_lake
        from headwater.incremental import plan_export, read_watermark, watermark_uri

        spec = self.spec
        conn = get_connection(spec.conn_id)
        if conn is None:
            raise SourceError(f"{spec.table}: the source Connection {spec.conn_id!r} is not defined")
        source = sql_source_from_connection(conn)
        lake = self._lake()
        when = logical_date_of(context)
        watermark = None
        if spec.incremental is not None and spec.incremental.mode == "watermark":
            watermark = read_watermark(lake, watermark_uri(lake, self.dag_id, spec.target))
        interval = self._interval(context, when)
        window = plan_export(source, spec, watermark=watermark, interval=interval)
        self.log.info("exporting %s from %s: %s", spec.table, source.label, window.description)
        prefix = lake.run_prefix(spec.target, when, context["run_id"])
        if (conn.conn_type or "").lower() == "redshift":
            result = self._unload(conn, source, window.query, window.params, lake, prefix, when, context["run_id"])
        else:
            result = export_query_to_lake(
                source,
                window.query,
                lake,
                prefix,
                params=window.params,
                options=ExportOptions(format=spec.format, rows_per_part=spec.rows_per_part),
                target=str(spec.target),
                logical_date=when.isoformat(),
                run_id=context["run_id"],
            )
        context["ti"].xcom_push(key=spec.task_stem, value=result.manifest_uri)
        if window.high is not None:
            context["ti"].xcom_push(key=f"{spec.task_stem}__watermark", value=window.high)
        return {
            "manifest": result.manifest_uri,
            "rows": result.rows,
            "parts": result.parts,
            "bytes": result.bytes,
            "window": window.description,
        }

    def _interval(self, context: Context, when: datetime) -> tuple[datetime, datetime] | None:
        """The run's data interval, or ``window_hours`` back from the logical date when the run has none."""
        from datetime import timedelta

        from headwater.errors import HeadwaterError

        inc = self.spec.incremental
        if inc is None or inc.mode != "interval":
            return None
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if start is not None and end is not None and start < end:
            return start, end
        if inc.window_hours is None:
            raise HeadwaterError(
                f"{self.spec.table}: interval mode needs a schedule with data intervals, or incremental.window_hours"
            )
        return when - timedelta(hours=inc.window_hours), when

    def _unload(
        self, conn: Any, source: Any, query: str, params: list[Any], lake: Any, prefix: str, when: datetime, run_id: str
    ) -> Any:
        """Redshift cannot stream out: UNLOAD in parallel to the S3 lake with the window's values inlined."""
        import psycopg

        from headwater.airflow.connections import aws_credentials
        from headwater.errors import SourceError
        from headwater.lake import S3Lake
        from headwater.sources.redshift_unload import unload_query_to_lake

        if not isinstance(lake, S3Lake):
            raise SourceError(f"{self.spec.table}: exporting from Redshift (UNLOAD) needs an s3:// lake")
        extra = conn.extra_dejson or {}
        role = extra.get("iam_role")
        with psycopg.connect(**source.conninfo) as pg:
            literal = psycopg.ClientCursor(pg).mogrify(query, params or None)
        return unload_query_to_lake(
            source.conninfo,
            literal,
            lake,
            prefix,
            fmt=self.spec.format,
            iam_role=role,
            credentials=None if role else aws_credentials(extra.get("aws_conn_id") or self.defaults.aws_conn_id),
            target=str(self.spec.target),
            logical_date=when.isoformat(),
            run_id=run_id,
        )


class AdvanceWatermarkOperator(_HeadwaterOperator):
    """After the load and its check succeeded, store the export's high-water mark for the next run."""

    ui_color = "#fdebd0"

    def __init__(self, *, spec: TableSource, extract_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spec = spec
        self.extract_task_id = extract_task_id

    def _execute(self, context: Context) -> str | None:
        from headwater.incremental import watermark_uri, write_watermark

        value = context["ti"].xcom_pull(task_ids=self.extract_task_id, key=f"{self.spec.task_stem}__watermark")
        if value is None:
            self.log.info("no new rows; the watermark stays")
            return None
        lake = self._lake()
        assert self.spec.incremental is not None
        write_watermark(
            lake,
            watermark_uri(lake, self.dag_id, self.spec.target),
            self.spec.incremental.column,
            str(value),
            context["run_id"],
        )
        self.log.info("watermark of %s advanced to %s", self.spec.table, value)
        return str(value)


class WarehouseToSheetOperator(_HeadwaterOperator):
    """Run a warehouse query and write its result into a Google Sheet tab, never leaving the tab half-written."""

    ui_color = "#e8daef"

    def __init__(self, *, export: SheetExport, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.export = export

    def _execute(self, context: Context) -> dict[str, Any]:
        from headwater.airflow.connections import sheets_client
        from headwater.config import spreadsheet_key
        from headwater.sinks.sheet_writer import write_rows_to_sheet
        from headwater.sources.sheets import WRITE_SCOPES

        export = self.export
        client = sheets_client(export.sheets_conn_id or self.defaults.sheets_conn_id, scopes=WRITE_SCOPES)
        with self._warehouse().query_rows(export.query, batch=export.chunk_rows) as (names, rows):
            result = write_rows_to_sheet(
                client,
                spreadsheet_key(export.spreadsheet),
                export.tab,
                names,
                rows,
                chunk_rows=export.chunk_rows,
                progress=lambda n: self.log.info("%s: %d rows written to the staging tab", export.name, n),
            )
        return {
            "spreadsheet": result.spreadsheet,
            "tab": result.tab,
            "rows": result.rows,
            "columns": result.columns,
            "seconds": result.seconds,
        }


class LakeToWarehouseOperator(_HeadwaterOperator):
    """Load one staged table from its manifest into the warehouse by replace, append or upsert."""

    def __init__(
        self, *, extract_task_id: str, stem: str, method: str, keys: Sequence[str] = (), **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.extract_task_id = extract_task_id
        self.stem = stem
        self.method = method
        self.keys = list(keys)

    def manifest_uri(self, context: Context) -> str:
        uri = context["ti"].xcom_pull(task_ids=self.extract_task_id, key=self.stem)
        if not uri:
            from headwater.errors import LakeError

            raise LakeError(f"no manifest from {self.extract_task_id} for {self.stem}")
        return str(uri)

    def _execute(self, context: Context) -> dict[str, Any]:
        from headwater.pipeline import load_table

        result = load_table(
            self._warehouse(),
            self._lake(),
            self.manifest_uri(context),
            method=self.method,
            keys=self.keys,
            logical_date=logical_date_of(context),
        )
        return asdict(result)


class RowCountCheckOperator(LakeToWarehouseOperator):
    """Check the published table's row count against the manifest the load used."""

    ui_color = "#d5f5e3"

    def _execute(self, context: Context) -> dict[str, Any]:
        from headwater.parts import read_manifest
        from headwater.pipeline import check_row_count

        lake = self._lake()
        manifest = read_manifest(lake, self.manifest_uri(context))
        count = check_row_count(self._warehouse(), manifest, method=self.method, logical_date=logical_date_of(context))
        return {"table": manifest.target, "rows": count}
