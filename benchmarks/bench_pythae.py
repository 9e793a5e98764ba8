"""lvae_core against pythae on the same one-layer VAE / IWAE and the same data.

Architecture (both libraries): encoder 784-200-200 tanh, then mean and variance of 50
Gaussian units; decoder 50-200-200 tanh, then 784 Bernoulli logits (pythae: sigmoid + BCE).
Data: mnist-5k (4,000 training images, binarized), batch 100, Adam lr 1e-3.

Measured, side by side in one run (medians over --repeats):
* training epochs per second for the VAE (k = 1) and the IWAE (k = --train-k);
* log-likelihood evaluation images per second with --eval-k importance samples on
  --eval-images test images: ``lvae_core.log_likelihood`` against pythae's ``get_nll``
  (which loops over the test images one at a time);
* the same for lvae_core with ``torch.compile`` (``TrainConfig(compiled=True)``, on a GPU with CUDA
  graphs; ``log_likelihood(compiled=True)``): training epochs/s in the steady state, after one
  epoch that compiles; leave these rows out with --no-compile;
* for lvae_core's CPU evaluation, the achieved GFLOP/s, counting the matmul FLOPs of a full
  forward pass (2 * in * out per Linear layer) per (sample, image) row, against a large
  ``torch.mm`` measured on the same machine.

    python benchmarks/bench_pythae.py                 # CPU
    python benchmarks/bench_pythae.py --device cuda   # a GPU
"""
from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
from report import comparison_row, write_report
from torch import nn

import lvae_core as lv

HIDDEN, LATENT, X_DIM = 200, 50, 784


def pythae_model(kind: str, k: int):
    from pythae.models import IWAE, VAE, IWAEConfig, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(X_DIM, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, HIDDEN), nn.Tanh())
            self.mu, self.log_var = nn.Linear(HIDDEN, LATENT), nn.Linear(HIDDEN, LATENT)

        def forward(self, x):
            h = self.net(x.reshape(x.shape[0], -1))
            return ModelOutput(embedding=self.mu(h), log_covariance=self.log_var(h))

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(LATENT, HIDDEN), nn.Tanh(), nn.Linear(HIDDEN, HIDDEN), nn.Tanh(),
                                     nn.Linear(HIDDEN, X_DIM), nn.Sigmoid())

        def forward(self, z):
            return ModelOutput(reconstruction=self.net(z).reshape(z.shape[0], 1, 28, 28))

    if kind == "vae":
        config = VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce")
        return VAE(config, encoder=Encoder(), decoder=Decoder())
    config = IWAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce",
                        number_samples=k)
    return IWAE(config, encoder=Encoder(), decoder=Decoder())


def lvae_model():
    return lv.VAE(x_dim=X_DIM, hidden=(HIDDEN,), latent=(LATENT,), activation="tanh", batch_norm=False)


def time_pythae_training(kind, k, train, epochs, batch, device):
    from pythae.trainers import BaseTrainer, BaseTrainerConfig
    model = pythae_model(kind, k)
    with tempfile.TemporaryDirectory() as tmp:
        config = BaseTrainerConfig(output_dir=tmp, per_device_train_batch_size=batch, num_epochs=epochs,
                                   learning_rate=1e-3, no_cuda=device != "cuda")
        trainer = BaseTrainer(model=model, train_dataset=train, training_config=config)
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0
    return epochs / seconds, model


def time_lvae_training(k, data, epochs, batch, device, compiled=False):
    """Epochs/s of ``fit``. Eager: the whole call's wall time, as for pythae's trainer.
    Compiled: one more epoch first (it compiles), then the epochs' own times (steady state)."""
    model = lvae_model()
    t0 = time.perf_counter()
    config = lv.TrainConfig(epochs=epochs + bool(compiled), batch_size=batch, lr=1e-3, k=k,
                            compiled=compiled)
    history = lv.fit(model, data, config, cache=False, progress=False, device=device)
    if device == "cuda":
        torch.cuda.synchronize()
    if compiled:
        return epochs / sum(history["seconds"][1:]), model
    return epochs / (time.perf_counter() - t0), model


def forward_flops_per_row() -> int:
    """Matmul FLOPs of one full forward pass (encoder + decoder) for one (sample, image) row."""
    layers = [(X_DIM, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, 2 * LATENT),          # encoder + head
              (LATENT, HIDDEN), (HIDDEN, HIDDEN), (HIDDEN, X_DIM)]              # decoder
    return sum(2 * i * o for i, o in layers)


def decoder_flops_per_row() -> int:
    return 2 * (LATENT * HIDDEN + HIDDEN * HIDDEN + HIDDEN * X_DIM)


