"""--precision fp32|bf16|fp16: bf16 trains on the CPU, fp16 is refused there, weights stay float32."""

from __future__ import annotations

import math
import threading

import pytest
import torch
import torch.nn.functional as F

from rnnplay.cli import main
from rnnplay.config import TrainConfig
from rnnplay.errors import UserError
from rnnplay.model import CharRNN
from rnnplay.model.kinds import CELL_NAMES
from rnnplay.pipeline import build_run
from rnnplay.training.checkpoint import load_checkpoint
from rnnplay.training.precision import Precision, check_precision
from rnnplay.training.trainer import Trainer

SMALL = dict(corpus="play", hidden=32, layers=2, embed=16, seq_len=16, batch_size=8, eval_every=10,
             sample_every=0, checkpoint_every=0, device="cpu", seed=1)


def test_bf16_trains_on_the_cpu_and_saves_float32(tmp_path, one_torch_thread):
    out = tmp_path / "bf16.pt"
    run = build_run(TrainConfig(**SMALL, steps=30, precision="bf16", out=str(out)))
    Trainer(run).fit(lambda e: None, threading.Event())
    losses = run.state.train_loss
    assert len(losses) == 30 and all(math.isfinite(v) for v in losses)
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.3  # it learns
    payload = load_checkpoint(out)
    assert {t.dtype for t in payload["weights"].values()} == {torch.float32}
    assert payload["data"]["hidden"].dtype == torch.float32
    assert payload["config"]["precision"] == "bf16"
    for state in payload["optimizer"]["state"].values():
        assert state["exp_avg"].dtype == torch.float32


def test_bf16_run_resumes_in_fp32(tmp_path, one_torch_thread):
    from rnnplay.pipeline import Resume

    out = tmp_path / "a.pt"
    run = build_run(TrainConfig(**SMALL, steps=5, precision="bf16", out=str(out)))
    Trainer(run).fit(lambda e: None, threading.Event())
    r = Resume.open(str(out))
    run2 = build_run(r.config_with(steps=8, precision="fp32"), resume=r)
    Trainer(run2).fit(lambda e: None, threading.Event())
    assert run2.state.step == 8 and all(math.isfinite(v) for v in run2.state.train_loss)


def test_fp16_on_the_cpu_is_one_line(capsys):
    assert main(["train", "--precision", "fp16", "--device", "cpu", "--steps", "1", "--no-record"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--precision fp16 needs a CUDA GPU" in err[0] and "bf16" in err[0]


def test_unknown_precision_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--precision", "fp8"])
    assert exc.value.code == 2
    assert "fp32" in capsys.readouterr().err


def test_precision_checks():
    check_precision("fp32", torch.device("cpu"))
    check_precision("bf16", torch.device("cpu"))
    with pytest.raises(UserError):
        check_precision("fp16", torch.device("cpu"))
    with pytest.raises(UserError):
        check_precision("bf16", torch.device("meta"))
    with pytest.raises(UserError):
        TrainConfig(precision="half")


@pytest.mark.parametrize("cell", CELL_NAMES)
def test_fast_path_under_autocast_matches_fp32_to_bf16_tolerance(cell):
    """The hand-written Function declared for autocast: bf16 inside, float32 gradients out."""
    torch.manual_seed(0)
    model = CharRNN(20, 16, 2, embed_size=8, cell=cell)
    ref = CharRNN(20, 16, 2, embed_size=8, cell=cell)
    ref.load_state_dict(model.state_dict())
    x, y = torch.randint(0, 20, (4, 12)), torch.randint(0, 20, (4, 12))
    h0 = model.init_state(4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits, h_n = model(x, h0)
        loss = F.cross_entropy(logits.reshape(-1, 20), y.reshape(-1))
    assert logits.dtype == torch.bfloat16
    loss.backward()
    ref_logits, _ = ref(x, h0)
    F.cross_entropy(ref_logits.reshape(-1, 20), y.reshape(-1)).backward()
    torch.testing.assert_close(logits.float(), ref_logits, atol=0.05, rtol=0.05)
    for p, q in zip(model.parameters(), ref.parameters()):
        assert p.grad.dtype == torch.float32
        assert (p.grad - q.grad).abs().max() <= 0.05 * q.grad.abs().max() + 1e-4
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):  # the no-grad path too
        assert model(x, h0)[0].dtype == torch.bfloat16


def _overflow_once(model) -> None:
    """The next backward's gradient of the output layer overflows (as fp16's scaled gradients can)."""
    fired = []

    def hook(g):
        if not fired:
            fired.append(1)
            return torch.full_like(g, float("inf"))
        return g

    model.fc.weight.register_hook(hook)


def test_an_overflowing_scaled_step_is_skipped_not_divergence(one_torch_thread):
    """The fp16 scaler's logic, on the CPU: an overflow skips the update and lowers the scale."""
    from rnnplay.training.trainer import Diverged

    run = build_run(TrainConfig(**SMALL, steps=3))
    trainer = Trainer(run)
    trainer.precision.scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    _overflow_once(run.model)
    loss, norm = trainer.train_step()
    assert math.isfinite(loss) and not math.isfinite(norm)
    for k, v in run.model.state_dict().items():
        assert torch.equal(v, before[k]), k  # the update was skipped
    assert trainer.precision.scaler.get_scale() == 2.0**15
    loss, norm = trainer.train_step()  # the next step trains
    assert math.isfinite(norm)
    assert any(not torch.equal(v, before[k]) for k, v in run.model.state_dict().items())
    # without a scaler the same overflow is divergence
    run = build_run(TrainConfig(**SMALL, steps=3))
    _overflow_once(run.model)
    with pytest.raises(Diverged):
        Trainer(run).train_step()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains_on_cuda(tmp_path, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    run = build_run(TrainConfig(**{**SMALL, "device": "cuda"}, steps=20, precision=precision,
                                out=str(tmp_path / "c.pt")))
    trainer = Trainer(run)
    assert isinstance(trainer.precision, Precision) and trainer.precision.scaling == (precision == "fp16")
    trainer.fit(lambda e: None, threading.Event())
    assert all(math.isfinite(v) for v in run.state.train_loss)
    payload = load_checkpoint(tmp_path / "c.pt")
    assert {t.dtype for t in payload["weights"].values()} == {torch.float32}
