"""The catalog: the indexes of a data directory, the model each one is bound to, and the loaded models (`models`).

Every index is a directory `DATA_DIR/indexes/<name>/` holding its catalog entry `index.json` (name, model,
store, index type, creation time) beside the store's own files. An index is created in a hidden `.creating-*`
directory that is renamed into place once complete, and dropped by renaming it to a hidden `.dropped-*`
directory before its files are deleted: a crash at any point leaves the index whole or absent, and the next
start removes the hidden leftovers. Directories written before the catalog existed have no `index.json`;
their manifest names the model, and they are served as FAISS indexes.
"""

import dataclasses
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indexes.durable import OWNER_LOCK
from indexes.errors import IndexError_, InUseError, StoreUnavailableError
from indexes.ownership import OwnerLock
from indexes.snapshot import fsync_directory
from indexes.store import VectorStore
from models import Classifier, ModelError, ModelNotFoundError, ModelSpec, read_spec

from ..config import INDEX_NAME_PATTERN, Settings
from ..errors import (
    IndexExistsError,
    IndexLimitError,
    IndexNotFoundError,
    IndexUnavailableError,
    InvalidIndexError,
    ServiceNotReadyError,
)
from .bootstrap import import_plugins
from .classifiers import ModelCache
from .descriptors import index_capacity
from .entries import (
    ENTRY_FILE,
    INDEX_NAME,
    IndexEntry,
    IndexStatus,
    check_index_name,
    read_entry,
    rewrite_entry,
    write_entry,
)
from .stores import (
    approximate_options,
    check_standbys,
    check_store_options,
    create_store,
    drop_store,
    open_database,
    open_store,
    replace_shard,
)

logger = logging.getLogger(__name__)

_CREATING, _DROPPED = ".creating-", ".dropped-"


@dataclass
class _Slot:
    entry: IndexEntry
    store: VectorStore | None = None
    model_sha256: str = ""  # of the model the store was checked against when it was opened
    reason: str | None = None


