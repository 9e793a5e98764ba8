"""A results folder, read and written in one place.

The reproduction runs (``lvae_core.campaign``) write, and the book's chapters read, folders
laid out like this::

    <folder>/runs/<name>.json               a finished run: its record and its final scores
    <folder>/runs/<name>.per_image.npz      its per-image test log-likelihoods and ELBOs
    <folder>/runs/<name>.curve.json         its learning curve: scores after some epochs
    <folder>/runs/<name>.curve.npz          per-image log-likelihoods at each curve epoch
    <folder>/runs/<name>.curve_train.npz    the same on a fixed training subset
    <folder>/runs/<name>.events.json        what happened to a run (e.g. a divergence)
    <folder>/models/<name>.pt               the trained model, shipped in float16
    <folder>/models/<name>.pca.npz          its latent layers' PCA coordinates
    <folder>/results.json, results.md       everything merged, with paired differences
    <folder>/commands.txt                   the commands that made them

``Results(folder)`` reads and writes one; ``find("fashion-mnist-protocol")`` finds the
repository's own (``results/`` beside the book), wherever a chapter runs from.

    full = find("fashion-mnist-protocol")
    full.run("lvae-L5-bn-wu")["test_nll"]
    full.paired_table([("lvae-L5-bn-wu", "hvae-L5-bn-wu")])     # on the same test images
    model, history = full.model("lvae-L5-bn-wu")
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from . import comparison
from .runtime import atomic_savez, atomic_write

#: Where ``find`` looks first: a folder that holds results folders.
RESULTS_DIR_ENV = "LVAE_RESULTS_DIR"


def write_json(obj, path) -> Path:
    """Write ``obj`` as indented JSON to ``path``, atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2)))


def read_json(path):
    return json.loads(Path(path).read_text())


def results_dirs() -> list[Path]:
    """The folders ``find`` searches: ``$LVAE_RESULTS_DIR``, then ``results/`` in the
    current folder and each folder above it (a chapter runs from ``book/``), then the one
    beside the package (a clone with an editable install)."""
    here = Path.cwd()
    dirs = [Path(os.environ[RESULTS_DIR_ENV])] if os.environ.get(RESULTS_DIR_ENV) else []
    dirs += [p / "results" for p in (here, *here.parents)]
    dirs.append(Path(__file__).resolve().parents[1] / "results")
    return dirs


def find(name: str) -> "Results":
    """The results folder ``name`` (e.g. ``"fashion-mnist-protocol"``) where it exists (see
    ``results_dirs``); if nowhere, a ``Results`` whose ``exists`` is False, so that a chapter
    run from a copy without the results says so instead of failing."""
    for folder in results_dirs():
        if (folder / name).is_dir():
            return Results(folder / name)
    return Results(Path("results") / name)


