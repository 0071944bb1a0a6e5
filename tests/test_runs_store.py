"""The run store and the recorder: schema, batched writes, concurrent writers, a killed writer,
corrupt / read-only / newer stores, interrupted runs, importing checkpoints. Real SQLite files."""

import dataclasses
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from rnnplay.runs.recorder import Recorder
from rnnplay.runs.store import SCHEMA_VERSION, STALE_S, RunStore, StoreUnavailable, resolve_path
from rnnplay.config import TrainConfig
from rnnplay.data.facts import CorpusInfo, References
from rnnplay.training.events import EvalDone, Failed, Finished, RunInfo, SampleReady, Started, StepDone

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEXT = "hello world, the rain in spain falls mainly on the plain. " * 60


def _run_info(corpus="c.txt", **config):
    facts = CorpusInfo(corpus, "file", "/x/" + corpus, 1, 3480, 3480, 20, 3132, 348, "abc")
    cfg = TrainConfig(**{"corpus": corpus, "hidden": 16, "layers": 2, "lr": 0.002, **config})
    return RunInfo(facts, References(3.0, 2.5, 2.0), cfg, 64)


def _started(step=0, total=100):
    return Started(step, total, 1234, "cpu", resumed=step > 0, run=_run_info())


def _steps(rec, a, b):
    for s in range(a, b):
        rec(StepDone(s, 100, 3.0 - s * 0.01, 1e-3, 0.5, 1000.0, s * 0.01))


def _count(path, table, run_id=None):
    with sqlite3.connect(path) as c:
        if run_id is None:
            return c.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        return c.execute(f"SELECT COUNT(*) FROM {table} WHERE run_id=?", (run_id,)).fetchone()[0]


def test_schema_wal_and_version(tmp_path):
    path = str(tmp_path / "sub" / "runs.db")
    RunStore.open(path).close()
    with sqlite3.connect(path) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        indexes = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert {"runs", "metrics", "evals", "samples"} <= tables
    assert "runs_started" in indexes
    RunStore.open(path).close()  # opening again migrates nothing and keeps the version


def test_resolve_path(monkeypatch):
    monkeypatch.delenv("RNNPLAY_RUNS_DB", raising=False)
    assert resolve_path() == os.path.join("checkpoints", "runs.db")
    assert resolve_path("x.db") == "x.db"
    monkeypatch.setenv("RNNPLAY_RUNS_DB", "/tmp/e.db")
    assert resolve_path() == "/tmp/e.db" and resolve_path("f.db") == "f.db"
    monkeypatch.setenv("RNNPLAY_RUNS_DB", "off")
    assert resolve_path() is None
    assert resolve_path("none") is None


def test_writes_are_batched_and_complete_at_the_end(tmp_path):
    path = str(tmp_path / "runs.db")
    rec = Recorder.open(path, flush_s=3600)
    rec(_started())
    _steps(rec, 1, 51)
    rec(EvalDone(50, 2.5, True))
    rec(SampleReady(50, "hello"))
    assert _count(path, "metrics") == 0  # nothing written per event: it waits for the flush
    rec.flush()
    assert _count(path, "metrics", rec.run_id) == 50 and _count(path, "evals") == 1
    _steps(rec, 51, 101)
    rec(Finished(100, "completed", {"train_loss": 2.0, "val_loss": 2.4, "best_val_loss": 2.4,
                                    "avg_chars_per_s": 999.0, "elapsed_s": 1.5}))
    rec.close()
    with RunStore.open(path, readonly=True) as store:
        r = store.get(rec.run_id)
        assert (r.status, r.steps, r.best_val, r.chars_per_s, r.params) == ("completed", 100, 2.4, 999.0, 1234)
        assert r.name == "c-2x16-%d" % r.id and r.config["hidden"] == 16 and r.ended_at is not None
        m = store.metrics(r.id)
        assert [row[0] for row in m] == list(range(1, 101))
        assert m[0][2] == pytest.approx(2.99) and store.evals(r.id)[0][2] == 2.5
        assert store.samples(r.id) == [(50, "hello")]


def test_recorder_thread_flushes_about_once_a_second(tmp_path):
    path = str(tmp_path / "runs.db")
    rec = Recorder.open(path, flush_s=0.05)
    rec(_started())
    _steps(rec, 1, 11)
    deadline = time.monotonic() + 10
    while _count(path, "metrics") < 10 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _count(path, "metrics") == 10  # written by the thread, without a Finished
    rec.close()
    with RunStore.open(path, readonly=True) as store:
        assert store.get(rec.run_id).status == "interrupted"  # closed without the trainer's end


