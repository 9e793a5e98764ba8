"""Run the Ladder VAE and IWAE papers' grids: ``python -m lvae_core reproduce ...``.

The grids, their protocols and the published numbers are data, in ``lvae_core.grids``
(re-exported here). This module runs them. Every configuration is trained with
``lvae_core.fit`` (its checkpoint is cached on disk by the full configuration, with resumable
partial checkpoints every ``--checkpoint-every`` epochs) and evaluated with
``evaluation.evaluate`` on the test set binarized once, with ``--eval-k`` samples. Its result
goes to ``<out>/runs/<name>.json``; a configuration whose JSON exists is skipped, so an
interrupted run continues where it stopped. ``--shard i/n`` runs the configurations whose
index in the selected list is i modulo n, so that any scheduler can spread the grid over
several GPUs or machines; ``--merge`` gathers ``runs/*.json`` into ``<out>/results.json`` and
``<out>/results.md`` beside the published numbers.

Full protocols (a GPU; days of compute for the whole LVAE grid, fit for several GPUs; add
``--compile`` on a GPU to run each training step as a CUDA graph)::

    python -m lvae_core reproduce --data mnist --grid lvae --eval-k 5000 --out results/lvae-mnist
    python -m lvae_core reproduce --data mnist --grid iwae --eval-k 5000 --out results/iwae-mnist
    # spread over 4 GPUs (one process each), then merge:
    CUDA_VISIBLE_DEVICES=0 python -m lvae_core reproduce --data mnist --grid all \\
        --shard 0/4 --out results/mnist &
    ...  # shards 1/4, 2/4 and 3/4 likewise
    python -m lvae_core reproduce --merge results/mnist

Shortened protocols (a CPU, minutes)::

    python -m lvae_core reproduce --data mnist-5k --grid lvae --epochs 10 --eval-k 500 \\
        --out results/lvae-mnist-5k-cpu
    python -m lvae_core reproduce --data fashion-mnist --grid all \\
        --only vae-L1-k1,hvae-L2-bn-wu,lvae-L5-bn-wu,iwae-L1-k50 \\
        --epochs 5 --n-train 10000 --n-test 1000 --eval-k 1000 --out results/fashion-mnist-cpu
    python -m lvae_core reproduce --grid all --list      # the names, without running anything
"""
from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from . import checkpoints as ckpt
from .grids import (GRIDS, IWAE_KS, PROTOCOLS, PUBLISHED, Config, iwae_grid,  # noqa: F401
                    list_configs, lvae_grid, parse_shard, published, schedule, shard)
from .runtime import atomic_write

#: Epochs after which a run's model is saved and evaluated for its learning curve.
CURVE_EPOCHS = (1, 3, 10, 30, 100, 300, 1000, 2000, 3280)
#: The learning curve's test images (the first of the test set binarized once) and samples.
CURVE_IMAGES, CURVE_K = 2000, 1000
#: The training images on which a stopped run's train log-likelihood is estimated: the first
#: ``CURVE_IMAGES`` training images, binarized once with this seed.
TRAIN_IMAGES_SEED = 1


def train_images(data) -> torch.Tensor:
    """The fixed training subset of ``train_nll``: the first ``CURVE_IMAGES`` training images
    binarized once with ``TRAIN_IMAGES_SEED`` (the same on every call and machine)."""
    from .data import binarize
    return binarize(data.train_x[:CURVE_IMAGES], seed=TRAIN_IMAGES_SEED)


def build(config: Config, x_dim: int):
    """The untrained model of ``config`` for ``x_dim`` pixels."""
    return config.model(x_dim).build()


