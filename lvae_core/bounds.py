"""Every bound is a function of the log importance weights
log w_j = log p(x, z_j) - log q(z_j | x), z_j ~ q(z | x), with shape (k, batch):

* ``elbo(log_w)``       = 1/k sum_j log w_j                      (an estimate of the ELBO)
* ``iwae_bound(log_w)`` = log 1/k sum_j w_j = logsumexp_j log w_j - log k   (L_k)

Both are functions of tensors alone; the importance-sampled log-likelihood, which runs a
model over chunks of samples and examples, is ``likelihood.log_likelihood``.
"""
from __future__ import annotations

import math

import torch


def elbo(log_w: torch.Tensor) -> torch.Tensor:
    """Per-example ELBO estimate from ``log_w`` of shape (k, B): the mean over k (for k = 1,
    the one row itself)."""
    return log_w[0] if log_w.shape[0] == 1 else log_w.mean(0)


def iwae_bound(log_w: torch.Tensor) -> torch.Tensor:
    """Per-example importance weighted bound L_k = logsumexp_j(log w_j) - log k, (B,)."""
    return torch.logsumexp(log_w, 0) - math.log(log_w.shape[0])