class Results:
    """One results folder (see the module's docstring)."""

    def __init__(self, folder):
        self.folder = Path(folder)

    def __repr__(self) -> str:
        return f"Results({str(self.folder)!r})"

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def exists(self) -> bool:
        return self.folder.is_dir()

    def _file(self, name: str, suffix: str) -> Path:
        return self.folder / "runs" / f"{name}{suffix}"

    # -- finished runs --------------------------------------------------------------------
    def run(self, name: str) -> dict | None:
        """A finished run's record and final scores (``runs/<name>.json``), or None."""
        path = self._file(name, ".json")
        return read_json(path) if path.is_file() else None

    def finished(self, name: str) -> bool:
        return self._file(name, ".json").is_file()

    def runs(self, names=None) -> dict:
        """``{name: record}`` of the finished runs (of ``names``, in their order)."""
        if names is None:
            names = sorted(p.name[:-len(".json")] for p in (self.folder / "runs").glob("*.json")
                           if p.name.count(".") == 1)
        return {n: r for n in names if (r := self.run(n)) is not None}

    def write_run(self, result: dict) -> Path:
        return write_json(result, self._file(result["name"], ".json"))

    def per_image(self, name: str) -> dict:
        """A run's per-image test log-likelihoods and ELBOs (nats), as numpy arrays."""
        with np.load(self._file(name, ".per_image.npz")) as f:
            return {key: f[key] for key in f.files}

    def write_per_image(self, name: str, log_likelihood, elbo) -> Path:
        return atomic_savez(self._file(name, ".per_image.npz"),
                            log_likelihood=np.asarray(log_likelihood, dtype=np.float64),
                            elbo=np.asarray(elbo, dtype=np.float64))

    # -- learning curves ------------------------------------------------------------------
    def curve(self, name: str) -> dict | None:
        """A run's learning curve (``name, data, n_images, k, points``), or None."""
        path = self._file(name, ".curve.json")
        return read_json(path) if path.is_file() else None

    def curves(self) -> dict:
        """``{name: curve}`` of every run with a learning curve."""
        return {c["name"]: c for c in (read_json(p) for p in
                                       sorted((self.folder / "runs").glob("*.curve.json")))}

    def point(self, name: str, epoch: int) -> dict | None:
        """A run's learning-curve point at ``epoch``, or None."""
        curve = self.curve(name)
        return next((p for p in curve["points"] if p["epoch"] == epoch), None) if curve \
            else None

    def write_curve(self, curve: dict) -> Path:
        curve["points"].sort(key=lambda p: p["epoch"])
        return write_json(curve, self._file(curve["name"], ".curve.json"))

    def _curve_images_path(self, name: str, which: str) -> Path:
        return self._file(name, {"test": ".curve.npz", "train": ".curve_train.npz"}[which])

    def curve_images(self, name: str, which: str = "test") -> dict:
        """A run's per-image learning-curve log-likelihoods, ``{epoch: numpy array}``, on the
        curve's test images (``"test"``) or on the fixed training subset (``"train"``)."""
        path = self._curve_images_path(name, which)
        if not path.is_file():
            return {}
        with np.load(path) as f:
            return {int(key[len("epoch"):]): f[key] for key in f.files}

    def add_curve_images(self, name: str, epoch: int, log_likelihood,
                         which: str = "test") -> Path:
        """Add one epoch's per-image log-likelihoods (``epoch00010``) to the run's file."""
        arrays = {f"epoch{e:05d}": ll for e, ll in self.curve_images(name, which).items()}
        arrays[f"epoch{epoch:05d}"] = np.asarray(log_likelihood, dtype=np.float64)
        return atomic_savez(self._curve_images_path(name, which), **arrays)

    # -- events, shipped models -----------------------------------------------------------
    def events(self, name: str) -> list:
        path = self._file(name, ".events.json")
        return read_json(path) if path.is_file() else []

    def record_event(self, name: str, event: dict) -> Path:
        return write_json(self.events(name) + [event], self._file(name, ".events.json"))

    def model_path(self, name: str) -> Path:
        return self.folder / "models" / f"{name}.pt"

    def has_model(self, name: str) -> bool:
        return self.model_path(name).is_file()

    def model_names(self, pattern: str = "*") -> list[str]:
        """The names of the shipped models that match a glob ``pattern`` (``"m2-n*-d0"``)."""
        return sorted(p.stem for p in (self.folder / "models").glob(f"{pattern}.pt"))

    def model(self, name: str, device=None):
        """A shipped model: ``(model in eval mode, history)``; ``len(history["epoch"])`` is the
        number of epochs it was trained for."""
        from .checkpoints import load_checkpoint
        return load_checkpoint(self.model_path(name), device)

    def pca(self, name: str) -> dict:
        """A shipped model's latent PCA coordinates: ``z1`` ... ``zL``, ``ratio_z1`` ...,
        ``labels``."""
        with np.load(self.model_path(name).with_suffix(".pca.npz")) as f:
            return {key: f[key] for key in f.files}

    # -- merged --------------------------------------------------------------------------
    def summary(self) -> dict | None:
        """``results.json`` (``merge``'s output), or None."""
        path = self.folder / "results.json"
        return read_json(path) if path.is_file() else None

    def write_summary(self, summary: dict, markdown: str) -> None:
        write_json(summary, self.folder / "results.json")
        atomic_write(self.folder / "results.md", lambda tmp: tmp.write_text(markdown))

    def commands(self) -> list[str]:
        path = self.folder / "commands.txt"
        return [ln for ln in path.read_text().splitlines() if ln.strip()] if path.is_file() \
            else []

    # -- comparisons ---------------------------------------------------------------------
    def log_likelihoods(self, names, epoch: int | None = None) -> dict:
        """Per-image log-likelihoods of ``names`` on the same images: the final evaluation
        (``epoch=None``) or a learning-curve epoch. Runs without them are left out."""
        if epoch is None:
            return {n: self.per_image(n)["log_likelihood"] for n in names
                    if self._file(n, ".per_image.npz").is_file()}
        return {n: ll[epoch] for n in names if epoch in (ll := self.curve_images(n))}

    def paired(self, a: str, b: str, epoch: int | None = None) -> dict:
        """NLL_a - NLL_b on the same images (``comparison.paired_difference``)."""
        ll = self.log_likelihoods((a, b), epoch)
        return comparison.paired_difference(ll[a], ll[b])

    def paired_table(self, pairs, epoch: int | None = None, labels: dict | None = None):
        """``comparison.paired_table`` of ``pairs`` of run names, at ``epoch`` (None: the final
        evaluation); ``labels`` renames runs for display. Pairs with a missing run are left
        out; None when none is left."""
        names = {n for pair in pairs for n in pair}
        ll = self.log_likelihoods(names, epoch)
        labels = labels or {}
        pairs = [(a, b) for a, b in pairs if a in ll and b in ll]
        if not pairs:
            return None
        return comparison.paired_table({labels.get(n, n): v for n, v in ll.items()},
                                       [(labels.get(a, a), labels.get(b, b)) for a, b in pairs])

    def paired_by_epoch(self, a: str, b: str, labels=None):
        """NLL_a - NLL_b on the curve's images at every epoch both runs reached: a table by
        epoch with ``ΔNLL``, ``paired SE``, the ``SE of one model`` and a ``verdict`` at two
        paired SE naming the better run by ``labels`` (default: the runs' kinds, "LVAE")."""
        import pandas as pd
        labels = labels or (a.split("-")[0].upper(), b.split("-")[0].upper())
        ll_a, ll_b = self.curve_images(a), self.curve_images(b)
        rows = {}
        for epoch in sorted(set(ll_a) & set(ll_b)):
            d = comparison.paired_difference(ll_a[epoch], ll_b[epoch])
            verdict = comparison.verdict(d).replace("a better", f"{labels[0]} better")
            rows[epoch] = {"ΔNLL": round(d["delta_nll"], 2), "paired SE": round(d["se"], 2),
                           "SE of one model": round(d["se_a"], 2),
                           "verdict": verdict.replace("b better", f"{labels[1]} better")}
        return pd.DataFrame.from_dict(rows, orient="index").rename_axis("epoch")

    # -- tables for the chapters ---------------------------------------------------------
    def final_table(self, names, labels: dict | None = None, columns=("epochs", "nll",
                    "elbo", "units", "kl", "hours")):
        """The finished runs among ``names`` as a small table, one row per run: epochs, test
        NLL ± SE (k of the final evaluation), test -ELBO, active units and KL per layer (z_1
        first), hours of training. Checks L_k >= ELBO for each. None if none has finished."""
        import pandas as pd
        rows = {}
        for name, r in self.runs(names).items():
            assert r["test_nll"] <= -r["test_elbo"] + 1e-3      # L_k >= the ELBO, always
            k = r.get("eval_k", 5000)
            cells = {"epochs": r["fit"]["epochs"],
                     "nll": (f"test NLL (k={k})", f"{r['test_nll']:.2f} ± "
                             f"{r['test_nll_sem']:.2f}"),
                     "elbo": ("test −ELBO", f"{-r['test_elbo']:.2f}"),
                     "units": ("active units", per_layer(r["active_units"])),
                     "kl": ("KL per layer (nats)", per_layer(r.get("kl_per_layer") or [])),
                     "hours": ("hours", f"{r['train_seconds'] / 3600:.1f}")}
            rows[(labels or {}).get(name, name)] = dict(
                (v if isinstance(v, tuple) else (key, v)) for key, v in cells.items()
                if key in columns)
        return pd.DataFrame(rows).T if rows else None

    def curve_points(self):
        """Every learning-curve point of every run, one row each: run, epoch, test NLL,
        -ELBO, active units, KL per layer, hours of training. Checks L_k >= ELBO."""
        import pandas as pd
        records = []
        for name, curve in self.curves().items():
            for p in curve["points"]:
                assert p["test_nll"] <= -p["test_elbo"] + 1e-3    # L_k >= ELBO, every epoch
                records.append({"run": name, "epoch": p["epoch"], "test NLL": p["test_nll"],
                                "-ELBO": -p["test_elbo"], "active": p["active_units"],
                                "KL": p["kl_per_layer"],
                                "hours": p["train_seconds"] / 3600})
        return pd.DataFrame(records)


