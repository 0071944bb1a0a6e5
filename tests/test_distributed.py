"""torchrun + DistributedDataParallel on CPU (gloo): two processes train the model one process trains.

Every multi-process run is spawned by the test (torchrun, or the ranks started directly with
torch.distributed's environment variables), bounded by a timeout, and killed in ``finally``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch

from rnnplay.config import TrainConfig
from rnnplay.pipeline import Resume, build_run
from rnnplay.training.distributed import Dist
from rnnplay.training.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
RUN_TIMEOUT_S = 240  # a 2-process run of ~20 tiny steps takes ~15 s here; generous for a loaded machine
SETTINGS = dict(corpus="play", hidden=24, layers=2, embed=12, seq_len=16, batch_size=8, eval_every=5,
                sample_every=0, checkpoint_every=0, device="cpu", seed=3)


def _flags(**kw) -> list[str]:
    out = []
    for k, v in {**SETTINGS, **kw}.items():
        out += ["--" + k.replace("_", "-"), str(v)]
    return out


def _env(tmp: Path) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               RNNPLAY_RUNS_DB=str(tmp / "runs.db"), RNNPLAY_DIST_TIMEOUT="60")
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    return env


def _torchrun(tmp: Path, args: list[str], nproc: int = 2) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc), "--standalone",
           "-m", "rnnplay", "train", *args]
    proc = subprocess.Popen(cmd, cwd=tmp, env=_env(tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)  # torchrun and its workers
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def _single(tmp: Path, name: str, steps: int, resume: str | None = None) -> dict:
    """One process, in this process: the reference run (same settings, the whole batch)."""
    out = str(tmp / name)
    if resume:
        r = Resume.open(resume)
        run = build_run(r.config_with(steps=steps, out=out), resume=r)
    else:
        run = build_run(TrainConfig(**SETTINGS, steps=steps, out=out))
    Trainer(run).fit(lambda e: None, threading.Event())
    return torch.load(out, weights_only=True)


def _load(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def _assert_same_run(a: dict, b: dict) -> None:
    """Same losses, validation history, weights and carried state, to float tolerance."""
    assert a["step"] == b["step"]
    torch.testing.assert_close(a["history"]["train_loss"], b["history"]["train_loss"], rtol=1e-5, atol=1e-5)
    assert a["history"]["val_step"].tolist() == b["history"]["val_step"].tolist()
    torch.testing.assert_close(a["history"]["val_loss"], b["history"]["val_loss"], rtol=1e-5, atol=1e-5)
    for k in b["weights"]:
        torch.testing.assert_close(a["weights"][k], b["weights"][k], rtol=1e-4, atol=1e-5)
    assert a["data"]["hidden"].shape == b["data"]["hidden"].shape  # every stream's state, (L, B, H)
    torch.testing.assert_close(a["data"]["hidden"], b["data"]["hidden"], rtol=1e-4, atol=1e-5)
    assert a["data"]["batches"]["index"] == b["data"]["batches"]["index"]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("dist")


@pytest.fixture(scope="module")
def reference(work):
    """One process: 20 steps, and the same run stopped at 10."""
    return {"20": _single(work, "ref20.pt", 20), "10": _single(work, "ref10.pt", 10)}


@pytest.fixture(scope="module")
def two_ranks(work):
    """torchrun --nproc-per-node 2 -m rnnplay train, 10 steps, recorded in the run store."""
    done = _torchrun(work, _flags(steps=10, out="two10.pt") + ["--json"])
    return done, _load(work / "two10.pt")


def test_two_processes_train_the_single_process_model(reference, two_ranks, work):
    done, ckpt = two_ranks
    _assert_same_run(ckpt, reference["10"])
    assert ckpt["data"]["hidden"].shape == (2, 8, 24)
    # rank 0 alone printed, saved and recorded
    assert done.stdout.count('"status": "completed"') == 1
    assert done.stderr.count("training on play") == 1
    assert not list(work.glob(".two10.pt.*.tmp"))
    from rnnplay.runs.store import RunStore

    with RunStore.open(str(work / "runs.db"), readonly=True) as store:
        runs = store.runs()
    assert len(runs) == 1 and runs[0].status == "completed"


def test_resume_two_processes_on_one(reference, two_ranks, work):
    cont = _single(work, "two_then_one.pt", 20, resume=str(work / "two10.pt"))
    _assert_same_run(cont, reference["20"])


def test_resume_one_process_on_two(reference, work):
    _torchrun(work, ["--resume", str(work / "ref10.pt"), "--steps", "20", "--out", "one_then_two.pt", "--no-record"])
    _assert_same_run(_load(work / "one_then_two.pt"), reference["20"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("victim", [1, 0])
def test_a_killed_rank_stops_the_other_with_one_line(tmp_path, victim):
    """Ranks started directly (no torchrun to clean up): the survivor notices on its own, at once."""
    env = dict(_env(tmp_path), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), WORLD_SIZE="2",
               RNNPLAY_DIST_TIMEOUT="30")
    cmd = [sys.executable, "-m", "rnnplay", "train", *_flags(steps=10**6, eval_every=2, out="k.pt"), "--no-record"]
    logs = [open(tmp_path / f"rank{r}.err", "w+") for r in range(2)]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=dict(env, RANK=str(r), LOCAL_RANK=str(r)),
                              stdout=subprocess.DEVNULL, stderr=logs[r]) for r in range(2)]
    try:
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while "step 4/" not in (tmp_path / "rank0.err").read_text():  # training under way on both ranks
            assert time.monotonic() < deadline, (tmp_path / "rank0.err").read_text()[-2000:]
            assert all(p.poll() is None for p in procs), (tmp_path / "rank0.err").read_text()[-2000:]
            time.sleep(0.2)
        procs[victim].kill()
        survivor = procs[1 - victim]
        rc = survivor.wait(timeout=60)  # bounded: gloo sees the closed connection; the timeout is 30 s
        err = (tmp_path / f"rank{1 - victim}.err").read_text()
        assert rc == 1, err[-2000:]
        lines = [ln for ln in err.splitlines() if "error" in ln.lower()]
        assert len(lines) == 1 and "another process of this distributed run stopped" in lines[0], err[-2000:]
        assert "Traceback" not in err
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
        for f in logs:
            f.close()


def test_world_size_from_the_environment():
    assert Dist.from_env({}) is None
    assert Dist.from_env({"WORLD_SIZE": "1", "RANK": "0"}) is None  # torchrun --nproc-per-node 1
    d = Dist.from_env({"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1"})
    assert (d.rank, d.world_size, d.local_rank, d.main) == (3, 4, 1, False)


def test_a_batch_that_does_not_split_is_refused_in_one_line(monkeypatch, capsys):
    from rnnplay.cli import main

    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert main(["train", "--batch-size", "32", "--steps", "1", "--no-record"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--batch-size 32 does not split evenly over 3 processes" in err[0]


def test_bad_rank_variables_are_one_line(monkeypatch, capsys):
    from rnnplay.cli import main

    monkeypatch.setenv("WORLD_SIZE", "two")
    assert main(["train", "--steps", "1", "--no-record"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "torchrun" in err[0]
