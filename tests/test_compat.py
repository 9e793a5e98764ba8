"""What earlier code wrote must still mean the same: the cache keys of existing
configurations, eager training histories bit for bit, and partial checkpoints that resume.

The pinned values in ``tests/data/*_1577ea6.*`` were computed by the code at commit 1577ea6
(before the training configuration object): the cache keys of the reproduce grids'
configurations (the published protocols, ``--epochs 100`` and a shortened run on 10,000
images, eager and compiled), of the chapters' ``experiments.train`` models (fast and full
mode) and of a few ``fit`` settings; three eager training histories; and a partial
checkpoint written after epoch 2 of 4.
"""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import lvae_core as lv
from lvae_core import checkpoints
from lvae_core import experiments as ex
from lvae_core import campaign as R
from lvae_core.campaign import runner
from lvae_core.models import build_model

DATA = Path(__file__).parent / "data"
KEYS = json.loads((DATA / "cache_keys_1577ea6.json").read_text())
HISTORIES = json.loads((DATA / "histories_1577ea6.json").read_text())


class _Key(Exception):
    pass


def _key_of(call):
    """The cache key that ``call`` (which runs ``fit``) looks up, without training."""
    original = checkpoints.try_read

    def stop(path):
        raise _Key(Path(path).name[:-3])

    checkpoints.try_read = stop
    try:
        call()
    except _Key as key:
        return str(key)
    finally:
        checkpoints.try_read = original
    raise AssertionError("fit did not look up its cache")


@pytest.fixture(scope="module")
def fashion():
    return (lv.load_dataset("fashion-mnist"),
            lv.load_dataset("fashion-mnist", n_train=10000, n_test=1000))


def test_reproduce_keys_are_unchanged(fashion, tmp_path):
    full, short = fashion
    variants = {"protocol": (full, None), "epochs100": (full, 100), "short5": (short, 5)}
    checked = 0
    for tag, expected in KEYS.items():
        if tag.startswith(("experiments.train|", "fit|")):
            continue
        name, label, mode = tag.split("|")
        config = R.list_configs("all", name)[0]
        data, epochs = variants[label]
        run = config.replace(epochs=epochs, eval_k=10, compiled=mode == "compiled")
        key = _key_of(lambda: runner.train_and_score(run, data, tmp_path, progress=False,
                                                     checkpoint_every=5, device="cpu"))
        assert key == expected, tag
        checked += 1
        if label == "protocol" and mode == "compiled":   # the same key, computed directly
            tc = config.replace(compiled=True).train
            assert checkpoints.cache_key(build_model(config.model), data.train_x, tc,
                                         "cpu")[0] == key
    assert checked == 42


def test_chapter_keys_are_unchanged(monkeypatch):
    checked = 0
    for tag, expected in KEYS.items():
        if not tag.startswith("experiments.train"):
            continue
        _, kind, layers, over, fast = tag.split("|")
        monkeypatch.setenv("LVAE_FAST", fast[-1])
        over = {"warmup_epochs": 0} if over != "{}" else {}
        assert _key_of(lambda: ex.train(kind, int(layers), ex.book_data(), **over)) == expected, tag
        checked += 1
    assert checked == 14


def test_fit_keys_are_unchanged(mnist5k):
    def vae(**kw):
        return lv.VAE(hidden=(64,), latent=(8,), **kw)

    def fit(model, data, **fields):
        return lv.fit(model, data, lv.TrainConfig(**fields), progress=False)

    calls = {
        "k5-elbo": lambda: fit(vae(), mnist5k, epochs=3, k=5, objective="elbo"),
        "k5-iwae": lambda: fit(vae(), mnist5k, epochs=3, k=5),
        "adam_eps": lambda: fit(vae(), mnist5k, epochs=3, adam_eps=1e-4),
        "test_every": lambda: fit(vae(), mnist5k, epochs=3, test_every=1, test_k=10),
        "tensor-data": lambda: fit(vae(), mnist5k.train_x, epochs=2),
        "no-reset": lambda: fit((torch.manual_seed(3), vae())[1], mnist5k.train_x, epochs=2,
                                reset=False),
        "compiled": lambda: lv.fit(vae(), mnist5k, lv.TrainConfig(epochs=2, compiled=True),
                                   device="cpu", progress=False),
        "gaussian": lambda: fit(vae(likelihood="gaussian"), mnist5k, epochs=2),
    }
    for name, call in calls.items():
        assert _key_of(call) == KEYS[f"fit|{name}"], name


