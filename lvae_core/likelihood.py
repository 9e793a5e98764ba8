"""The importance-sampled log-likelihood: L_k (``bounds.iwae_bound``) with a large k, over
chunks of samples and examples, optionally resumable (``checkpoints.EstimateProgress``).
"""
from __future__ import annotations

import math

import torch

from .checkpoints import EstimateProgress
from .checks import check_k
from .compiling import compiled_for
from .runtime import cpu_share, device_of, eval_mode, seeded


def default_max_rows(device: torch.device) -> int:
    """How many (sample, example) rows one forward pass may hold. On a GPU 2^16 (about 1 GB
    of activations for the paper's LVAE: large launches). On a CPU 2^11: a chunk's 784-wide
    decoder output (6 MB) stays in the cache while the element-wise likelihood terms read it;
    measured on a 2-core CPU, evaluation ran 1.3-1.7 times faster than with 2^14 rows."""
    return 2**16 if torch.device(device).type == "cuda" else 2**11


def _log_weights(model, x, k):
    return model.log_weights(x, k, check=False)


@torch.inference_mode()
def log_likelihood(model, x, k: int = 5000, *, max_rows: int | None = None, seed: int | None = None,
                   progress: bool = False, return_elbo: bool = False, compiled=False,
                   resume=None, resume_every: float = 60.0):
    """Importance-sampled estimate of log p(x) per example: L_k with k samples.

    Runs in eval mode (batch norm uses its running averages) and without autograd.
    The k * B (sample, example) rows are processed in chunks of at most ``max_rows``
    (default: ``default_max_rows``), over examples and, when k alone exceeds it, over
    samples too (combined exactly with logsumexp). ``x`` may live on any device; each
    chunk is moved to the model's device. ``seed``: draw from a stream seeded so (None: the
    global stream). ``compiled``: run the log weights through ``torch.compile`` (see
    ``lvae_core.compiling``). Returns a (B,) CPU tensor; with ``return_elbo=True`` also the
    ELBO estimated from the same k samples.

    ``resume``: a file for the progress of a long estimate (k = 5000 on 10,000 images takes
    the better part of an hour on a CPU), saved at most every ``resume_every`` seconds
    with the random stream's state. A call with the same model, images, k, chunking and
    ``seed`` (required) continues from it and returns exactly what an uninterrupted call
    returns; anything else starts afresh. The file is deleted when the estimate is done.
    """
    k = check_k(k)
    device = device_of(model)
    x = model.check(x) if hasattr(model, "check") else torch.as_tensor(x)
    max_rows = max_rows or default_max_rows(device)
    log_weights = compiled_for(model, "log_weights", _log_weights,
                               "default" if compiled is True else compiled, device)
    k_chunk = min(k, max_rows)
    b_chunk = max(1, max_rows // k_chunk)
    progress_file = EstimateProgress(resume, resume_every, model, x, k, b_chunk, seed, device)
    lls, elbos, first = progress_file.load()
    starts = range(first, x.shape[0], b_chunk)
    if progress:
        from tqdm.auto import tqdm
        starts = tqdm(starts, desc=f"log p(x), k={k}", unit="chunk",
                      initial=first // b_chunk, total=-(-x.shape[0] // b_chunk))
    with eval_mode(model), seeded(seed, device), cpu_share(device) as share:
        progress_file.restore_stream()
        for start in starts:
            if share is not None:
                share.adjust()
            xb = x[start:start + b_chunk].to(device, non_blocking=True)
            lse, total = [], 0.0
            for k0 in range(0, k, k_chunk):
                log_w = log_weights(model, xb, min(k_chunk, k - k0))
                lse.append(torch.logsumexp(log_w, 0))
                total = total + log_w.sum(0)
            lls.append(torch.logsumexp(torch.stack(lse), 0) - math.log(k))
            elbos.append(total / k)
            progress_file.save(lls, elbos, start + b_chunk)
    progress_file.done()
    ll = torch.cat(lls).cpu()
    return (ll, torch.cat(elbos).cpu()) if return_elbo else ll
