"""The Ladder VAE paper's main figure: log-likelihood against the number of stochastic layers
for the VAE, the VAE with batch norm, the VAE with batch norm and KL warm-up, and the LVAE
with both (Sønderby et al. 2016), read from the results folders the runs write.

Every run is the published protocol (2000 epochs, warm-up over the first 200, constant
learning rate) stopped after ``epoch`` epochs (``python -m lvae_core reproduce --until``,
``scripts/depth_runs.sh``), or a run trained to the end whose learning curve has a point at
``epoch``. A point is scored on the learning curve's 2,000 test images with k = 1000, and,
when the run was stopped at ``epoch``, on the first 2,000 training images binarized once.

    from lvae_core.campaign import depth_figure as df
    folders = ["results/fashion-mnist-depth", "results/fashion-mnist-protocol"]
    points = df.points(folders, epoch=300)        # one row per model and depth
    df.claims(folders, epoch=300)                 # the paper's three claims, paired
    df.effects(folders, epoch=300)                # BN, warm-up, the ladder at each depth
    df.depth_gains(folders, epoch=300)            # n layers against one, in each model
    df.same_seed(*folders, epoch=300)             # the runs trained in both, compared
    df.same_seed_by_epoch(*folders)               # ... at every epoch of their curves
"""
from __future__ import annotations

from .. import comparison
from ..results import Results
from .grids import DEPTH_FIGURE, depth_figure_names

LAYERS = (1, 2, 3, 4, 5)
#: The paper's three claims and the comparisons that test each. A comparison is a pair
#: (a, b) of sides, ΔNLL = NLL_a − NLL_b on the same images, negative when a is better; a
#: side is a point (model, layers) or a depth gain ((model, n), (model, 1)), NLL_n − NLL_1,
#: so that a pair of gains is the difference of differences: how much more depth gains
#: with batch norm and warm-up than without.
CLAIMS = {
    "1. without BN and warm-up, depth does not help":
        [(("VAE", n), ("VAE", 1)) for n in LAYERS[1:]],
    "2. BN and warm-up let depth pay":
        [(("VAE+BN+WU", 5), ("VAE+BN+WU", 1)), (("LVAE+BN+WU", 5), ("LVAE+BN+WU", 1))]
        + [((("VAE+BN+WU", n), ("VAE+BN+WU", 1)), (("VAE", n), ("VAE", 1)))
           for n in LAYERS[1:]],
    "3. the ladder is best at every depth":
        [(("LVAE+BN+WU", n), ("VAE+BN+WU", n)) for n in LAYERS[1:]],
}
#: What each ingredient does at each depth (``effects``): (row label, a, b), NLL_a − NLL_b.
EFFECTS = (("BN: VAE+BN − VAE", "VAE+BN", "VAE"),
           ("WU: VAE+BN+WU − VAE+BN", "VAE+BN+WU", "VAE+BN"),
           ("BN and WU: VAE+BN+WU − VAE", "VAE+BN+WU", "VAE"),
           ("ladder: LVAE+BN+WU − VAE+BN+WU", "LVAE+BN+WU", "VAE+BN+WU"))


def run_name(model: str, layers: int) -> str:
    """The run behind ``model`` (a key of ``grids.DEPTH_FIGURE``) at ``layers`` layers; at one
    layer the ladder is the hierarchy."""
    if model == "LVAE+BN+WU" and layers == 1:
        model = "VAE+BN+WU"
    return DEPTH_FIGURE[model].format(n=layers)


def _folders(folders) -> list[Results]:
    return [f if isinstance(f, Results) else Results(f) for f in folders]


def _find(folders, name: str, epoch: int):
    """(folder, curve point) of the first folder whose run ``name`` reached ``epoch``."""
    for folder in _folders(folders):
        point = folder.point(name, epoch)
        if point is not None:
            return folder, point
    return None, None


