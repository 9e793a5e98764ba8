"""TrainConfig(precision="bf16") against float32: training images per second of the paper's 5-layer
Ladder VAE (batch 256), eager and compiled, the variants interleaved repeat by repeat so that
a busy machine slows them alike.

    python benchmarks/bench_precision.py                 # CPU, all threads
    python benchmarks/bench_precision.py --threads 1
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

import lvae_core as lv

HIDDEN, LATENT = (512, 256, 128, 64, 32), (64, 32, 16, 8, 4)


def images_per_second(precision, compiled, data, epochs):
    torch.manual_seed(0)
    model = lv.LadderVAE(x_dim=784, hidden=HIDDEN, latent=LATENT, batch_norm=True)
    t0 = time.perf_counter()
    config = lv.TrainConfig(epochs=epochs, batch_size=256, lr=2e-4, warmup_epochs=1,
                            precision=precision, compiled=compiled)
    history = lv.fit(model, data, config, cache=False, progress=False)
    wall = time.perf_counter() - t0
    # the first epoch carries the compile; time the others
    return data.train_x.shape[0] * (epochs - 1) / sum(history["seconds"][1:]), wall


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=6400)
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = lv.load_dataset("mnist-5k")
    data = data.subset(min(args.images, data.train_x.shape[0]), 10)
    variants = [(p, c) for c in (False, True) for p in ("fp32", "bf16")]
    speed = {v: [] for v in variants}
    for _ in range(args.repeats):
        for v in variants:
            speed[v].append(images_per_second(*v, data, args.epochs)[0])
    print(f"Ladder VAE 5 layers, batch 256, {data.train_x.shape[0]} images/epoch, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}, "
          f"{args.repeats} repeats (median, best)")
    print(f"{'step':10s} {'fp32 img/s':>16s} {'bf16 img/s':>16s} {'bf16 / fp32':>12s}")
    for compiled in (False, True):
        a, b = speed[("fp32", compiled)], speed[("bf16", compiled)]
        print(f"{'compiled' if compiled else 'eager':10s} "
              f"{statistics.median(a):8.0f} ({max(a):5.0f}) "
              f"{statistics.median(b):8.0f} ({max(b):5.0f}) "
              f"{statistics.median(b) / statistics.median(a):7.2f} ({max(b) / max(a):.2f})")


if __name__ == "__main__":
    main()
