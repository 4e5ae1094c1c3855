"""Durability under disk faults: full disks, damaged bytes, torn tails, old formats and second owners."""

import errno
import json
import os
import signal
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from indexes.durable import DurableIndex
from indexes.errors import IndexCorruptedError, InUseError, StorageError, StorageFullError
from indexes.snapshot import read_manifest
from indexes.wal import MAGIC
from tests.helpers import DURABLE_DIM, durable_contents, durable_vectors, open_durable


def _filled(path: Path, rng: np.random.Generator, n: int = 3) -> dict[str, Any]:
    """An index at `path` with `n` single-item writes in its log only, closed as a crash leaves it."""
    index = open_durable(path)
    for i in range(n):
        index.upsert([f"id-{i}"], durable_vectors(rng, 1), [{"i": i}])
    contents = durable_contents(index)
    index.close(compact=False)
    return contents


def _frame_starts(wal: Path) -> list[int]:
    data, position, starts = wal.read_bytes(), len(MAGIC), []
    while position < len(data):
        starts.append(position)
        position += 12 + int.from_bytes(data[position : position + 4], "little")
    return starts


def test_a_flipped_last_byte_is_damage_not_a_torn_tail(tmp_path: Path, rng: np.random.Generator) -> None:
    _filled(tmp_path, rng)
    wal = tmp_path / "wal.log"
    data = bytearray(wal.read_bytes())
    data[-1] ^= 0x01
    wal.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptedError, match=r"record 3 .* fails its checksum.*backup"):
        open_durable(tmp_path)
    assert wal.read_bytes() == bytes(data)  # nothing was cut: the acknowledged write is still there to restore


def test_a_damaged_length_is_damage_not_a_torn_tail(tmp_path: Path, rng: np.random.Generator) -> None:
    _filled(tmp_path, rng)
    wal = tmp_path / "wal.log"
    data = bytearray(wal.read_bytes())
    data[_frame_starts(wal)[1] + 1] ^= 0x40  # the length now points past the end of the file
    wal.write_bytes(bytes(data))
    with pytest.raises(IndexCorruptedError, match=r"record 2 .* its length fails its checksum"):
        open_durable(tmp_path)


@pytest.mark.parametrize("cut", ["in the header", "in the body", "one byte short"])
def test_torn_last_frames_are_cut_off(tmp_path: Path, rng: np.random.Generator, cut: str) -> None:
    contents = _filled(tmp_path, rng)
    wal = tmp_path / "wal.log"
    last = _frame_starts(wal)[-1]
    size = wal.stat().st_size
    keep = {"in the header": last + 5, "in the body": last + 30, "one byte short": size - 1}[cut]
    wal.write_bytes(wal.read_bytes()[:keep])
    index = open_durable(tmp_path)
    del contents["id-2"]
    assert durable_contents(index) == contents and wal.stat().st_size == last
    index.upsert(["after"], durable_vectors(rng, 1))
    index.close(compact=False)
    assert set(durable_contents(open_durable(tmp_path))) == {"id-0", "id-1", "after"}


def test_a_torn_magic_header_is_cut_off(tmp_path: Path, rng: np.random.Generator) -> None:
    open_durable(tmp_path).close()
    (tmp_path / "wal.log").write_bytes(MAGIC[:3])
    index = open_durable(tmp_path)
    assert index.count() == 0 and (tmp_path / "wal.log").stat().st_size == 0
    index.upsert(["a"], durable_vectors(rng, 1))
    index.close(compact=False)
    assert (tmp_path / "wal.log").read_bytes().startswith(MAGIC)