def test_a_real_training_run_is_recorded(tmp_path, one_torch_thread):
    from rnnplay.pipeline import TrainConfig, build_run
    from rnnplay.training.trainer import Trainer

    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT)
    out = str(tmp_path / "m.pt")
    cfg = TrainConfig(corpus=str(corpus), steps=30, hidden=16, layers=2, embed=8, seq_len=16, batch_size=4,
                      eval_every=10, sample_every=15, device="cpu", out=out)
    rec = Recorder.open(str(tmp_path / "runs.db"))
    trainer = Trainer(build_run(cfg))
    trainer.fit(rec, threading.Event())
    rec.close()
    with RunStore.open(str(tmp_path / "runs.db"), readonly=True) as store:
        r = store.get(rec.run_id)
        assert r.status == "completed" and r.steps == 30 and r.corpus == "c.txt"
        assert r.checkpoint == os.path.abspath(out) and r.best_checkpoint.endswith("m.best.pt")
        assert r.best_val == pytest.approx(min(v for _s, _e, v in store.evals(r.id)))
        assert len(store.metrics(r.id)) == 30 and [e[0] for e in store.evals(r.id)] == [10, 20, 30]
        assert [s[0] for s in store.samples(r.id)] == [15, 30]
        assert r.summary["references"]["bigram"] > 0


def test_restart_after_finished_continues_the_same_row(tmp_path):
    path = str(tmp_path / "runs.db")
    rec = Recorder.open(path)
    rec(_started())
    _steps(rec, 1, 5)
    rec(Finished(4, "stopped"))
    rec(_started(step=4))
    _steps(rec, 5, 9)
    rec(Failed(8, "training diverged at step 8: the loss became nan", diverged=True))
    rec.close()
    with RunStore.open(path, readonly=True) as store:
        (r,) = store.runs()
        assert r.status == "diverged" and r.steps == 8 and "nan" in r.message
        assert len(store.metrics(r.id)) == 8


def test_resumed_run_links_its_parent(tmp_path):
    path = str(tmp_path / "runs.db")
    ckpt = str(tmp_path / "m.pt")
    with RunStore.open(path) as store:
        parent = store.create_run(name="first", config={}, checkpoint=ckpt, status="stopped")
    rec = Recorder.open(path)
    info = dataclasses.replace(_run_info(), resumed_from=ckpt)
    rec(Started(10, 100, 1234, "cpu", resumed=True, run=info))
    rec.close("stopped")
    with RunStore.open(path, readonly=True) as store:
        assert store.get(rec.run_id).parent_id == parent


WRITER = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, {root!r})
    from rnnplay.runs.recorder import Recorder
    from rnnplay.config import TrainConfig
    from rnnplay.data.facts import CorpusInfo, References
    from rnnplay.training.events import Started, StepDone, Finished, RunInfo
    rec = Recorder.open(sys.argv[1], flush_s=0.005, name=sys.argv[2])
    facts = CorpusInfo("c", "file", "c", 1, 10, 10, 5, 9, 1, "x")
    rec(Started(0, 10**6, 1, "cpu", run=RunInfo(facts, References(1.0, 1.0, 1.0), TrainConfig(corpus="c"), 64)))
    n = int(sys.argv[3])
    for s in range(1, n + 1):
        rec(StepDone(s, n, 1.0, 1e-3, 0.1, 1.0, s * 1e-4))
        if s % 50 == 0:
            time.sleep(0.002)
    if sys.argv[4] == "kill":
        rec.flush()
        os.kill(os.getpid(), 9)
    rec(Finished(n, "completed"))
    rec.close()
