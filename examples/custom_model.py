"""Serve your own classifier: write its weights and spec where the service finds them, then serve it.

    python examples/custom_model.py --weights my-convnet.pt --data-dir data
    PYTHONPATH=examples LOGITSEARCH_PLUGINS=my_models LOGITSEARCH_MODEL=my-convnet LOGITSEARCH_INDEX=photos \\
        logitsearch serve

The plugin module (`my_models.py`, beside this file) registers the architecture; it must be importable when the
service starts, hence `PYTHONPATH`. Without `--weights` the network keeps its random initial weights, which is
enough to see it served (its logits mean nothing). `logitsearch index --images DIR --index photos` then fills
the index `photos` with your images.
"""

import argparse
import logging
from pathlib import Path

import my_models  # noqa: F401 - registers `small-convnet`
import torch

from models import ModelSpec, create_model, save_classifier

logger = logging.getLogger("example.custom_model")

SPEC = ModelSpec(
    name="my-convnet",
    arch="small-convnet",
    num_classes=10,
    labels=tuple("0123456789"),
    input_size=(32, 32),
    channels=3,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
    arch_kwargs={"width": 32},
)


def save_model(models_dir: Path, weights: Path | None = None, seed: int = 0) -> ModelSpec:
    """Write `models_dir/my-convnet.safetensors` and `my-convnet.json`.

    Args:
        models_dir: `DATA_DIR/models` of the service.
        weights: a state dict saved with `torch.save` (loaded with `weights_only=True`); None keeps the
            random initial weights.
        seed: the seed of the random initial weights.

    Returns:
        The spec as saved, with the sha256 of the weights.
    """
    torch.manual_seed(seed)
    module = create_model(SPEC.arch, num_classes=SPEC.num_classes, in_channels=SPEC.channels, **SPEC.arch_kwargs)
    if weights is not None:
        module.load_state_dict(torch.load(weights, weights_only=True))  # your trained weights, tensors only
    return save_classifier(module, SPEC, models_dir)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data"), help="the service's DATA_DIR (%(default)s)")
    parser.add_argument("--weights", type=Path, default=None, help="a state dict (.pt); default: random weights")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    spec = save_model(args.data_dir / "models", args.weights)
    logger.info("saved %s (sha256 %s) under %s", spec.name, spec.sha256[:12], args.data_dir / "models")


if __name__ == "__main__":
    main()
