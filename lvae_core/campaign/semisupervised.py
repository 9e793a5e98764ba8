"""Semi-supervised runs (Kingma et al., 2014) and their table: supervised-only, M1 + logistic
regression, M2 and M1+M2, for several label counts and labelled draws.

    python -m lvae_core.campaign.semisupervised --data fashion-mnist --labels 100 --draw 0 \\
        --method m2 --epochs 300 --out results/semisupervised-fashion-mnist
    python -m lvae_core.campaign.semisupervised --labels 100,1000 --draw 0,1,2 --method all --list
    python -m lvae_core.campaign.semisupervised --merge --out results/semisupervised-fashion-mnist

A run is named ``<method>-n<labels>-d<draw>``; draw d draws the labelled subset with seed d
(``semisupervised_train.balanced_labels``) and trains with seed d. It writes
``<out>/runs/<name>.json`` (test error of the parameters with the lowest validation error,
that validation error and its epoch, training seconds, the configuration, the labelled
indices) and ``<out>/runs/<name>.curve.json`` (the history: validation error per epoch);
with ``--ship-models`` also ``<out>/models/<name>.pt`` (float16, read by ``load_model``). A
run whose JSON exists is skipped; an interrupted one continues from its last checkpoint in
the cache. Every run merges: ``<out>/results.json`` and ``<out>/results.md`` hold the mean
± standard deviation over draws per method and label count, beside the published MNIST
numbers of Kingma et al.'s Table 1.

Methods:

* ``supervised``: q(y|x)'s architecture trained on the labelled images alone (the paper's NN);
* ``m1-logreg``: logistic regression (scikit-learn) on the M1 features, C chosen on the
  validation set (the paper used a TSVM);
* ``m2``: M2 on the images (grey levels, Bernoulli likelihood, as the paper);
* ``m1m2``: M2 with a Gaussian likelihood on the M1 features.

M1 is an unsupervised VAE of the package trained on all training images (``--m1``, default
the book's shipped one-layer model ``results/fashion-mnist-protocol/models/hvae-L1-bn-wu.pt``:
64 latent units, 35 active, 2,000 epochs on Fashion-MNIST); its features are the posterior
means of z_1 on the active units (``semisupervised_train.M1Features``). The validation set is
the last 10,000 training images; the test set is used only for the final error.

Time, measured on one thread of a 2-core x86 CPU (``torch.set_num_threads(1)``, the other
core idle) with the default M2 (784-256-32 encoder and decoder, 784-256-256-10 classifier,
softplus) on Fashion-MNIST with 100 labels, 256 unlabelled and 32 labelled images per step:
69 ms a step, 12 to 14 s per epoch over the 49,900 unlabelled images, validation error
included. M1+M2 on the 35 features takes about a third of that (4 to 6 s), the supervised
baseline 0.5 s (100 labels) to 2 s (1,000 labels).

Protocol (the defaults): Adam with the paper's learning rate 3e-4, alpha = 0.1 N / N_labelled,
``DEFAULT_EPOCHS`` = 300 epochs (about 70 minutes for M2 on one thread), the epoch with the
lowest validation error kept. Short runs on Fashion-MNIST (draw 0) show why the selection
matters: with 100 labels M2's validation error was lowest at epoch 13 (35.6 %) and rose to
about 44 % by epoch 30, where it stayed to epoch 60, while q(y|x) kept fitting the labelled
images; with 1,000 labels it was still falling at epoch 20 (25.9 %). The supervised baseline
reached 27.1 % (100 labels, epoch 4) and 19.2 % (1,000 labels, epoch 18). A larger alpha
(500 at 100 labels, lr 1e-3) brought M2 to 28.4 %, near the baseline.
"""
from __future__ import annotations

import argparse
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch

from .. import checkpoints as ckpt
from ..results import Results, write_json
from ..runtime import record_command
from ..semisupervised import M2, Classifier, error_rate
from ..semisupervised_train import (N_VALID, M1Features, SSConfig, estimate_epoch_seconds,
                                   fit_classifier, fit_logistic, fit_m2, split)

