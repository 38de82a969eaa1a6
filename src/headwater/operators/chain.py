"""Links between pipelines: trigger the next one with what changed, wait for another one's run, skip a
transform whose inputs did not change, and skip exports of runs that are not the latest.

Thin subclasses of Airflow's own operators (TriggerDagRunOperator, ExternalTaskSensor, BaseBranchOperator,
LatestOnlyOperator); the decisions are in ``headwater.chain`` and ``headwater.table_versions``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from airflow.providers.standard.operators.branch import BaseBranchOperator
from airflow.providers.standard.operators.latest_only import LatestOnlyOperator
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import Context

from headwater.operators.base import HeadwaterOperator, logical_date_of

CONF_KEY = "headwater"  # the triggered run's conf: {"headwater": {...}}


def chain_info(context: Context) -> dict[str, Any]:
    """This run's place in a chain: its own run, and the run type at the chain's root."""
    dag_run = context["dag_run"]
    conf = (getattr(dag_run, "conf", None) or {}).get(CONF_KEY) or {}
    raw = getattr(dag_run, "run_type", "") or ""
    run_type = str(getattr(raw, "value", raw))
    return {
        "dag_id": dag_run.dag_id,
        "run_id": dag_run.run_id,
        "run_type": run_type,
        "root_run_type": conf.get("root_run_type") or run_type,
        "logical_date": logical_date_of(context).isoformat(),
    }


class TriggerPipelineOperator(TriggerDagRunOperator):
    """Start the next pipeline for this run's logical date, with ``conf`` saying which tables changed.

    The logical date is this run's (its ``run_after`` when it has none, so a chain never holds a run that
    a sensor could not match). A run already there for that date (a rerun of this one) is cleared and
    runs again, so it sees the new loads.
    """

    ui_color = "#fdebd0"

    def __init__(self, *, trigger_dag_id: str, load_task_ids: Sequence[str] = (), **kwargs: Any) -> None:
        kwargs.setdefault("reset_dag_run", True)
        kwargs.setdefault("openlineage_inject_parent_info", False)
        super().__init__(trigger_dag_id=trigger_dag_id, **kwargs)
        self.load_task_ids = list(load_task_ids)

    def execute(self, context: Context) -> Any:
        tables: dict[str, Any] = {}
        for task_id in self.load_task_ids:
            result = context["ti"].xcom_pull(task_ids=task_id)
            if isinstance(result, dict) and result.get("table"):
                tables[str(result["table"])] = {k: result.get(k) for k in ("rows", "version", "changed", "method")}
        info = chain_info(context)
        self.conf = {CONF_KEY: {"triggered_by": info, "root_run_type": info["root_run_type"], "tables": tables}}
        self.logical_date = logical_date_of(context)
        changed = sorted(t for t, v in tables.items() if v.get("changed"))
        self.log.info(
            "triggering %s for %s; changed tables: %s",
            self.trigger_dag_id,
            self.logical_date.isoformat(),
            ", ".join(changed) or "none",
        )
        return super().execute(context)


def wait_for_pipeline(
    *,
    task_id: str,
    pipeline: str,
    schedule: str | None,
    timeout_minutes: float,
    poke_seconds: float,
    mode: str,
    **kwargs: Any,
) -> ExternalTaskSensor:
    """An ExternalTaskSensor on ``pipeline``'s whole run at the logical date lined up with this run's.

    ``schedule`` is the upstream's effective schedule: the run waited for is its latest tick at or before
    this run's logical date. Reschedule mode frees the worker slot between looks; deferrable hands the
    wait to the triggerer. A failed upstream run fails the wait at once; otherwise it fails on timeout.
    """
    return PipelineWaitSensor(
        task_id=task_id,
        external_dag_id=pipeline,
        external_task_id=None,
        execution_date_fn=_Aligner(schedule),
        allowed_states=["success"],
        failed_states=["failed"],
        mode="reschedule" if mode == "reschedule" else "poke",
        deferrable=mode == "deferrable",
        poke_interval=poke_seconds,
        timeout=timeout_minutes * 60,
        check_existence=True,
        retries=0,
        doc_md=f"Waits for `{pipeline}`'s run at the aligned logical date (schedule {schedule or 'none'}).",
        **kwargs,
    )


class PipelineWaitSensor(ExternalTaskSensor):
    """ExternalTaskSensor whose failures say which pipeline run it waited for and what became of it."""

    def execute(self, context: Context) -> None:
        with self._explained(context):
            super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> None:
        with self._explained(context):
            super().execute_complete(context, event)

    @contextlib.contextmanager
    def _explained(self, context: Context) -> Iterator[None]:
        from airflow.providers.standard.exceptions import ExternalDagFailedError, ExternalDagNotFoundError
        from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

        waited_for = ", ".join(d.isoformat() for d in self._get_dttm_filter(context))
        what = f"waiting for pipeline {self.external_dag_id!r} (its run at {waited_for})"
        try:
            yield
        except ExternalDagFailedError:
            raise AirflowFailException(f"{what}: that run failed, so this run stops here") from None
        except ExternalDagNotFoundError:
            raise AirflowFailException(f"{what}: no DAG {self.external_dag_id!r} in Airflow") from None
        except AirflowSensorTimeout:
            raise AirflowFailException(
                f"{what}: it did not succeed within {self.timeout / 60:g} min (never started, still running, "
                "or at another logical date); this run stops here"
            ) from None


class _Aligner:
    """``execution_date_fn`` of a wait: this run's logical date -> the upstream's, by its schedule."""

    def __init__(self, schedule: str | None) -> None:
        self.schedule = schedule

    def __call__(self, logical_date: datetime, **_: Any) -> datetime:
        from headwater.chain import aligned_logical_date

        return aligned_logical_date(self.schedule, logical_date)

    def __repr__(self) -> str:
        return f"aligned_logical_date({self.schedule!r})"


class InputsChangedOperator(BaseBranchOperator, HeadwaterOperator):
    """Go on to the transform only when an input table's version (or the project) changed since it last ran.

    Decided from the load records in the lake (content hashes of what each load published), never from
    the clock; the versions read are pushed for ``RecordInputsOperator``.
    """

    ui_color = "#fcf3cf"

    def __init__(
        self, *, consumer: str, tables: Sequence[str], project: str, changed: str, unchanged: str, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.consumer = consumer
        self.tables = list(tables)
        self.project = project
        self.changed_task, self.unchanged_task = changed, unchanged

    def choose_branch(self, context: Context) -> str | Iterable[str]:
        from headwater.table_versions import decide

        conf = (getattr(context["dag_run"], "conf", None) or {}).get(CONF_KEY) or {}
        if conf.get("triggered_by"):
            by = conf["triggered_by"]
            self.log.info("triggered by %s %s", by.get("dag_id"), by.get("run_id"))
        decision = decide(self.lake(), self.warehouse_conn_id, self.consumer, self.tables, self.project)
        context["ti"].xcom_push(key="versions", value=decision.versions)
        for reason in decision.reasons:
            self.log.info("input changed: %s", reason)
        if not decision.changed:
            self.log.info("no input changed since the last successful build: skipping it")
            return self.unchanged_task
        return self.changed_task


class RecordInputsOperator(HeadwaterOperator):
    """After the transform succeeded: remember the input versions it was built from."""

    ui_color = "#fcf3cf"

    def __init__(self, *, consumer: str, project: str, branch_task_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.consumer = consumer
        self.project = project
        self.branch_task_id = branch_task_id

    def run(self, context: Context) -> None:
        from headwater.table_versions import record_consumed

        versions = context["ti"].xcom_pull(task_ids=self.branch_task_id, key="versions") or {}
        record_consumed(
            self.lake(),
            self.warehouse_conn_id,
            self.consumer,
            versions,
            self.project,
            run_id=context["run_id"],
            logical_date=logical_date_of(context).isoformat(),
        )


class LatestRunOnlyOperator(LatestOnlyOperator):
    """Skip exports and sheet writes of a run that is not the latest: a backfill, a past scheduled run, or
    a run triggered by a chain whose root was one (Airflow's own check lets every triggered run through)."""

    def choose_branch(self, context: Context) -> str | Iterable[str]:
        root = chain_info(context)["root_run_type"]
        if root == "backfill":
            self.log.info("this run belongs to a backfill: skipping the exports")
            return []
        return super().choose_branch(context)
