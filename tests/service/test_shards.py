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
        client.drop_index(name)
