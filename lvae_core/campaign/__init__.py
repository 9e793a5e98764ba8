"""The papers' reproduction runs: the campaign around the mathematics of ``lvae_core``.

* ``grids``: the Ladder VAE and IWAE papers' configurations as ``Run`` records (model,
  training, evaluation), their protocols and published numbers;
* ``runner``: train and score runs, whole or up to an epoch (``python -m lvae_core
  reproduce``, whose options are in ``cli``);
* ``curves``: learning-curve snapshots and their scores; ``shipping``: models shipped with
  the results; ``reports``: the merged ``results.json`` and ``results.md``;
* ``resume``: carry unfinished runs to another machine through the results folder;
* ``depth_figure``: the Ladder VAE paper's main figure from the runs;
* ``semisupervised``: the M2 and M1+M2 runs (``python -m lvae_core.campaign.semisupervised``).

Every results folder is read and written by ``lvae_core.results``.
"""
from .grids import (CURVE_EPOCHS, CURVE_IMAGES, CURVE_K, DEPTH_FIGURE, GRIDS, IWAE_KS,
                    PROTOCOLS, PUBLISHED, EvalSpec, Run, depth_figure_names, iwae_grid,
                    list_configs, lvae_grid, parse_shard, published, shard)
from .reports import markdown, merge
from .runner import run_all, train_and_score, train_until

__all__ = ["CURVE_EPOCHS", "CURVE_IMAGES", "CURVE_K", "DEPTH_FIGURE", "GRIDS", "IWAE_KS",
           "PROTOCOLS", "PUBLISHED", "EvalSpec", "Run", "depth_figure_names", "iwae_grid",
           "list_configs", "lvae_grid", "parse_shard", "published", "shard", "markdown",
           "merge", "run_all", "train_and_score", "train_until"]
