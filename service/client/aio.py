"""`AsyncClient`: the asyncio Python client of the REST API, the same methods as `Client`, awaited."""

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self, TypeVar

import httpx

from ..evaluation_schemas import EvaluateResponse
from ..schemas import (
    AgreementResponse,
    AnalysisResponse,
    CountResponse,
    DeletedCount,
    DeleteResponse,
    DivergenceResponse,
    DropResponse,
    EmbedResponse,
    IndexDescription,
    InfoResponse,
    ItemOut,
    ItemsPage,
    Limits,
    ModelDescription,
    SearchResponse,
    UpsertResponse,
)
from . import calls
from .base import ClientBase, plan_batches
from .calls import Call, Thumbnail
from .encoding import ImageLike, LogitsLike
from .errors import LogitSearchError, Unavailable

T = TypeVar("T")
Filter = Mapping[str, Any]


class AsyncClient(ClientBase):
    """An asyncio client; use it as an async context manager, or await `close()`.

    Methods that act on an index take `index=NAME` (default: the service's default index). Results are
    the service's own response models; errors raise a `LogitSearchError` subclass carrying the server's
    `detail` (`NotFound`, `InvalidRequest`, `Unauthorized`, `Unavailable`...).

    Args:
        url, api_key, timeout, retry, seed: see `ClientBase`.
        http: an `httpx.AsyncClient` to use instead of a new one (its base URL and headers are left as they are).
    """

    def __init__(
        self, url: str = "http://127.0.0.1:8000", *, http: httpx.AsyncClient | None = None, **options: Any
    ) -> None:
        super().__init__(url, **options)
        self._http = http or httpx.AsyncClient(base_url=self.url, headers=self._headers, timeout=self._timeout)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def _send(self, call: Call[T]) -> T:
        delays = self.retry.delays(self._rng)
        while True:
            try:
                response = await self._http.request(call.method, call.path, **self._request_args(call))
            except httpx.TransportError as exc:
                if not self._retryable(call, None) or (delay := next(delays, None)) is None:
                    raise self._connection_failed(call, f"{self.url}{call.path}", exc) from exc
            else:
                if not self._retryable(call, response) or (delay := next(delays, None)) is None:
                    return self._read(call, response)
            await asyncio.sleep(delay)

    # -- service -----------------------------------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        """Liveness: `{"status": "ok"}`."""
        return await self._send(calls.health())

    async def ready(self) -> bool:
        """Whether the default index and its model are loaded (`GET /ready` is 200)."""
        try:
            return await self._send(calls.ready())
        except Unavailable:
            return False

    async def metrics(self) -> str:
        """Prometheus metrics, as text."""
        return await self._send(calls.metrics())

    async def info(self) -> InfoResponse:
        """Version, default model and index, and the request limits."""
        return await self._send(calls.info())

    async def limits(self) -> Limits:
        """The service's request limits (read once from `info()`)."""
        if self._limits is None:
            self._limits = (await self.info()).limits
        return self._limits

    async def list_models(self) -> list[ModelDescription]:
        """Every model the service has."""
        return await self._send(calls.list_models())

    async def embed(
        self, images: Sequence[ImageLike], *, temperature: float = 1.0, model: str | None = None
    ) -> EmbedResponse:
        """Logits, probabilities and predicted class of each image (with `model`, else the default one)."""
        return await self._send(calls.embed(images, temperature, model))

    # -- indexes -----------------------------------------------------------------------------------------------

    async def list_indexes(self) -> list[IndexDescription]:
        """Every index with its model, store, size and status."""
        return await self._send(calls.list_indexes())

    async def get_index(self, name: str) -> IndexDescription:
        """One index."""
        return await self._send(calls.get_index(name))

    async def create_index(
        self,
        name: str,
        model: str,
        *,
        store: str | None = None,
        index_type: str | None = None,
        thumbnails: bool | None = None,
        temperatures: Sequence[float] | None = None,
        metrics: Sequence[str] | None = None,
        codec: str | None = None,
        target_recall: float | None = None,
        originals: str | None = None,
        rerank_codec: str | None = None,
        parameters: dict[str, int] | None = None,
        shards: Sequence[str | dict[str, str]] | None = None,
    ) -> IndexDescription:
        """Create an empty index bound to `model` (`Conflict` if it exists); `index_type` "hnsw" or "ivf" with the
        metrics and temperatures it serves approximately (POST /v1/indexes)."""
        options = {
            "name": name,
            "model": model,
            "store": store,
            "index_type": index_type,
            "thumbnails": thumbnails,
            "temperatures": temperatures,
            "metrics": metrics,
            "codec": codec,
            "target_recall": target_recall,
            "originals": originals,
            "rerank_codec": rerank_codec,
            "parameters": parameters,
            "shards": shards,
        }
        return await self._send(calls.create_index(options))

    async def replace_shard(
        self, name: str, shard: int, url: str | None = None, *, promote: bool | None = None
    ) -> IndexDescription:
        """Serve shard `shard` of a sharded pgvector index from the server at `url` (its standby: `promote`);
        without `url`, from the shard's own `standby_url`, promoted."""
        return await self._send(calls.replace_shard(name, shard, url, promote))

    async def drop_index(self, name: str) -> DropResponse:
        """Drop an index and its items for good."""
        return await self._send(calls.drop_index(name))

    # -- items -------------------------------------------------------------------------------------------------

    async def upsert(
        self,
        ids: Sequence[str],
        logits: LogitsLike | None = None,
        *,
        images: Sequence[ImageLike] | None = None,
        metadata: Sequence[Mapping[str, Any]] | None = None,
        index: str | None = None,
        batch_size: int | None = None,
    ) -> UpsertResponse:
        """Insert or replace items given by logits `(n, C)` or by images, in batches within the server's limits.

        Each batch is stored whole or not at all, in order. When one fails, the batches before it stay
        stored: the exception's `upserted` attribute says how many items that is.
        """
        items = calls.item_dicts(ids, logits, images, metadata)
        upserted, count = 0, 0
        for batch in plan_batches(items, await self.limits(), batch_size):
            try:
                answer = await self._send(calls.upsert(items[batch], index))
            except LogitSearchError as exc:
                exc.upserted = upserted
                raise
            upserted, count = upserted + answer.upserted, answer.count
        return UpsertResponse(upserted=upserted, count=count)

    async def list_items(
        self,
        offset: int = 0,
        limit: int = 100,
        *,
        filter: Filter | None = None,
        order: str | None = None,
        cursor: str | None = None,
        temperature: float | None = None,
        index: str | None = None,
    ) -> ItemsPage:
        """A page of the items matching `filter` in `order` (insertion by default; `"confidence:asc"`, ...), after
        `cursor` (the previous page's `next`), and how many match; or, with `offset`, by position."""
        listing = {"filter": filter, "order": order, "cursor": cursor, "temperature": temperature}
        wanted = any(value is not None for value in listing.values())
        return await self._send(calls.list_items(offset, limit, index, listing if wanted else None))

    async def iter_items(
        self,
        *,
        filter: Filter | None = None,
        order: str | None = None,
        temperature: float | None = None,
        index: str | None = None,
        page_size: int = 1000,
    ) -> AsyncIterator[ItemOut]:
        """Every item matching `filter` in `order`, page by page after each page's cursor: an item stored unchanged
        for the whole scan comes exactly once, whatever is written meanwhile."""
        cursor = None
        while True:
            listing = {"filter": filter, "order": order, "cursor": cursor, "temperature": temperature}
            page = await self._send(calls.list_items(0, page_size, index, listing))
            for item in page.items:
                yield item
            if page.next is None:
                return
            cursor = page.next

    async def count(
        self,
        *,
        filter: Filter | None = None,
        group_by: str | None = None,
        temperature: float | None = None,
        limit: int | None = None,
        index: str | None = None,
    ) -> CountResponse:
        """How many items match `filter`; with `group_by` (a metadata key or `"predicted"`), how many per value."""
        return await self._send(
            calls.count(index, filter=filter, group_by=group_by, temperature=temperature, limit=limit)
        )

    async def delete_items(
        self, filter: Filter, *, all: bool = False, temperature: float | None = None, index: str | None = None
    ) -> DeletedCount:
        """Remove every item matching `filter` at once; `{}` (every item) only with `all=True`."""
        return await self._send(calls.delete_items(index, filter=filter, all=all or None, temperature=temperature))

    async def get_item(self, item_id: str, *, index: str | None = None) -> ItemOut:
        """One item: its logits and metadata (`NotFound` if absent)."""
        return await self._send(calls.get_item(item_id, index))

    async def delete_item(self, item_id: str, *, index: str | None = None) -> DeleteResponse:
        """Remove one item, and its thumbnail."""
        return await self._send(calls.delete_item(item_id, index))

    async def thumbnail(self, item_id: str, *, index: str | None = None) -> Thumbnail:
        """The item's thumbnail (`NotFound` when it has none: it was not added from an image)."""
        return await self._send(calls.thumbnail(item_id, index))

    # -- search ------------------------------------------------------------------------------------------------

    async def search(
        self,
        logits: LogitsLike | None = None,
        *,
        ids: Sequence[str] | None = None,
        images: Sequence[ImageLike] | None = None,
        k: int = 10,
        metric: str = "l2",
        temperature: float = 1.0,
        filter: Filter | None = None,
        index: str | None = None,
        exact: bool | None = None,
        target_recall: float | None = None,
    ) -> SearchResponse:
        """The k nearest items of each query: logits `(C,)` or `(n, C)`, stored `ids`, or `images`; on an
        approximate index, `exact=True` forces the exact scan and `target_recall` asks for another recall@10."""
        body = {
            "queries": calls.queries(logits, ids, images),
            "k": k,
            "metric": metric,
            "temperature": temperature,
            "exact": exact,
            "target_recall": target_recall,
        }
        return await self._send(calls.search({**body, "filter": dict(filter) if filter else None}, index))

    async def search_image(
        self, image: ImageLike, *, k: int = 10, metric: str = "l2", temperature: float = 1.0, index: str | None = None
    ) -> SearchResponse:
        """The k nearest items of one image (a path, bytes, a PIL image or a uint8 array)."""
        return await self._send(
            calls.search_image(image, {"k": k, "metric": metric, "temperature": temperature}, index)
        )

    async def agreement(
        self,
        logits: LogitsLike | None = None,
        *,
        id: str | None = None,
        image: ImageLike | None = None,
        k: int = 10,
        metric: str = "l2",
        reference: str = "ce",
        temperature: float = 1.0,
        filter: Filter | None = None,
        index: str | None = None,
    ) -> AgreementResponse:
        """How closely `metric`'s top-k follows the exact `reference` (CE) top-k for one query."""
        query = calls.queries(logits, [id] if id is not None else None, [image] if image is not None else None)
        body = {"query": query[0], "k": k, "metric": metric, "reference": reference, "temperature": temperature}
        return await self._send(calls.agreement({**body, "filter": dict(filter) if filter else None}, index))

    async def divergence(
        self,
        a: LogitsLike,
        b: LogitsLike,
        *,
        input: str = "logits",
        temperature: float = 1.0,
        base: str = "e",
        pairwise: bool = False,
        measures: Sequence[str] | None = None,
    ) -> DivergenceResponse:
        """Divergences between rows of a and b (or every pair), see docs/metrics.md."""
        body = calls.divergence_body(a, b, input, temperature, base, pairwise, measures)
        return await self._send(calls.divergence(body))

    async def analyse(self, kind: str, *, index: str | None = None, **options: Any) -> AnalysisResponse:
        """Run an analysis on the index's items (`label-issues`, `near-duplicates`, `uncertain`, `confusion`,
        `distance-matrix`, `calibration`); options: `POST .../analyses/{kind}`'s body (filter, temperature, ...)."""
        return await self._send(calls.analyse(kind, index, options))

    async def evaluate(self, *, index: str | None = None, **options: Any) -> EvaluateResponse:
        """How closely each search metric follows the CE ranking (options: `POST /v1/evaluate`'s body)."""
        return await self._send(calls.evaluate(calls.evaluate_body(options), index))
