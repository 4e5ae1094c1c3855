"""ReadWriteLock: shared reads, lone writes, and reads that do not wait."""

import threading
import time

from indexes.lock import ReadWriteLock


def test_try_read_shares_with_readers_and_never_waits_for_a_writer() -> None:
    lock = ReadWriteLock()
    with lock.read(), lock.try_read() as taken:
        assert taken  # readers share
    with lock.write(), lock.try_read() as taken:
        assert not taken  # a writer holds it: no wait, no read
    with lock.try_read() as taken:
        assert taken


def test_try_read_yields_to_a_waiting_writer_and_releases_what_it_took() -> None:
    lock = ReadWriteLock()
    wrote = threading.Event()

    def write() -> None:
        with lock.write():
            wrote.set()

    with lock.read():
        writer = threading.Thread(target=write)
        writer.start()
        deadline = time.monotonic() + 10
        while not lock._writers_waiting and time.monotonic() < deadline:
            time.sleep(0.001)
        with lock.try_read() as taken:
            assert not taken  # writer-preferring: a waiting writer goes first
        assert not wrote.is_set()
    writer.join(timeout=10)
    assert wrote.is_set()  # the read taken by try_read was released: nothing blocks the writer
    with lock.try_read() as taken:
        assert taken and lock._readers == 1
    assert lock._readers == 0
