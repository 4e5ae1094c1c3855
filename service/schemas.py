"""The wire: request and response bodies of the REST API (DESIGN.md), their names and limits, the `logits_b64` codec.

A leaf: it imports pydantic and numpy only, so that the Python client (and anything else that speaks to the
service) loads no torch, FAISS or numba. tests/service/test_schemas.py keeps it so.
"""

import base64
import binascii
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Self

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator

if TYPE_CHECKING:
    from models import ModelSpec

# The names and limits the API takes. The libraries that implement them keep their own definitions, since
# imports flow service -> {indexes, evaluation} and never back; tests/service/test_schemas.py asserts they agree.
#: Search metrics (indexes.metrics.SEARCH_METRICS).
SEARCH_METRICS: tuple[str, ...] = ("l2", "l2_centered", "ce", "kl", "kl_reverse", "js", "tri", "cosine")
#: Divergence measures, the default set of `/v1/divergence` (indexes.divergences.MEASURES).
MEASURES: tuple[str, ...] = ("ce", "kl", "kl_reverse", "js", "tri", "euclidean")
#: Measures `/v1/divergence` computes on request only (indexes.divergences.EXTRA_MEASURES).
EXTRA_MEASURES: tuple[str, ...] = ("l2", "l2_centered", "cosine")
#: Characters in an item id (indexes.validation.MAX_ID_LENGTH).
MAX_ID_LENGTH = 256
#: Fields a listing is ordered by (indexes.pages.ORDER_FIELDS).
ORDER_FIELDS: tuple[str, ...] = ("insertion", "confidence", "margin", "entropy")
#: Index names (service.config.INDEX_NAME_PATTERN).
INDEX_NAME_PATTERN = r"[a-z0-9][a-z0-9_-]{0,62}"
#: Metrics an evaluation ranks against the exact CE ranking (evaluation.measures.RANKING_METRICS).
RANKING_METRICS: tuple[str, ...] = ("l2", "l2_centered", "kl", "js", "tri", "cosine")
#: An evaluation's temperatures by default, and at most how many (evaluation.options).
DEFAULT_TEMPERATURES: tuple[float, ...] = (0.1, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 100.0)
MAX_TEMPERATURES = 16
#: An evaluation's largest k (evaluation.options.MAX_K).
MAX_EVAL_K = 1000


def encode_vectors(vectors: np.ndarray) -> str:
    """`(n, C)` values -> the `logits_b64` encoding: base64 of their little-endian float32 bytes, row after row."""
    return base64.b64encode(np.ascontiguousarray(vectors, dtype="<f4").tobytes()).decode("ascii")


def decode_vectors(text: str, shape: tuple[int, int], where: str) -> np.ndarray:
    """The values of a `logits_b64` encoding of `shape` `(n, C)`.

    Args:
        text: the base64 string (line breaks are ignored).
        shape: `(n, C)` the values must fill.
        where: the field, for messages.

    Returns:
        `(n, C)` float32, read-only (not checked for finiteness).

    Raises:
        ValueError: not base64, or not `n x C x 4` bytes; the message says what to send.
    """
    try:
        data = base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(
            f"{where} is not valid base64 ({exc}): send the logits' little-endian float32 bytes, base64-encoded"
        ) from exc
    needed = 4 * shape[0] * shape[1]
    if len(data) != needed:
        raise ValueError(
            f"{where} holds {len(data)} bytes, but shape {list(shape)} needs {needed} (4 bytes per float32)"
        )
    return np.frombuffer(data, dtype="<f4").reshape(shape)


Temperature = Annotated[float, Field(gt=0, allow_inf_nan=False, description="Softmax temperature T > 0")]
Base64Image = Annotated[str, Field(min_length=1, description="Base64 image bytes (a data: URL prefix is accepted)")]
Metadata = dict[str, Any]

