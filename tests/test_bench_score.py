"""benchmarks/bench_score.py's text generator: deterministic, and it holds characters the model never saw."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

PATH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_score.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_score", PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_text_is_deterministic_and_holds_unknown_characters(bench, tmp_path):
    lines = bench.corpus_lines()
    a, b, c = tmp_path / "a.txt", tmp_path / "b.txt", tmp_path / "c.txt"
    sizes = [bench.write_text(str(p), 200_000, seed, lines) for p, seed in ((a, 5), (b, 5), (c, 6))]
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    text = a.read_text(encoding="utf-8")
    assert sizes[0] == (len(text.encode("utf-8")), len(text))
    assert 190_000 < sizes[0][0] <= 200_000
    assert text.endswith("\n")  # whole lines only
    known = bench.model_chars(lines)
    assert len(known) == bench.VOCAB
    assert set(text) - known - set(bench.UNSEEN)  # the corpora's rarer characters
    assert set(text) & set(bench.UNSEEN)  # and the injected non-ASCII ones


def test_training_text_has_the_model_vocabulary_only(bench, tmp_path):
    lines = bench.corpus_lines()
    known = bench.model_chars(lines)
    p = tmp_path / "train.txt"
    bench.write_text(str(p), 400_000, 1, lines, keep=known, unseen_every=0)
    assert set(p.read_text(encoding="utf-8")) == known  # all 65, nothing else
