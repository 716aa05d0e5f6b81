"""A corrupted backup makes the drill fail, loudly: playbook failed, unit failed, metric 0, result says why."""

from __future__ import annotations

from rempart.reports.results import Drill

PACKS = "/srv/rempart/repos/partages/data"


def test_flipped_bytes_in_a_pack_fail_the_drill(proof):
    pack = proof.server.check_output(
        f"find {PACKS} -type f -size +100k -printf '%s %p\\n' | sort -n | tail -1"
    )
    pack = pack.split()[-1]
    proof.server.check_output(f"cp -p {pack} /root/pack.orig")
    try:
        proof.server.check_output(
            f"printf '\\377\\000\\377\\000\\377\\000\\377\\000' | dd of={pack} bs=1 seek=4096 conv=notrunc status=none"
        )
        result = proof.playbook("drill.yml")
        assert result.returncode != 0
        assert "RESTORE DRILL FAILED" in result.stdout
        drill = Drill.model_validate(proof.last("drills"))
        assert not drill.passed
        partages = next(d for d in drill.datasets if d.dataset == "partages")
        assert partages.status == "failed" and partages.errors
        assert next(d for d in drill.datasets if d.dataset == "dpi-postgresql").status == "passed"
        assert proof.metric("rempart_drill_success") == 0
        assert proof.server.run("systemctl is-failed 'rempart-drill@ondemand-*'").stdout.count("failed") >= 1
    finally:
        proof.server.check_output(f"cp -p /root/pack.orig {pack} && rm -f /root/pack.orig")
