"""Results of full-length runs: learning-curve snapshots, per-image log-likelihoods, paired
differences, shipped float16 models and the merged tables."""
import dataclasses
import json

import numpy as np
import pytest
import torch
from scipy import stats

import lvae_core as lv
from lvae_core import campaign, comparison
from lvae_core.campaign import curves, runner, shipping
from lvae_core.results import Results
from lvae_core.models import build_model
from lvae_core.train import snapshot_path


def test_paired_difference_matches_the_paired_t_test():
    rng = np.random.default_rng(0)
    base = rng.normal(-230.0, 30.0, size=500)         # images differ a lot in difficulty
    a = base + rng.normal(0.4, 1.0, size=500)         # model a: 0.4 nats better per image
    b = base
    row = comparison.paired_difference(a, b)
    t = stats.ttest_rel(a, b)
    # NLL_a - NLL_b = -(mean a - mean b); z is the paired t statistic with the sign flipped
    assert row["delta_nll"] == pytest.approx(-(a.mean() - b.mean()))
    assert row["z"] == pytest.approx(-t.statistic)
    assert row["se"] == pytest.approx(np.std(a - b, ddof=1) / np.sqrt(500))
    # the spread across images (about 30 / sqrt(500)) is far wider than the paired SE
    assert row["se_a"] > 20 * row["se"]
    assert comparison.verdict(row) == "a better"


def test_paired_standard_error_covers_the_true_difference():
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(400):
        base = rng.normal(0.0, 10.0, size=200)
        a, b = base + rng.normal(-0.1, 0.5, size=200), base
        row = comparison.paired_difference(a, b)
        covered += abs(row["delta_nll"] - 0.1) < 1.96 * row["se"]
    assert 0.92 < covered / 400 < 0.98          # a 95 % interval covers about 95 % of the time


def test_paired_difference_rejects_mismatched_images():
    with pytest.raises(ValueError, match="same images"):
        comparison.paired_difference(np.zeros(10), np.zeros(11))
    with pytest.raises(ValueError, match="at least 2"):
        comparison.paired_difference(np.zeros(1), np.zeros(1))


def _tiny_data():
    return lv.load_dataset("mnist-5k").subset(300, 120)


def _model(seed=0):
    torch.manual_seed(seed)
    return build_model("lvae", x_dim=784, hidden=[64, 32], latent=[8, 4], batch_norm=True,
                       activation="leaky_relu")


def test_a_snapshot_is_the_model_after_that_epoch(tmp_path):
    data = _tiny_data()
    settings = lv.TrainConfig(epochs=3, batch_size=64, lr=1e-3, seed=3)
    long = _model()
    lv.fit(long, data, settings, snapshot_epochs=(1, 3), snapshot_dir=tmp_path / "s",
           progress=False)
    short = _model()
    lv.fit(short, data, settings.replace(epochs=1), progress=False)   # stops at the snapshot
    snap, history = lv.load_checkpoint(snapshot_path(tmp_path / "s", 1))
    assert history["epoch"] == [1]
    for (name, p), q in zip(short.state_dict().items(), snap.state_dict().values()):
        assert torch.equal(p.cpu(), q.cpu()), name
    last, _ = lv.load_checkpoint(snapshot_path(tmp_path / "s", 3))
    for p, q in zip(long.state_dict().values(), last.state_dict().values()):
        assert torch.equal(p.cpu(), q.cpu())
    with pytest.raises(ValueError, match="snapshot_dir"):
        lv.fit(_model(), data, settings.replace(epochs=1), snapshot_epochs=(1,), progress=False)


def test_a_shipped_float16_model_keeps_its_likelihood(tmp_path):
    data = _tiny_data()
    model = _model()
    history = lv.fit(model, data, lv.TrainConfig(epochs=2, batch_size=64), progress=False)
    path = shipping.ship(model, history, tmp_path / "m.pt")
    stored = torch.load(path, weights_only=True)["state_dict"]
    assert all(t.dtype == torch.float16 for n, t in stored.items()
               if t.is_floating_point() and "running" not in n)
    loaded, h = lv.load_checkpoint(path)
    x = data.test_binary
    ll32 = lv.log_likelihood(model, x, k=50, seed=0)
    ll16 = lv.log_likelihood(loaded, x, k=50, seed=0)
    assert h["bound"] == history["bound"]
    # float16 keeps about 3 significant digits of each weight: within 0.1 nats per image
    assert (ll32 - ll16).abs().mean() < 0.1
    assert path.stat().st_size < 0.6 * sum(t.numel() * 4 for t in model.state_dict().values())


