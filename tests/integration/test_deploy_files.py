"""deploy/ without Docker or a cluster: the compose file, the Helm values, the pod template and the pods
Airflow and the KubernetesPodOperator would create, checked against Kubernetes schemas and each other,
with no secret value anywhere in a rendered spec."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from headwater.cli_cluster import read_env_file
from tests.conftest import REPO

pytestmark = pytest.mark.integration

DEPLOY = REPO / "deploy"
K8S_VERSION = "1.30"
SECRET = "S3cr3t-value-that-must-not-leak"


def validate(spec: dict[str, Any]) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(spec, K8S_VERSION, strict=True)  # raises on any unknown or wrong field


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_compose_runs_the_process_stacks_settings_and_image() -> None:
    compose = load(DEPLOY / "docker-compose.yaml")
    services = compose["services"]
    assert {"postgres", "redis", "airflow-init", "airflow-worker", "airflow-log-groomer"} <= set(services)
    airflow = {name: s for name, s in services.items() if s.get("image") == "headwater:latest"}
    assert set(airflow) == {n for n in services if n.startswith("airflow-")}
    for name, service in airflow.items():
        assert service["env_file"] == ["airflow.env", ".env"], name  # the file `make cluster-up` reads
        assert service["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}, name
    commands = {name: s["command"] for name, s in airflow.items()}
    assert commands["airflow-api-server"][:2] == ["airflow", "api-server"]
    assert commands["airflow-scheduler"] == ["airflow", "scheduler"]
    assert commands["airflow-dag-processor"] == ["airflow", "dag-processor"]
    assert commands["airflow-triggerer"] == ["airflow", "triggerer"]
    assert commands["airflow-worker"] == ["airflow", "celery", "worker"]
    assert "headwater create-admin" in commands["airflow-init"][-1]
    assert services["airflow-worker"]["deploy"]["replicas"] >= 2
    settings = read_env_file(DEPLOY / "airflow.env")
    assert settings["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert "fab_auth_manager" in settings["AIRFLOW__CORE__AUTH_MANAGER"]
    assert settings["AIRFLOW__API__EXPOSE_CONFIG"] == "False"
    assert int(settings["AIRFLOW__LOG_RETENTION_DAYS"]) > 0
    dockerfile = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert dockerfile.startswith("#") and "FROM apache/airflow:3.3.2-python3.11" in dockerfile
    assert "uv export --frozen" in dockerfile  # the locked versions


def test_no_secret_is_committed_in_deploy() -> None:
    example = read_env_file(DEPLOY / ".env.example")
    for name in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__API__SECRET_KEY"):
        assert example[name] == "", name
    assert example["HEADWATER_ADMIN_PASSWORD"] == ""
    settings = read_env_file(DEPLOY / "airflow.env")
    secret_names = ("SQL_ALCHEMY_CONN", "FERNET", "SECRET", "PASSWORD", "BROKER_URL", "RESULT_BACKEND")
    assert not [k for k in settings if any(s in k for s in secret_names)]
    text = (DEPLOY / "docker-compose.yaml").read_text() + (DEPLOY / "helm" / "values.yaml").read_text()
    assert "CHANGE_ME" not in text and "${POSTGRES_PASSWORD:?" in text
    assert (
        ".env" in (REPO / ".gitignore").read_text().splitlines()[-1]
        or "deploy/.env" in (REPO / ".gitignore").read_text().splitlines()
    )


def test_helm_values_repeat_the_shared_settings_and_the_pod_template() -> None:
    values = load(DEPLOY / "helm" / "values.yaml")
    assert values["executor"] == "KubernetesExecutor" and values["postgresql"]["enabled"] is False
    assert values["images"]["airflow"] == {"repository": "headwater", "tag": "latest", "pullPolicy": "IfNotPresent"}
    assert values["data"]["metadataSecretName"] and values["fernetKeySecretName"] and values["jwtSecretName"]
    assert values["logs"]["persistence"]["enabled"] is True
    assert values["scheduler"]["logGroomerSidecar"]["retentionDays"] == int(
        read_env_file(DEPLOY / "airflow.env")["AIRFLOW__LOG_RETENTION_DAYS"]
    )
    env = {e["name"]: e["value"] for e in values["env"]}
    chart_or_executor_own = {
        "AIRFLOW__CORE__EXECUTOR",  # `executor:` above
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER",  # the chart mounts the logs volume there
        "AIRFLOW__LOG_RETENTION_DAYS",  # the groomers' retentionDays
    }
    shared = {
        k: v
        for k, v in read_env_file(DEPLOY / "airflow.env").items()
        if k not in chart_or_executor_own and not k.startswith("AIRFLOW__CELERY__")
    }
    assert {k: v for k, v in env.items() if k.startswith("AIRFLOW__")} == shared
    for entry in values["secret"]:  # Connections and passwords only by reference
        assert set(entry) == {"envName", "secretName", "secretKey"}
    template = load(DEPLOY / "kubernetes" / "pod_template.yaml")
    assert yaml.safe_load(values["podTemplate"]) == template
    validate(template)
    [base] = template["spec"]["containers"]
    assert base["name"] == "base" and base["image"] == "headwater:latest"
    assert base["resources"]["requests"] and base["resources"]["limits"]


@pytest.fixture(scope="module")
def pod_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("pods")
    config = base / "pipelines.yaml"
    config.write_text(
        f"""
