"""The persistent, thread-safe vector store: a FAISS index, its write-ahead log and its snapshots."""

import dataclasses
import errno
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from .ann import FAMILY_METRICS, AnnOptions, Approximate, build_structure, recall_points, row_hashes, sample_rows
from .ann.builder import Builder
from .ann.recall import recall_by_metric
from .ann.saved import load_build, save_build
from .arguments import check_search
from .columns import MappedRows
from .errors import (
    IndexClosedError,
    IndexCorruptedError,
    InvalidInputError,
    ItemNotFoundError,
    StorageError,
    StorageFullError,
)
from .facets import Facets
from .faiss_index import FaissIndex
from .lock import ReadWriteLock
from .ownership import OwnerLock
from .pages import Cursor, Order, Page
from .snapshot import (
    MANIFEST,
    IndexManifest,
    read_manifest,
    read_snapshot,
    read_thumbnails,
    remove_leftovers,
    write_snapshot,
)
from .store import Filter, Item, Metadata, SearchResult
from .thumbnails import ThumbnailTable, log_field
from .validation import (
    check_id,
    check_ids,
    check_metadata,
    check_thumbnails,
    check_vectors,
)
from .wal import WriteAheadLog, decode_vectors, encode_vectors, is_legacy, replay

logger = logging.getLogger(__name__)

#: Fold the log into a new snapshot once it holds this many records.
COMPACT_EVERY = 10_000
#: An approximate index builds again once the rows written or deleted since its build reach this share of the items
#: built (and at least `REBUILD_MINIMUM`): until then they are scanned exactly beside the structures.
REBUILD_FRACTION = 0.1
REBUILD_MINIMUM = 256
WAL = "wal.log"
OWNER_LOCK = "owner.lock"
#: The rows of an index whose originals are on disk (a cache of the snapshot and the log, rewritten at open), and
#: the copy a build reads meanwhile.
ORIGINALS = "originals.f32"
BUILD_ROWS = "originals.build"


@contextmanager
def _storage_errors(consequence: str) -> Iterator[None]:
    """Turn an OSError of the disk into `StorageFullError` (ENOSPC, EDQUOT) or `StorageError`."""
    try:
        yield
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFullError(f"the disk is full: {consequence}; free some space and retry") from exc
        raise StorageError(f"the disk failed ({exc}): {consequence}") from exc


