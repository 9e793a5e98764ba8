"""Training: ``fit(model, data, TrainConfig(...))``. Adam on the ELBO (k = 1) or on the IWAE
bound (k > 1), with linear KL warm-up, gradient clipping, dynamic binarization, seeds, a
progress bar, and a checkpoint cache keyed by the full configuration.

Warm-up follows the Ladder VAE paper (Sønderby et al., 2016): the training objective is the
bound (ELBO or L_k) of the warmed-up log weights ``Trace.log_w_beta(beta)``,

    log p(x | z) - beta * sum_i [log q(z_i | .) - log p(z_i | z_{i+1})],

with beta rising linearly from 0 to 1 over ``warmup_epochs`` (per step), then 1. The step
takes its log weights and bounds from the same functions as evaluation (``models.Trace``,
``bounds.elbo``, ``bounds.iwae_bound``).

The code follows the algorithm, from the inside out:

* ``TrainingStep``: one batch: the loss -bound(log w_beta), its gradient, clipping, Adam;
* ``train_epoch``: one pass over the data: a fresh order (and binarization), the batches,
  beta for each step;
* ``_train_loop``: resume; for each epoch: the learning rate, ``train_epoch``, the
  divergence guard, the record, snapshots and partial checkpoints; then the final checkpoint;
* ``fit``: checks its arguments, and loads a cached result of the same run or runs the loop.

Every file goes through ``lvae_core.checkpoints``.
"""
from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import checkpoints as ckpt
from .bounds import elbo, iwae_bound
from .likelihood import log_likelihood
from .checks import check_data
from .compiling import compile_function, resolve_mode
from .configs import TrainConfig
from .data import Dataset, binarize, cache_dir
from .models import LatentVariableModel
from .runtime import choose_device, cpu_share, seeded