def write_json(obj, path) -> Path:
    """Write ``obj`` as indented JSON to ``path``, atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2)))


def snapshot_dir(config: Config, out) -> Path:
    """Where a run's learning-curve snapshots are kept: in the checkpoint cache, not in
    ``out`` (they are several MB each)."""
    from .data import cache_dir
    return cache_dir() / "snapshots" / Path(out).resolve().name / config.name


def curve_epochs(epochs: int) -> tuple:
    """The learning-curve epochs reached by a run of ``epochs`` epochs, and its last."""
    return tuple(sorted({e for e in CURVE_EPOCHS if e <= epochs} | {epochs}))


def _schedule_fields(tc) -> dict:
    """The protocol part of a ``TrainConfig``, as a result's ``fit`` entry records it."""
    return dict(epochs=tc.epochs, warmup_epochs=tc.warmup_epochs, lr=tc.lr,
                batch_size=tc.batch_size, lr_schedule=tc.lr_schedule,
                init_output_bias=tc.init_output_bias, k=tc.k, objective=tc.objective,
                adam_eps=tc.adam_eps)


def run_config(config: Config, data, out, *, epochs=None, epochs_scale=1.0, eval_k=5000,
               seed=0, device=None, checkpoint_every=0, progress=True, cache=True,
               compiled=False, ship_model=False, precision="fp32", curves=False) -> dict:
    """Train (or load from ``fit``'s cache) and evaluate one configuration; write and return
    its result, which ``<out>/runs/<name>.json`` holds. ``compiled``: see ``TrainConfig``
    and ``log_likelihood`` (faster; the same mathematics, other random draws). Also written:
    the learning curve (``<name>.curve.json``, see ``evaluate_curve``), the per-image
    log-likelihoods and ELBOs (``<name>.per_image.npz``), and with ``ship_model`` the trained
    model in float16 (``<out>/models/<name>.pt``, read by ``load_shipped``). With ``curves``
    (the command line's default; ``--no-curves``), the model is also saved after the
    learning-curve epochs and each is scored with k = ``CURVE_K``: several more evaluations,
    worth it for a long run."""
    from .evaluation import evaluate
    from .train import fit
    model = build(config, data.x_dim)
    tc = schedule(config, epochs, epochs_scale, seed=seed, compiled=compiled,
                  precision=precision)
    t0 = time.perf_counter()
    history = fit(model, data, tc, device=device, cache=cache, progress=progress,
                  checkpoint_every=checkpoint_every if tc.epochs > checkpoint_every else 0,
                  snapshot_epochs=curve_epochs(tc.epochs) if cache and curves else (),
                  snapshot_dir=snapshot_dir(config, out) if cache and curves else None)
    train_seconds = time.perf_counter() - t0
    x = data.test_binary
    # the final estimate takes long (k = 5000 on 10,000 images: about 40 minutes for a
    # five-layer model on one CPU thread), so its progress is kept beside the snapshots
    resume = snapshot_dir(config, out) / f"final-eval-k{eval_k}.progress.pt" if cache else None
    ev, ll, elbo = evaluate(model, x, eval_k, seed=seed, compiled=compiled, progress=progress,
                            resume=resume)
    runs = Path(out) / "runs"
    _save_per_image(runs / f"{config.name}.per_image.npz", ll, elbo)
    if ship_model:
        shipped = ship(model, history, Path(out) / "models" / f"{config.name}.pt")
        save_pca(model, data, shipped.with_suffix(".pca.npz"), seed=seed)
    result = dict(
        name=config.name, grid=config.grid, kind=config.kind, data=data.name,
        num_layers=config.num_layers, hidden=list(config.hidden), latent=list(config.latent),
        activation=config.activation, batch_norm=config.batch_norm, warmup=config.warmup,
        train_k=config.k, fit=_schedule_fields(tc), published_epochs=config.protocol["epochs"],
        shortened=tc.epochs < config.protocol["epochs"], seed=seed,
        n_train=int(data.train_x.shape[0]), n_test=int(x.shape[0]), eval_k=eval_k,
        **{f: ev[f] for f in ("test_nll", "test_nll_sem", "test_elbo", "active_units",
                              "kl_per_layer")},
        final_train_bound=history["bound"][-1],
        train_seconds_this_run=train_seconds, train_seconds=sum(history["seconds"]),
        eval_seconds=ev["eval_seconds"], device=str(model.device),
        torch=torch.__version__, machine=platform.machine(), compiled=bool(compiled),
        precision=precision,
    )
    write_json(result, runs / f"{config.name}.json")
    if cache and curves:
        evaluate_curve(config, data, out, seed=seed, device=device, progress=progress,
                       compiled=compiled)
    return result


