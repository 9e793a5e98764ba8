"""The reproduce grids as data: the papers' configurations, protocols and published numbers.

* ``lvae_grid()`` (Sønderby et al., 2016): a hierarchical VAE with bottom-up inference
  (``hvae``) and a Ladder VAE (``lvae``) with 1 to 5 stochastic layers, the paper's widths
  512-256-128-64-32 / 64-32-16-8-4 truncated to L layers, leaky ReLU, each with batch norm
  and KL warm-up (``-bn-wu``) and without either (``-plain``), and the hierarchy with batch
  norm alone (``hvae-L*-bn``: the paper's "VAE+BN", the third model of its main figure);
  Adam, lr 2e-4, batch 256, 2000 epochs, warm-up over the first 200 (10 %) epochs. Names:
  ``lvae-L5-bn-wu``, ``hvae-L2-plain``, ``hvae-L3-bn``, ...
* ``iwae_grid()`` (Burda et al., 2016, section 5): tanh MLPs, 1 layer (200-200, 50 latent)
  or 2 layers (200-200 to 100, 100-100 to 50), no batch norm, decoder output bias at the
  logit of the training mean, batch 20, 3280 epochs with lr 1e-3, Adam's epsilon 1e-4 and
  the paper's 8-stage schedule; the VAE (trained on the ELBO, k = 1) and the IWAE trained on
  L_k for k = 1, 5, 50. Names: ``vae-L1-k1``, ``iwae-L2-k50``, ... (``iwae-L*-k1`` is the
  same objective as ``vae-L*-k1``, so it shares that checkpoint through ``fit``'s cache.)

Each configuration is one ``Run`` record: its name, the model (``ModelConfig``), the training
(``TrainConfig``: the published protocol, or a shortened one) and the evaluation
(``EvalSpec``). The runner (``campaign.runner``), the command line and the results files all
use it; ``run.record()`` is the form a results file keeps.
"""
from __future__ import annotations

import dataclasses
import fnmatch
from dataclasses import dataclass

from ..configs import IWAE_ARCHS, LVAE_HIDDEN, LVAE_LATENT, ModelConfig, TrainConfig

#: Epochs after which a run's model is saved and evaluated for its learning curve.
CURVE_EPOCHS = (1, 3, 10, 30, 100, 300, 1000, 2000, 3280)
#: The learning curve's test images (the first of the test set binarized once) and samples.
CURVE_IMAGES, CURVE_K = 2000, 1000

IWAE_KS = (1, 5, 50)

#: The published protocols: Sønderby et al. (2016), experiments section (warm-up over the
#: first 200 epochs); Burda et al. (2016), section 5 (no warm-up).
PROTOCOLS = {
    "lvae": TrainConfig(epochs=2000, warmup_epochs=200.0, lr=2e-4, batch_size=256,
                        objective="iwae"),
    "iwae": TrainConfig(epochs=3280, lr=1e-3, batch_size=20, lr_schedule="iwae",
                        init_output_bias=True, adam_eps=1e-4, objective="iwae"),
}

#: Published negative test log-likelihoods in nats, copied from the papers:
#: (data set, configuration name) -> (NLL, source). Binarized MNIST numbers are on the full
#: 60,000/10,000 MNIST with k = 5000; Fashion-MNIST numbers are for other architectures
#: (z = 40, 300 hidden units) and serve only as a scale.
PUBLISHED = {
    ("mnist", "vae-L1-k1"): (86.76, "Burda et al. 2016, Table 1 (VAE, k=1)"),
    ("mnist", "iwae-L1-k1"): (86.76, "Burda et al. 2016, Table 1 (IWAE k=1 = VAE)"),
    ("mnist", "iwae-L1-k5"): (85.54, "Burda et al. 2016, Table 1"),
    ("mnist", "iwae-L1-k50"): (84.78, "Burda et al. 2016, Table 1"),
    ("mnist", "vae-L1-k50"): (86.35, "Burda et al. 2016, Table 1 (VAE trained with k=50)"),
    ("mnist", "vae-L2-k1"): (85.33, "Burda et al. 2016, Table 1 (VAE, k=1)"),
    ("mnist", "vae-L2-k50"): (84.78, "Burda et al. 2016, Table 1 (VAE trained with k=50)"),
    ("mnist", "iwae-L2-k1"): (85.33, "Burda et al. 2016, Table 1 (IWAE k=1 = VAE)"),
    ("mnist", "iwae-L2-k5"): (83.89, "Burda et al. 2016, Table 1"),
    ("mnist", "iwae-L2-k50"): (82.90, "Burda et al. 2016, Table 1"),
    ("mnist", "hvae-L5-bn-wu"): (82.74, "Sønderby et al. 2016 (VAE + BN + warm-up, 5 layers)"),
    ("mnist", "lvae-L5-bn-wu"): (82.12, "Sønderby et al. 2016 (LVAE + BN + warm-up, 5 layers)"),
    ("fashion-mnist", "vae-L1-k1"): (228.70, "Norouzi et al. 2020 (VAE, z=40, 300 hidden)"),
    ("fashion-mnist", "hvae-L1-bn-wu"): (228.70, "Norouzi et al. 2020 (VAE, z=40, 300 hidden)"),
    ("fashion-mnist", "hvae-L1-plain"): (228.70, "Norouzi et al. 2020 (VAE, z=40, 300 hidden)"),
    ("fashion-mnist", "vae-L2-k1"): (227.37, "Norouzi et al. 2020 (2-layer hierarchical VAE)"),
    ("fashion-mnist", "hvae-L2-bn-wu"): (227.37,
                                         "Norouzi et al. 2020 (2-layer hierarchical VAE)"),
    ("fashion-mnist", "hvae-L2-plain"): (227.37,
                                         "Norouzi et al. 2020 (2-layer hierarchical VAE)"),
}