METHODS = ("supervised", "m1-logreg", "m2", "m1m2")
#: The book's unsupervised model that serves as M1 on Fashion-MNIST.
DEFAULT_M1 = "results/fashion-mnist-protocol/models/hvae-L1-bn-wu.pt"
#: The default network sizes of every method that trains a network.
DEFAULT_SIZES = dict(hidden=(256,), latent=32, classifier_hidden=(256, 256),
                     activation="softplus")
#: The default number of epochs (see the module docstring).
DEFAULT_EPOCHS = 300
#: Kingma et al. (2014), Table 1: MNIST test error (%) with N labels (± standard deviation
#: over runs where published): NN, TSVM, M1+TSVM, M2, M1+M2.
PUBLISHED_MNIST = {
    100: dict(nn=25.81, tsvm=16.81, m1_tsvm=(11.82, 0.25), m2=(11.97, 1.71), m1m2=(3.33, 0.14)),
    600: dict(nn=11.44, tsvm=6.16, m1_tsvm=(5.72, 0.05), m2=(4.94, 0.13), m1m2=(2.59, 0.05)),
    1000: dict(nn=10.7, tsvm=5.38, m1_tsvm=(4.24, 0.07), m2=(3.60, 0.56), m1m2=(2.40, 0.02)),
    3000: dict(nn=6.04, tsvm=3.45, m1_tsvm=(3.49, 0.04), m2=(3.92, 0.63), m1m2=(2.18, 0.04)),
}
#: Which published column each method sits beside.
PUBLISHED_COLUMN = {"supervised": "nn", "m1-logreg": "m1_tsvm", "m2": "m2", "m1m2": "m1m2"}
COLUMN_NAMES = dict(nn="NN", tsvm="TSVM", m1_tsvm="M1+TSVM", m2="M2", m1m2="M1+M2")
NO_FASHION_NUMBER = ("No published result of these models on Fashion-MNIST at 100 or 1,000 "
                     "labels was found; the MNIST numbers are shown for scale only.")


def run_name(method: str, n_labels: int, draw: int) -> str:
    return f"{method}-n{n_labels}-d{draw}"


def _alphas(rows) -> str:
    """How the runs in ``rows`` set alpha, in words."""
    chosen = sorted({(r["n_labels"], r["alpha"]) for r in rows
                     if r["method"] in ("m2", "m1m2") and r["config"]["alpha"] is not None})
    if not chosen:
        return "alpha = 0.1 N / N_labelled, as the authors' code"
    return "alpha = " + ", ".join(f"{a:g} ({n} labels)" for n, a in chosen) + \
        " (set by --alpha; the authors' choice is 0.1 N / N_labelled)"


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")


def load_m1(path):
    """The M1 model (any ``lvae_core`` checkpoint), in eval mode on the CPU."""
    from ..checkpoints import load_checkpoint as load_shipped
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no M1 model at {path}: train an unsupervised VAE on all "
                                "training images (lvae_core.fit) and pass its checkpoint as "
                                f"m1=... (--m1), or run from the repository root for {DEFAULT_M1}")
    return load_shipped(path, "cpu")[0]


def _test_images(data, config: SSConfig):
    x = data.test_x.flatten(1) if data.test_x.dim() > 2 else data.test_x
    return (data.test_binary if config.binarize else x), data.test_y


