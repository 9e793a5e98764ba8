"""lvae_core: VAEs, hierarchical VAEs and Ladder VAEs, their bounds, and latent-space analysis.

One generative model p(z_L) prod p(z_i | z_{i+1}) p(x | z_1) (``generative.py``), two
inference networks (``inference.py``: bottom-up and ladder), and every bound from one
function of the log importance weights (``bounds.py``). ``fit(model, data, TrainConfig(...))``
trains; ``ModelConfig`` and the papers' architectures (``sonderby2016``, ``burda2016``) are in
``configs.py``.
"""
from . import plotting, results
from .analysis import (active_units, kl_per_layer, kl_per_unit, latent_samples, pca_embedding,
                       posterior_means, unit_activity)
from .bounds import elbo, iwae_bound
from .likelihood import log_likelihood
from .checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from .configs import ModelConfig, TrainConfig, burda2016, sonderby2016
from .data import DATASETS, Dataset, binarize, load_dataset
from .distributions import gaussian_kl, log_normal, precision_weighted_merge, reparameterize
from .models import VAE, HierarchicalVAE, LadderVAE, Trace, build_model
from .runtime import choose_device
from .settings import fast_mode, pick
from .toy import LinearGaussian
from .train import TrainingDivergedError, fit, warmup_beta

__version__ = "0.2.0"

__all__ = [
    "VAE", "HierarchicalVAE", "LadderVAE", "LinearGaussian", "Trace", "build_model",
    "ModelConfig", "TrainConfig", "sonderby2016", "burda2016",
    "elbo", "iwae_bound", "log_likelihood", "gaussian_kl", "precision_weighted_merge",
    "log_normal", "reparameterize", "load_dataset", "binarize", "Dataset", "DATASETS",
    "fit", "choose_device", "load_checkpoint", "save_checkpoint", "CheckpointError",
    "warmup_beta", "TrainingDivergedError", "active_units", "unit_activity", "posterior_means",
    "kl_per_unit", "kl_per_layer", "latent_samples", "pca_embedding", "fast_mode", "pick",
]

# Semi-supervised learning with deep generative models (Kingma et al., 2014): M2 and M1+M2
from .semisupervised import M2, error_rate, m1_features, paper_alpha
from .semisupervised_train import SSConfig, Split, balanced_labels, fit_classifier, fit_m2
from .semisupervised_train import split as semisupervised_split

__all__ += ["M2", "error_rate", "m1_features", "paper_alpha", "SSConfig", "Split",
            "balanced_labels", "fit_classifier", "fit_m2", "semisupervised_split"]
