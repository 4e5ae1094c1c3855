"""Append-only write-ahead log: every acknowledged write is on disk (fsync) before it is applied."""

import base64
import json
import logging
import os
import re
import struct
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


MAGIC = b"LSWAL\x002\n"
#: How a log of format version 1 begins: a record line, `<crc32 hex> {json`.
_LEGACY_START = re.compile(rb"[0-9a-f]{1,8} \{")
#: Each frame: body length, CRC-32 of those 4 length bytes, CRC-32 of the body (little-endian u32), the body.
_HEADER = struct.Struct("<III")


def _frame(record: dict[str, Any]) -> bytes:
    body = json.dumps(record, separators=(",", ":"), allow_nan=False).encode()
    length = struct.pack("<I", len(body))
    return length + struct.pack("<II", zlib.crc32(length), zlib.crc32(body)) + body


class WriteAheadLog:
    """Length-prefixed, checksummed frames after a magic header; records carry increasing `seq` numbers.

    A crash can leave the last frame incomplete (torn); it was never acknowledged (acknowledgement follows
    fsync), so `replay` cuts it off. A complete frame that fails a checksum is damage, wherever it is, and
    stops the replay: the length has its own checksum, so a damaged length is not mistaken for a torn tail.
    A failed append (a full disk) cuts the file back to where it was, so the log is never left with half a
    frame in front of the next one.
    """

    def __init__(self, path: Path, last_seq: int) -> None:
        self.path = path
        self.last_seq = last_seq
        # Unbuffered, so that a failed write leaves nothing queued to be written later.
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._size = os.fstat(self._fd).st_size
        self._cut_pending = False
        self.num_records = 0

    def append(self, record: dict[str, Any]) -> int:
        """Write `record` with the next sequence number and fsync; returns that number.

        Raises:
            OSError: the write or the fsync failed (ENOSPC...); the file is cut back to its previous length.
        """
        if self._cut_pending:
            self._cut_back()
        seq = self.last_seq + 1
        data = _frame({"seq": seq, **record})
        if self._size == 0:
            data = MAGIC + data  # written with the first frame: opening a log never needs free space
        try:
            _write_all(self._fd, data)
            os.fsync(self._fd)
        except OSError:
            self._cut_pending = True
            try:
                self._cut_back()
            except OSError as exc:  # retried before the next append; a restart would cut a torn tail anyway
                logger.error("%s: could not cut a failed append back (%s); retrying at the next write", self.path, exc)
            raise
        self._size += len(data)
        self.last_seq = seq
        self.num_records += 1
        return seq

    def _cut_back(self) -> None:
        os.ftruncate(self._fd, self._size)
        os.fsync(self._fd)
        self._cut_pending = False

    def truncate(self) -> None:
        """Empty the log once a snapshot holds everything in it."""
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)
        self._size, self._cut_pending, self.num_records = 0, False, 0

    def close(self) -> None:
        os.close(self._fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def is_legacy(path: Path) -> bool:
    """Whether the log at `path` holds records in the line format of format version 1 (upgraded at open)."""
    if not path.exists():
        return False
    with open(path, "rb") as f:
        head = f.read(len(MAGIC) + 2)
    return _LEGACY_START.match(head) is not None


def replay(path: Path, after_seq: int) -> Iterator[dict[str, Any]]:
    """Yield the records of the log at `path` with `seq > after_seq`, in order.

    A torn final frame is cut off the file so that later appends start on a frame boundary.

    Raises:
        IndexCorruptedError: a damaged header or frame, or sequence numbers out of order.
    """
    if not path.exists():
        return
    data = path.read_bytes()
    if not data:
        return
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):  # the magic header itself was cut short
            _cut_torn_tail(path, 0, len(data))
            return
        if _LEGACY_START.match(data) is None:
            raise IndexCorruptedError(
                f"{path}: its header is {data[: len(MAGIC)]!r}, not {MAGIC!r}: the log is damaged, and the writes "
                f"in it were acknowledged. {_RESTORE}"
            )
        yield from _replay_lines(path, data, after_seq)
        return
    position, number, previous = len(MAGIC), 0, after_seq
    while position < len(data):
        number += 1
        if len(data) - position < _HEADER.size:
            _cut_torn_tail(path, position, len(data))
            return
        length, length_crc, body_crc = _HEADER.unpack_from(data, position)
        if zlib.crc32(data[position : position + 4]) != length_crc:
            raise _damaged(path, number, position, "its length fails its checksum")
        end = position + _HEADER.size + length
        if end > len(data):
            _cut_torn_tail(path, position, len(data))
            return
        record = _parse_body(data[position + _HEADER.size : end], body_crc)
        if record is None:
            raise _damaged(path, number, position, "it fails its checksum")
        position = end
        if (seq := record["seq"]) > after_seq:
            if seq != previous + 1:
                raise IndexCorruptedError(f"{path}: record seq {seq} follows {previous}; the log has a gap")
            previous = seq
            yield record


def _parse_body(body: bytes, crc: int) -> dict[str, Any] | None:
    if zlib.crc32(body) != crc:
        return None
    try:
        record = json.loads(body)
    except ValueError:
        return None
    return record if isinstance(record, dict) and isinstance(record.get("seq"), int) else None


def _damaged(path: Path, number: int, position: int, what: str) -> IndexCorruptedError:
    return IndexCorruptedError(
        f"{path}: record {number} (at byte {position}) is complete but {what}: the log is damaged, and the "
        f"writes in it were acknowledged. {_RESTORE}"
    )


_RESTORE = (
    "Restore the index directory from a backup; or, to keep only what the last snapshot holds, move wal.log "
    "aside and restart"
)


def _cut_torn_tail(path: Path, good_end: int, size: int) -> None:
    logger.warning(
        "%s: cutting off a torn final record (%d bytes, written but never acknowledged)", path, size - good_end
    )
    with open(path, "r+b") as f:
        f.truncate(good_end)
        os.fsync(f.fileno())


def _replay_lines(path: Path, data: bytes, after_seq: int) -> Iterator[dict[str, Any]]:
    """Replay a log of format version 1: one `<crc32 hex> <json>` line per record."""
    lines = data.split(b"\n")
    good_end = 0
    previous = after_seq
    for number, line in enumerate(lines):
        if not line:
            if number == len(lines) - 1:
                break
            raise IndexCorruptedError(f"{path}: empty line {number + 1} inside the write-ahead log")
        crc, _, body = line.partition(b" ")
        try:
            record = _parse_body(body, int(crc, 16))
        except ValueError:
            record = None
        is_last = number == len(lines) - 1  # no newline after it: the write was cut short
        if record is None or is_last:
            if is_last:
                _cut_torn_tail(path, good_end, len(data))
                return
            raise _damaged(path, number + 1, good_end, "it fails its checksum")
        good_end += len(line) + 1
        seq = record["seq"]
        if seq <= after_seq:
            continue
        if seq != previous + 1:
            raise IndexCorruptedError(f"{path}: record seq {seq} follows {previous}; the log has a gap")
        previous = seq
        yield record
