"""The Ladder VAE paper's main figure: log-likelihood against the number of stochastic layers
for the VAE, the VAE with batch norm, the VAE with batch norm and KL warm-up, and the LVAE
with both (Sønderby et al. 2016), read from the results folders the runs write.

Every run is the published protocol (2000 epochs, warm-up over the first 200, constant
learning rate) stopped after ``epoch`` epochs (``python -m lvae_core reproduce --until``,
``scripts/depth_runs.sh``), or a run trained to the end whose learning curve has a point at
``epoch``. A point is scored on the learning curve's 2,000 test images with k = 1000, and,
when the run was stopped at ``epoch``, on the first 2,000 training images binarized once.

    from lvae_core import depth_figure as df
    folders = ["results/fashion-mnist-depth", "results/fashion-mnist-protocol"]
    points = df.points(folders, epoch=300)        # one row per model and depth
    df.claims(folders, epoch=300)                 # the paper's three claims, paired
"""
from __future__ import annotations

from .. import comparison
from ..results import Results
from .grids import DEPTH_FIGURE

LAYERS = (1, 2, 3, 4, 5)
#: The paper's three claims, and the comparisons that test each, as (a, b) pairs of
#: (model, layers): ΔNLL = NLL_a − NLL_b, negative when a is better.
CLAIMS = {
    "1. without BN and warm-up, depth does not help":
        [(("VAE", n), ("VAE", 1)) for n in LAYERS[1:]],
    "2. BN and warm-up let depth pay":
        [(("VAE+BN+WU", 5), ("VAE+BN+WU", 1)), (("LVAE+BN+WU", 5), ("LVAE+BN+WU", 1))]
        + [(("VAE+BN+WU", n), ("VAE", n)) for n in LAYERS],
    "3. the ladder is best at every depth":
        [(("LVAE+BN+WU", n), ("VAE+BN+WU", n)) for n in LAYERS[1:]],
}


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


def claims(folders, epoch: int = 300, which: str = "test", level: float = 2.0):
    """The paper's three claims as paired differences on the same images (``which``: "test"
    or "train"), one row per comparison whose two runs have reached ``epoch``: ΔNLL, its
    paired SE, z and the verdict at ``level`` SE."""
    import pandas as pd
    rows = []
    for claim, pairs in CLAIMS.items():
        for a, b in pairs:
            la = _per_image(folders, run_name(*a), epoch, which)
            lb = _per_image(folders, run_name(*b), epoch, which)
            if la is None or lb is None:
                continue
            r = comparison.paired_difference(la, lb)
            rows.append({"claim": claim, "a − b": f"{a[0]} L{a[1]} − {b[0]} L{b[1]}",
                         "ΔNLL": round(r["delta_nll"], 2), "paired SE": round(r["se"], 2),
                         "z": round(r["z"], 1), "verdict": comparison.verdict(r, level)})
    return pd.DataFrame(rows, columns=["claim", "a − b", "ΔNLL", "paired SE", "z", "verdict"])


STYLE = {"VAE": ("tab:blue", ":", "o"), "VAE+BN": ("tab:green", "--", "^"),
         "VAE+BN+WU": ("tab:purple", "-", "s"), "LVAE+BN+WU": ("tab:red", "-", "D")}


def plot(table, full=None, axes=None, epoch: int = 300):
    """The three panels of the figure: train NLL and test NLL at ``epoch`` against depth
    (missing points left out), and the runs trained to the end (``full``: ``finals(...)``)
    with their k = 5000 test NLL. Returns the figure."""
    import matplotlib.pyplot as plt
    from ..plotting import WIDTH
    if axes is None:
        fig, axes = plt.subplots(1, 3, figsize=(WIDTH, 3.0))
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
    fig.tight_layout()
    return fig


def verdicts(table) -> "object":
    """One verdict per claim from ``claims(...)``: "holds" when every comparison of the claim
    has been measured and agrees with it, "does not hold" when a measured one contradicts
    it, "open" when neither (comparisons still missing)."""
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
        else:
            verdict = "open"
        rows.append({"claim": claim, "comparisons measured": f"{len(measured)} of {len(pairs)}",
                     "agree": agree, "contradict": len(against), "verdict": verdict})
    return pd.DataFrame(rows).set_index("claim")


def full_length_cost(folders, epoch: int = 300, epochs: int = 2000):
    """The CPU hours the figure's runs took for ``epoch`` epochs (training, as recorded), and
    those that the rest of the published ``epochs`` would take at the same rate."""
    import pandas as pd
    rows = []
    for model in DEPTH_FIGURE:
        for n in LAYERS:
            name = run_name(model, n)
            if model == "LVAE+BN+WU" and n == 1:
                continue
            _, p = _find(folders, name, epoch)
            if p:
                hours = p["train_seconds"] / 3600
                rows.append({"run": name, f"hours for {epoch} epochs": hours,
                             f"hours for {epochs}": hours * epochs / epoch})
    return pd.DataFrame(rows).set_index("run") if rows else pd.DataFrame()
