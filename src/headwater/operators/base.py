"""What every headwater operator shares: fail fast on deterministic errors, lake and warehouse from
Connections, argument checks that name the task, and lineage collected while the task runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from airflow.sdk import BaseOperator, Context

from headwater.errors import ConfigError
from headwater.operators.lineage import LineageDataset, operator_lineage

T = TypeVar("T")


def is_templated(value: object) -> bool:
    """A value Airflow will render later: checks wait until then."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def check_query(sql: str) -> None:
    """A SQL argument is one read-only SELECT, or a ``.sql`` file Airflow reads when it renders templates."""
    from headwater.sql_guard import check_single_select

    if not sql.endswith(".sql"):
        check_single_select(sql)


def logical_date_of(context: Context) -> datetime:
    """The run's logical date; a manual run without one uses its ``run_after``."""
    value: datetime | None = context.get("logical_date")
    return value if value is not None else context["dag_run"].run_after


class HeadwaterOperator(BaseOperator):
    """Base of the public operators: ``execute`` resolves Connections and calls one core function.

    A deterministic failure (bad input or config, a failing check) ends the task at once with
    ``AirflowFailException``; only transient ones (network, throttling, locks) use the task's retries.
    """

    ui_color = "#d6eaf8"

    def __init__(
        self,
        *,
        lake_url: str | None = None,
        aws_conn_id: str = "aws_default",
        warehouse_conn_id: str = "headwater_warehouse",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.lake_url = lake_url
        self.aws_conn_id = aws_conn_id
        self.warehouse_conn_id = warehouse_conn_id
        self._inputs: list[LineageDataset] = []
        self._outputs: list[LineageDataset] = []

    def check(self, argument: str, value: T, test: Callable[[T], object]) -> T:
        """Run ``test`` on an argument now (unless Airflow renders it later); errors name task and argument."""
        if is_templated(value):
            return value
        try:
            test(value)
        except (ValueError, TypeError) as exc:
            raise self.argument_error(argument, str(exc)) from None
        return value

    def argument_error(self, argument: str, problem: str) -> ConfigError:
        """The parse-time error of a bad argument: ``task 'ID': argument 'NAME': problem``."""
        return ConfigError(f"task {self.task_id!r}: argument {argument!r}: {problem}")

    def execute(self, context: Context) -> Any:
        from airflow.sdk.exceptions import AirflowFailException

        from headwater.errors import HeadwaterError

        try:
            return self.run(context)
        except HeadwaterError as exc:
            if exc.transient:
                raise
            raise AirflowFailException(str(exc)) from exc

    def run(self, context: Context) -> Any:
        """The task's work, after rendering (subclasses)."""
        raise TypeError(f"{type(self).__name__} does not define run()")

    def lake(self) -> Any:
        from headwater.airflow.connections import lake_from_url, resolved_lake_url

        return lake_from_url(resolved_lake_url(self.lake_url), self.aws_conn_id)

    def warehouse(self) -> Any:
        from headwater.airflow.connections import warehouse_for

        warehouse = warehouse_for(self.warehouse_conn_id, self.aws_conn_id)
        self.log.info("warehouse: %s", warehouse.describe())
        return warehouse

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs and outputs of the finished run, with schemas and output statistics (OpenLineage)."""
        return operator_lineage(self._inputs, self._outputs)
