"""Checks for the chapters' exercises: is an answer right, and if not, a hint.

Each exercise with a checkable answer asks for a named value (the exercise cell starts it
as ``...``). The chapter's check cell passes that value here, with what the check needs from
the chapter, and prints a ``Feedback``: ``correct``, ``wrong`` (with a hint) or
``not attempted`` while the value is still ``...`` or ``None``. A check never raises on a
student's answer, so a chapter runs top to bottom whatever the exercise cells hold.

The expected values are computed another way than the chapters' solutions compute them:
closed forms, ``torch.distributions``, Gauss-Hermite quadrature, or a property the answer
must have (a bound below log p(x), an estimate that falls with k). ``bool(feedback)`` is
True only for a correct answer; the autograder's tests assert it.
"""
from __future__ import annotations

import functools
import math
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch

CORRECT, WRONG, NOT_ATTEMPTED = "correct", "wrong", "not attempted"


@dataclass(frozen=True)
class Feedback:
    """The outcome of one check: ``status`` is "correct", "wrong" or "not attempted"."""
    exercise: str
    status: str
    message: str

    def __bool__(self) -> bool:
        return self.status == CORRECT

    def __repr__(self) -> str:   # wrapped to fit the book's output column
        return textwrap.fill(f"{self.exercise}: {self.status}. {self.message}", width=80,
                             break_long_words=False, break_on_hyphens=False)

    __str__ = __repr__


def _check(exercise: str, what: str, answers: int = 1):
    """Wrap a check ``fn(answer, ...) -> (ok, message)`` into one that returns Feedback.

    ``what`` names the value the exercise cell must set, and the first ``answers`` arguments
    are the student's: one still ``...`` or None makes the exercise "not attempted". An
    answer the check cannot read is "wrong", with the reason."""
    def wrap(fn):
        @functools.wraps(fn)
        def check(*args, **kwargs) -> Feedback:
            if any(a is Ellipsis or a is None for a in args[:answers]):
                return Feedback(exercise, NOT_ATTEMPTED, f"set {what} in the exercise cell, "
                                "run it, then run this cell again")
            try:
                ok, message = fn(*args, **kwargs)
            except Exception as err:    # the answer has the wrong form: say so, never raise
                expected = fn.__doc__.strip().splitlines()[0].rstrip(".")
                return Feedback(exercise, WRONG, f"could not read {what} "
                                f"({type(err).__name__}: {err}). Expected: {expected}.")
            return Feedback(exercise, CORRECT if ok else WRONG, message)
        check.exercise = exercise
        return check
    return wrap


def as_number(value) -> float:
    """A Python float from a number, a 0-d or one-element tensor or array."""
    if torch.is_tensor(value):
        value = value.detach().cpu().double().reshape(-1)
        if value.numel() != 1:
            raise ValueError(f"expected one number, got {value.numel()}")
        return float(value[0])
    return float(np.asarray(value, dtype=float).reshape(-1)[0]) if np.ndim(value) else float(value)


def lookup(mapping: Mapping, key: float):
    """``mapping[key]`` for a float key, accepting keys that are equal as numbers."""
    for k, v in mapping.items():
        if math.isclose(float(k), key, rel_tol=1e-9, abs_tol=1e-12):
            return v
    raise KeyError(f"no entry for {key:g} (keys: {', '.join(map(str, mapping))})")


def _gauss_expect(fn, mu: float, sigma: float, nodes: int = 200) -> float:
    """E[fn(z)] for z ~ N(mu, sigma^2) by Gauss-Hermite quadrature (probabilists' weights)."""
    t, w = np.polynomial.hermite_e.hermegauss(nodes)
    return float(np.sum(w * fn(mu + sigma * t)) / math.sqrt(2 * math.pi))


def _gauss_var(fn, mu: float, sigma: float) -> float:
    return _gauss_expect(lambda z: fn(z) ** 2, mu, sigma) - _gauss_expect(fn, mu, sigma) ** 2


