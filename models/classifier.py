"""A loaded classifier, and its storage as ``NAME.safetensors`` plus ``NAME.json`` (never pickle)."""

import dataclasses
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import safetensors.torch
import torch
from PIL import Image
from torch import nn

from .embed import logits_from_images
from .errors import ModelError, ModelIntegrityError, ModelNotFoundError
from .images import preprocess
from .registry import create_model
from .spec import ModelSpec, check_model_name

logger = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class Classifier:
    """A model ready for inference.

    Attributes:
        module: The network, in eval mode, on ``device``.
        spec: Its spec (architecture, labels, preprocessing, sha256 of the weights).
        device: Where ``module`` runs.
    """

    module: nn.Module
    spec: ModelSpec
    device: torch.device

    @property
    def num_classes(self) -> int:
        """Number of logits C."""
        return self.spec.num_classes

    def logits_from_images(self, images: Sequence[Image.Image], batch_size: int = 256) -> np.ndarray:
        """Preprocess images per the spec and return their logits.

        Args:
            images: n PIL images of any size and supported mode.
            batch_size: Images preprocessed and run per forward pass.

        Returns:
            ``(n, C)`` float32 C-contiguous array.
        """
        _check_batch_size(batch_size)
        chunks = [
            logits_from_images(self.module, preprocess(images[start : start + batch_size], self.spec), self.device)
            for start in range(0, len(images), batch_size)
        ]
        return _concat(chunks, self.num_classes)

    def logits_from_tensor(self, x: torch.Tensor, batch_size: int = 256) -> np.ndarray:
        """Return logits of already preprocessed inputs.

        Args:
            x: ``(n, channels, H, W)`` float32, as returned by ``preprocess``.
            batch_size: Rows per forward pass.

        Returns:
            ``(n, C)`` float32 C-contiguous array.
        """
        _check_batch_size(batch_size)
        chunks = [
            logits_from_images(self.module, x[start : start + batch_size], self.device)
            for start in range(0, x.shape[0], batch_size)
        ]
        return _concat(chunks, self.num_classes)


def save_classifier(module: nn.Module, spec: ModelSpec, models_dir: Path) -> ModelSpec:
    """Save weights to ``models_dir/NAME.safetensors``, then the spec (with sha256) to ``NAME.json``.

    Each file is written to a temporary file in the same directory, fsynced and renamed into place, so a
    crash leaves either the old or the new file. The weights are renamed first: a crash between the two renames
    leaves a spec whose sha256 no longer matches, which ``load_classifier`` reports instead of loading.

    Args:
        module: Trained network; its ``state_dict`` tensors are saved (must not share storage).
        spec: Spec to save; ``sha256`` is filled in.
        models_dir: Target directory, created if missing.

    Returns:
        The saved spec, with ``sha256`` of the weights file.
    """
    models_dir.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.detach().to("cpu").contiguous() for key, value in module.state_dict().items()}
    weights = safetensors.torch.save(tensors, metadata={"format": "pt"})
    digest = hashlib.sha256(weights).hexdigest()
    _write_atomically(_weights_path(models_dir, spec.name), weights)
    saved = dataclasses.replace(spec, sha256=digest)
    text = json.dumps(saved.to_dict(), indent=2, sort_keys=True) + "\n"
    _write_atomically(_spec_path(models_dir, spec.name), text.encode("utf-8"))
    logger.info("saved model %s (%s) to %s, sha256 %s", spec.name, spec.arch, models_dir, digest[:12])
    return saved


