"""`rnnplay train`, `sample` and `corpora` end to end through rnnplay.cli.main, plus bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from rnnplay.cli import main

TEXT = "hello world, the rain in spain falls mainly on the plain. " * 60


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text(TEXT)
    return str(p)


TINY = ["--hidden", "16", "--layers", "2", "--embed", "8", "--seq-len", "16", "--batch-size", "4",
        "--eval-every", "10", "--sample-every", "10", "--device", "cpu"]


def _train(capsys, *args):
    rc = main(["train", *TINY, *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_train_json_then_sample(tmp_path, corpus, capsys):
    out_path = str(tmp_path / "m.pt")
    rc, out, err = _train(capsys, "--corpus", corpus, "--steps", "20", "--out", out_path, "--json")
    assert rc == 0, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["step"] == 20 and result["status"] == "completed"
    assert result["checkpoint"] == out_path and os.path.exists(out_path)
    assert result["train_loss"] > 0 and result["val_loss"] > 0
    assert "training on c.txt" in err and "sample at step 10" in err and "bigram" in err

    assert main(["sample", "--checkpoint", out_path, "--length", "50", "--seed", "3"]) == 0
    a = capsys.readouterr()
    assert a.err == "" and len(a.out) == 51  # the text and a newline, nothing else
    main(["sample", "--checkpoint", out_path, "--length", "50", "--seed", "3"])
    assert capsys.readouterr().out == a.out  # same seed, same text
    main(["sample", "--checkpoint", out_path, "--length", "30", "--prime", "hello", "--temperature", "0.5", "--top-k", "3"])
    assert capsys.readouterr().out.startswith("hello")
    main(["sample", "--checkpoint", out_path, "--length", "10", "--greedy"])
    g1 = capsys.readouterr().out
    main(["sample", "--checkpoint", out_path, "--length", "10", "--greedy"])
    assert capsys.readouterr().out == g1


def test_prime_outside_vocabulary(tmp_path, corpus, capsys):
    out_path = str(tmp_path / "m.pt")
    assert _train(capsys, "--corpus", corpus, "--steps", "3", "--out", out_path)[0] == 0
    assert main(["sample", "--checkpoint", out_path, "--prime", "hé日lo"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'é', '日'" in err and "--drop-unknown" in err
    assert main(["sample", "--checkpoint", out_path, "--prime", "hé日lo", "--drop-unknown", "--length", "5"]) == 0
    assert capsys.readouterr().out.startswith("hlo")


def test_default_out_goes_to_checkpoints_folder_and_resume(tmp_path, corpus, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rc, out, _ = _train(capsys, "--corpus", corpus, "--steps", "6", "--json")
    first = json.loads(out.strip().splitlines()[-1])
    assert rc == 0 and first["checkpoint"].startswith("checkpoints" + os.sep)
    assert os.path.isfile(tmp_path / first["checkpoint"])
    rc, out, err = _train(capsys, "--resume", first["checkpoint"], "--steps", "12", "--json")
    second = json.loads(out.strip().splitlines()[-1])
    assert rc == 0 and second["step"] == 12 and second["checkpoint"] == first["checkpoint"]
    assert "resuming" in err
    rc, _, err = _train(capsys, "--resume", first["checkpoint"], "--steps", "12")
    assert rc == 2 and "already at step 12" in err


def test_plain_summary_on_stdout(tmp_path, corpus, capsys):
    rc, out, _ = _train(capsys, "--corpus", corpus, "--steps", "4", "--out", str(tmp_path / "s.pt"))
    assert rc == 0 and "completed at step 4/4" in out and "rnnplay sample --checkpoint" in out


def test_corpora_lists_bundled(capsys):
    assert main(["corpora", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    names = [r["name"] for r in rows]
    assert names[:4] == ["play", "names", "arithmetic", "brackets"] and "python" in names
    assert all(r["chars"] > 0 and r["vocab_size"] > 1 for r in rows)
    assert [r["name"] for r in rows if r["default"]] == ["play"]


def _one_line_error(capsys, argv, needle):
    try:
        rc = main(argv)
    except SystemExit as exc:  # argparse rejects out-of-range flags itself
        rc = exc.code
    assert rc == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err, err


def test_bad_inputs_are_one_line_exit_2(tmp_path, corpus, capsys):
    binary = tmp_path / "b.bin"
    binary.write_bytes(b"ab\x00cd" * 100)
    latin = tmp_path / "l.txt"
    latin.write_bytes(b"caf\xe9 " * 100)
    empty = tmp_path / "e.txt"
    empty.write_text("")
    foreign = tmp_path / "f.pt"
    torch.save({"w": torch.zeros(1)}, foreign)
    _one_line_error(capsys, ["train", "--corpus", str(tmp_path / "missing.txt")], "no such file")
    _one_line_error(capsys, ["train", "--corpus", str(binary)], "binary")
    _one_line_error(capsys, ["train", "--corpus", str(latin)], "byte offset 3")
    _one_line_error(capsys, ["train", "--corpus", str(empty)], "empty")
    _one_line_error(capsys, ["train", "--corpus", corpus, "--batch-size", "64", "--seq-len", "200"], "too short")
    _one_line_error(capsys, ["train", "--corpus", corpus, "--steps", "0"], "--steps")
    _one_line_error(capsys, ["train", "--corpus", corpus, "--lr", "-1"], "--lr")
    _one_line_error(capsys, ["train", "--corpus", corpus, "--dropout", "1.5"], "--dropout")
    _one_line_error(capsys, ["train", "--corpus", corpus, "--clip", "nan"], "--clip")
    _one_line_error(capsys, ["train", "--resume", str(foreign)], "not an rnnplay checkpoint")
    _one_line_error(capsys, ["train", "--corpus", corpus, "--out", str(tmp_path)], "is a folder")
    _one_line_error(capsys, ["train", "--corpus", corpus, "--out", str(binary / "x.pt")], "cannot create folder")
    _one_line_error(capsys, ["sample", "--checkpoint", str(tmp_path / "nope.pt")], "does not exist")
    _one_line_error(capsys, ["sample", "--checkpoint", str(corpus)], "unreadable")
    _one_line_error(capsys, ["sample", "--checkpoint", str(foreign), "--temperature", "0"], "--temperature")


def test_subprocess_bad_corpus_has_no_traceback(tmp_path):
    p = subprocess.run([sys.executable, "-m", "rnnplay", "train", "--corpus", str(tmp_path / "nope")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and p.stdout == ""
    assert p.stderr.count("\n") == 1 and "Traceback" not in p.stderr and "no such file" in p.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_subprocess_signal_stops_and_saves(tmp_path, corpus, signum):
    out_path = tmp_path / "sig.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "rnnplay", "train", *TINY, "--corpus", corpus, "--steps", "1000000",
                             "--out", str(out_path), "--json", "--sample-every", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 90
        while time.time() < deadline and "step 10/" not in proc.stderr.readline():
            pass
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    result = json.loads(out.strip().splitlines()[-1])
    assert result["status"] == "stopped" and result["step"] >= 10
    # Ctrl-C measures the exact validation loss after saving; SIGTERM (or a hang-up) leaves at once
    assert (result["val_loss_exact"] is not None) == (signum == signal.SIGINT)
    from rnnplay.training.checkpoint import load_checkpoint

    saved = load_checkpoint(out_path)
    assert saved["reason"] == "stopped" and saved["step"] == result["step"]


def test_help_does_not_import_torch():
    code = ("import sys; from rnnplay.cli import build_parser; build_parser();"
            "assert 'torch' not in sys.modules, 'rnnplay --help would import torch'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
