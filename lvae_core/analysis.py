"""Latent-space analysis: active units, KL per unit and layer, PCA of each latent layer.

All functions run the model in eval mode without autograd, over ``x`` in chunks,
and return per-layer results (index 0 is z_1, the layer next to the data).
"""
from __future__ import annotations

import numpy as np
import torch

from .runtime import device_of, eval_mode, seeded


def _traces(model, x, n_samples, chunk, seed):
    x = model.check(x)
    chunk = max(1, min(chunk, 2 ** 15 // n_samples))   # at most 2^15 sample rows at once
    with torch.inference_mode(), eval_mode(model), seeded(seed, device_of(model)):
        for start in range(0, x.shape[0], chunk):
            yield model.trace(x[start:start + chunk], n_samples, check=False)


def posterior_means(model, x, n_samples: int = 10, chunk: int = 1000, seed: int | None = 0):
    """E_q[z_i | x] per layer, each ``(B, latent[i])``. The mean of q is averaged over
    ``n_samples`` samples of the layers it depends on (exact for layers whose q depends on x
    alone)."""
    return [m for m, _ in _mean_estimates(model, x, n_samples, chunk, seed)]


def _mean_estimates(model, x, n_samples, chunk, seed):
    """Per layer: the estimate of E_q[z_i | x] (the mean of mu_q over ``n_samples`` samples
    of the layers it depends on) and the variance of that estimate (the samples' variance of
    mu_q over ``n_samples``; zero where q depends on x alone)."""
    means = [[] for _ in model.latent]
    noise = [[] for _ in model.latent]
    for trace in _traces(model, x, n_samples, chunk, seed):
        for m, v, layer in zip(means, noise, trace.layers):
            m.append(layer.mu_q.mean(0).cpu())
            mu = layer.mu_q.double()
            v.append((mu.var(0, unbiased=True) / n_samples if n_samples > 1
                      else torch.zeros_like(mu[0])).cpu())
    return [(torch.cat(m), torch.cat(v)) for m, v in zip(means, noise)]


def unit_activity(model, x, n_samples: int = 100, seed: int | None = 0,
                  debias: bool = True) -> list[torch.Tensor]:
    """A_u = Cov_x(E_q[u | x]) per unit (Burda et al., 2016), each ``(latent[i],)``.

    Below the top of a hierarchy, E_q[u | x] is an average over ``n_samples`` samples of the
    layers that q(u | .) depends on, and the Monte Carlo noise of that average adds its
    variance, Var(mu_q) / n_samples, to the spread across x: a unit whose q merely follows a
    noisy sample from above would look active. With ``debias`` (the default) that noise is
    estimated per image from the same samples and subtracted, an unbiased estimate of
    Cov_x(E_q[u | x]); for layers whose q depends on x alone nothing changes. ``debias=False``
    gives the plain estimate. What is left is the estimate's own scatter, about
    Var(mu_q) / n_samples * sqrt(2 / B) for B images: hence 100 samples by default.
    """
    result = []
    for means, noise in _mean_estimates(model, x, n_samples, 1000, seed):
        activity = means.double().var(0, unbiased=True)
        if debias:
            activity = activity - noise.mean(0)
        result.append(activity.float())
    return result


def active_units(model, x, threshold: float = 1e-2, n_samples: int = 100,
                 seed: int | None = 0, debias: bool = True) -> list[int]:
    """Number of active units per layer: units with Cov_x(E_q[u | x]) > ``threshold``
    (estimated by ``unit_activity``, without its Monte Carlo noise unless ``debias=False``)."""
    return [int((a > threshold).sum())
            for a in unit_activity(model, x, n_samples, seed, debias=debias)]


def kl_per_unit(model, x, n_samples: int = 10, chunk: int = 1000,
                seed: int | None = 0) -> list[torch.Tensor]:
    """KL term per unit, E_x E_q[log q(u | .) - log p(u | .)], each ``(latent[i],)`` in nats.
    Summed over a layer's units it is that layer's KL term of the ELBO."""
    totals, count = None, 0
    for trace in _traces(model, x, n_samples, chunk, seed):
        units = [u.mean(0).sum(0).cpu() for u in trace.kl_units]
        totals = units if totals is None else [t + u for t, u in zip(totals, units)]
        count += trace.log_px.shape[1]
    return [t / count for t in totals]


def kl_per_layer(model, x, n_samples: int = 10, seed: int | None = 0) -> list[float]:
    """The KL term of each layer, in nats per example."""
    return [float(t.sum()) for t in kl_per_unit(model, x, n_samples, seed=seed)]


def latent_samples(model, x, chunk: int = 1000, seed: int | None = 0) -> list[torch.Tensor]:
    """One sample of q(z_i | .) per example and layer, each ``(B, latent[i])``."""
    parts = [[] for _ in model.latent]
    for trace in _traces(model, x, 1, chunk, seed):
        for part, layer in zip(parts, trace.layers):
            part.append(layer.z[0].cpu())
    return [torch.cat(p) for p in parts]


def pca_embedding(model, x, n_components: int = 2, seed: int | None = 0):
    """PCA (scikit-learn) of posterior samples of each latent layer.

    Returns a list, one entry per layer, of ``(embedding (B, n_components) ndarray,
    explained_variance_ratio ndarray)``; a layer with fewer units than components is
    padded with zeros.
    """
    from sklearn.decomposition import PCA

    result = []
    for z in latent_samples(model, x, seed=seed):
        z = z.numpy().astype(np.float64)
        n = min(n_components, z.shape[1])
        pca = PCA(n_components=n, random_state=0).fit(z)
        emb = np.zeros((z.shape[0], n_components))
        emb[:, :n] = pca.transform(z)
        ratio = np.zeros(n_components)
        ratio[:n] = pca.explained_variance_ratio_
        result.append((emb, ratio))
    return result
