"""One owner per directory: an exclusive lock (`flock`) on a file in it, naming the holding process."""

import errno
import fcntl
import logging
import os
from pathlib import Path

from .errors import InUseError

logger = logging.getLogger(__name__)


class OwnerLock:
    """Hold an exclusive advisory lock on `path` until `release` (or the process ends, even by SIGKILL).

    The lock belongs to this open file, so a second `OwnerLock` on the same path is refused in the same
    process as in any other. The holder writes its process id into the file, for the refusal message.

    Raises:
        InUseError: another owner holds the lock; the message names `what` and the holder's process id.
    """

    def __init__(self, path: Path, what: str) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_holder(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            raise InUseError(
                f"{what} is in use by process {holder}; stop that process first, or go through its API"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as exc:  # a full disk: the lock holds all the same, only the holder's id is missing
            logger.warning("%s: could not record this process as the owner (%s)", path, exc)
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        """Give the lock up; idempotent."""
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def lock_holder(path: Path) -> str | None:
    """The process id (as text) recorded in the lock file `path` while an `OwnerLock` holds it, else None.

    Only looks: the file is neither created nor written, and no lock is kept.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            return _read_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    except OSError:
        text = ""
    return text if text.isdigit() else "(unknown)"
