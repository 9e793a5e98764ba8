"""Named experiment configurations that several chapters train.

Chapters 4 (hierarchical VAEs), 6 (Ladder VAEs) and 7 (reproducing the paper) train the
same models on the same data. Building them from the functions here keeps their
configurations identical, so that ``fit``'s checkpoint cache (keyed by the full
configuration) trains each model once and every later chapter loads it.

    from lvae_core import experiments as ex
    data = ex.book_data()                       # mnist-5k (a small subset in fast mode)
    model, history = ex.train("hvae", 5, data)  # the paper's 5-layer hierarchy

The architecture is the Ladder VAE paper's (Sønderby et al., 2016): MLP blocks of
512-256-128-64-32 units between stochastic layers of 64-32-16-8-4 Gaussian units, leaky
ReLU, batch norm, Bernoulli likelihood. A model with L layers keeps the first L entries.
Training is short (the paper trains 2000 epochs on 60,000 images); the settings are in
``training_settings``.
"""
from __future__ import annotations

import time

import torch

from .data import Dataset, load_dataset
from .models import LatentVariableModel, build_model
from .settings import pick
from .train import fit

#: Widths of the MLP blocks and sizes of the stochastic layers in the Ladder VAE paper.
PAPER_HIDDEN = (512, 256, 128, 64, 32)
PAPER_LATENT = (64, 32, 16, 8, 4)


def hierarchy_config(n_layers: int = 5) -> dict:
    """Keyword arguments of a model with the paper's first ``n_layers`` (1 to 5) layers."""
    if not isinstance(n_layers, int) or not 1 <= n_layers <= len(PAPER_LATENT):
        raise ValueError(f"n_layers must be an integer from 1 to {len(PAPER_LATENT)}, "
                         f"got {n_layers!r}")
    return dict(x_dim=784, hidden=PAPER_HIDDEN[:n_layers], latent=PAPER_LATENT[:n_layers],
                likelihood="bernoulli", batch_norm=True, activation="leaky_relu")


def book_data() -> Dataset:
    """The offline ``mnist-5k`` (4,000 train / 1,000 test); 1,000 / 200 in fast mode."""
    data = load_dataset("mnist-5k")
    return pick(data, data.subset(1000, 200))


def training_settings() -> dict:
    """Keyword arguments of ``fit`` shared by the chapters: Adam with lr 1e-3, batch 256,
    dynamic binarization, a linear KL warm-up over the first quarter of training, seed 0.
    (The paper: lr 2e-4, 2000 epochs, warm-up over 200; far beyond a laptop chapter.)"""
    return dict(epochs=pick(40, 2), warmup_epochs=pick(10, 1), batch_size=256, lr=1e-3, k=1,
                seed=0)


def make_model(kind: str = "hvae", n_layers: int = 5, seed: int = 0) -> LatentVariableModel:
    """An untrained ``"hvae"`` or ``"lvae"`` (or ``"vae"`` with ``n_layers=1``) with the
    paper's widths, initialised from ``seed``. Built with the same seed, a HierarchicalVAE
    and a LadderVAE have identical generative parameters (the generative model is built first)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return build_model(kind, **hierarchy_config(n_layers))


def train(kind: str = "hvae", n_layers: int = 5, data: Dataset | None = None, *,
          progress: bool = False, **overrides) -> tuple[LatentVariableModel, dict]:
    """Train (or load from the cache) a model with ``training_settings()``, updated by
    ``overrides``. Returns ``(model in eval mode, history)``; ``history["wall_seconds"]``
    is the time this call took (near zero when the cache had the model)."""
    data = book_data() if data is None else data
    model = make_model(kind, n_layers)
    start = time.perf_counter()
    history = fit(model, data, **{**training_settings(), **overrides}, progress=progress)
    history = dict(history, wall_seconds=time.perf_counter() - start)
    return model.eval(), history
