"""M2 and M1+M2 (Kingma et al., 2014) against independent oracles.

The oracle: a linear-Gaussian model with a discrete class,

    p(y) = 1/C,   z ~ N(0, I),   x | y, z ~ N(W z + b_y, s^2 I),

whose log p(x) = log sum_y p(y) N(x; b_y, W W^T + s^2 I) comes from
torch.distributions.MultivariateNormal. W has orthogonal columns, so the exact posterior
p(z | x, y) = N(Sigma W^T (x - b_y) / s^2, Sigma) with Sigma = (I + W^T W / s^2)^{-1} is
diagonal, and M2 can hold it exactly.
"""
import json
import math

import pytest
import torch
from torch import nn
from torch.distributions import MultivariateNormal

import lvae_core as lv
from lvae_core import checkpoints
from lvae_core import semisupervised as ss
from lvae_core.campaign import semisupervised as runs
from lvae_core import semisupervised_train as sst

F64 = torch.float64
D, DZ, C, S = 5, 2, 3, 0.5


class Oracle:
    def __init__(self, seed=0):
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(D, D, generator=g, dtype=F64))
        self.W = q[:, :DZ] * torch.tensor([1.5, 0.8], dtype=F64)      # orthogonal columns
        self.b = 1.5 * torch.randn(C, D, generator=g, dtype=F64)
        self.sigma = 1.0 / (1.0 + (self.W ** 2).sum(0) / S**2)         # diagonal of Sigma
        cov = self.W @ self.W.T + S**2 * torch.eye(D, dtype=F64)
        self.marginals = [MultivariateNormal(self.b[y], covariance_matrix=cov) for y in range(C)]

    def log_pxy(self, x):
        """log p(x, y) for every class, (B, C)."""
        return torch.stack([m.log_prob(x) for m in self.marginals], -1) - math.log(C)

    def log_px(self, x):
        return torch.logsumexp(self.log_pxy(x), -1)

    def sample(self, n, seed=1):
        g = torch.Generator().manual_seed(seed)
        y = torch.randint(C, (n,), generator=g)
        z = torch.randn(n, DZ, generator=g, dtype=F64)
        return z @ self.W.T + self.b[y] + S * torch.randn(n, D, generator=g, dtype=F64), y


class ExactEncoder(nn.Module):
    """q(z | x, y) = the exact posterior, its mean moved by ``shift`` and its variance
    scaled by ``var_scale`` (1 and 0: exact)."""

    def __init__(self, o, shift=0.0, var_scale=1.0):
        super().__init__()
        self.o, self.shift, self.var_scale = o, shift, var_scale
        self.register_buffer("W", o.W)

    def forward(self, x, y):
        mu = ((x - self.o.b[y]) @ self.W) * self.o.sigma / S**2 + self.shift
        return mu, (self.o.sigma * self.var_scale).expand_as(mu)


class LinearDecoder(nn.Module):
    def __init__(self, o):
        super().__init__()
        self.o = o

    def forward(self, z, y):
        mean = z @ self.o.W.T + self.o.b[y]
        return mean, torch.full_like(mean, S**2)


class FixedClassifier(nn.Module):
    """Logits from a fixed function: the exact log p(y | x) (up to a constant), or an
    arbitrary linear map."""

    def __init__(self, o, exact):
        super().__init__()
        self.o, self.exact = o, exact
        self.A = torch.randn(D, C, generator=torch.Generator().manual_seed(3), dtype=F64)

    def forward(self, x):
        return self.o.log_pxy(x) if self.exact else x @ self.A


def oracle_m2(o, exact_classifier=False, **encoder):
    return ss.M2(D, C, latent=DZ, likelihood="gaussian",
                 classifier=FixedClassifier(o, exact_classifier),
                 encoder=ExactEncoder(o, **encoder), decoder=LinearDecoder(o))


@pytest.fixture(scope="module")
def oracle():
    return Oracle()


