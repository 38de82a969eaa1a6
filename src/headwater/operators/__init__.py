"""headwater's operators for hand-written DAGs, in the style of Airflow's providers.

Plain arguments, checked cheaply when the DAG file is parsed (errors name the task and the argument);
SQL, table names and URIs templated with Jinja; OpenLineage inputs and outputs on completion. The DAG
factory builds every configured pipeline from these same classes. See docs/operators.md.
"""

from headwater.operators.base import HeadwaterOperator
from headwater.operators.dbt import DbtOperator
from headwater.operators.sheets import SheetsToLakeOperator, WarehouseToSheetOperator
from headwater.operators.sql import AdvanceWatermarkOperator, SqlToLakeOperator
from headwater.operators.warehouse import BuildSummaryOperator, LakeToWarehouseOperator, RowCountCheckOperator

__all__ = [
    "AdvanceWatermarkOperator",
    "BuildSummaryOperator",
    "DbtOperator",
    "HeadwaterOperator",
    "LakeToWarehouseOperator",
    "RowCountCheckOperator",
    "SheetsToLakeOperator",
    "SqlToLakeOperator",
    "WarehouseToSheetOperator",
]
