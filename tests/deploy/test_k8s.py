"""deploy/k8s: the plain manifests against Kubernetes' own schemas (kubernetes-validate,
strict), the Knative Service by explicit asserts and its pod spec against the core
PodSpec schema, and how the pieces refer to each other."""

from __future__ import annotations

import copy
import re

import kubernetes_validate
import pytest

from gateway.settings import Settings
from tests.deploy.conftest import BOTO_VARIABLES, DEPLOY, load_all_yaml, load_yaml

K8S = DEPLOY / "k8s"
KUBERNETES = "1.30"  # oldest release still common in clusters; the fields used are older
# Fields of Knative's RevisionSpec that a core PodSpec does not have.
KNATIVE_ONLY = {"containerConcurrency", "timeoutSeconds", "responseStartTimeoutSeconds",
                "idleTimeoutSeconds"}  # fmt: skip
# What Knative Serving keeps of a revision's pod spec, container and container
# securityContext with its feature flags at their defaults (pkg/apis/serving/fieldmask.go,
# 2026): anything else is refused, procMount and hostUsers among them.
KNATIVE_POD_FIELDS = {
    "serviceAccountName",
    "containers",
    "volumes",
    "imagePullSecrets",
    "enableServiceLinks",
    "automountServiceAccountToken",
} | KNATIVE_ONLY
KNATIVE_CONTAINER_FIELDS = {"name", "args", "command", "env", "workingDir", "envFrom", "image",
                            "imagePullPolicy", "livenessProbe", "ports", "readinessProbe",
                            "resources", "securityContext", "startupProbe",
                            "terminationMessagePath", "terminationMessagePolicy",
                            "volumeMounts"}  # fmt: skip
KNATIVE_CONTAINER_SECURITY = {"capabilities", "readOnlyRootFilesystem", "runAsUser",
                              "runAsGroup", "runAsNonRoot", "allowPrivilegeEscalation",
                              "seccompProfile", "privileged"}  # fmt: skip
# On scale-down Knative's queue-proxy waits this long without new requests before the
# user container gets SIGTERM (drainSleepDuration in knative/serving's queue).
KNATIVE_DRAIN_QUIET_SEC = 30
# What a worker needs after its calls in flight: hand back async work, flush, exit.
HAND_BACK_SEC = 30


def base() -> dict[str, dict]:
    """The base's resources by kind, as kustomize would list them."""
    kustomization = load_yaml(K8S / "base" / "kustomization.yaml")
    docs = [
        doc for name in kustomization["resources"] for doc in load_all_yaml(K8S / "base" / name)
    ]
    by_kind = {doc["kind"]: doc for doc in docs}
    assert len(by_kind) == len(docs)
    return by_kind


def knative() -> dict:
    return load_yaml(K8S / "knative" / "service.yaml")


def knative_worker() -> dict:
    return load_yaml(K8S / "knative" / "worker.yaml")


def env_of(nimbus: dict) -> dict[str, str | None]:
    return {e["name"]: e.get("value") for e in nimbus["env"]}


def container(pod_spec: dict) -> dict:
    (only,) = pod_spec["containers"]
    return only


def as_pod(pod_spec: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "nimbus"}, "spec": pod_spec}


def test_kustomization_lists_every_manifest_of_the_base():
    listed = set(load_yaml(K8S / "base" / "kustomization.yaml")["resources"])
    present = {p.name for p in (K8S / "base").glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == present
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "ConfigMap"} <= set(base())


@pytest.mark.parametrize("kind", ["Deployment", "Service", "HorizontalPodAutoscaler",
                                  "ConfigMap", "PodDisruptionBudget"])  # fmt: skip
def test_manifest_is_valid_against_the_kubernetes_schema(kind):
    kubernetes_validate.validate(base()[kind], KUBERNETES, strict=True)


def test_the_schema_check_catches_a_misspelt_field():
    deployment = copy.deepcopy(base()["Deployment"])
    pod = deployment["spec"]["template"]["spec"]
    pod["containers"][0]["readinesProbe"] = pod["containers"][0].pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(deployment, KUBERNETES, strict=True)


