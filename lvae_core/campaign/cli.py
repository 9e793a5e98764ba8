"""``python -m lvae_core reproduce``: the command line of the reproduction runs (see
``campaign.runner``)."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

from ..configs import PRECISIONS
from ..data import DATASETS, load_dataset
from ..runtime import record_command
from . import resume
from .grids import GRIDS, list_configs, parse_shard, shard
from .reports import markdown, merge
from .runner import run_all
from .shipping import ship_latest_snapshot
from .curves import evaluate_curve


def add_arguments(parser) -> None:
    """The ``reproduce`` sub-command's options (called from ``cli.build_parser``)."""
    parser.add_argument("--data", choices=DATASETS, default="mnist")
    parser.add_argument("--grid", choices=GRIDS, default="all")
    parser.add_argument("--only", default=None,
                        help="comma-separated names or glob patterns, e.g. 'lvae-L5-*,iwae-L1-k50'")
    parser.add_argument("--epochs", type=int, default=None, help="train every configuration "
                                                                 "this many epochs")
    parser.add_argument("--until", type=int, default=None, metavar="EPOCH",
                        help="train the published protocol only up to this epoch (resumable; "
                             "the same command without --until continues it) and score it on "
                             "the learning curve's test images and a fixed training subset")
    parser.add_argument("--epochs-scale", type=float, default=1.0,
                        help="train this share of the published epochs (e.g. 0.01)")
    parser.add_argument("--eval-k", type=int, default=5000)
    parser.add_argument("--n-train", type=int, default=None)
    parser.add_argument("--n-test", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--checkpoint-every", type=int, default=50)
    parser.add_argument("--shard", default=None, help="i/n: run the configurations with "
                                                      "index %% n == i")
    parser.add_argument("--out", default="results/reproduce")
    parser.add_argument("--force", action="store_true", help="run again even when "
                                                             "runs/<name>.json exists")
    parser.add_argument("--list", action="store_true", help="print the selected "
                                                            "configurations and stop")
    parser.add_argument("--merge", metavar="OUT", default=None,
                        help="only gather OUT/runs/*.json into OUT/results.json and results.md")
    parser.add_argument("--no-progress", action="store_true")
    parser.add_argument("--precision", choices=PRECISIONS, default="fp32",
                        help="bf16: the training step's matrix products in bfloat16 (log "
                             "densities, optimizer and evaluation stay float32)")
    parser.add_argument("--ship-models", action="store_true",
                        help="also save each trained model in float16 to "
                             "OUT/models/<name>.pt; with --curves, the newest snapshot of "
                             "each LVAE-grid run still training")
    parser.add_argument("--no-curves", action="store_true",
                        help="do not evaluate the learning-curve snapshots after training")
    parser.add_argument("--curves", action="store_true",
                        help="only evaluate the learning-curve snapshots saved so far (runs "
                             "may still be training), then merge")
    parser.add_argument("--stash", action="store_true",
                        help="only copy the checkpoint cache's partial checkpoints and OUT's "
                             "unscored snapshots into OUT/resume/ (lvae_core.campaign.resume)")
    parser.add_argument("--unstash", action="store_true",
                        help="only copy OUT/resume/ back into the checkpoint cache, where the "
                             "cache has nothing newer, so the runs resume from there")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the training step (CUDA graphs on a GPU) and the "
                             "log-likelihood: faster, the same mathematics, other random draws")
    parser.set_defaults(func=main)


def _record_command(out: Path) -> None:
    """Append this command line to ``<out>/commands.txt`` (once), for ``results.md``."""
    record_command(out, "python -m lvae_core " + " ".join(shlex.quote(a) for a in sys.argv[1:]))


def main(args) -> int:
    if args.stash or args.unstash:
        done = (resume.stash if args.stash else resume.unstash)(args.out)
        for what, names in done.items():
            for name in names:
                print(f"{what:9s} {name}")
        return 0
    if args.merge:
        summary = merge(args.merge)
        print(markdown(summary))
        return 0
    runs = list_configs(args.grid, args.only)
    if args.shard:
        runs = shard(runs, *parse_shard(args.shard))
    runs = [r.replace(epochs=args.epochs, epochs_scale=args.epochs_scale, eval_k=args.eval_k,
                      seed=args.seed, compiled=args.compile, precision=args.precision)
            for r in runs]
    if args.list:
        for r in runs:
            print(f"{r.name:16s} {r.kind} hidden={list(r.model.hidden)} "
                  f"latent={list(r.model.latent)} k={r.k} epochs={r.train.epochs} "
                  f"warm-up={r.train.warmup_epochs:g}")
        return 0
    if not runs:
        raise ValueError(f"no configuration of grid {args.grid!r} matches {args.only!r}")
    data = load_dataset(args.data, n_train=args.n_train, n_test=args.n_test)
    print(f"{len(runs)} configurations on {data}")
    if args.curves:
        for r in runs:
            evaluate_curve(r, data, args.out, device=args.device,
                           progress=not args.no_progress)
            if args.ship_models and r.grid == "lvae" and ship_latest_snapshot(r, data,
                                                                              args.out):
                print(f"{r.name}: shipped its newest snapshot to {args.out}/models/")
        print(markdown(merge(args.out), args.out))
        return 0
    if args.until and (args.epochs or args.epochs_scale != 1.0):
        raise ValueError("--until trains the published protocol up to an epoch; it does not "
                         "combine with --epochs or --epochs-scale")
    _record_command(Path(args.out))
    run_all(runs, data, args.out, force=args.force, progress=not args.no_progress,
            device=args.device, checkpoint_every=args.checkpoint_every,
            ship_model=args.ship_models, curves=not args.no_curves, until=args.until)
    print(markdown(merge(args.out)))
    return 0
