"""Classifiers whose raw logits are the item vectors: registry, specs, training, preprocessing, embedding."""