# The schema is as strict as the validation where JSON Schema can say it (clients and fuzzers generate from it);
# the checks themselves stay in the library, with their messages.
#: No control character (C0, DEL, C1): the ids the service refuses that a pattern can name (unassigned code points
#: are refused too, but no regular expression lists them).
_PRINTABLE = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
ItemId = Annotated[
    str,
    Field(
        description="1-256 printable characters",
        json_schema_extra={"minLength": 1, "maxLength": MAX_ID_LENGTH, "pattern": _PRINTABLE},
    ),
]
_LOGITS_SCHEMA = {
    "type": "array",
    "items": {"type": "number"},
    "minItems": 1,
    "description": "Raw logits, one per class",
}
_LOGITS_B64_SCHEMA = {
    "type": "string",
    "minLength": 1,
    "description": "The logits as base64 of C little-endian float32 values (4C bytes): binary, for bulk traffic",
}
_IMAGE_SCHEMA = {"type": "string", "minLength": 1, "description": "Base64 image bytes (a data: URL prefix is accepted)"}
_ID_SCHEMA = {"type": "string", "minLength": 1, "maxLength": MAX_ID_LENGTH, "description": "A stored item's id"}
OptionalLogits = Annotated[list[float] | None, WithJsonSchema(_LOGITS_SCHEMA)]
OptionalLogitsB64 = Annotated[str | None, WithJsonSchema(_LOGITS_B64_SCHEMA)]
Shape = Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=2, max_length=2)]
Encoding = Literal["json", "base64"]
OptionalImage = Annotated[Base64Image | None, WithJsonSchema(_IMAGE_SCHEMA)]
OptionalId = Annotated[str | None, WithJsonSchema(_ID_SCHEMA)]


def _exactly_one_of(*names: str) -> dict[str, Any]:
    return {"oneOf": [{"required": [name]} for name in names]}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _OneSource(Strict):
    """A vector given as logits (JSON numbers or base64 float32), an image, or (for queries) a stored id: exactly
    one of them."""

    _sources: ClassVar[tuple[str, ...]] = ("logits", "logits_b64", "image")

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        given = [name for name in self._sources if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(self._sources)}; got {', '.join(given) or 'none'}")
        return self


class ItemIn(_OneSource):
    model_config = ConfigDict(json_schema_extra=_exactly_one_of("logits", "logits_b64", "image"))

    id: ItemId
    logits: OptionalLogits = None
    logits_b64: OptionalLogitsB64 = None
    image: OptionalImage = None
    metadata: Metadata = Field(default_factory=dict, description="JSON object stored with the item")


class UpsertRequest(Strict):
    """Items one object each (`items`), or a whole batch as columns: `ids`, the logits as one `logits_b64` of
    `shape` [n, C], and optionally one `metadata` object per id; the columnar form is the bulk one."""

    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["items"]}, {"required": ["ids", "logits_b64", "shape"]}]}
    )

    items: Annotated[list[ItemIn], Field(min_length=1)] | None = Field(
        None, description="1..MAX_BATCH items (or the whole batch as ids + logits_b64 + shape)"
    )
    ids: Annotated[list[ItemId], Field(min_length=1)] | None = Field(None, description="The batch's n ids")
    logits_b64: str | None = Field(
        None, min_length=1, description="The batch's logits: base64 of n x C little-endian float32, row after row"
    )
    shape: Shape | None = Field(None, description="[n, C] of logits_b64")
    metadata: list[Metadata] | None = Field(None, description="With ids: one JSON object per id (default: empty)")

    @model_validator(mode="after")
    def _one_batch(self) -> Self:
        if (self.items is None) == (self.ids is None):
            raise ValueError("give either items, or ids with logits_b64 and shape [n, C]: exactly one of them")
        columns = {"logits_b64": self.logits_b64, "shape": self.shape, "metadata": self.metadata}
        if self.items is not None and (given := [name for name, value in columns.items() if value is not None]):
            raise ValueError(f"{', '.join(given)} go with ids, not with items: put them in each item instead")
        if self.ids is not None and (self.logits_b64 is None or self.shape is None):
            raise ValueError("ids go with logits_b64 and shape [n, C]: give all three")
        if self.shape is not None and self.ids is not None and self.shape[0] != len(self.ids):
            raise ValueError(
                f"{len(self.ids)} ids but shape {self.shape} has {self.shape[0]} rows: give one row per id"
            )
        if self.metadata is not None and self.ids is not None and len(self.metadata) != len(self.ids):
            raise ValueError(f"{len(self.ids)} ids but {len(self.metadata)} metadata objects: give one per id")
        return self

    @property
    def num_items(self) -> int:
        return len(self.items) if self.items is not None else len(self.ids or ())


