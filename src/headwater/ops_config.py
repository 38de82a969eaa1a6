"""Operating settings of the pipelines file: failure alerts per pipeline (``alerts:``) and the housekeeping
DAGs of the ``maintenance:`` section."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from headwater.chain import schedule_problem


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _conn_id(value: str | None) -> str | None:
    if value is not None and not re.fullmatch(r"[A-Za-z0-9_.-]+", value):
        raise ValueError(f"{value!r} is not a Connection id")
    return value


def _schedule(value: str) -> str:
    problem = schedule_problem(value)
    if problem:
        raise ValueError(problem)
    return value


class Alerts(_Model):
    """Failure alerts of a pipeline's tasks, and a late-run alert, through a Slack incoming-webhook
    Connection (provider slack)."""

    slack_conn_id: str
    on_retry: bool = Field(default=False, description="also when a task fails and will be retried")
    deadline_minutes: float | None = Field(
        default=None,
        gt=0,
        description="alert when a run has not finished this long after it was queued (an Airflow Deadline "
        "Alert: Airflow 3's replacement of SLA misses)",
    )

    _conn = field_validator("slack_conn_id")(_conn_id)


class _Housekeeping(_Model):
    """What every maintenance DAG has: a retention, a cron schedule, and a dry run that changes nothing."""

    retention_days: float = Field(gt=0)
    schedule: str
    dry_run: bool = Field(default=False, description="only report what would be deleted")

    _schedule = field_validator("schedule")(_schedule)


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


class MetadataBackup(_Model):
    """A DAG dumping the PostgreSQL metadata database into the lake (``headwater_metadata_backup``): one
    pg_dump with Connections and Variables beside it, their secrets Fernet-encrypted or left out; the
    newest ``keep`` backups stay. ``headwater restore`` brings one back."""

    schedule: str = "0 2 * * *"
    conn_id: str | None = Field(default=None, description="default: Airflow's own [database] sql_alchemy_conn")
    keep: int = Field(default=7, ge=1, le=1000)
    secrets: Literal["encrypt", "omit"] = "encrypt"
    prefix: str = Field(default="_backups/airflow_metadata", description="folder under the lake URL")
    compress_level: int = Field(default=6, ge=0, le=9)

    _schedule = field_validator("schedule")(_schedule)
    _conn = field_validator("conn_id")(_conn_id)

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9_.=-]+(/[A-Za-z0-9_.=-]+)*", value) or ".." in value.split("/"):
            raise ValueError(f"{value!r} is not a relative folder (letters, digits, _ . = -, separated by /)")
        return value


class Maintenance(_Model):
    """Housekeeping DAGs generated beside the pipelines."""

    log_cleanup: LogCleanup | None = None
    metadata_cleanup: MetadataCleanup | None = None
    metadata_backup: MetadataBackup | None = None


MAINTENANCE_DAGS = ("headwater_log_cleanup", "headwater_metadata_cleanup", "headwater_metadata_backup")
