"""Semi-supervised learning with a deep generative model: M2 and M1+M2 (Kingma, Rezende,
Mohamed and Welling, 2014).

M2 is a latent variable model with a class label y beside the continuous latent z:

    p(y) = Cat(1/C),   p(z) = N(0, I),   p(x | y, z) = Bernoulli(logits) or N(mean, var),

    q(z | x, y) = N(mu_q, var_q)   (the encoder),   q(y | x) = Cat(softmax(logits))   (the
    classifier).

Every bound below is a function of the log importance weights of one labelled pair,

    log w = log p(x | y, z) + log p(y) + log p(z) - log q(z | x, y),   z ~ q(z | x, y),

exactly as in ``bounds.py`` (ELBO = mean over the k samples, L_k = logsumexp - log k):

* ``labelled_bound(x, y)``   = L(x, y) = E_q(z|x,y)[log w]  <= log p(x, y);
* ``unlabelled_bound(x)``    = U(x) = sum_y q(y|x) L(x, y) + H(q(y|x))  <= log p(x), with y
  summed out exactly: the C classes are enumerated in one batched pass, never sampled;
* ``log_likelihood(x, k)``   = log sum_y (1/k) sum_j w_{y,j}, the importance-sampled log p(x);
* ``objective(...)``         = the per-image loss whose expectation over minibatches is
  -(sum_labelled L + sum_unlabelled U + alpha * sum_labelled log q(y|x)) / N.

The paper writes its bounds with the opposite sign (its L and U are upper bounds on
-log p); the mathematics is the same. Its objective J^alpha adds alpha * E[-log q(y | x)]
over the labelled images, because otherwise the classifier q(y | x) would learn only from
the unlabelled images. The authors' code set alpha = 0.1 * N / N_labelled (``paper_alpha``):
the classification term weighs as much as a tenth of the images, however few are labelled.

M1+M2: M2 trained on the posterior means E_q[z_1 | x] of an unsupervised VAE (M1) trained on
all images (``m1_features``), with a Gaussian p(x | y, z) over those features.

No batch norm anywhere: an unlabelled batch and a labelled batch would see different batch
statistics, and the running averages that evaluation uses would mix them (a known cause of
NaN and of silent errors in public implementations of these models).

Shapes: B images, C classes, k samples, d latent units. Where several labels per image are
scored at once they come as a long tensor ``y`` of shape ``(n, B)`` (n = 1 for given labels,
n = C for every class), and per-label results have shape ``(n, k, B)``.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import GaussianHead, make_activation
from .bounds import elbo
from .checks import check_k
from .distributions import log_bernoulli, log_normal, log_standard_normal, softplus_variance
from .runtime import device_of, eval_mode, seeded

LIKELIHOODS = ("bernoulli", "gaussian")
Y_MODES = ("sum", "sample")


# -- checks ----------------------------------------------------------------------------------

def check_images(x, x_dim: int, likelihood: str, name: str = "x") -> torch.Tensor:
    """``x`` as a float tensor ``(B, x_dim)`` (images are flattened), or a ValueError.

    A Bernoulli likelihood reads values in [0, 1]: binary images (then it is a likelihood), or
    grey levels as the paper did (then log p(x | y, z) is the cross-entropy, a score, not a
    normalised density). A Gaussian one reads any finite values."""
    if not torch.is_tensor(x):
        try:
            x = torch.as_tensor(x)
        except Exception as err:
            raise TypeError(f"{name} must be a tensor or an array, got {type(x).__name__}") \
                from err
    if x.dim() > 2:
        x = x.flatten(1)
    if x.dim() != 2 or x.shape[1] != x_dim:
        raise ValueError(f"{name} has shape {tuple(x.shape)}; expected (batch, {x_dim}): the "
                         f"model was built with x_dim={x_dim}")
    if not x.is_floating_point():
        x = x.float()
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise ValueError(f"{name} contains {bad} NaN or infinite values; clean or drop those "
                         "images")
    if likelihood == "bernoulli" and x.numel() and (x.min() < 0 or x.max() > 1):
        raise ValueError(f"a Bernoulli likelihood needs images in [0, 1], but {name} has "
                         f"values in [{x.min().item():.3g}, {x.max().item():.3g}]; scale "
                         "them, or build the model with likelihood='gaussian'")
    return x


def check_labels(y, n_classes: int, n: int | None = None, name: str = "y") -> torch.Tensor:
    """``y`` as a long tensor ``(B,)`` of class indices 0 .. C-1, or a ValueError that says
    what is wrong: not integers, NaN (an unlabelled image), -1 (the usual mark of an
    unlabelled image), out of range, or a length other than the images' ``n``."""
    if not torch.is_tensor(y):
        try:
            y = torch.as_tensor(y)
        except Exception as err:
            raise TypeError(f"{name} must be a tensor or an array of class indices, got "
                            f"{type(y).__name__}") from err
    if y.dim() != 1:
        raise ValueError(f"{name} must be one label per image, shape (batch,); got shape "
                         f"{tuple(y.shape)} (one-hot labels: pass y.argmax(1))")
    if n is not None and y.shape[0] != n:
        raise ValueError(f"{name} has {y.shape[0]} labels for {n} images; pass one label per "
                         "labelled image")
    if y.is_floating_point():
        if bool(torch.isnan(y).any()):
            raise ValueError(f"{name} contains NaN labels: an image without a label is "
                             "unlabelled; pass it with the unlabelled images, not as labelled")
        if bool((y != y.round()).any()):
            raise ValueError(f"{name} must hold integer class indices 0 .. {n_classes - 1}; "
                             f"got non-integer values such as {y[y != y.round()][0].item()}")
    elif y.dtype == torch.bool or y.is_complex():
        raise ValueError(f"{name} must hold integer class indices, got dtype {y.dtype}")
    y = y.long()
    if y.numel() and bool((y == -1).any()):
        raise ValueError(f"{name} contains the label -1, the usual mark of an unlabelled "
                         "image; pass those images with the unlabelled ones, not as labelled")
    if y.numel() and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"{name} must hold class indices 0 .. {n_classes - 1}; got values in "
                         f"[{y.min().item()}, {y.max().item()}]")
    return y


