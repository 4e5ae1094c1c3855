"""The open-file budget: how many indexes one service can hold under its open-file limit (RLIMIT_NOFILE).

Each FAISS index keeps two files open (its write-ahead log and its owner lock) for as long as it is served; the
rest of the process needs some more (client connections, model files, PostgreSQL pools, the interpreter's own).
A service that ran out would fail its next create with EMFILE and could accept no connection, so the catalog
holds at most `index_capacity` indexes and answers 507 past it.
"""

import logging
import resource

logger = logging.getLogger(__name__)

#: Files a served index keeps open.
FILES_PER_INDEX = 2
#: Files left for everything else: connections, models, database pools, the interpreter.
RESERVED_FILES = 256


def index_capacity(wanted: int) -> int:
    """How many indexes fit under the open-file limit, at most `wanted` (`LOGITSEARCH_MAX_INDEXES`), at least one.

    Raises the soft limit towards the hard one first, as far as `wanted` indexes need (most systems start
    processes at a soft limit of 1024 under a far higher hard one); logs when even that is too few.
    """
    needed = RESERVED_FILES + FILES_PER_INDEX * wanted
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        raised = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        if raised > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
                soft = raised
            except (ValueError, OSError) as exc:
                logger.warning("could not raise the open-file limit from %d to %d: %s", soft, raised, exc)
    if soft == resource.RLIM_INFINITY:
        return wanted
    fits = max(1, (soft - RESERVED_FILES) // FILES_PER_INDEX)
    if fits < wanted:
        logger.warning(
            "the open-file limit (%d, hard %d) leaves room for %d indexes, fewer than LOGITSEARCH_MAX_INDEXES=%d: "
            "the service holds %d; raise the limit (ulimit -n, systemd LimitNOFILE=, docker --ulimit nofile=) for more",
            soft, hard, fits, wanted, fits,
        )  # fmt: skip
    return min(wanted, fits)
