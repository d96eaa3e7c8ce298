"""The codec endpoint answers every request, however malformed, and guards /encode."""

from __future__ import annotations

import http.client
import json

import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from codec.encryption import EncryptionCodec
from codec.server import CodecServer
from credentials.sealing import KeyRing

RING = KeyRing.generate("k1")


def body_of(*payloads: Payload) -> bytes:
    return json_format.MessageToJson(Payloads(payloads=list(payloads))).encode()


def request(server, path, body=b"", headers=None):
    host, port = server.url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    connection.putrequest("POST", path)
    for name, value in (headers or {}).items():
        connection.putheader(name, value)
    connection.endheaders(body)
    response = connection.getresponse()
    return response.status, response.read()


def auth(token: str | None = None) -> dict:
    return {"Authorization": f"Bearer {token or RING.access_token()}"}


@pytest.fixture
def server():
    with CodecServer(RING, port=0) as running:
        yield running


def encrypted(text: str) -> Payload:
    plain = Payload(metadata={"encoding": b"json/plain"}, data=text.encode())
    return EncryptionCodec(RING).encode_one(plain)


def test_decode_with_the_token(server):
    body = body_of(encrypted('"hello"'))
    status, answer = request(
        server, "/decode", body, {**auth(), "Content-Length": str(len(body))}
    )
    assert status == 200
    decoded = json_format.Parse(answer, Payloads())
    assert decoded.payloads[0].data == b'"hello"'


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": RING.access_token()},  # no "Bearer "
        {"Authorization": "Bearer \u00e9t\u00e9"},
        {"Authorization": f"Basic {RING.access_token()}"},
    ],
)
def test_anything_but_the_token_is_refused(server, headers):
    body = body_of(encrypted('"hello"'))
    status, answer = request(
        server, "/decode", body, {**headers, "Content-Length": str(len(body))}
    )
    assert status == 401
    assert b"hello" not in answer


@pytest.mark.parametrize("length", ["abc", "-1", None])
def test_a_bad_content_length_is_answered(server, length):
    headers = auth()
    if length is not None:
        headers["Content-Length"] = length
    status, _ = request(server, "/decode", b"", headers)
    assert status == 411
    # And the server still answers the next caller.
    body = body_of(encrypted('"still here"'))
    status, _ = request(
        server, "/decode", body, {**auth(), "Content-Length": str(len(body))}
    )
    assert status == 200


def test_a_payload_with_a_bad_key_id_is_a_bad_request(server):
    bad = encrypted('"x"')
    bad.metadata["encryption-key-id"] = b"\xff\xfe"
    body = body_of(bad)
    status, answer = request(
        server, "/decode", body, {**auth(), "Content-Length": str(len(body))}
    )
    assert status == 400
    assert b"not valid" in answer


def test_encode_is_off_unless_asked_for(server):
    body = body_of(Payload(metadata={"encoding": b"json/plain"}, data=b'"x"'))
    headers = {**auth(), "Content-Length": str(len(body))}
    assert request(server, "/encode", body, headers)[0] == 403
    with CodecServer(RING, port=0, allow_encode=True) as encoding:
        status, answer = request(encoding, "/encode", body, headers)
    assert status == 200
    assert json.loads(answer)["payloads"][0]["metadata"]["encoding"]


def test_workers_read_a_plain_payload_as_empty_the_endpoint_shows_it():
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')
    emptied = EncryptionCodec(RING).decode_one(plain)
    assert emptied.metadata["encoding"] == b"binary/null"
    assert emptied.data == b""
    assert EncryptionCodec(RING, accept_plain=True).decode_one(plain) == plain
