"""Each item's nearest other items, found with the index's own search (never an all-pairs loop here)."""

from indexes.store import Filter, Neighbor, VectorStore

from .reading import Selection

#: Queries sent to the store at once: bounds the candidate buffers of one search.
_CHUNK = 512


def nearest_others(
    index: VectorStore,
    items: Selection,
    rows: list[int],
    k: int,
    metric: str,
    temperature: float,
    filter: Filter | None,
) -> list[list[Neighbor]]:
    """The `k` nearest items (among those matching `filter`) of each of `rows`, closest first, without itself."""
    found: list[list[Neighbor]] = []
    for start in range(0, len(rows), _CHUNK):
        chunk = rows[start : start + _CHUNK]
        result = index.search(
            items.logits[chunk], k + 1, metric=metric, temperature=temperature, filter=filter, exact=True
        )
        for row, hits in zip(chunk, result.neighbors, strict=True):
            found.append([hit for hit in hits if hit.id != items.ids[row]][:k])
    return found