def run_one(method: str, data, n_labels: int, draw: int, out, *, config: SSConfig,
            sizes: dict | None = None, m1=DEFAULT_M1, n_valid: int = N_VALID, cache=True,
            checkpoint_every: int = 10, progress: bool = True, ship_model: bool = False,
            device=None) -> dict:
    """Train and test one run; write ``<out>/runs/<name>.json`` and its ``.curve.json``;
    return the result. ``config``: the training settings (its seed is replaced by ``draw``);
    ``sizes``: the networks' widths (``DEFAULT_SIZES``); ``m1``: M1's checkpoint (the M1
    methods)."""
    _check_method(method)
    sizes = {**DEFAULT_SIZES, **(sizes or {})}
    name = run_name(method, n_labels, draw)
    config = config.replace(seed=int(draw))
    data_split = split(data, n_labels, seed=draw, n_valid=n_valid)
    x_test, y_test = _test_images(data, config)
    features = None
    if method in ("m1-logreg", "m1m2"):
        vae = load_m1(m1)
        features = M1Features.fit(vae, torch.cat([data_split.x_labelled,
                                                  data_split.x_unlabelled]))
        data_split = features.split(data_split)
        x_test = features(x_test)
    t0 = time.perf_counter()
    model, history, fit_info = _train(method, data_split, config, sizes, name, cache,
                                      checkpoint_every, progress, device)
    seconds = time.perf_counter() - t0
    if method == "m1-logreg":
        test_error = float((model.predict(x_test.double().numpy()) != y_test.numpy()).mean())
        valid_error, best_epoch = history["best_valid_error"], None
    else:
        test_error = error_rate(model, x_test, y_test)
        valid_error, best_epoch = history["best_valid_error"], history["best_epoch"]
    result = dict(
        name=name, method=method, data=data.name, n_labels=int(n_labels), draw=int(draw),
        labels_seed=int(draw), train_seed=int(draw), test_error=100 * test_error,
        valid_error=100 * valid_error, best_epoch=best_epoch,
        epochs_run=len(history.get("epoch", [])), train_seconds=seconds, **fit_info,
        n_labelled=data_split.n_labelled, n_unlabelled=data_split.n_unlabelled,
        n_valid=int(data_split.x_valid.shape[0]), n_test=int(len(y_test)),
        m1=str(m1) if features is not None else None,
        m1_features=features.dim if features is not None else None,
        images="binarized every epoch" if config.binarize else "grey levels",
        labelled_index=data_split.labelled_index.tolist(), device=_device_name(model),
        torch=torch.__version__, machine=platform.machine(), threads=torch.get_num_threads(),
        published_mnist=_published(method, n_labels))
    runs = Path(out) / "runs"
    write_json(dict(name=name, history=history), runs / f"{name}.curve.json")
    if ship_model and isinstance(model, torch.nn.Module):
        ship(model, history, Path(out) / "models" / f"{name}.pt", features=features,
             m1=m1 if features is not None else None)
    write_json(result, runs / f"{name}.json")
    return result


def _device_name(model) -> str:
    if isinstance(model, torch.nn.Module):
        for p in model.parameters():
            return str(p.device)
    return "cpu"


def _train(method, data_split, config, sizes, name, cache, checkpoint_every, progress,
           device):
    """The model of ``method`` trained on ``data_split``: ``(model, history, fit_info)``."""
    if method == "m1-logreg":
        model, history = fit_logistic(data_split, seed=config.seed)
        return model, history, dict(config=None, model_config=dict(kind="logistic",
                                                                   C=history["best_C"]))
    hidden, latent = tuple(sizes["hidden"]), int(sizes["latent"])
    classifier_hidden, activation = tuple(sizes["classifier_hidden"]), sizes["activation"]
    x_dim, n_classes = data_split.x_dim, data_split.n_classes
    options = dict(cache=cache, checkpoint_every=checkpoint_every, progress=progress,
                   device=device)
    if method == "supervised":
        model = Classifier(x_dim, classifier_hidden, n_classes, activation)
        _announce(name, config.epochs, None, data_split)
        history = fit_classifier(model, data_split, config, **options)
        return model, history, dict(config=config.fields(), model_config=model.config)
    likelihood = "bernoulli" if method == "m2" else "gaussian"
    model = M2(x_dim, n_classes, hidden, latent, classifier_hidden, likelihood, activation)
    _announce(name, config.epochs, estimate_epoch_seconds(model, data_split, config),
              data_split)
    history = fit_m2(model, data_split, config, **options)
    return model, history, dict(config=config.fields(), model_config=model.config,
                                alpha=history["alpha"])


def _announce(name, epochs, per_epoch, data_split) -> None:
    """The one-line estimate of a run's time, printed when it starts."""
    what = f"{name}: {data_split.n_labelled} labelled, {data_split.n_unlabelled} unlabelled"
    if per_epoch is None:
        print(f"{what}, {epochs} epochs", flush=True)
        return
    total = per_epoch * epochs
    span = f"{total:.0f} s" if total < 120 else f"{total / 60:.0f} min ({total / 3600:.1f} h)"
    print(f"{what}; about {per_epoch:.1f} s per epoch here, so {epochs} epochs take about "
          f"{span}", flush=True)


def _published(method: str, n_labels: int):
    row = PUBLISHED_MNIST.get(int(n_labels))
    if row is None:
        return None
    value = row[PUBLISHED_COLUMN[method]]
    return list(value) if isinstance(value, tuple) else [value, None]


