"""``headwater chain``: the pipelines' chain for one logical date under Airflow's real scheduler, started
locally and stopped again (or kept up with ``--keep-ui``)."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from headwater.errors import HeadwaterError

if TYPE_CHECKING:
    from headwater.config import LoadedConfig
    from headwater.ops.local_cluster import LocalCluster

console = Console()
errors = Console(stderr=True, soft_wrap=True, highlight=False)


def chain(
    logical_date: Annotated[
        str | None, typer.Option(help="the chain's date: each root runs at its latest tick at or before it")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="pipelines file")] = None,
    keep_ui: Annotated[
        bool, typer.Option("--keep-ui", help="leave Airflow running afterwards; print URL and login")
    ] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for the whole chain")] = 900,
    stop: Annotated[bool, typer.Option("--stop", help="stop the Airflow a --keep-ui run left up, and exit")] = False,
    schedules: Annotated[
        bool, typer.Option(help="let the scheduler also start the DAGs' own scheduled runs (the latest tick of each)")
    ] = False,
) -> None:
    """Start Airflow's scheduler, dag-processor, triggerer and api-server, trigger the chain's roots through
    the REST API, wait for every run it starts, print each run, and stop everything it started."""
    from headwater.cli_run import parse_date, refresh_dbt_manifests
    from headwater.config import load_config
    from headwater.local_airflow import PACKAGE_DAGS, prepare_env
    from headwater.ops.local_cluster import LocalCluster, interrupts_as_exceptions, stop_detached

    prepare_env(config)
    home = Path(os.environ["HEADWATER_HOME"]) / "scheduler"
    stopped = stop_detached(home)
    if stop:
        console.print(f"stopped: {', '.join(stopped)}" if stopped else "no Airflow of `headwater chain` was running")
        return
    if stopped:
        errors.print(f"stopped the Airflow a previous --keep-ui run left up ({', '.join(stopped)})")
    try:
        when = parse_date(logical_date)
        loaded = load_config(os.environ["HEADWATER_CONFIG"])
        refresh_dbt_manifests()
    except (HeadwaterError, ValueError) as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2 if isinstance(exc, ValueError) else 1) from None
    dags = Path(os.environ.get("AIRFLOW__CORE__DAGS_FOLDER") or PACKAGE_DAGS)
    cluster = LocalCluster(
        home=home,
        dags_folder=dags,
        env={k: os.environ[k] for k in ("HEADWATER_CONFIG", "HEADWATER_HOME") if k in os.environ}
        | {"HEADWATER_SCHEDULES": "on" if schedules else "off"},
    )
    ok = False
    try:
        with interrupts_as_exceptions():
            errors.print(f"starting Airflow (scheduler, dag-processor, triggerer, api-server) in {home} ...")
            cluster.start()
            errors.print(f"Airflow is up at {cluster.url}; triggering the chain for {when.isoformat()}")
            ok = _run(cluster, loaded, when, timeout)
            if keep_ui:
                cluster.detach()
                console.print(f"Airflow UI: {cluster.url}  user {cluster.username}  password {cluster.password}")
                console.print("stop it with: headwater chain --stop   (or make demo-down)", soft_wrap=True)
    except KeyboardInterrupt as exc:
        errors.print("interrupted: stopping Airflow")
        cluster.stop()
        raise typer.Exit(143 if str(exc) == "SIGTERM" else 130) from None
    except HeadwaterError as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}")
    finally:
        if cluster.processes:  # not detached
            cluster.stop()
            cluster.passwords_file.unlink(missing_ok=True)
    if not ok:
        raise typer.Exit(1)


def _run(cluster: LocalCluster, loaded: LoadedConfig, when: datetime, timeout: float) -> bool:
    from headwater.ops.airflow_api import AirflowApi
    from headwater.ops.chain_run import run_chain

    api = AirflowApi(cluster.url, cluster.username, cluster.password)
    try:
        result = run_chain(
            api,
            loaded,
            when,
            timeout=timeout,
            on_change=lambda name, state: errors.print(f"  {name}: {state}"),
            alive=cluster.check_alive,
        )
    finally:
        api.close()
    reports = result.reports
    console.print("the chain's runs, in the order they started:", soft_wrap=True)
    for r in sorted(reports, key=lambda r: (r.started is None, r.started or r.logical_date)):
        seconds = f"{r.seconds:.1f} s" if r.seconds is not None else "-"
        colour = "green" if r.state == "success" else "red"
        console.print(
            f"  {r.pipeline}  {r.logical_date.isoformat()}  {r.run_type or '-'}  [{colour}]{r.state}[/]  {seconds}",
            soft_wrap=True,
        )
        for line in r.produced + ([r.reason] if r.reason else []):
            console.print(f"      {escape(line)}", soft_wrap=True, highlight=False)
    if result.latency is not None:
        console.print(
            f"chain: last task done {result.latency:.1f} s after the first trigger; "
            f"{result.task_seconds:.1f} s of task time (waits excluded)",
            soft_wrap=True,
        )
    sys.stdout.flush()
    return all(r.state == "success" for r in reports)
