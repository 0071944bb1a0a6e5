"""`--out` ownership: nothing the user made is overwritten, two runs never share a checkpoint file."""

import json
import os
import shutil
import socket

import pytest
import torch

from rnnplay.cli import main
from rnnplay.errors import UserError
from rnnplay.training import outpath
from rnnplay.training.checkpoint import best_path, load_checkpoint, save_checkpoint

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXT = "hello world, the rain in spain falls mainly on the plain. " * 60
TINY = ["--hidden", "16", "--layers", "1", "--embed", "8", "--seq-len", "16", "--batch-size", "4",
        "--eval-every", "10", "--sample-every", "0", "--device", "cpu"]


@pytest.fixture
def corpus(tmp_path):
    p = tmp_path / "c.txt"
    p.write_text(TEXT)
    return str(p)


def _train(capsys, *args):
    rc = main(["train", *TINY, *args])
    out, err = capsys.readouterr()
    return rc, out, err


def _refused(capsys, needle, *args):
    rc, out, err = _train(capsys, *args)
    assert rc == 2, err
    assert err.count("\n") == 1 and needle in err and "Traceback" not in err, err
    return err


def _json(out):
    return json.loads(out.strip().splitlines()[-1])


def test_out_naming_the_corpus_or_inside_its_folder_is_refused(tmp_path, corpus, capsys):
    _refused(capsys, "would overwrite the corpus file", "--corpus", corpus, "--out", corpus, "--steps", "2")
    assert open(corpus).read() == TEXT
    folder = tmp_path / "texts"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text(TEXT)
    for out in (folder / "run.pt", folder / "sub" / "run.pt"):
        _refused(capsys, "inside the corpus folder", "--corpus", str(folder), "--out", str(out), "--steps", "2")
        assert not out.exists()
    assert sorted(os.listdir(folder)) == ["a.txt", "sub"]  # no lock or placeholder left behind


def test_existing_files_that_are_not_checkpoints_are_never_overwritten(tmp_path, corpus, capsys):
    notes = tmp_path / "notes.pt"
    notes.write_text("my notes")
    foreign = tmp_path / "torch.pt"
    torch.save({"w": torch.zeros(2)}, foreign)
    before = foreign.read_bytes()
    for path in (notes, foreign):
        for extra in ([], ["--force"]):
            _refused(capsys, "is not an rnnplay checkpoint", "--corpus", corpus, "--out", str(path), "--steps", "2", *extra)
    assert notes.read_text() == "my notes" and foreign.read_bytes() == before
    # a foreign file sitting where the best model would go
    (tmp_path / "fresh.best.pt").write_text("precious")
    _refused(capsys, "fresh.best.pt' exists and is not an rnnplay checkpoint",
             "--corpus", corpus, "--out", str(tmp_path / "fresh.pt"), "--steps", "2")
    assert (tmp_path / "fresh.best.pt").read_text() == "precious" and not (tmp_path / "fresh.pt").exists()


def test_another_runs_checkpoint_needs_force_or_resume(tmp_path, corpus, capsys):
    out = str(tmp_path / "a.pt")
    assert _train(capsys, "--corpus", corpus, "--out", out, "--steps", "3")[0] == 0
    first = open(out, "rb").read()
    err = _refused(capsys, "holds a checkpoint of another run", "--corpus", corpus, "--out", out, "--steps", "3")
    assert "--resume" in err and "--force" in err
    assert open(out, "rb").read() == first
    rc, out_text, err = _train(capsys, "--resume", out, "--steps", "5", "--json")  # resume: its own file
    assert rc == 0, err and _json(out_text)["step"] == 5
    resumed_id = load_checkpoint(out)["run_uid"]
    rc, _, err = _train(capsys, "--corpus", corpus, "--out", out, "--steps", "3", "--force")
    assert rc == 0, err
    assert load_checkpoint(out)["run_uid"] != resumed_id and load_checkpoint(out)["step"] == 3


def test_resume_into_another_runs_file_is_refused(tmp_path, corpus, capsys):
    a, b = str(tmp_path / "a.pt"), str(tmp_path / "b.pt")
    assert _train(capsys, "--corpus", corpus, "--out", a, "--steps", "3")[0] == 0
    assert _train(capsys, "--corpus", corpus, "--out", b, "--steps", "3")[0] == 0
    b_bytes = open(b, "rb").read()
    _refused(capsys, "not of the one in", "--resume", a, "--out", b, "--steps", "5")
    assert open(b, "rb").read() == b_bytes
    # the same run continued into a second file, then back into it: its own
    c = str(tmp_path / "c.pt")
    assert _train(capsys, "--resume", a, "--out", c, "--steps", "5")[0] == 0
    assert _train(capsys, "--resume", a, "--out", c, "--steps", "6")[0] == 0
    assert load_checkpoint(c)["run_uid"] == load_checkpoint(a)["run_uid"]


def test_bad_out_values_are_refused_before_training(tmp_path, corpus, capsys):
    _refused(capsys, "--out is empty", "--corpus", corpus, "--out", "", "--steps", "2")
    _refused(capsys, "names a best-so-far file", "--corpus", corpus, "--out", str(tmp_path / "x.best.pt"), "--steps", "2")
    if os.path.isdir("/sys"):  # read-only even for root, where os.access says yes
        _refused(capsys, "cannot write in folder '/sys'", "--corpus", corpus, "--out", "/sys/rnnplay-test.pt", "--steps", "2")


