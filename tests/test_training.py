"""Training: it learns, it is reproducible, the cache works, and divergence is handled."""
import copy
import math

import pytest
import torch

import lvae_core as lv
import lvae_core.train as train_module
from lvae_core import checkpoints

TINY = dict(hidden=(64, 32), latent=(16, 8))


def test_short_training_raises_test_log_likelihood(mnist5k):
    data = mnist5k.subset(n_train=2000, n_test=200)
    model = lv.LadderVAE(x_dim=784, **TINY)
    before = lv.log_likelihood(model, data.test_binary, k=100, seed=0).mean().item()
    history = lv.fit(model, data, lv.TrainConfig(epochs=3, warmup_epochs=1, seed=0), progress=False)
    after = lv.log_likelihood(model, data.test_binary, k=100, seed=0).mean().item()
    assert after > before + 100, (before, after)
    assert len(history["bound"]) == 3 and history["bound"][-1] > history["bound"][0]
    assert all(len(kl) == 2 for kl in history["kl"])
    assert history["beta"][0] == pytest.approx(1.0) and history["beta"][-1] == 1.0


def test_same_seed_same_numbers_and_different_seed_differs(mnist5k):
    data = mnist5k.subset(n_train=512)
    runs = []
    for seed in (1, 1, 2):
        model = lv.HierarchicalVAE(x_dim=784, **TINY)
        history = lv.fit(model, data, lv.TrainConfig(epochs=2, seed=seed), cache=False, progress=False)
        runs.append((history["bound"], [p.detach().clone() for p in model.parameters()]))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
    assert runs[0][0] != runs[2][0]


def test_iwae_training_and_warmup_schedule(mnist5k):
    data = mnist5k.subset(n_train=256)
    model = lv.VAE(x_dim=784, hidden=32, latent=4)
    history = lv.fit(model, data, lv.TrainConfig(epochs=2, k=5, warmup_epochs=4, batch_size=64), progress=False)
    assert history["beta"] == [0.25, 0.5]
    assert all(math.isfinite(b) for b in history["bound"])
    assert lv.warmup_beta(0.0, 200) == 0.0 and lv.warmup_beta(100, 200) == 0.5
    assert lv.warmup_beta(300, 200) == 1.0 and lv.warmup_beta(3, 0) == 1.0


def test_iwae_learning_rate_schedule():
    f = train_module.iwae_lr_factor
    assert f(0, 3280) == 1.0                     # stage 1: 1 epoch
    assert f(1, 3280) == pytest.approx(10 ** (-1 / 7))
    assert f(4, 3280) == pytest.approx(10 ** (-2 / 7))   # stages of 1, 3, 9, ... epochs
    assert f(3279, 3280) == pytest.approx(10 ** (-1))


def test_cache_loads_instead_of_training(mnist5k, monkeypatch, tmp_path):
    data = mnist5k.subset(n_train=256)
    first = lv.LadderVAE(x_dim=784, **TINY)
    history = lv.fit(first, data, lv.TrainConfig(epochs=1), cache=tmp_path, progress=False)
    assert len(list(tmp_path.glob("*.pt"))) == 1

    def no_training(*args, **kwargs):
        raise AssertionError("trained again although a checkpoint of this configuration exists")

    monkeypatch.setattr(train_module, "_train_loop", no_training)
    second = lv.LadderVAE(x_dim=784, **TINY)
    assert lv.fit(second, data, lv.TrainConfig(epochs=1), cache=tmp_path, progress=False) == history
    for a, b in zip(first.state_dict().values(), second.state_dict().values()):
        assert torch.equal(a, b)
    # another configuration is not served from the cache
    with pytest.raises(AssertionError, match="trained again"):
        lv.fit(lv.LadderVAE(x_dim=784, **TINY), data, lv.TrainConfig(epochs=1, lr=5e-4), cache=tmp_path, progress=False)


def test_damaged_checkpoint_is_retrained_not_a_crash(mnist5k, tmp_path):
    data = mnist5k.subset(n_train=256)
    lv.fit(lv.VAE(x_dim=784, hidden=32, latent=4), data, lv.TrainConfig(epochs=1), cache=tmp_path, progress=False)
    (path,) = tmp_path.glob("*.pt")
    path.write_bytes(path.read_bytes()[:100])
    model = lv.VAE(x_dim=784, hidden=32, latent=4)
    with pytest.warns(RuntimeWarning, match="damaged"):
        history = lv.fit(model, data, lv.TrainConfig(epochs=1), cache=tmp_path, progress=False)
    assert len(history["bound"]) == 1
    torch.load(path, weights_only=True)   # rewritten, whole


