"""ASGI middlewares that bound what one request may cost: body size and wall-clock time."""

import asyncio
import json
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from indexes.deadline import deadline_after

logger = logging.getLogger(__name__)

_WORK_GRACE_S = 0.2


async def _send_error(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Answer 413 to request bodies over `max_bytes`, by their Content-Length or as they stream in.

    The body is never read past the limit, so a huge upload costs no more memory than the limit.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _detail(self, size: str) -> str:
        return f"request body is {size}; the limit is {self.max_bytes} bytes (LOGITSEARCH_MAX_BODY_BYTES)"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length", b"")
        if length.isdigit() and int(length) > self.max_bytes:
            await _send_error(send, 413, self._detail(f"{int(length)} bytes"))
            return
        received = 0
        refused = False

        async def counting_receive() -> Message:
            # Past the limit, answer 413 ourselves and tell the app the client is gone (an exception here
            # would be turned into a 400 by the body parser).
            nonlocal received, refused
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes and not refused:
                refused = True
                await _send_error(send, 413, self._detail(f"over {self.max_bytes} bytes"))
            return {"type": "http.disconnect"} if refused else message

        async def guarded_send(message: Message) -> None:
            if not refused:  # after a 413 the app's own answer to the "disconnect" is dropped
                await send(message)

        await self.app(scope, counting_receive, guarded_send)


class RequestTimeout:
    """Answer 503 when a request runs longer than `seconds`.

    The client is answered at the deadline. Long work (divergence matrices, evaluations, image batches) checks
    the same deadline between blocks and stops; a step already running (one FAISS search, one write) finishes
    in the background (a write under way may still be applied: upserts are idempotent, so retrying is safe).
    """

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            # Long work checks this deadline and stops instead of burning CPU on; it falls just after the 503,
            # so that the answer is always this middleware's and never a half-sent response of the app's.
            # `asyncio.timeout` cancels this very task at the deadline: no task per request, as `wait_for` made.
            with deadline_after(self.seconds + _WORK_GRACE_S):
                async with asyncio.timeout(self.seconds):
                    await self.app(scope, receive, tracking_send)
        except TimeoutError:
            logger.warning("%s %s timed out after %.1f s", scope["method"], scope["path"], self.seconds)
            if not started:
                detail = (
                    f"the request took longer than {self.seconds:g} s (LOGITSEARCH_REQUEST_TIMEOUT_S); "
                    f"ask for less work (fewer queries, smaller k) or retry later"
                )
                await _send_error(send, 503, detail)
