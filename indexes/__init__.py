"""Vector store over classifier logits: FAISS index with string ids and metadata, divergences, search."""
