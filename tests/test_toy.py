"""LinearGaussian: exact quantities against quadrature and sampling; bounds against log p(x)."""
import math

import pytest
import torch
from torch.distributions import Normal

import lvae_core as lv


def test_log_marginal_and_posterior_against_quadrature():
    toy = lv.LinearGaussian(x_dim=3, z_dim=1, seed=4)
    x, _ = toy.sample(5, seed=1)
    grid = torch.linspace(-12, 12, 200001, dtype=torch.float64)[:, None]      # (G, 1)
    log_joint = (Normal(0.0, 1.0).log_prob(grid[:, 0])[:, None]
                 + Normal(grid @ toy.W.T[None, 0] + toy.b, math.sqrt(toy.noise_var))
                 .log_prob(x[:, None, :]).sum(-1).T)                         # (G, B)
    joint = log_joint.exp()
    marginal = torch.trapezoid(joint, grid[:, 0], dim=0)
    torch.testing.assert_close(toy.log_marginal(x), marginal.log(), rtol=0, atol=1e-8)
    post = joint / marginal
    mean = torch.trapezoid(grid * post, grid[:, 0], dim=0)
    var = torch.trapezoid((grid - mean) ** 2 * post, grid[:, 0], dim=0)
    mu, cov = toy.posterior(x)
    torch.testing.assert_close(mu[:, 0], mean, rtol=0, atol=1e-7)
    torch.testing.assert_close(cov[0, 0].expand(5), var, rtol=1e-6, atol=0)


def test_exact_posterior_weights_equal_log_marginal():
    toy = lv.LinearGaussian(x_dim=6, z_dim=3, q_var_scale=1.0, seed=0)
    x, _ = toy.sample(8, seed=2)
    log_w = toy.log_weights(x, 50)
    assert log_w.shape == (50, 8)
    torch.testing.assert_close(log_w, toy.log_marginal(x).expand(50, 8), rtol=0, atol=1e-8)


def test_bounds_increase_with_k_and_stay_below_log_marginal():
    torch.manual_seed(0)
    toy = lv.LinearGaussian(x_dim=6, z_dim=3, q_var_scale=3.0, seed=0)
    x, _ = toy.sample(200, seed=3)
    exact = toy.log_marginal(x).mean()
    bounds = {k: torch.stack([lv.iwae_bound(toy.log_weights(x, k)) for _ in range(20)]).mean()
              for k in (1, 10, 100)}
    assert bounds[1] < bounds[10] < bounds[100] <= exact + 1e-3
    mean, cov = toy.posterior(x)
    exact_elbo = toy.exact_elbo(x, mean, 3.0 * cov).mean()       # closed form of L_1
    torch.testing.assert_close(bounds[1], exact_elbo, atol=0.1, rtol=0)


def test_k5000_estimate_within_005_nats_of_exact():
    toy = lv.LinearGaussian(x_dim=10, z_dim=4, q_var_scale=2.0, seed=1)
    x, _ = toy.sample(100, seed=4)
    ll = lv.log_likelihood(toy, x, k=5000, seed=0)
    gap = (ll - toy.log_marginal(x)).abs().mean()
    assert gap < 0.05
    elbo_gap = (toy.log_marginal(x) - toy.exact_elbo(x, *toy.posterior(x)[:1], 2.0 * toy.posterior_cov)).mean()
    assert elbo_gap > 0.2   # the proposal is poor: the ELBO alone is far off, L_5000 is not


def test_exact_elbo_and_kl_decompose_log_marginal_and_match_sampling():
    toy = lv.LinearGaussian(x_dim=5, z_dim=2, seed=7)
    x, _ = toy.sample(4, seed=5)
    mu_q = toy.posterior(x)[0] + 0.3
    cov_q = torch.tensor([[0.5, 0.1], [0.1, 0.3]], dtype=torch.float64)
    e = toy.exact_elbo(x, mu_q, cov_q)
    kl = toy.kl_to_posterior(x, mu_q, cov_q)
    torch.testing.assert_close(e + kl, toy.log_marginal(x), rtol=0, atol=1e-9)
    assert (kl > 0).all()
    torch.manual_seed(0)
    mc = toy.log_weights_under(x, 200000, mu_q, cov_q).mean(0)
    torch.testing.assert_close(mc, e, rtol=0, atol=0.03)


@pytest.mark.parametrize("max_rows", [7, 64, 100000])
def test_log_likelihood_chunking_is_exact_with_exact_posterior(max_rows):
    toy = lv.LinearGaussian(x_dim=4, z_dim=2, seed=3)
    x, _ = toy.sample(9, seed=6)
    ll = lv.log_likelihood(toy, x, k=50, max_rows=max_rows)
    torch.testing.assert_close(ll, toy.log_marginal(x), rtol=0, atol=1e-8)
