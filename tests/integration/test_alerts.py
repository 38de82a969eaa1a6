"""Failure alerts through the Slack provider's webhook notifier, received by a loopback HTTP server: the
text names DAG, task, logical date, try and log URL, and carries no secret and no cell value."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.fakes.webhook import webhook_receiver
from tests.integration.test_end_to_end import run_dag

pytestmark = pytest.mark.integration

TOKEN = "T0000/B0000/WEBHOOKTOKEN9f3a"
CELL = "NOTANUMBER7731"


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    with webhook_receiver() as found:
        yield found


def test_a_failed_task_sends_one_alert_without_secrets_or_cells(
    airflow_db: Path, hw_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: Any
) -> None:
    host, received = receiver
    monkeypatch.setenv(
        "AIRFLOW_CONN_SLACK_ALERTS",
        json.dumps({"conn_type": "slackwebhook", "host": host, "schema": "http", "password": TOKEN}),
    )
    (tmp_path / "counts.csv").write_text(f"id,count\n1,3\n2,{CELL}\n", encoding="utf-8")
    config = tmp_path / "pipelines.yaml"
    config.write_text(
        "pipelines:\n  counted:\n    retries: 0\n    alerts: {slack_conn_id: slack_alerts}\n"
        "    sheets: [{workbook: counts.csv, table: raw.counts, columns: {count: integer}}]\n",
        encoding="utf-8",
    )
    run = run_dag("counted", datetime(2026, 1, 5, tzinfo=UTC), monkeypatch, config)
    assert run.state == "failed"
    assert [r["path"] for r in received] == [f"/{TOKEN}"]  # one alert: the failed task, not the ones skipped after
    text = received[0]["body"]["text"]
    lines = text.splitlines()
    assert lines[0] == ":red_circle: headwater: task `extract_counts` of `counted` failed"
    assert lines[1] == f"logical date: 2026-01-05 00:00:00+00:00; run: {run.run_id}; try 1"
    run_path = quote(run.run_id, safe="")
    assert lines[2] == f"log: http://localhost:8080/dags/counted/runs/{run_path}/tasks/extract_counts?try_number=1"
    for secret in (TOKEN, "WEBHOOKTOKEN9f3a", CELL):
        assert secret not in json.dumps(received[0]["body"])