def test_run_writes_curves_per_image_values_and_paired_tables(tmp_path):
    data = _tiny_data()
    out = tmp_path / "out"
    configs = {c.name: c for c in campaign.list_configs("lvae", "*-L1-bn-wu")}
    results = {}
    for name, c in configs.items():
        c = dataclasses.replace(c, model=c.model.replace(hidden=(64,), latent=(8,)))
        results[name] = runner.train_and_score(c.replace(epochs=3, eval_k=20), data, out,
                                               progress=False, ship_model=True, curves=True)
        assert results[name]["model"] == c.model.kwargs()          # the run's record
        assert results[name]["fit"]["epochs"] == 3 and results[name]["eval"]["k"] == 20
    for name in configs:
        per_image = Results(out).per_image(name)
        assert per_image["log_likelihood"].shape == (120,)
        assert per_image["log_likelihood"].mean() == pytest.approx(-results[name]["test_nll"])
        assert (per_image["log_likelihood"] >= per_image["elbo"] - 1e-4).all()
        curve = json.loads((out / "runs" / f"{name}.curve.json").read_text())
        assert [p["epoch"] for p in curve["points"]] == [1, 3]
        assert curve["n_images"] == 120 and curve["k"] == campaign.CURVE_K
        assert (out / "models" / f"{name}.pt").is_file()
        # the final estimate's progress file is gone once the estimate is saved
        assert not list(curves.snapshot_dir(configs[name], out).glob("*.progress.pt"))
    # a hypothetical comparison between the two runs, to exercise the merged tables
    pairs = (("lvae-L1-bn-wu", "hvae-L1-bn-wu", "ladder against bottom-up, 1 layer"),)
    summary = campaign.merge(out)
    assert len(summary["rows"]) == 2                  # curve files are not result rows
    ll = {n: Results(out).per_image(n)["log_likelihood"] for n in configs}
    row = comparison.differences(ll, pairs)[0]
    direct = comparison.paired_difference(ll["lvae-L1-bn-wu"], ll["hvae-L1-bn-wu"])
    assert row["delta_nll"] == pytest.approx(direct["delta_nll"])
    assert row["delta_nll"] == pytest.approx(results["lvae-L1-bn-wu"]["test_nll"]
                                             - results["hvae-L1-bn-wu"]["test_nll"])
    by_epoch = Results(out).curve_images("lvae-L1-bn-wu")
    assert sorted(by_epoch) == [1, 3] and by_epoch[3].shape == (120,)
    text = (out / "results.md").read_text()
    assert "## Learning curves" in text


def test_paired_table_rows_match_the_t_test():
    rng = np.random.default_rng(2)
    base = rng.normal(-100.0, 20.0, size=300)
    ll = {"x": base + rng.normal(0.0, 1.0, size=300), "y": base,
          "w": base - 1.0 + rng.normal(0.0, 0.1, size=300)}
    table = comparison.paired_table(ll, [("x", "y"), ("w", "y")])
    assert list(table.index) == ["x − y", "w − y"]
    t = stats.ttest_rel(ll["x"], ll["y"]).statistic
    assert table.loc["x − y", "z"] == pytest.approx(-t, abs=0.05)
    assert table.loc["w − y", "ΔNLL (nats)"] == pytest.approx(1.0, abs=0.02)
    assert table.loc["w − y", "verdict"] == "b better"


def test_the_newest_snapshot_of_an_unfinished_run_is_shipped_with_its_pca(tmp_path):
    data = _tiny_data()
    out = tmp_path / "out"
    base = campaign.list_configs("lvae", "lvae-L2-bn-wu")[0]
    c = dataclasses.replace(base, model=base.model.replace(hidden=(64, 32), latent=(8, 4)))
    model = build_model(c.model)
    lv.fit(model, data, lv.TrainConfig(epochs=2, batch_size=64, seed=1), progress=False,
           snapshot_epochs=(1, 2), snapshot_dir=curves.snapshot_dir(c, out))
    path = shipping.ship_latest_snapshot(c, data, out)
    assert path == out / "models" / f"{c.name}.pt"
    shipped, history = Results(out).model(c.name)
    assert len(history["epoch"]) == 2                  # the newest snapshot: epoch 2
    # the PCA coordinates against numpy's SVD of the same posterior samples
    snap, _ = lv.load_checkpoint(snapshot_path(curves.snapshot_dir(c, out), 2))
    n = data.test_binary.shape[0]
    samples = lv.latent_samples(snap, data.test_binary[:n], seed=0)
    with np.load(path.with_suffix(".pca.npz")) as f:
        assert (f["labels"] == data.test_y[:n].numpy()).all()
        for i, z in enumerate(samples, start=1):
            z = z.double().numpy()
            zc = z - z.mean(0)
            _, s, vt = np.linalg.svd(zc, full_matrices=False)
            assert f[f"ratio_z{i}"] == pytest.approx((s ** 2 / (s ** 2).sum())[:2], rel=1e-4)
            coords = zc @ vt[:2].T
            assert np.abs(f[f"z{i}"]) == pytest.approx(np.abs(coords), abs=1e-3)
    # once the run has finished (its result exists), its shipped final model is left alone
    (out / "runs").mkdir(parents=True, exist_ok=True)
    (out / "runs" / f"{c.name}.json").write_text("{}")
    assert shipping.ship_latest_snapshot(c, data, out) is None


def test_paired_by_epoch_is_the_paired_difference_at_each_epoch(tmp_path):
    rng = np.random.default_rng(3)
    res = Results(tmp_path)
    base = -230 + 5 * rng.standard_normal(300)
    shifts = {1: 5.0, 10: 0.8, 100: -0.2}                  # NLL_a − NLL_b built in
    for epoch, shift in shifts.items():
        noise = 0.2 * rng.standard_normal((2, 300))
        res.add_curve_images("lvae-L2-bn-wu", epoch, base - shift + noise[0])
        res.add_curve_images("hvae-L2-bn-wu", epoch, base + noise[1])
    res.add_curve_images("hvae-L2-bn-wu", 300, base)      # reached by one run only
    table = res.paired_by_epoch("lvae-L2-bn-wu", "hvae-L2-bn-wu")
    assert list(table.index) == [1, 10, 100]
    assert table["ΔNLL"].dtype == np.float64                 # printed as "-0.20", not "-0.2"
    for epoch in shifts:
        ll_a = res.curve_images("lvae-L2-bn-wu")[epoch]
        ll_b = res.curve_images("hvae-L2-bn-wu")[epoch]
        t = stats.ttest_rel(-ll_a, -ll_b)
        d = (-ll_a + ll_b).mean()
        assert table.loc[epoch, "ΔNLL"] == pytest.approx(d, abs=0.006)
        assert table.loc[epoch, "paired SE"] == pytest.approx(d / t.statistic, abs=0.006)
    assert list(table["verdict"]) == ["HVAE better", "HVAE better", "LVAE better"]
