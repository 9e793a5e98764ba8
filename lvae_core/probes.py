"""What each latent layer encodes, measured by a linear probe.

A multinomial logistic regression is fitted on one layer's posterior means E_q[z_i | x] of
labelled training images and scored on held-out images. Its accuracy says how much class
information the layer holds in linearly readable form: chance (10 % for ten balanced classes)
for a layer that carries nothing, more for a layer that encodes the class. A layer can carry
information that is not class information (stroke width, slant), so a low accuracy does not
mean an unused layer; the KL per unit says that.

    acc = probe_accuracy(model, x_train, y_train, x_test, y_test)   # one float per layer
"""
from __future__ import annotations

import numpy as np

from .analysis import posterior_means


def probe_accuracy(model, x_train, y_train, x_test, y_test, *, n_samples: int = 10,
                   seed: int | None = 0, max_iter: int = 2000) -> list[float]:
    """Test accuracy of a logistic-regression probe on each layer's posterior means.

    ``x_*``: binarized images ``(B, x_dim)``; ``y_*``: integer labels ``(B,)``. The features
    are standardised with the training images' mean and standard deviation. Returns one
    accuracy per layer, z_1 first.
    """
    from sklearn.linear_model import LogisticRegression

    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    if len(np.unique(y_train)) < 2:
        raise ValueError("a probe needs at least two classes among the training labels")
    means_train = posterior_means(model, x_train, n_samples, seed=seed)
    means_test = posterior_means(model, x_test, n_samples, seed=seed)
    accuracies = []
    for a, b in zip(means_train, means_test):
        a, b = a.numpy().astype(np.float64), b.numpy().astype(np.float64)
        mean, std = a.mean(0), a.std(0) + 1e-8
        probe = LogisticRegression(max_iter=max_iter)
        probe.fit((a - mean) / std, y_train)
        accuracies.append(float(probe.score((b - mean) / std, y_test)))
    return accuracies


def chance_accuracy(y) -> float:
    """The accuracy of always guessing the most frequent class of ``y``."""
    _, counts = np.unique(np.asarray(y), return_counts=True)
    return float(counts.max() / counts.sum())
