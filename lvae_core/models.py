"""VAE, HierarchicalVAE and LadderVAE: one generative model, two inference networks.

    model = GenerativeModel  +  BottomUpInference   (VAE, HierarchicalVAE)
    model = GenerativeModel  +  LadderInference     (LadderVAE)

``model.trace(x, k)`` runs inference and the generative model for k samples and keeps
every piece (log p(x|z), log p(z_i|.), log q(z_i|.) per layer and unit). Every bound
is a function of ``trace.log_w``, the (k, batch) log importance weights.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .checks import check_data, check_k
from .configs import LVAE_HIDDEN, LVAE_LATENT, MODEL_KINDS, ModelConfig
from .generative import GenerativeModel
from .inference import BottomUpInference, LadderInference, LayerSample
from .runtime import device_of, seeded


class _kept:
    """A property computed once per object and kept in its ``__dict__``: what
    ``functools.cached_property`` does, without the lock that it takes before Python 3.12,
    which ``torch.compile`` cannot trace (a compiled step would run eagerly from the first
    density it reads)."""

    def __init__(self, fn):
        self.fn, self.name, self.__doc__ = fn, fn.__name__, fn.__doc__

    def __set_name__(self, owner, name):
        self.name = name

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.fn(obj)
        return value


@dataclass
class Trace:
    """Everything one pass computes, for k samples of a batch of B examples. Layer ``i`` of
    ``layers`` is z_{i+1} (z_1 nearest the data). Every density is computed once, on first
    use, and kept; ``log_w_beta(beta)`` is the one function that makes log weights."""
    log_px: torch.Tensor            # log p(x | z_1), (k, B)
    layers: list[LayerSample]       # z_1 .. z_L

    @_kept
    def log_pz(self) -> list[torch.Tensor]:
        """log p(z_i | z_{i+1}) per layer i = 1..L (log p(z_L) at the top), each (k, B)."""
        return [layer.log_p().sum(-1) for layer in self.layers]

    @_kept
    def log_qz(self) -> list[torch.Tensor]:
        """log q(z_i | .) per layer, each (k, B)."""
        return [layer.log_q().sum(-1) for layer in self.layers]

    @_kept
    def kl_units(self) -> list[torch.Tensor]:
        """The single-sample KL estimate log q(z_i|.) - log p(z_i|z_{i+1}) per unit, each
        (k, B, latent[i])."""
        return [layer.log_q() - layer.log_p() for layer in self.layers]

    @_kept
    def kl(self) -> list[torch.Tensor]:
        """The same estimate per layer, summed over units, each (k, B)."""
        return [u.sum(-1) for u in self.kl_units]

    @_kept
    def kl_total(self) -> torch.Tensor:
        """The estimate summed over layers, (k, B)."""
        return torch.stack(self.kl).sum(0)

    def log_w_beta(self, beta=1.0) -> torch.Tensor:
        """log p(x|z) - beta * sum_i [log q(z_i|.) - log p(z_i|.)], (k, B): the warmed-up
        log weights (Sønderby et al., 2016). ``beta`` is a number or a 0-d tensor (a tensor is
        always multiplied; the number 1 gives ``log_w`` itself)."""
        if not torch.is_tensor(beta) and beta == 1.0:
            return self.log_w
        return self.log_px - beta * self.kl_total

    @_kept
    def log_w(self) -> torch.Tensor:
        """The log importance weights log p(x, z) - log q(z | x), (k, B)."""
        return self.log_px - self.kl_total


def _as_tuple(v, name) -> tuple[int, ...]:
    t = (v,) if isinstance(v, int) else tuple(v)
    if not t or not all(isinstance(n, int) and n > 0 for n in t):
        raise ValueError(f"{name} must be a positive integer or a sequence of them, got {v!r}")
    return t


class LatentVariableModel(nn.Module):
    """The shared skeleton; subclasses choose ``inference_class``. ``model.config`` is the
    model's ``ModelConfig``."""

    inference_class: type = BottomUpInference
    kind = "hvae"

    def __init__(self, x_dim=784, hidden=LVAE_HIDDEN, latent=LVAE_LATENT, *,
                 likelihood="bernoulli", batch_norm=True, activation="leaky_relu"):
        super().__init__()
        hidden, latent = _as_tuple(hidden, "hidden"), _as_tuple(latent, "latent")
        if len(hidden) != len(latent):
            raise ValueError(f"hidden {hidden} and latent {latent} must have one entry per "
                             "stochastic layer")
        if not isinstance(x_dim, int) or x_dim < 1:
            raise ValueError(f"x_dim must be a positive integer, got {x_dim!r}")
        self.config = ModelConfig(self.kind, hidden, latent, x_dim, likelihood,
                                  bool(batch_norm), activation)
        self.generative = GenerativeModel(x_dim, hidden, latent, likelihood, batch_norm, activation)
        self.inference = self.inference_class(x_dim, hidden, latent, batch_norm, activation)

    # -- sizes -----------------------------------------------------------------------
    @property
    def x_dim(self) -> int:
        return self.config.x_dim

    @property
    def latent(self) -> tuple[int, ...]:
        return self.config.latent

    @property
    def num_layers(self) -> int:
        return len(self.latent)

    @property
    def device(self) -> torch.device:
        return device_of(self)

    # -- the one pass ---------------------------------------------------------------
    def check(self, x) -> torch.Tensor:
        """``x`` validated and flattened to ``(B, x_dim)`` on the model's device (see
        ``checks``)."""
        binary = self.config.likelihood == "bernoulli"
        return check_data(x, self.x_dim, binary=binary).to(self.device)

    def trace(self, x: torch.Tensor, k: int = 1, *, check: bool = True) -> Trace:
        """Sample z ~ q(z|x) k times per example and evaluate every density. ``x``: (B, x_dim)."""
        k = check_k(k)
        if check:
            x = self.check(x)
        layers = self.inference(x, k, self.generative)
        return Trace(self.generative.log_px(x, layers[0].z), layers)

    def log_weights(self, x: torch.Tensor, k: int = 1, *, check: bool = True) -> torch.Tensor:
        """log w = log p(x, z) - log q(z | x) at k reparameterized samples: ``(k, B)``."""
        return self.trace(x, k, check=check).log_w

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """E[x | z_1] for n ancestral samples from the generative model, ``(n, x_dim)``."""
        return self.generative.sample(n)[0]

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """E[x | z_1] with z_1 from one sample of q(z | x), ``(B, x_dim)``."""
        tr = self.trace(x, 1)
        return self.generative.mean_x(tr.layers[0].z[0])

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.kwargs().items())


