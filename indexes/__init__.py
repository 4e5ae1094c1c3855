"""Vector store over classifier logits: FAISS index with string ids and metadata, divergences, search."""

# torch before faiss, which the submodules import: both bundle OpenMP, and this order is the tested one.
import torch  # noqa: F401, E402
