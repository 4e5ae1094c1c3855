"""Index snapshots on disk: vectors, items and a manifest, each written atomically and checksummed.

Layout of an index directory::

    manifest.json          IndexManifest; names the snapshot files below and their sha256
    vectors-<seq>.npy      (n, dim) float32, no pickle
    items-<seq>.json       {"ids": [...], "metadata": [...], "seqs": [...], "next_seq": n} in row order
    thumbnails-<seq>.bin   the items' thumbnails, when any has one (see `thumbnails.write_file`)
    wal.log                writes after the snapshot (see wal.py)

Rows are written in the items' insertion order, so an index lists its items in the same order after a
restart (`FaissIndex.list`), with each item's seq (`indexes.pages`: listing cursors stay valid across a restart).
Snapshots written before seqs existed load with seqs 0 to n - 1.

A snapshot is complete once `manifest.json` is renamed into place; files it does not name are leftovers.
"""

import dataclasses
import hashlib
import json
import logging
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch  # noqa: F401 - before faiss: both bundle OpenMP, and this order is the tested one

# isort: split
import faiss
import numpy as np

from . import thumbnails as thumbnails_file
from .errors import IndexCorruptedError, ManifestMismatchError
from .store import Metadata

#: 2: the manifest carries a checksum of itself, and wal.log is framed (wal.py). Version 1 still loads.
logger = logging.getLogger(__name__)

FORMAT_VERSION = 2
MANIFEST = "manifest.json"
#: Rows gathered at once when a snapshot is written in an order other than the rows' own.
_SAVE_BLOCK_BYTES = 1 << 24


@dataclass(frozen=True)
class IndexManifest:
    """What an index was built from and which files hold it."""

    name: str
    model_name: str
    model_sha256: str
    dim: int
    count: int = 0
    metric: str = "l2"
    wal_seq: int = 0
    files: dict[str, str] = field(default_factory=dict)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    updated_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat())
    versions: dict[str, str] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    checksum: str = ""  # sha256 of the other fields (canonical JSON); see `_checksum`

    def check_model(self, model_name: str, model_sha256: str, dim: int) -> None:
        """Fail unless the index was built with this model (name, weights and dimension)."""
        if (self.model_name, self.model_sha256, self.dim) != (model_name, model_sha256, dim):
            raise ManifestMismatchError(
                f"index {self.name!r} was built with model {self.model_name!r} (sha256 {self.model_sha256[:12]}, "
                f"dim {self.dim}) but the service loads {model_name!r} (sha256 {model_sha256[:12]}, dim {dim}); "
                f"rebuild it with `logitsearch index --index {self.name} --rebuild` or serve the matching model"
            )


