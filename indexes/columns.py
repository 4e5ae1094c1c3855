"""A numpy column that grows by amortised doubling, for per-row values kept next to the FAISS rows."""

import numpy as np


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
            grown = np.empty((max(needed, 2 * len(self._data), 16), *self._data.shape[1:]), dtype=self._data.dtype)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._data[self._size : needed] = values
        self._size = needed

    def remove_moving_last(self, position: int) -> None:
        """Remove the value at `position`, moving the last one into its place (as the rows of `FaissIndex` do)."""
        self._size -= 1
        self._data[position] = self._data[self._size]

    def replace(self, values: np.ndarray) -> None:
        """Hold exactly `values` `(n, *shape)`."""
        self._data = np.array(values, dtype=self._data.dtype)
        self._size = len(values)
