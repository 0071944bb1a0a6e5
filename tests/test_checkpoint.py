"""Checkpoint files: atomic writes, safe loading, CPU mapping, clear refusals."""

import os
import threading

import pytest
import torch

from rnnplay.errors import UserError
from rnnplay.pipeline import TrainConfig, build_run
from rnnplay.training import checkpoint as ck
from rnnplay.training.trainer import Trainer


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def trained(tmp_path):
    corpus = tmp_path / "c.txt"
    corpus.write_text("the cat sat on the mat. " * 200 + "ünïcode ✓\n", encoding="utf-8")
    cfg = TrainConfig(corpus=str(corpus), steps=6, hidden=16, layers=2, embed=8, seq_len=16, batch_size=4,
                      eval_every=3, sample_every=0, device="cpu", out=str(tmp_path / "run.pt"))
    trainer = Trainer(build_run(cfg), hidden_stats_hz=0)
    trainer.fit(lambda e: None, threading.Event())
    return trainer, cfg


def test_payload_has_everything_and_only_plain_types(trained):
    trainer, cfg = trained
    raw = torch.load(cfg.out, map_location="cpu", weights_only=True)  # no code runs: plain types only
    for key in ("format", "version", "config", "model", "vocab", "weights", "optimizer", "scheduler", "step",
                "rng", "data", "history", "best_val_loss", "references", "corpus"):
        assert key in raw, key
    assert raw["step"] == 6 and raw["vocab"] == trainer.vocab.to_string()
    assert raw["history"]["train_loss"].shape == (6,)
    assert os.path.exists(ck.best_path(cfg.out)) and ck.best_path("x/run.pt") == "x/run.best.pt"


def test_failing_write_leaves_previous_file_intact(trained, monkeypatch):
    trainer, cfg = trained
    before = open(cfg.out, "rb").read()

    def broken_save(obj, f, *a, **k):
        f.write(b"partial garbage")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ck.torch, "save", broken_save)
    with pytest.raises(UserError, match="cannot write checkpoint .*: no space left on device"):
        trainer.save()
    assert open(cfg.out, "rb").read() == before
    assert [f for f in os.listdir(os.path.dirname(cfg.out)) if f.endswith(".tmp")] == []
    monkeypatch.undo()
    ck.load_checkpoint(cfg.out)


def test_interrupt_during_write_leaves_previous_file(trained, monkeypatch):
    trainer, cfg = trained
    before = open(cfg.out, "rb").read()

    def interrupted(obj, f, *a, **k):
        f.write(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(ck.torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        trainer.save()
    assert open(cfg.out, "rb").read() == before


def test_truncated_file_is_refused(trained, tmp_path):
    _, cfg = trained
    data = open(cfg.out, "rb").read()
    bad = tmp_path / "trunc.pt"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="unreadable"):
        ck.load_checkpoint(bad)
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(UserError, match="empty"):
        ck.load_checkpoint(empty)


def test_foreign_files_are_refused(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, other)  # someone else's checkpoint
    with pytest.raises(UserError, match="not an rnnplay checkpoint"):
        ck.load_checkpoint(other)
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    with pytest.raises(UserError, match="unreadable|corrupt"):
        ck.load_checkpoint(text)
    with pytest.raises(UserError, match="does not exist"):
        ck.load_checkpoint(tmp_path / "missing.pt")


class Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


def test_pickled_objects_are_never_executed(tmp_path):
    p = tmp_path / "evil.pt"
    torch.save({"format": ck.FORMAT, "version": 1, "payload": Evil()}, p)
    with pytest.raises(UserError, match="could run code"):
        ck.load_checkpoint(p)


def test_newer_format_is_refused(trained, tmp_path):
    _, cfg = trained
    raw = torch.load(cfg.out, weights_only=True)
    raw["version"] = ck.FORMAT_VERSION + 1
    p = tmp_path / "newer.pt"
    torch.save(raw, p)
    with pytest.raises(UserError, match="newer than this rnnplay reads"):
        ck.load_checkpoint(p)


def _save_as_if_on_cuda(obj, path):
    """torch.save, but every storage is tagged 'cuda:0', as a GPU run writes it."""
    from torch import serialization as ser

    entry = (1, lambda storage: "cuda:0", lambda storage, location: None)
    ser._package_registry.insert(0, entry)
    try:
        torch.save(obj, path)
    finally:
        ser._package_registry.remove(entry)


@pytest.mark.skipif(torch.cuda.is_available(), reason="simulates a CUDA file on a machine without CUDA")
def test_cuda_checkpoint_opens_on_cpu(trained, tmp_path):
    _, cfg = trained
    raw = torch.load(cfg.out, weights_only=True)
    p = tmp_path / "gpu.pt"
    _save_as_if_on_cuda(raw, p)
    with pytest.raises(RuntimeError, match="CUDA"):
        torch.load(p, weights_only=True)  # what a naive loader hits
    payload = ck.load_checkpoint(p)
    assert all(t.device.type == "cpu" for t in payload["weights"].values())
    model, vocab = ck.model_from_checkpoint(payload)
    assert next(model.parameters()).device.type == "cpu"
    # and a run resumes from it on the CPU
    run = build_run(cfg, resume=str(p))
    assert run.state.step == 6 and run.device.type == "cpu"


def test_model_from_checkpoint_matches_trainer(trained):
    trainer, cfg = trained
    model, vocab = ck.model_from_checkpoint(ck.load_checkpoint(cfg.out))
    for (k, a), b in zip(model.state_dict().items(), trainer.run.model.state_dict().values()):
        assert torch.equal(a, b), k
    assert vocab == trainer.vocab


def test_a_text_file_is_called_corrupt_not_dangerous(tmp_path):
    p = tmp_path / "notes.pt"
    p.write_text("garbage\n")  # 'g' happens to be pickle's GLOBAL opcode byte
    with pytest.raises(UserError, match="corrupt or not an rnnplay checkpoint"):
        ck.load_checkpoint(p)


@pytest.mark.parametrize("cell, version", [("tanh", 1), ("gru", 2), ("lstm", 2)])
def test_a_gated_cell_file_is_format_2_and_a_tanh_one_stays_readable_by_older_rnnplay(tmp_path, cell, version):
    p = ck.save_checkpoint({"kind": "charrnn", "model": {"vocab_size": 3, "hidden_size": 4, "cell": cell}},
                           tmp_path / f"{cell}.pt")
    raw = torch.load(p, weights_only=True)
    assert raw["version"] == version and raw["model"]["cell"] == cell
    assert ck.FORMAT_VERSION == 2
