"""Training: Adam on the ELBO (k = 1) or the IWAE bound (k > 1), with linear KL
warm-up, gradient clipping, dynamic binarization, seeds, a progress bar, and a
checkpoint cache keyed by the full configuration.

Warm-up follows the Ladder VAE paper (Sønderby et al., 2016): the training objective is

    log p(x | z) - beta * sum_i [log q(z_i | .) - log p(z_i | z_{i+1})],

with beta rising linearly from 0 to 1 over ``warmup_epochs`` (per step), then 1.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from .bounds import iwae_bound
from .compiling import compile_function, compile_mode
from .checks import check_data, check_k
from .data import Dataset, binarize, cache_dir
from .models import LatentVariableModel, build_model, model_kind

# 2: the fused Adam on CPUs too (it rounds differently from the default implementation, so
# version-1 checkpoints are not reused for the same settings)
CACHE_VERSION = 2
FUSED_ADAM_DEVICES = ("cuda", "cpu")
PRECISIONS = ("fp32", "bf16")


class TrainingDivergedError(FloatingPointError):
    """The training loss became NaN or infinite."""


def choose_device(device=None) -> torch.device:
    """``device`` if given, else CUDA, then Apple MPS, then the CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


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


def _reset_parameters(model: torch.nn.Module) -> None:
    for module in model.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
        if hasattr(module, "reset_running_stats"):
            module.reset_running_stats()


def _fingerprint(x: torch.Tensor) -> str:
    digest = hashlib.sha256(str(tuple(x.shape)).encode())
    digest.update(np.ascontiguousarray(x.detach().cpu().numpy()).tobytes())
    return digest.hexdigest()[:16]


def _atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _try_load(path: Path):
    """The checkpoint at ``path``, or None when it is missing or damaged (with a warning)."""
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # a truncated or corrupted file: train again
        warnings.warn(f"ignoring the damaged checkpoint {path} ({type(err).__name__}: {err}); "
                      "training again", RuntimeWarning, stacklevel=3)
        return None


def save_checkpoint(model: LatentVariableModel, history: dict, path) -> Path:
    """Write ``model`` (kind, configuration, parameters) and its history to ``path``, atomically."""
    path = Path(path)
    _atomic_save(dict(kind=model_kind(model), config=model.config, history=history,
                      state_dict={n: t.detach().cpu() for n, t in model.state_dict().items()}), path)
    return path


