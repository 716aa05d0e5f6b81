"""roles/supervision's Prometheus and Grafana files: the alert rules pass `promtool check rules` and their unit
tests (`promtool test rules`, Debian's prometheus package, .ci/apt-packages.txt); the rules read the threshold
metrics the role writes, with the same values check_rempart uses; the Grafana dashboard is valid JSON that a schema
of what Grafana provisions accepts, every panel's PromQL parses (promtool) and names only known metrics."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from plugins.filter.rempart_alerts import THRESHOLD_METRICS, rempart_alert_threshold_metrics, rempart_alerts

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "roles/supervision/files"
RULES = FILES / "prometheus/rempart-rules.yml"
RULE_TESTS = ROOT / "tests/prometheus/rempart-rules.test.yml"
DASHBOARD = FILES / "grafana/rempart-dashboard.json"
PROMTOOL = shutil.which("promtool")


def _promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL, "promtool missing: apt-get install prometheus (make host installs .ci/apt-packages.txt)"
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120, check=False)


def test_rules_pass_promtool_check():
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_unit_tests_pass():
    result = _promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_issue_16_condition_has_a_rule_and_a_test():
    rules = {r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]}
    tested = {
        case["alertname"]
        for group in yaml.safe_load(RULE_TESTS.read_text())["tests"]
        for case in group["alert_rule_test"]
    }
    wanted = {
        "RempartBackupOlderThanRPO", "RempartBackupJobFailed", "RempartPruneHold", "RempartBackupAnomaly",
        "RempartOffsiteLag", "RempartDrillStale", "RempartDrillFailed", "RempartOfflineCopyStale", "RempartQuotaNear",
        "RempartMetricsAbsent", "RempartExporterDown",
    }  # fmt: skip
    assert wanted <= rules
    assert rules == tested


def test_rules_read_only_threshold_metrics_the_role_writes():
    used = set(re.findall(r"rempart_alert_[a-z_]+", RULES.read_text()))
    assert used <= set(THRESHOLD_METRICS)


def test_threshold_metrics_agree_with_check_rempart(establishment_data):
    import check_rempart as check  # roles/supervision/files (pytest pythonpath)

    establishment_data["alerts"] = {
        "email": ["a@ch-lab.fr"],
        "smtp_relay": "smtp:25",
        "overrides": {"partages": {"backup_age_warning_ratio": 1.5, "backup_grace_minutes": 10}},
    }
    alerts = rempart_alerts(establishment_data)
    text = rempart_alert_threshold_metrics(alerts)
    values = {
        (m.group(1), m.group(2)): float(m.group(3))
        for m in re.finditer(r'^(\w+)\{dataset="([^"]+)",host="[^"]+"\} (\S+)$', text, re.MULTILINE)
    }
    metrics = check.Metrics(Path("/nonexistent"))
    metrics.samples["rempart_backup_last_success_timestamp_seconds"] = [({"dataset": "partages"}, 1000.0)]
    finding = check.check_backups("partages", alerts["datasets"]["partages"], metrics, 2000.0)
    perf = finding.perfdata[0]
    assert (
        perf.warning
        == values[("rempart_alert_backup_age_warning_seconds", "partages")]
        == 24 * 3600 * 1.5 + 600
    )
    assert (
        perf.critical == values[("rempart_alert_backup_age_critical_seconds", "partages")] == 48 * 3600 + 600
    )
    assert values[("rempart_alert_quota_warning_ratio", "dpi-postgresql")] == 0.8


# --------------------------------------------------------------------------- Grafana dashboard

_TARGET = {
    "type": "object",
    "required": ["refId", "expr", "datasource"],
    "properties": {
        "refId": {"type": "string", "pattern": "^[A-Z]$"},
        "expr": {"type": "string", "minLength": 1},
    },
}
DASHBOARD_SCHEMA = {
    "type": "object",
    "required": ["uid", "title", "schemaVersion", "panels", "templating", "time"],
    "properties": {
        "uid": {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,40}$"},
        "title": {"type": "string", "minLength": 1},
        "schemaVersion": {"type": "integer", "minimum": 30},
        "editable": {"type": "boolean"},
        "templating": {
            "type": "object",
            "required": ["list"],
            "properties": {
                "list": {"type": "array", "items": {"type": "object", "required": ["name", "type"]}}
            },
        },
        "panels": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "type", "title", "gridPos", "targets", "datasource"],
                "properties": {
                    "id": {"type": "integer", "minimum": 1},
                    "type": {"enum": ["stat", "timeseries", "bargauge", "table", "gauge"]},
                    "gridPos": {
                        "type": "object",
                        "required": ["h", "w", "x", "y"],
                        "properties": {
                            "h": {"type": "integer", "minimum": 1},
                            "w": {"type": "integer", "minimum": 1, "maximum": 24},
                            "x": {"type": "integer", "minimum": 0, "maximum": 23},
                            "y": {"type": "integer", "minimum": 0},
                        },
                    },
                    "targets": {"type": "array", "minItems": 1, "items": _TARGET},
                },
            },
        },
    },
}


@pytest.fixture(scope="module")
def dashboard() -> dict:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def test_dashboard_matches_the_schema(dashboard):
    jsonschema.validate(dashboard, DASHBOARD_SCHEMA)
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"
    for panel in dashboard["panels"]:
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24, panel["title"]
    variables = {v["name"] for v in dashboard["templating"]["list"]}
    used = set(re.findall(r"\$\{?(\w+)", DASHBOARD.read_text(encoding="utf-8")))
    assert used <= variables, f"undefined variables {used - variables}"


def test_dashboard_queries_parse_and_name_known_metrics(dashboard, tmp_path):
    known = set(re.findall(r"rempart_[a-z_]+", RULES.read_text())) | {
        "rempart_backup_duration_seconds",
        "rempart_backup_consecutive_failures",
    }
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert set(re.findall(r"rempart_[a-z_]+", " ".join(exprs))) <= known
    recording = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"rempart:dashboard_{i}", "expr": e.replace("$instance", ".*")}
                    for i, e in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump(recording), encoding="utf-8")
    result = _promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