def per_layer(values) -> str:
    """'64 32 2 0 0' or '7.7 6.4 4.3 0.0 0.0': one entry per layer, z_1 first."""
    return " ".join(f"{round(v, 1) + 0.0:.1f}" if isinstance(v, float) else str(v)
                    for v in values)


#: Column labels of ``rows_table``.
ROW_COLUMNS = {"n_train": "train images", "epochs": "epochs", "eval_k": "eval k",
               "test_nll": "test NLL", "neg_elbo": "−ELBO", "units": "active units",
               "published_nll": "published NLL"}


def rows_table(summary: dict, columns=tuple(ROW_COLUMNS)):
    """The rows of a merged ``results.json`` as a small table indexed by run, one column per
    key of ``ROW_COLUMNS`` in ``columns``; active units per layer from z_1, marked ``*`` where
    an earlier estimator (the plain 10-sample estimate of E_q[u | x], which can count a unit
    above z_1 as active when only its Monte Carlo noise varies) counted them. Checks
    L_k >= ELBO for every row."""
    import pandas as pd
    records = {}
    for r in summary["rows"]:
        assert r["test_nll"] <= -r["test_elbo"] + 1e-3        # L_k >= the ELBO, always
        early = r.get("active_units_estimator") is None and len(r["active_units"]) > 1
        pub = r.get("published_nll")
        values = {"n_train": r["n_train"], "epochs": r["fit"]["epochs"],
                  "eval_k": r["eval_k"], "test_nll": f"{r['test_nll']:.2f}",
                  "neg_elbo": f"{-r['test_elbo']:.2f}",
                  "units": " / ".join(map(str, r["active_units"])) + (" *" if early else ""),
                  "published_nll": "" if pub is None else f"{pub:.2f}"}
        records[r["name"]] = {ROW_COLUMNS[c]: values[c] for c in columns}
    return pd.DataFrame(records).T.rename_axis("run")
