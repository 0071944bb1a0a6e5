import os

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture
def ckpt_dir(tmp_path):
    d = tmp_path / "checkpoints"
    return str(d)
