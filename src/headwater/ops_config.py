"""Operating settings of the pipelines file: failure alerts per pipeline (``alerts:``) and the housekeeping
DAGs of the ``maintenance:`` section."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict, Field, field_validator

from headwater.chain import schedule_problem


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Alerts(_Model):
    """Failure alerts of a pipeline's tasks, through a Slack incoming-webhook Connection (provider slack)."""

    slack_conn_id: str
    on_retry: bool = Field(default=False, description="also when a task fails and will be retried")

    @field_validator("slack_conn_id")
    @classmethod
    def _conn(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
            raise ValueError(f"{value!r} is not a Connection id")
        return value


class _Housekeeping(_Model):
    """What every maintenance DAG has: a retention, a cron schedule, and a dry run that changes nothing."""

    retention_days: float = Field(gt=0)
    schedule: str
    dry_run: bool = Field(default=False, description="only report what would be deleted")

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str) -> str:
        problem = schedule_problem(value)
        if problem:
            raise ValueError(problem)
        return value


class LogCleanup(_Housekeeping):
    """A DAG deleting task logs past a retention (``headwater_log_cleanup``); see headwater.log_cleanup."""

    schedule: str = "0 3 * * *"
    folder: str | None = Field(default=None, description="default: Airflow's [logging] base_log_folder")


class MetadataCleanup(_Housekeeping):
    """A DAG running ``airflow db clean`` (``headwater_metadata_cleanup``): metadata rows past a retention
    are moved to archive tables (or dropped, ``archive: false``) in bounded batches."""

    schedule: str = "30 3 * * *"
    batch_size: int = Field(default=10000, ge=1)
    archive: bool = True
    tables: list[str] = Field(default_factory=list, description="default: every table db clean knows")

    @field_validator("tables")
    @classmethod
    def _tables(cls, value: list[str]) -> list[str]:
        for name in value:
            if not re.fullmatch(r"[a-z_]+", name):
                raise ValueError(f"{name!r} is not an Airflow metadata table name")
        return value


class Maintenance(_Model):
    """Housekeeping DAGs generated beside the pipelines."""

    log_cleanup: LogCleanup | None = None
    metadata_cleanup: MetadataCleanup | None = None


MAINTENANCE_DAGS = ("headwater_log_cleanup", "headwater_metadata_cleanup")
