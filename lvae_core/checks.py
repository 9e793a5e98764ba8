"""Input checks that fail early with a message saying what was expected."""
from __future__ import annotations

import numbers

import torch


def check_k(k) -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"k (the number of importance samples) must be an integer >= 1, got {k!r}")
    return int(k)


def check_data(x, x_dim: int, *, binary: bool, name: str = "x") -> torch.Tensor:
    """Return ``x`` as a float tensor ``(B, x_dim)`` (images are flattened), or raise ValueError.

    Checks: a 2-D batch (or a batch of images with ``x_dim`` pixels), finite values, and,
    with ``binary`` (the data of a Bernoulli likelihood), values 0 or 1.
    """
    if not torch.is_tensor(x):
        try:
            x = torch.as_tensor(x)
        except Exception as err:
            raise TypeError(f"{name} must be a tensor or an array, got {type(x).__name__}") from err
    if x.dim() > 2:
        x = x.flatten(1)
    if x.dim() != 2 or x.shape[1] != x_dim:
        raise ValueError(
            f"{name} has shape {tuple(x.shape)}; expected (batch, {x_dim}) "
            f"(or a batch of images with {x_dim} pixels): the model was built with x_dim={x_dim}"
        )
    if not x.is_floating_point():
        x = x.float()
    bad = (~torch.isfinite(x)).sum().item()
    if bad:
        raise ValueError(f"{name} contains {bad} NaN or infinite values; clean or drop "
                         "those examples")
    if binary and x.numel() and not bool(((x == 0) | (x == 1)).all()):
        raise ValueError(
            f"a Bernoulli likelihood needs binary data (0 or 1), but {name} has values in "
            f"[{x.min().item():.3g}, {x.max().item():.3g}]; binarize it first "
            "(lvae_core.binarize(x, seed=0)) or build the model with likelihood='gaussian'"
        )
    return x
