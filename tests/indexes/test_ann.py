"""Approximate indexes (HNSW, IVF) on the FAISS store: recall against the exact oracle, exact distances, writes,
deletes, filters, the declared temperatures, and a crash during a background build."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from indexes.ann import (
    BATCH_QUERIES,
    AnnOptions,
    build_structure,
    calibration_queries,
    encode_items,
    encode_queries,
    ladder,
    routing_temperature,
)
from indexes.ann.options import CALIBRATION_NOISE
from indexes.durable import DurableIndex
from indexes.errors import InvalidInputError
from tests.helpers import brute_force, class_logits

N, C = 3000, 20
ALL = ("l2", "l2_centered", "cosine", "ce", "kl", "js", "tri")
#: The float32 originals memory-mapped from a file, and approximate searches re-ranked from a float16 copy.
ON_DISK = {"originals": "disk", "rerank_codec": "float16"}


def _open(path: Path, options: AnnOptions) -> DurableIndex:
    return DurableIndex.open(
        path, name="ann", model_name="m", model_sha256="ab" * 32, dim=C, approximate=options, settle_s=0.05
    )


def _ids(n: int, prefix: str = "i") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


@pytest.fixture(scope="module", params=["hnsw", "ivf", "hnsw-disk"])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[DurableIndex, np.ndarray]:
    """An approximate index over N seeded class-shaped logits, every metric served at T = 0.5, 1 and 4 (hnsw-disk:
    originals on disk, re-ranked from float16)."""
    items = class_logits(np.random.default_rng(1), N, C)
    extra: dict[str, str] = ON_DISK if request.param.endswith("-disk") else {}
    options = AnnOptions(request.param.split("-")[0], metrics=ALL, temperatures=(0.5, 1.0, 4.0), **extra)
    index = _open(tmp_path_factory.mktemp(request.param), options)
    index.upsert(_ids(N), items, [{"label": int(i % 3)} for i in range(N)])
    assert index.wait_for_approximate(timeout=300)
    yield index, items
    index.close()


def _queries(n: int = 15) -> np.ndarray:  # under BATCH_QUERIES: a batch may go exact where the flat scan is faster
    return class_logits(np.random.default_rng(2), n, C)  # outputs of inputs not stored


@pytest.mark.parametrize(
    ("metric", "temperature"),
    [("l2", 1.0), ("l2_centered", 1.0), ("cosine", 1.0), ("ce", 1.0), ("ce", 4.0), ("kl", 0.5), ("kl", 2.3),
     ("js", 1.0), ("tri", 4.0)],
)  # fmt: skip
def test_approximate_search_recall_against_the_oracle_with_exact_distances(
    built: tuple[DurableIndex, np.ndarray], metric: str, temperature: float
) -> None:
    index, items = built
    queries = _queries()
    result = index.search(queries, 10, metric=metric, temperature=temperature)
    assert not result.exact and result.recall_at_10 is not None and result.recall_at_10 >= 0.95
    truth = brute_force(metric, queries, items, temperature)
    found = [[int(i[1:]) for i in hits.ids] for hits in result.columns()]
    recall = np.mean(
        [len(set(f) & set(np.argsort(row)[:10].tolist())) / 10 for f, row in zip(found, truth, strict=True)]
    )
    assert recall >= 0.85, recall  # measured on other queries than the calibration's stored items
    for rows, hits, row in zip(found, result.columns(), truth, strict=True):
        np.testing.assert_allclose(hits.distances, row[rows], rtol=1e-9, atol=1e-12)  # exact, only membership is not
        assert np.all(np.diff(hits.distances) >= 0)


def test_exact_flag_undeclared_temperatures_and_kl_reverse_are_answered_exactly(
    built: tuple[DurableIndex, np.ndarray],
) -> None:
    index, items = built
    queries = _queries(5)
    for metric, temperature, exact in [("ce", 1.0, True), ("ce", 0.3, False), ("ce", 8.0, False),
                                       ("js", 2.0, False), ("kl_reverse", 1.0, False)]:  # fmt: skip
        result = index.search(queries, 10, metric=metric, temperature=temperature, exact=exact)
        assert result.exact and result.recall_at_10 is None
        truth = brute_force(metric, queries, items, temperature)
        for hits, row in zip(result.columns(), truth, strict=True):
            np.testing.assert_allclose(hits.distances, np.sort(row)[:10], rtol=1e-9, atol=1e-12)


def test_a_target_recall_no_step_reached_is_answered_exactly(built: tuple[DurableIndex, np.ndarray]) -> None:
    index, _ = built
    info = index.approximate_info()
    assert info is not None
    ce = next(r for r in info["recall"] if r["metric"] == "ce" and r["temperature"] == 1.0)
    best = max(step["recall_at_10"] for step in ce["steps"])
    low = index.search(_queries(3), 10, metric="ce", target_recall=0.5)
    assert not low.exact and low.recall_at_10 is not None and low.recall_at_10 >= 0.5
    if best < 1.0:
        assert index.search(_queries(3), 10, metric="ce", target_recall=min(1.0, best + 1e-6)).exact


def test_a_batch_is_exact_where_the_flat_scan_measured_faster(built: tuple[DurableIndex, np.ndarray]) -> None:
    index, _ = built
    state = index._index.approximate
    assert state is not None
    calibration = state.calibrations[("l2", None)]
    measured = calibration.exact_seconds
    try:
        calibration.exact_seconds = 0.0  # the flat scan "measured" faster than any step
        assert index.search(_queries(BATCH_QUERIES), 10).exact
        assert not index.search(_queries(BATCH_QUERIES - 1), 10).exact  # single queries and small batches: not
        calibration.exact_seconds = np.inf
        assert not index.search(_queries(BATCH_QUERIES), 10).exact
    finally:
        calibration.exact_seconds = measured


def test_info_shows_recall_parameters_and_bytes_per_item(built: tuple[DurableIndex, np.ndarray]) -> None:
    index, _ = built
    info = index.approximate_info()
    assert info is not None and info["status"] == "ready" and info["items_built"] == N
    families = {(s["family"], s["temperature"]) for s in info["structures"]}
    assert families == {("l2", None), ("l2_centered", None), ("cosine", None), ("ce", None),
                        ("js", 0.5), ("js", 1.0), ("js", 4.0)}  # fmt: skip
    assert all(s["bytes_per_item"] > 0 for s in info["structures"])
    measured = {(r["metric"], r["temperature"]) for r in info["recall"]}
    assert {("ce", 0.5), ("ce", 1.0), ("ce", 4.0), ("js", 1.0), ("tri", 0.5), ("l2", None)} <= measured
    param = "ef_search" if info["index_type"] == "hnsw" else "nprobe"
    for row in info["recall"]:
        assert row["measured_at"] and row["queries"] == 200 and row["items"] == N
        if row["reaches_target"]:
            assert row["recall_at_10"] >= 0.95 and row[param] >= 1 and row["candidates"] >= 16
    recall = index.recall_at_10()
    assert recall is not None and set(recall) == {"l2", "l2_centered", "cosine", "ce", "js", "tri"}
    memory = info["resident_bytes_per_item"]
    assert memory["originals"] == (0 if info["originals"] == "disk" else 4 * C)
    assert memory["rerank_copy"] == (2 * C if info["rerank_codec"] == "float16" else 0)
    structures = sum(s["bytes_per_item"] for s in info["structures"])
    assert memory["total"] == pytest.approx(memory["originals"] + memory["rerank_copy"] + structures, abs=0.5)


def test_originals_on_disk_are_the_rows_of_a_file(built: tuple[DurableIndex, np.ndarray]) -> None:
    index, items = built
    path = index._index.originals_file
    if index.approximate_info()["originals"] == "memory":  # type: ignore[index]
        assert path is None and not (index.directory / "originals.f32").exists()
        return
    assert path is not None and path.stat().st_size >= items.nbytes
    assert np.array_equal(np.fromfile(path, np.float32, count=items.size).reshape(items.shape), items)


def test_the_ce_grid_encoding_is_minus_t_times_ce_at_grid_temperatures(rng: np.random.Generator) -> None:
    options = AnnOptions("hnsw", temperatures=(0.5, 4.0))
    grid = options.grid()
    items, queries = class_logits(rng, 50, C), class_logits(rng, 4, C).astype(np.float64)
    encoded = encode_items(("ce", None), items, grid).astype(np.float64)
    for t in grid.tolist():
        scores = encode_queries(("ce", None), queries, t, grid).astype(np.float64) @ encoded.T
        # p·z_c − b_T = −T·CE: equal up to float32 rounding of the two operands
        np.testing.assert_allclose(scores, -t * brute_force("ce", queries, items, t), atol=2e-4 * max(1.0, t))


@pytest.mark.parametrize(
    ("temperatures", "expected"), [((1.0,), 1.0), ((0.5, 1.0, 4.0), 1.0), ((1.0, 4.0), 2**0.5), ((2.0,), 2.0)]
)
def test_routing_temperature_is_a_grid_point_a_third_up_the_range(
    temperatures: tuple[float, ...], expected: float
) -> None:
    options = AnnOptions("hnsw", metrics=("ce",), temperatures=temperatures)
    assert routing_temperature(options) == pytest.approx(expected)
    assert routing_temperature(options) in options.grid().tolist()


def _ce_recall(options: AnnOptions, items: np.ndarray, queries: np.ndarray, t: float, ef_search: int) -> float:
    """Recall@10 of the ce structure over `items` (32 candidates re-ranked exactly) against the oracle."""
    structure = build_structure(options, ("ce", None), items)
    assert structure is not None and structure.augmented and structure.index.ntotal == len(items)
    assert structure.index.d == items.shape[1] + len(options.grid()) + 1  # it measures the augmented ce vectors
    found = structure.search(encode_queries(("ce", None), queries, t, options.grid()), 32, ef_search, None)
    values = brute_force("ce", queries, items, t)
    truth = np.argsort(values, axis=1)[:, :10]
    top = np.take_along_axis(found, np.argsort(np.take_along_axis(values, found, axis=1), axis=1)[:, :10], axis=1)
    return float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(top.tolist(), truth.tolist(), strict=True)]))


@pytest.mark.parametrize("temperature", [0.5, 4.0])
def test_the_ce_graph_finds_the_neighbours_of_held_out_queries(temperature: float) -> None:
    options = AnnOptions("hnsw", metrics=("ce",), temperatures=(0.5, 1.0, 4.0))
    items, queries = class_logits(np.random.default_rng(1), N, C), _queries(40).astype(np.float64)
    assert _ce_recall(options, items, queries, temperature, 64) >= 0.9


@pytest.mark.slow
@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0])
def test_the_ce_graph_by_hellinger_links_reaches_low_temperatures_at_small_ef_search(temperature: float) -> None:
    """At N = 50k, C = 100 (logits shaped like real ones), efSearch 16 finds 0.98 at T = 0.5 (a graph linked by
    the augmented vectors themselves: 0.64) and 0.99 or more at T = 1 and 4."""
    from bench.ann import shaped_logits

    options = AnnOptions("hnsw", metrics=("ce",), temperatures=(0.5, 1.0, 4.0))
    items, queries = shaped_logits(50_000, 100, 0.3, seed=1), shaped_logits(100, 100, 0.3, seed=2)
    assert _ce_recall(options, items, queries.astype(np.float64), temperature, 16) >= 0.95


def test_calibration_queries_are_stored_rows_plus_seeded_noise_of_each_class_spread(rng: np.random.Generator) -> None:
    rows = class_logits(rng, 500, C) * np.linspace(0.5, 3.0, C).astype(np.float32)  # classes of unequal spread
    queries = calibration_queries(rows)
    np.testing.assert_array_equal(queries, calibration_queries(rows))  # seeded
    assert queries.dtype == np.float64 and queries.shape == rows.shape
    np.testing.assert_allclose((queries - rows).std(axis=0), CALIBRATION_NOISE * rows.std(axis=0), rtol=0.15)
    np.testing.assert_array_equal(calibration_queries(rows[:1]), rows[:1])  # one row: no spread to measure


def test_ladders_end_at_the_exhaustive_ivf_scan() -> None:
    assert ladder("ivf", 100)[-1][0] == 100
    assert ladder("hnsw", 1) == [
        (16, 16),
        (16, 32),
        (32, 32),
        (64, 32),
        (128, 32),
        (256, 32),
        (512, 32),
        (1024, 64),
        (2048, 128),
    ]


@pytest.mark.parametrize(
    "options",
    [{"metrics": ("kl_reverse",)}, {"metrics": ()}, {"codec": "pq4"}, {"target_recall": 0.0},
     {"temperatures": (0.0,)}, {"m": 2}, {"originals": "ssd"}, {"rerank_codec": "int8"},
     {"rerank_codec": "float16"}],  # float16 beside float32 originals in memory would save nothing
)  # fmt: skip
def test_options_that_make_no_index_are_refused(options: dict[str, object]) -> None:
    with pytest.raises(InvalidInputError):
        AnnOptions("hnsw", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("index_type", ["hnsw", "ivf", "hnsw-disk"])
def test_writes_are_visible_at_once_deletes_never_come_back_and_filters_return_k(
    tmp_path: Path, index_type: str
) -> None:
    rng = np.random.default_rng(3)
    items = class_logits(rng, 2000, C)
    extra: dict[str, str] = ON_DISK if index_type.endswith("-disk") else {}
    index = _open(tmp_path, AnnOptions(index_type.split("-")[0], metrics=("l2", "ce"), temperatures=(1.0,), **extra))
    index.upsert(_ids(2000), items, [{"label": int(i % 4)} for i in range(2000)])
    assert index.wait_for_approximate(timeout=120)
    try:
        fresh = class_logits(rng, 50, C) + 3.0
        index.upsert(_ids(50, "new"), fresh, [{"label": 9}] * 50)  # in the delta until the next build
        index.upsert(["i7"], fresh[:1] * 2.0, [{"label": 9}])  # a replaced item: its new vector counts
        gone = [f"i{i}" for i in range(0, 2000, 5)]
        for item_id in gone:
            index.delete(item_id)
        for metric in ("l2", "ce"):
            result = index.search(fresh[:10], 10, metric=metric)
            assert not result.exact
            assert [hits.ids[0] for hits in result.columns()] == _ids(10, "new")
            assert index.search(fresh[:1] * 2.0, 1, metric=metric).columns()[0].ids == ["i7"]
            everything = index.search(items[:100], 10, metric=metric).columns()
            assert not {i for hits in everything for i in hits.ids} & set(gone)
            filtered = index.search(items[:15], 10, metric=metric, filter={"label": 2})
            assert not filtered.exact
            for hits in filtered.columns():
                assert len(hits.ids) == 10 and all(m["label"] == 2 for m in hits.metadata)
            rare = index.search(items[:5], 10, metric=metric, filter={"label": 9})  # 51 items: under 5 %
            assert rare.exact and all(len(hits.ids) == 10 for hits in rare.columns())
        assert index.wait_for_approximate(timeout=120)  # enough writes: built again, the delta folded in
        info = index.approximate_info()
        assert info is not None and info["items_built"] == index.count() and info["items_in_delta"] == 0
        assert index.search(fresh[:1], 1, metric="ce").columns()[0].ids == ["new0"]
    finally:
        index.close()


KILLED_DURING_BUILD = """
import sys, time
from pathlib import Path
import numpy as np
from indexes.ann import AnnOptions
from indexes.durable import DurableIndex
from tests.helpers import class_logits
index = DurableIndex.open(Path(sys.argv[1]), name="ann", model_name="m", model_sha256="ab" * 32, dim=20,
                          approximate=AnnOptions("hnsw", metrics=("l2", "ce", "js")), settle_s=0.0)
