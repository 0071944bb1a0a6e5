"""Every failure a user can cause: one line on stderr, exit code 2, no traceback, nothing else on stderr."""

import errno
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from rnnplay.cli import main
from rnnplay.training import checkpoint as ck
from rnnplay.training import memory

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXT = "hello world, the rain in spain falls mainly on the plain. " * 60
TINY = ["--hidden", "16", "--layers", "2", "--embed", "8", "--seq-len", "16", "--batch-size", "4",
        "--eval-every", "10", "--sample-every", "0", "--device", "cpu", "--no-record"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.getcwd() + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text(TEXT)
    return str(p)


@pytest.fixture
def ckpt(tmp_path, corpus, capsys):
    out = str(tmp_path / "m.pt")
    assert main(["train", *TINY, "--corpus", corpus, "--steps", "10", "--out", out]) == 0
    capsys.readouterr()
    return out


def _one_line(capsys, argv, needle):
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse refuses out-of-range flags itself
        rc = exc.code
    out, err = capsys.readouterr()
    assert rc == 2, err
    last = err.splitlines()[-1] if err else ""
    assert needle in last and "Traceback" not in err and err.count("error:") == 1, err
    return err


def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "rnnplay", *args], capture_output=True, text=True, timeout=120,
                          env=ENV, **kw)


# ---- disk, signals, stdout ---------------------------------------------------------------------


def test_disk_full_while_training_is_one_line(tmp_path, corpus, capsys, monkeypatch):
    def full(obj, f, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ck.torch, "save", full)
    out = str(tmp_path / "full.pt")
    rc = main(["train", *TINY, "--corpus", corpus, "--steps", "30", "--out", out])
    err = capsys.readouterr().err
    assert rc == 2
    errors = [ln for ln in err.splitlines() if "rnnplay train:" in ln]
    assert errors == [f"rnnplay train: error: cannot write checkpoint '{tmp_path / 'full.best.pt'}': no space left "
                      "on device; check the disk space and the folder's permissions"], err
    assert [f for f in os.listdir(tmp_path) if f.endswith((".tmp", ".lock"))] == []


