"""The manifest: its JSON form, and the checks that refuse a manifest headwater did not write or cannot read."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from headwater.coltypes import ColumnType
from headwater.errors import LakeError
from headwater.identifiers import TableName
from headwater.lake import LocalLake
from headwater.parts import Manifest, Part, read_manifest
from headwater.table import Column

pytestmark = pytest.mark.unit

FOLDER = "file:///lake/raw/t/2026-01-05/r"
URI = f"{FOLDER}/_manifest.json"


def manifest(**changes: Any) -> Manifest:
    fields: dict[str, Any] = {
        "target": "raw.t",
        "source": "Tabellenblatt Überblick",
        "columns": [{"name": "id", "type": "integer"}, {"name": "amount", "type": "numeric(12,2)"}],
        "rows": 3,
        "parts": [
            Part(f"{FOLDER}/part-a-00000.csv.gz", 2, 40, "ab" * 32, 17),
            Part(f"{FOLDER}/part-a-00001.csv.gz", 1, 30, "cd" * 32),
        ],
        "logical_date": "2026-01-05T00:00:00",
        "run_id": "manual__1",
        "created_at": "2026-01-05T06:00:00+00:00",
    }
    fields.update(changes)
    return Manifest(**fields)


def as_dict(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(manifest().to_json())
    data.update(changes)
    return data


def test_the_json_form_is_indented_utf8_text_with_every_field() -> None:
    expected = (
        '{\n "target": "raw.t",\n "source": "Tabellenblatt Überblick",\n "columns": [\n  {\n   "name": "id",\n'
        '   "type": "integer"\n  },\n  {\n   "name": "amount",\n   "type": "numeric(12,2)"\n  }\n ],\n'
        ' "rows": 3,\n "parts": [\n  {\n   "uri": "file:///lake/raw/t/2026-01-05/r/part-a-00000.csv.gz",\n'
        f'   "rows": 2,\n   "bytes": 40,\n   "sha256": "{"ab" * 32}",\n   "max_row_bytes": 17\n  }},\n  {{\n'
        '   "uri": "file:///lake/raw/t/2026-01-05/r/part-a-00001.csv.gz",\n   "rows": 1,\n   "bytes": 30,\n'
        f'   "sha256": "{"cd" * 32}",\n   "max_row_bytes": 0\n  }}\n ],\n "logical_date": "2026-01-05T00:00:00",\n'
        ' "run_id": "manual__1",\n "format": "csv.gz",\n "version": 1,\n "created_at": "2026-01-05T06:00:00+00:00"\n}'
    )
    assert manifest().to_json() == expected


def test_a_manifest_reads_back_equal_with_its_table_and_typed_columns() -> None:
    back = Manifest.from_json(manifest().to_json(), URI)
    assert back == manifest()
    assert back.table == TableName("raw", "t")
    assert back.typed_columns == [Column("id", ColumnType("integer")), Column("amount", ColumnType("numeric", 12, 2))]


def test_a_new_manifest_is_stamped_with_the_current_utc_time() -> None:
    stamp = Manifest("raw.t", "s", [], 0, [], "", "").created_at
    created = datetime.fromisoformat(stamp)
    assert (stamp[-6:], created.utcoffset()) == ("+00:00", timedelta(0))
    assert abs(datetime.now(UTC) - created) < timedelta(seconds=30)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "m.json: not a valid headwater manifest (not a JSON object)"),
        ("nope", "m.json: not a valid headwater manifest (Expecting value: line 1 column 1 (char 0))"),
        ('{"version": 2}', "m.json: manifest version 2 is not 1"),
        ('{"rows": 1}', "m.json: manifest version None is not 1"),
        ('{"version": 1}', "m.json: not a valid headwater manifest ('parts')"),
        (
            json.dumps(as_dict(parts=[{"uri": f"{FOLDER}/p", "rows": 1, "bytes": 1, "sha256": "x", "extra": 1}])),
            "m.json: not a valid headwater manifest (Part.__init__() got an unexpected keyword argument 'extra')",
        ),
        (
            json.dumps(as_dict(owner="someone")),
            "m.json: not a valid headwater manifest (Manifest.__init__() got an unexpected keyword argument 'owner')",
        ),
    ],
)
def test_text_that_is_not_a_headwater_manifest_is_refused_naming_the_uri(text: str, message: str) -> None:
    with pytest.raises(LakeError, match=f"^{re.escape(message)}$"):
        Manifest.from_json(text, "m.json")


def test_from_json_checks_what_it_parsed() -> None:
    with pytest.raises(LakeError, match=re.escape(f"{URI}: lists 4 rows but its parts add up to 3")):
        Manifest.from_json(json.dumps(as_dict(rows=4)), URI)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"format": "xml"}, "unknown part format 'xml'; headwater reads csv.gz, csv.zst, csv, parquet"),
        (
            {"columns": [{"name": "id", "type": "integer"}, {"name": "2x", "type": "text"}]},
            "column 2 of the manifest: column '2x' is not a valid identifier "
            "(letters, digits and underscores, not starting with a digit)",
        ),
        ({"columns": [{"name": "id", "type": "blob"}]}, "column 1 of the manifest: unknown column type 'blob'"),
        ({"columns": [{"name": "id"}]}, "column 1 of the manifest: 'type'"),
        ({"columns": ["id"]}, "column 1 of the manifest: string indices must be integers"),
        ({"rows": 5}, "lists 5 rows but its parts add up to 3"),
    ],
)
def test_unknown_formats_bad_columns_and_wrong_row_totals_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(LakeError, match=f"^{re.escape(f'{URI}: {message}')}"):
        manifest(**changes).check(URI)


@pytest.mark.parametrize(
    "part_uri",
    [
        "file:///lake/raw/t/2026-01-05/other/part-a-00000.csv.gz",  # a sibling run's folder
        "file:///lake/raw/t/2026-01-05/rest/part-a-00000.csv.gz",  # a folder whose name only starts alike
        "file:///elsewhere/part-a-00000.csv.gz",
        "s3://bucket/raw/t/2026-01-05/r/part-a-00000.csv.gz",
    ],
)
def test_a_part_outside_the_manifests_folder_is_refused(part_uri: str) -> None:
    message = f"{URI}: part {part_uri!r} lies outside the manifest's own prefix {FOLDER}/"
    with pytest.raises(LakeError, match=f"^{re.escape(message)}$"):
        manifest(rows=1, parts=[Part(part_uri, 1, 1, "x")]).check(URI)


def test_a_part_uri_that_is_not_text_is_refused() -> None:
    with pytest.raises(LakeError, match=re.escape(f"{URI}: part 7 lies outside the manifest's own prefix {FOLDER}/")):
        manifest(rows=1, parts=[Part(7, 1, 1, "x")]).check(URI)  # type: ignore[arg-type]


@pytest.mark.parametrize("relative", ["../../../victim.csv.gz", "sub/../x", "./x", "sub//x", "a\\b"])
def test_a_part_that_climbs_out_of_the_folder_is_refused_naming_the_part(relative: str) -> None:
    part_uri = f"{FOLDER}/{relative}"
    message = f"{part_uri}: a lake path may not contain '.', '..' or empty segments"
    with pytest.raises(LakeError, match=f"^{re.escape(message)}$"):
        manifest(rows=1, parts=[Part(part_uri, 1, 1, "x")]).check(URI)


def test_a_part_in_a_subfolder_of_the_prefix_is_accepted() -> None:
    manifest(rows=1, parts=[Part(f"{FOLDER}/sub/part-a-00000.csv.gz", 1, 1, "x")]).check(URI)


def test_read_manifest_reads_a_published_manifest_from_the_lake(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    folder = f"{lake.url}/raw/t/r"
    written = manifest(parts=[Part(f"{folder}/part-a-00000.csv.gz", 3, 40, "ab" * 32)])
    lake.write_bytes(f"{folder}/_manifest.json", written.to_json().encode("utf-8"))
    assert read_manifest(lake, f"{folder}/_manifest.json") == written


def test_read_manifest_refuses_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    uri = f"{lake.url}/raw/t/_manifest.json"
    lake.write_bytes(uri, b'{"version": 1, "source": "\xff"}')
    with pytest.raises(LakeError, match=f"^{re.escape(f'{uri}: not a headwater manifest (not UTF-8 text)')}$"):
        read_manifest(lake, uri)


def test_read_manifest_of_a_missing_object_says_not_found(tmp_path: Path) -> None:
    lake = LocalLake(tmp_path)
    uri = f"{lake.url}/raw/t/_manifest.json"
    with pytest.raises(LakeError, match=f"^{re.escape(f'{uri}: not found in the lake')}$"):
        read_manifest(lake, uri)