def _off(value: float, expected: float) -> str:
    """Which way an answer is off, without giving the expected value away."""
    return "too high" if value > expected else "too low"


def _relative_misses(answers: Mapping, expected: Mapping, rtol: float) -> list[str]:
    return [f"{name}: yours {answers[name]:.4g} is {_off(answers[name], value)}"
            for name, value in expected.items()
            if abs(answers[name] - value) > rtol * abs(value)]


# Chapter 1: the ELBO

@_check("ex-elbo-1", "`gaps`, a dict {s: measured gap}")
def jensen_gap(gaps):
    """gaps maps s = 0.5, 1, 2 to log mean(exp X) - mean(X) for X ~ N(m, s^2)."""
    misses = []
    for s in (0.5, 1.0, 2.0):
        value, exact = as_number(lookup(gaps, s)), s**2 / 2   # log E[e^X] = m + s^2 / 2
        if abs(value - exact) > 0.1 * s**2 + 0.01:
            misses.append(f"s = {s:g}: yours {value:.3f}, s^2/2 = {exact:.3f}")
    if misses:
        return False, ("; ".join(misses) + ". Hint: the gap is log mean(exp(X)) - mean(X); "
                       "use torch.logsumexp(X, 0) - log(n) for the first term (exp overflows "
                       "less), and at least 100,000 samples: for s = 2 the mean of e^X is "
                       "carried by rare large samples.")
    return True, "each measured gap is within Monte Carlo error of s^2/2."


@_check("ex-elbo-2", "`elbo_split`, reconstruction minus KL (a number)")
def elbo_split(elbo_split, log_px, q, posterior):
    """elbo_split is E_q[log p(x|z)] - KL(q || p(z)), a number; q and posterior are (mean, cov)."""
    mvn = lambda m, c: torch.distributions.MultivariateNormal(
        torch.as_tensor(m).reshape(-1), covariance_matrix=torch.as_tensor(c))
    # ELBO = log p(x) - KL(q || p(z | x)), with the KL from torch.distributions
    kl = torch.distributions.kl_divergence(mvn(*q), mvn(*posterior))
    exact = as_number(log_px) - as_number(kl)
    value = as_number(elbo_split)
    if value > as_number(log_px) + 0.05:
        return False, (f"yours {value:.4f} is above log p(x) = {as_number(log_px):.4f}: an ELBO "
                       "never is. Hint: is the KL subtracted, not added?")
    if abs(value - exact) > 0.05:
        return False, (f"yours {value:.4f} is {_off(value, exact)}. Hint: log p(x | z) is "
                       "log p(x, z) - log p(z) with p(z) = N(0, I), averaged over z ~ q; "
                       "the KL is to the prior N(0, I), not to the posterior.")
    return True, f"{value:.4f} agrees with the exact ELBO {exact:.4f} within sampling error."


@_check("ex-elbo-4", "`gap_found`, the gap left by the best diagonal q (nats)")
def diagonal_gap(gap_found, post_cov):
    """gap_found is log p(x) minus the largest ELBO of a diagonal Gaussian, in nats."""
    cov = torch.as_tensor(post_cov, dtype=torch.float64)
    # -1/2 log(1 - rho^2) in 2 dimensions; in general -1/2 log det of the correlation of the
    # precision matrix
    precision = torch.linalg.inv(cov)
    d = precision.diagonal().rsqrt()
    exact = -0.5 * torch.logdet(d[:, None] * precision * d[None, :]).item()
    value = as_number(gap_found)
    if value < -1e-6:
        return False, (f"yours {value:.5f} is negative: no q has an ELBO above log p(x). "
                       "Hint: gap = log p(x) - ELBO at the optimum.")
    if abs(value - exact) > 1e-3:
        hint = ("the optimiser may not have converged (try torch.optim.LBFGS, or more Adam "
                "steps)" if value > exact else "check the sign and the log p(x) you subtract")
        return False, f"yours {value:.5f} is {_off(value, exact)}. Hint: {hint}."
    return True, f"{value:.5f} nats = -log(1 - rho^2)/2, the approximation gap."


