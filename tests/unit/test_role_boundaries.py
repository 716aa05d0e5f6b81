"""No role reads another role's variables (issue 20 item 1): each takes its own documented argument, which the plays
fill from the published plan or the inventory. Checked here for backup_server's variables, which offsite_copy,
restore_drill, backup_client, supervision, red_button and ransomware_drill used to read, and for the backup
service's admin command, which comes from the plan's server names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROLES = Path(__file__).resolve().parents[2] / "roles"
CODE_FOLDERS = ("defaults", "vars", "tasks", "handlers", "templates")


def code_lines(role: Path) -> list[tuple[str, int, str]]:
    """(file, line number, line without its YAML comment) of what the role evaluates."""
    found = []
    for folder in CODE_FOLDERS:
        for path in sorted((role / folder).rglob("*")):
            if path.suffix not in (".yml", ".j2") or not path.is_file():
                continue
            for number, line in enumerate(path.read_text().splitlines(), 1):
                code = re.sub(r"(^|\s)#.*$", "", line) if path.suffix == ".yml" else line
                found.append((str(path.relative_to(role.parent)), number, code))
    return found


OTHER_ROLES = sorted(p.name for p in ROLES.iterdir() if (p / "tasks").is_dir() and p.name != "backup_server")


@pytest.mark.parametrize("role", OTHER_ROLES)
def test_no_role_reads_the_backup_server_roles_variables(role: str) -> None:
    reads = [
        f"{file}:{number}: {match}"
        for file, number, code in code_lines(ROLES / role)
        for match in re.findall(r"\bbackup_server_[a-z0-9_]+", code)
    ]
    assert reads == []


def test_the_ransomware_drill_takes_the_admin_command_from_the_plan() -> None:
    names = [
        f"{file}:{number}"
        for file, number, code in code_lines(ROLES / "ransomware_drill")
        if "rempart-backup-admin" in code
    ]
    assert names == []
    defaults = (ROLES / "ransomware_drill/defaults/main.yml").read_text()
    assert ").server.admin_command }}" in defaults and "rempart.rempart.rempart_plan(" in defaults


def test_the_check_sees_a_read_in_code_and_not_in_a_comment(tmp_path: Path) -> None:
    (tmp_path / "defaults").mkdir()
    (tmp_path / "defaults/main.yml").write_text(
        '# backup_server_metrics_dir is not read here\nx: "{{ backup_server_address }}"  # backup_server_user\n'
    )
    assert [re.findall(r"\bbackup_server_[a-z0-9_]+", code) for _, _, code in code_lines(tmp_path)] == [
        [],
        ["backup_server_address"],
    ]


PLAN = "rempart_establishment_plan"
# (role, its argument, what playbooks/site.yml hands it): the published plan or the inventory, never a role's variable
SITE_PASSES = [
    ("backup_server", "backup_server_retention", f"{PLAN}.retention"),
    ("backup_client", "backup_client_server_address", "backup_server_address"),
    ("offsite_copy", "offsite_copy_retention_days", f"{PLAN}.offsite.retention_days"),
    ("offsite_copy", "offsite_copy_retention_cap_days", f"{PLAN}.offsite.retention_cap_days"),
    ("offsite_copy", "offsite_copy_metrics_dir", "backup_server_metrics_dir"),
    ("restore_drill", "restore_drill_metrics_dir", "backup_server_metrics_dir"),
    ("red_button", "red_button_server_address", "backup_server_address"),
    ("supervision", "supervision_quota_bytes", f"{PLAN}.quota_bytes"),
    ("supervision", "supervision_thresholds", f"{PLAN}.thresholds"),
    ("supervision", "supervision_admin_address", "backup_server_address"),
]


def test_site_yml_hands_the_plan_and_the_inventory_to_each_roles_own_arguments() -> None:
    plays = yaml.safe_load((ROLES.parent / "playbooks/site.yml").read_text())
    given = {
        role["role"]: role.get("vars", {})
        for play in plays
        for role in play.get("roles", [])
        if "role" in role
    }
    for role, argument, source in SITE_PASSES:
        assert source in given[f"rempart.rempart.{role}"].get(argument, ""), (role, argument)
