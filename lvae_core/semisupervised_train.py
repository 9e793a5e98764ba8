"""Training the semi-supervised models: data splits, ``fit_m2``, the supervised baseline
``fit_classifier``, M1 features with ``fit_logistic``, a resumable checkpoint cache.

The protocol of Kingma et al. (2014): the training images are split into a validation set
(10,000 images with labels, for model selection only: the test set is never looked at), a
class-balanced labelled subset drawn by a seed (``balanced_labels``), and the rest, whose
labels are dropped. As in the paper, the labelled images are labelled only: they are not
also in the unlabelled pool (N = N_labelled + N_unlabelled counts each image once).

Every step of ``fit_m2`` sees labelled images: a batch of ``batch_unlabelled`` images from
the unlabelled pool (an epoch is one pass over it) and ``batch_labelled`` images drawn with
replacement from the small labelled set. ``M2.objective`` rescales both sums to the sizes of
the sets, so the mix changes only the variance of the gradient, not its expectation. After
each epoch the validation error of q(y | x) is recorded, and the parameters with the lowest
one are kept (and returned in the model).

Images are grey levels in [0, 1] read by a Bernoulli likelihood, as in the paper and the
authors' code (``SSConfig.binarize=True``: a fresh binarization every epoch instead, with the
validation images binarized once). ``log p(x | y, z)`` of a grey-level image is then the
cross-entropy: a training signal, not a normalised likelihood.

Every random draw of a run comes from its seeds: the labelled subset from the split's seed,
the initial parameters, the batches and the samples from ``SSConfig.seed``. Checkpoints go
through ``lvae_core.checkpoints`` (atomic writes) into ``cache_dir()/semisupervised``; a run
stopped after a partial checkpoint continues from it with the same numbers.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import numbers
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoints as ckpt
from .data import binarize, cache_dir
from .runtime import choose_device, eval_mode, rng_state, seeded, set_rng_state
from .semisupervised import (M2, Y_MODES, check_images, check_labels, error_rate,
                             m1_features, paper_alpha)
from .train import TrainingDivergedError

#: Bumped when a change to the training makes earlier cached runs wrong.
CACHE_VERSION = 1
#: The validation set of the paper's protocol: 10,000 of the training images.
N_VALID = 10000


# -- data ------------------------------------------------------------------------------------

def balanced_labels(y, n_labelled: int, seed: int, exclude=None,
                    n_classes: int | None = None) -> torch.Tensor:
    """Indices of a class-balanced labelled subset: ``n_labelled / C`` images of each of the C
    classes, drawn without replacement by ``seed`` (the same indices on every machine), from
    the images not in ``exclude`` (indices, e.g. the validation set). Returns the indices into
    ``y``, sorted, ``(n_labelled,)`` long. ``n_classes``: C (default: the largest label + 1)."""
    y = torch.as_tensor(y)
    if n_classes is None:
        n_classes = int(y.max()) + 1 if y.numel() else 0
    y = check_labels(y, n_classes, name="the training labels")
    if not isinstance(n_labelled, numbers.Integral) or isinstance(n_labelled, bool):
        raise ValueError(f"n_labelled must be an integer, got {n_labelled!r}")
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if n_labelled < n_classes:
        raise ValueError(f"n_labelled = {n_labelled} is smaller than the number of classes "
                         f"({n_classes}); a balanced subset needs at least one image per class")
    if n_labelled % n_classes:
        raise ValueError(f"n_labelled = {n_labelled} is not divisible by the {n_classes} "
                         f"classes; choose a multiple of {n_classes} for a balanced subset")
    per_class = n_labelled // n_classes
    allowed = np.ones(len(y), dtype=bool)
    if exclude is not None:
        allowed[torch.as_tensor(exclude, dtype=torch.long).numpy()] = False
    labels = y.numpy()
    rng = np.random.default_rng(int(seed))
    chosen = []
    for c in range(n_classes):
        candidates = np.flatnonzero((labels == c) & allowed)
        if len(candidates) < per_class:
            raise ValueError(f"class {c} has only {len(candidates)} images outside the excluded "
                             f"ones; {per_class} per class are needed for n_labelled = "
                             f"{n_labelled}")
        chosen.append(rng.choice(candidates, per_class, replace=False))
    return torch.from_numpy(np.sort(np.concatenate(chosen))).long()


@dataclass(frozen=True, eq=False)
class Split:
    """The training images of one semi-supervised run: ``x_labelled`` ``(N_l, D)`` with
    ``y_labelled`` ``(N_l,)``, ``x_unlabelled`` ``(N_u, D)`` (their labels dropped), and
    ``x_valid``/``y_valid`` for model selection. ``labelled_index``: the labelled images'
    indices in the data set's training images; ``seed``: the seed that drew them."""
    x_labelled: torch.Tensor
    y_labelled: torch.Tensor
    x_unlabelled: torch.Tensor
    x_valid: torch.Tensor
    y_valid: torch.Tensor
    labelled_index: torch.Tensor
    n_classes: int
    seed: int
    name: str = ""

    @property
    def n_labelled(self) -> int:
        return int(self.x_labelled.shape[0])

    @property
    def n_unlabelled(self) -> int:
        return int(self.x_unlabelled.shape[0])

    @property
    def n_total(self) -> int:
        """N = N_labelled + N_unlabelled, the training images (each counted once)."""
        return self.n_labelled + self.n_unlabelled

    @property
    def x_dim(self) -> int:
        return int(self.x_labelled.shape[1])

    def fingerprint(self) -> str:
        """A short hash of every tensor of the split (the data part of a cache key)."""
        parts = [ckpt.fingerprint(t) for t in (self.x_labelled, self.y_labelled,
                                               self.x_unlabelled, self.x_valid, self.y_valid)]
        return hashlib.sha256("/".join(parts).encode()).hexdigest()[:16]

    def replace(self, **changes) -> "Split":
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        return (f"Split({self.name!r}, labelled={self.n_labelled}, "
                f"unlabelled={self.n_unlabelled}, valid={int(self.x_valid.shape[0])}, "
                f"x_dim={self.x_dim}, seed={self.seed})")


