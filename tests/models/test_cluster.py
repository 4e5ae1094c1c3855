"""Embedding on a Dask cluster (`models.cluster`): the same logits as one process, whatever happens to a worker."""

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from models import Classifier
from models.cluster import dask_client, embed_on_cluster
from models.errors import ModelError
from models.loader import ImageFiles, PixelArrays, embed_dataset
from tests.helpers import write_images

LIMITS = {"max_bytes": 1 << 20, "max_pixels": 1 << 20}


def _one_process(classifier: Classifier, source: ImageFiles | PixelArrays) -> np.ndarray:
    return np.concatenate([batch.logits for batch in embed_dataset(classifier, source, 64, workers=0)])


def test_pixels_on_two_workers_come_back_once_each_with_the_logits_of_one_process(
    tiny_classifier: Classifier, rng: np.random.Generator
) -> None:
    pixels = rng.integers(0, 256, size=(37, 8, 8), dtype=np.uint8)
    source = PixelArrays(pixels, tiny_classifier.spec)
    with dask_client("local:2") as client:
        batches = list(embed_on_cluster(client, tiny_classifier, source, batch_size=5))
    positions = np.concatenate([batch.positions for batch in batches])
    assert sorted(positions.tolist()) == list(range(37)) and len(batches) == 8
    logits = np.empty((37, tiny_classifier.num_classes), np.float32)
    logits[positions] = np.concatenate([batch.logits for batch in batches])
    np.testing.assert_allclose(logits, _one_process(tiny_classifier, source), rtol=0, atol=1e-5)


@pytest.mark.slow
def test_a_worker_killed_mid_run_loses_no_batch(
    digits_classifier: Classifier, rng: np.random.Generator, tmp_path: Path
) -> None:
    paths = write_images(tmp_path / "photos", rng, 60)
    source = ImageFiles(paths, digits_classifier.spec, **LIMITS)
    with dask_client("local:2") as client:
        pids = list(client.run(os.getpid).values())
        batches, killed = [], False
        for batch in embed_on_cluster(client, digits_classifier, source, batch_size=3):
            batches.append(batch)
            if not killed:  # the other worker, and this one's replacement, finish the run
                os.kill(pids[0], signal.SIGKILL)
                killed = True
    positions = np.concatenate([batch.positions for batch in batches])
    assert sorted(positions.tolist()) == list(range(60))
    logits = np.empty((60, digits_classifier.num_classes), np.float32)
    logits[positions] = np.concatenate([batch.logits for batch in batches])
    np.testing.assert_allclose(logits, _one_process(digits_classifier, source), rtol=0, atol=1e-5)


def test_a_cluster_without_a_scheduler_is_named(tiny_classifier: Classifier) -> None:
    with pytest.raises(ModelError, match="no Dask scheduler answers"), dask_client("tcp://127.0.0.1:9", timeout_s=1):
        pass
