"""Does training in bfloat16 (``TrainConfig(precision="bf16")``) give the same model as float32?

The paper's 5-layer Ladder VAE (``lvae-L5-bn-wu``) on all of Fashion-MNIST, trained with its
protocol shortened to ``--epochs`` (default 30; the warm-up keeps its share, so 3 epochs), once
in float32 and once in bfloat16 for each seed. Every model is evaluated in float32 with
k = 1000 on the learning curve's 2,000 test images. The table gives, per seed, the paired
difference bf16 - fp32 on the same images with its standard error, beside the difference
between two float32 seeds (how far apart two equally good runs land), and the training time
per epoch of each precision.

    python benchmarks/check_bf16.py --precision fp32 &    # one worker per precision,
    python benchmarks/check_bf16.py --precision bf16 &    # one thread each
    wait; python benchmarks/check_bf16.py --report        # the table, from the saved files

Each worker trains through ``fit``'s cache with a resumable checkpoint every 5 epochs (a
stopped worker continues where it stopped) and saves each model's per-image log-likelihoods
to ``--out``; ``--report`` reads them and writes ``check_bf16.md`` next to this script.
"""
from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import lvae_core as lv
from lvae_core.comparison import paired_difference
from lvae_core.evaluation import evaluate
from lvae_core.campaign import CURVE_IMAGES, CURVE_K, list_configs
from lvae_core.models import build_model

NAME = "lvae-L5-bn-wu"
HERE = Path(__file__).resolve().parent


def train_and_score(precision: str, seed: int, epochs: int, data, out: Path,
                    name: str = NAME) -> Path:
    path = out / f"{precision}-seed{seed}.npz"
    if path.is_file():
        return path
    config = list_configs("all", name)[0]
    model = build_model(config.model)
    tc = config.replace(epochs=epochs, seed=seed, compiled=True, precision=precision).train
    history = lv.fit(model, data, tc, checkpoint_every=5, progress=True)
    x = data.test_binary[:CURVE_IMAGES]
    t0 = time.perf_counter()
    summary, ll, _ = evaluate(model, x, CURVE_K, seed=0, compiled=True, progress=True)
    out.mkdir(parents=True, exist_ok=True)
    np.savez(path, log_likelihood=ll.double().numpy(),
             epoch_seconds=np.asarray(history["seconds"], dtype=np.float64),
             test_elbo=summary["test_elbo"], active_units=np.asarray(summary["active_units"]),
             eval_seconds=time.perf_counter() - t0)
    return path


def cpu_description() -> str:
    """The CPU's model name and whether it multiplies bfloat16 natively (Linux only)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines()
                  if line.startswith("model name")), platform.machine())
    native = [flag for flag in ("avx512_bf16", "amx_bf16") if f" {flag}" in info]
    return f"{model} ({', '.join(native) if native else 'no native bfloat16 products'})"


def report(out: Path, seeds: list[int], epochs: int, name: str = NAME) -> str:
    runs = {}
    for precision, seed in itertools.product(("fp32", "bf16"), seeds):
        with np.load(out / f"{precision}-seed{seed}.npz") as f:
            runs[precision, seed] = {key: f[key] for key in f.files}

    def nll(run):
        return -run["log_likelihood"].mean()

    def per_epoch(run):  # the first epoch carries the compile
        return statistics.median(run["epoch_seconds"][1:].tolist())

    lines = [f"# bfloat16 against float32 training: {name}, {epochs} epochs, Fashion-MNIST",
             "",
             f"torch {torch.__version__}, {cpu_description()}, "
             f"{torch.get_num_threads()} thread(s) per run; test NLL with k = {CURVE_K} on "
             f"the first {CURVE_IMAGES} test images, every evaluation in float32. "
             "Differences are paired over the same images (SE: of the mean difference).",
             "",
             "| seed | NLL fp32 | NLL bf16 | bf16 − fp32 | SE | z | s/epoch fp32 | "
             "s/epoch bf16 | speed-up |",
             "|---|---|---|---|---|---|---|---|---|"]
    deltas, speedups = [], []
    for seed in seeds:
        a, b = runs["bf16", seed], runs["fp32", seed]
        d = paired_difference(a["log_likelihood"], b["log_likelihood"])
        deltas.append(d["delta_nll"])
        speedups.append(per_epoch(b) / per_epoch(a))
        lines.append(f"| {seed} | {nll(b):.2f} | {nll(a):.2f} | {d['delta_nll']:+.2f} | "
                     f"{d['se']:.2f} | {d['z']:+.1f} | {per_epoch(b):.2f} | "
                     f"{per_epoch(a):.2f} | {speedups[-1]:.2f}x |")
    if len(seeds) > 1:
        lines += ["", "Two float32 seeds against each other (the spread of equally good runs):",
                  "", "| pair | fp32 − fp32 | SE | z |", "|---|---|---|---|"]
        seed_deltas = []
        for s, t in itertools.combinations(seeds, 2):
            d = paired_difference(runs["fp32", t]["log_likelihood"],
                                  runs["fp32", s]["log_likelihood"])
            seed_deltas.append(d["delta_nll"])
            lines.append(f"| seed {t} − seed {s} | {d['delta_nll']:+.2f} | {d['se']:.2f} | "
                         f"{d['z']:+.1f} |")
        lines += ["", f"Mean bf16 − fp32 over {len(seeds)} seeds: "
                  f"{statistics.fmean(deltas):+.2f} ± "
                  f"{statistics.stdev(deltas) / len(deltas) ** 0.5:.2f} nats (SE over seeds); "
                  f"largest |fp32 − fp32| between seeds: {max(map(abs, seed_deltas)):.2f} "
                  f"nats; median speed-up {statistics.median(speedups):.2f}x."]
    lines.append("")
    text = "\n".join(lines)
    stem = "check_bf16" + ("" if name == NAME else f"_{name}")
    if seeds != [0, 1, 2]:   # a subset of seeds must not replace the three-seed table
        stem += "_seeds" + "-".join(map(str, seeds)) if name == NAME else ""
    (HERE / f"{stem}.md").write_text(text)
    return text


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", choices=("fp32", "bf16"))
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--run", default=NAME, help="the LVAE-grid configuration to train")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path,
                        default=lv.data.cache_dir() / "check_bf16")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    out = args.out / (f"epochs{args.epochs}" if args.run == NAME
                      else f"{args.run}-epochs{args.epochs}")
    torch.set_num_threads(args.threads)
    if args.report:
        print(report(out, seeds, args.epochs, args.run))
        return
    if not args.precision:
        parser.error("give --precision fp32 or bf16 (a worker), or --report")
    data = lv.load_dataset("fashion-mnist")
    for seed in seeds:
        print(json.dumps({"precision": args.precision, "seed": seed,
                          "saved": str(train_and_score(args.precision, seed, args.epochs,
                                                       data, out, args.run))}))


if __name__ == "__main__":
    main()