def split(data, n_labelled: int, seed: int = 0, *, n_valid: int = N_VALID) -> Split:
    """Split a data set's training images (``data.train_x``, ``data.train_y``; a ``Dataset``)
    into the last ``n_valid`` images for validation, ``n_labelled`` class-balanced labelled
    images drawn by ``seed`` from the rest (``balanced_labels``), and the others unlabelled.
    The validation images are the same for every seed. The test images are not touched."""
    x, y = torch.as_tensor(data.train_x), torch.as_tensor(data.train_y)
    if x.dim() > 2:
        x = x.flatten(1)
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{x.shape[0]} training images but {y.shape[0]} labels")
    n = x.shape[0]
    if not isinstance(n_valid, numbers.Integral) or isinstance(n_valid, bool) or n_valid < 1:
        raise ValueError(f"n_valid must be a positive integer (model selection needs a "
                         f"validation set), got {n_valid!r}")
    if n_valid + n_labelled >= n:
        raise ValueError(f"{n} training images cannot hold {n_valid} validation and "
                         f"{n_labelled} labelled images and leave any unlabelled; lower "
                         "n_valid or n_labelled")
    n_classes = int(y.max()) + 1
    valid = torch.arange(n - n_valid, n)
    labelled = balanced_labels(y, n_labelled, seed, exclude=valid, n_classes=n_classes)
    keep = torch.ones(n, dtype=torch.bool)
    keep[valid] = False
    keep[labelled] = False
    return Split(x[labelled], y[labelled], x[keep], x[valid], y[valid], labelled, n_classes,
                 int(seed), getattr(data, "name", ""))


# -- configuration ---------------------------------------------------------------------------

def _check_number(name, value, kind=numbers.Real, zero=False):
    ok = isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not zero):
        what = "an integer" if kind is numbers.Integral else "a number"
        raise ValueError(f"{name} must be {what} {'>= 0' if zero else '> 0'}, got {value!r}")