# Chapter 2: the reparameterization trick

@_check("ex-reparam-1", '`variances`, a dict with keys "no baseline", "baseline", "pathwise"')
def baseline_variances(variances, mu: float = 1.5, sigma: float = 1.0):
    """variances holds the per-sample variance of the three mu-gradient estimators."""
    b = mu**2 + sigma**2
    expected = {   # f(z) = z^2, by quadrature
        "no baseline": _gauss_var(lambda z: z**2 * (z - mu) / sigma**2, mu, sigma),
        "baseline": _gauss_var(lambda z: (z**2 - b) * (z - mu) / sigma**2, mu, sigma),
        "pathwise": _gauss_var(lambda z: 2 * z, mu, sigma)}
    answers = {name: as_number(variances[name]) for name in expected}
    misses = _relative_misses(answers, expected, 0.1)
    if misses:
        return False, ("; ".join(misses) + ". Hint: the score-function term is "
                       "(f(z) - b) (z - mu) / sigma^2 at z = mu + sigma * eps; take .var() "
                       "of the per-sample terms, not of their mean.")
    return True, (f"the baseline cuts the variance from {expected['no baseline']:.1f} to "
                  f"{expected['baseline']:.1f}; the pathwise estimator has "
                  f"{expected['pathwise']:.1f}.")


@_check("ex-reparam-2", '`cos_variances`, {omega: {"pathwise": var, "score": var}}')
def cosine_variances(cos_variances, mu: float = 0.3, sigma: float = 1.0):
    """cos_variances maps omega = 0.5, 2, 8 to the per-sample variances of both estimators."""
    misses = []
    for omega in (0.5, 2.0, 8.0):
        row = lookup(cos_variances, omega)
        expected = {"pathwise": _gauss_var(lambda z: -omega * np.sin(omega * z), mu, sigma),
                    "score": _gauss_var(lambda z: np.cos(omega * z) * (z - mu) / sigma**2,
                                        mu, sigma)}
        answers = {name: as_number(row[name]) for name in expected}
        misses += [f"omega = {omega:g}, {m}"
                   for m in _relative_misses(answers, expected, 0.1)]
    if misses:
        return False, ("; ".join(misses) + ". Hint: the pathwise term is "
                       "f'(z) = -omega sin(omega z), the score term f(z) (z - mu) / sigma^2.")
    return True, ("both variances match; at omega = 8 the pathwise estimator's variance "
                  "grows like omega^2 while the score function's stays bounded.")


