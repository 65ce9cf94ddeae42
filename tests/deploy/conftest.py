"""What tests/deploy checks deploy/ with: the real validators, installed by
scripts/deploy-tools.sh (on PATH or in .cache/bin), never skipped when missing."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"

# What a replica's environment may hold beyond Settings' fields: boto3 reads these itself.
BOTO_VARIABLES = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
# What source builds' jail (bubblewrap: user, PID and network namespaces, a fresh /proc,
# mounts) needs from Docker: `--security-opt`s of the image test, compose's security_opt.
BUILD_JAIL_SECURITY_OPTS = ("seccomp=unconfined", "systempaths=unconfined", "apparmor=unconfined")
# What deploy/.env must define (deploy/.env.example): made-up values for `config`.
COMPOSE_SECRETS = {
    "S3_ACCESS_KEY": "nimbus-test",
    "S3_SECRET_KEY": "s3-secret-for-the-test",
    "NIMBUS_API_KEY": "k" * 40,
    "GRAFANA_ADMIN_PASSWORD": "grafana-test",
}


def tool(name: str) -> str:
    """The path of a validator; fails (never skips) when scripts/deploy-tools.sh did not run."""
    found = shutil.which(name) or shutil.which(name, path=str(REPO / ".cache" / "bin"))
    if found is None:
        pytest.fail(f"{name} is missing: run scripts/install.sh (scripts/deploy-tools.sh)")
    return found


def compose_command() -> list[str]:
    """Docker Compose v2: the docker CLI plugin if present, else the standalone binary."""
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version", "--short"], capture_output=True)
        if probe.returncode == 0 and probe.stdout.lstrip(b"v").startswith(b"2."):
            return [docker, "compose"]
    return [tool("docker-compose")]


def compose_config(env: dict[str, str], compose_file: Path = DEPLOY / "compose.yaml") -> dict:
    """`docker compose config` of a compose file: the model Compose would run, or a failure."""
    result = subprocess.run(
        [*compose_command(), "-f", str(compose_file), "config", "--format", "json"],
        env={"PATH": "/usr/bin:/bin", **env},  # nothing of ours leaks into interpolation
        capture_output=True,
        text=True,
        timeout=60,
    )
    if result.returncode != 0:
        raise AssertionError(f"docker compose config failed: {result.stderr}")
    return json.loads(result.stdout)


def load_yaml(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def load_all_yaml(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@pytest.fixture(scope="session")
def exported_metrics(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """The sample names a real `nimbus serve` exports at /metrics once it has built
    one function and served one call (labelled series appear only once observed)."""
    from prometheus_client.parser import text_string_to_metric_families

    from tests.e2e.server import NimbusProcess
    from tests.e2e.wasm import b64, hello_module

    server = NimbusProcess(tmp_path_factory.mktemp("metrics") / "data", workers=1).start()
    try:
        with server.client() as api:
            body = {"name": "hello", "runtime": "wasm", "artifact_base64": b64(hello_module())}
            created = api.post("/api/v1/functions?wait=true", json=body)
            assert created.status_code == 201 and created.json()["status"] == "active", created.text
            assert api.post("/api/v1/functions/hello/invoke", json={}).status_code == 200

        def scrape() -> set[str]:
            text = httpx.get(f"{server.url}/metrics", timeout=10).text
            families = text_string_to_metric_families(text)
            return {sample.name for family in families for sample in family.samples}

        deadline = time.monotonic() + 15
        while "nimbus_invocations_total" not in scrape() and time.monotonic() < deadline:
            time.sleep(0.2)  # outcomes reach the metrics with the recorder's next flush
        time.sleep(1.5)  # and that flush's gauges (LOG_FLUSH_SEC 0.5) a moment later
        return scrape()
    finally:
        server.stop()