@dataclass(frozen=True)
class SSConfig:
    """What ``fit_m2`` (and ``fit_classifier``) compute; every field is in the cache key.

    ``epochs``: passes over the unlabelled pool. ``lr``: Adam's learning rate (the paper's
    3e-4). ``batch_unlabelled``, ``batch_labelled``: images per step from the unlabelled pool
    and (with replacement) from the labelled set. ``alpha``: the classification weight;
    None: ``paper_alpha(N, N_labelled)`` = 0.1 N / N_labelled, the authors' choice (0: the
    ablation without it). ``seed``: initial parameters, batches and samples. ``y``: ``"sum"``
    (y summed out in U(x), the model) or ``"sample"`` (the ablation that samples it).
    ``binarize``: a fresh binarization of the images every epoch (default: grey levels, as
    the paper). ``patience``: stop when the validation error has not improved for this many
    epochs (0: never). ``valid_bound``: also record the mean U(x) on the validation images
    after each epoch (about a tenth of an epoch's time more).
    """
    epochs: int
    lr: float = 3e-4
    batch_unlabelled: int = 256
    batch_labelled: int = 32
    alpha: float | None = None
    seed: int = 0
    y: str = "sum"
    binarize: bool = False
    patience: int = 0
    valid_bound: bool = False

    def __post_init__(self):
        _check_number("epochs", self.epochs, numbers.Integral)
        _check_number("lr", self.lr)
        _check_number("batch_unlabelled", self.batch_unlabelled, numbers.Integral)
        _check_number("batch_labelled", self.batch_labelled, numbers.Integral)
        _check_number("patience", self.patience, numbers.Integral, zero=True)
        if self.alpha is not None:
            _check_number("alpha", self.alpha, zero=True)
        if not isinstance(self.seed, numbers.Integral) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if self.y not in Y_MODES:
            raise ValueError(f"y must be one of {Y_MODES} ('sum': the model; 'sample': an "
                             f"ablation), got {self.y!r}")

    def alpha_for(self, data: Split) -> float:
        """The classification weight used on ``data``."""
        return paper_alpha(data.n_total, data.n_labelled) if self.alpha is None \
            else float(self.alpha)

    def replace(self, **changes) -> "SSConfig":
        return dataclasses.replace(self, **changes)

    def fields(self) -> dict:
        return dataclasses.asdict(self)


# -- training --------------------------------------------------------------------------------

def fit_m2(model: M2, data: Split, config: SSConfig, *, device=None, cache=True,
           checkpoint_every: int = 10, progress: bool = True) -> dict:
    """Train ``model`` (an ``M2``) on ``data`` (a ``Split``) as ``config`` says, and leave in
    it the parameters of the epoch with the lowest validation error; return the history.

    Adam on ``M2.objective``; the parameters are first drawn afresh from ``config.seed``
    (so a run is a function of its cache key). ``cache``: True (``cache_dir()/
    semisupervised``), a folder, or False; a finished run of the same model configuration,
    data and settings is loaded instead of trained. ``checkpoint_every``: a resumable
    checkpoint (parameters, optimizer, random streams, history, best parameters) every so
    many epochs; started again, the run continues from it with the same numbers.

    History, per epoch: ``loss`` (the mean minibatch loss, nats per training image),
    ``labelled_bound`` (mean L(x, y) of the labelled draws), ``unlabelled_bound`` (mean U(x)),
    ``log_q_y`` (mean log q(y | x) of the labelled draws), ``valid_error`` (a fraction),
    ``valid_bound`` (with ``config.valid_bound``), ``seconds``; and ``alpha``, ``best_epoch``,
    ``best_valid_error``, ``stopped_early``.
    """
    if not isinstance(model, M2):
        raise TypeError(f"fit_m2 trains an M2; got {type(model).__name__} (for a classifier "
                        "alone use fit_classifier)")
    _check_split(data, model.x_dim, model.likelihood, model.n_classes, config)
    alpha = config.alpha_for(data)

    def step(xu, xl, yl):
        out = model.objective(xl, yl, xu, alpha=alpha, n_labelled=data.n_labelled,
                              n_unlabelled=data.n_unlabelled, y=config.y)
        return out.loss, dict(labelled_bound=out.labelled.sum(),
                              unlabelled_bound=out.unlabelled.sum(),
                              log_q_y=out.log_q_y.sum())

    def valid_bound(x):
        with eval_mode(model), torch.no_grad(), seeded(config.seed, model.device):
            return torch.cat([model.unlabelled_bound(x[i:i + 1000])
                              for i in range(0, x.shape[0], 1000)]).mean().item()

    run = _Run("m2", model, data, config, step, valid_bound if config.valid_bound else None,
               dict(alpha=alpha))
    return run.fit(device, cache, checkpoint_every, progress)


