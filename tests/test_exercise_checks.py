"""The exercise checks accept a right answer, reject a wrong one, and never raise.

Right answers are computed here as a student would (sampling, an optimiser, a formula);
the checks compute their expected values another way."""
import math

import numpy as np
import pytest
import torch

import lvae_core as lv
from lvae_core import exercise_checks as checks


def _status(feedback):
    assert isinstance(feedback, checks.Feedback)
    return feedback.status


def test_every_check_reports_not_attempted_for_an_untouched_cell():
    for label, check in checks.CHECKS.items():
        assert _status(check(...)) == "not attempted", label
        assert _status(check(None)) == "not attempted", label
        assert not check(...)
    assert _status(checks.elbo_from_pieces(1.0, ..., None, None)) == "not attempted"


@pytest.mark.parametrize("garbage", ["a string", 3.0, [1, 2], {"x": 1}, object()])
def test_a_malformed_answer_is_wrong_not_an_error(garbage):
    lg = lv.LinearGaussian(x_dim=1, z_dim=2, seed=6, noise_std=0.5)
    x, _ = lg.sample(1, seed=0)
    post = lg.posterior(x)
    model = lv.VAE(x_dim=12, hidden=(8,), latent=(3,))
    calls = [checks.jensen_gap(garbage), checks.diagonal_gap(garbage, post[1]),
             checks.elbo_split(garbage, lg.log_marginal(x), post, post),
             checks.baseline_variances(garbage), checks.cosine_variances(garbage),
             checks.laplace_sampler(garbage), checks.chain_posterior(garbage),
             checks.weight_variance(garbage), checks.ess_by_dimension(garbage),
             checks.normalising_constant(garbage), checks.nll_by_k(garbage),
             checks.units_above(garbage, model, torch.zeros(4, 12)),
             checks.amortization_gap(garbage, model, torch.zeros(4, 12)),
             checks.training_loop(garbage, torch.zeros(4, 12)),
             checks.unlabelled_gradient(garbage, torch.zeros(3, 2), torch.zeros(2, 3),
                                        torch.zeros(3, 3))]
    for feedback in calls:
        assert feedback.status in ("wrong", "correct"), feedback
    assert _status(checks.jensen_gap(garbage)) == "wrong"
    assert "Feedback" not in repr(calls[0]) and calls[0].exercise in repr(calls[0])


def test_jensen_gap():
    gen = torch.Generator().manual_seed(1)
    gaps = {}
    for s in (0.5, 1, 2):
        X = 0.3 + s * torch.randn(400_000, generator=gen, dtype=torch.float64)
        gaps[s] = torch.logsumexp(X, 0) - math.log(len(X)) - X.mean()
    assert checks.jensen_gap(gaps)
    assert _status(checks.jensen_gap({s: s**2 for s in (0.5, 1, 2)})) == "wrong"
    assert "s = 0.5" in checks.jensen_gap({0.5: 0.5, 1: 0.5, 2: 2.0}).message


@pytest.fixture(scope="module")
def linear_gaussian():
    lg = lv.LinearGaussian(x_dim=1, z_dim=2, seed=6, noise_std=0.5)
    x, _ = lg.sample(1, seed=0)
    return lg, x, lg.log_marginal(x), lg.posterior(x)


def test_elbo_split(linear_gaussian):
    lg, x, log_px, (post_mean, post_cov) = linear_gaussian
    mu_q, cov_q = post_mean + torch.tensor([0.5, -0.5], dtype=torch.float64), 2 * post_cov
    q = torch.distributions.MultivariateNormal(mu_q.reshape(-1), covariance_matrix=cov_q)
    prior = torch.distributions.MultivariateNormal(torch.zeros(2, dtype=torch.float64),
                                                   torch.eye(2, dtype=torch.float64))
    z = q.sample((200_000,))
    right = ((lg.log_joint(x, z) - prior.log_prob(z)).mean()
             - torch.distributions.kl_divergence(q, prior))
    args = log_px, (mu_q, cov_q), (post_mean, post_cov)
    assert checks.elbo_split(right, *args)
    plus_kl = right + 2 * torch.distributions.kl_divergence(q, prior)
    assert _status(checks.elbo_split(plus_kl, *args)) == "wrong"
    assert _status(checks.elbo_split(right - 0.5, *args)) == "wrong"