""")


def _writer(tmp_path, path, name, n, how="finish"):
    script = tmp_path / "writer.py"
    script.write_text(WRITER.format(root=ROOT))
    return subprocess.Popen([sys.executable, str(script), path, name, str(n), how],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_write_at_once(tmp_path):
    path = str(tmp_path / "runs.db")
    RunStore.open(path).close()
    procs = [_writer(tmp_path, path, f"w{i}", 3000) for i in range(2)]
    for p in procs:
        _out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and err == "", err
    with RunStore.open(path, readonly=True) as store:
        runs = store.runs()
        assert sorted(r.name for r in runs) == ["w0", "w1"]
        for r in runs:
            assert r.status == "completed" and len(store.metrics(r.id)) == 3000


def test_a_killed_writer_shows_as_interrupted_with_its_flushed_metrics(tmp_path):
    path = str(tmp_path / "runs.db")
    p = _writer(tmp_path, path, "killed", 500, how="kill")
    p.communicate(timeout=120)
    assert p.returncode == -9
    with RunStore.open(path, readonly=True) as store:  # a reader sees it
        (r,) = store.runs()
        assert r.status == "interrupted" and len(store.metrics(r.id)) == 500
    with RunStore.open(path) as store:  # a writable open marks it
        pass
    with sqlite3.connect(path) as c:
        assert c.execute("SELECT status FROM runs").fetchone()[0] == "interrupted"


def test_interrupted_by_heartbeat_on_another_host(tmp_path):
    path = str(tmp_path / "runs.db")
    now = time.time()
    with RunStore.open(path) as store:
        old = store.create_run(name="old", config={}, host="elsewhere", pid=1, heartbeat_at=now - STALE_S - 5)
        fresh = store.create_run(name="fresh", config={}, host="elsewhere", pid=1, heartbeat_at=now)
        mine = store.create_run(name="mine", config={})  # this process: alive
    with RunStore.open(path, readonly=True) as store:
        assert store.get(old).status == "interrupted"
        assert store.get(fresh).status == "running" and store.get(mine).status == "running"
        assert store.runs(status="running")[0].name in ("fresh", "mine")


def test_a_suspended_run_marked_interrupted_comes_back_to_running(tmp_path):
    path = str(tmp_path / "runs.db")
    rec = Recorder.open(path, flush_s=3600)
    rec(_started())
    with sqlite3.connect(path) as c:
        c.execute("UPDATE runs SET status='interrupted'")
    _steps(rec, 1, 3)
    rec.flush()
    with RunStore.open(path, readonly=True) as store:
        assert store.get(rec.run_id).status == "running"
    rec.close("stopped")


def _warned(path):
    lines = []
    rec = Recorder.open(path, warn=lines.append)
    return rec, lines


def test_corrupt_store_one_line_and_unrecorded(tmp_path):
    path = tmp_path / "runs.db"
    path.write_bytes(b"this is not sqlite" * 100)
    rec, lines = _warned(str(path))
    assert rec is None and len(lines) == 1
    assert "corrupt" in lines[0] and "unrecorded" in lines[0] and "\n" not in lines[0]
    with pytest.raises(StoreUnavailable, match="corrupt"):
        RunStore.open(str(path), readonly=True)
    assert path.read_bytes() == b"this is not sqlite" * 100  # left as it was


def test_newer_schema_one_line(tmp_path):
    path = str(tmp_path / "runs.db")
    RunStore.open(path).close()
    with sqlite3.connect(path) as c:
        c.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    rec, lines = _warned(path)
    assert rec is None and len(lines) == 1 and "newer rnnplay" in lines[0] and "upgrade" in lines[0]
    with pytest.raises(StoreUnavailable, match="newer"):
        RunStore.open(path, readonly=True)


def test_store_path_that_is_a_folder(tmp_path):
    rec, lines = _warned(str(tmp_path))
    assert rec is None and "is a folder" in lines[0]


READONLY_CHECK = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {root!r})
    from rnnplay.runs.recorder import Recorder
    from rnnplay.runs.store import RunStore
    import encodings.idna, urllib.parse  # everything the check needs, before giving up root
    if os.getuid() == 0:
        os.setgid(65534); os.setuid(65534)   # root writes anything: check as nobody
    lines = []
    assert Recorder.open(sys.argv[1], warn=lines.append) is None, "opened a read-only store for writing"
    assert len(lines) == 1 and "read-only" in lines[0], lines
    with RunStore.open(sys.argv[1], readonly=True) as s:   # listing still works
        assert [r.name for r in s.runs()] == ["kept"]
    print("ok")
""")


