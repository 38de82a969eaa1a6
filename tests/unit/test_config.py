from pathlib import Path

import pytest

from headwater.config import LoadMethod, load_config, spreadsheet_key
from headwater.errors import ConfigError

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
