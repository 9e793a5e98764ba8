"""lvae_core against a plain PyTorch implementation of the same model: the Ladder VAE
paper's 5-layer LVAE (``--model lvae``, batch 256) or the IWAE paper's one-layer VAE
(``--model vae``: 784-200-200-50, tanh, no batch norm, batch 100).

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
    python benchmarks/bench_lvae.py --model vae --no-compile --baseline /tmp/old

``--baseline DIR``: also time ``fit`` of another checkout's ``lvae_core`` (``DIR/lvae_core``,
imported under another name), interleaved with the others in the same repeats: a before /
after comparison on the same machine at the same time.
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from report import ratio_cell, write_report
from torch import nn

import lvae_core as lv

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


class PlainVAE(nn.Module):
    """The IWAE paper's one-layer VAE (Burda et al., 2016): 784-200-200 tanh to 50 Gaussian
    units and back, written out."""

    def __init__(self, x_dim=784, hidden=200, latent=50):
        super().__init__()
        act = nn.Tanh
        self.enc = nn.Sequential(nn.Linear(x_dim, hidden), act(), nn.Linear(hidden, hidden), act())
        self.head = nn.Linear(hidden, 2 * latent)
        self.dec = nn.Sequential(nn.Sequential(nn.Linear(latent, hidden), act(),
                                               nn.Linear(hidden, hidden), act()),
                                 nn.Linear(hidden, x_dim))

    def log_w(self, x, k=1):
        b = x.shape[0]
        mu, var = gauss(self.head, self.enc(x))
        mu, var = mu.repeat(k, 1), var.repeat(k, 1)
        z = mu + var.sqrt() * torch.randn_like(mu)
        log_w = (-0.5 * (LOG_2PI + z**2) - log_n(z, mu, var)).sum(-1)   # log p(z) - log q(z|x)
        logits = self.dec(z)
        x_rep = x.repeat(k, 1)
        return ((x_rep * logits - F.softplus(logits)).sum(-1) + log_w).view(k, b)


MODELS = {
    "lvae": dict(batch=256, lr=2e-4, plain=PlainLVAE,
                 ours=lambda lib: lib.LadderVAE(hidden=HIDDEN, latent=LATENT, batch_norm=True),
                 title="5-layer Ladder VAE"),
    "vae": dict(batch=100, lr=1e-3, plain=PlainVAE,
                ours=lambda lib: lib.VAE(hidden=(200,), latent=(50,), activation="tanh",
                                         batch_norm=False),
                title="one-layer VAE (784-200-200-50, tanh)"),
}


def load_baseline(folder):
    """``folder/lvae_core`` imported as the package ``lvae_core_baseline``."""
    init = Path(folder) / "lvae_core" / "__init__.py"
    spec = importlib.util.spec_from_file_location("lvae_core_baseline", init,
                                                  submodule_search_locations=[str(init.parent)])
    module = importlib.util.module_from_spec(spec)
    import sys
    sys.modules["lvae_core_baseline"] = module
    spec.loader.exec_module(module)
    return module


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
    if isinstance(plain, PlainVAE):
        block = ours.inference.layers[0]
        copy = {plain.enc: block[0], plain.head: block[1].linear, plain.dec: ours.generative.decoder}
        for dst, src in copy.items():
            dst.load_state_dict(src.state_dict())
        return _compare(ours, plain, x)
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
    return _compare(ours, plain, x)


def _compare(ours, plain, x):
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


def plain_fit(model, x, epochs, batch, device, compile, lr, fused=None):
    """The obvious training loop: data on the device, a fresh binarization and order every
    epoch, Adam (PyTorch's default implementation; ``fused`` to ask for the fused one) on
    the one-sample ELBO, gradients clipped at norm 100 (as ``fit`` does by default).
    Returns the seconds of each epoch."""
    fused = device.type == "cuda" if fused is None else fused
    opt = torch.optim.Adam(model.parameters(), lr=lr, fused=fused)
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


def ours_fit(model, x, epochs, batch, device, compile, lr, lib=lv):
    """lvae_core's own training loop, ``fit``, with the same work: the ELBO (k = 1), Adam,
    no warm-up, gradient clipping at its default norm of 100. ``lib``: this checkout's
    ``lvae_core``, or a baseline's (whose ``fit`` may take the settings as keywords)."""
    if hasattr(lib, "TrainConfig"):
        config = lib.TrainConfig(epochs=epochs, batch_size=batch, lr=lr, compiled=compile)
        history = lib.fit(model, x, config, cache=False, progress=False, device=device)
    else:
        history = lib.fit(model, x, epochs=epochs, batch_size=batch, lr=lr, cache=False,
                          progress=False, device=device, compile=compile)
    return history["seconds"]


def time_eval(name, comp, ours, plain, x_eval, args, r, max_rows, device) -> float:
    """Images/s of the k = --eval-k log-likelihood (after an untimed call when compiled)."""
    if name == "lvae_core":
        run = lambda: lv.log_likelihood(ours, x_eval, k=args.eval_k, seed=r, compiled=comp)
    else:
        weights = torch.compile(plain.log_w, dynamic=False) if comp else plain.log_w
        run = lambda: plain_log_likelihood(plain, x_eval, args.eval_k, max_rows, weights)
    if comp:   # compiles (again after the fit, which starts torch.compile afresh); not timed
        with torch.inference_mode():
            run()
    sync(device)
    t0 = time.perf_counter()
    with torch.inference_mode():
        run()
    sync(device)
    return len(x_eval) / (time.perf_counter() - t0)


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
    p.add_argument("--model", choices=sorted(MODELS), default="lvae")
    p.add_argument("--baseline", default=None,
                   help="a checkout whose lvae_core's fit is timed too (eager), as 'baseline'")
    p.add_argument("--baseline-label", default="baseline")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    spec = MODELS[args.model]
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    n_eval = args.eval_images or (1000 if gpu else 8)
    n_train = args.train_images or (60_000 if gpu else 10_240)
    torch.manual_seed(0)
    data = lv.load_dataset("mnist-5k")
    # speed does not depend on the pixels: the 4,000 training images, repeated to n_train
    x_train = data.train_x.repeat(math.ceil(n_train / len(data.train_x)), 1)[:n_train].to(device)
    x_eval = data.test_binary.repeat(math.ceil(n_eval / len(data.test_binary)), 1)[:n_eval].to(device)

    ours = spec["ours"](lv).to(device)
    plain = spec["plain"]().to(device)
    n_ours = sum(p.numel() for p in ours.parameters())
    n_plain = sum(p.numel() for p in plain.parameters())
    assert n_ours == n_plain, (n_ours, n_plain)   # the same network, parameter for parameter
    check_same_math(ours, plain, lv.binarize(x_train[:16].cpu(), seed=0).to(device))
    base = load_baseline(args.baseline) if args.baseline else None
    base_model = spec["ours"](base).to(device) if base else None

    variants = [("lvae_core", False), ("plain", False), ("plain, fused Adam", False)]
    if base:
        variants.insert(1, (args.baseline_label, False))
    if not args.no_compile:
        variants += [("lvae_core", True), ("plain", True)]
    max_rows = lv.bounds.default_max_rows(device)
    train = {v: [] for v in variants}
    evals = {v: [] for v in variants if v[0] in ("lvae_core", "plain")}
    compile_seconds = {}
    batch, lr = spec["batch"], spec["lr"]
    for r in range(args.repeats):
        for name, comp in variants:
            if name == "lvae_core":
                seconds = ours_fit(ours, x_train, args.epochs + 1, batch, device, comp, lr)
            elif name == args.baseline_label:
                seconds = ours_fit(base_model, x_train, args.epochs + 1, batch, device, comp, lr,
                                   lib=base)
            else:
                seconds = plain_fit(plain, x_train, args.epochs + 1, batch, device, comp, lr,
                                    fused=True if "fused" in name else None)
            if r == 0:
                compile_seconds[name, comp] = seconds[0] - statistics.median(seconds[1:])
            train[name, comp].append(n_train / statistics.median(seconds[1:]))
            if (name, comp) in evals:
                evals[name, comp].append(time_eval(name, comp, ours, plain, x_eval, args, r,
                                                   max_rows, device))

    machine = torch.cuda.get_device_name(device) if gpu else \
        f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"
    fmt = lambda v: f"{v:,.4g}" if v < 1000 else f"{v:,.0f}"
    cell = lambda v: f"{fmt(statistics.median(v))} ({fmt(max(v))})" if v else ""
    label = lambda v: f"{v[0]} ({'compiled' if v[1] else 'eager'})"
    header = "| measurement | " + " | ".join(label(v) for v in variants)
    lines = [f"# {spec['title']}: lvae_core against plain PyTorch ({device.type})", "",
             f"{machine}, torch {torch.__version__}; {n_ours:,} parameters in both models. "
             f"Training: {n_train:,} images per epoch, batch {batch}, the one-sample ELBO, Adam "
             f"(lr {lr:g}), gradients clipped at norm 100, a fresh binarization and order each "
             f"epoch; images/s over the median of {args.epochs} timed epochs after one untimed "
             f"epoch (which compiles). Evaluation: k = {args.eval_k} on {n_eval} test images, "
             f"chunked into {max_rows:,} rows. Medians over {args.repeats} repeats, the variants "
             "interleaved within each repeat, and in brackets the best repeat; the repeats are "
             "listed below.", "",
             header + " |", "|---" * (len(variants) + 1) + "|",
             "| training images/s | " + " | ".join(cell(train[v]) for v in variants) + " |",
             "| evaluation images/s | " + " | ".join(cell(evals.get(v)) for v in variants) + " |",
             "", "| ratio: medians (bests) | training | evaluation |", "|---|---|---|"]
    pairs = [("lvae_core eager / plain eager", ("lvae_core", False), ("plain", False)),
             ("lvae_core eager / plain eager with fused Adam", ("lvae_core", False),
              ("plain, fused Adam", False))]
    if base:
        pairs += [(f"lvae_core eager / {args.baseline_label} eager", ("lvae_core", False),
                   (args.baseline_label, False)),
                  (f"{args.baseline_label} eager / plain eager", (args.baseline_label, False),
                   ("plain", False))]
    if not args.no_compile:
        pairs += [("lvae_core compiled / plain eager", ("lvae_core", True), ("plain", False)),
                  ("lvae_core compiled / plain compiled", ("lvae_core", True), ("plain", True))]
    for text, a, b in pairs:
        ev = ratio_cell(evals[a], evals[b]) if a in evals and b in evals else ""
        lines.append(f"| {text} | {ratio_cell(train[a], train[b])} | {ev} |")
    ours_keys = [v for v in variants if v[0] == "lvae_core"]
    rate = max(statistics.median(train[v]) for v in ours_keys)
    eval_rate = max(statistics.median(evals[v]) for v in ours_keys)
    lines += ["", "Projected from these rates (lvae_core, its faster mode):", "",
              "| quantity | value |", "|---|---|",
              f"| 2000 epochs of 60,000 images | {2000 * 60_000 / rate / 60:,.1f} min |",
              f"| k = 5000 log-likelihood of 10,000 test images | "
              f"{10_000 / eval_rate * 5000 / args.eval_k:,.1f} s |",
              "", "One-time compile cost, seconds (first epoch minus a timed one): " +
              ", ".join(f"{label(v)} {compile_seconds[v]:.1f}" for v in variants) + ".", "",
              "| repeats | " + " | ".join(label(v) for v in variants) + " |",
              "|---" * (len(variants) + 1) + "|",
              "| training images/s | " + " | ".join(", ".join(fmt(x) for x in train[v])
                                                    for v in variants) + " |",
              "| evaluation images/s | " + " | ".join(", ".join(fmt(x) for x in evals.get(v, []))
                                                      for v in variants) + " |"]
    default = f"results_{device.type}.md" if args.model == "lvae" else \
        f"results_{args.model}_{device.type}.md"
    write_report(lines, Path(args.out or Path(__file__).parent / default))


if __name__ == "__main__":
    main()
