import os

import pytest

# Two cores here: keep torch from oversubscribing when tests and other work share the machine.
os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(autouse=True)
def _seed_torch():
    import torch

    torch.manual_seed(0)
    yield
