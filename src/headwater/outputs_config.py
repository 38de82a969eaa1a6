"""What a pipeline writes out: warehouse queries exported to the lake (``exports:``) or written back into
a Google Sheet tab (``sheet_exports:``)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from headwater.identifiers import TableName, validate_identifier
from headwater.sql_guard import check_single_select

_SHEET_URL = re.compile(r"/spreadsheets/d/([A-Za-z0-9_-]+)")
_SHEET_KEY = re.compile(r"^[A-Za-z0-9_-]{10,}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Named(_Model):
    """An output with a name that is an identifier (it becomes part of task ids and lake paths)."""

    name: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_identifier(value, "output name")


class _QueryOutput(_Named):
    """A named warehouse query whose result goes somewhere: the query is one SELECT."""

    query: str

    @field_validator("query")
    @classmethod
    def _query(cls, value: str) -> str:
        return check_single_select(value)


class SheetExport(_QueryOutput):
    """A warehouse query written back into a Google Sheet tab (replacing its contents atomically)."""

    spreadsheet: str
    tab: str
    chunk_rows: int = Field(default=5000, ge=1)
    sheets_conn_id: str | None = None

    @field_validator("spreadsheet")
    @classmethod
    def _spreadsheet(cls, value: str) -> str:
        spreadsheet_key(value)
        return value


class LakeExport(_QueryOutput):
    """A warehouse query streamed into the lake as parts plus a manifest, under ``exports.<name>``."""

    format: Literal["csv.gz", "csv.zst", "parquet"] = "csv.gz"
    rows_per_part: int = Field(default=1_000_000, ge=1)

    @property
    def target(self) -> str:
        return f"exports.{self.name}"


class SecretRef(_Model):
    """A key of a Kubernetes Secret: the pod gets its value as an environment variable, the spec only its name."""

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=253)
    key: str = Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)


class PodExport(_Named):
    """A heavy ``headwater export`` in a Kubernetes pod of its own (KubernetesPodOperator): the source URL
    comes from a Secret, requests and limits from the pod template, and each run writes under its own
    ``<to>/<logical date>`` prefix."""

    source_secret: SecretRef = Field(description="a Secret key holding the source URL (becomes HEADWATER_SOURCE)")
    query: str | None = None
    table: str | None = None
    to: str = Field(description="s3://bucket/prefix: the run's files go under <to>/<logical date>/")
    format: Literal["csv.gz", "csv.zst", "csv", "parquet"] = "csv.gz"
    image: str = "headwater:latest"
    namespace: str = "airflow"
    pod_template: str = Field(default="../deploy/kubernetes/pod_template.yaml", description="relative to this file")
    env_secrets: dict[str, SecretRef] = Field(default_factory=dict, description="more variables from Secrets")

    @field_validator("query")
    @classmethod
    def _query(cls, value: str | None) -> str | None:
        return None if value is None else check_single_select(value)

    @field_validator("table")
    @classmethod
    def _table(cls, value: str | None) -> str | None:
        if value is not None:
            TableName.parse(value)
        return value

    @field_validator("to")
    @classmethod
    def _to(cls, value: str) -> str:
        if not re.match(r"^s3://[^/]+", value):
            raise ValueError(f"{value!r}: a pod writes to an s3:// lake (its own disk goes away with it)")
        return value.rstrip("/")

    @field_validator("env_secrets")
    @classmethod
    def _env(cls, value: dict[str, SecretRef]) -> dict[str, SecretRef]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name == "HEADWATER_SOURCE":
                raise ValueError(f"{name!r} is not an environment variable name a pod export may set")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> PodExport:
        if (self.query is None) == (self.table is None):
            raise ValueError("give exactly one of 'query' or 'table'")
        return self


def spreadsheet_key(value: str) -> str:
    """The spreadsheet key from a Google Sheets URL or a bare key."""
    match = _SHEET_URL.search(value)
    if match:
        return match.group(1)
    if _SHEET_KEY.match(value):
        return value
    raise ValueError(f"{value!r} is neither a Google Sheets URL nor a spreadsheet key")