class UpsertResponse(BaseModel):
    upserted: int
    count: int


class ItemOut(BaseModel):
    id: str
    logits: list[float] | None = Field(None, description="Absent with encoding=base64")
    logits_b64: str | None = Field(None, description="With encoding=base64: C little-endian float32, base64")
    metadata: Metadata


class ItemsPage(BaseModel):
    items: list[ItemOut] = Field(
        description="In the listing's order: insertion by default (an upsert of a stored id keeps its place)"
    )
    count: int = Field(description="Items the listing holds: those matching its filter (every item without one)")
    next: str | None = Field(
        None, description="Cursor of the next page (absent on the last): pass it as `cursor` with the same listing"
    )


class DeleteResponse(BaseModel):
    deleted: str


class Query(_OneSource):
    _sources: ClassVar[tuple[str, ...]] = ("logits", "logits_b64", "image", "id")
    model_config = ConfigDict(json_schema_extra=_exactly_one_of("logits", "logits_b64", "image", "id"))

    logits: OptionalLogits = None
    logits_b64: OptionalLogitsB64 = None
    image: OptionalImage = None
    id: OptionalId = None


_FILTER_DOC = (
    'A JSON object (docs/filters.md): {"field": value} is equality (JSON types: 3 matches 3.0, not "3" or true; a '
    'value that some items hold as the other type, 7 and "7", is a 422); {"field": {"$op": value}} with $eq, $ne, '
    "$in, $nin, $gt, $gte, $lt, $lte, $exists; $and / $or (lists of filters) and $not (a filter), at most 8 levels "
    "and 64 conditions. Fields: metadata keys, and predicted (argmax class: index or label name), confidence, "
    "margin and entropy at the request's temperature"
)
_FILTER_EXAMPLE = {"split": "test", "predicted": {"$in": [3, 8]}, "confidence": {"$lt": 0.6}}
#: A filter as the wire carries it: read and checked by `indexes.filters`, not here (no torch, no faiss).
FilterSpec = dict[str, Any]


_ORDER_DOC = (
    "insertion (default), confidence, margin or entropy (at `temperature`), optionally :asc (default) or :desc; "
    "ties in insertion order"
)
ORDER_PATTERN = f"^(({'|'.join(ORDER_FIELDS)})(:(asc|desc))?)?$"
Order = Annotated[
    str,
    Field(
        description=_ORDER_DOC, examples=["confidence:asc"], max_length=32, json_schema_extra={"pattern": ORDER_PATTERN}
    ),
]
PageLimit = Annotated[int, Field(ge=1, le=1000, description="Items per page")]


class ListRequest(Strict):
    """A listing of items, page by page: `POST .../items/list`, the body form of `GET .../items`."""

    filter: FilterSpec | None = Field(None, description=_FILTER_DOC, examples=[_FILTER_EXAMPLE])
    order: Order = "insertion"
    cursor: str | None = Field(None, description="The `next` of the previous page; none for the first page")
    limit: PageLimit = 100
    temperature: Temperature = 1.0
    encoding: Encoding = Field("json", description="base64: logits as logits_b64 (little-endian float32)")


class CountRequest(Strict):
    filter: FilterSpec | None = Field(None, description=_FILTER_DOC, examples=[_FILTER_EXAMPLE])
    group_by: str | None = Field(
        None, min_length=1, description="A metadata key, or predicted (the argmax class), to count per value"
    )
    temperature: Temperature = 1.0
    limit: int = Field(100, ge=1, le=10_000, description="Groups returned at most, the largest first")


class Group(BaseModel):
    value: Any = Field(description="The metadata value, or the class index when grouping by predicted")
    count: int
    label: str | None = Field(None, description="By predicted: the class's label name, when the model has labels")


class CountResponse(BaseModel):
    count: int = Field(description="Items matching the filter")
    groups: list[Group] | None = Field(None, description="With group_by: count per value, the largest first")
    missing: int | None = Field(None, description="With a metadata group_by: matching items without that key")
    more: bool | None = Field(None, description="With group_by: true when groups were left out past the limit")