def test_exact_posterior_gives_log_p_x_y(oracle):
    x, y = oracle.sample(40)
    model = oracle_m2(oracle)
    exact = oracle.log_pxy(x).gather(1, y[:, None])[:, 0]
    assert torch.allclose(model.labelled_bound(x, y, k=3), exact, atol=1e-4)
    assert torch.allclose(model.log_weights(x, y, k=4), exact.expand(4, -1), atol=1e-4)


def test_unlabelled_bound_is_below_log_p_x_and_tight_for_exact_q(oracle):
    x, _ = oracle.sample(40)
    log_px = oracle.log_px(x)
    u = oracle_m2(oracle).unlabelled_bound(x)
    assert (u <= log_px + 1e-9).all() and (u < log_px - 1e-3).any()
    # U = sum_y q(y|x) log p(x, y) + H(q) in closed form, with the arbitrary classifier
    q = torch.softmax(x @ FixedClassifier(oracle, False).A, -1)
    closed = (q * oracle.log_pxy(x)).sum(-1) - (q * q.log()).sum(-1)
    assert torch.allclose(u, closed, atol=1e-6)
    # with q(y|x) = p(y|x) the bound is log p(x)
    u_exact = oracle_m2(oracle, exact_classifier=True).unlabelled_bound(x)
    assert torch.allclose(u_exact, log_px, atol=1e-6)
    # an imperfect encoder: below log p(x) in expectation (many samples)
    u_rough = oracle_m2(oracle, exact_classifier=True, shift=0.4, var_scale=2.0) \
        .unlabelled_bound(x, k=500)
    assert (u_rough < log_px).all()


def test_summing_y_out_equals_enumerating_the_classes(oracle):
    x, _ = oracle.sample(8)
    model = oracle_m2(oracle, shift=0.3, var_scale=1.5)
    k = 20000
    q = torch.softmax(model.classifier(x), -1)
    loop = sum(q[:, y] * model.labelled_bound(x, torch.full((8,), y), k=k) for y in range(C))
    loop = loop - (q * q.log()).sum(-1)
    summed = model.unlabelled_bound(x, k=k)
    # each L(x, y) has a standard error of at most ~0.01 nats at k = 20000 here
    assert torch.allclose(summed, loop, atol=0.05)
    assert (summed - loop).abs().max() > 0        # different noise: not the same numbers


def test_importance_sampled_log_likelihood_converges(oracle):
    x, _ = oracle.sample(20)
    model = oracle_m2(oracle, shift=0.3, var_scale=2.0)
    exact = oracle.log_px(x)
    errors = [model.log_likelihood(x, k=k, seed=0, max_rows=900) - exact for k in (1, 30, 10000)]
    bias = [e.mean().item() for e in errors]
    assert bias[0] < bias[1] < -0.01 and abs(bias[2]) < 0.01      # from below, then close
    assert errors[2].abs().mean() < 0.03 < errors[0].abs().mean()
    # with the exact posterior every weight is p(x, y): exact for any k
    assert torch.allclose(oracle_m2(oracle).log_likelihood(x, k=2), exact, atol=1e-6)


def test_objective_is_the_rescaled_sum_of_the_bounds(oracle):
    x, y = oracle.sample(30)
    model = oracle_m2(oracle)                      # exact q(z|x,y): no noise in L or U
    x_l, y_l, x_u = x[:6], y[:6], x[6:]
    n_l, n_u, alpha = 60, 2400, 7.0
    out = model.objective(x_l, y_l, x_u, alpha=alpha, n_labelled=n_l, n_unlabelled=n_u)
    log_pxy = oracle.log_pxy(x_l).gather(1, y_l[:, None])[:, 0]
    log_q = torch.log_softmax(model.classifier(x_l), -1).gather(1, y_l[:, None])[:, 0]
    q = torch.softmax(model.classifier(x_u), -1)
    u = (q * oracle.log_pxy(x_u)).sum(-1) - (q * q.log()).sum(-1)
    expected = -(n_l / 6 * (log_pxy + alpha * log_q).sum() + n_u / 24 * u.sum()) / (n_l + n_u)
    assert out.loss.item() == pytest.approx(expected.item(), abs=1e-8)
    assert ss.paper_alpha(50000, 100) == 50.0


