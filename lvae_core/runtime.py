"""Where things run and how files are written: the device, seeded random streams, and the
one atomic file writer that every checkpoint, snapshot and result goes through."""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import Callable

import torch
from torch import nn


def choose_device(device=None) -> torch.device:
    """``device`` if given, else CUDA, then Apple MPS, then the CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_of(model) -> torch.device:
    """The device of ``model``'s parameters (a module without parameters, or any object
    with a ``device`` attribute, such as ``LinearGaussian``: that device, else the CPU)."""
    if isinstance(model, nn.Module):
        for p in model.parameters():
            return p.device
    return torch.device(getattr(model, "device", "cpu"))


@contextlib.contextmanager
def seeded(seed: int | None, device="cpu"):
    """Run the block on the global random stream seeded with ``seed`` (the CPU's, and the
    CUDA device's when ``device`` is one), and restore the streams afterwards, so that code
    around the block draws exactly what it would have drawn without it. ``seed=None``: no
    change, the block draws from the current streams."""
    if seed is None:
        yield
        return
    devices = [device] if torch.device(device).type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def record_command(out, line: str) -> None:
    """Append the command ``line`` to ``<out>/commands.txt`` unless it is there already (the
    results folders' record of how each run was made)."""
    path = Path(out) / "commands.txt"
    known = path.read_text().splitlines() if path.is_file() else []
    if line not in known:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(line + "\n")


@contextlib.contextmanager
def eval_mode(module):
    """Run the block with ``module`` in eval mode (batch norm on its running averages), and
    put it back in the mode it was in."""
    was_training = getattr(module, "training", False)
    if isinstance(module, nn.Module):
        module.eval()
    try:
        yield
    finally:
        if isinstance(module, nn.Module):
            module.train(was_training)


def rng_state(device="cpu", generator: torch.Generator | None = None) -> dict:
    """The random streams a resumable computation must restore: the global CPU stream, the
    CUDA stream of ``device`` (None on a CPU) and, if given, ``generator``'s."""
    cuda = torch.device(device).type == "cuda"
    state = dict(rng_cpu=torch.get_rng_state(),
                 rng_cuda=torch.cuda.get_rng_state(device) if cuda else None)
    if generator is not None:
        state["rng_generator"] = generator.get_state().cpu()
    return state


def set_rng_state(state: dict, device="cpu", generator: torch.Generator | None = None) -> None:
    """Restore what ``rng_state`` saved."""
    torch.set_rng_state(state["rng_cpu"])
    if generator is not None:
        generator.set_state(state["rng_generator"].to(generator.get_state().device))
    if torch.device(device).type == "cuda" and state.get("rng_cuda") is not None:
        torch.cuda.set_rng_state(state["rng_cuda"], device)


def atomic_write(path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it onto ``path`` in one
    step: a reader sees the old file or the new one, never half of one (an interrupted write
    leaves ``path`` as it was). The temporary name ends in ``.tmp``, so that no glob of
    results (``*.json``, ``epoch*.pt``) picks up a file being written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def atomic_savez(path, **arrays) -> Path:
    """Write numpy arrays to a compressed ``.npz`` at ``path``, atomically."""
    import numpy as np

    def write(tmp: Path):
        with tmp.open("wb") as f:
            np.savez_compressed(f, **arrays)
    return atomic_write(path, write)


#: ``LVAE_THREADS=auto``: training and long estimates on a CPU use as many threads as there are
#: cores that other processes leave idle (at most PyTorch's own count), checked as they go.
THREADS_ENV = "LVAE_THREADS"


class CpuShare:
    """PyTorch's intra-op thread count, kept to the cores other processes leave idle.

    PyTorch's worker threads wait for each other at the end of every parallel operation,
    spinning for a while before they sleep. When another program keeps the cores busy, one of
    them is often descheduled while the others spin, and the work runs several times slower
    than its fair share of the CPU (``benchmarks/bench_contention.py``). ``adjust()`` reads
    the CPU time the whole machine and this process used since the last call
    (``/proc/stat``, Linux only) and sets ``torch.set_num_threads`` to the cores left over,
    between 1 and the count at the start; ``restore()`` puts that count back."""

    def __init__(self):
        self.initial = torch.get_num_threads()
        self.cpus = os.cpu_count() or 1
        self.last = self._read()

    @staticmethod
    def _read():
        try:
            with open("/proc/stat") as f:
                ticks = [int(v) for v in f.readline().split()[1:9]]
        except (OSError, ValueError):
            return None
        return sum(ticks), ticks[3] + ticks[4], time.monotonic(), time.process_time()

    def adjust(self) -> int:
        now = self._read()
        if now is None or self.last is None:
            return torch.get_num_threads()
        (total, idle, wall, own), (total0, idle0, wall0, own0) = now, self.last
        if wall - wall0 < 0.05:
            return torch.get_num_threads()
        self.last = now
        tick = os.sysconf("SC_CLK_TCK")
        others = ((total - total0) - (idle - idle0)) / tick - (own - own0)   # CPU seconds
        free = self.cpus - max(0.0, others) / (wall - wall0)
        threads = max(1, min(self.initial, int(free + 0.25)))
        if threads != torch.get_num_threads():
            torch.set_num_threads(threads)
        return threads

    def restore(self) -> None:
        if torch.get_num_threads() != self.initial:
            torch.set_num_threads(self.initial)


_SHARE: CpuShare | None = None     # one per process: its last reading spans calls
_DEPTH = 0


@contextlib.contextmanager
def cpu_share(device="cpu"):
    """With ``LVAE_THREADS=auto`` and ``device`` the CPU: the process's ``CpuShare``, adjusted
    on entry (call its ``adjust()`` as the work goes on), and PyTorch's thread count put back
    when the outermost such block ends. Otherwise None, and nothing changes.

    The thread count changes the order of floating-point sums, so a model trained while
    other programs were busy differs in its last digits from one trained on a quiet machine;
    without ``LVAE_THREADS=auto`` a machine repeats its numbers exactly."""
    global _SHARE, _DEPTH
    if os.environ.get(THREADS_ENV, "").lower() != "auto" or torch.device(device).type != "cpu":
        yield None
        return
    if _SHARE is None:
        _SHARE = CpuShare()
        time.sleep(0.05)     # a first reading of what the other processes use
    if _DEPTH == 0:
        _SHARE.initial = max(_SHARE.initial, torch.get_num_threads())
    _DEPTH += 1
    _SHARE.adjust()
    try:
        yield _SHARE
    finally:
        _DEPTH -= 1
        if _DEPTH == 0:
            _SHARE.restore()
