"""Seal secret values with the workers' key ring (AES-256-GCM).

A key ring holds one key that seals and any number of older keys that still
unseal, so keys can be rotated without breaking running or replayed work.
Every sealed value records the id of the key that sealed it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from credentials.errors import KeyRingError, SealingError

KEYS_ENV = "CREDFLOW_KEYS"
KEYS_FILE_ENV = "CREDFLOW_KEYS_FILE"
SEALED_PREFIX = "sealed:v1:"

_KEY_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
_NONCE_BYTES = 12
_TOKEN_LABEL = b"credflow codec endpoint access v1"


class KeyRing:
    """AES-256-GCM keys by id: the first one seals, all of them unseal."""

    def __init__(self, keys: Mapping[str, bytes], *, active: str) -> None:
        if active not in keys:
            raise KeyRingError(f"the active key id {active!r} is not in the ring")
        for key_id, key in keys.items():
            if not _KEY_ID.match(key_id):
                raise KeyRingError(
                    f"key id {key_id!r} is not valid: use 1-64 letters, digits, "
                    "'_', '.' or '-'"
                )
            if len(key) != 32:
                raise KeyRingError(
                    f"key {key_id!r} is {len(key)} bytes; AES-256 needs 32 bytes "
                    "(generate one with `credflow keys generate`)"
                )
        self._keys = {key_id: AESGCM(key) for key_id, key in keys.items()}
        self._raw = dict(keys)
        self.active = active

    def __repr__(self) -> str:
        return f"KeyRing(active={self.active!r}, key_ids={self.key_ids!r})"

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    @classmethod
    def generate(cls, key_id: str = "k1") -> KeyRing:
        return cls({key_id: AESGCM.generate_key(bit_length=256)}, active=key_id)

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """Read `id:base64key,id:base64key`; the first entry seals."""
        keys: dict[str, bytes] = {}
        entries = [part.strip() for part in re.split(r"[,\n]", text) if part.strip()]
        if not entries:
            raise KeyRingError("the key ring is empty")
        for entry in entries:
            key_id, sep, encoded = entry.partition(":")
            if not sep:
                raise KeyRingError(
                    "a key ring entry has no id: write each key as id:base64key"
                )
            if not _KEY_ID.match(key_id.strip()):
                # Likely the halves swapped: the part before ':' may be a key.
                raise KeyRingError(
                    f"entry {len(keys) + 1} of the key ring does not start with a "
                    "key id (1-64 letters, digits, '_', '.' or '-'): write each "
                    "key as id:base64key, id first"
                )
            if key_id.strip() in keys:
                raise KeyRingError(
                    f"key id {key_id.strip()!r} appears twice in the key ring: "
                    "give every key its own id"
                )
            try:
                keys[key_id.strip()] = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                # The entry is a key: never quote it back.
                raise KeyRingError(
                    f"key {key_id.strip()!r} is not valid base64"
                ) from None
        first = entries[0].partition(":")[0].strip()
        return cls(keys, active=first)

    def encrypt(self, data: bytes, *, purpose: str) -> tuple[str, bytes]:
        """Encrypt with the active key; returns its id and nonce + ciphertext."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[self.active].encrypt(nonce, data, purpose.encode())
        return self.active, nonce + sealed

    def decrypt(self, key_id: str, blob: bytes, *, purpose: str) -> bytes:
        aead = self._keys.get(key_id)
        if aead is None:
            if not _KEY_ID.match(key_id):
                # Not a key id at all: perhaps a value that only looks sealed.
                raise SealingError("the value is not sealed with a credflow key ring")
            raise SealingError(
                f"the value was encrypted with key {key_id!r}, which this key ring "
                f"({', '.join(self._keys)}) does not hold; add that key to the ring "
                "(after the active one) to read it"
            )
        try:
            return aead.decrypt(
                blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], purpose.encode()
            )
        except (InvalidTag, ValueError):
            raise SealingError(
                f"the value encrypted with key {key_id!r} does not decrypt: the key "
                "with that id differs from the one that encrypted it, or the value "
                "was altered"
            ) from None

    def holds(self, key_id: str) -> bool:
        return key_id in self._keys

    def access_token(self, key_id: str | None = None) -> str:
        """A bearer token derived from a key: proof of holding it, not the key."""
        key_id = key_id or self.active
        return base64.urlsafe_b64encode(
            hmac.digest(self._raw[key_id], _TOKEN_LABEL, "sha256")
        ).decode()

    def accepts_token(self, token: str) -> bool:
        # Compared as bytes: any header text, non-ASCII included, is just wrong.
        given = token.encode("utf-8", "replace")
        return any(
            hmac.compare_digest(given, self.access_token(key_id).encode())
            for key_id in self._keys
        )

    def seal(self, plaintext: str, *, purpose: str) -> str:
        key_id, blob = self.encrypt(plaintext.encode(), purpose=purpose)
        return f"{SEALED_PREFIX}{key_id}:{base64.urlsafe_b64encode(blob).decode()}"

    def unseal(self, sealed: str, *, purpose: str) -> str:
        if not sealed.startswith(SEALED_PREFIX):
            raise SealingError("the value is not sealed with a credflow key ring")
        key_id, _, text = sealed[len(SEALED_PREFIX) :].partition(":")
        try:
            blob = base64.urlsafe_b64decode(text.encode())
        except (ValueError, binascii.Error):
            raise SealingError("the sealed value is not valid base64") from None
        return self.decrypt(key_id, blob, purpose=purpose).decode()


