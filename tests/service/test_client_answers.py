"""The client on a 2xx that is not the service's answer (issue #32): a `LogitSearchError`, never pydantic's
`ValidationError` or a `JSONDecodeError`. The server is a real HTTP server on a socket (a wrong URL, a proxy's
login page), so the client reads real responses through httpx."""

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from service.client import AsyncClient, Client, LogitSearchError, UnexpectedResponse

#: What the impostor answers, by path prefix: a proxy's HTML page, and JSON of another shape.
ANSWERS = {
    "/v1/info": ("text/html; charset=utf-8", b"<!doctype html><title>Sign in</title><form>...</form>"),
    "/v1/indexes": ("application/json", b'{"indexes": [{"name": 3}]}'),
    "/v1/items/": ("application/json", b"[1, 2, 3]"),
    "/health": ("application/json", b"not json"),
}


class _Impostor(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        kind, body = next(answer for prefix, answer in ANSWERS.items() if self.path.startswith(prefix))
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's signature
        """Quiet."""


@pytest.fixture(scope="module")
def impostor() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Impostor)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_the_client_raises_its_own_error_on_a_2xx_that_is_not_the_answer(impostor: str) -> None:
    with Client(impostor) as client:
        with pytest.raises(UnexpectedResponse) as html:
            client.info()
        assert html.value.status == 200 and "text/html" in str(html.value) and "<!doctype html>" in str(html.value)
        assert "logit-search service" in str(html.value)
        for call in (client.list_indexes, lambda: client.get_item("a"), client.health):
            with pytest.raises(LogitSearchError) as raised:
                call()
            assert isinstance(raised.value, UnexpectedResponse) and raised.value.status == 200


def test_the_async_client_raises_its_own_error_too(impostor: str) -> None:
    async def main() -> list[BaseException | object]:
        async with AsyncClient(impostor) as client:
            return await asyncio.gather(client.info(), client.list_indexes(), return_exceptions=True)

    outcomes = asyncio.run(main())
    assert all(isinstance(outcome, UnexpectedResponse) for outcome in outcomes), outcomes
