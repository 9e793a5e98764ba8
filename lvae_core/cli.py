"""Command line: ``python -m lvae_core train ...`` and ``python -m lvae_core evaluate ...``.

    python -m lvae_core train --model lvae --data mnist-5k --hidden 512,256 --latent 64,32 \\
        --epochs 20 --warmup-epochs 5 --out results/lvae.json
    python -m lvae_core evaluate --checkpoint results/lvae.pt --data mnist-5k --k 5000
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

COMPILE_HELP = ("run through torch.compile (training: CUDA graphs on a GPU): faster after a "
                "compile of up to a minute; the same mathematics, other random draws")


def _ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _write_json(obj, path) -> None:
    from .results import write_json
    print(f"wrote {write_json(obj, path)}")


def _evaluation(model, data, k, *, n_test=None, **options) -> dict:
    from .evaluation import evaluate, test_images
    summary, _, _ = evaluate(model, test_images(model, data, n_test), k, progress=True,
                             **options)
    return summary


def _model_config(args, x_dim: int):
    from .configs import ModelConfig, architecture
    if args.arch:
        return architecture(args.arch, x_dim)
    return ModelConfig(args.model, args.hidden, args.latent, x_dim, args.likelihood,
                       not args.no_batch_norm, args.activation)


def cmd_train(args) -> int:
    from .configs import TrainConfig
    from .data import load_dataset
    from .models import build_model
    from .train import fit, save_checkpoint

    data = load_dataset(args.data, n_train=args.n_train, n_test=args.n_test)
    model_config = _model_config(args, data.x_dim)
    model = build_model(model_config)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                         warmup_epochs=args.warmup_epochs, k=args.k, seed=args.seed,
                         lr_schedule=args.lr_schedule, compiled=args.compile)
    print(f"{model_config.kind} on {data}: {sum(p.numel() for p in model.parameters()):,} "
          "parameters")
    t0 = time.perf_counter()
    history = fit(model, data, config, device=args.device, cache=not args.no_cache,
                  checkpoint_every=args.checkpoint_every)
    train_seconds = time.perf_counter() - t0
    out = Path(args.out)
    ckpt = save_checkpoint(model, history, out.with_suffix(".pt"))
    result = dict(model=model_config.kind, data=args.data, config=model.config.kwargs(),
                  fit=dict(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                           warmup_epochs=args.warmup_epochs, k=args.k, seed=args.seed,
                           lr_schedule=args.lr_schedule),
                  checkpoint=str(ckpt), train_seconds=train_seconds,
                  final_train_bound=history["bound"][-1], history=history)
    if args.eval_k:
        ev = result["evaluation"] = _evaluation(model, data, args.eval_k, n_test=args.n_test,
                                                compiled=args.compile)
        print(f"test log p(x) ~ {ev['test_log_likelihood']:.2f} nats (k={args.eval_k}), "
              f"ELBO {ev['test_elbo']:.2f}, active units {ev['active_units']}")
    _write_json(result, out)
    return 0


def cmd_evaluate(args) -> int:
    from .data import load_dataset
    from .train import load_checkpoint

    model, _ = load_checkpoint(args.checkpoint, device=args.device)
    data = load_dataset(args.data, n_test=args.n_test)
    if data.x_dim != model.x_dim:
        raise SystemExit(f"error: the checkpoint expects {model.x_dim} pixels, {args.data} "
                         f"has {data.x_dim}")
    ev = _evaluation(model, data, args.k, max_rows=args.max_rows, seed=args.seed,
                     compiled=args.compile)
    result = dict(checkpoint=str(args.checkpoint), data=args.data,
                  config=model.config.kwargs(), **ev)
    print(f"test log p(x) ~ {result['test_log_likelihood']:.2f} nats (k={args.k}, "
          f"{result['n_test']} images, {result['eval_images_per_second']:.1f} images/s); "
          f"ELBO {result['test_elbo']:.2f}; active units {result['active_units']}")
    if args.out:
        _write_json(result, args.out)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .blocks import ACTIVATIONS
    from .configs import ARCHITECTURES, LR_SCHEDULE_NAMES, LVAE_HIDDEN, LVAE_LATENT
    from .data import DATASETS
    from .generative import LIKELIHOODS
    from .models import MODELS

    parser = argparse.ArgumentParser(prog="python -m lvae_core",
                                     description="Train and evaluate VAEs, hierarchical "
                                                 "VAEs and Ladder VAEs.")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train a model and write its checkpoint and a "
                                         "results JSON")
    train.add_argument("--model", choices=sorted(MODELS), default="lvae")
    train.add_argument("--data", choices=DATASETS, default="mnist-5k")
    train.add_argument("--arch", choices=sorted(ARCHITECTURES), default=None,
                       help="a paper's architecture (instead of --model, --hidden, --latent, "
                            "--likelihood, --activation and --no-batch-norm)")
    train.add_argument("--hidden", type=_ints, default=list(LVAE_HIDDEN),
                       help="MLP width before each stochastic layer, comma-separated")
    train.add_argument("--latent", type=_ints, default=list(LVAE_LATENT),
                       help="units of each stochastic layer, comma-separated")
    train.add_argument("--likelihood", choices=LIKELIHOODS, default="bernoulli")
    train.add_argument("--activation", choices=sorted(ACTIVATIONS), default="leaky_relu")
    train.add_argument("--no-batch-norm", action="store_true")
    train.add_argument("--epochs", type=int, default=10)
    train.add_argument("--batch-size", type=int, default=256)
    train.add_argument("--lr", type=float, default=1e-3)
    train.add_argument("--warmup-epochs", type=float, default=0)
    train.add_argument("--lr-schedule", choices=[s for s in LR_SCHEDULE_NAMES if s],
                       default=None)
    train.add_argument("--k", type=int, default=1, help="importance samples in training "
                                                        "(IWAE when > 1)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--device", default=None, help="cuda, mps or cpu (default: the best "
                                                      "available)")
    train.add_argument("--n-train", type=int, default=None)
    train.add_argument("--n-test", type=int, default=None)
    train.add_argument("--eval-k", type=int, default=0,
                       help="after training, estimate the test log-likelihood with this "
                            "many samples")
    train.add_argument("--checkpoint-every", type=int, default=0)
    train.add_argument("--no-cache", action="store_true")
    train.add_argument("--compile", action="store_true", help=COMPILE_HELP)
    train.add_argument("--out", default="results/run.json")
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("evaluate", help="importance-sampled test log-likelihood of a checkpoint")
    ev.add_argument("--checkpoint", required=True)
    ev.add_argument("--data", choices=DATASETS, default="mnist-5k")
    ev.add_argument("--k", type=int, default=5000)
    ev.add_argument("--n-test", type=int, default=None)
    ev.add_argument("--max-rows", type=int, default=None)
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--device", default=None)
    ev.add_argument("--compile", action="store_true", help=COMPILE_HELP)
    ev.add_argument("--out", default=None)
    ev.set_defaults(func=cmd_evaluate)

    from .campaign import cli as campaign_cli
    campaign_cli.add_arguments(sub.add_parser(
        "reproduce", help="run the LVAE / IWAE papers' grids (resumable, shardable) and "
                          "merge results"))
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, FloatingPointError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
