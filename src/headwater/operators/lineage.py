"""OpenLineage datasets for what headwater reads and writes, named by OpenLineage's conventions.

PostgreSQL ``postgres://host:port`` + ``db.schema.table``, Redshift ``redshift://host:port``, MySQL
``mysql://host:port`` + ``db.table``, S3 ``s3://bucket`` + the key, local files ``file`` + the path;
Google Sheets ``https://docs.google.com`` + ``spreadsheets/d/<key>/<tab>``; DuckDB ``duckdb://<file>`` +
``schema.table``. The Airflow provider's classes are imported only when an event is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from headwater.table import Column


@dataclass
class LineageDataset:
    namespace: str
    name: str
    columns: list[Column] = field(default_factory=list)
    rows: int | None = None
    bytes: int | None = None


def lake_dataset(
    prefix_uri: str, columns: list[Column] | None = None, rows: int | None = None, size: int | None = None
) -> LineageDataset:
    """A lake prefix (one run's parts and manifest) as a dataset."""
    parsed = urlparse(prefix_uri.rstrip("/"))
    if parsed.scheme == "s3":
        return LineageDataset(f"s3://{parsed.netloc}", parsed.path.lstrip("/"), columns or [], rows, size)
    return LineageDataset("file", unquote(parsed.path), columns or [], rows, size)


def lake_table_dataset(
    lake_url: str, table: str, columns: list[Column] | None = None, rows: int | None = None, size: int | None = None
) -> LineageDataset:
    """A table's staged data in the lake, one dataset across runs (``<lake>/<schema>/<table>``); each run's
    parts sit below it by logical date and run id."""
    schema, name = table.split(".", 1)
    return lake_dataset(f"{lake_url.rstrip('/')}/{schema}/{name}", columns, rows, size)


def sheet_dataset(spreadsheet_key: str, tab: str) -> LineageDataset:
    return LineageDataset("https://docs.google.com", f"spreadsheets/d/{spreadsheet_key}/{tab}")


def workbook_dataset(path: str, tab: str | None) -> LineageDataset:
    return LineageDataset("file", f"{path}/{tab}" if tab else path)


def sql_dataset(kind: str, conninfo: dict[str, Any], table: str, default_port: int) -> LineageDataset:
    """A table of a PostgreSQL, Redshift or MySQL database; ``table`` is ``schema.table`` or ``table``."""
    host = conninfo.get("host", "localhost")
    port = conninfo.get("port") or default_port
    database = conninfo.get("dbname") or conninfo.get("database") or ""
    if kind == "mysql":
        name = table if "." in table else f"{database}.{table}"
    else:
        name = f"{database}.{table}" if table.count(".") == 1 else table
    return LineageDataset(f"{kind}://{host}:{port}", name)


def duckdb_dataset(path: str, table: str) -> LineageDataset:
    return LineageDataset(f"duckdb://{path}", table)


def source_datasets(source: Any, sql: str | None, table: str | None) -> list[LineageDataset]:
    """The tables a database export reads: the one named, or those the query names (OpenLineage's SQL parser)."""
    names = [table] if table else tables_in(sql or "")
    return [source_table_dataset(source, name) for name in names]


def source_table_dataset(source: Any, table: str) -> LineageDataset:
    from headwater.sources.mysql import MySQLSource
    from headwater.sources.sql import DuckDBSource

    if isinstance(source, DuckDBSource):
        return duckdb_dataset(source.path, table)
    if isinstance(source, MySQLSource):
        return sql_dataset("mysql", source.conninfo, table, 3306)
    return sql_dataset("postgres", source.conninfo, table, 5432)


def warehouse_dataset(warehouse: Any, table: str) -> LineageDataset:
    from headwater.warehouse.duckdb import DuckDBWarehouse

    if isinstance(warehouse, DuckDBWarehouse):
        return duckdb_dataset(str(warehouse.path), table)
    kind = "redshift" if warehouse.dialect == "redshift" else "postgres"
    return sql_dataset(kind, warehouse.conninfo, table, 5439 if kind == "redshift" else 5432)


def tables_in(sql: str) -> list[str]:
    try:
        import openlineage_sql

        parsed = openlineage_sql.parse([sql])
    except Exception:  # lineage is best effort: a query the parser cannot read names no input
        return []
    return [str(t) for t in parsed.in_tables] if parsed is not None else []


def operator_lineage(inputs: list[LineageDataset], outputs: list[LineageDataset]) -> Any:
    """The provider's OperatorLineage with schema facets and, on outputs, row and byte counts."""
    from airflow.providers.common.compat.openlineage.facet import (
        Dataset,
        OutputDataset,
        OutputStatisticsOutputDatasetFacet,
        SchemaDatasetFacet,
        SchemaDatasetFacetFields,
    )
    from airflow.providers.openlineage.extractors import OperatorLineage

    def facets(item: LineageDataset) -> dict[str, Any]:
        if not item.columns:
            return {}
        fields = [SchemaDatasetFacetFields(name=c.name, type=str(c.type)) for c in item.columns]
        return {"schema": SchemaDatasetFacet(fields=fields)}

    outs = []
    for item in outputs:
        stats: dict[str, Any] = {}
        if item.rows is not None:
            stats["outputStatistics"] = OutputStatisticsOutputDatasetFacet(rowCount=item.rows, size=item.bytes)
        outs.append(OutputDataset(namespace=item.namespace, name=item.name, facets=facets(item), outputFacets=stats))
    ins = [Dataset(namespace=i.namespace, name=i.name, facets=facets(i)) for i in inputs]
    return OperatorLineage(inputs=ins, outputs=outs)