# re-exported: the public names of checkpoint files
load_checkpoint, save_checkpoint = ckpt.load_checkpoint, ckpt.save_checkpoint
#: Devices where Adam runs fused: on CUDA one launch per step instead of several per tensor;
#: on a CPU one pass over each parameter (5x faster than the default for the 5-layer LVAE,
#: whose optimizer step otherwise costs about a seventh of a training step).
FUSED_ADAM_DEVICES = ("cuda", "cpu")


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite."""


def warmup_beta(epoch_progress: float, warmup_epochs: float) -> float:
    """Linear warm-up: ``min(1, epoch_progress / warmup_epochs)`` (1 when there is no warm-up)."""
    return 1.0 if warmup_epochs <= 0 else min(1.0, epoch_progress / warmup_epochs)


def iwae_lr_factor(epoch: int, epochs: int) -> float:
    """Burda et al.'s schedule: stages i = 0..7 of 3^i epochs (3280 in all) with the learning
    rate 10^(-i/7) times the initial one; for other lengths the stages are scaled to fit."""
    boundaries = np.cumsum([3**i for i in range(8)]) * epochs / 3280.0
    stage = int(np.searchsorted(boundaries, epoch, side="right"))
    return 10.0 ** (-min(stage, 7) / 7.0)


LR_SCHEDULES = {None: lambda epoch, epochs: 1.0, "iwae": iwae_lr_factor}


def snapshot_path(folder, epoch: int) -> Path:
    """Where ``fit(..., snapshot_epochs=..., snapshot_dir=folder)`` saves the model after
    ``epoch``."""
    return Path(folder) / f"epoch{epoch:05d}.pt"


# ---------------------------------------------------------------------------------------
# One step, one epoch


class TrainingStep:
    """One optimisation step on a batch ``xb`` at warm-up weight ``beta``: the loss
    -bound(log w_beta) of ``_terms`` (compiled when the configuration asks), its gradient,
    clipping and Adam; the same code for every beta (at beta = 1, log w_beta is log w bit for
    bit). Returns, for the history, the batch's bound at beta = 1 and its KL per unit, both
    summed over the examples and left on the device until the epoch ends."""

    def __init__(self, model: LatentVariableModel, config: TrainConfig, device):
        self.model, self.config = model, config
        bound = iwae_bound if config.objective == "iwae" and config.k > 1 else elbo
        mode = resolve_mode(config.compiled, device)
        terms = _terms(model, config.k, bound, bf16=config.precision == "bf16")
        self.terms = compile_function(terms, mode, device)
        # CUDA graphs (compile "reduce-overhead" on a GPU) reuse their output memory; marking
        # each step's start tells PyTorch that the previous step's outputs are not needed.
        self.graphs = torch.device(device).type == "cuda" and mode == "reduce-overhead"
        self.beta = torch.zeros((), device=device)   # a tensor: a compiled step never recompiles
        self.params = list(model.parameters())

    def __call__(self, xb: torch.Tensor, beta: float, optimizer):
        if self.graphs:
            torch.compiler.cudagraph_mark_step_begin()
        self.beta.fill_(beta)
        loss, report, kl_part = self.terms(xb, self.beta)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.clip_grad:
            clip_grad_norm(self.params, self.config.clip_grad)
        optimizer.step()
        return report, kl_part


def _terms(model, k, bound, bf16=False):
    """The differentiable part of a step: the loss -bound(log w_beta), and for the history
    the bound at beta = 1 (summed over the batch) and the KL per unit (mean over the k
    samples, summed over the batch), all from the same k samples. ``bf16``: the model's
    matrix products under bfloat16 autocast (``_float32_outputs`` casts them back)."""
    def terms(xb, beta):
        with torch.autocast(xb.device.type, dtype=torch.bfloat16, enabled=bf16):
            trace = model.trace(xb, k, check=False)
        report = bound(trace.log_w).detach().sum()
        loss = -bound(trace.log_w_beta(beta)).mean()
        return loss, report, _kl_part(trace)
    return terms


def _kl_part(trace) -> torch.Tensor:
    return torch.cat([u.detach().mean(0).sum(0) for u in trace.kl_units])


def clip_grad_norm(params, max_norm: float) -> None:
    """``torch.nn.utils.clip_grad_norm_(params, max_norm)``, the same numbers, in fewer calls:
    one fused norm, and on a CPU the gradients are rescaled only when the norm exceeds
    ``max_norm`` (multiplying by 1 changes nothing; on a GPU the check would wait for the
    device, so there they are always multiplied by min(1, coefficient), as PyTorch does)."""
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    total = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2.0)), 2.0)
    coef = float(max_norm) / (total + 1e-6)
    if grads[0].device.type == "cpu":
        if coef.item() < 1.0:
            torch._foreach_mul_(grads, coef)
    else:
        torch._foreach_mul_(grads, torch.clamp(coef, max=1.0))


def train_epoch(step: TrainingStep, optimizer, x_all: torch.Tensor, generator,
                epoch: int) -> tuple[float, tuple]:
    """Epoch ``epoch`` (counted from 0): the training images ``x_all`` in a fresh order (and a
    fresh binarization) drawn from ``generator``, batch by batch, each step at its warm-up
    weight ``warmup_beta(epoch + i / steps, ...)``. Returns the mean bound at beta = 1 over the
    images, and the KL per unit summed over them, one tensor per layer."""
    model, config = step.model, step.config
    n, b = x_all.shape[0], config.batch_size
    steps = math.ceil(n / b)
    x_epoch = x_all[torch.randperm(n, device=x_all.device, generator=generator)]
    if config.binarizes(model.config.likelihood):
        x_epoch = binarize(x_epoch, generator=generator)
    bound_sum = torch.zeros((), device=x_all.device)
    kl_sum = torch.zeros(sum(model.latent), device=x_all.device)
    for i in range(steps):
        xb = x_epoch[i * b:(i + 1) * b]
        if xb.shape[0] < 2 and model.config.batch_norm:
            continue  # batch norm needs two examples
        beta = warmup_beta(epoch + i / steps, config.warmup_epochs)
        report, kl_part = step(xb, beta, optimizer)
        bound_sum += report
        kl_sum += kl_part
    return bound_sum.item() / n, kl_sum.split(list(model.latent))


# ---------------------------------------------------------------------------------------
# The run: fit and its loop


def fit(model: LatentVariableModel, data, config: TrainConfig, *, device=None, cache=True,
        progress: bool = True, checkpoint_every: int = 0, snapshot_epochs=(),
        snapshot_dir=None, stop_after: int | None = None) -> dict:
    """Train ``model`` in place as ``config`` (a ``TrainConfig``) says; return its history.

    ``data``: a ``Dataset`` (its ``train_x``; ``test_binary`` for ``test_every``) or a tensor
    of training images (in [0, 1] for a Bernoulli likelihood). ``device``: where to train
    (default: ``choose_device()``). ``cache``: True (``~/.cache/lvae_core/checkpoints`` or
    ``$LVAE_CACHE_DIR``), a folder, or False; a cached result of the same model, data and
    configuration is loaded instead of training (``checkpoints.cache_key``).
    ``checkpoint_every``: also save a resumable checkpoint every so many epochs; a run
    started again with the same settings continues from it with the same random numbers.
    ``snapshot_epochs``: after each of these epochs, save the model (loadable with
    ``load_checkpoint``) to ``snapshot_path(snapshot_dir, epoch)``, for learning curves.
    ``stop_after``: train only up to this epoch of ``config.epochs`` and keep a resumable
    checkpoint there (needs ``cache`` and ``checkpoint_every``): the model is then the one
    the full run has after ``stop_after`` epochs, and the same call without ``stop_after``
    continues it to the end. None of these changes the training, so none is in the cache key.

    The history holds per epoch: ``bound`` (the training objective at beta = 1: the ELBO or
    L_k, nats per example), ``kl`` (per layer), ``kl_units`` (per layer and unit), ``beta``,
    ``lr``, ``seconds``, and ``test_bound`` every ``test_every`` epochs.
    """
    _check_arguments(data, config, cache, checkpoint_every, snapshot_epochs, snapshot_dir,
                     stop_after)
    dataset = data if isinstance(data, Dataset) else None
    train_x = _check_training_data(model, data.train_x if dataset is not None else data, config)
    device = choose_device(device)
    model.to(device)
    key, source = ckpt.cache_key(model, train_x, config, device)
    folder = _cache_folder(cache)
    if (history := _cached_history(model, folder, key)) is not None:
        return history
    end_epoch = min(int(stop_after or config.epochs), config.epochs)
    run = _Run(model, config, source["fit"], device, dataset, folder, key,
               int(checkpoint_every or 0), snapshot_dir, tuple(int(e) for e in snapshot_epochs),
               progress, int(train_x.shape[0]), end_epoch)
    with seeded(config.seed, device), cpu_share(device) as run.share:
        if config.reset:
            _reset_parameters(model)
        return _train_loop(run, train_x)


def _check_arguments(data, config, cache, checkpoint_every, snapshot_epochs, snapshot_dir,
                     stop_after) -> None:
    if not isinstance(config, TrainConfig):
        raise TypeError("fit(model, data, config) needs a TrainConfig, e.g. "
                        f"lv.TrainConfig(epochs=10); got {type(config).__name__}")
    if snapshot_epochs and snapshot_dir is None:
        raise ValueError("snapshot_epochs needs a snapshot_dir to save the models in")
    if stop_after is not None and (int(stop_after) < 1 or not cache or not checkpoint_every):
        raise ValueError(f"stop_after={stop_after!r} needs a positive epoch, cache=True and "
                         "checkpoint_every > 0 (the run stops at a resumable checkpoint)")
    if config.test_every and not isinstance(data, Dataset):
        raise ValueError("test_every needs a Dataset (with a test set) as data")


def _cache_folder(cache) -> Path | None:
    if not cache:
        return None
    return cache_dir() / "checkpoints" if isinstance(cache, bool) else Path(cache)


def _cached_history(model, folder: Path | None, key: str) -> dict | None:
    """The history of the cached run ``key`` in ``folder``, its parameters loaded into
    ``model`` (in eval mode); None when there is none (or it is damaged)."""
    done = ckpt.try_read(folder / f"{key}.pt") if folder is not None else None
    if done is None:
        return None
    model.load_state_dict(done["state_dict"])
    model.eval()
    return done["history"]


def _check_training_data(model, train_x, config: TrainConfig) -> torch.Tensor:
    likelihood = model.config.likelihood
    train_x = check_data(train_x, model.x_dim, binary=False, name="the training data")
    if likelihood == "bernoulli":
        lo, hi = train_x.min().item(), train_x.max().item()
        if lo < 0 or hi > 1:
            raise ValueError(f"a Bernoulli likelihood needs training images in [0, 1] (they are "
                             f"binarized each epoch); got values in [{lo:.3g}, {hi:.3g}]")
        if not config.binarizes(likelihood):
            check_data(train_x, model.x_dim, binary=True, name="the training data")
    return train_x


def _reset_parameters(model: torch.nn.Module) -> None:
    for module in model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        if hasattr(module, "reset_running_stats"):
            module.reset_running_stats()


@dataclass
class _Run:
    """One training run: what it was asked for, and its state as it goes."""
    model: LatentVariableModel
    config: TrainConfig
    settings: dict                  # config.key_fields(...), stored in its checkpoints
    device: torch.device
    dataset: Dataset | None
    folder: Path | None
    key: str
    checkpoint_every: int
    snapshot_dir: object
    snapshot_epochs: tuple
    progress: bool
    n_train: int = 0
    end_epoch: int = 0              # the last epoch this call trains (stop_after)
    share: object = None            # runtime.CpuShare with LVAE_THREADS=auto
    history: dict = field(default_factory=lambda: dict(
        epoch=[], bound=[], kl=[], kl_units=[], beta=[], lr=[], seconds=[], test_epoch=[],
        test_bound=[]))
    start_epoch: int = 0

    def path(self, suffix: str) -> Path | None:
        return None if self.folder is None else self.folder / f"{self.key}{suffix}"

    def state(self, epoch: int) -> dict:
        return ckpt.state_of(self.model, self.history, fit=self.settings, epoch=epoch)


def _train_loop(run: _Run, train_x: torch.Tensor) -> dict:
    """Resume where a partial checkpoint of this run stopped; then for each epoch: the
    learning rate, one epoch, the divergence guard, the record, snapshots and partial
    checkpoints; at the end, the final checkpoint. Returns the history."""
    model, config = run.model, run.config
    x_all, optimizer, generator = _setup(run, train_x)
    _resume(run, optimizer, generator)
    step = TrainingStep(model, config, run.device)
    last_good = copy.deepcopy(model.state_dict())
    model.train()
    with _float32_layers(model, config.precision):
        for epoch in _epochs(run):
            t0 = time.perf_counter()
            lr = _set_learning_rate(optimizer, config, epoch)
            bound, kl_sums = train_epoch(step, optimizer, x_all, generator, epoch)
            if not math.isfinite(bound):
                raise _diverged(run, last_good, bound, epoch, lr)
            last_good = copy.deepcopy(model.state_dict())
            _record(run, epoch, bound, kl_sums, lr, time.perf_counter() - t0)
            _save_progress(run, epoch + 1, optimizer, generator)
    model.eval()
    _save_final(run)
    return run.history


def _setup(run: _Run, train_x: torch.Tensor):
    """The training images on the run's device, the decoder's output bias (if asked), Adam,
    and the random stream of the order and binarization of the images."""
    model, config, device = run.model, run.config, run.device
    generator = torch.Generator(device=device).manual_seed(config.seed)
    x_all = train_x.to(device)
    if config.init_output_bias:
        model.generative.init_output_bias(x_all.mean(0))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, eps=config.adam_eps,
                                 fused=device.type in FUSED_ADAM_DEVICES)
    return x_all, optimizer, generator


def _resume(run: _Run, optimizer, generator) -> None:
    """From this run's partial checkpoint, if there is one: the parameters, the optimizer's
    state, the random streams, the history and the epoch to start from."""
    if not run.checkpoint_every or run.folder is None:
        return
    partial = ckpt.try_read(run.path(".partial.pt"))
    if partial is not None:
        run.history, run.start_epoch = ckpt.restore_partial(partial, run.model, optimizer,
                                                            generator, run.device)


@contextlib.contextmanager
def _float32_layers(model, precision: str):
    """While training in bf16: every dense layer's output cast back to float32."""
    hooks = _float32_outputs(model) if precision != "fp32" else []
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


