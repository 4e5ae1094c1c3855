"""Connections to PostgreSQL: a pool for the primary, one per read replica, and errors turned into domain errors.

Writes go to the primary. Reads go to a replica when `read_urls` are given (round robin), falling back to the
primary while a replica is unreachable. Consistency: a replica serves a write once it has replayed it. This
process waits for nothing: after a write it remembers the primary's WAL position, and reads from a replica
only once that replica reports having replayed past it; until then they go to the primary (read-your-writes
within one API process; other processes see the write after replay, usually milliseconds).
"""

import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import psycopg
from pgvector.psycopg import register_vector
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from ..deadline import current_deadline
from ..errors import (
    DeadlineExceededError,
    IndexCorruptedError,
    InvalidInputError,
    StoreConflictError,
    StoreUnavailableError,
)
from .schema import registry_statements

logger = logging.getLogger(__name__)

#: A replica that failed is not tried again for this long.
REPLICA_BACKOFF_S = 30.0
#: How long a read waits for a replica's connection before trying the next server.
REPLICA_CONNECT_S = 2.0
T = TypeVar("T")


@dataclass(frozen=True)
class PgOptions:
    """How to reach the database: `url` (primary), optional `read_urls`, and time limits in seconds."""

    url: str
    read_urls: tuple[str, ...] = ()
    statement_timeout_s: float = 30.0
    connect_timeout_s: float = 5.0
    pool_size: int = 8


def describe(url: str) -> str:
    """`host:port/dbname` of a connection URL, without its password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "PostgreSQL (unparsable URL)"
    return f"{info.get('host', 'localhost')}:{info.get('port', 5432)}/{info.get('dbname', '')}"


def _lsn(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


class _Server:
    """One server's pool."""

    def __init__(self, url: str, options: PgOptions, role: str) -> None:
        self.name = f"{role} {describe(url)}"
        wait = options.connect_timeout_s if role == "primary" else min(REPLICA_CONNECT_S, options.connect_timeout_s)
        self.down_until = 0.0
        self.replayed = 0  # the WAL position this replica was last seen to have replayed
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=options.pool_size,
            open=False,
            timeout=wait,
            reconnect_timeout=0,  # keep trying: the server coming back is the normal case
            check=ConnectionPool.check_connection,
            configure=_configure_primary if role == "primary" else register_vector,
            kwargs={
                "autocommit": True,
                "connect_timeout": max(1, round(options.connect_timeout_s)),
                "options": f"-c statement_timeout={round(options.statement_timeout_s * 1000)}",
            },
            name=self.name,
        )


