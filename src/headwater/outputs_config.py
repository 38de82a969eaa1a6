"""What a pipeline writes out: warehouse queries exported to the lake (``exports:``) or written back into
a Google Sheet tab (``sheet_exports:``)."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from headwater.identifiers import validate_identifier
from headwater.sql_guard import check_single_select

_SHEET_URL = re.compile(r"/spreadsheets/d/([A-Za-z0-9_-]+)")
_SHEET_KEY = re.compile(r"^[A-Za-z0-9_-]{10,}$")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _QueryOutput(_Model):
    """A named warehouse query whose result goes somewhere: the name is an identifier, the query one SELECT."""

    name: str
    query: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return validate_identifier(value, "output name")

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


def spreadsheet_key(value: str) -> str:
    """The spreadsheet key from a Google Sheets URL or a bare key."""
    match = _SHEET_URL.search(value)
    if match:
        return match.group(1)
    if _SHEET_KEY.match(value):
        return value
    raise ValueError(f"{value!r} is neither a Google Sheets URL nor a spreadsheet key")