GRIDS = ("lvae", "iwae", "all")


@dataclass(frozen=True)
class EvalSpec:
    """How a run is scored: the final estimate's samples ``k`` (on every test image), and the
    learning curve's samples and test images."""
    k: int = 5000
    curve_k: int = CURVE_K
    curve_images: int = CURVE_IMAGES


@dataclass(frozen=True)
class Run:
    """One configuration of a grid, the one record of what a run computes: its ``model``, its
    ``train``ing (the published protocol of ``published_epochs`` epochs unless shortened) and
    its ``eval``uation."""
    name: str
    grid: str                       # "lvae" or "iwae"
    model: ModelConfig
    train: TrainConfig
    published_epochs: int
    eval: EvalSpec = EvalSpec()

    # what the grids' names say, read off the record
    kind = property(lambda self: self.model.kind)
    num_layers = property(lambda self: self.model.num_layers)
    warmup = property(lambda self: self.train.warmup_epochs > 0)
    k = property(lambda self: self.train.k)
    shortened = property(lambda self: self.train.epochs < self.published_epochs)

    def replace(self, *, epochs: int | None = None, epochs_scale: float = 1.0,
                eval_k: int | None = None, x_dim: int | None = None, **train) -> "Run":
        """A copy trained for ``epochs`` (or ``epochs_scale`` times the published epochs; the
        warm-up keeps its share), scored with ``eval_k`` samples, on ``x_dim`` pixels, with
        other ``TrainConfig`` fields changed (``seed``, ``precision``, ``compiled``)."""
        tc, published = self.train, self.published_epochs
        if epochs or epochs_scale != 1.0:
            n = int(epochs if epochs else max(1, int(round(published * epochs_scale))))
            warmup = PROTOCOLS[self.grid].warmup_epochs if self.warmup else 0.0
            train = dict(epochs=n, warmup_epochs=warmup * n / published, **train)
        return dataclasses.replace(
            self, train=tc.replace(**train) if train else tc,
            model=self.model.replace(x_dim=x_dim) if x_dim else self.model,
            eval=dataclasses.replace(self.eval, k=eval_k) if eval_k else self.eval)

    def record(self) -> dict:
        """The run as a results file keeps it (``runs/<name>.json``): the flat fields that
        tables read, and the model's, the training's and the evaluation's fields."""
        m = self.model
        return dict(name=self.name, grid=self.grid, kind=m.kind, num_layers=m.num_layers,
                    hidden=list(m.hidden), latent=list(m.latent), activation=m.activation,
                    batch_norm=m.batch_norm, warmup=self.warmup, train_k=self.k,
                    fit=train_fields(self.train), published_epochs=self.published_epochs,
                    shortened=self.shortened, seed=self.train.seed, eval_k=self.eval.k,
                    compiled=bool(self.train.compiled), precision=self.train.precision,
                    model=m.kwargs(), eval=dataclasses.asdict(self.eval))


def train_fields(tc: TrainConfig) -> dict:
    """Every field of a ``TrainConfig``, as a results file keeps it."""
    return {f.name: getattr(tc, f.name) for f in dataclasses.fields(tc)}


