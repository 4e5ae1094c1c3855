"""Shared fixtures: seeded randomness and the default digits model, trained once per test session."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from models import TrainConfig, train_classifier

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
