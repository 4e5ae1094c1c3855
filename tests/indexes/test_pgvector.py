"""What only the pgvector store does: declared temperatures, SQL transactions, the registry, a server going away."""

import hashlib
import time
import uuid
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest
from psycopg import sql

from indexes.ann import calibration_queries, encode_items
from indexes.deadline import deadline_after
from indexes.errors import (
    DeadlineExceededError,
    InvalidInputError,
    ManifestMismatchError,
    StoreUnavailableError,
    TemperatureNotStoredError,
)
from indexes.pg import PgDatabase, PgIndexSpec, PgOptions, PgVectorStore, candidates
from indexes.pg.schema import Layout, create_statements
from indexes.pg.store import PG_CALIBRATION_QUERIES
from indexes.store import SearchResult
from tests.helpers import assert_matches_brute_force, brute_force
from tests.postgres import PostgresServer, start_primary

DIM = 6


def _spec(**overrides: object) -> PgIndexSpec:
    values: dict[str, object] = {
        "name": f"t-{uuid.uuid4().hex[:12]}",
        "model_name": "m",
        "model_sha256": "ab" * 32,
        "dim": DIM,
        "temperatures": (1.0, 2.0),
    }
    values.update(overrides)
    return PgIndexSpec(**values)  # type: ignore[arg-type]


@pytest.fixture
def pg_store(pg_database: PgDatabase) -> Iterator[PgVectorStore]:
    store = PgVectorStore.create(pg_database, _spec())
    yield store
    store.drop()


def test_temperature_not_declared_names_the_stored_ones(pg_store: PgVectorStore, rng: np.random.Generator) -> None:
    pg_store.upsert(["a"], rng.standard_normal((1, DIM)), [{}])
    assert len(pg_store.search(rng.standard_normal(DIM), 1, metric="js", temperature=2.0).neighbors[0]) == 1
    assert len(pg_store.search(rng.standard_normal(DIM), 1, metric="l2", temperature=7.0).neighbors[0]) == 1
    with pytest.raises(TemperatureNotStoredError, match=r"1\.0, 2\.0 only, not 0\.5"):
        pg_store.search(rng.standard_normal(DIM), 1, metric="ce", temperature=0.5)


def test_failed_statement_rolls_back_the_whole_request(pg_store: PgVectorStore, rng: np.random.Generator) -> None:
    pg_store.upsert(["a"], rng.standard_normal((1, DIM)), [{"v": 1}])
    # PostgreSQL's text cannot hold NUL: the third row fails inside the transaction, after two were written.
    with pytest.raises(InvalidInputError, match="PostgreSQL refused"):
        pg_store.upsert(["a", "b", "c"], rng.standard_normal((3, DIM)), [{"v": 2}, {}, {"s": "nul\x00"}])
    assert pg_store.count() == 1 and pg_store.get("a").metadata == {"v": 1}


def test_open_checks_the_registry(pg_database: PgDatabase, pg_store: PgVectorStore) -> None:
    reopened = PgVectorStore(pg_database, _spec(name=pg_store.name))
    assert reopened.count() == 0
    other_model = PgVectorStore(pg_database, _spec(name=pg_store.name, model_sha256="cd" * 32))
    with pytest.raises(ManifestMismatchError, match="sha256 abababababab"):
        other_model.count()


def test_create_refuses_bad_options(pg_database: PgDatabase) -> None:
    with pytest.raises(InvalidInputError, match="temperatures"):
        PgVectorStore.create(pg_database, _spec(temperatures=(1.0, 1.0)))
    with pytest.raises(InvalidInputError, match="index_type"):
        PgVectorStore.create(pg_database, _spec(index_type="ivf"))


def test_citus_ddl_distributes_by_id(pg_server: PostgresServer) -> None:
    layout = Layout("my-index", 10, (1.0, 0.5), "hnsw")
    with psycopg.connect(pg_server.url) as conn:
        text = [statement.as_string(conn) for statement in create_statements(layout, distributed=True)]
    assert text[0].startswith('CREATE TABLE "logitsearch"."my-index" (id text COLLATE "C" PRIMARY KEY')
    assert "SELECT create_distributed_table(format('%I.%I', 'logitsearch', 'my-index')::regclass, 'id')" in text
    hnsw = [t for t in text if "USING hnsw" in t]
    assert hnsw == [
        'CREATE INDEX ON "logitsearch"."my-index" USING hnsw ("logits" vector_l2_ops)',
        'CREATE INDEX ON "logitsearch"."my-index" USING hnsw ("ce_grid" vector_l2_ops)',  # one graph for every T
    ]
    # Distributing comes after the table and its GIN index, before the HNSW graphs are built on the shards.
    assert text.index(next(t for t in text if "create_distributed_table" in t)) == 2


