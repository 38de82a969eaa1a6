"""# handwritten_orders

A DAG written by hand with headwater's operators (no pipelines.yaml): each day's orders are exported from
the application database, appended to the warehouse as that day's batch and checked; the product list is
read from a workbook; a per-product summary is written back into a Google Sheet tab.

Connections: `app_db` (postgres or mysql), `headwater_warehouse` (undefined: the embedded DuckDB),
`google_sheets_default` (a service-account key). Environment: `HEADWATER_EXAMPLE_SCHEMA` (the orders'
schema, default `public`) and `HEADWATER_EXAMPLE_SHEET` (the summary's spreadsheet URL or key).
"""

import os
from datetime import datetime
from pathlib import Path

from airflow.sdk import DAG
from airflow.timetables.interval import CronDataIntervalTimetable

from headwater.operators import (
    LakeToWarehouseOperator,
    RowCountCheckOperator,
    SheetsToLakeOperator,
    SqlToLakeOperator,
    WarehouseToSheetOperator,
)

with DAG(
    dag_id="handwritten_orders",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),  # each run covers one whole day
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["headwater", "example"],
    doc_md=__doc__,
    params={"schema": os.environ.get("HEADWATER_EXAMPLE_SCHEMA", "public")},
) as dag:
    export = SqlToLakeOperator(
        task_id="export_orders",
        conn_id="app_db",
        sql=(
            "SELECT id, sku, quantity, created_at FROM {{ params.schema }}.orders"
            " WHERE created_at >= '{{ data_interval_start }}' AND created_at < '{{ data_interval_end }}'"
        ),
        target="raw.daily_orders",
    )
    load = LakeToWarehouseOperator(task_id="load_orders", manifest_uri=export.output["manifest"], load="append")
    check = RowCountCheckOperator(task_id="check_orders", manifest_uri=export.output["manifest"], load="append")
    products = SheetsToLakeOperator(
        task_id="read_products",
        workbook=str(Path(__file__).parents[1] / "sample_workbook.xlsx"),
        tabs=[{"tab": "Products", "table": "raw.example_products", "keys": ["sku"]}],
    )
    load_products = LakeToWarehouseOperator(
        task_id="load_products", manifest_uri=products.output["raw__example_products"], load="replace"
    )
    summary = WarehouseToSheetOperator(
        task_id="write_summary",
        sql=(
            "SELECT p.sku, p.product_name, count(*) AS orders, sum(o.quantity) AS units"
            " FROM raw.daily_orders o JOIN raw.example_products p ON p.sku = o.sku GROUP BY 1, 2 ORDER BY 1"
        ),
        spreadsheet=os.environ.get("HEADWATER_EXAMPLE_SHEET", "1ExampleSummarySheetKey"),
        tab="Daily",
    )
    load >> check >> summary
    load_products >> summary