def _save_per_image(path: Path, ll: torch.Tensor, elbo: torch.Tensor) -> None:
    def write(tmp: Path):
        with tmp.open("wb") as f:
            np.savez_compressed(f, log_likelihood=ll.double().numpy(),
                                elbo=elbo.double().numpy())
    atomic_write(path, write)


def load_per_image(out, name: str) -> dict:
    """A run's per-image test log-likelihoods and ELBOs (nats), as numpy arrays."""
    with np.load(Path(out) / "runs" / f"{name}.per_image.npz") as f:
        return {key: f[key] for key in f.files}


def ship(model, history, path) -> Path:
    """Save ``model`` with float16 parameters (batch-norm statistics and integers kept as
    they are) for the book to load; ``load_shipped`` turns them back into float32."""
    state = ckpt.state_of(model, history)
    state["state_dict"] = {n: (t.half() if t.is_floating_point() and "running" not in n else t)
                           for n, t in state["state_dict"].items()}
    return ckpt.save(state, path)


def load_shipped(path, device=None):
    """A model saved by ``ship`` (or any ``fit`` checkpoint): ``(model in eval mode, history)``.
    ``len(history["epoch"])`` is the number of epochs it was trained for: a model shipped from
    a run still in progress (``ship_latest_snapshot``) has fewer than its protocol's."""
    return ckpt.load_checkpoint(path, device)


def ship_latest_snapshot(config: Config, data, out) -> Path | None:
    """Ship the newest learning-curve snapshot of a run that is still training (no
    ``runs/<name>.json`` yet) to ``<out>/models/<name>.pt``, with its PCA coordinates
    (``save_pca``), so that the book can show the best model trained so far. A finished run's
    shipped final model is left alone. Returns the path written, or None."""
    out = Path(out)
    snaps = sorted(snapshot_dir(config, out).glob("epoch*.pt"))
    if (out / "runs" / f"{config.name}.json").is_file() or not snaps:
        return None
    model, history = ckpt.load_checkpoint(snaps[-1])
    path = ship(model, history, out / "models" / f"{config.name}.pt")
    save_pca(model, data, path.with_suffix(".pca.npz"))
    return path


def save_pca(model, data, path, n_images: int = CURVE_IMAGES, seed: int = 0) -> Path:
    """The first two principal components of one posterior sample of every latent layer for
    the first ``n_images`` test images, with their labels, as ``.npz``: ``z1`` ... ``zL``
    (``(n_images, 2)``), ``ratio_z1`` ... (explained variance ratios) and ``labels``."""
    from .analysis import pca_embedding
    x = data.test_binary[:n_images]
    arrays = {"labels": data.test_y[:n_images].numpy()}
    for i, (emb, ratio) in enumerate(pca_embedding(model, x, seed=seed), start=1):
        arrays[f"z{i}"], arrays[f"ratio_z{i}"] = emb.astype(np.float32), ratio

    def write(tmp: Path):
        with tmp.open("wb") as f:
            np.savez_compressed(f, **arrays)
    return atomic_write(path, write)