def load_checkpoint(path, device=None) -> tuple[LatentVariableModel, dict]:
    """Rebuild a trained model from a checkpoint written by ``fit``: ``(model, history)``."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    model = build_model(ckpt["kind"], **ckpt["config"])
    model.load_state_dict(ckpt["state_dict"])
    return model.to(choose_device(device)).eval(), ckpt["history"]


def fit(model: LatentVariableModel, data, *, epochs: int, batch_size: int = 256, lr: float = 1e-3,
        warmup_epochs: float = 0, k: int = 1, objective: str = "iwae", adam_eps: float = 1e-8,
        clip_grad: float | None = 100.0, seed: int = 0, device=None, lr_schedule: str | None = None, init_output_bias: bool = False,
        binarize_data: bool | None = None, reset: bool = True, cache=True,
        checkpoint_every: int = 0, progress: bool = True, test_every: int = 0,
        test_k: int = 1, compile=False, snapshot_epochs=(), snapshot_dir=None,
        precision: str = "fp32") -> dict:
    """Train ``model`` in place and return its history.

    ``data``: a ``Dataset`` (its ``train_x`` is used; ``test_binary`` for ``test_every``) or a
    tensor of training images in [0, 1]. With a Bernoulli likelihood the training images are
    binarized anew every epoch (``binarize_data``, default on for Bernoulli).
    ``k > 1`` trains on the IWAE bound L_k (``objective="iwae"``) or on the k-sample
    ELBO, the mean of the k log weights (``objective="elbo"``: Burda et al.'s VAE with k
    samples). ``reset`` re-initialises the parameters from
    ``seed`` first, so that the result depends only on the configuration.
    ``cache``: True (``~/.cache/lvae_core/checkpoints`` or ``$LVAE_CACHE_DIR``), a folder, or
    False. A cached result of the same configuration is loaded instead of training.
    ``checkpoint_every``: also save a resumable checkpoint every so many epochs.
    ``precision``: ``"fp32"``, or ``"bf16"`` to run the training step's matrix products in
    bfloat16 (autocast) while every other operation, the log densities, the optimizer and every
    evaluation stay in float32 (each dense layer's output is cast back to float32). About 1.3
    times as fast on CPUs with bfloat16 units; cached apart from float32 training.
    ``snapshot_epochs``: after each of these epochs, save the model (as ``save_checkpoint``
    does, loadable with ``load_checkpoint``) to ``snapshot_path(snapshot_dir, epoch)``, for
    learning curves. Snapshots do not change the training, so they are not in the cache key.
    ``adam_eps``: Adam's epsilon (the IWAE paper used 1e-4).
    ``compile``: run the training step through ``torch.compile`` (True: CUDA graphs on a GPU;
    see ``lvae_core.compiling``). Faster, the same mathematics, not bit-identical to eager
    training, so cached separately.

    The history holds per epoch: ``bound`` (the training objective at beta = 1: the ELBO or
    L_k, nats per example), ``kl`` (per layer), ``kl_units`` (per layer and unit), ``beta``, ``lr``,
    ``seconds``, and ``test_bound`` every ``test_every`` epochs.
    """
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"unknown lr_schedule {lr_schedule!r}; expected one of {list(LR_SCHEDULES)}")
    k = check_k(k)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if objective not in ("iwae", "elbo"):
        raise ValueError(f"objective must be 'iwae' or 'elbo', got {objective!r}")
    dataset = data if isinstance(data, Dataset) else None
    train_x = data.train_x if dataset is not None else data
    likelihood = model.config["likelihood"]
    train_x = check_data(train_x, model.x_dim, "gaussian", name="the training data")
    if binarize_data is None:
        binarize_data = likelihood == "bernoulli"
    if likelihood == "bernoulli":
        lo, hi = train_x.min().item(), train_x.max().item()
        if lo < 0 or hi > 1:
            raise ValueError(f"a Bernoulli likelihood needs training images in [0, 1] (they are "
                             f"binarized each epoch); got values in [{lo:.3g}, {hi:.3g}]")
        if not binarize_data:
            check_data(train_x, model.x_dim, likelihood, name="the training data")
    if snapshot_epochs and snapshot_dir is None:
        raise ValueError("snapshot_epochs needs a snapshot_dir to save the models in")
    if test_every and dataset is None:
        raise ValueError("test_every needs a Dataset (with a test set) as data")

    settings = dict(epochs=epochs, batch_size=batch_size, lr=lr, warmup_epochs=warmup_epochs, k=k,
                    clip_grad=clip_grad, seed=seed, lr_schedule=lr_schedule,
                    init_output_bias=init_output_bias, binarize_data=binarize_data,
                    test_every=test_every, test_k=test_k)
    # (recorded only when not the default, so that earlier cache keys stay valid)
    if k > 1 and objective == "elbo":
        settings["objective"] = "elbo"
    if adam_eps != 1e-8:
        settings["adam_eps"] = adam_eps
    if precision != "fp32":
        settings["precision"] = precision
    device = choose_device(device)
    mode = compile_mode(compile, device)
    if mode is not None:
        settings["compile"] = mode
    model.to(device)

    key_source = dict(version=CACHE_VERSION, kind=model_kind(model), config=model.config,
                      data=_fingerprint(train_x), fit=settings,
                      init=None if reset else _fingerprint(torch.cat(
                          [p.detach().flatten().cpu() for p in model.state_dict().values()
                           if p.is_floating_point()])))
    key = hashlib.sha256(json.dumps(key_source, sort_keys=True).encode()).hexdigest()[:20]
    folder = None
    if cache:
        folder = Path(cache) if not isinstance(cache, bool) else cache_dir() / "checkpoints"
        done = _try_load(folder / f"{key}.pt")
        if done is not None:
            model.load_state_dict(done["state_dict"])
            model.eval()
            return done["history"]

    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        if reset:
            _reset_parameters(model)
        return _train(model, train_x, dataset, settings, device, folder, key, key_source,
                      checkpoint_every, progress,
                      (snapshot_dir, tuple(int(e) for e in snapshot_epochs)))


def _step_terms(model, k, objective, precision="fp32"):
    """The per-step computation that autograd differentiates (compiled by ``compile=...``):
    returns the loss, the summed objective at beta = 1 (for the history) and the KL per unit
    summed over the batch, all from the same k samples."""
    def terms(xb, beta):
        with torch.autocast(xb.device.type, dtype=torch.bfloat16,
                            enabled=precision == "bf16"):
            trace = model.trace(xb, k, check=False)
            kl_units = trace.kl_units()
        kl = torch.stack([u.sum(-1) for u in kl_units]).sum(0)           # (k, B)
        log_w = trace.log_px - kl
        log_w_beta = trace.log_px - beta * kl
        if k == 1:
            objective_, report = log_w_beta[0], log_w[0]
        elif objective == "elbo":
            objective_, report = log_w_beta.mean(0), log_w.mean(0)
        else:
            objective_, report = iwae_bound(log_w_beta), iwae_bound(log_w)
        kl_part = torch.cat([u.detach().mean(0).sum(0) for u in kl_units])
        return -objective_.mean(), report.detach().sum(), kl_part
    return terms


def snapshot_path(folder, epoch: int) -> Path:
    """Where ``fit(..., snapshot_epochs=..., snapshot_dir=folder)`` saves the model after
    ``epoch``."""
    return Path(folder) / f"epoch{epoch:05d}.pt"


def _train(model, train_x, dataset, s, device, folder, key, key_source, checkpoint_every,
           progress, snapshots=(None, ())):
    generator = torch.Generator(device=device).manual_seed(s["seed"])
    x_all = train_x.to(device)
    if s["init_output_bias"]:
        model.generative.init_output_bias(x_all.mean(0))
    # The fused Adam: on CUDA one launch per step instead of several per tensor; on a CPU one
    # pass over each parameter (5x faster than the default for the 5-layer LVAE, whose
    # optimizer step otherwise costs about a seventh of a training step).
    optimizer = torch.optim.Adam(model.parameters(), lr=s["lr"], eps=s.get("adam_eps", 1e-8),
                                 fused=device.type in FUSED_ADAM_DEVICES)
    k = s["k"]
    history = dict(epoch=[], bound=[], kl=[], kl_units=[], beta=[], lr=[], seconds=[],
                   test_epoch=[], test_bound=[])
    start_epoch = 0
    partial_path = folder / f"{key}.partial.pt" if folder is not None else None
    if partial_path is not None and checkpoint_every:
        partial = _try_load(partial_path)
        if partial is not None:
            model.load_state_dict(partial["state_dict"])
            optimizer.load_state_dict(partial["optimizer"])
            history, start_epoch = partial["history"], partial["epoch"]
            torch.set_rng_state(partial["rng_cpu"])
            generator.set_state(partial["rng_generator"].to(generator.get_state().device))
            if device.type == "cuda" and partial.get("rng_cuda") is not None:
                torch.cuda.set_rng_state(partial["rng_cuda"], device)

    def checkpoint(epoch):
        return dict(kind=key_source["kind"], config=model.config, fit=s, history=history,
                    state_dict={n_: t.detach().cpu().clone() for n_, t in model.state_dict().items()},
                    epoch=epoch)

    precision = s.get("precision", "fp32")
    hooks = _float32_outputs(model) if precision != "fp32" else []
    step_terms = compile_function(_step_terms(model, k, s.get("objective", "iwae"), precision),
                                  s.get("compile", False), device)
    try:
        _epochs(model, x_all, dataset, s, device, folder, key, start_epoch, history, optimizer,
                generator, step_terms, checkpoint, partial_path, checkpoint_every, progress,
                snapshots)
    finally:
        for hook in hooks:
            hook.remove()
    model.eval()
    if folder is not None:
        _atomic_save(checkpoint(s["epochs"]), folder / f"{key}.pt")
        if partial_path is not None and partial_path.exists():
            partial_path.unlink()
    return history


def _float32_outputs(model):
    """Cast every dense layer's output to float32 (under bf16 autocast only the matrix
    products run in bfloat16); returns the hook handles."""
    return [m.register_forward_hook(lambda module, args, out: out.float())
            for m in model.modules() if isinstance(m, torch.nn.Linear)]


def _epochs(model, x_all, dataset, s, device, folder, key, start_epoch, history, optimizer,
            generator, step_terms, checkpoint, partial_path, checkpoint_every, progress,
            snapshots):
    schedule = LR_SCHEDULES[s["lr_schedule"]]
    n, b = x_all.shape[0], s["batch_size"]
    steps = math.ceil(n / b)
    # CUDA graphs (compile "reduce-overhead" on a GPU) reuse their output memory; marking each
    # step's start tells PyTorch that the previous step's outputs are no longer needed.
    graphs = device.type == "cuda" and s.get("compile") == "reduce-overhead"
    beta = torch.zeros((), device=device)  # a tensor, so that a compiled step never recompiles
    last_good = copy.deepcopy(model.state_dict())
    bar = range(start_epoch, s["epochs"])
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(bar, desc=f"training {type(model).__name__}", unit="epoch",
                   initial=start_epoch, total=s["epochs"])
    model.train()
    for epoch in bar:
        t0 = time.perf_counter()
        lr = s["lr"] * schedule(epoch, s["epochs"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        order = torch.randperm(n, device=device, generator=generator)
        x_epoch = x_all[order]
        if s["binarize_data"]:
            x_epoch = binarize(x_epoch, generator=generator)
        bound_sum = torch.zeros((), device=device)
        kl_sum = torch.zeros(sum(model.latent), device=device)
        for step in range(steps):
            xb = x_epoch[step * b:(step + 1) * b]
            if xb.shape[0] < 2 and model.config["batch_norm"]:
                continue  # batch norm needs two examples
            beta.fill_(warmup_beta(epoch + step / steps, s["warmup_epochs"]))
            if graphs:
                torch.compiler.cudagraph_mark_step_begin()
            loss, bound_part, kl_part = step_terms(xb, beta)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if s["clip_grad"]:
                torch.nn.utils.clip_grad_norm_(model.parameters(), s["clip_grad"])
            optimizer.step()
            bound_sum += bound_part
            kl_sum += kl_part
        kl_sums = kl_sum.split(list(model.latent))
        bound = bound_sum.item() / n
        if not math.isfinite(bound):
            model.load_state_dict(last_good)
            where = "(the initial parameters)" if epoch == start_epoch else f"(after epoch {epoch})"
            saved = ""
            if folder is not None:
                path = folder / f"{key}.last_good.pt"
                _atomic_save(checkpoint(epoch), path)
                saved = f"; the last good parameters {where} are restored in the model and saved to {path}"
            raise TrainingDivergedError(
                f"the training bound became {bound} in epoch {epoch + 1}{saved}. Hint: lower the "
                f"learning rate (now {lr:g}), clip gradients harder (clip_grad={s['clip_grad']}), "
                "or lengthen the KL warm-up")
        last_good = copy.deepcopy(model.state_dict())
        history["epoch"].append(epoch + 1)
        history["bound"].append(bound)
        history["kl_units"].append([(t / n).tolist() for t in kl_sums])
        history["kl"].append([sum(u) for u in history["kl_units"][-1]])
        history["beta"].append(warmup_beta(epoch + 1, s["warmup_epochs"]))
        history["lr"].append(lr)
        history["seconds"].append(time.perf_counter() - t0)
        if s["test_every"] and ((epoch + 1) % s["test_every"] == 0 or epoch + 1 == s["epochs"]):
            from .bounds import log_likelihood
            test = log_likelihood(model, dataset.test_binary, k=s["test_k"])
            history["test_epoch"].append(epoch + 1)
            history["test_bound"].append(test.mean().item())
            model.train()
        if progress:
            bar.set_postfix(bound=f"{bound:.2f}", beta=f"{history['beta'][-1]:.2f}")
        if snapshots[0] is not None and epoch + 1 in snapshots[1]:
            _atomic_save(checkpoint(epoch + 1), snapshot_path(snapshots[0], epoch + 1))
        if partial_path is not None and checkpoint_every and (epoch + 1) % checkpoint_every == 0 \
                and epoch + 1 < s["epochs"]:
            state = checkpoint(epoch + 1)
            state.update(optimizer=optimizer.state_dict(), rng_cpu=torch.get_rng_state(),
                         rng_generator=generator.get_state().cpu(),
                         rng_cuda=torch.cuda.get_rng_state(device) if device.type == "cuda" else None)
            _atomic_save(state, partial_path)
