"""deploy/compose.yaml through `docker compose config` (Compose v2), and what a
well-formed file would not guarantee: the store's settings and bucket reach every
replica, the proxy and Prometheus reach every replica, Grafana loads the dashboard."""

from __future__ import annotations

import copy
import re
import shlex
import subprocess
from pathlib import Path
from string import Template
from urllib.parse import urlparse

import boto3
import pytest
from botocore.config import Config

from gateway.settings import Settings
from store import open_store, probe_conditional_writes
from tests.deploy.conftest import (
    BOTO_VARIABLES,
    BUILD_JAIL_SECURITY_OPTS,
    COMPOSE_SECRETS,
    DEPLOY,
    compose_config,
    load_yaml,
    tool,
)
from tests.s3servers import seaweedfs_server

NIMBUS_PORT = 8080  # the image's PORT (Containerfile)


@pytest.fixture(scope="module")
def config() -> dict:
    return compose_config({**COMPOSE_SECRETS, "NIMBUS_BUCKET": "team-functions"})


def mounts(service: dict) -> dict[str, Path]:
    """Container path → host path of a service's bind mounts."""
    return {
        m["target"]: Path(m["source"]) for m in service.get("volumes", []) if m["type"] == "bind"
    }


def shell_words(service: dict) -> list[str]:
    """The init step's shell script as words, with its environment expanded."""
    script = " ".join(service["command"]).replace("$$", "$")  # Compose's escape for a literal $
    return shlex.split(Template(script).substitute(service["environment"]))


def init_bucket(config: dict) -> str:
    words = shell_words(config["services"]["bucket"])
    target = words[words.index("mb") + 1 :]
    target = next(w for w in target if not w.startswith("-"))
    alias, _, bucket = target.partition("/")
    assert alias == words[words.index("alias") + 2]  # the alias it just set
    return bucket


