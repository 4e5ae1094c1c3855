"""Who may call what, decided before a request body is read: API keys, roles and allowed Host headers."""

import hmac
import json
import logging
from functools import partial
from typing import Literal

from starlette.types import ASGIApp, Receive, Scope, Send

from ..config import Settings

logger = logging.getLogger(__name__)

#: Open to anyone whatever the keys: orchestrators probe /health and /ready; the web page's files hold no data
#: (the page asks for the key and sends it with each API call it makes). The docs and the schema stay behind it.
OPEN_PATHS = frozenset({"/health", "/ready", "/"})
OPEN_PREFIXES = ("/ui/",)
Role = Literal["write", "read", "anonymous"]


def presented_key(headers: dict[bytes, bytes]) -> str | None:
    """The key of `Authorization: Bearer <key>` or `X-API-Key: <key>`, if any."""
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    key = headers.get(b"x-api-key")
    return key.decode("latin-1") if key is not None else None


def _matches(presented: str, expected: str) -> bool:
    return hmac.compare_digest(presented.encode(), expected.encode())


class AccessControl:
    """Refuse a request before its body is read: a Host header that is not allowed (400, against DNS
    rebinding), a missing or wrong key when one is configured (401), a body that is neither JSON nor
    multipart (415: a cross-origin page can send text/plain without asking). The caller's role goes to
    `request.state.role` for the routes that write (`deps.require_write_key`: 403 for a read-only key).
    """

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.allowed_hosts = settings.resolved_allowed_hosts()
        self.write_key = settings.api_key.get_secret_value() if settings.api_key else None
        self.read_key = settings.read_only_api_key.get_secret_value() if settings.read_only_api_key else None
        self.reads_open = settings.protect_reads is False  # the deprecated way to leave reads open

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        # A refusal leaves a request body unread: the connection closes after it, or the body's bytes would be
        # parsed as the next request on it (a 431 for a large body).
        refuse = partial(_refuse, send, close=_has_body(scope["method"], headers))
        host = headers.get(b"host", b"").decode("latin-1")
        if not self._host_allowed(host):
            await refuse(400, f"Host {host!r} is not allowed here; add it to LOGITSEARCH_ALLOWED_HOSTS")
            return
        role = self._role(headers)
        if role is None and not is_open(scope["path"]):
            await refuse(
                401,
                "missing or wrong API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`",
                [(b"www-authenticate", b"Bearer")],
            )
            return
        content_type = headers.get(b"content-type", b"")
        if _has_body(scope["method"], headers) and not _acceptable_type(content_type):
            sent = content_type.decode("latin-1").split(";", 1)[0].strip()
            await refuse(
                415,
                "send the body as application/json (or multipart/form-data where a route takes files), "
                f"with that Content-Type header; this body came {f'as {sent}' if sent else 'without one'}",
            )
            return
        scope.setdefault("state", {})["role"] = role or "anonymous"
        await self.app(scope, receive, send)

    def _role(self, headers: dict[bytes, bytes]) -> Role | None:
        if self.write_key is None:
            return "write"
        key = presented_key(headers)
        if key is not None and _matches(key, self.write_key):
            return "write"
        if key is not None and self.read_key is not None and _matches(key, self.read_key):
            return "read"
        return "anonymous" if self.reads_open else None

    def _host_allowed(self, host: str) -> bool:
        if "*" in self.allowed_hosts:
            return True
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        name = name.strip("[]").lower()
        return any(
            name == allowed or (allowed.startswith("*.") and name.endswith(allowed[1:]))
            for allowed in self.allowed_hosts
        )


def is_open(path: str) -> bool:
    """Whether `path` is served without a key (`OPEN_PATHS`, and the static files under `OPEN_PREFIXES`)."""
    return path in OPEN_PATHS or (path.startswith(OPEN_PREFIXES) and "/.." not in path)


def _has_body(method: str, headers: dict[bytes, bytes]) -> bool:
    if method not in ("POST", "PUT", "PATCH"):
        return False
    return headers.get(b"content-length", b"0") not in (b"0", b"") or b"transfer-encoding" in headers


def _acceptable_type(content_type: bytes) -> bool:
    media = content_type.split(b";", 1)[0].strip().lower()
    return media in (b"application/json", b"multipart/form-data") or media.endswith(b"+json")


async def _refuse(
    send: Send, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None, *, close: bool = False
) -> None:
    """Answer `status` with `{"detail": ...}`; `close` ends the connection after it (uvicorn honours the header)."""
    body = json.dumps({"detail": detail}).encode()
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(headers or [])]
    if close:
        start.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": start})
    await send({"type": "http.response.body", "body": body})
