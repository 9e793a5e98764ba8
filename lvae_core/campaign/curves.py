"""Learning curves: a run's model saved after some epochs (snapshots, in the checkpoint
cache) and scored on the same test images (k = ``CURVE_K`` on the first ``CURVE_IMAGES``),
so that runs can be compared, paired, at every epoch; and, at the epoch a run was stopped
at, on a fixed training subset."""
from __future__ import annotations

from pathlib import Path

import torch

from .. import checkpoints as ckpt
from ..analysis import active_units
from ..data import binarize, cache_dir
from ..evaluation import ACTIVE_UNITS_ESTIMATOR, evaluate
from ..results import Results
from .grids import CURVE_EPOCHS, CURVE_IMAGES, CURVE_K, Run

#: The training images on which a stopped run's train log-likelihood is estimated: the first
#: ``CURVE_IMAGES`` training images, binarized once with this seed.
TRAIN_IMAGES_SEED = 1
_SCORES = ("test_nll", "test_nll_sem", "test_elbo", "active_units", "active_units_estimator",
           "kl_per_layer")


def train_images(data) -> torch.Tensor:
    """The fixed training subset of ``train_nll``: the first ``CURVE_IMAGES`` training images
    binarized once with ``TRAIN_IMAGES_SEED`` (the same on every call and machine)."""
    return binarize(data.train_x[:CURVE_IMAGES], seed=TRAIN_IMAGES_SEED)


def snapshot_dir(run: Run, out) -> Path:
    """Where a run's learning-curve snapshots are kept: in the checkpoint cache, not in
    ``out`` (they are several MB each)."""
    return cache_dir() / "snapshots" / Path(out).resolve().name / run.name


def curve_epochs(epochs: int) -> tuple:
    """The learning-curve epochs reached by a run of ``epochs`` epochs, and its last."""
    return tuple(sorted({e for e in CURVE_EPOCHS if e <= epochs} | {epochs}))


def evaluate_curve(run: Run, data, out, *, device=None, progress=True,
                   train_epochs=()) -> list:
    """Score every saved snapshot of ``run`` not yet on its learning curve: per epoch, L_k
    with k = ``CURVE_K`` and the ELBO on the first ``CURVE_IMAGES`` test images (the same
    images for every run and epoch), active units and KL per layer; at the ``train_epochs``
    also ``train_nll`` on ``train_images(data)``. Works while the run is still training;
    returns the points, sorted by epoch."""
    folder = Results(out)
    x = data.test_binary[:CURVE_IMAGES]
    curve = folder.curve(run.name) or dict(name=run.name, data=data.name,
                                           n_images=int(x.shape[0]), k=CURVE_K, points=[])
    points = {p["epoch"]: p for p in curve["points"]}
    for snap in sorted(snapshot_dir(run, out).glob("epoch*.pt")):
        epoch = int(snap.stem[len("epoch"):])
        point, changed = points.get(epoch), False
        if point is None:
            model, history = ckpt.load_checkpoint(snap, device)
            ev, ll, _ = evaluate(model, x, CURVE_K, seed=run.train.seed,
                                 compiled=run.train.compiled, progress=progress)
            point = points[epoch] = dict(epoch=epoch, **{f: ev[f] for f in _SCORES},
                                         train_bound=history["bound"][-1],
                                         train_seconds=sum(history["seconds"]))
            folder.add_curve_images(run.name, epoch, ll.double().numpy())
            changed = True
        changed |= _recount_units(point, snap, x, run.train.seed, device)
        if epoch in train_epochs and "train_nll" not in point:
            _add_train_nll(folder, run, point, snap, data, device, progress)
            changed = True
        if changed:
            curve["points"] = list(points.values())
            folder.write_curve(curve)
    return sorted(points.values(), key=lambda p: p["epoch"])


def _add_train_nll(folder: Results, run: Run, point: dict, snap: Path, data, device,
                   progress) -> None:
    """Score a snapshot on the fixed training subset: ``train_nll`` (k = ``CURVE_K``) and its
    standard error in ``point``, per image in ``<name>.curve_train.npz``."""
    model, _ = ckpt.load_checkpoint(snap, device)
    ev, ll, _ = evaluate(model, train_images(data), CURVE_K, seed=run.train.seed,
                         compiled=run.train.compiled, progress=progress)
    point.update(train_nll=ev["test_nll"], train_nll_sem=ev["test_nll_sem"],
                 train_elbo=ev["test_elbo"])
    folder.add_curve_images(run.name, point["epoch"], ll.double().numpy(), which="train")


def _recount_units(point: dict, snap: Path, x, seed: int, device) -> bool:
    """Count a learning-curve point's active units again if an earlier estimator counted them
    (``evaluation.ACTIVE_UNITS_ESTIMATOR``); the likelihoods stay. True if it changed."""
    if point.get("active_units_estimator") == ACTIVE_UNITS_ESTIMATOR:
        return False
    model, _ = ckpt.load_checkpoint(snap, device)
    point["active_units_plain_10"] = point["active_units"]
    point["active_units"] = active_units(model, x, seed=seed)
    point["active_units_estimator"] = ACTIVE_UNITS_ESTIMATOR
    return True


def reached(out, name: str, until: int) -> bool:
    """Whether a run stopped at ``until`` has been scored there (train NLL included), or has
    diverged before it."""
    folder = Results(out)
    if folder.events(name):
        return True
    point = folder.point(name, until)
    return point is not None and "train_nll" in point
