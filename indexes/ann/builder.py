"""The background thread that builds an approximate index's candidate structures and measures their recall."""

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

logger = logging.getLogger(__name__)


class Maintained(Protocol):
    """What the builder maintains: `maintain` builds or measures what is due, and returns once nothing is, or
    as soon as `cancelled()` turns true."""

    @property
    def name(self) -> str: ...

    def maintain(self, cancelled: Callable[[], bool]) -> None: ...


class Builder:
    """Runs `target.maintain` on its own thread after writes, once none is under way and they have paused for
    `settle_s` (so a bulk load builds once, at its end), and at start.

    Searches never wait for it: until a build is installed and measured they are answered exactly.

    Args:
        target: the index to maintain.
        settle_s: quiet time after the last write before a build starts.
    """

    def __init__(self, target: Maintained, settle_s: float = 1.0) -> None:
        self._target = target
        self._settle_s = settle_s
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._stopping = False
        self._last_write = time.monotonic()
        self._writes = 0  # finished so far; the builder is idle once it finished a pass that began after the last
        self._in_flight = 0  # writes under way: no build starts while one is
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"ann-builder-{target.name}", daemon=True)

    def start(self) -> None:
        self._wake.set()
        self._thread.start()

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Around a write: no build starts while it runs, and the next one waits until writes pause."""
        with self._lock:
            self._in_flight += 1
            self._idle.clear()
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1
                self._writes += 1
                self._last_write = time.monotonic()
            self._wake.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until nothing is due (built and measured for the writes so far); False on timeout."""
        return self._idle.wait(timeout)

    def stop(self) -> None:
        """Cancel a build under way (between chunks of rows) and end the thread."""
        self._stopping = True
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join()

    def _cancelled(self) -> bool:
        return self._stopping

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait()
            self._wake.clear()
            while not self._stopping and (self._in_flight or self._last_write + self._settle_s > time.monotonic()):
                time.sleep(min(self._settle_s, 0.1))
            if self._stopping:
                break
            with self._lock:
                seen = self._writes
            try:
                self._target.maintain(self._cancelled)
            except Exception:  # the index keeps answering exactly; the next write tries again
                logger.exception("index %r: building its approximate structures failed", self._target.name)
            with self._lock:
                if self._writes == seen:
                    self._idle.set()
        self._idle.set()
