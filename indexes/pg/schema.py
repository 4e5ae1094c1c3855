"""The table of one pgvector index: its columns, how each row's vectors are computed, and its DDL.

One table per index, in the `logitsearch` schema, named by `relation_name` (the index's name, cut to 40 characters,
`#` and 8 hex digits of its hash: no index name, nor any name PostgreSQL derives for a table's own relations —
`<table>_pkey`, `<table>_seq_seq`, the registry `indexes` — can be another index's table; indexes created before
keep the table named like the index, which the registry's NULL `relation` says): `id` (text, byte order), `seq` (the
insertion order: an upsert of a stored id keeps it), the raw `logits`, an optional `thumbnail` (bytea), the argmax class (`predicted`), `metadata` (jsonb, GIN index), and one column per candidate space
of `indexes.metrics.EMBEDDINGS`: the centred and unit logits, and at each declared temperature T the
log-softmax (`ce`, `kl`), `[q, −H(q)]` (`kl_reverse`) and `√q` (`js`, `tri`). They are computed here in
float64 and stored as float32, the same vectors the FAISS store searches, so that both re-rank the same
candidates and share one certificate. An HNSW index adds the `ce_grid` column, the vectors of its one ce/kl graph
over the temperature grid (`grid_embedding`; tables made before it hold a `ce_graph_<j>` column per declared T
instead). A registry table records each index's model, dimension, temperatures and the grid graph's bound.
"""

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
from psycopg import sql

from ..ann import AnnOptions, encode_items, encode_queries
from ..divergences import log_softmax
from ..errors import TemperatureNotStoredError
from ..metrics import EMBEDDINGS, Embedding

SCHEMA = "logitsearch"
REGISTRY = "indexes"
#: Index types: an exact scan, or pgvector HNSW graphs on the logits (L2) and on the ce/kl temperature grid.
INDEX_TYPES = ("flat", "hnsw")
#: Metrics an HNSW index answers approximately; the others stay exact scans.
HNSW_METRICS = ("l2", "ce", "kl")
#: Largest vector pgvector stores (16000 dims) and indexes with HNSW (2000).
MAX_DIM, MAX_HNSW_DIM = 16_000, 2_000


@dataclass(frozen=True)
class Column:
    """A vector column: its name, dimension, and the embedding (None: raw logits) at a temperature."""

    name: str
    dim: int
    embedding: Embedding | None
    temperature: float


#: Log-probabilities below this are clipped in the CE graph vectors (HNSW is approximate; the re-rank is exact).
_GRAPH_FLOOR = 50.0


def _ce_graph_items(z: np.ndarray, temperature: float) -> np.ndarray:
    """`[log q − μ, μ, √(B² − ‖·‖²)]` `(n, C + 2)`: L2 to `[p, 1, 0]` orders items by `−p · log q` (CE).

    Centring keeps the rows' norms close (HNSW on raw log-softmax finds almost nothing: recall@10 0.09 in our
    test, against 0.62 this way), and the last coordinate turns the inner product into an L2 distance
    (the MIPS-to-L2 reduction) with a bound B that holds for every row, so rows added later need no rebuild.
    """
    log_q = np.maximum(log_softmax(z, temperature), -_GRAPH_FLOOR)
    mean = log_q.mean(axis=1, keepdims=True)
    centred = np.hstack([log_q - mean, mean])
    bound_squared = _GRAPH_FLOOR**2 * centred.shape[1]
    lift = np.sqrt(np.maximum(bound_squared - (centred**2).sum(axis=1, keepdims=True), 0.0))
    result: np.ndarray = np.hstack([centred, lift])
    return result


def _ce_graph_queries(x: np.ndarray, temperature: float) -> np.ndarray:
    ones = np.ones((len(x), 1))
    result: np.ndarray = np.hstack([np.exp(log_softmax(x, temperature)), ones, 0.0 * ones])
    return result


#: The vectors of the CE graph of an HNSW index made before the grid (an L2 graph), one column per temperature.
CE_GRAPH = Embedding("ce_graph", "l2", _ce_graph_items, _ce_graph_queries, True)

