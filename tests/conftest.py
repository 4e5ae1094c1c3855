"""Shared fixtures: seeded randomness, settings on a temporary data dir, a served app."""

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch  # noqa: F401 - imported before faiss, always (both bundle OpenMP)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
