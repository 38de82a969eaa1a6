"""Run the pipelines' chain under Airflow's scheduler for one logical date: trigger each root through the
REST API at its own aligned logical date, follow every run the chain starts, and report what each did."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from headwater.chain import aligned_logical_date
from headwater.config import LoadedConfig
from headwater.errors import HeadwaterError
from headwater.ops.airflow_api import AirflowApi

FINISHED = ("success", "failed")


def chain_dates(loaded: LoadedConfig, when: datetime) -> dict[str, tuple[datetime, str | None]]:
    """Each pipeline of the chain -> (its logical date for ``when``, the pipeline that triggers it or None).

    Roots are the scheduled pipelines nobody triggers, each at its latest tick at or before ``when``;
    a triggered pipeline takes its trigger's date. Unscheduled, untriggered pipelines are not part of it.
    """
    pipelines = loaded.config.pipelines
    parent = {t: name for name, p in pipelines.items() for t in p.triggers}
    dates: dict[str, tuple[datetime, str | None]] = {}
    for name, pipeline in pipelines.items():
        if pipeline.schedule is not None and name not in parent:
            dates[name] = (aligned_logical_date(pipeline.schedule, when), None)
    pending = [t for t in parent if t not in dates]
    while pending:
        ready = [t for t in pending if parent[t] in dates]
        if not ready:
            break  # triggered by a pipeline outside the chain
        for name in ready:
            dates[name] = (dates[parent[name]][0], parent[name])
            pending.remove(name)
    return dates


@dataclass
class ChainResult:
    triggered_at: datetime  # when the first root was triggered
    reports: list[RunReport]

    @property
    def latency(self) -> float | None:
        """Seconds from the first trigger to the end of the last run."""
        ended = [r.ended for r in self.reports if r.ended]
        return (max(ended) - self.triggered_at).total_seconds() if ended else None

    @property
    def task_seconds(self) -> float:
        return sum(r.task_seconds for r in self.reports)


@dataclass
class RunReport:
    pipeline: str
    logical_date: datetime
    state: str  # success, failed, not run, or the state it was in at the timeout
    run_id: str = ""
    run_type: str = ""
    seconds: float | None = None
    produced: list[str] = field(default_factory=list)
    task_seconds: float = 0.0
    started: datetime | None = None
    ended: datetime | None = None
    reason: str = ""


def run_chain(
    api: AirflowApi,
    loaded: LoadedConfig,
    when: datetime,
    *,
    timeout: float = 900,
    on_change: Callable[[str, str], None] | None = None,
    alive: Callable[[], None] | None = None,
) -> ChainResult:
    """Trigger the roots, wait until every run of the chain finished (or cannot start), and describe them."""
    dates = chain_dates(loaded, when)
    if not dates:
        raise HeadwaterError("no pipeline has a schedule: nothing is a root of a chain")
    api.wait_for_dags(list(dates), timeout=min(timeout, 180))
    triggered_at = datetime.now(UTC)
    for name, (date, by) in dates.items():
        if by is None:
            api.trigger(name, date)
    reports = {name: RunReport(name, date, "queued") for name, (date, _) in dates.items()}
    deadline = time.monotonic() + timeout
    while True:
        if alive is not None:
            alive()
        for name, (date, by) in dates.items():
            report = reports[name]
            if report.state in (*FINISHED, "not run"):
                continue
            run = api.run_at(name, date)
            if run is None:
                if by is not None and reports[by].state in FINISHED:
                    trigger = f"trigger__{name}"
                    states = {t.task_id: _value(t.state) for t in api.tasks(by, reports[by].run_id)}
                    if states.get(trigger) not in (None, "running", "queued", "scheduled", "up_for_retry"):
                        report.state = "not run"
                        report.reason = f"{by} did not trigger it ({trigger}: {states.get(trigger) or 'no such task'})"
                        _tell(on_change, name, report.state)
                continue
            state = _value(run.state)
            if state != report.state:
                report.state, report.run_id, report.run_type = state, run.dag_run_id, _value(run.run_type)
                _tell(on_change, name, state)
            if state in FINISHED:
                _describe(api, report, run)
        if all(r.state in (*FINISHED, "not run") for r in reports.values()):
            return ChainResult(triggered_at, list(reports.values()))
        if time.monotonic() > deadline:
            for report in reports.values():
                if report.state not in (*FINISHED, "not run"):
                    report.reason = f"still {report.state} after {timeout:.0f} s"
            return ChainResult(triggered_at, list(reports.values()))
        time.sleep(2)


def _value(item: Any) -> str:
    return str(getattr(item, "value", item) or "")


def _tell(on_change: Callable[[str, str], None] | None, name: str, state: str) -> None:
    if on_change is not None:
        on_change(name, state)


def _describe(api: AirflowApi, report: RunReport, run: Any) -> None:
    """Duration, task time, and what the run produced: loads (from its Asset events), dbt, exports, failures."""
    report.started, report.ended = run.start_date, run.end_date
    if run.start_date and run.end_date:
        report.seconds = (run.end_date - run.start_date).total_seconds()
    tasks = api.tasks(report.pipeline, report.run_id)
    report.task_seconds = sum(t.duration or 0 for t in tasks if not t.task_id.startswith("wait_for__"))
    states = {t.task_id: _value(t.state) for t in tasks}
    for event in sorted(api.asset_events(report.pipeline, report.run_id), key=lambda e: e.uri or ""):
        extra = event.extra or {}
        if "version" in extra:
            table = (event.uri or "").rsplit("/", 1)[-1]
            report.produced.append(
                f"{table}: {extra.get('rows')} rows, {'changed' if extra.get('changed') else 'unchanged'}"
            )
    if states.get("inputs_unchanged") == "success":
        report.produced.append("dbt build skipped: no input changed")
    dbt = [s for t, s in states.items() if t.startswith("dbt.")]
    if dbt and states.get("inputs_unchanged") != "success":
        report.produced.append(f"dbt: {dbt.count('success')} of {len(dbt)} tasks succeeded")
    for task, state in sorted(states.items()):
        if task.startswith("export__") and state == "success":
            report.produced.append(f"{task[8:]}: {api.xcom(report.pipeline, report.run_id, task)}")
        elif task.startswith("export__") and state == "skipped":
            report.produced.append(f"{task[8:]}: skipped (not the latest run)")
        elif task.startswith("trigger__") and state == "success":
            report.produced.append(f"triggered {task[9:]}")
    failed = sorted(t for t, s in states.items() if s in ("failed", "upstream_failed"))
    if failed:
        report.reason = "failed tasks: " + ", ".join(failed)
