import os

import pytest

# Two cores here: keep torch from oversubscribing when tests and other work share the machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(autouse=True)
def _seed_torch():
    import torch

    torch.manual_seed(0)
    yield


@pytest.fixture
def one_torch_thread():
    """One intra-op thread for the test (small models on a shared 2-core box run faster so)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _runs_db(tmp_path_factory, monkeypatch):
    """Runs recorded by tests go to a temporary store, never ./checkpoints/runs.db."""
    monkeypatch.setenv("RNNPLAY_RUNS_DB", str(tmp_path_factory.mktemp("runs") / "runs.db"))
    yield