def test_primary_down_is_unavailable_then_recovers(rng: np.random.Generator) -> None:
    server = start_primary()
    database = PgDatabase(PgOptions(server.url, connect_timeout_s=1.0, statement_timeout_s=5.0))
    database.open()
    try:
        store = PgVectorStore.create(database, _spec())
        store.upsert(["a", "b"], rng.standard_normal((2, DIM)), [{}, {}])
        server.stop("kill")
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="PostgreSQL"):
            store.search(rng.standard_normal(DIM), 1)
        with pytest.raises(StoreUnavailableError):
            store.upsert(["c"], rng.standard_normal((1, DIM)), [{}])
        assert time.monotonic() - started < 10
        server.start()
        assert store.count() == 2  # nothing acknowledged was lost, and the pool reconnected by itself
        store.upsert(["c"], rng.standard_normal((1, DIM)), [{}])
        assert store.count() == 3
    finally:
        database.close()
        server.remove()


def _clustered(rng: np.random.Generator, n: int, dim: int = 16) -> np.ndarray:
    centres = rng.standard_normal((12, dim)) * 4
    return (centres[rng.integers(0, 12, n)] + rng.standard_normal((n, dim))).astype(np.float32)


def test_hnsw_reports_the_recall_it_delivers(pg_database: PgDatabase, rng: np.random.Generator) -> None:
    store = PgVectorStore.create(pg_database, _spec(dim=16, temperatures=(1.0,), index_type="hnsw"))
    try:
        vectors = _clustered(rng, 1500)
        ids = [f"h{i}" for i in range(len(vectors))]
        store.upsert(ids, vectors, [{"part": i % 50} for i in range(len(vectors))])
        before = store.search(vectors[:2], 5, metric="ce")
        assert not before.exact and before.recall_at_10 is None  # approximate, and nothing measured yet to say
        recall = store.recall_at_10()
        assert recall is not None and set(recall) == {"l2", "ce"}
        info = store.approximate_info()
        assert info is not None and {(r["metric"], r["temperature"]) for r in info["recall"]} == {
            ("l2", None),
            ("ce", 1.0),
        }
        # The same measurement, independently: the 50 items first in md5 order, perturbed as calibration perturbs
        # them, brute-force neighbours, searched at the step the index chose for its target (0.95).
        sample = sorted(range(len(ids)), key=lambda i: hashlib.md5(ids[i].encode()).hexdigest())[
            :PG_CALIBRATION_QUERIES
        ]
        queries = calibration_queries(vectors[sample])
        for metric, value in recall.items():
            truth = brute_force(metric, queries, vectors)
            result = store.search(queries, 11, metric=metric)
            if result.exact:  # no step of the ladder reached the target: answered exactly, and said so
                assert value < 0.95 and result.recall_at_10 is None
                continue
            hits = [
                len({n.id for n in row} & set([ids[j] for j in np.argsort(truth[r])[:11] if j != i][:10])) / 10
                for r, (i, row) in enumerate(zip(sample, result.neighbors, strict=True))
            ]
            assert value == result.recall_at_10 == pytest.approx(np.mean(hits)) and value >= 0.95, metric
        # Filtered HNSW searches keep scanning the graph (iterative scan): k come back when k match.
        result = store.search(vectors[:3], 25, metric="ce", filter={"part": 7}, exact=False, target_recall=0.5)
        assert [len(row) for row in result.neighbors] == [25, 25, 25]
        truth = brute_force("ce", vectors[:3], vectors)
        for q, row in enumerate(result.neighbors):  # re-ranked exactly: the true values, sorted
            assert all(int(n.id[1:]) % 50 == 7 for n in row)
            np.testing.assert_allclose([n.distance for n in row], [truth[q, int(n.id[1:])] for n in row], rtol=1e-12)
            assert [n.distance for n in row] == sorted(n.distance for n in row)
        assert store.recall_at_10() == recall  # cached while the count stays
    finally:
        store.drop()


