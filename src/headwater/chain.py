"""How pipelines depend on each other: ``triggers:`` (run that pipeline next, same logical date) and
``after:`` (wait for that pipeline's run), checked as one graph, and the logical-date alignment a wait uses.

Plain Python: the DAG factory turns these into TriggerDagRunOperator and ExternalTaskSensor tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Airflow's schedule presets that are not a fixed cadence: no logical date to line up with.
_NOT_CADENCE = ("@once", "@continuous")
MIN_RESCHEDULE_SECONDS = 30
_PRESETS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


class Wait(BaseModel):
    """One ``after:`` entry: wait until that pipeline's run for the matching logical date has succeeded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    pipeline: str
    timeout_minutes: float = Field(default=120, gt=0, description="then the wait fails, and this run with it")
    poke_seconds: float = Field(default=60, ge=1, description="how often to look; the slot is free in between")
    mode: Literal["reschedule", "deferrable"] = "reschedule"

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        return {"pipeline": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _poke(self) -> Wait:
        if self.mode == "reschedule" and self.poke_seconds < MIN_RESCHEDULE_SECONDS:
            raise ValueError(
                f"poke_seconds {self.poke_seconds:g} is below {MIN_RESCHEDULE_SECONDS} s: a reschedule-mode wait "
                "due again before the scheduler has seen its worker exit is failed by Airflow 3.3; use "
                "mode: deferrable for shorter looks"
            )
        return self


class _Pipeline(Protocol):
    schedule: str | None
    triggers: list[str]
    after: list[Wait]


def chain_problems(pipelines: Mapping[str, _Pipeline]) -> list[str]:
    """Every problem with the links between pipelines, each naming the entry: unknown names, a pipeline
    triggered twice or also on a schedule, waits that cannot line up, and cycles."""
    problems: list[str] = []
    known = ", ".join(sorted(pipelines))
    triggered_by: dict[str, str] = {}
    for name, pipeline in pipelines.items():
        for index, target in enumerate(pipeline.triggers):
            where = f"pipelines.{name}.triggers[{index}]"
            if target not in pipelines:
                problems.append(f"{where}: no pipeline named {target!r} (configured: {known})")
            elif target == name:
                problems.append(f"{where}: a pipeline cannot trigger itself")
            elif target in triggered_by:
                problems.append(
                    f"{where}: {target!r} is already triggered by {triggered_by[target]!r}; a DAG has one run per "
                    f"logical date, so two triggers would collide: trigger it from one pipeline and make it wait "
                    f"for the other with 'after:'"
                )
            else:
                triggered_by[target] = name
                if pipelines[target].schedule is not None:
                    problems.append(
                        f"{where}: {target!r} has its own schedule {pipelines[target].schedule!r} and would run "
                        f"twice per cycle; give it 'schedule: null' so the trigger alone starts it"
                    )
        for index, wait in enumerate(pipeline.after):
            where = f"pipelines.{name}.after[{index}]"
            if wait.pipeline not in pipelines:
                problems.append(f"{where}: no pipeline named {wait.pipeline!r} (configured: {known})")
            elif wait.pipeline == name:
                problems.append(f"{where}: a pipeline cannot wait for itself")
    if problems:
        return problems
    for name, pipeline in pipelines.items():
        for index, wait in enumerate(pipeline.after):
            schedule = effective_schedule(pipelines, wait.pipeline)
            if schedule in _NOT_CADENCE:
                problems.append(
                    f"pipelines.{name}.after[{index}]: {wait.pipeline!r} runs on {schedule!r}, which has no "
                    "logical dates to line up with; trigger this pipeline from it instead"
                )
    cycle = _cycle(pipelines)
    if cycle:
        problems.append(f"pipelines: the links form a cycle: {' -> '.join(cycle)} (via 'triggers' and 'after')")
    return problems


def effective_schedule(pipelines: Mapping[str, _Pipeline], name: str) -> str | None:
    """The schedule whose ticks are this pipeline's logical dates: its own, or its trigger chain's root's."""
    seen = {name}
    while True:
        pipeline = pipelines[name]
        if pipeline.schedule is not None:
            return pipeline.schedule
        parent = next((n for n, p in pipelines.items() if name in p.triggers), None)
        if parent is None or parent in seen:
            return None
        seen.add(parent)
        name = parent


def _cycle(pipelines: Mapping[str, _Pipeline]) -> list[str] | None:
    """A cycle in "upstream -> downstream" edges as a list of names ending where it starts, or None."""
    edges: dict[str, list[str]] = {name: [] for name in pipelines}
    for name, pipeline in pipelines.items():
        edges[name].extend(pipeline.triggers)
        for wait in pipeline.after:
            edges[wait.pipeline].append(name)
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in edges[node]:
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def aligned_logical_date(schedule: str | None, logical_date: datetime) -> datetime:
    """The logical date of the run to wait for: the latest tick of the upstream's schedule at or before ours.

    A daily 10:00 report waiting for a 09:00 load gets 09:00 the same day; an hourly pipeline waiting
    for a daily one gets that day's run. With no schedule (manual or triggered by a chain without one),
    the upstream is expected at the same logical date.
    """
    if schedule is None:
        return logical_date
    from croniter import croniter

    when = logical_date if logical_date.tzinfo else logical_date.replace(tzinfo=UTC)
    start = when.astimezone(UTC) + timedelta(seconds=1)  # get_prev is strict: a tick at `when` itself counts
    previous: datetime = croniter(_PRESETS.get(schedule, schedule), start).get_prev(datetime)  # type: ignore[no-untyped-call]
    return previous.astimezone(UTC)


def schedule_problem(schedule: str) -> str | None:
    """Why a schedule string is not one headwater can line logical dates up with, or None."""
    from croniter import croniter

    if schedule in _NOT_CADENCE:
        return None
    if not croniter.is_valid(_PRESETS.get(schedule, schedule)):  # type: ignore[no-untyped-call]
        return f"{schedule!r} is not a cron expression or one of {', '.join(sorted(_PRESETS) + list(_NOT_CADENCE))}"
    return None
