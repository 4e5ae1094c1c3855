"""Domain errors of the vector store and the divergence math; `service/errors.py` maps them to HTTP."""


class IndexError_(Exception):
    """Base class of every error raised by the `indexes` package."""


class InvalidInputError(IndexError_, ValueError):
    """Numeric input that cannot be used: wrong shape, NaN/inf, bad temperature, invalid probabilities."""


class MixedTypeFilterError(InvalidInputError):
    """A filter value would skip items whose field holds the same value as another JSON type (7 and "7")."""


class DimensionMismatchError(InvalidInputError):
    """A vector's length differs from the index dimension (the model's number of classes)."""


class UnknownMetricError(IndexError_, KeyError):
    """A search metric or divergence measure name that is not registered."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class ItemNotFoundError(IndexError_, KeyError):
    """An item id that is not stored."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class IndexCorruptedError(IndexError_):
    """Files on disk are missing, truncated or fail their checksums; the index is not loaded."""


class IndexClosedError(IndexError_):
    """An operation on an index that was closed: dropped, or the service is stopping."""


class InUseError(IndexError_):
    """Another process (or another open handle) owns the directory: one owner at a time."""


class StorageFullError(IndexError_):
    """The disk is full (ENOSPC, EDQUOT): nothing of the write was stored."""


class StorageError(IndexError_):
    """Another I/O error of the disk under the index: nothing of the write was stored."""


class DeadlineExceededError(IndexError_):
    """Long work passed the deadline of the request it serves, and stopped."""


class ManifestMismatchError(IndexError_):
    """The index on disk was built for another model (name, sha256 or dimension)."""


class StoreUnavailableError(IndexError_):
    """The store's server cannot be reached, refuses writes (a standby) or did not answer in time; retry later."""


class TemperatureNotStoredError(InvalidInputError):
    """A search at a temperature the index holds no vectors for (a pgvector index declares them at creation)."""


class StoreConflictError(IndexError_):
    """The store's server holds something of the same name already (an index table, a row)."""
