"""The pipelines file: YAML validated into typed models; errors name the file, the entry and the key."""

from __future__ import annotations

import os
import re
from collections.abc import Hashable
from datetime import date, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from headwater.chain import Wait, chain_problems, schedule_problem
from headwater.checks import TableCheck
from headwater.coltypes import ColumnType
from headwater.errors import ConfigError
from headwater.identifiers import IdentifierError, TableName, validate_identifier
from headwater.ops_config import MAINTENANCE_DAGS, Alerts, Maintenance
from headwater.outputs_config import LakeExport, PodExport, SheetExport, spreadsheet_key
from headwater.sql_guard import check_single_select
from headwater.table import TableRules
from headwater.transform.config import DbtConfig, Summary

CONFIG_ENV = "HEADWATER_CONFIG"


class LoadMethod(StrEnum):
    REPLACE = "replace"
    APPEND = "append"
    UPSERT = "upsert"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cleaning(_Model):
    """Value cleaning as the course plugin did, but per column: ``["*"]`` means every column."""

    currency: list[str] = Field(default_factory=list, description="strip $ ₩ € £ ¥ and thousands separators")
    percent: list[str] = Field(default_factory=list, description="'12.5%' -> 0.125")


class _LoadTarget(_Model):
    """What every source entry shares: the warehouse table it loads, how, and on which keys."""

    table: str
    load: LoadMethod = LoadMethod.REPLACE
    keys: list[str] = Field(default_factory=list)
    checks: list[TableCheck] = Field(default_factory=list, description="run on the staged rows before publishing")

    @field_validator("table")
    @classmethod
    def _table(cls, value: str) -> str:
        try:
            TableName.parse(value)
        except IdentifierError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("keys")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        for name in value:
            validate_identifier(name, "key column")
        return value

    @model_validator(mode="after")
    def _keys_for_upsert(self) -> _LoadTarget:
        if self.load == LoadMethod.UPSERT and not self.keys:
            raise ValueError("load 'upsert' needs 'keys'")
        if self.load != LoadMethod.REPLACE and any(c.max_row_drop_percent is not None for c in self.checks):
            raise ValueError(
                "check max_row_drop_percent compares a replacement with the published table: load 'replace' only"
            )
        return self

    @property
    def target(self) -> TableName:
        return TableName.parse(self.table)

    @property
    def task_stem(self) -> str:
        """The table as a task-id fragment: ``schema__table``."""
        return f"{self.target.schema}__{self.target.table}"


class SheetSource(_LoadTarget):
    """One tab (Google Sheet or local workbook) loaded into one warehouse table."""

    spreadsheet: str | None = None
    workbook: str | None = None
    tab: str | None = None
    columns: dict[str, str] = Field(default_factory=dict)
    clean: Cleaning = Field(default_factory=Cleaning)
    allow_empty: bool = False
    render: Literal["formatted", "unformatted"] = "formatted"
    sheets_conn_id: str | None = None

    @field_validator("columns")
    @classmethod
    def _columns(cls, value: dict[str, str]) -> dict[str, str]:
        for name, spec in value.items():
            validate_identifier(name, "column")
            ColumnType.parse(spec)
        return value

    @model_validator(mode="after")
    def _shape(self) -> SheetSource:
        if (self.spreadsheet is None) == (self.workbook is None):
            raise ValueError("give exactly one of 'spreadsheet' (URL or key) or 'workbook' (a .xlsx or .csv path)")
        if self.spreadsheet is not None:
            spreadsheet_key(self.spreadsheet)
            if not self.tab:
                raise ValueError("'tab' is required for a Google Sheet")
        if self.workbook is not None:
            suffix = Path(self.workbook).suffix.lower()
            if suffix not in (".xlsx", ".csv"):
                raise ValueError(f"workbook must be a .xlsx or .csv file, not {suffix or 'no extension'!r}")
            if suffix == ".xlsx" and not self.tab:
                raise ValueError("'tab' is required for a .xlsx workbook")
        return self

    def rules(self) -> TableRules:
        return TableRules(
            types={name: ColumnType.parse(spec) for name, spec in self.columns.items()},
            currency=tuple(self.clean.currency),
            percent=tuple(self.clean.percent),
            keys=tuple(self.keys),
            allow_empty=self.allow_empty,
        )


