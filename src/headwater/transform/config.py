"""The transform parts of the pipelines file: a dbt project built after the loads (``dbt:``) and summary
tables built from SELECTs with checks (``summaries:``)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from headwater.checks import TableCheck
from headwater.identifiers import TableName, validate_identifier
from headwater.sql_guard import check_single_select


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DbtConfig(_Model):
    """A dbt project built after this pipeline's loads: one task per model, seed and snapshot, then its tests."""

    project: str = Field(description="folder holding dbt_project.yml, relative to the pipelines file")
    select: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    schema_: str = Field(default="analytics", alias="schema", description="the profile's target schema")
    vars: dict[str, Any] = Field(default_factory=dict)
    mode: Literal["tasks", "build"] = Field(
        default="tasks",
        description="tasks: one Airflow task per node and its tests; build: one `dbt build`, an Asset event per model",
    )
    source_freshness: bool = Field(
        default=False, description="run `dbt source freshness` first; a source past its error_after stops the build"
    )
    after: list[str] | None = Field(
        default=None, description="tables of this pipeline whose loads come first (default: all of them)"
    )

    @field_validator("schema_")
    @classmethod
    def _schema(cls, value: str) -> str:
        return validate_identifier(value, "schema")

    @field_validator("after")
    @classmethod
    def _after(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            TableName.parse(name)
        return value


class InputCheck(_Model):
    """Before a summary is built: a SELECT that must return no rows, or a table that must hold ``min_rows``."""

    name: str | None = None
    sql: str | None = None
    table: str | None = None
    min_rows: int | None = Field(default=None, ge=0)

    @field_validator("sql")
    @classmethod
    def _sql(cls, value: str | None) -> str | None:
        return None if value is None else check_single_select(value)

    @field_validator("table")
    @classmethod
    def _table(cls, value: str | None) -> str | None:
        if value is not None:
            TableName.parse(value)
        return value

    @model_validator(mode="after")
    def _shape(self) -> InputCheck:
        if (self.sql is None) == (self.table is None):
            raise ValueError("an input check is either 'sql' (a SELECT returning the offending rows) or 'table'")
        if self.table is not None and self.min_rows is None:
            raise ValueError("an input check on a table needs 'min_rows'")
        if self.sql is not None and self.min_rows is not None:
            raise ValueError("'min_rows' goes with 'table', not with 'sql'")
        return self

    @property
    def label(self) -> str:
        return self.name or (f"min_rows({self.table}, {self.min_rows})" if self.table else "sql")


class Summary(_Model):
    """A summary table built from a SELECT (the course's Build_Summary): input checks, then the SELECT into a
    staging table, output checks on it, and a swap that keeps views on the table; then grants."""

    table: str
    select: str
    description: str = ""
    input_checks: list[InputCheck] = Field(default_factory=list)
    keys: list[str] = Field(default_factory=list)
    checks: list[TableCheck] = Field(default_factory=list, description="output checks, on the new rows")
    grants: list[str] = Field(default_factory=list, description="roles or users given SELECT on the table")

    @field_validator("table")
    @classmethod
    def _table(cls, value: str) -> str:
        TableName.parse(value)
        return value

    @field_validator("select")
    @classmethod
    def _select(cls, value: str) -> str:
        return check_single_select(value)

    @field_validator("keys", "grants")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            validate_identifier(name, "name")
        return value

    @property
    def target(self) -> TableName:
        return TableName.parse(self.table)
