"""Synthetic, classifier-like logits in an in-memory vector store, for the evaluation tests."""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from indexes.store import Item
from models import ModelSpec


def make_logits(rng: np.random.Generator, num_items: int, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(n, C)`` float32 logits clustered by class (a confident classifier's shape) and their ``(n,)`` labels."""
    labels = rng.integers(0, num_classes, size=num_items)
    centers = 6.0 * np.eye(num_classes) + rng.normal(scale=0.5, size=(num_classes, num_classes))
    logits = centers[labels] + rng.normal(scale=1.5, size=(num_items, num_classes)) + rng.normal(size=(num_items, 1))
    return logits.astype(np.float32), labels


@dataclass
class MemoryStore:
    """The read side of `indexes.store.VectorStore` over arrays: enough for `evaluate_store`."""

    logits: np.ndarray
    metadata: list[dict[str, Any]]
    name: str = "memory"
    ids: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ids = self.ids or [f"item-{i}" for i in range(len(self.logits))]

    @property
    def dim(self) -> int:
        return int(self.logits.shape[1])

    def count(self) -> int:
        return len(self.ids)

    def list(self, offset: int, limit: int) -> list[Item]:
        stop = min(offset + limit, len(self.ids))
        return [Item(self.ids[i], self.logits[i], self.metadata[i]) for i in range(offset, stop)]


def make_store(
    rng: np.random.Generator, num_items: int = 300, num_classes: int = 5, labeled: bool = True
) -> MemoryStore:
    logits, labels = make_logits(rng, num_items, num_classes)
    split = np.where(rng.random(num_items) < 0.2, "test", "train")
    metadata = [
        {"label": int(label), "split": str(s)} if labeled else {} for label, s in zip(labels, split, strict=True)
    ]
    return MemoryStore(logits, metadata)


def make_spec(num_classes: int = 5, trajectory: list[dict[str, Any]] | None = None) -> ModelSpec:
    return ModelSpec(
        name="synthetic",
        arch="mlp",
        num_classes=num_classes,
        labels=tuple(str(i) for i in range(num_classes)),
        input_size=(8, 8),
        channels=1,
        mean=(0.5,),
        std=(0.25,),
        sha256="0" * 64,
        training={"trajectory": trajectory or []},
    )
