"""The OpenAPI schema of one service, with its configured limits written in: what the schema allows is what this
service accepts (clients and fuzzers generate requests from it)."""

from typing import Any

from fastapi import FastAPI

from ..config import Settings

#: (schema, property, keyword, setting): a limit the models cannot state, since it is configured per service.
_LIMITS = (
    ("SearchRequest", "k", "maximum", "max_k"),
    ("AgreementRequest", "k", "maximum", "max_k"),
    ("SearchRequest", "queries", "maxItems", "max_batch"),
    ("UpsertRequest", "items", "maxItems", "max_batch"),
    ("UpsertRequest", "ids", "maxItems", "max_batch"),
)


def install_openapi(app: FastAPI, settings: Settings) -> None:
    """Make `app.openapi()` answer FastAPI's schema with `settings`' limits on k and batch sizes."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()  # cached by FastAPI in app.openapi_schema: written into once
            components = schema.get("components", {}).get("schemas", {})
            for name, field, keyword, setting in _LIMITS:
                _limit(components[name]["properties"][field], keyword, getattr(settings, setting))
            for component in components.values():  # the multipart search forms FastAPI names itself
                if component.get("title", "").startswith("Body_search") and "k" in component.get("properties", {}):
                    _limit(component["properties"]["k"], "maximum", settings.max_k)
        return app.openapi_schema or generate()

    app.openapi = openapi  # type: ignore[method-assign]


def _limit(schema: dict[str, Any], keyword: str, value: int) -> None:
    """Set `keyword` on a property's schema, or on its non-null branch (an optional field's `anyOf`)."""
    branches = [b for b in schema.get("anyOf", [schema]) if b.get("type") != "null"]
    for branch in branches:
        branch[keyword] = value
