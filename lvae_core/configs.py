"""The two configuration objects, and the papers' architectures, defined once.

* ``ModelConfig``: which model (``"vae"``, ``"hvae"``, ``"lvae"``) and its sizes; a model
  keeps its own as ``model.config``, and ``models.build_model(config)`` makes one.
* ``TrainConfig``: everything that decides what ``fit`` computes. It is frozen and checked
  when it is made, and its fields (with the data, the model and the initial parameters) are
  the key of ``fit``'s checkpoint cache.
* ``sonderby2016(kind, n_layers)`` and ``burda2016(n_layers)``: the architectures of the
  Ladder VAE paper (Sønderby et al., 2016) and the IWAE paper (Burda et al., 2016, section 5),
  used by the book's chapters, the command line and the reproduce grids alike.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

from .checks import check_k
from .compiling import MODES, resolve_mode

#: The Ladder VAE paper's widths, from the data upwards (Sønderby et al., 2016): MLP blocks
#: of 512-256-128-64-32 units between stochastic layers of 64-32-16-8-4 Gaussian units.
LVAE_HIDDEN = (512, 256, 128, 64, 32)
LVAE_LATENT = (64, 32, 16, 8, 4)
#: The IWAE paper's architectures (Burda et al., 2016, section 5): layers -> (hidden, latent).
IWAE_ARCHS = {1: ((200,), (50,)), 2: ((200, 100), (100, 50))}
#: Adam's epsilon unless a configuration says otherwise (PyTorch's default).
ADAM_EPS = 1e-8
#: Learning-rate schedules ``fit`` knows (see ``train.LR_SCHEDULES``).
LR_SCHEDULE_NAMES = (None, "iwae")
MODEL_KINDS = ("vae", "hvae", "lvae")
#: Precisions of the training step's matrix products.
PRECISIONS = ("fp32", "bf16")


@dataclass(frozen=True)
class ModelConfig:
    """A model's kind and sizes. ``hidden[i]`` is the width of the MLP block below
    stochastic layer z_{i+1}; ``latent[i]`` the number of Gaussian units of z_{i+1}."""
    kind: str = "lvae"
    hidden: tuple = LVAE_HIDDEN
    latent: tuple = LVAE_LATENT
    x_dim: int = 784
    likelihood: str = "bernoulli"
    batch_norm: bool = True
    activation: str = "leaky_relu"

    def __post_init__(self):
        if self.kind not in MODEL_KINDS:
            raise ValueError(f"unknown model {self.kind!r}; expected one of {list(MODEL_KINDS)}")
        object.__setattr__(self, "hidden", tuple(self.hidden))
        object.__setattr__(self, "latent", tuple(self.latent))

    @property
    def num_layers(self) -> int:
        return len(self.latent)

    def kwargs(self) -> dict:
        """The model's constructor arguments: the form a checkpoint and the cache key hold."""
        return dict(x_dim=self.x_dim, hidden=list(self.hidden), latent=list(self.latent),
                    likelihood=self.likelihood, batch_norm=bool(self.batch_norm),
                    activation=self.activation)

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)


def sonderby2016(kind: str = "lvae", n_layers: int = 5, *, batch_norm: bool = True,
                 x_dim: int = 784) -> ModelConfig:
    """The Ladder VAE paper's model with its first ``n_layers`` (1 to 5) stochastic layers:
    leaky ReLU MLP blocks, a Bernoulli likelihood, batch norm unless switched off."""
    if not isinstance(n_layers, int) or not 1 <= n_layers <= len(LVAE_LATENT):
        raise ValueError(f"n_layers must be an integer from 1 to {len(LVAE_LATENT)}, "
                         f"got {n_layers!r}")
    return ModelConfig(kind, LVAE_HIDDEN[:n_layers], LVAE_LATENT[:n_layers], x_dim,
                       "bernoulli", batch_norm, "leaky_relu")


def burda2016(n_layers: int = 1, *, x_dim: int = 784) -> ModelConfig:
    """The IWAE paper's model with 1 or 2 stochastic layers: tanh MLP blocks, no batch norm,
    a Bernoulli likelihood, bottom-up inference."""
    if n_layers not in IWAE_ARCHS:
        raise ValueError(f"the IWAE paper has 1 or 2 stochastic layers, got {n_layers!r}")
    hidden, latent = IWAE_ARCHS[n_layers]
    return ModelConfig("hvae", hidden, latent, x_dim, "bernoulli", False, "tanh")


#: Named architectures, for the command line (``--arch``).
ARCHITECTURES = {
    **{f"sonderby2016-{kind}-L{n}": (lambda kind=kind, n=n: sonderby2016(kind, n))
       for kind in ("hvae", "lvae") for n in range(1, 6)},
    **{f"burda2016-L{n}": (lambda n=n: burda2016(n)) for n in IWAE_ARCHS},
}


def architecture(name: str, x_dim: int = 784) -> ModelConfig:
    """A named architecture of ``ARCHITECTURES`` (for ``x_dim`` pixels)."""
    try:
        return ARCHITECTURES[name]().replace(x_dim=x_dim)
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; expected one of "
                         f"{sorted(ARCHITECTURES)}") from None


def _positive(name, value, kind=numbers.Real, zero=False):
    ok = isinstance(value, kind) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (value == 0 and not zero):
        bound = ">= 0" if zero else "> 0"
        what = "an integer" if kind is numbers.Integral else "a number"
        raise ValueError(f"{name} must be {what} {bound}, got {value!r}")