# -- shipped models --------------------------------------------------------------------------

def ship(model, history, path, *, features: M1Features | None = None, m1=None) -> Path:
    """Save a trained M2 or classifier with float16 parameters (a few MB), with the M1
    feature map's statistics when it runs on M1 features; ``load_model`` reads it."""
    state = {n: (t.detach().cpu().half() if t.is_floating_point() else t.detach().cpu())
             for n, t in model.state_dict().items()}
    kind = "m2" if isinstance(model, M2) else "classifier"
    obj = dict(kind=kind, config=model.config, history=history, state_dict=state,
               features=features.state() if features is not None else None,
               m1=str(m1) if m1 is not None else None)
    return ckpt.save(obj, path)


def load_model(path, m1=None):
    """A model saved by ``ship``: ``(model in eval mode, feature map or None, history)``. The
    feature map (an ``M1Features``, for M1+M2) needs M1: ``m1`` (a path or a model; default:
    the path recorded in the file)."""
    saved = ckpt.read(path)
    cls = M2 if saved["kind"] == "m2" else Classifier
    model = cls(**{k: v for k, v in saved["config"].items() if k != "parts"})
    model.load_state_dict({n: (t.float() if t.is_floating_point() else t)
                           for n, t in saved["state_dict"].items()})
    features = None
    if saved.get("features") is not None:
        vae = m1 if isinstance(m1, torch.nn.Module) else load_m1(m1 or saved["m1"])
        features = M1Features.from_state(vae, saved["features"])
    return model.eval(), features, saved["history"]


# -- running and merging ---------------------------------------------------------------------

def run_all(methods, labels, draws, data, out, *, force=False, **options) -> list[dict]:
    """Every run of ``methods`` x ``labels`` x ``draws`` whose JSON is missing (all with
    ``force``); merges after each. Returns the results (loaded or new)."""
    results = []
    for n_labels in labels:
        for draw in draws:
            for method in methods:
                name = run_name(method, n_labels, draw)
                done = Results(out).run(name)
                if done is not None and not force:
                    print(f"{name}: done, skipped", flush=True)
                    results.append(done)
                    continue
                results.append(run_one(method, data, n_labels, draw, out, **options))
                merge(out)
    return results


def merge(out) -> dict:
    """Gather ``<out>/runs/*.json`` into ``<out>/results.json`` and ``<out>/results.md``:
    per data set, method and label count, the mean and standard deviation of the test error
    over draws (``read_results``)."""
    result = read_results(out)
    if not result["rows"]:
        raise FileNotFoundError(f"no results in {Path(out) / 'runs'}; run some first")
    result.update(published_mnist=PUBLISHED_MNIST, note=NO_FASHION_NUMBER)
    Results(out).write_summary(result, markdown(result, out))
    return result


def _pm(mean, std) -> str:
    return f"{mean:.2f}" + (f" ± {std:.2f}" if std is not None else "")