#: The grid graph's bound B is this many times the largest norm of the first rows written (`grid_bound`).
GRID_HEADROOM = 1.25
#: The HNSW layouts of ce and kl: one graph over the temperature grid, or (indexes made before it) one per T.
GRAPHS = ("grid", "per_t")


def temperature_grid(temperatures: Sequence[float]) -> np.ndarray:
    """`(K,)` the ce/kl grid of the declared temperatures (`indexes.ann.AnnOptions.grid`: √2 steps)."""
    return AnnOptions("hnsw", temperatures=tuple(temperatures)).grid()


def grid_bound(z: np.ndarray, grid: np.ndarray) -> float:
    """The bound B of a grid graph whose first rows are `z` `(n, C)`: `GRID_HEADROOM` × their largest
    `‖[z_c, b_T1..b_TK]‖` (> 0: `b_T ≥ T log C`)."""
    norms = np.linalg.norm(encode_items(("ce", None), z, grid).astype(np.float64), axis=1)
    return GRID_HEADROOM * float(norms.max())


def _grid_items(z: np.ndarray, temperature: float, grid: np.ndarray, bound: float) -> np.ndarray:
    """`[z_c, b_T1..b_TK, √(B² − ‖·‖²)]` `(n, C + K + 1)`: L2 to `[p_T, −w, 0]` orders items by
    `−[p_T, −w]·[z_c, b] = T·CE` (exactly at grid T, interpolated between), the MIPS-to-L2 reduction.

    B is set once, by the index's first write (`grid_bound`), so rows added later need no rebuild. A row beyond
    it is scaled onto it: its score `−s·T·CE` (s < 1) moves towards 0, closer, so the graph offers it as a
    candidate more often, not less, and the exact re-rank gives its true distance.
    """
    if not bound > 0:
        raise ValueError("the grid graph's bound is set by the index's first write (`grid_bound`)")
    encoded = encode_items(("ce", None), z, grid).astype(np.float64)
    norms = np.linalg.norm(encoded, axis=1, keepdims=True)
    encoded *= np.minimum(1.0, bound / np.maximum(norms, 1e-300))
    lift = np.sqrt(np.maximum(bound**2 - (encoded**2).sum(axis=1, keepdims=True), 0.0))
    result: np.ndarray = np.hstack([encoded, lift])
    return result


def _grid_queries(x: np.ndarray, temperature: float, grid: np.ndarray) -> np.ndarray:
    encoded = encode_queries(("ce", None), np.asarray(x, np.float64), temperature, grid)
    result: np.ndarray = np.hstack([encoded, np.zeros((len(x), 1), np.float32)])
    return result


def grid_embedding(grid: np.ndarray, bound: float) -> Embedding:
    """The vectors of the CE graph over the temperature `grid` with bound `bound` (an L2 graph; T matters to the
    queries only, and B to the items only)."""
    items = partial(_grid_items, grid=grid, bound=bound)
    return Embedding("ce_grid", "l2", items, partial(_grid_queries, grid=grid), False)


def _distinct_embeddings() -> list[Embedding]:
    seen: dict[str, Embedding] = {}
    for embedding in EMBEDDINGS.values():
        seen.setdefault(embedding.key, embedding)
    return list(seen.values())


def relation_name(name: str) -> str:
    """The table of a new index named `name`: at most 49 characters, so that `#shard<i>` and PostgreSQL's own
    suffixes fit in an identifier (63 bytes), and holding `#`, which index names cannot hold."""
    return f"{name[:40]}#{hashlib.sha256(name.encode()).hexdigest()[:8]}"


