"""Comparing trained models on the same test images: paired differences with standard errors.

Two models evaluated on the same n test images give per-image log-likelihoods a_i and b_i.
Their difference in mean log-likelihood is estimated by the mean of d_i = a_i - b_i, and its
standard error is std(d) / sqrt(n). Images that are hard for one model are hard for the other,
so std(d) is much smaller than the spread of a_i across images: the paired standard error is
the precision of the *difference*, which is what a comparison needs. Differences here are
written in NLL, ``NLL_a - NLL_b = -(mean a - mean b)``: negative means model a is better.

    from lvae_core import comparison
    row = comparison.paired_difference(ll_a, ll_b)   # {"delta_nll", "se", "n", ...}
"""
from __future__ import annotations

import math

import numpy as np

#: The comparisons the reproduction tables report: (model a, model b, what it shows).
COMPARISONS = (
    ("lvae-L5-bn-wu", "hvae-L5-bn-wu", "the ladder against bottom-up inference, 5 layers"),
    ("hvae-L5-bn-wu", "hvae-L1-bn-wu", "5 stochastic layers against 1 (bottom-up)"),
    ("lvae-L5-bn-wu", "hvae-L1-bn-wu", "the 5-layer ladder against 1 layer"),
    ("iwae-L1-k5", "vae-L1-k1", "IWAE k=5 against the VAE"),
    ("iwae-L1-k50", "vae-L1-k1", "IWAE k=50 against the VAE"),
    ("iwae-L1-k50", "vae-L1-k50", "IWAE k=50 against the VAE trained on the 50-sample ELBO"),
    ("vae-L1-k50", "vae-L1-k1", "the 50-sample ELBO against the 1-sample ELBO"),
)


def paired_difference(ll_a, ll_b) -> dict:
    """The paired difference of two models' per-image log-likelihoods on the same images.

    Returns ``delta_nll`` (NLL_a - NLL_b, nats per image), its standard error ``se``
    (std of the per-image differences / sqrt(n)), the unpaired standard error of each model's
    mean (``se_a``, ``se_b``, for contrast), ``n``, and ``z = delta_nll / se``.
    """
    a = np.asarray(ll_a, dtype=np.float64)
    b = np.asarray(ll_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired differences need two 1-D arrays over the same images, got "
                         f"shapes {a.shape} and {b.shape}")
    n = a.shape[0]
    if n < 2:
        raise ValueError(f"a standard error needs at least 2 images, got {n}")
    d = -(a - b)
    se = float(d.std(ddof=1) / math.sqrt(n))
    delta = float(d.mean())
    return dict(delta_nll=delta, se=se, n=int(n), z=delta / se if se > 0 else math.inf,
                se_a=float(a.std(ddof=1) / math.sqrt(n)),
                se_b=float(b.std(ddof=1) / math.sqrt(n)))


def verdict(row: dict, level: float = 2.0) -> str:
    """A few words on what a paired difference shows, at ``level`` standard errors."""
    if abs(row["z"]) < level:
        return f"no difference within {level:g} SE"
    return "a better" if row["delta_nll"] < 0 else "b better"


def differences(per_image: dict, comparisons=COMPARISONS) -> list[dict]:
    """Paired differences for every comparison whose two models are in ``per_image``
    (``{name: per-image log-likelihoods}`` on the same images)."""
    rows = []
    for a, b, what in comparisons:
        if a in per_image and b in per_image and len(per_image[a]) == len(per_image[b]):
            row = paired_difference(per_image[a], per_image[b])
            rows.append(dict(a=a, b=b, what=what, **row, verdict=verdict(row)))
    return rows


def differences_markdown(rows: list[dict]) -> list[str]:
    """Markdown lines of a table of paired differences."""
    if not rows:
        return []
    lines = ["| comparison (a − b) | what it shows | ΔNLL = NLL_a − NLL_b | paired SE | "
             "z | images | verdict |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['a']} − {r['b']} | {r['what']} | {r['delta_nll']:+.2f} | "
                     f"{r['se']:.2f} | {r['z']:+.1f} | {r['n']} | {r['verdict']} |")
    return lines


def paired_table(per_image: dict, pairs, level: float = 2.0):
    """A pandas table of paired differences, one row per ``(a, b)`` pair of names in
    ``per_image`` (``{name: per-image log-likelihoods on the same images}``): ΔNLL, its
    paired SE, z, and the verdict at ``level`` SE. For printing in a chapter."""
    import pandas as pd
    rows = []
    for a, b in pairs:
        r = paired_difference(per_image[a], per_image[b])
        rows.append({"comparison (a − b)": f"{a} − {b}", "ΔNLL (nats)": round(r["delta_nll"], 2),
                     "paired SE": round(r["se"], 2), "z": round(r["z"], 1),
                     "images": r["n"], "verdict": verdict(r, level)})
    return pd.DataFrame(rows).set_index("comparison (a − b)")
