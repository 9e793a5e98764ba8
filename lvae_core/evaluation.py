"""The one evaluation recipe, shared by ``python -m lvae_core evaluate``, ``train --eval-k``
and the reproduce runner: the importance-sampled test log-likelihood L_k (with the ELBO from
the same k samples), the active units and the KL per layer, on the model's test images."""
from __future__ import annotations

import math
import time

import torch

from .analysis import active_units, kl_per_layer
from .likelihood import log_likelihood

#: How ``evaluate`` counts active units (``analysis.active_units``): recorded in results so
#: that counts made with the earlier plain 10-sample estimate can be told apart and redone.
ACTIVE_UNITS_ESTIMATOR = "debiased, 100 samples"


def test_images(model, data, n_test: int | None = None) -> torch.Tensor:
    """The first ``n_test`` test images as the model's likelihood reads them: binarized once
    with the data set's test seed (Bernoulli), or as they are (Gaussian)."""
    binary = model.config.likelihood == "bernoulli"
    return (data.test_binary if binary else data.test_x)[:n_test]


def evaluate(model, x: torch.Tensor, k: int, *, seed: int = 0, max_rows: int | None = None,
             compiled=False, progress: bool = False,
             resume=None) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Evaluate ``model`` on the images ``x``: ``(summary, per-image L_k, per-image ELBO)``.
    The summary holds ``k``, ``n_test``, ``test_log_likelihood`` (the mean L_k),
    ``test_nll`` and its standard error ``test_nll_sem``, ``test_elbo``, ``active_units``,
    ``kl_per_layer``, ``eval_seconds`` and ``eval_images_per_second`` (of the L_k estimate).
    ``resume``: a progress file for the L_k estimate (see ``log_likelihood``); the seconds
    are those of this call."""
    t0 = time.perf_counter()
    ll, elbo = log_likelihood(model, x, k=k, max_rows=max_rows, seed=seed, progress=progress,
                              return_elbo=True, compiled=compiled, resume=resume)
    seconds = time.perf_counter() - t0
    summary = dict(k=k, n_test=len(x), test_log_likelihood=ll.mean().item(),
                   test_nll=-ll.mean().item(), test_nll_sem=ll.std().item() / math.sqrt(len(ll)),
                   test_elbo=elbo.mean().item(), active_units=active_units(model, x),
                   active_units_estimator=ACTIVE_UNITS_ESTIMATOR,
                   kl_per_layer=kl_per_layer(model, x), eval_seconds=seconds,
                   eval_images_per_second=len(x) / seconds)
    return summary, ll, elbo
