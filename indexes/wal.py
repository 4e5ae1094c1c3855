"""Append-only write-ahead log: every acknowledged write is on disk (fsync) before it is applied."""

import base64
import json
import logging
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .errors import IndexCorruptedError

logger = logging.getLogger(__name__)


def encode_vectors(vectors: np.ndarray) -> str:
    """`(n, d)` float32 -> base64 of little-endian bytes (exact, unlike decimal text)."""
    return base64.b64encode(np.ascontiguousarray(vectors, dtype="<f4").tobytes()).decode("ascii")


def decode_vectors(text: str, dim: int) -> np.ndarray:
    """Inverse of `encode_vectors`: `(n, dim)` float32."""
    return np.frombuffer(base64.b64decode(text), dtype="<f4").astype(np.float32).reshape(-1, dim)


def _frame(record: dict[str, Any]) -> bytes:
    body = json.dumps(record, separators=(",", ":"), allow_nan=False).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


class WriteAheadLog:
    """One record per line: `<crc32 hex> <json>`; records carry increasing `seq` numbers.

    A crash can leave the last line torn; it was never acknowledged (acknowledgement follows fsync), so
    `replay` drops it. A bad record followed by good ones is corruption, not a torn write, and fails.
    """

    def __init__(self, path: Path, last_seq: int) -> None:
        self.path = path
        self.last_seq = last_seq
        self._file = open(path, "ab")  # noqa: SIM115 - kept open for the life of the index
        self.num_records = 0

    def append(self, record: dict[str, Any]) -> int:
        """Write `record` with the next sequence number and fsync; returns that number."""
        seq = self.last_seq + 1
        self._file.write(_frame({"seq": seq, **record}))
        self._file.flush()
        os.fsync(self._file.fileno())
        self.last_seq = seq
        self.num_records += 1
        return seq

    def truncate(self) -> None:
        """Empty the log once a snapshot holds everything in it."""
        self._file.truncate(0)
        self._file.seek(0)
        os.fsync(self._file.fileno())
        self.num_records = 0

    def close(self) -> None:
        self._file.close()


def replay(path: Path, after_seq: int) -> Iterator[dict[str, Any]]:
    """Yield the records of the log at `path` with `seq > after_seq`, in order.

    A torn final line is cut off the file so that later appends start on a clean line.

    Raises:
        IndexCorruptedError: a damaged record that is not the last one, or sequence numbers out of order.
    """
    if not path.exists():
        return
    data = path.read_bytes()
    lines = data.split(b"\n")
    good_end = 0
    previous = after_seq
    for number, line in enumerate(lines):
        if not line:
            if number == len(lines) - 1:
                break
            raise IndexCorruptedError(f"{path}: empty line {number + 1} inside the write-ahead log")
        record = _parse(line)
        is_last = number == len(lines) - 1  # no newline after it: the write was cut short
        if record is None or is_last:
            if is_last:
                logger.warning("%s: dropping a torn final record (written but never acknowledged)", path)
                with open(path, "r+b") as f:
                    f.truncate(good_end)
                    os.fsync(f.fileno())
                return
            raise IndexCorruptedError(
                f"{path}: record {number + 1} fails its checksum; restore the index directory from a backup "
                f"or rebuild it with `logitsearch index`"
            )
        good_end += len(line) + 1
        seq = record["seq"]
        if seq <= after_seq:
            continue
        if seq != previous + 1:
            raise IndexCorruptedError(f"{path}: record seq {seq} follows {previous}; the log has a gap")
        previous = seq
        yield record


def _parse(line: bytes) -> dict[str, Any] | None:
    crc, _, body = line.partition(b" ")
    try:
        if int(crc, 16) != zlib.crc32(body):
            return None
        record = json.loads(body)
    except ValueError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("seq"), int) else None
