"""The two small building blocks every network in the package is made of.

* ``mlp_block``: two dense layers, each followed by (optional) batch norm and the
  activation. This is the "MLP block" of the Ladder VAE paper.
* ``GaussianHead``: one dense layer giving the mean and the variance
  (softplus plus a floor) of a diagonal Gaussian.
"""
from __future__ import annotations

import torch
from torch import nn

from .distributions import softplus_variance

ACTIVATIONS = {
    "leaky_relu": nn.LeakyReLU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "elu": nn.ELU,
    "softplus": nn.Softplus,
}


def make_activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(
            f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}"
        ) from None


def mlp_block(in_dim: int, width: int, activation: str, batch_norm: bool) -> nn.Sequential:
    """Two dense layers ``in_dim -> width -> width``, each followed by batch norm
    (when ``batch_norm``) and the activation. Input and output are ``(rows, features)``."""
    layers: list[nn.Module] = []
    for d_in in (in_dim, width):
        layers.append(nn.Linear(d_in, width))
        if batch_norm:
            layers.append(nn.BatchNorm1d(width))
        layers.append(make_activation(activation))
    return nn.Sequential(*layers)


class GaussianHead(nn.Module):
    """``h -> (mu, var)`` with ``mu = W_mu h + b_mu`` and ``var = softplus(W_v h + b_v) + floor``.

    Both come from one ``nn.Linear`` (one matrix product instead of two).
    Shapes: ``(rows, in_dim) -> (rows, out_dim), (rows, out_dim)``.
    """

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.out_dim = out_dim
        self.linear = nn.Linear(in_dim, 2 * out_dim)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, raw_var = self.linear(h).split(self.out_dim, dim=-1)
        return mu, softplus_variance(raw_var)
