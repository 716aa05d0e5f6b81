"""What an establishment's vault must hold (``group_vars/all/vault.yml``): checked by validation, filled by
``rempart init-vault``. Roles read these variables; nothing else holds secrets."""

from __future__ import annotations

from rempart.model.establishment import Establishment

# restic password of each dataset's repository (the establishment's own encryption key, HDS-03).
REPOSITORY_PASSWORDS = "vault_repository_passwords"
# HTTP password of each dataset's user on the backup server's rest-server (roles backup_server/backup_client):
# the server hands it to the client for the duration of one job only.
REST_SERVER_PASSWORDS = "vault_rest_server_passwords"
# Degraded mode (roles degraded_export / degraded_station): the Ed25519 key signing the binder's manifest
# (PEM, private; the stations only get its public half) and the passphrase encrypting the stations'
# stored generations.
DEGRADED_SECRETS_VARIABLE = "vault_degraded_mode"

# LUKS2 key of each offline medium (roles/offline_copy), by medium id: escrowed in the vault, never on the medium.
OFFLINE_MEDIA_KEYS = "vault_offline_media_keys"

# Kinds of generated secret: None = random URL-safe token (256 bits).
ED25519_PEM = "ed25519-pem"


def required_secrets(establishment: Establishment) -> dict[str, dict[str, str | None]]:
    """Variable -> key -> kind of secret (None: random token) that must be in the establishment's vault."""
    needed: dict[str, dict[str, str | None]] = {
        REPOSITORY_PASSWORDS: {dataset.name: None for dataset in establishment.datasets},
        REST_SERVER_PASSWORDS: {dataset.name: None for dataset in establishment.datasets},
    }
    if establishment.degraded_mode.export is not None:
        needed[DEGRADED_SECRETS_VARIABLE] = {"signing_key": ED25519_PEM, "storage_passphrase": None}
    if establishment.offline_copy is not None:
        needed[OFFLINE_MEDIA_KEYS] = {medium.id: None for medium in establishment.offline_copy.media}
    return needed