def test_service_hpa_and_budget_point_at_the_deployment():
    resources = base()
    deployment, service = resources["Deployment"], resources["Service"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["selector"].items() <= labels.items()
    assert resources["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= (
        labels.items()
    )
    nimbus = container(deployment["spec"]["template"]["spec"])
    ports = {p["name"]: p["containerPort"] for p in nimbus["ports"]}
    assert service["spec"]["ports"][0]["targetPort"] in ports and ports["http"] == 8080
    target = resources["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    # CPU utilisation is a share of the request: without one the HPA cannot scale.
    assert nimbus["resources"]["requests"]["cpu"]
    assert resources["HorizontalPodAutoscaler"]["spec"]["minReplicas"] >= 2


def test_deployment_probes_and_configuration():
    resources = base()
    nimbus = container(resources["Deployment"]["spec"]["template"]["spec"])
    assert nimbus["readinessProbe"]["httpGet"]["path"] == "/ready"  # the store answers
    # A store outage must not restart every pod: liveness asks the process only.
    assert nimbus["livenessProbe"]["httpGet"]["path"] == "/health"
    sources = {next(iter(s)): s[next(iter(s))]["name"] for s in nimbus["envFrom"]}
    assert sources["configMapRef"] == resources["ConfigMap"]["metadata"]["name"]
    names = set(resources["ConfigMap"]["data"]) | {e["name"] for e in nimbus["env"]}
    assert {n.lower() for n in names} <= set(Settings.model_fields)
    assert resources["ConfigMap"]["data"]["NIMBUS_STORE"].startswith("s3://")
    grace = resources["Deployment"]["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert grace > Settings.model_fields["max_timeout_sec"].default  # drains the longest call


def test_knative_service_scales_to_zero_with_concurrency_matched_to_the_slots():
    service = knative()
    assert (service["apiVersion"], service["kind"]) == ("serving.knative.dev/v1", "Service")
    template = service["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["autoscaling.knative.dev/min-scale"] == "0"
    assert int(annotations["autoscaling.knative.dev/max-scale"]) >= 1
    spec = template["spec"]
    nimbus = container(spec)
    env = {e["name"]: e.get("value") for e in nimbus["env"]}
    # One pod never gets more calls than its workers have sandbox slots.
    slots = int(env["WORKERS"]) * int(env["MAX_CONCURRENT"])
    assert spec["containerConcurrency"] == slots
    assert spec["timeoutSeconds"] >= Settings.model_fields["max_timeout_sec"].default
    assert spec["timeoutSeconds"] <= 600  # Knative's default max-revision-timeout-seconds
    (port,) = nimbus["ports"]
    assert port["containerPort"] == 8080 and port["name"] in ("http1", "h2c")
    probe = nimbus["readinessProbe"]["httpGet"]
    assert probe["path"] == "/ready" and probe.get("port", port["containerPort"]) == 8080
    assert "PORT" not in env  # Knative sets it; a user value is refused
    assert {n.lower() for n in env} - {v.lower() for v in BOTO_VARIABLES} <= set(
        Settings.model_fields
    )
    secret_refs = {e["name"] for e in nimbus["env"] if "valueFrom" in e}
    assert secret_refs == {"NIMBUS_API_KEY", *BOTO_VARIABLES}


def test_deployment_and_knative_worker_are_valid_against_the_kubernetes_schema():
    for manifest in (base()["Deployment"], knative_worker()):
        kubernetes_validate.validate(manifest, KUBERNETES, strict=True)


@pytest.mark.parametrize("where", ["deployment", "knative worker"])
def test_pods_that_build_let_the_build_jail_make_its_namespaces_and_proc(where):
    """bubblewrap needs unshare(CLONE_NEWUSER) (seccomp), a mount (AppArmor) and a fresh
    /proc over an unmasked one; Kubernetes accepts procMount: Unmasked only in a pod user
    namespace (hostUsers: false), a rule its schema does not carry."""
    manifest = base()["Deployment"] if where == "deployment" else knative_worker()
    pod = manifest["spec"]["template"]["spec"]
    nimbus = container(pod)
    assert env_of(nimbus).get("BUILD_CONCURRENCY", "1") != "0"  # this pod builds
    security = nimbus["securityContext"]
    assert security["seccompProfile"] == {"type": "Unconfined"}
    assert security["appArmorProfile"] == {"type": "Unconfined"}
    assert security["procMount"] == "Unmasked"
    assert pod["hostUsers"] is False
    # Nothing else is relaxed: no root, no escalation, no capabilities.
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert "privileged" not in security


def test_knative_uses_only_fields_knative_accepts_and_leaves_builds_to_its_worker():
    spec = knative()["spec"]["template"]["spec"]
    assert set(spec) <= KNATIVE_POD_FIELDS
    nimbus = container(spec)
    assert set(nimbus) <= KNATIVE_CONTAINER_FIELDS
    assert set(nimbus["securityContext"]) <= KNATIVE_CONTAINER_SECURITY
    assert nimbus["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # Without procMount the jail cannot start here: these pods build nothing ...
    assert env_of(nimbus)["BUILD_CONCURRENCY"] == "0"
    # ... and the worker, on the same store with the same secrets, builds.
    worker = container(knative_worker()["spec"]["template"]["spec"])
    assert int(env_of(worker)["BUILD_CONCURRENCY"]) >= 1
    store_vars = {"NIMBUS_STORE", "S3_ENDPOINT_URL", "AWS_REGION"}
    assert {k: v for k, v in env_of(worker).items() if k in store_vars} == {
        k: v for k, v in env_of(nimbus).items() if k in store_vars
    }
    secrets = {e["name"]: e["valueFrom"] for e in nimbus["env"] if "valueFrom" in e}
    assert {e["name"]: e["valueFrom"] for e in worker["env"] if "valueFrom" in e} == secrets
    assert {n.lower() for n in env_of(worker)} - {v.lower() for v in BOTO_VARIABLES} <= set(
        Settings.model_fields
    )
    assert worker["readinessProbe"]["httpGet"]["path"] == "/ready"


def graceful_sec(nimbus: dict) -> float:
    return float(env_of(nimbus)["GRACEFUL_TIMEOUT_SEC"])


@pytest.mark.parametrize("where", ["deployment", "knative worker"])
def test_the_grace_period_covers_the_longest_call_and_the_hand_back(where):
    manifest = base()["Deployment"] if where == "deployment" else knative_worker()
    pod = manifest["spec"]["template"]["spec"]
    graceful = graceful_sec(container(pod))
    assert graceful >= Settings.model_fields["max_timeout_sec"].default  # calls in flight
    assert pod["terminationGracePeriodSeconds"] >= graceful + HAND_BACK_SEC


def test_knative_drain_fits_its_termination_grace_period():
    """Knative makes the pod's grace period its timeoutSeconds; the queue-proxy's quiet
    period comes before Nimbus's SIGTERM, then GRACEFUL_TIMEOUT_SEC and the hand-back."""
    spec = knative()["spec"]["template"]["spec"]
    graceful = graceful_sec(container(spec))
    assert graceful >= Settings.model_fields["max_timeout_sec"].default
    assert spec["timeoutSeconds"] >= KNATIVE_DRAIN_QUIET_SEC + graceful + HAND_BACK_SEC
    assert spec["timeoutSeconds"] <= 600  # Knative's default max-revision-timeout-seconds


def test_knative_pod_spec_is_a_valid_pod_spec():
    spec = {k: v for k, v in knative()["spec"]["template"]["spec"].items() if k not in KNATIVE_ONLY}
    kubernetes_validate.validate(as_pod(spec), KUBERNETES, strict=True)
    spec["containers"][0]["readinessProbe"]["httpGet"]["path"] = 7
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(as_pod(spec), KUBERNETES, strict=True)


def test_manifests_agree_with_the_image():
    """The port and data folder the Containerfile gives the server are what the pods
    expose, probe and mount."""
    image = (DEPLOY.parent / "Containerfile").read_text()
    port = int(re.search(r"\bPORT=(\d+)", image).group(1))
    data_dir = re.search(r"\bDATA_DIR=(\S+)", image).group(1)
    assert re.search(rf"^EXPOSE {port}\b", image, re.M)
    for pod in (
        base()["Deployment"]["spec"]["template"]["spec"],
        knative()["spec"]["template"]["spec"],
        knative_worker()["spec"]["template"]["spec"],
    ):
        nimbus = container(pod)
        assert [p["containerPort"] for p in nimbus["ports"]] == [port]
        env = {e["name"]: e.get("value") for e in nimbus["env"]}
        assert env.get("PORT", str(port)) == str(port)
        assert env.get("DATA_DIR", data_dir) == data_dir
        assert [m["mountPath"] for m in nimbus["volumeMounts"]] == [data_dir]
