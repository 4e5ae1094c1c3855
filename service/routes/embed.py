"""Logits and probabilities of images."""

import json
from typing import Any

import numpy as np
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from indexes.divergences import log_softmax
from models import Classifier

from ..config import Settings
from ..errors import LimitExceededError
from ..http.deps import ClassifierDep, SettingsDep
from ..http.inputs import check_batch, embed_encoded
from ..http.routing import OffLoopRoute
from ..schemas import EmbedRequest, EmbedResponse, encode_vectors

router = APIRouter(route_class=OffLoopRoute, tags=["embed"])

_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": EmbedRequest.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": "string", "format": "binary", "minLength": 1},
                        },
                        "temperature": {"type": "number", "exclusiveMinimum": 0, "default": 1.0},
                        "encoding": {"type": "string", "enum": ["json", "base64"], "default": "json"},
                    },
                }
            },
        },
    }
}


async def _read_request(request: Request, settings: Settings) -> tuple[list[str | bytes], EmbedRequest]:
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        limit = settings.max_batch + 1
        async with request.form(max_files=limit, max_fields=limit) as form:
            files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
            if not files:
                raise LimitExceededError("send one or more images as multipart form field `files`")
            check_batch(len(files), settings, "images")
            data: list[str | bytes] = [await f.read(settings.max_image_bytes + 1) for f in files]
            raw: dict[str, Any] = {"images": ["x"] * len(data)}
            for field in ("temperature", "encoding"):
                if field in form:
                    raw[field] = form[field]
        return data, EmbedRequest.model_validate(raw)
    body = EmbedRequest.model_validate(await request.json())
    return list(body.images), body


def _embed(images: list[str | bytes], body: EmbedRequest, classifier: Classifier, settings: Settings) -> EmbedResponse:
    check_batch(len(images), settings, "images")
    logits = embed_encoded(images, classifier, settings, [f"images[{i}]" for i in range(len(images))])
    probabilities = np.exp(log_softmax(logits, body.temperature))
    predicted, labels = logits.argmax(axis=1).tolist(), list(classifier.spec.labels)
    if body.encoding == "base64":
        return EmbedResponse(
            logits_b64=encode_vectors(logits),
            probabilities_b64=encode_vectors(probabilities),
            shape=list(logits.shape),
            predicted=predicted,
            labels=labels,
        )
    return EmbedResponse(
        logits=logits.tolist(), probabilities=probabilities.tolist(), predicted=predicted, labels=labels
    )


@router.post("/embed", openapi_extra=_BODY, response_model_exclude_none=True)
async def embed_images(request: Request, classifier: ClassifierDep, settings: SettingsDep) -> EmbedResponse:
    """Logits, softmax probabilities at a temperature, and predicted class of each image."""
    try:
        images, body = await _read_request(request, settings)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_url=False)) from exc
    except json.JSONDecodeError as exc:
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body", exc.pos), "msg": str(exc)}]) from exc
    except (ValueError, RecursionError) as exc:  # not UTF-8, or nested deeper than the parser goes
        message = f"the body is not valid JSON ({type(exc).__name__}): send UTF-8 JSON, nested at most a few levels"
        raise RequestValidationError([{"type": "json_invalid", "loc": ("body",), "msg": message}]) from exc
    return await run_in_threadpool(_embed, images, body, classifier, settings)