def test_class_conditional_layer_equals_a_dense_layer_on_the_one_hot_concatenation():
    layer = ss.ClassConditionalLinear(6, 4, 5)
    x, y = torch.randn(3, 6), torch.tensor([[0, 3, 1], [2, 2, 0]])
    concat = torch.cat([x.expand(2, -1, -1), nn.functional.one_hot(y, 4).float()], -1)
    assert torch.allclose(layer(x, y), layer.linear(concat), atol=1e-6)


def test_the_built_m2_bounds_and_shapes():
    torch.manual_seed(0)
    model = ss.M2(12, 4, hidden=(16,), latent=3, classifier_hidden=(8,))
    x = torch.rand(5, 12)
    assert model.log_weights(x, torch.tensor([0, 1, 2, 3, 0]), k=7).shape == (7, 5)
    assert model.unlabelled_bound(x).shape == (5,)
    ll = model.log_likelihood(x, k=200, seed=0)
    assert (model.unlabelled_bound(x, k=50) < ll).all()
    assert model.predict(x).shape == (5,)
    assert not any(isinstance(m, nn.BatchNorm1d) for m in model.modules())


# -- bad input -------------------------------------------------------------------------------

@pytest.mark.parametrize("labels, message", [
    (torch.tensor([0, 1, 3]), "class indices 0 .. 2"),
    (torch.tensor([0.0, 1.5, 2.0]), "non-integer"),
    (torch.tensor([0.0, float("nan"), 2.0]), "NaN labels"),
    (torch.tensor([0, -1, 2]), "label -1"),
    (torch.tensor([0, 1]), "2 labels for 3 images"),
])
def test_bad_labels_raise_clear_errors(oracle, labels, message):
    model = oracle_m2(oracle)
    x, _ = oracle.sample(3)
    with pytest.raises(ValueError, match=message):
        model.labelled_bound(x, labels)
    with pytest.raises(ValueError, match=message):
        model.objective(x, labels, x, alpha=1.0, n_labelled=30, n_unlabelled=300)


def test_other_bad_input(oracle):
    model = oracle_m2(oracle)
    x, y = oracle.sample(3)
    with pytest.raises(ValueError, match="cannot hold all 3 classes"):
        model.objective(x, y, x, alpha=1.0, n_labelled=2, n_unlabelled=300)
    with pytest.raises(ValueError, match="'sum' is the model"):
        model.objective(x, y, x, alpha=1.0, n_labelled=3, n_unlabelled=3, y="guess")
    with pytest.raises(ValueError, match="expected \\(batch, 5\\)"):
        model.unlabelled_bound(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="images in \\[0, 1\\]"):
        ss.M2(4, 2, hidden=4, latent=2, classifier_hidden=4).unlabelled_bound(torch.full((1, 4),
                                                                                         2.0))
    labels = torch.arange(100) % 10
    with pytest.raises(ValueError, match="smaller than the number of classes"):
        sst.balanced_labels(labels, 5, seed=0)
    with pytest.raises(ValueError, match="not divisible"):
        sst.balanced_labels(labels, 25, seed=0)
    with pytest.raises(ValueError, match="class 0 has only 10"):
        sst.balanced_labels(labels, 200, seed=0)
    with pytest.raises(ValueError, match="class 3 has only 4 images outside the excluded"):
        sst.balanced_labels(labels, 50, seed=0, exclude=torch.arange(3, 60, 10))
    with pytest.raises(ValueError, match="NaN labels"):
        sst.balanced_labels(torch.tensor([0.0, 1.0, float("nan")]), 2, seed=0, n_classes=2)
    with pytest.raises(ValueError, match="alpha"):
        sst.SSConfig(epochs=1, alpha=-1.0)


