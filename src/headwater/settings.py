"""Where the embedded defaults live: one git-ignored folder (``$HEADWATER_HOME``, default ``./.headwater``)."""

from __future__ import annotations

import os
from pathlib import Path

HOME_ENV = "HEADWATER_HOME"
LAKE_ENV = "HEADWATER_LAKE_URL"


def home() -> Path:
    return Path(os.environ.get(HOME_ENV) or Path.cwd() / ".headwater").expanduser().resolve()


def default_lake_url() -> str:
    return (home() / "lake").as_uri()


def default_duckdb_path() -> Path:
    return home() / "warehouse.duckdb"