@_check("ex-reparam-4", "`laplace_sample(u, mu, b)`, a function")
def laplace_sampler(laplace_sample, mu: float = 1.0, b: float = 0.5, n: int = 20_000):
    """laplace_sample(u, mu, b) turns uniform u in (0, 1) into Laplace(mu, b) samples."""
    u = torch.rand(n, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    law = torch.distributions.Laplace(mu, b)
    mu = torch.tensor(mu, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(b, dtype=torch.float64, requires_grad=True)
    z = torch.as_tensor(laplace_sample(u, mu, b))
    if z.shape != u.shape:
        return False, f"expected {n} samples for {n} uniforms, got shape {tuple(z.shape)}."
    cdf = law.cdf(torch.sort(z.detach()).values)
    i = torch.arange(1, n + 1, dtype=torch.float64)
    ks = torch.max(torch.maximum(i / n - cdf, cdf - (i - 1) / n)).item()
    if not ks < 1.95 / math.sqrt(n):
        return False, (f"the samples do not follow Laplace({law.loc:g}, {law.scale:g}): KS "
                       f"statistic {ks:.3f} "
                       f"> {1.95 / math.sqrt(n):.3f}. Hint: solve F(t) = u separately for "
                       "u < 1/2 (then t < mu) and u >= 1/2.")
    if not bool((torch.diff(z.detach()[torch.argsort(u)]) >= 0).all()):
        return False, ("the samples have the right law, but z does not increase with u: "
                       "invert the CDF, so that each u maps to its own quantile.")
    if not z.requires_grad:
        return False, "z carries no gradient to mu and b: build it from mu and b with torch."
    d_mu, d_b = torch.autograd.grad(z.mean(), (mu, b))
    if abs(d_mu.item() - 1) > 1e-6 or abs(d_b.item()) > 0.05:
        return False, (f"d mean(z) / d mu = {d_mu.item():.3f} (expected 1) and d / d b = "
                       f"{d_b.item():.3f} (expected about 0): z should be mu + b * noise.")
    return True, "the inverse CDF is right, and gradients reach mu and b."


# Chapter 3: the VAE

@_check("ex-vae-2", "`q_optimized = (mu, var)`, each (100, 32)")
def amortization_gap(q_optimized, model, x, seed: int = 0, k: int = 50):
    """q_optimized is (mu, var), each (images, units), optimized per image of x."""
    mu, var = (torch.as_tensor(t).detach().double() for t in q_optimized)
    x = torch.as_tensor(x)
    if mu.shape != var.shape or mu.shape[0] != x.shape[0]:
        return False, (f"mu {tuple(mu.shape)} and var {tuple(var.shape)} should both have one "
                       f"row per image of x ({x.shape[0]}).")
    if not bool((var > 0).all()):
        return False, "some variances are not positive: optimize log var and take exp."
    prior = torch.distributions.Normal(0.0, 1.0)

    @torch.no_grad()
    def elbo(m, v):   # E_q log p(x | z) - KL(q || N(0, I)), k samples, common noise
        q = torch.distributions.Normal(m, v.sqrt())
        eps = torch.randn((k, *m.shape), generator=torch.Generator().manual_seed(seed),
                          dtype=torch.float64)
        z = (m + v.sqrt() * eps).to(torch.get_default_dtype())
        rec = model.generative.log_px(x, z).double().mean(0)
        return rec - torch.distributions.kl_divergence(q, prior).sum(-1)

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            layer = model.trace(x, 1).layers[0]
        before = elbo(layer.mu_q[0].double(), layer.var_q[0].double())
        after = elbo(mu, var)
    finally:
        model.train(was_training)
    gain = (after - before).mean().item()
    if not math.isfinite(gain) or gain <= 0:
        return False, (f"your q's ELBO is {after.mean():.2f}, the encoder's {before.mean():.2f}: "
                       "no gain. Hint: maximise the ELBO (minimise its negative) over mu "
                       "and log var with the model's parameters frozen.")
    return True, (f"the optimized q gains {gain:.2f} nats per image over the encoder's "
                  "(the amortization gap, as far as your optimizer got).")


@_check("ex-vae-3", "`n_above`, the number of units with KL above 0.01 nats")
def units_above(n_above, model, x, threshold: float = 0.01):
    """n_above is the number of units of the one-layer VAE whose KL exceeds 0.01 nats."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            layer = model.trace(torch.as_tensor(x), 1).layers[0]
    finally:
        model.train(was_training)
    q = torch.distributions.Normal(layer.mu_q[0].double(), layer.var_q[0].double().sqrt())
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).mean(0)
    # a unit within 20 % of the threshold may fall either side with other samples
    low, high = int((kl > 1.2 * threshold).sum()), int((kl > threshold / 1.2).sum())
    value = as_number(n_above)
    if not low <= value <= high:
        return False, (f"yours {value:g} is {_off(value, low)}. Hint: count the units of "
                       "lv.kl_per_unit(model, x)[0] with KL above 0.01 nats.")
    return True, f"{value:g} of {kl.numel()} units carry more than {threshold:g} nats."


@_check("ex-vae-5", "`train_vae(encoder, decoder, images, epochs)`, a function")
def training_loop(train_vae, images, seed: int = 0, epochs: int = 5, n: int = 1000):
    """train_vae(encoder, decoder, images, epochs) trains in place, returns each epoch's ELBO."""
    from .models import VAE    # the check's own small VAE: tanh, no batch norm
    images = torch.as_tensor(images)[:n].float()
    x = torch.bernoulli(images.reshape(len(images), -1),
                        generator=torch.Generator().manual_seed(seed))
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = VAE(x_dim=x.shape[1], hidden=(200,), latent=(10,), batch_norm=False,
                    activation="tanh")
        model.generative.init_output_bias(x.mean(0))   # starts at the pixels' marginals
        encoder, decoder = model.inference.layers[0], model.generative.decoder
        start = [p.detach().clone() for p in model.parameters()]
        history = train_vae(encoder, decoder, x, epochs)
    history = [as_number(h) for h in history]
    if len(history) != epochs or not all(map(math.isfinite, history)):
        return False, (f"train_vae(..., epochs={epochs}) returned {len(history)} values; "
                       f"expected {epochs} finite numbers, the average ELBO of each epoch.")
    elbo, kl = _independent_elbo(encoder, decoder, x, seed)
    # the best ELBO of a model that ignores z: independent Bernoulli pixels with the data's
    # means and a KL of 0, in closed form
    m = x.double().mean(0).clamp(1e-6, 1 - 1e-6)
    marginal = (m * m.log() + (1 - m) * (-m).log1p()).sum().item()
    if not elbo > marginal + 10:
        if all(torch.equal(p, p0) for p, p0 in zip(model.parameters(), start)):
            hint = ("they are the networks' initial parameters. Hint: one Adam step per "
                    "mini-batch, optimizer.zero_grad(), loss.backward(), optimizer.step(), "
                    "with the optimizer given both networks' parameters")
        elif kl < 0.5:
            hint = ("q(z | x) has collapsed to the prior, so z tells the decoder nothing. "
                    "Hint: draw z = mu + sqrt(var) * eps from the encoder's outputs, without "
                    ".detach() or .sample(), so that the reconstruction term's gradient "
                    "reaches the encoder")
        elif kl > 100:
            hint = (f"its KL has grown to {kl:.0f} nats. Hint: the ELBO is the "
                    "reconstruction term minus the KL, and the loss is minus the ELBO")
        else:
            hint = ("Hint: one Adam step (lr 1e-3) per mini-batch of 100 images, on minus "
                    "the batch's mean ELBO, with optimizer.zero_grad() before backward()")
        return False, (f"after {epochs} epochs on {len(x)} images your loop's networks have "
                       f"an ELBO of {elbo:.1f} nats, not above the {marginal:.1f} of a model "
                       f"that ignores z: {hint}.")
    if abs(history[-1] - elbo) > 10:
        return False, (f"the networks train, but the last epoch's ELBO you return, "
                       f"{history[-1]:.1f}, is {_off(history[-1], elbo)}: measured "
                       f"independently it is {elbo:.1f}. Hint: return the ELBO "
                       "(reconstruction minus KL) averaged per image, not the loss, and not "
                       "a sum over a batch.")
    return True, (f"after {epochs} epochs your loop's networks have an ELBO of {elbo:.1f} "
                  f"nats (its last epoch reported {history[-1]:.1f}), above the "
                  f"{marginal:.1f} of a model that ignores z.")


@torch.no_grad()
def _independent_elbo(encoder, decoder, x, seed: int, k: int = 20) -> tuple[float, float]:
    """The mean ELBO of x and its mean KL, from torch.distributions: k samples of z for the
    reconstruction term, the closed-form KL."""
    mu, var = (t.double() for t in encoder(x))
    q = torch.distributions.Normal(mu, var.sqrt())
    eps = torch.randn((k, *mu.shape), dtype=torch.float64,
                      generator=torch.Generator().manual_seed(seed))
    z = (q.loc + q.scale * eps).float().reshape(k * len(x), -1)
    logits = decoder(z).double().reshape(k, len(x), -1)
    rec = torch.distributions.Bernoulli(logits=logits).log_prob(x.double()).sum(-1).mean(0)
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0)).sum(-1)
    return (rec - kl).mean().item(), kl.mean().item()