def _float32_outputs(model):
    """Cast every dense layer's output to float32 (under bf16 autocast only the matrix
    products run in bfloat16); returns the hook handles."""
    return [m.register_forward_hook(lambda module, args, out: out.float())
            for m in model.modules() if isinstance(m, torch.nn.Linear)]


def _epochs(run: _Run):
    """The epochs this call trains, ``run.start_epoch`` to ``run.end_epoch``. Each starts
    with PyTorch's threads fitted to the idle cores (``LVAE_THREADS=auto``) and, once
    recorded, shows on the progress bar."""
    bar = None
    if run.progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=run.end_epoch, initial=run.start_epoch, unit="epoch",
                   desc=f"training {type(run.model).__name__}")
    for epoch in range(run.start_epoch, run.end_epoch):
        if run.share is not None:
            run.share.adjust()
        yield epoch
        if bar is not None:
            bar.update()
            bar.set_postfix(bound=f"{run.history['bound'][-1]:.2f}",
                            beta=f"{run.history['beta'][-1]:.2f}")
    if bar is not None:
        bar.close()


def _set_learning_rate(optimizer, config: TrainConfig, epoch: int) -> float:
    lr = config.lr * LR_SCHEDULES[config.lr_schedule](epoch, config.epochs)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def _record(run: _Run, epoch: int, bound: float, kl_sums, lr: float, seconds: float):
    """Append the epoch to the history (and the test bound, every ``test_every`` epochs)."""
    h, config, n = run.history, run.config, run.n_train
    h["epoch"].append(epoch + 1)
    h["bound"].append(bound)
    h["kl_units"].append([(t / n).tolist() for t in kl_sums])
    h["kl"].append([sum(u) for u in h["kl_units"][-1]])
    h["beta"].append(warmup_beta(epoch + 1, config.warmup_epochs))
    h["lr"].append(lr)
    h["seconds"].append(seconds)
    if config.test_every and ((epoch + 1) % config.test_every == 0
                              or epoch + 1 == config.epochs):
        # its own seeded stream (log_likelihood forks the global one): training draws the same
        test = log_likelihood(run.model, run.dataset.test_binary, k=config.test_k,
                              seed=config.seed)
        h["test_epoch"].append(epoch + 1)
        h["test_bound"].append(test.mean().item())
        run.model.train()


