"""Checkpoint files, in one place: the cache key, reading and writing (atomically), and the
resumable state of an interrupted run.

A checkpoint is a dict ``kind, config, history, state_dict`` (``save_checkpoint``); ``fit``'s
cached result adds ``fit`` (the settings of ``TrainConfig.key_fields``) and ``epoch``; a
partial checkpoint adds ``optimizer``, ``rng_cpu``, ``rng_generator`` and ``rng_cuda``.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from .runtime import atomic_write, choose_device

# 2: the fused Adam on CPUs too (it rounds differently from the default implementation, so
# version-1 checkpoints are not reused for the same settings)
CACHE_VERSION = 2


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read: truncated, damaged, or not a checkpoint."""


def fingerprint(x: torch.Tensor) -> str:
    """A short hash of a tensor's shape and values (the data part of the cache key)."""
    digest = hashlib.sha256(str(tuple(x.shape)).encode())
    digest.update(np.ascontiguousarray(x.detach().cpu().numpy()).tobytes())
    return digest.hexdigest()[:16]


def cache_key(model, train_x: torch.Tensor, config, device=None) -> tuple[str, dict]:
    """``fit``'s cache key for training ``model`` on ``train_x`` with ``config`` (a
    ``TrainConfig``) on ``device``, and what it hashes: the cache version, the model's kind
    and configuration, the data's fingerprint, the settings and (with ``reset=False``) the
    initial parameters."""
    from .models import model_kind
    device = choose_device(device)
    init = None
    if not config.reset:
        init = fingerprint(torch.cat([p.detach().flatten().cpu()
                                      for p in model.state_dict().values()
                                      if p.is_floating_point()]))
    source = dict(version=CACHE_VERSION, kind=model_kind(model), config=model.config,
                  data=fingerprint(train_x),
                  fit=config.key_fields(model.config["likelihood"], device), init=init)
    key = hashlib.sha256(json.dumps(source, sort_keys=True).encode()).hexdigest()[:20]
    return key, source


def save(obj: dict, path) -> Path:
    """Write a checkpoint dict to ``path`` atomically."""
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def read(path) -> dict:
    """The checkpoint dict at ``path``, or a ``CheckpointError`` (a ``ValueError``) that names
    the file and says what to do; ``FileNotFoundError`` when there is no file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        first = (str(err).strip().splitlines() or [""])[0]
        # torch's unpickling errors open with advice about weights_only that does not apply
        detail = "" if first.startswith("Weights only load failed") or not first \
            else f": {first[:120]}"
        raise CheckpointError(
            f"{path} is not a readable checkpoint ({type(err).__name__}{detail}). It is "
            "probably truncated or damaged (an interrupted copy or download?): copy or "
            "download it again, or delete it and train again (fit writes a new one)") from None
    missing = [k for k in ("kind", "config", "state_dict") if k not in getattr(ckpt, "keys",
                                                                                lambda: ())()]
    if missing:
        raise CheckpointError(f"{path} is a PyTorch file but not an lvae_core checkpoint "
                              f"(it lacks {', '.join(missing)}); save models with "
                              "lvae_core.save_checkpoint or train them with fit")
    return ckpt


def try_read(path):
    """The checkpoint at ``path``, or None when it is missing or damaged (with a warning:
    a damaged file in the cache is trained again)."""
    try:
        return read(path)
    except FileNotFoundError:
        return None
    except CheckpointError as err:
        warnings.warn(f"ignoring a damaged cache entry: {err}", RuntimeWarning, stacklevel=3)
        return None


def state_of(model, history: dict, **extra) -> dict:
    """A model's checkpoint dict: kind, configuration, history and parameters on the CPU."""
    from .models import model_kind
    state = {n: t.detach().cpu().clone() for n, t in model.state_dict().items()}
    return dict(kind=model_kind(model), config=model.config, **extra, history=history,
                state_dict=state)


def save_checkpoint(model, history: dict, path) -> Path:
    """Write ``model`` (kind, configuration, parameters) and its history to ``path``, atomically."""
    return save(state_of(model, history), path)


def model_from(ckpt: dict, device=None):
    """The model a checkpoint dict describes, its parameters loaded (float16 ones, as
    ``reproduce.ship`` writes them, turned back into float32), in eval mode on ``device``."""
    from .models import build_model
    model = build_model(ckpt["kind"], **ckpt["config"])
    model.load_state_dict({n: (t.float() if t.is_floating_point() else t)
                           for n, t in ckpt["state_dict"].items()})
    return model.to(choose_device(device)).eval()


def load_checkpoint(path, device=None):
    """Rebuild a trained model from a checkpoint written by ``fit`` or ``save_checkpoint``:
    ``(model in eval mode, history)``. A damaged file raises ``CheckpointError``."""
    ckpt = read(path)
    return model_from(ckpt, device), ckpt["history"]


def save_partial(path, model, history, epoch, settings, optimizer, generator, device) -> None:
    """The resumable state after ``epoch`` epochs: parameters, optimizer, random streams."""
    cuda = torch.device(device).type == "cuda"
    save(state_of(model, history, fit=settings, epoch=epoch,
                  optimizer=optimizer.state_dict(), rng_cpu=torch.get_rng_state(),
                  rng_generator=generator.get_state().cpu(),
                  rng_cuda=torch.cuda.get_rng_state(device) if cuda else None), path)


def restore_partial(partial: dict, model, optimizer, generator, device) -> tuple[dict, int]:
    """Load a partial checkpoint into the run's objects; returns ``(history, epoch)``."""
    model.load_state_dict(partial["state_dict"])
    optimizer.load_state_dict(partial["optimizer"])
    torch.set_rng_state(partial["rng_cpu"])
    generator.set_state(partial["rng_generator"].to(generator.get_state().device))
    if torch.device(device).type == "cuda" and partial.get("rng_cuda") is not None:
        torch.cuda.set_rng_state(partial["rng_cuda"], device)
    return partial["history"], partial["epoch"]