# Chapter 4: the hierarchical VAE

@_check("ex-04-2", "`rec` (E log p(x|z1)) and `kls` (the KL of each layer)", answers=2)
def elbo_from_pieces(rec, kls, model, x, k: int = 1, seed: int = 0):
    """rec is E log p(x | z_1) and kls a list of the per-layer KL terms, in nats per image."""
    kls = [as_number(v) for v in kls]
    if len(kls) != len(model.latent):
        return False, f"kls has {len(kls)} terms; the model has {len(model.latent)} layers."
    torch.manual_seed(seed)
    with torch.no_grad():   # an ELBO from fresh samples: the mean of log w
        log_w = model.log_weights(torch.as_tensor(x), k=k).double().mean(0)
    elbo, se = log_w.mean().item(), log_w.std().item() / math.sqrt(log_w.numel())
    value = as_number(rec) - sum(kls)
    if abs(value - elbo) > 4 * se + 0.1:
        return False, (f"rec - sum(kls) = {value:.2f}, but the ELBO is {elbo:.2f} "
                       f"(+- {se:.2f}). Hint: average the trace's log_px and each of its kl "
                       "terms over samples and images.")
    if kls[-1] < -1e-6:
        return False, f"the top layer's KL is {kls[-1]:.3f} < 0: it is a KL to N(0, I)."
    return True, f"rec - sum(kls) = {value:.2f} nats, the ELBO {elbo:.2f} +- {se:.2f}."