def markdown(result: dict, out=None) -> str:
    """The results as markdown: the summary, the published MNIST table, every run."""
    held_out = " or ".join(f"{n:,}" for n in sorted({r["n_valid"] for r in result["rows"]}))
    lines = ["# Semi-supervised classification (Kingma et al., 2014)", "",
             f"Test error (%) of the parameters with the lowest validation error ({held_out} "
             "training images held out; the test set is used for nothing else), mean ± "
             "standard deviation over draws of the labelled subset (draw d: labelled images "
             "and training seeded with d).", ""]
    made = Results(out).commands() if out is not None else []
    if made:
        lines += ["Made with:", ""]
        lines += [f"    {line}" for line in made]
        lines += [""]
    lines += ["| data | labels | method | draws | test error % | validation error % | "
              "epoch selected | train s (mean) | MNIST, published % |",
              "|---|---|---|---|---|---|---|---|---|"]
    for s in result["summary"]:
        pub = s["published_mnist"]
        pub = f"{_pm(*pub)} ({COLUMN_NAMES[PUBLISHED_COLUMN[s['method']]]})" if pub else ""
        epochs = ", ".join("-" if e is None else str(e) for e in s["best_epoch"])
        lines.append(f"| {s['data']} | {s['n_labels']} | {s['method']} | {s['n']} | "
                     f"{_pm(s['test_error_mean'], s['test_error_std'])} | "
                     f"{s['valid_error_mean']:.2f} | {epochs} | "
                     f"{s['train_seconds_mean']:.0f} | {pub} |")
    names = ["nn", "tsvm", "m1_tsvm", "m2", "m1m2"]
    lines += ["", "Published MNIST test error (%), Kingma et al. (2014), Table 1 (the rest of "
              "the 50,000 training images unlabelled):", "",
              "| N | " + " | ".join(COLUMN_NAMES[n] for n in names) + " |",
              "|---" * (len(names) + 1) + "|"]
    for n_labels, row in PUBLISHED_MNIST.items():
        cells = [_pm(*v) if isinstance(v, tuple) else f"{v:.2f}" for v in
                 (row[n] for n in names)]
        lines.append(f"| {n_labels} | " + " | ".join(cells) + " |")
    lines += ["", result["note"], "",
              "Here `supervised` is q(y|x)'s network trained on the labelled images alone "
              "(the paper's NN); `m1-logreg` is a logistic regression on the M1 features "
              "(the paper used a TSVM); `m2` and `m1m2` sum y out exactly and weight the "
              "classification term of each labelled image with " + _alphas(result["rows"])
              + ".", "",
              "## Runs", "",
              "| run | test error % | validation error % | epoch selected / run | "
              "train s | device |", "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        epochs = f"{r['best_epoch']} / {r['epochs_run']}" if r["best_epoch"] else ""
        lines.append(f"| {r['name']} ({r['data']}) | {r['test_error']:.2f} | "
                     f"{r['valid_error']:.2f} | {epochs} | {r['train_seconds']:.0f} | "
                     f"{r['device']} |")
    return "\n".join(lines) + "\n"


# -- reading ---------------------------------------------------------------------------------

def read_results(out) -> dict:
    """The finished runs in ``<out>/runs`` and their summary per data set, method and label
    count, as ``merge`` gathers them, but read only: nothing is written, so a reader (the
    book's chapter) may run where ``out`` is read-only, missing, or still filling up.
    Returns ``dict(rows=[...], summary=[...])``; both are empty when there is no run yet."""
    rows = list(Results(out).runs().values())
    order = {m: i for i, m in enumerate(METHODS)}
    rows.sort(key=lambda r: (r["data"], r["n_labels"], order.get(r["method"], 99), r["draw"]))
    groups: dict = {}
    for r in rows:
        groups.setdefault((r["data"], r["n_labels"], r["method"]), []).append(r)
    summary = []
    for (name, n_labels, method), group in groups.items():
        errors = np.array([r["test_error"] for r in group])
        summary.append(dict(
            data=name, n_labels=n_labels, method=method, draws=[r["draw"] for r in group],
            n=len(group), test_error_mean=float(errors.mean()),
            test_error_std=float(errors.std(ddof=1)) if len(group) > 1 else None,
            valid_error_mean=float(np.mean([r["valid_error"] for r in group])),
            best_epoch=[r["best_epoch"] for r in group],
            epochs=[r["epochs_run"] for r in group],
            train_seconds_mean=float(np.mean([r["train_seconds"] for r in group])),
            published_mnist=_published(method, n_labels)))
    return dict(rows=rows, summary=summary)


def missing_runs(results: dict, methods=METHODS, labels=(100, 1000), draws=(0, 1, 2)) -> list:
    """The names of the runs of ``methods`` x ``labels`` x ``draws`` that ``results`` (from
    ``read_results``) does not hold, in the order of ``run_all``."""
    done = {r["name"] for r in results["rows"]}
    return [run_name(m, n, d) for n in labels for d in draws for m in methods
            if run_name(m, n, d) not in done]


def paired_differences(results: dict, method: str, baseline: str = "supervised") -> list:
    """``method``'s test error minus ``baseline``'s, paired by label count and draw (the
    same labelled images, the same test images), per label count: ``dict(n_labels,
    draws, differences, mean, se)`` with ``se`` the standard error of the mean difference
    over draws (None with one draw). Only draws that both methods have finished count."""
    error = {(r["method"], r["n_labels"], r["draw"]): r["test_error"] for r in results["rows"]}
    out = []
    for n_labels in sorted({n for m, n, d in error if m == method}):
        draws = sorted(d for m, n, d in error if m == method and n == n_labels
                       and (baseline, n, d) in error)
        if not draws:
            continue
        diff = np.array([error[method, n_labels, d] - error[baseline, n_labels, d]
                         for d in draws])
        se = float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else None
        out.append(dict(n_labels=n_labels, draws=draws, differences=diff.tolist(),
                        mean=float(diff.mean()), se=se))
    return out


# -- tables for the chapter ------------------------------------------------------------------

#: How the chapter names the methods.
NAMES = {"supervised": "supervised", "m1-logreg": "M1 + log. reg.", "m2": "M2",
         "m1m2": "M1+M2"}


def _cell(mean, std=None, n=None) -> str:
    text = f"{mean:.2f}" + ("" if std is None else f" ± {std:.2f}")
    return text + ("" if n is None else f" ({n})")


def _summary(results: dict, method: str, n_labels: int):
    return next((s for s in results["summary"] if s["method"] == method
                 and s["n_labels"] == n_labels), None)


def runs_table(results: dict):
    """Per method and label count: the draws finished, the epochs each ran and kept, and the
    minutes per run."""
    import pandas as pd
    return pd.DataFrame({f"{s['method']}, {s['n_labels']:,}": {
        "draws": s["n"], "epochs run": "/".join(str(e) if e else "-" for e in s["epochs"]),
        "epoch kept": "/".join("-" if e is None else str(e) for e in s["best_epoch"]),
        "minutes per run": round(s["train_seconds_mean"] / 60, 1)}
        for s in results["summary"]}).T.rename_axis("method, labels")


def error_table(results: dict, labels=(100, 1000), larger: dict | None = None):
    """Test error % per method and label count, mean ± standard deviation over draws (their
    number in brackets), beside the paper's MNIST numbers; with ``larger`` (``read_results``
    of the runs with ten times the paper's alpha), a row for that M2."""
    import pandas as pd
    table = {}
    for method, name in NAMES.items():
        row = {}
        for n_l in labels:
            s = _summary(results, method, n_l)
            row[f"{n_l:,} labels"] = _cell(s["test_error_mean"], s["test_error_std"],
                                           s["n"]) if s else "missing"
            published = PUBLISHED_MNIST[n_l][PUBLISHED_COLUMN[method]]
            row[f"MNIST {n_l:,}"] = _cell(*published) if isinstance(published, tuple) \
                else _cell(published)
        table[name] = row
    if larger is not None:
        table["M2, 10 x alpha"] = {
            f"{n_l:,} labels": _cell(s["test_error_mean"], s["test_error_std"], s["n"])
            if (s := _summary(larger, "m2", n_l)) else "missing" for n_l in labels}
    table = pd.DataFrame(table).T.fillna("")
    table.columns.name = "test error %"
    return table


def differences_table(results: dict, labels=(100, 1000), larger: dict | None = None):
    """Each method's test error minus the supervised network's, draw by draw (the same
    labelled and test images): mean ± standard error over draws (their number)."""
    import pandas as pd
    baseline = [r for r in results["rows"] if r["method"] == "supervised"]

    def row(rows, method):
        return {f"{d['n_labels']:,} labels": f"{d['mean']:+.2f}"
                + ("" if d["se"] is None else f" ± {d['se']:.2f}") + f" ({len(d['draws'])})"
                for d in paired_differences({"rows": rows + baseline}, method)}
    diffs = {NAMES[m]: row([r for r in results["rows"] if r["method"] == m], m)
             for m in ("m1-logreg", "m2", "m1m2")}
    if larger is not None:
        diffs["M2, 10 x alpha"] = row(larger["rows"], "m2")
    return (pd.DataFrame(diffs).T.reindex(columns=[f"{n:,} labels" for n in labels])
            .fillna("not run").rename_axis("minus supervised, points"))


# -- command line ----------------------------------------------------------------------------

def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got "
                                         f"{text!r}") from None
    if not values or min(values) < 0:
        raise argparse.ArgumentTypeError(f"expected integers >= 0, got {text!r}")
    return values


