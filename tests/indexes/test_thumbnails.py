"""Thumbnails in the durable store: kept with their item through the log and snapshots, replaced and deleted with it."""

from pathlib import Path

import numpy as np
import pytest

from indexes.durable import WAL, DurableIndex
from indexes.errors import IndexCorruptedError, InvalidInputError, ItemNotFoundError
from indexes.validation import MAX_THUMBNAIL_BYTES

DIM = 4
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
WEBP = b"RIFF\x10\x00\x00\x00WEBPVP8 " + bytes(20)


def _open(path: Path) -> DurableIndex:
    return DurableIndex.open(path, name="t", model_name="m", model_sha256="ab" * 32, dim=DIM)


def _vectors(n: int) -> np.ndarray:
    return np.arange(n * DIM, dtype=np.float32).reshape(n, DIM)


def _thumbnails(index: DurableIndex, ids: list[str]) -> dict[str, bytes | None]:
    return {item_id: index.thumbnail(item_id) for item_id in ids}


@pytest.mark.parametrize("compact", [False, True], ids=["log replay", "snapshot"])
def test_thumbnails_survive_reopening(tmp_path: Path, compact: bool) -> None:
    index = _open(tmp_path)
    index.upsert(["a", "b", "c"], _vectors(3), None, [PNG, None, WEBP])
    index.upsert(["c"], _vectors(1), None)  # replaced from logits: its old thumbnail goes
    index.upsert(["d"], _vectors(1), None, [PNG])
    index.delete("d")
    index.close(compact=compact)
    assert ((tmp_path / WAL).stat().st_size == 0) == compact  # compacted: everything is in the snapshot
    assert len(list(tmp_path.glob("thumbnails-*.bin"))) == (1 if compact else 0)
    reopened = _open(tmp_path)
    assert _thumbnails(reopened, ["a", "b", "c"]) == {"a": PNG, "b": None, "c": None}
    with pytest.raises(ItemNotFoundError):
        reopened.thumbnail("d")
    reopened.close()


def test_a_snapshot_then_more_writes_then_a_snapshot_keeps_only_live_thumbnails(tmp_path: Path) -> None:
    index = _open(tmp_path)
    index.upsert(["a", "b"], _vectors(2), None, [PNG, WEBP])
    index.save()
    index.delete("a")
    index.upsert(["e"], _vectors(1), None, [WEBP])
    index.save()
    index.close()
    assert len(list(tmp_path.glob("thumbnails-*.bin"))) == 1  # the older snapshot's file is gone
    reopened = _open(tmp_path)
    assert _thumbnails(reopened, ["b", "e"]) == {"b": WEBP, "e": WEBP} and reopened.count() == 2
    reopened.close()


def test_thumbnails_are_checked_before_anything_is_stored(tmp_path: Path) -> None:
    index = _open(tmp_path)
    with pytest.raises(InvalidInputError, match="at most 16384"):
        index.upsert(["a"], _vectors(1), None, [b"x" * (MAX_THUMBNAIL_BYTES + 1)])
    with pytest.raises(InvalidInputError, match="2 items but 1 thumbnails"):
        index.upsert(["a", "b"], _vectors(2), None, [PNG])
    with pytest.raises(InvalidInputError, match="non-empty bytes"):
        index.upsert(["a"], _vectors(1), None, ["text"])  # type: ignore[list-item]
    assert index.count() == 0
    index.close()


def test_a_damaged_thumbnails_file_fails_loudly(tmp_path: Path) -> None:
    index = _open(tmp_path)
    index.upsert(["a"], _vectors(1), None, [PNG])
    index.close()
    (path,) = tmp_path.glob("thumbnails-*.bin")
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(IndexCorruptedError, match="thumbnails"):
        _open(tmp_path)