class DeleteWhereRequest(Strict):
    filter: FilterSpec = Field(description=_FILTER_DOC + '; {} (every item) only with "all": true')
    all: bool = Field(False, description="Confirms an empty filter: delete every item of the index")
    temperature: Temperature = 1.0


class DeletedCount(BaseModel):
    deleted: int = Field(description="Items removed")
    count: int = Field(description="Items the index holds now")


ANALYSIS_KINDS = (
    "label-issues",
    "near-duplicates",
    "uncertain",
    "confusion",
    "distance-matrix",
    "calibration",
    "projection",
)


class AnalysisRequest(Strict):
    """The options of `POST .../analyses/{kind}`; each kind reads those it needs (docs/analyses.md)."""

    filter: FilterSpec | None = Field(None, description="The items analysed (all: none). " + _FILTER_DOC)
    temperature: Temperature = 1.0
    limit: int = Field(100, ge=1, le=100_000, description="Rows answered at most, the most notable first")
    max_items: int = Field(
        100_000, ge=1, le=1_000_000, description="Items read at most: more matching items are a 422 before any work"
    )
    label_field: str = Field(
        "label",
        min_length=1,
        description="label-issues, confusion: the metadata field of the given class (an index or a label name)",
    )
    metric: str | None = Field(
        None,
        description="label-issues, near-duplicates: the measure neighbours are found with (default js); "
        "distance-matrix: the measure it holds (default js)",
        json_schema_extra={"enum": list(SEARCH_METRICS)},
    )
    k: int = Field(10, ge=1, le=1000, description="label-issues, near-duplicates: neighbours looked at per item")
    threshold: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="near-duplicates: the largest value of a pair (default js 1e-4)"
    )
    by: Literal["confidence", "margin", "entropy"] = Field("margin", description="uncertain: the ranking")
    ids: list[Annotated[str, Field(min_length=1, max_length=256)]] | None = Field(
        None, min_length=1, max_length=1000, description="distance-matrix: the items (else those of the filter)"
    )
    target: float = Field(0.9, gt=0, le=1, description="calibration: the overlap@10 with CE to reach")
    queries: int = Field(100, ge=1, le=2000, description="calibration: stored items sampled as queries")
    seed: int = Field(0, ge=0, description="calibration: seed of the sample and of the bootstrap")


class AnalysisResponse(BaseModel):
    kind: str
    temperature: float
    read: int = Field(description="Items the analysis read (those matching the filter)")
    rows: list[dict[str, Any]] = Field(description="Items, pairs, cells or metrics, the most notable first")
    summary: dict[str, Any] = Field(description="What the rows are about: the parameters used, totals")


class SearchRequest(Strict):
    model_config = ConfigDict(
        json_schema_extra={"oneOf": [{"required": ["queries"]}, {"required": ["logits_b64", "shape"]}]}
    )

    queries: Annotated[list[Query], Field(min_length=1)] | None = Field(
        None, description="1..MAX_BATCH queries (or the whole batch as logits_b64 + shape)"
    )
    logits_b64: str | None = Field(
        None,
        min_length=1,
        description="The whole batch at once: base64 of n x C little-endian float32 logits, row after row",
    )
    shape: Shape | None = Field(None, description="[n, C] of logits_b64")
    k: int = Field(10, ge=1, description="Neighbours per query, 1..MAX_K")
    metric: str = Field(
        "l2",
        description="l2, l2_centered, ce, kl, kl_reverse, js, tri or cosine (docs/metrics.md)",
        json_schema_extra={"enum": list(SEARCH_METRICS)},
    )
    temperature: Temperature = 1.0
    filter: FilterSpec | None = Field(None, description=_FILTER_DOC, examples=[_FILTER_EXAMPLE])
    exact: bool = Field(False, description="On an approximate (hnsw, ivf) index: answer by the exact scan")
    describe: bool = Field(
        False, description="Each hit also carries its predicted class and whether it has a thumbnail (k <= 1000)"
    )
    target_recall: float | None = Field(
        None,
        gt=0,
        le=1,
        description="On an approximate index: the recall@10 the answer must have been measured to reach (default: "
        "the index's target_recall); where none was, the answer is exact",
    )

    @model_validator(mode="after")
    def _one_batch(self) -> Self:
        if (self.queries is None) == (self.logits_b64 is None):
            raise ValueError("give either queries or logits_b64 with shape [n, C], exactly one of them")
        if (self.logits_b64 is None) != (self.shape is None):
            raise ValueError("logits_b64 and shape [n, C] go together: give both or neither")
        return self

    @property
    def num_queries(self) -> int:
        return len(self.queries) if self.queries is not None else self.shape[0] if self.shape is not None else 0

    @property
    def batch_shape(self) -> tuple[int, int]:
        """`(n, C)` of `logits_b64`."""
        assert self.shape is not None  # `_one_batch` ensures it goes with logits_b64
        return self.shape[0], self.shape[1]


