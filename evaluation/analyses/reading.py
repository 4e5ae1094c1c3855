"""Reading the items an analysis covers: those matching a filter, in insertion order, up to a bound."""

from dataclasses import dataclass
from typing import Any

import numpy as np

from indexes.errors import InvalidInputError
from indexes.pages import Order
from indexes.store import Filter, VectorStore

#: Items one analysis reads at most by default, and the most a request may ask for.
DEFAULT_MAX_ITEMS, MAX_ITEMS = 100_000, 1_000_000
_PAGE = 1000


class TooManyItemsError(InvalidInputError):
    """More items match than the analysis may read."""


@dataclass(frozen=True)
class Selection:
    """The items of one analysis: ids `(n,)`, logits `(n, C)` float32 and metadata, in insertion order."""

    ids: list[str]
    logits: np.ndarray
    metadata: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.ids)


def read_items(index: VectorStore, filter: Filter | None, temperature: float, max_items: int) -> Selection:
    """Every item matching `filter` (derived fields at `temperature`), read page by page through the store.

    Raises:
        TooManyItemsError: more than `max_items` match (the analysis reads nothing more).
    """
    if not 1 <= max_items <= MAX_ITEMS:
        raise InvalidInputError(f"max_items must be between 1 and {MAX_ITEMS}, got {max_items}")
    ids: list[str] = []
    rows: list[np.ndarray] = []
    metadata: list[dict[str, Any]] = []
    after = None
    while True:
        page = index.page(filter, Order(), after, _PAGE, temperature)
        if page.matched > max_items:
            raise TooManyItemsError(
                f"{page.matched} items match and this analysis reads at most {max_items}: narrow the filter, or raise "
                f"max_items (up to {MAX_ITEMS})"
            )
        ids += [item.id for item in page.items]
        rows += [item.logits for item in page.items]
        metadata += [item.metadata for item in page.items]
        if page.next is None:
            break
        after = page.next
    logits = np.stack(rows).astype(np.float32) if rows else np.empty((0, index.dim), np.float32)
    return Selection(ids, logits, metadata)


def class_labels(
    selection: Selection, field: str, label_names: list[str] | None, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """`(n,)` int64 class of each item's `field` (a class index, or a label name of the model) and `(n,)` bool of
    the items that hold a readable one.

    Raises:
        InvalidInputError: no item holds the field as a class.
    """
    classes = np.array(
        [_class(meta.get(field), label_names, num_classes) for meta in selection.metadata], dtype=np.int64
    ).reshape(-1)
    known = classes >= 0
    if len(selection) and not known.any():
        raise InvalidInputError(
            f"no item holds a class in metadata field {field!r} (a class index 0..{num_classes - 1} or a label name "
            "of the model); name the field with label_field"
        )
    return classes, known


def class_of(value: Any, label_names: list[str] | None, num_classes: int) -> int | None:
    """The class a metadata value names: an index 0..C-1 (3 or 3.0), or a label name of the model; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float) and float(value).is_integer() and 0 <= value < num_classes:
        return int(value)
    if isinstance(value, str) and label_names and value in label_names:
        return label_names.index(value)
    return None


def _class(value: Any, label_names: list[str] | None, num_classes: int) -> int:
    found = class_of(value, label_names, num_classes)
    return -1 if found is None else found
