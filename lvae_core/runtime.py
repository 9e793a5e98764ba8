"""Where things run and how files are written: the device, seeded random streams, and the
one atomic file writer that every checkpoint, snapshot and result goes through."""
from __future__ import annotations

import contextlib
import os
import tempfile
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
