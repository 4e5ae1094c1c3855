"""Access control over real HTTP: read-only keys, keys checked before bodies are read, Host headers, JSON only."""

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from pydantic import ValidationError

from service.config import Settings
from tests.helpers import b64, digit_png
from tests.servers import serving

KEYS = {"api_key": "rw-key", "read_only_api_key": "ro-key"}


def _keyed(settings: Settings, **changes: object) -> Settings:
    return Settings(**(settings.model_dump() | KEYS | changes))


def test_a_read_only_key_reads_and_gets_403_on_writes(settings: Settings) -> None:
    item = {"items": [{"id": "k", "logits": [0.0] * 10}]}
    with serving(_keyed(settings)) as url, httpx.Client(base_url=url, headers={"X-API-Key": "ro-key"}) as reader:
        assert reader.get("/v1/items/digits-1").status_code == 200
        assert reader.post("/v1/search", json={"queries": [{"id": "digits-1"}], "k": 1}).status_code == 200
        assert reader.post("/v1/embed", json={"images": [b64(digit_png(1))]}).status_code == 200
        assert reader.get("/v1/indexes").status_code == 200 and reader.get("/metrics").status_code == 200
        for response in (
            reader.post("/v1/items", json=item),
            reader.delete("/v1/items/digits-1"),
            reader.post("/v1/indexes", json={"name": "x", "model": "digits-cnn"}),
            reader.delete("/v1/indexes/x"),
        ):
            assert response.status_code == 403 and "only read" in response.json()["detail"]
        writer = {"Authorization": "Bearer rw-key"}
        assert httpx.post(f"{url}/v1/items", json=item, headers=writer).status_code == 200
        assert reader.get("/v1/items/k").status_code == 200


def test_the_key_is_checked_before_the_body_is_read(settings: Settings) -> None:
    """A client that announces a huge body but sends none gets its 401 at once, not after a read."""
    with serving(_keyed(settings, max_body_bytes=2**30)) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            raw.sendall(
                b"POST /v1/items HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: 500000000\r\n\r\n{"
            )
            started = time.monotonic()
            reply = raw.recv(4096)
            assert reply.startswith(b"HTTP/1.1 401") and time.monotonic() - started < 2


def test_deprecated_protect_reads_false_still_leaves_reads_open(settings: Settings) -> None:
    with serving(_keyed(settings, protect_reads=False)) as url:
        assert httpx.get(f"{url}/v1/items/digits-1").status_code == 200
        assert httpx.post(f"{url}/v1/items", json={"items": [{"id": "k", "logits": [0.0] * 10}]}).status_code == 401


def test_hosts_outside_the_allowed_list_are_refused(settings: Settings) -> None:
    local = Settings(**(settings.model_dump() | {"allowed_hosts": []}))  # the default, bound to 127.0.0.1
    assert local.resolved_allowed_hosts() == ["127.0.0.1", "localhost", "::1"]
    with serving(local) as url:
        assert httpx.get(f"{url}/v1/info").status_code == 200
        assert httpx.get(f"{url}/v1/info", headers={"Host": "localhost:8000"}).status_code == 200
        rebound = httpx.get(f"{url}/v1/info", headers={"Host": "attacker.example:8000"})
        assert rebound.status_code == 400 and "ALLOWED_HOSTS" in rebound.json()["detail"]
        assert httpx.get(f"{url}/health", headers={"Host": "attacker.example"}).status_code == 400
    wildcard = Settings(**(settings.model_dump() | {"allowed_hosts": "*.example.com,127.0.0.1"}))
    with serving(wildcard) as url:
        assert httpx.get(f"{url}/v1/info", headers={"Host": "api.example.com"}).status_code == 200
        assert httpx.get(f"{url}/v1/info", headers={"Host": "example.org"}).status_code == 400
    assert Settings(host="0.0.0.0", allowed_hosts=[]).resolved_allowed_hosts() == ["*"]


@pytest.mark.parametrize("path", ["/v1/embed", "/v1/search", "/v1/items", "/v1/divergence"])
def test_json_endpoints_refuse_other_content_types(settings: Settings, path: str) -> None:
    with serving(settings) as url:
        for content_type in ("text/plain", None, "application/x-www-form-urlencoded"):
            headers = {"content-type": content_type} if content_type else {}
            response = httpx.post(f"{url}{path}", content=b'{"images": []}', headers=headers)
            assert response.status_code == 415, (path, content_type, response.text)
            assert "application/json" in response.json()["detail"]


