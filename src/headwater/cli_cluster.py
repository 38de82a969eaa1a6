"""``headwater cluster up|down``: the production stack of deploy/ (PostgreSQL metadata DB, CeleryExecutor
over Redis, FAB users) from plain processes on this machine, the same settings docker-compose uses."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from headwater.errors import HeadwaterError

console = Console()
errors = Console(stderr=True, soft_wrap=True, highlight=False)
cluster_app = typer.Typer(help="The deploy/ stack as local processes: up (detached) and down.", no_args_is_help=True)
REQUIRED = (
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
    "HEADWATER_ADMIN_USERNAME",
    "HEADWATER_ADMIN_PASSWORD",
)


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines (comments and blank lines skipped), as docker-compose's ``env_file`` reads them."""
    settings = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            raise HeadwaterError(f"{path}:{number}: not KEY=VALUE")
        settings[key.strip()] = value.strip()
    return settings


def celery_stack_settings(
    settings_file: Path, *, database_url: str, broker_url: str, queue: str, log_folder: Path, fernet_key: str
) -> dict[str, str]:
    """The deploy settings plus one site's addresses and keys, for a stack of local processes."""
    return read_env_file(settings_file) | {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database_url,
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + database_url.replace("+psycopg2", ""),
        "AIRFLOW__CORE__FERNET_KEY": fernet_key,
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(log_folder),
    }


def _home() -> Path:
    from headwater import settings

    return settings.home() / "cluster"


@cluster_app.command()
def up(
    workers: Annotated[int, typer.Option(min=1, max=16, help="Celery workers to start")] = 2,
    settings_file: Annotated[Path, typer.Option("--settings", help="the shared settings")] = Path("deploy/airflow.env"),
    dags_folder: Annotated[Path, typer.Option(help="the DAGs folder")] = Path("dags"),
    port: Annotated[int, typer.Option(help="the api-server's port")] = 8080,
) -> None:
    """Start api-server, scheduler, dag-processor, triggerer and N Celery workers, detached; the secrets
    (metadata DB and broker URLs, Fernet, JWT and API keys, the first admin) come from the environment."""
    from headwater.ops.local_cluster import LocalCluster, stop_detached

    missing = [name for name in REQUIRED if not os.environ.get(name, "").strip()]
    if missing:
        errors.print(f"[bold red]error:[/] set {', '.join(missing)} (see deploy/.env.example)")
        raise typer.Exit(2)
    try:
        settings = read_env_file(settings_file)
    except (OSError, HeadwaterError) as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(2) from None
    settings |= {k: v for k, v in os.environ.items() if k.startswith("AIRFLOW__")}  # the site's values win
    home = _home()
    if stop_detached(home):
        errors.print("stopped the stack that was running")
    settings.setdefault("AIRFLOW__LOGGING__BASE_LOG_FOLDER", str(home / "logs"))
    if settings["AIRFLOW__LOGGING__BASE_LOG_FOLDER"].startswith("/opt/airflow"):  # the image's path
        settings["AIRFLOW__LOGGING__BASE_LOG_FOLDER"] = str(home / "logs")
    cluster = LocalCluster(
        home=home,
        dags_folder=dags_folder.resolve(),
        settings=settings,
        workers=[f"w{i}" for i in range(1, workers + 1)],
        username=os.environ["HEADWATER_ADMIN_USERNAME"],
        password=os.environ["HEADWATER_ADMIN_PASSWORD"],
        port=port,
        env={k: v for k, v in os.environ.items() if k.startswith("HEADWATER_") and k != "HEADWATER_ADMIN_PASSWORD"},
    )
    try:
        cluster.start(timeout=300)
    except HeadwaterError as exc:
        errors.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(1) from None
    names = ", ".join(cluster.processes)
    cluster.detach()
    console.print(f"up: {names}; API and UI at {cluster.url}; logs in {cluster.log_dir}", soft_wrap=True)
    console.print("stop with: headwater cluster down (or make cluster-down)")


@cluster_app.command()
def down() -> None:
    """Stop the stack ``cluster up`` started (every process of its sessions)."""
    from headwater.ops.local_cluster import stop_detached

    stopped = stop_detached(_home())
    console.print(f"stopped: {', '.join(stopped)}" if stopped else "no stack of `headwater cluster up` was running")
