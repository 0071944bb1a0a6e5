"""`rnnplay sweep` end to end: tiny combinations as real subprocesses, one that diverges, a resume."""

import json

import pytest

from rnnplay.cli import main
from rnnplay.runs.store import RunStore

TEXT = "hello world, the rain in spain falls mainly on the plain. " * 60
TINY = ["--steps", "12", "--layers", "1", "--embed", "4", "--seq-len", "8", "--batch-size", "2",
        "--eval-every", "6", "--sample-every", "0", "--device", "cpu"]


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    (tmp_path / "c.txt").write_text(TEXT)
    db = str(tmp_path / "runs.db")
    monkeypatch.setenv("RNNPLAY_RUNS_DB", db)
    return db


def _sweep(capsys, *extra):
    rc = main(["sweep", "--corpus", "c.txt", "--grid", "hidden=8,16", "--grid", "lr=1e-3,50", *TINY, "--json", *extra])
    out, err = capsys.readouterr()
    return rc, json.loads(out.strip().splitlines()[-1]), err


def test_sweep_ranks_survives_a_diverging_combination_and_resumes(env, capsys):
    rc, results, err = _sweep(capsys, "--jobs", "2")
    assert rc == 1  # one combination or more failed
    by = {(r["settings"]["hidden"], r["settings"]["lr"]): r for r in results}
    assert set(by) == {(8, 1e-3), (16, 1e-3), (8, 50.0), (16, 50.0)}
    assert by[(8, 1e-3)]["status"] == by[(16, 1e-3)]["status"] == "completed"
    assert by[(8, 50.0)]["status"] == "diverged"
    assert [r["rank"] for r in results] == [1, 2, 3, 4]
    assert results[0]["best_val_loss"] <= results[1]["best_val_loss"]  # ranked by validation loss
    assert {r["settings"]["lr"] for r in results[:2]} == {1e-3}
    with RunStore.open(env, readonly=True) as store:
        runs = store.runs()
        assert len(runs) == 4 and len({r.sweep for r in runs}) == 1
        done = {r.config["hidden"]: r for r in runs if r.status == "completed"}
        assert done[16].steps == 12 and len(store.metrics(done[16].id)) == 12
        assert done[16].name.endswith("/hidden=16,lr=0.001")

    rc, again, err = _sweep(capsys)  # resumed: the completed ones are skipped, the failed ones retried
    assert "2 already completed; 2 to train" in err
    assert rc == 1
    by2 = {(r["settings"]["hidden"], r["settings"]["lr"]): r for r in again}
    assert by2[(8, 1e-3)]["run_id"] == by[(8, 1e-3)]["run_id"]  # the same run, not trained again
    with RunStore.open(env, readonly=True) as store:
        assert len(store.runs()) == 6


def test_sweep_bad_grid_is_one_line_before_anything_runs(env, capsys):
    for grid, what in (("hiden=1,2", "unknown setting"), ("hidden=0,2", "at least 1"), ("lr=x", "not a number"),
                       ("hidden", "NAME=V1,V2")):
        rc = main(["sweep", "--grid", grid])
        err = capsys.readouterr().err
        assert rc == 2 and what in err and len(err.splitlines()) == 1, err
    with pytest.raises(SystemExit):
        main(["sweep", "--grid", "hidden=8", "--jobs", "0"])
    assert RunStore.open(env).runs() == []