def paper_alpha(n_total: int, n_labelled: int, base: float = 0.1) -> float:
    """The classification weight of the authors' code: ``base * n_total / n_labelled``
    (alpha = 50 for 100 labels among 50,000 images). ``n_total``: all training images,
    labelled and unlabelled."""
    for name, v in (("n_total", n_total), ("n_labelled", n_labelled)):
        if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if n_labelled > n_total:
        raise ValueError(f"n_labelled ({n_labelled}) cannot exceed n_total ({n_total})")
    return float(base) * n_total / n_labelled


# -- the three networks ----------------------------------------------------------------------

class ClassConditionalLinear(nn.Module):
    """A dense layer on the concatenation [v; onehot(y)], computed without the concatenation:

        W [v; onehot(y)] + b = W_v v + W_y[:, y] + b,

    so ``W_v v`` is computed once per image and the class column is added for each label.
    ``v``: ``(..., in_dim)``; ``y``: a long tensor broadcastable against ``v``'s leading dims
    (e.g. ``v`` of ``(B, in_dim)`` and ``y`` of ``(n, B)``). Returns ``(broadcast, out_dim)``.
    The parameters are those of ``nn.Linear(in_dim + n_classes, out_dim)`` (same
    initialisation)."""

    def __init__(self, in_dim: int, n_classes: int, out_dim: int):
        super().__init__()
        self.in_dim = in_dim
        self.linear = nn.Linear(in_dim + n_classes, out_dim)

    def forward(self, v: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        w = self.linear.weight
        return F.linear(v, w[:, :self.in_dim], self.linear.bias) + w[:, self.in_dim:].T[y]


def _dense_stack(widths, activation: str) -> nn.Sequential:
    """Dense layers between consecutive ``widths``, each followed by the activation."""
    layers: list[nn.Module] = []
    for d_in, d_out in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(d_in, d_out), make_activation(activation)]
    return nn.Sequential(*layers)


