"""offsite_copy, restore_drill and red_button on a GHT: one instance per establishment's view, names unchanged for a
single establishment; one establishment's bucket or writer key on another's view is refused (controller only)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from ght_harness import GHT_LAB
from test_ght_playbooks import FINESS, PROJECT, run_playbook

VIEWS = {"ch_nord": "mg-backup-01-nord", "ch_centre": "mg-backup-01-centre", "ch_sud": "mg-backup-01-sud"}
PORTS = {"ch_nord": 8441, "ch_centre": 8442, "ch_sud": 8443}
CLIENTS = {"ch_nord": "10.89.69.21", "ch_centre": "10.89.69.22", "ch_sud": "10.89.69.23"}
PLAYBOOK = Path(__file__).with_name("role_names.yml")


def offsite_outputs(finess: str, bucket: str | None = None, key: str | None = None) -> dict:
    bucket = bucket or f"rempart-{finess}-offsite"
    return {
        "offsite_bucket": bucket,
        "offsite_region": "eu-west-3",
        "offsite_retention_days": 30,
        "offsite_restic_repositories": {"partages": f"s3:s3.eu-west-3.amazonaws.com/{bucket}/partages"},
        "offsite_writer_access_key_id": key or f"AKIA{finess}",
        "vault_offsite_writer_secret_access_key": f"secret-of-{finess}",
    }


def with_offsite(folder: Path, outputs: dict[str, dict]) -> Path:
    """Each establishment's offsite outputs in its own group_vars (as `rempart offsite-outputs` writes them)."""
    for group, values in outputs.items():
        (folder / "group_vars" / group / "offsite_outputs.yml").write_text(yaml.safe_dump(values))
    return folder


def names(inventory: Path, out: Path) -> dict[str, dict]:
    out.mkdir()
    result = run_playbook(inventory, str(PLAYBOOK), "-e", f"names_dir={out}")
    assert result.returncode == 0, result.stdout + result.stderr
    return {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}


def test_each_view_gets_its_own_instance_of_the_three_roles(ght: Path, tmp_path: Path) -> None:
    inventory = with_offsite(ght, {g: offsite_outputs(f) for g, f in FINESS.items()})
    found = names(inventory, tmp_path / "names")
    assert set(found) == set(VIEWS.values())
    for group, finess in FINESS.items():
        view = found[VIEWS[group]]
        offsite, drill, button = view["offsite_copy"], view["restore_drill"], view["red_button"]
        assert offsite == {
            "unit": f"rempart-offsite-copy-{finess}",
            "user": f"rempart-{finess}",
            "config_file": f"/etc/rempart-{finess}/offsite-copy.json",
            "writer_env": f"/etc/rempart-{finess}/offsite/writer.env",
            "state_dir": f"/var/lib/rempart-offsite-{finess}",
            "repos_dir": f"/srv/rempart-{finess}/repos",
            "local_secrets_dir": f"/etc/rempart-{finess}/secrets",
            "server_state_dir": f"/var/lib/rempart-{finess}",
            "metrics_dir": f"/var/lib/prometheus/node-exporter/rempart-{finess}",
            "bucket": f"rempart-{finess}-offsite",  # its own group_vars: its own stack's bucket and writer key
            "writer_access_key_id": f"AKIA{finess}",
            "repositories": {"partages": f"s3:s3.eu-west-3.amazonaws.com/rempart-{finess}-offsite/partages"},
        }
        assert drill == {
            "unit": f"rempart-drill-{finess}",
            "user": f"rempart-{finess}",
            "server_config": f"/etc/rempart-{finess}/backup-server.json",
            "config_file": f"/etc/rempart-{finess}/restore-drill.json",
            "repos_dir": f"/srv/rempart-{finess}/repos",
            "server_state_dir": f"/var/lib/rempart-{finess}",
            "state_dir": f"/var/lib/rempart-drill-{finess}",
            "metrics_dir": f"/var/lib/prometheus/node-exporter/rempart-{finess}",
            "finess": finess,
        }
        assert button == {
            "unit": f"rempart-red-button-{finess}.service",
            "table": f"rempart_red_button_{finess}",
            "flag": f"/etc/rempart-{finess}/red-button.json",
            "htpasswd": f"/etc/rempart-{finess}/rest-server.htpasswd",
            "rest_port": PORTS[group],
            "guarded_units": [
                f"rempart-backup-{finess}@.service",
                f"rempart-retention-{finess}@.service",
                f"rempart-rest-server-{finess}.service",
            ],
            "timers": [
                f"rempart-backup-{finess}-partages.timer",
                f"rempart-retention-{finess}-partages.timer",
            ],
            "client_addresses": [CLIENTS[group]],
        }
        # the view's ruleset drops its own clients and its own user only, and lets the rest of the server run
        ruleset = (tmp_path / "names" / f"{VIEWS[group]}.nft").read_text()
        assert "policy accept;" in ruleset and "policy drop;" not in ruleset
        assert f'meta skuid "rempart-{finess}" drop' in ruleset
        assert f"ip saddr {CLIENTS[group]} drop" in ruleset and f"ip daddr {CLIENTS[group]} drop" in ruleset
        assert f"tcp dport {PORTS[group]} drop" in ruleset
        others = [a for g, a in CLIENTS.items() if g != group] + [
            f"rempart-{f}" for f in FINESS.values() if f != finess
        ]
        assert not [o for o in others if o in ruleset]