def evaluate_curve(config: Config, data, out, *, seed=0, device=None, progress=True,
                   compiled=False, train_epochs=()) -> list:
    """Evaluate every saved snapshot of ``config``'s run not yet in ``<name>.curve.json``:
    per epoch, L_k with k = ``CURVE_K`` and the ELBO on the first ``CURVE_IMAGES`` test
    images (the same images for every run and epoch), active units and KL per layer; at the
    ``train_epochs`` also ``train_nll`` on ``train_images(data)`` (per image in
    ``<name>.curve_train.npz``). Works while the run is still training; returns the points,
    sorted by epoch."""
    from .evaluation import evaluate
    path = Path(out) / "runs" / f"{config.name}.curve.json"
    points = json.loads(path.read_text())["points"] if path.is_file() else []
    done = {p["epoch"] for p in points}
    x = data.test_binary[:CURVE_IMAGES]

    def save():
        points.sort(key=lambda p: p["epoch"])
        write_json(dict(name=config.name, data=data.name, n_images=int(x.shape[0]),
                        k=CURVE_K, points=points), path)
    for snap in sorted(snapshot_dir(config, out).glob("epoch*.pt")):
        epoch = int(snap.stem[len("epoch"):])
        if epoch in done:
            point = next(p for p in points if p["epoch"] == epoch)
            changed = _recount_units(point, snap, x, seed, device)
            if epoch in train_epochs and "train_nll" not in point:
                _add_train_nll(point, path, snap, data, seed, device, compiled, progress)
                changed = True
            if changed:
                save()
            continue
        model, history = ckpt.load_checkpoint(snap, device)
        ev, ll, _ = evaluate(model, x, CURVE_K, seed=seed, compiled=compiled, progress=progress)
        points.append(dict(epoch=epoch, **{f: ev[f] for f in (
            "test_nll", "test_nll_sem", "test_elbo", "active_units", "active_units_estimator",
            "kl_per_layer")}, train_bound=history["bound"][-1],
            train_seconds=sum(history["seconds"])))
        _save_curve_images(path.with_suffix(".npz"), epoch, ll)
        if epoch in train_epochs:
            _add_train_nll(points[-1], path, snap, data, seed, device, compiled, progress)
        save()
    return points


def _add_train_nll(point: dict, path: Path, snap: Path, data, seed, device, compiled,
                   progress) -> None:
    """Score a snapshot on the fixed training subset: ``train_nll`` (k = ``CURVE_K``) and its
    standard error in ``point``, per image in ``<name>.curve_train.npz``."""
    from .evaluation import evaluate
    model, _ = ckpt.load_checkpoint(snap, device)
    ev, ll, _ = evaluate(model, train_images(data), CURVE_K, seed=seed, compiled=compiled,
                         progress=progress)
    point.update(train_nll=ev["test_nll"], train_nll_sem=ev["test_nll_sem"],
                 train_elbo=ev["test_elbo"])
    _save_curve_images(path.with_name(path.name.replace(".curve.json", ".curve_train.npz")),
                       point["epoch"], ll)


def run_until(config: Config, data, out, until: int, *, seed=0, device=None,
              checkpoint_every=5, progress=True, compiled=False, precision="fp32") -> dict:
    """Train ``config``'s published protocol only up to epoch ``until`` (a resumable stop:
    ``fit(..., stop_after=until)``), then score its learning-curve snapshots, with the
    train log-likelihood at ``until``. The model after ``until`` epochs of the full protocol
    is the same as that of an uninterrupted run, so the same command without ``--until``
    later continues it to the published length. Returns the curve point at ``until``; a run
    that diverges is recorded in ``<out>/runs/<name>.events.json`` (the divergence guard
    restores the last good parameters) and its snapshots so far are still scored."""
    from .train import TrainingDivergedError, fit
    model = build(config, data.x_dim)
    tc = schedule(config, seed=seed, compiled=compiled, precision=precision)
    if not 0 < until <= tc.epochs:
        raise ValueError(f"--until must be between 1 and the protocol's {tc.epochs} epochs, "
                         f"got {until}")
    epochs = tuple(sorted(set(curve_epochs(tc.epochs)) | {until}))
    try:
        fit(model, data, tc, device=device, progress=progress, stop_after=until,
            checkpoint_every=checkpoint_every or 5, snapshot_epochs=epochs,
            snapshot_dir=snapshot_dir(config, out))
    except TrainingDivergedError as error:
        _record_event(out, config.name, dict(event="diverged", message=str(error),
                                             until=until, precision=precision))
    points = evaluate_curve(config, data, out, seed=seed, device=device, progress=progress,
                            compiled=compiled, train_epochs=(until,))
    return next((p for p in points if p["epoch"] == until), {})


