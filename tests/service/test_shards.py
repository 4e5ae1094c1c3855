"""A sharded pgvector index created, filled, searched and counted over HTTP from the Python client."""

import uuid

import numpy as np
import pytest
from pydantic import SecretStr

from service.client import Client, LogitSearchError
from service.config import Settings
from tests.postgres import PostgresServer
from tests.servers import serving

DIM, N = 6, 80


def test_a_sharded_index_over_http_from_the_client(
    settings: Settings, pg_server: PostgresServer, shard_servers: list[PostgresServer]
) -> None:
    pg = settings.model_copy(update={"pg_url": SecretStr(pg_server.url), "pg_connect_timeout_s": 2.0})
    urls = [server.url for server in shard_servers]
    rng = np.random.default_rng(4)
    vectors = (rng.standard_normal((N, DIM)) * 3).astype(np.float32)
    ids, metadata = [f"it-{i:03d}" for i in range(N)], [{"label": i % 5} for i in range(N)]
    with serving(pg) as url, Client(url) as client:
        name = f"sh-{uuid.uuid4().hex[:8]}"
        created = client.create_index(name, "digits-cnn", store="pgvector", shards=urls)
        assert created.shards == [f"127.0.0.1:{s.port}/postgres" for s in shard_servers]
        logits = np.zeros((N, 10), np.float32)
        logits[:, :DIM] = vectors
        client.upsert(ids, logits=logits, metadata=metadata, index=name)
        found = client.search(logits[:2], k=4, metric="kl", index=name)
        assert [row[0].id for row in found.results] == ids[:2]
        assert client.count(group_by="label", index=name).count == N
        with pytest.raises(LogitSearchError, match="shards apply to flat pgvector"):
            client.create_index(f"{name}-x", "digits-cnn", shards=urls)
        # Replacing a shard's server: refused where it could not serve, then re-made on the same server.
        with pytest.raises(LogitSearchError, match="holds no shard table") as no_table:
            client.replace_shard(name, 0, pg_server.url)  # the coordinator: its table is the partitioned one
        assert no_table.value.status == 409
        with pytest.raises(LogitSearchError, match="same server twice"):
            client.replace_shard(name, 0, urls[1])
        with pytest.raises(LogitSearchError, match="shards 0 to 1, not 2"):
            client.replace_shard(name, 2, urls[0])
        with pytest.raises(LogitSearchError, match="only a sharded pgvector index"):
            client.replace_shard("default", 0, urls[0])
        assert client.replace_shard(name, 0, urls[0]).count == N
        assert client.search(logits[:1], k=1, metric="kl", index=name).results[0][0].id == ids[0]
        client.drop_index(name)


def test_a_shard_with_a_standby_url_fails_over_to_it_over_http_and_loses_no_acknowledged_write(
    settings: Settings, pg_server: PostgresServer, shard_servers: list[PostgresServer]
) -> None:
    """Shard 0 created as {"url": PRIMARY, "standby_url": STANDBY} (a synchronous streaming standby), shard 1 a
    plain URL (the old request shape): 300 acknowledged writes, the primary SIGKILLed, `PUT .../shards/0` with no
    url promotes the recorded standby, and every acknowledged item is found and searchable."""
    from tests.postgres import make_synchronous, start_primary, start_standby

    pg = settings.model_copy(update={"pg_url": SecretStr(pg_server.url), "pg_connect_timeout_s": 2.0})
    primary = start_primary()
    standby = start_standby(primary)
    try:
        make_synchronous(primary)
        other = shard_servers[1].url
        rng = np.random.default_rng(6)
        with serving(pg) as url, Client(url) as client:
            name = f"sr-{uuid.uuid4().hex[:8]}"
            for shards, message in (
                ([{"url": primary.url, "standby_url": other}, other], "same server twice"),
                ([{"url": primary.url, "standby_url": "not a url=="}, other], "not a PostgreSQL URL"),
                ([{"url": primary.url, "standby": standby.url}, other], "standby"),
            ):
                with pytest.raises(LogitSearchError, match=message) as bad:
                    client.create_index(name, "digits-cnn", store="pgvector", shards=shards)  # type: ignore[arg-type]
                assert 400 <= bad.value.status < 500
            created = client.create_index(
                name, "digits-cnn", store="pgvector", shards=[{"url": primary.url, "standby_url": standby.url}, other]
            )
            assert created.shard_standbys == [f"127.0.0.1:{standby.port}/postgres", None]
            with pytest.raises(LogitSearchError, match="shard 1 of index .* has no standby_url") as none:
                client.replace_shard(name, 1)
            assert none.value.status == 422
            acknowledged: dict[str, np.ndarray] = {}
            for batch in range(3):
                ids = [f"b{batch}-{i}" for i in range(100)]
                logits = rng.standard_normal((100, 10)).astype(np.float32) * 3
                client.upsert(ids, logits=logits, metadata=[{"batch": batch}] * 100, index=name)
                acknowledged.update(zip(ids, logits, strict=True))
            primary.stop("kill")
            with pytest.raises(LogitSearchError) as down:
                client.count(index=name)
            assert down.value.status == 503
            replaced = client.replace_shard(name, 0)  # the recorded standby, promoted
            assert replaced.shards == [
                f"127.0.0.1:{standby.port}/postgres",
                f"127.0.0.1:{shard_servers[1].port}/postgres",
            ]
            assert replaced.shard_standbys is None and replaced.count == len(acknowledged)
            for item_id in ("b0-0", "b1-50", "b2-99"):
                query = acknowledged[item_id][None, :]
                assert client.search(query, k=1, metric="kl", index=name).results[0][0].id == item_id
            client.upsert(["after"], logits=rng.standard_normal((1, 10)).astype(np.float32), index=name)
            assert client.count(index=name).count == len(acknowledged) + 1
            client.drop_index(name)
    finally:
        standby.remove()
        primary.remove()
