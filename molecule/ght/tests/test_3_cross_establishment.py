"""Establishment A's job credentials open nothing of establishment B's (rest-server answers 401, restic fails).

A job hands its client the dataset's HTTP password, the establishment's CA and a tunnel to the establishment's
own repository service: the strongest thing a compromised client of A holds. The tests use exactly those.
"""

from __future__ import annotations

import itertools

import pytest
from conftest import DATASET, ESTABLISHMENTS

PAIRS = list(itertools.permutations(ESTABLISHMENTS, 2))


def _curl(server, url: str, user: str, password: str, ca: str) -> tuple[int, str]:
    result = server.run(f"curl -s -o /dev/null -w '%{{http_code}}' --cacert {ca} -u {user}:{password} {url}")
    return result.rc, result.stdout.strip()


@pytest.mark.parametrize(("a", "b"), PAIRS, ids=lambda e: e.group)
def test_http_401_with_another_establishments_credentials(server, a, b) -> None:
    url = f"https://127.0.0.1:{b.port}/{DATASET}/config"
    # sanity: B's own credentials open B's repository
    assert _curl(server, url, DATASET, b.http_password, f"{b.config_dir}/tls/ca.pem") == (0, "200")
    # A's credentials (same user name 'partages', A's password) are refused by B's repository service
    assert _curl(server, url, DATASET, a.http_password, f"{b.config_dir}/tls/ca.pem")[1] in ("401", "403")
    # and A's CA does not even trust B's service (curl: peer certificate cannot be authenticated)
    rc, _ = _curl(server, url, DATASET, a.http_password, f"{a.config_dir}/tls/ca.pem")
    assert rc == 60


@pytest.mark.parametrize(("a", "b"), PAIRS[:2], ids=lambda e: e.group)
def test_restic_fails_on_another_establishments_repository(server, a, b) -> None:
    def restic(http_password: str, repository_password: str) -> object:
        return server.run(
            f"RESTIC_PASSWORD='{repository_password}' RESTIC_CACHE_DIR=/tmp/ght-cache "
            f"restic --no-lock --cacert {b.config_dir}/tls/ca.pem -r {b.url(http_password)} snapshots --json"
        )

    assert restic(b.http_password, b.repository_password).rc == 0
    refused = restic(a.http_password, a.repository_password)
    assert refused.rc != 0 and "401" in refused.stderr + refused.stdout
    # even with B's HTTP password, A's repository key does not open B's data (encrypted with B's key, HDS-03)
    assert restic(b.http_password, a.repository_password).rc != 0


def test_repository_services_unreachable_from_clients(server) -> None:
    import testinfra

    client = testinfra.get_host(f"podman://{ESTABLISHMENTS[0].client}")
    address = server.check_output("hostname -I").split()[0]
    for establishment in ESTABLISHMENTS:
        result = client.run(f"timeout 5 bash -c 'echo > /dev/tcp/{address}/{establishment.port}'")
        assert result.rc != 0