@_check("ex-04-3", "`counts`, {threshold: [active units per layer]}")
def activity_counts(counts, model, x):
    """counts maps the thresholds 1e-3, 1e-2, 1e-1 to a list of active units per layer."""
    from .analysis import active_units
    rows = {t: [int(as_number(c)) for c in lookup(counts, t)] for t in (1e-3, 1e-2, 1e-1)}
    widths = list(model.latent)
    for t, row in rows.items():
        if len(row) != len(widths) or any(not 0 <= c <= w for c, w in zip(row, widths)):
            return False, (f"threshold {t:g}: {row} is not one count per layer between 0 and "
                           f"the layer widths {widths}.")
    if any(a < b for a, b in zip(rows[1e-3] + rows[1e-2], rows[1e-2] + rows[1e-1])):
        return False, "a higher threshold can never count more units: check the order."
    expected = active_units(model, torch.as_tensor(x))
    if rows[1e-2] != expected:
        off = [f"z{i + 1} {_off(c, e)}" for i, (c, e) in enumerate(zip(rows[1e-2], expected))
               if c != e]
        return False, (f"at 0.01 some counts differ from lv.active_units ({', '.join(off)}). "
                       "Hint: count the units with lv.unit_activity(...)[i] > threshold.")
    return True, "the counts are consistent and match lv.active_units at 0.01."


@_check("ex-04-4", "`post`, the 2 x 2 posterior covariance of (z1, z2)")
def chain_posterior(post, var_z1: float = 0.5, var_x: float = 0.1):
    """post is the posterior covariance of (z1, z2) given x for the chain of the exercise."""
    # the precision of p(z1, z2 | x): the prior's precision plus x's information about z1
    precision = np.array([[1 / var_z1 + 1 / var_x, -1 / var_z1],
                          [-1 / var_z1, 1 + 1 / var_z1]])
    exact = np.linalg.inv(precision)
    value = np.asarray(torch.as_tensor(post).detach().double().cpu(), dtype=float)
    if value.shape != (2, 2):
        return False, f"expected a 2 x 2 matrix, got shape {value.shape}."
    if not np.allclose(value, exact, atol=1e-4):
        names = ("Var z1", "Cov z1 z2", "Cov z1 z2", "Var z2")
        off = sorted({f"{n} {_off(v, e)}" for n, v, e in zip(names, value.ravel(), exact.ravel())
                      if abs(v - e) > 1e-4})
        return False, (f"not the posterior covariance ({', '.join(off)}). Hint: the joint "
                       "covariance of (z1, z2, x), then Sigma_zz - Sigma_zx Sigma_xx^-1 "
                       "Sigma_xz.")
    corr = exact[0, 1] / math.sqrt(exact[0, 0] * exact[1, 1])
    return True, (f"correlation {corr:.3f}: z1 and z2 stay dependent given x, which a "
                  "factorized q(z1 | x) q(z2 | x) cannot express.")


