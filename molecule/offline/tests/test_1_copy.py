"""A declared medium: encrypted copy, verified, recorded, detached; a restore from the medium alone is identical."""

from __future__ import annotations

from conftest import DATA, MARKER, file_sha256


def test_copy_is_verified_and_recorded_per_dataset(vm, medium_a):
    copies = [e for e in vm.ledger() if e["event"] == "offline-copy" and e["medium"] == "lab-disque-a"]
    assert {e["dataset"] for e in copies} == {"dossiers", "partages"}
    for entry in copies:
        assert entry["verified"] is True
        assert entry["snapshots"] >= 1 and entry["latest_snapshot"]
        assert len(entry["repository_sha256"]) == 64 and entry["bytes"] > 0
    partages = next(e for e in copies if e["dataset"] == "partages")
    assert vm.untrusted and vm.untrusted not in partages["snapshot_ids"]  # only what the server admitted
    read = {e["dataset"]: e["read_data"] for e in copies}
    assert read == {"dossiers": "100%", "partages": "50%"}  # vital: every pack read back


def test_medium_is_detached_and_its_offline_moment_recorded(vm, medium_a):
    entry = next(e for e in vm.ledger() if e["event"] == "offline-copy" and e["medium"] == "lab-disque-a")
    assert entry["detach"] == "scsi-deleted"
    assert entry["offline_at"] >= entry["copied"]
    assert entry["device"] not in vm.disks()  # gone from the kernel, not only unmounted
    assert vm.check("ls /dev/mapper").split() == ["control"]
    assert vm.check("grep -c rempart-offline /proc/mounts || true").strip() == "0"


def test_raw_medium_shows_no_plaintext(medium_a):
    raw = medium_a.read_bytes()
    assert raw[:6] == b"LUKS\xba\xbe"  # a LUKS2 header, then ciphertext
    assert MARKER.encode() not in raw
    assert b"compte-rendu.txt" not in raw and b"note de service" not in raw


def test_restore_from_the_medium_alone_is_byte_identical(vm, medium_a):
    password = __import__("conftest").vault()["vault_repository_passwords"]["dossiers"]
    with vm.medium_opened_read_only(medium_a, "lab-disque-a") as mount:
        vm.check("rm -rf /srv/restored && mkdir -p /srv/restored")
        vm.check(
            f"RESTIC_PASSWORD='{password}' restic --no-cache --no-lock -r {mount}/repos/dossiers "
            "restore latest --target /srv/restored"
        )
    for name in ("compte-rendu.txt", "imagerie.bin"):
        assert vm.sha256(f"/srv/restored/patients/{name}") == vm.sha256(f"{DATA}/dossiers/patients/{name}")
    assert file_sha256(medium_a)  # the image is still readable on the host (the copy was a separate file)


def test_policy_is_met_after_the_copy(vm, medium_a):
    assert vm.status() == 0
    assert vm.metric("rempart_offline_copy_stale", 'dataset="dossiers"') == 0
    assert vm.metric("rempart_offline_unknown_media_attached") == 0
