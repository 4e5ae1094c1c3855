"""The pgvector `VectorStore`: one PostgreSQL table per index, exact search by SQL candidates + float64 re-rank."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
from pgvector import Vector
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg.types.json import Jsonb

from ..ann import AnnOptions, bracket, calibration_points
from ..ann.recall import Calibration, calibration_queries, recall_at_10, recall_by_metric
from ..arguments import check_search
from ..errors import (
    DeadlineExceededError,
    IndexClosedError,
    IndexCorruptedError,
    InvalidInputError,
    ItemNotFoundError,
    ManifestMismatchError,
    StoreConflictError,
    StoreUnavailableError,
)
from ..facets import Facets, collect
from ..filters import parse_filter
from ..lock import ReadWriteLock
from ..pages import Cursor, Order, Page
from ..rerank import exact_top, scan_top
from ..store import Filter, Item, Metadata, QueryHits, SearchResult
from ..validation import (
    check_id,
    check_ids,
    check_metadata,
    check_thumbnails,
    check_vectors,
)
from . import statements
from .candidates import SqlCandidates, keep_off_graphs, refuse_mixed_types, tune_hnsw
from .database import PgDatabase
from .database import describe as describe_url
from .schema import (
    HNSW_METRICS,
    INDEX_TYPES,
    MAX_DIM,
    MAX_HNSW_DIM,
    SCHEMA,
    Layout,
    check_temperatures,
    create_statements,
    grid_bound,
    relation_name,
    temperature_grid,
)
from .shards import (
    check_shards,
    coordinator_statements,
    drop_statements,
    insert_rows,
    owners_statement,
    replace_statements,
    rows_per_insert,
    seqs_statement,
    server_name,
    shard_copy_statement,
    shard_delete_statement,
    shard_statements,
    upsert_statements,
)

logger = logging.getLogger(__name__)

#: Sharded upserts straight to the owning shards (binary COPY) rather than INSERTs through the coordinator.
DIRECT_SHARD_WRITES = True

Connection = psycopg.Connection[Any]
#: An approximate search re-ranks the best 2 × max(100, 3k) HNSW candidates (at most 1000: pgvector's ef_search).
HNSW_MIN_WANTED, HNSW_MAX_WANTED = 100, 500
#: ef_search of an HNSW index's searches before it has measured its recall ladder.
HNSW_DEFAULT_EF = 200


@dataclass(frozen=True)
class PgIndexSpec:
    """What a pgvector index is created with, and checked against when it is opened."""

    name: str
    model_name: str
    model_sha256: str
    dim: int
    temperatures: tuple[float, ...] = (1.0,)
    index_type: str = "flat"
    target_recall: float = 0.95
    shards: tuple[str, ...] = ()  # PostgreSQL URLs of the shard servers of a sharded index (`shards.py`)


#: HNSW search effort (hnsw.ef_search) and candidates re-ranked (R) at each step of the recall ladder.
PG_LADDER = ((40, 32), (80, 32), (160, 64), (320, 128), (640, 256), (1000, 500))
#: Stored items searched as queries when an HNSW index measures its recall (each a round trip to the server).
PG_CALIBRATION_QUERIES = 50


class PgVectorStore:
    """A `VectorStore` on PostgreSQL + pgvector; thread-safe, every operation one transaction.

    Opening touches no server: the index is checked against the registry on first use, so a service whose
    database is down starts, answers 503 with the reason, and serves once the database is back. Create one
    with `PgVectorStore.create`, open one with `PgVectorStore(db, spec)`.
    """

    def __init__(self, db: PgDatabase, spec: PgIndexSpec) -> None:
        self._db = db
        self._spec = spec
        self._layout = Layout(spec.name, spec.dim, spec.temperatures, spec.index_type, len(spec.shards))
        self._lock = ReadWriteLock()  # close waits for the operations under way
        self._closed = False
        self._checked = False
        # (count when measured, the recall ladder of l2 and of ce at each temperature); kl ranks as ce does
        self._calibrations: tuple[int, dict[tuple[str, float | None], Calibration]] | None = None

    @classmethod
    def create(cls, db: PgDatabase, spec: PgIndexSpec, *, distributed: bool = False) -> "PgVectorStore":
        """Create the table of a new, empty index (and record it in the registry) in one transaction."""
        check_temperatures(spec.temperatures)
        if spec.index_type not in INDEX_TYPES:
            raise InvalidInputError(f"index_type {spec.index_type!r}: choose one of {', '.join(INDEX_TYPES)}")
        # the widest columns: the CE grid's C + K + 1 (K grid temperatures), q_negentropy's C + 1
        limit = (
            MAX_HNSW_DIM - len(temperature_grid(spec.temperatures)) - 1 if spec.index_type == "hnsw" else MAX_DIM - 1
        )
        if spec.dim > limit:
            raise InvalidInputError(f"pgvector {spec.index_type} indexes hold at most {limit} classes, not {spec.dim}")
        if spec.shards:
            check_shards(spec.shards)
            if spec.index_type != "flat" or distributed:
                raise InvalidInputError(
                    "a sharded pgvector index is flat (exact search on every shard), and not on Citus: drop "
                    '"index_type" or "shards"'
                )
        store = cls(db, spec)
        store._layout = replace(store._layout, relation=relation_name(spec.name))

        def work(conn: Connection) -> None:
            values = (
                spec.name,
                spec.model_name,
                spec.model_sha256,
                spec.dim,
                list(spec.temperatures),
                spec.index_type,
                store._layout.relation,
            )
            conn.execute(statements.register(), values)
            ddl = (
                coordinator_statements(store._layout, spec.shards)
                if spec.shards
                else create_statements(store._layout, distributed)
            )
            for statement in ddl:
                conn.execute(statement)

        try:
            db.write(work)
        except StoreConflictError as exc:
            raise StoreConflictError(
                f"PostgreSQL holds an index named {spec.name!r} already (another service's, or left by a create that "
                f'did not finish): drop it there (DROP TABLE logitsearch."{store._layout.table_name}"; DELETE FROM '
                f"logitsearch.indexes WHERE name = '{spec.name}'), or choose another name"
            ) from exc
        if spec.shards:
            try:
                store._on_shards(shard_statements(store._layout), "create the index's table")
            except BaseException:
                store.drop()  # the coordinator's partitions and registry row; the shards' tables made so far
                raise
        store._checked = True
        logger.info(
            "created pgvector index %r (dim %d, T %s, %s)", spec.name, spec.dim, spec.temperatures, spec.index_type
        )
        return store

    def drop(self) -> None:
        """Delete the index's table and registry row, then close it."""
        name = self._spec.name

        def work(conn: Connection) -> None:
            row = conn.execute(statements.relation_of(), (name,)).fetchone()
            if row is not None:  # never used since it was opened: its table is the one the registry names
                self._layout = replace(self._layout, relation=row[0])
            for statement in (
                drop_statements(self._layout) if self._spec.shards else [statements.drop_table(self._layout)]
            ):
                conn.execute(statement)
            conn.execute(statements.unregister(), (name,))

        self.close()  # waits for the operations under way: none finds its table gone
        try:
            self._db.write(work)
        except BaseException:
            self._closed = False  # still there: keep serving it
            raise
        if self._spec.shards:  # the coordinator has forgotten them: a shard that is down keeps an orphan table
            drop = [sql.SQL("DROP TABLE IF EXISTS {}").format(self._layout.table)]
            self._on_shards(drop, "drop the index's table", missing_ok=True)
        logger.info("dropped pgvector index %r", name)

    @property
    def shards(self) -> tuple[str, ...]:
        """The URLs of the shard servers of a sharded index, in partition order; () on one server."""
        return self._spec.shards

    def replace_shard(self, i: int, url: str, promote: bool = False) -> None:
        """Serve shard `i` from the server at `url` from now on: its promoted standby, or a copy restored there.

        With `promote`, a server still in recovery (a standby) is promoted first (`pg_promote`); a server that holds
        no table of this index, or is still a standby, is refused and nothing changes. The coordinator's partition
        is then re-made on that server's foreign server, in one transaction; the other shards and indexes are
        untouched. Which writes the new server holds is the replication's business: a synchronous standby holds
        every acknowledged one.

        Raises:
            InvalidInputError: no shard `i`, a URL psycopg cannot read, or one already serving another shard.
            StoreConflictError: the server holds no table of this index.
            StoreUnavailableError: the server cannot be reached, or is still a standby.
        """
        shards = list(self._spec.shards)
        if not 0 <= i < len(shards):
            raise InvalidInputError(f"index {self.name!r} has shards 0 to {len(shards) - 1}, not {i}")
        shards[i] = url
        check_shards(shards)
        timeout = max(1, round(self._db.options.connect_timeout_s))
        try:
            with psycopg.connect(url, connect_timeout=timeout, autocommit=True) as conn:
                standby = conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
                if standby and promote:
                    conn.execute("SELECT pg_promote(true, 60)")
                    standby = conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,)
                if standby:
                    raise StoreUnavailableError(
                        f"shard server {server_name(url)} is a standby (in recovery); promote it first, or pass "
                        '"promote": true'
                    )
                relation = self._layout.table.as_string(conn)
                held = conn.execute("SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", (relation,)).fetchone()
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(f"cannot reach shard server {server_name(url)}: {exc}") from exc
        if held != ("r",):  # none, or the coordinator's own partitioned table
            raise StoreConflictError(
                f"server {server_name(url)} holds no shard table of index {self.name!r}; give the standby or the "
                f"restored copy of shard {i}"
            )
        statements = replace_statements(self._layout, i, len(shards), url)
        with self._lock.write():  # no search or write of this index runs on the old partition meanwhile
            self._check_open()
            self._db.write(lambda conn: [conn.execute(statement) for statement in statements])
            self._spec = replace(self._spec, shards=tuple(shards))
        logger.warning("index %r: shard %d is served by %s from now on", self.name, i, server_name(url))

    def _on_shards(self, ddl: list[Any], what: str, missing_ok: bool = False) -> None:
        """Run `ddl` on every shard server, each in one transaction (connecting directly, not through the pool)."""
        for url in self._spec.shards:
            try:
                with psycopg.connect(url, connect_timeout=max(1, round(self._db.options.connect_timeout_s))) as conn:
                    for statement in ddl:
                        conn.execute(statement)
            except psycopg.errors.DuplicateTable as exc:
                raise StoreConflictError(
                    f"shard {server_name(url)} holds a table named {self.name!r} already: drop it there, or choose "
                    "another name"
                ) from exc
            except psycopg.OperationalError as exc:
                if missing_ok:
                    logger.warning("could not %s on shard %s (%s); drop it there", what, server_name(url), exc)
                    continue
                raise StoreUnavailableError(f"cannot {what} on shard {server_name(url)}: {exc}") from exc

    @property
    def name(self) -> str:
        return self._spec.name

    @property
    def dim(self) -> int:
        return self._spec.dim

    @property
    def device(self) -> str:
        return "cpu"

    @property
    def index_type(self) -> str:
        return self._spec.index_type

    @property
    def temperatures(self) -> tuple[float, ...]:
        return self._spec.temperatures

    def _read(self, work: Any) -> Any:
        with self._lock.read():
            self._check_open()
            return self._db.read(work)

    def _write(self, work: Any) -> Any:
        with self._lock.read():
            self._check_open()
            return self._db.write(work)

    def _checked_layout(self) -> Layout:
        """The table's layout, once the registry and the table were read (which HNSW layout it has: `Layout.graph`)."""
        with self._lock.read():
            self._check_open()
            return self._layout

    def _check_open(self) -> None:
        """Raise if closed; check the registry once (the table exists, for this model, dimension and layout)."""
        if self._closed:
            raise IndexClosedError(f"index {self.name!r} was closed (dropped, or the service is stopping)")
        if self._checked:
            return
        # On the primary, else a replica: a service started while its primary is down serves reads from a replica.
        statement = statements.registry_row()

        def work(conn: Connection) -> tuple[tuple[Any, ...] | None, bool]:
            row = conn.execute(statement, (self.name,)).fetchone()
            if row is None or row[4] != "hnsw":
                return row, False
            table = row[5] or self.name
            per_t = conn.execute(statements.has_column(), (SCHEMA, table, "ce_graph_0")).fetchone()
            return row, per_t == (True,)

        row, per_t = self._db.read(work, primary_first=True)
        if row is None:
            raise IndexCorruptedError(
                f"index {self.name!r} has no table in the PostgreSQL database (dropped there?); "
                f"DELETE /v1/indexes/{self.name} and create it again"
            )
        model, sha256, dim, temperatures, index_type, relation, bound = row
        expected = (self._spec.model_name, self._spec.model_sha256, self.dim, list(self.temperatures), self.index_type)
        if (model, sha256, dim, list(temperatures), index_type) != expected:
            raise ManifestMismatchError(
                f"index {self.name!r} in PostgreSQL holds model {model!r} (sha256 {sha256[:12]}), dim {dim}, "
                f"temperatures {list(temperatures)}, {index_type}; the service expects model "
                f"{self._spec.model_name!r} (sha256 {self._spec.model_sha256[:12]}), dim {self.dim}, "
                f"temperatures {list(self.temperatures)}, {self.index_type}; serve the model it was built with, or "
                f"DELETE /v1/indexes/{self.name} and create it again"
            )
        # A table made before the grid keeps one CE graph per temperature (`ce_graph_<j>` columns), and is served so.
        graph = "per_t" if per_t else "grid"
        self._layout = replace(self._layout, relation=relation, graph=graph, grid_bound=bound)
        self._checked = True

    def count(self) -> int:
        row = self._read(lambda conn: conn.execute(statements.count(self._layout)).fetchone())
        return int(row[0])

    def upsert(
        self,
        ids: Sequence[str],
        vectors: Any,
        metadata: Sequence[Metadata] | None = None,
        thumbnails: Sequence[bytes | None] | None = None,
    ) -> int:
        """Insert or replace items in one transaction: all of them are stored, or none.

        `thumbnails`: one encoded image or None per id (default: none); a replaced item keeps only this one.
        """
        checked_ids = check_ids(ids)
        array = check_vectors(vectors, self.dim)
        if len(array) != len(checked_ids):
            raise InvalidInputError(f"{len(checked_ids)} ids but {len(array)} vectors; send one vector per id")
        metas = [check_metadata(m) for m in (metadata if metadata is not None else [{}] * len(checked_ids))]
        if len(metas) != len(checked_ids):
            raise InvalidInputError(f"{len(checked_ids)} ids but {len(metas)} metadata objects")
        thumbs = check_thumbnails(thumbnails, len(checked_ids))
        layout = self._checked_layout()
        # The first write of a grid HNSW index proposes its graph's bound; the registry keeps the first one proposed.
        proposed = grid_bound(array, layout.grid) if layout.needs_bound and len(array) else None
        if proposed is not None:
            layout = replace(layout, grid_bound=proposed)
        rows = _rows(layout, checked_ids, array, metas, thumbs)

        if self._spec.shards and DIRECT_SHARD_WRITES:
            with self._lock.read():
                self._check_open()
                self._upsert_on_shards(checked_ids, rows)
            return len(rows)

        def work(conn: Connection) -> float | None:
            nonlocal rows
            bound = proposed
            if proposed is not None:
                recorded = conn.execute(statements.set_grid_bound(), (proposed, self.name)).fetchone()
                bound = float(recorded[0]) if recorded else proposed
                if bound != proposed:  # another writer's first write came first
                    rows = _rows(replace(layout, grid_bound=bound), checked_ids, array, metas, thumbs)
            if self._spec.shards:  # no ON CONFLICT on foreign partitions: keep stored seqs, delete, insert
                seqs, delete = upsert_statements(self._layout)
                stored = dict(conn.execute(seqs, (checked_ids,)).fetchall())
                conn.execute(delete, (checked_ids,))
                step = rows_per_insert(self._layout)
                for start in range(0, len(rows), step):
                    chunk = rows[start : start + step]
                    values = [value for row in chunk for value in (stored.get(row[0]), *row)]
                    conn.execute(insert_rows(self._layout, len(chunk)), values)
                return None
            with conn.cursor() as cursor:
                cursor.executemany(statements.upsert(self._layout), rows)
            return bound

        recorded = self._write(work)
        if recorded is not None:  # committed: later writes use it
            self._layout = replace(self._layout, grid_bound=recorded)
        return len(rows)

    def _upsert_on_shards(self, ids: list[str], rows: list[tuple[Any, ...]]) -> None:
        """A sharded upsert written straight to the owning shards: the coordinator says which shard owns each id
        (its hash partitioning) and hands out the new seqs; each shard deletes the ids it holds (returning their
        seqs, which a replaced item keeps) and takes its rows in one binary COPY, in its own transaction. The shards
        commit one after another once all have their rows (as postgres_fdw does: no two-phase commit)."""
        num = len(self._spec.shards)
        owners = [
            row[0]
            for row in self._db.write(lambda conn: conn.execute(owners_statement(self._layout, num), (ids,)).fetchall())
        ]
        timeout = max(1, round(self._db.options.connect_timeout_s))
        limit = f"-c statement_timeout={round(self._db.options.statement_timeout_s * 1000)}"
        conns: list[Connection] = []
        at = 0  # the shard being spoken to, named when it fails
        try:
            try:
                for at in range(num):
                    conn = psycopg.connect(self._spec.shards[at], connect_timeout=timeout, options=limit)
                    conns.append(conn)
                    register_vector(conn)
                stored: dict[str, int] = {}
                for at, conn in enumerate(conns):
                    mine = [item_id for item_id, owner in zip(ids, owners, strict=True) if owner == at]
                    if mine:
                        stored.update(conn.execute(shard_delete_statement(self._layout), (mine,)).fetchall())
                fresh = sum(1 for item_id in ids if item_id not in stored)
                new = iter(
                    [
                        row[0]
                        for row in self._db.write(
                            lambda conn: conn.execute(seqs_statement(self._layout), (fresh,)).fetchall()
                        )
                    ]
                    if fresh
                    else []
                )
                seqs = [stored[item_id] if item_id in stored else next(new) for item_id in ids]
                for at, conn in enumerate(conns):
                    with conn.cursor() as cursor, cursor.copy(shard_copy_statement(self._layout)) as copy:
                        copy.set_types(self._copy_types)
                        for seq, owner, row in zip(seqs, owners, rows, strict=True):
                            if owner == at:
                                copy.write_row((seq, *row))
                for at in range(num):
                    conns[at].commit()
            except psycopg.errors.QueryCanceled as exc:
                raise DeadlineExceededError(f"shard {at} stopped a statement past its time limit ({exc})") from exc
            except psycopg.DataError as exc:  # nothing was committed: the shards' transactions roll back on close
                raise InvalidInputError(f"PostgreSQL refused the data: {exc}") from exc
            except psycopg.IntegrityError as exc:  # a concurrent write stored the same new id first
                raise StoreConflictError(f"PostgreSQL refused a conflicting write on shard {at}: {exc}") from exc
            except psycopg.OperationalError as exc:
                raise StoreUnavailableError(
                    f"a shard server of this index is unreachable: shard {at} ({server_name(self._spec.shards[at])}, "
                    f"{describe_url(self._spec.shards[at])}): {exc}"
                ) from exc
        finally:
            for conn in conns:
                conn.close()

    @property
    def _copy_types(self) -> list[str]:
        return ["int8", "text", "int4", "jsonb", "bytea", *(["vector"] * len(self._layout.columns))]

    def delete(self, item_id: str) -> None:
        check_id(item_id)

        def work(conn: Connection) -> int:
            return conn.execute(statements.delete(self._layout), (item_id,)).rowcount

        if self._write(work) == 0:
            raise ItemNotFoundError(f"no item with id {item_id!r}")

    def delete_where(self, filter: Filter, temperature: float = 1.0) -> int:
        """Remove every item matching `filter` in one statement (one transaction); returns how many."""
        checked = parse_filter(filter)
        where, params = statements.where(checked, temperature)

        def work(conn: Connection) -> int:
            refuse_mixed_types(conn, self._layout, checked)
            return conn.execute(statements.delete_matching(self._layout, where), params).rowcount

        removed: int = self._write(work)
        return removed

    def page(
        self, filter: Filter | None, order: Order, after: Cursor | None, limit: int, temperature: float = 1.0
    ) -> Page:
        """A page of the items matching `filter` in `order` after the cursor `after` (`indexes.pages`), in SQL: keyset
        pagination on (value, seq), the derived values computed by the server."""
        checked = parse_filter(filter)
        where, params = statements.where(checked, temperature)
        cursor: tuple[Any, ...] = ()
        if after is not None:
            cursor = (after.value, after.seq) if order.derived else (after.seq,)
        bound = (*((temperature,) if order.derived else ()), *params, *cursor, limit + 1)

        def work(conn: Connection) -> Page:
            refuse_mixed_types(conn, self._layout, checked)
            statement = statements.next_page(self._layout, where, order, after is not None)
            rows = conn.cursor(binary=True).execute(statement, bound).fetchall()
            matched = conn.execute(statements.count(self._layout, where), params).fetchone()
            shown = rows[:limit]
            last = shown[-1] if shown else None
            following = Cursor(int(last[3]), None if last[4] is None else float(last[4])) if last is not None else None
            items = [_item(row[:3]) for row in shown]
            return Page(items, following if len(rows) > limit else None, int(matched[0]) if matched else 0)

        page: Page = self._read(work)
        return page

    def facets(self, filter: Filter | None, group_by: str | None, temperature: float = 1.0, limit: int = 100) -> Facets:
        """How many items match `filter`, and per value of `group_by` how many hold it (`indexes.facets`), in SQL."""
        checked = parse_filter(filter)
        where, params = statements.where(checked, temperature)

        def work(conn: Connection) -> Facets:
            refuse_mixed_types(conn, self._layout, checked)
            row = conn.execute(statements.count(self._layout, where), params).fetchone()
            matched = int(row[0]) if row else 0
            if group_by is None:
                return Facets(matched)
            by_predicted = group_by == "predicted"
            bound = params if by_predicted else (group_by, group_by, *params)
            pairs = [
                (value, int(n))
                for value, n in conn.execute(statements.groups(self._layout, where, by_predicted), bound)
            ]
            return collect(pairs, matched, 0 if by_predicted else matched - sum(n for _, n in pairs), limit)

        facets: Facets = self._read(work)
        return facets

    def get(self, item_id: str) -> Item:
        check_id(item_id)
        row = self._read(
            lambda conn: conn.cursor(binary=True).execute(statements.get(self._layout), (item_id,)).fetchone()
        )
        if row is None:
            raise ItemNotFoundError(f"no item with id {item_id!r}")
        return _item(row)

    def thumbnail(self, item_id: str) -> bytes | None:
        """The item's thumbnail, or None when it has none; `ItemNotFoundError` if the item is absent."""
        check_id(item_id)
        row = self._read(
            lambda conn: conn.cursor(binary=True).execute(statements.thumbnail(self._layout), (item_id,)).fetchone()
        )
        if row is None:
            raise ItemNotFoundError(f"no item with id {item_id!r}")
        return None if row[0] is None else bytes(row[0])

    def search(
        self,
        queries: Any,
        k: int,
        *,
        metric: str = "l2",
        temperature: float = 1.0,
        filter: Filter | None = None,
        exact: bool = False,
        target_recall: float | None = None,
    ) -> SearchResult:
        """Exact k nearest neighbours of each query row under `metric` (approximate for HNSW's metrics).

        Args:
            queries: `(q, dim)` logits.
            k: neighbours per query (>= 1; fewer come back when fewer items match).
            metric: one of `SEARCH_METRICS`.
            temperature: one of the index's temperatures, for `ce`, `kl`, `kl_reverse`, `js` and `tri`.
            filter: a filter (`indexes.filters`) on metadata (jsonb operators), `predicted` (the argmax class) and
                `confidence`, `margin`, `entropy` at `temperature` (computed in SQL: `statements.derived`).
            exact: on an HNSW index, answer by the exact scan.
            target_recall: on an HNSW index, answer exactly unless the recall@10 last measured for `metric` (see
                `recall_at_10`) reaches it.
        """
        args = check_search(queries, self.dim, k, metric, temperature, filter, target_recall)
        array, k, temperature, target_recall = args.queries, args.k, args.temperature, args.target_recall
        step: tuple[int, int, float | None] | None = None  # (ef_search, R, recall@10 measured)
        if self._checked_layout().serves(metric, temperature) and not exact:
            step = self._step(metric, temperature, self._spec.target_recall if target_recall is None else target_recall)
        result = self._search(array, k, metric, temperature, filter, step)
        result.exact, result.recall_at_10 = step is None, None if step is None else step[2]
        return result

    def _step(self, metric: str, temperature: float, target: float) -> tuple[int, int, float | None] | None:
        """The ladder step reaching `target` (None: none does, answer exactly); the default step, with no recall,
        while the index has not measured one.

        On the grid graph, a T between grid points takes the widest of the steps its bracket needs (the grid points
        either side and their midpoint, `indexes.ann.bracket`) and reports the lowest of their recalls.
        """
        measured = self._calibrations
        if measured is None:
            return HNSW_DEFAULT_EF, HNSW_MIN_WANTED, None
        points: list[float | None] | None = [temperature]
        if metric == "l2":
            points = [None]
        elif self._layout.graph == "grid":
            points = bracket(self._options, "ce", temperature)
        found = [measured[1].get(("l2" if metric == "l2" else "ce", t)) for t in points or []]
        calibrations = [c for c in found if c is not None]
        if not calibrations or len(calibrations) < len(found):
            return None
        steps = [c.first_reaching(target) for c in calibrations]
        if any(step is None for step in steps):
            return None
        chosen = [c.steps[i] for c, i in zip(calibrations, steps, strict=True) if i is not None]
        ef, candidates = max((ef, r) for ef, r, _ in chosen)
        return ef, candidates, min(recall for _, _, recall in chosen)

    @property
    def _options(self) -> AnnOptions:
        """The grid graph's temperatures as `indexes.ann` describes them (for `bracket` and `calibration_points`)."""
        return AnnOptions("hnsw", metrics=HNSW_METRICS, temperatures=self.temperatures)

    def _search(
        self,
        queries: np.ndarray,
        k: int,
        metric: str,
        temperature: float,
        filter: Filter | None,
        step: tuple[int, int, float | None] | None,
    ) -> SearchResult:
        """Candidates from SQL (an HNSW graph searched with the `step`'s ef_search and R, else a scan), re-ranked
        exactly in float64."""
        approximate = step is not None
        scan = not approximate and self._layout.scans_all(metric, temperature)
        if approximate:
            column, operator = self._layout.graph_column_for(metric, temperature), "<->"
        elif scan:  # no column holds vectors at this T: every matching item is compared exactly
            column, operator = self._layout.columns[0], "<->"
        else:
            column, operator = self._layout.column_for(metric, temperature)
        checked = parse_filter(filter)
        where, params = statements.where(checked, temperature)
        # HNSW orders candidates by float32 distances that cannot tell apart close CE values: fetch R of them and
        # let the exact re-rank pick the k best.
        wanted = max(k, min(HNSW_MAX_WANTED, step[1])) if step is not None else k
        graphs = {c.name for c in self._layout.hnsw_columns()}

        def work(conn: Connection) -> SearchResult:
            refuse_mixed_types(conn, self._layout, checked)
            source = SqlCandidates(conn, self._layout, column, operator, where, params, not approximate, temperature)
            if step is not None:
                tune_hnsw(conn, max(step[0], wanted))
            elif column.name in graphs:
                keep_off_graphs(conn)
            found = (
                scan_top(source.match_chunks(), queries, wanted, metric, temperature)
                if scan
                else exact_top(source, queries, wanted, metric, temperature)
            )
            top = [(keys[:k], values[:k]) for keys, values in found]
            ids = [[source.ids[key] for key in keys.tolist()] for keys, _ in top]
            metadata = source.metadata_of({item_id for row in ids for item_id in row})
            hits = [
                QueryHits(row, distances, [metadata[item_id] for item_id in row])
                for row, (_, distances) in zip(ids, top, strict=True)
            ]
            return SearchResult.from_columns(hits)

        result: SearchResult = self._read(work)
        return result

    def recall_at_10(self) -> dict[str, float] | None:
        """For an HNSW index, per metric (l2, ce; kl ranks as ce), the recall@10 measured at the step its searches use
        (the lowest over its temperatures; the best measured where no step reaches the target); None for a flat
        index or one with fewer than 11 items. Measured on demand (`calibrate`)."""
        calibrations = self.calibrate()
        if calibrations is None:
            return None
        return recall_by_metric(calibrations.values(), self._spec.target_recall)

    def calibrate(self) -> dict[tuple[str, float | None], Calibration] | None:
        """The recall ladder of the HNSW searches (`PG_LADDER`) against exact ones, for l2 and for ce at every grid
        T and each interval's midpoint (`indexes.ann.calibration_points`; at each declared T on a `per_t` table), with
        stored items as queries (a sample by hash of the id; each one's own hit left out).

        Cached until the count changes by a tenth. None for a flat index or one with fewer than 11 items.
        """
        if self.index_type != "hnsw":
            return None
        count = self.count()
        cached = self._calibrations
        if cached is not None and abs(cached[0] - count) <= count // 10:
            return cached[1]
        if count < 11:
            return None
        rows = self._read(
            lambda conn: (
                conn.cursor(binary=True).execute(statements.sample(self._layout), (PG_CALIBRATION_QUERIES,)).fetchall()
            )
        )
        own = [item_id for item_id, _ in rows]
        queries = calibration_queries(np.array([logits.to_numpy() for _, logits in rows], dtype=np.float64))
        calibrations: dict[tuple[str, float | None], Calibration] = {}
        points = self.temperatures if self._layout.graph == "per_t" else calibration_points(self._options, "ce")
        for metric, temperature in [("l2", None), *(("ce", t) for t in points)]:
            t = 1.0 if temperature is None else temperature
            exact = [hits.ids for hits in self._search(queries, 11, metric, t, None, None).columns()]
            steps = []
            for ef, candidates in PG_LADDER:
                found = self._search(queries, 11, metric, t, None, (ef, candidates, None)).columns()
                steps.append((ef, candidates, recall_at_10([hits.ids for hits in found], exact, own)))
                if steps[-1][2] >= 1.0:
                    break
            calibrations[(metric, temperature)] = Calibration(metric, temperature, steps, len(rows), count)
        self._calibrations = (count, calibrations)
        return calibrations

    def approximate_info(self) -> dict[str, Any] | None:
        """An HNSW index's recall ladder per (metric, T) as last measured (`calibrate`), with the ef_search and R its
        searches use for the target, its ce/kl `graph` (`"grid"` or `"per_t"`) and the `grid` temperatures; None
        for a flat index."""
        if self.index_type != "hnsw":
            return None
        info: dict[str, Any] = {"index_type": "hnsw", "target_recall": self._spec.target_recall}
        if self._checked:  # the layout is known once the table was read
            info["graph"] = self._layout.graph
            if self._layout.graph == "grid":
                info["grid"] = [round(t, 6) for t in self._layout.grid.tolist()]
                info["grid_bound"] = self._layout.grid_bound
        measured = self._calibrations
        info["status"] = "waiting" if measured is None else "ready"
        calibrations = measured[1].values() if measured else []
        info["recall"] = [c.describe(self._spec.target_recall, "ef_search") for c in calibrations]
        return info

    def save(self, path: Path | None = None) -> None:
        """Nothing to do: every acknowledged write is committed in PostgreSQL."""

    def close(self, compact: bool = True) -> None:
        """Stop serving this index (the database's pools belong to the service); idempotent."""
        with self._lock.write():
            self._closed = True

    # Defined last: inside the class body the name `list` would shadow the builtin in later annotations.
    def list(self, offset: int = 0, limit: int = 100) -> list[Item]:
        """Items in ascending id order (code point order, as the FAISS store lists them)."""
        rows = self._read(
            lambda conn: conn.cursor(binary=True).execute(statements.page(self._layout), (limit, offset)).fetchall()
        )
        return [_item(row) for row in rows]


def _rows(
    layout: Layout, ids: list[str], array: np.ndarray, metas: list[Metadata], thumbs: list[bytes | None]
) -> list[tuple[Any, ...]]:
    """The rows an upsert writes: id, argmax class, metadata, thumbnail, then every vector column of `layout`."""
    columns = layout.encode(array)
    predicted = array.argmax(axis=1)
    return [
        (item_id, int(predicted[i]), Jsonb(metas[i]), thumbs[i], *(Vector(column[i]) for column in columns))
        for i, item_id in enumerate(ids)
    ]


def _item(row: tuple[Any, ...]) -> Item:
    item_id, logits, metadata = row
    return Item(item_id, logits.to_numpy().astype(np.float32), metadata)
