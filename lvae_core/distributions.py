"""Gaussian and Bernoulli log densities, the Gaussian KL, and the precision-weighted merge.

Every function works elementwise and returns per-unit values: sum over the last
dimension at the call site to get per-example values. Variances (not standard
deviations or log-variances) are the parametrisation throughout, as in the
Ladder VAE paper (Sønderby et al., 2016).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2.0 * math.pi)

#: Small constant added to every softplus variance so that no variance reaches zero.
VAR_FLOOR = 1e-4


def softplus_variance(raw: torch.Tensor) -> torch.Tensor:
    """``softplus(raw) + VAR_FLOOR``: an unconstrained network output mapped to a variance.

    Note that softplus is applied to a raw linear output, never to a log-variance
    (which would force every variance above ``log 2``-ish values and is a common bug).
    """
    return F.softplus(raw) + VAR_FLOOR


def log_normal(z: torch.Tensor, mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, var) per unit: ``-1/2 (log 2 pi + log var + (z - mu)^2 / var)``."""
    return -0.5 * (LOG_2PI + torch.log(var) + (z - mu) ** 2 / var)


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, 1) per unit."""
    return -0.5 * (LOG_2PI + z**2)


def log_bernoulli(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """log Bernoulli(x; sigmoid(logits)) per unit, computed stably from the logits:
    ``x * logits - softplus(logits)`` (x and logits broadcast against each other)."""
    return x * logits - F.softplus(logits)


def gaussian_kl(
    mu_q: torch.Tensor, var_q: torch.Tensor, mu_p: torch.Tensor, var_p: torch.Tensor
) -> torch.Tensor:
    """KL(N(mu_q, var_q) || N(mu_p, var_p)) per unit, in closed form:

    ``1/2 [log(var_p / var_q) + (var_q + (mu_q - mu_p)^2) / var_p - 1]``.
    """
    return 0.5 * (torch.log(var_p) - torch.log(var_q) + (var_q + (mu_q - mu_p) ** 2) / var_p - 1.0)


def precision_weighted_merge(
    mu_hat: torch.Tensor, var_hat: torch.Tensor, mu_p: torch.Tensor, var_p: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Ladder VAE's merge of bottom-up and top-down Gaussians (Sønderby et al., eq. 17-18).

    ``var_q = 1 / (1/var_hat + 1/var_p)`` and
    ``mu_q = (mu_hat/var_hat + mu_p/var_p) * var_q``: the normalised product of the
    two Gaussian densities N(mu_hat, var_hat) N(mu_p, var_p).

    Returns ``(mu_q, var_q)`` with the broadcast shape of the inputs.
    """
    precision_hat = 1.0 / var_hat
    precision_p = 1.0 / var_p
    var_q = 1.0 / (precision_hat + precision_p)
    mu_q = (mu_hat * precision_hat + mu_p * precision_p) * var_q
    return mu_q, var_q


def reparameterize(mu: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
    """A sample ``z = mu + sqrt(var) * eps`` with ``eps ~ N(0, I)``, differentiable in mu and
    var."""
    return mu + torch.sqrt(var) * torch.randn_like(mu)
