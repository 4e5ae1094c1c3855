"""Thumbnails kept with items: the in-memory table, their field in log records, and their snapshot file.

A thumbnail is an encoded image (PNG or WebP, at most `validation.MAX_THUMBNAIL_BYTES`) that travels with its
item: in the same log record as the item's upsert, in the same snapshot, and removed with it.
"""

import base64
import json
import struct
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .errors import IndexCorruptedError

_MAGIC = b"LSTHUMB1"


class ThumbnailTable:
    """Thumbnails by item id; not thread-safe (`DurableIndex` holds its lock around every call)."""

    def __init__(self, thumbnails: dict[str, bytes] | None = None) -> None:
        self._by_id = thumbnails if thumbnails is not None else {}

    def get(self, item_id: str) -> bytes | None:
        return self._by_id.get(item_id)

    def set(self, ids: Sequence[str], thumbnails: Sequence[bytes | None]) -> None:
        """Set each id's thumbnail; None removes the one a replaced item had."""
        for item_id, data in zip(ids, thumbnails, strict=True):
            if data is None:
                self._by_id.pop(item_id, None)
            else:
                self._by_id[item_id] = data

    def remove(self, item_id: str) -> None:
        self._by_id.pop(item_id, None)

    def as_mapping(self) -> Mapping[str, bytes]:
        return self._by_id

    def apply_log(self, ids: Sequence[str], field: Sequence[str | None] | None) -> None:
        """Apply an upsert record's `thumbnails` field (absent in records written before thumbnails: none)."""
        self.set(ids, [base64.b64decode(t) if t else None for t in field or [None] * len(ids)])


def log_field(thumbnails: Sequence[bytes | None]) -> list[str | None] | None:
    """The `thumbnails` field of an upsert record (base64 or null per item), None when no item has one."""
    if all(t is None for t in thumbnails):
        return None
    return [base64.b64encode(t).decode("ascii") if t else None for t in thumbnails]


def write_file(f: BinaryIO, thumbnails: Mapping[str, bytes]) -> None:
    """Magic, the length of a JSON header `{"ids", "sizes"}` (u64 little-endian), the header, the bytes."""
    ids = list(thumbnails)
    header = json.dumps({"ids": ids, "sizes": [len(thumbnails[i]) for i in ids]}, separators=(",", ":")).encode()
    f.write(_MAGIC + struct.pack("<Q", len(header)) + header)
    for item_id in ids:
        f.write(thumbnails[item_id])


def read_file(path: Path) -> dict[str, bytes]:
    """The thumbnails `write_file` wrote to `path`, by id (`IndexCorruptedError` if it does not parse)."""
    data = path.read_bytes()
    try:
        if not data.startswith(_MAGIC):
            raise ValueError("bad magic")
        start = len(_MAGIC) + 8
        (length,) = struct.unpack_from("<Q", data, len(_MAGIC))
        header: dict[str, Any] = json.loads(data[start : start + length])
        offsets = np.concatenate([[0], np.cumsum(header["sizes"], dtype=np.int64)]) + start + length
        if offsets[-1] != len(data) or len(header["ids"]) != len(header["sizes"]):
            raise ValueError(f"sizes add up to {offsets[-1]} bytes; the file has {len(data)}")
    except (ValueError, KeyError, TypeError, struct.error) as exc:
        raise IndexCorruptedError(f"{path} is not a valid thumbnails file ({exc})") from exc
    return {item_id: data[offsets[i] : offsets[i + 1]] for i, item_id in enumerate(header["ids"])}