class Catalog:
    """The indexes under `DATA_DIR/indexes/` and the models under `DATA_DIR/models/`; thread-safe.

    Call `open` first. Models load on first use and are shared by every index bound to them; an index whose
    files or model do not check out stays listed as unavailable, with the reason, instead of failing the rest.
    """

    def __init__(self, settings: Settings, gpu_resources: Any = None) -> None:
        self.settings = settings
        self._gpu_resources = gpu_resources
        self._database: Any = None  # the PostgreSQL pools (indexes.pg.PgDatabase) once opened, when PG_URL is set
        self._slots: dict[str, _Slot] = {}
        self._dropping: set[str] = set()  # indexes being dropped: their directories are going away
        self._creating: set[str] = set()  # names being created: reserved, their directories not there yet
        self.models = ModelCache(settings)
        self.max_indexes = index_capacity(settings.max_indexes)
        self._lock = threading.Lock()  # guards _slots

    @property
    def indexes_dir(self) -> Path:
        return self.settings.indexes_dir

    # -- opening and closing ------------------------------------------------------------------------------

    def open(self, names: Collection[str] | None = None, clean: bool = True) -> None:
        """Open the indexes on disk (only `names`, when given); remove what unfinished creates and drops left,
        unless `clean` is False (a running service may be creating or dropping them now)."""
        import_plugins(self.settings.plugins)
        if self._database is None:
            self._database = open_database(self.settings)
        self.indexes_dir.mkdir(parents=True, exist_ok=True)
        # The default index first: past MAX_INDEXES the others stay closed, never the one the service is for.
        for path in sorted(self.indexes_dir.iterdir(), key=lambda p: (p.name != self.settings.index, p.name)):
            if path.name.startswith((_CREATING, _DROPPED)) and not clean:
                continue
            if path.name.startswith((_CREATING, _DROPPED)):
                logger.info("removing %s, left by a create or drop that did not finish", path)
                shutil.rmtree(path, ignore_errors=True)
            elif not path.is_dir() or (names is not None and path.name not in names):
                continue
            elif not INDEX_NAME.fullmatch(path.name):
                logger.warning("ignoring %s: not a valid index name (%s)", path, INDEX_NAME_PATTERN)
            elif len(self._slots) >= self.max_indexes:
                reason = f"not opened: {self._full()}"
                logger.error("index %r is %s", path.name, reason)
                with self._lock:
                    self._slots[path.name] = _Slot(IndexEntry(path.name, model=""), reason=reason)
            else:
                with self._lock:
                    self._slots[path.name] = self._open_slot(path)

    def open_default(self, progress: bool = False) -> None:
        """Create the default index (`LOGITSEARCH_INDEX`) bound to `LOGITSEARCH_MODEL` if absent; load its model.

        A default index bound to another model than a `LOGITSEARCH_MODEL` that was set is made unavailable.
        First-start work (training the embedded model, filling the digits) is `firststart`'s.
        """
        name, model = self.settings.index, self.settings.model
        if name not in self._slots:
            self.models.get(model, progress=progress)
            self.create(name, model)
        slot = self._slots[name]
        if slot.store is None:
            return
        if "model" in self.settings.model_fields_set and slot.entry.model != model:
            slot.store.close()
            slot.store, slot.reason = (
                None,
                (
                    f"index {name!r} holds the logits of model {slot.entry.model!r} but LOGITSEARCH_MODEL is {model!r}; "
                    f"serve the matching model, or choose another LOGITSEARCH_INDEX (logitsearch index --index NAME "
                    f"--model {model} builds one)"
                ),
            )
            logger.error("the default index is unavailable: %s", slot.reason)
            return
        try:
            self.models.get(slot.entry.model, progress=progress)
        except (ModelError, ServiceNotReadyError) as exc:
            logger.error("the default index's model is unavailable: %s", exc)

    def _open_slot(self, path: Path) -> _Slot:
        try:
            entry = read_entry(path)
        except (OSError, ValueError, TypeError, IndexError_) as exc:
            reason = f"index {path.name!r}: {exc}"
            logger.error("%s", reason)
            return _Slot(IndexEntry(path.name, model=""), reason=reason)
        try:
            store, spec = self._open_store(path, entry)
        except (ModelError, IndexError_) as exc:
            logger.error("index %r is unavailable: %s", entry.name, exc)
            return _Slot(entry, reason=str(exc))
        return _Slot(entry, store, spec.sha256)

    def _open_store(self, path: Path, entry: IndexEntry) -> tuple[VectorStore, ModelSpec]:
        try:
            spec = read_spec(self.settings.models_dir, entry.model)
        except ModelNotFoundError as exc:
            raise ModelNotFoundError(f"index {entry.name!r} is bound to model {entry.model!r}: {exc}") from exc
        return open_store(path, entry, spec, self._database, self._gpu_resources), spec

    def close(self, compact: bool = True) -> None:
        """Close every open store; each folds its log into a snapshot first unless `compact` is False."""
        with self._lock:
            slots, self._slots = list(self._slots.values()), {}
        for slot in slots:
            if slot.store is not None:
                slot.store.close(compact=compact)
        if self._database is not None:
            self._database.close()
            self._database = None

    # -- creating and dropping ----------------------------------------------------------------------------

    def create(
        self,
        name: str,
        model: str,
        store: str = "faiss",
        index_type: str = "flat",
        temperatures: list[float] | None = None,
        thumbnails: bool = True,
        *,
        metrics: list[str] | None = None,
        codec: str = "float32",
        target_recall: float = 0.95,
        originals: str = "memory",
        rerank_codec: str = "float32",
        parameters: dict[str, int | None] | None = None,
        shards: list[str] | None = None,
        shard_standbys: list[str | None] | None = None,
    ) -> IndexStatus:
        """Create an empty index bound to `model`, durably and atomically.

        Raises:
            InvalidIndexError: a bad name, store, index type or temperatures, or pgvector without PG_URL (422).
            ModelNotFoundError: no model of that name (404).
            IndexExistsError: an index of that name exists (409).
        """
        check_index_name(name)
        check_store_options(self.settings, store, index_type, temperatures, shards)
        shard_standbys = check_standbys(shards, shard_standbys)
        spec = read_spec(self.settings.models_dir, model)
        if store == "pgvector":
            temperatures = [float(t) for t in temperatures or [1.0]]
        entry = IndexEntry(
            name,
            model,
            store,
            index_type,
            thumbnails=thumbnails,
            temperatures=temperatures,
            metrics=metrics,
            codec=codec,
            target_recall=target_recall,
            originals=originals,
            rerank_codec=rerank_codec,
            parameters=parameters,
            shards=shards,
            shard_standbys=shard_standbys,
        )
        approximate_options(entry)  # options that make no index are a 422 before anything is written
        final = self.indexes_dir / name
        # The name is reserved under the lock; the files and the database table are made outside it, so that a
        # slow disk or database holds up this request only, never the lookups every other request makes.
        with self._lock:
            if name in self._slots or name in self._creating or final.exists():
                raise IndexExistsError(f"index {name!r} exists; DELETE /v1/indexes/{name} first, or choose another")
            if len(self._slots) + len(self._creating) >= self.max_indexes:
                raise IndexLimitError(f"cannot create index {name!r}: {self._full()}")
            self._creating.add(name)
        try:
            self._make(final, entry, spec)
            slot = self._open_slot(final)
            with self._lock:
                self._slots[name] = slot
        finally:
            with self._lock:
                self._creating.discard(name)
        logger.info("created index %r bound to model %r (%s)", name, model, store)
        return self._status(slot)

    def _make(self, final: Path, entry: IndexEntry, spec: ModelSpec) -> None:
        """Write the index `entry` at `final` atomically: in a staging directory, then renamed."""
        staging = self.indexes_dir / f"{_CREATING}{entry.name}-{uuid.uuid4().hex}"
        created: VectorStore | None = None
        try:
            staging.mkdir(parents=True)
            write_entry(staging, entry)
            created = create_store(staging, entry, spec, self.settings, self._database)
            created.close()
            fsync_directory(staging)
            os.rename(staging, final)
            created = None
            fsync_directory(self.indexes_dir)
        finally:
            if created is not None and entry.store != "faiss":
                drop_store(created, entry.store)  # the entry did not make it: remove the table too
            shutil.rmtree(staging, ignore_errors=True)

    def _full(self) -> str:
        return (
            f"this service holds {self.max_indexes} indexes, its limit (LOGITSEARCH_MAX_INDEXES, and the open-file "
            "limit: 2 files per index); drop one, or raise both and restart"
        )

    def replace_shard(self, name: str, i: int, url: str | None, promote: bool = False) -> IndexStatus:
        """Serve shard `i` of the sharded index `name` from the server at `url` (`PgVectorStore.replace_shard`),
        and record it in the index's entry (replaced atomically), so that a restart serves it from there too.

        `url` None: the shard's own standby (`standby_url` at creation), which then serves it without a standby.
        """
        with self._lock:
            slot = self._slot(name)
        if slot.store is None:
            raise IndexUnavailableError(f"index {name!r} is unavailable: {slot.reason}")
        standbys = list(slot.entry.shard_standbys or [None] * len(slot.entry.shards or []))
        if url is None:
            if not 0 <= i < len(standbys) or standbys[i] is None:
                raise InvalidIndexError(
                    f"shard {i} of index {name!r} has no standby_url; give the url of the server to serve it from"
                )
            url = standbys[i]
            assert url is not None
        shards = replace_shard(slot.store, i, url, promote)
        if 0 <= i < len(standbys) and standbys[i] == url:
            standbys[i] = None  # promoted: the shard's new primary, with no standby until one is made
        entry = dataclasses.replace(slot.entry, shards=list(shards), shard_standbys=standbys if any(standbys) else None)
        rewrite_entry(self.indexes_dir / name, entry)
        with self._lock:
            slot.entry = entry
        return self._status(slot)

    def drop(self, name: str) -> None:
        """Close the index `name` and delete its files; it does not come back after a restart.

        Requests under way on it finish first; later ones get `IndexNotFoundError`.
        """
        with self._lock:
            slot = self._slot(name)
            del self._slots[name]
            self._dropping.add(name)  # its directory is still there until the rename below: not to be adopted
        path, tombstone = self.indexes_dir / name, self.indexes_dir / f"{_DROPPED}{name}-{uuid.uuid4().hex}"
        owner = None
        try:
            if slot.store is not None:
                drop_store(slot.store, slot.entry.store)
            else:  # not opened here: make sure no other process has it open before it goes
                owner = OwnerLock(path / OWNER_LOCK, f"index {name!r} at {path}")
            os.rename(path, tombstone)
            fsync_directory(self.indexes_dir)
        except (OSError, InUseError, StoreUnavailableError):
            with self._lock:
                self._slots[name] = self._open_slot(path)
            raise
        finally:
            if owner is not None:
                owner.release()
            with self._lock:
                self._dropping.discard(name)
        shutil.rmtree(tombstone, ignore_errors=True)
        logger.info("dropped index %r", name)

    # -- lookups ------------------------------------------------------------------------------------------

    def _slot(self, name: str) -> _Slot:
        slot = self._slots.get(name)
        if slot is None and self._is_created_elsewhere(name):  # one name: no directory listing on a lookup miss
            slot = self._adopt(name)
        if slot is None:
            raise IndexNotFoundError(
                f"no index named {name!r}; GET /v1/indexes lists them, POST /v1/indexes creates one"
            )
        return slot

    def _created_elsewhere(self) -> list[str]:
        """Indexes another process (`logitsearch index`) created on disk after this catalog opened."""
        if not self.indexes_dir.is_dir():
            return []
        return sorted(path.name for path in self.indexes_dir.iterdir() if self._is_created_elsewhere(path.name))

    def _is_created_elsewhere(self, name: str) -> bool:
        return (
            name not in self._slots
            and name not in self._dropping
            and name not in self._creating
            and INDEX_NAME.fullmatch(name) is not None
            and (self.indexes_dir / name / ENTRY_FILE).is_file()
        )

    def _adopt(self, name: str) -> _Slot:
        """Open an index created elsewhere and serve it from now on; while it cannot be opened (its creator still
        owns it, say), 503 with the reason, not remembered: the next request tries again."""
        if len(self._slots) >= self.max_indexes:
            raise IndexUnavailableError(f"index {name!r} is unavailable: not opened: {self._full()}")
        slot = self._open_slot(self.indexes_dir / name)
        if slot.store is None:
            raise IndexUnavailableError(f"index {name!r} is unavailable: {slot.reason}")
        logger.info("serving index %r, created on disk after this service started", name)
        self._slots[name] = slot
        return slot

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._slots)

    def entry(self, name: str) -> IndexEntry:
        with self._lock:
            return self._slot(name).entry

    def store(self, name: str) -> VectorStore:
        """The open store of index `name`: `IndexNotFoundError` if there is none, `IndexUnavailableError` (503)."""
        with self._lock:
            slot = self._slot(name)
        if slot.store is None:
            raise IndexUnavailableError(f"index {name!r} is unavailable: {slot.reason}")
        return slot.store

    def status(self, name: str) -> IndexStatus:
        """The index `name` as listed, with the recall@10 of an approximate index measured (then cached)."""
        with self._lock:
            slot = self._slot(name)
        return self._status(slot, measure=True)

    def statuses(self, adopt: bool = True) -> list[IndexStatus]:
        """Every index as listed; with `adopt`, those created on disk by another process since `open` too."""
        with self._lock:
            for name in self._created_elsewhere() if adopt else []:
                try:
                    self._adopt(name)
                except IndexUnavailableError:
                    pass  # listed once it can be opened
            slots = [self._slots[name] for name in sorted(self._slots)]
        return [self._status(slot) for slot in slots]

    @staticmethod
    def _status(slot: _Slot, measure: bool = False) -> IndexStatus:
        store = slot.store
        if store is None:
            return IndexStatus(slot.entry, reason=slot.reason)
        try:
            count = store.count()
            recall = store.recall_at_10() if measure else None
            approximate = store.approximate_info() if measure else None
        except IndexError_ as exc:  # a store on a server that is down (or whose table went away)
            return IndexStatus(slot.entry, reason=str(exc))
        return IndexStatus(
            slot.entry, count=count, dim=store.dim, device=store.device, recall_at_10=recall, approximate=approximate
        )

    def ready(self) -> bool:
        """Whether the default index is open and its model loaded."""
        with self._lock:
            slot = self._slots.get(self.settings.index)
        return slot is not None and slot.store is not None and self.models.loaded(slot.entry.model) is not None

    # -- models -------------------------------------------------------------------------------------------

    def index_model(self, index: str) -> Classifier:
        """The model of index `index`, checked to be the one its store was opened against."""
        with self._lock:
            slot = self._slot(index)
        if slot.store is None:
            raise IndexUnavailableError(f"index {index!r} is unavailable: {slot.reason}")
        classifier = self.models.get(slot.entry.model)
        if classifier.spec.sha256 != slot.model_sha256:
            raise IndexUnavailableError(
                f"model {slot.entry.model!r} changed on disk after index {index!r} was opened "
                f"(sha256 {slot.model_sha256[:12]} then, {classifier.spec.sha256[:12]} now); restart the service"
            )
        return classifier

    def __contains__(self, name: str) -> bool:
        with self._lock:
            return name in self._slots
