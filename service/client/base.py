"""What the sync and the async client share: configuration, retry decisions, batching, error mapping."""

import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import numpy as np

from ..schemas import Limits
from .calls import Call
from .errors import ConnectionFailed, error_for, unexpected_response

T = TypeVar("T")

DEFAULT_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class Retry:
    """Retries of idempotent calls on 503 and connection errors, with full-jitter exponential backoff.

    Attempt i (0-based) waits a random time in [0, min(max_delay_s, delay_s * 2**i)] before the next one.
    """

    attempts: int = 4
    delay_s: float = 0.2
    max_delay_s: float = 5.0

    def delays(self, rng: random.Random) -> Iterator[float]:
        for attempt in range(self.attempts - 1):
            yield rng.uniform(0, min(self.max_delay_s, self.delay_s * 2**attempt))


NO_RETRY = Retry(attempts=1)


class ClientBase:
    """Settings shared by `Client` and `AsyncClient`.

    Args:
        url: the service's base URL.
        api_key: sent as `Authorization: Bearer <key>` when given.
        timeout: seconds per request (connect, read, write), or an `httpx.Timeout`.
        retry: retries of idempotent calls; `NO_RETRY` turns them off.
        seed: seeds the backoff jitter (reproducible waits in tests).
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        api_key: str | None = None,
        timeout: float | httpx.Timeout = 60.0,
        retry: Retry = Retry(),  # noqa: B008 - frozen, so one shared default is safe
        seed: int | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.retry = retry
        self._timeout = timeout
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._rng = random.Random(seed)
        self._limits: Limits | None = None

    @staticmethod
    def _request_args(call: Call[Any]) -> dict[str, Any]:
        args: dict[str, Any] = {"params": call.params, "headers": dict(call.headers)}
        if call.json is not None:
            # Sent as bytes with the header set: httpx's own `json=` re-encodes with ensure_ascii and no NaN check.
            args["content"] = json.dumps(call.json, allow_nan=False, separators=(",", ":")).encode()
            args["headers"]["content-type"] = "application/json"
        if call.files is not None:
            args["files"] = call.files
            args["data"] = call.data
        return args

    @staticmethod
    def _retryable(call: Call[Any], response: httpx.Response | None) -> bool:
        return call.idempotent and (response is None or response.status_code == 503)

    @staticmethod
    def _read(call: Call[T], response: httpx.Response) -> T:
        if response.is_error:
            raise error_for(response)
        try:
            return call.read(response)
        except (ValueError, KeyError, TypeError) as exc:  # pydantic's ValidationError and JSONDecodeError included
            raise unexpected_response(response, exc) from exc

    @staticmethod
    def _connection_failed(call: Call[Any], url: str, exc: httpx.TransportError) -> ConnectionFailed:
        return ConnectionFailed(f"cannot reach the service ({type(exc).__name__}: {exc})", method=call.method, url=url)


def plan_batches(items: Sequence[dict[str, Any]], limits: Limits, batch_size: int | None) -> list[slice]:
    """Consecutive slices of `items` that each fit the server's limits: at most `max_batch` items (or
    `batch_size`, when smaller) and about half of `max_body_bytes` of JSON.
    """
    most = min(batch_size or limits.max_batch, limits.max_batch)
    budget = limits.max_body_bytes // 2
    batches: list[slice] = []
    start, size = 0, 0
    for i, item in enumerate(items):
        item_bytes = _json_bytes(item)
        if i > start and (i - start >= most or size + item_bytes > budget):
            batches.append(slice(start, i))
            start, size = i, 0
        size += item_bytes
    if start < len(items):
        batches.append(slice(start, len(items)))
    return batches


def _json_bytes(item: dict[str, Any]) -> int:
    """About how many bytes `item` takes in a request body; a logits array as base64 float32 (4/3 of 4 per value)."""
    vector = item.get("logits")
    if isinstance(vector, np.ndarray):
        rest = {key: value for key, value in item.items() if key != "logits"}
        return len(json.dumps(rest, separators=(",", ":"))) + 16 * vector.size // 3 + 8
    return len(json.dumps(item, separators=(",", ":")))
