"""DurableIndex: writes survive reopening, torn logs are cut, damaged files fail loudly, requests are atomic."""

import json
from pathlib import Path

import numpy as np
import pytest

from indexes.errors import (
    DimensionMismatchError,
    IndexClosedError,
    IndexCorruptedError,
    InvalidInputError,
    ItemNotFoundError,
    ManifestMismatchError,
    UnknownMetricError,
)
from indexes.snapshot import read_manifest
from tests.helpers import DURABLE_DIM, durable_contents, durable_vectors, open_durable


def test_reopen_replays_log_exactly(tmp_path: Path, rng: np.random.Generator) -> None:
    index = open_durable(tmp_path)
    index.upsert(["a", "b", "c"], durable_vectors(rng, 3), [{"x": 1}, {"x": 2}, {"x": [1, "two"]}])
    index.upsert(["b"], durable_vectors(rng, 1), [{"x": 20}])
    index.delete("a")
    before = durable_contents(index)
    index.close(compact=False)  # as after a crash: only the log has the writes
    reopened = open_durable(tmp_path)
    assert durable_contents(reopened) == before
    assert reopened.count() == 2


def test_close_snapshots_and_empties_log(tmp_path: Path, rng: np.random.Generator) -> None:
    index = open_durable(tmp_path)
    index.upsert(["a", "b"], durable_vectors(rng, 2))
    before = durable_contents(index)
    index.close()
    assert (tmp_path / "wal.log").stat().st_size == 0
    manifest = read_manifest(tmp_path)
    assert manifest is not None and manifest.count == 2 and manifest.wal_seq == 1
    assert durable_contents(open_durable(tmp_path)) == before


def test_torn_last_record_is_dropped(tmp_path: Path, rng: np.random.Generator) -> None:
    index = open_durable(tmp_path)
    index.upsert(["a"], durable_vectors(rng, 1))
    index.upsert(["b"], durable_vectors(rng, 1))
    index.close(compact=False)
    wal = tmp_path / "wal.log"
    data = wal.read_bytes()
    wal.write_bytes(data[:-10])  # the second write was cut short: it had not been acknowledged
    reopened = open_durable(tmp_path)
    assert [item.id for item in reopened.iter_items()] == ["a"]
    reopened.upsert(["c"], durable_vectors(rng, 1))  # appends continue on a frame boundary
    reopened.close(compact=False)
    assert [item.id for item in open_durable(tmp_path).iter_items()] == ["a", "c"]


def test_damaged_record_before_good_ones_fails(tmp_path: Path, rng: np.random.Generator) -> None:
    index = open_durable(tmp_path)
    index.upsert(["a"], durable_vectors(rng, 1))
    index.upsert(["b"], durable_vectors(rng, 1))
    index.close(compact=False)
    wal = tmp_path / "wal.log"
    wal.write_bytes(wal.read_bytes().replace(b'"a"', b'"z"', 1))
    with pytest.raises(IndexCorruptedError, match="record 1 .* fails its checksum"):
        open_durable(tmp_path)


def test_damaged_snapshot_fails(tmp_path: Path, rng: np.random.Generator) -> None:
    index = open_durable(tmp_path)
    index.upsert(["a", "b"], durable_vectors(rng, 2))
    index.close()
    vectors_file = next(tmp_path.glob("vectors-*.npy"))
    vectors_file.write_bytes(vectors_file.read_bytes()[:-4])
    with pytest.raises(IndexCorruptedError, match="sha256"):
        open_durable(tmp_path)


def test_other_model_fails_at_open(tmp_path: Path) -> None:
    open_durable(tmp_path).close()
    with pytest.raises(ManifestMismatchError, match="rebuild"):
        open_durable(tmp_path, model_sha256="cd" * 32)
    with pytest.raises(ManifestMismatchError):
        open_durable(tmp_path, dim=DURABLE_DIM + 1)


def test_manifest_records_versions(tmp_path: Path) -> None:
    open_durable(tmp_path).close()
    raw = json.loads((tmp_path / "manifest.json").read_text())
    assert {"faiss", "numpy", "logit_search"} <= raw["versions"].keys()
    assert raw["dim"] == DURABLE_DIM and raw["model_name"] == "m"


@pytest.mark.parametrize(
    ("ids", "vectors", "metadata", "error"),
    [
        (["ok", "ok"], np.zeros((2, DURABLE_DIM)), None, InvalidInputError),
        (["ok", ""], np.zeros((2, DURABLE_DIM)), None, InvalidInputError),
        (["ok", "bad\x00id"], np.zeros((2, DURABLE_DIM)), None, InvalidInputError),
        (["ok", "x" * 257], np.zeros((2, DURABLE_DIM)), None, InvalidInputError),
        (["ok", "nan"], np.array([[0.0] * DURABLE_DIM, [np.nan] * DURABLE_DIM]), None, InvalidInputError),
        (["ok", "inf"], np.array([[0.0] * DURABLE_DIM, [0.0] * (DURABLE_DIM - 1) + [np.inf]]), None, InvalidInputError),
        (["ok", "huge"], np.array([[0.0] * DURABLE_DIM, [1e39] * DURABLE_DIM]), None, InvalidInputError),
        (["ok", "short"], [[0.0] * DURABLE_DIM, [0.0] * (DURABLE_DIM - 1)], None, InvalidInputError),
        (["ok"], np.zeros((1, DURABLE_DIM + 1)), None, DimensionMismatchError),
        (["ok", "meta"], np.zeros((2, DURABLE_DIM)), [{}, ["not", "an", "object"]], InvalidInputError),
        (["ok", "meta"], np.zeros((2, DURABLE_DIM)), [{}, {"x": float("nan")}], InvalidInputError),
        (["ok", "meta"], np.zeros((2, DURABLE_DIM)), [{}, {"x": "y" * 20_000}], InvalidInputError),
    ],
)
def test_bad_request_stores_nothing(
    tmp_path: Path, rng: np.random.Generator, ids: list[str], vectors: object, metadata: object, error: type
) -> None:
    index = open_durable(tmp_path)
    index.upsert(["kept"], durable_vectors(rng, 1), [{"keep": True}])
    before = durable_contents(index)
    with pytest.raises(error):
        index.upsert(ids, vectors, metadata)  # type: ignore[arg-type]
    assert durable_contents(index) == before
    index.close(compact=False)
    assert durable_contents(open_durable(tmp_path)) == before


