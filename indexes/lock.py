"""A readers-writer lock: many concurrent searches, or one write at a time."""

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ReadWriteLock:
    """Writer-preferring readers-writer lock.

    FAISS flat indexes are safe for concurrent searches but not for a search concurrent with an add or a
    remove, so reads share the lock and writes hold it alone. Waiting writers block new readers, so a
    stream of searches cannot starve an upsert.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            self._release_read()

    @contextmanager
    def try_read(self) -> Iterator[bool]:
        """Share the lock if no writer holds it or waits for it, without waiting; yields whether it was taken."""
        with self._cond:
            taken = not (self._writer or self._writers_waiting)
            if taken:
                self._readers += 1
        try:
            yield taken
        finally:
            if taken:
                self._release_read()

    def _release_read(self) -> None:
        with self._cond:
            self._readers -= 1
            if self._readers == 0:
                self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()
