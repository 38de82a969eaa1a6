"""Airflow's own components as local child processes: api-server, scheduler, dag-processor and triggerer
over one AIRFLOW_HOME (SQLite, LocalExecutor), each in its own process group so stopping them leaves
nothing behind, on success, on failure and on Ctrl-C.

The demo and the end-to-end tests use it; it is the one-machine shape of a deployment, not a server.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from headwater.errors import HeadwaterError

COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


def worker_hostname() -> str:
    """``[core] hostname_callable`` of a local Celery worker: its name, so task instances say which ran them."""
    return os.environ.get("HEADWATER_WORKER_NAME") or socket.getfqdn()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LocalCluster:
    """The four components over ``home``; ``start()`` returns once the API answers and every DAG is parsed."""

    home: Path  # AIRFLOW_HOME; also holds the components' logs under cluster-logs/
    dags_folder: Path
    env: Mapping[str, str] = field(default_factory=dict)  # HEADWATER_CONFIG, HEADWATER_HOME...
    port: int = 0
    parallelism: int = 4
    username: str = "admin"
    password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    settings: Mapping[str, str] = field(default_factory=dict)  # AIRFLOW__* over the defaults: DB, executor, auth
    workers: Sequence[str] = ()  # Celery worker names, with the CeleryExecutor
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: list[IO[bytes]] = field(default_factory=list)
    _secrets: dict[str, str] = field(default_factory=dict)  # JWT and API keys: in these processes' memory only
    _ports: dict[str, int] = field(default_factory=dict)  # the log servers'

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_dir(self) -> Path:
        return self.home / "cluster-logs"

    def environment(self) -> dict[str, str]:
        """The settings every component shares; the JWT secret lives only in these processes' memory."""
        if not self.port:
            self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW__")}
        env.update(self.env)
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                # four processes share one SQLite file: wait for its lock instead of failing after 5 s
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}?timeout=60",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{self.username}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.passwords_file),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.url,
                "AIRFLOW__API__EXPOSE_CONFIG": "False",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
                "AIRFLOW__API_AUTH__JWT_SECRET": self._secret("jwt"),
                "AIRFLOW__API__SECRET_KEY": self._secret("api"),
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "10",
                "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
                "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
                # the log servers default to 8793/8794 on every interface: two clusters would collide
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self._port("worker_logs")),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self._port("trigger_logs")),
            }
        )
        env.update(self.settings)
        env["HEADWATER_ADMIN_USERNAME"] = self.username
        return env

    @property
    def fab(self) -> bool:
        return "fab" in self.environment()["AIRFLOW__CORE__AUTH_MANAGER"]

    def worker_command(self, name: str, env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
        """``airflow celery worker`` named ``name`` on this cluster's queue, with a log server of its own."""
        queue = env.get("AIRFLOW__OPERATORS__DEFAULT_QUEUE", "default")
        own = env | {
            "HEADWATER_WORKER_NAME": name,  # the hostname its task instances record
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "headwater.ops.local_cluster.worker_hostname",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self._port(f"{name}_logs")),
        }
        airflow = str(Path(sys.executable).with_name("airflow"))
        return [airflow, "celery", "worker", "--celery-hostname", f"{name}@%h", "--queues", queue], own

    def _secret(self, name: str) -> str:
        return self._secrets.setdefault(name, secrets.token_urlsafe(64))  # JWT keys under 64 bytes are refused

    def _port(self, name: str) -> int:
        return self._ports.setdefault(name, free_port())

    @property
    def passwords_file(self) -> Path:
        return self.home / "simple_auth_manager_passwords.json"

    def start(self, timeout: float = 180) -> None:
        """Migrate the metadata DB, start the components, wait for the API and the DAGs."""
        self.home.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        airflow = str(Path(sys.executable).with_name("airflow"))
        self._run_once([airflow, "db", "migrate"], env, "airflow db migrate")
        url = env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        if url.startswith("sqlite:///"):
            import sqlite3

            with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///").split("?")[0])) as db:
                db.execute("PRAGMA journal_mode=WAL")  # kept in the file: readers stop blocking the writer
        if self.fab:  # real users: the first admin from the environment, never from a file or an argument
            headwater = str(Path(sys.executable).with_name("headwater"))
            self._run_once([headwater, "create-admin"], env | {"HEADWATER_ADMIN_PASSWORD": self.password}, "admin")
        else:
            self.passwords_file.write_text(json.dumps({self.username: self.password}))
            self.passwords_file.chmod(0o600)
        commands = {
            c: ([airflow, c] + (["--port", str(self.port)] if c == "api-server" else []), env) for c in COMPONENTS
        }
        if env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor":
            commands |= {f"worker-{name}": self.worker_command(name, env) for name in self.workers}
        try:
            for name, (args, process_env) in commands.items():
                log = (self.log_dir / f"{name}.log").open("ab")
                self._logs.append(log)
                self.processes[name] = subprocess.Popen(  # noqa: S603 - our own venv's airflow
                    args,
                    env=process_env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            self._wait_until_up(timeout)
        except BaseException:
            self.stop()
            raise

    def _run_once(self, args: list[str], env: dict[str, str], what: str) -> None:
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, check=False)  # noqa: S603
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise HeadwaterError(f"{what} failed: " + " | ".join(tail))

    def _wait_until_up(self, timeout: float) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            with contextlib.suppress(httpx.HTTPError):
                health = httpx.get(f"{self.url}/api/v2/monitor/health", timeout=5).json()
                states = [health.get(k, {}).get("status") for k in ("metadatabase", "scheduler", "triggerer")]
                if all(s == "healthy" for s in states):
                    return
            time.sleep(1)
        raise HeadwaterError(f"Airflow did not become healthy within {timeout:.0f} s (logs in {self.log_dir})")

    def check_alive(self) -> None:
        """Raise naming the component that exited, with the end of its log."""
        for component, process in self.processes.items():
            if process.poll() is not None:
                log = (self.log_dir / f"{component}.log").read_text(errors="replace").strip().splitlines()
                raise HeadwaterError(
                    f"airflow {component} exited with status {process.returncode}: "
                    + " | ".join(log[-3:])
                    + f" (log: {self.log_dir / (component + '.log')})"
                )

    def stop(self, grace: float = 10) -> None:
        """SIGTERM every component, SIGKILL what is left of their sessions after ``grace`` seconds; idempotent.

        Task processes get process groups of their own but stay in their component's session, so the
        kill goes by session: nothing the components started survives them.
        """
        sessions = [p.pid for p in self.processes.values()]
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
        kill_sessions(sessions)
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=5)
        self.processes.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()

    @property
    def pid_file(self) -> Path:
        return self.home / "cluster.pids"

    def detach(self) -> None:
        """Leave the components running after this program exits; ``stop_detached`` ends them later."""
        self.pid_file.write_text(json.dumps({name: p.pid for name, p in self.processes.items()}))
        self.processes.clear()
        for log in self._logs:
            log.close()
        self._logs.clear()

    def __enter__(self) -> LocalCluster:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def session_pids(sessions: list[int]) -> list[int]:
    """Every live process whose session is one of ``sessions`` (their leaders included)."""
    import psutil

    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error, ProcessLookupError, PermissionError):
            if os.getsid(process.pid) in sessions and process.status() != psutil.STATUS_ZOMBIE:
                found.append(process.pid)
    return found


def kill_sessions(sessions: list[int], wait: float = 10) -> None:
    """SIGKILL every process of ``sessions`` and wait (up to ``wait`` s) until none is left."""
    deadline = time.monotonic() + wait
    while (left := session_pids(sessions)) and time.monotonic() < deadline:
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)


def stop_detached(home: Path, grace: float = 20) -> list[str]:
    """Stop the components a detached cluster left running, and their sessions; the names stopped."""
    pid_file = home / "cluster.pids"
    try:
        pids: dict[str, int] = json.loads(pid_file.read_text())
    except (OSError, ValueError):
        return []
    alive = set(session_pids(list(pids.values())))
    stopped = [name for name, pid in pids.items() if pid in alive]
    for pid in pids.values():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and session_pids(list(pids.values())):
        time.sleep(0.2)
    kill_sessions(list(pids.values()))
    pid_file.unlink(missing_ok=True)
    (home / "simple_auth_manager_passwords.json").unlink(missing_ok=True)
    return stopped


@contextlib.contextmanager
def interrupts_as_exceptions() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt like SIGINT does, so ``finally`` blocks stop the components."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
