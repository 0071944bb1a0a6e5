"""`rnnplay runs ...` and recording from `rnnplay train`, through rnnplay.cli.main: output, exit codes."""

import csv
import io
import json
import os
import sqlite3

import pytest

from rnnplay.cli import main
from rnnplay.runs.store import RunStore

TEXT = "hello world, the rain in spain falls mainly on the plain. " * 60
TINY = ["--hidden", "16", "--layers", "2", "--embed", "8", "--seq-len", "16", "--batch-size", "4",
        "--eval-every", "10", "--sample-every", "10", "--device", "cpu"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = str(tmp_path / "runs.db")
    monkeypatch.setenv("RNNPLAY_RUNS_DB", path)
    return path


@pytest.fixture
def store_with_runs(db):
    with RunStore.open(db) as store:
        a = store.create_run(name="small", config={"hidden": 16, "layers": 2, "lr": 0.001, "seed": 0},
                             corpus="play", status="completed", steps=3, total_steps=3, params=1500, best_val=2.5)
        store.write(a, steps=[(s, s * 0.1, 3.0 - s * 0.1, 1e-3, 0.5, 100.0) for s in (1, 2, 3)],
                    evals=[(3, 0.3, 2.5)], samples=[(3, "the sample text")])
        b = store.create_run(name="big", config={"hidden": 32, "layers": 2, "lr": 0.003, "seed": 0},
                             corpus="names", status="failed", steps=2, total_steps=3, params=4000)
        store.write(b, steps=[(s, s * 0.2, 2.9, 3e-3, 0.5, 90.0) for s in (1, 2)])
    return a, b


def run_cli(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_list_table_json_and_filters(store_with_runs, capsys):
    a, b = store_with_runs
    rc, out, err = run_cli(capsys, "runs")
    lines = out.splitlines()
    assert rc == 0 and err == ""
    assert lines[0].split()[:4] == ["id", "name", "corpus", "model"]
    assert lines[1].split()[1] == "big" and lines[2].split()[1] == "small"  # newest first
    assert "2x16" in lines[2] and "2.500" in lines[2] and "completed" in lines[2]
    rc, out, _ = run_cli(capsys, "runs", "--json")
    data = json.loads(out)
    assert [r["id"] for r in data] == [b, a] and data[1]["config"]["hidden"] == 16
    rc, out, _ = run_cli(capsys, "runs", "--status", "failed")
    assert "big" in out and "small" not in out
    rc, out, _ = run_cli(capsys, "runs", "--corpus", "play", "--json")
    assert [r["name"] for r in json.loads(out)] == ["small"]


def test_show_compare(store_with_runs, capsys):
    a, b = store_with_runs
    rc, out, err = run_cli(capsys, "runs", "show", str(a))
    assert rc == 0 and err == ""
    assert out.startswith(f"run {a}: small  [completed]") and "│" in out and "the sample text" in out
    rc, out, _ = run_cli(capsys, "runs", "show", str(a), "--json")
    d = json.loads(out)
    assert d["evals"] == [[3, 0.3, 2.5]] and d["samples"] == [[3, "the sample text"]]
    rc, out, err = run_cli(capsys, "runs", "compare", str(a), str(b))
    assert rc == 0 and err == ""
    rows = {ln.split()[0]: ln.split()[1:] for ln in out.splitlines()[1:] if ln.strip()}
    assert rows["hidden"] == ["16", "32"] and rows["lr"] == ["0.001", "0.003"]
    assert "seed" not in rows and "layers" not in rows  # the same in both: not shown
    assert rows["best"] == ["val", "2.500", "-"]
    rc, out, _ = run_cli(capsys, "runs", "compare", str(a), str(b), "--json")
    assert json.loads(out)["differs"] == ["hidden", "lr"]


def test_export_csv_jsonl(store_with_runs, tmp_path, capsys):
    a, b = store_with_runs
    target = str(tmp_path / "m.csv")
    rc, out, err = run_cli(capsys, "runs", "export", "--csv", target)
    assert rc == 0 and "wrote 5 rows of 2 run(s)" in err
    rows = list(csv.DictReader(open(target)))
    assert [r["run_id"] for r in rows] == [str(a)] * 3 + [str(b)] * 2
    assert rows[2]["val_loss"] == "2.5" and rows[0]["val_loss"] == ""
    rc, out, err = run_cli(capsys, "runs", "export", "--csv", target)  # never overwritten by surprise
    assert rc == 2 and "exists" in err and "--force" in err and len(err.splitlines()) == 1
    rc, out, err = run_cli(capsys, "runs", "export", str(b), "--jsonl", "-")
    recs = [json.loads(ln) for ln in out.splitlines()]
    assert [r["step"] for r in recs] == [1, 2] and recs[0]["run_name"] == "big" and recs[0]["val_loss"] is None


def test_tensorboard_export_or_how_to_get_it(store_with_runs, tmp_path, capsys):
    rc, out, err = run_cli(capsys, "runs", "export", "--tensorboard", str(tmp_path / "tb"))
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        assert rc == 2 and "pip install 'rnnplay[tensorboard]'" in err and len(err.splitlines()) == 1
        return
    assert rc == 0
    folders = sorted(os.listdir(tmp_path / "tb"))
    assert len(folders) == 2 and all(os.listdir(tmp_path / "tb" / f) for f in folders)


def test_rm(store_with_runs, db, capsys):
    a, b = store_with_runs
    rc, out, _ = run_cli(capsys, "runs", "rm", str(a))
    assert rc == 0 and "removed 1 run" in out
    rc, out, _ = run_cli(capsys, "runs", "--json")
    assert [r["id"] for r in json.loads(out)] == [b]
    rc, _, err = run_cli(capsys, "runs", "rm", str(a))
    assert rc == 2 and f"no run {a}" in err


def test_errors_are_one_line_exit_2(db, tmp_path, capsys):
    rc, out, err = run_cli(capsys, "runs")
    assert rc == 2 and "no run store" in err and len(err.splitlines()) == 1
    RunStore.open(db).close()
    rc, out, err = run_cli(capsys, "runs")
    assert rc == 0 and "no runs recorded" in out
    rc, out, err = run_cli(capsys, "runs", "show", "99")
    assert rc == 2 and "no run 99" in err and len(err.splitlines()) == 1
    with pytest.raises(SystemExit) as exc:
        main(["runs", "show", "x"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and "not an integer" in err and len(err.splitlines()) == 1
    with open(db, "wb") as fh:
        fh.write(b"garbage" * 200)
    rc, out, err = run_cli(capsys, "runs", "--runs-db", db)
    assert rc == 2 and "corrupt" in err and len(err.splitlines()) == 1


def test_train_records_and_no_record(tmp_path, db, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT)
    out = str(tmp_path / "m.pt")
    rc, stdout, err = run_cli(capsys, "train", *TINY, "--corpus", str(corpus), "--steps", "20", "--out", out,
                              "--json", "--name", "first")
    assert rc == 0, err
    result = json.loads(stdout.splitlines()[-1])
    with RunStore.open(db, readonly=True) as store:
        r = store.get(result["run_id"])
        assert (r.name, r.status, r.steps, r.kind) == ("first", "completed", 20, "train")
        assert len(store.metrics(r.id)) == 20 and r.best_val == pytest.approx(result["best_val_loss"])
    # resumed: a new run that continues the first
    rc, stdout, err = run_cli(capsys, "train", "--resume", out, "--steps", "30", "--json")
    assert rc == 0, err
    second = json.loads(stdout.splitlines()[-1])["run_id"]
    with RunStore.open(db, readonly=True) as store:
        s = store.get(second)
        assert s.parent_id == result["run_id"] and [m[0] for m in store.metrics(second)] == list(range(21, 31))
    rc, stdout, err = run_cli(capsys, "train", *TINY, "--corpus", str(corpus), "--steps", "5",
                              "--out", str(tmp_path / "n.pt"), "--json", "--no-record")
    assert rc == 0 and json.loads(stdout.splitlines()[-1])["run_id"] is None
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2


def test_train_with_a_corrupt_store_trains_unrecorded(tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT)
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"garbage" * 200)
    rc, stdout, err = run_cli(capsys, "train", *TINY, "--corpus", str(corpus), "--steps", "5",
                              "--out", str(tmp_path / "m.pt"), "--json", "--runs-db", str(bad))
    assert rc == 0
    warn = [ln for ln in err.splitlines() if "run store" in ln]
    assert len(warn) == 1 and "corrupt" in warn[0] and "unrecorded" in warn[0]
    assert json.loads(stdout.splitlines()[-1])["status"] == "completed"
    assert bad.read_bytes() == b"garbage" * 200


def test_import_command(tmp_path, db, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text(TEXT)
    ck = tmp_path / "ck"
    rc, _, err = run_cli(capsys, "train", *TINY, "--corpus", str(corpus), "--steps", "10",
                         "--out", str(ck / "m.pt"), "--no-record")
    assert rc == 0, err
    rc, out, err = run_cli(capsys, "runs", "import", str(ck))
    assert rc == 0 and "imported 1 of 1" in out
    rc, out, err = run_cli(capsys, "runs", "import", str(ck))
    assert rc == 0 and "imported 0 of 1" in out and "already recorded" in err
    rc, out, err = run_cli(capsys, "runs", "import", str(tmp_path / "missing"))
    assert rc == 2 and len(err.splitlines()) == 1
