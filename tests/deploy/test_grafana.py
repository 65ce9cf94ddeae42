"""deploy/grafana: the dashboard parses, every query is valid PromQL naming metrics a
real server exports, and every panel uses the provisioned datasource."""

from __future__ import annotations

import json
import re

import pytest

from tests.deploy.conftest import DEPLOY, load_yaml
from tests.deploy.test_prometheus import metric_names

GRAFANA = DEPLOY / "grafana"
# Grafana's variables, replaced by what Grafana would send Prometheus.
VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$function": ".*"}
PROMETHEUS_OWN = {"up"}  # made by Prometheus for every target, not exported by Nimbus


def dashboard() -> dict:
    return json.loads((GRAFANA / "dashboards" / "nimbus.json").read_text())


def panels() -> list[dict]:
    return [p for p in dashboard()["panels"] if p["type"] != "row"]


def promql(expr: str) -> str:
    for variable, value in VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"unknown Grafana variable in {expr}"
    return expr


def unknown_metrics(dash: dict, exported: set[str]) -> dict[str, set[str]]:
    """Per panel title, the metric names its queries select that the server does not export."""
    found = {}
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            names = metric_names(promql(target["expr"])) - exported - PROMETHEUS_OWN
            if names:
                found[panel["title"]] = names
    return found


def test_every_query_names_a_metric_the_server_exports(exported_metrics):
    assert sum(len(p["targets"]) for p in panels()) >= 20
    assert unknown_metrics(dashboard(), exported_metrics) == {}
    query = dashboard()["templating"]["list"][1]["query"]["query"]
    assert re.fullmatch(r"label_values\((\w+), function\)", query)
    assert metric_names(query.split("(")[1].split(",")[0]) <= exported_metrics


def test_the_check_catches_a_metric_the_server_does_not_export(exported_metrics):
    dash = dashboard()
    dash["panels"][1]["targets"][0]["expr"] = "sum(rate(nimbus_invocation_total[5m]))"  # typo
    assert unknown_metrics(dash, exported_metrics) == {
        dash["panels"][1]["title"]: {"nimbus_invocation_total"}
    }
    dash["panels"][1]["targets"][0]["expr"] = "sum(rate(nimbus_invocations_total[5m])"
    with pytest.raises(ValueError):
        unknown_metrics(dash, exported_metrics)


def test_the_dashboard_shows_what_an_operator_asks_for():
    titles = {p["title"] for p in panels()}
    wanted = {
        "Invocations by function",
        "Errors by function",
        "Duration p50 / p99",
        "Cold starts",
        "Throttles",
        "Builds",
        "Async queue depth",
        "Sandbox slots",
        "Native containers",
    }
    assert wanted <= titles
    (duration,) = [p for p in panels() if p["title"] == "Duration p50 / p99"]
    assert [t["expr"].split(",")[0] for t in duration["targets"]] == [
        "histogram_quantile(0.5",
        "histogram_quantile(0.99",
    ]


def test_panels_use_the_provisioned_datasource_and_do_not_overlap():
    (datasource,) = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")[
        "datasources"
    ]
    dash = dashboard()
    variable = dash["templating"]["list"][0]
    assert (variable["name"], variable["type"]) == ("datasource", "datasource")
    assert variable["current"]["value"] == datasource["uid"]
    for panel in panels():
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert all(t["datasource"] == panel["datasource"] for t in panel["targets"])
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    cells = set()
    for panel in dash["panels"]:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24
        area = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & area, panel["title"]
        cells |= area
