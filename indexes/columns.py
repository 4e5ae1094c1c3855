"""Per-row values kept next to the FAISS rows in compact form: numpy columns, rows in a memory-mapped file, and
dictionary-encoded metadata."""

import json
import mmap
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .store import Metadata


class GrowableArray:
    """`(n, *shape)` values of one dtype, appended in batches without copying the whole column each time.

    Args:
        dtype: element type.
        shape: the shape of one row's value (`()` for scalars).
    """

    def __init__(self, dtype: type | np.dtype, shape: tuple[int, ...] = ()) -> None:
        self._data = np.empty((0, *shape), dtype=dtype)
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def values(self) -> np.ndarray:
        """`(n, *shape)` view of the stored values (invalid after the next append)."""
        return self._data[: self._size]

    def extend(self, values: np.ndarray) -> None:
        """Append `(k, *shape)` values."""
        needed = self._size + len(values)
        if needed > len(self._data):
            self._grow(max(needed, 2 * len(self._data), 16))
        self._data[self._size : needed] = values
        self._size = needed

    def _grow(self, capacity: int) -> None:
        """Room for `capacity` values, the stored ones kept."""
        grown = np.empty((capacity, *self._data.shape[1:]), dtype=self._data.dtype)
        grown[: self._size] = self._data[: self._size]
        self._data = grown

    def remove_moving_last(self, position: int) -> None:
        """Remove the value at `position`, moving the last one into its place (as the rows of `FaissIndex` do)."""
        self._size -= 1
        self._data[position] = self._data[self._size]

    def replace(self, values: np.ndarray) -> None:
        """Hold exactly `values` `(n, *shape)`."""
        self._data = np.array(values, dtype=self._data.dtype)
        self._size = len(values)


class MappedRows(GrowableArray):
    """`(n, dim)` rows of one dtype in a file mapped into memory: the kernel's page cache holds them, so they count
    against the process's resident memory only while recently read, and are paged out under pressure.

    The file is a cache of what the snapshot and the log hold (rewritten at every open), never the record. It only
    grows (doubling): a view taken before a write stays readable (a file that shrank under a mapping would fault).
    No file descriptor is kept open: the mapping holds its own.

    Args:
        path: the file (replaced).
        dim: values per row.
        dtype: element type.
    """

    def __init__(self, path: Path, dim: int, dtype: type | np.dtype = np.float32) -> None:
        super().__init__(dtype, (dim,))  # its `values` views stay readable after later writes (unlike the parent's)
        self.path = path
        path.unlink(missing_ok=True)
        path.touch()

    def truncate(self, size: int) -> None:
        """Keep the first `size` rows (the file keeps its length)."""
        self._size = min(size, self._size)

    def replace(self, values: np.ndarray, chunk: int = 1 << 16) -> None:
        """Hold exactly `values` `(n, dim)` (any array, a memory-mapped one included), copied `chunk` rows at a
        time."""
        self._size = 0
        for start in range(0, len(values), chunk):
            self.extend(values[start : start + chunk])

    def _grow(self, capacity: int) -> None:
        """Lengthen the file to `capacity` rows and map it again (the rows stored are in the file already)."""
        dim, dtype = self._data.shape[1], self._data.dtype
        with self.path.open("r+b") as f:
            size = capacity * dim * dtype.itemsize
            os.ftruncate(f.fileno(), size)
            mapped = mmap.mmap(f.fileno(), size)
        self._data = np.frombuffer(mapped, dtype).reshape(capacity, dim)


class MetadataColumn:
    """One JSON object per row, dictionary-encoded: each distinct object is kept once, rows hold its code.

    Metadata repeats across items (labels, splits, sources), so a million rows cost 4 bytes each plus their few
    distinct objects, instead of one dict per row. Objects are told apart by their canonical JSON, so `1`,
    `1.0` and `true` stay distinct. The stored objects are shared between rows: never mutate one in place.
    """

    def __init__(self) -> None:
        self._codes = GrowableArray(np.int32)
        self._values: list[Metadata] = []
        self._lookup: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._codes)

    def __getitem__(self, row: int) -> Metadata:
        return self._values[int(self._codes.values[row])]

    @property
    def codes(self) -> np.ndarray:
        """`(n,)` int32: row -> position in `distinct` (invalid after the next write)."""
        return self._codes.values

    @property
    def distinct(self) -> list[Metadata]:
        """The distinct objects (some may no longer be used by any row)."""
        return self._values

    def take(self, rows: list[int]) -> list[Metadata]:
        """The objects of `rows`."""
        codes, values = self._codes.values, self._values
        return [values[code] for code in codes[rows].tolist()]

    def to_list(self) -> list[Metadata]:
        """One object per row (shared, not copied)."""
        values = self._values
        return [values[code] for code in self._codes.values.tolist()]

    def extend(self, metadata: Sequence[Metadata]) -> None:
        self._codes.extend(np.array([self._encode(m) for m in metadata], dtype=np.int32))

    def set(self, row: int, metadata: Metadata) -> None:
        self._codes.values[row] = self._encode(metadata)

    def remove_moving_last(self, row: int) -> None:
        self._codes.remove_moving_last(row)

    def replace(self, metadata: Sequence[Metadata]) -> None:
        """Hold exactly `metadata`, one object per row, forgetting the distinct objects no row uses."""
        self._values, self._lookup = [], {}
        self._codes.replace(np.array([self._encode(m) for m in metadata], dtype=np.int32))

    def _encode(self, metadata: Metadata) -> int:
        key = json.dumps(metadata, sort_keys=True, separators=(",", ":"))
        code = self._lookup.get(key)
        if code is None:
            code = self._lookup[key] = len(self._values)
            self._values.append(metadata)
        return code