# -- splits, training, resuming --------------------------------------------------------------

@pytest.fixture(scope="module")
def digits():
    return lv.load_dataset("digits")


TINY = dict(hidden=(16,), latent=4, classifier_hidden=(16,))


def test_labelled_subsets_are_balanced_and_follow_the_seed(digits):
    a = sst.split(digits, 50, seed=0, n_valid=300)
    b = sst.split(digits, 50, seed=0, n_valid=300)
    c = sst.split(digits, 50, seed=1, n_valid=300)
    assert torch.equal(a.labelled_index, b.labelled_index)
    assert not torch.equal(a.labelled_index, c.labelled_index)
    assert torch.bincount(a.y_labelled, minlength=10).tolist() == [5] * 10
    n = digits.train_x.shape[0]
    assert a.labelled_index.max() < n - 300                 # never a validation image
    assert a.n_total == n - 300 and a.n_unlabelled == n - 350
    assert torch.equal(a.x_valid, c.x_valid)                 # one validation set for all draws
    assert torch.equal(digits.train_y[a.labelled_index], a.y_labelled)


def _numbers(history):
    """A history without its timings."""
    return {k: v for k, v in history.items() if k != "seconds"}


def _fit(data, config, **options):
    torch.manual_seed(123)                     # the run must not depend on the global stream
    model = ss.M2(data.x_dim, 10, **TINY)
    history = sst.fit_m2(model, data, config, progress=False, **options)
    return model, history


def test_seeds_reproduce_the_training_numbers(digits):
    data = sst.split(digits, 50, seed=0, n_valid=300)
    config = sst.SSConfig(epochs=2, batch_unlabelled=128, batch_labelled=10)
    _, h1 = _fit(data, config, cache=False)
    _, h2 = _fit(data, config, cache=False)
    _, h3 = _fit(data, config.replace(seed=1), cache=False)
    assert _numbers(h1) == _numbers(h2) and h1["loss"] != h3["loss"]
    assert h1["alpha"] == pytest.approx(0.1 * data.n_total / 50)
    assert len(h1["valid_error"]) == 2 and 1 <= h1["best_epoch"] <= 2
    assert h1["best_valid_error"] == min(h1["valid_error"])


def test_a_resumed_run_ends_with_the_parameters_of_an_uninterrupted_one(digits, tmp_path,
                                                                        monkeypatch):
    data = sst.split(digits, 50, seed=0, n_valid=300)
    config = sst.SSConfig(epochs=4, batch_unlabelled=128, batch_labelled=10, y="sum")
    straight, h_straight = _fit(data, config, cache=tmp_path / "a", checkpoint_every=2)
    original = checkpoints.save

    def save_then_stop(obj, path):
        original(obj, path)
        if str(path).endswith(".partial.pt"):
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        _fit(data, config, cache=tmp_path / "b", checkpoint_every=2)
    monkeypatch.setattr(checkpoints, "save", original)
    assert len(list((tmp_path / "b").glob("*.partial.pt"))) == 1
    resumed, h_resumed = _fit(data, config, cache=tmp_path / "b", checkpoint_every=2)
    assert _numbers(h_resumed) == _numbers(h_straight)
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert not list((tmp_path / "b").glob("*.partial.pt"))
    # finished: loaded from the cache, with the best parameters
    cached, h_cached = _fit(data, config, cache=tmp_path / "b")
    assert _numbers(h_cached) == _numbers(h_straight)
    assert all(torch.equal(a, b) for a, b in zip(cached.state_dict().values(),
                                                 straight.state_dict().values()))