@dataclass(frozen=True)
class TrainConfig:
    """What ``fit`` computes: Adam on the ELBO (k = 1) or on the IWAE bound L_k, with a linear
    KL warm-up, gradient clipping and dynamic binarization.

    ``epochs``, ``batch_size``, ``lr``: the usual. ``warmup_epochs``: beta rises linearly from
    0 to 1 over this many epochs (per step), then stays 1 (Sønderby et al., 2016).
    ``k``: importance samples per example. ``objective``: with k > 1, ``"iwae"`` (L_k, the
    default) or ``"elbo"`` (the mean of the k log weights, Burda et al.'s VAE trained with k
    samples); with k = 1 both are the ELBO. ``adam_eps``: Adam's epsilon (the IWAE paper used
    1e-4). ``clip_grad``: clip the gradient's norm at this value (None or 0: no clipping).
    ``seed``: every random draw of the run. ``lr_schedule``: None or ``"iwae"`` (Burda et
    al.'s 8 stages). ``init_output_bias``: start the decoder's output bias at the logit of the
    training mean. ``binarize_data``: a fresh Bernoulli sample of the training images every
    epoch (None: with a Bernoulli likelihood). ``reset``: re-initialise the parameters from
    ``seed`` first. ``test_every``/``test_k``: every so many epochs, L_k with ``test_k``
    samples on the test set (its own random stream: the training numbers do not change).
    ``compiled``: run the training step through ``torch.compile`` (True, or a mode; see
    ``lvae_core.compiling``): faster, the same mathematics, not bit-identical, cached apart.
    ``precision``: ``"fp32"``, or ``"bf16"`` to run the training step's matrix products in
    bfloat16 (autocast) while every other operation, the optimizer and every evaluation stay
    in float32 (each dense layer's output is cast back to float32); cached apart. Only worth it
    where the hardware multiplies bfloat16 natively (AVX-512 BF16 or AMX, recent GPUs): on an
    AVX2-only CPU a bfloat16 product of the LVAE's sizes is about 8 times slower than float32
    (``benchmarks/bench_precision.py``).
    """
    epochs: int
    batch_size: int = 256
    lr: float = 1e-3
    warmup_epochs: float = 0
    k: int = 1
    objective: str | None = None
    adam_eps: float = ADAM_EPS
    clip_grad: float | None = 100.0
    seed: int = 0
    lr_schedule: str | None = None
    init_output_bias: bool = False
    binarize_data: bool | None = None
    reset: bool = True
    test_every: int = 0
    test_k: int = 1
    compiled: bool | str = False
    precision: str = "fp32"

    def __post_init__(self):
        _positive("epochs", self.epochs, numbers.Integral)
        _positive("batch_size", self.batch_size, numbers.Integral)
        _positive("lr", self.lr)
        _positive("warmup_epochs", self.warmup_epochs, zero=True)
        _positive("adam_eps", self.adam_eps)
        if self.clip_grad is not None:
            _positive("clip_grad", self.clip_grad, zero=True)
        _positive("test_every", self.test_every, numbers.Integral, zero=True)
        object.__setattr__(self, "k", check_k(self.k))
        check_k(self.test_k)
        if not isinstance(self.seed, numbers.Integral) or isinstance(self.seed, bool):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")
        if self.objective not in (None, "iwae", "elbo"):
            raise ValueError(f"objective must be 'iwae' or 'elbo', got {self.objective!r}")
        # None: the bound of the k samples, L_k (the ELBO when k = 1). Remembered, so that
        # replace(k=...) on a configuration that never chose an objective chooses again.
        object.__setattr__(self, "_objective_from_k", self.objective is None)
        if self.objective is None:
            object.__setattr__(self, "objective", "iwae" if self.k > 1 else "elbo")
        if self.lr_schedule not in LR_SCHEDULE_NAMES:
            raise ValueError(f"unknown lr_schedule {self.lr_schedule!r}; expected one of "
                             f"{list(LR_SCHEDULE_NAMES)}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.compiled not in (True, False, None, *MODES):
            raise ValueError(f"compiled must be True, False or one of {list(MODES)}, "
                             f"got {self.compiled!r}")

    def replace(self, **changes) -> "TrainConfig":
        """A copy with ``changes`` (checked like a new one). An objective that was not chosen
        (``objective=None``: L_k, the ELBO for k = 1) follows a changed ``k``:
        ``TrainConfig(epochs=5).replace(k=5)`` trains on L_5, not on the 5-sample ELBO."""
        if "objective" not in changes and self._objective_from_k:
            changes["objective"] = None
        return dataclasses.replace(self, **changes)

    def key_fields(self, likelihood: str, device) -> dict:
        """The settings as they enter the cache key (and a checkpoint's ``fit`` entry).
        Entries added after the first version appear only when they differ from their
        defaults, so that earlier checkpoints keep their keys; ``reset`` enters the key
        through the initial parameters instead."""
        fields = dict(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                      warmup_epochs=self.warmup_epochs, k=self.k, clip_grad=self.clip_grad,
                      seed=self.seed, lr_schedule=self.lr_schedule,
                      init_output_bias=self.init_output_bias,
                      binarize_data=self.binarizes(likelihood), test_every=self.test_every,
                      test_k=self.test_k)
        if self.k > 1 and self.objective == "elbo":
            fields["objective"] = "elbo"
        if self.adam_eps != ADAM_EPS:
            fields["adam_eps"] = self.adam_eps
        if self.precision != "fp32":
            fields["precision"] = self.precision
        mode = resolve_mode(self.compiled, device)
        if mode is not None:
            fields["compile"] = mode
        return fields

    def binarizes(self, likelihood: str) -> bool:
        """Whether the training images are binarized anew every epoch."""
        return likelihood == "bernoulli" if self.binarize_data is None else bool(self.binarize_data)