# Chapter 5: importance weighted bounds

@_check("ex-05-2", "`var_ratio`, the estimate of Var_q[w] / p(x)^2")
def weight_variance(var_ratio, scale: float = 3.0, dim: int = 5):
    """var_ratio estimates Var_q[w] / p(x)^2 for q = N(posterior mean, scale * posterior cov)."""
    # E_q[(p(z|x) / q(z))^2] = (c / sqrt(2c - 1))^d for q with c times the posterior covariance
    exact = (scale / math.sqrt(2 * scale - 1)) ** dim - 1
    value = as_number(var_ratio)
    if abs(value - exact) > 0.25 * exact:
        return False, (f"yours {value:.3f} is {_off(value, exact)}. Hint: w / p(x) = "
                       "exp(log w - log p(x)) has mean 1; take the variance of many such "
                       "ratios (100,000 or more: the ratios are heavy-tailed).")
    return True, f"{value:.3f}, close to the exact {exact:.3f} (c/sqrt(2c-1))^d - 1."


@_check("ex-05-4", "`fractions`, ESS / k at k = 1000 for d = 1, 2, 5, 10, 20")
def ess_by_dimension(fractions, dims=(1, 2, 5, 10, 20), scale: float = 1.5):
    """fractions lists ESS / k at k = 1000, one value per latent dimension d in dims."""
    values = [as_number(v) for v in fractions]
    if len(values) != len(dims):
        return False, f"expected {len(dims)} values (d = {list(dims)}), got {len(values)}."
    if any(not 0 < v <= 1 + 1e-9 for v in values):
        return False, "ESS / k lies in (0, 1]: ESS = (sum w)^2 / sum w^2 is between 1 and k."
    # ESS / k -> 1 / E_q[(w / p(x))^2] = (sqrt(2c - 1) / c)^d as k grows
    expected = [(math.sqrt(2 * scale - 1) / scale) ** d for d in dims]
    misses = [f"d = {d}: yours {v:.3f} is {_off(v, e)}"
              for d, v, e in zip(dims, values, expected) if abs(v - e) > 0.1 * e + 0.02]
    if misses:
        return False, ("; ".join(misses) + ". Hint: use q_var_scale=1.5 and k = 1000, and "
                       "average ESS / k over several x or repeats.")
    return True, "ESS / k falls geometrically with d, as (sqrt(2c - 1) / c)^d predicts."


# Chapter 6: the Ladder VAE

@_check("ex-06-1", "`integrals`, {(mu_hat, var_hat, mu_p, var_p): integral on the grid}")
def normalising_constant(integrals):
    """integrals maps (mu_hat, var_hat, mu_p, var_p) to the integral of the product."""
    if not integrals:
        return False, "integrals is empty: add at least the example (1.5, 0.5, -1.0, 2.0)."
    misses = []
    for params, value in integrals.items():
        mu_hat, var_hat, mu_p, var_p = map(float, params)
        exact = math.exp(torch.distributions.Normal(mu_p, math.sqrt(var_hat + var_p))
                         .log_prob(torch.tensor(mu_hat)).item())
        if not math.isclose(as_number(value), exact, rel_tol=1e-4):
            misses.append(f"{tuple(params)}: yours {as_number(value):.6g}, "
                          f"N(mu_hat; mu_p, var_hat + var_p) = {exact:.6g}")
    if misses:
        return False, ("; ".join(misses) + ". Hint: integrate exp(log N(z; mu_hat, var_hat) "
                       "+ log N(z; mu_p, var_p)) with torch.trapezoid on a wide, fine grid.")
    return True, "each integral equals N(mu_hat; mu_p, var_hat + var_p)."


