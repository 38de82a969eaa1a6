"""Failure and late-run alerts: the Slack provider's webhook notifier with a message naming the DAG, task,
logical date, try and log URL, and nothing else: no exception text (it may quote a cell), no run conf, no
Connection, no secret.

A late run is Airflow 3's Deadline Alert (SLA misses are gone): the scheduler notices a run still going
``deadline_minutes`` after it was queued and the triggerer sends the message.
"""

from __future__ import annotations

from typing import Any

from headwater.ops_config import Alerts

MESSAGE = (
    ":red_circle: headwater: task `{{ ti.task_id }}` of `{{ dag.dag_id }}` failed"
    "{% if ti.try_number < ti.max_tries + 1 %} (it will be retried){% endif %}\n"
    "logical date: {{ logical_date or dag_run.run_after }}; run: {{ run_id }}; try {{ ti.try_number }}\n"
    "log: {{ ti.log_url }}"
)


LATE = (
    ":hourglass: headwater: run `{{ dag_run.dag_run_id }}` of `{{ dag_run.dag_id }}` has not finished "
    "%(minutes)s after it was queued (deadline {{ deadline.deadline_time }})\n"
    "logical date: {{ dag_run.logical_date or dag_run.run_after }}; state: {{ dag_run.state }}"
)


def deadline_alert(alerts: Alerts | None) -> Any:
    """The DAG's ``deadline``: a Slack message when a run is still going ``deadline_minutes`` after it was
    queued; None without one."""
    if alerts is None or alerts.deadline_minutes is None:
        return None
    from datetime import timedelta

    from airflow.providers.slack.notifications.slack_webhook import SlackWebhookNotifier
    from airflow.sdk.definitions.callback import AsyncCallback
    from airflow.sdk.definitions.deadline import DeadlineAlert, DeadlineReference

    minutes = f"{alerts.deadline_minutes:g} minute" + ("" if alerts.deadline_minutes == 1 else "s")
    return DeadlineAlert(
        reference=DeadlineReference.DAGRUN_QUEUED_AT,
        interval=timedelta(minutes=alerts.deadline_minutes),
        callback=AsyncCallback(
            SlackWebhookNotifier,
            kwargs={"slack_webhook_conn_id": alerts.slack_conn_id, "text": LATE % {"minutes": minutes}},
        ),
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
