"""Why another program on the CPU slows the chapters more than it should: training speed of
the chapters' models with and without a busy neighbour, for the threading settings that
decide how PyTorch's worker threads wait.

Each variant runs in a fresh Python process (the settings must be in place before torch is
imported): ``threads`` intra-op threads and ``OMP_WAIT_POLICY`` (unset: GNU OpenMP spins for
a while before it sleeps; ``PASSIVE``: it sleeps at once). The busy neighbour is ``--busy``
processes of a CPU-bound Python loop, started before and stopped after each measurement.
Printed: seconds per training epoch (median of ``--repeats``, best in brackets, and the
worst busy repeat: the spinning threads' pathology is in the tail) and the slowdown busy /
quiet per variant, as a markdown table (also written to ``--out``).

    python benchmarks/bench_contention.py                 # about 5 minutes on 2 cores
    python benchmarks/bench_contention.py --busy 2 --repeats 5
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

WORKER = r"""
import json, sys, time, torch
import lvae_core as lv
spec = json.loads(sys.argv[1])
data = lv.load_dataset("mnist-5k").subset(spec["images"], 100)
model = (lv.LadderVAE(x_dim=784, hidden=(512, 256, 128, 64, 32), latent=(64, 32, 16, 8, 4))
         if spec["model"] == "lvae5" else lv.VAE(x_dim=784, hidden=(512,), latent=(32,)))
config = lv.TrainConfig(epochs=spec["epochs"], batch_size=256, seed=0)
lv.fit(model, data, config.replace(epochs=1), cache=False, progress=False)   # warm up
times = []
for _ in range(spec["repeats"]):
    t = time.perf_counter()
    lv.fit(model, data, config.replace(reset=False), cache=False, progress=False)
    times.append((time.perf_counter() - t) / spec["epochs"])
print(json.dumps(dict(times=times, threads=torch.get_num_threads())))
"""

BUSY = "while True: pass"


def measure(spec: dict, threads: int, policy: str | None, busy: int) -> list[float]:
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    for name in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "LVAE_THREADS"):
        env.pop(name, None)
    for setting in (policy or "").split(","):
        if setting:
            name, value = setting.split("=")
            env[name] = value
    hogs = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(busy)]
    try:
        time.sleep(0.5 if busy else 0)
        out = subprocess.run([sys.executable, "-c", WORKER, json.dumps(spec)], env=env,
                             capture_output=True, text=True, check=True).stdout
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    return json.loads(out.strip().splitlines()[-1])["times"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=("lvae5", "vae"), default="lvae5")
    parser.add_argument("--images", type=int, default=2560)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--busy", type=int, default=2)
    parser.add_argument("--variants", default="2 2:OMP_WAIT_POLICY=PASSIVE 1",
                        help="space-separated THREADS[:NAME=VALUE,...] (environment settings)")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results_contention.md")))
    args = parser.parse_args()
    spec = dict(model=args.model, images=args.images, epochs=args.epochs, repeats=args.repeats)
    variants = [(int(v.split(":")[0]), v.split(":", 1)[1] if ":" in v else None)
                for v in args.variants.split()]
    rows = []
    for threads, policy in variants:
        quiet = measure(spec, threads, policy, 0)
        busy = measure(spec, threads, policy, args.busy)
        rows.append((threads, policy or "(defaults)", quiet, busy))
        print(f"threads={threads} {policy}: quiet {quiet}, busy {busy}",
              file=sys.stderr)
    cpus = os.cpu_count()
    lines = [f"Seconds per epoch, {args.model} on {args.images} mnist-5k images (batch 256), "
             f"{cpus} CPUs, busy = {args.busy} CPU-bound processes beside it; median of "
             f"{args.repeats} (best in brackets).", "",
             "| threads | settings | quiet s/epoch | busy s/epoch | worst busy | "
             "busy / quiet | busy / best quiet |", "|---|---|---|---|---|---|---|"]
    best_quiet = min(statistics.median(q) for _, _, q, _ in rows)
    for threads, policy, quiet, busy in rows:
        q, b = statistics.median(quiet), statistics.median(busy)
        lines.append(f"| {threads} | {policy} | {q:.2f} ({min(quiet):.2f}) | "
                     f"{b:.2f} ({min(busy):.2f}) | {max(busy):.2f} | {b / q:.2f} | "
                     f"{b / best_quiet:.2f} |")
    table = "\n".join(lines)
    print(table)
    Path(args.out).write_text(table + "\n")


if __name__ == "__main__":
    main()
