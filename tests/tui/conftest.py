import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def ckpt_dir(tmp_path):
    d = tmp_path / "checkpoints"
    return str(d)


@pytest.fixture(autouse=True)
def log_dir(tmp_path, monkeypatch):
    """The app's logs (rnnplay.tui.crash) go to the test's folder, never the user's cache."""
    d = tmp_path / "logs"
    monkeypatch.setenv("RNNPLAY_LOG_DIR", str(d))
    return d