_METRIC_DOC = "l2, l2_centered, ce, kl, kl_reverse, js, tri or cosine (docs/metrics.md)"
MetricName = Annotated[str, Field(description=_METRIC_DOC, json_schema_extra={"enum": list(SEARCH_METRICS)})]


class AgreementRequest(Strict):
    query: Query
    k: int = Field(10, ge=1, description="Length of both top-k lists, 1..MAX_K")
    metric: MetricName = "l2"
    reference: MetricName = Field("ce", description="The ranking to check against; the exact CE by default")
    temperature: Temperature = 1.0
    filter: FilterSpec | None = Field(None, description="As in /v1/search; applies to both lists")
    temperatures: list[Annotated[float, Field(gt=0, allow_inf_nan=False)]] | None = Field(
        None, max_length=32, description="Also the overlap and Spearman at each of these temperatures (`sweep`)"
    )


class AgreementResponse(BaseModel):
    """Does `metric` follow `reference` for this query (docs/web.md: "Does L2 follow CE here?")."""

    metric: str
    reference: str
    temperature: float
    k: int
    metric_ids: list[str] = Field(description="The metric's top-k, closest first")
    reference_ids: list[str] = Field(description="The reference's exact top-k, closest first")
    shared: int = Field(description="Items in both lists")
    overlap: float = Field(description="shared / len(reference_ids), in [0, 1]")
    spearman: float | None = Field(
        description="Spearman's rank correlation of the two metrics' values over the items of either list"
    )
    compared: int = Field(description="How many items the correlation is over (the union of the lists)")
    compared_ids: list[str] = Field(description="Those items: the union of both lists")
    metric_values: list[float | None] = Field(description="The metric's exact value for each of compared_ids")
    reference_values: list[float | None] = Field(description="The reference's exact value for each of compared_ids")
    sweep: list[dict[str, float | None]] | None = Field(
        None, description='With "temperatures": {"temperature", "overlap", "spearman"} at each'
    )


class Neighbor(BaseModel):
    id: str
    distance: float
    metadata: Metadata
    predicted: int | None = Field(None, description='With "describe": true: the stored item\'s argmax class')
    thumbnail: bool | None = Field(None, description='With "describe": true: whether the item has a thumbnail')


class SearchResponse(BaseModel):
    metric: str
    temperature: float
    exact: bool = Field(
        True,
        description="Whether these are the exact top k; an approximate index's answers have exact distances and "
        "approximate membership",
    )
    recall_at_10: float | None = Field(
        None, description="Approximate answers: the recall@10 measured on this index for this metric and T"
    )
    results: list[list[Neighbor]]


class EmbedRequest(Strict):
    images: list[Base64Image] = Field(min_length=1)
    temperature: Temperature = 1.0
    encoding: Encoding = Field("json", description="base64: logits and probabilities as little-endian float32")


class EmbedResponse(BaseModel):
    logits: list[list[float]] | None = Field(None, description="Absent with encoding=base64")
    probabilities: list[list[float]] | None = Field(None, description="Absent with encoding=base64")
    logits_b64: str | None = Field(None, description="With encoding=base64: n x C little-endian float32, base64")
    probabilities_b64: str | None = Field(None, description="With encoding=base64: as logits_b64")
    shape: Shape | None = Field(None, description="With encoding=base64: [n, C]")
    predicted: list[int]
    labels: list[str]


Row = Annotated[list[float], Field(min_length=1)]
Matrix = Row | Annotated[list[Row], Field(min_length=1)]