def replica_settings(config: dict, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The settings a replica starts with: Nimbus's own parser over its environment."""
    for name, value in config["services"]["nimbus"]["environment"].items():
        monkeypatch.setenv(name, value)
    return Settings()


def store_problems(config: dict) -> list[str]:
    """Where the replicas' view of the store disagrees with the store and the init step."""
    services = config["services"]
    env = services["nimbus"]["environment"]
    problems = []
    unknown = {k for k in env if k.lower() not in Settings.model_fields} - BOTO_VARIABLES
    if unknown:
        problems.append(f"Nimbus reads no variable named {sorted(unknown)}")
    if services["nimbus"].get("deploy", {}).get("replicas", 1) < 2:
        problems.append("fewer than 2 replicas")
    store = urlparse(env.get("NIMBUS_STORE", ""))
    if store.scheme != "s3" or store.netloc != init_bucket(config):
        problems.append(f"NIMBUS_STORE {env.get('NIMBUS_STORE')} is not the init step's bucket")
    endpoint = urlparse(env.get("S3_ENDPOINT_URL", ""))
    minio = services["minio"]
    if endpoint.hostname != "minio" or endpoint.port != 9000 or "--address" in minio["command"]:
        problems.append(f"S3_ENDPOINT_URL {endpoint.geturl()} is not MinIO's S3 port")
    root = (minio["environment"]["MINIO_ROOT_USER"], minio["environment"]["MINIO_ROOT_PASSWORD"])
    if (env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")) != root:
        problems.append("the replicas' S3 keys are not MinIO's")
    words = shell_words(services["bucket"])
    at = words.index("alias") + 3  # mc alias set NAME URL KEY SECRET
    if words[at : at + 3] != [env.get("S3_ENDPOINT_URL"), *root]:
        problems.append(f"the init step talks to {words[at]} or with other keys")
    return problems


# -- the file as Compose reads it ------------------------------------------------------


def test_compose_v2_accepts_the_file(config):
    assert set(config["services"]) == {
        "minio",
        "bucket",
        "nimbus",
        "proxy",
        "prometheus",
        "grafana",
    }
    assert config["services"]["minio"]["image"].startswith("quay.io/minio/minio:RELEASE.")


def test_secrets_are_required_and_listed_in_the_example_env():
    required = set(re.findall(r"\$\{(\w+):\?", (DEPLOY / "compose.yaml").read_text()))
    assert required == set(COMPOSE_SECRETS)
    example = dict(
        line.split("=", 1)
        for line in (DEPLOY / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert required <= set(example)
    for missing in required:
        with pytest.raises(AssertionError, match=missing):
            compose_config({k: v for k, v in COMPOSE_SECRETS.items() if k != missing})


def test_ports_are_published_on_loopback_only_by_default(config):
    published = [p for s in config["services"].values() for p in s.get("ports", [])]
    assert published and {p["host_ip"] for p in published} == {"127.0.0.1"}
    assert "ports" not in config["services"]["nimbus"]  # only through the proxy


# -- the store --------------------------------------------------------------------------


def test_store_settings_and_bucket_reach_every_replica(config, monkeypatch):
    assert store_problems(config) == []
    assert init_bucket(config) == "team-functions"  # NIMBUS_BUCKET reached the init step
    settings = replica_settings(config, monkeypatch)
    store = open_store(settings.nimbus_store, endpoint_url=settings.s3_endpoint_url)
    assert (store.bucket, store.endpoint_url) == ("team-functions", "http://minio:9000")
    assert settings.nimbus_api_key == COMPOSE_SECRETS["NIMBUS_API_KEY"]
    assert settings.max_concurrent == 10 and settings.workers == 2


def test_replicas_can_build_and_refuse_a_store_without_conditional_writes(config, monkeypatch):
    # The options tests/deploy/test_image.py builds JavaScript with in a container.
    assert config["services"]["nimbus"]["security_opt"] == list(BUILD_JAIL_SECURITY_OPTS)
    settings = replica_settings(config, monkeypatch)
    assert settings.build_concurrency >= 1
    assert settings.store_without_conditional_writes == "refuse"


def seconds(duration: str) -> float:
    """A Compose duration as `config` writes it ("5m30s", "10s") in seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)([hms])", duration))


def test_stopping_a_replica_lets_the_longest_call_finish(config, monkeypatch):
    settings = replica_settings(config, monkeypatch)
    assert settings.graceful_timeout_sec >= Settings.model_fields["max_timeout_sec"].default
    # Docker kills a container this long after SIGTERM (default 10 s): past the drain.
    grace = seconds(config["services"]["nimbus"].get("stop_grace_period", "10s"))
    assert grace >= settings.graceful_timeout_sec + 30


def test_order_minio_then_bucket_then_replicas(config):
    services = config["services"]
    assert services["bucket"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert services["nimbus"]["depends_on"]["bucket"]["condition"] == (
        "service_completed_successfully"
    )
    assert services["bucket"]["restart"] == "no"


def test_the_store_check_catches_a_mismatch(config):
    """The check above can fail: a bucket, endpoint, key or variable name gone astray."""
    cases = {
        "init step's bucket": lambda c: c["services"]["bucket"]["environment"].update(
            NIMBUS_BUCKET="other"
        ),
        "MinIO's S3 port": lambda c: c["services"]["nimbus"]["environment"].update(
            S3_ENDPOINT_URL="http://minio:9001"
        ),
        "are not MinIO's": lambda c: c["services"]["nimbus"]["environment"].update(
            AWS_SECRET_ACCESS_KEY="typo"
        ),
        "reads no variable": lambda c: c["services"]["nimbus"]["environment"].update(
            S3_ENDPOINT="http://minio:9000"
        ),
        "fewer than 2": lambda c: c["services"]["nimbus"]["deploy"].update(replicas=1),
        "the init step talks": lambda c: c["services"]["bucket"]["environment"].update(
            S3_ENDPOINT_URL="http://localhost:9000"
        ),
    }
    for problem, mutate in cases.items():
        broken = copy.deepcopy(config)
        mutate(broken)
        assert any(problem in p for p in store_problems(broken)), problem


def test_replica_settings_open_a_store_that_enforces_conditional_writes(
    config, monkeypatch, tmp_path
):
    """The replicas' keys and bucket on a real S3 server standing in for MinIO: the init
    step's bucket takes the writes Nimbus's leases need (If-None-Match, If-Match)."""
    env = config["services"]["nimbus"]["environment"]
    with seaweedfs_server(
        tmp_path, access_key=env["AWS_ACCESS_KEY_ID"], secret_key=env["AWS_SECRET_ACCESS_KEY"]
    ) as server:
        monkeypatch.setitem(env, "S3_ENDPOINT_URL", server.endpoint_url)
        settings = replica_settings(config, monkeypatch)
        boto3.client(  # what `mc mb` does
            "s3",
            endpoint_url=server.endpoint_url,
            region_name=settings.aws_region,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            config=Config(s3={"addressing_style": "path"}),
        ).create_bucket(Bucket=init_bucket(config))
        store = open_store(
            settings.nimbus_store, endpoint_url=settings.s3_endpoint_url, region=settings.aws_region
        )
        assert probe_conditional_writes(store)
        store.put("hello", b"world")
        assert store.get("hello").data == b"world"


# -- proxy, Prometheus, Grafana ---------------------------------------------------------


def nginx_test(server_conf: Path, prefix: Path) -> subprocess.CompletedProcess:
    """`nginx -t` of a server block, included as the image's nginx.conf does conf.d/."""
    prefix.mkdir(exist_ok=True)
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = prefix / "nginx.conf"
    main.write_text(
        f"pid {prefix / 'nginx.pid'};\nevents {{}}\n"
        f"http {{\n    access_log off;\n{temp}\n    include {server_conf};\n}}\n"
    )
    return subprocess.run(
        [tool("nginx"), "-t", "-e", "stderr", "-p", str(prefix), "-c", str(main)],
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_nginx_accepts_the_proxy_config(config, tmp_path):
    conf = mounts(config["services"]["proxy"])["/etc/nginx/conf.d/default.conf"]
    result = nginx_test(conf, tmp_path / "good")
    assert result.returncode == 0, result.stderr
    broken = tmp_path / "broken.conf"  # the check can fail: a misspelt directive
    broken.write_text(conf.read_text().replace("proxy_pass $nimbus;", "proxy_pas $nimbus;"))
    result = nginx_test(broken, tmp_path / "bad")
    assert result.returncode != 0 and "proxy_pas" in result.stderr


def test_proxy_round_robins_over_the_replicas(config):
    proxy = config["services"]["proxy"]
    conf = mounts(proxy)["/etc/nginx/conf.d/default.conf"].read_text()
    upstream = re.search(r"set \$nimbus (\S+);", conf).group(1)
    assert re.search(r"proxy_pass \$nimbus;", conf)
    assert urlparse(upstream).hostname == "nimbus" and urlparse(upstream).port == NIMBUS_PORT
    assert str(NIMBUS_PORT) in config["services"]["nimbus"]["expose"]
    assert "resolver 127.0.0.11" in conf  # Docker's DNS: every replica's address, re-resolved
    assert [p["target"] for p in proxy["ports"]] == [8080]
    assert "listen 8080;" in conf


def test_prometheus_scrapes_every_replica(config):
    prometheus = config["services"]["prometheus"]
    files = mounts(prometheus)
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    scrape = load_yaml(files["/etc/prometheus/prometheus.yml"])
    for rule_file in scrape["rule_files"]:
        assert f"/etc/prometheus/{rule_file}" in files  # mounted beside the config
    (job,) = [j for j in scrape["scrape_configs"] if j["job_name"] == "nimbus"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    (sd,) = job["dns_sd_configs"]
    # One A record per replica of the service: every replica, however many.
    assert (sd["names"], sd["type"], sd["port"]) == (["nimbus"], "A", NIMBUS_PORT)


def test_grafana_provisions_the_datasource_and_the_dashboard(config):
    grafana = config["services"]["grafana"]
    files = mounts(grafana)
    provisioning = files["/etc/grafana/provisioning"]
    (provider,) = load_yaml(provisioning / "dashboards" / "nimbus.yml")["providers"]
    dashboards_dir = files[provider["options"]["path"]]
    assert (dashboards_dir / "nimbus.json").is_file()
    home = grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert Path(home).parent.as_posix() == provider["options"]["path"]
    (datasource,) = load_yaml(provisioning / "datasources" / "prometheus.yml")["datasources"]
    url = urlparse(datasource["url"])
    assert (datasource["type"], url.hostname, url.port) == ("prometheus", "prometheus", 9090)
    assert "prometheus" in config["services"]