def test_the_ablations_and_the_baseline_run(digits):
    data = sst.split(digits, 50, seed=0, n_valid=300)
    config = sst.SSConfig(epochs=1, batch_unlabelled=256, batch_labelled=10)
    _, h = _fit(data, config.replace(y="sample", alpha=0.0), cache=False)
    assert h["alpha"] == 0.0 and math.isfinite(h["loss"][0])
    classifier = ss.Classifier(data.x_dim, (16,), 10)
    h = sst.fit_classifier(classifier, data, config.replace(epochs=3), cache=False,
                           progress=False)
    assert h["best_valid_error"] == min(h["valid_error"]) < 0.9


def test_the_runner_writes_its_results_and_merges(digits, tmp_path, monkeypatch):
    vae = lv.VAE(x_dim=64, hidden=(32,), latent=(4,), batch_norm=False)
    lv.fit(vae, digits.train_x, lv.TrainConfig(epochs=20, batch_size=64), cache=False,
           progress=False)
    m1 = lv.save_checkpoint(vae, {}, tmp_path / "m1.pt")
    out = tmp_path / "results"
    monkeypatch.setattr("sys.argv", ["semisupervised_runs"])
    code = runs.main(["--data", "digits", "--labels", "50", "--draw", "0,1", "--method", "all",
                      "--epochs", "1", "--batch-unlabelled", "512", "--n-valid", "300",
                      "--hidden", "16", "--latent", "4", "--classifier-hidden", "16",
                      "--m1", str(m1), "--out", str(out), "--no-progress", "--ship-models",
                      "--threads", "1"])
    assert code == 0
    result = json.loads((out / "runs" / "m2-n50-d1.json").read_text())
    assert 0 <= result["test_error"] <= 100 and result["best_epoch"] == 1
    assert len(result["labelled_index"]) == 50 and result["labels_seed"] == 1
    assert result["config"]["seed"] == 1 and result["published_mnist"] is None
    assert (out / "runs" / "m1m2-n50-d0.curve.json").is_file()
    summary = json.loads((out / "results.json").read_text())["summary"]
    assert {(s["method"], s["n"]) for s in summary} == {(m, 2) for m in runs.METHODS}
    md = (out / "results.md").read_text()
    assert "11.97 ± 1.71" in md and "No published result" in md
    assert "--method all" in (out / "commands.txt").read_text()
    model, features, _ = runs.load_model(out / "models" / "m1m2-n50-d0.pt")
    assert isinstance(model, ss.M2) and features is not None
    assert model.predict(features(digits.test_x[:7])).shape == (7,)
    # finished runs are skipped
    before = (out / "runs" / "m2-n50-d0.json").stat().st_mtime_ns
    runs.main(["--data", "digits", "--labels", "50", "--draw", "0", "--method", "m2",
               "--epochs", "1", "--n-valid", "300", "--out", str(out), "--no-progress"])
    assert (out / "runs" / "m2-n50-d0.json").stat().st_mtime_ns == before
    # the paired differences, against the per-run JSON files read by hand
    result = runs.read_results(out)
    rows = {(r["method"], r["draw"]): r["test_error"] for r in result["rows"]}
    (paired,) = runs.paired_differences(result, "m2")
    expected = [rows["m2", d] - rows["supervised", d] for d in (0, 1)]
    assert paired["draws"] == [0, 1] and paired["n_labels"] == 50
    assert paired["differences"] == pytest.approx(expected)
    assert paired["mean"] == pytest.approx(sum(expected) / 2)
    assert paired["se"] == pytest.approx(abs(expected[0] - expected[1]) / 2)


def test_paired_differences_use_only_draws_both_methods_have():
    def row(method, draw, error, n_labels=100):
        return dict(method=method, draw=draw, test_error=error, n_labels=n_labels)
    result = dict(rows=[row("supervised", 0, 20.0), row("supervised", 1, 22.0),
                        row("m2", 1, 25.0), row("m2", 2, 30.0), row("m2", 0, 1.0, 1000)])
    (paired,) = runs.paired_differences(result, "m2")
    assert paired == dict(n_labels=100, draws=[1], differences=[3.0], mean=3.0, se=None)
    assert runs.paired_differences(result, "m1m2") == []
