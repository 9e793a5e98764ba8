"""The paper's 5-layer Ladder VAE: lvae_core against a plain PyTorch implementation.

The plain model below is written straight from the equations (upward MLP blocks, Gaussian
heads with softplus variances, a top-down pass with the precision-weighted merge at the
posterior sample, a Bernoulli decoder, the ELBO, Adam), with the same sizes as lvae_core's
``LadderVAE(hidden=(512, 256, 128, 64, 32), latent=(64, 32, 16, 8, 4), batch_norm=True)``.
It is a yardstick: lvae_core should cost no more than the obvious code.

Measured (medians over --repeats, after warm-up):
* training images per second (batch 256, Adam, one ELBO sample);
* evaluation images per second of the importance-sampled log-likelihood with k = 5000,
  chunked over (sample, image) rows in the same way for both.

    python benchmarks/bench_lvae.py                  # CPU
    python benchmarks/bench_lvae.py --device cuda    # a GPU
"""
from __future__ import annotations

import argparse
import math
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import lvae_core as lv
from report import comparison_row, write_report

HIDDEN, LATENT = (512, 256, 128, 64, 32), (64, 32, 16, 8, 4)
LOG_2PI = math.log(2 * math.pi)


def block(d_in, width):
    return nn.Sequential(nn.Linear(d_in, width), nn.BatchNorm1d(width), nn.LeakyReLU(),
                         nn.Linear(width, width), nn.BatchNorm1d(width), nn.LeakyReLU())


def gauss(head, h):
    mu, raw = head(h).chunk(2, dim=-1)
    return mu, F.softplus(raw) + 1e-4


def log_n(z, mu, var):
    return -0.5 * (LOG_2PI + var.log() + (z - mu) ** 2 / var)


class PlainLVAE(nn.Module):
    def __init__(self, x_dim=784, hidden=HIDDEN, latent=LATENT):
        super().__init__()
        L = len(latent)
        self.up = nn.ModuleList(block(d, h) for d, h in zip((x_dim, *hidden[:-1]), hidden))
        self.up_heads = nn.ModuleList(nn.Linear(h, 2 * z) for h, z in zip(hidden, latent))
        self.down = nn.ModuleList(block(latent[i + 1], hidden[i + 1]) for i in range(L - 1))
        self.down_heads = nn.ModuleList(nn.Linear(hidden[i + 1], 2 * latent[i]) for i in range(L - 1))
        self.decoder = nn.Sequential(block(latent[0], hidden[0]), nn.Linear(hidden[0], x_dim))

    def log_w(self, x, k=1):
        """log p(x, z) - log q(z | x) for k samples: (k, B)."""
        b = x.shape[0]
        d, hats = x, []
        for blk, head in zip(self.up, self.up_heads):
            d = blk(d)
            hats.append([t.repeat(k, 1) for t in gauss(head, d)])
        mu, var = hats[-1]
        z = mu + var.sqrt() * torch.randn_like(mu)
        log_w = (-0.5 * (LOG_2PI + z**2) - log_n(z, mu, var)).sum(-1)   # log p(z_L) - log q(z_L|x)
        for i in reversed(range(len(hats) - 1)):
            mu_p, var_p = gauss(self.down_heads[i], self.down[i](z))
            mu_h, var_h = hats[i]
            var_q = 1 / (1 / var_h + 1 / var_p)
            mu_q = (mu_h / var_h + mu_p / var_p) * var_q
            z = mu_q + var_q.sqrt() * torch.randn_like(mu_q)
            log_w = log_w + (log_n(z, mu_p, var_p) - log_n(z, mu_q, var_q)).sum(-1)
        logits = self.decoder(z)
        x_rep = x.repeat(k, 1)
        log_px = (x_rep * logits - F.softplus(logits)).sum(-1)
        return (log_px + log_w).view(k, b)


