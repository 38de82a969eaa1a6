"""Failure alerts: the Slack provider's webhook notifier with a message naming the DAG, task, logical date,
try and log URL, and nothing else: no exception text (it may quote a cell), no Connection, no secret."""

from __future__ import annotations

from typing import Any

from headwater.ops_config import Alerts

MESSAGE = (
    ":red_circle: headwater: task `{{ ti.task_id }}` of `{{ dag.dag_id }}` failed"
    "{% if ti.try_number < ti.max_tries + 1 %} (it will be retried){% endif %}\n"
    "logical date: {{ logical_date or dag_run.run_after }}; run: {{ run_id }}; try {{ ti.try_number }}\n"
    "log: {{ ti.log_url }}"
)


def alert_callbacks(alerts: Alerts | None) -> dict[str, Any]:
    """``default_args`` entries sending the alert on failure (and on retry when asked)."""
    if alerts is None:
        return {}
    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier

    notifier = SlackWebhookNotifier(slack_webhook_conn_id=alerts.slack_conn_id, text=MESSAGE)
    callbacks: dict[str, Any] = {"on_failure_callback": [notifier]}
    if alerts.on_retry:
        callbacks["on_retry_callback"] = [notifier]
    return callbacks
