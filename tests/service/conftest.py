"""Fixtures for the service: a data dir with the trained default model and index, settings, a client."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.catalog.firststart import first_start
from service.catalog.registry import Catalog
from service.config import Settings


@pytest.fixture(scope="session")
def default_data_dir(tmp_path_factory: pytest.TempPathFactory, digits_models_dir: Path) -> Path:
    """A data dir as the first `logitsearch serve` leaves it: digits-cnn plus the `default` index."""
    data_dir = tmp_path_factory.mktemp("data")
    shutil.copytree(digits_models_dir, data_dir / "models")
    settings = Settings(data_dir=data_dir, device="cpu", faiss_gpu="false", num_threads=2)
    catalog = Catalog(settings)
    catalog.open()
    first_start(catalog)
    catalog.close()
    return data_dir


@pytest.fixture
def settings(tmp_path: Path, default_data_dir: Path) -> Settings:
    """Settings on a private copy of the default data dir (tests may write to it)."""
    data_dir = tmp_path / "data"
    shutil.copytree(default_data_dir, data_dir)
    return Settings(
        data_dir=data_dir,
        device="cpu",
        faiss_gpu="false",
        num_threads=2,
        max_k=2000,
        max_batch=64,
    )


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as test_client:
        yield test_client