def fit_classifier(classifier: nn.Module, data: Split, config: SSConfig, *, device=None,
                   cache=True, checkpoint_every: int = 10, progress: bool = True) -> dict:
    """The supervised-only baseline: ``classifier`` (logits from images, e.g. a ``Classifier``
    of q(y|x)'s architecture) trained with Adam on the cross-entropy of the labelled images
    alone, ``config.batch_labelled`` of them per step drawn with replacement, as many steps
    per epoch as an M2 epoch has (N_unlabelled / batch_unlabelled); the parameters of the
    epoch with the lowest validation error are kept (``config.patience`` stops early).
    Unlabelled images, alpha and y are not used. History as ``fit_m2``'s, with ``loss`` the
    mean cross-entropy and ``train_error`` the error on the labelled draws."""
    x_dim = data.x_dim
    _check_split(data, x_dim, "gaussian", data.n_classes, config)

    def step(xu, xl, yl):
        logits = classifier(xl)
        loss = F.cross_entropy(logits, yl)
        return loss, dict(train_error=(logits.argmax(-1) != yl).sum())

    run = _Run("classifier", classifier, data, config, step, None, {})
    return run.fit(device, cache, checkpoint_every, progress)


def _check_split(data: Split, x_dim: int, likelihood: str, n_classes: int,
                 config: SSConfig) -> None:
    if not isinstance(data, Split):
        raise TypeError(f"expected a Split (semisupervised_train.split(data, n_labelled, "
                        f"seed)), got {type(data).__name__}")
    if not isinstance(config, SSConfig):
        raise TypeError(f"expected an SSConfig, e.g. SSConfig(epochs=10); got "
                        f"{type(config).__name__}")
    for name in ("x_labelled", "x_unlabelled", "x_valid"):
        check_images(getattr(data, name), x_dim, likelihood, name)
    check_labels(data.y_labelled, n_classes, data.n_labelled, "y_labelled")
    check_labels(data.y_valid, n_classes, int(data.x_valid.shape[0]), "y_valid")
    if data.n_labelled < n_classes:
        raise ValueError(f"{data.n_labelled} labelled images cannot hold all {n_classes} "
                         "classes; label at least one image per class")
    missing = sorted(set(range(n_classes)) - set(data.y_labelled.tolist()))
    if missing:
        raise ValueError(f"the labelled images hold no example of the classes {missing}; "
                         "draw them with balanced_labels")
    if config.binarize:
        for name in ("x_labelled", "x_unlabelled"):
            x = getattr(data, name)
            if x.numel() and (x.min() < 0 or x.max() > 1):
                raise ValueError(f"SSConfig(binarize=True) needs images in [0, 1]; {name} "
                                 "has other values (features?)")


def cache_key(module: nn.Module, data: Split, config: SSConfig, kind: str,
              device=None) -> tuple[str, dict]:
    """The cache key of a run and what it hashes: the kind, the model's configuration and
    initial parameters, the data's fingerprint and every field of ``config``."""
    init = ckpt.parameters_fingerprint(module, dtype=torch.float64, floating_only=False)
    source = dict(version=CACHE_VERSION, kind=kind, model=getattr(module, "config", None),
                  init=init, data=data.fingerprint(), fit=config.fields(),
                  device=choose_device(device).type)
    return hashlib.sha256(json.dumps(source, sort_keys=True).encode()).hexdigest()[:20], source


def _reset_parameters(module: nn.Module) -> None:
    for m in module.modules():
        if m is not module and hasattr(m, "reset_parameters"):
            m.reset_parameters()


