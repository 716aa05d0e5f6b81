"""rempart hardening-scan's pure parts: the XCCDF counts the report reads, and the host's /proc/sys rebuilt from
its `sysctl -a` and its own sysctl.d files (never from this machine)."""

from __future__ import annotations

from pathlib import Path

from xccdf_sample import xccdf_result

from rempart.commands.hardening_scan import counts, write_procsys
from rempart.reports.results import HardeningScore

RESULT = xccdf_result(
    {
        "sshd_disable_root_login": "pass",
        "partition_for_tmp": "fail",
        "grub2_audit_argument": "fail",
        "package_telnet_removed": "notapplicable",
        "x": "notchecked",
    }
)


def test_counts_are_what_the_report_reads(tmp_path: Path):
    xml = tmp_path / "host.xml"
    xml.write_text(RESULT)
    found = counts(xml)
    assert found == {"pass": 1, "fail": 2, "notapplicable": 1, "other": 1,
                     "failures": ["grub2_audit_argument", "partition_for_tmp"]}  # fmt: skip
    score = HardeningScore.model_validate(
        {
            **found,
            "host": "h",
            "profile": "xccdf_org.ssgproject.content_profile_anssi_bp28_enhanced",
            "scanned_at": "2026-12-06T09:00:00+00:00",
        }
    )
    assert score.level == "enhanced" and score.failures == ["grub2_audit_argument", "partition_for_tmp"]


def test_procsys_overlays_the_hosts_own_files_inside_its_tree(tmp_path: Path):
    tree = tmp_path / "tree"
    (tree / "etc/sysctl.d").mkdir(parents=True)
    (tree / "usr/lib/sysctl.d").mkdir(parents=True)
    (tree / "usr/lib/sysctl.d/50-default.conf").write_text(
        "kernel.kptr_restrict = 1\nnet.ipv4.ip_forward=1\n"
    )
    (tree / "etc/sysctl.d/90-rempart.conf").write_text(
        "# hardening\nnet/ipv4/ip_forward = 0\n-kernel.yama.ptrace_scope=2\n"
    )
    # an absolute symlink points inside the tree, never at this machine's /etc
    (tree / "etc/sysctl.d/99-sysctl.conf").symlink_to("/etc/sysctl.conf")
    (tree / "etc/sysctl.conf").write_text("fs.suid_dumpable = 0\n")
    write_procsys(
        tree, "kernel.kptr_restrict = 0\nkernel.randomize_va_space = 2\nnet.core.rmem = 4096 87380\n"
    )
    procsys = tree / "proc/sys"
    assert (
        procsys / "kernel/kptr_restrict"
    ).read_text() == "1\n"  # the host's file wins over the running value
    assert (procsys / "net/ipv4/ip_forward").read_text() == "0\n"  # etc/ after usr/lib/, by name order
    assert (procsys / "kernel/yama/ptrace_scope").read_text() == "2\n"
    assert (procsys / "fs/suid_dumpable").read_text() == "0\n"
    assert (procsys / "kernel/randomize_va_space").read_text() == "2\n"
    assert (procsys / "net/core/rmem").read_text() == "4096\t87380\n"