def _record_event(out, name: str, event: dict) -> None:
    path = Path(out) / "runs" / f"{name}.events.json"
    events = json.loads(path.read_text()) if path.is_file() else []
    write_json(events + [event], path)


def reached(out, name: str, until: int) -> bool:
    """Whether a run stopped at ``until`` has been scored there (train NLL included), or has
    diverged before it."""
    runs = Path(out) / "runs"
    curve = runs / f"{name}.curve.json"
    if (runs / f"{name}.events.json").is_file():
        return True
    if not curve.is_file():
        return False
    return any(p["epoch"] == until and "train_nll" in p
               for p in json.loads(curve.read_text())["points"])


def _recount_units(point: dict, snap: Path, x, seed: int, device) -> bool:
    """Count a learning-curve point's active units again if an earlier estimator counted them
    (``evaluation.ACTIVE_UNITS_ESTIMATOR``); the likelihoods stay. True if it changed."""
    from .analysis import active_units
    from .evaluation import ACTIVE_UNITS_ESTIMATOR
    if point.get("active_units_estimator") == ACTIVE_UNITS_ESTIMATOR:
        return False
    model, _ = ckpt.load_checkpoint(snap, device)
    point["active_units_plain_10"] = point["active_units"]
    point["active_units"] = active_units(model, x, seed=seed)
    point["active_units_estimator"] = ACTIVE_UNITS_ESTIMATOR
    return True


def _save_curve_images(path: Path, epoch: int, ll: torch.Tensor) -> None:
    """Add the per-image log-likelihoods of one learning-curve epoch to ``path`` (npz, one
    array per epoch, ``epoch00010``), for paired differences between runs at that epoch."""
    import numpy as np
    arrays = {}
    if path.is_file():
        with np.load(path) as f:
            arrays = {key: f[key] for key in f.files}
    arrays[f"epoch{epoch:05d}"] = ll.double().numpy()

    def write(tmp: Path):
        with tmp.open("wb") as f:
            np.savez_compressed(f, **arrays)
    atomic_write(path, write)


def load_curve_images(out, name: str, which: str = "test") -> dict:
    """A run's per-image learning-curve log-likelihoods: ``{epoch: numpy array}``, on the
    curve's test images (``which="test"``) or on the fixed training subset (``"train"``,
    scored at the epoch a run was stopped at)."""
    import numpy as np
    suffix = {"test": ".curve.npz", "train": ".curve_train.npz"}[which]
    path = Path(out) / "runs" / f"{name}{suffix}"
    if not path.is_file():
        return {}
    with np.load(path) as f:
        return {int(key[len("epoch"):]): f[key] for key in f.files}


def run(configs: list[Config], data, out, *, force=False, progress=True, until=None,
        **options) -> list[dict]:
    """Run every configuration whose ``runs/<name>.json`` is missing (all with ``force``);
    return the results of all of them (loaded or new). ``options``: of ``run_config``.
    With ``until``: train each only up to that epoch of its protocol (``run_until``), and
    skip those already scored there."""
    out = Path(out)
    if until:
        keep = ("seed", "device", "checkpoint_every", "compiled", "precision")
        return [run_until(c, data, out, until, progress=progress,
                          **{k: v for k, v in options.items() if k in keep})
                for c in configs if force or not reached(out, c.name, until)]
    results = []
    bar = configs
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(configs, desc="configurations", unit="config")
    for config in bar:
        path = out / "runs" / f"{config.name}.json"
        if progress:
            bar.set_postfix_str(config.name)
        if path.is_file() and not force:
            results.append(json.loads(path.read_text()))
            continue
        results.append(run_config(config, data, out, progress=progress, **options))
    return results


def _order(row) -> tuple:
    names = [c.name for c in list_configs("all")]
    return (names.index(row["name"]) if row["name"] in names else len(names), row["name"])