def test_second_ctrl_c_is_one_line_saying_what_is_on_disk(tmp_path, corpus, capsys, monkeypatch):
    from rnnplay.training.events import StepDone
    from rnnplay.training.trainer import Trainer

    real_fit = Trainer.fit

    def fit(self, emit, stop):  # the user presses Ctrl-C twice during step 3 (handlers run between bytecodes)
        def tap(event):
            if isinstance(event, StepDone) and event.step == 3:
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
                assert stop.is_set()  # the first one asked for a stop after the step
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
            emit(event)
        return real_fit(self, tap, stop)

    monkeypatch.setattr(Trainer, "fit", fit)
    out = tmp_path / "r.pt"
    assert main(["train", *TINY, "--corpus", corpus, "--steps", "50", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == ("rnnplay train: error: aborted by a second Ctrl-C; the step in flight was not "
                                    "saved, and no checkpoint had been written yet"), err
    assert err.count("rnnplay train:") == 1 and "Traceback" not in err
    assert sorted(os.listdir(tmp_path)) == ["c.txt"]  # no temporary, lock or half-written file
    # resumed later and aborted again: the file from before is named, whole
    monkeypatch.setattr(Trainer, "fit", real_fit)
    assert main(["train", *TINY, "--corpus", corpus, "--steps", "2", "--out", str(out)]) == 0
    monkeypatch.setattr(Trainer, "fit", fit)
    capsys.readouterr()
    assert main(["train", "--resume", str(out), "--steps", "50", "--no-record"]) == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(f"{out} holds the last complete save (from before this run)")
    assert ck.load_checkpoint(out)["step"] == 2


def test_broken_pipe_is_quiet_and_full_stdout_is_one_line(ckpt):
    head = subprocess.Popen(["head", "-c1"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    p = subprocess.run([sys.executable, "-m", "rnnplay", "sample", "--checkpoint", ckpt, "--length", "200000"],
                       stdout=head.stdin, stderr=subprocess.PIPE, text=True, timeout=120, env=ENV)
    head.stdin.close()
    assert len(head.stdout.read()) == 1 and head.wait(10) == 0
    assert p.returncode == 0 and p.stderr == ""
    if os.path.exists("/dev/full"):
        with open("/dev/full", "w") as full:
            p = subprocess.run([sys.executable, "-m", "rnnplay", "sample", "--checkpoint", ckpt, "--length", "100"],
                               stdout=full, stderr=subprocess.PIPE, text=True, timeout=120, env=ENV)
        assert p.returncode == 2
        assert p.stderr == "rnnplay sample: error: cannot write to stdout: no space left on device; send the output " \
                           "somewhere with room\n"


# ---- sizes, seeds --------------------------------------------------------------------------------


def test_sizes_that_cannot_fit_say_how_much_memory_they_need(tmp_path, corpus, capsys, monkeypatch):
    monkeypatch.setattr(memory, "available_bytes", lambda device: 8 * 10**9)
    err = _one_line(capsys, ["train", "--corpus", corpus, "--hidden", "60000", "--steps", "1", "--device", "cpu",
                             "--no-record", "--out", str(tmp_path / "big.pt")], "needs about 292.5 GB of memory")
    assert "8.0 GB available" in err and "--hidden" in err
    _one_line(capsys, ["classify", "--train-size", "1000000000", "--device", "cpu"], "needs about 1.6 TB of memory")


def test_the_parameter_estimate_is_the_models():
    from rnnplay.model import CharRNN

    for v, h, n, e in ((30, 16, 1, 8), (65, 256, 3, 64), (7, 5, 4, 5)):
        assert memory.charrnn_parameters(v, h, n, e) == sum(p.numel() for p in CharRNN(v, h, n, embed_size=e).parameters())
        for cell, gates in (("gru", 3), ("lstm", 4)):
            model = CharRNN(v, h, n, embed_size=e, cell=cell)
            assert memory.charrnn_parameters(v, h, n, e, gates) == sum(p.numel() for p in model.parameters())


def test_seeds_outside_the_generators_range_are_refused(ckpt, capsys):
    _one_line(capsys, ["sample", "--checkpoint", ckpt, "--seed", str(2**64)], "--seed: must be from 0 to")
    _one_line(capsys, ["sample", "--checkpoint", ckpt, "--seed", "-1"], "--seed: must be from 0 to")
    _one_line(capsys, ["classify", "--seed", str(2**63)], "--seed: must be from 0 to")
    assert main(["sample", "--checkpoint", ckpt, "--seed", str(2**63 - 1), "--length", "3"]) == 0


# ---- damaged checkpoints -------------------------------------------------------------------------


def _tamper(ckpt, tmp_path, name, change):
    payload = torch.load(ckpt, weights_only=True)
    change(payload)
    path = str(tmp_path / f"{name}.pt")
    torch.save(payload, path)
    return path


def _set(*keys, value):
    def change(p):
        for k in keys[:-1]:
            p = p[k]
        p[keys[-1]] = value(p[keys[-1]]) if callable(value) else value
    return change


CASES = {
    "nan_weights": (_set("weights", "fc.bias", value=lambda t: torch.full_like(t, float("nan"))), "NaN or infinite weights"),
    "inf_weights": (_set("weights", "embedding.weight", value=lambda t: t / 0), "NaN or infinite weights"),
    "huge_description": (lambda p: (p["model"].update(hidden_size=60000), p["config"].update(hidden=60000)),
                         "rnn.cells.0.Wxh.weight of shape (16, 8) where its model description says (60000, 8)"),
    "config_vs_model": (_set("config", "hidden", value=32), "config that disagrees with its model description"),
    "negative_step": (_set("step", value=-5), "has step -5"),
    "float_step": (_set("step", value=2.5), "has step 2.5"),
    "hidden_shape": (_set("data", "hidden", value=torch.zeros(2, 3, 16)), "hidden state of shape (2, 3, 16)"),
    "rng_shape": (_set("rng", "torch", value=torch.zeros(10, dtype=torch.uint8)), "CPU RNG state of shape (10,)"),
    "rng_dtype": (_set("rng", "torch", value=lambda t: t.float()), "CPU RNG state"),
    "adam_shape": (lambda p: p["optimizer"]["state"][0].update(exp_avg=torch.zeros(3)), "optimizer exp_avg shaped unlike"),
    "missing_weight": (lambda p: p["weights"].pop("fc.bias"), "lacks fc.bias"),
    "bad_config": (_set("config", "lr", value=-1.0), "invalid config"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_damaged_checkpoints_are_refused_before_anything_is_built(case, ckpt, tmp_path, capsys):
    change, needle = CASES[case]
    bad = _tamper(ckpt, tmp_path, case, change)
    t0 = time.perf_counter()
    _one_line(capsys, ["sample", "--checkpoint", bad, "--length", "5"], needle)
    assert time.perf_counter() - t0 < 5  # a described 2x60000 model used to be allocated first (GBs, 18 s)
    _one_line(capsys, ["train", "--resume", bad, "--steps", "20", "--no-record"], needle)


def test_corrupt_and_foreign_files_are_one_line_with_nothing_else_on_stderr(ckpt, tmp_path):
    import pickle

    cases = {"proto5.pt": pickle.dumps({"a": 1}, protocol=5), "text.pt": b"hello\n", "junk.pt": bytes(range(256)) * 8,
             "truncated.pt": open(ckpt, "rb").read()[:3000]}
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        p = _cli("sample", "--checkpoint", str(tmp_path / name))
        assert p.returncode == 2 and p.stdout == ""
        assert p.stderr.count("\n") == 1 and p.stderr.startswith("rnnplay sample: error: checkpoint"), (name, p.stderr)


# ---- stray output --------------------------------------------------------------------------------


def test_no_numpy_warning_where_numpy_is_absent(ckpt):
    code = ("import sys; sys.modules['numpy'] = None; sys.argv = ['rnnplay', 'sample', '--checkpoint', sys.argv[1], "
            "'--length', '5', '--seed', '1']; from rnnplay.cli import entry; entry()")
    p = subprocess.run([sys.executable, "-c", code, ckpt], capture_output=True, text=True, timeout=120, env=ENV)
    assert p.returncode == 0 and p.stderr == "" and len(p.stdout) == 6


def test_term_dumb_gets_no_escape_codes(corpus, tmp_path):
    import pty

    leader, follower = pty.openpty()
    p = subprocess.Popen([sys.executable, "-m", "rnnplay", "train", *TINY, "--corpus", corpus, "--steps", "30",
                          "--out", str(tmp_path / "d.pt")], stdin=follower, stdout=follower, stderr=follower,
                         env={**ENV, "TERM": "dumb"})
    os.close(follower)
    chunks = []
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    assert p.wait(60) == 0
    os.close(leader)
    text = b"".join(chunks).decode()
    assert "completed at step 30/30" in text and "\x1b" not in text


# ---- advice --------------------------------------------------------------------------------------


def test_cosine_resume_with_more_steps_says_the_schedule_changes(tmp_path, corpus, capsys):
    out = str(tmp_path / "cos.pt")
    assert main(["train", *TINY, "--corpus", corpus, "--steps", "20", "--lr-schedule", "cosine", "--out", out]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", out, "--steps", "40", "--no-record"]) == 0
    err = capsys.readouterr().err
    notes = [ln for ln in err.splitlines() if "note:" in ln]
    assert len(notes) == 1 and "planned for 20 steps and is redrawn to end at 40" in notes[0], err
    assert main(["train", "--resume", out, "--steps", "40", "--no-record"]) == 2  # already there: no note, an error
    assert "note:" not in capsys.readouterr().err


def test_divergence_advice_for_an_absurd_learning_rate_is_sane(tmp_path, corpus, capsys):
    out = str(tmp_path / "div.pt")
    rc = main(["train", *TINY, "--corpus", corpus, "--steps", "200", "--lr", "1000", "--clip", "0", "--out", out, "--json"])
    text, err = capsys.readouterr()
    assert rc == 1
    message = json.loads(text.strip().splitlines()[-1])["message"]
    assert "try 0.002" in message and f"rnnplay train --resume {out} --lr 0.002" in message, message
    assert "--clip 1 (it is off)" in message
    assert err.count(message) == 1  # said once