@dataclass(frozen=True)
class Layout:
    """The columns of an index of dimension `dim` holding vectors for `temperatures`, in table `relation` (None: the
    index's own name, as tables were named before `relation_name`)."""

    name: str
    dim: int
    temperatures: tuple[float, ...]
    index_type: str = "flat"
    shards: int = 0  # shard servers of a sharded index (`shards.py`); 0: one server
    relation: str | None = None
    graph: str = "grid"  # the HNSW layout of ce and kl (`GRAPHS`): the table's columns say which
    grid_bound: float | None = None  # the grid graph's B, in the registry once the first write set it

    @property
    def needs_bound(self) -> bool:
        """Whether the next write sets the grid graph's bound (none is known yet)."""
        return self.index_type == "hnsw" and self.graph == "grid" and self.grid_bound is None

    @property
    def grid(self) -> np.ndarray:
        """`(K,)` the temperatures of the ce/kl grid graph."""
        return temperature_grid(self.temperatures)

    @property
    def table_name(self) -> str:
        return self.relation or self.name

    @property
    def table(self) -> sql.Identifier:
        return sql.Identifier(SCHEMA, self.table_name)

    @property
    def stem(self) -> str:
        """The start of the names of the index's other relations (a sharded index's partitions and sequence)."""
        return self.relation or self.name[:40]

    @property
    def columns(self) -> list[Column]:
        """Every vector column, raw logits first (and the CE graph vectors last, for HNSW)."""
        columns = [Column("logits", self.dim, None, 1.0)]
        per_t = self.index_type == "hnsw" and self.graph == "per_t"
        embeddings = _distinct_embeddings() + ([CE_GRAPH] if per_t else [])
        for embedding in embeddings:
            temperatures = self.temperatures if embedding.uses_temperature else (1.0,)
            extra = {"q_negentropy": 1, "ce_graph": 2}.get(embedding.key, 0)
            for j, t in enumerate(temperatures):
                name = f"{embedding.key}_{j}" if embedding.uses_temperature else embedding.key
                columns.append(Column(name, self.dim + extra, embedding, t))
        if self.index_type == "hnsw" and self.graph == "grid":
            grid = self.grid
            bound = math.nan if self.grid_bound is None else self.grid_bound
            columns.append(Column("ce_grid", self.dim + len(grid) + 1, grid_embedding(grid, bound), 1.0))
        return columns

    def serves(self, metric: str, temperature: float) -> bool:
        """Whether an HNSW graph of this index finds candidates for `metric` at `temperature`: l2 always; ce and kl
        at any T from the lowest to the highest declared (one grid graph), or at the declared T (`per_t`)."""
        if self.index_type != "hnsw" or metric not in HNSW_METRICS:
            return False
        if metric == "l2":
            return True
        if self.graph == "per_t":
            return temperature in self.temperatures
        return min(self.temperatures) <= temperature <= max(self.temperatures)

    def scans_all(self, metric: str, temperature: float) -> bool:
        """Whether an exact search compares every matching item: ce and kl, on a grid HNSW index, at a T that no
        column holds (no candidate space certifies there; within the range the graph serves it approximately)."""
        grid = self.index_type == "hnsw" and self.graph == "grid"
        return grid and metric in ("ce", "kl") and temperature not in self.temperatures

    def graph_column_for(self, metric: str, temperature: float) -> Column:
        """The column an HNSW graph searches for `metric` at `temperature` (where `serves`), always with `<->`."""
        if metric == "l2":
            return self.columns[0]
        if self.graph == "grid":
            return self.columns[-1]
        self.column_for(metric, temperature)  # the temperature check
        j = self.temperatures.index(temperature)
        return next(c for c in self.columns if c.name == f"ce_graph_{j}")

    def column_for(self, metric: str, temperature: float) -> tuple[Column, str]:
        """The column a metric's candidates come from at `temperature`, and its pgvector operator.

        Raises:
            TemperatureNotStoredError: a temperature metric at a T the index was not created with.
        """
        if metric == "l2":
            return self.columns[0], "<->"
        embedding = EMBEDDINGS[metric]
        operator = "<#>" if embedding.kind == "ip" else "<->"
        if not embedding.uses_temperature:
            return next(
                c for c in self.columns if c.embedding is not None and c.embedding.key == embedding.key
            ), operator
        if temperature not in self.temperatures:
            stored = ", ".join(repr(t) for t in self.temperatures)
            raise TemperatureNotStoredError(
                f"index {self.name!r} (pgvector) holds {metric} vectors for temperature {stored} only, not "
                f'{temperature!r}; search at one of those, or create an index with "temperatures": [..., '
                f"{temperature!r}]"
            )
        j = self.temperatures.index(temperature)
        return next(
            c
            for c in self.columns
            if c.embedding is not None and c.embedding.key == embedding.key and c.name.endswith(f"_{j}")
        ), operator

    def encode(self, logits: np.ndarray) -> list[np.ndarray]:
        """The stored vectors of items `(n, C)` float32: one `(n, D)` float32 array per column, in order."""
        return [
            logits if c.embedding is None else c.embedding.transform_items(logits, c.temperature) for c in self.columns
        ]

    def hnsw_columns(self) -> list[Column]:
        """The columns that get an HNSW graph (L2): the logits, and the CE grid vectors (or, `per_t`, the CE graph
        vectors at each temperature)."""
        if self.index_type != "hnsw":
            return []
        if self.graph == "grid":
            return [self.columns[0], self.columns[-1]]
        return [self.columns[0], *(self.graph_column_for("ce", t) for t in self.temperatures)]


