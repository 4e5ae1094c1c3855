"""The vector-store interface the service talks to, and the values it returns.

FAISS is the default implementation (`indexes.durable.DurableIndex`); a distributed engine can implement
the same protocol. Nothing here depends on FAISS types.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:  # they import this module's Item and Filter
    from .facets import Facets
    from .pages import Cursor, Order, Page

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
class QueryHits:
    """One query's hits column-wise, closest first: ids, `(h,)` float64 distances, metadata (shared, not copied)."""

    ids: list[str]
    distances: np.ndarray
    metadata: list[Metadata]


class SearchResult:
    """Hits per query, each list sorted by ascending distance and at most k long.

    Built from `Neighbor` lists, or column-wise (`from_columns`) so that a response can be written without one
    object per hit; each form is derived from the other on first use.

    Attributes:
        exact: whether these are the exact top k (an approximate index's answers are exact in their distances,
            approximate in membership).
        recall_at_10: for an approximate answer, the recall@10 measured on the index for this metric and T.
    """

    def __init__(self, neighbors: list[list[Neighbor]], exact: bool = True, recall_at_10: float | None = None) -> None:
        self._neighbors: list[list[Neighbor]] | None = neighbors
        self._columns: list[QueryHits] | None = None
        self.exact = exact
        self.recall_at_10 = recall_at_10

    @classmethod
    def from_columns(
        cls, columns: list[QueryHits], exact: bool = True, recall_at_10: float | None = None
    ) -> "SearchResult":
        result = cls([], exact, recall_at_10)
        result._neighbors, result._columns = None, columns
        return result

    @property
    def neighbors(self) -> list[list[Neighbor]]:
        if self._neighbors is None:
            self._neighbors = [
                [Neighbor(i, d, m) for i, d, m in zip(hits.ids, hits.distances.tolist(), hits.metadata, strict=True)]
                for hits in self.columns()
            ]
        return self._neighbors

    def columns(self) -> list[QueryHits]:
        """The hits of each query column-wise."""
        if self._columns is None:
            self._columns = [
                QueryHits([n.id for n in row], np.array([n.distance for n in row], float), [n.metadata for n in row])
                for row in self.neighbors
            ]
        return self._columns

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SearchResult) and self.neighbors == other.neighbors

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"SearchResult({self.neighbors!r})"


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

    def page(
        self, filter: Filter | None, order: "Order", after: "Cursor | None", limit: int, temperature: float = 1.0
    ) -> "Page":
        """The `limit` items matching `filter` that come after the cursor `after` in `order` (`indexes.pages`): no item
        stored unchanged for a whole scan is skipped or repeated, whatever is written between pages."""
        ...

    def facets(
        self, filter: Filter | None, group_by: str | None, temperature: float = 1.0, limit: int = 100
    ) -> "Facets":
        """How many items match `filter`; with `group_by` (a metadata key or `predicted`) how many hold each value."""
        ...

    def delete_where(self, filter: Filter, temperature: float = 1.0) -> int:
        """Remove every item matching `filter` (all of them: `{}`) atomically and durably; returns how many."""
        ...

    def search(
        self,
        queries: np.ndarray,
        k: int,
        *,
        metric: str = "l2",
        temperature: float = 1.0,
        filter: Filter | None = None,
        exact: bool = False,
        target_recall: float | None = None,
    ) -> SearchResult:
        """The k nearest items of each query; `exact` forces the exact scan on an approximate index, and
        `target_recall` asks it for another recall@10 than its own target."""
        ...

    def save(self, path: Path | None = None) -> None: ...

    def recall_at_10(self) -> dict[str, float] | None:
        """Recall@10 per metric of an approximate index against exact search; None when every search is exact."""
        ...

    def approximate_info(self) -> dict[str, Any] | None:
        """An approximate index's options, build state, structures and measured recall per metric and T; None when
        the store has nothing of the kind to show."""
        ...

    def close(self, compact: bool = True) -> None:
        """Release the store (first persisting what is pending, unless `compact` is False); idempotent.

        Operations under way finish first; later ones raise `IndexClosedError`.
        """
        ...


@runtime_checkable
class InlineSearch(Protocol):
    """A store that can answer a small search at once, without a thread (the FAISS store): the service then answers
    it on the event loop."""

    def search_now(
        self,
        queries: np.ndarray,
        k: int,
        *,
        metric: str = "l2",
        temperature: float = 1.0,
        filter: Filter | None = None,
        exact: bool = False,
        target_recall: float | None = None,
        max_values: int,
    ) -> SearchResult | None:
        """`VectorStore.search`, when it can run at once without waiting (on a lock, the disk or a server) and scans at most
        `max_values` stored values (items x classes x queries); else None, having done nothing."""
        ...