class Classifier(nn.Module):
    """q(y | x) = softmax(MLP(x)): ``x (B, x_dim) -> logits (B, C)``. Any module with this
    interface can serve as M2's classifier."""

    def __init__(self, x_dim: int, hidden=(256, 256), n_classes: int = 10,
                 activation: str = "softplus"):
        super().__init__()
        widths = (x_dim, *hidden)
        self.config = dict(x_dim=int(x_dim), hidden=list(hidden), n_classes=int(n_classes),
                           activation=activation)
        self.body = _dense_stack(widths, activation)
        self.out = nn.Linear(widths[-1], n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))


class Encoder(nn.Module):
    """q(z | x, y) = N(mu_q, var_q) from an MLP on [x; onehot(y)] and a ``GaussianHead``
    (variance: softplus plus a floor).

    Interface: ``encoder(x, y) -> (mu_q, var_q)`` with ``x`` ``(B, x_dim)``, ``y`` long
    ``(n, B)``, and both outputs ``(n, B, d)``. The first layer's ``W_x x`` is computed once
    per image for all n labels (``ClassConditionalLinear``)."""

    def __init__(self, x_dim: int, n_classes: int, hidden=(256,), latent: int = 32,
                 activation: str = "softplus"):
        super().__init__()
        self.first = ClassConditionalLinear(x_dim, n_classes, hidden[0])
        self.body = nn.Sequential(make_activation(activation),
                                  *_dense_stack(hidden, activation))
        self.head = GaussianHead(hidden[-1], latent)

    def forward(self, x: torch.Tensor, y: torch.Tensor):
        return self.head(self.body(self.first(x, y)))


class Decoder(nn.Module):
    """p(x | y, z) from an MLP on [z; onehot(y)].

    Interface: ``decoder(z, y)`` with ``z`` ``(n, k, B, d)`` and ``y`` long broadcastable to
    ``(n, k, B)`` (M2 passes ``(n, 1, B)``); returns the Bernoulli logits ``(n, k, B, x_dim)``,
    or for a Gaussian likelihood ``(mean, var)``, each ``(n, k, B, x_dim)``."""

    def __init__(self, x_dim: int, n_classes: int, hidden=(256,), latent: int = 32,
                 likelihood: str = "bernoulli", activation: str = "softplus"):
        super().__init__()
        hidden = tuple(reversed(hidden))            # mirrors the encoder
        self.x_dim, self.likelihood = x_dim, likelihood
        self.first = ClassConditionalLinear(latent, n_classes, hidden[0])
        self.body = nn.Sequential(make_activation(activation),
                                  *_dense_stack(hidden, activation))
        self.out = nn.Linear(hidden[-1], x_dim if likelihood == "bernoulli" else 2 * x_dim)

    def forward(self, z: torch.Tensor, y: torch.Tensor):
        out = self.out(self.body(self.first(z, y)))
        if self.likelihood == "bernoulli":
            return out
        mean, raw_var = out.split(self.x_dim, dim=-1)
        return mean, softplus_variance(raw_var)


@dataclass
class Objective:
    """One minibatch of ``M2.objective``: the scalar ``loss`` to minimise, and for the
    record the per-example terms (detached): ``labelled`` L(x, y) ``(B_l,)``, ``unlabelled``
    U(x) ``(B_u,)``, ``log_q_y`` log q(y | x) of the labelled images ``(B_l,)``."""
    loss: torch.Tensor
    labelled: torch.Tensor
    unlabelled: torch.Tensor
    log_q_y: torch.Tensor