items = class_logits(np.random.default_rng(4), 60000, 20)
for start in range(0, len(items), 10000):
    index.upsert([f"i{i}" for i in range(start, start + 10000)], items[start : start + 10000])
    print("acknowledged", start + 10000, flush=True)
while index.approximate_info()["status"] != "building":
    time.sleep(0.01)
print("building", flush=True)
time.sleep(60)
"""


def test_a_crash_during_a_background_build_loses_nothing(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", KILLED_DURING_BUILD, str(tmp_path)],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    acknowledged = 0
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith(b"acknowledged"):
                acknowledged = int(line.split()[1])
            if line == b"building\n":
                break
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
    assert acknowledged == 60000
    (tmp_path / "originals.build").write_bytes(b"\0" * 4096)  # what a build with originals on disk would leave
    index = _open(tmp_path, AnnOptions("hnsw", metrics=("l2",)))
    try:
        assert not (tmp_path / "originals.build").exists()
        assert index.count() == acknowledged
        items = class_logits(np.random.default_rng(4), 60000, 20)
        assert np.array_equal(index.get("i59999").logits, items[-1])
        assert index.search(items[:3], 1, exact=True).columns()[0].ids == ["i0"]
    finally:
        index.close(compact=False)


def test_a_saved_build_serves_at_once_after_a_restart_and_masks_what_changed(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    items = class_logits(rng, 2000, C)
    options = AnnOptions("hnsw", metrics=("l2", "ce"), temperatures=(1.0,))
    index = _open(tmp_path, options)
    index.upsert(_ids(2000), items)
    assert index.wait_for_approximate(timeout=120)
    before = index.approximate_info()
    assert before is not None and (tmp_path / "approximate" / "build.json").is_file()
    moved = class_logits(rng, 5, C) + 5.0
    index.upsert(_ids(5), moved)  # changed after the save: masked at the next start, and scanned in the delta
    index.delete("i100")
    index.close(compact=False)  # the log replays them

    reopened = DurableIndex.open(
        tmp_path, name="ann", model_name="m", model_sha256="ab" * 32, dim=C, approximate=options, settle_s=60.0
    )  # a long settle: nothing is built again during the test
    try:
        info = reopened.approximate_info()
        assert info is not None and info["status"] == "ready" and info["built_at"] == before["built_at"]
        assert info["items_stale"] == 6 and info["items_in_delta"] == 5 and info["recall"] == before["recall"]
        result = reopened.search(moved, 1, metric="ce")
        assert not result.exact and [hits.ids[0] for hits in result.columns()] == _ids(5)
        assert "i100" not in {i for hits in reopened.search(items[95:105], 10).columns() for i in hits.ids}
        stale = reopened.search(items[:5], 10)  # the old vectors of the moved items are not found any more
        assert not stale.exact and not {i for hits in stale.columns() for i in hits.ids} & set(_ids(5))
    finally:
        reopened.close(compact=False)
    other = DurableIndex.open(
        tmp_path, name="ann", model_name="m", model_sha256="ab" * 32, dim=C,
        approximate=AnnOptions("hnsw", metrics=("l2",)), settle_s=60.0,
    )  # fmt: skip
    try:  # a build saved for other options is not used
        info = other.approximate_info()
        assert info is not None and info["status"] == "waiting" and "structures" not in info
    finally:
        other.close(compact=False)


def test_originals_on_disk_survive_a_restart_and_answer_exact_searches(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    items = class_logits(rng, 1500, C)
    options = AnnOptions("hnsw", metrics=("l2", "ce"), **ON_DISK)
    index = _open(tmp_path, options)
    index.upsert(_ids(1500), items)
    index.delete("i3")  # the last row moves into its place in the file
    assert index.get("i1499").logits.tolist() == items[-1].tolist()
    index.close()
    kept = np.delete(items, 3, axis=0)
    reopened = _open(tmp_path, options)
    try:
        path = reopened._index.originals_file
        assert path is not None  # rewritten from the snapshot, in insertion order
        assert np.array_equal(np.fromfile(path, np.float32, count=kept.size).reshape(kept.shape), kept)
        queries = _queries(4)
        for metric, temperature in [("l2", 1.0), ("ce", 2.0), ("js", 1.0), ("kl_reverse", 0.5), ("cosine", 1.0)]:
            result = reopened.search(queries, 10, metric=metric, temperature=temperature, exact=True)
            truth = brute_force(metric, queries, kept, temperature)
            for hits, row in zip(result.columns(), truth, strict=True):
                np.testing.assert_allclose(hits.distances, np.sort(row)[:10], rtol=1e-9, atol=1e-12)
        assert reopened.wait_for_approximate(timeout=120)
        assert not (tmp_path / "originals.build").exists()  # the build's copy of the rows is gone
        result = reopened.search(queries, 10, metric="ce")
        assert not result.exact
        truth = brute_force("ce", queries, kept, 1.0)
        for hits, row in zip(result.columns(), truth, strict=True):
            rows = [int(i[1:]) - (int(i[1:]) > 3) for i in hits.ids]  # ids past i3 moved up one row in `kept`
            np.testing.assert_allclose(hits.distances, row[rows], rtol=1e-9, atol=1e-12)  # from the float32 rows
    finally:
        reopened.close()


def test_a_step_past_an_early_stopped_ladder_is_timed_as_its_last_step() -> None:
    from indexes.ann import Calibration

    stopped = Calibration(
        "l2", None, [(16, 32, 0.9), (32, 32, 1.0)], 200, 1000, seconds=[0.001, 0.004], exact_seconds=0.003
    )
    assert stopped.beats_exact_in_batches(0) and not stopped.beats_exact_in_batches(1)
    assert not stopped.beats_exact_in_batches(5)  # the ladder stopped at step 1: step 5 is searched as step 1
