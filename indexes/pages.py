"""Browsing a store: an order, a cursor that stays valid across writes, and the page after it, for both stores.

Every item has a `seq`: a number given when its id is first stored, kept when it is replaced, never given again in
the index (insertion order is ascending `seq`). A listing orders by `seq`, or by a derived field at a temperature
with `seq` breaking ties, so every item has one place in it. A cursor is the (value, seq) of the last item of a
page; the next page holds what comes after that place. An item that stayed stored and unchanged for the whole scan
is therefore listed exactly once, whatever is written in between; an item added, replaced or deleted meanwhile may
appear or not. The cursor is opaque to clients (base64 of a small JSON) and names the listing it belongs to.
"""

import base64
import binascii
import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np

from .errors import InvalidInputError
from .filters import NUMERIC_DERIVED
from .store import Filter, Item

#: Orders a listing takes: `insertion` (default) or a derived field, each `:asc` (default) or `:desc`.
ORDER_FIELDS = ("insertion", *NUMERIC_DERIVED)
ORDERS_HELP = (
    "order is insertion (the default), confidence, margin or entropy (at the request's temperature), optionally "
    "followed by :asc (the default) or :desc, e.g. confidence:asc for the least confident first"
)


@dataclass(frozen=True)
class Order:
    """How a listing is sorted: `field` is `insertion` or a derived field; ties broken by `seq` in the same direction."""

    field: str = "insertion"
    descending: bool = False

    @property
    def derived(self) -> bool:
        return self.field != "insertion"

    def __str__(self) -> str:
        return f"{self.field}:{'desc' if self.descending else 'asc'}"


def parse_order(text: str | None) -> Order:
    """`"confidence:desc"` -> `Order("confidence", True)`; None or "" -> insertion order.

    Raises:
        InvalidInputError: an unknown field or direction.
    """
    if not text:
        return Order()
    field, _, direction = text.partition(":")
    if field not in ORDER_FIELDS or direction not in ("", "asc", "desc"):
        raise InvalidInputError(f"cannot order by {text!r}: {ORDERS_HELP}")
    return Order(field, direction == "desc")


@dataclass(frozen=True)
class Cursor:
    """Where the previous page ended: the last item's `seq` and, for a derived order, its value."""

    seq: int
    value: float | None = None


@dataclass(frozen=True)
class Page:
    """One page of a listing: its items, the cursor of the next page (None: this was the last) and how many items
    the whole listing holds (those matching its filter)."""

    items: list[Item]
    next: Cursor | None
    matched: int


def listing_key(order: Order, filter: Filter | None, temperature: float) -> str:
    """What a cursor is valid for: the order, the filter, and the temperature when the order or filter reads it."""
    text = json.dumps([str(order), filter or {}, temperature], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_cursor(cursor: Cursor, key: str) -> str:
    """The opaque token of `cursor` for the listing `key` (URL-safe base64 of JSON)."""
    body = {"k": key, "s": cursor.seq, **({"v": cursor.value} if cursor.value is not None else {})}
    return base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(token: str, key: str) -> Cursor:
    """The cursor in `token`, checked to belong to the listing `key`.

    Raises:
        InvalidInputError: a token that is not one of ours, or one of another listing.
    """
    try:
        body = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        seq, value = body["s"], body.get("v")
        valid = isinstance(seq, int) and (value is None or (isinstance(value, float | int) and math.isfinite(value)))
        if not (isinstance(body, dict) and valid and isinstance(body["k"], str)):
            raise ValueError(token)
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            "cursor is not a cursor this service gave: pass the `next` of the previous page as it came, or none to "
            "start from the first page"
        ) from exc
    if body["k"] != key:
        raise InvalidInputError(
            "cursor belongs to another listing: pass the same filter, order and temperature as the page that gave "
            "it, or no cursor to start again"
        )
    return Cursor(seq, None if value is None else float(value))


def next_rows(
    seqs: np.ndarray, values: np.ndarray | None, order: Order, after: Cursor | None, limit: int
) -> tuple[np.ndarray, bool]:
    """Positions of the `limit` rows that come after `after` in `order`, in that order, and whether more follow.

    Args:
        seqs: `(n,)` int64 seq of each candidate row (distinct).
        values: `(n,)` float64 derived values for a derived order, else None.
        order: the listing's order.
        after: the previous page's cursor, or None for the first page.
        limit: page size >= 1.

    Returns:
        `(m,)` int64 positions into `seqs` (m <= limit), and True when rows remain after them.
    """
    direction = -1 if order.descending else 1
    keys_seq = seqs.astype(np.int64) * direction
    keys_value = None if values is None else values * direction
    if after is None:
        candidates = np.arange(len(seqs))
    elif keys_value is None:
        candidates = np.flatnonzero(keys_seq > after.seq * direction)
    else:
        if after.value is None:
            raise InvalidInputError("cursor of a derived order without its value: start the listing again")
        after_value, after_seq = after.value * direction, after.seq * direction
        candidates = np.flatnonzero((keys_value > after_value) | ((keys_value == after_value) & (keys_seq > after_seq)))
    more = len(candidates) > limit
    if keys_value is None:
        primary = keys_seq[candidates]
        if more:
            keep = np.argpartition(primary, limit - 1)[:limit]
            candidates, primary = candidates[keep], primary[keep]
        return candidates[np.argsort(primary, kind="stable")], more
    primary = keys_value[candidates]
    if more:  # the limit smallest values, and every row tied with the last of them
        near = primary <= np.partition(primary, limit - 1)[limit - 1]
        candidates, primary = candidates[near], primary[near]
    return candidates[np.lexsort((keys_seq[candidates], primary))[:limit]], more


def cursor_after(seqs: np.ndarray, values: np.ndarray | None, rows: np.ndarray) -> Cursor | None:
    """The cursor of the page ending at the last of `rows` (None for an empty page)."""
    if not len(rows):
        return None
    last = int(rows[-1])
    return Cursor(int(seqs[last]), None if values is None else float(values[last]))
