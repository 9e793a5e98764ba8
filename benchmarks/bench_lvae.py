"""The paper's 5-layer Ladder VAE: lvae_core against a plain PyTorch implementation.

The plain model below is written straight from the equations (upward MLP blocks, Gaussian
heads with softplus variances, a top-down pass with the precision-weighted merge at the
posterior sample, a Bernoulli decoder, the ELBO, Adam), with the same sizes as lvae_core's
``LadderVAE(hidden=(512, 256, 128, 64, 32), latent=(64, 32, 16, 8, 4), batch_norm=True)``.
It is a yardstick: lvae_core should cost no more than the obvious code.

Measured (medians over --repeats), each for eager code and for ``torch.compile``d code
(lvae_core: ``fit(compile=True)``, ``log_likelihood(compile=True)``; plain: ``torch.compile``
of its loss and its log weights; on a GPU the training step runs as CUDA graphs):
* training images per second of a whole training loop (lvae_core: ``fit``) over epochs of
  --train-images images, batch 256, Adam, one ELBO sample, gradient clipping, a fresh
  binarization each epoch;
* evaluation images per second of the importance-sampled log-likelihood with k = 5000,
  chunked over (sample, image) rows in the same way for both;
* projected from those: the 2000-epoch protocol on 60,000 images, and k = 5000 on 10,000
  test images.

    python benchmarks/bench_lvae.py                  # CPU
    python benchmarks/bench_lvae.py --device cuda    # a GPU
"""
from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

import lvae_core as lv
from report import ratio_cell, write_report

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
def plain_log_likelihood(model, x, k, max_rows, log_w=None):
    log_w = log_w or model.log_w
    model.eval()
    b_chunk = max(1, max_rows // k) if k <= max_rows else 1
    k_chunk = min(k, max_rows)
    out = []
    for s in range(0, x.shape[0], b_chunk):
        xb = x[s:s + b_chunk]
        parts = [torch.logsumexp(log_w(xb, min(k_chunk, k - k0)), 0) for k0 in range(0, k, k_chunk)]
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


def plain_fit(model, x, epochs, batch, device, compile):
    """The obvious training loop: data on the device, a fresh binarization and order every
    epoch, Adam on the one-sample ELBO, gradients clipped at norm 100 (as ``fit`` does by
    default). Returns the seconds of each epoch."""
    opt = torch.optim.Adam(model.parameters(), lr=2e-4, fused=device.type == "cuda")
    loss_fn = lambda xb: -model.log_w(xb, 1).mean()
    if compile:
        torch.compiler.reset()
        loss_fn = torch.compile(loss_fn, mode="reduce-overhead" if device.type == "cuda" else None,
                                dynamic=False)
    model.train()
    seconds = []
    for _ in range(epochs):
        sync(device)
        t0 = time.perf_counter()
        xe = torch.bernoulli(x[torch.randperm(len(x), device=device)])
        for s in range(0, len(xe), batch):
            loss = loss_fn(xe[s:s + batch])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 100.0)
            opt.step()
        sync(device)
        seconds.append(time.perf_counter() - t0)
    return seconds


