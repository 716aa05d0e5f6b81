"""Rempart's firewall beside a vendor's (issue 14): prepare.yml loads a vendor's table (inet vendor, its own
/etc/nftables.conf, "flush ruleset" first, policy drop, accepting SSH and its ports 5433 and 5434 where it
listens) on the DPI server and on the backup server. Rempart's rules live in their own table: converge, a
reload of the vendor's nftables.service and the red button (isolate, release) leave the vendor's rules and
traffic as they were. On the DPI server (a backup client) Rempart drops nothing; the backup server keeps
Rempart's default-drop, where only the declared port (5433) of the vendor's passes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import DB, SERVER
from refusal import PROJECT, converge

ADDRESSES = {SERVER: "10.89.62.10", DB: "10.89.62.21"}
VENDOR_RULE = 'tcp dport { 5433, 5434 } accept comment "vendor: application"'


def _connects(prober, address: str, port: int) -> bool:
    probe = prober.run(
        f"python3 -c \"import socket; socket.create_connection(('{address}', {port}), timeout=3)\""
    )
    assert probe.rc == 0 or "timed out" in probe.stderr, probe.stderr  # not answered = dropped, never refused
    return probe.rc == 0


def _stateless_ruleset(host) -> str:
    return host.check_output("nft --stateless list ruleset")


def _wait_for_propagated_jobs(host) -> None:
    """`systemctl reload|restart nftables` returns when nftables.service's own job ends; the jobs it propagates
    (PartOf=, ReloadPropagatedFrom=: rempart-firewall, the red button) are ordered after it and may still run then.
    Wait (seconds) until systemd's job queue is empty: the window is the time those units' nft takes."""
    for _ in range(40):
        if not host.check_output("systemctl list-jobs --no-legend").strip():
            return
        time.sleep(0.25)
    raise AssertionError(host.check_output("systemctl list-jobs"))


@pytest.fixture(params=[DB, SERVER])
def vendor_host(request, lab):
    return {DB: lab.db, SERVER: lab.server}[request.param]


def test_the_vendor_table_and_file_are_untouched(vendor_host):
    assert VENDOR_RULE in vendor_host.check_output("nft list table inet vendor")
    assert "table inet rempart" in vendor_host.check_output("nft list tables").splitlines()
    conf = vendor_host.file("/etc/nftables.conf").content_string
    assert "table inet vendor" in conf and "Rempart" not in conf
    assert "flush ruleset" not in vendor_host.file("/etc/nftables.d/rempart.nft").content_string


def test_the_vendor_traffic_flows_on_the_dpi_server(lab):
    # Rempart does not own the DPI server: its chains drop nothing, the vendor's table decides
    assert "policy accept" in lab.db.check_output("nft list chain inet rempart input")
    assert _connects(lab.files, ADDRESSES[DB], 5433)
    assert _connects(lab.files, ADDRESSES[DB], 5434)


def test_the_backup_server_keeps_the_default_drop(lab):
    assert "policy drop" in lab.server.check_output("nft list chain inet rempart input")
    assert _connects(lab.db, ADDRESSES[SERVER], 5433)  # declared in hardening_firewall_allowed_inbound
    # accepted by the vendor's table only: dropped, a drop in any base chain is final (roles/hardening/README.md)
    assert not _connects(lab.db, ADDRESSES[SERVER], 5434)


@pytest.mark.parametrize("action", ["reload", "restart"])
def test_the_owner_reloading_its_firewall_brings_rempart_back(lab, action):
    # the vendor's file starts with "flush ruleset": rempart-firewall.service follows nftables.service
    before = _stateless_ruleset(lab.db)
    lab.db.check_output(f"systemctl {action} nftables.service")
    _wait_for_propagated_jobs(lab.db)
    assert _stateless_ruleset(lab.db) == before
    assert _connects(lab.files, ADDRESSES[DB], 5433)


def test_stopping_rempart_firewall_removes_its_table_only(lab):
    before = _stateless_ruleset(lab.db)
    lab.db.check_output("systemctl stop rempart-firewall.service")
    try:
        assert lab.db.check_output("nft list tables").splitlines() == ["table inet vendor"]
        assert VENDOR_RULE in lab.db.check_output("nft list table inet vendor")
    finally:
        lab.db.check_output("systemctl start rempart-firewall.service")
    assert _stateless_ruleset(lab.db) == before


def test_a_ruleset_file_of_an_earlier_rempart_is_handed_back(lab):
    conf = lab.files.file("/etc/nftables.conf").content_string
    assert "flush ruleset" not in conf and "Managed by Rempart" not in conf
    assert "policy accept" in lab.files.check_output("nft list chain inet rempart input")


def test_red_button_release_restores_the_ruleset_exactly(lab, tmp_path):
    before = _stateless_ruleset(lab.server)
    inventory = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "inventory"
    playbook = PROJECT / "playbooks" / "red-button.yml"
    extra = {"rempart_reports_dir": str(tmp_path), "red_button_resume_check": False}
    isolate = converge(
        playbook, inventory, {**extra, "red_button_state": "isolate", "red_button_reason": "test"}, tmp_path
    )
    try:
        assert isolate.returncode == 0, isolate.output[-3000:]
        # isolation blocks every flow in and out of the backup server but the admin SSH, the vendor's port too
        assert not _connects(lab.db, ADDRESSES[SERVER], 5433)
        # the vendor's owner reloading its firewall does not lift the isolation
        lab.server.check_output("systemctl reload nftables.service")
        _wait_for_propagated_jobs(lab.server)
        assert lab.server.run("nft list table inet rempart_red_button").rc == 0
        assert not _connects(lab.db, ADDRESSES[SERVER], 5433)
        # the clients are not touched: the vendor's traffic to the DPI server flows during the isolation
        assert _connects(lab.files, ADDRESSES[DB], 5433)
    finally:
        release = converge(playbook, inventory, {**extra, "red_button_state": "release"}, tmp_path)
    assert release.returncode == 0, release.output[-3000:]
    assert _stateless_ruleset(lab.server) == before
    assert VENDOR_RULE in lab.server.check_output("nft list table inet vendor")
    assert _connects(lab.db, ADDRESSES[SERVER], 5433)
