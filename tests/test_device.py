"""Device choice and the CPU allocator setting that `rlkit train` applies."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rlkit.device import resolve_device
from rlkit.errors import UserError

FAULTS = """
import resource, sys, torch
torch.set_num_threads(1)
if sys.argv[1] == "tuned":
    from rlkit.device import keep_freed_memory
    assert keep_freed_memory()
from nets.cnn import NatureCNN
torch.manual_seed(0)
net = NatureCNN(4, 84, 84)
x = torch.randint(0, 256, (256, 4, 84, 84), dtype=torch.uint8)
def step():  # the forward and backward of a PPO Atari minibatch
    net(x).sum().backward()
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_auto_is_cpu_without_cuda_and_cuda_without_a_gpu_is_a_user_error():
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(UserError, match="device=auto"):
        resolve_device("cuda")


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc only")
def test_keep_freed_memory_stops_page_faults_on_reused_large_tensors():
    # glibc's default mmap threshold (128 KiB) held fixed: otherwise glibc adapts it to the sizes freed so far,
    # and the plain count varies from run to run (1.6k-150k measured once frames became NHWC floats in one copy);
    # keep_freed_memory's mallopt overrides the variable
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}

    def faults(mode: str) -> int:
        out = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parent.parent, env=env)
        return int(out.stdout.split()[-1])

    plain, tuned = faults("plain"), faults("tuned")
    assert plain > 20_000  # measured ~627k: activations land on fresh, zero-filled pages again and again
    assert tuned < plain / 20  # measured 0-6.3k
