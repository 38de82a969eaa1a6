"""Warehouse shape decisions: safe error messages, which column types fit, staging column types."""

import re

import pytest

from headwater.coltypes import ColumnType
from headwater.errors import WarehouseError
from headwater.identifiers import TableName
from headwater.table import Column
from headwater.warehouse.shape import BATCH_COLUMN, fits, plan_stage_types, safe_db_message

pytestmark = pytest.mark.unit

TARGET = TableName("raw", "orders")


def t(spec: str) -> ColumnType:
    return ColumnType.parse(spec)


OPEN_NUMERIC = ColumnType("numeric")  # scale taken from the data


# --- safe_db_message -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "safe"),
    [
        ('relation "raw.t" does not exist', 'relation "raw.t" does not exist'),
        ("  padded first line  \n", "padded first line"),
        # Postgres COPY: the bad input and the CSV line are quoted at the end of the line
        (
            'invalid input syntax for type integer: "abc"\nCONTEXT:  COPY t, line 2, column a: "abc"',
            "invalid input syntax for type integer: <value> | CONTEXT:  COPY t, line 2, column a: <value>",
        ),
        (
            'extra data after last expected column\nCONTEXT:  COPY t, line 3: "1,secret,3"',
            "extra data after last expected column | CONTEXT:  COPY t, line 3: <value>",
        ),
        ('k:   "v"', "k:   <value>"),
        ('col:"v"', "col:<value>"),
        ('doubled: "a""b"', "doubled: <value>"),
        ('truncated: "abc', "truncated: <value>"),
        ('not at the end: "x" here', 'not at the end: "x" here'),
        # DuckDB: the value follows "string"
        (
            'Conversion Error: CSV Error on Line: 3\nOriginal Line: secret,stuff\nError when converting column "a". '
            "Could not convert string \"secret,stuff\" to 'INTEGER'\n\nColumn a is being converted as type INTEGER",
            'Conversion Error: CSV Error on Line: 3 | Error when converting column "a". '
            "Could not convert string <value> to 'INTEGER'",
        ),
        ('string "a" and string "b""c" end', "string <value> and string <value> end"),
        # which later lines survive: CONTEXT, DuckDB's column line, and a key violation's DETAIL
        (
            'duplicate key value violates unique constraint "pk"\nDETAIL:  Key (id)=(5) already exists.',
            'duplicate key value violates unique constraint "pk" | DETAIL:  Key (id)=(<value>) already exists.',
        ),
        ("null value in column\nDETAIL:  Failing row contains (1, secret).", "null value in column"),
        ("first\nHINT:  try this\nsecret second line", "first"),
        ("first\n\n   \nCONTEXT:  one\nCONTEXT:  two", "first | CONTEXT:  one | CONTEXT:  two"),
        ("first\n  HINT:  y\n  CONTEXT:  z  ", "first | CONTEXT:  z"),
        ("CONTEXT:  as the first line\nsecret", "CONTEXT:  as the first line"),
        ("first\ncontext:  lower case is not the marker", "first"),
        ("first\nDETAIL:  Key(id) without the space", "first"),
    ],
)
def test_safe_db_message_keeps_first_line_and_allowed_details_redacted(message: str, safe: str) -> None:
    assert safe_db_message(RuntimeError(message)) == safe


@pytest.mark.parametrize(("exc", "name"), [(RuntimeError(""), "RuntimeError"), (ValueError(" \n \n"), "ValueError")])
def test_safe_db_message_without_text_is_the_exception_type(exc: BaseException, name: str) -> None:
    assert safe_db_message(exc) == name


# --- fits ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target", "expected"),
    [
        (t("integer"), None, True),  # the table's type is unknown: let the database decide
        (t("timestamp"), None, True),
        (t("integer"), t("text"), True),
        (t("numeric(12,2)"), t("text"), True),
        (t("date"), t("text"), True),
        (t("integer"), t("integer"), True),
        (t("boolean"), t("boolean"), True),
        (t("numeric(12,2)"), t("numeric(12,2)"), True),
        (t("integer"), t("numeric(12,2)"), True),
        (t("date"), t("timestamp"), True),
        (t("numeric(10,2)"), t("numeric(12,2)"), True),  # same scale
        (t("numeric(12,2)"), t("numeric(12,3)"), True),  # wider scale
        (t("numeric(12,3)"), t("numeric(12,2)"), False),  # would lose a decimal place
        (OPEN_NUMERIC, t("numeric(12,0)"), True),  # open scale: the load checks the values
        (OPEN_NUMERIC, t("numeric(12,2)"), True),
        (t("numeric(12,1)"), OPEN_NUMERIC, False),
        (t("numeric(12,0)"), OPEN_NUMERIC, True),
        (t("text"), t("integer"), False),
        (t("numeric(12,2)"), t("integer"), False),
        (t("integer"), t("double"), False),
        (t("double"), t("numeric(12,2)"), False),
        (t("boolean"), t("integer"), False),
        (t("timestamp"), t("date"), False),
        (t("timestamp"), t("timestamptz"), False),
        (t("date"), t("timestamptz"), False),
        (t("integer"), t("timestamp"), False),
        (t("date"), t("numeric(12,2)"), False),
    ],
)
def test_fits(source: ColumnType, target: ColumnType | None, expected: bool) -> None:
    assert fits(source, target) is expected


