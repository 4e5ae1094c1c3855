"""An early refusal of a request with a body ends the connection (issue #32): the unread body is never parsed
as the next request on it. Real uvicorn, a raw socket."""

import socket

from service.config import Settings
from tests.servers import serving

BODY = b'{"items": [' + b" " * 2_000_000 + b"]}"


def _next_request_after_a_refusal(url: str, head: bytes) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        raw.sendall(head + f"Content-Length: {len(BODY)}\r\n\r\n".encode() + BODY)
        first = raw.recv(65536)
        assert first.startswith((b"HTTP/1.1 401", b"HTTP/1.1 415")), first
        try:
            raw.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            return raw.recv(65536)
        except (BrokenPipeError, ConnectionResetError):
            return b""


def test_a_401_to_a_large_body_closes_the_connection_instead_of_a_431_next(settings: Settings) -> None:
    keyed = Settings(**(settings.model_dump() | {"api_key": "the-key"}))
    with serving(keyed) as url:
        head = b"POST /v1/items HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        assert not _next_request_after_a_refusal(url, head).startswith(b"HTTP/1.1 4")
        wrong_type = b"POST /v1/items HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: the-key\r\nContent-Type: text/plain\r\n"
        assert not _next_request_after_a_refusal(url, wrong_type).startswith(b"HTTP/1.1 4")
