"""Evaluation of L2-over-logits retrieval against the cross-entropy ranking."""