def _methods(text: str) -> list[str]:
    methods = list(METHODS) if text == "all" else [m for m in text.split(",") if m]
    for m in methods:
        if m not in METHODS:
            raise argparse.ArgumentTypeError(f"unknown method {m!r}; expected 'all' or a "
                                             f"comma-separated list of {', '.join(METHODS)}")
    return methods


def build_parser() -> argparse.ArgumentParser:
    from ..data import DATASETS
    p = argparse.ArgumentParser(prog="python -m lvae_core.campaign.semisupervised",
                                description="Semi-supervised runs of Kingma et al. (2014).")
    p.add_argument("--data", choices=DATASETS, default="fashion-mnist")
    p.add_argument("--labels", type=_ints, default=[100], help="labelled images, e.g. 100,1000")
    p.add_argument("--draw", type=_ints, default=[0], help="labelled draws (seeds), e.g. 0,1,2")
    p.add_argument("--method", type=_methods, default=["m2"],
                   help=f"'all' or a comma-separated list of {', '.join(METHODS)}")
    p.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--batch-unlabelled", type=int, default=256)
    p.add_argument("--batch-labelled", type=int, default=32)
    p.add_argument("--alpha", type=float, default=None,
                   help="the classification weight (default: 0.1 N / N_labelled)")
    p.add_argument("--y", choices=("sum", "sample"), default="sum",
                   help="'sample' is the ablation that samples y in U(x)")
    p.add_argument("--binarize", action="store_true",
                   help="binarize the images every epoch (default: grey levels)")
    p.add_argument("--patience", type=int, default=0,
                   help="stop when the validation error has not improved for this many epochs")
    p.add_argument("--hidden", type=_ints, default=list(DEFAULT_SIZES["hidden"]))
    p.add_argument("--latent", type=int, default=DEFAULT_SIZES["latent"])
    p.add_argument("--classifier-hidden", type=_ints,
                   default=list(DEFAULT_SIZES["classifier_hidden"]))
    p.add_argument("--n-valid", type=int, default=N_VALID)
    p.add_argument("--n-train", type=int, default=None,
                   help="use only the first N training images (quick checks)")
    p.add_argument("--m1", default=DEFAULT_M1, help="M1's checkpoint (m1-logreg, m1m2)")
    p.add_argument("--checkpoint-every", type=int, default=10)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    p.add_argument("--device", default=None)
    p.add_argument("--out", default=None, help="default: results/semisupervised-<data>")
    p.add_argument("--ship-models", action="store_true",
                   help="also save each trained network in float16 to OUT/models/<name>.pt")
    p.add_argument("--force", action="store_true", help="run again when the JSON exists")
    p.add_argument("--list", action="store_true", help="print the runs and stop")
    p.add_argument("--merge", action="store_true", help="only gather OUT/runs/*.json")
    p.add_argument("--no-progress", action="store_true")
    return p