@dataclass
class _Run:
    """One training run: Adam steps on mixed batches, the validation error after each epoch,
    the best parameters, and the cache and partial checkpoints."""
    kind: str
    module: nn.Module
    data: Split
    config: SSConfig
    step: object                       # (xu, xl, yl) -> (loss, {name: batch sum})
    valid_bound: object                # x_valid -> float, or None
    extra: dict
    history: dict = field(default_factory=dict)
    best: dict = field(default_factory=dict)
    start_epoch: int = 0

    def fit(self, device, cache, checkpoint_every, progress) -> dict:
        device = choose_device(device)
        module, config = self.module.to(device), self.config
        with seeded(config.seed, device):
            _reset_parameters(module)
            key, source = cache_key(module, self.data, config, self.kind, device)
            folder = None
            if cache:
                folder = Path(cache) if not isinstance(cache, bool) \
                    else cache_dir() / "semisupervised"
                done = ckpt.try_read(folder / f"{key}.pt")
                if done is not None:
                    module.load_state_dict(done["state_dict"])
                    module.eval()
                    return done["history"]
            self.folder, self.key, self.source, self.device = folder, key, source, device
            return self._train(int(checkpoint_every or 0), progress)

    def _path(self, suffix):
        return None if self.folder is None else self.folder / f"{self.key}{suffix}"

    def _state(self, **extra) -> dict:
        state = {n: t.detach().cpu().clone() for n, t in self.module.state_dict().items()}
        return dict(kind=self.kind, config=getattr(self.module, "config", None),
                    fit=self.source["fit"], history=self.history, state_dict=state, **extra)

    def _train(self, checkpoint_every, progress) -> dict:
        module, config, data, device = self.module, self.config, self.data, self.device
        generator = torch.Generator(device=device).manual_seed(config.seed)
        optimizer = torch.optim.Adam(module.parameters(), lr=config.lr)
        xu, xl = data.x_unlabelled.to(device), data.x_labelled.to(device)
        yl = data.y_labelled.to(device)
        x_valid = binarize(data.x_valid, seed=0) if config.binarize else data.x_valid
        self.history = dict(epoch=[], loss=[], valid_error=[], seconds=[], **self.extra)
        self.best = dict(epoch=0, error=math.inf, state=None)
        partial = ckpt.try_read(self._path(".partial.pt")) if checkpoint_every and self.folder \
            else None
        if partial is not None:
            self._restore(partial, optimizer, generator)
        bar = None
        if progress:
            from tqdm.auto import tqdm
            bar = tqdm(total=config.epochs, initial=self.start_epoch, unit="epoch",
                       desc=f"training {self.kind}")
        module.train()
        stopped = False
        for epoch in range(self.start_epoch, config.epochs):
            t0 = time.perf_counter()
            sums = self._epoch(optimizer, generator, xu, xl, yl, epoch)
            error = error_rate(module, x_valid, data.y_valid)
            self._record(epoch, sums, error, x_valid, time.perf_counter() - t0)
            if bar is not None:
                bar.update()
                bar.set_postfix(loss=f"{sums['loss']:.2f}", valid_error=f"{100 * error:.2f}%",
                                best=f"{100 * self.best['error']:.2f}%")
            done = epoch + 1
            stopped = bool(config.patience) and done - self.best["epoch"] >= config.patience
            if checkpoint_every and self.folder is not None and done % checkpoint_every == 0 \
                    and done < config.epochs and not stopped:
                self._save_partial(done, optimizer, generator)
            if stopped:
                break
        if bar is not None:
            bar.close()
        h = self.history
        h.update(best_epoch=self.best["epoch"], best_valid_error=self.best["error"],
                 stopped_early=stopped)
        if self.best["state"] is not None:
            module.load_state_dict(self.best["state"])
        module.eval()
        if self.folder is not None:
            ckpt.save(self._state(epoch=len(h["epoch"])), self._path(".pt"))
            self._path(".partial.pt").unlink(missing_ok=True)
        return h

    def _epoch(self, optimizer, generator, xu, xl, yl, epoch) -> dict:
        """One pass over the unlabelled pool in a fresh order; each step adds
        ``batch_labelled`` labelled images drawn with replacement. Returns the epoch's means."""
        config, device = self.config, self.device
        n_u, b_u = xu.shape[0], config.batch_unlabelled
        steps = math.ceil(n_u / b_u)
        x_epoch = xu[torch.randperm(n_u, device=device, generator=generator)]
        if config.binarize:
            x_epoch = binarize(x_epoch, generator=generator)
        sums: dict = {}
        loss_sum = torch.zeros((), device=device)
        for i in range(steps):
            pick = torch.randint(xl.shape[0], (config.batch_labelled,), device=device,
                                 generator=generator)
            xl_b = binarize(xl[pick], generator=generator) if config.binarize else xl[pick]
            loss, parts = self.step(x_epoch[i * b_u:(i + 1) * b_u], xl_b, yl[pick])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach()
            for name, value in parts.items():
                sums[name] = sums.get(name, 0.0) + value.detach()
        loss = loss_sum.item() / steps
        if not math.isfinite(loss):
            raise TrainingDivergedError(
                f"the training loss became {loss} in epoch {epoch + 1}; lower the learning "
                f"rate (now {config.lr:g})")
        counts = dict(unlabelled_bound=n_u)
        means = {name: float(v) / counts.get(name, steps * config.batch_labelled)
                 for name, v in sums.items()}
        return dict(loss=loss, **means)

    def _record(self, epoch, sums, error, x_valid, seconds) -> None:
        h = self.history
        h["epoch"].append(epoch + 1)
        for name, value in sums.items():
            h.setdefault(name, []).append(value)
        h["valid_error"].append(error)
        if self.valid_bound is not None:
            h.setdefault("valid_bound", []).append(self.valid_bound(x_valid.to(self.device)))
            self.module.train()
        h["seconds"].append(seconds)
        if error < self.best["error"]:
            self.best = dict(epoch=epoch + 1, error=error,
                             state=copy.deepcopy({n: t.detach().cpu() for n, t in
                                                  self.module.state_dict().items()}))

    def _save_partial(self, done, optimizer, generator) -> None:
        ckpt.save(self._state(
            epoch=done, optimizer=optimizer.state_dict(), **rng_state(self.device, generator),
            best_epoch=self.best["epoch"], best_error=self.best["error"],
            best_state=self.best["state"]), self._path(".partial.pt"))

    def _restore(self, partial, optimizer, generator) -> None:
        self.module.load_state_dict(partial["state_dict"])
        optimizer.load_state_dict(partial["optimizer"])
        set_rng_state(partial, self.device, generator)
        self.history, self.start_epoch = partial["history"], int(partial["epoch"])
        self.best = dict(epoch=partial["best_epoch"], error=partial["best_error"],
                         state=partial["best_state"])


