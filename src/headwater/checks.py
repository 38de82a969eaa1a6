"""Declarative data checks run on a staging table inside the load's transaction, before anything is published.

A failing check rolls the load back, so the published table keeps its rows. Its error names the check,
how many rows offend, and up to five of their key values (keys only: never other cell values), or the
row number of the first offender when the table declares no keys.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from headwater.coltypes import ColumnType
from headwater.errors import WarehouseError
from headwater.identifiers import TableName, quote, validate_identifier
from headwater.sql_guard import check_single_select

if TYPE_CHECKING:
    from headwater.warehouse.base import Warehouse

SHOWN_KEYS = 5
KINDS = ("min_rows", "not_null", "unique", "accepted_values", "freshness", "max_row_drop_percent", "sql")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AcceptedValues(_Model):
    column: str
    values: list[str | int | float | bool] = Field(min_length=1)

    @field_validator("column")
    @classmethod
    def _column(cls, value: str) -> str:
        return validate_identifier(value, "column")


class Freshness(_Model):
    """The newest ``column`` value is at most ``max_age_hours`` before the run's logical date (not the wall clock,
    so a rerun of an old date checks the same thing)."""

    column: str
    max_age_hours: float = Field(gt=0)

    @field_validator("column")
    @classmethod
    def _column(cls, value: str) -> str:
        return validate_identifier(value, "column")


class TableCheck(_Model):
    """One check: exactly one of the kinds below (a list item in ``checks:``)."""

    name: str | None = None
    min_rows: int | None = Field(default=None, ge=0)
    not_null: list[str] | None = None
    unique: list[str] | None = None
    accepted_values: AcceptedValues | None = None
    freshness: Freshness | None = None
    max_row_drop_percent: float | None = Field(default=None, gt=0, le=100)
    sql: str | None = Field(default=None, description="a SELECT over {table} returning the offending rows")

    @field_validator("not_null", "unique")
    @classmethod
    def _columns(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("needs at least one column")
        for name in value or []:
            validate_identifier(name, "column")
        return value

    @field_validator("sql")
    @classmethod
    def _sql(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if "{table}" not in value:
            raise ValueError("a sql check reads the rows being loaded as {table}, e.g. SELECT * FROM {table} WHERE ...")
        check_single_select(value.replace("{table}", "t"))
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> TableCheck:
        given = [kind for kind in KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(f"a check is exactly one of {', '.join(KINDS)} (got {', '.join(given) or 'none'})")
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in KINDS if getattr(self, kind) is not None)

    @property
    def label(self) -> str:
        """How errors name the check: its name, else its kind and what it is about."""
        if self.name:
            return self.name
        if self.not_null or self.unique:
            return f"{self.kind}({', '.join(self.not_null or self.unique or [])})"
        if self.accepted_values:
            return f"accepted_values({self.accepted_values.column})"
        if self.freshness:
            return f"freshness({self.freshness.column})"
        if self.min_rows is not None:
            return f"min_rows({self.min_rows})"
        if self.max_row_drop_percent is not None:
            return f"max_row_drop_percent({self.max_row_drop_percent:g})"
        return "sql"


def run_checks(
    wh: Warehouse,
    conn: Any,
    target: TableName,
    staging: TableName,
    columns: Sequence[str],
    checks: Sequence[TableCheck],
    keys: Sequence[str],
    where: str,
    logical_date: datetime | None = None,
    published_rows: int | None = None,
) -> None:
    """Run every check on ``staging``; raise WarehouseError for the first one that fails."""
    for check in checks:
        _Check(wh, conn, target, staging, list(columns), list(keys), f"{where} -> {target}: check {check.label}").run(
            check, logical_date, published_rows
        )


class _Check:
    def __init__(
        self,
        wh: Warehouse,
        conn: Any,
        target: TableName,
        staging: TableName,
        columns: list[str],
        keys: list[str],
        label: str,
    ) -> None:
        self.wh, self.conn, self.target, self.staging = wh, conn, target, staging
        self.columns, self.keys, self.label = columns, keys, label

    def run(self, check: TableCheck, logical_date: datetime | None, published_rows: int | None) -> None:
        t = self.staging.sql
        if check.min_rows is not None:
            count = self._count(f"SELECT count(*) FROM {t}")
            if count < check.min_rows:
                self._fail(f"{count} row(s), fewer than the {check.min_rows} required")
        elif check.not_null:
            condition = " OR ".join(f"{self._column(c)} IS NULL" for c in check.not_null)
            self._offenders(condition, "empty")
        elif check.unique:
            group = ", ".join(self._column(c) for c in check.unique)
            repeated = f"SELECT {group} FROM {t} GROUP BY {group} HAVING count(*) > 1"
            count = self._count(f"SELECT count(*) FROM ({repeated}) AS d")
            if count:
                repeats = self.wh._run(self.conn, f"{repeated} ORDER BY {group} LIMIT {SHOWN_KEYS}")
                values = "; ".join(_pairs(check.unique, row) for row in repeats)
                self._fail(f"{count} value(s) occur in more than one row: {values}")
        elif check.accepted_values:
            spec = check.accepted_values
            column = self._column(spec.column)
            marks = ", ".join(["%s"] * len(spec.values))
            text = self.wh.type_sql(ColumnType("text"))
            condition = f"{column} IS NOT NULL AND CAST({column} AS {text}) NOT IN ({marks})"
            self._offenders(condition, "not an accepted value", [_as_text(v) for v in spec.values])
        elif check.freshness:
            self._freshness(check.freshness, logical_date)
        elif check.max_row_drop_percent is not None:
            count = self._count(f"SELECT count(*) FROM {t}")
            if published_rows:
                drop = 100.0 * (published_rows - count) / published_rows
                if drop > check.max_row_drop_percent:
                    self._fail(
                        f"{count} row(s) would replace {published_rows}, a drop of {drop:.1f}% "
                        f"(at most {check.max_row_drop_percent:g}% allowed)"
                    )
        elif check.sql is not None:
            query = check.sql.replace("{table}", t)
            count = self._count(f"SELECT count(*) FROM ({query}) AS c")
            if count:
                names = self.keys
                shown = ""
                if names and set(names) <= set(self.wh._query_columns(self.conn, query)):
                    keyed = self.wh._run(
                        self.conn, f"SELECT {', '.join(quote(k) for k in names)} FROM ({query}) AS c LIMIT {SHOWN_KEYS}"
                    )
                    shown = ": " + "; ".join(_pairs(names, row) for row in keyed)
                self._fail(f"{count} offending row(s){shown}")

    def _column(self, name: str) -> str:
        if name not in self.columns:
            raise WarehouseError(f"{self.label}: no column {name!r} in the table (columns: {', '.join(self.columns)})")
        return quote(name)

    def _count(self, sql: str, params: Sequence[Any] = ()) -> int:
        try:
            return int(self.wh._run(self.conn, sql, params)[0][0])
        except self.wh._db_errors as exc:
            from headwater.warehouse.shape import safe_db_message

            raise WarehouseError(f"{self.label}: the check's query failed: {safe_db_message(exc)}") from None

    def _offenders(self, condition: str, what: str, params: Sequence[Any] = ()) -> None:
        count = self._count(f"SELECT count(*) FROM {self.staging.sql} WHERE {condition}", params)
        if not count:
            return
        if self.keys:
            names = ", ".join(quote(k) for k in self.keys)
            rows = self.wh._run(
                self.conn,
                f"SELECT {names} FROM {self.staging.sql} WHERE {condition} ORDER BY {names} LIMIT {SHOWN_KEYS}",
                params,
            )
            self._fail(f"{count} row(s) {what}: " + "; ".join(_pairs(self.keys, row) for row in rows))
        self._fail(f"{count} row(s) {what} (declare the table's keys to have them named)")

    def _freshness(self, spec: Freshness, logical_date: datetime | None) -> None:
        column = self._column(spec.column)
        newest = self.wh._run(self.conn, f"SELECT max({column}) FROM {self.staging.sql}")[0][0]
        if logical_date is None:
            raise WarehouseError(f"{self.label}: freshness needs the run's logical date")
        if newest is None:
            self._fail(f"{spec.column} is empty in every row")
        if not isinstance(newest, datetime):
            try:
                newest = datetime.fromisoformat(str(newest))
            except ValueError:
                raise WarehouseError(f"{self.label}: {spec.column} is not a date or timestamp column") from None
        when = logical_date
        if (newest.tzinfo is None) != (when.tzinfo is None):
            when = when.replace(tzinfo=None) if newest.tzinfo is None else when.replace(tzinfo=newest.tzinfo)
        limit = when - timedelta(hours=spec.max_age_hours)
        if newest < limit:
            age = (when - newest).total_seconds() / 3600
            self._fail(
                f"the newest {spec.column} is {newest.isoformat(sep=' ')}, {age:.1f} hours before the logical date "
                f"(at most {spec.max_age_hours:g} allowed)"
            )

    def _fail(self, problem: str) -> None:
        raise WarehouseError(f"{self.label} failed: {problem}; nothing was published")


def _pairs(names: Sequence[str], row: Sequence[Any]) -> str:
    return ", ".join(f"{n}={v!r}" if isinstance(v, str) else f"{n}={v}" for n, v in zip(names, row, strict=False))


def _as_text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
