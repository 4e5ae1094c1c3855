"""A damaged magic header of `wal.log` is corruption: the index is refused, and nothing is cut off the log."""

from pathlib import Path

import numpy as np
import pytest

from indexes.errors import IndexCorruptedError
from indexes.wal import MAGIC, is_legacy
from tests.helpers import durable_vectors, open_durable

_open = open_durable


def _filled(path: Path, rng: np.random.Generator, n: int = 3) -> None:
    """An index at `path` with `n` single-item writes in its log only, closed as a crash leaves it."""
    index = open_durable(path)
    for i in range(n):
        index.upsert([f"id-{i}"], durable_vectors(rng, 1), [{"i": i}])
    index.close(compact=False)


@pytest.mark.parametrize(("byte", "bit"), [(i, b) for i in range(len(MAGIC)) for b in (0, 3, 7)])
def test_a_flipped_bit_in_the_header_is_damage(tmp_path: Path, rng: np.random.Generator, byte: int, bit: int) -> None:
    _filled(tmp_path, rng)
    wal = tmp_path / "wal.log"
    data = bytearray(wal.read_bytes())
    data[byte] ^= 1 << bit
    wal.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptedError, match=r"header .* damaged.*acknowledged.*backup"):
        _open(tmp_path)
    assert wal.read_bytes() == bytes(data)  # nothing was cut: the acknowledged writes are still there to restore
    assert not is_legacy(wal)


def test_a_torn_header_alone_is_cut(tmp_path: Path) -> None:
    """A log that holds only the start of its header was never written to: that is a torn tail, not damage."""
    _open(tmp_path).close(compact=False)
    wal = tmp_path / "wal.log"
    wal.write_bytes(MAGIC[:3])
    _open(tmp_path).close(compact=False)
    assert wal.read_bytes() in (b"", MAGIC)