class DivergenceRequest(Strict):
    a: Matrix
    b: Matrix
    input: Literal["logits", "probabilities"] = "logits"
    temperature: Temperature = 1.0
    base: Literal["e", "2"] = "e"
    pairwise: bool = False
    measures: list[Annotated[str, Field(json_schema_extra={"enum": [*MEASURES, *EXTRA_MEASURES]})]] | None = Field(
        None,
        min_length=1,
        description="ce, kl, kl_reverse, js, tri, euclidean (the default: all six), l2, l2_centered, cosine",
    )


class DivergenceResponse(BaseModel):
    input: str
    temperature: float
    base: str
    values: dict[str, list[float | None] | list[list[float | None]]]


class ModelInfo(BaseModel):
    name: str
    num_classes: int
    labels: list[str]
    input_size: tuple[int, int]
    channels: int
    mean: list[float] = Field(description="Per-channel mean subtracted after scaling pixels to [0, 1]")
    std: list[float] = Field(description="Per-channel standard deviation divided by after the mean")
    crop_pct: float | None = Field(description="null: resize to input_size; else resize, aspect kept, and crop")
    interpolation: str = Field(description="Resampling filter of the resize")
    source: dict[str, Any] = Field(description="Where pretrained weights came from; empty if trained here")
    sha256: str

    @classmethod
    def from_spec(cls, spec: "ModelSpec", **extra: Any) -> Self:
        """The fields of a model spec (and of a subclass, given as `extra`)."""
        return cls(
            name=spec.name,
            num_classes=spec.num_classes,
            labels=list(spec.labels),
            input_size=spec.input_size,
            channels=spec.channels,
            mean=list(spec.mean),
            std=list(spec.std),
            crop_pct=spec.crop_pct,
            interpolation=spec.interpolation,
            source=spec.source,
            sha256=spec.sha256,
            **extra,
        )


class IndexInfo(BaseModel):
    name: str
    count: int
    dim: int
    device: str
    index_type: str


class Limits(BaseModel):
    """The request limits of this service (LOGITSEARCH_MAX_*): clients split their work to fit them."""

    max_batch: int
    max_k: int
    max_results: int
    max_image_bytes: int
    max_body_bytes: int


class InfoResponse(BaseModel):
    version: str
    model: ModelInfo
    index: IndexInfo
    limits: Limits


class AnnParameters(Strict):
    m: int | None = Field(
        None, ge=4, le=256, description="HNSW links per node (default 16; 32 for ce and kl, and from 500 classes)"
    )
    ef_construction: int | None = Field(
        None, ge=8, le=4096, description="HNSW build effort (default 64; 128 for ce and kl)"
    )
    nlist: int | None = Field(None, ge=1, le=65536, description="IVF lists (default about 2√N, a power of two)")


class ShardServer(Strict):
    """A shard of a sharded pgvector index: its primary, and the streaming standby that takes over when it is lost."""

    url: str = Field(min_length=1, max_length=1000, description="PostgreSQL URL of the shard's primary")
    standby_url: str | None = Field(
        None,
        min_length=1,
        max_length=1000,
        description="PostgreSQL URL of its streaming standby (synchronous for no lost acknowledged write), which "
        "PUT /v1/indexes/{name}/shards/{i} promotes when no url is given",
    )


