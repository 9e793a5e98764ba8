"""LVAE_THREADS=auto: PyTorch's thread count follows the cores other processes leave idle."""
import os
import subprocess
import sys
import time

import pytest
import torch

from lvae_core import runtime

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="reads /proc/stat")


def test_busy_cores_leave_one_thread_and_the_count_comes_back(monkeypatch):
    monkeypatch.setenv("LVAE_THREADS", "auto")
    monkeypatch.setattr(runtime, "_SHARE", None)
    before = torch.get_num_threads()
    cpus = os.cpu_count() or 1
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cpus)]
    try:
        time.sleep(0.5)
        with runtime.cpu_share("cpu") as share:
            time.sleep(0.5)
            assert share.adjust() == 1 == torch.get_num_threads()
            with runtime.cpu_share("cpu"):        # nested: the outer block keeps its count
                pass
            assert torch.get_num_threads() == 1
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert torch.get_num_threads() == before


def test_without_auto_nothing_changes(monkeypatch):
    monkeypatch.delenv("LVAE_THREADS", raising=False)
    with runtime.cpu_share("cpu") as share:
        assert share is None
    monkeypatch.setenv("LVAE_THREADS", "auto")
    with runtime.cpu_share("cuda") as share:
        assert share is None
