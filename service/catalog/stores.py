"""The stores an index can live in: the embedded FAISS store (default) or PostgreSQL + pgvector at PG_URL.

The catalog asks this module to create, open and drop an index's store; it only knows the `VectorStore`
protocol. A pgvector index keeps its catalog entry in `DATA_DIR/indexes/<name>/index.json` like any other,
and its items in the database.
"""

from pathlib import Path
from typing import TYPE_CHECKING, Any

from indexes.ann import AnnOptions
from indexes.durable import DurableIndex
from indexes.errors import InvalidInputError, StoreUnavailableError
from indexes.store import VectorStore
from models import ModelSpec

from ..config import Settings
from ..errors import InvalidIndexError

if TYPE_CHECKING:
    from indexes.pg import PgDatabase

STORES = ("faiss", "pgvector")
INDEX_TYPES = {"faiss": ("flat", "hnsw", "ivf"), "pgvector": ("flat", "hnsw")}
DEFAULT_TEMPERATURES = (1.0,)


def check_store_options(
    settings: Settings, store: str, index_type: str, temperatures: list[float] | None, shards: list[str] | None = None
) -> None:
    """Raise `InvalidIndexError` (422) for a store, index type or temperatures this service cannot create."""
    if store not in STORES:
        raise InvalidIndexError(f"store {store!r} is not available; choose one of {', '.join(STORES)}")
    if index_type not in INDEX_TYPES[store]:
        raise InvalidIndexError(
            f"index_type {index_type!r} is not available in store {store!r}; choose one of "
            f"{', '.join(INDEX_TYPES[store])}"
        )
    if store == "pgvector" and settings.pg_url is None:
        raise InvalidIndexError(
            "store 'pgvector' needs a PostgreSQL server: start the service with LOGITSEARCH_PG_URL set "
            "(postgresql://user:password@host:5432/db), or create the index in store 'faiss'"
        )
    if store == "faiss" and index_type == "flat" and temperatures is not None:
        raise InvalidIndexError(
            "temperatures apply to store 'pgvector' and to approximate faiss indexes (index_type hnsw or ivf); a flat "
            "faiss index answers every temperature exactly"
        )
    if shards is not None and (store != "pgvector" or index_type != "flat" or settings.pg_citus):
        raise InvalidIndexError(
            "shards apply to flat pgvector indexes on a plain PostgreSQL coordinator (not Citus, whose own sharding "
            'is LOGITSEARCH_PG_CITUS): use "store": "pgvector" and "index_type": "flat", or drop "shards"'
        )
    if temperatures is not None:
        if not temperatures or any(not t > 0 or t == float("inf") for t in temperatures):
            raise InvalidIndexError(f"temperatures must be finite numbers > 0, at least one; got {temperatures}")
        if len(set(temperatures)) != len(temperatures):
            raise InvalidIndexError(f"temperatures must be distinct; got {temperatures}")


def approximate_options(entry: Any) -> AnnOptions | None:
    """The approximate structures a faiss index's entry asks for, or None for a flat (or pgvector) index.

    Raises:
        InvalidIndexError: options that do not make an index (422 at creation).
    """
    if entry.store != "faiss" or entry.index_type == "flat":
        if entry.originals != "memory" or entry.rerank_codec != "float32":
            raise InvalidIndexError(
                'originals and rerank_codec apply to approximate faiss indexes: use "index_type": "hnsw" or "ivf" '
                "in store faiss, or leave them out"
            )
        return None
    parameters = entry.parameters or {}
    try:
        return AnnOptions(
            entry.index_type,
            metrics=tuple(entry.metrics) if entry.metrics else AnnOptions.metrics,
            temperatures=tuple(entry.temperatures or DEFAULT_TEMPERATURES),
            codec=entry.codec,
            target_recall=entry.target_recall,
            originals=entry.originals,
            rerank_codec=entry.rerank_codec,
            m=parameters.get("m"),
            ef_construction=parameters.get("ef_construction"),
            nlist=parameters.get("nlist"),
        )
    except InvalidInputError as exc:
        raise InvalidIndexError(str(exc)) from exc


