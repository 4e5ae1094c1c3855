"""The catalog of indexes: each index's entry and store, the models they are bound to, and first-start work."""

from .registry import Catalog as Catalog