def _run(name: str, grid: str, model: ModelConfig, warmup: bool, k: int = 1,
         objective: str = "iwae") -> Run:
    p = PROTOCOLS[grid]
    train = p.replace(k=k, objective=objective, warmup_epochs=p.warmup_epochs if warmup else 0.0)
    return Run(name, grid, model, train, p.epochs)


#: The variants of the LVAE grid: suffix -> (batch norm, KL warm-up, kinds).
LVAE_VARIANTS = {"plain": (False, False, ("hvae", "lvae")),
                 "bn-wu": (True, True, ("hvae", "lvae")),
                 "bn": (True, False, ("hvae",))}


def lvae_grid(layers=range(1, 6)) -> list[Run]:
    """Sønderby et al.'s grid: {hvae, lvae} x L layers x {plain, bn-wu}, and hvae with batch
    norm alone (``-bn``), so that the paper's main figure (VAE, VAE+BN, VAE+BN+WU,
    LVAE+BN+WU against depth) is in it."""
    configs = []
    for n in layers:
        for kind in ("hvae", "lvae"):
            for suffix, (bn, wu, kinds) in LVAE_VARIANTS.items():
                if kind in kinds:
                    model = ModelConfig(kind, LVAE_HIDDEN[:n], LVAE_LATENT[:n], 784,
                                        "bernoulli", bn, "leaky_relu")
                    configs.append(_run(f"{kind}-L{n}-{suffix}", "lvae", model, wu))
    return configs


#: The Ladder VAE paper's main figure (Sønderby et al. 2016): log-likelihood against the
#: number of stochastic layers for these four models. At one layer the ladder is the
#: hierarchy (``lvae-L1-bn-wu`` is the same model as ``hvae-L1-bn-wu``).
DEPTH_FIGURE = {"VAE": "hvae-L{n}-plain", "VAE+BN": "hvae-L{n}-bn",
                "VAE+BN+WU": "hvae-L{n}-bn-wu", "LVAE+BN+WU": "lvae-L{n}-bn-wu"}


def depth_figure_names(layers=range(1, 6)) -> list[str]:
    """The distinct runs of the main figure (19 for 1 to 5 layers), shallow models first."""
    names = []
    for n in layers:
        for pattern in DEPTH_FIGURE.values():
            name = pattern.format(n=n)
            if n == 1 and name.startswith("lvae"):
                continue
            names.append(name)
    return names


def iwae_grid(layers=(1, 2), ks=IWAE_KS) -> list[Run]:
    """Burda et al.'s grid, 1 and 2 layers: the IWAE trained on L_k for each k, and the VAE
    trained on the ELBO estimated with the same k samples (``vae-L*-k1`` and ``iwae-L*-k1``
    are the same objective)."""
    configs = []
    for n in layers:
        hidden, latent = IWAE_ARCHS[n]
        model = ModelConfig("hvae", hidden, latent, 784, "bernoulli", False, "tanh")
        configs.append(_run(f"vae-L{n}-k1", "iwae", model, False))
        configs += [_run(f"iwae-L{n}-k{k}", "iwae", model, False, k) for k in ks]
        configs += [_run(f"vae-L{n}-k{k}", "iwae", model, False, k, "elbo")
                    for k in ks if k > 1]
    return configs


def list_configs(grid: str = "all", only=None) -> list[Run]:
    """The configurations of ``grid`` ("lvae", "iwae" or "all") whose names match ``only``:
    None, or comma-separated names or glob patterns (``"lvae-L5-*,iwae-L1-k50"``)."""
    if grid not in GRIDS:
        raise ValueError(f"unknown grid {grid!r}; expected one of {GRIDS}")
    configs = (lvae_grid() if grid in ("lvae", "all") else []) + \
              (iwae_grid() if grid in ("iwae", "all") else [])
    if only:
        patterns = [p.strip() for p in (only.split(",") if isinstance(only, str) else only)
                    if p.strip()]
        configs = [c for c in configs
                   if any(fnmatch.fnmatchcase(c.name, p) for p in patterns)]
    return configs


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` -> (i, n) with 0 <= i < n."""
    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise ValueError(f"a shard is written i/n (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"a shard i/n needs 0 <= i < n, got {text!r}")
    return i, n


def shard(configs: list[Run], i: int, n: int) -> list[Run]:
    """The configurations whose index is ``i`` modulo ``n``: the n shards partition the list."""
    return [c for j, c in enumerate(configs) if j % n == i]


def published(data_name: str, name: str):
    """(NLL, source) from the papers for this data set and configuration, or None."""
    return PUBLISHED.get((data_name, name))
