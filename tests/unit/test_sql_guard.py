"""check_single_select: exactly one SELECT-like statement passes (cleaned of a trailing ';' or comment)."""

import re

import pytest

from headwater.errors import HeadwaterError
from headwater.sql_guard import UnsafeQueryError, check_single_select

pytestmark = pytest.mark.unit

NOT_A_SELECT = "query must be a SELECT (or WITH ... SELECT), not "


@pytest.mark.parametrize(
    ("sql", "cleaned"),
    [
        ("SELECT 1", "SELECT 1"),
        ("Select a FROM t", "Select a FROM t"),
        ("  \n select 1 \n ", "select 1"),
        ("select 1;", "select 1"),
        ("select 1;;", "select 1"),
        ("select 1 ;  \n", "select 1"),
        ("SELECT 1 -- trailing comment", "SELECT 1"),
        ("SELECT 1; -- after the semicolon", "SELECT 1"),
        ("select 1 /* block */ ;  ", "select 1"),
        ("SELECT 1\n-- c\n;\n", "SELECT 1"),
        ("-- leading comment\nSELECT 1", "-- leading comment\nSELECT 1"),
        ("/* c */ SELECT 1", "/* c */ SELECT 1"),
        ("SELECT /* inner; */ 1", "SELECT /* inner; */ 1"),
        ("select 'a;b' as s;", "select 'a;b' as s"),
        ("SELECT 'a--b'", "SELECT 'a--b'"),
        ('SELECT "a;b" FROM t', 'SELECT "a;b" FROM t'),
        ("SELECT $$a; drop table t$$", "SELECT $$a; drop table t$$"),
        ("SELECT $tag$ ; delete from t $tag$", "SELECT $tag$ ; delete from t $tag$"),
        ("WITH a AS (SELECT 1) SELECT * FROM a", "WITH a AS (SELECT 1) SELECT * FROM a"),
        ("with a as (select 1) select * from a;", "with a as (select 1) select * from a"),
        ("(select 1) union (select 2)", "(select 1) union (select 2)"),
        ("values (1), (2)", "values (1), (2)"),
        ("table raw.orders", "table raw.orders"),
        ("show search_path", "show search_path"),
        ("explain select 1", "explain select 1"),
    ],
)
def test_one_read_only_statement_is_accepted_and_cleaned(sql: str, cleaned: str) -> None:
    assert check_single_select(sql) == cleaned


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("", "query is empty"),
        ("  \n\t ", "query is empty"),
        (";", "query is empty"),
        (";;", "query is empty"),
        ("-- only a comment", "query is empty"),
        ("/* only */ ;", "query is empty"),
        (
            "select 1; select 2",
            "query holds 2 statements; give exactly one SELECT (no ';' between statements)",
        ),
        (
            "SELECT 1; COMMIT; DROP TABLE raw.orders",
            "query holds 3 statements; give exactly one SELECT (no ';' between statements)",
        ),
        ("drop table x", NOT_A_SELECT + "DROP"),
        ("-- harmless\nDELETE FROM t", NOT_A_SELECT + "DELETE"),
        ("/* c */ insert into t values (1)", NOT_A_SELECT + "INSERT"),
        ("update t set a = 1;", NOT_A_SELECT + "UPDATE"),
        ("create table x as select 1", NOT_A_SELECT + "CREATE"),
        ("call p()", NOT_A_SELECT + "CALL"),
        ("copy t to stdout", NOT_A_SELECT + "COPY"),
        ("grant all on t to u", NOT_A_SELECT + "GRANT"),
        ("foo", NOT_A_SELECT + "FOO"),
        ("1", NOT_A_SELECT + "1"),
    ],
)
def test_anything_else_is_refused_with_the_reason(sql: str, message: str) -> None:
    with pytest.raises(UnsafeQueryError, match=f"^{re.escape(message)}$"):
        check_single_select(sql)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("", "sheet export query is empty"),
        ("select 1; select 2", "sheet export query holds 2 statements; give exactly one SELECT"),
        ("drop table t", "sheet export query must be a SELECT (or WITH ... SELECT), not DROP"),
    ],
)
def test_messages_name_what_was_checked(sql: str, message: str) -> None:
    with pytest.raises(UnsafeQueryError, match=f"^{re.escape(message)}"):
        check_single_select(sql, "sheet export query")


def test_unsafe_query_error_is_a_headwater_value_error() -> None:
    assert issubclass(UnsafeQueryError, HeadwaterError)
    assert issubclass(UnsafeQueryError, ValueError)