def _widths(v, name) -> tuple[int, ...]:
    t = (v,) if isinstance(v, numbers.Integral) else tuple(v)
    if not t or not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0
                        for n in t):
        raise ValueError(f"{name} must be a positive integer or a sequence of them, got {v!r}")
    return tuple(int(n) for n in t)


# -- the model -------------------------------------------------------------------------------

class M2(nn.Module):
    """Kingma et al.'s M2: ``M2(x_dim, n_classes=10, hidden=(256,), latent=32,
    classifier_hidden=(256, 256), likelihood="bernoulli", activation="softplus")``.

    ``hidden``: the widths of the encoder's MLP (the decoder mirrors them); ``latent``: d,
    the units of z; ``classifier_hidden``: the widths of q(y | x)'s MLP. Softplus units as in
    the paper. No batch norm (see the module docstring).

    Parts: ``classifier``, ``encoder`` and ``decoder`` may be given as modules with the
    interfaces of ``Classifier``, ``Encoder`` and ``Decoder`` (e.g. exact linear pieces in a
    test); each one given replaces the one built from the widths, and ``config["parts"]``
    names it.
    """

    def __init__(self, x_dim: int, n_classes: int = 10, hidden=(256,), latent: int = 32,
                 classifier_hidden=(256, 256), likelihood: str = "bernoulli",
                 activation: str = "softplus", *, classifier: nn.Module | None = None,
                 encoder: nn.Module | None = None, decoder: nn.Module | None = None):
        super().__init__()
        if not isinstance(x_dim, numbers.Integral) or isinstance(x_dim, bool) or x_dim < 1:
            raise ValueError(f"x_dim must be a positive integer, got {x_dim!r}")
        if not isinstance(n_classes, numbers.Integral) or isinstance(n_classes, bool) \
                or n_classes < 2:
            raise ValueError(f"n_classes must be an integer >= 2, got {n_classes!r}")
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {likelihood!r}; expected one of "
                             f"{LIKELIHOODS}")
        make_activation(activation)          # an unknown name fails here
        hidden, classifier_hidden = _widths(hidden, "hidden"), \
            _widths(classifier_hidden, "classifier_hidden")
        (latent,) = _widths(latent, "latent")
        self.config = dict(x_dim=int(x_dim), n_classes=int(n_classes), hidden=list(hidden),
                           latent=latent, classifier_hidden=list(classifier_hidden),
                           likelihood=likelihood, activation=activation)
        parts = {name: type(m).__name__ for name, m in
                 (("classifier", classifier), ("encoder", encoder), ("decoder", decoder))
                 if m is not None}
        if parts:
            self.config["parts"] = parts
        self.classifier = classifier if classifier is not None else \
            Classifier(x_dim, classifier_hidden, n_classes, activation)
        self.encoder = encoder if encoder is not None else \
            Encoder(x_dim, n_classes, hidden, latent, activation)
        self.decoder = decoder if decoder is not None else \
            Decoder(x_dim, n_classes, hidden, latent, likelihood, activation)

    # -- sizes and checks -------------------------------------------------------------------
    @property
    def x_dim(self) -> int:
        return self.config["x_dim"]

    @property
    def n_classes(self) -> int:
        return self.config["n_classes"]

    @property
    def likelihood(self) -> str:
        return self.config["likelihood"]

    @property
    def device(self) -> torch.device:
        """The device of the first parameter or buffer (else the CPU)."""
        for t in (*self.parameters(), *self.buffers()):
            return t.device
        return torch.device("cpu")

    def _dtype(self) -> torch.dtype:
        """The dtype of the first floating-point parameter or buffer (else the default)."""
        for t in (*self.parameters(), *self.buffers()):
            if t.is_floating_point():
                return t.dtype
        return torch.get_default_dtype()

    def check(self, x, name: str = "x") -> torch.Tensor:
        """``x`` validated (``check_images``) on the model's device and dtype."""
        x = check_images(x, self.x_dim, self.likelihood, name)
        return x.to(self.device, self._dtype())

    def check_labels(self, y, n: int | None = None, name: str = "y") -> torch.Tensor:
        """``y`` validated (``check_labels``) on the model's device."""
        return check_labels(y, self.n_classes, n, name).to(self.device)

    # -- densities --------------------------------------------------------------------------
    def log_px(self, x: torch.Tensor, params) -> torch.Tensor:
        """log p(x | y, z) per example from the decoder's output: ``(n, k, B)``; ``x``
        ``(B, x_dim)`` is broadcast (never copied)."""
        if self.likelihood == "bernoulli":
            return log_bernoulli(x, params).sum(-1)
        mean, var = params
        return log_normal(x, mean, var).sum(-1)

    def log_q_y(self, x: torch.Tensor) -> torch.Tensor:
        """log q(y | x) for every class, ``(B, C)``."""
        return F.log_softmax(self.classifier(x), dim=-1)

    def log_weights_all(self, x: torch.Tensor, y: torch.Tensor, k: int = 1) -> torch.Tensor:
        """log w = log p(x|y,z) + log p(y) + log p(z) - log q(z|x,y) for several labels per
        image at once: ``x`` ``(B, x_dim)`` (checked), ``y`` long ``(n, B)``, z ~ q(z | x, y)
        k times by reparameterization. Returns ``(n, k, B)``."""
        mu_q, var_q = (t.unsqueeze(1) for t in self.encoder(x, y))    # (n, 1, B, d)
        n, _, b, d = mu_q.shape
        eps = torch.randn(n, k, b, d, device=mu_q.device, dtype=mu_q.dtype)
        z = mu_q + torch.sqrt(var_q) * eps                              # (n, k, B, d)
        log_q_z = log_normal(z, mu_q, var_q).sum(-1)
        log_p_z = log_standard_normal(z).sum(-1)
        log_p_x = self.log_px(x, self.decoder(z, y.unsqueeze(1)))
        return log_p_x + log_p_z - log_q_z - math.log(self.n_classes)

    def _all_classes(self, b: int) -> torch.Tensor:
        return torch.arange(self.n_classes, device=self.device).unsqueeze(1).expand(-1, b)

    # -- bounds (per example) ---------------------------------------------------------------
    def log_weights(self, x, y, k: int = 1) -> torch.Tensor:
        """log w for the pairs (x, y) at k samples z ~ q(z | x, y): ``(k, B)``. ``elbo`` and
        ``iwae_bound`` of ``lvae_core.bounds`` turn it into bounds on log p(x, y)."""
        k = check_k(k)
        x = self.check(x)
        y = self.check_labels(y, x.shape[0])
        return self.log_weights_all(x, y.unsqueeze(0), k)[0]

    def labelled_bound(self, x, y, k: int = 1) -> torch.Tensor:
        """L(x, y) = E_q(z|x,y)[log p(x|y,z) + log p(y) + log p(z) - log q(z|x,y)], the ELBO
        of log p(x, y), estimated with k samples: ``(B,)``."""
        return elbo(self.log_weights(x, y, k))

    def unlabelled_bound(self, x, k: int = 1) -> torch.Tensor:
        """U(x) = sum_y q(y|x) L(x, y) + H(q(y|x)) <= log p(x), ``(B,)``: y summed out exactly,
        all C classes in one batched pass (each L(x, y) estimated with k samples)."""
        k = check_k(k)
        x = self.check(x)
        return self._unlabelled(x, self.log_q_y(x), k)

    def _unlabelled(self, x, log_q, k):
        """U(x) from checked ``x`` and its ``log_q`` = log q(y | x), ``(B, C)``."""
        bound = self.log_weights_all(x, self._all_classes(x.shape[0]), k).mean(1).T  # (B, C)
        q = log_q.exp()
        return (q * bound).sum(-1) - (q * log_q).sum(-1)

    def _sampled(self, x, log_q):
        """The ablation ``y="sample"``: L(x, y_hat) + H(q(y|x)) with one y_hat ~ q(y|x) and no
        gradient through the draw (no score function), so the classifier learns only from
        the entropy term on unlabelled images."""
        y_hat = torch.multinomial(log_q.detach().exp(), 1).T               # (1, B)
        bound = self.log_weights_all(x, y_hat, 1)[0, 0]
        return bound - (log_q.exp() * log_q).sum(-1)

    @torch.inference_mode()
    def log_likelihood(self, x, k: int = 1000, *, max_rows: int = 2**12,
                       seed: int | None = None) -> torch.Tensor:
        """The importance-sampled log p(x) with y summed out exactly, ``(B,)`` on the CPU:

            log sum_y (1/k) sum_j exp(log w_{y,j}),   z_{y,j} ~ q(z | x, y),

        (log p(y) is inside log w). At most ``max_rows`` (class, sample, image) rows are
        decoded at once: chunks over images and, when C * k alone is more, over samples
        (combined exactly with logsumexp). Eval mode, no autograd; ``seed``: a seeded stream
        (None: the global one)."""
        k = check_k(k)
        x = self.check(x)
        c = self.n_classes
        k_chunk = max(1, min(k, max_rows // c))
        b_chunk = max(1, max_rows // (c * k_chunk))
        out = []
        with eval_mode(self), seeded(seed, self.device):
            for start in range(0, x.shape[0], b_chunk):
                xb = x[start:start + b_chunk]
                ys = self._all_classes(xb.shape[0])
                parts = [torch.logsumexp(self.log_weights_all(xb, ys, min(k_chunk, k - k0)), 1)
                         for k0 in range(0, k, k_chunk)]                   # each (C, b)
                per_class = torch.logsumexp(torch.stack(parts), 0) - math.log(k)
                out.append(torch.logsumexp(per_class, 0).cpu())
        return torch.cat(out)

    # -- the training objective -------------------------------------------------------------
    def objective(self, x_l, y_l, x_u, *, alpha: float, n_labelled: int, n_unlabelled: int,
                  y: str = "sum") -> Objective:
        """The loss of one minibatch, per training image:

            loss = -[ (N_l / B_l) sum_{batch l} (L(x, y) + alpha log q(y | x))
                      + (N_u / B_u) sum_{batch u} U(x) ] / (N_l + N_u),

        whose expectation over minibatches is -(sum_l L + sum_u U + alpha sum_l log q(y|x))/N,
        the paper's J^alpha divided by N (its L, U carry the other sign). ``n_labelled`` and
        ``n_unlabelled``: the sizes of the whole labelled and unlabelled sets (N_l, N_u);
        ``alpha``: the classification weight (``paper_alpha`` gives the authors' choice; 0 is
        an ablation). ``y="sample"``: the ablation that samples y for U instead of summing it
        out (see ``_sampled``); it is expected to fail. Either batch may be empty."""
        if y not in Y_MODES:
            raise ValueError(f"y must be one of {Y_MODES} ('sum' is the model; 'sample' an "
                             f"ablation), got {y!r}")
        if not isinstance(alpha, numbers.Real) or not math.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be a finite number >= 0, got {alpha!r}")
        for name, v in (("n_labelled", n_labelled), ("n_unlabelled", n_unlabelled)):
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
        if n_labelled < self.n_classes:
            raise ValueError(f"a labelled set of {n_labelled} images cannot hold all "
                             f"{self.n_classes} classes; label at least one image per class")
        x_l, x_u = self.check(x_l, "x_l"), self.check(x_u, "x_u")
        y_l = self.check_labels(y_l, x_l.shape[0], "y_l")
        total = torch.zeros((), device=x_l.device, dtype=x_l.dtype)
        labelled = log_q_y = unlabelled = x_l.new_zeros(0)
        if x_l.shape[0]:
            labelled = self.log_weights_all(x_l, y_l.unsqueeze(0), 1)[0, 0]
            log_q_y = self.log_q_y(x_l).gather(1, y_l.unsqueeze(1)).squeeze(1)
            total = total + n_labelled / x_l.shape[0] * (labelled + alpha * log_q_y).sum()
        if x_u.shape[0]:
            log_q = self.log_q_y(x_u)
            unlabelled = self._unlabelled(x_u, log_q, 1) if y == "sum" else \
                self._sampled(x_u, log_q)
            total = total + n_unlabelled / x_u.shape[0] * unlabelled.sum()
        loss = -total / (n_labelled + n_unlabelled)
        return Objective(loss, labelled.detach(), unlabelled.detach(), log_q_y.detach())

    # -- classification ---------------------------------------------------------------------
    @torch.inference_mode()
    def predict(self, x, batch: int = 10000) -> torch.Tensor:
        """argmax_y q(y | x), ``(B,)`` long on the CPU."""
        return predict(self.classifier, self.check(x), batch)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())


@torch.inference_mode()
def predict(classifier: nn.Module, x: torch.Tensor, batch: int = 10000) -> torch.Tensor:
    """argmax of a classifier's logits (an ``M2``'s q(y|x), or a ``Classifier``), in eval
    mode, ``batch`` images at a time: ``(B,)`` long on the CPU."""
    if isinstance(classifier, M2):
        return classifier.predict(x, batch)
    device = device_of(classifier)
    x = torch.as_tensor(x)
    out = []
    with eval_mode(classifier):
        for start in range(0, x.shape[0], batch):
            out.append(classifier(x[start:start + batch].to(device)).argmax(-1).cpu())
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long)


def error_rate(model: nn.Module, x, y, batch: int = 10000) -> float:
    """The fraction of images whose predicted class (``predict``) is not ``y``."""
    n_classes = model.n_classes if isinstance(model, M2) else None
    y = torch.as_tensor(y)
    if n_classes is not None:
        y = check_labels(y, n_classes, torch.as_tensor(x).shape[0])
    if y.numel() == 0:
        raise ValueError("error_rate needs at least one image")
    return (predict(model, x, batch) != y.cpu()).double().mean().item()


# -- M1 features ------------------------------------------------------------------------------

@torch.inference_mode()
def m1_features(vae, x, batch: int = 2000, n_samples: int = 1,
                seed: int | None = 0) -> torch.Tensor:
    """E_q[z_1 | x], the posterior means of the first latent layer of an ``lvae_core`` model
    (M1), ``(B, latent[0])`` on the CPU, in eval mode (batch norm uses its running averages).

    ``x``: images as the VAE reads them; grey levels in [0, 1] are accepted too (the mean of
    the binary images the VAE was trained on: its first layer is linear, so this is the
    input whose pre-activations are their average). For bottom-up inference q(z_1 | x)
    depends on x alone and the mean is exact; in a Ladder VAE it depends on the samples above,
    so the mean of mu_q is averaged over ``n_samples`` samples (a stream seeded with ``seed``)."""
    from .inference import BottomUpInference
    x = torch.as_tensor(x)
    if x.dim() > 2:
        x = x.flatten(1)
    x = check_images(x, vae.x_dim, "gaussian", "x")
    device = device_of(vae)
    bottom_up = isinstance(vae.inference, BottomUpInference)
    out = []
    with eval_mode(vae), seeded(seed, device):
        for start in range(0, x.shape[0], batch):
            xb = x[start:start + batch].to(device)
            if bottom_up:
                mu = vae.inference.layers[0](xb)[0]
            else:
                mu = vae.trace(xb, n_samples, check=False).layers[0].mu_q.mean(0)
            out.append(mu.float().cpu())
    return torch.cat(out)