class IndexCreateRequest(Strict):
    name: str = Field(
        description="1-63 lowercase letters, digits, '_' or '-', starting with a letter or digit",
        json_schema_extra={"pattern": f"^{INDEX_NAME_PATTERN}$"},
    )
    model: str = Field(description="The model whose logits the index holds (GET /v1/models lists them)")
    store: str = Field(
        "faiss",
        description="Where the vectors live: faiss (embedded, the default) or pgvector (PostgreSQL at PG_URL)",
    )
    index_type: str = Field(
        "flat",
        description="flat: exact search under every metric; hnsw or ivf (faiss): approximate search of the declared "
        "metrics and temperatures, re-ranked exactly; hnsw (pgvector): approximate l2, ce and kl",
    )
    temperatures: list[Annotated[float, Field(gt=0, allow_inf_nan=False)]] | None = Field(
        None,
        min_length=1,
        max_length=16,
        description="pgvector: the temperatures its ce/kl/kl_reverse/js/tri searches may use (default [1.0]); faiss "
        "hnsw/ivf: those served approximately (ce and kl over the whole range, js and tri at each; default [1.0])",
    )
    metrics: list[str] | None = Field(
        None,
        min_length=1,
        description="faiss hnsw/ivf: the metrics served approximately, of l2, l2_centered, cosine, ce, kl, js, tri "
        "(default l2, ce, kl); the others are answered exactly",
    )
    codec: Literal["float32", "float16", "sq8"] = Field(
        "float32", description="faiss hnsw/ivf: how candidate vectors are stored (sq8: 8-bit scalar quantiser)"
    )
    target_recall: float = Field(
        0.95, gt=0, le=1, description="faiss hnsw/ivf: the recall@10 searches reach by default, measured on the index"
    )
    originals: Literal["memory", "disk"] = Field(
        "memory",
        description="faiss hnsw/ivf: where the float32 logits live; disk: a memory-mapped file, so that resident "
        "memory is dominated by the candidate structures (exact searches read the file)",
    )
    rerank_codec: Literal["float32", "float16"] = Field(
        "float32",
        description="faiss hnsw/ivf: the rows approximate searches re-rank; float16: a copy in memory (needs "
        '"originals": "disk"), the answers\' distances still computed from the float32 originals',
    )
    shards: list[Annotated[str, Field(min_length=1, max_length=1000)] | ShardServer] | None = Field(
        None,
        min_length=2,
        max_length=64,
        description="pgvector flat: the shard servers to spread the index over (hash of the id, postgres_fdw from "
        'the coordinator at PG_URL; docs/stores.md), each a PostgreSQL URL or {"url": ..., "standby_url": ...}',
    )
    parameters: AnnParameters | None = Field(
        None, description="faiss hnsw/ivf: build parameters (default: chosen from the number of items and classes)"
    )
    thumbnails: bool = Field(True, description="Keep a thumbnail with each item added from an image")


class ShardReplaceRequest(Strict):
    """`PUT /v1/indexes/{name}/shards/{i}`: serve shard i from another server (its standby, a restored copy)."""

    url: str | None = Field(
        None,
        min_length=1,
        max_length=1000,
        description="PostgreSQL URL of the server to serve the shard from; omitted: the shard's standby_url, promoted",
    )
    promote: bool | None = Field(
        None, description="Promote the server first when it is a standby (pg_promote); default: only without url"
    )


class IndexDescription(BaseModel):
    name: str
    model: str
    store: str
    index_type: str
    temperatures: list[float] | None = Field(
        description="The temperatures a pgvector index searches at; null: every temperature (faiss)"
    )
    created_at: str
    thumbnails: bool = Field(description="Whether items added from images keep a thumbnail")
    status: Literal["ready", "unavailable"]
    reason: str | None = Field(description="Why the index is unavailable (null when ready)")
    count: int | None
    dim: int | None
    device: str | None
    recall_at_10: dict[str, float] | None = Field(
        None,
        description="HNSW and IVF (GET /v1/indexes/{name} only): recall@10 of its approximate searches against exact "
        "ones per metric, on a sample of its items (the lowest over temperatures); null for exact indexes",
    )
    approximate: dict[str, Any] | None = Field(
        None,
        description="faiss hnsw/ivf (GET /v1/indexes/{name} only): options, build status, structures with bytes per "
        "item, and per metric and T the recall@10 measured, the search parameters chosen and when",
    )
    shards: list[str] | None = Field(None, description="A sharded pgvector index: its shard servers (host:port/db)")
    shard_standbys: list[str | None] | None = Field(
        None, description="A sharded pgvector index: each shard's standby (host:port/db), null where it has none"
    )
    calibration: dict[str, Any] | None = Field(
        None,
        description="GET /v1/indexes/{name} only, once `POST .../analyses/calibration` ran on the whole index (and "
        "while it holds as many items): per cheap metric the smallest T where its top-10 overlaps CE's by the target",
    )


class IndexList(BaseModel):
    indexes: list[IndexDescription]


class DropResponse(BaseModel):
    deleted: str


class ModelDescription(ModelInfo):
    arch: str
    training: dict[str, Any] = Field(description="How the model was trained (loss, seed, test accuracy, ...)")
    loaded: bool = Field(description="Whether the service has loaded it (models load on first use)")