def test_nan_loss_stops_with_epoch_and_hint_and_keeps_last_good(mnist5k, tmp_path):
    data = mnist5k.subset(n_train=256)
    model = lv.VAE(x_dim=784, hidden=32, latent=4)
    lv.fit(lv.VAE(x_dim=784, hidden=32, latent=4), data, lv.TrainConfig(epochs=1), cache=tmp_path, progress=False)
    saved_before = {p: p.read_bytes() for p in tmp_path.glob("*.pt")}
    original, calls = model.generative.log_px, {"n": 0}

    def log_px_turning_nan(x, z1):
        calls["n"] += 1
        out = original(x, z1)
        return out * float("nan") if calls["n"] > 4 else out   # 4 steps of 64 = epoch 1

    model.generative.log_px = log_px_turning_nan
    with pytest.raises(lv.TrainingDivergedError, match="epoch 2") as err:
        lv.fit(model, data, lv.TrainConfig(epochs=3, batch_size=64), cache=tmp_path, progress=False)
    assert "learning rate" in str(err.value)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    last_good = list(tmp_path.glob("*.last_good.pt"))
    assert len(last_good) == 1 and str(last_good[0]) in str(err.value)
    state = torch.load(last_good[0], weights_only=True)["state_dict"]
    for name, value in model.state_dict().items():
        assert torch.equal(state[name], value.cpu())
    for path, content in saved_before.items():          # nothing already saved is lost
        assert path.read_bytes() == content


