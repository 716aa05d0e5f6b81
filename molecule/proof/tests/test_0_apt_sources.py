"""Package sources (rempart/model/apt.py, roles/base): the establishment's mirror is added next to the host's own sources;
a vendor's source on the DPI host survives the converge because the mirror is not declared exclusive; the proxy is
written to apt's configuration and the mirror bypasses it (no proxy listens at the declared address)."""

from __future__ import annotations

VENDOR = "/etc/apt/sources.list.d/vendor-db.list"
VENDOR_LINE = "deb [trusted=yes] file:/srv/vendor-repo ./"


def test_vendor_source_kept_next_to_the_mirror(proof):
    assert proof.db.file(VENDOR).content_string.strip() == VENDOR_LINE
    assert proof.db.file("/etc/apt/sources.list.d/rempart-mirror.sources").contains(
        "URIs: http://10.89.66.5/"
    )
    update = proof.db.run("apt-get update -q")
    assert update.rc == 0, update.stdout + update.stderr
    policy = proof.db.run("apt-cache policy").stdout
    assert "file:/srv/vendor-repo ./ Packages" in policy and "http://10.89.66.5 ./ Packages" in policy


def test_proxy_declared_and_mirror_reached_directly(proof):
    config = proof.db.run("apt-config dump").stdout
    assert 'Acquire::http::Proxy "http://10.89.66.9:3128";' in config
    assert 'Acquire::http::Proxy::10.89.66.5 "DIRECT";' in config
