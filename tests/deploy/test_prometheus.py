"""deploy/prometheus: promtool's checks, the alert rules' own unit tests, and the
rules' burn-rate windows and metric names against what the server exports."""

from __future__ import annotations

import re
import subprocess

import promql_parser

from tests.deploy.conftest import DEPLOY, load_yaml, tool

PROMETHEUS = DEPLOY / "prometheus"


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [tool("promtool"), *args], cwd=PROMETHEUS, capture_output=True, text=True, timeout=120
    )


def metric_names(expr: str) -> set[str]:
    """Every series name a PromQL expression selects (a syntax error raises)."""
    names: set[str] = set()

    def visit(node) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            names.add(node.name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def rules() -> list[dict]:
    return [
        rule for group in load_yaml(PROMETHEUS / "alerts.yml")["groups"] for rule in group["rules"]
    ]


def test_promtool_checks_the_config_and_its_rule_files():
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "alerts.yml" in result.stdout


def test_promtool_checks_the_rules():
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alerts_fire_and_stay_quiet_as_their_unit_tests_say():
    """deploy/prometheus/alerts_test.yml: 5 % throttled pages (platform), 20 % function
    errors page for that function only, 0.05 % stays quiet, replica down, queue backlog."""
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rejects_a_broken_rule(tmp_path):
    """The check above can fail: a rule with a PromQL syntax error."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "groups:\n- name: x\n  rules:\n  - alert: X\n"
        "    expr: sum(rate(nimbus_invocations_total[5m])\n"  # one ) short
    )
    assert promtool("check", "rules", str(broken)).returncode != 0


def test_burn_rate_alerts_use_14_4x_over_1h_5m_and_6x_over_6h_30m():
    recorded = {r["record"]: r["expr"] for r in rules() if "record" in r}
    alerts = {r["alert"]: r for r in rules() if "alert" in r}
    expected = {
        "NimbusErrorBudgetBurnFast": ("page", "14.4", "0.001", "1h", "5m"),
        "NimbusErrorBudgetBurnSlow": ("ticket", "6", "0.001", "6h", "30m"),
        "NimbusFunctionErrorBudgetBurnFast": ("page", "14.4", "0.01", "1h", "5m"),
        "NimbusFunctionErrorBudgetBurnSlow": ("ticket", "6", "0.01", "6h", "30m"),
    }
    for name, (severity, factor, budget, long, short) in expected.items():
        alert = alerts[name]
        assert alert["labels"]["severity"] == severity
        used = metric_names(alert["expr"])
        windows = {re.search(r"ratio_rate(\w+)$", m).group(1) for m in used}
        assert windows == {long, short}, name
        assert alert["expr"].count(f"({factor} * {budget})") == 2, name
        for series in used:  # each window's ratio really is over that window
            assert f"[{series.rsplit('rate', 1)[1]}]" in recorded[series]


def test_rules_name_only_metrics_the_server_exports(exported_metrics):
    recorded = {r["record"] for r in rules() if "record" in r}
    prometheus_own = {"up"}  # made by Prometheus for every target
    for rule in rules():
        unknown = metric_names(rule["expr"]) - exported_metrics - recorded - prometheus_own
        assert not unknown, f"{rule.get('alert') or rule.get('record')} names {unknown}"
