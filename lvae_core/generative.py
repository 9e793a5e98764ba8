"""The generative model, written once and shared by every model in the package:

    p(x, z) = p(z_L) prod_{i=1}^{L-1} p(z_i | z_{i+1}) p(x | z_1),

with p(z_L) = N(0, I), p(z_i | z_{i+1}) = N(mu_p_i, var_p_i) computed by an MLP block
from z_{i+1}, and p(x | z_1) Bernoulli (logits) or Gaussian (mean, variance).

Indices in code are 0-based: layer ``i`` of the code is z_{i+1} of the paper.
The block between z_i and z_{i+1} has the width ``hidden[i+1]``, mirroring the
inference network; the block between x and z_1 has the width ``hidden[0]``.
"""
from __future__ import annotations

import torch
from torch import nn

from .blocks import GaussianHead, mlp_block
from .distributions import log_bernoulli, log_normal, reparameterize, softplus_variance
from .runtime import device_of

LIKELIHOODS = ("bernoulli", "gaussian")


class GenerativeModel(nn.Module):
    def __init__(self, x_dim, hidden, latent, likelihood="bernoulli", batch_norm=True,
                 activation="leaky_relu"):
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {likelihood!r}; expected one of {LIKELIHOODS}")
        self.x_dim, self.latent, self.likelihood = x_dim, tuple(latent), likelihood
        # top_down[i] computes p(z_i | z_{i+1}) for i = 0 .. L-2
        self.top_down = nn.ModuleList(
            nn.Sequential(mlp_block(latent[i + 1], hidden[i + 1], activation, batch_norm),
                          GaussianHead(hidden[i + 1], latent[i]))
            for i in range(len(latent) - 1)
        )
        out_dim = x_dim if likelihood == "bernoulli" else 2 * x_dim
        self.decoder = nn.Sequential(mlp_block(latent[0], hidden[0], activation, batch_norm),
                                     nn.Linear(hidden[0], out_dim))

    @property
    def num_layers(self) -> int:
        return len(self.latent)

    def prior(self, i: int, z_above: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mu_p, var_p) of p(z_{i+1} | z_{i+2}) in the paper's indices: code layer ``i``
        (0-based, ``i < L-1``) from ``z_above``, code layer ``i + 1``, ``(rows, latent[i+1])``."""
        return self.top_down[i](z_above)

    def decode(self, z1: torch.Tensor):
        """Parameters of p(x | z_1): logits ``(rows, x_dim)`` (Bernoulli), or (mean, var)
        (Gaussian)."""
        out = self.decoder(z1)
        if self.likelihood == "bernoulli":
            return out
        mean, raw_var = out.split(self.x_dim, dim=-1)
        return mean, softplus_variance(raw_var)

    def log_px(self, x: torch.Tensor, z1: torch.Tensor) -> torch.Tensor:
        """log p(x | z_1) per example. ``x``: ``(B, x_dim)``; ``z1``: ``(k, B, latent[0])``.
        Returns ``(k, B)``; x is broadcast over the k samples (never copied)."""
        k, b = z1.shape[:2]
        params = self.decode(z1.reshape(k * b, -1))
        if self.likelihood == "bernoulli":
            return log_bernoulli(x, params.view(k, b, -1)).sum(-1)
        mean, var = params
        return log_normal(x, mean.view(k, b, -1), var.view(k, b, -1)).sum(-1)

    def mean_x(self, z1: torch.Tensor) -> torch.Tensor:
        """E[x | z_1]: Bernoulli probabilities or the Gaussian mean, ``(rows, x_dim)``."""
        params = self.decode(z1)
        return torch.sigmoid(params) if self.likelihood == "bernoulli" else params[0]

    @torch.no_grad()
    def sample(self, n: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Ancestral samples: z_L ~ N(0, I), z_i ~ p(z_i | z_{i+1}), then E[x | z_1].
        Returns ``(x_mean (n, x_dim), [z_1, ..., z_L])``."""
        device = device_of(self)
        z = torch.randn(n, self.latent[-1], device=device)
        zs = [z]
        for i in reversed(range(self.num_layers - 1)):
            z = reparameterize(*self.prior(i, z))
            zs.append(z)
        return self.mean_x(z), zs[::-1]

    @torch.no_grad()
    def init_output_bias(self, x_mean: torch.Tensor) -> None:
        """Set the output bias to the logit of the training mean (Burda et al., 2016)."""
        last = self.decoder[-1]
        if self.likelihood == "bernoulli":
            p = x_mean.clamp(1e-3, 1 - 1e-3).to(last.bias)
            last.bias.copy_(torch.log(p) - torch.log1p(-p))
        else:
            last.bias[: self.x_dim].copy_(x_mean.to(last.bias))
