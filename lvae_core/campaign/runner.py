"""Run the Ladder VAE and IWAE papers' grids: ``python -m lvae_core reproduce ...``.

Every ``Run`` (``campaign.grids``) is trained with ``lvae_core.fit`` (its checkpoint is cached
on disk by the full configuration, with resumable partial checkpoints every
``--checkpoint-every`` epochs) and evaluated with ``evaluation.evaluate`` on the test set
binarized once, with ``run.eval.k`` samples. Its result goes to ``<out>/runs/<name>.json``
(``lvae_core.results``); a run whose JSON exists is skipped, so an interrupted grid continues
where it stopped. ``--shard i/n`` runs the configurations whose index in the selected list is
i modulo n, so that any scheduler can spread the grid over several GPUs or machines;
``--merge`` gathers ``runs/*.json`` into ``<out>/results.json`` and ``<out>/results.md``
beside the published numbers (``campaign.reports``).

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

import platform
import time
from pathlib import Path

import torch

from ..evaluation import evaluate
from ..models import build_model
from ..results import Results
from ..train import TrainingDivergedError, fit
from .curves import curve_epochs, evaluate_curve, reached, snapshot_dir
from .grids import Run
from .shipping import ship_with_pca


def train_and_score(run: Run, data, out, *, device=None, checkpoint_every=0, progress=True,
                    cache=True, ship_model=False, curves=False) -> dict:
    """Train ``run`` (or load it from ``fit``'s cache) and evaluate it; write and return its
    result, which ``<out>/runs/<name>.json`` holds: ``run.record()`` and the scores. Also
    written: the per-image log-likelihoods and ELBOs, with ``ship_model`` the trained model
    in float16 and its PCA coordinates, and with ``curves`` the learning curve (the model is
    saved after the learning-curve epochs and each is scored: several more evaluations,
    worth it for a long run)."""
    run = run.replace(x_dim=data.x_dim)
    model, tc = build_model(run.model), run.train
    snapshots = cache and curves
    t0 = time.perf_counter()
    history = fit(model, data, tc, device=device, cache=cache, progress=progress,
                  checkpoint_every=checkpoint_every if tc.epochs > checkpoint_every else 0,
                  snapshot_epochs=curve_epochs(tc.epochs) if snapshots else (),
                  snapshot_dir=snapshot_dir(run, out) if snapshots else None)
    train_seconds = time.perf_counter() - t0
    x = data.test_binary
    # the final estimate takes long (k = 5000 on 10,000 images: about 40 minutes for a
    # five-layer model on one CPU thread), so its progress is kept beside the snapshots
    resume = snapshot_dir(run, out) / f"final-eval-k{run.eval.k}.progress.pt" if cache else None
    ev, ll, elbo = evaluate(model, x, run.eval.k, seed=tc.seed, compiled=tc.compiled,
                            progress=progress, resume=resume)
    folder = Results(out)
    folder.write_per_image(run.name, ll.double().numpy(), elbo.double().numpy())
    if ship_model:
        ship_with_pca(model, history, data, out, run.name, seed=tc.seed)
    result = dict(
        run.record(), data=data.name, n_train=int(data.train_x.shape[0]),
        n_test=int(x.shape[0]),
        **{f: ev[f] for f in ("test_nll", "test_nll_sem", "test_elbo", "active_units",
                              "kl_per_layer")},
        final_train_bound=history["bound"][-1],
        train_seconds_this_run=train_seconds, train_seconds=sum(history["seconds"]),
        eval_seconds=ev["eval_seconds"], device=str(model.device),
        torch=torch.__version__, machine=platform.machine())
    folder.write_run(result)
    if snapshots:
        evaluate_curve(run, data, out, device=device, progress=progress)
    return result


def train_until(run: Run, data, out, until: int, *, device=None, checkpoint_every=5,
                progress=True) -> dict:
    """Train ``run``'s published protocol only up to epoch ``until`` (a resumable stop:
    ``fit(..., stop_after=until)``), then score its learning-curve snapshots, with the
    train log-likelihood at ``until``. The model after ``until`` epochs of the full protocol
    is the same as that of an uninterrupted run, so the same command without ``--until``
    later continues it to the published length. Returns the curve point at ``until``; a run
    that diverges is recorded in ``<out>/runs/<name>.events.json`` (the divergence guard
    restores the last good parameters) and its snapshots so far are still scored."""
    run = run.replace(x_dim=data.x_dim)
    tc = run.train
    if not 0 < until <= tc.epochs:
        raise ValueError(f"--until must be between 1 and the protocol's {tc.epochs} epochs, "
                         f"got {until}")
    epochs = tuple(sorted(set(curve_epochs(tc.epochs)) | {until}))
    try:
        fit(build_model(run.model), data, tc, device=device, progress=progress,
            stop_after=until, checkpoint_every=checkpoint_every or 5, snapshot_epochs=epochs,
            snapshot_dir=snapshot_dir(run, out))
    except TrainingDivergedError as error:
        Results(out).record_event(run.name, dict(event="diverged", message=str(error),
                                                 until=until, precision=tc.precision))
    points = evaluate_curve(run, data, out, device=device, progress=progress,
                            train_epochs=(until,))
    return next((p for p in points if p["epoch"] == until), {})


def run_all(runs: list[Run], data, out, *, force=False, progress=True, until=None,
            **options) -> list[dict]:
    """Run every one of ``runs`` whose ``runs/<name>.json`` is missing (all with ``force``);
    return the results of all of them (loaded or new). ``options``: of ``train_and_score``.
    With ``until``: train each only up to that epoch of its protocol (``train_until``), and
    skip those already scored there."""
    out = Path(out)
    if until:
        keep = ("device", "checkpoint_every")
        return [train_until(r, data, out, until, progress=progress,
                            **{k: v for k, v in options.items() if k in keep})
                for r in runs if force or not reached(out, r.name, until)]
    folder, results = Results(out), []
    bar = runs
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(runs, desc="configurations", unit="config")
    for run in bar:
        if progress:
            bar.set_postfix_str(run.name)
        done = folder.run(run.name)
        results.append(done if done is not None and not force else
                       train_and_score(run, data, out, progress=progress, **options))
    return results