def test_search_rejects_bad_arguments(tmp_path: Path, rng: np.random.Generator) -> None:
    index = open_durable(tmp_path)
    index.upsert(["a"], durable_vectors(rng, 1))
    with pytest.raises(UnknownMetricError, match="l2"):
        index.search(durable_vectors(rng, 1), 1, metric="hamming")
    with pytest.raises(InvalidInputError, match="k"):
        index.search(durable_vectors(rng, 1), 0)
    with pytest.raises(InvalidInputError, match="temperature"):
        index.search(durable_vectors(rng, 1), 1, temperature=float("nan"))
    with pytest.raises(DimensionMismatchError):
        index.search(np.zeros((1, DURABLE_DIM + 2)), 1)
    with pytest.raises(ItemNotFoundError):
        index.delete("missing")


def test_compaction_keeps_everything(tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("indexes.durable.COMPACT_EVERY", 3)
    index = open_durable(tmp_path)
    for i in range(7):
        index.upsert([f"id-{i}"], durable_vectors(rng, 1))
    index.delete("id-2")
    manifest = read_manifest(tmp_path)
    assert manifest is not None and manifest.wal_seq == 6  # compacted at seq 3 and 6; seq 7, 8 in the log
    expected = durable_contents(index)
    index.close(compact=False)
    assert durable_contents(open_durable(tmp_path)) == expected


def test_closed_index_refuses_every_operation(tmp_path: Path, rng: np.random.Generator) -> None:
    index = open_durable(tmp_path)
    index.upsert(["a"], durable_vectors(rng, 1))
    manifest_before = read_manifest(tmp_path)
    index.close(compact=False)
    index.close()  # idempotent, and nothing more is written once closed
    assert read_manifest(tmp_path) == manifest_before
    for operation in (
        lambda: index.upsert(["b"], durable_vectors(rng, 1)),
        lambda: index.delete("a"),
        lambda: index.get("a"),
        lambda: index.list(0, 10),
        lambda: index.count(),
        lambda: index.search(durable_vectors(rng, 1), 1),
        lambda: index.save(),
    ):
        with pytest.raises(IndexClosedError, match="'t' was closed"):
            operation()
    assert [item.id for item in open_durable(tmp_path).iter_items()] == ["a"]  # the log still holds the write


def test_listing_keeps_insertion_order_across_log_replay_snapshots_and_reopen(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("indexes.snapshot._SAVE_BLOCK_BYTES", 5 * DURABLE_DIM * 4)  # rows gathered 5 at a time
    index = open_durable(tmp_path)
    ids = [f"item-{i}" for i in range(12)]  # string order would put item-10 before item-2
    index.upsert(ids, durable_vectors(rng, 12), [{"i": i} for i in range(12)])
    index.delete("item-2")  # moves the last row into the hole
    index.upsert(["item-5", "z-new", "a-new"], durable_vectors(rng, 3))  # item-5 replaced in place
    expected = [i for i in ids if i != "item-2"] + ["z-new", "a-new"]
    before = [(item.id, item.logits.tolist(), item.metadata) for item in index.iter_items()]
    assert [row[0] for row in before] == expected
    index.close(compact=False)  # only the log holds the last writes
    replayed = open_durable(tmp_path)
    assert [(item.id, item.logits.tolist(), item.metadata) for item in replayed.iter_items()] == before
    replayed.save()  # a snapshot written from rows that are not in insertion order
    replayed.close()
    reopened = open_durable(tmp_path)
    assert [(item.id, item.logits.tolist(), item.metadata) for item in reopened.iter_items()] == before
    assert [item.id for item in reopened.list(offset=3, limit=4)] == expected[3:7]


def test_search_now_answers_as_search_or_not_at_all(tmp_path: Path, rng: np.random.Generator) -> None:
    index = open_durable(tmp_path)
    index.upsert([f"i{n}" for n in range(50)], durable_vectors(rng, 50), [{"odd": n % 2} for n in range(50)])
    queries = rng.standard_normal((3, DURABLE_DIM))
    for metric, options in (("l2", {}), ("kl", {"temperature": 2.0, "filter": {"odd": 1}})):
        now = index.search_now(queries, 7, metric=metric, max_values=50 * DURABLE_DIM * 3, **options)  # type: ignore[arg-type]
        assert now == index.search(queries, 7, metric=metric, **options)  # type: ignore[arg-type]
    assert index.search_now(queries, 7, max_values=50 * DURABLE_DIM * 3 - 1) is None  # more to scan than allowed
    with index._lock.write():  # a write under way: the search would wait, so it is not done now
        assert index.search_now(queries, 7, max_values=10**9) is None
    with pytest.raises(UnknownMetricError):  # bad arguments fail as in search, before any size check
        index.search_now(queries, 7, metric="nope", max_values=0)
    index.close()
    with pytest.raises(IndexClosedError):
        index.search_now(queries, 7, max_values=10**9)