def load_classifier(models_dir: Path, name: str, device: torch.device) -> Classifier:
    """Load ``models_dir/NAME.json`` and ``NAME.safetensors``, checking integrity.

    Args:
        models_dir: Directory holding the model files.
        name: Model name (file stem).
        device: Device to put the model on.

    Returns:
        The classifier in eval mode on ``device``.

    Raises:
        ModelNotFoundError: If either file is missing, or the architecture is not registered.
        ModelIntegrityError: If the spec is invalid or the weights do not match it (sha256 or tensors).
    """
    spec_path, weights_path = _spec_path(models_dir, name), _weights_path(models_dir, name)
    if not spec_path.is_file() or not weights_path.is_file():
        raise ModelNotFoundError(f"no model {name!r} in {models_dir}; train it with `logitsearch train --name {name}`")
    spec = _read_spec(spec_path, name)
    data = weights_path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise ModelIntegrityError(
            f"{weights_path} has sha256 {digest} but {spec_path} expects {spec.sha256 or '(none)'}; "
            f"the files are from different saves or corrupt: retrain with `logitsearch train --name {name}` "
            "or copy both files again"
        )
    try:
        # The random init is overwritten at once; fork_rng keeps it from advancing the caller's RNG.
        with torch.random.fork_rng(devices=[]):
            module = create_model(spec.arch, spec.num_classes, spec.channels, **spec.arch_kwargs)
    except (TypeError, ValueError) as e:
        raise ModelIntegrityError(f"{spec_path} has arch_kwargs that {spec.arch!r} does not accept: {e}") from e
    try:
        module.load_state_dict(safetensors.torch.load(data), strict=True)
    except (RuntimeError, ValueError, safetensors.SafetensorError) as e:
        raise ModelIntegrityError(f"{weights_path} does not fit architecture {spec.arch!r}: {e}") from e
    module = module.to(device).eval()
    logger.info("loaded model %s (%s, %d classes) on %s", name, spec.arch, spec.num_classes, device)
    return Classifier(module=module, spec=spec, device=device)


def model_exists(models_dir: Path, name: str) -> bool:
    """Return whether both ``NAME.json`` and ``NAME.safetensors`` exist in ``models_dir``."""
    try:
        return _spec_path(models_dir, name).is_file() and _weights_path(models_dir, name).is_file()
    except ModelNotFoundError:
        return False


def read_spec(models_dir: Path, name: str) -> ModelSpec:
    """The spec of the saved model ``name`` (``NAME.json``), without loading its weights.

    Raises:
        ModelNotFoundError: If ``NAME.json`` or ``NAME.safetensors`` is missing, or the name is invalid.
        ModelIntegrityError: If the spec is not a valid spec of ``name``.
    """
    if not model_exists(models_dir, name):
        raise ModelNotFoundError(f"no model {name!r} in {models_dir}; train it with `logitsearch train --name {name}`")
    return _read_spec(_spec_path(models_dir, name), name)


def keep_model_copy(models_dir: Path, name: str) -> Path:
    """Copy the saved model ``name`` into ``models_dir/replaced/NAME-<sha256[:12]>/`` before it is overwritten.

    The copy is a models directory of its own: copying its two files back into ``models_dir`` restores them.

    Returns:
        The directory that holds the copy.
    """
    spec = read_spec(models_dir, name)
    kept = models_dir / "replaced" / f"{name}-{spec.sha256[:12]}"
    kept.mkdir(parents=True, exist_ok=True)
    for path in (_weights_path(models_dir, name), _spec_path(models_dir, name)):
        shutil.copy2(path, kept / path.name)
    return kept


def saved_model_names(models_dir: Path) -> list[str]:
    """The names of the models saved in ``models_dir`` (both files present), sorted."""
    if not models_dir.is_dir():
        return []
    return sorted(p.stem for p in models_dir.glob("*.json") if model_exists(models_dir, p.stem))


def _read_spec(path: Path, name: str) -> ModelSpec:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelIntegrityError(f"{path} is not valid JSON ({e}); retrain or copy it again") from e
    spec = ModelSpec.from_dict(data)
    if spec.name != name:
        raise ModelIntegrityError(f"{path} describes model {spec.name!r}, not {name!r}; rename both files together")
    return spec


def _spec_path(models_dir: Path, name: str) -> Path:
    return models_dir / f"{_valid_name(name)}.json"


def _weights_path(models_dir: Path, name: str) -> Path:
    return models_dir / f"{_valid_name(name)}.safetensors"


def _valid_name(name: str) -> str:
    try:
        return check_model_name(name)
    except ValueError as e:
        raise ModelNotFoundError(str(e)) from e


def _temp_path(directory: Path, name: str) -> Path:
    fd, path = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    os.close(fd)
    # mkstemp creates 0600 files; model files are meant to be readable by the serving user too.
    os.chmod(path, 0o644)
    return Path(path)


def _write_atomically(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory, fsync it, rename it over ``path``, fsync the directory."""
    tmp = _temp_path(path.parent, path.stem)
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise ModelError(f"batch_size must be >= 1, got {batch_size}")


def _concat(chunks: list[np.ndarray], num_classes: int) -> np.ndarray:
    if not chunks:
        return np.empty((0, num_classes), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(chunks, axis=0), dtype=np.float32)
