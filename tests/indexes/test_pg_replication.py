"""pgvector with a real streaming replica: reads on the replica, read-your-writes, fallback, promotion (slow)."""

import uuid
from collections.abc import Iterator

import numpy as np
import pytest

from indexes.errors import StoreUnavailableError
from indexes.pg import PgDatabase, PgIndexSpec, PgOptions, PgVectorStore
from tests.postgres import PostgresServer, make_synchronous, promote, start_primary, start_standby

pytestmark = pytest.mark.slow
DIM = 6


@pytest.fixture
def pair() -> Iterator[tuple[PostgresServer, PostgresServer]]:
    primary = start_primary()
    try:
        standby = start_standby(primary)
        try:
            yield primary, standby
        finally:
            standby.remove()
    finally:
        primary.remove()


def _store(database: PgDatabase, name: str | None = None) -> PgVectorStore:
    spec = PgIndexSpec(name or f"r-{uuid.uuid4().hex[:8]}", "m", "ab" * 32, DIM)
    return PgVectorStore(database, spec) if name else PgVectorStore.create(database, spec)


def test_reads_go_to_the_replica_and_see_this_process_writes(
    pair: tuple[PostgresServer, PostgresServer], rng: np.random.Generator
) -> None:
    primary, standby = pair
    database = PgDatabase(PgOptions(primary.url, read_urls=(standby.url,), connect_timeout_s=1.0))
    database.open()
    try:
        store = _store(database)
        for batch in range(20):  # every read right after a write sees it (replica once replayed, else primary)
            ids = [f"b{batch}-{i}" for i in range(50)]
            store.upsert(ids, rng.standard_normal((50, DIM)), [{"batch": batch}] * 50)
            assert store.count() == 50 * (batch + 1)
            assert store.search(rng.standard_normal(DIM), 50, filter={"batch": batch}).neighbors[0][0].id in ids
        primary.stop("kill")  # the replica alone serves reads; writes are refused with the reason
        assert store.count() == 1000
        assert len(store.search(rng.standard_normal(DIM), 5, metric="js").neighbors[0]) == 5
        with pytest.raises(StoreUnavailableError, match="unreachable"):
            store.upsert(["x"], rng.standard_normal((1, DIM)), [{}])
        # A service started while the primary is down checks its indexes on the replica and serves reads.
        restarted = PgDatabase(PgOptions(primary.url, read_urls=(standby.url,), connect_timeout_s=1.0))
        restarted.open()
        try:
            reopened = _store(restarted, store.name)
            assert reopened.count() == 1000 and reopened.get("b3-7").metadata == {"batch": 3}
            assert len(reopened.search(rng.standard_normal(DIM), 5, metric="ce").neighbors[0]) == 5
        finally:
            restarted.close()
        primary.start()
        standby.stop()  # a replica that is down: reads fall back to the primary
        assert store.count() == 1000
        store.upsert(["x"], rng.standard_normal((1, DIM)), [{}])
        assert store.get("x").id == "x"
    finally:
        database.close()


def test_promoted_standby_holds_every_acknowledged_write(
    pair: tuple[PostgresServer, PostgresServer], rng: np.random.Generator
) -> None:
    primary, standby = pair
    make_synchronous(primary)
    database = PgDatabase(PgOptions(primary.url, connect_timeout_s=1.0))
    database.open()
    acknowledged: list[str] = []
    try:
        store = _store(database)
        for batch in range(30):
            ids = [f"b{batch}-{i}" for i in range(20)]
            store.upsert(ids, rng.standard_normal((20, DIM)), [{}] * 20)
            acknowledged += ids
        primary.stop("kill")
    finally:
        database.close()
    promote(standby)
    promoted = PgDatabase(PgOptions(standby.url, connect_timeout_s=1.0))
    promoted.open()
    try:
        after = _store(promoted, store.name)
        assert after.count() == len(acknowledged)
        assert {item.id for item in after.list(0, 10_000)} == set(acknowledged)
        after.upsert(["new"], rng.standard_normal((1, DIM)), [{}])  # and it takes writes
        assert after.count() == len(acknowledged) + 1
    finally:
        promoted.close()