def estimate_epoch_seconds(model: M2, data: Split, config: SSConfig, steps: int = 5) -> float:
    """Seconds per ``fit_m2`` epoch on this machine, from ``steps`` steps of a copy of
    ``model`` (the model and the random streams are left as they were)."""
    trial = copy.deepcopy(model)
    optimizer = torch.optim.Adam(trial.parameters(), lr=config.lr)
    device = trial.device
    alpha = config.alpha_for(data)
    b_u, b_l = min(config.batch_unlabelled, data.n_unlabelled), config.batch_labelled
    xu = data.x_unlabelled[:b_u].to(device)
    xl, yl = data.x_labelled.to(device), data.y_labelled.to(device)
    pick = torch.arange(b_l, device=device) % xl.shape[0]
    with seeded(0, device):
        times = []
        for _ in range(steps + 1):
            t0 = time.perf_counter()
            loss = trial.objective(xl[pick], yl[pick], xu, alpha=alpha,
                                   n_labelled=data.n_labelled,
                                   n_unlabelled=data.n_unlabelled, y=config.y).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        error_rate(trial, data.x_valid, data.y_valid)
        valid = time.perf_counter() - t0
    per_step = float(np.median(times[1:]))
    return per_step * math.ceil(data.n_unlabelled / b_u) + valid


