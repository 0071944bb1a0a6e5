"""The app's GPU line (rnnplay.gpu): nothing on the CPU; memory and utilization (or how to get it) on CUDA."""

from __future__ import annotations

import pytest
import torch

from rnnplay.gpu import INSTALL_HINT, format_gpu, gpu_line


def test_nothing_to_show_off_cuda():
    assert gpu_line("cpu") == ""
    assert gpu_line("mps") == ""
    assert gpu_line("") == ""


def test_format():
    gb = 1024 ** 3
    assert format_gpu(int(1.25 * gb), 2 * gb, 80 * gb, 85) == "mem 1.2 GB (reserved 2.0) of 80.0 GB · util 85%"
    assert format_gpu(0, 0, None, None, INSTALL_HINT) == f"mem 0.0 GB (reserved 0.0) · {INSTALL_HINT}"


def test_install_hint_without_pynvml(monkeypatch):
    import builtins
    import rnnplay.gpu as gpu

    real = builtins.__import__

    def no_pynvml(name, *a, **k):
        if name == "pynvml":
            raise ImportError(name)
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_pynvml)
    monkeypatch.setattr(gpu, "_NVML", {})
    assert gpu._nvml_util(0) == INSTALL_HINT


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_line_shows_memory():
    x = torch.empty(1024, 1024, device="cuda")  # noqa: F841 (4 MB in use)
    line = gpu_line("cuda:0")
    assert line.startswith("mem ") and " GB" in line


def test_device_names_include_each_gpu():
    from rnnplay.config import TrainConfig
    from rnnplay.errors import UserError

    for name in ("auto", "cpu", "cuda", "cuda:0", "cuda:3", "mps"):
        assert TrainConfig(device=name).device == name
    for bad in ("tpu", "cuda:", "cuda:x", "gpu0"):
        with pytest.raises(UserError, match="--device"):
            TrainConfig(device=bad)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without a GPU")
@pytest.mark.parametrize("command", [["train", "--steps", "1", "--no-record"], ["classify", "--epochs", "1"]])
def test_a_gpu_index_without_a_gpu_is_one_line(command, capsys):
    from rnnplay.cli import main

    assert main([*command, "--device", "cuda:1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--device cuda:1: no CUDA GPU" in err[0]


def test_a_bad_device_is_refused_by_the_parser(capsys):
    from rnnplay.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["train", "--device", "cuda:x"])
    assert exc.value.code == 2
    assert "cuda:N" in capsys.readouterr().err
