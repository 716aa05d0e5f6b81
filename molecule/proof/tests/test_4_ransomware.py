"""Ransomware drill: root on both clients encrypts everything and tries every way found to destroy the backups;
then, as root on the backup server, the attacker turns its offsite writer key against the Object-Lock bucket.
Every attempt fails or is recovered, and the establishment comes back with every file and every row, from the
on-site repositories and then again from the offsite point-in-time recovery alone."""

from __future__ import annotations

from rempart.reports.results import RansomwareDrill


def test_ransomware_drill_loses_nothing(proof):
    result = proof.playbook("drill-ransomware.yml")
    assert result.returncode == 0, result.stdout[-4000:]
    raw = proof.last("ransomware")
    drill = RansomwareDrill.model_validate(raw)
    assert drill.status == "passed"
    assert drill.files_lost == 0 and drill.rows_lost == 0
    assert raw["files_checked"] == 160 and raw["rows_checked"] == 25000
    assert drill.restore_time_s > 0
    assert not [a for a in drill.attempts if a.outcome == "succeeded"]
    actions = " | ".join(a.action for a in drill.attempts)
    for expected in ("stolen credentials", "HTTP DELETE", "HTTP POST overwrite", "SSH to", "forget --prune",
                     "scan", "encrypt every file"):  # fmt: skip
        assert expected in actions, expected
    # the in-job attack really had the job's credentials (it listed the snapshots before trying to forget them)
    stolen = [a for a in drill.attempts if "stolen credentials" in a.action and "forget" in a.action]
    assert stolen and all("snapshot(s) still listed" in a.detail for a in stolen)
    # the data is really back
    assert (
        proof.db.run("runuser -u postgres -- psql -tAc 'SELECT count(*) FROM sejours' dpi").stdout.strip()
        == "20000"
    )
    assert not proof.files.file("/srv/partages/LISEZ-MOI-RANCON.txt").exists
    assert proof.files.run("head -c 7 /srv/partages/services/urgences/doc-1.txt").stdout.split()[0] in (
        "patient", "soins", "dose", "garde", "planning")  # fmt: skip
    assert proof.files.file("/usr/bin/restic.real").exists is False


def test_offsite_leg_loses_nothing(proof):
    raw = proof.last("ransomware")
    offsite = RansomwareDrill.model_validate(raw).offsite
    assert not isinstance(offsite, str), offsite  # the leg ran ("not run: ..." otherwise)
    assert offsite.status == "passed"
    assert offsite.files_lost == 0 and offsite.rows_lost == 0
    assert offsite.files_checked == 160 and offsite.rows_checked == 25000
    assert offsite.objects_hidden > 0 and offsite.versions_deleted == 0
    assert offsite.restore_time_s > 0 and offsite.attempts > offsite.refused > 0
    by_action = {a.action: a for a in RansomwareDrill.model_validate(raw).attempts if "writer key" in a.actor}
    hidden = next(a for action, a in by_action.items() if action.startswith("delete every current object"))
    assert hidden.outcome == "recovered"
    versions = next(a for action, a in by_action.items() if action.startswith("delete every object version"))
    assert versions.outcome == "refused" and versions.detail.startswith("0 version(s) deleted")
    for refused in (
        "suspend versioning",
        "replace the Object Lock rule",
        "delete the bucket",
        "shorten the COMPLIANCE",
    ):
        assert all(a.outcome == "refused" for action, a in by_action.items() if action.startswith(refused)), (
            refused
        )
    # the bucket was put back as it was: the copy sees every on-site snapshot again
    assert proof.server.run("systemctl start rempart-offsite-copy.service").rc == 0