# Chapter 7: reproducing the papers

@_check("ex-07-1", "`nll_by_k`, {k: test NLL estimate}")
def nll_by_k(nll_by_k, model=None, x=None):
    """nll_by_k maps k (at least 1, 10 and 100) to the estimated test NLL in nats."""
    ks = sorted(int(k) for k in nll_by_k)
    if not {1, 10, 100} <= set(ks):
        return False, f"estimate at least k = 1, 10 and 100 (you have {ks})."
    values = [as_number(nll_by_k[k]) for k in ks]
    if any(not math.isfinite(v) or v <= 0 for v in values):
        return False, "an NLL of binary images is a positive number of nats."
    if any(b > a + 0.1 for a, b in zip(values, values[1:])):
        return False, ("the estimate rises with k somewhere; -L_k falls with k on average. "
                       "Hint: -lv.log_likelihood(model, x, k=k, seed=0).mean() on the same x.")
    if model is not None and x is not None:   # at k = 1 the estimate is minus an ELBO
        torch.manual_seed(0)
        with torch.no_grad():
            neg_elbo = -model.log_weights(torch.as_tensor(x), k=1).double().mean(0)
        se = neg_elbo.std().item() / math.sqrt(neg_elbo.numel())
        if abs(values[0] - neg_elbo.mean().item()) > 4 * se + 0.5:
            return False, (f"at k = 1 yours {values[0]:.2f}, but -ELBO is "
                           f"{neg_elbo.mean().item():.2f} +- {se:.2f}: is it the same x?")
    return True, (f"the estimate falls from {values[0]:.2f} (k = 1) to {values[-1]:.2f} "
                  f"(k = {ks[-1]}) nats, as -L_k must on average.")


# Chapter 8: semi-supervised learning

@_check("ex-ss-2", "`exact_grad`, the gradient of the mean U over x_u with respect to A")
def unlabelled_gradient(exact_grad, x, A, L, eps: float = 1e-6):
    """exact_grad is a (D, C) tensor: the gradient of the mean of U(x) over the rows of x,
    U(x) = sum_y q(y|x) (L(x, y) - log q(y|x)), q = softmax(x @ A), with respect to A."""
    x, A, L = (torch.as_tensor(t, dtype=torch.float64) for t in (x, A, L))
    grad = torch.as_tensor(exact_grad).detach().double()
    if tuple(grad.shape) != tuple(A.shape):
        return False, (f"the gradient has shape {tuple(grad.shape)}; it must have A's, "
                       f"{tuple(A.shape)}.")

    def mean_u(a):   # the definition of U, evaluated; the gradient comes from differences
        log_q = torch.log_softmax(x @ a, -1)
        return float((log_q.exp() * (L - log_q)).sum(-1).mean())

    numeric = torch.zeros_like(A)
    for i in range(A.shape[0]):
        for j in range(A.shape[1]):
            step = torch.zeros_like(A)
            step[i, j] = eps
            numeric[i, j] = (mean_u(A + step) - mean_u(A - step)) / (2 * eps)
    error = float((grad - numeric).norm() / numeric.norm())
    if error > 1e-4:
        return False, (f"yours is {error:.2g} of the gradient's size away from central "
                       "finite differences of the mean U. Hint: U sums over the classes "
                       "q(y|x) (L(x, y) - log q(y|x)); let autograd differentiate that sum, "
                       "with nothing detached, and average over the images.")
    return True, (f"your gradient agrees with finite differences of the mean U "
                  f"(relative difference {error:.1g}).")


CHECKS = {c.exercise: c for c in (
    jensen_gap, elbo_split, diagonal_gap, baseline_variances, cosine_variances,
    laplace_sampler, amortization_gap, units_above, training_loop, elbo_from_pieces,
    activity_counts, chain_posterior, weight_variance, ess_by_dimension, normalising_constant,
    nll_by_k, unlabelled_gradient)}
"""Every check, by the label of its exercise."""
