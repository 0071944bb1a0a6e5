"""rnnplay.malloc: the training commands' allocator policy takes effect (glibc only).

Each check runs in a child process: the settings are process-wide and cannot be undone.
"""

import platform
import statistics
import subprocess
import sys
import textwrap

import pytest

GLIBC = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"

# training steps of a GRU char-model (batch 64 x 100, 2 layers of 256): page faults in steady state
CHILD = textwrap.dedent("""
    import resource, sys
    import torch
    import torch.nn.functional as F
    from rnnplay import CharRNN
    from rnnplay.malloc import keep_freed_memory
    kept = keep_freed_memory() if sys.argv[1] == "keep" else False
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = CharRNN(65, 256, 2, cell="gru")
    opt = torch.optim.Adam(model.parameters())
    x = torch.randint(0, 65, (64, 101))
    faults = []
    for _ in range(14):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        opt.zero_grad(set_to_none=True)
        logits, _ = model(x[:, :-1])
        F.cross_entropy(logits.reshape(-1, 65), x[:, 1:].reshape(-1)).backward()
        opt.step()
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(kept, *faults)
""")


def _child(mode: str) -> tuple[bool, list[int]]:
    out = subprocess.run([sys.executable, "-c", CHILD, mode], capture_output=True, text=True, check=True,
                         timeout=300).stdout.split()
    return out[0] == "True", [int(x) for x in out[1:]]


@pytest.mark.skipif(not GLIBC, reason="mallopt is glibc's")
def test_keep_freed_memory_lets_training_steps_reuse_their_buffers():
    """Without the policy each step faults its buffers in afresh; with it, steady-state steps do not."""
    kept, faults = _child("keep")
    _, default = _child("default")
    assert kept is True
    # per step after the first four: most steps with the policy fault nothing in (a rare one that
    # grows the heap does); without it they fault thousands of pages on average
    steady, steady_default = statistics.median(faults[4:]), statistics.mean(default[4:])
    if steady_default < 1000:
        pytest.skip(f"glibc's defaults already reuse these buffers here ({default})")
    assert steady < steady_default / 10, (faults, default)


@pytest.mark.skipif(GLIBC, reason="off glibc the policy is a no-op")
def test_keep_freed_memory_is_a_no_op_off_glibc():
    assert _child("keep")[0] is False
