"""The classifier experiment: synthetic data, the training loop, its events and determinism."""

from __future__ import annotations

import math
import threading

import pytest
import torch
import torch.nn.functional as F

from rnnplay.classify import experiment as exp
from rnnplay.classify.data import classify_labels, make_dataset, tagging_labels
from rnnplay.classify.experiment import ClassifyConfig, build_models, run_experiment
from rnnplay.training.events import EpochDone, Failed, Finished, Started

SMALL = dict(n_train=256, n_test=128)


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny models: one intra-op thread is faster, and far faster on a busy 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---- data ----------------------------------------------------------------------------------------


def test_default_sizes_and_shapes():
    d = make_dataset("classify", seed=0)
    assert d.train.x.shape == (5000, 20, 10) and d.test.x.shape == (1000, 20, 10)
    assert d.train.y.shape == (5000,) and d.train.y.dtype == torch.long
    assert d.train.x.dtype == torch.float32
    # Gaussian N(0, 1) and roughly balanced labels
    assert abs(d.train.x.mean().item()) < 0.01 and abs(d.train.x.std().item() - 1) < 0.01
    assert 0.45 < d.train.y.float().mean().item() < 0.55


def test_classify_labels_are_the_sign_of_the_whole_sequence_mean():
    d = make_dataset("classify", seed=3, n_train=300, n_test=50)
    for split in (d.train, d.test):
        want = torch.tensor([int(seq.sum().item() > 0) for seq in split.x])
        assert torch.equal(split.y, want)
    x = torch.zeros(2, 3, 2)
    x[0, 2, 1] = 1.0  # only the last step, one feature: the whole-sequence mean is what counts
    x[1, 0, 0] = -0.5
    assert classify_labels(x).tolist() == [1, 0]


def test_tagging_labels_compare_with_the_next_step_and_zero_at_the_end():
    x = torch.zeros(2, 4, 3)
    x[0, :, 1] = torch.tensor([3.0, 1.0, 2.0, -1.0])
    x[1, :, 1] = torch.tensor([-2.0, 0.0, 0.0, 0.5])
    assert tagging_labels(x, feature=1).tolist() == [[1, 0, 1, 0], [0, 0, 0, 1]]
    assert tagging_labels(x, feature=0).tolist() == [[0, 0, 0, 0], [0, 0, 0, 0]]
    d = make_dataset("tagging", seed=1, n_train=64, n_test=32, tag_feature=2)
    assert d.train.y.shape == (64, 20)
    f = d.train.x[:, :, 2]
    assert torch.equal(d.train.y[:, :-1], (f[:, :-1] > f[:, 1:]).long())
    assert torch.equal(d.train.y[:, -1], (f[:, -1] > 0).long())


def test_data_is_determined_by_the_seed_and_leaves_the_global_rng_alone():
    state = torch.get_rng_state()
    a = make_dataset("classify", seed=7, **SMALL)
    b = make_dataset("classify", seed=7, **SMALL)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    c = make_dataset("classify", seed=8, **SMALL)
    assert not torch.equal(a.train.x, c.train.x)
    assert not torch.equal(a.train.x[:128], a.test.x)  # the splits are different draws
    # the test split does not depend on the training split's size
    assert torch.equal(make_dataset("classify", seed=7, n_train=10, n_test=128).test.x, a.test.x)


def test_bad_data_arguments():
    with pytest.raises(ValueError, match="task"):
        make_dataset("regress")
    with pytest.raises(ValueError, match="tag_feature"):
        make_dataset("tagging", tag_feature=10)


# ---- experiment ----------------------------------------------------------------------------------


def _run(config: ClassifyConfig, stop: threading.Event | None = None):
    events: list = []
    result = run_experiment(config, events.append, stop)
    return result, events


def _strip_time(events):
    return [(e.epoch, e.step, e.train_loss, e.train_accuracy, e.test_accuracy, e.lr, e.variant)
            for e in events if isinstance(e, EpochDone)]


def test_events_and_the_seed_recipe():
    cfg = ClassifyConfig(epochs=2, batch_size=32, **SMALL)
    result, events = _run(cfg)
    assert isinstance(events[0], Started) and events[0].params == 13314
    assert events[0].total_steps == 2 * 8
    epochs = [e for e in events if isinstance(e, EpochDone)]
    assert [e.epoch for e in epochs] == [1, 2] and [e.step for e in epochs] == [8, 16]
    assert all(e.lr == 1e-3 and e.variant == "classifier" and e.total_epochs == 2 for e in epochs)
    assert isinstance(events[-1], Finished) and events[-1].reason == "completed"
    assert events[-1].test_accuracy == result.test_accuracy == epochs[-1].test_accuracy
    assert result.reason == "completed" and result.epochs_done == 2 and result.variants[0].params == 13314
    assert not result.model.training


def test_step_lr_halves_every_lr_step_epochs():
    cfg = ClassifyConfig(epochs=5, lr_step_epochs=2, n_train=32, n_test=16)
    _, events = _run(cfg)
    assert [e.lr for e in events if isinstance(e, EpochDone)] == [1e-3, 1e-3, 5e-4, 5e-4, 2.5e-4]


