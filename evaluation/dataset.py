"""The evaluated data: every item of a vector store as arrays, and the seeded split into queries and ranked items."""

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from indexes.store import VectorStore

from .errors import EvaluationConfigError

IntArray = npt.NDArray[np.int64]
MIN_ITEMS = 4
_PAGE = 10_000


@dataclass(frozen=True)
class ItemSet:
    """A store's items, in id order.

    Attributes:
        ids: ``n`` item ids.
        logits: ``(n, C)`` float32.
        labels: ``(n,)`` int64 codes of the ``"label"`` metadata values (first seen = 0), -1 where absent.
        is_test: ``(n,)`` bool, True where the metadata says ``"split": "test"``.
    """

    ids: list[str]
    logits: npt.NDArray[np.float32]
    labels: IntArray
    is_test: npt.NDArray[np.bool_]

    @property
    def has_labels(self) -> bool:
        return bool((self.labels >= 0).any())


@dataclass(frozen=True)
class QuerySplit:
    """Which items are queries and which ones each query is ranked against (never itself).

    Attributes:
        queries: ``(q,)`` positions of the query items in the `ItemSet`.
        ranked: ``(m,)`` sorted positions of the items every query is ranked against; disjoint from ``queries``.
        source: how the queries were chosen, for the report.
    """

    queries: IntArray
    ranked: IntArray
    source: str


def _label_key(metadata: dict[str, Any]) -> str | None:
    if "label" not in metadata or metadata["label"] is None:
        return None
    return json.dumps(metadata["label"], sort_keys=True)  # 3 and "3" stay different labels


def load_items(store: VectorStore) -> ItemSet:
    """Read every item of ``store`` through its paged ``list``.

    Raises:
        EvaluationConfigError: the store holds fewer than 4 items.
    """
    ids: list[str] = []
    rows: list[np.ndarray] = []
    label_keys: list[str | None] = []
    tests: list[bool] = []
    while page := store.list(len(ids), _PAGE):
        for item in page:
            ids.append(item.id)
            rows.append(item.logits)
            label_keys.append(_label_key(item.metadata))
            tests.append(item.metadata.get("split") == "test")
    if len(ids) < MIN_ITEMS:
        raise EvaluationConfigError(f"the index holds {len(ids)} items; an evaluation needs at least {MIN_ITEMS}")
    # In id order, so that a report depends on the index's contents and the seed, not on the order of writes.
    order = sorted(range(len(ids)), key=ids.__getitem__)
    ids, rows = [ids[i] for i in order], [rows[i] for i in order]
    label_keys, tests = [label_keys[i] for i in order], [tests[i] for i in order]
    codes: dict[str, int] = {}
    labels = np.array([-1 if key is None else codes.setdefault(key, len(codes)) for key in label_keys], np.int64)
    logits = np.ascontiguousarray(np.stack(rows), dtype=np.float32)
    return ItemSet(ids=ids, logits=logits, labels=labels, is_test=np.array(tests, dtype=bool))


def split_queries(items: ItemSet, num_queries: int, num_items: int | None, seed: int) -> QuerySplit:
    """Sample query items (from the test split when there is one) and the items they are ranked against.

    At most half of the index becomes queries. Every query is ranked against the items that are not queries,
    or a seeded sample of ``num_items`` of them.

    Args:
        items: the store's items.
        num_queries: queries wanted.
        num_items: cap on the ranked items (None = all non-query items).
        seed: seeds both samples.
    """
    rng = np.random.default_rng([seed, 1])
    n = len(items.ids)
    test = np.flatnonzero(items.is_test)
    pool = test if test.size else np.arange(n)
    count = min(num_queries, pool.size, n // 2)
    queries = np.sort(rng.choice(pool, size=count, replace=False)).astype(np.int64)
    rest = np.setdiff1d(np.arange(n), queries)
    ranked = rest if num_items is None or num_items >= rest.size else np.sort(rng.choice(rest, num_items, False))
    held_out = "held-out items with metadata split == 'test'" if test.size else "random items (no 'test' split)"
    source = f"{count} {held_out}, sampled with seed {seed}; each ranked against {ranked.size} other items"
    if ranked.size < rest.size:
        source += f" (a seeded sample of the {rest.size} non-query items)"
    return QuerySplit(queries=queries, ranked=ranked.astype(np.int64), source=source)


def rank_all(items: ItemSet, num_items: int | None, seed: int) -> IntArray:
    """Positions every external query is ranked against: all items, or a seeded sample of ``num_items``."""
    n = len(items.ids)
    if num_items is None or num_items >= n:
        return np.arange(n, dtype=np.int64)
    return np.sort(np.random.default_rng([seed, 1]).choice(n, num_items, replace=False)).astype(np.int64)