@torch.inference_mode()
def plain_log_likelihood(model, x, k, max_rows):
    model.eval()
    b_chunk = max(1, max_rows // k) if k <= max_rows else 1
    k_chunk = min(k, max_rows)
    out = []
    for s in range(0, x.shape[0], b_chunk):
        xb = x[s:s + b_chunk]
        parts = [torch.logsumexp(model.log_w(xb, min(k_chunk, k - k0)), 0) for k0 in range(0, k, k_chunk)]
        out.append(torch.logsumexp(torch.stack(parts), 0) - math.log(k))
    return torch.cat(out)


def check_same_math(ours, plain, x):
    """Copy lvae_core's parameters into the plain model and compare log w on the same noise."""
    copy = {}
    for i in range(len(LATENT)):
        copy[plain.up[i]] = ours.inference.up[i]
        copy[plain.up_heads[i]] = ours.inference.heads[i].linear
    for i in range(len(LATENT) - 1):
        copy[plain.down[i]] = ours.generative.top_down[i][0]
        copy[plain.down_heads[i]] = ours.generative.top_down[i][1].linear
    copy[plain.decoder] = ours.generative.decoder
    with torch.no_grad():
        for dst, src in copy.items():
            dst.load_state_dict(src.state_dict())
    ours.eval(), plain.eval()
    torch.manual_seed(1)
    a = ours.log_weights(x, 3)
    torch.manual_seed(1)
    b = plain.log_w(x, 3)
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-2), (a - b).abs().max()
    for m in (ours, plain):  # start the timing from fresh parameters again
        for mod in m.modules():
            if hasattr(mod, "reset_parameters"):
                mod.reset_parameters()


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_rate(step, x, steps, device):
    for _ in range(3):
        step(x)  # warm-up
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        step(x)
    sync(device)
    return steps * x.shape[0] / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=20, help="training steps per timed repeat")
    p.add_argument("--eval-k", type=int, default=5000)
    p.add_argument("--eval-images", type=int, default=None, help="default: 8 on a CPU, 256 on a GPU")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice; 1 is far faster on a busy CPU)")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    n_eval = args.eval_images or (256 if device.type == "cuda" else 8)
    torch.manual_seed(0)
    data = lv.load_dataset("mnist-5k")
    x = lv.binarize(data.train_x[:256], seed=0).to(device)
    x_eval = data.test_binary[:n_eval].to(device)

    ours = lv.LadderVAE(hidden=HIDDEN, latent=LATENT, batch_norm=True).to(device)
    plain = PlainLVAE().to(device)
    n_ours = sum(p.numel() for p in ours.parameters())
    n_plain = sum(p.numel() for p in plain.parameters())
    assert n_ours == n_plain, (n_ours, n_plain)   # the same network, parameter for parameter

    check_same_math(ours, plain, x[:16])
    opt_ours = torch.optim.Adam(ours.parameters(), lr=2e-4)
    opt_plain = torch.optim.Adam(plain.parameters(), lr=2e-4)

    def step_ours(xb):
        ours.train()
        loss = -lv.elbo(ours.log_weights(xb, 1, check=False)).mean()
        opt_ours.zero_grad(set_to_none=True)
        loss.backward()
        opt_ours.step()

    def step_plain(xb):
        plain.train()
        loss = -plain.log_w(xb, 1).mean()
        opt_plain.zero_grad(set_to_none=True)
        loss.backward()
        opt_plain.step()

    max_rows = lv.bounds.default_max_rows(device)
    results = {"train": ([], []), "eval": ([], [])}
    for _ in range(args.repeats):
        results["train"][0].append(train_rate(step_ours, x, args.steps, device))
        results["train"][1].append(train_rate(step_plain, x, args.steps, device))
        for fn, out in ((lambda: lv.log_likelihood(ours, x_eval, k=args.eval_k, seed=0), results["eval"][0]),
                        (lambda: plain_log_likelihood(plain, x_eval, args.eval_k, max_rows), results["eval"][1])):
            sync(device)
            t0 = time.perf_counter()
            fn()
            sync(device)
            out.append(n_eval / (time.perf_counter() - t0))

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else \
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"
    lines = [f"# 5-layer Ladder VAE: lvae_core against plain PyTorch ({device.type})", "",
             f"{name}, torch {torch.__version__}; {n_ours:,} parameters in both models. "
             f"Medians over {args.repeats} repeats (after 3 warm-up steps); every repeat is listed. "
             "The CPU is shared with other processes, so single numbers are noisy.", "",
             "| measurement | lvae_core | plain PyTorch | ratio (lvae_core / plain) | repeats lvae_core | repeats plain |",
             "|---|---|---|---|---|---|"]
    labels = {"train": f"training images/s (batch 256, {args.steps} steps)",
              "eval": f"log-likelihood images/s (k={args.eval_k}, {n_eval} images)"}
    for key, (a, b) in results.items():
        lines.append(comparison_row(labels[key], a, b))
    write_report(lines, Path(args.out or Path(__file__).parent / f"results_{device.type}.md"))


if __name__ == "__main__":
    main()
