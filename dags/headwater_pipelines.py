"""Sheets -> lake -> warehouse DAGs, one per pipeline in ``config/pipelines.yaml`` (or ``$HEADWATER_CONFIG``)."""

import os
from pathlib import Path

from headwater.airflow.dag_factory import build_dags

globals().update(
    build_dags(os.environ.get("HEADWATER_CONFIG") or Path(__file__).parents[1] / "config" / "pipelines.yaml")
)