def test_resumable_checkpoints_give_the_same_result(mnist5k, tmp_path, monkeypatch):
    data = mnist5k.subset(n_train=256)
    straight = lv.HierarchicalVAE(x_dim=784, **TINY)
    h_straight = lv.fit(straight, data, lv.TrainConfig(epochs=4), cache=False, progress=False)

    calls = {"n": 0}
    original = checkpoints.save

    def save_then_stop(obj, path):
        original(obj, path)
        if str(path).endswith(".partial.pt"):
            calls["n"] += 1
            if calls["n"] == 1:
                raise KeyboardInterrupt   # interrupted right after the epoch-2 checkpoint

    monkeypatch.setattr(checkpoints, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        lv.fit(lv.HierarchicalVAE(x_dim=784, **TINY), data, lv.TrainConfig(epochs=4), checkpoint_every=2, cache=tmp_path, progress=False)
    resumed = lv.HierarchicalVAE(x_dim=784, **TINY)
    h_resumed = lv.fit(resumed, data, lv.TrainConfig(epochs=4), checkpoint_every=2, cache=tmp_path, progress=False)
    assert h_resumed["bound"] == pytest.approx(h_straight["bound"], rel=1e-5)
    assert not list(tmp_path.glob("*.partial.pt"))


def test_choose_device():
    assert lv.choose_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else None
    if expected:
        assert lv.choose_device().type == "cuda"
    elif not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        assert lv.choose_device().type == "cpu"


def test_k_sample_elbo_objective_differs_from_iwae(mnist5k):
    data = mnist5k.subset(n_train=256)
    runs = {}
    for objective in ("iwae", "elbo"):
        model = lv.VAE(x_dim=784, hidden=32, latent=4)
        runs[objective] = lv.fit(model, data, lv.TrainConfig(epochs=1, k=5, objective=objective), cache=False, progress=False)["bound"][0]
    assert runs["iwae"] != runs["elbo"]
    with pytest.raises(ValueError, match="objective"):
        lv.TrainConfig(epochs=1, objective="kl")


def test_an_objective_never_chosen_follows_k_through_replace(mnist5k):
    """TrainConfig(epochs=1) has the ELBO because k = 1; replace(k=5) must give L_5, as
    TrainConfig(epochs=1, k=5) does, and train exactly like it. A chosen objective stays."""
    base = lv.TrainConfig(epochs=1, batch_size=64)
    assert base.replace(k=5).objective == "iwae" == lv.TrainConfig(epochs=1, k=5).objective
    assert base.replace(k=5) == lv.TrainConfig(epochs=1, batch_size=64, k=5)
    chosen = lv.TrainConfig(epochs=1, batch_size=64, k=1, objective="elbo")
    assert chosen.replace(k=5).objective == "elbo"
    assert base.replace(k=5, objective="elbo").objective == "elbo"
    assert base.replace(k=5, objective="elbo").replace(k=50).objective == "elbo"
    data = mnist5k.subset(n_train=256)
    bounds = {}
    for name, config in (("replaced", base.replace(k=5)),
                         ("direct", lv.TrainConfig(epochs=1, batch_size=64, k=5)),
                         ("elbo", base.replace(k=5, objective="elbo"))):
        model = lv.VAE(x_dim=784, hidden=32, latent=4)
        bounds[name] = lv.fit(model, data, config, cache=False, progress=False)["bound"][0]
    assert bounds["replaced"] == bounds["direct"] != bounds["elbo"]


class _GradientsOnly:
    """An optimizer that keeps each step's gradients instead of moving the parameters."""

    def __init__(self, params):
        self.params, self.grads = list(params), []

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            p.grad = None

    def step(self):
        self.grads.append([p.grad.clone() for p in self.params])


@pytest.mark.parametrize("k, objective", [(1, "elbo"), (5, "iwae"), (5, "elbo")])
@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0])
def test_the_step_differentiates_the_warmed_up_bound_for_every_beta(k, objective, beta):
    """The one step, at any beta (1 included), follows the gradient of
    -mean_b bound_b(log p(x|z) - beta KL), with the bound written out here; it reports the
    bound at beta = 1 and the KL per unit, both summed over the batch."""
    torch.manual_seed(0)
    model = lv.LadderVAE(x_dim=784, **TINY)
    oracle = copy.deepcopy(model)
    x = (torch.rand(16, 784) < 0.3).float()
    config = lv.TrainConfig(epochs=1, k=k, objective=objective, clip_grad=None)
    step, optimizer = train_module.TrainingStep(model, config, "cpu"), _GradientsOnly(
        model.parameters())
    torch.manual_seed(1)
    report, kl_part = step(x, beta, optimizer)

    torch.manual_seed(1)                                  # the same noise
    trace = oracle.trace(x, k)
    kl = sum(trace.kl)                                    # (k, B)
    bound = {"iwae": lambda lw: torch.logsumexp(lw, 0) - math.log(k),
             "elbo": lambda lw: lw.mean(0)}[objective]
    (-bound(trace.log_px - beta * kl).mean()).backward()
    for mine, expected in zip(optimizer.grads[0], (p.grad for p in oracle.parameters())):
        torch.testing.assert_close(mine, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(report, bound(trace.log_px - kl).sum().detach())
    units = torch.cat([u.mean(0).sum(0) for u in trace.kl_units]).detach()
    torch.testing.assert_close(kl_part, units)


def test_an_epoch_visits_every_image_once_with_beta_rising_per_step():
    """train_epoch: each image once, in a fresh order each epoch, beta = (epoch + i/steps) / T
    at step i of T warm-up epochs; the epoch's bound is the steps' reports over the images."""
    seen = []

    class Spy(train_module.TrainingStep):
        def __call__(self, xb, beta, optimizer):
            report, kl_part = super().__call__(xb, beta, optimizer)
            seen.append((xb.clone(), beta, report.item()))
            return report, kl_part

    torch.manual_seed(0)
    model = lv.VAE(x_dim=20, hidden=8, latent=2, likelihood="gaussian", batch_norm=False)
    x_all = torch.randn(10, 20)                          # not binarized: a Gaussian likelihood
    config = lv.TrainConfig(epochs=3, batch_size=4, warmup_epochs=2)
    step = Spy(model, config, "cpu")
    optimizer = torch.optim.Adam(model.parameters())
    generator = torch.Generator().manual_seed(0)
    orders = []
    for epoch in (0, 1):
        seen.clear()
        bound, kl = train_module.train_epoch(step, optimizer, x_all, generator, epoch)
        assert [b.shape[0] for b, _, _ in seen] == [4, 4, 2]
        assert [beta for _, beta, _ in seen] == pytest.approx(
            [(epoch + i / 3) / 2 for i in range(3)], abs=1e-12)
        batches = torch.cat([b for b, _, _ in seen])
        order = [int((x_all == row).all(1).nonzero()) for row in batches]
        assert sorted(order) == list(range(10))          # a permutation of the images
        orders.append(order)
        assert bound == pytest.approx(sum(r for _, _, r in seen) / 10, rel=1e-6)
        assert [t.shape for t in kl] == [(2,)]
    assert orders[0] != orders[1]                        # a fresh order each epoch


def test_stopped_and_resumed_run_is_the_straight_run_bit_for_bit(mnist5k, tmp_path):
    """stop_after, then the same call without it: the loop resumes with the parameters,
    optimizer and random streams of the partial checkpoint, through the end of warm-up, and
    ends exactly where the uninterrupted run does."""
    data = mnist5k.subset(n_train=256)
    config = lv.TrainConfig(epochs=4, batch_size=64, warmup_epochs=3)
    straight = lv.LadderVAE(x_dim=784, **TINY)
    h_straight = lv.fit(straight, data, config, cache=False, progress=False)
    stopped = lv.LadderVAE(x_dim=784, **TINY)
    h_stopped = lv.fit(stopped, data, config, cache=tmp_path, checkpoint_every=1,
                       stop_after=2, progress=False)
    assert len(h_stopped["bound"]) == 2 and list(tmp_path.glob("*.partial.pt"))
    resumed = lv.LadderVAE(x_dim=784, **TINY)
    h_resumed = lv.fit(resumed, data, config, cache=tmp_path, checkpoint_every=1,
                       progress=False)
    for key in h_straight.keys() - {"seconds"}:
        assert h_resumed[key] == h_straight[key], key
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert not list(tmp_path.glob("*.partial.pt")) and len(list(tmp_path.glob("*.pt"))) == 1