def create_statements(layout: Layout, distributed: bool = False) -> list[sql.Composed | sql.SQL]:
    """DDL creating the table of `layout` (distributed by `id` on Citus when `distributed`)."""
    statements = _table_statements(layout, "GENERATED ALWAYS AS IDENTITY")
    if distributed:
        statements.append(
            sql.SQL("SELECT create_distributed_table(format('%I.%I', {}, {})::regclass, 'id')").format(
                sql.Literal(SCHEMA), sql.Literal(layout.name)
            )
        )
    for column in layout.hnsw_columns():
        statements.append(
            sql.SQL("CREATE INDEX ON {} USING hnsw ({} vector_l2_ops)").format(
                layout.table, sql.Identifier(column.name)
            )
        )
    return statements


def shard_table_statements(layout: Layout) -> list[sql.Composed | sql.SQL]:
    """DDL of the table a shard server holds for a sharded index: `seq` is given by the coordinator."""
    return _table_statements(layout, "NOT NULL")


def _table_statements(layout: Layout, seq: str) -> list[sql.Composed | sql.SQL]:
    table = layout.table
    vector_columns = [
        sql.SQL("{} vector({}) NOT NULL").format(sql.Identifier(c.name), sql.Literal(c.dim)) for c in layout.columns
    ]
    return [
        sql.SQL(
            'CREATE TABLE {} (id text COLLATE "C" PRIMARY KEY, seq bigint {}, '
            "predicted integer NOT NULL, metadata jsonb NOT NULL, thumbnail bytea, {}) WITH (toast_tuple_target = 8160)"
        ).format(table, sql.SQL(seq), sql.SQL(", ").join(vector_columns)),
        sql.SQL("CREATE INDEX ON {} USING gin (metadata jsonb_path_ops)").format(table),
    ]


def registry_statements() -> list[sql.Composed | sql.SQL]:
    """DDL of the schema and its registry of indexes (idempotent; `relation` and `grid_bound` added to a registry
    made before them, taking its lock only then)."""
    registry = sql.Identifier(SCHEMA, REGISTRY)
    return [
        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(SCHEMA)),
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (name text PRIMARY KEY, model text NOT NULL, model_sha256 text NOT NULL, "
            "dim integer NOT NULL, temperatures float8[] NOT NULL, index_type text NOT NULL, "
            "created_at timestamptz NOT NULL DEFAULT now(), relation text, grid_bound float8)"
        ).format(registry),
        *(
            sql.SQL(
                "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = {}::regclass AND attname = {} "
                "AND NOT attisdropped) THEN ALTER TABLE {} ADD COLUMN {} {}; END IF; END $$"
            ).format(
                sql.Literal(f'{SCHEMA}."{REGISTRY}"'), sql.Literal(name), registry, sql.Identifier(name), sql.SQL(kind)
            )
            for name, kind in (("relation", "text"), ("grid_bound", "float8"))
        ),
    ]


def check_temperatures(temperatures: Sequence[float]) -> tuple[float, ...]:
    """Distinct finite temperatures > 0, in the order given."""
    from ..errors import InvalidInputError

    values = tuple(float(t) for t in temperatures)
    if not values or any(not np.isfinite(t) or t <= 0 for t in values) or len(set(values)) != len(values):
        raise InvalidInputError(
            f"temperatures must be distinct finite numbers > 0 (at least one), got {list(temperatures)}"
        )
    return values