class DurableIndex:
    """A `VectorStore` whose acknowledged writes survive a crash.

    Each write is validated completely, appended to the write-ahead log and fsynced, then applied in
    memory, all under the writer lock (a thumbnail travels in the same log record and snapshot as its item):
    a request is stored whole or not at all, and readers never see it
    half-applied. Searches share the reader lock, except on a GPU, where FAISS needs every call
    serialised.

    Open one with `DurableIndex.open`.
    """

    def __init__(
        self,
        directory: Path,
        index: FaissIndex,
        manifest: IndexManifest,
        wal: WriteAheadLog,
        owner: OwnerLock,
        thumbnails: ThumbnailTable | None = None,
        approximate: AnnOptions | None = None,
        settle_s: float = 1.0,
    ) -> None:
        self.directory = directory
        self._index = index
        self._thumbnails = thumbnails or ThumbnailTable()
        self._manifest = manifest
        self._wal = wal
        self._owner = owner
        self._lock = ReadWriteLock()
        self._closed = False
        self._compact_at = COMPACT_EVERY  # log records; pushed back after a compaction that could not run
        self._options = approximate
        self._phase = "waiting"  # of the approximate structures: waiting, building, measuring, ready or failed: ...
        self._builder: Builder | None = None
        self._saved: Approximate | None = None  # the build last saved beside the index
        if approximate is not None:
            self._builder = Builder(self, settle_s)  # started by `open`

    @classmethod
    def open(
        cls,
        directory: Path,
        *,
        name: str,
        model_name: str,
        model_sha256: str,
        dim: int,
        gpu_resources: Any = None,
        approximate: AnnOptions | None = None,
        settle_s: float = 1.0,
    ) -> "DurableIndex":
        """Load the index at `directory` (snapshot + log replay), or create an empty one there, and own it.

        With `approximate` options, candidate structures are built in the background (at start, and after writes
        once they pause for `settle_s`); searches are exact until they are built and their recall measured.

        Opening an existing index writes nothing (it needs no free disk space), except to cut a torn log tail
        and, once, to fold a log of format version 1 into a snapshot.

        Raises:
            InUseError: another process (or handle) has the index open.
            ManifestMismatchError: the index was built with another model or dimension.
            IndexCorruptedError: files are missing, truncated or fail their checksums.
        """
        directory.mkdir(parents=True, exist_ok=True)
        owner = OwnerLock(directory / OWNER_LOCK, f"index {name!r} at {directory}")
        try:
            opened = cls._load(
                directory, owner, name, model_name, model_sha256, dim, gpu_resources, approximate, settle_s
            )
        except BaseException:
            owner.release()
            raise
        if approximate is not None:
            saved = load_build(directory, approximate, gpu_resources)
            if saved is not None:
                opened._index.install_approximate(approximate, **saved)
                opened._saved = opened._index.approximate
                opened._phase = "ready"
                logger.info("index %r: serving its saved %s build", name, approximate.index_type)
        if opened._builder is not None:
            opened._builder.start()
        return opened

    @classmethod
    def _load(
        cls,
        directory: Path,
        owner: OwnerLock,
        name: str,
        model_name: str,
        model_sha256: str,
        dim: int,
        gpu_resources: Any,
        approximate: AnnOptions | None,
        settle_s: float,
    ) -> "DurableIndex":
        manifest = read_manifest(directory)
        on_disk = approximate is not None and approximate.originals == "disk"
        index = FaissIndex(
            dim,
            gpu_resources,
            originals=directory / ORIGINALS if on_disk else None,
            rerank_copy="float16" if approximate is not None and approximate.rerank_codec == "float16" else None,
        )
        if manifest is None:
            if (directory / WAL).exists() or any(directory.glob("vectors-*.npy")):
                raise IndexCorruptedError(f"{directory} holds index files but no {MANIFEST}; restore or rebuild it")
        remove_leftovers(directory, manifest)
        (directory / BUILD_ROWS).unlink(missing_ok=True)  # a build's copy of the rows, left by a crash
        if manifest is None:
            manifest = write_snapshot(
                directory, IndexManifest(name, model_name, model_sha256, dim), [], np.empty((0, dim), np.float32), []
            )
            logger.info("created empty index %r at %s", name, directory)
        manifest.check_model(model_name, model_sha256, dim)
        # with each item's seq, when the snapshot has them; read through a mapping when the rows go to a file
        index.replace_all(*read_snapshot(directory, manifest, mmap=on_disk))
        thumbnails = ThumbnailTable(read_thumbnails(directory, manifest))
        last_seq, replayed, legacy = manifest.wal_seq, 0, is_legacy(directory / WAL)
        for record in replay(directory / WAL, manifest.wal_seq):
            cls._apply(index, thumbnails, record, dim)
            last_seq, replayed = record["seq"], replayed + 1
        wal = WriteAheadLog(directory / WAL, last_seq)
        wal.num_records = replayed
        opened = cls(directory, index, manifest, wal, owner, thumbnails, approximate, settle_s)
        if legacy:
            logger.info("index %r: folding a log of format version 1 into a snapshot", name)
            with _storage_errors("upgrading the log of format version 1"):
                opened._snapshot(directory)
        logger.info(
            "loaded index %r: %d items, dim %d, %d log records replayed, on %s",
            name,
            index.count(),
            dim,
            replayed,
            index.device,
        )
        return opened

    @staticmethod
    def _apply(index: FaissIndex, thumbnails: ThumbnailTable, record: dict[str, Any], dim: int) -> None:
        if record["op"] == "upsert":
            index.upsert(record["ids"], decode_vectors(record["vectors"], dim), record["metadata"])
            thumbnails.apply_log(record["ids"], record.get("thumbnails"))
        elif record["op"] == "delete":
            deleted = record["ids"] if "ids" in record else [record["id"]]  # "ids": a delete by filter, all at once
            index.delete_many(deleted)
            for item_id in deleted:
                thumbnails.remove(item_id)
        else:
            raise IndexCorruptedError(f"unknown log operation {record['op']!r} at seq {record['seq']}")

    @property
    def name(self) -> str:
        return self._manifest.name

    @property
    def dim(self) -> int:
        return self._index.dim

    @property
    def device(self) -> str:
        return self._index.device

    @property
    def index_type(self) -> str:
        return self._index.index_type if self._options is None else self._options.index_type

    def _writing(self) -> AbstractContextManager[None]:
        """Tells the builder of an approximate index that a write is under way (nothing for a flat index)."""
        return nullcontext() if self._builder is None else self._builder.writing()

    @contextmanager
    def _locked(self, write: bool) -> Iterator[None]:
        """Hold the lock (shared for reads, alone for writes) of an index that is still open."""
        with self._lock.write() if write else self._lock.read():
            if self._closed:
                raise IndexClosedError(f"index {self.name!r} was closed (dropped, or the service is stopping)")
            yield

    def count(self) -> int:
        with self._locked(write=False):
            return self._index.count()

    def upsert(
        self,
        ids: Sequence[str],
        vectors: Any,
        metadata: Sequence[Metadata] | None = None,
        thumbnails: Sequence[bytes | None] | None = None,
    ) -> int:
        """Insert or replace items atomically; returns how many were written.

        Args:
            ids: distinct ids (non-empty, printable, at most 256 characters).
            vectors: `(n, dim)` logits, finite.
            metadata: one JSON object per id (default: empty objects).
            thumbnails: one encoded image or None per id (default: none); a replaced item keeps only this one.
        """
        checked_ids = check_ids(ids)
        array = check_vectors(vectors, self.dim)
        if len(array) != len(checked_ids):
            raise InvalidInputError(f"{len(checked_ids)} ids but {len(array)} vectors; send one vector per id")
        metas = [check_metadata(m) for m in (metadata if metadata is not None else [{}] * len(checked_ids))]
        if len(metas) != len(checked_ids):
            raise InvalidInputError(f"{len(checked_ids)} ids but {len(metas)} metadata objects")
        thumbs = check_thumbnails(thumbnails, len(checked_ids))
        record: dict[str, Any] = {
            "op": "upsert",
            "ids": checked_ids,
            "vectors": encode_vectors(array),
            "metadata": metas,
        }
        if (field := log_field(thumbs)) is not None:
            record["thumbnails"] = field
        with self._writing(), self._locked(write=True):
            with _storage_errors("nothing of this request was stored"):
                self._wal.append(record)
            written = self._index.upsert(checked_ids, array, metas)
            self._thumbnails.set(checked_ids, thumbs)
            self._maybe_compact()
        return written

    def delete(self, item_id: str) -> None:
        """Remove an item; raises `ItemNotFoundError` (and logs nothing) if it is not stored."""
        check_id(item_id)
        with self._writing(), self._locked(write=True):
            if item_id not in self._index:
                raise ItemNotFoundError(f"no item with id {item_id!r}")
            with _storage_errors("the item was not deleted"):
                self._wal.append({"op": "delete", "id": item_id})
            self._index.delete(item_id)
            self._thumbnails.remove(item_id)
            self._maybe_compact()

    def delete_where(self, filter: Filter, temperature: float = 1.0) -> int:
        """Remove every item matching `filter` (derived fields at `temperature`) at once: one log record, so that all
        of them or none are deleted after a crash. Returns how many were removed (0 writes nothing)."""
        with self._writing(), self._locked(write=True):
            rows = self._index.matching_rows(filter, temperature)
            if not len(rows):
                return 0
            ids = [self._index.ids[row] for row in rows.tolist()]
            with _storage_errors("no item was deleted"):
                self._wal.append({"op": "delete", "ids": ids})
            self._index.delete_many(ids)
            for item_id in ids:
                self._thumbnails.remove(item_id)
            self._maybe_compact()
            return len(ids)

    def page(
        self, filter: Filter | None, order: Order, after: Cursor | None, limit: int, temperature: float = 1.0
    ) -> Page:
        """A page of the items matching `filter` in `order`, after the cursor `after` (`indexes.pages`)."""
        with self._locked(write=False):
            return self._index.page(filter, order, after, limit, temperature)

    def facets(self, filter: Filter | None, group_by: str | None, temperature: float = 1.0, limit: int = 100) -> Facets:
        """How many items match `filter`, and per value of `group_by` how many hold it (`indexes.facets`)."""
        with self._locked(write=False):
            return self._index.facets(filter, group_by, temperature, limit)

    def get(self, item_id: str) -> Item:
        check_id(item_id)
        with self._locked(write=False):
            return self._index.get(item_id)

    def thumbnail(self, item_id: str) -> bytes | None:
        """The item's thumbnail, or None when it has none; `ItemNotFoundError` if the item is absent."""
        check_id(item_id)
        with self._locked(write=False):
            if item_id not in self._index:
                raise ItemNotFoundError(f"no item with id {item_id!r}")
            return self._thumbnails.get(item_id)

    def iter_items(self, batch_size: int = 10_000) -> Iterator[Item]:
        """Every item, in insertion order, read in consistent pages."""
        offset = 0
        while page := self.list(offset, batch_size):
            yield from page
            offset += len(page)

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
        """The k nearest neighbours of each query row under `metric` (see `FaissIndex.search`).

        Args:
            queries: `(q, dim)` logits.
            k: neighbours per query (>= 1; fewer come back when fewer items match).
            metric: one of `SEARCH_METRICS`.
            temperature: softmax temperature T > 0 of `ce`, `kl`, `kl_reverse`, `js` and `tri`.
            filter: a filter (`indexes.filters`) on metadata and the derived fields at `temperature`.
            exact: on an approximate index, answer by the exact scan.
            target_recall: on an approximate index, the recall@10 the answer must have been measured to reach
                (default: the index's target); where none was, the answer is exact.
        """
        args = check_search(queries, self.dim, k, metric, temperature, filter, target_recall)
        # FAISS on a GPU needs every call serialised.
        with self._locked(write=self._index.on_gpu):
            return self._index.search(
                args.queries, args.k, args.filter, args.metric, args.temperature,
                exact=exact, target_recall=args.target_recall,
            )  # fmt: skip

    def search_now(
        self,
        queries: Any,
        k: int,
        *,
        metric: str = "l2",
        temperature: float = 1.0,
        filter: Filter | None = None,
        exact: bool = False,
        target_recall: float | None = None,
        max_values: int,
    ) -> SearchResult | None:
        """`search`, when it can run at once and briefly: on the CPU, over at most `max_values` stored values
        (items x classes x queries), with no write holding or awaiting the lock; else None, having done nothing.

        For callers that would rather not hand a tiny search to another thread (the service's event loop).
        """
        args = check_search(queries, self.dim, k, metric, temperature, filter, target_recall)
        if self._index.on_gpu or self._index.count() * self.dim * len(args.queries) > max_values:
            return None
        with self._lock.try_read() as taken:
            if not taken:
                return None
            if self._closed:
                raise IndexClosedError(f"index {self.name!r} was closed (dropped, or the service is stopping)")
            return self._index.search(
                args.queries, args.k, args.filter, args.metric, args.temperature,
                exact=exact, target_recall=args.target_recall,
            )  # fmt: skip

    def recall_at_10(self) -> dict[str, float] | None:
        """Per metric, the recall@10 measured at the index's target (the lowest over its temperatures); None for a
        flat index, or before the structures are built and measured."""
        with self._locked(write=False):
            approximate = self._index.approximate
            if approximate is None or not approximate.calibrations:
                return None
            return recall_by_metric(approximate.calibrations.values(), approximate.options.target_recall)

    def approximate_info(self) -> dict[str, Any] | None:
        """What `GET /v1/indexes/{name}` shows of an approximate index: options, build state, structures, and per
        (metric, T) the recall@10 measured, the search parameters chosen for the target, and when; None if flat."""
        if self._options is None:
            return None
        with self._locked(write=False):
            info: dict[str, Any] = {**self._options.to_json(), "status": self._phase}
            approximate = self._index.approximate
            if approximate is None:
                return info
            param_name = "ef_search" if self._options.index_type == "hnsw" else "nprobe"
            info["built_at"] = approximate.built_at
            info["items_built"] = approximate.num_built
            info["items_in_delta"] = approximate.labels.num_delta
            info["items_stale"] = approximate.labels.num_stale
            info["structures"] = [
                {
                    "family": family,
                    "temperature": temperature,
                    "metrics": [m for m in FAMILY_METRICS[family] if m in self._options.metrics],
                    "bytes_per_item": round(structure.bytes_per_item, 1),
                    "build_s": round(structure.build_s, 3),
                }
                for (family, temperature), structure in approximate.structures.items()
            ]
            structures = sum(structure.bytes_per_item for structure in approximate.structures.values())
            originals = 0 if self._index.originals_file is not None else 4 * self.dim
            rerank_copy = 2 * self.dim if self._index.rerank_copy == "float16" else 0
            info["resident_bytes_per_item"] = {
                "originals": originals,
                "rerank_copy": rerank_copy,
                "structures": round(structures, 1),
                "total": round(originals + rerank_copy + structures, 1),
            }
            target = self._options.target_recall
            info["recall"] = [c.describe(target, param_name) for c in approximate.calibrations.values()]
            return info

    def wait_for_approximate(self, timeout: float | None = None) -> bool:
        """Block until the approximate structures are built and measured for every write so far (True), or the
        timeout passes (False); True at once for a flat index."""
        return self._builder is None or self._builder.wait(timeout)

    def maintain(self, cancelled: Callable[[], bool]) -> None:
        """Build the approximate structures when due (first, or after enough writes), then measure their recall;
        called by the builder thread. Reads and writes go on meanwhile: the build works on a copy of the rows."""
        options = self._options
        assert options is not None
        try:
            with self._locked(write=False):
                current = self._index.approximate
                count = self._index.count()
                due = count > 0 and (current is None or current.needs_rebuild(count, REBUILD_FRACTION, REBUILD_MINIMUM))
                if due:
                    ids, vectors = list(self._index.ids), self._rows_for_build()
                    hashes = row_hashes(vectors)
            if due:
                self._phase = "building"
                logger.info("index %r: building %s structures over %d items", self.name, options.index_type, count)
                structures = {}
                for family in options.families():
                    built = build_structure(options, family, vectors, cancelled, self._index.gpu_resources)
                    if built is None:
                        return
                    structures[family] = built
                del vectors
                (self.directory / BUILD_ROWS).unlink(missing_ok=True)
                with self._locked(write=True):
                    self._index.install_approximate(options, structures, ids, hashes)
            self._measure(options, cancelled)
            self._save_build()
        except IndexClosedError:
            return
        except Exception as exc:
            self._phase = f"failed: {exc}"
            raise

    def _rows_for_build(self) -> np.ndarray:
        """A copy of the rows for a build to read while writes go on: in memory, or, when the originals are on disk,
        in a file beside them (memory-mapped). The caller holds the lock."""
        if self._index.originals_file is None:
            return self._index.vectors.copy()
        copy = MappedRows(self.directory / BUILD_ROWS, self._index.dim)
        copy.replace(self._index.vectors)
        return copy.values

    def _save_build(self) -> None:
        """Save the measured build beside the index (derived data: a failure only costs a build at the next start).

        Runs on the builder thread, which alone changes a build once installed; writes wait only for the lock."""
        approximate = self._index.approximate
        if approximate is None or approximate is self._saved or self._phase != "ready":
            return
        try:
            save_build(self.directory, approximate)
        except OSError as exc:
            logger.warning(
                "index %r: its approximate build was not saved (%s); it is built again at start", self.name, exc
            )
        else:
            self._saved = approximate
            logger.info("index %r: saved its %s build", self.name, approximate.options.index_type)

    def _measure(self, options: AnnOptions, cancelled: Callable[[], bool]) -> None:
        """Measure the recall of every (metric, T) not measured since the last build."""
        self._phase = "measuring"
        for metric, temperature in recall_points(options):
            if cancelled():
                return
            with self._locked(write=False):
                approximate = self._index.approximate
                if approximate is None or (metric, temperature) in approximate.calibrations:
                    continue
                rows = sample_rows(self._index.count())
                approximate.calibrations[(metric, temperature)] = self._index.measure_recall(metric, temperature, rows)
        self._phase = "ready" if self._index.approximate is not None else "waiting"

    def save(self, path: Path | None = None) -> None:
        """Fold the log into a fresh snapshot (in `path`, default the index's own directory)."""
        with self._locked(write=True), _storage_errors("no snapshot was written; the log still holds every write"):
            self._snapshot(path or self.directory)

    def close(self, compact: bool = True) -> None:
        """Release the log file, first folding it into a snapshot unless `compact` is False; idempotent.

        Waits for the operations under way; later ones raise `IndexClosedError`. An index about to be
        deleted is closed with `compact=False`, so that nothing more is written to its directory.
        """
        if self._builder is not None:
            self._builder.stop()  # cancels a build under way: it holds nothing that is not in the log
        with self._lock.write():
            if self._closed:
                return
            if compact and self._wal.num_records:
                try:
                    self._snapshot(self.directory)
                except OSError as exc:  # nothing is lost: the log holds every write and is replayed at start
                    logger.warning("index %r: no snapshot at close (%s); the log will be replayed", self.name, exc)
            self._wal.close()
            self._owner.release()
            self._closed = True

    def _maybe_compact(self) -> None:
        """Fold the log into a snapshot once it is long; a failure (a full disk) is retried later.

        The write that triggers it is already durable in the log, so it is acknowledged either way.
        """
        if self._wal.num_records < min(self._compact_at, COMPACT_EVERY):
            return
        try:
            self._snapshot(self.directory)
        except OSError as exc:
            self._compact_at = self._wal.num_records + max(1, COMPACT_EVERY // 10)
            logger.warning(
                "index %r: compaction failed (%s); the log keeps every write, retrying after %d records",
                self.name, exc, self._compact_at,
            )  # fmt: skip
        else:
            self._compact_at = COMPACT_EVERY

    def _snapshot(self, directory: Path) -> None:
        manifest = dataclasses.replace(self._manifest, wal_seq=self._wal.last_seq)
        rows = self._index.insertion_rows()  # in insertion order, so that a restart lists items as before
        ids, metadata, seqs = self._index.ids, self._index.metadata, self._index.seqs
        if rows is not None:
            ids, metadata, seqs = [ids[r] for r in rows.tolist()], [metadata[r] for r in rows.tolist()], seqs[rows]
        written = write_snapshot(
            directory,
            manifest,
            list(ids),
            self._index.vectors,
            list(metadata),
            rows,
            self._thumbnails.as_mapping(),
            seqs,
            self._index.next_seq,
        )
        if directory == self.directory:
            self._manifest = written
            self._wal.truncate()
        logger.info(
            "snapshot of index %r: %d items at seq %d in %s", self.name, written.count, written.wal_seq, directory
        )

    # Defined last: inside the class body the name `list` would shadow the builtin in later annotations.
    def list(self, offset: int = 0, limit: int = 100) -> list[Item]:
        with self._locked(write=False):
            return self._index.list(offset, limit)