def merge(out) -> dict:
    """Gather ``<out>/runs/*.json`` into ``<out>/results.json`` and ``<out>/results.md``."""
    out = Path(out)
    paths = [p for p in sorted((out / "runs").glob("*.json"))
             if not p.name.endswith(".curve.json")]
    if not paths and not list((out / "runs").glob("*.curve.json")):
        raise FileNotFoundError(f"no results in {out / 'runs'}; run the grid first")
    rows = sorted((json.loads(p.read_text()) for p in paths), key=_order)
    for row in rows:
        ref = published(row["data"], row["name"])
        row["published_nll"], row["published_source"] = ref if ref else (None, None)
    summary = dict(rows=rows, n=len(rows), shortened=any(r["shortened"] for r in rows),
                   data=sorted({r["data"] for r in rows}))
    summary.update(_comparisons(out, rows))
    if not rows:
        summary["data"] = sorted({c["data"] for c in summary["curves"].values()})
    write_json(summary, out / "results.json")
    atomic_write(out / "results.md", lambda tmp: tmp.write_text(markdown(summary, out)))
    return summary


def _comparisons(out: Path, rows: list) -> dict:
    """Paired differences of the final evaluations and of every learning-curve epoch, and the
    learning curves themselves, for ``merge``."""
    from .comparison import differences
    per_image = {}
    for r in rows:
        path = out / "runs" / f"{r['name']}.per_image.npz"
        if path.is_file():
            per_image[r["name"]] = load_per_image(out, r["name"])["log_likelihood"]
    curves, by_epoch = {}, {}
    for path in sorted((out / "runs").glob("*.curve.json")):
        curve = json.loads(path.read_text())
        curves[curve["name"]] = curve
        for epoch, ll in load_curve_images(out, curve["name"]).items():
            by_epoch.setdefault(epoch, {})[curve["name"]] = ll
    curve_differences = [dict(epoch=e, **d) for e in sorted(by_epoch)
                         for d in differences(by_epoch[e])]
    return dict(differences=differences(per_image), curves=curves,
                curve_differences=curve_differences)


def _curve_markdown(summary: dict) -> list:
    from .comparison import differences_markdown
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
    made = Path(out) / "commands.txt" if out is not None else None
    if made is not None and made.is_file():
        lines += ["These results were made with:", ""]
        lines += [f"    {line}" for line in made.read_text().splitlines() if line.strip()]
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
    from .comparison import differences_markdown
    if summary.get("differences"):
        lines += ["", "## Paired differences on the same test images", ""]
        lines += differences_markdown(summary["differences"])
        lines += ["", "Negative ΔNLL: model a is better. The paired SE is the standard error of "
                  "the mean per-image difference, the precision of the comparison; it is much "
                  "smaller than either model's ± over test images.", ""]
    lines += _curve_markdown(summary)
    return "\n".join(lines)


# -- command line ---------------------------------------------------------------------------