def ours_fit(model, x, epochs, batch, device, compile):
    """lvae_core's own training loop, ``fit``, with the same work: the ELBO (k = 1), Adam
    lr 2e-4, no warm-up, gradient clipping at its default norm of 100."""
    history = lv.fit(model, x, epochs=epochs, batch_size=batch, lr=2e-4, cache=False,
                     progress=False, device=device, compile=compile)
    return history["seconds"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=3,
                   help="timed epochs per training run (after one untimed epoch that compiles)")
    p.add_argument("--train-images", type=int, default=None,
                   help="images per epoch (default: 10,240 on a CPU, 60,000 on a GPU)")
    p.add_argument("--eval-k", type=int, default=5000)
    p.add_argument("--eval-images", type=int, default=None, help="default: 8 on a CPU, 1000 on a GPU")
    p.add_argument("--no-compile", action="store_true", help="eager code only")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice; 1 is far faster on a busy CPU)")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    n_eval = args.eval_images or (1000 if gpu else 8)
    n_train = args.train_images or (60_000 if gpu else 10_240)
    torch.manual_seed(0)
    data = lv.load_dataset("mnist-5k")
    # speed does not depend on the pixels: the 4,000 training images, repeated to n_train
    x_train = data.train_x.repeat(math.ceil(n_train / len(data.train_x)), 1)[:n_train].to(device)
    x_eval = data.test_binary.repeat(math.ceil(n_eval / len(data.test_binary)), 1)[:n_eval].to(device)

    ours = lv.LadderVAE(hidden=HIDDEN, latent=LATENT, batch_norm=True).to(device)
    plain = PlainLVAE().to(device)
    n_ours = sum(p.numel() for p in ours.parameters())
    n_plain = sum(p.numel() for p in plain.parameters())
    assert n_ours == n_plain, (n_ours, n_plain)   # the same network, parameter for parameter
    check_same_math(ours, plain, lv.binarize(x_train[:16].cpu(), seed=0).to(device))

    variants = [("lvae_core", False), ("plain", False)]
    if not args.no_compile:
        variants += [("lvae_core", True), ("plain", True)]
    max_rows = lv.bounds.default_max_rows(device)
    train = {v: [] for v in variants}
    evals = {v: [] for v in variants}
    compile_seconds = {}
    for r in range(args.repeats):
        for name, comp in variants:
            model = ours if name == "lvae_core" else plain
            fit_fn = ours_fit if name == "lvae_core" else plain_fit
            seconds = fit_fn(model, x_train, args.epochs + 1, 256, device, comp)
            if r == 0:
                compile_seconds[name, comp] = seconds[0] - statistics.median(seconds[1:])
            train[name, comp].append(n_train / statistics.median(seconds[1:]))
            if name == "lvae_core":
                run = lambda: lv.log_likelihood(ours, x_eval, k=args.eval_k, seed=r, compile=comp)
            else:
                weights = plain.log_w
                if comp:
                    weights = torch.compile(plain.log_w, dynamic=False)
                run = lambda: plain_log_likelihood(plain, x_eval, args.eval_k, max_rows, weights)
            if comp:   # compiles (again after the fit, which starts torch.compile afresh); not timed
                with torch.inference_mode():
                    run()
            sync(device)
            t0 = time.perf_counter()
            with torch.inference_mode():
                run()
            sync(device)
            evals[name, comp].append(n_eval / (time.perf_counter() - t0))

    machine = torch.cuda.get_device_name(device) if gpu else \
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"
    med = {key: (statistics.median(train[key]), statistics.median(evals[key])) for key in variants}
    fmt = lambda v: f"{v:,.4g}" if v < 1000 else f"{v:,.0f}"
    cell = lambda v: f"{fmt(statistics.median(v))} ({fmt(max(v))})"
    header = "| measurement | " + " | ".join(f"{n} ({'compiled' if c else 'eager'})" for n, c in variants)
    lines = [f"# 5-layer Ladder VAE: lvae_core against plain PyTorch ({device.type})", "",
             f"{machine}, torch {torch.__version__}; {n_ours:,} parameters in both models. "
             f"Training: {n_train:,} images per epoch, batch 256, the one-sample ELBO, Adam, "
             f"gradients clipped at norm 100, a "
             f"fresh binarization and order each epoch; images/s over the median of {args.epochs} "
             f"timed epochs after one untimed epoch (which compiles). Evaluation: k = {args.eval_k} "
             f"on {n_eval} test images, chunked into {max_rows:,} rows. Medians over "
             f"{args.repeats} repeats; the repeats are listed below.", "",
             header + " |", "|---" * (len(variants) + 1) + "|",
             "| training images/s | " + " | ".join(cell(train[v]) for v in variants) + " |",
             "| evaluation images/s | " + " | ".join(cell(evals[v]) for v in variants) + " |", "",
             "| ratio: medians (bests) | training | evaluation |", "|---|---|---|"]
    pairs = [("lvae_core eager / plain eager", ("lvae_core", False), ("plain", False))]
    if not args.no_compile:
        pairs += [("lvae_core compiled / plain eager", ("lvae_core", True), ("plain", False)),
                  ("lvae_core compiled / plain compiled", ("lvae_core", True), ("plain", True))]
    for label, a, b in pairs:
        lines.append(f"| {label} | {ratio_cell(train[a], train[b])} | {ratio_cell(evals[a], evals[b])} |")
    best = max(variants, key=lambda v: med[v][0] if v[0] == "lvae_core" else 0)
    rate, eval_rate = med[best][0], max(med[v][1] for v in variants if v[0] == "lvae_core")
    lines += ["", "Projected from these rates (lvae_core, its faster mode):", "",
              "| quantity | value |", "|---|---|",
              f"| the LVAE protocol, 2000 epochs of 60,000 images | {2000 * 60_000 / rate / 60:,.1f} min |",
              f"| k = 5000 log-likelihood of 10,000 test images | "
              f"{10_000 / eval_rate * 5000 / args.eval_k:,.1f} s |",
              "", "One-time compile cost, seconds (first epoch minus a timed one): " +
              ", ".join(f"{n} {'compiled' if c else 'eager'} {compile_seconds[n, c]:.1f}"
                        for n, c in variants) + ".", "",
              "| repeats | " + " | ".join(f"{n} ({'compiled' if c else 'eager'})" for n, c in variants) + " |",
              "|---" * (len(variants) + 1) + "|",
              "| training images/s | " + " | ".join(", ".join(fmt(v) for v in train[key]) for key in variants) + " |",
              "| evaluation images/s | " + " | ".join(", ".join(fmt(v) for v in evals[key]) for key in variants) + " |"]
    write_report(lines, Path(args.out or Path(__file__).parent / f"results_{device.type}.md"))


if __name__ == "__main__":
    main()
