"""Figures the book uses again and again. Every function draws on a matplotlib Axes
(or makes a figure) and returns it; nothing is shown or saved here.

Figures have a white background so that they read well in the book's light and dark themes.
"""
from __future__ import annotations

import numpy as np
import torch


def book_style() -> None:
    """Matplotlib defaults for the book: white figures, readable fonts, no top/right spines."""
    import matplotlib as mpl
    mpl.rcParams.update({
        "figure.facecolor": "white", "axes.facecolor": "white", "savefig.facecolor": "white",
        "figure.dpi": 100, "font.size": 10, "axes.spines.top": False, "axes.spines.right": False,
        "axes.grid": True, "grid.alpha": 0.3, "image.cmap": "viridis",
    })


def _new_ax(ax, figsize=(5, 4)):
    import matplotlib.pyplot as plt
    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def image_grid(images, image_shape, nrow: int = 10, ax=None, title: str | None = None):
    """Show ``images`` (N, H*W) in [0, 1] as a grid with ``nrow`` images per row."""
    images = torch.as_tensor(images).detach().cpu().float().reshape(-1, *image_shape).numpy()
    n, (h, w) = len(images), image_shape
    rows = int(np.ceil(n / nrow))
    canvas = np.ones((rows * (h + 1) + 1, nrow * (w + 1) + 1))
    for i, img in enumerate(images):
        r, c = divmod(i, nrow)
        canvas[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + c * (w + 1):1 + c * (w + 1) + w] = img
    ax = _new_ax(ax, figsize=(nrow * 0.6, rows * 0.6))
    ax.imshow(canvas, cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def scatter_by_label(embedding, labels, ax=None, title: str | None = None, legend: bool = True,
                     s: float = 4.0):
    """A 2-D scatter of ``embedding`` (N, 2) coloured by integer ``labels`` (tab10)."""
    embedding, labels = np.asarray(embedding), np.asarray(labels)
    ax = _new_ax(ax)
    for c in np.unique(labels):
        pts = embedding[labels == c]
        ax.scatter(pts[:, 0], pts[:, 1], s=s, color=f"C{int(c) % 10}", label=str(int(c)), alpha=0.7,
                   linewidths=0)
    if legend:
        ax.legend(markerscale=3, fontsize=7, ncol=2, frameon=False, loc="best")
    if title:
        ax.set_title(title)
    return ax


def pca_layers(embeddings, labels, axes=None, title_prefix: str = ""):
    """One PCA scatter per latent layer from ``analysis.pca_embedding``; returns the axes."""
    import matplotlib.pyplot as plt
    if axes is None:
        _, axes = plt.subplots(1, len(embeddings), figsize=(3.2 * len(embeddings), 3.2),
                               squeeze=False)
        axes = axes[0]
    for i, ((emb, ratio), ax) in enumerate(zip(embeddings, axes)):
        scatter_by_label(emb, labels, ax=ax, legend=(i == len(embeddings) - 1))
        ax.set_title(f"{title_prefix}z{i + 1}: PC1+PC2 {100 * ratio[:2].sum():.0f}% var.",
                     fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    return axes


def kl_heatmap(kl_units, ax=None, title: str | None = None, vmax: float | None = None):
    """Heatmap of KL per unit: ``kl_units`` is a list over layers of per-unit values
    (one column per layer, units top to bottom), or a history's list over epochs
    (then x is the epoch and y runs over every unit of every layer)."""
    import matplotlib.pyplot as plt
    ax = _new_ax(ax, figsize=(6, 4))
    first = kl_units[0]
    if isinstance(first[0], (list, tuple, np.ndarray, torch.Tensor)) and np.ndim(first[0]) == 1:
        # history: epochs x layers x units -> units x epochs
        matrix = np.array([np.concatenate([np.asarray(u) for u in epoch]) for epoch in kl_units]).T
        bounds = np.cumsum([len(u) for u in first])[:-1]
        im = ax.imshow(matrix, aspect="auto", origin="upper", cmap="magma", vmin=0, vmax=vmax,
                       extent=(0.5, matrix.shape[1] + 0.5, matrix.shape[0] - 0.5, -0.5),
                       interpolation="nearest")
        for y in bounds:
            ax.axhline(y - 0.5, color="white", lw=0.8)
        ax.set_xlabel("epoch")
        ax.set_ylabel("unit (layers from z1 down to zL)")
    else:
        width = max(len(u) for u in kl_units)
        matrix = np.full((width, len(kl_units)), np.nan)
        for i, u in enumerate(kl_units):
            matrix[:len(u), i] = np.asarray(torch.as_tensor(u).cpu())
        im = ax.imshow(matrix, aspect="auto", cmap="magma", vmin=0, vmax=vmax,
                       interpolation="nearest")
        ax.set_xticks(range(len(kl_units)), [f"z{i + 1}" for i in range(len(kl_units))])
        ax.set_ylabel("unit")
    ax.grid(False)
    plt.colorbar(im, ax=ax, label="KL (nats)")
    if title:
        ax.set_title(title)
    return ax
