"""Corpora a clumsy or hostile user gives: each is named in one line, none trains on part of itself or hangs."""

import os
import shutil
import threading

import pytest

from rnnplay.cli import main
from rnnplay.data import corpus as corpus_mod
from rnnplay.data.corpus import CorpusSource, load_corpus, resolve_corpus
from rnnplay.errors import UserError

TEXT = "hello world, the rain in spain falls mainly on the plain. " * 60


def test_a_symlink_loop_is_named_as_a_loop(tmp_path):
    loop = tmp_path / "loop.txt"
    loop.symlink_to(loop)
    with pytest.raises(UserError, match="is a symbolic link loop"):
        resolve_corpus(str(loop))
    dangling = tmp_path / "gone.txt"
    dangling.symlink_to(tmp_path / "nowhere.txt")
    with pytest.raises(UserError, match="symbolic link to .*nowhere.txt', which does not exist"):
        resolve_corpus(str(dangling))


def test_links_inside_a_folder_are_followed_once_or_named(tmp_path):
    root = tmp_path / "texts"
    (root / "a").mkdir(parents=True)
    (root / "a" / "one.txt").write_text(TEXT)
    other = tmp_path / "more"
    other.mkdir()
    (other / "two.txt").write_text(TEXT)
    (root / "linked").symlink_to(other)  # a symlinked subfolder is part of the corpus (it was skipped)
    assert [p.name for p in resolve_corpus(str(root)).files] == ["one.txt", "two.txt"]
    (root / "a" / "up").symlink_to(root)  # a loop back to the top
    with pytest.raises(UserError, match="up' is a symbolic link loop"):
        resolve_corpus(str(root))
    (root / "a" / "up").unlink()
    (root / "a" / "self.txt").symlink_to(root / "a" / "self.txt")
    with pytest.raises(UserError, match="self.txt' is a symbolic link loop"):
        resolve_corpus(str(root))
    (root / "a" / "self.txt").unlink()
    (root / "a" / "gone.txt").symlink_to(tmp_path / "nowhere")
    with pytest.raises(UserError, match="gone.txt' is a symbolic link to"):
        resolve_corpus(str(root))


def test_an_unreadable_subfolder_is_named_and_stops(tmp_path, monkeypatch):
    root = tmp_path / "texts"
    (root / "locked").mkdir(parents=True)
    (root / "a.txt").write_text(TEXT)
    (root / "locked" / "b.txt").write_text(TEXT)
    real_scandir = os.scandir

    def scandir(path="."):  # root reads any folder, so the permission error is simulated
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(UserError, match=r"cannot read '.*locked' \(Permission denied\).*does not train on part"):
        resolve_corpus(str(root))


def test_a_fifo_in_a_folder_is_named(tmp_path):
    root = tmp_path / "texts"
    root.mkdir()
    (root / "a.txt").write_text(TEXT)
    os.mkfifo(root / "pipe")
    with pytest.raises(UserError, match="pipe' is not a regular file"):
        resolve_corpus(str(root))


def test_a_file_that_blocks_on_read_does_not_hang(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # a writer that never writes: a plain read waits forever
    box = {}

    def load():
        try:
            load_corpus(CorpusSource("pipe", "file", (fifo,), str(fifo)))
        except UserError as exc:
            box["error"] = str(exc)

    t = threading.Thread(target=load, daemon=True)
    t.start()
    t.join(20)
    os.close(writer)
    assert not t.is_alive(), "load_corpus hung on a file that blocks"
    assert "blocks when read" in box["error"]


@pytest.mark.skipif(not os.path.exists("/proc/kmsg"), reason="Linux only")
def test_kernel_files_are_refused(capsys):
    assert main(["train", "--corpus", "/proc/kmsg", "--steps", "1", "--no-record"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "kernel or device file" in err


def test_a_relative_corpus_path_resumes_from_another_folder(tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    (work / "data").mkdir(parents=True)
    (work / "data" / "c.txt").write_text(TEXT)
    monkeypatch.chdir(work)
    small = ["--hidden", "8", "--layers", "1", "--seq-len", "16", "--batch-size", "4", "--eval-every", "5",
             "--sample-every", "0", "--device", "cpu", "--no-record"]
    assert main(["train", *small, "--corpus", "data/c.txt", "--steps", "5", "--out", "run.pt"]) == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["train", "--resume", str(work / "run.pt"), "--steps", "8", "--no-record"]) == 0
    # the corpus moved away: the line says what to pass
    shutil.move(str(work / "data"), str(tmp_path / "moved"))
    capsys.readouterr()
    assert main(["train", "--resume", str(work / "run.pt"), "--steps", "10", "--no-record"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--corpus" in err


def test_an_older_checkpoints_relative_corpus_is_found_where_it_was(tmp_path):
    here = tmp_path / "c.txt"
    here.write_text(TEXT)
    assert corpus_mod.locate_saved_corpus("data/c.txt", str(here)) == str(here)
    with pytest.raises(UserError, match="relative to the folder it was trained in.*pass --corpus PATH"):
        corpus_mod.locate_saved_corpus("data/c.txt", str(tmp_path / "gone.txt"))
    assert corpus_mod.locate_saved_corpus("play", "play") == "play"
