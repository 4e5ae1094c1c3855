"""What only the pgvector store does: declared temperatures, SQL transactions, the registry, a server going away."""

import hashlib
import time
import uuid
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest

from indexes.ann import calibration_queries
from indexes.deadline import deadline_after
from indexes.errors import (
    DeadlineExceededError,
    InvalidInputError,
    ManifestMismatchError,
    StoreUnavailableError,
    TemperatureNotStoredError,
)
from indexes.pg import PgDatabase, PgIndexSpec, PgOptions, PgVectorStore
from indexes.pg.schema import Layout, create_statements
from indexes.pg.store import PG_CALIBRATION_QUERIES
from tests.helpers import brute_force
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
        'CREATE INDEX ON "logitsearch"."my-index" USING hnsw ("ce_graph_0" vector_l2_ops)',
        'CREATE INDEX ON "logitsearch"."my-index" USING hnsw ("ce_graph_1" vector_l2_ops)',
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
        queries = calibration_queries(vectors[sample]).astype(np.float32)
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
