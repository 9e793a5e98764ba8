"""The merged report of a results folder: ``results.json`` and ``results.md``, with the
published numbers and the paired differences of the runs on the same test images."""
from __future__ import annotations

from pathlib import Path

from ..comparison import differences, differences_markdown
from ..results import Results
from .grids import list_configs, published


def _order(row) -> tuple:
    names = [c.name for c in list_configs("all")]
    return (names.index(row["name"]) if row["name"] in names else len(names), row["name"])


def merge(out) -> dict:
    """Gather ``<out>/runs/*.json`` into ``<out>/results.json`` and ``<out>/results.md``."""
    out, folder = Path(out), Results(out)
    runs, curves = folder.runs(), folder.curves()
    if not runs and not curves:
        raise FileNotFoundError(f"no results in {out / 'runs'}; run the grid first")
    rows = sorted(runs.values(), key=_order)
    for row in rows:
        ref = published(row["data"], row["name"])
        row["published_nll"], row["published_source"] = ref if ref else (None, None)
    summary = dict(rows=rows, n=len(rows), shortened=any(r["shortened"] for r in rows),
                   data=sorted({r["data"] for r in rows}))
    summary.update(_comparisons(folder, rows, curves))
    if not rows:
        summary["data"] = sorted({c["data"] for c in curves.values()})
    folder.write_summary(summary, markdown(summary, out))
    return summary


def _comparisons(folder: Results, rows: list, curves: dict) -> dict:
    """Paired differences of the final evaluations and of every learning-curve epoch, and the
    learning curves themselves, for ``merge``."""
    per_image = folder.log_likelihoods([r["name"] for r in rows])
    by_epoch = {}
    for name in curves:
        for epoch, ll in folder.curve_images(name).items():
            by_epoch.setdefault(epoch, {})[name] = ll
    curve_differences = [dict(epoch=e, **d) for e in sorted(by_epoch)
                         for d in differences(by_epoch[e])]
    return dict(differences=differences(per_image), curves=curves,
                curve_differences=curve_differences)


