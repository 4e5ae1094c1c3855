"""One search's candidates from SQL, inside its read transaction: the `CandidateSource` of the pgvector store."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import psycopg
from pgvector import Vector
from psycopg import sql

from ..filters import Node, checks_types, conditions, mixed_type_error
from ..rerank import Candidates
from ..store import Metadata
from . import statements
from .schema import Column, Layout

Connection = psycopg.Connection[Any]
#: Rows a scan of every matching item fetches and compares at a time (`SqlCandidates.match_chunks`).
SCAN_CHUNK = 20_000


@dataclass
class SqlCandidates:
    """One search's candidates from SQL, inside its read transaction; ids get integer keys as they are seen."""

    conn: Connection
    layout: Layout
    column: Column
    operator: str
    where: sql.Composable
    params: tuple[Any, ...]
    exact: bool
    temperature: float
    ids: list[str] = field(default_factory=list)
    _keys: dict[str, int] = field(default_factory=dict)
    _metadata: dict[str, Metadata] = field(default_factory=dict)  # of the candidates, fetched with them

    def _key(self, item_id: str) -> int:
        key = self._keys.get(item_id)
        if key is None:
            key = self._keys[item_id] = len(self.ids)
            self.ids.append(item_id)
        return key

    def candidates(self, queries: np.ndarray, m: int) -> Candidates:
        embedding = self.column.embedding
        vectors = (
            queries.astype(np.float32) if embedding is None else embedding.transform_queries(queries, self.temperature)
        )
        statement = statements.nearest(self.layout, self.column, self.operator, self.where)
        with self.conn.pipeline():
            cursors = [
                self.conn.cursor(binary=True).execute(
                    statement, statements.nearest_params(self.layout, Vector(v), self.params, m)
                )
                for v in vectors
            ]
        scores = np.full((len(queries), m), -np.inf)
        keys = np.full((len(queries), m), -1, dtype=np.int64)
        found = np.zeros((len(queries), m, self.layout.dim), dtype=np.float32)
        sign = -1.0 if self.operator == "<#>" else 1.0  # <#> is the negative inner product; larger = closer
        for i, cursor in enumerate(cursors):
            for j, (item_id, score, logits, metadata) in enumerate(cursor.fetchall()):
                scores[i, j], keys[i, j], found[i, j] = sign * score, self._key(item_id), logits.to_numpy()
                self._metadata[item_id] = metadata
        if self.operator == "<->":  # squared distances, as FAISS's, for the certificate (`candidate_lower_bound`)
            scores = np.where(keys >= 0, scores**2, np.inf)
        return Candidates(scores, keys, found)

    def num_matches(self) -> int:
        row = self.conn.execute(statements.count(self.layout, self.where), self.params).fetchone()
        return int(row[0]) if row else 0

    def matches(self) -> tuple[np.ndarray, np.ndarray]:
        rows = (
            self.conn.cursor(binary=True).execute(statements.matches(self.layout, self.where), self.params).fetchall()
        )
        keys = np.array([self._key(item_id) for item_id, _ in rows], dtype=np.int64)
        vectors = np.array([logits.to_numpy() for _, logits in rows], dtype=np.float32).reshape(-1, self.layout.dim)
        return keys, vectors

    def match_chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Every matching item, `SCAN_CHUNK` rows at a time in id order (keys `(n,)` int64, logits `(n, C)`), all
        from the transaction's one snapshot."""
        size = SCAN_CHUNK
        after = ""  # ids are non-empty: every one sorts after it (COLLATE "C")
        statement = statements.matches_after(self.layout, self.where)
        while True:
            rows = self.conn.cursor(binary=True).execute(statement, (*self.params, after, size)).fetchall()
            if not rows:
                return
            keys = np.array([self._key(item_id) for item_id, _ in rows], dtype=np.int64)
            yield keys, np.array([logits.to_numpy() for _, logits in rows], dtype=np.float32)
            if len(rows) < size:
                return
            after = rows[-1][0]

    def metadata_of(self, ids: set[str]) -> dict[str, Metadata]:
        """The metadata of `ids`: from the candidates already fetched, the rest (found by a scan) in one query."""
        missing = sorted(ids - self._metadata.keys())
        if missing:
            statement = statements.metadata_of(self.layout)
            self._metadata.update(self.conn.cursor(binary=True).execute(statement, (missing,)).fetchall())
        return {item_id: self._metadata[item_id] for item_id in ids}


def refuse_mixed_types(conn: Connection, layout: Layout, node: Node | None) -> None:
    """Raise `MixedTypeFilterError` where an equality (or `$in`) would skip items holding its value as the other
    JSON type, as the FAISS store does (`indexes.masks.match_filter`)."""
    for condition in conditions(node):
        if not checks_types(condition):
            continue
        wanted = condition.value if condition.op == "$in" else (condition.value,)
        count, example = 0, None
        for query in statements.other_types(layout, condition.field, wanted):
            row = conn.execute(*query).fetchone()
            if row is not None and row[0]:
                count, example = count + row[0], example if example is not None else row[1]
        if count:
            raise mixed_type_error(condition.field, condition.value, example, count)


def tune_hnsw(conn: Connection, m: int) -> None:
    """Search HNSW graphs wide enough for m candidates, and keep scanning past filtered-out rows.

    On Citus the settings must reach the shards: `citus.propagate_set_commands` makes it send SET LOCAL to
    them (on plain PostgreSQL the name is an inert placeholder).
    """
    conn.execute("SET LOCAL citus.propagate_set_commands = 'local'")
    conn.execute(sql.SQL("SET LOCAL hnsw.ef_search = {}").format(sql.Literal(min(1000, max(40, m)))))
    conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")


def keep_off_graphs(conn: Connection) -> None:
    """Let an exact search's candidate query scan the table, never walk an HNSW graph on its column: a graph returns
    at most `hnsw.ef_search` rows, approximate ones, and a filter applies after (fewer than k, none certified).
    Propagated to Citus shards as in `tune_hnsw`."""
    conn.execute("SET LOCAL citus.propagate_set_commands = 'local'")
    conn.execute("SET LOCAL enable_indexscan = off")
