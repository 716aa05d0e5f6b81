"""The lab image boots systemd, runs units and timers, installs only from the lab mirror."""

import time

import pytest
import testinfra

HOSTS = ["lab-a", "lab-b"]


@pytest.fixture(scope="module", params=HOSTS)
def host(request):
    return testinfra.get_host(f"podman://{request.param}")


def test_systemd_is_pid1_and_running(host):
    assert host.run("cat /proc/1/comm").stdout.strip() == "systemd"
    state = host.run("systemctl is-system-running --wait").stdout.strip()
    assert state == "running", host.run("systemctl --failed --no-legend").stdout


def test_timer_fires_the_service_repeatedly(host):
    first = len(host.file("/var/lib/lab-heartbeat/beats").content_string.split())
    time.sleep(5)
    second = len(host.file("/var/lib/lab-heartbeat/beats").content_string.split())
    assert first >= 1
    assert second >= first + 2
    assert host.service("lab-heartbeat.timer").is_enabled


def test_sshd_accepts_the_lab_key(host):
    assert host.socket("tcp://0.0.0.0:22").is_listening


def test_only_the_declared_mirror_is_an_apt_source(host):
    sources = host.run("ls /etc/apt/sources.list.d/").stdout.split()
    assert sources == ["rempart-mirror.sources"]
    assert not host.file("/etc/apt/sources.list").exists
    assert (
        "URIs: http://10.89.70.5/"
        in host.file("/etc/apt/sources.list.d/rempart-mirror.sources").content_string
    )
    simulated = host.run("apt-get install -s jq")
    assert simulated.rc == 0 and "Inst jq" in simulated.stdout


def test_identity_file_names_the_establishment(host):
    identity = host.file("/etc/rempart/establishment.json")
    assert identity.mode == 0o644
    assert '"finess": "340999903"' in identity.content_string


def test_hosts_resolve_each_other_and_nothing_else(host):
    other = "lab-b" if host.backend.name == "lab-a" else "lab-a"
    assert host.run(
        f"python3 -c 'import socket; print(socket.gethostbyname(\"{other}\"))'"
    ).stdout.startswith("10.89.70.")
    # internal network: no default route, no path off the host
    assert "default" not in host.run("ip route").stdout
    outside = host.run("python3 -c 'import socket; socket.create_connection((\"1.1.1.1\", 80), timeout=3)'")
    assert outside.rc != 0
