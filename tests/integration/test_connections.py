"""Never fall back silently: a Connection that is set but malformed is an error naming it, never a default."""

from __future__ import annotations

import logging

import pytest

from headwater.errors import ConnectionConfigError, LakeError

pytestmark = pytest.mark.integration

SECRET = "s3cr#tPW"


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (f"postgres://user:{SECRET}@db.example:5432/wh", "must be percent-encoded"),
        ("postgres://user:pw@db.example:notaport/wh", "the port is not a number"),
        ('{"conn_type": "postgres", "host": "h", "port": "abc"}', "the port is not an integer"),
        ('{"conn_type": "postgres", "hots": "h"}', "unknown field 'hots'"),
        ('{"conn_type": "postgres", "host": "h", "extra": "{not json"}', "extra is not valid JSON"),
        ('{"conn_type": "postgres", "extra": "[1, 2]"}', "extra must be a JSON object"),
        ("not a uri at all", "has no connection type"),
        ('{"conn_type": "postgres", "password": "' + SECRET + '"', "not valid JSON"),
    ],
)
def test_a_malformed_connection_is_an_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, value: str, problem: str
) -> None:
    from headwater.airflow.connections import get_connection, warehouse_for

    monkeypatch.setenv("AIRFLOW_CONN_HW_WH", value)
    for call in (lambda: get_connection("hw_wh"), lambda: warehouse_for("hw_wh")):
        with pytest.raises(ConnectionConfigError, match="Connection 'hw_wh'") as caught:
            call()
        assert problem in str(caught.value)
        assert SECRET not in str(caught.value) and "cr#t" not in str(caught.value)


def test_a_duckdb_connection_without_a_path_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from headwater.airflow.connections import warehouse_for

    monkeypatch.setenv("AIRFLOW_CONN_HW_WH", "duckdb://")
    with pytest.raises(ConnectionConfigError, match="'hw_wh': a duckdb Connection needs extra 'path'"):
        warehouse_for("hw_wh")


def test_only_an_undefined_connection_means_the_embedded_warehouse_and_the_log_says_so(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: object
) -> None:
    from headwater.airflow.connections import get_connection, warehouse_for

    monkeypatch.delenv("AIRFLOW_CONN_HW_NONE", raising=False)
    assert get_connection("hw_none") is None
    with caplog.at_level(logging.INFO, logger="headwater.airflow.connections"):
        warehouse = warehouse_for("hw_none")
    assert warehouse.describe().startswith("duckdb ")
    assert "Connection 'hw_none' is not defined: using the embedded warehouse duckdb" in caplog.text
    monkeypatch.setenv("AIRFLOW_CONN_HW_PCT", "postgres://user:pa%23ss@127.0.0.1:5432/test")
    conn = get_connection("hw_pct")  # percent-encoded, the same password is fine
    assert conn is not None and conn.password == "pa#ss"


@pytest.mark.parametrize(
    "url", ["s3:/bucket/lake", "relative/lake", "ftp://host/lake", "file://otherhost/x", "gs://b/x"]
)
def test_a_lake_url_that_is_not_s3_or_an_absolute_path_is_refused(url: str) -> None:
    from headwater.airflow.connections import lake_from_url

    with pytest.raises(LakeError, match="s3://bucket/prefix"):
        lake_from_url(url)


def test_a_bad_lake_url_in_the_config_names_the_key(tmp_path: object) -> None:
    from pathlib import Path

    from headwater.config import load_config
    from headwater.errors import ConfigError

    path = Path(str(tmp_path)) / "p.yaml"
    path.write_text(
        "defaults: {lake_url: 's3:/oops'}\npipelines:\n  p:\n    sheets: [{workbook: a.csv, table: raw.t}]\n"
    )
    with pytest.raises(ConfigError, match=r"defaults.lake_url: 's3:/oops' is not s3://bucket/prefix"):
        load_config(path)
