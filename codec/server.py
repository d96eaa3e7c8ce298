"""The codec endpoint: Temporal's remote codec protocol over HTTP, on loopback.

The Temporal UI and CLI send `POST /decode` with a JSON body of payloads and
an `Authorization: Bearer <token>` header. The token is derived from a key of
the ring (`credflow keys token`), so only an operator who holds a key can have
payloads decoded; everyone else gets 401. `/encode` is off unless asked for:
an encoded payload is one a worker accepts, so encoding is starting work.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads

from codec.encryption import EncryptionCodec
from credentials.errors import SealingError
from credentials.sealing import KeyRing

log = logging.getLogger("credflow.codec")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8081
# The Temporal dev server's UI; add the origin of any other UI that decodes.
DEFAULT_ORIGINS = ("http://localhost:8233", "http://127.0.0.1:8233")
MAX_BODY = 8 * 1024 * 1024


def _handler(
    codec: EncryptionCodec, origins: frozenset[str], allow_encode: bool
) -> type:
    class CodecHandler(BaseHTTPRequestHandler):
        server_version = "credflow-codec"

        def log_message(self, format: str, *args: object) -> None:
            # Access lines only: method, path and status, never bodies or headers.
            log.info("%s %s", self.address_string(), format % args)

        def _cors(self) -> None:
            origin = self.headers.get("Origin")
            if origin and origin in origins:
                self.send_header("Access-Control-Allow-Origin", origin)
                self.send_header("Access-Control-Allow-Credentials", "true")
                self.send_header(
                    "Access-Control-Allow-Headers",
                    "Authorization, Content-Type, X-Namespace",
                )
                self.send_header("Access-Control-Allow-Methods", "POST, OPTIONS")
                self.send_header("Vary", "Origin")

        def _reply(self, status: HTTPStatus, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self._cors()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_OPTIONS(self) -> None:  # noqa: N802 (http.server's naming)
            self.send_response(HTTPStatus.OK)
            self._cors()
            self.send_header("Content-Length", "0")
            self.end_headers()

        def do_POST(self) -> None:  # noqa: N802
            path = self.path.rstrip("/").rsplit("/", 1)[-1]
            if path not in ("encode", "decode"):
                self._reply(HTTPStatus.NOT_FOUND, {"error": "use /decode"})
                return
            auth = self.headers.get("Authorization", "")
            scheme, _, token = auth.partition(" ")
            if scheme != "Bearer" or not codec.key_ring.accepts_token(token.strip()):
                self._reply(
                    HTTPStatus.UNAUTHORIZED,
                    {
                        "error": "a bearer token derived from a key of the ring is "
                        "required (`credflow keys token`)"
                    },
                )
                return
            if path == "encode" and not allow_encode:
                # Encoding makes payloads a worker accepts: that is starting
                # work, which needs the key ring, not a token to read with.
                self._reply(
                    HTTPStatus.FORBIDDEN,
                    {"error": "encoding is off (credflow codec-server --allow-encode)"},
                )
                return
            try:
                length = int(self.headers.get("Content-Length", ""))
            except ValueError:
                length = -1
            if length < 0:
                self._reply(HTTPStatus.LENGTH_REQUIRED, {"error": "Content-Length"})
                return
            if length > MAX_BODY:
                self._reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "too large"})
                return
            try:
                payloads = json_format.Parse(self.rfile.read(length), Payloads())
            except (json_format.ParseError, ValueError):
                self._reply(
                    HTTPStatus.BAD_REQUEST, {"error": "body is not JSON Payloads"}
                )
                return
            try:
                convert = codec.encode_one if path == "encode" else codec.decode_one
                result = Payloads(payloads=[convert(p) for p in payloads.payloads])
            except SealingError as err:
                self._reply(HTTPStatus.BAD_REQUEST, {"error": str(err)})
                return
            self.send_response(HTTPStatus.OK)
            self._cors()
            data = json_format.MessageToJson(result).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return CodecHandler


class CodecServer:
    """The codec endpoint in a background thread; a context manager."""

    def __init__(
        self,
        key_ring: KeyRing,
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        origins: Iterable[str] = DEFAULT_ORIGINS,
        allow_encode: bool = False,
    ) -> None:
        handler = _handler(
            EncryptionCodec(key_ring, accept_plain=True),
            frozenset(origins),
            allow_encode,
        )
        self._server = ThreadingHTTPServer((host, port), handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def __enter__(self) -> CodecServer:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