class Incremental(_Model):
    """Export only new or changed rows, by a column that grows when a row is inserted or updated.

    ``watermark``: rows at or past the high-water mark of the last successful publish (kept in the
    lake, advanced only after the load and its check succeed). ``interval``: rows inside the run's
    data interval, so any logical date can be backfilled or rerun on its own.
    """

    column: str
    mode: Literal["watermark", "interval"] = "watermark"
    initial: str | None = None  # lower bound for the very first watermark run; None = everything
    # interval mode: the window ending at the logical date, for schedules whose runs carry no data
    # interval (Airflow 3's default cron timetable); a schedule with data intervals uses those.
    window_hours: float | None = Field(default=None, gt=0)

    @field_validator("column")
    @classmethod
    def _column(cls, value: str) -> str:
        return validate_identifier(value, "incremental column")


class TableSource(_LoadTarget):
    """A query (or a whole table) from a database, exported to the lake and loaded into one warehouse table."""

    conn_id: str
    query: str | None = None
    source_table: str | None = None
    incremental: Incremental | None = None
    format: Literal["csv.gz", "csv.zst", "parquet"] = "csv.gz"
    rows_per_part: int = Field(default=1_000_000, ge=1)

    @field_validator("query")
    @classmethod
    def _query(cls, value: str | None) -> str | None:
        return None if value is None else check_single_select(value)

    @model_validator(mode="after")
    def _shape(self) -> TableSource:
        if (self.query is None) == (self.source_table is None):
            raise ValueError("give exactly one of 'query' or 'source_table'")
        if self.source_table is not None:
            try:
                TableName.parse(self.source_table)
            except IdentifierError as exc:
                raise ValueError(str(exc)) from None
        if self.incremental is not None and self.load == LoadMethod.REPLACE:
            raise ValueError("an incremental export must load by 'upsert' (or 'append'), not 'replace'")
        return self


class Defaults(_Model):
    """Where things live; every key is optional and falls back to the embedded defaults."""

    lake_url: str | None = None
    aws_conn_id: str = "aws_default"
    warehouse_conn_id: str = "headwater_warehouse"
    sheets_conn_id: str = "google_sheets_default"
    owner: str = "headwater"

    @field_validator("lake_url")
    @classmethod
    def _lake_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if re.match(r"^s3://[^/]+", value) or value.startswith("file:///") or value.startswith("/"):
            return value
        raise ValueError(f"{value!r} is not s3://bucket/prefix, file:///absolute/path or an absolute path")


class Pipeline(_Model):
    """One DAG: a schedule and the sources it loads."""

    description: str = ""
    schedule: str | None = None
    start_date: date = date(2026, 1, 1)
    catchup: bool = False
    retries: int = Field(default=2, ge=0, le=20)
    retry_delay_minutes: float = Field(default=3, gt=0)
    tags: list[str] = Field(default_factory=list)
    sheets: list[SheetSource] = Field(default_factory=list)
    tables: list[TableSource] = Field(default_factory=list)
    sheet_exports: list[SheetExport] = Field(default_factory=list)
    exports: list[LakeExport] = Field(default_factory=list)
    pod_exports: list[PodExport] = Field(default_factory=list, description="exports in Kubernetes pods")
    dbt: DbtConfig | None = None
    summaries: list[Summary] = Field(default_factory=list)
    triggers: list[str] = Field(default_factory=list, description="pipelines to start after this one's loads")
    after: list[Wait] = Field(default_factory=list, description="pipelines whose run this one waits for first")
    skip_unchanged: bool = Field(
        default=True, description="skip dbt and summaries when no input table changed since they last ran"
    )
    latest_only: bool = Field(default=True, description="exports and sheet writes run for the latest date only")
    alerts: Alerts | None = None

    @field_validator("schedule")
    @classmethod
    def _schedule(cls, value: str | None) -> str | None:
        problem = None if value is None else schedule_problem(value)
        if problem:
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _unique_targets(self) -> Pipeline:
        outputs = self.sheet_exports or self.exports or self.pod_exports
        if not (self.sheets or self.tables or outputs or self.dbt or self.summaries):
            raise ValueError(
                "a pipeline needs at least one entry under 'sheets', 'tables', 'dbt', 'summaries', 'exports' "
                "or 'sheet_exports'"
            )
        for key, names in (
            ("sheet_exports", [e.name for e in self.sheet_exports]),
            ("exports", [e.name for e in self.exports]),
            ("pod_exports", [e.name for e in self.pod_exports]),
        ):
            if len(set(names)) != len(names):
                raise ValueError(f"{key} names must be unique in a pipeline")
        seen: set[str] = set()
        for stem, table in [(s.task_stem, s.table) for s in self.sheets] + [
            (t.task_stem, t.table) for t in self.tables
        ]:
            if stem in seen:
                raise ValueError(f"table {table!r} is loaded twice in this pipeline")
            seen.add(stem)
        built = [s.table for s in self.summaries]
        if len(set(built)) != len(built):
            raise ValueError("a summary table is built twice in this pipeline")
        loaded = {s.table for s in self.sheets} | {t.table for t in self.tables}
        unknown = [name for name in (self.dbt.after or []) if name not in loaded] if self.dbt else []
        if unknown:
            raise ValueError(f"dbt.after names {', '.join(unknown)}, which this pipeline does not load")
        return self


