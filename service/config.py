"""Service settings: environment variables with the `LOGITSEARCH_` prefix, or CLI flags."""

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_MODEL = "digits-cnn"
DEFAULT_INDEX = "default"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
#: Index names: also directory names and URL path segments.
INDEX_NAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,62}"


class Settings(BaseSettings):
    """Everything configurable; only this module reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix="LOGITSEARCH_", env_file=".env", env_ignore_empty=True, extra="ignore", protected_namespaces=()
    )

    data_dir: Path = Field(Path("./data"), description="Root of models/ and indexes/")
    host: str = Field("127.0.0.1", description="Address to bind")
    port: int = Field(8000, ge=1, le=65535, description="Port to bind")
    model: str = Field(
        DEFAULT_MODEL, description="Model of the default index: DATA_DIR/models/MODEL.safetensors + .json"
    )
    index: str = Field(
        DEFAULT_INDEX,
        pattern=f"^{INDEX_NAME_PATTERN}$",
        description="Default index, the one of the routes without /indexes/{name}: DATA_DIR/indexes/INDEX/",
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Torch device for the classifier")
    faiss_gpu: Literal["auto", "true", "false"] = Field("auto", description="Keep the FAISS index on the GPU")
    num_threads: int = Field(
        default_factory=lambda: os.cpu_count() or 1, ge=1, description="Torch, FAISS and divergence-kernel threads"
    )
    api_key: SecretStr | None = Field(
        None, description="Key every endpoint but /health and /ready needs, for reads and writes (unset: open)"
    )
    read_only_api_key: SecretStr | None = Field(
        None, description="A second key that may read (search, embed, list...) but gets 403 on writes"
    )
    protect_reads: bool | None = Field(
        None, description="Deprecated: reads need a key whenever API_KEY is set; false still leaves them open"
    )
    allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated Host names served (*.example.com, * for any); "
        "default: the local names when HOST is local, else any",
    )
    max_k: int = Field(4096, ge=1, description="Largest k a search may ask for")
    max_batch: int = Field(1024, ge=1, description="Most queries, items or images in one request")
    max_results: int = Field(
        100_000, ge=1, description="Most neighbours one search may return: k x queries (422 above)"
    )
    max_image_bytes: int = Field(10 * 2**20, ge=1, description="Largest encoded image accepted")
    max_image_pixels: int = Field(25_000_000, ge=1, description="Largest decoded image (width x height)")
    max_concurrent_decodes: int = Field(
        2, ge=1, description="Images decoded at once, all requests together (each up to 4 bytes x max_image_pixels)"
    )
    max_indexes: int = Field(
        1000,
        ge=1,
        description="Most indexes one service holds (507 past it); fewer when the open-file limit leaves room for "
        "fewer: each FAISS index keeps 2 files open",
    )
    max_eval_queries: int = Field(500, ge=1, description="Most queries one POST /v1/evaluate may sample or send")
    max_eval_items: int = Field(
        20_000, ge=2, description="Most items each POST /v1/evaluate query is ranked against (larger indexes: sampled)"
    )
    max_eval_work: int = Field(
        40_000_000, ge=1, description="Most query x item x temperature rankings in one POST /v1/evaluate (~1 us each)"
    )
    max_body_bytes: int = Field(
        32 * 2**20, ge=1, description="Largest request body (413 above; parsing holds the GIL ~30 ms per MB)"
    )
    request_timeout_s: float = Field(120.0, gt=0, description="Wall-clock limit of one request (503 above)")
    max_header_bytes: int = Field(
        65_536, ge=1024, description="Largest request line + headers of one request (431 above)"
    )
    header_timeout_s: float = Field(
        10.0, gt=0, description="Time a client has to send a request line and headers (408, connection closed)"
    )
    pg_url: SecretStr | None = Field(
        None,
        description="PostgreSQL (+ pgvector) primary for indexes with store pgvector, e.g. postgresql://user:pw@host/db",
    )
    pg_read_urls: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated read replicas of PG_URL: searches and reads go there (after they replay a write)",
    )
    pg_statement_timeout_s: float = Field(30.0, gt=0, description="Limit of one SQL statement (503 above)")
    pg_connect_timeout_s: float = Field(5.0, gt=0, description="How long a request waits for a PostgreSQL connection")
    pg_pool_size: int = Field(8, ge=1, description="Most connections to each PostgreSQL server")
    pg_citus: bool = Field(
        False, description="Create pgvector index tables distributed by id (PG_URL is a Citus coordinator)"
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Logging level")
    plugins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated modules imported at start, e.g. to register models"
    )

    @field_validator("plugins", mode="before")
    @classmethod
    def _split_plugins(cls, value: Any) -> Any:
        return [name.strip() for name in value.split(",") if name.strip()] if isinstance(value, str) else value

    @field_validator("pg_read_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: Any) -> Any:
        return [url.strip() for url in value.split(",") if url.strip()] if isinstance(value, str) else value

    @field_validator("allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        return [name.strip().lower() for name in value.split(",") if name.strip()] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_keys(self) -> Self:
        if self.read_only_api_key is not None and self.api_key is None:
            raise ValueError("READ_ONLY_API_KEY needs API_KEY: set the read-write key too")
        if self.read_only_api_key is not None and self.api_key is not None:
            if self.read_only_api_key.get_secret_value() == self.api_key.get_secret_value():
                raise ValueError("READ_ONLY_API_KEY must differ from API_KEY")
        return self

    def resolved_allowed_hosts(self) -> list[str]:
        """`allowed_hosts`, or by default the local names when bound to a local address (DNS rebinding)."""
        if self.allowed_hosts:
            return self.allowed_hosts
        return list(LOCAL_HOSTS) if self.host in LOCAL_HOSTS else ["*"]

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def indexes_dir(self) -> Path:
        return self.data_dir / "indexes"

    @property
    def index_dir(self) -> Path:
        return self.indexes_dir / self.index


@lru_cache
def get_settings() -> Settings:
    """The settings from the environment, read once."""
    return Settings()