def test_statements_stop_at_the_timeout_and_at_the_request_deadline(pg_server: PostgresServer) -> None:
    database = PgDatabase(PgOptions(pg_server.url, statement_timeout_s=0.2, pool_size=1))
    database.open()
    try:
        started = time.monotonic()
        with pytest.raises(DeadlineExceededError, match="time limit"):
            database.read(lambda conn: conn.execute("SELECT pg_sleep(5)").fetchall())
        with deadline_after(0.1), pytest.raises(DeadlineExceededError):
            database.write(lambda conn: conn.execute("SELECT pg_sleep(0.15)").fetchall())  # under 0.2 s, past 0.1 s
        assert time.monotonic() - started < 2
        assert database.read(lambda conn: conn.execute("SELECT 1").fetchone()) == (1,)  # the pool is fine after
    finally:
        database.close()


def test_index_names_postgresql_gives_its_own_relations_are_indexes_like_any(
    pg_database: PgDatabase, rng: np.random.Generator
) -> None:
    """`indexes` (the registry) and the names PostgreSQL derives for an index's key, GIN index and sequence, also
    at the 63-byte limit, where PostgreSQL cuts names: each is an index of its own, beside the one it names."""
    first = PgVectorStore.create(pg_database, _spec(name=f"c{uuid.uuid4().hex[:8]}"))
    long_name = "l" * 50 + uuid.uuid4().hex[:13]  # 63 characters, the longest name the catalog takes
    stores = [first, PgVectorStore.create(pg_database, _spec(name=long_name, index_type="hnsw"))]
    try:
        derived = [f"{first.name}_{suffix}" for suffix in ("pkey", "metadata_idx", "seq_seq", "logits_idx")]
        for name in [*derived, "indexes", long_name[:62] + "x", long_name[:58] + "_pkey"]:
            stores.append(PgVectorStore.create(pg_database, _spec(name=name)))
        for i, store in enumerate(stores):
            store.upsert([f"{i}-a", f"{i}-b"], rng.standard_normal((2, DIM)), [{"i": i}, {"i": i}])
        for i, store in enumerate(stores):
            reopened = PgVectorStore(pg_database, _spec(name=store.name, index_type=store.index_type))
            assert reopened.count() == 2 and reopened.get(f"{i}-b").metadata == {"i": i}
            assert {n.id for n in reopened.search(rng.standard_normal(DIM), 5).neighbors[0]} == {f"{i}-a", f"{i}-b"}
    finally:
        for store in stores:
            store.drop()
    with psycopg.connect(pg_database.options.url) as conn:
        left = conn.execute(
            "SELECT count(*) FROM logitsearch.indexes WHERE name = ANY(%s)", ([s.name for s in stores],)
        )
        assert left.fetchone() == (0,)


def test_an_index_created_before_relation_names_is_served_and_dropped(
    pg_database: PgDatabase, rng: np.random.Generator
) -> None:
    """Tables made before `relation_name` are named like their index (NULL relation in the registry)."""
    spec = _spec()
    with psycopg.connect(pg_database.options.url) as conn:
        for statement in create_statements(Layout(spec.name, DIM, spec.temperatures)):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO logitsearch.indexes (name, model, model_sha256, dim, temperatures, index_type) "
            "VALUES (%s, %s, %s, %s, %s, 'flat')",
            (spec.name, spec.model_name, spec.model_sha256, DIM, list(spec.temperatures)),
        )
    store = PgVectorStore(pg_database, spec)
    store.upsert(["a", "b"], rng.standard_normal((2, DIM)), [{}, {}])
    assert PgVectorStore(pg_database, spec).count() == 2
    PgVectorStore(pg_database, spec).drop()  # never used since opened: finds its table through the registry
    with psycopg.connect(pg_database.options.url) as conn:
        assert conn.execute("SELECT to_regclass(%s)", (f'logitsearch."{spec.name}"',)).fetchone() == (None,)


def _recall(result: SearchResult, truth: np.ndarray, ids: list[str]) -> float:
    """Mean share of each query's true top 10 (by `truth` `(q, n)`) among its first 10 answers."""
    return float(
        np.mean(
            [
                len({n.id for n in row[:10]} & {ids[j] for j in np.argsort(values, kind="stable")[:10]}) / 10
                for row, values in zip(result.neighbors, truth, strict=True)
            ]
        )
    )