def events(folders, name: str) -> list:
    """What the runs recorded besides their points (a divergence, say)."""
    return [e for folder in _folders(folders) for e in folder.events(name)]


def points(folders, epoch: int = 300):
    """One row per model and depth: the run, its test NLL (k = 1000, 2,000 test images) and
    standard error, its train NLL when scored, the test −ELBO, active units and KL per layer,
    and the folder it came from; NaN where the run has not reached ``epoch``."""
    import pandas as pd
    rows = []
    for model in DEPTH_FIGURE:
        for n in LAYERS:
            name = run_name(model, n)
            folder, p = _find(folders, name, epoch)
            p = p or {}
            rows.append(dict(
                model=model, layers=n, run=name,
                test_nll=p.get("test_nll"), test_se=p.get("test_nll_sem"),
                train_nll=p.get("train_nll"), train_se=p.get("train_nll_sem"),
                test_neg_elbo=-p["test_elbo"] if "test_elbo" in p else None,
                active_units="-".join(map(str, p["active_units"])) if p else "",
                kl_per_layer=" / ".join(f"{k:.1f}" for k in p.get("kl_per_layer", [])),
                folder=folder.name if folder is not None else "",
                diverged=any(e.get("event") == "diverged" for e in events(folders, name))))
    return pd.DataFrame(rows)


def finals(folder) -> dict:
    """The runs of the figure trained to the end in ``folder``: ``{(model, layers): test NLL
    with k = 5000 on all test images}``."""
    folder = _folders([folder])[0]
    return {(model, n): r["test_nll"] for model in DEPTH_FIGURE for n in LAYERS
            if (r := folder.run(run_name(model, n))) is not None}


def _per_image(folders, name: str, epoch: int, which: str):
    for folder in _folders(folders):
        values = folder.curve_images(name, which).get(epoch)
        if values is not None:
            return values
    return None


def _is_gain(side) -> bool:
    return isinstance(side[0], tuple)


def _side(folders, side, epoch: int, which: str):
    """A side's per-image log-likelihoods: a point's, or a depth gain's (ll_n − ll_1)."""
    if _is_gain(side):
        deep, shallow = (_per_image(folders, run_name(*s), epoch, which) for s in side)
        return None if deep is None or shallow is None else deep - shallow
    return _per_image(folders, run_name(*side), epoch, which)


def _label(side) -> str:
    if _is_gain(side):
        (model, n), (_, m) = side
        return f"({model} L{n} − L{m})"
    return f"{side[0]} L{side[1]}"


def compare(folders, a, b, epoch: int = 300, which: str = "test",
            level: float = 2.0) -> dict | None:
    """The paired difference NLL_a − NLL_b of two sides (see ``CLAIMS``) on the same images,
    with its SE, z and verdict at ``level`` SE; None while a run has not reached ``epoch``."""
    la, lb = _side(folders, a, epoch, which), _side(folders, b, epoch, which)
    if la is None or lb is None:
        return None
    r = comparison.paired_difference(la, lb)
    return {"a − b": f"{_label(a)} − {_label(b)}", "ΔNLL": round(r["delta_nll"], 2),
            "paired SE": round(r["se"], 2), "z": round(r["z"], 1),
            "verdict": comparison.verdict(r, level)}


def claims(folders, epoch: int = 300, which: str = "test", level: float = 2.0):
    """The paper's three claims as paired differences on the same images (``which``: "test"
    or "train"), one row per comparison whose runs have all reached ``epoch``: ΔNLL, its
    paired SE, z and the verdict at ``level`` SE."""
    import pandas as pd
    rows = []
    for claim, pairs in CLAIMS.items():
        for a, b in pairs:
            row = compare(folders, a, b, epoch, which, level)
            if row is not None:
                rows.append({"claim": claim, **row})
    return pd.DataFrame(rows, columns=["claim", "a − b", "ΔNLL", "paired SE", "z", "verdict"])


