"""The DAGs folder the ``headwater`` command uses when AIRFLOW__CORE__DAGS_FOLDER is not set: one DAG per
pipeline in ``$HEADWATER_CONFIG`` (which the command always sets), so it works from any directory."""

import os

from headwater.airflow.dag_factory import build_dags

globals().update(build_dags(os.environ.get("HEADWATER_CONFIG")))
