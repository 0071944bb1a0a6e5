"""`rnnplay classify` end to end through rnnplay.cli.main."""

from __future__ import annotations

import json

import pytest
import torch

from rnnplay.cli import main

QUICK = ["--epochs", "1", "--train-size", "200", "--test-size", "100", "--device", "cpu"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _json_run(capsys, *extra):
    assert main(["classify", *QUICK, "--json", *extra]) == 0
    out = capsys.readouterr().out
    return json.loads(out.strip().splitlines()[-1]), out


def test_json_last_line_and_determinism(capsys):
    a, out = _json_run(capsys, "--seed", "3")
    assert len(out.strip().splitlines()) == 1  # nothing but the JSON on stdout
    assert a["params"] == 13314 and a["epochs"] == 1 and a["seed"] == 3 and a["reason"] == "completed"
    assert 0.0 <= a["test_accuracy"] <= 1.0 and a["config"]["n_train"] == 200
    b, _ = _json_run(capsys, "--seed", "3")
    assert (a["test_accuracy"], a["train_loss"]) == (b["test_accuracy"], b["train_loss"])
    c, _ = _json_run(capsys, "--seed", "4")
    assert c["train_loss"] != a["train_loss"]


@pytest.mark.parametrize("cell,params", [("gru", 3 * 13314 - 2 * 130), ("lstm", 4 * 13314 - 3 * 130), ("rnn", 13314)])
def test_cell_choice(capsys, cell, params):
    """--cell builds every model of the task with that cell (a gated cell has 3 or 4 times the RNN's
    weights; the Linear(64, 2) head, 130 parameters, stays as it is); rnn is the tanh cell."""
    a, _ = _json_run(capsys, "--cell", cell)
    assert a["params"] == params and a["config"]["cell"] == ("tanh" if cell == "rnn" else cell)
    t, _ = _json_run(capsys, "--cell", cell, "--task", "tagging")
    assert t["config"]["cell"] == a["config"]["cell"] and set(t["variants"]) == {"unidirectional", "bidirectional"}


def test_text_summary_and_inspection(capsys):
    assert main(["classify", *QUICK, "--inspect"]) == 0
    cap = capsys.readouterr()
    assert "classifier" in cap.out and "13,314" in cap.out and "test acc" in cap.out
    assert "Units that track the running mean" in cap.out and "P(class 1)" in cap.out
    assert any(ch in cap.out for ch in "▁▂▃▄▅▆▇█")
    assert "epoch 1/1" in cap.err  # progress goes to stderr (plain lines when it is not a terminal)


def test_json_with_inspection(capsys):
    d, _ = _json_run(capsys, "--inspect")
    ins = d["inspection"]
    assert ins["hidden_size"] == 64 and len(ins["unit_correlation"]) == 64 and len(ins["top_units"]) == 5
    assert len(ins["sequences"]) == 3 and len(ins["sequences"][0]["prob_class1"]) == 20


def test_tagging_reports_both_taggers(capsys):
    d, _ = _json_run(capsys, "--task", "tagging")
    assert set(d["variants"]) == {"unidirectional", "bidirectional"}
    assert all(0 <= v["test_accuracy"] <= 1 for v in d["variants"].values())
    assert main(["classify", "--task", "tagging", *QUICK]) == 0
    out = capsys.readouterr().out
    assert "unidirectional" in out and "bidirectional" in out and "per step" in out


@pytest.mark.parametrize("argv", [
    ["--epochs", "0"], ["--epochs", "x"], ["--seed", "-1"], ["--device", "tpu"], ["--task", "regress"],
    ["--train-size", "0"],
])
def test_bad_flags_exit_2_with_one_line(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(["classify", *argv])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "error" in err


def test_inspect_needs_the_classify_task(capsys):
    assert main(["classify", "--task", "tagging", "--inspect", *QUICK]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--inspect" in err[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_unavailable_device_is_one_line(capsys):
    assert main(["classify", "--device", "cuda", "--epochs", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cuda" in err[0]
