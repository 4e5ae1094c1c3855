"""What the catalog records of an index: its entry `index.json` (name, model, store, index type, creation time,
options), read and written beside the store's own files, and the status `GET /v1/indexes` shows."""

import dataclasses
import json
import os
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from indexes.snapshot import fsync_directory, read_manifest

from ..config import INDEX_NAME_PATTERN
from ..errors import InvalidIndexError
from .stores import STORES

ENTRY_FILE = "index.json"
INDEX_NAME = re.compile(INDEX_NAME_PATTERN)


def check_index_name(name: str) -> str:
    """`name` if it is a valid index name, else `InvalidIndexError` saying what is allowed."""
    if not INDEX_NAME.fullmatch(name):
        raise InvalidIndexError(
            f"invalid index name {name!r}: use 1-63 lowercase letters, digits, '_' or '-', "
            "starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class IndexEntry:
    """What the catalog records of an index (its `index.json`)."""

    name: str
    model: str
    store: str = "faiss"
    index_type: str = "flat"
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    thumbnails: bool = True  # keep a thumbnail with each item added from an image
    temperatures: list[float] | None = None  # pgvector: those it holds vectors for; faiss hnsw/ivf: those it serves
    metrics: list[str] | None = None  # faiss hnsw/ivf: the metrics served approximately (None: the default ones)
    codec: str = "float32"  # faiss hnsw/ivf: candidate vectors' codec
    originals: str = "memory"  # faiss hnsw/ivf: where the float32 logits live ("disk": memory-mapped)
    rerank_codec: str = "float32"  # faiss hnsw/ivf: the rows approximate searches re-rank
    target_recall: float = 0.95  # faiss hnsw/ivf
    parameters: dict[str, int | None] | None = None  # faiss hnsw/ivf: m, ef_construction, nlist
    shards: list[str] | None = None  # pgvector: the PostgreSQL URLs of a sharded index's shard servers
    shard_standbys: list[str | None] | None = None  # pgvector: each shard's streaming standby (None: it has none)


@dataclass(frozen=True)
class IndexStatus:
    """An index as `GET /v1/indexes` shows it; the store's figures are None while it is unavailable."""

    entry: IndexEntry
    count: int | None = None
    dim: int | None = None
    device: str | None = None
    reason: str | None = None  # why the index is unavailable; None when it is ready
    recall_at_10: dict[str, float] | None = None  # of an approximate index, per metric
    approximate: dict[str, Any] | None = None  # of a faiss hnsw/ivf index: `DurableIndex.approximate_info`


def read_entry(path: Path) -> IndexEntry:
    """The entry of the index directory `path`, inferred from its manifest for pre-catalog indexes."""
    file = path / ENTRY_FILE
    if not file.exists():
        manifest = read_manifest(path)
        if manifest is None:
            raise ValueError(f"{path} holds neither {ENTRY_FILE} nor an index manifest; remove it or restore it")
        return IndexEntry(path.name, manifest.model_name, created_at=manifest.created_at)
    raw = json.loads(file.read_bytes())
    if not isinstance(raw, dict):
        raise ValueError(f"{file} is not a JSON object")
    entry = IndexEntry(**{f.name: raw[f.name] for f in dataclasses.fields(IndexEntry) if f.name in raw})
    if entry.name != path.name or entry.store not in STORES:
        raise ValueError(f"{file} describes index {entry.name!r} in store {entry.store!r}; expected {path.name!r}")
    return entry


def bound_indexes(indexes_dir: Path, model: str) -> list[str]:
    """The names of the indexes under `indexes_dir` whose entry binds them to `model`, sorted."""
    names = []
    for path in sorted(indexes_dir.iterdir()) if indexes_dir.is_dir() else []:
        if not path.is_dir() or not INDEX_NAME.fullmatch(path.name):
            continue
        try:
            entry = read_entry(path)
        except (OSError, ValueError, TypeError):
            continue  # unreadable: listed as unavailable elsewhere, bound to nothing known
        if entry.model == model:
            names.append(entry.name)
    return names


def write_entry(directory: Path, entry: IndexEntry, name: str = ENTRY_FILE) -> None:
    with open(directory / name, "wb") as f:
        f.write(json.dumps(dataclasses.asdict(entry), indent=2).encode() + b"\n")
        f.flush()
        os.fsync(f.fileno())


def rewrite_entry(directory: Path, entry: IndexEntry) -> None:
    """Replace the entry of an existing index atomically: written beside it, renamed over it, the rename synced."""
    write_entry(directory, entry, name=f"{ENTRY_FILE}.tmp")
    os.replace(directory / f"{ENTRY_FILE}.tmp", directory / ENTRY_FILE)
    fsync_directory(directory)
