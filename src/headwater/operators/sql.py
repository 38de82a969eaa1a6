"""Database -> lake: ``SqlToLakeOperator`` (a query or table streamed into parts), and the watermark step."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import Context

from headwater.operators.base import HeadwaterOperator, check_query, logical_date_of
from headwater.operators.lineage import lake_table_dataset, source_datasets

if TYPE_CHECKING:
    from headwater.config import Incremental


class SqlToLakeOperator(HeadwaterOperator):
    """Export a query (or a whole table) from a database Connection into the lake as parts plus a manifest.

    Streams with bounded memory (PostgreSQL COPY, MySQL server-side cursor, DuckDB Arrow batches, Redshift
    UNLOAD). ``sql`` is templated (``{{ data_interval_start }}`` works) and may be a ``.sql`` file; it must
    be one SELECT and runs read-only. ``target`` names the warehouse table the manifest is for (default:
    ``table``). Returns and pushes (XCom key ``manifest``) the manifest URI.
    """

    template_fields: Sequence[str] = ("sql", "table", "target", "lake_url")
    template_ext: Sequence[str] = (".sql",)
    template_fields_renderers = {"sql": "sql"}  # noqa: RUF012 - Airflow's own declaration style

    def __init__(
        self,
        *,
        conn_id: str,
        sql: str | None = None,
        table: str | None = None,
        target: str | None = None,
        format: str = "csv.gz",
        rows_per_part: int = 1_000_000,
        incremental: Mapping[str, Any] | None = None,
        xcom_key: str = "manifest",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        from headwater.config import Incremental
        from headwater.identifiers import TableName
        from headwater.parts import FORMATS

        if (sql is None) == (table is None):
            raise self.argument_error("sql", "give exactly one of 'sql' or 'table'")
        self.conn_id = conn_id
        self.sql = sql if sql is None else self.check("sql", sql, check_query)
        self.table = self.check("table", table, lambda v: v is None or TableName.parse(v))
        self.target = self.check("target", target or table, lambda v: v is not None and TableName.parse(v))
        if target is None and table is None:
            raise self.argument_error("target", "a query export needs 'target' (the warehouse table, schema.table)")
        self.format = self.check("format", format, lambda v: _one_of(v, FORMATS))
        self.rows_per_part = self.check("rows_per_part", rows_per_part, _positive)
        self.incremental: Incremental | None = None
        if incremental is not None:
            try:
                self.incremental = Incremental.model_validate(dict(incremental))
            except ValueError as exc:  # pydantic's ValidationError
                raise self.argument_error("incremental", str(exc).splitlines()[-1].strip()) from None
        self.xcom_key = xcom_key

    def run(self, context: Context) -> str:
        from headwater.airflow.connections import get_connection, sql_source_from_connection
        from headwater.errors import SourceError
        from headwater.identifiers import TableName

        target = TableName.parse(str(self.target))  # checked again: it may have been templated
        table = TableName.parse(self.table) if self.table else None
        conn = get_connection(self.conn_id)
        if conn is None and self.conn_id == self.warehouse_conn_id:  # the embedded warehouse itself
            with self.warehouse().exclusive():  # DuckDB: not while a load or dbt writes the file
                from headwater.settings import default_duckdb_path
                from headwater.sources.sql import DuckDBSource

                return self._export(context, target, table, DuckDBSource(str(default_duckdb_path())), None)
        if conn is None:
            raise SourceError(f"{target}: the source Connection {self.conn_id!r} is not defined")
        return self._export(context, target, table, sql_source_from_connection(conn), conn)

    def _export(self, context: Context, target: Any, table: Any, source: Any, conn: Any) -> str:
        from headwater.export import ExportOptions, export_query_to_lake
        from headwater.incremental import plan_export, read_watermark, watermark_uri

        lake = self.lake()
        when = logical_date_of(context)
        watermark = None
        if self.incremental is not None and self.incremental.mode == "watermark":
            watermark = read_watermark(lake, watermark_uri(lake, self.dag_id, target))
        window = plan_export(
            source,
            query=self.sql,
            source_table=str(table) if table else None,
            incremental=self.incremental,
            watermark=watermark,
            interval=self.interval(context, when),
        )
        self.log.info("exporting %s from %s: %s", target, source.label, window.description)
        prefix = lake.run_prefix(target, when, context["run_id"])
        if conn is not None and (conn.conn_type or "").lower() == "redshift":
            result = self._unload(conn, source, window.query, window.params, lake, prefix, when, context["run_id"])
        else:
            result = export_query_to_lake(
                source,
                window.query,
                lake,
                prefix,
                params=window.params,
                options=ExportOptions(format=self.format, rows_per_part=self.rows_per_part),
                target=str(target),
                logical_date=when.isoformat(),
                run_id=context["run_id"],
            )
        self._inputs = source_datasets(source, self.sql, self.table)
        self._outputs = [lake_table_dataset(lake.url, str(target), result.columns, result.rows, result.bytes)]
        context["ti"].xcom_push(key=self.xcom_key, value=result.manifest_uri)
        if window.high is not None:
            context["ti"].xcom_push(key=f"{self.xcom_key}__watermark", value=window.high)
        self.log.info("%s: %d rows in %d parts (%s)", target, result.rows, result.parts, window.description)
        return str(result.manifest_uri)

    def interval(self, context: Context, when: datetime) -> tuple[datetime, datetime] | None:
        """The run's data interval, or ``window_hours`` back from the logical date when the run has none."""
        from headwater.errors import ConfigError

        inc = self.incremental
        if inc is None or inc.mode != "interval":
            return None
        start, end = context.get("data_interval_start"), context.get("data_interval_end")
        if start is not None and end is not None and start < end:
            return start, end
        if inc.window_hours is None:
            raise ConfigError(
                f"{self.target}: interval mode needs a schedule with data intervals, or incremental.window_hours"
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
            raise SourceError(f"{self.target}: exporting from Redshift (UNLOAD) needs an s3:// lake")
        extra = conn.extra_dejson or {}
        role = extra.get("iam_role")
        with psycopg.connect(**source.conninfo) as pg:
            literal = psycopg.ClientCursor(pg).mogrify(query, params or None)
        return unload_query_to_lake(
            source.conninfo,
            literal,
            lake,
            prefix,
            fmt=self.format,
            iam_role=role,
            credentials=None if role else aws_credentials(extra.get("aws_conn_id") or self.aws_conn_id),
            target=str(self.target),
            logical_date=when.isoformat(),
            run_id=run_id,
        )


class AdvanceWatermarkOperator(HeadwaterOperator):
    """After the load and its check succeeded, store the export's high-water mark for the next run."""

    ui_color = "#fdebd0"

    def __init__(self, *, table: str, column: str, export_task_id: str, xcom_key: str = "manifest", **kwargs: Any):
        super().__init__(**kwargs)
        self.table = table
        self.column = column
        self.export_task_id = export_task_id
        self.xcom_key = xcom_key

    def run(self, context: Context) -> str | None:
        from headwater.identifiers import TableName
        from headwater.incremental import watermark_uri, write_watermark

        value = context["ti"].xcom_pull(task_ids=self.export_task_id, key=f"{self.xcom_key}__watermark")
        if value is None:
            self.log.info("no new rows; the watermark stays")
            return None
        lake = self.lake()
        target = TableName.parse(self.table)
        write_watermark(lake, watermark_uri(lake, self.dag_id, target), self.column, str(value), context["run_id"])
        self.log.info("watermark of %s advanced to %s", self.table, value)
        return str(value)


def _one_of(value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"{value!r} is not one of {', '.join(allowed)}")


def _positive(value: int) -> None:
    if not isinstance(value, int) or value < 1:
        raise ValueError(f"{value!r} is not a positive whole number")
