"""A pgvector index sharded over two real PostgreSQL servers through postgres_fdw (`indexes/pg/shards.py`): the same
answers as one server, rows on the shards, the plans PostgreSQL runs, and a shard going down and coming back."""

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg
import pytest

from indexes.errors import InvalidInputError, StoreUnavailableError
from indexes.pages import Order
from indexes.pg.schema import relation_name
from tests.helpers import brute_force

if TYPE_CHECKING:
    from indexes.pg import PgDatabase, PgVectorStore
    from tests.postgres import PostgresServer

DIM, N = 6, 80


def _store(db: "PgDatabase", shards: tuple[str, ...] = ()) -> "PgVectorStore":
    from indexes.pg import PgIndexSpec, PgVectorStore

    spec = PgIndexSpec(f"s-{uuid.uuid4().hex[:10]}", "m", "ab" * 32, DIM, (1.0, 4.0), shards=shards)
    return PgVectorStore.create(db, spec)


def _data(seed: int = 0) -> tuple[list[str], np.ndarray, list[dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    vectors = (rng.standard_normal((N, DIM)) * 3).astype(np.float32)
    return [f"it-{i:03d}" for i in range(N)], vectors, [{"label": i % 5, "odd": bool(i % 2)} for i in range(N)]


@pytest.fixture
def pair(pg_database: "PgDatabase", shard_servers: list["PostgresServer"]) -> Iterator[tuple[Any, Any]]:
    """A sharded index and a one-server index holding the same items."""
    sharded, single = _store(pg_database, tuple(s.url for s in shard_servers)), _store(pg_database)
    ids, vectors, metadata = _data()
    for store in (sharded, single):
        store.upsert(ids, vectors, metadata)
    yield sharded, single
    sharded.drop()
    single.drop()


@pytest.mark.parametrize(("metric", "t"), [("l2", 1.0), ("ce", 4.0), ("kl", 1.0), ("js", 4.0), ("cosine", 1.0)])
def test_a_sharded_index_answers_as_one_server_and_the_oracle(pair: tuple[Any, Any], metric: str, t: float) -> None:
    sharded, single = pair
    ids, vectors, metadata = _data()
    queries = np.random.default_rng(1).standard_normal((3, DIM)) * 3
    filter = {"label": {"$ne": 2}}
    got = sharded.search(queries, 7, metric=metric, temperature=t, filter=filter)
    assert got == single.search(queries, 7, metric=metric, temperature=t, filter=filter)
    keep = np.array([m["label"] != 2 for m in metadata])
    expected = np.argsort(brute_force(metric, queries, vectors[keep], t), axis=1, kind="stable")[:, :7]
    kept = [i for i, k in zip(ids, keep, strict=True) if k]
    assert [[n.id for n in row] for row in got.neighbors] == [[kept[j] for j in row] for row in expected]


def test_rows_live_on_the_shards_and_listing_counting_deleting_work_as_on_one_server(
    pair: tuple[Any, Any], shard_servers: list["PostgresServer"]
) -> None:
    sharded, single = pair
    held = []
    for server in shard_servers:
        with psycopg.connect(server.url) as conn:
            row = conn.execute(f'SELECT count(*) FROM logitsearch."{relation_name(sharded.name)}"').fetchone()
            held.append(row[0] if row else 0)
    assert sum(held) == N and min(held) > 0
    ids, vectors, _ = _data()
    for store in (sharded, single):  # a replaced item keeps its place; a new one comes last
        store.upsert([ids[5], "new"], vectors[:2], [{"label": 9}, {"label": 9}])
    for order in (Order(), Order("confidence", True)):
        pages = [store.page({"odd": False}, order, None, 200, 2.0) for store in (sharded, single)]
        assert [i.id for i in pages[0].items] == [i.id for i in pages[1].items] and pages[0].matched == 40
    listed = [item.id for item in sharded.page(None, Order(), None, 200, 1.0).items]
    assert listed[5] == ids[5] and listed[-1] == "new" and len(listed) == N + 1
    assert sharded.facets(None, "label", 1.0, 10) == single.facets(None, "label", 1.0, 10)
    assert sharded.delete_where({"label": 9}) == single.delete_where({"label": 9}) == 2
    assert sharded.count() == single.count() == N - 1


def test_each_shard_gets_its_own_limit_where_the_partitioned_table_gets_none(pair: tuple[Any, Any]) -> None:
    from indexes.pg import statements
    from indexes.pg.shards import partition

    sharded, _ = pair
    layout = sharded._layout
    column, operator = layout.column_for("l2", 1.0)
    query = "[" + ",".join(["0"] * DIM) + "]"

    def plan(statement: Any, params: tuple[Any, ...]) -> str:
        def work(conn: psycopg.Connection[Any]) -> str:
            rows = conn.execute(psycopg.sql.SQL("EXPLAIN (VERBOSE) ") + statement, params).fetchall()
            return "\n".join(row[0] for row in rows)

        text: str = sharded._db.read(work)
        return text

    where = psycopg.sql.SQL("TRUE")
    ours = plan(statements.nearest(layout, column, operator, where), statements.nearest_params(layout, query, (), 5))
    merged = psycopg.sql.SQL("SELECT id, logits <-> %s::vector AS score FROM {} ORDER BY score LIMIT 5").format(
        layout.table
    )
    theirs = plan(merged, (query,))
    remote = [line for line in ours.splitlines() if "Remote SQL" in line]
    assert len(remote) == 2 and all("ORDER BY" in line and "LIMIT 5" in line for line in remote)
    assert "Merge Append" in theirs and all("LIMIT" not in line for line in theirs.splitlines() if "Remote SQL" in line)
    assert partition(layout, 0).as_string(None).endswith('#shard0"')


def test_a_shard_down_is_a_503_naming_it_and_the_index_recovers_by_itself(
    pg_database: "PgDatabase", shard_servers: list["PostgresServer"]
) -> None:
    sharded, single = _store(pg_database, tuple(s.url for s in shard_servers)), _store(pg_database)
    ids, vectors, metadata = _data(2)
    sharded.upsert(ids, vectors, metadata)
    single.upsert(ids, vectors, metadata)
    shard_servers[1].stop()
    try:
        with pytest.raises(
            StoreUnavailableError, match="a shard server of this index is unreachable.*logitsearch_shard_"
        ):
            sharded.search(vectors[:1], 3)
        with pytest.raises(StoreUnavailableError, match=r"unreachable: shard 1 \(logitsearch_shard_"):
            sharded.upsert(["down"], vectors[:1])  # written straight to the shards: the one down is named
        assert single.search(vectors[:1], 3).neighbors[0][0].id == ids[0]  # the other index keeps serving
    finally:
        shard_servers[1].start()
    assert sharded.search(vectors[:1], 3).neighbors[0][0].id == ids[0]
    sharded.drop()
    single.drop()


def test_a_sharded_index_needs_two_distinct_servers_and_is_flat(
    pg_database: "PgDatabase", shard_servers: list["PostgresServer"]
) -> None:
    from indexes.pg import PgIndexSpec, PgVectorStore

    url = shard_servers[0].url
    for shards, message in (((url,), "at least 2 servers"), ((url, url), "the same server twice")):
        with pytest.raises(InvalidInputError, match=message):
            _store(pg_database, shards)
    spec = PgIndexSpec("s-hnsw", "m", "ab" * 32, DIM, (1.0,), "hnsw", shards=(url, shard_servers[1].url))
    with pytest.raises(InvalidInputError, match="sharded pgvector index is flat"):
        PgVectorStore.create(pg_database, spec)


def test_a_dead_shard_fails_over_to_its_synchronous_standby_and_loses_no_acknowledged_write(
    pg_database: "PgDatabase", shard_servers: list["PostgresServer"]
) -> None:
    """Shard 0 on a primary with a synchronous streaming standby: the primary is SIGKILLed after 400 acknowledged
    writes; the index answers 503 until shard 0 is pointed at the standby (promoted by the call), then holds every
    acknowledged item, searches as before, and takes writes again."""
    from tests.postgres import make_synchronous, start_primary, start_standby

    primary = start_primary()
    standby = start_standby(primary)
    try:
        make_synchronous(primary)
        store = _store(pg_database, (primary.url, shard_servers[1].url))
        rng = np.random.default_rng(5)
        acknowledged: dict[str, np.ndarray] = {}
        for batch in range(8):
            ids = [f"b{batch}-{i}" for i in range(50)]
            vectors = rng.standard_normal((50, DIM)).astype(np.float32)
            store.upsert(ids, vectors, [{"batch": batch}] * 50)
            acknowledged.update(zip(ids, vectors, strict=True))
        primary.stop("kill")
        with pytest.raises(StoreUnavailableError, match="shard server"):
            store.count()
        with pytest.raises(StoreUnavailableError, match="is a standby"):
            store.replace_shard(0, standby.url)  # not promoted: refused, nothing changes
        with pytest.raises(InvalidInputError, match="shards 0 to 1"):
            store.replace_shard(2, standby.url, promote=True)
        store.replace_shard(0, standby.url, promote=True)
        assert store.shards == (standby.url, shard_servers[1].url)
        assert store.count() == len(acknowledged)
        for item_id in ("b0-0", "b3-17", "b7-49"):
            np.testing.assert_array_equal(store.get(item_id).logits, acknowledged[item_id])
        query = acknowledged["b5-5"].astype(np.float64)
        assert store.search(query, 1, metric="ce", temperature=4.0).neighbors[0][0].id == "b5-5"
        store.upsert(["after"], rng.standard_normal((1, DIM)), [{}])
        assert store.count() == len(acknowledged) + 1
        store.drop()
    finally:
        standby.remove()
        primary.remove()


def test_writes_through_the_coordinator_still_work_when_direct_writes_are_off(
    pg_database: "PgDatabase", shard_servers: list["PostgresServer"], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`DIRECT_SHARD_WRITES = False`: the multi-row INSERTs through postgres_fdw store the same rows and order."""
    from indexes.pg import store as store_module

    direct, through = (_store(pg_database, tuple(s.url for s in shard_servers)) for _ in range(2))
    ids, vectors, metadata = _data(3)
    for store, on in ((direct, True), (through, False)):
        monkeypatch.setattr(store_module, "DIRECT_SHARD_WRITES", on)
        store.upsert(ids, vectors, metadata)
        store.upsert([ids[7], "new"], vectors[:2], [{"label": 9}, {"label": 9}])
    listed = [[item.id for item in s.page(None, Order(), None, 200, 1.0).items] for s in (direct, through)]
    assert listed[0] == listed[1] and listed[0][7] == ids[7] and listed[0][-1] == "new"
    assert through.search(vectors[:1], 1).neighbors[0][0].id == "it-000"
    direct.drop()
    through.drop()


def test_a_sharded_write_the_shards_refuse_is_a_4xx_and_stores_nothing(pair: tuple[Any, Any]) -> None:
    """PostgreSQL's text cannot hold NUL: the row for one shard fails inside the COPY, after the other shard took its
    rows; neither commits, and the answer is the store's 422, not a driver error."""
    sharded, _ = pair
    rng = np.random.default_rng(9)
    ids = [f"nul-{i}" for i in range(20)]
    metadata: list[dict[str, Any]] = [{} for _ in ids]
    metadata[-1] = {"s": "nul\x00"}
    with pytest.raises(InvalidInputError, match="PostgreSQL refused the data"):
        sharded.upsert(ids, rng.standard_normal((20, DIM)), metadata)
    assert sharded.count() == N and not any(item.id.startswith("nul-") for item in sharded.list(0, 1000))
