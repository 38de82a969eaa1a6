"""Housekeeping operators: ``LogCleanupOperator`` deletes task logs past a retention (headwater.log_cleanup)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, Context

ACTIVE = ["running", "queued", "scheduled", "up_for_retry", "up_for_reschedule", "deferred", "restarting"]


class LogCleanupOperator(BaseOperator):
    """Delete task logs under ``folder`` (default: ``[logging] base_log_folder``) not modified for
    ``retention_days``, never a link and never the logs of a task instance that is still active (asked of
    Airflow for each old file's dag, run and task); ``dry_run`` only lists them. Returns the counts."""

    template_fields: Sequence[str] = ("folder",)
    ui_color = "#eaeded"

    def __init__(
        self, *, retention_days: float, dry_run: bool = False, folder: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.retention_days = retention_days
        self.list_only = dry_run  # not self.dry_run: BaseOperator has a dry_run() method
        self.folder = folder

    def execute(self, context: Context) -> dict[str, Any]:
        from airflow.configuration import conf
        from airflow.sdk.exceptions import AirflowFailException

        from headwater.errors import ConfigError
        from headwater.log_cleanup import clean_logs

        folder = Path(self.folder or conf.get("logging", "base_log_folder"))
        ti = context["ti"]
        asked: dict[tuple[str, str, str], bool] = {}

        def active(path: Path) -> bool:
            parts = dict(p.split("=", 1) for p in path.parts if "=" in p)
            key = (parts.get("dag_id", ""), parts.get("run_id", ""), parts.get("task_id", ""))
            if not all(key):
                return False  # not a task log (dag processor, scheduler)
            if key not in asked:
                count = ti.get_ti_count(dag_id=key[0], run_ids=[key[1]], task_ids=[key[2]], states=ACTIVE)
                asked[key] = count > 0
            return asked[key]

        try:
            report = clean_logs(folder, self.retention_days, dry_run=self.list_only, running=active)
        except ConfigError as exc:
            raise AirflowFailException(str(exc)) from exc
        for path in report.files[:50] if self.list_only else []:
            self.log.info("would delete %s", path)
        self.log.info("%s: %s", folder, report.summary())
        return {
            "dry_run": self.list_only,
            "files": len(report.files),
            "bytes": report.bytes,
            "folders": len(report.folders),
            "kept_running": len(report.kept_running),
            "skipped_links": len(report.skipped_links),
        }
