"""The transform parts of the pipelines file: a dbt project to build after the loads (``dbt:``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from headwater.identifiers import TableName, validate_identifier


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DbtConfig(_Model):
    """A dbt project built after this pipeline's loads: one task per model, seed and snapshot, then its tests."""

    project: str = Field(description="folder holding dbt_project.yml, relative to the pipelines file")
    select: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    schema_: str = Field(default="analytics", alias="schema", description="the profile's target schema")
    vars: dict[str, Any] = Field(default_factory=dict)
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