def _assert_exact_values(result: SearchResult, truth: np.ndarray, ids: list[str]) -> None:
    position = {item_id: i for i, item_id in enumerate(ids)}
    for row, values in zip(result.neighbors, truth, strict=True):
        distances = [n.distance for n in row]
        np.testing.assert_allclose(distances, [values[position[n.id]] for n in row], rtol=1e-9, atol=1e-12)
        assert distances == sorted(distances)


def test_hnsw_grid_serves_every_temperature_of_the_range(
    pg_database: PgDatabase, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Declared 0.5 and 2: one CE graph (`ce_grid`) serves ce and kl at a grid T never declared (1.0) and between grid
    points (0.84), re-ranked exactly; a T outside the range (4.0) is answered exactly, by comparing every item."""
    store_spec = _spec(dim=16, temperatures=(0.5, 2.0), index_type="hnsw")
    store = PgVectorStore.create(pg_database, store_spec)
    try:
        vectors, queries = np.split(_clustered(rng, 1220), [1200])  # queries held out, from the same clusters
        ids = [f"g{i}" for i in range(len(vectors))]
        store.upsert(ids, vectors)
        for temperature in (1.0, 0.84, 2.0):
            truth = brute_force("ce", queries, vectors, temperature)
            result = store.search(queries, 10, metric="ce", temperature=temperature)
            assert not result.exact and result.recall_at_10 is None  # approximate, nothing measured yet
            assert _recall(result, truth, ids) >= 0.9, temperature
            _assert_exact_values(result, truth, ids)
            kl = store.search(queries, 10, metric="kl", temperature=temperature)
            assert not kl.exact and [[n.id for n in row] for row in kl.neighbors] == [
                [n.id for n in row] for row in result.neighbors
            ]
        monkeypatch.setattr(candidates, "SCAN_CHUNK", 97)  # the scan of every item, in chunks
        for temperature in (4.0, 0.84):  # outside the range; inside it, when asked for exactly
            result = store.search(queries, 10, metric="ce", temperature=temperature, exact=temperature != 4.0)
            assert result.exact and result.recall_at_10 is None
            assert_matches_brute_force(result, brute_force("ce", queries, vectors, temperature), ids, 10, tol=1e-9)
        with pytest.raises(TemperatureNotStoredError):  # the other temperature metrics keep their declared T
            store.search(queries, 10, metric="js", temperature=1.0)
        # Rows written later beyond the bound the first write set are scaled onto it, and still found.
        info = store.approximate_info()
        assert (
            info is not None
            and info["graph"] == "grid"
            and info["grid"] == pytest.approx([0.5, 0.7071, 1, 1.4142, 2], 1e-4)
        )
        bound = info["grid_bound"]
        loud = 6 * queries[:5]
        encoded = encode_items(("ce", None), loud, np.array(info["grid"]))
        assert (np.linalg.norm(encoded.astype(np.float64), axis=1) > bound).all()
        store.upsert([f"loud{i}" for i in range(5)], loud)
        vectors, ids = np.vstack([vectors, loud]), [*ids, *(f"loud{i}" for i in range(5))]
        for temperature in (1.0, 0.84):
            truth = brute_force("ce", loud, vectors, temperature)
            result = store.search(loud, 10, metric="ce", temperature=temperature)
            assert not result.exact and _recall(result, truth, ids) >= 0.9
            _assert_exact_values(result, truth, ids)
        reopened = PgVectorStore(pg_database, store_spec)
        assert reopened.count() == len(ids) and reopened.approximate_info()["grid_bound"] == bound  # type: ignore[index]
    finally:
        store.drop()


def test_an_hnsw_index_made_before_the_grid_keeps_its_graph_per_temperature(
    pg_database: PgDatabase, rng: np.random.Generator
) -> None:
    """A table with `ce_graph_<j>` columns (one CE graph per declared T) is served with them, and writes fill them."""
    spec = _spec(dim=16, index_type="hnsw")
    layout = Layout(spec.name, 16, spec.temperatures, "hnsw", graph="per_t")
    with psycopg.connect(pg_database.options.url) as conn:
        for statement in create_statements(layout):
            conn.execute(statement)
        conn.execute(
            "INSERT INTO logitsearch.indexes (name, model, model_sha256, dim, temperatures, index_type) "
            "VALUES (%s, %s, %s, %s, %s, 'hnsw')",
            (spec.name, spec.model_name, spec.model_sha256, 16, list(spec.temperatures)),
        )
    store = PgVectorStore(pg_database, spec)
    try:
        vectors, queries = np.split(_clustered(rng, 510), [500])
        ids = [f"o{i}" for i in range(len(vectors))]
        store.upsert(ids, vectors)
        truth = brute_force("ce", queries, vectors, 2.0)
        result = store.search(queries, 10, metric="ce", temperature=2.0)
        assert not result.exact and _recall(result, truth, ids) >= 0.9
        _assert_exact_values(result, truth, ids)
        with pytest.raises(TemperatureNotStoredError):  # no grid: a T between the declared ones is not held
            store.search(queries, 10, metric="ce", temperature=1.5)
        calibrations = store.calibrate()
        assert calibrations is not None and set(calibrations) == {("l2", None), ("ce", 1.0), ("ce", 2.0)}
        info = store.approximate_info()
        assert info is not None and info["graph"] == "per_t" and "grid" not in info
        with psycopg.connect(pg_database.options.url) as conn:
            filled = conn.execute(
                sql.SQL("SELECT count(*) FROM {} WHERE ce_graph_1 IS NOT NULL").format(layout.table)
            ).fetchone()
        assert filled == (len(vectors),)
    finally:
        store.drop()


@pytest.mark.slow
def test_hnsw_grid_calibration_covers_grid_points_and_midpoints(
    pg_database: PgDatabase, rng: np.random.Generator
) -> None:
    """Recall is measured at every grid T and each interval's midpoint; a search between grid points reports the
    lowest recall of its bracket, and delivers about that on fresh queries."""
    store = PgVectorStore.create(pg_database, _spec(dim=32, temperatures=(0.5, 2.0), index_type="hnsw"))
    try:
        vectors, queries = np.split(_clustered(rng, 10_050, dim=32), [10_000])  # queries held out, same clusters
        ids = [f"c{i}" for i in range(len(vectors))]
        for start in range(0, len(vectors), 2500):  # the first write sets the grid's bound; later ones keep it
            store.upsert(ids[start : start + 2500], vectors[start : start + 2500])
        calibrations = store.calibrate()
        assert calibrations is not None
        grid = [0.5, 0.5 * 2**0.5, 1.0, 2**0.5, 2.0]
        midpoints = [float(np.sqrt(a * b)) for a, b in zip(grid, grid[1:], strict=False)]
        points = sorted(t for metric, t in calibrations if metric == "ce" and t is not None)
        assert points == pytest.approx(sorted(grid + midpoints))
        info = store.approximate_info()
        assert info is not None and info["graph"] == "grid" and info["grid"] == pytest.approx(grid)
        temperature = 0.84  # between 0.707 and 1, bracketed by them and their midpoint 0.841
        result = store.search(queries, 10, metric="ce", temperature=temperature, target_recall=0.9)
        bracketed = [calibrations[("ce", t)].recall_for(0.9) for t in points[2:5]]  # 0.707, 0.841, 1
        truth = brute_force("ce", queries, vectors, temperature)
        _assert_exact_values(result, truth, ids)
        if result.exact:  # a point of the bracket reached 0.9 at no step: answered exactly, and said so
            assert min(bracketed) < 0.9 and result.recall_at_10 is None
        else:  # the lowest recall of the bracket, and about what fresh queries get (graphs are random)
            assert result.recall_at_10 == min(bracketed) >= 0.9
            assert _recall(result, truth, ids) >= result.recall_at_10 - 0.1
    finally:
        store.drop()


def test_exact_l2_on_an_hnsw_index_scans_rather_than_walks_the_graph(
    pg_database: PgDatabase, rng: np.random.Generator
) -> None:
    """The logits column has an HNSW graph; an exact search must not let the planner walk it (ef_search rows at
    most, filtered afterwards): a filtered exact search returns the true k."""
    store = PgVectorStore.create(pg_database, _spec(dim=16, temperatures=(1.0,), index_type="hnsw"))
    try:
        vectors = _clustered(rng, 700)
        ids = [f"e{i}" for i in range(len(vectors))]
        store.upsert(ids, vectors, [{"part": i % 50} for i in range(len(vectors))])  # 14 match the filter
        queries = vectors[:3].astype(np.float64) + 0.1
        result = store.search(queries, 10, metric="l2", filter={"part": 7}, exact=True)
        assert result.exact
        kept = [i for i in range(len(ids)) if i % 50 == 7]
        assert_matches_brute_force(result, brute_force("l2", queries, vectors[kept]), [ids[i] for i in kept], 10)
    finally:
        store.drop()
