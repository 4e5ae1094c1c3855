"""An index in PostgreSQL + pgvector, searched exactly, with the same answers as the embedded FAISS store.

Against a running service that knows a PostgreSQL server with the pgvector extension (the `pg` extra installed):

    LOGITSEARCH_PG_URL=postgresql://user:password@host:5432/db logitsearch serve
    python examples/pgvector_index.py [--url http://127.0.0.1:8000]

It creates two indexes bound to the default index's model, `example-pg` (store pgvector) and `example-faiss`
(store faiss), puts the same random logits in both, checks that both return the same exact top-k under l2 and
ce, and drops them.
"""

import argparse
import logging

import numpy as np

from service.client import Client

logger = logging.getLogger("example.pgvector")

PG_INDEX, FAISS_INDEX = "example-pg", "example-faiss"


def run(client: Client, num_items: int = 300, k: int = 5) -> dict[str, list[list[str]]]:
    """Fill a pgvector and a FAISS index with the same items and compare their answers.

    Args:
        client: a client of a service with `LOGITSEARCH_PG_URL` set.
        num_items: how many random items to store.
        k: neighbours per query.

    Returns:
        The pgvector index's top-k ids per metric, one list per query.

    Raises:
        AssertionError: if the two stores disagree (they never should, ties aside).
    """
    info = client.info()
    rng = np.random.default_rng(0)
    logits = (3 * rng.standard_normal((num_items, info.model.num_classes))).astype(np.float32)
    ids = [f"item-{i}" for i in range(num_items)]
    metadata = [{"label": int(row.argmax())} for row in logits]
    found: dict[str, list[list[str]]] = {}
    try:
        for name, store in ((PG_INDEX, "pgvector"), (FAISS_INDEX, "faiss")):
            description = client.create_index(name, info.model.name, store=store)
            client.upsert(ids, logits, metadata=metadata, index=name)
            logger.info("%s: store %s, %d items", name, description.store, client.get_index(name).count)
        for metric in ("l2", "ce"):
            answers = [client.search(logits[:4], k=k, metric=metric, index=name) for name in (PG_INDEX, FAISS_INDEX)]
            pg_ids, faiss_ids = ([[hit.id for hit in hits] for hits in answer.results] for answer in answers)
            assert pg_ids == faiss_ids, f"{metric}: pgvector {pg_ids} != faiss {faiss_ids}"
            logger.info("%s: both stores return %s for item-0", metric, pg_ids[0])
            found[metric] = pg_ids
        # Filters are jsonb containment inside the candidate query: k results whenever k items match.
        label = int(metadata[0]["label"])
        filtered = client.search(ids=["item-0"], k=k, metric="ce", filter={"label": label}, index=PG_INDEX)
        assert all(hit.metadata["label"] == label for hit in filtered.results[0])
    finally:
        for name in (PG_INDEX, FAISS_INDEX):
            if any(index.name == name for index in client.list_indexes()):
                client.drop_index(name)
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000", help="the service (default %(default)s)")
    parser.add_argument("--api-key", default=None, help="the service's API key, if it has one")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with Client(args.url, api_key=args.api_key) as client:
        run(client)


if __name__ == "__main__":
    main()