pipelines:
  heavy:
    schedule: "@daily"
    retries: 0
    pod_exports:
      - name: big_orders
        source_secret: {{name: app-db, key: url}}
        table: shop.orders
        to: s3://lake/exports/orders
        format: parquet
        pod_template: {DEPLOY / "kubernetes" / "pod_template.yaml"}
        env_secrets:
          AWS_ACCESS_KEY_ID: {{name: aws, key: access_key_id}}
          AWS_SECRET_ACCESS_KEY: {{name: aws, key: secret_access_key}}
""",
        encoding="utf-8",
    )
    return config


def test_the_pod_export_pod_takes_secrets_by_reference_and_the_templates_resources(
    pod_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kubernetes.client import ApiClient

    from headwater.airflow.dag_factory import build_dags

    monkeypatch.setenv("AIRFLOW_CONN_APP_DB", f"postgresql://reader:{SECRET}@db.internal:5432/shop")
    dag = build_dags(pod_config)["heavy"]
    task = dag.get_task("pod_export__big_orders")
    assert dag.get_task("latest_only").downstream_task_ids == {"pod_export__big_orders"}
    pod = ApiClient().sanitize_for_serialization(task.build_pod_request_obj(context=None, dry_run=True))
    validate(pod)
    [container] = pod["spec"]["containers"]
    assert container["command"] == ["headwater"]
    assert container["args"][:4] == ["export", "--source", "env:HEADWATER_SOURCE", "--table"]
    assert container["args"][-2:] == ["--to", "s3://lake/exports/orders/{{ ts_nodash }}"]
    refs = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
    assert refs == {
        "HEADWATER_SOURCE": {"name": "app-db", "key": "url"},
        "AWS_ACCESS_KEY_ID": {"name": "aws", "key": "access_key_id"},
        "AWS_SECRET_ACCESS_KEY": {"name": "aws", "key": "secret_access_key"},
    }
    assert container["resources"] == {
        "requests": {"cpu": "500m", "memory": "512Mi"},
        "limits": {"cpu": "2", "memory": "2Gi"},
    }
    assert SECRET not in json.dumps(pod)


def test_the_executors_worker_pods_validate_and_carry_no_secret(pod_config: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HEADWATER_"))}
    env |= {
        "AIRFLOW_HOME": str(tmp_path / "home"),
        "AIRFLOW__CORE__EXECUTOR": "KubernetesExecutor",
        "AIRFLOW__KUBERNETES_EXECUTOR__POD_TEMPLATE_FILE": str(DEPLOY / "kubernetes" / "pod_template.yaml"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "HEADWATER_CONFIG": str(REPO / "config" / "pipelines.yaml"),
        "AIRFLOW_CONN_HEADWATER_WAREHOUSE": f"postgresql://loader:{SECRET}@warehouse.internal:5432/dw",
        "AIRFLOW__CORE__FERNET_KEY": "",
    }
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], env=env, capture_output=True, timeout=300, check=True)
    out = tmp_path / "out"
    done = subprocess.run(
        [
            airflow,
            "kubernetes",
            "generate-dag-yaml",
            "sample_sheets",
            "-l",
            "2026-01-05T09:00:00+00:00",
            "-o",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    files = sorted(out.rglob("*.yml"))
    assert len(files) >= 3
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert SECRET not in text, path
        pod = yaml.safe_load(text)
        validate(pod)
        [base] = pod["spec"]["containers"]
        assert base["image"] == "headwater:latest" and base["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}


def test_cluster_up_names_every_missing_secret_and_down_is_safe_when_nothing_runs(tmp_path: Path) -> None:
    headwater = str(Path(sys.executable).with_name("headwater"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "HEADWATER_"))}
    env |= {"HEADWATER_HOME": str(tmp_path), "AIRFLOW__CORE__FERNET_KEY": "  "}  # present but blank: missing
    up = subprocess.run([headwater, "cluster", "up"], env=env, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert up.returncode == 2
    assert " ".join(up.stderr.split()) == (
        "error: set AIRFLOW__DATABASE__SQL_ALCHEMY_CONN, AIRFLOW__CELERY__BROKER_URL, AIRFLOW__CELERY__RESULT_BACKEND, "
        "AIRFLOW__CORE__FERNET_KEY, AIRFLOW__API_AUTH__JWT_SECRET, AIRFLOW__API__SECRET_KEY, HEADWATER_ADMIN_USERNAME, "
        "HEADWATER_ADMIN_PASSWORD (see deploy/.env.example)"
    )
    down = subprocess.run([headwater, "cluster", "down"], env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0 and "no stack of `headwater cluster up` was running" in down.stdout
