from datetime import date, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from headwater.coltypes import ColumnType
from headwater.config import (
    CONFIG_ENV,
    LoadMethod,
    Pipeline,
    _describe,
    as_datetime,
    default_config_path,
    load_config,
    spreadsheet_key,
)
from headwater.errors import ConfigError
from headwater.table import TableRules

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pipelines.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_config_is_valid() -> None:
    loaded = load_config(REPO / "config" / "pipelines.yaml")
    orders = loaded.config.pipelines["sample_sheets"].sheets[0]
    assert orders.target.schema == "raw" and orders.load == LoadMethod.REPLACE
    assert loaded.workbook_path(orders) == (REPO / "examples" / "sample_workbook.xlsx").resolve()


def test_error_names_file_entry_and_key(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
pipelines:
  p1:
    sheets:
      - workbook: a.xlsx
        tab: T
        table: raw.ok
      - workbook: a.xlsx
        tab: T
        table: raw.t2
        load: merge
""",
    )
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message
    assert "pipelines.p1.sheets[1].load" in message


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("workbook: a.xlsx\n        tab: T\n        table: raw.t\n        load: upsert", "needs 'keys'"),
        ("workbook: a.xlsx\n        tab: T\n        table: raw.t; drop table x", "not a valid identifier"),
        ("workbook: a.xlsx\n        tab: T\n        table: justtable", "schema.table"),
        ("workbook: a.txt\n        table: raw.t", ".xlsx or .csv"),
        ("workbook: a.xlsx\n        table: raw.t", "'tab' is required"),
        ("spreadsheet: not a url\n        tab: T\n        table: raw.t", "neither a Google Sheets URL"),
        ("workbook: a.csv\n        spreadsheet: abcdefghijklmnop\n        table: raw.t", "exactly one of"),
        ("workbook: a.csv\n        table: raw.t\n        columns: {price: money}", "unknown column type"),
        ("workbook: a.csv\n        table: raw.t\n        colums: {price: text}", "colums"),
    ],
)
def test_bad_entries(tmp_path: Path, entry: str, expected: str) -> None:
    path = write(tmp_path, f"pipelines:\n  p:\n    sheets:\n      - {entry}\n")
    with pytest.raises(ConfigError, match="pipelines.p.sheets\\[0\\]") as err:
        load_config(path)
    assert expected in str(err.value)


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "pipelines:\n  p:\n    sheets: []\n  p:\n    sheets: []\n")
    with pytest.raises(ConfigError, match="appears twice"):
        load_config(path)


def test_same_table_twice_in_a_pipeline(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pipelines:\n  p:\n    sheets:\n      - {workbook: a.csv, table: raw.t}\n"
        "      - {workbook: b.csv, table: raw.t}\n",
    )
    with pytest.raises(ConfigError, match="loaded twice"):
        load_config(path)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "pipelines: [unclosed"))


def test_spreadsheet_key_from_url() -> None:
    url = "https://docs.google.com/spreadsheets/d/1hW-_16OqgctX-_lXBa0VSmQAs98uUnmfOqvDYYjuE50/edit#gid=0"
    assert spreadsheet_key(url) == "1hW-_16OqgctX-_lXBa0VSmQAs98uUnmfOqvDYYjuE50"
    assert spreadsheet_key("1hW-_16OqgctX") == "1hW-_16OqgctX"


SHEET = "{workbook: a.csv, table: raw.t}"
NOT_VALID = "is not a valid identifier (letters, digits and underscores, not starting with a digit)"


def config_error(path: Path, *problems: str) -> str:
    """The exact ConfigError text: one ``file: entry.key: problem`` line per problem."""
    return "\n".join(f"{path}: {problem}" for problem in problems)


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        (
            "pipelines:\n  p1:\n    sheets:\n      - {workbook: a.xlsx, tab: T, table: raw.t, load: merge}\n",
            ["pipelines.p1.sheets[0].load: Input should be 'replace', 'append' or 'upsert'"],
        ),
        (
            "pipelines:\n  p:\n    sheets:\n      - {workbook: a.csv, table: raw.t, load: merge}\n"
            "      - {workbook: a.csv, table: raw.u, load: upsert}\n",
            [
                "pipelines.p.sheets[0].load: Input should be 'replace', 'append' or 'upsert'",
                "pipelines.p.sheets[1]: load 'upsert' needs 'keys'",
            ],
        ),
        (
            "pipelines:\n  p:\n    retries: 21\n    sheets: [{workbook: a.csv, table: raw.t, keys: ['a b']}]\n",
            [
                "pipelines.p.retries: Input should be less than or equal to 20",
                f"pipelines.p.sheets[0].keys: key column 'a b' {NOT_VALID}",
            ],
        ),
        (
            "pipelines:\n  p:\n    sheets: [{workbook: a.csv, table: raw.t, columns: {'a b': text}}]\n",
            [f"pipelines.p.sheets[0].columns: column 'a b' {NOT_VALID}"],
        ),
        (
            "pipelines:\n  p:\n    sheets: [{workbook: a, table: raw.t}]\n",
            ["pipelines.p.sheets[0]: workbook must be a .xlsx or .csv file, not 'no extension'"],
        ),
        (
            "pipelines:\n  p:\n    sheets: [{workbook: a.XLSX, table: raw.t}]\n",
            ["pipelines.p.sheets[0]: 'tab' is required for a .xlsx workbook"],
        ),
        (
            "pipelines:\n  p:\n    sheets: [{spreadsheet: abcdefghijk, table: raw.t}]\n",
            ["pipelines.p.sheets[0]: 'tab' is required for a Google Sheet"],
        ),
        (
            "pipelines:\n  p:\n    tables:\n      - {conn_id: c, table: raw.t, query: 'select 1; select 2'}\n",
            [
                "pipelines.p.tables[0].query: query holds 2 statements; "
                "give exactly one SELECT (no ';' between statements)"
            ],
        ),
        (
            "pipelines:\n  p:\n    tables:\n      - {conn_id: c, table: raw.t}\n",
            ["pipelines.p.tables[0]: give exactly one of 'query' or 'source_table'"],
        ),
        (
            "pipelines:\n  p:\n    tables:\n      - {conn_id: c, table: raw.t, source_table: x}\n",
            ["pipelines.p.tables[0]: table 'x' must be written as schema.table"],
        ),
        (
            "pipelines:\n  p:\n    tables:\n"
            "      - {conn_id: c, table: raw.t, source_table: a.b, incremental: {column: u}}\n",
            ["pipelines.p.tables[0]: an incremental export must load by 'upsert' (or 'append'), not 'replace'"],
        ),
        (
            "pipelines:\n  p:\n    tables:\n"
            "      - {conn_id: c, table: raw.t, source_table: a.b, incremental: {column: '1u'}, load: append}\n",
            [f"pipelines.p.tables[0].incremental.column: incremental column '1u' {NOT_VALID}"],
        ),
        (
            "pipelines:\n  p:\n    sheet_exports:\n"
            "      - {name: out, query: 'drop table x', spreadsheet: abcdefghijk, tab: T}\n",
            ["pipelines.p.sheet_exports[0].query: query must be a SELECT (or WITH ... SELECT), not DROP"],
        ),
        (
            "pipelines:\n  p:\n    sheet_exports:\n"
            "      - {name: out, query: 'select 1', spreadsheet: short, tab: T}\n",
            ["pipelines.p.sheet_exports[0].spreadsheet: 'short' is neither a Google Sheets URL nor a spreadsheet key"],
        ),
        (
            "pipelines:\n  p:\n    sheet_exports:\n"
            "      - {name: out, query: 'select 1', spreadsheet: abcdefghijk, tab: T}\n"
            "      - {name: out, query: 'select 2', spreadsheet: abcdefghijk, tab: U}\n",
            ["pipelines.p: sheet_exports names must be unique in a pipeline"],
        ),
        (
            f"pipelines:\n  p:\n    sheets: [{SHEET}]\n    tables: [{{conn_id: c, table: raw.t, source_table: a.b}}]\n",
            ["pipelines.p: table 'raw.t' is loaded twice in this pipeline"],
        ),
        (
            "pipelines:\n  p: {}\n",
            [
                "pipelines.p: a pipeline needs at least one entry under "
                "'sheets', 'tables', 'dbt', 'summaries', 'exports' or 'sheet_exports'"
            ],
        ),
        (
            f"pipelines:\n  9p:\n    sheets: [{SHEET}]\n",
            ["pipelines: pipeline name '9p' must be letters, digits and underscores"],
        ),
        (
            f"defaults: {{lake_url: relative/path}}\npipelines:\n  p:\n    sheets: [{SHEET}]\n",
            ["defaults.lake_url: 'relative/path' is not s3://bucket/prefix, file:///absolute/path or an absolute path"],
        ),
        ("defaults: {}\n", ["pipelines: Field required"]),
    ],
)
def test_errors_name_file_entry_and_key_exactly(tmp_path: Path, text: str, problems: list[str]) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == config_error(path, *problems)


def test_an_error_without_a_location_is_reported_at_top_level() -> None:
    with pytest.raises(ValidationError) as err:
        Pipeline.model_validate({})
    assert _describe(Path("p.yaml"), err.value) == (
        "p.yaml: (top level): a pipeline needs at least one entry under "
        "'sheets', 'tables', 'dbt', 'summaries', 'exports' or 'sheet_exports'"
    )


@pytest.mark.parametrize(
    ("content", "line", "byte"),
    [(b"\xffpipelines: {}\n", 1, 0), (b"pipelines:\n  p:\n    description: caf\xe9\n", 3, 36)],
)
def test_file_that_is_not_utf8_names_line_and_byte(tmp_path: Path, content: bytes, line: int, byte: int) -> None:
    path = tmp_path / "p.yaml"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: not UTF-8 text (line {line}, byte {byte}); save it as UTF-8"


def test_utf8_text_is_read_as_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, f"pipelines:\n  p:\n    description: 고객 주문\n    sheets: [{SHEET}]\n")
    assert load_config(path).config.pipelines["p"].description == "고객 주문"


@pytest.mark.parametrize("text", ["- a\n- b\n", "", "just text\n"])
def test_top_level_must_be_a_mapping(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f"{path}: expected a mapping with a 'pipelines' key"


def test_missing_file_message_gives_the_reason(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "nope.yaml")
    assert str(err.value) == f"{tmp_path / 'nope.yaml'}: cannot read the pipelines file (No such file or directory)"


def test_bad_yaml_names_file_and_position(tmp_path: Path) -> None:
    path = write(tmp_path, "pipelines: [unclosed")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: not valid YAML: while parsing a flow sequence\n")
    assert str(err.value).endswith("did not find expected ',' or ']'\n  in \"<unicode string>\", line 2, column 1")


@pytest.mark.parametrize(
    ("text", "key", "where"),
    [
        ("pipelines:\n  p:\n    sheets: []\n  p:\n    sheets: []\n", "'p'", "line 4, column 3"),
        (f"pipelines:\n  p:\n    sheets: [{SHEET}]\npipelines: {{}}\n", "'pipelines'", "line 4, column 1"),
        (
            "pipelines:\n  p:\n    sheets: [{workbook: a.csv, table: raw.t, table: raw.u}]\n",
            "'table'",
            "line 3, column 46",
        ),
    ],
)
def test_duplicate_key_error_points_at_the_second_one(tmp_path: Path, text: str, key: str, where: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(err.value) == f'{path}: not valid YAML: key {key} appears twice\n  in "<unicode string>", {where}'


def test_same_key_in_different_mappings_is_fine(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pipelines:\n  a:\n    sheets: [{workbook: a.csv, table: raw.a}]\n"
        "  b:\n    sheets: [{workbook: a.csv, table: raw.b}]\n",
    )
    loaded = load_config(path)
    assert [s.table for p in loaded.config.pipelines.values() for s in p.sheets] == ["raw.a", "raw.b"]


def test_aliases_are_resolved(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pipelines:\n  a:\n    tags: &tags [daily, sheets]\n    sheets: [{workbook: a.csv, table: raw.a}]\n"
        "  b:\n    tags: *tags\n    sheets: [{workbook: a.csv, table: raw.b}]\n",
    )
    pipelines = load_config(path).config.pipelines
    assert (pipelines["a"].tags, pipelines["b"].tags) == (["daily", "sheets"], ["daily", "sheets"])


def test_loaded_path_is_resolved(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, f"pipelines:\n  p:\n    sheets: [{SHEET}]\n")
    monkeypatch.chdir(tmp_path)
    assert load_config("pipelines.yaml").path == tmp_path.resolve() / "pipelines.yaml"


def test_without_a_path_the_environment_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, f"pipelines:\n  from_env:\n    sheets: [{SHEET}]\n")
    monkeypatch.setenv(CONFIG_ENV, str(path))
    assert CONFIG_ENV == "HEADWATER_CONFIG"
    assert default_config_path() == path
    loaded = load_config()
    assert (loaded.path, list(loaded.config.pipelines)) == (path.resolve(), ["from_env"])


@pytest.mark.parametrize("env", [None, ""])
def test_without_path_or_environment_the_working_directory_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: str | None
) -> None:
    (tmp_path / "config").mkdir()
    path = tmp_path / "config" / "pipelines.yaml"
    path.write_text(f"pipelines:\n  from_cwd:\n    sheets: [{SHEET}]\n", encoding="utf-8")
    if env is None:
        monkeypatch.delenv(CONFIG_ENV, raising=False)
    else:
        monkeypatch.setenv(CONFIG_ENV, env)
    monkeypatch.chdir(tmp_path)
    assert default_config_path() == path
    loaded = load_config()
    assert (loaded.path, list(loaded.config.pipelines)) == (path.resolve(), ["from_cwd"])


def test_pipeline_by_name(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pipelines:\n  zeta:\n    sheets: [{workbook: z.csv, table: raw.z}]\n"
        "  alpha:\n    sheets: [{workbook: a.csv, table: raw.a}]\n",
    )
    loaded = load_config(path)
    assert loaded.pipeline("alpha").sheets[0].table == "raw.a"
    with pytest.raises(ConfigError) as err:
        loaded.pipeline("beta")
    assert str(err.value) == f"{path.resolve()}: no pipeline named 'beta' (configured: alpha, zeta)"


def test_unknown_pipeline_when_none_are_configured(tmp_path: Path) -> None:
    path = write(tmp_path, "pipelines: {}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path).pipeline("p")
    assert str(err.value) == f"{path.resolve()}: no pipeline named 'p' (configured: none)"


@pytest.mark.parametrize(
    ("workbook", "expected"),
    [
        ("a.csv", "{base}/a.csv"),
        ("data/../b.xlsx", "{base}/b.xlsx"),
        ("$HW_DATA/c.csv", "{data}/c.csv"),
        ("{data}/../sub/d.csv", "{data}/../sub/d.csv"),  # an absolute path is taken as written
        ("~/e.csv", "{home}/e.csv"),
    ],
)
def test_workbook_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workbook: str, expected: str) -> None:
    base, data, home = tmp_path / "cfg", tmp_path / "data", tmp_path / "home"
    base.mkdir()
    monkeypatch.setenv("HW_DATA", str(data))
    monkeypatch.setenv("HOME", str(home))
    tab = "\n        tab: T" if workbook.endswith(".xlsx") else ""
    wb = workbook.format(data=data)
    path = write(base, f"pipelines:\n  p:\n    sheets:\n      - workbook: '{wb}'{tab}\n        table: raw.t\n")
    loaded = load_config(path)
    resolved = loaded.workbook_path(loaded.pipeline("p").sheets[0])
    assert resolved == Path(expected.format(base=base.resolve(), data=data, home=home))


def test_rules_carry_types_cleaning_keys_and_allow_empty(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pipelines:\n  p:\n    sheets:\n      - workbook: a.csv\n        table: raw.t\n        load: upsert\n"
        "        keys: [id, day]\n        columns: {id: int, price: 'numeric(12,2)'}\n"
        "        clean: {currency: [price], percent: ['*']}\n        allow_empty: true\n",
    )
    rules = load_config(path).pipeline("p").sheets[0].rules()
    assert rules == TableRules(
        types={"id": ColumnType("integer"), "price": ColumnType("numeric", 12, 2)},
        currency=("price",),
        percent=("*",),
        keys=("id", "day"),
        allow_empty=True,
    )


def test_rules_defaults(tmp_path: Path) -> None:
    rules = load_config(write(tmp_path, f"pipelines:\n  p:\n    sheets: [{SHEET}]\n")).pipeline("p").sheets[0].rules()
    assert rules == TableRules(types={}, currency=(), percent=(), keys=(), allow_empty=False)


def test_as_datetime_is_midnight_of_the_date() -> None:
    assert as_datetime(date(2026, 3, 4)) == datetime(2026, 3, 4, 0, 0, 0)


def test_yaml_merge_keys_share_settings_between_entries(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pipelines:\n  p:\n    sheets:\n      - &book {workbook: a.csv, load: upsert, keys: [id], table: raw.a}\n"
        "      - {<<: *book, table: raw.b}\n",
    )
    sheets = load_config(path).config.pipelines["p"].sheets
    assert [(s.table, s.load.value, s.keys, s.workbook) for s in sheets] == [
        ("raw.a", "upsert", ["id"], "a.csv"),
        ("raw.b", "upsert", ["id"], "a.csv"),
    ]


def test_a_list_as_a_yaml_key_is_a_config_error(tmp_path: Path) -> None:
    path = write(tmp_path, "pipelines:\n  ? [a, b]\n  : 1\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == (
        f"{path}: not valid YAML: a mapping key must be a plain value, not a list or mapping\n"
        '  in "<unicode string>", line 2, column 5'
    )


def test_a_key_given_twice_after_a_merge_key_is_still_an_error(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pipelines:\n  p:\n    sheets:\n      - &book {workbook: a.csv, table: raw.a}\n"
        "      - {<<: *book, table: raw.b, table: raw.c}\n",
    )
    with pytest.raises(ConfigError, match=r"not valid YAML: key 'table' appears twice\n.*line 5, column 35"):
        load_config(path)


def test_a_pipeline_name_with_a_trailing_newline_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, 'pipelines:\n  "p\\n":\n    sheets: [{workbook: a.csv, table: raw.t}]\n')
    with pytest.raises(ConfigError, match="must be letters, digits and underscores"):
        load_config(path)


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ("{name: x, source_secret: {name: db, key: url}, to: s3://b/p}", "give exactly one of 'query' or 'table'"),
        (
            "{name: x, source_secret: {name: db, key: url}, table: a.b, to: /tmp/out}",
            "'/tmp/out': a pod writes to an s3:// lake (its own disk goes away with it)",
        ),
        ("{name: x, source_secret: {name: Bad_Name, key: url}, table: a.b, to: s3://b}", "source_secret.name"),
        (
            "{name: x, source_secret: {name: db, key: url}, table: a.b, to: s3://b, "
            "env_secrets: {HEADWATER_SOURCE: {name: s, key: k}}}",
            "'HEADWATER_SOURCE' is not an environment variable name a pod export may set",
        ),
        ("{name: 1x, source_secret: {name: db, key: url}, table: a.b, to: s3://b}", "pod_exports[0].name"),
        ("{name: x, source_secret: {name: db, key: url}, query: DROP TABLE a, to: s3://b}", "pod_exports[0].query"),
    ],
)
def test_pod_exports_are_checked(tmp_path: Path, entry: str, expected: str) -> None:
    path = write(tmp_path, f"pipelines:\n  p:\n    pod_exports:\n      - {entry}\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert expected in str(err.value)


def test_a_pod_export_keeps_its_prefix_without_a_trailing_slash(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "pipelines:\n  p:\n    pod_exports:\n"
        "      - {name: x, source_secret: {name: db, key: url}, table: a.b, to: 's3://bucket/exports/'}\n",
    )
    [export] = load_config(path).config.pipelines["p"].pod_exports
    assert export.to == "s3://bucket/exports" and export.image == "headwater:latest" and export.format == "csv.gz"


def test_the_maintenance_section(tmp_path: Path) -> None:
    base = "pipelines:\n  p:\n    sheets: [{workbook: a.csv, table: raw.a}]\n"
    loaded = load_config(write(tmp_path, base + "maintenance:\n  log_cleanup: {retention_days: 14}\n"))
    cleanup = loaded.config.maintenance.log_cleanup
    assert cleanup is not None and cleanup.retention_days == 14 and cleanup.schedule == "0 3 * * *"
    assert cleanup.dry_run is False and cleanup.folder is None
    assert load_config(write(tmp_path, base)).config.maintenance.log_cleanup is None
    for text, expected in (
        ("maintenance:\n  log_cleanup: {retention_days: 0}\n", "maintenance.log_cleanup.retention_days"),
        ("maintenance:\n  log_cleanup: {}\n", "maintenance.log_cleanup.retention_days"),
        ("maintenance:\n  log_cleanup: {retention_days: 3, schedule: daily}\n", "'daily' is not a cron expression"),
        ("maintenance:\n  backups: {}\n", "maintenance.backups"),
        ("maintenance:\n  metadata_cleanup: {retention_days: 9, tables: [DagRun]}\n", "not an Airflow metadata table"),
        ("maintenance:\n  metadata_cleanup: {retention_days: 9, batch_size: 0}\n", "metadata_cleanup.batch_size"),
        ("maintenance:\n  metadata_backup: {keep: 0}\n", "metadata_backup.keep"),
        ("maintenance:\n  metadata_backup: {secrets: clear}\n", "metadata_backup.secrets"),
        ("maintenance:\n  metadata_backup: {prefix: ../elsewhere}\n", "not a relative folder"),
        ("maintenance:\n  metadata_backup: {conn_id: 'my db'}\n", "'my db' is not a Connection id"),
        ("maintenance:\n  metadata_backup: {compress_level: 10}\n", "metadata_backup.compress_level"),
    ):
        with pytest.raises(ConfigError, match=expected):
            load_config(write(tmp_path, base + text))
    backup = load_config(write(tmp_path, base + "maintenance:\n  metadata_backup: {}\n")).config.maintenance
    assert backup.metadata_backup is not None and backup.metadata_backup.keep == 7
    assert backup.metadata_backup.secrets == "encrypt" and backup.metadata_backup.conn_id is None
    taken = "pipelines:\n  headwater_log_cleanup:\n    sheets: [{workbook: a.csv, table: raw.a}]\n"
    with pytest.raises(ConfigError, match="'headwater_log_cleanup' is taken by a maintenance DAG"):
        load_config(write(tmp_path, taken))
