"""Training keeps freed memory for reuse (glibc): a training-like loop of fresh multi-MiB tensors stops page-faulting."""
from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from nestedae_core.train.memory import reuse_freed_memory

pytestmark = pytest.mark.unit

_LOOP = """
import resource, sys, torch
from nestedae_core.train.memory import reuse_freed_memory
torch.set_num_threads(1)
w = torch.randn(5, 17, 300, requires_grad=True)
x = torch.randn(5, 466, 17)
def steps(n):
    for _ in range(n):
        h = torch.relu(torch.bmm(x, w))
        (h * h).sum().backward()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def warm_faults():
    steps(50)
    before = faults()
    steps(250)
    return faults() - before
if sys.argv[1] == "on":
    with reuse_freed_memory() as ok:
        assert ok
        print(warm_faults())
else:
    print(warm_faults())
"""


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_reuse_freed_memory_cuts_page_faults_of_a_training_loop() -> None:
    counts = {}
    for mode in ("off", "on"):
        out = subprocess.run([sys.executable, "-c", _LOOP, mode], capture_output=True, text=True, timeout=120, check=True)
        counts[mode] = int(out.stdout.strip().splitlines()[-1])
    assert counts["on"] < 0.5 * counts["off"], counts


def test_reuse_freed_memory_says_whether_it_applies() -> None:
    with reuse_freed_memory() as ok:
        assert ok == (platform.system() == "Linux" and platform.libc_ver()[0] == "glibc")
