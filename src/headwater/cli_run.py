"""``headwater run``: one pipeline's DAG through Airflow in-process (``dag.test``), stoppable by supervisors.

The command is a small supervisor around a worker process that runs the DAG. Airflow's in-process task
runner takes SIGTERM over while each task runs (its handler only calls ``on_kill``), so the supervisor
receives SIGTERM and SIGINT and relays them to the worker as signals Airflow leaves alone. The worker
stops the running task (failed, never retried; its staging is rolled back and its scratch removed like on
any failure), runs nothing more, and exits 143 or 130. A second signal kills the worker at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from headwater.cli_common import (
    BAD_USAGE,
    FAILED,
    Json,
    Output,
    Verbose,
    console,
    errors,
    fail,
    fail_on,
    print_json,
    progress_display,
    status_for,
    stdout_to_stderr,
    wants_json,
)
from headwater.errors import HeadwaterError
from headwater.signals import RELAYED_SIGTERM, exit_status, stop_on_signals, stop_signal

WORKER_ENV = "HEADWATER_RUN_WORKER"  # set: this process runs the DAG itself (the supervisor's child, or tests)
GRACE_ENV = "HEADWATER_STOP_GRACE_SECONDS"
DEFAULT_GRACE_SECONDS = 30.0
UNFINISHED = ("running", "queued", "scheduled", "up_for_retry", "up_for_reschedule", "deferred", "restarting")


def run(
    pipeline: Annotated[str, typer.Argument(help="pipeline name (the DAG id)")],
    config: Annotated[Path | None, typer.Option("--config", "-c", help="pipelines file")] = None,
    logical_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD or ISO timestamp (default: now)")] = None,
    verbose: Verbose = False,
    output: Output = "table",
    as_json: Json = False,
) -> None:
    """Run one pipeline's DAG in-process through Airflow (``dag.test``) and print what it loaded.

    Exit status: 0 success, 1 the run failed, 2 bad usage or config, 130/143 stopped by SIGINT/SIGTERM.
    """
    from headwater.local_airflow import prepare_env

    prepare_env(config, verbose)
    try:
        when = parse_date(logical_date)
    except ValueError as exc:
        fail(str(exc), BAD_USAGE)
    json_mode = wants_json(output, as_json)
    if os.environ.get(WORKER_ENV) != "1":
        args = ["run", pipeline, "--config", os.environ["HEADWATER_CONFIG"], "--logical-date", when.isoformat()]
        args += ["--output", "json" if json_mode else "table"] + (["--verbose"] if verbose else [])
        raise typer.Exit(supervise(args))
    with stdout_to_stderr(json_mode):
        document = run_pipeline(pipeline, when, verbose, json_mode)
    if json_mode:
        print_json(document)
    else:
        report(document)
    if document["interrupted"]:
        raise typer.Exit(exit_status(getattr(signal, document["interrupted"])))
    if document["state"] != "success":
        raise typer.Exit(FAILED)


def supervise(args: list[str]) -> int:
    """Run ``headwater ARGS`` as a worker in its own session; relay the first SIGTERM/SIGINT to it, kill it
    on the second or when it outlives the grace period; return its exit status (143/130 when stopped)."""
    grace = float(os.environ.get(GRACE_ENV) or DEFAULT_GRACE_SECONDS)
    env = {**os.environ, WORKER_ENV: "1"}
    command = [sys.executable, "-m", "headwater", *args]
    child = subprocess.Popen(command, env=env, start_new_session=True)  # noqa: S603
    received: list[int] = []

    def relay(signum: int, frame: Any) -> None:
        if received:
            _kill_session(child.pid)
            os.write(2, f"\n{signal.Signals(signum).name} again: stopped at once, without cleanup\n".encode())
            os._exit(exit_status(received[0]))
        received.append(signum)
        with contextlib.suppress(ProcessLookupError):
            os.kill(child.pid, signal.SIGINT if signum == signal.SIGINT else RELAYED_SIGTERM)

    previous = {kind: signal.signal(kind, relay) for kind in (signal.SIGTERM, signal.SIGINT)}
    try:
        stopping_since: float | None = None
        while child.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=0.2)
            if received and stopping_since is None:
                stopping_since = time.monotonic()
            if stopping_since is not None and time.monotonic() - stopping_since > grace:
                errors.print(f"the run did not stop within {grace:g} s of {signal.Signals(received[0]).name}: killed")
                _kill_session(child.pid)
                child.wait()
    finally:
        for kind, handler in previous.items():
            signal.signal(kind, handler)
        _kill_session(child.pid)  # whatever the worker started and left
    if received:
        return exit_status(received[0])
    return exit_status(-child.returncode) if child.returncode < 0 else child.returncode  # killed: 128 + signal


def _kill_session(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def parse_date(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC).replace(microsecond=0)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"--logical-date {text!r} is not YYYY-MM-DD or an ISO timestamp") from None
    if isinstance(value, date) and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def run_pipeline(pipeline: str, when: datetime, verbose: bool, json_mode: bool) -> dict[str, Any]:
    """The worker: run the DAG, stopping cleanly on a signal; returns the run's JSON document."""
    from headwater.config import load_config
    from headwater.local_airflow import load_dag, migrate, run_lock

    try:
        spec = load_config(os.environ.get("HEADWATER_CONFIG")).pipeline(pipeline)
    except HeadwaterError as exc:
        fail_on(exc, verbose)
    os.environ["HEADWATER_LINKS"] = "off"  # one pipeline alone: its waits and triggers are the scheduler's
    if spec.after or spec.triggers:
        links = [f"waits for {w.pipeline}" for w in spec.after] + [f"triggers {t}" for t in spec.triggers]
        errors.print(f"{pipeline}: run alone; under the scheduler it also {', '.join(links)}")
    try:
        migrate()
        refresh_dbt_manifests(pipeline)
        dag = load_dag(pipeline)
        lock = contextlib.ExitStack()
        lock.enter_context(run_lock(pipeline, when))
    except HeadwaterError as exc:
        fail_on(exc, verbose)
    started = time.monotonic()
    failures: dict[str, str] = {}
    display = progress_display(
        errors if json_mode else console,
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with lock, stop_on_signals(repeat_forces_exit=False):  # the supervisor acts on a second signal
        with display:
            bar = display.add_task(f"{pipeline}: running", total=len(dag.tasks))
            _watch_tasks(dag, display, bar, failures)
            try:
                dag.test(logical_date=when)
            except BaseException as exc:  # a stop request arrives as KeyboardInterrupt or Terminated
                if stop_signal() is None:
                    if isinstance(exc, Exception):
                        fail_on(exc, verbose)
                    raise
        return _finish(dag, when, time.monotonic() - started, failures)


def _watch_tasks(dag: Any, display: Any, bar: Any, failures: dict[str, str]) -> None:
    """Progress and one-line reasons from each task. After a stop request, the callback of the task that
    was running (failed, or up for retry) raises it out of ``dag.test``, so no retry and no later task
    starts; ``_finish`` then records the run as failed."""
    from headwater.local_airflow import one_line

    def stopping(context: Any) -> None:
        if (signum := stop_signal()) is not None:
            name = signal.Signals(signum).name
            failures.setdefault(context["ti"].task_id, f"stopped by {name}; what it had staged was removed")
            raise KeyboardInterrupt(signal.Signals(signum).name)

    def advance(context: Any) -> None:
        task_id = context["ti"].task_id
        display.update(bar, advance=1, description=f"{dag.dag_id}: {task_id} done")
        if display.disable:
            errors.print(f"{dag.dag_id}: {task_id} done")
        if stop_signal() is not None:
            raise KeyboardInterrupt

    def failed(context: Any) -> None:
        stopping(context)
        failures[context["ti"].task_id] = one_line(context.get("exception"))

    for task in dag.tasks:
        task.on_success_callback = [*_as_list(task.on_success_callback), advance]
        task.on_failure_callback = [*_as_list(task.on_failure_callback), failed]  # alerts stay
        task.on_retry_callback = [*_as_list(task.on_retry_callback), stopping]


def _as_list(callbacks: Any) -> list[Any]:
    if callbacks is None:
        return []
    return list(callbacks) if isinstance(callbacks, list | tuple) else [callbacks]


def refresh_dbt_manifests(pipeline: str | None = None) -> None:
    """Rebuild the manifest of the pipeline's dbt project if it changed since it was built (all, when None)."""
    from headwater.airflow.dbt_parse import refresh_manifests
    from headwater.config import load_config

    loaded = load_config(os.environ.get("HEADWATER_CONFIG"))
    for path in refresh_manifests(loaded, only_stale=pipeline is not None, pipeline=pipeline):
        errors.print(f"dbt manifest rebuilt: {path}")


def _finish(dag: Any, when: datetime, seconds: float, failures: dict[str, str]) -> dict[str, Any]:
    """Close an interrupted run in the metadata DB (the task that was running failed, the rest not run),
    then read what the run did from its task results."""
    from airflow.models.dagrun import DagRun
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    with create_session() as session:
        runs = select(DagRun).where(DagRun.dag_id == dag.dag_id, DagRun.logical_date == when)
        dag_run = session.scalars(runs).one_or_none()
        if dag_run is None:  # stopped before Airflow created the run
            return _document(dag.dag_id, None, when, "failed", seconds, {}, {}, failures)
        instances = dag_run.get_task_instances(session=session)
        if stop_signal() is not None:
            for ti in instances:
                state = str(getattr(ti.state, "value", ti.state))
                if ti.state is None or state in UNFINISHED:
                    started = state not in ("None", "scheduled")
                    ti.set_state("failed" if started else "upstream_failed", session=session)
                    if started:
                        failures.setdefault(ti.task_id, f"stopped by {signal.Signals(stop_signal() or 2).name}")
            dag_run.set_state(DagRunState.FAILED)
            session.flush()
        states = {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in instances}
        results = XComModel.get_many(run_id=dag_run.run_id, dag_ids=dag.dag_id, key="return_value")
        rows: list[Any] = list(session.execute(results).scalars())
        values = {row.task_id: XComModel.deserialize_value(row) for row in rows}
        run_id, state = dag_run.run_id, str(getattr(dag_run.state, "value", dag_run.state))
    return _document(dag.dag_id, run_id, when, state, seconds, states, values, failures)


def _document(
    pipeline: str,
    run_id: str | None,
    when: datetime,
    state: str,
    seconds: float,
    states: dict[str, str],
    values: dict[str, Any],
    failures: dict[str, str],
) -> dict[str, Any]:
    """The run as ``--output json`` prints it (and the table is drawn from)."""
    loads = [v for k, v in values.items() if k.startswith("load__")]
    dbt_nodes = [n for v in values.values() if isinstance(v, dict) and "nodes" in v for n in v["nodes"]]
    exports = {
        k.removeprefix("export__"): v
        for k, v in values.items()
        if k.startswith("export__") and isinstance(v, str) and v.endswith("_manifest.json")
    }
    return {
        "pipeline": pipeline,
        "run_id": run_id,
        "logical_date": when.isoformat(),
        "state": state,
        "seconds": round(seconds, 3),
        "interrupted": None if (signum := stop_signal()) is None else signal.Signals(signum).name,
        "tables": [
            {k: load[k] for k in ("table", "method", "rows", "columns", "table_rows", "seconds") if k in load}
            for load in loads
        ],
        "dbt": {"skipped_unchanged": states.get("inputs_unchanged") == "success", "nodes": dbt_nodes},
        "exports": exports,
        "failed": [{"task": task, "reason": reason} for task, reason in failures.items()],
        "not_run": sorted(t for t, s in states.items() if s in ("upstream_failed", "None") and t not in failures),
        "tasks": states,
    }


def report(document: dict[str, Any]) -> None:
    """The run for people: loaded tables, dbt, exports, then the failures on stderr."""
    table = Table(title=f"{document['pipeline']} run {document['run_id']} ({document['state']})")
    for column, justify in (("table", "left"), ("load", "left"), ("rows", "right"), ("columns", "right"),
                            ("table rows", "right"), ("seconds", "right")):  # fmt: skip
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for load in document["tables"]:
        table.add_row(load["table"], load["method"], f"{load['rows']:,}", str(load["columns"]),
                      f"{load['table_rows']:,}", f"{load['seconds']:.2f}")  # fmt: skip
    dbt = document["dbt"]
    if document["tables"] or not (dbt["nodes"] or document["exports"] or dbt["skipped_unchanged"]):
        console.print(table)
    if dbt["skipped_unchanged"]:
        console.print("dbt: skipped, no input table changed since the last build")
    for name, uri in sorted(document["exports"].items()):
        console.print(f"{name}: {uri}")
    if dbt["nodes"]:
        counts: dict[tuple[str, str], int] = {}
        for node in dbt["nodes"]:
            counts[(node["type"], node["status"])] = counts.get((node["type"], node["status"]), 0) + 1
        parts = [f"{n} {kind}{'s' if n > 1 else ''} {status}" for (kind, status), n in sorted(counts.items())]
        console.print("dbt: " + ", ".join(parts))
    console.print(f"finished in {document['seconds']:.1f}s")
    if document["interrupted"]:
        errors.print(f"[bold red]stopped by {document['interrupted']}[/]: the running task failed and its "
                     "staging was rolled back; published tables are as before it")  # fmt: skip
    if document["state"] != "success":
        if document["not_run"]:
            errors.print(f"not run: {', '.join(document['not_run'])} (an upstream task failed)")
        errors.print("(rerun with --verbose for the task logs)")
        for failure in document["failed"]:
            errors.print(f"[bold red]failed:[/] {failure['task']}: {escape(failure['reason'])}")
        if not document["failed"]:
            failed = [t for t, s in document["tasks"].items() if s not in ("success", "skipped")]
            errors.print(f"[bold red]run failed[/]; tasks not successful: {', '.join(failed) or '?'}")


__all__ = ["run", "status_for"]
