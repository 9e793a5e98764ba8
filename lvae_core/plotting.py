"""Figures the book uses again and again. Every function draws on a matplotlib Axes
(or makes a figure) and returns it; only ``show`` shows (and, when asked, saves for slides).

Figures have a white background so that they read well in the book's light and dark themes.
They are drawn for the book's text column: ``WIDTH`` inches wide at 100 dpi is the column's
width in CSS pixels, so a figure of that width is shown at its natural size, and its text at
the size set here (at least 10 pt). In Jupyter they are sent at twice that density (sharp on
high-resolution screens, the same size on the page).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch


#: Width of the book's text column in inches at 100 dpi (720 CSS pixels).
WIDTH = 7.2


def book_style() -> None:
    """Matplotlib defaults for the book: white figures, readable fonts, no top/right spines.
    (Inline figures stay plain PNGs: twice-dpi "retina" PNGs drawn inside a widget made a
    headless run of a chapter wait for the whole cell timeout.)"""
    import matplotlib as mpl
    mpl.rcParams.update({
        "figure.facecolor": "white", "axes.facecolor": "white", "savefig.facecolor": "white",
        "figure.dpi": 100, "font.size": 11, "axes.titlesize": 11, "axes.labelsize": 11,
        "xtick.labelsize": 10, "ytick.labelsize": 10, "legend.fontsize": 10,
        "figure.titlesize": 12, "axes.spines.top": False, "axes.spines.right": False,
        "axes.grid": True, "grid.alpha": 0.3, "image.cmap": "viridis",
    })


def show(fig, name: str | None = None) -> None:
    """Show ``fig`` below the cell and close it. With ``name``, the figure is also recorded
    for the book under that name (myst-nb's ``glue``), where a ``{glue:figure}`` directive
    shows it with a number and a caption; without myst-nb (Colab) it is only shown. With
    ``name`` and the environment variable ``LVAE_FIGURE_DIR`` set, it is also saved there as
    ``<name>.png`` at ``LVAE_FIGURE_DPI`` dots per inch (default 240, about 1,700 pixels
    across a column-wide figure: slide resolution) and as ``<name>.svg``."""
    import matplotlib.pyplot as plt
    _save_for_slides(fig, name)
    glue = None
    if name is not None:
        try:
            from myst_nb import glue
        except ImportError:
            glue = None
    if glue is not None:
        glue(name, fig, display=True)
    else:
        from IPython.display import display
        display(fig)
    plt.close(fig)


def _save_for_slides(fig, name: str | None) -> None:
    folder = os.environ.get("LVAE_FIGURE_DIR")
    if not folder or name is None:
        return
    dpi = float(os.environ.get("LVAE_FIGURE_DPI", "240"))
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / f"{name}.png", dpi=dpi, bbox_inches="tight")
    fig.savefig(out / f"{name}.svg", bbox_inches="tight")


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
    ax = _new_ax(ax, figsize=(min(WIDTH, nrow * 0.6), min(WIDTH, nrow * 0.6) * rows / nrow))
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
        ax.legend(markerscale=3, ncol=2, frameon=False, loc="best", handletextpad=0.1,
                  columnspacing=0.6)
    if title:
        ax.set_title(title)
    return ax


def pca_layers(embeddings, labels, axes=None, title_prefix: str = ""):
    """One PCA scatter per latent layer from ``analysis.pca_embedding``; returns the axes.
    The legend of the labels sits below the last panel, where it covers no point."""
    import matplotlib.pyplot as plt
    if axes is None:
        _, axes = plt.subplots(1, len(embeddings), figsize=(3.2 * len(embeddings), 3.2),
                               squeeze=False)
        axes = axes[0]
    for i, ((emb, ratio), ax) in enumerate(zip(embeddings, axes)):
        scatter_by_label(emb, labels, ax=ax, legend=False)
        share = 100 * ratio[:2].sum()
        ax.set_title(f"{title_prefix}$z_{i + 1}$: {share:.0f} % of the variance")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    ax.legend(markerscale=3, ncol=5, frameon=False, loc="upper center",
              bbox_to_anchor=(0.5, -0.12), handletextpad=0.1, columnspacing=0.8)
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
        ax.set_ylabel(r"unit (layers $z_1$ … $z_L$, top down)")
    else:
        width = max(len(u) for u in kl_units)
        matrix = np.full((width, len(kl_units)), np.nan)
        for i, u in enumerate(kl_units):
            matrix[:len(u), i] = np.asarray(torch.as_tensor(u).cpu())
        im = ax.imshow(matrix, aspect="auto", cmap="magma", vmin=0, vmax=vmax,
                       interpolation="nearest")
        ax.set_xticks(range(len(kl_units)), [f"$z_{{{i + 1}}}$" for i in range(len(kl_units))])
        ax.set_ylabel("unit")
    ax.grid(False)
    plt.colorbar(im, ax=ax, label="KL (nats)")
    if title:
        ax.set_title(title)
    return ax


# --------------------------------------------------------------------------- tables
# Small labelled tables for the book's printed results (pandas DataFrames, which the book
# shows as HTML tables), in place of the reprs of dicts and modules.


def settings_table(settings, column: str = "value"):
    """Settings as a one-column table, one row per setting: a dict (a model configuration)
    or a dataclass such as ``TrainConfig`` (then the fields that differ from their
    defaults); tuples are written ``512-256-128``."""
    import dataclasses

    import pandas as pd
    if dataclasses.is_dataclass(settings):
        settings = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)
                    if getattr(settings, f.name) != f.default}

    def cell(value):
        if isinstance(value, (tuple, list)):
            return "-".join(str(v) for v in value)
        return str(value)
    return pd.DataFrame({column: {key: cell(value) for key, value in settings.items()}})


def layer_table(net):
    """The layers of a network (its leaf modules), one row each: name, type, size and
    number of parameters; the summary the book prints instead of the module's repr."""
    import pandas as pd
    rows = []
    for name, module in net.named_modules():
        if list(module.children()):
            continue
        if hasattr(module, "in_features"):
            size = f"{module.in_features} -> {module.out_features}"
        else:
            size = str(getattr(module, "num_features", ""))
        rows.append({"layer": name, "type": type(module).__name__, "size": size,
                     "parameters": sum(p.numel() for p in module.parameters())})
    return pd.DataFrame(rows)


class WrappedTable:
    """A pandas table whose cells may wrap onto several lines in the HTML book (the class
    ``lvae-wrap``, see ``book/_static/lvae.css``; other tables keep every cell on one line),
    for tables of words that would otherwise be wider than the column. Spaces inside a
    number such as ``0.20 ± 0.05`` become no-break spaces, so a number is never split.
    Text front ends show the table as pandas prints it."""

    def __init__(self, frame):
        self.frame = frame.map(lambda v: _keep_numbers_whole(v) if isinstance(v, str) else v)

    def _repr_html_(self) -> str:
        return self.frame.to_html(classes="lvae-wrap")

    def __repr__(self) -> str:
        return repr(self.frame)


def _keep_numbers_whole(text: str) -> str:
    import re
    return re.sub(r"(?<=\d) (?=[±%]|nats\b)|(?<=±) (?=[-+−\d])", "\u00a0", text)


def wrapped(frame) -> WrappedTable:
    """``frame`` shown with wrapping cells in the HTML book (``WrappedTable``)."""
    return WrappedTable(frame)
