"""Linear probes of the latent layers, against features whose class content is known."""
import numpy as np
import pytest
import torch

import lvae_core as lv
from lvae_core import probes


def test_probe_reads_a_layer_that_encodes_the_class_and_not_one_that_does_not(monkeypatch):
    rng = np.random.default_rng(0)
    n, classes = 600, 5
    y = rng.integers(0, classes, size=2 * n)
    centres = rng.normal(0, 3, size=(classes, 4))
    informative = centres[y] + rng.normal(0, 0.5, size=(2 * n, 4))   # separable clusters
    noise = rng.normal(0, 1, size=(2 * n, 3))                          # no class information
    layers = [torch.tensor(informative), torch.tensor(noise)]

    def fake_means(model, x, n_samples, seed=None):
        rows = x[:, 0].long().numpy()            # the "images" carry their own row index
        return [layer[rows] for layer in layers]

    monkeypatch.setattr(probes, "posterior_means", fake_means)
    index = torch.arange(2 * n, dtype=torch.float64)[:, None]
    acc = probes.probe_accuracy(None, index[:n], y[:n], index[n:], y[n:])
    chance = probes.chance_accuracy(y[n:])
    assert acc[0] > 0.95
    assert abs(acc[1] - 1 / classes) < 0.08 and acc[1] < chance + 0.08


def test_probe_on_a_trained_vae_beats_chance():
    data = lv.load_dataset("mnist-5k").subset(1000, 400)
    torch.manual_seed(0)
    model = lv.HierarchicalVAE(x_dim=784, hidden=[128, 64], latent=[16, 4])
    lv.fit(model, data, lv.TrainConfig(epochs=4, batch_size=100), progress=False)
    acc = probes.probe_accuracy(model, lv.binarize(data.train_x, seed=0), data.train_y,
                                data.test_binary, data.test_y)
    assert len(acc) == 2 and all(0.0 <= a <= 1.0 for a in acc)
    assert acc[0] > probes.chance_accuracy(data.test_y) + 0.3


def test_probe_needs_two_classes():
    with pytest.raises(ValueError, match="two classes"):
        probes.probe_accuracy(None, torch.zeros(4, 784), np.zeros(4), torch.zeros(2, 784),
                              np.zeros(2))
