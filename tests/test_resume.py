"""A run interrupted on one machine resumes on another from the results folder's stash
(``lvae_core.campaign.resume``), to the history of a run never interrupted."""
import json

import pytest
import torch

import lvae_core as lv
from lvae_core import checkpoints
from lvae_core.campaign import resume
from lvae_core.train import snapshot_path

TINY = dict(hidden=(32, 16), latent=(4, 2))


def _interrupted(data, cache, snapshots, monkeypatch):
    """Train 4 epochs with a partial checkpoint every 2 and a snapshot after epochs 1 and 3,
    stopped right after the epoch-2 checkpoint (only the epoch-1 snapshot exists)."""
    original = checkpoints.save

    def save_then_stop(obj, path):
        original(obj, path)
        if str(path).endswith(".partial.pt"):
            raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints, "save", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        lv.fit(lv.HierarchicalVAE(x_dim=784, **TINY), data, lv.TrainConfig(epochs=4),
               checkpoint_every=2, cache=cache / "checkpoints", progress=False,
               snapshot_epochs=(1, 3), snapshot_dir=snapshots)
    monkeypatch.setattr(checkpoints, "save", original)


def test_a_stashed_run_resumes_elsewhere_to_the_same_history(mnist5k, tmp_path, monkeypatch):
    data = mnist5k.subset(n_train=256)
    straight = lv.fit(lv.HierarchicalVAE(x_dim=784, **TINY), data, lv.TrainConfig(epochs=4),
                      cache=False, progress=False)
    out = tmp_path / "results" / "protocol"
    first, second = tmp_path / "cache-a", tmp_path / "cache-b"
    _interrupted(data, first, first / "snapshots" / "protocol" / "run", monkeypatch)

    done = resume.stash(out, cache=first)
    stashed = list((out / "resume" / "checkpoints").glob("*.partial.pt"))
    assert len(stashed) == 1 and done["copied"] == [stashed[0].name, "run/epoch00001.pt"]
    manifest = (out / "resume" / "MANIFEST.md").read_text()
    assert "| hvae | 4-2 | 2 | 4 | fp32 |" in manifest

    # a machine whose cache is empty: stashing from it keeps the stash as it is
    assert resume.stash(out, cache=second)["dropped"] == []
    assert stashed[0].is_file()

    assert resume.unstash(out, cache=second)["restored"] == [stashed[0].name,
                                                             "run/epoch00001.pt"]
    assert (second / "snapshots" / "protocol" / "run" / "epoch00001.pt").is_file()
    resumed = lv.fit(lv.HierarchicalVAE(x_dim=784, **TINY), data, lv.TrainConfig(epochs=4),
                     checkpoint_every=2, cache=second / "checkpoints", progress=False,
                     snapshot_epochs=(1, 3),
                     snapshot_dir=second / "snapshots" / "protocol" / "run")
    assert resumed["bound"] == pytest.approx(straight["bound"], rel=1e-5)
    assert snapshot_path(second / "snapshots" / "protocol" / "run", 3).is_file()

    # the run has finished training on the second machine, and epoch 1 is scored: the
    # final checkpoint replaces the partial one, and the scored snapshot leaves the stash
    (out / "runs").mkdir(parents=True)
    (out / "runs" / "run.curve.json").write_text(json.dumps({"points": [{"epoch": 1}]}))
    final = stashed[0].name[:-len(".partial.pt")] + ".pt"
    done = resume.stash(out, cache=second)
    assert done["dropped"] == [stashed[0].name, "run/epoch00001.pt"]
    assert done["copied"] == [final, "run/epoch00003.pt"]
    manifest = (out / "resume" / "MANIFEST.md").read_text()
    assert "epoch00003.pt" in manifest and f"| `{final}` | hvae | 4-2 | 4 | 4 |" in manifest

    # the second machine is lost before the run's evaluation was saved: a third one gets
    # the trained model from the stash and does not train again
    third = tmp_path / "cache-c"
    assert resume.unstash(out, cache=third)["restored"] == [final, "run/epoch00003.pt"]
    monkeypatch.setattr("lvae_core.train._epochs", lambda *a: pytest.fail("trained again"))
    model = lv.HierarchicalVAE(x_dim=784, **TINY)
    again = lv.fit(model, data, lv.TrainConfig(epochs=4), checkpoint_every=2,
                   cache=third / "checkpoints", progress=False)
    assert again["bound"] == pytest.approx(straight["bound"], rel=1e-5)
    # evaluated (its result is written): the final checkpoint leaves the stash, and with
    # the last snapshot scored, the stash is empty and removed
    assert resume.stash(out, cache=third)["dropped"] == []
    (out / "runs" / "run.json").write_text("{}")
    (out / "runs" / "run.curve.json").write_text(json.dumps({"points": [{"epoch": 1},
                                                                        {"epoch": 3}]}))
    assert resume.stash(out, cache=third)["dropped"] == [final, "run/epoch00003.pt"]
    assert not (out / "resume").exists()


def test_unstash_leaves_a_newer_cache_alone(mnist5k, tmp_path, monkeypatch):
    data = mnist5k.subset(n_train=256)
    out, cache = tmp_path / "protocol", tmp_path / "cache"
    _interrupted(data, cache, cache / "snapshots" / "protocol" / "run", monkeypatch)
    resume.stash(out, cache=cache)
    partial = next((cache / "checkpoints").glob("*.partial.pt"))
    newer = torch.load(partial, weights_only=True)
    newer["epoch"] = 3
    torch.save(newer, partial)
    before = partial.read_bytes()
    assert resume.unstash(out, cache=cache)["restored"] == []
    assert partial.read_bytes() == before
    # and the newer cache entry replaces the stashed one at the next stash
    assert resume.stash(out, cache=cache)["copied"] == [partial.name]
    assert "| 3 | 4 |" in (out / "resume" / "MANIFEST.md").read_text()


def test_a_run_stopped_at_an_epoch_continues_to_the_uninterrupted_run(mnist5k, tmp_path):
    """fit(..., stop_after=3) leaves the model of epoch 3 and a partial checkpoint there (no
    final checkpoint); the same call without stop_after then ends where a run never stopped
    ends: the same history and the same parameters."""
    data = mnist5k.subset(n_train=256)
    config = lv.TrainConfig(epochs=5, warmup_epochs=2)
    torch.manual_seed(0)
    straight_model = lv.HierarchicalVAE(x_dim=784, **TINY)
    straight = lv.fit(straight_model, data, config, cache=False, progress=False)
    cache = tmp_path / "checkpoints"
    torch.manual_seed(0)
    model = lv.HierarchicalVAE(x_dim=784, **TINY)
    stopped = lv.fit(model, data, config, cache=cache, progress=False, checkpoint_every=2,
                     stop_after=3)
    assert stopped["epoch"] == [1, 2, 3] and stopped["bound"] == straight["bound"][:3]
    assert [p.name.endswith(".partial.pt") for p in cache.iterdir()] == [True]
    torch.manual_seed(0)
    model = lv.HierarchicalVAE(x_dim=784, **TINY)
    resumed = lv.fit(model, data, config, cache=cache, progress=False, checkpoint_every=2)
    assert resumed["bound"] == straight["bound"]
    for a, b in zip(model.state_dict().values(), straight_model.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="stop_after"):
        lv.fit(model, data, config, cache=False, progress=False, stop_after=3)
