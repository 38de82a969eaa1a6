"""Airflow's REST API through the official client (``apache-airflow-client``), with the login it lacks:
``POST /auth/token`` for a JWT, then Bearer auth. Errors become one-line HeadwaterErrors."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from headwater.errors import HeadwaterError


class AirflowApiError(HeadwaterError):
    """A REST call failed: the message names the call and the server's reason."""


def fetch_token(url: str, username: str, password: str) -> str:
    """A JWT from ``POST /auth/token``; wrong credentials or an unreachable server are one-line errors."""
    import httpx

    try:
        reply = httpx.post(f"{url}/auth/token", json={"username": username, "password": password}, timeout=30)
    except httpx.HTTPError as exc:
        raise AirflowApiError(f"cannot reach the Airflow API at {url}: {exc}", transient=True) from None
    if reply.status_code in (401, 403):
        raise AirflowApiError(f"{url}: user {username!r} was refused (wrong user or password)")
    if reply.status_code >= 400:
        raise AirflowApiError(f"{url}/auth/token answered {reply.status_code}: {reply.text[:200]}")
    token = reply.json().get("access_token")
    if not token:
        raise AirflowApiError(f"{url}/auth/token answered without an access_token")
    return str(token)


class AirflowApi:
    """The calls headwater makes: trigger, read runs and task instances, asset events, backfills."""

    def __init__(self, url: str, username: str, password: str) -> None:
        import airflow_client.client as client

        self.url = url.rstrip("/")
        configuration = client.Configuration(host=self.url, access_token=fetch_token(self.url, username, password))
        self._client = client.ApiClient(configuration)
        self.dag_runs = client.DagRunApi(self._client)
        self.task_instances = client.TaskInstanceApi(self._client)
        self.assets = client.AssetApi(self._client)
        self.dags = client.DAGApi(self._client)
        self.backfills = client.BackfillApi(self._client)

    @contextlib.contextmanager
    def _call(self, what: str) -> Iterator[None]:
        from airflow_client.client.exceptions import ApiException

        try:
            yield
        except ApiException as exc:
            detail = (exc.body or exc.reason or "").strip().replace("\n", " ")[:300]
            raise AirflowApiError(f"{what}: HTTP {exc.status}: {detail}") from None
        except OSError as exc:
            raise AirflowApiError(f"{what}: cannot reach {self.url}: {exc}", transient=True) from None

    def trigger(
        self,
        dag_id: str,
        logical_date: datetime | None,
        conf: dict[str, Any] | None = None,
        *,
        retry_conflict: bool = True,
    ) -> Any:
        """A new run; a server error is retried, and a retry that finds the run already made returns it
        (``retry_conflict``: otherwise a 409 after a retry is an error too)."""
        from airflow_client.client.models.trigger_dag_run_post_body import TriggerDAGRunPostBody

        body = TriggerDAGRunPostBody(logical_date=logical_date, conf=conf or {})
        for attempt in range(5):
            try:
                with self._call(f"trigger {dag_id}"):
                    return self.dag_runs.trigger_dag_run(dag_id, body)
            except AirflowApiError as exc:
                if "HTTP 409" in str(exc) and attempt and logical_date is not None and retry_conflict:
                    return self.run_at(dag_id, logical_date)
                if not (exc.transient or "HTTP 5" in str(exc)) or attempt == 4:
                    raise
                time.sleep(2**attempt)
        raise AssertionError("unreachable")

    def backfill(self, dag_id: str, start: datetime, end: datetime, *, max_active_runs: int = 1) -> Any:
        """Backfill ``dag_id`` from ``start`` to ``end``, one run at a time by default (a backfill ignores the
        DAG's own max_active_runs). A locked SQLite metadata DB answers 503 while the scheduler writes: retried."""
        from airflow_client.client.models.backfill_post_body import BackfillPostBody
        from airflow_client.client.models.reprocess_behavior import ReprocessBehavior

        body = BackfillPostBody(
            dag_id=dag_id,
            from_date=start,
            to_date=end,
            max_active_runs=max_active_runs,
            reprocess_behavior=ReprocessBehavior("none"),
        )
        for attempt in range(6):
            try:
                with self._call(f"backfill {dag_id}"):
                    return self.backfills.create_backfill(body)
            except AirflowApiError as exc:
                if "HTTP 5" not in str(exc) or attempt == 5:
                    raise
                time.sleep(2**attempt)
        raise AssertionError("unreachable")

    def wait_for_dags(self, dag_ids: list[str], timeout: float) -> None:
        """Until the dag-processor has parsed every one of ``dag_ids``; names the missing ones and import errors."""
        deadline = time.monotonic() + timeout
        missing = list(dag_ids)
        while time.monotonic() < deadline:
            with self._call("list DAGs"):
                known = {d.dag_id for d in self.dags.get_dags(limit=1000).dags}
            missing = [d for d in dag_ids if d not in known]
            if not missing:
                return
            time.sleep(1)
        import airflow_client.client as client

        with self._call("import errors"):
            found = client.ImportErrorApi(self._client).get_import_errors(limit=20).import_errors
        problems = "; ".join(f"{e.filename}: {(e.stack_trace or '').strip().splitlines()[-1:]}" for e in found)
        raise AirflowApiError(f"DAGs {', '.join(missing)} not parsed within {timeout:.0f} s {problems}".strip())

    def run_at(self, dag_id: str, logical_date: datetime) -> Any | None:
        """The run of ``dag_id`` at exactly ``logical_date``, or None."""
        with self._call(f"list runs of {dag_id}"):
            runs = self.dag_runs.get_dag_runs(dag_id, logical_date_gte=logical_date, logical_date_lte=logical_date)
        return runs.dag_runs[0] if runs.dag_runs else None

    def runs(self, dag_id: str) -> list[Any]:
        with self._call(f"list runs of {dag_id}"):
            return list(self.dag_runs.get_dag_runs(dag_id, order_by=["logical_date"], limit=100).dag_runs)

    def tasks(self, dag_id: str, run_id: str) -> list[Any]:
        with self._call(f"task instances of {dag_id} {run_id}"):
            return list(self.task_instances.get_task_instances(dag_id, run_id, limit=500).task_instances)

    def asset_events(self, dag_id: str, run_id: str) -> list[Any]:
        with self._call(f"asset events of {dag_id} {run_id}"):
            found = self.assets.get_asset_events(source_dag_id=dag_id, source_run_id=run_id, limit=500)
        return list(found.asset_events)

    def xcom(self, dag_id: str, run_id: str, task_id: str) -> Any:
        import airflow_client.client as client

        with self._call(f"XCom of {dag_id}.{task_id}"):
            entry = client.XComApi(self._client).get_xcom_entry(dag_id, task_id, run_id, "return_value")
        return getattr(entry.actual_instance, "value", None)

    def close(self) -> None:
        self._client.__exit__(None, None, None)  # type: ignore[no-untyped-call]
