"""Reading a listing request (filter, order, cursor) into the stores' terms, and their pages back into answers."""

import json
from typing import Any

from indexes.errors import InvalidInputError
from indexes.filters import with_class_indexes
from indexes.pages import decode_cursor, encode_cursor, listing_key, parse_order
from indexes.store import Filter, VectorStore
from models import Classifier

from ..schemas import Encoding, ItemsPage, encode_vectors
from ..schemas import ItemOut as ItemOutSchema


def class_filter(filter: Filter | None, classifier: Classifier) -> dict[str, Any] | None:
    """The request's filter with the label names that `predicted` takes mapped to the model's class indexes (the
    stores know indexes only); a filter the service cannot read is an `InvalidInputError` (422)."""
    return with_class_indexes(filter, classifier.spec.labels) if filter else None


def filter_from_query(text: str | None) -> Filter | None:
    """The `filter` query parameter: a JSON object, URL-encoded."""
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidInputError(
            f'filter is not JSON ({exc}); pass a URL-encoded JSON object, e.g. filter={{"label":{{"$in":[7,9]}}}}'
        ) from exc
    if not isinstance(value, dict):
        raise InvalidInputError('filter must be a JSON object, e.g. {"label": 7}')
    return value


def list_page(
    index: VectorStore,
    classifier: Classifier,
    filter: Filter | None,
    order_text: str | None,
    cursor: str | None,
    limit: int,
    temperature: float,
    encoding: Encoding,
) -> ItemsPage:
    """One page of a listing, with the cursor of the next."""
    order = parse_order(order_text)
    checked = class_filter(filter, classifier)
    key = listing_key(order, checked, temperature)
    after = decode_cursor(cursor, key) if cursor else None
    page = index.page(checked, order, after, limit, temperature)
    items = [item_out(item.id, item.logits, item.metadata, encoding) for item in page.items]
    return ItemsPage(items=items, count=page.matched, next=encode_cursor(page.next, key) if page.next else None)


def item_out(item_id: str, logits: Any, metadata: dict[str, Any], encoding: Encoding) -> ItemOutSchema:
    if encoding == "base64":
        return ItemOutSchema(id=item_id, logits_b64=encode_vectors(logits), metadata=metadata)
    return ItemOutSchema(id=item_id, logits=logits.tolist(), metadata=metadata)
