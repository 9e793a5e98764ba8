"""Closed forms checked against torch.distributions and numerical integration."""

import pytest
import torch
from torch.distributions import Bernoulli, Normal, kl_divergence

import lvae_core as lv
from lvae_core.distributions import VAR_FLOOR, log_bernoulli, log_normal, softplus_variance


def _random_gaussians(n, seed):
    g = torch.Generator().manual_seed(seed)
    mu_q, mu_p = torch.randn(2, n, generator=g, dtype=torch.float64) * 3
    var_q, var_p = torch.rand(2, n, generator=g, dtype=torch.float64) * 5 + 0.01
    return mu_q, var_q, mu_p, var_p


def test_gaussian_kl_matches_torch_distributions():
    mu_q, var_q, mu_p, var_p = _random_gaussians(1000, 1)
    ours = lv.gaussian_kl(mu_q, var_q, mu_p, var_p)
    oracle = kl_divergence(Normal(mu_q, var_q.sqrt()), Normal(mu_p, var_p.sqrt()))
    torch.testing.assert_close(ours, oracle, rtol=1e-10, atol=1e-10)
    assert (ours >= 0).all()


def test_gaussian_kl_is_zero_for_equal_gaussians():
    mu, var = torch.randn(10), torch.rand(10) + 0.1
    torch.testing.assert_close(lv.gaussian_kl(mu, var, mu, var), torch.zeros(10), atol=1e-6, rtol=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_merge_is_the_normalised_product_of_two_gaussian_densities(seed):
    mu_hat, var_hat, mu_p, var_p = (t[:1] for t in _random_gaussians(1, seed))
    grid = torch.linspace(-40, 40, 400001, dtype=torch.float64)
    density = (Normal(mu_hat, var_hat.sqrt()).log_prob(grid) + Normal(mu_p, var_p.sqrt()).log_prob(grid)).exp()
    density = density / torch.trapezoid(density, grid)
    mean = torch.trapezoid(grid * density, grid)
    var = torch.trapezoid((grid - mean) ** 2 * density, grid)
    mu_q, var_q = lv.precision_weighted_merge(mu_hat, var_hat, mu_p, var_p)
    assert mu_q.item() == pytest.approx(mean.item(), abs=1e-6)
    assert var_q.item() == pytest.approx(var.item(), rel=1e-6)
    assert var_q.item() <= min(var_hat.item(), var_p.item())


def test_log_densities_match_torch_distributions():
    mu, var = torch.randn(50, 7), torch.rand(50, 7) + 0.05
    z = torch.randn(50, 7)
    torch.testing.assert_close(log_normal(z, mu, var), Normal(mu, var.sqrt()).log_prob(z))
    logits = torch.randn(50, 7) * 4
    x = torch.bernoulli(torch.full((50, 7), 0.4))
    torch.testing.assert_close(log_bernoulli(x, logits), Bernoulli(logits=logits).log_prob(x))


def test_variance_is_softplus_plus_floor_and_can_go_below_one():
    raw = torch.tensor([-50.0, 0.0, 3.0])
    var = softplus_variance(raw)
    torch.testing.assert_close(var, torch.log1p(torch.exp(raw)) + VAR_FLOOR)
    assert var[0] < 1e-3 and var[1] < 1  # a softplus of a log-variance could never go this low


def test_reparameterized_gradient_matches_closed_form():
    """d/dmu and d/dvar of E[z^2] and of E[sin z] for z ~ N(mu, var)."""
    torch.manual_seed(0)
    mu = torch.tensor([0.7, -1.3], requires_grad=True)
    var = torch.tensor([0.5, 2.0], requires_grad=True)
    z = lv.reparameterize(mu.expand(200000, 2), var.expand(200000, 2))
    # E[z^2] = mu^2 + var; E[sin z] = sin(mu) exp(-var/2)
    (z**2).mean(0).sum().backward()
    torch.testing.assert_close(mu.grad, 2 * mu.detach(), atol=0.02, rtol=0)
    torch.testing.assert_close(var.grad, torch.ones(2), atol=0.02, rtol=0)
    mu.grad = var.grad = None
    z = lv.reparameterize(mu.expand(200000, 2), var.expand(200000, 2))
    torch.sin(z).mean(0).sum().backward()
    m, v = mu.detach(), var.detach()
    torch.testing.assert_close(mu.grad, torch.cos(m) * torch.exp(-v / 2), atol=0.01, rtol=0)
    torch.testing.assert_close(var.grad, -0.5 * torch.sin(m) * torch.exp(-v / 2), atol=0.01, rtol=0)