@pytest.fixture
def failing_write(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Make the log's next writes store half their bytes and fail with `errno` (simulated full disk)."""
    real_write = os.write
    control: dict[str, Any] = {"failures": 0, "errno": errno.ENOSPC}

    def write(fd: int, data: Any) -> int:
        if control["failures"] > 0:
            control["failures"] -= 1
            real_write(fd, bytes(data)[: len(data) // 2])
            raise OSError(control["errno"], os.strerror(control["errno"]))
        return real_write(fd, data)

    monkeypatch.setattr("indexes.wal.os.write", write)
    yield control


@pytest.mark.parametrize(("code", "error"), [(errno.ENOSPC, StorageFullError), (errno.EIO, StorageError)])
def test_a_failed_append_leaves_the_log_as_it_was(
    tmp_path: Path, rng: np.random.Generator, failing_write: dict[str, Any], code: int, error: type
) -> None:
    index = open_durable(tmp_path)
    index.upsert(["before"], durable_vectors(rng, 1))
    wal = tmp_path / "wal.log"
    log_before, contents = wal.read_bytes(), durable_contents(index)
    failing_write.update(failures=1, errno=code)
    with pytest.raises(error, match="nothing of this request was stored"):
        index.upsert(["failed"], durable_vectors(rng, 1))
    assert wal.read_bytes() == log_before and durable_contents(index) == contents
    failing_write["failures"] = 1
    with pytest.raises(error, match="not deleted"):
        index.delete("before")
    assert wal.read_bytes() == log_before and durable_contents(index) == contents
    for i in range(3):  # space freed: writes succeed again, and survive a crash
        index.upsert([f"after-{i}"], durable_vectors(rng, 1))
    expected = durable_contents(index)
    index.close(compact=False)
    assert durable_contents(open_durable(tmp_path)) == expected and set(expected) == {
        "before",
        "after-0",
        "after-1",
        "after-2",
    }


def test_a_compaction_that_fails_is_retried_later(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("indexes.durable.COMPACT_EVERY", 10)
    import indexes.durable as durable

    real_snapshot = durable.write_snapshot
    failures = {"left": 0}

    def snapshot(*args: Any, **kwargs: Any) -> Any:
        if failures["left"]:
            failures["left"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_snapshot(*args, **kwargs)

    monkeypatch.setattr(durable, "write_snapshot", snapshot)
    index = open_durable(tmp_path)
    failures["left"] = 1
    for i in range(10):  # the 10th write triggers the compaction that fails; the write is acknowledged
        index.upsert([f"id-{i}"], durable_vectors(rng, 1))
    manifest = read_manifest(tmp_path)
    assert manifest is not None and manifest.wal_seq == 0
    index.upsert(["id-10"], durable_vectors(rng, 1))  # retried after 1 more record (COMPACT_EVERY // 10)
    manifest = read_manifest(tmp_path)
    assert manifest is not None and manifest.wal_seq == 11 and manifest.count == 11
    assert (tmp_path / "wal.log").stat().st_size == 0


def test_the_manifest_has_a_checksum(tmp_path: Path, rng: np.random.Generator) -> None:
    index = open_durable(tmp_path)
    index.upsert(["a"], durable_vectors(rng, 1))
    index.close()
    path = tmp_path / "manifest.json"
    raw = json.loads(path.read_text())
    assert raw["format_version"] == 2 and len(raw["checksum"]) == 64
    path.write_text(json.dumps(raw | {"wal_seq": raw["wal_seq"] - 1}))
    with pytest.raises(IndexCorruptedError, match="manifest.json fails its checksum"):
        open_durable(tmp_path)


def test_an_index_of_format_version_1_loads_and_is_upgraded(tmp_path: Path, rng: np.random.Generator) -> None:
    index = open_durable(tmp_path)
    index.upsert(["snap"], durable_vectors(rng, 1), [{"from": "snapshot"}])
    index.close()
    path = tmp_path / "manifest.json"
    raw = json.loads(path.read_text())
    del raw["checksum"]
    path.write_text(json.dumps(raw | {"format_version": 1}))
    vectors = durable_vectors(rng, 2)
    lines = []
    for seq, record in enumerate(
        [
            {"op": "upsert", "ids": ["v1"], "vectors": _b64(vectors[:1]), "metadata": [{"from": "v1 log"}]},
            {"op": "delete", "id": "snap"},
        ],
        start=raw["wal_seq"] + 1,
    ):
        body = json.dumps({"seq": seq, **record}, separators=(",", ":")).encode()
        lines.append(b"%08x %s\n" % (zlib.crc32(body), body))
    (tmp_path / "wal.log").write_bytes(b"".join(lines))
    upgraded = open_durable(tmp_path)
    assert durable_contents(upgraded) == {"v1": (vectors[0].tolist(), {"from": "v1 log"})}
    manifest = read_manifest(tmp_path)
    assert manifest is not None and manifest.format_version == 2 and (tmp_path / "wal.log").stat().st_size == 0
    upgraded.upsert(["v2"], vectors[1:])
    upgraded.close(compact=False)
    assert set(durable_contents(open_durable(tmp_path))) == {"v1", "v2"}


def _b64(vectors: np.ndarray) -> str:
    from indexes.wal import encode_vectors

    return encode_vectors(vectors)


def test_leftovers_of_an_interrupted_snapshot_are_removed_at_open(tmp_path: Path, rng: np.random.Generator) -> None:
    contents = _filled(tmp_path, rng)
    for name in ("vectors-000000000007.npy.tmp", "items-000000000007.json.tmp", "vectors-000000000007.npy"):
        (tmp_path / name).write_bytes(b"half")
    assert durable_contents(open_durable(tmp_path)) == contents
    assert not list(tmp_path.glob("*.tmp")) and not (tmp_path / "vectors-000000000007.npy").exists()


def test_one_owner_per_index(tmp_path: Path, rng: np.random.Generator) -> None:
    index = open_durable(tmp_path)
    with pytest.raises(InUseError, match=f"index 't' at {tmp_path} is in use by process {os.getpid()}"):
        open_durable(tmp_path)
    index.close()
    open_durable(tmp_path).close()  # released on close


HOLD = """
import sys, time
from pathlib import Path
from indexes.durable import DurableIndex
DurableIndex.open(Path(sys.argv[1]), name="t", model_name="m", model_sha256="ab" * 32, dim=int(sys.argv[2]))
print("holding", flush=True)
time.sleep(60)
"""


def test_another_process_is_refused_until_it_dies(tmp_path: Path) -> None:
    open_durable(tmp_path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path), str(DURABLE_DIM)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"holding\n"
        with pytest.raises(InUseError, match=f"in use by process {holder.pid}"):
            open_durable(tmp_path)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    index = open_durable(tmp_path)  # a killed owner holds nothing
    assert isinstance(index, DurableIndex)
    index.close()