def test_a_body_of_the_other_kind_is_415_naming_the_content_type(settings: Settings) -> None:
    query = {"queries": [{"id": "digits-1"}], "k": 1}
    with serving(settings) as url:
        bare = httpx.post(f"{url}/v1/search", content=json.dumps(query).encode())  # JSON, no Content-Type
        assert bare.status_code == 415 and "came without one" in bare.json()["detail"]
        for path in ("/v1/search", "/v1/items", "/v1/divergence", "/v1/indexes/default/search"):
            upload = httpx.post(f"{url}{path}", files={"file": ("q.json", json.dumps(query).encode())})
            assert upload.status_code == 415, (path, upload.text)
            detail = upload.json()["detail"]
            assert f"POST {path} takes a JSON body" in detail and "came as multipart/form-data" in detail
        as_json = httpx.post(f"{url}/v1/search/image", json={"k": 3})
        assert as_json.status_code == 415 and "takes a multipart/form-data upload" in as_json.json()["detail"]
        assert "came as application/json" in as_json.json()["detail"]
        embedded = httpx.post(f"{url}/v1/embed", files={"files": ("seven.png", digit_png(7))})
        assert embedded.status_code == 200  # a route that takes both kinds takes both
        assert httpx.post(f"{url}/v1/search", json=query).status_code == 200


def test_key_settings_are_checked() -> None:
    with pytest.raises(ValidationError, match="needs API_KEY"):
        Settings(read_only_api_key="ro")
    with pytest.raises(ValidationError, match="must differ"):
        Settings(api_key="same", read_only_api_key="same")


POST_FILE = """
import sys, httpx
body = open(sys.argv[2], "rb").read()
response = httpx.post(sys.argv[1], content=body, headers={"content-type": "application/json"}, timeout=120)
print(response.status_code)
"""


def test_health_answers_while_a_large_body_is_parsed(settings: Settings, tmp_path: Path) -> None:
    """A 20 MB body from another process is parsed off the event loop: `/health` answers within a second."""
    rows = np.random.default_rng(0).standard_normal((100_000, 10)).round(6).tolist()
    body_file = tmp_path / "body.json"
    body_file.write_text(json.dumps({"a": rows, "b": rows, "measures": ["kl"]}))
    assert body_file.stat().st_size > 20e6
    roomy = Settings(**(settings.model_dump() | {"max_batch": 300_000}))
    with serving(roomy) as url:
        poster = subprocess.Popen(
            [sys.executable, "-c", POST_FILE, f"{url}/v1/divergence", str(body_file)], stdout=subprocess.PIPE
        )
        latencies, began = [], time.monotonic()
        with httpx.Client(base_url=url, timeout=30) as http:
            while poster.poll() is None:
                started = time.monotonic()
                assert http.get("/health").status_code == 200
                latencies.append(time.monotonic() - started)
                time.sleep(0.02)
        assert poster.stdout is not None and poster.stdout.read().strip() == b"200"
        assert len(latencies) > 5
        # A blocked loop would hold /health for most of the parse; on a loaded machine everything is slower.
        limit = max(1.0, 0.4 * (time.monotonic() - began))
        assert max(latencies) < limit, f"/health took {max(latencies):.2f} s while the body was parsed"


def _raw_exchange(url: str, request: bytes, timeout: float = 10) -> tuple[bytes, float]:
    """Send raw bytes, return what comes back until the server closes, and how long that took."""
    host, port = url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=timeout) as raw:
        try:
            raw.sendall(request)
        except OSError:  # the server may close while a huge head is still being sent
            pass
        reply = b""
        while chunk := raw.recv(65536):
            reply += chunk
    return reply, time.monotonic() - started


def test_a_huge_header_is_431_at_once_and_the_server_stays_healthy(settings: Settings) -> None:
    with serving(settings) as url:
        huge = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20_000_000 + b"\r\n\r\n"
        reply, took = _raw_exchange(url, huge)
        assert reply.startswith(b"HTTP/1.1 431") and b"MAX_HEADER_BYTES" in reply and took < 5
        assert httpx.get(f"{url}/health").status_code == 200
        fits = httpx.get(f"{url}/health", headers={"X-Fits": "b" * 30_000})
        assert fits.status_code == 200


def test_slow_request_heads_are_cut_off(settings: Settings) -> None:
    quick = Settings(**(settings.model_dump() | {"header_timeout_s": 1.0}))
    with serving(quick) as url:
        host, port = url.removeprefix("http://").split(":")
        dribblers = [socket.create_connection((host, int(port)), timeout=10) for _ in range(20)]
        try:
            started = time.monotonic()
            for connection in dribblers:
                connection.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            for _ in range(3):  # a byte every 0.3 s each: data keeps coming, the head never completes
                time.sleep(0.3)
                for connection in dribblers:
                    connection.sendall(b"a")
            replies = [connection.recv(4096) for connection in dribblers]
            assert all(reply.startswith(b"HTTP/1.1 408") for reply in replies)
            assert all(connection.recv(10) == b"" for connection in dribblers)  # closed
            assert time.monotonic() - started < 5
        finally:
            for connection in dribblers:
                connection.close()
        assert httpx.get(f"{url}/health").status_code == 200
        # A keep-alive connection that sends whole requests is not cut off, however long it lives.
        with httpx.Client(base_url=url) as http:
            for _ in range(3):
                assert http.get("/health").status_code == 200
                time.sleep(0.6)
