"""Bad input: an unknown medium is refused untouched; a missing key fails clearly and the previous copy stays."""

from __future__ import annotations

import time

from conftest import SERIALS, file_sha256


def test_unknown_medium_is_refused_untouched_and_alerts(vm):
    image = vm.image("inconnu", 48)
    image.write_bytes(b"\x00" * 4096 + b"clef USB d'un visiteur" + b"\x00" * (48 * 2**20 - 4118))
    before = file_sha256(image)
    since = vm.check("date '+%Y-%m-%d %H:%M:%S'").strip()
    kernel = vm.plug(image, "inconnu", "VISITEUR-0042")
    assert vm.wait_attach_job(kernel) == 1
    refused = [e for e in vm.ledger() if e["event"] == "refused" and e["serial"] == "VISITEUR-0042"]
    assert refused and "no declared medium" in refused[-1]["why"]
    assert "REFUSED" in vm.journal(since)
    assert vm.metric("rempart_offline_unknown_media_attached") == 1
    assert vm.status() == 1  # the policy check keeps failing while it stays attached
    vm.check(f"echo 1 > /sys/class/block/{kernel}/device/delete")
    vm.unplug("inconnu")
    assert file_sha256(image) == before  # nothing was written
    assert vm.status() == 0
    assert vm.metric("rempart_offline_unknown_media_attached") == 0


def test_missing_key_fails_clearly_and_leaves_the_copy(vm, medium_a):
    previous = {e["dataset"]: e["repository_sha256"] for e in vm.ledger() if e["event"] == "offline-copy"}
    before = file_sha256(medium_a)
    vm.check("mv /etc/rempart/offline/keys/lab-disque-a.key /root/lab-disque-a.key")
    try:
        kernel = vm.plug(medium_a, "medium-a", SERIALS["lab-disque-a"])
        assert vm.wait_attach_job(kernel) == 1
    finally:
        vm.check("mv /root/lab-disque-a.key /etc/rempart/offline/keys/lab-disque-a.key")
    failed = [e for e in vm.ledger() if e["event"] == "copy-failed"][-1]
    assert "no LUKS key for medium lab-disque-a" in failed["why"]
    assert "vault_offline_media_keys.lab-disque-a" in failed["why"]
    assert failed["detach"] == "scsi-deleted" and kernel not in vm.disks()  # powered off all the same
    vm.unplug("medium-a")
    vm.reset(kernel)
    assert file_sha256(medium_a) == before
    assert {
        e["dataset"]: e["repository_sha256"] for e in vm.ledger() if e["event"] == "offline-copy"
    } == previous


def test_a_medium_left_attached_raises_the_alert(vm, medium_a):
    """A medium online longer than a job is an alert (offline_copy_max_attached_minutes, 360 min), counted from
    when it appeared: here it waits behind a job that never ends. Seven hours later the check fails and names it;
    once its own job ran and powered it off, the check passes again."""
    state = "/var/lib/rempart/offline"
    vm.check("systemctl stop 'rempart-*.timer'")
    vm.check(f"systemd-run --unit rempart-test-hold flock {state}/offline.lock sleep 3600")
    kernel = ""
    try:
        kernel = vm.plug(medium_a, "medium-a", SERIALS["lab-disque-a"])
        deadline = time.monotonic() + 300
        while vm.run(f"test -e {state}/attached/lab-disque-a.json").rc != 0:
            assert time.monotonic() < deadline, "the attach job did not record the medium"
            time.sleep(1)
        vm.check('date -s "@$(( $(date +%s) + 7 * 3600 ))" >/dev/null')
        since = vm.check("date '+%Y-%m-%d %H:%M:%S'").strip()
        assert vm.status() == 1
        assert vm.metric("rempart_offline_medium_attached_too_long", 'medium="lab-disque-a"') == 1
        assert f"medium lab-disque-a attached on /dev/{kernel} for too long" in vm.journal(since)
    finally:
        vm.check('date -s "@$(( $(date +%s) - 7 * 3600 ))" >/dev/null')
        vm.run("systemctl stop rempart-test-hold")
    assert vm.wait_attach_job(kernel) == 0  # released: copied, verified and powered off
    vm.reset(kernel)
    vm.unplug("medium-a")
    vm.check("systemctl start rempart-offline-status.timer")
    assert vm.status() == 0


def test_a_stale_copy_raises_the_alert(vm, medium_a):
    """Eight days later (rotation every 7 days + 12 h grace) without a new copy: the check fails and says why."""
    vm.check("systemctl stop 'rempart-*.timer'")
    try:
        vm.check('date -s "@$(( $(date +%s) + 8 * 86400 ))" >/dev/null')
        since = vm.check("date '+%Y-%m-%d %H:%M:%S'").strip()
        assert vm.status() == 1
        assert vm.metric("rempart_offline_copy_stale", 'dataset="dossiers"') == 1
        assert "newest offline copy is 8.0 days old (policy: every 7 days)" in vm.journal(since)
    finally:
        vm.check('date -s "@$(( $(date +%s) - 8 * 86400 ))" >/dev/null')
        vm.check("systemctl start rempart-offline-status.timer")
    time.sleep(1)
    assert vm.status() == 0
