"""A dbt profile derived from the warehouse the loaders use, so dbt needs no second copy of any secret.

The profile file names only ``env_var()`` lookups; the values (password included) go into the
environment of the dbt invocation alone. Every string goes through ``env_var`` rather than into the
YAML, so no character in a host or database name can be read as YAML or Jinja.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from headwater.errors import ConfigError
from headwater.warehouse.base import Warehouse

ENV_PREFIX = "HEADWATER_DBT_"
TARGET = "headwater"


@dataclass(frozen=True)
class DbtProfile:
    """``profiles.yml`` text (no secrets in it) and the environment it reads."""

    text: str
    env: dict[str, str]
    adapter: str


def _env(name: str) -> str:
    return "{{ env_var('" + ENV_PREFIX + name + "') }}"


def profile_for(warehouse: Warehouse, profile_name: str, schema: str, threads: int = 4) -> DbtProfile:
    """The profile ``profile_name`` with one target, ``headwater``, pointing at ``warehouse``."""
    env: dict[str, str] = {"SCHEMA": schema}
    output: dict[str, Any] = {"schema": _env("SCHEMA"), "threads": threads}
    dialect = warehouse.dialect
    if dialect == "duckdb":
        env["PATH"] = str(warehouse.path)  # type: ignore[attr-defined]
        output.update(type="duckdb", path=_env("PATH"))
    elif dialect in ("postgres", "redshift"):
        info: dict[str, Any] = dict(warehouse.conninfo)  # type: ignore[attr-defined]
        env.update(
            HOST=str(info.get("host") or "localhost"),
            PORT=str(info.get("port") or (5439 if dialect == "redshift" else 5432)),
            USER=str(info.get("user") or ""),
            PASSWORD=str(info.get("password") or ""),
            DBNAME=str(info.get("dbname") or "postgres"),
        )
        output.update(
            type=dialect,
            host=_env("HOST"),
            port="{{ env_var('" + ENV_PREFIX + "PORT') | as_number }}",
            user=_env("USER"),
            password=_env("PASSWORD"),
            dbname=_env("DBNAME"),
        )
        if info.get("sslmode"):
            env["SSLMODE"] = str(info["sslmode"])
            output["sslmode"] = _env("SSLMODE")
        if dialect == "postgres":
            output["connect_timeout"] = 10
    else:
        raise ConfigError(
            f"dbt cannot use the {warehouse.describe()} warehouse (headwater derives dbt profiles for duckdb, "
            "postgres and redshift Connections)"
        )
    profile = {profile_name: {"target": TARGET, "outputs": {TARGET: output}}}
    text = yaml.safe_dump(profile, sort_keys=False, allow_unicode=True)
    return DbtProfile(text=text, env={ENV_PREFIX + k: v for k, v in env.items()}, adapter=dialect)