def open_database(settings: Settings) -> "PgDatabase | None":
    """The pools to PG_URL (and PG_READ_URLS), started in the background; None when PG_URL is unset."""
    if settings.pg_url is None:
        return None
    try:
        from indexes.pg import PgDatabase, PgOptions
    except ImportError as exc:
        raise StoreUnavailableError(
            f"LOGITSEARCH_PG_URL is set but the PostgreSQL driver is missing ({exc}): pip install 'logit-search[pg]'"
        ) from exc

    options = PgOptions(
        url=settings.pg_url.get_secret_value(),
        read_urls=tuple(url.get_secret_value() for url in settings.pg_read_urls),
        statement_timeout_s=settings.pg_statement_timeout_s,
        connect_timeout_s=settings.pg_connect_timeout_s,
        pool_size=settings.pg_pool_size,
    )
    database = PgDatabase(options)
    database.open()
    return database


def _pg_spec(entry: Any, spec: ModelSpec) -> Any:
    from indexes.pg import PgIndexSpec

    temperatures = tuple(entry.temperatures or DEFAULT_TEMPERATURES)
    return PgIndexSpec(
        entry.name,
        spec.name,
        spec.sha256,
        spec.num_classes,
        temperatures,
        entry.index_type,
        entry.target_recall,
        tuple(entry.shards or ()),
    )


def _need(database: "PgDatabase | None", name: str) -> "PgDatabase":
    if database is None:
        raise StoreUnavailableError(
            f"index {name!r} lives in PostgreSQL (store pgvector) but LOGITSEARCH_PG_URL is not set; set it"
        )
    return database


def create_store(
    path: Path, entry: Any, spec: ModelSpec, settings: Settings, database: "PgDatabase | None"
) -> VectorStore:
    """Create the empty store of a new index (the FAISS files under `path`, or the pgvector table)."""
    if entry.store == "pgvector":
        from indexes.pg import PgVectorStore

        return PgVectorStore.create(_need(database, entry.name), _pg_spec(entry, spec), distributed=settings.pg_citus)
    return open_store(path, entry, spec, database)  # the FAISS store creates its files when they are absent


def open_store(
    path: Path, entry: Any, spec: ModelSpec, database: "PgDatabase | None", gpu_resources: Any = None
) -> VectorStore:
    """Open an index's store; a pgvector one is checked against the database on first use."""
    if entry.store == "pgvector":
        from indexes.pg import PgVectorStore

        return PgVectorStore(_need(database, entry.name), _pg_spec(entry, spec))
    return DurableIndex.open(
        path,
        name=entry.name,
        model_name=spec.name,
        model_sha256=spec.sha256,
        dim=spec.num_classes,
        gpu_resources=gpu_resources,
        approximate=approximate_options(entry),
    )


def check_standbys(shards: list[str] | None, standbys: list[str | None] | None) -> list[str | None] | None:
    """Each shard's standby URL (None where it has none), or None when no shard has one.

    Raises:
        InvalidIndexError: standbys without shards, of another length, or naming a server twice (a shard's own
            primary, another shard, another standby) or not a PostgreSQL URL.
    """
    if not standbys or not any(standbys):
        return None
    if shards is None or len(standbys) != len(shards):
        raise InvalidIndexError('standby_url belongs to a shard of "shards": give one per shard, or none')
    from indexes.pg.shards import check_shards

    try:
        check_shards([*shards, *(url for url in standbys if url)])
    except InvalidInputError as exc:
        raise InvalidIndexError(f"shards and their standby_url: {exc}") from exc
    return list(standbys)


def replace_shard(store: VectorStore, i: int, url: str, promote: bool) -> tuple[str, ...]:
    """Serve shard `i` of a sharded pgvector index from the server at `url`; returns the index's shard URLs."""
    from indexes.pg import PgVectorStore

    if not isinstance(store, PgVectorStore) or not store.shards:
        raise InvalidInputError("only a sharded pgvector index has shards to replace")
    store.replace_shard(i, url, promote)
    return store.shards


def drop_store(store: VectorStore, kind: str) -> None:
    """Close the store (of kind `kind`) of an index being dropped, first deleting what it holds outside the index
    directory (a pgvector table); a database that is down raises `StoreUnavailableError`, the store stays open."""
    if kind == "pgvector":
        from indexes.pg import PgVectorStore

        assert isinstance(store, PgVectorStore)
        store.drop()
    else:
        store.close(compact=False)