class ModelList(BaseModel):
    models: list[ModelDescription]


class ErrorResponse(BaseModel):
    """Every error: a message saying what was wrong and how to fix it, or FastAPI's list of field errors."""

    detail: str | list[dict[str, Any]]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body could not be parsed (e.g. JSON nested too deep)"},
    401: {"model": ErrorResponse, "description": "Missing or wrong API key"},
    403: {"model": ErrorResponse, "description": "A read-only key on a write"},
    413: {"model": ErrorResponse, "description": "Body or image over its size limit"},
    415: {"model": ErrorResponse, "description": "A body that is not JSON (or multipart where files are taken)"},
    422: {"model": ErrorResponse, "description": "Invalid input (the detail says what and how to fix it)"},
    503: {"model": ErrorResponse, "description": "Not loaded yet, unavailable, or the request timed out"},
}
WRITE_RESPONSES: dict[int | str, dict[str, Any]] = {
    507: {"model": ErrorResponse, "description": "The disk is full: nothing was stored"},
}


# -- POST /v1/evaluate: the response is the JSON of ``report.json`` -----------------------------------------------

EvalTemperature = Annotated[float, Field(gt=0, allow_inf_nan=False, description="Softmax temperature T > 0")]


class EvaluateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    num_queries: int = Field(
        200, ge=1, description="Queries sampled from the index (test split first), 1..MAX_EVAL_QUERIES"
    )
    temperatures: list[EvalTemperature] = Field(
        default_factory=lambda: list(DEFAULT_TEMPERATURES), min_length=1, max_length=MAX_TEMPERATURES
    )
    k: int = Field(10, ge=1, le=MAX_EVAL_K, description="Neighbours for overlap, recall, nDCG and label precision")
    metrics: list[Annotated[str, Field(json_schema_extra={"enum": list(RANKING_METRICS)})]] = Field(
        default_factory=lambda: list(RANKING_METRICS), min_length=1, description=f"From {', '.join(RANKING_METRICS)}"
    )
    seed: int = Field(0, ge=0, le=2**63 - 1, description="Seeds every sample: same seed, same report")
    num_items: int | None = Field(
        None, ge=2, description="Rank each query against a seeded sample of this many items (default: all, capped)"
    )
    logits: list[list[float]] | None = Field(
        None, min_length=1, description="Query logits to use instead of sampled items (then num_queries is ignored)"
    )


class RankingRow(BaseModel):
    """Agreement of one metric with the CE ranking at one temperature: means and (population) std over queries.

    ``label_precision_at_k`` is None when no query has a label; ``*_std`` are the spreads of the ``*_mean`` or
    plain-named means next to them.
    """

    # The fields of evaluation.evaluator.RankingRow, which computes the rows (a test asserts they agree).
    metric: str
    temperature: float
    k: int
    num_queries: int
    spearman_mean: float | None
    spearman_std: float | None
    kendall_mean: float | None
    kendall_std: float | None
    overlap_at_k: float | None
    overlap_at_k_std: float | None
    recall_at_k: float | None
    recall_at_k_std: float | None
    ndcg_at_k: float | None
    ndcg_at_k_std: float | None
    label_precision_at_k: float | None
    label_precision_at_k_std: float | None


class PairwiseRowOut(BaseModel):
    temperature: float
    a: str
    b: str
    pearson: float | None
    spearman: float | None
    spearman_ties: float | None = Field(
        None, description="The larger share of distinct pairs whose rank still ties on either side (flagged above 1 %)"
    )


class SeparabilityRowOut(BaseModel):
    model_config = ConfigDict(extra="allow")  # test_accuracy, intra_mean, inter_mean when the trajectory has them

    epoch: int | None
    loss: float | None
    p_inter_gt_intra: float


class EvaluateResponse(BaseModel):
    model_config = ConfigDict(extra="allow")

    config: dict[str, Any]
    primary_metric: dict[str, Any]
    ranking: list[RankingRow]
    reference: list[dict[str, Any]]
    pairwise: list[PairwiseRowOut]
    separability: list[SeparabilityRowOut]
    separability_index: dict[str, Any] | None
    notes: list[str]
