"""Named experiment configurations that several chapters train.

Chapters 4 (hierarchical VAEs), 6 (Ladder VAEs) and 7 (reproducing the paper) train the
same models on the same data. Building them from the functions here keeps their
configurations identical, so that ``fit``'s checkpoint cache (keyed by the full
configuration) trains each model once and every later chapter loads it.

    from lvae_core import experiments as ex
    data = ex.book_data()                       # mnist-5k (a small subset in fast mode)
    model, history = ex.train("hvae", 5, data)  # the paper's 5-layer hierarchy

The architecture is the Ladder VAE paper's (``configs.sonderby2016``; Sønderby et al.,
2016): MLP blocks of 512-256-128-64-32 units between stochastic layers of 64-32-16-8-4
Gaussian units, leaky ReLU, batch norm, Bernoulli likelihood. A model with L layers keeps
the first L entries. Training is short (the paper trains 2000 epochs on 60,000 images);
the settings are ``training_settings()``.
"""
from __future__ import annotations

import time

from .configs import LVAE_HIDDEN, LVAE_LATENT, TrainConfig, sonderby2016
from .data import Dataset, load_dataset
from .models import LatentVariableModel, build_model
from .settings import pick
from .train import fit

#: Widths of the MLP blocks and sizes of the stochastic layers in the Ladder VAE paper
#: (``configs.LVAE_HIDDEN`` and ``configs.LVAE_LATENT``).
PAPER_HIDDEN, PAPER_LATENT = LVAE_HIDDEN, LVAE_LATENT


def hierarchy_config(n_layers: int = 5) -> dict:
    """Keyword arguments of a model with the paper's first ``n_layers`` (1 to 5) layers."""
    return sonderby2016("hvae", n_layers).kwargs()


def book_data() -> Dataset:
    """The offline ``mnist-5k`` (4,000 train / 1,000 test); 1,000 / 200 in fast mode."""
    data = load_dataset("mnist-5k")
    return pick(data, data.subset(1000, 200))


def training_settings() -> TrainConfig:
    """The training configuration the chapters share: Adam with lr 1e-3, batch 256, dynamic
    binarization, a linear KL warm-up over the first quarter of training, seed 0. (The
    paper: lr 2e-4, 2000 epochs, warm-up over 200; far beyond a laptop chapter.)"""
    return TrainConfig(epochs=pick(40, 2), warmup_epochs=pick(10, 1), batch_size=256, lr=1e-3,
                       k=1, seed=0)


def make_model(kind: str = "hvae", n_layers: int = 5, seed: int = 0) -> LatentVariableModel:
    """An untrained ``"hvae"`` or ``"lvae"`` (or ``"vae"`` with ``n_layers=1``) with the
    paper's widths, initialised from ``seed``. Built with the same seed, a HierarchicalVAE
    and a LadderVAE have identical generative parameters (the generative model is built first)."""
    return build_model(sonderby2016(kind, n_layers), seed=seed)


def train(kind: str = "hvae", n_layers: int = 5, data: Dataset | None = None, *,
          progress: bool = False, **changes) -> tuple[LatentVariableModel, dict]:
    """Train (or load from the cache) a model with ``training_settings()``, with ``changes``
    to its fields (``warmup_epochs=0``, say). Returns ``(model in eval mode, history)``;
    ``history["wall_seconds"]`` is the time this call took (near zero when the cache had it)."""
    data = book_data() if data is None else data
    model = make_model(kind, n_layers)
    start = time.perf_counter()
    history = fit(model, data, training_settings().replace(**changes), progress=progress)
    history = dict(history, wall_seconds=time.perf_counter() - start)
    return model.eval(), history


def step_seconds(models: dict, x, repeats: int = 5) -> dict:
    """Seconds of one training step (the ELBO's forward and backward pass, no update) of each
    model on the batch ``x``, the models taking turns so that they share the machine's load:
    the median of ``repeats``. The models stay in eval mode meanwhile (their batch-norm
    statistics do not move) and keep no gradient."""
    import time

    import torch

    from .bounds import elbo
    from .runtime import eval_mode
    times = {name: [] for name in models}
    for _ in range(repeats):
        for name, model in models.items():
            with eval_mode(model):
                xb = torch.bernoulli(x.to(model.device))
                t0 = time.perf_counter()
                (-elbo(model.log_weights(xb)).mean()).backward()
                times[name].append(time.perf_counter() - t0)
                model.zero_grad(set_to_none=True)
    return {name: sorted(t)[len(t) // 2] for name, t in times.items()}
