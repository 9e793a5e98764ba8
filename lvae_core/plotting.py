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


# --------------------------------------------------------------------------- diagrams
# Block diagrams of the models, drawn with matplotlib (boxes, arrows, math text) on white,
# like every figure of the book. They are narrower than the column (DIAGRAM_WIDTH inches),
# so that on a phone they shrink less than a column-wide figure and their text stays legible.

#: Width of a diagram in inches at 100 dpi (500 CSS pixels, about 520 with the margin that
#: the book adds): at 62 % of it, the least that a figure keeps on a phone, it fits the
#: phone's column without scrolling.
DIAGRAM_WIDTH = 5.0
#: Colours of the diagrams: inference (q), the generative model (p), noise and bounds.
DIAGRAM_COLORS = {"q": "#1f77b4", "p": "#d95f02", "noise": "#555555", "bound": "#1b7837",
                  "det": "#6a3d9a"}


def _diagram_axes(height: float, xlim: float = 10.0):
    """A figure ``DIAGRAM_WIDTH`` wide and ``height`` tall whose data coordinates run over
    [0, xlim] horizontally and as far vertically at the same scale; no axes drawn."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(DIAGRAM_WIDTH, height))
    fig.subplots_adjust(0, 0, 1, 1)
    ax.set_xlim(0, xlim)
    ax.set_ylim(0, xlim * height / DIAGRAM_WIDTH)
    ax.set_axis_off()
    return fig, ax


def _box(ax, x, y, text, color, width=2.4, height=1.0, fill=0.12, dashed=False,
         fontsize=12, round_=True):
    """A rounded box centred at (x, y) with ``text``; returns its (left, bottom, right,
    top)."""
    from matplotlib.colors import to_rgba
    from matplotlib.patches import FancyBboxPatch
    style = "round,pad=0.02,rounding_size=0.2" if round_ else "square,pad=0.02"
    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height,
                                boxstyle=style, facecolor=to_rgba(color, fill),
                                edgecolor=color, linewidth=1.4,
                                linestyle="--" if dashed else "-"))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, color="black",
            linespacing=1.25)
    return x - width / 2, y - height / 2, x + width / 2, y + height / 2


def _node(ax, x, y, text, color, radius=0.48, fontsize=13, filled=False):
    """A circle (a random variable) at (x, y); grey fill for an observed one."""
    from matplotlib.patches import Circle
    ax.add_patch(Circle((x, y), radius, facecolor="#d9d9d9" if filled else "white",
                        edgecolor=color, linewidth=1.6))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(ax, start, end, color="black", text=None, text_at=0.5, offset=(0.0, 0.0),
           ha="center", va="center", dashed=False, fontsize=11, rad=0.0, width=1.4):
    """An arrow from ``start`` to ``end`` with an optional label near its ``text_at``."""
    from matplotlib.patches import FancyArrowPatch
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=13,
                                 color=color, linewidth=width, shrinkA=0, shrinkB=0,
                                 linestyle="--" if dashed else "-",
                                 connectionstyle=f"arc3,rad={rad}"))
    if text:
        x = start[0] + text_at * (end[0] - start[0]) + offset[0]
        y = start[1] + text_at * (end[1] - start[1]) + offset[1]
        ax.text(x, y, text, ha=ha, va=va, fontsize=fontsize, color="black")


def vae_diagram():
    """The VAE as a block diagram: x -> encoder -> (mu, sigma^2) -> z = mu + sigma * eps ->
    decoder -> p(x | z), with the ELBO's two terms where they are computed. Returns the
    figure."""
    c = DIAGRAM_COLORS
    fig, ax = _diagram_axes(4.4)
    # inference, up the left side
    _box(ax, 1.75, 0.8, "image $\\mathbf{x}$", "black", width=2.7, height=0.9, fill=0.0)
    _box(ax, 1.75, 3.0, "encoder,\nweights $\\phi$", c["q"], width=2.6, height=1.1)
    _box(ax, 1.75, 5.0, "$\\mu_\\phi(\\mathbf{x})$,  $\\sigma^2_\\phi(\\mathbf{x})$\n"
         "of $q_\\phi(\\mathbf{z}\\,|\\,\\mathbf{x})$", c["q"], width=3.3, height=1.2,
         fill=0.05)
    _arrow(ax, (1.75, 1.25), (1.75, 2.45))
    _arrow(ax, (1.75, 3.55), (1.75, 4.4))
    # the reparameterized sample, at the top
    _box(ax, 5.3, 6.75, "$\\epsilon \\sim \\mathcal{N}(\\mathbf{0}, \\mathbf{I})$",
         c["noise"], width=2.5, height=0.8, fill=0.0, dashed=True)
    _box(ax, 5.3, 5.0, "$\\mathbf{z} = \\mu + \\sigma \\odot \\epsilon$", c["noise"],
         width=2.5, height=0.9, fill=0.08)
    _arrow(ax, (3.4, 5.0), (4.05, 5.0))
    _arrow(ax, (5.3, 6.35), (5.3, 5.45), color=c["noise"])
    # the generative model, down the right side
    _arrow(ax, (6.55, 5.0), (8.3, 5.0))
    _arrow(ax, (8.3, 5.0), (8.3, 3.55))
    _box(ax, 8.3, 3.0, "decoder,\nweights $\\theta$", c["p"], width=2.6, height=1.1)
    _box(ax, 8.25, 0.8, "$p_\\theta(\\mathbf{x}\\,|\\,\\mathbf{z})$: Bernoulli,\n"
         "logits $\\ell_\\theta(\\mathbf{z})$", c["p"], width=3.3, height=1.2, fill=0.05)
    _arrow(ax, (8.3, 2.45), (8.3, 1.4))
    # the ELBO's two terms
    _box(ax, 5.0, 2.2, "reconstruction\nterm $\\log p_\\theta(\\mathbf{x}\\,|\\,\\mathbf{z})$",
         c["bound"], width=3.3, height=1.2, fill=0.1)
    _arrow(ax, (3.1, 0.8), (4.0, 1.6), color=c["bound"], dashed=True)
    _arrow(ax, (6.6, 0.8), (6.0, 1.6), color=c["bound"], dashed=True)
    _box(ax, 1.75, 7.1, "KL term\n$\\mathrm{KL}(q_\\phi\\,\\|\\,p(\\mathbf{z}))$",
         c["bound"], width=3.3, height=1.2, fill=0.1)
    _arrow(ax, (1.75, 5.6), (1.75, 6.5), color=c["bound"], dashed=True)
    ax.text(8.3, 7.1, "ELBO =\nreconstruction\n$-$ KL", ha="center", va="center",
            fontsize=12, color=c["bound"], linespacing=1.3)
    return fig


def hierarchy_diagram(n_layers: int = 3):
    """Bottom-up inference against the generative model of a hierarchical VAE with
    ``n_layers`` stochastic layers: q(z_1 | x), q(z_i | z_{i-1}) upwards on the left, p(z_L),
    p(z_i | z_{i+1}), p(x | z_1) downwards on the right, the same samples z_i in both."""
    c = DIAGRAM_COLORS
    step = 1.75
    fig, ax = _diagram_axes(1.05 + 0.95 * n_layers)
    top = 0.75 + step * n_layers
    ax.text(2.2, top + 0.6, "inference $q_\\phi$, bottom-up", ha="center", fontsize=12,
            color=c["q"])
    ax.text(7.8, top + 0.6, "generative model $p_\\theta$", ha="center", fontsize=12,
            color=c["p"])
    for col in (2.2, 7.8):
        _node(ax, col, 0.75, "$\\mathbf{x}$", "black", filled=True)
        for i in range(1, n_layers + 1):
            _node(ax, col, 0.75 + step * i, f"$\\mathbf{{z}}_{i}$", "black")
    for i in range(1, n_layers + 1):
        y_low, y_high = 0.75 + step * (i - 1), 0.75 + step * i
        below = "\\mathbf{x}" if i == 1 else f"\\mathbf{{z}}_{i - 1}"
        _arrow(ax, (2.2, y_low + 0.5), (2.2, y_high - 0.5), color=c["q"],
               text=f"$q_\\phi(\\mathbf{{z}}_{i}\\,|\\,{below})$", offset=(-0.3, 0),
               ha="right", fontsize=12, width=2)
        prior = f"p_\\theta({below}\\,|\\,\\mathbf{{z}}_{i})"
        _arrow(ax, (7.8, y_high - 0.5), (7.8, y_low + 0.5), color=c["p"],
               text=f"${prior}$", offset=(0.3, 0), ha="left", fontsize=12, width=2)
        ax.plot([2.75, 7.25], [y_high, y_high], color=c["noise"], lw=1, ls=":")
    ax.text(8.4, top, "$\\mathcal{N}(\\mathbf{0}, \\mathbf{I})$", ha="left", va="center",
            fontsize=12)
    ax.text(5.0, 0.75 + step * n_layers + 0.12, "the same sample", ha="center", va="bottom",
            fontsize=11, color=c["noise"])
    return fig


def ladder_diagram(n_layers: int = 3):
    """The Ladder VAE's two passes for ``n_layers`` stochastic layers: the deterministic
    upward pass d_1 .. d_L with (mu_hat_i, var_hat_i) from each d_i, and the downward pass,
    which merges each with the generative model's (mu_p_i, var_p_i) by precision weighting
    and samples z_i, along the generative model's own top-down path."""
    c = DIAGRAM_COLORS
    gap, a, b, col = 2.45, 1.15, 4.75, 7.95
    fig, ax = _diagram_axes((2.1 + gap * n_layers) * DIAGRAM_WIDTH / 10)
    row = [0.7 + gap * i for i in range(n_layers + 1)]
    ax.text(a, row[-1] + 0.95, "upward pass", ha="center", fontsize=12, color=c["det"])
    ax.text(col, row[-1] + 0.95, "downward pass", ha="center", fontsize=12, color=c["p"])
    _node(ax, a, row[0], "$\\mathbf{x}$", "black", filled=True)
    for i in range(1, n_layers + 1):
        _box(ax, a, row[i], f"$\\mathbf{{d}}_{i}$", c["det"], width=1.4, height=0.8,
             round_=False)
        _arrow(ax, (a, row[i - 1] + (0.48 if i == 1 else 0.4)), (a, row[i] - 0.4),
               color=c["det"], width=1.8)
        _node(ax, col, row[i], f"$\\mathbf{{z}}_{i}$", "black")
        hat = f"$\\hat\\mu_{i}, \\hat\\sigma^2_{i}$"
        if i == n_layers:      # the top: q(z_L | x) = N(mu_hat_L, var_hat_L)
            _arrow(ax, (a + 0.7, row[i]), (col - 0.48, row[i]), color=c["q"], text=hat,
                   text_at=0.3, offset=(0, 0.3), fontsize=12)
            continue
        _box(ax, b, row[i], "precision\nweighting", c["q"], width=2.1, height=1.0,
             fontsize=11)
        _arrow(ax, (a + 0.7, row[i]), (b - 1.05, row[i]), color=c["q"], text=hat,
               offset=(0, 0.3), fontsize=12)
        _arrow(ax, (b + 1.05, row[i]), (col - 0.48, row[i]), color=c["q"],
               text=f"$\\mu_{{q,{i}}}, \\sigma^2_{{q,{i}}}$", offset=(0.05, -0.38),
               fontsize=11)
        # the generative model's top-down block, from the sample above
        y_block = row[i] + 0.5 * gap + 0.05
        _box(ax, col, y_block, f"$p_\\theta(\\mathbf{{z}}_{i}\\,|\\,\\mathbf{{z}}_{i + 1})$",
             c["p"], width=2.6, height=0.75, fontsize=12)
        _arrow(ax, (col, row[i + 1] - 0.48), (col, y_block + 0.375), color=c["p"])
        _arrow(ax, (col - 1.3, y_block), (b + 0.3, row[i] + 0.5), color=c["p"],
               text=f"$\\mu_{{p,{i}}}, \\sigma^2_{{p,{i}}}$", text_at=0.45,
               offset=(-0.75, 0.2), fontsize=11)
    _box(ax, col, row[0], "$p_\\theta(\\mathbf{x}\\,|\\,\\mathbf{z}_1)$", c["p"], width=2.6,
         height=0.75, fontsize=12)
    _arrow(ax, (col, row[1] - 0.48), (col, row[0] + 0.375), color=c["p"])
    ax.text(9.75, (row[0] + row[-1]) / 2, "the generative model's top-down path",
            rotation=90, ha="center", va="center", fontsize=10, color=c["p"])
    return fig
