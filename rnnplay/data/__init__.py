"""Corpora, vocabularies, batches and synthetic data sets."""
