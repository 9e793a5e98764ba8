"""The reproduction driver: names, filters, sharding, a tiny end-to-end run, resuming, merging."""
import json

import pytest

from lvae_core import campaign
from lvae_core.campaign import runner
from lvae_core.cli import main as cli_main


def test_names_are_stable_and_unique():
    names = [c.name for c in campaign.list_configs("all")]
    assert len(names) == len(set(names)) == 25 + 12
    for name in ("lvae-L5-bn-wu", "hvae-L2-plain", "hvae-L1-bn-wu", "iwae-L1-k50", "vae-L2-k1",
                 "iwae-L2-k5"):
        assert name in names
    assert [c.name for c in campaign.list_configs("iwae")][:6] == \
        ["vae-L1-k1", "iwae-L1-k1", "iwae-L1-k5", "iwae-L1-k50", "vae-L1-k5", "vae-L1-k50"]
    vae50 = next(c for c in campaign.iwae_grid() if c.name == "vae-L2-k50")
    s = vae50.train
    assert (s.k, s.objective, s.adam_eps) == (50, "elbo", 1e-4)
    assert campaign.published("mnist", "vae-L1-k50")[0] == 86.35


def test_configurations_follow_the_papers():
    lvae5 = next(c for c in campaign.lvae_grid() if c.name == "lvae-L5-bn-wu")
    assert lvae5.model.hidden == (512, 256, 128, 64, 32) and lvae5.model.latent == (64, 32, 16, 8, 4)
    assert lvae5.kind == "lvae" and lvae5.model.batch_norm and lvae5.warmup
    s = lvae5.train
    assert (s.epochs, s.warmup_epochs, s.lr, s.batch_size) == (2000, 200, 2e-4, 256)
    hvae2 = next(c for c in campaign.lvae_grid() if c.name == "hvae-L2-plain")
    assert hvae2.model.latent == (64, 32) and not hvae2.model.batch_norm and not hvae2.warmup
    assert hvae2.train.warmup_epochs == 0
    iwae2 = next(c for c in campaign.iwae_grid() if c.name == "iwae-L2-k50")
    assert iwae2.model.hidden == (200, 100) and iwae2.model.latent == (100, 50) and iwae2.k == 50
    s = iwae2.train
    assert (s.epochs, s.batch_size, s.lr_schedule, s.init_output_bias) == \
        (3280, 20, "iwae", True)
    # shortened protocols keep the warm-up's share of the epochs
    assert lvae5.replace(epochs_scale=0.01).train.epochs == 20
    assert lvae5.replace(epochs=10).train.warmup_epochs == pytest.approx(1.0)


def test_only_filters_by_name_or_glob():
    assert [c.name for c in campaign.list_configs("all", "iwae-L1-k5")] == ["iwae-L1-k5"]
    assert {c.name for c in campaign.list_configs("lvae", "lvae-L5-*")} == \
        {"lvae-L5-plain", "lvae-L5-bn-wu"}
    assert campaign.list_configs("iwae", "lvae-*") == []
    assert {c.name for c in campaign.list_configs("lvae", "*-L2-bn")} == {"hvae-L2-bn"}
    with pytest.raises(ValueError, match="unknown grid"):
        campaign.list_configs("nope")


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 40])
def test_shards_partition_the_grid(n):
    configs = campaign.list_configs("all")
    shards = [campaign.shard(configs, i, n) for i in range(n)]
    names = [c.name for s in shards for c in s]
    assert sorted(names) == sorted(c.name for c in configs)   # each exactly once
    assert campaign.parse_shard(f"{n - 1}/{n}") == (n - 1, n)
    with pytest.raises(ValueError):
        campaign.parse_shard(f"{n}/{n}")


def test_published_numbers():
    assert campaign.published("mnist", "lvae-L5-bn-wu")[0] == 82.12
    assert campaign.published("mnist", "iwae-L1-k50")[0] == 84.78
    assert campaign.published("fashion-mnist", "vae-L1-k1")[0] == 228.70
    assert campaign.published("mnist-5k", "lvae-L5-bn-wu") is None


def test_tiny_run_resumes_and_merges(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("LVAE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    argv = ["reproduce", "--data", "digits", "--grid", "all", "--only", "lvae-L2-bn-wu,vae-L1-k1",
            "--epochs", "1", "--n-train", "120", "--n-test", "30", "--eval-k", "4",
            "--out", str(out), "--no-progress"]
    assert cli_main(argv) == 0
    runs = sorted(p.name for p in (out / "runs").iterdir())
    assert runs == [f"{n}.{end}" for n in ("lvae-L2-bn-wu", "vae-L1-k1")
                    for end in ("curve.json", "curve.npz", "json", "per_image.npz")]
    row = json.loads((out / "runs" / "lvae-L2-bn-wu.json").read_text())
    assert row["data"] == "digits" and row["n_test"] == 30 and row["eval_k"] == 4
    assert row["fit"]["epochs"] == 1 and row["shortened"] and len(row["active_units"]) == 2
    assert row["test_nll"] <= -row["test_elbo"] + 1e-4    # L_k >= ELBO from the same samples

    # a second run finds the results and trains nothing
    def refuse(*args, **kwargs):
        raise AssertionError("a finished configuration was run again")
    monkeypatch.setattr(runner, "train_and_score", refuse)
    assert cli_main(argv) == 0

    # merging (also as its own step) writes both files with one row per configuration
    assert cli_main(["reproduce", "--merge", str(out)]) == 0
    summary = json.loads((out / "results.json").read_text())
    assert [r["name"] for r in summary["rows"]] == ["lvae-L2-bn-wu", "vae-L1-k1"]
    assert summary["shortened"]
    md = (out / "results.md").read_text()
    assert "| lvae-L2-bn-wu | digits |" in md and "| vae-L1-k1 | digits |" in md
    assert "Shortened protocol" in md and "--data mnist --grid lvae" in md
    assert "These numbers come from a shortened protocol" in md   # every row is shortened

    # a table mixing full-length and shortened runs names the shortened ones
    rows = [dict(summary["rows"][0], name="full-run", shortened=False),
            dict(summary["rows"][1], name="short-run", shortened=True)]
    md = campaign.markdown(dict(summary, rows=rows))
    assert "The rows short-run (fewer epochs" in md and "full-run," not in md.split("|")[0]
    assert "These numbers come from" not in md
    md = campaign.markdown(dict(summary, rows=rows[:1], shortened=False))
    assert "Shortened protocol" not in md


def test_merge_needs_results(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the grid first"):
        campaign.merge(tmp_path)