class HierarchicalVAE(LatentVariableModel):
    """L stochastic layers, bottom-up inference q(z_1|x) prod q(z_i|z_{i-1})."""
    inference_class = BottomUpInference
    kind = "hvae"


class LadderVAE(LatentVariableModel):
    """L stochastic layers, ladder inference (precision-weighted top-down merge)."""
    inference_class = LadderInference
    kind = "lvae"


class VAE(HierarchicalVAE):
    """The one-layer case: ``VAE(x_dim=784, hidden=512, latent=64)``."""
    kind = "vae"

    def __init__(self, x_dim=784, hidden=(512,), latent=(64,), **options):
        if len(_as_tuple(latent, "latent")) != 1 or len(_as_tuple(hidden, "hidden")) != 1:
            raise ValueError("VAE has one stochastic layer; use HierarchicalVAE or LadderVAE "
                             f"for more (got hidden={hidden!r}, latent={latent!r})")
        super().__init__(x_dim, hidden, latent, **options)


MODELS = {"vae": VAE, "hvae": HierarchicalVAE, "lvae": LadderVAE}
assert tuple(MODELS) == MODEL_KINDS     # the kinds a ModelConfig accepts


def build_model(config: ModelConfig | str, *, seed: int | None = None,
                **sizes) -> LatentVariableModel:
    """The one builder: the model a ``ModelConfig`` describes (``build_model(sonderby2016())``),
    or ``build_model("lvae", x_dim=784, hidden=[...], latent=[...], ...)``. Its parameters are
    drawn from the CPU stream seeded with ``seed`` (None: the current stream). Built with the
    same seed, an ``hvae`` and an ``lvae`` of the same sizes have identical generative
    parameters (the generative model is built first)."""
    if isinstance(config, str):
        if config not in MODELS:
            raise ValueError(f"unknown model {config!r}; expected one of {sorted(MODELS)}")
        config = ModelConfig(config, **sizes)
    elif sizes:
        config = config.replace(**sizes)
    with seeded(seed):
        return MODELS[config.kind](**config.kwargs())


def model_kind(model: nn.Module) -> str:
    for kind, cls in MODELS.items():
        if type(model) is cls:
            return kind
    raise ValueError(f"not one of the package's models: {type(model).__name__}")