# -- M1: features and a linear classifier ----------------------------------------------------

#: How ``M1Features`` scales the units: one common scale (the default) or one per unit.
FEATURE_SCALES = ("global", "unit")


@dataclass(eq=False)
class M1Features:
    """The M1 representation: E_q[z_1 | x] of an unsupervised VAE (``m1_features``) on its
    active units (variance of the means over the training images above ``threshold``, the
    active-unit criterion of Burda et al., 2016), standardised with the training images'
    statistics: each unit centred on its training mean and divided by ``scale``, by default
    one common scale for all units, the root mean variance of the kept units
    (``scale="global"``), so that the units keep their relative sizes; ``scale="unit"``
    divides each by its own standard deviation.

    Why one scale: per-unit scaling lifts the barely active units (variance 0.01 to 0.1, fine
    detail) to the size of the main ones. On Fashion-MNIST with the book's one-layer model
    (35 active units) and 100 labels, a logistic regression on per-unit standardised features
    had 46 % validation error, on the common-scale ones 34 %; with 1,000 labels 26 % and 25 %.

    ``M1Features.fit(vae, x_train)``; then ``features(x)`` ``(B, n_active)``."""
    vae: nn.Module
    mean: torch.Tensor
    scale: torch.Tensor
    keep: torch.Tensor
    threshold: float = 1e-2
    scaling: str = "global"

    @classmethod
    def fit(cls, vae, x_train, threshold: float = 1e-2, scale: str = "global",
            batch: int = 2000) -> "M1Features":
        if scale not in FEATURE_SCALES:
            raise ValueError(f"scale must be one of {FEATURE_SCALES}, got {scale!r}")
        mu = m1_features(vae, x_train, batch).double()
        var = mu.var(0)
        keep = var > threshold
        if not bool(keep.any()):
            raise ValueError(f"no unit of the VAE's first latent layer is active (variance of "
                             f"its posterior mean above {threshold}); train M1 longer")
        spread = var[keep].sqrt() if scale == "unit" else var[keep].mean().sqrt().expand(
            int(keep.sum()))
        return cls(vae, mu.mean(0)[keep].float(), spread.float().clone(), keep, threshold,
                   scale)

    @property
    def dim(self) -> int:
        return int(self.keep.sum())

    def __call__(self, x, batch: int = 2000) -> torch.Tensor:
        return (m1_features(self.vae, x, batch)[:, self.keep] - self.mean) / self.scale

    def split(self, data: Split) -> Split:
        """``data`` with every image replaced by its features."""
        return data.replace(x_labelled=self(data.x_labelled), x_unlabelled=self(data.x_unlabelled),
                            x_valid=self(data.x_valid))

    def state(self) -> dict:
        """What a shipped M1+M2 model needs besides M1 itself (``from_state``)."""
        return dict(mean=self.mean, scale=self.scale, keep=self.keep, threshold=self.threshold,
                    scaling=self.scaling)

    @classmethod
    def from_state(cls, vae, state: dict) -> "M1Features":
        return cls(vae, **state)


def fit_logistic(data: Split, Cs=(1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0), seed: int = 0,
                 max_iter: int = 5000):
    """Multinomial logistic regression (scikit-learn) on the labelled features of ``data``,
    its inverse regularisation strength C chosen among ``Cs`` by validation error. Returns
    ``(the fitted model, history)`` with ``C``, ``valid_error`` per candidate, ``best_C`` and
    ``best_valid_error``."""
    from sklearn.linear_model import LogisticRegression
    x, y = data.x_labelled.double().numpy(), data.y_labelled.numpy()
    xv, yv = data.x_valid.double().numpy(), data.y_valid.numpy()
    history = dict(C=[], valid_error=[])
    best = None
    for c in Cs:
        model = LogisticRegression(C=float(c), max_iter=max_iter, random_state=seed).fit(x, y)
        error = float((model.predict(xv) != yv).mean())
        history["C"].append(float(c))
        history["valid_error"].append(error)
        if best is None or error < best[0]:
            best = (error, float(c), model)
    history.update(best_C=best[1], best_valid_error=best[0])
    return best[2], history