def _history_runs():
    torch.manual_seed(0)
    tiny = dict(x_dim=64, hidden=(32,), latent=(6,), batch_norm=False, activation="tanh")
    return {
        "lvae-warmup": (lv.LadderVAE(x_dim=64, hidden=(32, 16), latent=(8, 4)),
                        dict(epochs=4, warmup_epochs=2, batch_size=100, lr=2e-3)),
        "iwae-k5": (lv.VAE(**tiny), dict(epochs=3, k=5, batch_size=100, lr=1e-3, adam_eps=1e-4,
                                         lr_schedule="iwae", init_output_bias=True)),
        "elbo-k5": (lv.VAE(**tiny), dict(epochs=3, k=5, objective="elbo", batch_size=100,
                                         lr=1e-3)),
    }


def _strip(history):
    return {k: v for k, v in history.items() if k != "seconds"}


def _assert_same_history(history, recorded):
    """Bit-identical on a CPU like the one that recorded the histories (AVX-512). Another
    instruction set rounds float32 differently, and batch norm carries the rounding through
    the epochs: there the schedule must still be identical and the numbers close."""
    history = _strip(history)
    if history == recorded:
        return
    assert history.keys() == recorded.keys()
    for key in ("epoch", "beta", "lr", "test_epoch"):
        assert history[key] == recorded[key], key
    np.testing.assert_allclose(history["bound"], recorded["bound"], rtol=1e-3)
    np.testing.assert_allclose(np.concatenate([np.ravel(e) for e in history["kl"]]),
                               np.concatenate([np.ravel(e) for e in recorded["kl"]]),
                               atol=0.05)


@pytest.mark.parametrize("name", ["lvae-warmup", "iwae-k5", "elbo-k5"])
def test_eager_histories_are_bit_identical(name):
    digits = lv.load_dataset("digits")
    model, settings = _history_runs()[name]
    history = lv.fit(model, digits, lv.TrainConfig(**settings), cache=False, progress=False,
                     device="cpu")
    _assert_same_history(history, HISTORIES[name])


def test_an_old_partial_checkpoint_resumes_to_the_same_history(tmp_path):
    digits = lv.load_dataset("digits")
    model, settings = _history_runs()["lvae-warmup"]
    config = lv.TrainConfig(**settings)
    key = _key_of(lambda: lv.fit(model, digits, config, cache=tmp_path, checkpoint_every=2,
                                 progress=False, device="cpu"))
    partial = torch.load(DATA / "partial_1577ea6_lvae_epoch2.pt", weights_only=True)
    assert partial["epoch"] == 2 and len(partial["history"]["bound"]) == 2
    shutil.copy(DATA / "partial_1577ea6_lvae_epoch2.pt", tmp_path / f"{key}.partial.pt")
    resumed = lv.fit(model, digits, config, cache=tmp_path, checkpoint_every=2, progress=False,
                     device="cpu")
    _assert_same_history(resumed, HISTORIES["lvae-warmup"])
    assert not (tmp_path / f"{key}.partial.pt").exists() and (tmp_path / f"{key}.pt").is_file()


def test_a_damaged_checkpoint_names_the_file_and_what_to_do(tmp_path, capsys):
    from lvae_core.cli import main as cli_main
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(lv.CheckpointError, match="model.pt is not a readable checkpoint") as err:
        lv.load_checkpoint(bad)
    assert "train again" in str(err.value) and "weights_only" not in str(err.value)
    assert cli_main(["evaluate", "--checkpoint", str(bad), "--data", "digits", "--k", "2"]) == 2
    message = capsys.readouterr().err
    assert str(bad) in message and "delete it and train again" in message
    torch.save({"weights": torch.zeros(2)}, bad)          # a PyTorch file, not a checkpoint
    with pytest.raises(lv.CheckpointError, match="not an lvae_core checkpoint"):
        lv.load_checkpoint(bad)
