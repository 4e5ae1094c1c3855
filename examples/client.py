"""A session with the Python client: an index of its own, items, searches, divergences, errors.

Against a running service (`logitsearch serve` in another shell):

    python examples/client.py [--url http://127.0.0.1:8000] [--api-key KEY]

It creates the index `example-client`, bound to the model of the service's default index, and drops it at the
end, so the default index is left as it was.
"""

import argparse
import logging

import numpy as np

from service.client import Client, Conflict, NotFound

logger = logging.getLogger("example.client")

INDEX = "example-client"


def run(client: Client, index: str = INDEX, num_items: int = 200) -> dict[str, object]:
    """Fill an index with random logits, search it several ways, and drop it.

    Args:
        client: a connected client.
        index: name of the index to create (and drop at the end).
        num_items: how many random items to store.

    Returns:
        What the session found, for a caller (or a test) to look at.
    """
    info = client.info()
    model, num_classes = info.model.name, info.model.num_classes
    try:
        client.create_index(index, model)  # an index bound to the default index's model
    except Conflict:
        logger.info("index %r exists already: using it", index)
    try:
        rng = np.random.default_rng(0)
        logits = (3 * rng.standard_normal((num_items, num_classes))).astype(np.float32)
        ids = [f"item-{i}" for i in range(num_items)]
        metadata = [
            {"label": int(row.argmax()), "split": "test" if i % 5 == 0 else "train"} for i, row in enumerate(logits)
        ]
        stored = client.upsert(ids, logits, metadata=metadata, index=index)  # sent as binary columns, in batches
        logger.info("stored %d items, %d in the index", stored.upserted, stored.count)

        # Search with logits: every item finds itself first, at distance 0.
        by_logits = client.search(logits[:3], k=5, metric="l2", index=index)
        logger.info("nearest to item-0 by l2: %s", [hit.id for hit in by_logits.results[0]])

        # Search by stored id under cross-entropy at T = 4, among the training items only.
        by_ce = client.search(ids=["item-0"], k=5, metric="ce", temperature=4, filter={"split": "train"}, index=index)
        for hit in by_ce.results[0]:
            logger.info("  %-9s ce=%.4f %s", hit.id, hit.distance, hit.metadata)

        # Does L2 follow CE for this query? The overlap of the two top-10s and Spearman's rho.
        agreement = client.agreement(id="item-0", k=10, metric="l2", reference="ce", temperature=4, index=index)
        logger.info("l2 vs ce at T=4: overlap %.2f, spearman %s", agreement.overlap, agreement.spearman)

        # Divergences between two outputs.
        values = client.divergence(logits[:1], logits[1:2], temperature=2, measures=["ce", "kl", "js", "tri"]).values
        logger.info("divergences of item-0 and item-1 at T=2: %s", values)

        client.delete_item("item-0", index=index)
        try:
            client.get_item("item-0", index=index)
        except NotFound as exc:  # one exception class per status, with the server's message
            logger.info("after the delete: %s", exc.detail)
        count = client.get_index(index).count
    finally:
        client.drop_index(index)
    return {
        "nearest": [results[0].id for results in by_logits.results],
        "ce_neighbours": [hit.id for hit in by_ce.results[0]],
        "overlap": agreement.overlap,
        "divergences": values,
        "count_after_delete": count,
    }


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
