"""Encrypt every Temporal payload with the key ring (AES-256-GCM).

Each encrypted payload records the id of the key that encrypted it, so a ring
that encrypts with a new key still decrypts what older keys wrote.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticPayloadConverter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from credentials.sealing import KeyRing, install_key_ring

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
_PURPOSE = "credflow/temporal-payload/v1"


class EncryptionCodec(PayloadCodec):
    """Encrypts whole payloads (metadata and data) with the ring's active key."""

    def __init__(self, key_ring: KeyRing) -> None:
        self.key_ring = key_ring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encode_one(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decode_one(p) for p in payloads]

    def encode_one(self, payload: Payload) -> Payload:
        key_id, blob = self.key_ring.encrypt(
            payload.SerializeToString(), purpose=_PURPOSE
        )
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=blob
        )

    def decode_one(self, payload: Payload) -> Payload:
        # Payloads written before encryption was on pass through unchanged.
        if payload.metadata.get("encoding") != ENCODING:
            return payload
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        plain = self.key_ring.decrypt(key_id, payload.data, purpose=_PURPOSE)
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded


def encrypted_data_converter(key_ring: KeyRing) -> DataConverter:
    """Pydantic payloads, all encrypted; failure messages and stack traces too."""
    install_key_ring(key_ring)
    return dataclasses.replace(
        DataConverter.default,
        payload_converter_class=PydanticPayloadConverter,
        payload_codec=EncryptionCodec(key_ring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
