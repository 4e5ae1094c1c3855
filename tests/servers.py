"""Server-starting helpers: uvicorn in a thread, or `logitsearch serve` in a child process."""

import os
import resource
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from service.app import create_app
from service.config import Settings
from service.http.server import server_config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serving(settings: Settings) -> Iterator[str]:
    """Run uvicorn on 127.0.0.1 in a thread until the block ends; yields the base URL."""
    port = free_port()
    config = server_config(create_app(settings), settings, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def start_serve_process(data_dir: Path, port: int, open_files: int | None = None) -> subprocess.Popen[bytes]:
    """`python -m service.cli serve` on `data_dir` in a child process, returned once `/ready` answers 200; with
    `open_files`, under that open-file limit (soft and hard)."""
    env = os.environ | {
        "LOGITSEARCH_DATA_DIR": str(data_dir),
        "LOGITSEARCH_PORT": str(port),
        "LOGITSEARCH_DEVICE": "cpu",
        "LOGITSEARCH_FAISS_GPU": "false",
        "LOGITSEARCH_NUM_THREADS": "1",
        "LOGITSEARCH_LOG_LEVEL": "warning",
    }

    def limit() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve"], env=env, stderr=subprocess.PIPE, preexec_fn=limit
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited at start: {process.stderr.read().decode() if process.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError("server did not become ready")