def test_readonly_store_one_line_and_still_listable(tmp_path):
    import tempfile

    folder = tempfile.mkdtemp(prefix="rnnplay-ro-")  # outside root's 0700 tmp, so nobody can read it
    try:
        path = os.path.join(folder, "runs.db")
        with RunStore.open(path) as store:
            store.create_run(name="kept", config={}, status="completed")
        os.chmod(path, 0o444)
        os.chmod(folder, 0o555)
        script = os.path.join(folder, "..", os.path.basename(folder) + "-check.py")
        with open(script, "w") as fh:
            fh.write(READONLY_CHECK.format(root=ROOT))
        os.chmod(script, 0o644)
        r = subprocess.run([sys.executable, script, path], capture_output=True, text=True, timeout=120,
                           cwd="/")
        assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    finally:
        os.chmod(folder, 0o755)
        for n in os.listdir(folder):
            os.unlink(os.path.join(folder, n))
        os.rmdir(folder)
        if os.path.exists(script):
            os.unlink(script)


def test_a_store_failing_mid_run_warns_once_and_never_raises(tmp_path):
    path = str(tmp_path / "runs.db")
    lines = []
    rec = Recorder.open(path, flush_s=3600, warn=lines.append)
    rec(_started())
    with sqlite3.connect(path) as c:
        c.execute("DROP TABLE metrics")
    _steps(rec, 1, 5)
    rec.flush()
    _steps(rec, 5, 9)
    rec.flush()
    rec(Finished(8, "completed"))
    rec.close()
    assert len(lines) == 1 and "failed" in lines[0] and "unrecorded" in lines[0]


def test_rm_and_filters(tmp_path):
    path = str(tmp_path / "runs.db")
    with RunStore.open(path) as store:
        a = store.create_run(name="a", config={}, corpus="play", status="completed")
        store.write(a, steps=[(1, 0.1, 2.0, 1e-3, 0.1, 10.0)], evals=[(1, 0.1, 2.1)], samples=[(1, "x")])
        b = store.create_run(name="b", config={}, corpus="names", status="failed")
        assert [r.name for r in store.runs(corpus="play")] == ["a"]
        assert [r.name for r in store.runs(status="failed")] == ["b"]
        assert [r.name for r in store.runs()] == ["b", "a"]  # newest first
        assert store.delete_runs([a]) == 1
        assert store.run(a) is None and store.metrics(a) == [] and store.evals(a) == []
        assert store.run(b) is not None


def test_import_checkpoints(tmp_path, one_torch_thread):
    from rnnplay.pipeline import TrainConfig, build_run
    from rnnplay.runs.importer import checkpoint_files, import_checkpoint
    from rnnplay.training.trainer import Trainer

    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT)
    out = str(tmp_path / "ck" / "m.pt")
    cfg = TrainConfig(corpus=str(corpus), steps=20, hidden=16, layers=2, embed=8, seq_len=16, batch_size=4,
                      eval_every=5, sample_every=0, device="cpu", out=out)
    trainer = Trainer(build_run(cfg))
    trainer.fit(lambda e: None, threading.Event())
    files = checkpoint_files([str(tmp_path / "ck")])
    assert files == [out]  # m.best.pt is the same run
    with RunStore.open(str(tmp_path / "runs.db")) as store:
        first = import_checkpoint(store, out)
        assert first.run_id is not None
        again = import_checkpoint(store, out)
        assert again.run_id is None and "already recorded" in again.note
        r = store.get(first.run_id)
        assert (r.status, r.steps, r.kind, r.corpus) == ("completed", 20, "import", "c.txt")
        assert r.params == sum(p.numel() for p in trainer.run.model.parameters())
        m = store.metrics(r.id)
        assert [x[0] for x in m] == list(range(1, 21))
        assert [x[2] for x in m] == pytest.approx(trainer.run.state.train_loss)
        assert [e[0] for e in store.evals(r.id)] == [5, 10, 15, 20]
        assert r.best_val == pytest.approx(trainer.run.state.best_val_loss)


@pytest.mark.parametrize("diverged, status", [(True, "diverged"), (False, "failed")])
def test_failed_status_comes_from_the_typed_event(tmp_path, diverged, status):
    path = str(tmp_path / "runs.db")
    rec = Recorder.open(path)
    rec(_started())
    _steps(rec, 1, 3)
    rec(Failed(3, "RuntimeError: training diverged from the plan", diverged=diverged))  # the words do not decide
    rec.close()
    with RunStore.open(path, readonly=True) as store:
        (r,) = store.runs()
        assert r.status == status