def test_default_names_are_claimed_exclusively(tmp_path, monkeypatch):
    monkeypatch.setattr(outpath.time, "strftime", lambda fmt, *a: "20261202-120000")  # the same second
    a = outpath.claim_out(None, corpus="names", folder=str(tmp_path))
    b = outpath.claim_out(None, corpus="names", folder=str(tmp_path))
    assert a.path != b.path and os.path.exists(a.path) and os.path.exists(b.path)
    assert os.path.basename(b.path) == "names-20261202-120000-2.pt"
    with a, b:  # both lock at once: different files
        assert os.path.exists(outpath.lock_path(a.path))
    assert os.listdir(tmp_path) == []  # nothing was saved: the empty placeholders and the locks are gone


def test_a_second_run_on_a_locked_path_is_refused_naming_the_holder(tmp_path, corpus, capsys):
    out = str(tmp_path / "run.pt")
    with outpath.claim_out(out, corpus=corpus):
        err = _refused(capsys, "is in use by another rnnplay run", "--corpus", corpus, "--out", out, "--steps", "2")
        assert f"pid {os.getpid()} on host {socket.gethostname()}, started 20" in err
        assert not os.path.exists(out)
    assert not os.path.exists(outpath.lock_path(out))  # released: removed
    # a lock file left by a run killed with -9 is not locked any more: the next run takes it over
    with open(outpath.lock_path(out), "w") as fh:
        fh.write('{"pid": 1, "host": "gone", "started": "yesterday"}\n')
    assert _train(capsys, "--corpus", corpus, "--out", out, "--steps", "2")[0] == 0
    assert not os.path.exists(outpath.lock_path(out))


def test_best_file_is_replaced_only_by_a_better_model(tmp_path, corpus, capsys):
    out = str(tmp_path / "run.pt")
    common = ["--lr", "0.01", "--eval-every", "10"]
    assert _train(capsys, "--corpus", corpus, "--out", out, "--steps", "10", *common)[0] == 0
    shutil.copy(out, tmp_path / "at10.pt")  # a periodic checkpoint, as a kill -9 at step 30 leaves it
    assert _train(capsys, "--resume", out, "--steps", "30", *common)[0] == 0
    hist = load_checkpoint(out)["history"]
    val = dict(zip(hist["val_step"].tolist(), hist["val_loss"].tolist()))
    assert val[10] > val[20] > val[30], val  # the case in point: step 20 beats step 10, not step 30
    assert load_checkpoint(best_path(out))["step"] == 30
    shutil.copy(tmp_path / "at10.pt", out)
    rc, text, err = _train(capsys, "--resume", out, "--steps", "20", "--json", *common)
    assert rc == 0, err
    assert load_checkpoint(best_path(out))["step"] == 30  # not replaced by the worse step-20 model
    result = _json(text)
    assert result["best_checkpoint"] == best_path(out) and result["best_val_loss"] == pytest.approx(val[30])


def test_resume_from_a_best_file_never_makes_best_best(tmp_path, corpus, capsys):
    out = str(tmp_path / "run.pt")
    assert _train(capsys, "--corpus", corpus, "--out", out, "--steps", "10")[0] == 0
    rc, text, err = _train(capsys, "--resume", best_path(out), "--steps", "20", "--json")
    assert rc == 0, err
    assert _json(text)["checkpoint"] == out and load_checkpoint(out)["step"] == 20
    assert sorted(os.listdir(tmp_path)) == ["c.txt", "run.best.pt", "run.pt"]


def test_best_so_far_names_only_a_file_that_exists(tmp_path, corpus, capsys):
    out = str(tmp_path / "run.pt")
    assert _train(capsys, "--corpus", corpus, "--out", out, "--steps", "10", "--lr", "0.01")[0] == 0
    other = str(tmp_path / "other.pt")  # continued elsewhere with a learning rate that makes it worse
    rc, text, err = _train(capsys, "--resume", out, "--out", other, "--steps", "11", "--lr", "1", "--clip", "0", "--json")
    assert rc == 0, err
    assert not os.path.exists(best_path(other)) and _json(text)["best_checkpoint"] is None
    rc, text, _ = _train(capsys, "--resume", other, "--steps", "12", "--lr", "1", "--clip", "0")
    assert "best so far" not in text


def test_next_save_removes_temporaries_an_interrupted_save_left(tmp_path):
    path = tmp_path / "run.pt"
    dead = tmp_path / ".run.pt.999999999.abc.tmp"  # no such pid
    legacy = tmp_path / ".run.pt.k2j3h4.tmp"  # before pids were in the name
    alive = tmp_path / f".run.pt.{os.getppid()}.xyz.tmp"  # a save in flight in a live process
    other = tmp_path / ".other.pt.999999999.abc.tmp"
    for p in (dead, legacy, alive, other):
        p.write_bytes(b"partial")
    os.utime(legacy, (0, 0))
    save_checkpoint({"x": 1}, path)
    assert sorted(os.listdir(tmp_path)) == sorted([alive.name, other.name, "run.pt"])


def test_claim_out_is_refused_when_the_placeholder_folder_is_unwritable(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot create checkpoint folder"):
        outpath.claim_out(None, corpus="play", folder=str(blocker / "sub"))


def test_the_app_resuming_a_best_file_writes_the_runs_main_file(tmp_path, corpus, capsys):
    from rnnplay.tui.backend import TrainSettings, default_trainer_factory

    out = str(tmp_path / "run.pt")
    assert _train(capsys, "--corpus", corpus, "--out", out, "--steps", "10")[0] == 0
    trainer, _, path = default_trainer_factory(TrainSettings(resume=best_path(out), device="cpu", values={"steps": 12}))
    assert path == out and trainer.config.out == out  # periodic saves never go into the best file
