"""The rempart_files module, run for real by ansible-playbook on the control node against a temporary folder."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
SECRET = "s3cret-rempart-files-7f2e9a"


def converge(
    tmp_path: Path, files: list[dict], *options: str, absent: list[str] | None = None, umask: int = 0o022
) -> tuple[subprocess.CompletedProcess[str], dict]:
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "rempart_files",
                    "hosts": "localhost",
                    "gather_facts": False,
                    "tasks": [
                        {"name": "Ensure", "rempart.rempart.rempart_files": {"files": files, "absent": absent or []}, "register": "result"},
                        {"name": "Show", "ansible.builtin.copy": {"content": "{{ result | to_json }}",
                                                                  "dest": str(tmp_path / "result.json")}, "check_mode": False},
                    ],
                }
            ]
        )
    )  # fmt: skip
    env = {
        **os.environ,
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / "collections"),  # rempart.rempart: the repository itself
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_CALLBACK_RESULT_FORMAT": "json",
    }
    run = subprocess.run(
        [str(ROOT / ".venv/bin/ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", "ansible_python_interpreter=/usr/bin/python3", str(playbook), *options],
        capture_output=True, text=True, env=env, check=False, preexec_fn=lambda: os.umask(umask),
    )  # fmt: skip
    result = json.loads((tmp_path / "result.json").read_text()) if run.returncode == 0 else {}
    return run, result


@pytest.fixture
def wanted(tmp_path: Path) -> list[dict]:
    return [
        {"path": str(tmp_path / "etc"), "state": "directory", "mode": "0750"},
        {"path": str(tmp_path / "etc/a.timer"), "content": "[Timer]\nOnCalendar=daily\n", "mode": "0644"},
        {"path": str(tmp_path / "etc/secret.json"), "content": f'{{"password": "{SECRET}"}}\n', "mode": "0640",
         "group": "nogroup"},
    ]  # fmt: skip


def test_creates_then_changes_nothing(tmp_path, wanted):
    run, result = converge(tmp_path, wanted)
    assert run.returncode == 0, run.stdout[-2000:]
    assert result["changed"] and result["changed_paths"] == [w["path"] for w in wanted]
    assert stat.S_IMODE((tmp_path / "etc").stat().st_mode) == 0o750
    secret = tmp_path / "etc/secret.json"
    assert secret.read_text() == f'{{"password": "{SECRET}"}}\n'
    assert stat.S_IMODE(secret.stat().st_mode) == 0o640 and secret.stat().st_gid != 0
    again, result = converge(tmp_path, wanted)
    assert again.returncode == 0 and result["changed"] is False and result["changed_paths"] == []
    assert [p.name for p in (tmp_path / "etc").iterdir() if p.name.startswith(".")] == []  # no leftovers


def test_repairs_content_and_mode_only_where_they_drifted(tmp_path, wanted):
    converge(tmp_path, wanted)
    (tmp_path / "etc/a.timer").write_text("tampered\n")
    (tmp_path / "etc/secret.json").chmod(0o644)
    run, result = converge(tmp_path, wanted)
    assert run.returncode == 0
    assert result["changed_paths"] == [str(tmp_path / "etc/a.timer"), str(tmp_path / "etc/secret.json")]
    assert (tmp_path / "etc/a.timer").read_text() == "[Timer]\nOnCalendar=daily\n"
    assert stat.S_IMODE((tmp_path / "etc/secret.json").stat().st_mode) == 0o640


def test_check_mode_reports_without_writing(tmp_path, wanted):
    run, result = converge(tmp_path, wanted, "--check")
    assert run.returncode == 0 and result["changed"] is True
    assert not (tmp_path / "etc").exists()


def test_check_diff_shows_non_secret_changes_and_never_secret_content(tmp_path, wanted):
    wanted[2]["diff"] = False  # the secret entry, as roles/backup_server marks its secrets files
    run, result = converge(tmp_path, wanted, "--check", "--diff")
    assert run.returncode == 0 and not (tmp_path / "etc").exists()
    shown = result["diff"]["prepared"]
    assert f"{wanted[0]['path']}/: directory created root:root 0750" in shown
    assert "+OnCalendar=daily" in shown and "--- /dev/null" in shown
    assert f"{wanted[2]['path']}: content changed (not shown: secret)" in shown
    assert "+OnCalendar=daily" in run.stdout  # the default callback prints it
    assert SECRET not in run.stdout + run.stderr + json.dumps(result)
    converge(tmp_path, wanted)
    (tmp_path / "etc/a.timer").write_text("[Timer]\nOnCalendar=weekly\n")
    (tmp_path / "etc/secret.json").write_text("tampered\n")
    drift, result = converge(tmp_path, wanted, "--check", "--diff", absent=[str(tmp_path / "etc/*.list")])
    shown = result["diff"]["prepared"]
    assert "-OnCalendar=weekly\n+OnCalendar=daily" in shown and "tampered" not in shown
    assert SECRET not in drift.stdout + json.dumps(result)
    # check mode wrote nothing
    assert (tmp_path / "etc/a.timer").read_text() == "[Timer]\nOnCalendar=weekly\n"
    (tmp_path / "etc/vendor.list").write_text("deb file:/srv/vendor ./\n")
    converge(tmp_path, wanted)
    clean, result = converge(tmp_path, wanted, "--check", "--diff", absent=[str(tmp_path / "etc/*.list")])
    assert result["changed"] and result["diff"]["prepared"] == f"{tmp_path / 'etc/vendor.list'}: removed\n"
    converge(tmp_path, wanted, absent=[str(tmp_path / "etc/*.list")])
    clean, result = converge(tmp_path, wanted, "--check", "--diff")
    assert clean.returncode == 0 and result["changed"] is False and "diff" not in result


def test_check_mode_accepts_an_owner_an_earlier_task_would_create(tmp_path, wanted):
    entry = {**wanted[0], "owner": "no-such-user-rempart"}
    run, result = converge(tmp_path, [entry], "--check", "--diff")
    assert run.returncode == 0 and result["changed"], run.stdout[-2000:]
    assert "(owner not created yet)" in result["diff"]["prepared"]


def test_content_is_never_printed(tmp_path, wanted):
    run, _ = converge(tmp_path, wanted, "-v")
    assert run.returncode == 0
    assert SECRET not in run.stdout + run.stderr


def test_bad_entries_fail_naming_the_path(tmp_path, wanted):
    run, _ = converge(tmp_path, [{"path": "relative/x", "content": "some content\n", "mode": "0644"}])
    assert run.returncode != 0 and "'relative/x' is not an absolute path" in run.stdout
    run, _ = converge(tmp_path, [{**wanted[0], "owner": "no-such-user-rempart"}])
    assert run.returncode != 0 and f"files: {wanted[0]['path']}:" in run.stdout
    assert not (tmp_path / "etc").exists()


def test_absent_patterns_remove_the_others_and_keep_the_declared(tmp_path, wanted):
    folder = tmp_path / "etc"
    converge(tmp_path, wanted)
    for stray in ("debian.sources", "old.list"):
        (folder / stray).write_text("deb http://elsewhere/ ./\n")
    others = [
        str(folder / "*.sources"),
        str(folder / "*.timer"),
        str(folder / "*.list"),
        str(tmp_path / "gone"),
    ]
    check, result = converge(tmp_path, wanted, "--check", absent=others)
    assert check.returncode == 0 and (folder / "old.list").exists()
    assert result["changed_paths"] == [str(folder / "debian.sources"), str(folder / "old.list")]
    run, result = converge(tmp_path, wanted, absent=others)
    assert run.returncode == 0, run.stdout[-2000:]
    assert result["changed_paths"] == [str(folder / "debian.sources"), str(folder / "old.list")]
    assert sorted(p.name for p in folder.iterdir()) == ["a.timer", "secret.json"]
    again, result = converge(tmp_path, wanted, absent=others)
    assert again.returncode == 0 and result["changed"] is False
    (tmp_path / "other/sub").mkdir(parents=True)
    folder_refused, _ = converge(tmp_path, wanted, absent=[str(tmp_path / "other/*")])
    assert (
        folder_refused.returncode != 0 and "is a folder (absent removes files only)" in folder_refused.stdout
    )


def test_validate_keeps_the_live_file_when_the_command_refuses(tmp_path, wanted):
    checked = {**wanted[1], "validate": "grep -q ^OnCalendar= %s"}
    run, result = converge(tmp_path, [wanted[0], checked])
    assert run.returncode == 0 and result["changed_paths"] == [wanted[0]["path"], checked["path"]]
    refused, _ = converge(tmp_path, [wanted[0], {**checked, "content": "[Timer]\nBroken=yes\n"}])
    assert refused.returncode != 0
    assert f"files: {checked['path']}: refused by 'grep -q ^OnCalendar= %s'" in refused.stdout
    assert (tmp_path / "etc/a.timer").read_text() == checked["content"]
    assert [p.name for p in (tmp_path / "etc").iterdir() if p.name.startswith(".")] == []  # no leftovers
    earlier = {"path": str(tmp_path / "etc/earlier.conf"), "content": "x\n", "mode": "0644"}
    no_placeholder, _ = converge(tmp_path, [earlier, {**checked, "validate": "true"}])
    assert no_placeholder.returncode != 0 and "must contain %s" in no_placeholder.stdout
    assert not Path(earlier["path"]).exists()  # refused before any entry is written


def test_missing_parents_stay_traversable_under_a_hardened_umask(tmp_path):
    leaf = tmp_path / "var/lib/prometheus/node-exporter"
    run, _ = converge(tmp_path, [{"path": str(leaf), "state": "directory", "mode": "0750"}], umask=0o027)
    assert run.returncode == 0, run.stdout[-2000:]
    assert stat.S_IMODE((tmp_path / "var/lib/prometheus").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "var").stat().st_mode) == 0o755
    assert stat.S_IMODE(leaf.stat().st_mode) == 0o750