def _versions() -> dict[str, str]:
    try:
        package = version("logit-search")
    except PackageNotFoundError:  # running from a source tree that was not installed
        package = "unknown"
    return {
        "logit_search": package,
        "faiss": faiss.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checksum(manifest: IndexManifest) -> str:
    fields = dataclasses.asdict(manifest)
    del fields["checksum"]
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _write_atomic(path: Path, write: Any) -> None:
    """Write a temporary file, fsync it and rename it over `path`; a failure leaves no temporary file."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def remove_leftovers(directory: Path, manifest: IndexManifest | None) -> None:
    """Delete what an interrupted snapshot left: `*.tmp` files, snapshot files the manifest does not name.

    Only the directory's owner may call this.
    """
    named = manifest.files if manifest is not None else {}
    snapshot_files = [
        *directory.glob("vectors-*.npy"),
        *directory.glob("items-*.json"),
        *directory.glob("thumbnails-*.bin"),
    ]
    for path in [*directory.glob("*.tmp"), *snapshot_files]:
        if path.name not in named:
            logger.info("removing %s, left by an interrupted snapshot", path)
            path.unlink(missing_ok=True)


def fsync_directory(path: Path) -> None:
    """fsync a directory, so that the renames and creations in it are durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _save_rows(f: Any, vectors: np.ndarray, rows: np.ndarray | None) -> None:
    """Write `vectors[rows]` (all of `vectors` when rows is None) as a `.npy` file, a block of rows at a time."""
    if rows is None:
        np.save(f, vectors, allow_pickle=False)
        return
    header = {
        "descr": np.lib.format.dtype_to_descr(vectors.dtype),
        "fortran_order": False,
        "shape": (len(rows), vectors.shape[1]),
    }
    np.lib.format.write_array_header_1_0(f, header)
    block = max(1, _SAVE_BLOCK_BYTES // max(1, vectors.shape[1] * vectors.itemsize))
    for start in range(0, len(rows), block):
        f.write(np.ascontiguousarray(vectors[rows[start : start + block]]).tobytes())


def write_snapshot(
    directory: Path,
    manifest: IndexManifest,
    ids: list[str],
    vectors: np.ndarray,
    metadata: list[Metadata],
    rows: np.ndarray | None = None,
    thumbnails: Mapping[str, bytes] | None = None,
    seqs: np.ndarray | None = None,
    next_seq: int | None = None,
) -> IndexManifest:
    """Write a full snapshot and switch `manifest.json` to it; returns the manifest written.

    Args:
        directory: the index directory (created if missing).
        manifest: the current manifest; `wal_seq` must be the last log record the snapshot includes.
        ids, metadata: the items in the order they are written.
        vectors: `(m, dim)` float32; item i is `vectors[rows[i]]`, or `vectors[i]` when `rows` is None.
        rows: `(n,)` int64 positions into `vectors`, gathered block by block (no copy of the whole array).
        thumbnails: encoded thumbnails by id, for the items that have one.
        seqs: `(n,)` int64 seq of each item in the order written (default 0 to n - 1); next_seq: the next to give.
    """
    directory.mkdir(parents=True, exist_ok=True)
    seq = f"{manifest.wal_seq:012d}"
    vectors_name, items_name, thumbnails_name = f"vectors-{seq}.npy", f"items-{seq}.json", f"thumbnails-{seq}.bin"
    _write_atomic(directory / vectors_name, lambda f: _save_rows(f, vectors, rows))
    seq_list = list(range(len(ids))) if seqs is None else [int(value) for value in seqs]
    listed = {
        "ids": ids,
        "metadata": metadata,
        "seqs": seq_list,
        "next_seq": len(ids) if next_seq is None else next_seq,
    }
    items = json.dumps(listed, separators=(",", ":"), allow_nan=False).encode()
    _write_atomic(directory / items_name, lambda f: f.write(items))
    names = [vectors_name, items_name]
    if thumbnails:
        _write_atomic(directory / thumbnails_name, lambda f: thumbnails_file.write_file(f, thumbnails))
        names.append(thumbnails_name)
    manifest = dataclasses.replace(
        manifest,
        count=len(ids),
        files={name: _sha256(directory / name) for name in names},
        updated_at=datetime.now(UTC).isoformat(),
        versions=_versions(),
        format_version=FORMAT_VERSION,
    )
    manifest = dataclasses.replace(manifest, checksum=_checksum(manifest))
    body = json.dumps(dataclasses.asdict(manifest), indent=2).encode()
    _write_atomic(directory / MANIFEST, lambda f: f.write(body))
    fsync_directory(directory)
    for stale in directory.glob("*-*.*"):
        if stale.name not in manifest.files and stale.suffix in {".npy", ".json", ".bin", ".tmp"}:
            stale.unlink()
    return manifest


def read_manifest(directory: Path) -> IndexManifest | None:
    """The manifest of the index at `directory`, or None if there is no index there."""
    path = directory / MANIFEST
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_bytes())
        manifest = IndexManifest(**raw)
    except (ValueError, TypeError) as exc:
        raise IndexCorruptedError(f"{path} is not a valid index manifest ({exc})") from exc
    if manifest.format_version not in (1, FORMAT_VERSION):
        raise IndexCorruptedError(
            f"{path}: format version {manifest.format_version}; this release reads 1 and {FORMAT_VERSION}"
        )
    if manifest.format_version >= 2 and manifest.checksum != _checksum(manifest):
        raise IndexCorruptedError(
            f"{path} fails its checksum: it was changed or damaged after it was written. Restore the index "
            "directory from a backup, or rebuild the index"
        )
    return manifest


def read_snapshot(
    directory: Path, manifest: IndexManifest, mmap: bool = False
) -> tuple[list[str], np.ndarray, list[Metadata], np.ndarray | None, int | None]:
    """Load and verify the snapshot files named by `manifest`: `(ids, vectors (n, dim) float32, metadata, seqs (n,)
    int64, next_seq)`, the last two None in a snapshot written before seqs existed; with `mmap`, the vectors are a
    read-only mapping of the file rather than a copy in memory."""
    for name, expected in manifest.files.items():
        path = directory / name
        if not path.exists() or _sha256(path) != expected:
            raise IndexCorruptedError(
                f"{path} is missing or fails its sha256 check; restore the index directory from a backup "
                f"or rebuild it with `logitsearch index --index {manifest.name} --rebuild`"
            )
    try:
        vectors_name = next(n for n in manifest.files if n.startswith("vectors-"))
        items_name = next(n for n in manifest.files if n.startswith("items-"))
        vectors = np.load(directory / vectors_name, allow_pickle=False, mmap_mode="r" if mmap else None)
        items = json.loads((directory / items_name).read_bytes())
        ids, metadata = items["ids"], items["metadata"]
        seqs = np.array(items["seqs"], dtype=np.int64) if "seqs" in items else None
        next_seq = int(items["next_seq"]) if "next_seq" in items else None
    except (StopIteration, ValueError, KeyError, OSError) as exc:
        raise IndexCorruptedError(f"{directory}: snapshot files are unreadable ({exc})") from exc
    if vectors.dtype != np.float32 or vectors.shape != (manifest.count, manifest.dim) or len(ids) != manifest.count:
        raise IndexCorruptedError(
            f"{directory}: snapshot holds {vectors.shape} {vectors.dtype} vectors and "
            f"{len(ids)} ids; the manifest says {manifest.count} x {manifest.dim}"
        )
    if seqs is not None and len(seqs) != len(ids):
        raise IndexCorruptedError(f"{directory}: snapshot holds {len(seqs)} seqs for {len(ids)} ids")
    return ids, vectors, metadata, seqs, next_seq


def read_thumbnails(directory: Path, manifest: IndexManifest) -> dict[str, bytes]:
    """The thumbnails of the snapshot named by `manifest` (checked by `read_snapshot`), by id; {} if none."""
    name = next((n for n in manifest.files if n.startswith("thumbnails-")), None)
    return thumbnails_file.read_file(directory / name) if name is not None else {}
