"""Payload encryption for Temporal and the codec endpoint that decodes for operators."""

from codec.encryption import ENCODING, EncryptionCodec, encrypted_data_converter

__all__ = ["ENCODING", "EncryptionCodec", "encrypted_data_converter"]
