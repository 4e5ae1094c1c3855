"""Compact per-row columns: a growable numpy column and dictionary-encoded metadata, kept in step with the rows."""

from pathlib import Path

import numpy as np

from indexes.columns import GrowableArray, MappedRows, MetadataColumn
from indexes.faiss_index import FaissIndex


def test_growable_array_appends_removes_and_replaces() -> None:
    column = GrowableArray(np.float32)
    for start in range(0, 100, 7):
        column.extend(np.arange(start, min(start + 7, 100), dtype=np.float32))
    column.remove_moving_last(3)  # the last value (99) moves into row 3
    assert len(column) == 99 and column.values[3] == 99 and column.values[:3].tolist() == [0, 1, 2]
    column.replace(np.ones(4))
    assert column.values.tolist() == [1, 1, 1, 1]


def test_mapped_rows_live_in_their_file_and_views_outlive_growth(tmp_path: Path) -> None:
    rows = MappedRows(tmp_path / "rows.f32", 3)
    assert rows.values.shape == (0, 3)
    first = np.arange(12, dtype=np.float32).reshape(4, 3)
    rows.extend(first)
    before = rows.values  # taken before the file grows
    more = np.random.default_rng(0).standard_normal((5000, 3)).astype(np.float32)
    rows.extend(more)
    assert np.array_equal(before, first)  # still readable after the mapping was replaced
    everything = np.vstack([first, more])
    assert np.array_equal(rows.values, everything)
    assert np.array_equal(np.fromfile(tmp_path / "rows.f32", np.float32, count=everything.size), everything.ravel())
    rows.values[1] = rows.values[-1]  # a delete moves the last row into the hole, then cuts
    rows.truncate(len(rows) - 1)
    assert len(rows) == 5003 and np.array_equal(rows.values[1], more[-1])
    rows.replace(first[:2])
    assert np.array_equal(rows.values, first[:2])
    again = MappedRows(tmp_path / "rows.f32", 3)  # a new one starts from an empty file
    assert len(again) == 0 and (tmp_path / "rows.f32").stat().st_size == 0


def test_metadata_column_keeps_each_distinct_object_once_and_json_types_apart() -> None:
    column = MetadataColumn()
    column.extend([{"label": 1}, {"label": 1.0}, {"label": True}, {"label": 1}, {"split": "a", "label": 1}])
    column.extend([{"label": 1, "split": "a"}])  # key order does not make it another object
    assert column.to_list() == [
        {"label": 1},
        {"label": 1.0},
        {"label": True},
        {"label": 1},
        {"split": "a", "label": 1},
        {"label": 1, "split": "a"},
    ]
    assert [type(m["label"]) for m in column.to_list()[:3]] == [int, float, bool]
    assert len(column.distinct) == 4 and column[0] is column[3] and column[4] is column[5]
    column.set(0, {"label": 2})
    column.remove_moving_last(1)  # row 5 moves into row 1
    assert column.to_list() == [
        {"label": 2},
        {"split": "a", "label": 1},
        {"label": True},
        {"label": 1},
        {"split": "a", "label": 1},
    ]


def test_index_filters_and_returns_encoded_metadata_after_writes(rng: np.random.Generator) -> None:
    index = FaissIndex(4)
    vectors = rng.standard_normal((300, 4)).astype(np.float32)
    metadata = [{"label": i % 3, "split": "test" if i % 4 == 0 else "train"} for i in range(300)]
    index.upsert([f"i{i}" for i in range(300)], vectors, metadata)
    index.upsert(["i5", "new"], vectors[:2], [{"label": 9}, {"label": 0, "split": "test"}])
    index.delete("i0")
    metadata[5] = {"label": 9}
    expected = {f"i{i}": m for i, m in enumerate(metadata) if i != 0} | {"new": {"label": 0, "split": "test"}}
    assert {item_id: index.get(item_id).metadata for item_id in expected} == expected
    hits = index.search(rng.standard_normal((1, 4)), 400, {"label": 0, "split": "test"}).neighbors[0]
    assert sorted(h.id for h in hits) == sorted(k for k, m in expected.items() if m == {"label": 0, "split": "test"})
    assert all(h.metadata == expected[h.id] for h in hits)
