"""Checkpoint files, in one place: the cache key, reading and writing (atomically), and the
resumable state of an interrupted run.

A checkpoint is a dict ``kind, config, history, state_dict`` (``save_checkpoint``); ``fit``'s
cached result adds ``fit`` (the settings of ``TrainConfig.key_fields``) and ``epoch``; a
partial checkpoint adds ``optimizer``, ``rng_cpu``, ``rng_generator`` and ``rng_cuda``.
"""
from __future__ import annotations

import hashlib
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from .configs import ModelConfig
from .models import build_model, model_kind
from .runtime import atomic_write, choose_device, rng_state, set_rng_state

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
    device = choose_device(device)
    init = None
    if not config.reset:
        init = parameters_fingerprint(model)
    source = dict(version=CACHE_VERSION, kind=model_kind(model), config=model.config.kwargs(),
                  data=fingerprint(train_x),
                  fit=config.key_fields(model.config.likelihood, device), init=init)
    key = hashlib.sha256(json.dumps(source, sort_keys=True).encode()).hexdigest()[:20]
    return key, source


def save(obj: dict, path) -> Path:
    """Write a checkpoint dict to ``path`` atomically."""
    return atomic_write(path, lambda tmp: torch.save(obj, tmp))


def load_file(path) -> dict:
    """The one ``torch.load`` of the package: a file of tensors and plain values (no pickled
    code), on the CPU."""
    return torch.load(path, map_location="cpu", weights_only=True)


def read(path) -> dict:
    """The checkpoint dict at ``path``, or a ``CheckpointError`` (a ``ValueError``) that names
    the file and says what to do; ``FileNotFoundError`` when there is no file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        ckpt = load_file(path)
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
    state = {n: t.detach().cpu().clone() for n, t in model.state_dict().items()}
    return dict(kind=model_kind(model), config=model.config.kwargs(), **extra,
                history=history, state_dict=state)


def save_checkpoint(model, history: dict, path) -> Path:
    """Write ``model`` (kind, configuration, parameters) and its history to ``path``, atomically."""
    return save(state_of(model, history), path)


def model_from(ckpt: dict, device=None):
    """The model a checkpoint dict describes, its parameters loaded (float16 ones, as
    ``campaign.shipping.ship`` writes them, turned back into float32), in eval mode on
    ``device``."""
    model = build_model(ModelConfig(ckpt["kind"], **ckpt["config"]))
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
    save(state_of(model, history, fit=settings, epoch=epoch, optimizer=optimizer.state_dict(),
                  **rng_state(device, generator)), path)


def restore_partial(partial: dict, model, optimizer, generator, device) -> tuple[dict, int]:
    """Load a partial checkpoint into the run's objects; returns ``(history, epoch)``."""
    model.load_state_dict(partial["state_dict"])
    optimizer.load_state_dict(partial["optimizer"])
    set_rng_state(partial, device, generator)
    return partial["history"], partial["epoch"]


def parameters_fingerprint(module, *, dtype=torch.float32, floating_only: bool = True) -> str:
    """``fingerprint`` of a module's parameters and buffers (its floating-point ones only, by
    default), flattened into one tensor of ``dtype``."""
    return fingerprint(torch.cat([t.detach().flatten().cpu().to(dtype)
                                  for t in module.state_dict().values()
                                  if t.is_floating_point() or not floating_only]))


class EstimateProgress:
    """The resumable progress of a long estimate (``likelihood.log_likelihood(resume=path)``):
    the finished chunks and the random streams, saved at most every ``every`` seconds, kept
    only while it matches the model, the images, k, the chunking and the seed."""

    def __init__(self, path, every, model, x, k, b_chunk, seed, device):
        self.path, self.every, self.device = path, every, device
        self.state = None
        if path is None:
            return
        if seed is None:
            raise ValueError("log_likelihood(resume=...) needs a seed: an estimate on the "
                             "global random stream cannot be continued")
        self.meta = dict(k=k, n=int(x.shape[0]), b_chunk=b_chunk, seed=seed,
                         x=fingerprint(x), model=parameters_fingerprint(model))
        self.saved_at = time.monotonic()

    def load(self) -> tuple[list, list, int]:
        """(log-likelihood chunks, ELBO chunks, the next example) to continue from."""
        if self.path is None or not Path(self.path).is_file():
            return [], [], 0
        try:
            state = load_file(self.path)
        except Exception:     # a damaged file: start afresh, it is only progress
            return [], [], 0
        if state.get("meta") != self.meta:
            return [], [], 0
        self.state = state
        return ([state["ll"].to(self.device)], [state["elbo"].to(self.device)],
                int(state["next"]))

    def restore_stream(self) -> None:
        if self.state is not None:
            set_rng_state(self.state, self.device)

    def save(self, lls, elbos, next_start) -> None:
        if self.path is None or time.monotonic() - self.saved_at < self.every:
            return
        save(dict(meta=self.meta, next=next_start, ll=torch.cat(lls).cpu(),
                  elbo=torch.cat(elbos).cpu(), **rng_state(self.device)), self.path)
        self.saved_at = time.monotonic()

    def done(self) -> None:
        if self.path is not None:
            Path(self.path).unlink(missing_ok=True)
