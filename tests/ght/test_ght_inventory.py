"""A GHT inventory: each establishment validated against its own hosts, nothing shared that must not be."""

from __future__ import annotations

from pathlib import Path

import pytest
from ght_harness import GHT_LAB, edit_yaml

from rempart.commands.cli import main
from rempart.model.ght import check_inventory, establishment_sources, inventory_views

FINESS = {"ch_nord": "340999911", "ch_centre": "340999929", "ch_sud": "340999937"}


def violations(folder: Path) -> list[str]:
    check = check_inventory(folder)
    return [str(v) for _, _, found in check.establishments for v in found] + [str(v) for v in check.across]


def test_the_ght_lab_declares_three_establishments_and_their_views() -> None:
    sources = establishment_sources(GHT_LAB)
    assert [s.group for s in sources] == list(FINESS)
    assert all(s.path == GHT_LAB / "group_vars" / s.group / "establishment.yml" for s in sources)
    views = {v.group: v for v in inventory_views(GHT_LAB)}
    assert {v.shared_host for v in views.values()} == {"mg-backup-01"}
    assert len({v.rest_port for v in views.values()}) == 3
    assert all(views[s.group].name in s.hosts for s in sources)
    assert check_inventory(GHT_LAB).valid


def test_single_establishment_inventories_are_one_group_all(project: Path) -> None:
    for name in ("lab", "example-ch"):
        (source,) = establishment_sources(project / "inventories" / name)
        assert source.group == "all" and source.vault.name == "vault.yml"
        assert check_inventory(project / "inventories" / name).valid


def test_validate_command_lists_each_establishment(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(GHT_LAB)]) == 0
    out = capsys.readouterr().out
    assert all(f"[{group}] establishment {finess}" in out for group, finess in FINESS.items())


def test_same_finess_twice_is_refused(ght: Path) -> None:
    edit_yaml(
        ght / "group_vars/ch_sud/establishment.yml", lambda d: d["establishment"].update(finess="340999911")
    )
    assert any("340999911 is also the FINESS of group ch_nord" in v for v in violations(ght))


def test_dataset_on_another_establishments_host_is_refused(ght: Path) -> None:
    def move(document: dict) -> None:
        document["establishment"]["datasets"][0]["host"] = "mg-centre-files-01"

    edit_yaml(ght / "group_vars/ch_nord/establishment.yml", move)
    found = violations(ght)
    assert any(
        v.startswith("establishment.datasets[0].host: host 'mg-centre-files-01' is not") for v in found
    )
    assert main(["validate", str(ght)]) == 1


def test_host_in_two_establishments_is_refused(ght: Path) -> None:
    edit_yaml(
        ght / "hosts.yml",
        lambda d: d["all"]["children"]["ch_sud"]["hosts"].update({"mg-nord-files-01": None}),
    )
    assert any("mg-nord-files-01 is also in establishment group" in v for v in violations(ght))


def test_two_views_on_one_port_are_refused(ght: Path) -> None:
    def same_port(document: dict) -> None:
        document["all"]["children"]["backup_servers"]["hosts"]["mg-backup-01-sud"][
            "rempart_backup_rest_port"
        ] = 8441

    edit_yaml(ght / "hosts.yml", same_port)
    assert any("port 8441 on mg-backup-01 is also mg-backup-01-" in v for v in violations(ght))


def test_view_of_an_undeclared_server_is_refused(ght: Path) -> None:
    def typo(document: dict) -> None:
        document["all"]["children"]["backup_servers"]["hosts"]["mg-backup-01-sud"]["rempart_backup_host"] = (
            "mg-bkp"
        )

    edit_yaml(ght / "hosts.yml", typo)
    assert any("'mg-bkp' is not an inventory host" in v for v in violations(ght))


def test_missing_establishment_file_is_named(ght: Path) -> None:
    (ght / "group_vars/ch_sud/establishment.yml").unlink()
    assert main(["validate", str(ght)]) == 2


def test_init_vault_fills_each_establishments_own_vault(ght: Path, tmp_path: Path) -> None:
    from ansible.parsing.vault import VaultLib, VaultSecret

    from rempart.vault.secrets import init_vault

    for group in FINESS:
        (ght / "group_vars" / group / "vault.yml").unlink()
    password = tmp_path / "vault-password"
    added = init_vault(ght, password)
    assert sorted(added) == sorted(
        f"{group}: {variable}.partages"
        for group in FINESS
        for variable in ("vault_repository_passwords", "vault_rest_server_passwords")
    )
    vault = VaultLib([("default", VaultSecret(password.read_bytes().strip()))])
    values = [vault.decrypt((ght / "group_vars" / g / "vault.yml").read_bytes()).decode() for g in FINESS]
    assert len(set(values)) == 3  # three different sets of secrets, one file per establishment
    assert init_vault(ght, password) == []


def test_report_writes_one_folder_per_establishment(tmp_path: Path) -> None:
    import json

    reports = tmp_path / "reports"
    assert main(["report", "--inventory", str(GHT_LAB), "--reports", str(reports)]) == 0
    assert sorted(p.name for p in reports.iterdir()) == sorted(FINESS.values())
    for finess in FINESS.values():
        assert json.loads((reports / finess / "rapport-care.json").read_text())["finess"] == finess
