"""Trained models shipped with the results, for the book to load in seconds: float16
parameters (``results.Results.model`` reads them back in float32) and their latent layers'
PCA coordinates."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import checkpoints as ckpt
from ..analysis import pca_embedding
from ..results import Results
from ..runtime import atomic_savez
from .curves import snapshot_dir
from .grids import CURVE_IMAGES, Run


def ship(model, history, path) -> Path:
    """Save ``model`` with float16 parameters (batch-norm statistics and integers kept as
    they are)."""
    state = ckpt.state_of(model, history)
    state["state_dict"] = {n: (t.half() if t.is_floating_point() and "running" not in n else t)
                           for n, t in state["state_dict"].items()}
    return ckpt.save(state, path)


def ship_with_pca(model, history, data, out, name: str, seed: int = 0) -> Path:
    """``ship`` to ``<out>/models/<name>.pt``, and ``save_pca`` beside it."""
    path = ship(model, history, Results(out).model_path(name))
    save_pca(model, data, path.with_suffix(".pca.npz"), seed=seed)
    return path


def ship_latest_snapshot(run: Run, data, out) -> Path | None:
    """Ship the newest learning-curve snapshot of a run that is still training (no
    ``runs/<name>.json`` yet), with its PCA coordinates, so that the book can show the best
    model trained so far. A finished run's shipped final model is left alone. Returns the
    path written, or None."""
    snaps = sorted(snapshot_dir(run, out).glob("epoch*.pt"))
    if Results(out).finished(run.name) or not snaps:
        return None
    model, history = ckpt.load_checkpoint(snaps[-1])
    return ship_with_pca(model, history, data, out, run.name)


def save_pca(model, data, path, n_images: int = CURVE_IMAGES, seed: int = 0) -> Path:
    """The first two principal components of one posterior sample of every latent layer for
    the first ``n_images`` test images, with their labels, as ``.npz``: ``z1`` ... ``zL``
    (``(n_images, 2)``), ``ratio_z1`` ... (explained variance ratios) and ``labels``."""
    x = data.test_binary[:n_images]
    arrays = {"labels": data.test_y[:n_images].numpy()}
    for i, (emb, ratio) in enumerate(pca_embedding(model, x, seed=seed), start=1):
        arrays[f"z{i}"], arrays[f"ratio_z{i}"] = emb.astype(np.float32), ratio
    return atomic_savez(path, **arrays)
