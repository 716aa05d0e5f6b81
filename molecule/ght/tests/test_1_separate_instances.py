"""Each establishment has its own instance on the shared server: user, repositories, CA, key, credentials."""

from __future__ import annotations

from conftest import DATASET, ESTABLISHMENTS


def test_three_establishments_three_instances(server) -> None:
    assert len({e.finess for e in ESTABLISHMENTS}) == 3
    for establishment in ESTABLISHMENTS:
        repos = server.file(establishment.repos_dir)
        assert repos.is_directory and repos.user == establishment.user and repos.mode == 0o700
        assert server.file(f"{establishment.repos_dir}/{DATASET}/config").exists
        assert server.service(f"rempart-rest-server{establishment.suffix}.service").is_running
        assert server.socket(f"tcp://127.0.0.1:{establishment.port}").is_listening
        # listening on 127.0.0.1 only: reached through the job's tunnel, never from the network
        assert not server.socket(f"tcp://0.0.0.0:{establishment.port}").is_listening


def test_nothing_shared_between_instances(server) -> None:
    def distinct(path: str) -> None:
        digests = {
            server.check_output(f"sha256sum {path.format(s=e.suffix)}").split()[0] for e in ESTABLISHMENTS
        }
        assert len(digests) == len(ESTABLISHMENTS), path

    distinct("/etc/rempart{s}/tls/ca.pem")  # one backup CA per establishment
    distinct("/etc/rempart{s}/rest-server.htpasswd")  # same user name 'partages', different password hashes
    distinct("/var/lib/rempart{s}/ssh/id_ed25519.pub")  # one job key per establishment
    assert len({server.user(e.user).uid for e in ESTABLISHMENTS}) == len(ESTABLISHMENTS)


def test_each_client_trusts_its_own_establishment_view_only(server) -> None:
    import testinfra

    keys = {
        e.finess: server.check_output(f"cut -d' ' -f1,2 /var/lib/rempart{e.suffix}/ssh/id_ed25519.pub")
        for e in ESTABLISHMENTS
    }
    for establishment in ESTABLISHMENTS:
        client = testinfra.get_host(f"podman://{establishment.client}")
        authorized = client.file("/var/lib/rempart-backup/.ssh/authorized_keys").content_string
        assert keys[establishment.finess] in authorized
        assert not [f for f, key in keys.items() if f != establishment.finess and key in authorized]


def test_instances_cannot_read_each_other(server) -> None:
    first, second = ESTABLISHMENTS[0], ESTABLISHMENTS[1]
    for command in (
        f"ls {second.repos_dir}",
        f"cat {second.config_dir}/secrets/{DATASET}.json",
        f"cat {second.config_dir}/tls/ca.key",
    ):
        result = server.run(f"runuser -u {first.user} -- {command}")
        assert result.rc != 0 and "Permission denied" in result.stderr, command
