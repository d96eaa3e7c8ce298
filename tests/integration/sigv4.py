"""Check an RDS IAM authentication token's SigV4 query signature by recomputing it."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote


@dataclass(frozen=True)
class ParsedToken:
    host: str
    query: dict[str, str]
    access_key_id: str
    scope_date: str
    scope_region: str
    scope_service: str
    signed_at: datetime


def parse_token(token: str) -> ParsedToken:
    host, _, query_text = token.partition("/?")
    query = dict(parse_qsl(query_text, keep_blank_values=True))
    key_id, date, region, service, _ = query["X-Amz-Credential"].split("/")
    signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=UTC
    )
    return ParsedToken(host, query, key_id, date, region, service, signed_at)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def verify_token(token: str, secret_access_key: str) -> None:
    """Raise AssertionError unless the token's signature matches the key."""
    parsed = parse_token(token)
    query = dict(parsed.query)
    signature = query.pop("X-Amz-Signature")
    canonical_query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(v, safe='-_.~')}"
        for k, v in sorted(query.items())
    )
    payload_hash = hashlib.sha256(b"").hexdigest()
    canonical_request = "\n".join(
        ["GET", "/", canonical_query, f"host:{parsed.host}", "", "host", payload_hash]
    )
    scope = (
        f"{parsed.scope_date}/{parsed.scope_region}/{parsed.scope_service}/aws4_request"
    )
    string_to_sign = "\n".join(
        [
            "AWS4-HMAC-SHA256",
            query["X-Amz-Date"],
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = _hmac(f"AWS4{secret_access_key}".encode(), parsed.scope_date)
    for part in (parsed.scope_region, parsed.scope_service, "aws4_request"):
        key = _hmac(key, part)
    expected = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, signature), "the token's signature is wrong"