def _record_command(out: Path, argv) -> None:
    record_command(out, "python -m lvae_core.campaign.semisupervised "
                   + " ".join(shlex.quote(a) for a in argv))


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    out = Path(args.out or f"results/semisupervised-{args.data}")
    if args.merge:
        print(markdown(merge(out), out))
        return 0
    if args.list:
        for n_labels in args.labels:
            for draw in args.draw:
                for method in args.method:
                    name = run_name(method, n_labels, draw)
                    done = (out / "runs" / f"{name}.json").is_file()
                    print(f"{name:24s} {'done' if done else 'to run'}")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)
    from ..data import load_dataset
    data = load_dataset(args.data, n_train=args.n_train)
    config = SSConfig(epochs=args.epochs, lr=args.lr, batch_unlabelled=args.batch_unlabelled,
                      batch_labelled=args.batch_labelled, alpha=args.alpha, y=args.y,
                      binarize=args.binarize, patience=args.patience)
    sizes = dict(hidden=tuple(args.hidden), latent=args.latent,
                 classifier_hidden=tuple(args.classifier_hidden))
    _record_command(out, argv)
    run_all(args.method, args.labels, args.draw, data, out, force=args.force, config=config,
            sizes=sizes, m1=args.m1, n_valid=args.n_valid,
            checkpoint_every=args.checkpoint_every, progress=not args.no_progress,
            ship_model=args.ship_models, device=args.device)
    print(markdown(merge(out), out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
