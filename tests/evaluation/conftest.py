"""Fixtures of the evaluation tests: a seeded in-memory store of synthetic logits."""

import numpy as np
import pytest

from tests.evaluation.synthetic import MemoryStore, make_store


@pytest.fixture
def store(rng: np.random.Generator) -> MemoryStore:
    return make_store(rng)