def test_diagonal_gap(linear_gaussian):
    lg, x, log_px, (post_mean, post_cov) = linear_gaussian
    m = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    log_v = torch.zeros(2, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.Adam([m, log_v], lr=0.05)
    for _ in range(1500):
        opt.zero_grad()
        loss = -lg.exact_elbo(x, m, torch.diag(log_v.exp())).sum()
        loss.backward()
        opt.step()
    gap = log_px.item() + loss.item()
    assert checks.diagonal_gap(gap, post_cov)
    assert _status(checks.diagonal_gap(gap + 0.05, post_cov)) == "wrong"
    assert _status(checks.diagonal_gap(-gap, post_cov)) == "wrong"


def test_baseline_and_cosine_variances():
    eps = torch.randn(400_000, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    mu, sigma = 1.5, 1.0
    z = mu + sigma * eps
    right = {"no baseline": (z**2 * (z - mu)).var(), "pathwise": (2 * z).var(),
             "baseline": ((z**2 - mu**2 - sigma**2) * (z - mu)).var()}
    assert checks.baseline_variances(right, mu, sigma)
    swapped = {**right, "baseline": right["no baseline"], "no baseline": right["baseline"]}
    assert _status(checks.baseline_variances(swapped, mu, sigma)) == "wrong"
    z = 0.3 + eps
    right = {w: {"pathwise": (-w * torch.sin(w * z)).var(),
                 "score": (torch.cos(w * z) * (z - 0.3)).var()} for w in (0.5, 2, 8)}
    assert checks.cosine_variances(right, mu=0.3, sigma=1.0)
    wrong = {**right, 8: {"pathwise": (torch.sin(8 * z)).var(), "score": right[8]["score"]}}
    assert _status(checks.cosine_variances(wrong, mu=0.3, sigma=1.0)) == "wrong"


def test_laplace_sampler():
    inverse_cdf = lambda u, mu, b: torch.where(u < 0.5, mu + b * torch.log(2 * u),
                                               mu - b * torch.log(2 - 2 * u))
    assert checks.laplace_sampler(inverse_cdf)
    assert checks.laplace_sampler(inverse_cdf, mu=-2.0, b=3.0)
    # the right law, but not an inverse CDF: not increasing in u
    mirrored = lambda u, mu, b: inverse_cdf(torch.remainder(u + 0.5, 1.0), mu, b)
    assert "increase" in checks.laplace_sampler(mirrored).message
    gaussian = lambda u, mu, b: mu + b * torch.special.ndtri(u)
    assert "KS" in checks.laplace_sampler(gaussian).message
    detached = lambda u, mu, b: inverse_cdf(u, mu.item(), b.item())
    assert "gradient" in checks.laplace_sampler(detached).message


def test_chain_posterior():
    A = np.array([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    S = A @ np.diag([0.5, 1.0, 0.1]) @ A.T
    right = S[:2, :2] - np.outer(S[:2, 2], S[2, :2]) / S[2, 2]
    assert checks.chain_posterior(right)
    assert checks.chain_posterior(torch.tensor(right))
    assert _status(checks.chain_posterior(S[:2, :2])) == "wrong"   # the prior covariance
    assert _status(checks.chain_posterior(np.diag(np.diag(right)))) == "wrong"


def test_weight_variance_and_ess():
    toy = lv.LinearGaussian(x_dim=10, z_dim=5, seed=0)
    x, _ = toy.sample(1, seed=1)
    mean, cov = toy.posterior(x)
    torch.manual_seed(3)
    ratio = torch.exp(toy.log_weights_under(x, 200_000, mean, 3 * cov)[:, 0]
                      - toy.log_marginal(x))
    assert checks.weight_variance(ratio.var(), scale=3.0, dim=5)
    assert _status(checks.weight_variance(ratio.var().sqrt(), scale=3.0, dim=5)) == "wrong"
    fractions = []
    for d in (1, 2, 5, 10, 20):
        toy_d = lv.LinearGaussian(x_dim=2 * d, z_dim=d, q_var_scale=1.5, seed=0)
        x_d, _ = toy_d.sample(1, seed=1)
        w = torch.softmax(toy_d.log_weights(x_d.expand(20, -1), 1000), 0)
        fractions.append((1 / (w**2).sum(0)).mean().item() / 1000)
    assert checks.ess_by_dimension(fractions)
    assert _status(checks.ess_by_dimension([1.0] * 5)) == "wrong"
    assert _status(checks.ess_by_dimension([f * 1000 for f in fractions])) == "wrong"


def test_normalising_constant():
    grid = torch.linspace(-12, 12, 48001, dtype=torch.float64)
    density = lambda m, v: torch.exp(-(grid - m) ** 2 / (2 * v)) / math.sqrt(2 * math.pi * v)
    right = {p: torch.trapezoid(density(p[0], p[1]) * density(p[2], p[3]), grid)
             for p in ((1.5, 0.5, -1.0, 2.0), (0.3, 3.0, 0.1, 0.2))}
    assert checks.normalising_constant(right)
    wrong = {**right, (1.5, 0.5, -1.0, 2.0): 2 * right[(1.5, 0.5, -1.0, 2.0)]}
    assert _status(checks.normalising_constant(wrong)) == "wrong"
    assert _status(checks.normalising_constant({})) == "wrong"


@pytest.fixture(scope="module")
def small_data():
    torch.manual_seed(0)
    return (torch.rand(300, 20) < torch.linspace(0.1, 0.9, 20)).float()


@pytest.fixture(scope="module")
def small_vae(small_data):
    torch.manual_seed(0)
    model = lv.VAE(x_dim=20, hidden=(16,), latent=(6,))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(100):
        opt.zero_grad()
        (-lv.elbo(model.log_weights(small_data, k=1)).mean()).backward()
        opt.step()
    return model.eval()


def test_amortization_gap(small_vae, small_data):
    x = small_data[:40]
    with torch.no_grad():
        layer = small_vae.trace(x, 1).layers[0]
    mu = layer.mu_q[0].clone().requires_grad_()
    log_var = layer.var_q[0].log().clone().requires_grad_()
    opt = torch.optim.Adam([mu, log_var], lr=5e-2)
    small_vae.requires_grad_(False)
    for _ in range(100):
        z = lv.reparameterize(mu.expand(10, -1, -1), log_var.exp().expand(10, -1, -1))
        kl = lv.gaussian_kl(mu, log_var.exp(), torch.zeros_like(mu), torch.ones_like(mu))
        loss = -(small_vae.generative.log_px(x, z).mean(0) - kl.sum(-1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    small_vae.requires_grad_(True)
    assert checks.amortization_gap((mu, log_var.exp()), small_vae, x)
    # the encoder's own q gains nothing; a q far from it loses
    assert _status(checks.amortization_gap((layer.mu_q[0], layer.var_q[0]), small_vae, x)) == "wrong"
    assert _status(checks.amortization_gap((mu + 3, log_var.exp()), small_vae, x)) == "wrong"
    assert _status(checks.amortization_gap((mu, -log_var.exp()), small_vae, x)) == "wrong"


def test_units_above(small_vae, small_data):
    kl = lv.kl_per_unit(small_vae, small_data)[0]
    right = int((kl > 0.01).sum())
    assert checks.units_above(right, small_vae, small_data)
    assert _status(checks.units_above(right + 3, small_vae, small_data)) == "wrong"


def _loop(mistake=None, kl_form="closed"):
    """A student's VAE training loop (Adam, batches of 100), with one mistake or none."""
    def train_vae(encoder, decoder, images, epochs):
        optimizer = torch.optim.Adam([*encoder.parameters(), *decoder.parameters()], lr=1e-3)
        elbos = []
        for _ in range(epochs):
            total = 0.0
            for x in images[torch.randperm(len(images))].split(100):
                mu, var = encoder(x)
                z = mu + var.sqrt() * torch.randn_like(mu)
                if mistake == "no reparameterization":
                    z = z.detach()
                logits = decoder(z)
                rec = torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)
                if kl_form == "closed":
                    kl = 0.5 * (var + mu**2 - 1 - var.log()).sum(-1)
                else:   # log q(z|x) - log p(z) at the sample
                    kl = 0.5 * (z**2 - var.log() - (z - mu) ** 2 / var).sum(-1)
                elbo = rec + kl if mistake == "KL added" else rec - kl
                optimizer.zero_grad()
                (-elbo.mean()).backward()
                optimizer.step()
                total += elbo.sum().item()
            elbos.append(-total / len(images) if mistake == "loss returned"
                         else total / len(images))
        return elbos
    return train_vae


def test_training_loop(mnist5k):
    images = mnist5k.train_x
    assert checks.training_loop(_loop(), images)
    assert checks.training_loop(_loop(kl_form="sampled"), images, seed=1)
    collapsed = checks.training_loop(_loop("no reparameterization"), images)
    assert _status(collapsed) == "wrong" and "collapsed" in collapsed.message
    flipped = checks.training_loop(_loop("KL added"), images)
    assert _status(flipped) == "wrong" and "minus the KL" in flipped.message
    loss = checks.training_loop(_loop("loss returned"), images)
    assert _status(loss) == "wrong" and "not the loss" in loss.message
    short = checks.training_loop(lambda enc, dec, x, epochs: [-200.0] * (epochs - 1), images)
    assert _status(short) == "wrong" and "expected 5" in short.message
    untrained = checks.training_loop(lambda enc, dec, x, epochs: [-200.0] * epochs, images)
    assert _status(untrained) == "wrong" and "Adam" in untrained.message


@pytest.fixture(scope="module")
def small_hierarchy(small_data):
    torch.manual_seed(0)
    model = lv.HierarchicalVAE(x_dim=20, hidden=(16, 8), latent=(4, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(50):
        opt.zero_grad()
        (-lv.elbo(model.log_weights(small_data, k=1)).mean()).backward()
        opt.step()
    return model.eval()


def test_elbo_from_pieces(small_hierarchy, small_data):
    with torch.no_grad():
        tr = small_hierarchy.trace(small_data, k=10)
    rec, kls = tr.log_px.mean().item(), [t.mean().item() for t in tr.kl]
    assert checks.elbo_from_pieces(rec, kls, small_hierarchy, small_data)
    assert _status(checks.elbo_from_pieces(rec, kls[:1], small_hierarchy, small_data)) == "wrong"
    wrong = checks.elbo_from_pieces(rec, [kl + 1 for kl in kls], small_hierarchy, small_data)
    assert _status(wrong) == "wrong"


def test_activity_counts(small_hierarchy, small_data):
    activity = lv.unit_activity(small_hierarchy, small_data)
    right = {t: [int((a > t).sum()) for a in activity] for t in (1e-3, 1e-2, 1e-1)}
    assert checks.activity_counts(right, small_hierarchy, small_data)
    reversed_order = {1e-3: right[1e-1], 1e-2: right[1e-2], 1e-1: right[1e-3]}
    if right[1e-3] != right[1e-1]:
        assert _status(checks.activity_counts(reversed_order, small_hierarchy,
                                              small_data)) == "wrong"
    too_many = {t: [w + 1 for w in small_hierarchy.latent] for t in right}
    assert _status(checks.activity_counts(too_many, small_hierarchy, small_data)) == "wrong"


def test_nll_by_k(small_hierarchy, small_data):
    x = small_data[:100]
    right = {k: -lv.log_likelihood(small_hierarchy, x, k=k, seed=0).mean().item()
             for k in (1, 10, 100)}
    assert checks.nll_by_k(right, small_hierarchy, x)
    assert checks.nll_by_k(right)
    rising = {k: right[1] + math.log(k) for k in right}
    assert _status(checks.nll_by_k(rising)) == "wrong"
    assert _status(checks.nll_by_k({k: v + 5 for k, v in right.items()},
                                   small_hierarchy, x)) == "wrong"
    assert _status(checks.nll_by_k({1: 3.0, 10: 2.0})) == "wrong"


def test_unlabelled_gradient():
    """Against an analytic gradient: dU/da_c = q_c (L_c - log q_c - U) per image (the
    chapter's Exercise 8.1), chained through the logits x @ A."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 4, generator=g, dtype=torch.float64)
    A = torch.randn(4, 3, generator=g, dtype=torch.float64)
    L = torch.randn(50, 3, generator=g, dtype=torch.float64) - 5
    log_q = torch.log_softmax(x @ A, -1)
    q = log_q.exp()
    U = (q * (L - log_q)).sum(-1, keepdim=True)
    right = x.T @ (q * (L - log_q - U)) / len(x)
    assert checks.unlabelled_gradient(right, x, A, L)
    # dropping the gradient through q's weights leaves only the entropy's: wrong
    entropy_only = x.T @ (q * (-log_q - (-(q * log_q).sum(-1, keepdim=True)))) / len(x)
    assert _status(checks.unlabelled_gradient(entropy_only, x, A, L)) == "wrong"
    assert _status(checks.unlabelled_gradient(right * 50, x, A, L)) == "wrong"   # a sum
    assert _status(checks.unlabelled_gradient(right.T, x, A, L)) == "wrong"      # shape