def matmul_gflops(n=2048, repeats=5) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        times.append(time.perf_counter() - t0)
    return 2 * n**3 / statistics.median(times) / 1e9


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--epochs", type=int, default=2, help="epochs per timed training run")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--train-k", type=int, default=5)
    p.add_argument("--eval-k", type=int, default=500)
    p.add_argument("--eval-images", type=int, default=100)
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice; 1 is far faster on a busy CPU)")
    p.add_argument("--no-compile", action="store_true",
                   help="leave out the rows of lvae_core with torch.compile")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    data = lv.load_dataset("mnist-5k")
    train_bin = lv.binarize(data.train_x, seed=0)
    test = data.test_binary[: args.eval_images]
    from pythae.data.datasets import BaseDataset
    train_pythae = BaseDataset(train_bin.reshape(-1, 1, 28, 28), torch.zeros(len(train_bin)))

    compiled = [] if args.no_compile else [True]
    rows = []
    for kind, k in (("vae", 1), ("iwae", args.train_k)):
        py, lc, lcc = [], [], []
        for r in range(args.repeats):
            rate, pmodel = time_pythae_training(kind, k, train_pythae, args.epochs, args.batch, args.device)
            py.append(rate)
            rate, lmodel = time_lvae_training(k, data, args.epochs, args.batch, args.device)
            lc.append(rate)
            for c in compiled:
                lcc.append(time_lvae_training(k, data, args.epochs, args.batch, args.device, c)[0])
        label = f"training epochs/s, {kind.upper()} k={k} (4,000 images, batch {args.batch})"
        rows.append((label, py, lc))
        if compiled:
            rows.append((label.replace("training", "training, lvae_core compiled (steady state),"), py, lcc))

    # evaluation with the last trained models (their values do not matter for speed)
    pmodel.eval()
    lmodel = lmodel.to(args.device).eval()
    if compiled:   # compile once, untimed
        lv.log_likelihood(lmodel, test, k=args.eval_k, seed=0, compiled=True)
    py, lc, lcc, nll_py, nll_lc = [], [], [], None, None
    for r in range(args.repeats):
        t0 = time.perf_counter()
        with torch.no_grad():
            nll_py = -pmodel.get_nll(test.reshape(-1, 1, 28, 28).to(args.device), n_samples=args.eval_k,
                                     batch_size=args.eval_k)
        py.append(len(test) / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        ll = lv.log_likelihood(lmodel, test, k=args.eval_k, seed=r)
        lc.append(len(test) / (time.perf_counter() - t0))
        nll_lc = -ll.mean().item()
        for c in compiled:
            t0 = time.perf_counter()
            lv.log_likelihood(lmodel, test, k=args.eval_k, seed=r, compiled=c)
            lcc.append(len(test) / (time.perf_counter() - t0))
    label = f"NLL evaluation images/s (k={args.eval_k}, {len(test)} images)"
    rows.append((label, py, lc))
    if compiled:
        rows.append((label.replace("evaluation", "evaluation, lvae_core compiled,"), py, lcc))

    lines = [f"# lvae_core against pythae ({args.device})", "",
             f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
             f"torch {torch.__version__}. Medians over {args.repeats} repeats (each repeat runs both "
             "libraries one after the other), and in brackets the best repeat (noise from other "
             "processes only lowers a rate); the repeats are listed.", "",
             "| measurement | pythae: median (best) | lvae_core: median (best) | ratio lvae_core / pythae: medians (bests) | repeats pythae | repeats lvae_core |",
             "|---|---|---|---|---|---|"]
    for name, ra, rb in rows:
        lines.append(comparison_row(name, rb, ra, ours_first=False, digits=3))
    lines += ["", f"NLL of the IWAE model after {args.epochs} epochs (k={args.eval_k}): pythae "
              f"{nll_py:.2f}, lvae_core {nll_lc:.2f} nats (different models, trained briefly; a sanity check only)."]
    if args.device == "cpu":
        peak = statistics.median(matmul_gflops() for _ in range(3))
        lines += ["", "## lvae_core CPU evaluation against the CPU's matmul rate", "",
                  "| quantity | value |", "|---|---|",
                  f"| matmul FLOPs per (sample, image) row, full forward pass | {forward_flops_per_row():,} |",
                  f"| large torch.mm (2048 x 2048), GFLOP/s | {peak:.1f} |"]
        for mode, rates in (("eager", lc), ("compiled", lcc)):
            if not rates:
                continue
            rate = statistics.median(rates)
            nominal = rate * args.eval_k * forward_flops_per_row() / 1e9
            actual = rate * (args.eval_k * decoder_flops_per_row() + forward_flops_per_row()
                             - decoder_flops_per_row()) / 1e9
            lines += [f"| lvae_core evaluation ({mode}), GFLOP/s counting a full forward pass per row | {nominal:.1f} ({nominal / peak:.0%} of torch.mm) |",
                      f"| lvae_core evaluation ({mode}), GFLOP/s of the work done (the encoder runs once per image) | {actual:.1f} ({actual / peak:.0%}) |"]
    write_report(lines, Path(args.out or Path(__file__).parent / f"results_pythae_{args.device}.md"))


if __name__ == "__main__":
    main()
