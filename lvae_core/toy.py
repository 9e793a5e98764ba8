"""A linear-Gaussian latent variable model where everything is exact:

    p(z) = N(0, I),   p(x | z) = N(W z + b, s^2 I)
    p(x) = N(b, W W^T + s^2 I)
    p(z | x) = N(Sigma W^T (x - b) / s^2, Sigma),   Sigma = (I + W^T W / s^2)^{-1}

The book uses it to put every bound beside the true log-likelihood. Computations are
in float64 so that differences of a few hundredths of a nat are visible.
"""
from __future__ import annotations

import math

import torch
from torch.distributions import MultivariateNormal

from .checks import check_data, check_k
from .distributions import LOG_2PI


class LinearGaussian:
    """``LinearGaussian(x_dim, z_dim, q_var_scale=1.0, seed=0, noise_std=0.5)``.

    ``log_weights(x, k)`` samples from the exact posterior with its covariance scaled by
    ``q_var_scale`` (1.0: the exact posterior, so every weight equals p(x)).
    """

    dtype = torch.float64
    device = torch.device("cpu")

    def __init__(self, x_dim: int, z_dim: int, q_var_scale: float = 1.0, seed: int = 0,
                 noise_std: float = 0.5):
        if q_var_scale <= 0:
            raise ValueError(f"q_var_scale must be positive, got {q_var_scale}")
        if noise_std <= 0:
            raise ValueError(f"noise_std must be positive, got {noise_std}")
        g = torch.Generator().manual_seed(seed)
        self.x_dim, self.z_dim = x_dim, z_dim
        self.q_var_scale = float(q_var_scale)
        self.W = torch.randn(x_dim, z_dim, generator=g, dtype=self.dtype) / math.sqrt(z_dim)
        self.b = 0.5 * torch.randn(x_dim, generator=g, dtype=self.dtype)
        self.noise_var = float(noise_std) ** 2
        precision = torch.eye(z_dim, dtype=self.dtype) + self.W.T @ self.W / self.noise_var
        self.posterior_cov = torch.linalg.inv(precision)
        self.posterior_cov = 0.5 * (self.posterior_cov + self.posterior_cov.T)

    # -- exact quantities -----------------------------------------------------------
    def check(self, x) -> torch.Tensor:
        return check_data(x, self.x_dim, binary=False).to(self.dtype)

    def log_marginal(self, x: torch.Tensor) -> torch.Tensor:
        """Exact log p(x), (B,)."""
        cov = self.W @ self.W.T + self.noise_var * torch.eye(self.x_dim, dtype=self.dtype)
        return MultivariateNormal(self.b, covariance_matrix=cov).log_prob(self.check(x))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Exact p(z | x): mean (B, z_dim) and the covariance (z_dim, z_dim), shared by all x."""
        x = self.check(x)
        mean = (x - self.b) @ self.W @ self.posterior_cov / self.noise_var
        return mean, self.posterior_cov

    def sample(self, n: int, seed: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, z) with z ~ p(z), x ~ p(x | z); shapes (n, x_dim), (n, z_dim)."""
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        z = torch.randn(n, self.z_dim, generator=g, dtype=self.dtype)
        eps = torch.randn(n, self.x_dim, generator=g, dtype=self.dtype)
        return z @ self.W.T + self.b + math.sqrt(self.noise_var) * eps, z

    def log_joint(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x, z) = log N(z; 0, I) + log N(x; W z + b, s^2 I); z (..., B, z_dim) ->
        (..., B)."""
        log_pz = -0.5 * (LOG_2PI + z**2).sum(-1)
        resid = x - (z @ self.W.T + self.b)
        log_px_z = -0.5 * (self.x_dim * (LOG_2PI + math.log(self.noise_var))
                           + (resid**2).sum(-1) / self.noise_var)
        return log_pz + log_px_z

    # -- bounds with any Gaussian proposal ------------------------------------------
    def log_weights(self, x: torch.Tensor, k: int = 1, *, check: bool = True) -> torch.Tensor:
        """(k, B) log weights with q = N(posterior mean, q_var_scale * posterior covariance)."""
        mean, cov = self.posterior(x)
        return self.log_weights_under(x, k, mean, self.q_var_scale * cov)

    def log_weights_under(self, x, k: int, mu_q: torch.Tensor, cov_q: torch.Tensor) -> torch.Tensor:
        """(k, B) log p(x, z) - log q(z) for z ~ q = N(mu_q, cov_q); mu_q (B, z_dim) or (z_dim,)."""
        k, x = check_k(k), self.check(x)
        mean = torch.as_tensor(mu_q, dtype=self.dtype).expand(x.shape[0], self.z_dim)
        q = MultivariateNormal(mean,
                               covariance_matrix=torch.as_tensor(cov_q, dtype=self.dtype))
        z = q.sample((k,))
        return self.log_joint(x, z) - q.log_prob(z)

    def exact_elbo(self, x, mu_q, cov_q) -> torch.Tensor:
        """E_q[log p(x, z)] + H[q] in closed form for q = N(mu_q, cov_q), (B,)."""
        x = self.check(x)
        mu_q = torch.as_tensor(mu_q, dtype=self.dtype).expand(x.shape[0], self.z_dim)
        cov_q = torch.as_tensor(cov_q, dtype=self.dtype)
        resid = x - mu_q @ self.W.T - self.b
        e_log_px_z = -0.5 * (self.x_dim * (LOG_2PI + math.log(self.noise_var))
                             + ((resid**2).sum(-1) + torch.trace(self.W @ cov_q @ self.W.T))
                             / self.noise_var)
        e_log_pz = -0.5 * (self.z_dim * LOG_2PI + (mu_q**2).sum(-1) + torch.trace(cov_q))
        entropy = 0.5 * (self.z_dim * (1 + LOG_2PI) + torch.logdet(cov_q))
        return e_log_px_z + e_log_pz + entropy

    def kl_to_posterior(self, x, mu_q, cov_q) -> torch.Tensor:
        """KL(q || p(z | x)) in closed form, (B,)."""
        mean, cov = self.posterior(x)
        mu_q = torch.as_tensor(mu_q, dtype=self.dtype).expand_as(mean)
        cov_q = torch.as_tensor(cov_q, dtype=self.dtype)
        precision = torch.linalg.inv(cov)
        diff = mean - mu_q
        return 0.5 * (torch.trace(precision @ cov_q) + ((diff @ precision) * diff).sum(-1)
                      - self.z_dim + torch.logdet(cov) - torch.logdet(cov_q))
