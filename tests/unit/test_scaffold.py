import pytest
import yaml

from rempart.commands.cli import main
from rempart.commands.scaffold import ScaffoldError, scaffold
from rempart.model.inventory import inventory_hosts, load_establishment_data
from rempart.model.validation import validate


def test_scaffolded_establishment_validates_and_keeps_accents(tmp_path):
    folder = tmp_path / "ch-cote"
    assert scaffold(folder, "750712184", "CH d'Exemple-sur-Mer", "eu-west-1", "GHT Côte", "ch.local") == []
    data = load_establishment_data(folder)
    assert data["name"] == "CH d'Exemple-sur-Mer" and data["ght"] == "GHT Côte"
    establishment, violations = validate(data, inventory_hosts(folder))
    assert violations == [] and establishment.offsite.region == "eu-west-1"
    assert "sauvegarde-01.ch.local" in inventory_hosts(folder)


def test_scaffold_writes_what_the_converge_needs(tmp_path):
    """Hardening refuses to run without an administrator, and the backup pull needs sshd's remote forwarding:
    the scaffold writes both (molecule/lab/tests/test_examples.py converges the folder in the lab)."""
    folder = tmp_path / "ch"
    assert scaffold(folder, "750712184", "CH Test", "eu-west-3", None, None) == []
    written = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert written == [
        "group_vars/all/establishment.yml",
        "group_vars/all/hardening.yml",
        "group_vars/backup_clients/hardening.yml",
        "group_vars/backup_servers/hardening.yml",
        "hosts.yml",
    ]
    admins = yaml.safe_load((folder / "group_vars/all/hardening.yml").read_text())["hardening_admin_users"]
    assert [a["name"] for a in admins] == ["adm-dsi"]
    assert admins[0]["password_hash"].startswith("{{ vault_hardening_admin_password_hash")
    clients = yaml.safe_load((folder / "group_vars/backup_clients/hardening.yml").read_text())
    assert clients["hardening_ssh_allow_tcp_forwarding"] == "remote"


def test_bad_answers_write_nothing(tmp_path):
    folder = tmp_path / "bad"
    violations = scaffold(folder, "750712185", "CH Bad", "us-east-1", None, None)
    assert {v.path for v in violations} == {"establishment.finess", "establishment.offsite.region"}
    assert not folder.exists()


def test_existing_folder_is_never_overwritten(tmp_path):
    folder = tmp_path / "existing"
    folder.mkdir()
    (folder / "hosts.yml").write_text("keep me")
    with pytest.raises(ScaffoldError):
        scaffold(folder, "750712184", "CH Existing", "eu-west-3", None, None)
    assert (folder / "hosts.yml").read_text() == "keep me"


def test_command_line(tmp_path, capsys):
    code = main(
        [
            "new-establishment",
            "--finess",
            "2A0999902",
            "--name",
            "CH de Corse",
            "--inventories",
            str(tmp_path),
        ]
    )
    assert code == 0
    assert (tmp_path / "ch-de-corse/group_vars/all/establishment.yml").exists()
    assert main(["validate", str(tmp_path / "ch-de-corse")]) == 0
    assert "is valid" in capsys.readouterr().out