def test_one_epoch_reduces_the_loss():
    cfg = ClassifyConfig(epochs=1, n_train=1024, n_test=128)
    data = make_dataset("classify", cfg.seed, cfg.n_train, cfg.n_test)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)  # run_experiment builds its model the same way
        (_, fresh), = build_models(cfg)
    result, _ = _run(cfg)
    for (a, b) in zip(fresh.parameters(), result.model.parameters()):
        assert a.shape == b.shape
    fresh.eval()
    with torch.no_grad():
        before = F.cross_entropy(fresh(data.train.x), data.train.y).item()
        after = F.cross_entropy(result.model(data.train.x), data.train.y).item()
    assert math.isclose(before, math.log(2), abs_tol=0.05)
    assert after < before - 0.05


def test_same_seed_same_numbers_and_global_rng_untouched():
    cfg = ClassifyConfig(epochs=2, seed=5, **SMALL)
    state = torch.get_rng_state()
    r1, e1 = _run(cfg)
    r2, e2 = _run(cfg)
    assert torch.equal(torch.get_rng_state(), state)
    assert _strip_time(e1) == _strip_time(e2)
    for a, b in zip(r1.model.state_dict().values(), r2.model.state_dict().values()):
        assert torch.equal(a, b)
    _, e3 = _run(ClassifyConfig(epochs=2, seed=6, **SMALL))
    assert _strip_time(e3) != _strip_time(e1)


def test_stop_between_batches():
    stop = threading.Event()
    cfg = ClassifyConfig(epochs=50, **SMALL)
    events: list = []

    def emit(event):
        events.append(event)
        if isinstance(event, EpochDone):
            stop.set()  # as a UI thread would, mid-run

    result = run_experiment(cfg, emit, stop)
    assert result.reason == "stopped" and result.epochs_done == 1
    assert isinstance(events[-1], Finished) and events[-1].reason == "stopped"
    assert sum(isinstance(e, EpochDone) for e in events) == 1

    stop = threading.Event()
    stop.set()
    result, events = _run(cfg, stop)
    assert result.reason == "stopped" and result.epochs_done == 0 and events[-1].step == 0


def test_stop_from_another_thread_ends_promptly():
    stop = threading.Event()
    started = threading.Event()
    box = {}

    def emit(event):
        if isinstance(event, Started):
            started.set()

    t = threading.Thread(target=lambda: box.setdefault("r", run_experiment(
        ClassifyConfig(epochs=1000, n_train=512, n_test=64), emit, stop)))
    t.start()
    assert started.wait(30)
    stop.set()
    t.join(30)
    assert not t.is_alive() and box["r"].reason == "stopped"


def test_tagging_trains_both_taggers():
    cfg = ClassifyConfig(task="tagging", epochs=1, **SMALL)
    result, events = _run(cfg)
    assert [v.name for v in result.variants] == ["unidirectional", "bidirectional"]
    uni, bi = result.variants
    assert bi.params > uni.params
    assert events[0].experiment.variants == ("unidirectional", "bidirectional")
    assert events[0].experiment.variant_params == (uni.params, bi.params)
    assert [e.variant for e in events if isinstance(e, EpochDone)] == ["unidirectional", "bidirectional"]
    assert [e.step for e in events if isinstance(e, EpochDone)] == [8, 16]  # one step count for the run
    summary = result.summary()
    assert set(summary["variants"]) == {"unidirectional", "bidirectional"}
    with torch.no_grad():
        assert bi.model(result.data.test.x[:2]).shape == (2, 20, 2)


def test_nan_loss_is_reported_as_failed(monkeypatch):
    monkeypatch.setattr(exp, "train_one_epoch", lambda *a, **k: (float("nan"), 0.5, 3))
    result, events = _run(ClassifyConfig(epochs=3, **SMALL))
    assert result.reason == "failed" and "learning rate" in result.message
    assert isinstance(events[-1], Failed) and events[-1].step == 3
    assert not any(isinstance(e, (EpochDone, Finished)) for e in events)


def test_unexpected_error_is_emitted_then_raised(monkeypatch):
    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(exp, "train_one_epoch", boom)
    events: list = []
    with pytest.raises(RuntimeError, match="kaboom"):
        run_experiment(ClassifyConfig(epochs=1, **SMALL), events.append)
    assert isinstance(events[-1], Failed) and "kaboom" in events[-1].message


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(task="x"), dict(dropout=1.0), dict(lr=0.0),
                                 dict(batch_size=0), dict(n_train=0)])
def test_bad_config_raises_before_any_event(bad):
    events: list = []
    with pytest.raises(ValueError):
        run_experiment(ClassifyConfig(**bad), events.append)
    assert events == []


def test_default_epochs():
    assert ClassifyConfig().total_epochs == exp.DEFAULT_EPOCHS["classify"]
    assert ClassifyConfig(task="tagging").total_epochs == exp.DEFAULT_EPOCHS["tagging"]
    assert ClassifyConfig(epochs=3).total_epochs == 3


def test_bidirectional_tagger_wins_when_the_tag_depends_on_the_next_step():
    result, _ = _run(ClassifyConfig(task="tagging", epochs=3, n_train=1000, n_test=256))
    uni, bi = (v.test_accuracy for v in result.variants)
    assert uni < 0.78  # a left-to-right model cannot beat ~0.7625 (it never sees x[t+1] in time)
    assert bi > 0.9 and bi - uni > 0.1
