"""Vector store over classifier logits: FAISS index with string ids and metadata, divergences, search."""
# Importing the package loads nothing heavy (its errors are light to import): each module that imports faiss
# imports torch just before it, since both bundle OpenMP and that order is the tested one.
