"""The PostgreSQL + pgvector store: `PgDatabase` (pools, routing) and `PgVectorStore` (one index)."""

from .database import PgDatabase as PgDatabase
from .database import PgOptions as PgOptions
from .store import PgIndexSpec as PgIndexSpec
from .store import PgVectorStore as PgVectorStore
