"""Model spec: everything needed to rebuild a classifier and preprocess its inputs (timm ``PretrainedCfg``)."""

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, get_args

from .errors import ModelIntegrityError

# A served name is also a file stem: no path separators, no leading dot.
_NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")

Interpolation = Literal["bilinear", "bicubic"]
INTERPOLATIONS: tuple[str, ...] = get_args(Interpolation)


def check_model_name(name: str) -> str:
    """Return ``name`` if it is a valid model name (and file stem), else raise ``ValueError``."""
    if not isinstance(name, str) or not _NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"invalid model name {name!r}: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class ModelSpec:
    """Describes a saved classifier: architecture, labels and input preprocessing.

    Attributes:
        name: Served name, also the file stem of ``NAME.safetensors`` and ``NAME.json``.
        arch: Registry key passed to ``create_model``.
        num_classes: Number of logits C; equals ``len(labels)``.
        labels: Class names, index i names logit i.
        input_size: ``(height, width)`` the model expects.
        channels: 1 (grayscale, PIL mode "L") or 3 (RGB).
        mean: Per-channel mean, applied after scaling pixels to [0, 1].
        std: Per-channel standard deviation (all > 0).
        crop_pct: ``None``: resize the whole image to ``input_size`` (aspect not kept). A fraction in (0, 1]:
            resize (aspect kept) so that the image covers ``input_size / crop_pct``, then crop ``input_size`` from
            its centre (timm's ``crop_pct``; ImageNet models use 0.875: shorter side 256, centre crop 224).
        interpolation: Resampling filter of the resize (antialiased).
        sha256: Hex digest of the ``.safetensors`` file; empty until saved.
        arch_kwargs: Extra keyword arguments for ``create_model`` (JSON-serialisable).
        training: Free-form training record (loss, seed, epochs, test_accuracy, trajectory, ...).
        source: Where pretrained weights came from (package, version, file, sha256); empty for models trained here.
    """

    name: str
    arch: str
    num_classes: int
    labels: tuple[str, ...]
    input_size: tuple[int, int]
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_pct: float | None = None
    interpolation: Interpolation = "bilinear"
    sha256: str = ""
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """Validate field values; raises ``ValueError`` naming the first bad field."""
        check_model_name(self.name)
        if not self.arch:
            raise ValueError("arch must be a non-empty registry key")
        if self.num_classes < 1 or len(self.labels) != self.num_classes:
            raise ValueError(f"num_classes={self.num_classes} but {len(self.labels)} labels given")
        if len(self.input_size) != 2 or min(self.input_size) < 1:
            raise ValueError(f"input_size must be (height, width) >= 1, got {self.input_size}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(f"mean and std need {self.channels} value(s), got {self.mean} and {self.std}")
        if not all(math.isfinite(v) for v in self.mean + self.std) or min(self.std) <= 0:
            raise ValueError(f"mean must be finite and std finite and > 0, got {self.mean} and {self.std}")
        if self.crop_pct is not None and not (0 < self.crop_pct <= 1):
            raise ValueError(f"crop_pct must be null or in (0, 1], got {self.crop_pct}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}, got {self.interpolation!r}")
        if self.sha256 and not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"sha256 must be 64 lowercase hex digits, got {self.sha256!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (tuples become lists)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelSpec":
        """Build a spec from ``to_dict()`` output (e.g. parsed JSON).

        Args:
            data: Mapping with the dataclass fields; unknown keys are ignored so that newer specs still load.

        Returns:
            The validated spec.

        Raises:
            ModelIntegrityError: If a field is missing, unknown, of the wrong type or invalid.
        """
        if not isinstance(data, dict):
            raise ModelIntegrityError(f"model spec must be a JSON object, got {type(data).__name__}")
        try:
            return cls(
                name=str(data["name"]),
                arch=str(data["arch"]),
                num_classes=_as_int(data["num_classes"]),
                labels=tuple(str(label) for label in _as_list(data["labels"])),
                input_size=_as_size(data["input_size"]),
                channels=_as_int(data["channels"]),
                mean=tuple(float(v) for v in _as_list(data["mean"])),
                std=tuple(float(v) for v in _as_list(data["std"])),
                crop_pct=_as_fraction(data.get("crop_pct")),
                interpolation=data.get("interpolation", "bilinear"),
                sha256=str(data.get("sha256", "")),
                arch_kwargs=_as_dict(data.get("arch_kwargs", {}), "arch_kwargs"),
                training=_as_dict(data.get("training", {}), "training"),
                source=_as_dict(data.get("source", {}), "source"),
            )
        except KeyError as e:
            raise ModelIntegrityError(f"model spec is missing field {e.args[0]!r}") from e
        except (TypeError, ValueError, IndexError) as e:
            raise ModelIntegrityError(f"invalid model spec: {e}") from e


def _as_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _as_fraction(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"crop_pct must be a number or null, got {value!r}")
    return float(value)


def _as_list(value: Any) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise TypeError(f"expected a list, got {value!r}")
    return list(value)


def _as_size(value: Any) -> tuple[int, int]:
    items = _as_list(value)
    if len(items) != 2:
        raise ValueError(f"input_size must be [height, width], got {value!r}")
    return _as_int(items[0]), _as_int(items[1])


def _as_dict(value: Any, field_name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{field_name} must be an object, got {type(value).__name__}")
    return dict(value)
