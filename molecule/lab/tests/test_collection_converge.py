"""The built collection converges the lab from a folder outside the repository.

The tarball `ansible-galaxy collection build` makes is installed offline into a temporary folder; a playbook written
there applies rempart.rempart.base to the lab containers (the converge applied the repository's role just before),
with Ansible told of that folder and the venv's PyPI bundle only: no ANSIBLE_* variable of molecule, no ansible.cfg
of the repository, no path into it. The hosts being converged already, the run must change nothing.
"""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import yaml

PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
INVENTORY = Path(__file__).resolve().parent.parent / "inventory"
BIN = Path(sys.executable).parent
HOSTS = ["lab-a", "lab-b"]


def run(command: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    result = subprocess.run(
        command,
        cwd=cwd,
        env={**clean, "ANSIBLE_NOCOLOR": "1", **env},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}"
    return result


def lab_inventory(folder: Path) -> Path:
    """The scenario's hosts and variables, copied (the SSH key too): nothing in it points into the repository."""
    (folder / "group_vars").mkdir(parents=True)
    shutil.copy(INVENTORY / "hosts.yml", folder / "hosts.yml")
    variables: dict = {}
    for path in sorted((INVENTORY / "group_vars/all").glob("*.yml")):
        variables |= yaml.safe_load(path.read_text())
    key = folder / "id_ed25519"
    shutil.copy(PROJECT / ".lab/ssh/id_ed25519", key)
    key.chmod(0o600)
    variables["ansible_ssh_private_key_file"] = str(key)
    (folder / "group_vars/all.yml").write_text(yaml.safe_dump(variables))
    return folder


def test_the_built_collection_converges_the_lab_from_outside_the_repository(tmp_path):
    assert PROJECT not in tmp_path.parents
    run(
        [str(BIN / "ansible-galaxy"), "collection", "build", str(PROJECT), "--output-path", str(tmp_path)],
        cwd=tmp_path,
    )
    tarball = next(tmp_path.glob("rempart-rempart-*.tar.gz"))
    collections = tmp_path / "collections"
    # the PyPI `ansible` bundle (ansible.posix, community.postgresql): the venv's site-packages
    bundle = sysconfig.get_paths()["purelib"]
    env = {
        "ANSIBLE_COLLECTIONS_PATH": f"{collections}:{bundle}",
        "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
    }
    run([str(BIN / "ansible-galaxy"), "collection", "install", "--offline", str(tarball), "-p", str(collections)],
        cwd=tmp_path, **env)  # fmt: skip
    listed = run(
        [str(BIN / "ansible-galaxy"), "collection", "list", "rempart.rempart"], cwd=tmp_path, **env
    ).stdout
    assert f"# {collections}/ansible_collections" in listed and str(PROJECT) not in listed, listed

    (tmp_path / "ansible.cfg").write_text(
        "[defaults]\nhost_key_checking = false\n[ssh_connection]\npipelining = true\n"
    )
    play = {"name": "Base role from the installed collection", "hosts": "all", "gather_facts": False}
    (tmp_path / "site.yml").write_text(
        yaml.safe_dump([{**play, "roles": [{"role": "rempart.rempart.base"}]}])
    )
    inventory = lab_inventory(tmp_path / "inventory")
    result = run([str(BIN / "ansible-playbook"), "-i", str(inventory), "site.yml"], cwd=tmp_path, **env)

    recap = result.stdout[result.stdout.index("PLAY RECAP") :]
    for host in HOSTS:
        line = re.search(rf"^{host}\s*:.*$", recap, re.M)
        assert line, recap
        counts = dict(re.findall(r"(\w+)=(\d+)", line.group(0)))
        assert int(counts["ok"]) > 0, line.group(0)
        assert (counts["changed"], counts["unreachable"], counts["failed"]) == ("0", "0", "0"), line.group(0)
    assert "rempart.rempart.base" in result.stdout  # the tasks ran from the collection's role