def add_arguments(parser) -> None:
    """The ``reproduce`` sub-command's options (called from ``cli.build_parser``)."""
    from .data import DATASETS
    parser.add_argument("--data", choices=DATASETS, default="mnist")
    parser.add_argument("--grid", choices=GRIDS, default="all")
    parser.add_argument("--only", default=None,
                        help="comma-separated names or glob patterns, e.g. 'lvae-L5-*,iwae-L1-k50'")
    parser.add_argument("--epochs", type=int, default=None, help="train every configuration "
                                                                 "this many epochs")
    parser.add_argument("--until", type=int, default=None, metavar="EPOCH",
                        help="train the published protocol only up to this epoch (resumable; "
                             "the same command without --until continues it) and score it on "
                             "the learning curve's test images and a fixed training subset")
    parser.add_argument("--epochs-scale", type=float, default=1.0,
                        help="train this share of the published epochs (e.g. 0.01)")
    parser.add_argument("--eval-k", type=int, default=5000)
    parser.add_argument("--n-train", type=int, default=None)
    parser.add_argument("--n-test", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--checkpoint-every", type=int, default=50)
    parser.add_argument("--shard", default=None, help="i/n: run the configurations with "
                                                      "index %% n == i")
    parser.add_argument("--out", default="results/reproduce")
    parser.add_argument("--force", action="store_true", help="run again even when "
                                                             "runs/<name>.json exists")
    parser.add_argument("--list", action="store_true", help="print the selected "
                                                            "configurations and stop")
    parser.add_argument("--merge", metavar="OUT", default=None,
                        help="only gather OUT/runs/*.json into OUT/results.json and results.md")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                        help="bf16: the training step's matrix products in bfloat16 (log "
                             "densities, optimizer and evaluation stay float32)")
    parser.add_argument("--ship-models", action="store_true",
                        help="also save each trained model in float16 to "
                             "OUT/models/<name>.pt; with --curves, the newest snapshot of "
                             "each LVAE-grid run still training")
    parser.add_argument("--no-curves", action="store_true",
                        help="do not evaluate the learning-curve snapshots after training")
    parser.add_argument("--curves", action="store_true",
                        help="only evaluate the learning-curve snapshots saved so far (runs "
                             "may still be training), then merge")
    parser.add_argument("--stash", action="store_true",
                        help="only copy the checkpoint cache's partial checkpoints and OUT's "
                             "unscored snapshots into OUT/resume/ (lvae_core.resume)")
    parser.add_argument("--unstash", action="store_true",
                        help="only copy OUT/resume/ back into the checkpoint cache, where the "
                             "cache has nothing newer, so the runs resume from there")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the training step (CUDA graphs on a GPU) and the "
                             "log-likelihood: faster, the same mathematics, other random draws")
    parser.set_defaults(func=main)


def _record_command(out: Path) -> None:
    """Append this command line to ``<out>/commands.txt`` (once), for ``results.md``."""
    import shlex
    import sys
    from .runtime import record_command
    record_command(out, "python -m lvae_core " + " ".join(shlex.quote(a) for a in sys.argv[1:]))


def main(args) -> int:
    if args.stash or args.unstash:
        from . import resume
        done = (resume.stash if args.stash else resume.unstash)(args.out)
        for what, names in done.items():
            for name in names:
                print(f"{what:9s} {name}")
        return 0
    if args.merge:
        summary = merge(args.merge)
        print(markdown(summary))
        return 0
    configs = list_configs(args.grid, args.only)
    if args.shard:
        configs = shard(configs, *parse_shard(args.shard))
    if args.list:
        for c in configs:
            s = schedule(c, args.epochs, args.epochs_scale)
            print(f"{c.name:16s} {c.kind} hidden={list(c.hidden)} latent={list(c.latent)} "
                  f"k={c.k} epochs={s.epochs} warm-up={s.warmup_epochs:g}")
        return 0
    if not configs:
        raise ValueError(f"no configuration of grid {args.grid!r} matches {args.only!r}")
    from .data import load_dataset
    data = load_dataset(args.data, n_train=args.n_train, n_test=args.n_test)
    print(f"{len(configs)} configurations on {data}")
    if args.curves:
        for c in configs:
            evaluate_curve(c, data, args.out, seed=args.seed, device=args.device,
                           progress=not args.no_progress, compiled=args.compile)
            if args.ship_models and c.grid == "lvae" and ship_latest_snapshot(c, data,
                                                                              args.out):
                print(f"{c.name}: shipped its newest snapshot to {args.out}/models/")
        print(markdown(merge(args.out), args.out))
        return 0
    if args.until and (args.epochs or args.epochs_scale != 1.0):
        raise ValueError("--until trains the published protocol up to an epoch; it does not "
                         "combine with --epochs or --epochs-scale")
    _record_command(Path(args.out))
    run(configs, data, args.out, force=args.force, progress=not args.no_progress,
        epochs=args.epochs, epochs_scale=args.epochs_scale, eval_k=args.eval_k, seed=args.seed,
        device=args.device, checkpoint_every=args.checkpoint_every, compiled=args.compile,
        ship_model=args.ship_models, precision=args.precision, curves=not args.no_curves,
        until=args.until)
    summary = merge(args.out)
    print(markdown(summary))
    return 0

