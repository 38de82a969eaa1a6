"""``headwater trigger`` and ``headwater health``: what the official client and airflowctl lack for scripts
and monitors: trigger and wait for the outcome, and a health check that fails when a component is stale.

Server, user and password come from options or the environment (AIRFLOW_API_URL, AIRFLOW_USERNAME,
AIRFLOW_PASSWORD); every failure is one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from headwater.cli_common import Output, console, errors, fail
from headwater.errors import HeadwaterError

COMPONENTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")

Server = Annotated[str, typer.Option("--server", envvar="AIRFLOW_API_URL", help="the api-server's URL")]
User = Annotated[str, typer.Option("--user", envvar="AIRFLOW_USERNAME", help="the API user")]
Password = Annotated[
    str, typer.Option("--password", envvar="AIRFLOW_PASSWORD", help="prefer AIRFLOW_PASSWORD: options show in ps")
]


def trigger(
    dag_id: Annotated[str, typer.Argument(help="the DAG to run")],
    conf: Annotated[str | None, typer.Option(help="the run's conf, a JSON object")] = None,
    logical_date: Annotated[
        str | None, typer.Option(help="ISO date or timestamp (default: now); 'none' for a run without one")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="wait for the run; exit 1 if it failed")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait")] = 3600,
    server: Server = "http://127.0.0.1:8080",
    user: User = "admin",
    password: Password = "",
    output: Output = "table",
) -> None:
    """Trigger a DAG run through the REST API, and with --wait follow it to the end."""
    body = _conf(conf)
    when = _when(logical_date)
    from headwater.ops.airflow_api import AirflowApi

    try:
        api = AirflowApi(server, user, password)
    except HeadwaterError as exc:
        fail(str(exc))
    try:
        run = api.trigger(dag_id, when, body, retry_conflict=False)
        result = {"dag_id": dag_id, "run_id": run.dag_run_id, "logical_date": _iso(run.logical_date)}
        state = str(run.state.value)
        deadline = time.monotonic() + timeout
        while wait and state not in ("success", "failed"):
            if time.monotonic() > deadline:
                fail(f"{dag_id} run {run.dag_run_id} still {state} after {timeout:g} s")
            time.sleep(2)
            state = str(api.dag_runs.get_dag_run(dag_id, run.dag_run_id).state.value)
        result["state"] = state
        failed = []
        if wait:
            failed = sorted(
                t.task_id
                for t in api.tasks(dag_id, run.dag_run_id)
                if t.state is not None and str(t.state.value) in ("failed", "upstream_failed")
            )
            result["failed_tasks"] = failed
    except HeadwaterError as exc:
        fail(_explain(str(exc), dag_id, server))
    finally:
        api.close()
    if output == "json":
        console.print_json(json.dumps(result))
    else:
        console.print(f"{dag_id}  {result['run_id']}  {result['logical_date'] or '-'}  {state}")
        for task in failed:
            console.print(f"  failed: {task}")
    if wait and state != "success":
        raise typer.Exit(1)


def _conf(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        fail(f"--conf is not JSON: {exc}", 2)
    if not isinstance(value, dict):
        fail("--conf must be a JSON object", 2)
    return value


def _when(text: str | None) -> datetime | None:
    if text is None:
        return datetime.now(UTC).replace(microsecond=0)
    if text.lower() == "none":
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        fail(f"--logical-date {text!r} is not an ISO date or timestamp", 2)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _explain(message: str, dag_id: str, server: str) -> str:
    """The API's answers in words: an unknown DAG, a run already there."""
    if "HTTP 404" in message:
        return f"no DAG {dag_id!r} on {server} ({message})"
    if "HTTP 409" in message:
        return f"a run of {dag_id!r} with that logical date exists already ({message})"
    return message


def health(
    server: Server = "http://127.0.0.1:8080",
    max_age: Annotated[float, typer.Option(help="seconds a heartbeat may be old")] = 60,
    output: Output = "table",
) -> None:
    """Exit 1 naming each unhealthy component and how stale its heartbeat is (/api/v2/monitor/health,
    which answers 200 even when the scheduler is dead); for cron, probes and monitors."""
    import httpx

    try:
        reply = httpx.get(f"{server.rstrip('/')}/api/v2/monitor/health", timeout=30)
        reply.raise_for_status()
        data = reply.json()
    except (httpx.HTTPError, ValueError) as exc:
        fail(f"cannot read {server}/api/v2/monitor/health: {exc}")
    now = datetime.now(UTC)
    report: dict[str, dict[str, Any]] = {}
    for name in COMPONENTS:
        part = data.get(name) or {}
        beat = next((v for k, v in part.items() if k.startswith("latest_") and k.endswith("heartbeat")), None)
        age = (now - datetime.fromisoformat(beat)).total_seconds() if beat else None
        reasons = []
        if part.get("status") != "healthy":
            reasons.append(f"status {part.get('status') or 'missing'}")
        if age is not None and age > max_age:
            reasons.append(f"last heartbeat {age:.0f} s ago (over {max_age:g} s)")
        elif age is None and name != "metadatabase":
            reasons.append("no heartbeat recorded")
        report[name] = {
            "healthy": not reasons,
            "status": part.get("status"),
            "heartbeat_age_seconds": age,
            "problems": reasons,
        }
    bad = [name for name, r in report.items() if not r["healthy"]]
    if output == "json":
        console.print_json(json.dumps({"healthy": not bad, "components": report}))
    else:
        for name, r in report.items():
            beat = f"{r['heartbeat_age_seconds']:.0f} s ago" if r["heartbeat_age_seconds"] is not None else "-"
            console.print(f"{name:14s} {'healthy' if r['healthy'] else 'UNHEALTHY':10s} heartbeat {beat}")
    for name in bad:
        errors.print(f"unhealthy: {name}: {'; '.join(report[name]['problems'])}")
    if bad:
        raise typer.Exit(1)
