"""The two swappable inference networks. Both return, for k samples of every latent
layer, the sample and the parameters of q and of the generative prior at that sample:

* ``BottomUpInference`` (VAE, hierarchical VAE): q(z|x) = q(z_1|x) prod q(z_i | z_{i-1}).
* ``LadderInference`` (LVAE): a deterministic upward pass d_i = MLP(d_{i-1}) gives
  (mu_hat_i, var_hat_i); a downward pass samples z_L ~ N(mu_hat_L, var_hat_L) and then
  z_i from the precision-weighted merge of (mu_hat_i, var_hat_i) with the generative
  p(z_i | z_{i+1}) evaluated at the *posterior* sample z_{i+1}. The downward pass is
  the generative model's own top-down path: no parameters of its own.

Indices: the docstrings use the papers' 1-based z_1 (next to x) .. z_L (the top); in code
the lists are 0-based, so list entry ``i`` is z_{i+1}. Shapes: B examples, k samples each,
``rows = k * B`` (sample-major: row ``j * B + b`` is sample j of example b), d_i =
``latent[i - 1]`` units in z_i.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from .blocks import GaussianHead, mlp_block
from .distributions import (log_normal, log_standard_normal, precision_weighted_merge,
                            reparameterize)


@dataclass
class LayerSample:
    """One stochastic layer for k samples of a batch: every tensor is ``(k, B, dim)``.
    ``mu_p``/``var_p`` are ``None`` for the top layer, whose prior is N(0, I)."""
    z: torch.Tensor
    mu_q: torch.Tensor
    var_q: torch.Tensor
    mu_p: Optional[torch.Tensor]
    var_p: Optional[torch.Tensor]

    def log_q(self) -> torch.Tensor:
        """log q(z_i | .) per unit, ``(k, B, dim)``."""
        return log_normal(self.z, self.mu_q, self.var_q)

    def log_p(self) -> torch.Tensor:
        """log p(z_i | z_{i+1}) per unit (log N(z; 0, I) on the top layer), ``(k, B, dim)``."""
        if self.mu_p is None:
            return log_standard_normal(self.z)
        return log_normal(self.z, self.mu_p, self.var_p)

    def prior_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.mu_p is None:
            return torch.zeros_like(self.z), torch.ones_like(self.z)
        return self.mu_p, self.var_p


def _repeat(t: torch.Tensor, k: int) -> torch.Tensor:
    """``(B, d) -> (k*B, d)``, sample-major (a view when k == 1)."""
    return t if k == 1 else t.unsqueeze(0).expand(k, *t.shape).reshape(k * t.shape[0], -1)


def _layers(zs, qs, priors, k, b) -> list[LayerSample]:
    """``LayerSample``s of ``(k, B, d)`` views from per-layer ``(rows, d)`` samples, (mu_q,
    var_q) and (mu_p, var_p) (None for the top layer)."""
    view = lambda t: None if t is None else t.view(k, b, -1)
    return [LayerSample(view(z), view(mu_q), view(var_q), view(mu_p), view(var_p))
            for z, (mu_q, var_q), (mu_p, var_p) in zip(zs, qs, priors)]


class BottomUpInference(nn.Module):
    """q(z_1 | x) prod_i q(z_i | z_{i-1}); each factor is an MLP block and a Gaussian head."""

    def __init__(self, x_dim, hidden, latent, batch_norm=True, activation="leaky_relu"):
        super().__init__()
        inputs = (x_dim, *latent[:-1])
        self.layers = nn.ModuleList(
            nn.Sequential(mlp_block(inputs[i], hidden[i], activation, batch_norm),
                          GaussianHead(hidden[i], latent[i]))
            for i in range(len(latent))
        )

    def forward(self, x: torch.Tensor, k: int, generative) -> list[LayerSample]:
        """The upward pass: z_1 ~ q(z_1 | x), then z_i ~ q(z_i | z_{i-1}) for i = 2..L, each
        N(mu_q_i, var_q_i) from an MLP block and a Gaussian head; then the generative prior
        p(z_i | z_{i+1}) at each posterior sample (N(0, I) for z_L).

        ``x``: ``(B, x_dim)``. Returns the L layers z_1 .. z_L, each a ``LayerSample`` of
        ``(k, B, d_i)`` tensors."""
        b = x.shape[0]
        mu, var = (_repeat(t, k) for t in self.layers[0](x))   # q(z_1|x) is computed once
        zs, qs = [reparameterize(mu, var)], [(mu, var)]         # (rows, d_1) each
        for layer in self.layers[1:]:                           # q(z_i | z_{i-1}), i = 2..L
            mu, var = layer(zs[-1])
            qs.append((mu, var))
            zs.append(reparameterize(mu, var))
        priors = [generative.prior(i, z_above) for i, z_above in enumerate(zs[1:])]
        return _layers(zs, qs, priors + [(None, None)], k, b)


class LadderInference(nn.Module):
    """Upward pass d_i = MLP(d_{i-1}) with (mu_hat_i, var_hat_i) from d_i; downward pass
    by precision weighting with the generative model's top-down path."""

    def __init__(self, x_dim, hidden, latent, batch_norm=True, activation="leaky_relu"):
        super().__init__()
        inputs = (x_dim, *hidden[:-1])
        self.up = nn.ModuleList(mlp_block(inputs[i], hidden[i], activation, batch_norm)
                                for i in range(len(latent)))
        self.heads = nn.ModuleList(GaussianHead(hidden[i], latent[i]) for i in range(len(latent)))

    def upward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The upward pass: [(mu_hat_i, var_hat_i)] for i = 1..L, each ``(B, d_i)``."""
        d, hats = x, []
        for block, head in zip(self.up, self.heads):
            d = block(d)
            hats.append(head(d))
        return hats

    def forward(self, x: torch.Tensor, k: int, generative) -> list[LayerSample]:
        """The two passes of the Ladder VAE (Sønderby et al., 2016, eq. 17-19).

        Upward (deterministic, once per example): d_i = MLP(d_{i-1}) with d_0 = x, and
        (mu_hat_i, var_hat_i) from d_i, for i = 1..L (``upward``).
        Downward (per sample): z_L ~ q(z_L | x) = N(mu_hat_L, var_hat_L); then for
        i = L-1..1, the generative p(z_i | z_{i+1}) = N(mu_p_i, var_p_i) at the posterior
        sample z_{i+1}, merged with (mu_hat_i, var_hat_i) by precision weighting into
        q(z_i | z_{i+1}, x) = N(mu_q_i, var_q_i), and z_i drawn from it.

        ``x``: ``(B, x_dim)``. Returns the L layers z_1 .. z_L, each a ``LayerSample`` of
        ``(k, B, d_i)`` tensors (``mu_p``/``var_p`` of z_L are None: its prior is N(0, I))."""
        b = x.shape[0]
        hats = [(_repeat(mu, k), _repeat(var, k)) for mu, var in self.upward(x)]   # (rows, d_i)
        mu_q, var_q = hats[-1]                       # q(z_L | x) = N(mu_hat_L, var_hat_L)
        zs, qs, priors = [reparameterize(mu_q, var_q)], [(mu_q, var_q)], [(None, None)]
        for i in reversed(range(len(hats) - 1)):     # code layer i is z_{i+1}
            mu_p, var_p = generative.prior(i, zs[0])  # p(z_{i+1} | z_{i+2}) at the posterior sample
            mu_q, var_q = precision_weighted_merge(*hats[i], mu_p, var_p)
            zs.insert(0, reparameterize(mu_q, var_q))
            qs.insert(0, (mu_q, var_q))
            priors.insert(0, (mu_p, var_p))
        return _layers(zs, qs, priors, k, b)
