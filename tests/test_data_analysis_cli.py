"""Data sets, latent analysis against direct computations, and the command line."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import lvae_core as lv


def test_mnist_5k_offline(mnist5k):
    assert mnist5k.train_x.shape == (4000, 784) and mnist5k.test_x.shape == (1000, 784)
    assert mnist5k.image_shape == (28, 28)
    assert 0 <= mnist5k.train_x.min() and mnist5k.train_x.max() <= 1
    assert sorted(torch.bincount(mnist5k.train_y).tolist())[0] > 350     # every digit present
    b1, b2 = mnist5k.test_binary, lv.load_dataset("mnist-5k").test_binary
    assert torch.equal(b1, b2) and set(b1.unique().tolist()) == {0.0, 1.0}   # binarized once, fixed seed
    # the binarization is a Bernoulli sample of the grey levels
    assert abs(b1.mean().item() - mnist5k.test_x.mean().item()) < 0.005


def test_digits():
    data = lv.load_dataset("digits")
    assert data.image_shape == (8, 8) and data.x_dim == 64
    assert len(data.train_x) + len(data.test_x) == 1797 and data.train_x.max() <= 1


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_from_debian():
    data = lv.load_dataset("fashion-mnist", n_test=100)
    assert data.train_x.shape == (60000, 784) and data.test_x.shape == (100, 784)
    assert torch.bincount(data.train_y).tolist() == [6000] * 10


def test_dynamic_binarization_draws_fresh_samples():
    x = torch.full((1000, 50), 0.3)
    a, b = lv.binarize(x, seed=1), lv.binarize(x, seed=2)
    assert not torch.equal(a, b) and torch.equal(a, lv.binarize(x, seed=1))
    assert abs(a.mean().item() - 0.3) < 0.01


def test_active_units_and_kl_per_unit_against_direct_computation(mnist5k):
    torch.manual_seed(0)
    model = lv.VAE(x_dim=784, hidden=64, latent=8).eval()
    x = mnist5k.test_binary[:300]
    with torch.no_grad():
        mu, var = model.inference.layers[0](x)           # q(z|x) of a one-layer VAE
        # make four units inactive: their posterior mean no longer depends on x
        head = model.inference.layers[0][1].linear
        head.weight[:4] = 0.0
        mu, var = model.inference.layers[0](x)
    activity = mu.var(0)
    (ours,) = lv.unit_activity(model, x)
    torch.testing.assert_close(ours, activity, rtol=1e-4, atol=1e-6)
    assert lv.active_units(model, x, threshold=1e-2) == [int((activity > 1e-2).sum())]
    assert lv.active_units(model, x)[0] <= 4
    (kl_units,) = lv.kl_per_unit(model, x, n_samples=400)
    analytic = lv.gaussian_kl(mu, var, torch.zeros_like(mu), torch.ones_like(var)).mean(0)
    torch.testing.assert_close(kl_units, analytic, atol=0.05, rtol=0.02)
    assert lv.kl_per_layer(model, x, n_samples=400)[0] == pytest.approx(analytic.sum().item(), abs=0.2)


def test_pca_embedding_per_layer(mnist5k):
    model = lv.LadderVAE(x_dim=784, hidden=(64, 32, 16), latent=(8, 4, 1)).eval()
    x = mnist5k.test_binary[:200]
    result = lv.pca_embedding(model, x)
    assert len(result) == 3
    for (emb, ratio), d in zip(result, (8, 4, 1)):
        assert emb.shape == (200, 2) and ratio.shape == (2,)
        assert 0 < ratio.sum() <= 1 + 1e-9
    assert np.all(result[2][0][:, 1] == 0)           # one unit: the second component is padding
    # the first principal component carries the largest variance of the samples
    z = lv.latent_samples(model, x)[0].numpy()
    assert result[0][0][:, 0].var() >= np.var(z - z.mean(0), axis=0).max() - 1e-6


def _cli(*args, cwd):
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "lvae_core", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_train_then_evaluate(tmp_path):
    out = tmp_path / "run.json"
    done = _cli("train", "--model", "lvae", "--data", "mnist-5k", "--hidden", "32,16",
                "--latent", "8,4", "--epochs", "1", "--n-train", "256", "--n-test", "20",
                "--eval-k", "10", "--out", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    assert result["config"]["latent"] == [8, 4] and len(result["history"]["bound"]) == 1
    assert result["evaluation"]["test_log_likelihood"] >= result["evaluation"]["test_elbo"] - 1e-3
    done = _cli("evaluate", "--checkpoint", result["checkpoint"], "--data", "mnist-5k",
                "--k", "20", "--n-test", "10", "--out", str(tmp_path / "eval.json"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    evaluation = json.loads((tmp_path / "eval.json").read_text())
    assert evaluation["k"] == 20 and evaluation["n_test"] == 10
    assert len(evaluation["active_units"]) == 2


def test_cli_rejects_bad_input(tmp_path):
    done = _cli("train", "--data", "cifar", cwd=tmp_path)
    assert done.returncode == 2 and "mnist-5k" in done.stderr
    done = _cli("train", "--epochs", "1", "--k", "0", "--n-train", "64", "--hidden", "8",
                "--latent", "2", "--model", "vae", cwd=tmp_path)
    assert done.returncode == 2 and "k (the number of importance samples)" in done.stderr


def test_activity_below_the_top_does_not_count_monte_carlo_noise(mnist5k):
    """A ladder whose q ignores x: q(z2 | x) is constant, and q(z1 | z2, x) follows the prior
    p(z1 | z2), which moves a lot with the sample z2. E_q[z1 | x] is then the same for every x
    (true activity 0), but its 10-sample average still scatters across images."""
    torch.manual_seed(0)
    model = lv.LadderVAE(x_dim=784, hidden=(64, 32), latent=(8, 4)).eval()
    with torch.no_grad():
        for head in model.inference.heads:
            head.linear.weight.zero_()                      # (mu_hat, var_hat) ignore x
        model.inference.heads[0].linear.bias[8:] = 50.0     # var_hat_1 large: q(z1) = prior
        model.generative.top_down[0][1].linear.weight.mul_(20.0)   # mu_p(z2) varies a lot
    x = mnist5k.test_binary[:300]
    plain = lv.unit_activity(model, x, n_samples=10, debias=False)
    debiased = lv.unit_activity(model, x)                 # 100 samples, noise removed
    many = lv.unit_activity(model, x, n_samples=2000, debias=False)   # noise / 2000
    assert (plain[0] > 1e-2).sum() >= 4                    # the plain estimate: noise
    assert (many[0] < 1e-2).all() and (debiased[0].abs() < 1e-2).all()
    assert lv.active_units(model, x) == [0, 0]
    assert lv.active_units(model, x, debias=False)[0] >= 4


def test_a_wrapped_table_wraps_in_html_and_keeps_numbers_whole():
    import pandas as pd
    frame = pd.DataFrame({"measured": ["-0.20 ± 0.05 nats at epoch 1000"],
                          "share": ["83 % of 2000"]})
    table = lv.plotting.wrapped(frame)
    html = table._repr_html_()
    assert 'class="dataframe lvae-wrap"' in html
    assert "-0.20\u00a0±\u00a00.05\u00a0nats at epoch 1000" in html
    assert "83\u00a0% of 2000" in html
    assert "-0.20 ± 0.05" in repr(table).replace("\u00a0", " ")
    assert frame.loc[0, "measured"] == "-0.20 ± 0.05 nats at epoch 1000"   # input untouched