# --- plan_stage_types ------------------------------------------------------------------------------

COLUMNS = [Column("id", t("integer")), Column("amount", t("numeric(12,2)")), Column("day", t("date"))]
SOURCE_TYPES = {"id": t("integer"), "amount": t("numeric(12,2)"), "day": t("date")}


@pytest.mark.parametrize("method", ["replace", "append", "upsert"])
def test_new_table_stages_the_source_types(method: str) -> None:
    assert plan_stage_types(TARGET, method, COLUMNS, None) == SOURCE_TYPES


def test_replace_ignores_the_existing_table() -> None:
    existing: dict[str, ColumnType | None] = {"other": t("text"), "id": t("boolean")}
    assert plan_stage_types(TARGET, "replace", COLUMNS, existing) == SOURCE_TYPES


def test_existing_types_win_where_known() -> None:
    existing = {"id": t("numeric(18,0)"), "amount": t("text"), "day": None}
    planned = plan_stage_types(TARGET, "upsert", COLUMNS, existing)
    assert list(planned.items()) == [("id", t("numeric(18,0)")), ("amount", t("text")), ("day", t("date"))]


def test_append_needs_and_skips_the_batch_column() -> None:
    existing = {"id": t("integer"), "amount": t("numeric(12,3)"), "day": t("timestamp"), BATCH_COLUMN: t("text")}
    assert BATCH_COLUMN == "_hw_batch"
    assert plan_stage_types(TARGET, "append", COLUMNS, existing) == {
        "id": t("integer"),
        "amount": t("numeric(12,3)"),
        "day": t("timestamp"),
    }


@pytest.mark.parametrize(
    ("method", "existing", "problem"),
    [
        (
            "append",
            {"id": t("integer"), "amount": t("numeric(12,2)"), "day": t("date")},
            "the source has columns the table lacks: _hw_batch",
        ),
        (
            "upsert",
            {"id": t("integer"), "amount": t("numeric(12,2)"), "day": t("date"), BATCH_COLUMN: t("text")},
            "the table has columns the source lacks: _hw_batch",
        ),
        (
            "upsert",
            {"id": t("integer")},
            "the source has columns the table lacks: amount, day",
        ),
        (
            "upsert",
            {"id": t("integer"), "amount": None, "day": None, "note": t("text"), "extra": None},
            "the table has columns the source lacks: note, extra",
        ),
        (
            "append",
            {"id": t("integer"), "note": t("text")},
            "the source has columns the table lacks: amount, day, _hw_batch; "
            "the table has columns the source lacks: note",
        ),
    ],
)
def test_column_sets_must_agree(method: str, existing: dict[str, ColumnType | None], problem: str) -> None:
    message = f"raw.orders: cannot {method}: {problem} (load with replace to rebuild it)"
    with pytest.raises(WarehouseError, match=f"^{re.escape(message)}$"):
        plan_stage_types(TARGET, method, COLUMNS, existing)


@pytest.mark.parametrize(
    ("method", "existing", "problem"),
    [
        (
            "upsert",
            {"id": t("integer"), "amount": t("numeric(12,1)"), "day": t("date")},
            "column 'amount' is numeric(12,2) in the source but numeric(12,1) in the table",
        ),
        (
            "append",
            {"id": t("boolean"), "amount": t("text"), "day": t("date"), BATCH_COLUMN: t("text")},
            "column 'id' is integer in the source but boolean in the table",
        ),
        (
            "upsert",
            {"id": t("integer"), "amount": t("text"), "day": t("integer")},
            "column 'day' is date in the source but integer in the table",
        ),
    ],
)
def test_types_that_do_not_fit_are_refused(method: str, existing: dict[str, ColumnType | None], problem: str) -> None:
    message = f"raw.orders: cannot {method}: {problem}; declare its type in the config or load with replace"
    with pytest.raises(WarehouseError, match=f"^{re.escape(message)}$"):
        plan_stage_types(TARGET, method, COLUMNS, existing)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "Conversion Error: Could not convert string 'topsecret' to INT32",
            "Could not convert string <value> to INT32",
        ),
        ("Could not convert string 'it''s' to DATE", "Could not convert string <value> to DATE"),
        (
            'update on "t" violates foreign key constraint "fk"\nDETAIL:  Key (cid)=(42) is not present',
            'violates foreign key constraint "fk" | DETAIL:  Key (cid)=(<value>) is not present',
        ),
    ],
)
def test_safe_db_message_redacts_single_quoted_values_and_key_values(message: str, expected: str) -> None:
    assert safe_db_message(Exception(message)).endswith(expected)