def _cell(row: dict | None) -> str:
    """A comparison as a table cell, "ΔNLL (SE)", or "not yet" before it is measured."""
    return f"{row['ΔNLL']:+.2f} ({row['paired SE']:.2f})" if row else "not yet"


def effects(folders, epoch: int = 300, which: str = "test"):
    """What batch norm, warm-up and the ladder each change at each depth: a table of paired
    differences "ΔNLL (SE)", one row per ``EFFECTS`` entry and one column per depth: "not
    yet" where a run has not reached ``epoch``, "—" where the two are one model."""
    import pandas as pd
    table = {}
    for label, a, b in EFFECTS:
        table[label] = {}
        for n in LAYERS:
            if run_name(a, n) == run_name(b, n):   # at one layer the ladder is the hierarchy
                table[label][f"L{n}"] = "—"
                continue
            row = compare(folders, (a, n), (b, n), epoch, which)
            table[label][f"L{n}"] = _cell(row)
    return pd.DataFrame(table).T


def depth_gains(folders, epoch: int = 300, which: str = "test"):
    """What depth buys within each model: NLL with n layers minus NLL with one, on the same
    images, "ΔNLL (SE)", one row per model and one column per depth from 2 ("not yet" where
    a run has not reached ``epoch``)."""
    import pandas as pd
    table = {}
    for model in DEPTH_FIGURE:
        table[model] = {}
        for n in LAYERS[1:]:
            row = compare(folders, (model, n), (model, 1), epoch, which)
            table[model][f"L{n} − L1"] = _cell(row)
    return pd.DataFrame(table).T


def same_seed(first, second, epoch: int = 300, which: str = "test"):
    """The runs of the figure trained in both folders with the same configuration and seed:
    one row per run that reached ``epoch`` in both, with each folder's NLL, the paired
    difference second − first on the same images with its SE, the largest difference on
    one image (0 when the two trainings computed the same model), and the active units per
    layer of each, "first → second"."""
    import numpy as np
    import pandas as pd
    first, second = _folders([first])[0], _folders([second])[0]
    rows = []
    for name in depth_figure_names(LAYERS):
        a, b = (_per_image([f], name, epoch, which) for f in (first, second))
        if a is None or b is None:
            continue
        r = comparison.paired_difference(b, a)
        rows.append({"run": name, first.name: round(float(-np.mean(a)), 2),
                     second.name: round(float(-np.mean(b)), 2),
                     "ΔNLL": round(r["delta_nll"], 3), "paired SE": round(r["se"], 3),
                     "largest |Δ| on one image": round(float(np.max(np.abs(a - b))), 3),
                     "active units": " → ".join(
                         "-".join(map(str, f.point(name, epoch).get("active_units", [])))
                         for f in (first, second))})
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()


def same_seed_by_epoch(first, second, epochs=None, which: str = "test"):
    """``same_seed``'s paired difference second − first, "ΔNLL (SE)", at every epoch of
    ``epochs`` (default: those both learning curves have): one row per run, one column per
    epoch, "—" where a curve lacks the epoch."""
    import pandas as pd
    first, second = _folders([first])[0], _folders([second])[0]
    if epochs is None:
        epochs = sorted({e for name in depth_figure_names(LAYERS)
                         for e in set(first.curve_images(name, which))
                         & set(second.curve_images(name, which))})
    epochs = list(epochs)
    table: dict = {}
    for epoch in epochs:
        for run, row in same_seed(first, second, epoch, which).iterrows():
            table.setdefault(run, dict.fromkeys(epochs, "—"))[epoch] = _cell(row.to_dict())
    return pd.DataFrame.from_dict(table, orient="index", columns=epochs)


STYLE = {"VAE": ("tab:blue", ":", "o"), "VAE+BN": ("tab:green", "--", "^"),
         "VAE+BN+WU": ("tab:purple", "-", "s"), "LVAE+BN+WU": ("tab:red", "-", "D")}