def _diverged(run: _Run, last_good: dict, bound: float, epoch: int, lr: float):
    """Restore the last good parameters (and save them); the error to raise."""
    run.model.load_state_dict(last_good)
    where = "(the initial parameters)" if epoch == run.start_epoch else f"(after epoch {epoch})"
    saved = ""
    if run.folder is not None:
        path = run.path(".last_good.pt")
        ckpt.save(run.state(epoch), path)
        saved = f"; the last good parameters {where} are restored in the model and saved to {path}"
    return TrainingDivergedError(
        f"the training bound became {bound} in epoch {epoch + 1}{saved}. Hint: lower the "
        f"learning rate (now {lr:g}), clip gradients harder "
        f"(clip_grad={run.config.clip_grad}), or lengthen the KL warm-up")


def _save_progress(run: _Run, done: int, optimizer, generator) -> None:
    """After ``done`` epochs: the learning-curve snapshot and the partial checkpoint, if due."""
    if run.snapshot_dir is not None and done in run.snapshot_epochs:
        ckpt.save(run.state(done), snapshot_path(run.snapshot_dir, done))
    due = done % run.checkpoint_every == 0 if run.checkpoint_every else False
    if run.folder is not None and run.checkpoint_every and (due or done == run.end_epoch) \
            and done < run.config.epochs:
        ckpt.save_partial(run.path(".partial.pt"), run.model, run.history, done, run.settings,
                          optimizer, generator, run.device)


def _save_final(run: _Run) -> None:
    """When the whole run is trained (not at a ``stop_after``): its checkpoint in the cache,
    in place of the partial one."""
    if run.folder is None or run.end_epoch != run.config.epochs:
        return
    ckpt.save(run.state(run.config.epochs), run.path(".pt"))
    partial = run.path(".partial.pt")
    if partial.exists():
        partial.unlink()