def is_sealed(value: str) -> bool:
    """True for a value in the exact form `seal` writes, not one that only starts so.

    A typed-in password may begin with the prefix; it is a password, not a seal.
    """
    if not value.startswith(SEALED_PREFIX):
        return False
    key_id, sep, text = value[len(SEALED_PREFIX) :].partition(":")
    if not sep or not _KEY_ID.match(key_id):
        return False
    try:
        blob = base64.urlsafe_b64decode(text.encode())
    except (ValueError, binascii.Error):
        return False
    # Nonce and authentication tag at least, and canonical base64.
    return len(blob) >= _NONCE_BYTES + 16 and (
        base64.urlsafe_b64encode(blob).decode() == text
    )


def generate_key_text(key_id: str = "k1") -> str:
    """A new key in the `id:base64key` form that `KeyRing.parse` reads."""
    if not _KEY_ID.match(key_id):
        raise KeyRingError(f"key id {key_id!r} is not valid")
    key = AESGCM.generate_key(bit_length=256)
    return f"{key_id}:{base64.b64encode(key).decode()}"


def load_key_ring(environ: Mapping[str, str] | None = None) -> KeyRing:
    """The key ring from CREDFLOW_KEYS, or from the file CREDFLOW_KEYS_FILE names."""
    env = os.environ if environ is None else environ
    if env.get(KEYS_ENV):
        return KeyRing.parse(env[KEYS_ENV])
    if env.get(KEYS_FILE_ENV):
        path = Path(env[KEYS_FILE_ENV])
        try:
            return KeyRing.parse(path.read_text())
        except OSError as exc:
            raise KeyRingError(
                f"cannot read the key ring file {str(path)!r} named by "
                f"{KEYS_FILE_ENV}: {exc.strerror}"
            ) from None
    raise KeyRingError(
        f"no key ring: set {KEYS_ENV} to `id:base64key[,id:base64key...]` or "
        f"{KEYS_FILE_ENV} to a file holding it (generate a key with "
        "`credflow keys generate`)"
    )


_installed: list[KeyRing] = []
_lock = threading.Lock()


# Limitation: a process holding several rings at once (only tests do) seals
# credential fields with the ring installed last; each codec keeps its own ring.
class _InstalledRings:
    """Every ring installed in this process: the newest seals, any one unseals.

    A process normally has one ring. Keeping all of them lets two workers with
    different rings (during a key rotation) share a process.
    """

    def __init__(self, rings: list[KeyRing]) -> None:
        self._rings = rings

    def seal(self, plaintext: str, *, purpose: str) -> str:
        return self._rings[-1].seal(plaintext, purpose=purpose)

    def unseal(self, sealed: str, *, purpose: str) -> str:
        key_id = sealed[len(SEALED_PREFIX) :].partition(":")[0]
        holders = [r for r in reversed(self._rings) if r.holds(key_id)] or [
            self._rings[-1]
        ]
        error: SealingError | None = None
        for ring in holders:
            try:
                return ring.unseal(sealed, purpose=purpose)
            except SealingError as exc:
                error = exc
        assert error is not None
        raise error


def install_key_ring(ring: KeyRing | None) -> None:
    """Make `ring` seal credential fields in this process; None removes them all."""
    with _lock:
        if ring is None:
            _installed.clear()
        elif ring not in _installed:
            _installed.append(ring)
        else:
            _installed.remove(ring)
            _installed.append(ring)


def installed_key_ring() -> _InstalledRings:
    with _lock:
        rings = list(_installed)
    if not rings:
        raise SealingError(
            "a credential cannot be serialized in plaintext and no key ring is "
            "installed in this process: start the worker or client with a key ring"
        )
    return _InstalledRings(rings)
