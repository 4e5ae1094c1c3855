"""The HTTP server: uvicorn on the app, with bounds on what a client may send before its request starts.

uvicorn's parser (httptools) accepts a header of any size, buffering it while it grows, and waits for headers
as long as bytes keep trickling in: one 100 MB header line stalls the event loop for seconds, and a few
hundred connections sending a byte every second hold the server's sockets. This protocol counts the bytes
of each request head (request line and headers) and answers 431 past `MAX_HEADER_BYTES`, and closes a
connection whose head is not complete `HEADER_TIMEOUT_S` after it started (408).
"""

import asyncio
import json
import logging
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from ..config import Settings

logger = logging.getLogger(__name__)


class BoundedHeadProtocol(HttpToolsProtocol):
    """`HttpToolsProtocol` with a size and a time limit on each request head; see the module docstring."""

    max_head_bytes = 65_536
    head_timeout_s = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_request = True
        self._head_bytes: int | None = None  # None: not reading a head
        self._head_timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if self._awaiting_request:  # the first bytes of a new request: its head starts here
            self._awaiting_request = False
            self._head_bytes = 0
            self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)
        super().data_received(data)
        if self._head_bytes is not None and not self.transport.is_closing():
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes:
                self._refuse(431, "Request Header Fields Too Large", f"at most {self.max_head_bytes} bytes of headers")

    def on_headers_complete(self) -> None:
        self._stop_head_clock()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._awaiting_request = True

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_clock()
        super().connection_lost(exc)

    def _stop_head_clock(self) -> None:
        self._head_bytes = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._head_bytes is not None and not self.transport.is_closing():
            self._refuse(408, "Request Timeout", f"the request head took longer than {self.head_timeout_s:g} s")

    def _refuse(self, status: int, reason: str, detail: str) -> None:
        self._stop_head_clock()
        body = json.dumps({"detail": f"{detail} (LOGITSEARCH_MAX_HEADER_BYTES, LOGITSEARCH_HEADER_TIMEOUT_S)"}).encode()
        head = (
            f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        ).encode()
        logger.warning("refusing a request from %s: %s", self.client, detail)
        self.transport.write(head + body)
        self.transport.close()


def server_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """The uvicorn configuration of the service: one worker, bounded request heads."""
    protocol = type(
        "ServiceProtocol",
        (BoundedHeadProtocol,),
        {"max_head_bytes": settings.max_header_bytes, "head_timeout_s": settings.header_timeout_s},
    )
    options: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": settings.log_level,
        "http": protocol,
    }
    return uvicorn.Config(app, **(options | overrides))
