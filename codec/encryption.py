"""Encrypt every Temporal payload with the key ring (AES-256-GCM).

Each encrypted payload records the id of the key that encrypted it, so a ring
that encrypts with a new key still decrypts what older keys wrote.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
    PayloadCodec,
)

from credentials.errors import SealingError
from credentials.sealing import KeyRing, install_key_ring

log = logging.getLogger("credflow.codec")

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
_PURPOSE = "credflow/temporal-payload/v1"


class EncryptionCodec(PayloadCodec):
    """Encrypts whole payloads (metadata and data) with the ring's active key."""

    def __init__(self, key_ring: KeyRing, *, accept_plain: bool = False) -> None:
        self.key_ring = key_ring
        # Workers refuse plain payloads; the codec endpoint shows them as they are.
        self.accept_plain = accept_plain

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
        # Only a key holder can make a payload the worker accepts: a plain one
        # (a workflow started without the key ring) is refused, not run.
        if payload.metadata.get("encoding") != ENCODING:
            if self.accept_plain:
                return payload
            # Only a key holder can make a payload a worker reads. A plain one
            # (a workflow or signal from a client without the key ring) is
            # read as empty: its workflow fails cleanly, a signal does nothing,
            # and the run it was sent to is not stuck on it.
            log.warning("read a payload that is not encrypted as empty")
            return Payload(metadata={"encoding": b"binary/null"})
        try:
            key_id = payload.metadata.get(KEY_ID, b"").decode("ascii")
        except UnicodeDecodeError:
            raise SealingError("a payload's encryption key id is not valid") from None
        plain = self.key_ring.decrypt(key_id, payload.data, purpose=_PURPOSE)
        decoded = Payload()
        decoded.ParseFromString(plain)
        return decoded


# Limitation: an input that does not match its model fails the workflow task,
# which Temporal retries until the run is terminated; `credflow run` checks
# descriptions before starting one.
class _HiddenInputJSONConverter(PydanticJSONPlainPayloadConverter):
    """Pydantic JSON whose validation errors never quote the value they reject.

    A workflow input that does not match its model would otherwise put the
    offending value, a password given as a number say, in the worker's log and
    in the task's failure.
    """

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        try:
            return super().from_payload(payload, type_hint)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or '(value)'}: {e['msg']}"
                for e in exc.errors(include_input=False, include_url=False)
            )
            raise ValueError(
                f"a payload does not match {getattr(type_hint, '__name__', 'its type')}"
                f": {problems}"
            ) from None


class CredflowPayloadConverter(CompositePayloadConverter):
    """The default converters, with JSON read and written by pydantic."""

    def __init__(self) -> None:
        json = _HiddenInputJSONConverter()
        super().__init__(
            *(
                json if isinstance(c, JSONPlainPayloadConverter) else c
                for c in DefaultPayloadConverter.default_encoding_payload_converters
            )
        )


def encrypted_data_converter(key_ring: KeyRing) -> DataConverter:
    """Pydantic payloads, all encrypted; failure messages and stack traces too."""
    install_key_ring(key_ring)
    return dataclasses.replace(
        DataConverter.default,
        payload_converter_class=CredflowPayloadConverter,
        payload_codec=EncryptionCodec(key_ring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
