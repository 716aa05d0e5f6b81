"""A medium too small for the new data: refused before writing, detached, and its previous copy still restores."""

from __future__ import annotations

from conftest import DATA, SERIALS, vault


def test_full_medium_fails_and_keeps_the_previous_copy(vm):
    image = vm.image("lab-disque-b", 48)  # 16 MiB LUKS2 header, ~30 MiB of ext4
    kernel = vm.plug(image, "medium-b", SERIALS["lab-disque-b"])
    assert vm.wait_attach_job(kernel) == 1  # not enrolled yet
    vm.reset(kernel)
    vm.check(f"rempart-offline-admin enroll lab-disque-b /dev/{kernel}")
    vm.unplug("medium-b")
    first = {
        e["dataset"]: e for e in vm.ledger() if e["event"] == "offline-copy" and e["medium"] == "lab-disque-b"
    }
    assert set(first) == {"dossiers", "partages"}

    vm.check(
        f"head -c 40M /dev/urandom > {DATA}/partages/scanner.bin && chown rempart {DATA}/partages/scanner.bin"
    )
    vm.backup("partages")
    kernel = vm.plug(image, "medium-b", SERIALS["lab-disque-b"])
    assert vm.wait_attach_job(kernel) == 1
    failed = [e for e in vm.ledger() if e["event"] == "copy-failed"][-1]
    assert failed["medium"] == "lab-disque-b" and "medium full" in failed["why"]
    assert failed["offline_at"] and kernel not in vm.disks()
    vm.unplug("medium-b")
    vm.reset(kernel)

    password = vault()["vault_repository_passwords"]["partages"]
    with vm.medium_opened_read_only(image, "lab-disque-b") as mount:
        ids = vm.check(
            f"RESTIC_PASSWORD='{password}' restic --no-cache --no-lock -r {mount}/repos/partages snapshots --json"
            ' | python3 -c \'import json,sys; print(" ".join(sorted(s["id"] for s in json.load(sys.stdin))))\''
        ).split()
        assert ids == first["partages"]["snapshot_ids"]
        vm.check(f"rm -rf /srv/restored-b && mkdir -p /srv/restored-b && RESTIC_PASSWORD='{password}' restic "
                 f"--no-cache --no-lock -r {mount}/repos/partages restore latest --target /srv/restored-b")  # fmt: skip
    assert vm.sha256("/srv/restored-b/note-7.txt") == vm.sha256(f"{DATA}/partages/note-7.txt")
