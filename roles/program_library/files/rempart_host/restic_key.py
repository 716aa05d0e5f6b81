"""restic key files with restic's default (minimum) scrypt parameters, for machine-generated passwords.

restic calibrates scrypt when it creates a key so that opening it costs about 0.5 s of CPU on that machine, and
every restic start opens the key: a backup job's server side starts restic four to six times (admission, diff,
digests), which was most of a small incremental job's time (`tests/benchmarks/backup.sh`). The calibration
protects a password a person chose; Rempart's repository passwords are 256-bit random values (`rempart
init-vault`), which no key stretching can make stronger. So the server re-seals the repository's master key under
restic's own default parameters (N=16384, r=8, p=1: what restic uses when calibration fails), and only for a
password of at least 32 characters; a shorter one, typed by someone, keeps restic's calibrated key.

Key file format (restic design document, "Keys, Encryption and MAC"): JSON with the scrypt parameters, a 64-byte
salt and ``data`` = IV (16) || AES-256-CTR(master key JSON) || Poly1305-AES MAC (16); scrypt yields 64 bytes:
the AES key, then the MAC's AES-128 key k, then its Poly1305 key r. scrypt comes from hashlib, AES from the
system's OpenSSL libcrypto (ctypes); Poly1305 is RFC 8439's integer arithmetic. A key this module writes is only
kept after the real restic has opened the repository with it (the caller checks).
"""

from __future__ import annotations

import base64
import ctypes
import ctypes.util
import functools
import hashlib
import hmac
import json
import os
from datetime import UTC, datetime
from typing import Any

DEFAULT_PARAMS = {"N": 16384, "r": 8, "p": 1}  # restic's crypto.DefaultKDFParams
MIN_PASSWORD_LENGTH = 32  # rempart init-vault: secrets.token_urlsafe(32), 43 characters
_SALT_BYTES = 64
_P1305 = (1 << 130) - 5
_CLAMP = 0x0FFFFFFC0FFFFFFC0FFFFFFC0FFFFFFF


class KeyFileError(ValueError):
    """The key file cannot be opened with this password (wrong password, damaged or not a restic key)."""


@functools.cache
def _libcrypto() -> ctypes.CDLL:
    lib = ctypes.CDLL(ctypes.util.find_library("crypto") or "libcrypto.so.3")
    pointer = ctypes.c_void_p
    lib.EVP_CIPHER_CTX_new.restype = pointer
    lib.EVP_CIPHER_CTX_free.argtypes = [pointer]
    lib.EVP_CIPHER_CTX_set_padding.argtypes = [pointer, ctypes.c_int]
    lib.EVP_aes_256_ctr.restype = pointer
    lib.EVP_aes_128_ecb.restype = pointer
    lib.EVP_EncryptInit_ex.argtypes = [pointer, pointer, pointer, ctypes.c_char_p, ctypes.c_char_p]
    lib.EVP_EncryptUpdate.argtypes = [
        pointer, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int), ctypes.c_char_p, ctypes.c_int
    ]  # fmt: skip
    return lib


def _aes(mode: str, key: bytes, iv: bytes | None, data: bytes) -> bytes:
    """AES-256-CTR (``ctr``: encrypts and decrypts) or one AES-128 block (``ecb``), by OpenSSL."""
    lib = _libcrypto()
    cipher = lib.EVP_aes_256_ctr() if mode == "ctr" else lib.EVP_aes_128_ecb()
    context = lib.EVP_CIPHER_CTX_new()
    if not context:
        raise MemoryError("EVP_CIPHER_CTX_new")
    try:
        if lib.EVP_EncryptInit_ex(context, cipher, None, key, iv) != 1:
            raise KeyFileError("OpenSSL refused the AES key")
        lib.EVP_CIPHER_CTX_set_padding(context, 0)
        out, written = ctypes.create_string_buffer(len(data) + 32), ctypes.c_int(0)
        if lib.EVP_EncryptUpdate(context, out, ctypes.byref(written), data, len(data)) != 1:
            raise KeyFileError("OpenSSL AES failed")
        return out.raw[: written.value]
    finally:
        lib.EVP_CIPHER_CTX_free(context)


def _poly1305_aes(message: bytes, nonce: bytes, k: bytes, r: bytes) -> bytes:
    """restic's MAC: Poly1305 with the key r and s = AES-128_k(nonce) (RFC 8439 section 2.5.1)."""
    s = int.from_bytes(_aes("ecb", k, None, nonce), "little")
    clamped, accumulator = int.from_bytes(r, "little") & _CLAMP, 0
    for start in range(0, len(message), 16):
        block = message[start : start + 16] + b"\x01"
        accumulator = (accumulator + int.from_bytes(block, "little")) * clamped % _P1305
    return ((accumulator + s) % (1 << 128)).to_bytes(16, "little")


def _user_key(password: str, salt: bytes, n: int, r: int, p: int) -> tuple[bytes, bytes, bytes]:
    derived = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 << 20, dklen=64)
    return derived[:32], derived[32:48], derived[48:64]


def open_key(key_file: bytes, password: str) -> bytes:
    """The plaintext master key (restic's JSON) a key file seals, after checking its MAC."""
    try:
        document = json.loads(key_file)
        if document.get("kdf") != "scrypt":
            raise KeyFileError(f"unsupported key derivation {document.get('kdf')!r}")
        salt, data = base64.b64decode(document["salt"]), base64.b64decode(document["data"])
        n, r, p = int(document["N"]), int(document["r"]), int(document["p"])
    except (ValueError, KeyError, TypeError) as error:
        raise KeyFileError(f"not a restic key file: {error}") from None
    if len(data) < 33:
        raise KeyFileError("key data too short")
    encryption, mac_k, mac_r = _user_key(password, salt, n, r, p)
    nonce, ciphertext, tag = data[:16], data[16:-16], data[-16:]
    if not hmac.compare_digest(_poly1305_aes(ciphertext, nonce, mac_k, mac_r), tag):
        raise KeyFileError("wrong password or damaged key file (MAC mismatch)")
    return _aes("ctr", encryption, nonce, ciphertext)


def seal_key(master: bytes, password: str, *, username: str, hostname: str) -> bytes:
    """A new key file sealing ``master`` under ``password`` with restic's default scrypt parameters."""
    salt, nonce = os.urandom(_SALT_BYTES), os.urandom(16)
    params = DEFAULT_PARAMS
    encryption, mac_k, mac_r = _user_key(password, salt, params["N"], params["r"], params["p"])
    ciphertext = _aes("ctr", encryption, nonce, master)
    data = nonce + ciphertext + _poly1305_aes(ciphertext, nonce, mac_k, mac_r)
    document: dict[str, Any] = {
        "created": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "username": username, "hostname": hostname, "kdf": "scrypt", **params,
        "salt": base64.b64encode(salt).decode(), "data": base64.b64encode(data).decode(),
    }  # fmt: skip
    return json.dumps(document).encode()


def has_default_params(key_file: bytes) -> bool:
    """Whether a key file already uses restic's default scrypt parameters (nothing to re-seal)."""
    try:
        document = json.loads(key_file)
    except ValueError:
        return False
    return all(document.get(name) == value for name, value in DEFAULT_PARAMS.items())


def key_id(key_file: bytes) -> str:
    """A key file's name in the repository: the sha256 of its bytes, as restic names it."""
    return hashlib.sha256(key_file).hexdigest()
