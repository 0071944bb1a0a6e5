"""Bundled corpora, shipped as the package data of ``rnnplay.corpora`` (see README.md here)."""