def test_a_single_establishment_keeps_its_names(tmp_path: Path) -> None:
    folder = tmp_path / "single"
    (folder / "group_vars" / "all").mkdir(parents=True)
    shutil.copy(GHT_LAB / "group_vars/all/lab.yml", folder / "group_vars/all/lab.yml")
    shutil.copy(GHT_LAB / "group_vars/ch_nord/establishment.yml", folder / "group_vars/all/establishment.yml")
    shutil.copy(GHT_LAB / "group_vars/ch_nord/vault.yml", folder / "group_vars/all/vault.yml")
    (folder / "group_vars/all/offsite_outputs.yml").write_text(yaml.safe_dump(offsite_outputs("340999911")))
    hosts = {"backup_servers": {"hosts": {"backup-01": {"ansible_host": "10.89.69.10"}}},
             "backup_clients": {"hosts": {"mg-nord-files-01": {"ansible_host": "10.89.69.21"}}}}  # fmt: skip
    (folder / "hosts.yml").write_text(yaml.safe_dump({"all": {"children": hosts}}))
    found = names(folder, tmp_path / "names")["backup-01"]
    assert found["offsite_copy"] | {"bucket": None, "writer_access_key_id": None, "repositories": None} == {
        "unit": "rempart-offsite-copy",
        "user": "rempart",
        "config_file": "/etc/rempart/offsite-copy.json",
        "writer_env": "/etc/rempart/offsite/writer.env",
        "state_dir": "/var/lib/rempart-offsite",
        "repos_dir": "/srv/rempart/repos",
        "local_secrets_dir": "/etc/rempart/secrets",
        "server_state_dir": "/var/lib/rempart",
        "metrics_dir": "/var/lib/prometheus/node-exporter",
        "bucket": None,
        "writer_access_key_id": None,
        "repositories": None,
    }
    drill, button = found["restore_drill"], found["red_button"]
    assert (drill["unit"], drill["user"], drill["config_file"], drill["state_dir"], drill["repos_dir"]) == (
        "rempart-drill", "rempart", "/etc/rempart/restore-drill.json", "/var/lib/rempart-drill", "/srv/rempart/repos"
    )  # fmt: skip
    assert (button["unit"], button["table"], button["flag"], button["rest_port"]) == (
        "rempart-red-button.service", "rempart_red_button", "/etc/rempart/red-button.json", 8443
    )  # fmt: skip
    assert button["timers"] == ["rempart-backup-partages.timer", "rempart-retention-partages.timer"]
    ruleset = (tmp_path / "names" / "backup-01.nft").read_text()
    assert ruleset.count("policy drop;") == 2 and "skuid" not in ruleset  # the whole server, as before


@pytest.mark.parametrize("shared", ["bucket", "key"])
def test_offsite_refuses_a_bucket_or_writer_key_of_another_establishment(ght: Path, shared: str) -> None:
    outputs = {g: offsite_outputs(f) for g, f in FINESS.items()}
    nord = outputs["ch_nord"]
    if shared == "bucket":
        outputs["ch_centre"] = offsite_outputs(FINESS["ch_centre"], bucket=nord["offsite_bucket"])
    else:
        outputs["ch_centre"] = offsite_outputs(FINESS["ch_centre"], key=nord["offsite_writer_access_key_id"])
    result = run_playbook(with_offsite(ght, outputs), str(PROJECT / "tests/ght/offsite_validate.yml"))
    assert result.returncode != 0
    assert "each establishment has its own Pulumi stack, bucket and writer" in result.stdout
    assert "mg-backup-01-nord" in result.stdout and "mg-backup-01-centre" in result.stdout
    assert "secret-of-" not in result.stdout  # the writer secret is never printed


def test_offsite_accepts_one_bucket_per_establishment(ght: Path) -> None:
    inventory = with_offsite(ght, {g: offsite_outputs(f) for g, f in FINESS.items()})
    result = run_playbook(inventory, str(PROJECT / "tests/ght/offsite_validate.yml"))
    # past the GHT checks, the next refusal is the controller's own: no backup_server instance here
    assert "each establishment has its own Pulumi stack" not in result.stdout
    assert "/etc/rempart-340999911/secrets/partages.json is missing" in result.stdout


@pytest.mark.parametrize(
    ("output", "value"), [("offsite_retention_days", 45), ("offsite_retention_cap_days", 90)]
)
def test_offsite_refuses_stack_outputs_with_another_lock_period(ght: Path, output: str, value: int) -> None:
    """The lock period comes from the establishment (Establishment.offsite_plan: 30 days, cap 60); the stack outputs
    only repeat it, and a stack built from another establishment.yml is refused before anything changes."""
    outputs = {g: offsite_outputs(f) | {"offsite_retention_cap_days": 60} for g, f in FINESS.items()}
    outputs["ch_sud"][output] = value
    result = run_playbook(with_offsite(ght, outputs), str(PROJECT / "tests/ght/offsite_validate.yml"))
    assert result.returncode != 0
    assert (
        "differ from the lock period this role applies (30, cap 60, from establishment.offsite)"
        in result.stdout
    )
    assert f"{output} {value}" in result.stdout
    assert "mg-backup-01-sud" in result.stdout
    assert "/etc/rempart-340999911/secrets/partages.json is missing" in result.stdout  # the others went on