class PgDatabase:
    """The pools of one PostgreSQL deployment, shared by every pgvector index of a service; thread-safe."""

    def __init__(self, options: PgOptions) -> None:
        self.options = options
        self._primary = _Server(options.url, options, "primary")
        self._replicas = [_Server(url, options, "replica") for url in options.read_urls]
        self._next_replica = itertools.cycle(range(len(self._replicas))) if self._replicas else None
        self._written = 0  # the primary's WAL position after this process's last write
        self._lock = threading.Lock()
        self._prepared = False

    def open(self) -> None:
        """Start the pools (connecting in the background: a server that is down does not stop the service)."""
        for server in [self._primary, *self._replicas]:
            server.pool.open(wait=False)

    def close(self) -> None:
        for server in [self._primary, *self._replicas]:
            server.pool.close()

    def write(self, work: Callable[[psycopg.Connection[Any]], T]) -> T:
        """`work(conn)` on the primary inside one transaction, committed when it returns."""
        with self._connect(self._primary) as conn:
            conn.isolation_level, conn.read_only = None, None  # the server's defaults: READ COMMITTED, writable
            self._prepare(conn)
            with conn.transaction():
                _limit_to_deadline(conn)
                result = work(conn)
            if not self._replicas:
                return result
            row = conn.execute("SELECT pg_current_wal_lsn()::text").fetchone()
        with self._lock:
            self._written = max(self._written, _lsn(row[0]) if row else 0)
        return result

    def read(self, work: Callable[[psycopg.Connection[Any]], T], primary_first: bool = False) -> T:
        """`work(conn)` in a read-only REPEATABLE READ transaction (one snapshot) on a replica, else the primary
        (with `primary_first`, on the primary, else a replica: for what a replica may not have replayed yet).

        A server that fails is skipped (a replica for `REPLICA_BACKOFF_S`) and the work runs again on the next, so
        `work` must only read. The last server's failure is raised.
        """
        servers = self._read_servers(primary_first)
        for server in servers:
            try:
                with self._connect(server) as conn:
                    if server is not self._primary and not self._caught_up(server, conn):
                        if server is servers[-1]:
                            raise StoreUnavailableError(
                                f"the primary is unreachable and {server.name} has not replayed this process's last "
                                "write yet; retry"
                            )
                        continue
                    # BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY, in the same round trip as the BEGIN
                    conn.isolation_level, conn.read_only = psycopg.IsolationLevel.REPEATABLE_READ, True
                    with conn.pipeline(), conn.transaction():  # BEGIN travels with the first statement
                        _limit_to_deadline(conn)
                        return work(conn)
            except StoreUnavailableError as exc:
                if server is servers[-1]:
                    raise
                if server is not self._primary:
                    server.down_until = time.monotonic() + REPLICA_BACKOFF_S
                logger.warning("%s; reading from the next server", exc)
        raise AssertionError("unreachable: the last server answers or raises")  # pragma: no cover

    def _read_servers(self, primary_first: bool = False) -> list[_Server]:
        """The servers a read tries, in order: the replicas not backing off (round robin), then the primary."""
        if self._next_replica is None:
            return [self._primary]
        now = time.monotonic()
        first = next(self._next_replica)
        order = self._replicas[first:] + self._replicas[:first]
        replicas = [server for server in order if server.down_until <= now]
        return [self._primary, *replicas] if primary_first else [*replicas, self._primary]

    def _caught_up(self, server: _Server, conn: psycopg.Connection[Any]) -> bool:
        """Whether `server` has replayed this process's last write (asked only while it may not have)."""
        written = self._written
        if server.replayed >= written:
            return True
        row = conn.execute("SELECT pg_last_wal_replay_lsn()::text").fetchone()
        server.replayed = _lsn(row[0]) if row and row[0] else 0
        return server.replayed >= written

    def _prepare(self, conn: psycopg.Connection[Any]) -> None:
        """Create the schema and registry on the primary, once per process."""
        if self._prepared:
            return
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('logitsearch schema'))")
            for statement in registry_statements():
                conn.execute(statement)
        self._prepared = True

    @contextmanager
    def _connect(self, server: _Server) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection, with the driver's errors as domain errors."""
        try:
            with server.pool.connection() as conn:
                yield conn
        except PoolTimeout as exc:
            raise StoreUnavailableError(
                f"PostgreSQL is unreachable ({server.name}: no connection within "
                f"{server.pool.timeout:g} s); retry once it is back"
            ) from exc
        except psycopg.errors.QueryCanceled as exc:
            raise DeadlineExceededError(f"PostgreSQL stopped a statement that ran past its time limit ({exc})") from exc
        except psycopg.errors.ReadOnlySqlTransaction as exc:
            raise StoreUnavailableError(
                f"{server.name} is a read-only standby; point LOGITSEARCH_PG_URL at the primary"
            ) from exc
        except psycopg.errors.UndefinedTable as exc:
            raise IndexCorruptedError(
                f"a table of this index is missing in PostgreSQL ({exc}); was it dropped there?"
            ) from exc
        except psycopg.IntegrityError as exc:
            raise StoreConflictError(f"PostgreSQL refused a conflicting write: {exc}") from exc
        except psycopg.DataError as exc:
            raise InvalidInputError(f"PostgreSQL refused the data: {exc}") from exc
        except psycopg.errors.SqlclientUnableToEstablishSqlconnection as exc:  # postgres_fdw could not reach a shard
            raise StoreUnavailableError(
                f"a shard server of this index is unreachable ({' '.join(str(exc).split())}); the other indexes keep "
                "serving, and this one serves again once the shard is back"
            ) from exc
        except psycopg.OperationalError as exc:
            raise StoreUnavailableError(f"PostgreSQL connection lost ({server.name}): {exc}; retry") from exc


def _configure_primary(conn: psycopg.Connection[Any]) -> None:
    """Create the pgvector extension if the database lacks it (needs the right to), then load its types."""
    if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is None:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
    register_vector(conn)


def _limit_to_deadline(conn: psycopg.Connection[Any]) -> None:
    """Shorten this transaction's statement timeout to the request's deadline, when it is sooner."""
    deadline = current_deadline()
    if deadline is None:
        return
    remaining_ms = max(1, round((deadline - time.monotonic()) * 1000))
    conn.execute(sql.SQL("SET LOCAL statement_timeout = {}").format(sql.Literal(remaining_ms)))
