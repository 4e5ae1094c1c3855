"""The vector-store interface the service talks to, and the values it returns.

FAISS is the default implementation (`indexes.durable.DurableIndex`); a distributed engine can implement
the same protocol. Nothing here depends on FAISS types.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

Metadata = dict[str, Any]
Filter = Mapping[str, Any]


@dataclass(frozen=True)
class Item:
    """One stored vector: its id, raw logits `(C,)` float32, and JSON metadata."""

    id: str
    logits: np.ndarray
    metadata: Metadata


@dataclass(frozen=True)
class Neighbor:
    """One search hit; `distance` is in the metric's own units (true Euclidean for `l2`)."""

    id: str
    distance: float
    metadata: Metadata


@dataclass(frozen=True)
class SearchResult:
    """Hits per query, each list sorted by ascending distance and at most k long."""

    neighbors: list[list[Neighbor]]


class VectorStore(Protocol):
    """What the service needs from a vector store."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def device(self) -> str: ...

    @property
    def index_type(self) -> str: ...

    def count(self) -> int: ...

    def upsert(
        self,
        ids: Sequence[str],
        vectors: np.ndarray,
        metadata: Sequence[Metadata],
        thumbnails: Sequence[bytes | None] | None = None,
    ) -> int:
        """Insert or replace items, atomically; returns how many were written.

        `thumbnails` holds one encoded image (PNG or WebP, at most `validation.MAX_THUMBNAIL_BYTES`) or None
        per item. A replaced item keeps only the thumbnail given now: without one, it has none.
        """
        ...

    def delete(self, item_id: str) -> None:
        """Remove an item and its thumbnail (`ItemNotFoundError` if absent)."""
        ...

    def get(self, item_id: str) -> Item: ...

    def thumbnail(self, item_id: str) -> bytes | None:
        """The item's thumbnail, None when it has none (`ItemNotFoundError` if the item is absent)."""
        ...

    def list(self, offset: int, limit: int) -> list[Item]:
        """Items `offset` to `offset + limit` in insertion order: a new id goes last, an upsert of a stored id
        keeps its place, a delete removes it; the same order after a restart."""
        ...

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        metric: str = "l2",
        temperature: float = 1.0,
        filter: Filter | None = None,
    ) -> SearchResult: ...

    def save(self, path: Path | None = None) -> None: ...

    def recall_at_10(self) -> dict[str, float] | None:
        """Recall@10 per metric of an approximate index against exact search; None when every search is exact."""
        ...

    def close(self, compact: bool = True) -> None:
        """Release the store (first persisting what is pending, unless `compact` is False); idempotent.

        Operations under way finish first; later ones raise `IndexClosedError`.
        """
        ...