def plot(table, full=None, axes=None, epoch: int = 300):
    """The three panels of the figure: train NLL and test NLL at ``epoch`` against depth
    (missing points left out), and the runs trained to the end (``full``: ``finals(...)``)
    with their k = 5000 test NLL. Returns the figure."""
    import matplotlib.pyplot as plt
    from ..plotting import WIDTH
    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(WIDTH, 3.3))
    fig = axes[0].figure
    for model, (color, ls, marker) in STYLE.items():
        part = table[table["model"] == model]
        for ax, column in zip(axes[:2], ("train_nll", "test_nll")):
            shown = part[part[column].notna()]
            ax.plot(shown["layers"], shown[column], ls=ls, marker=marker, color=color,
                    ms=4, label=model)
        if full:
            done = sorted((n, v) for (m, n), v in full.items() if m == model)
            if done:
                axes[2].plot(*zip(*done), ls="none", marker=marker, color=color, ms=6,
                             label=model)
    titles = (f"train, epoch {epoch}", f"test, epoch {epoch}", "test, k = 5000, epoch 2000")
    for ax, title in zip(axes, titles):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("stochastic layers")
        ax.set_xticks(LAYERS)
    axes[0].set_ylabel("NLL (nats)")
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], color=color, ls=ls, marker=marker, ms=4, label=model)
               for model, (color, ls, marker) in STYLE.items()]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0.08, 1, 1))     # the legend of all four models below
    return fig


def verdicts(table) -> "object":
    """One verdict per claim from ``claims(...)``: "holds" when every comparison of the claim
    has been measured and agrees with it, "does not hold" when a measured one contradicts
    it, "unresolved" when all are measured and none contradicts it but some differences are
    within the standard errors' level, and "open" while comparisons are still missing."""
    import pandas as pd
    rows = []
    for claim, pairs in CLAIMS.items():
        part = table[table["claim"] == claim] if len(table) else table
        measured = list(part["verdict"]) if len(part) else []
        if claim.startswith("1."):     # deeper plain models are not clearly better
            against = [v for v in measured if v == "a better"]
            agree = len(measured) - len(against)
        else:                          # the first model of each pair is clearly better
            against = [v for v in measured if v == "b better"]
            agree = sum(v == "a better" for v in measured)
        if against:
            verdict = "does not hold"
        elif agree == len(pairs):
            verdict = "holds"
        elif len(measured) == len(pairs):
            verdict = "unresolved"
        else:
            verdict = "open"
        rows.append({"claim": claim, "comparisons measured": f"{len(measured)} of {len(pairs)}",
                     "agree": agree, "contradict": len(against), "verdict": verdict})
    return pd.DataFrame(rows).set_index("claim")


def full_length_cost(folders, epoch: int = 300, epochs: int = 2000):
    """What the figure's runs cost: per distinct run that reached ``epoch``, its layers, the
    seconds per epoch of training it recorded, the hours it took for ``epoch`` epochs, and
    the hours ``epochs`` would take at the fastest rate recorded at its depth (recorded
    rates include whatever else the machine was doing; the fastest is the closest to a
    quiet core)."""
    import pandas as pd
    rows = []
    for model in DEPTH_FIGURE:
        for n in LAYERS:
            name = run_name(model, n)
            if model == "LVAE+BN+WU" and n == 1:
                continue
            _, p = _find(folders, name, epoch)
            if p:
                rows.append({"run": name, "layers": n,
                             "s per epoch": p["train_seconds"] / epoch,
                             f"hours for {epoch}": p["train_seconds"] / 3600})
    if not rows:
        return pd.DataFrame()
    table = pd.DataFrame(rows).set_index("run")
    fastest = table.groupby("layers")["s per epoch"].transform("min")
    table[f"hours for {epochs}"] = fastest * epochs / 3600
    return table
