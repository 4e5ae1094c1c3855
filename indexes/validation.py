"""Checks on vectors, ids and metadata before anything is written."""

import json
import math
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import DimensionMismatchError, InvalidInputError

MAX_ID_LENGTH = 256
MAX_METADATA_BYTES = 16_384
#: Largest thumbnail a store keeps with an item (a 96 px WebP of a photo is 2-7 KB).
MAX_THUMBNAIL_BYTES = 16_384
#: Objects and arrays nested deeper than this are refused: whatever is stored must serialise again.
MAX_METADATA_DEPTH = 32
#: How `json.dumps` writes a surrogate (paired or lone); only then are the strings walked.
_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def check_vectors(vectors: Any, dim: int, name: str = "logits", dtype: type = np.float32) -> np.ndarray:
    """Return `vectors` as a C-contiguous `(n, dim)` array of `dtype`, or raise with what is wrong.

    Stored logits are float32; queries keep float64 (the exact re-rank uses them as sent).

    Args:
        vectors: `(n, dim)` or `(dim,)` numbers.
        dim: the index dimension (the model's number of classes).
        name: what the caller calls these vectors, used in messages.

    Raises:
        DimensionMismatchError: rows of another length than `dim`.
        InvalidInputError: empty input, NaN/inf, or values that overflow float32.
    """
    try:
        array = np.asarray(vectors, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be a list of numbers or a list of equal-length lists: {exc}") from exc
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[0] == 0:
        raise InvalidInputError(f"{name} must be a non-empty (n, {dim}) matrix, got shape {array.shape}")
    if array.shape[1] != dim:
        raise DimensionMismatchError(
            f"{name} have {array.shape[1]} values per row but the index holds {dim}-dimensional logits "
            f"(one per class of the model)"
        )
    bad = ~np.isfinite(array)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise InvalidInputError(f"{name}[{row}][{col}] is {array[row, col]}: every value must be finite")
    limit = float(np.finfo(np.float32).max)
    if np.abs(array).max() > limit:
        raise InvalidInputError(f"{name} hold values beyond the float32 range (|x| <= {limit:.3g})")
    return np.ascontiguousarray(array, dtype=dtype)


def check_id(item_id: Any) -> str:
    """Return `item_id` if it is a usable id: a non-empty string of at most 256 printable characters."""
    if not isinstance(item_id, str) or not item_id:
        raise InvalidInputError("an id must be a non-empty string")
    if len(item_id) > MAX_ID_LENGTH:
        raise InvalidInputError(f"id is {len(item_id)} characters long; at most {MAX_ID_LENGTH} are allowed")
    if any(unicodedata.category(ch).startswith("C") for ch in item_id):
        raise InvalidInputError(f"id {item_id!r} contains control or unassigned characters; use printable text")
    return item_id


#: Ids that URLs cannot carry: clients and proxies resolve `/items/.` and `/items/..` as dot segments.
DOT_SEGMENTS = frozenset({".", ".."})


def check_ids(ids: Sequence[Any]) -> list[str]:
    """Check every id of a write, that none is a dot segment, and that none repeats within one request.

    Reads and deletes check with `check_id` only, so an item stored under `.` or `..` before they were refused
    stays readable and removable through the library.
    """
    checked = [check_id(item_id) for item_id in ids]
    for item_id in checked:
        if item_id in DOT_SEGMENTS:
            raise InvalidInputError(
                f"id {item_id!r} cannot be used: URLs resolve it as a dot segment, so /v1/items/{item_id} could "
                "never reach it; choose another id"
            )
    if len(set(checked)) != len(checked):
        seen: set[str] = set()
        duplicate = next(i for i in checked if i in seen or seen.add(i))  # type: ignore[func-returns-value]
        raise InvalidInputError(f"id {duplicate!r} appears more than once in one request; send each id once")
    return checked


def check_thumbnails(thumbnails: Sequence[Any] | None, count: int) -> list[bytes | None]:
    """One thumbnail (bytes of at most `MAX_THUMBNAIL_BYTES`, or None) per item; None means none at all."""
    if thumbnails is None:
        return [None] * count
    checked = list(thumbnails)
    if len(checked) != count:
        raise InvalidInputError(f"{count} items but {len(checked)} thumbnails; give one (or None) per item")
    for i, data in enumerate(checked):
        if data is None:
            continue
        if not isinstance(data, bytes) or not data:
            raise InvalidInputError(f"thumbnail {i} must be non-empty bytes (an encoded PNG or WebP) or None")
        if len(data) > MAX_THUMBNAIL_BYTES:
            raise InvalidInputError(f"thumbnail {i} is {len(data)} bytes; at most {MAX_THUMBNAIL_BYTES} are kept")
    return checked


def check_metadata(metadata: Any) -> dict[str, Any]:
    """Return `metadata` if it is a JSON object of at most 16 KiB with finite numbers and UTF-8 text.

    Raises:
        InvalidInputError: anything else, naming the field when a string cannot be written back as UTF-8 (a
            lone surrogate such as `"\\ud800"` is valid JSON, but no response could carry it).
    """
    if not isinstance(metadata, dict):
        raise InvalidInputError(f"metadata must be a JSON object, got {type(metadata).__name__}")
    try:
        encoded = json.dumps(metadata, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"metadata must be plain JSON with finite numbers: {exc}") from exc
    if _SURROGATE.search(encoded) and (where := _unencodable(metadata)) is not None:
        raise InvalidInputError(
            f"{where} holds a lone UTF-16 surrogate, which cannot be encoded as UTF-8; send valid Unicode text"
        )
    if len(encoded.encode()) > MAX_METADATA_BYTES:
        raise InvalidInputError(f"metadata is {len(encoded.encode())} bytes as JSON; at most {MAX_METADATA_BYTES}")
    if (depth := _depth(metadata)) > MAX_METADATA_DEPTH:
        raise InvalidInputError(f"metadata is nested {depth} levels deep; at most {MAX_METADATA_DEPTH}: flatten it")
    return metadata


def _unencodable(metadata: dict[str, Any]) -> str | None:
    """Where in `metadata` the first string (key or value) that UTF-8 cannot encode is, or None."""
    stack: list[tuple[Any, str]] = [(metadata, "metadata")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if not _encodes(node):
                return path
        elif isinstance(node, dict):
            for key, child in node.items():
                if not _encodes(key):
                    return f"{path} key {key!r}" if path == "metadata" else f"{path}: key {key!r}"
                stack.append((child, f"{path}[{key!r}]"))
        elif isinstance(node, list):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(node))
    return None


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _depth(value: Any) -> int:
    """How deeply objects and arrays nest in `value` (a flat object is 1), without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is not None:
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in children)
    return deepest


def check_k(k: Any) -> int:
    """Return `k` if it is an integer >= 1."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise InvalidInputError(f"k must be an integer >= 1, got {k!r}")
    return k


def check_temperature(temperature: Any) -> float:
    """Return `temperature` as a float if it is a finite real number > 0 (Python or numpy scalar)."""
    real = isinstance(temperature, int | float | np.integer | np.floating) and not isinstance(temperature, bool)
    if not real or not math.isfinite(float(temperature)) or float(temperature) <= 0.0:
        raise InvalidInputError(f"temperature must be a finite number > 0, got {temperature!r}")
    return float(temperature)