def _curve_markdown(summary: dict) -> list:
    curves = summary.get("curves") or {}
    if not curves:
        return []
    epochs = sorted({p["epoch"] for c in curves.values() for p in c["points"]})
    names = list(curves)
    any_curve = next(iter(curves.values()))
    lines = [f"## Learning curves: test NLL (k={any_curve['k']}, the first "
             f"{any_curve['n_images']} test images) after each epoch", "",
             "| epoch | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for e in epochs:
        cells = []
        for name in names:
            point = next((p for p in curves[name]["points"] if p["epoch"] == e), None)
            cells.append(f"{point['test_nll']:.2f}" if point else "")
        lines.append(f"| {e} | " + " | ".join(cells) + " |")
    lines += ["", "Active units per layer (z_1 upwards; Cov_x(E_q[u|x]) > 0.01, estimated from "
              "100 samples with their Monte Carlo noise removed) and KL per layer (nats):", "",
              "| run | epoch | test -ELBO | active units | KL per layer |", "|---|---|---|---|---|"]
    for name in names:
        for p in curves[name]["points"]:
            lines.append(f"| {name} | {p['epoch']} | {-p['test_elbo']:.2f} | "
                         f"{'-'.join(str(a) for a in p['active_units'])} | "
                         f"{' / '.join(f'{k:.1f}' for k in p['kl_per_layer'])} |")
    diffs = summary.get("curve_differences") or []
    if diffs:
        lines += ["", "Paired differences on the learning curve's images:", ""]
        table = differences_markdown(diffs)
        lines += [table[0].replace("| comparison", "| epoch | comparison"),
                  "|---" + table[1]]
        lines += [f"| {d['epoch']} " + row for d, row in zip(diffs, table[2:])]
    return lines + [""]


def markdown(summary: dict, out=None) -> str:
    """The results as a markdown table, with the protocol note."""
    rows = summary["rows"]
    lines = [f"# Reproduction results ({', '.join(summary['data'])})", ""]
    short = [r["name"] for r in rows if r["shortened"]]
    if short:
        which = ("These numbers come from" if len(short) == len(rows) else
                 f"The rows {', '.join(short)} (fewer epochs than the published number in "
                 "brackets) come from")
        lines += [
            f"**Shortened protocol.** {which} a shortened protocol (far fewer epochs "
            "than published, possibly a subset of the data and of the test set, and fewer "
            "importance samples); they are not comparable with the published numbers, which are "
            "shown only for scale. Full protocols, one command each (a GPU):", "",
            "    python -m lvae_core reproduce --data mnist --grid lvae --eval-k 5000 --out "
            "results/lvae-mnist",
            "    python -m lvae_core reproduce --data mnist --grid iwae --eval-k 5000 --out "
            "results/iwae-mnist",
            "    python -m lvae_core reproduce --data fashion-mnist --grid all --eval-k "
            "5000 --out results/fashion-mnist",
            "",
            "Add `--shard i/n` to spread a grid over n GPUs, then `python -m lvae_core "
            "reproduce --merge <out>`.",
            "",
        ]
    made = Results(out).commands() if out is not None else []
    if made:
        lines += ["These results were made with:", ""]
        lines += [f"    {line}" for line in made]
        lines += [""]
    lines += [
        "| configuration | data | train / test | epochs (published) | train k | eval k | "
        "test NLL | "
        "test -ELBO | active units | train s | published NLL | source |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        pub = f"{r['published_nll']:.2f}" if r.get("published_nll") else ""
        lines.append(
            f"| {r['name']} | {r['data']} | {r['n_train']} / {r['n_test']} | "
            f"{r['fit']['epochs']} ({r['published_epochs']}) | {r['train_k']} | {r['eval_k']} | "
            f"{r['test_nll']:.2f} ± {r['test_nll_sem']:.2f} | {-r['test_elbo']:.2f} | "
            f"{'-'.join(str(a) for a in r['active_units'])} | {r['train_seconds']:.0f} | {pub} | "
            f"{r.get('published_source') or ''} |")
    lines += ["", "Test NLL: -log p(x) in nats, importance-sampled with `eval k` samples "
              "(± one standard error over test images; differences between models on the "
              "same images "
              "are more precise than that). Train s: training wall-clock seconds as "
              "recorded by `fit`. Active units: per layer from z_1 "
              "upwards, Cov_x(E_q[u|x]) > 0.01 (Burda et al., 2016), estimated from 100 "
              "samples with their Monte Carlo noise removed (`lv.unit_activity`). Device: "
              f"{', '.join(sorted({r['device'] for r in rows}))}.", ""]
    if summary.get("differences"):
        lines += ["", "## Paired differences on the same test images", ""]
        lines += differences_markdown(summary["differences"])
        lines += ["", "Negative ΔNLL: model a is better. The paired SE is the standard error of "
                  "the mean per-image difference, the precision of the comparison; it is much "
                  "smaller than either model's ± over test images.", ""]
    lines += _curve_markdown(summary)
    return "\n".join(lines)


#: The published claims that the full-length Fashion-MNIST runs test: (a, b, claim, the
#: published MNIST gain of a over b in nats). Sønderby et al. (2016): the five-layer LVAE
#: against the five-layer VAE, both with BN and warm-up, 82.12 against 82.74. Burda et al.
#: (2016), Table 1: the VAE 86.76, the IWAE 85.54 (k = 5) and 84.78 (k = 50), the VAE
#: trained on the 50-sample ELBO 86.35 (the last pair shares its 50 samples and differs only
#: in the bound).
IWAE_CLAIMS = (("iwae-L1-k5", "vae-L1-k1", "IWAE k=5 beats the VAE", 86.76 - 85.54),
               ("iwae-L1-k50", "vae-L1-k1", "IWAE k=50 beats the VAE", 86.76 - 84.78),
               ("iwae-L1-k50", "vae-L1-k50",
                "IWAE k=50 beats the VAE trained on the 50-sample ELBO", 86.35 - 84.78))
L5, H5, H1 = "lvae-L5-bn-wu", "hvae-L5-bn-wu", "hvae-L1-bn-wu"


def _compare(folder: Results, a: str, b: str):
    """(ΔNLL, SE, where it was measured, final?) for NLL_a - NLL_b: the final evaluation
    where both runs have one, else the newest learning-curve epoch both reached."""
    if folder.finished(a) and folder.finished(b):
        d = folder.paired(a, b)
        return d["delta_nll"], d["se"], "final, k=5000", True
    row = folder.paired_by_epoch(a, b).iloc[-1]
    return row["ΔNLL"], row["paired SE"], f"epoch {int(row.name)}", False


def protocol_claims(folder) -> "object":
    """Each published claim beside what the full-length runs in ``folder`` measured, with a
    verdict at two paired standard errors: a table with columns ``measured`` and
    ``verdict``, indexed by claim."""
    import pandas as pd
    folder = folder if isinstance(folder, Results) else Results(folder)
    curves = folder.curves()
    last = {n: c["points"][-1] for n, c in curves.items() if c["points"]}
    rows = []
    if {L5, H5} <= set(last):
        delta, se, where, final = _compare(folder, L5, H5)
        rows.append({"claim": "LVAE-5 beats HVAE-5 (MNIST: by 0.62 nats)",
                     "measured": f"{delta:+.2f} ± {se:.2f} nats ({where})",
                     "verdict": ("reproduced" if delta < -2 * se else "not reproduced")
                                if final else f"open: {where} of 2000"})
        done = folder.finished(L5)
        nll = folder.run(L5)["test_nll"] if done else last[L5]["test_nll"]
        rows.append({"claim": "scale: LVAE-5 against 227.37 (another 2-layer model)",
                     "measured": f"{nll:.2f} nats "
                                 f"({'final, k=5000' if done else 'epoch %d' % last[L5]['epoch']})",
                     "verdict": ("below it (scale only)" if nll < 227.37
                                 else "above it (scale only)") if done else
                                f"open: {nll - 227.37:+.2f} nats to go"})
        active = {r: (folder.run(r) if final else last[r])["active_units"] for r in (L5, H5)}
        up = {r: sum(a[1:]) for r, a in active.items()}
        rows.append({"claim": "LVAE-5: more active units above z1",
                     "measured": f"{up[L5]} against {up[H5]} "
                                 f"({'final' if final else 'newest epochs'})",
                     "verdict": ("reproduced" if up[L5] > up[H5] else "not reproduced")
                                + ("" if final else " so far")})
    if {H5, H1} <= set(last):
        delta, se, where, final = _compare(folder, H5, H1)
        rows.append({"claim": "5 stochastic layers beat 1 (bottom-up, BN + warm-up)",
                     "measured": f"{delta:+.2f} ± {se:.2f} nats ({where})",
                     "verdict": ("reproduced" if delta < -2 * se else "not reproduced")
                                + ("" if final else " so far")})
    for a, b, claim, gain in IWAE_CLAIMS:
        if folder.finished(a) and folder.finished(b):
            delta, se, where, _ = _compare(folder, a, b)
            rows.append({"claim": f"{claim} (MNIST: by {gain:.2f} nats)",
                         "measured": f"{delta:+.2f} ± {se:.2f} nats ({where})",
                         "verdict": "reproduced" if delta < -2 * se else "not reproduced"})
        else:
            rows.append({"claim": claim, "measured": "",
                         "verdict": "open: the runs are not finished"})
    return pd.DataFrame(rows).set_index("claim") if rows else pd.DataFrame()
