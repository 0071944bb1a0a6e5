"""`rnnplay train --minutes M`: the run stops on its time budget, the cosine follows the time used,
and a resumed run counts its earlier time."""

import json
import math

import pytest
import torch

from rnnplay.cli import main
from rnnplay.config import TrainConfig
from rnnplay.pipeline import LRSchedule

TEXT = "hello world, the rain in spain falls mainly on the plain. " * 60
TINY = ["--hidden", "8", "--layers", "1", "--embed", "4", "--seq-len", "8", "--batch-size", "2",
        "--eval-every", "20", "--sample-every", "0", "--device", "cpu", "--lr-schedule", "cosine", "--json"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_cosine_follows_the_time_fraction():
    s = LRSchedule(TrainConfig(lr=1e-2, lr_schedule="cosine", minutes=10, steps=10**9))
    assert s(0, 0.0) == pytest.approx(1e-4)  # warm-up: (step + 1) / 100 of the base
    assert s(10**6, 0.0) == pytest.approx(1e-2)  # warm-up over after 100 steps, cosine not begun
    assert s(5, 0.05 * 600) == pytest.approx(1e-2)  # ... or after 5% of the time
    half = 0.05 + 0.95 / 2
    assert s(10**6, half * 600) == pytest.approx(1e-2 * (0.1 + 0.9 * 0.5), rel=1e-6)
    assert s(10**6, 600) == pytest.approx(1e-3) and s(10**6, 6000) == pytest.approx(1e-3)
    lrs = [s(10**6, t) for t in range(30, 601, 30)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:]))
    steps_only = LRSchedule(TrainConfig(lr=1e-2, lr_schedule="cosine", steps=1000))
    assert steps_only(1000, 0.0) == pytest.approx(1e-3) and steps_only(1000, 1e9) == pytest.approx(1e-3)
    assert math.isclose(LRSchedule(TrainConfig(lr=1e-2, minutes=1))(5, 30.0), 1e-2)  # constant stays constant


def _run(capsys, *args):
    rc = main(["train", *TINY, *args])
    out, err = capsys.readouterr()
    return rc, (json.loads(out.strip().splitlines()[-1]) if out.strip() else None), err


def test_train_stops_on_its_time_budget_and_resumes_with_more(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT)
    out = str(tmp_path / "m.pt")
    rc, r, err = _run(capsys, "--corpus", str(corpus), "--minutes", "0.004", "--out", out)  # 0.24 s
    assert rc == 0 and r["status"] == "completed", err
    assert r["total_steps"] == 10**9 and 0 < r["step"] < 10**9  # the clock ended it, not --steps
    saved = torch.load(out, weights_only=True)
    assert saved["trained_s"] >= 0.004 * 60
    first_steps = r["step"]

    rc, r, err = _run(capsys, "--resume", out, "--minutes", "0.004")
    assert rc == 2 and r is None and "already trained" in err and len(err.splitlines()) == 1

    rc, r, err = _run(capsys, "--resume", out, "--minutes", "0.008")
    assert rc == 0 and r["status"] == "completed" and r["step"] > first_steps, err
    assert torch.load(out, weights_only=True)["trained_s"] >= 0.008 * 60

    rc, r, err = _run(capsys, "--corpus", str(corpus), "--minutes", "5", "--steps", "7", "--out", str(tmp_path / "n.pt"))
    assert rc == 0 and r["step"] == 7  # --steps caps a time budget


def test_minutes_is_a_declared_setting(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--minutes", "0"])
    assert "--minutes" in capsys.readouterr().err