class Config(_Model):
    defaults: Defaults = Field(default_factory=Defaults)
    pipelines: dict[str, Pipeline]
    maintenance: Maintenance = Field(default_factory=Maintenance)

    @field_validator("pipelines")
    @classmethod
    def _names(cls, value: dict[str, Pipeline]) -> dict[str, Pipeline]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", name):
                raise ValueError(f"pipeline name {name!r} must be letters, digits and underscores")
            if name in MAINTENANCE_DAGS:
                raise ValueError(f"pipeline name {name!r} is taken by a maintenance DAG")
        return value

    @model_validator(mode="after")
    def _links(self) -> Config:
        problems = chain_problems(self.pipelines)
        if problems:
            raise ValueError("\n".join(problems))
        return self


class LoadedConfig:
    """A validated config plus the file it came from (relative workbook paths resolve against it)."""

    def __init__(self, config: Config, path: Path) -> None:
        self.config = config
        self.path = path

    def workbook_path(self, source: SheetSource) -> Path:
        assert source.workbook is not None
        return self.relative_path(source.workbook)

    def relative_path(self, value: str) -> Path:
        """A path from the pipelines file: ``~`` and ``$VARS`` expanded, relative to the file's folder."""
        path = Path(os.path.expandvars(value)).expanduser()
        return path if path.is_absolute() else (self.path.parent / path).resolve()

    def pipeline(self, name: str) -> Pipeline:
        try:
            return self.config.pipelines[name]
        except KeyError:
            known = ", ".join(sorted(self.config.pipelines)) or "none"
            raise ConfigError(f"{self.path}: no pipeline named {name!r} (configured: {known})") from None


def default_config_path() -> Path:
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env)
    return Path.cwd() / "config" / "pipelines.yaml"


def load_config(path: str | Path | None = None) -> LoadedConfig:
    """Read and validate the pipelines file; raise ConfigError naming file, entry and key."""
    file = Path(path) if path else default_config_path()
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line = file.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{file}: not UTF-8 text (line {line}, byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot read the pipelines file ({exc.strerror})") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a safe loader subclass
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping with a 'pipelines' key")
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(file, exc)) from None
    return LoadedConfig(config, file.resolve())


def _describe(file: Path, exc: ValidationError) -> str:
    lines = []
    for error in exc.errors():
        loc = ""
        for part in error["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
        message = error["msg"].removeprefix("Value error, ")
        lines.append(f"{file}: {loc or '(top level)'}: {message}")
    return "\n".join(lines)


class _UniqueKeyLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """A safe loader (libyaml's when present: several times faster) that rejects a key given twice in one
    mapping, which plain YAML silently resolves to the last value."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # "<<: *anchor": merged below, may be overridden here
                continue
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                raise yaml.constructor.ConstructorError(
                    None, None, "a mapping key must be a plain value, not a list or mapping", key_node.start_mark
                )
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"key {key!r} appears twice", key_node.start_mark)
            seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep=deep)
        return mapping


def as_datetime(value: date) -> datetime:
    return datetime(value.year, value.month, value.day)
