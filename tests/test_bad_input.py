"""Every bad input gets a clear error saying what was expected."""
import gzip
import struct

import numpy as np
import pytest
import torch

import lvae_core as lv
from lvae_core.data import _read_idx


@pytest.fixture
def model():
    return lv.LadderVAE(x_dim=20, hidden=(16, 8), latent=(4, 2))


def test_non_binary_data_with_bernoulli_likelihood(model):
    with pytest.raises(ValueError, match="binary"):
        model.log_weights(torch.rand(4, 20), 2)
    with pytest.raises(ValueError, match="binary"):
        lv.log_likelihood(model, torch.rand(4, 20), k=2)


def test_wrong_feature_size(model):
    with pytest.raises(ValueError, match=r"expected \(batch, 20\)"):
        model.log_weights(torch.zeros(4, 21), 2)
    with pytest.raises(ValueError, match="x_dim=20"):
        lv.fit(model, torch.zeros(8, 784), lv.TrainConfig(epochs=1), cache=False, progress=False)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_nan_or_infinite_data(model, bad):
    x = torch.zeros(4, 20)
    x[1, 3] = bad
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.log_weights(x, 1)
    with pytest.raises(ValueError, match="NaN or infinite"):
        lv.fit(model, x, lv.TrainConfig(epochs=1), cache=False, progress=False)


@pytest.mark.parametrize("k", [0, -3, 1.5, "5"])
def test_k_below_one_or_not_an_integer(model, k):
    with pytest.raises(ValueError, match="k"):
        model.log_weights(torch.zeros(2, 20), k)
    with pytest.raises(ValueError, match="k"):
        lv.log_likelihood(model, torch.zeros(2, 20), k=k)
    with pytest.raises(ValueError, match="k"):
        lv.fit(model, torch.zeros(8, 20), lv.TrainConfig(epochs=1, k=k), cache=False, progress=False)


def test_unknown_dataset_lists_the_valid_names():
    with pytest.raises(ValueError) as err:
        lv.load_dataset("cifar")
    for name in lv.DATASETS:
        assert name in str(err.value)


def test_training_images_outside_unit_interval(model):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        lv.fit(model, torch.full((8, 20), 2.0), lv.TrainConfig(epochs=1), cache=False, progress=False)


def test_bad_model_configuration():
    with pytest.raises(ValueError, match="one entry per"):
        lv.LadderVAE(hidden=(10, 10), latent=(3,))
    with pytest.raises(ValueError, match="likelihood"):
        lv.VAE(likelihood="poisson")
    with pytest.raises(ValueError, match="activation"):
        lv.VAE(activation="swish!")
    with pytest.raises(ValueError, match="one stochastic layer"):
        lv.VAE(hidden=(10, 10), latent=(3, 2))


def test_missing_mnist_offline_says_how_to_provide_the_files(monkeypatch, tmp_path):
    monkeypatch.setenv("LVAE_DATA_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("LVAE_OFFLINE", "1")
    lv.data._load_arrays.cache_clear()
    with pytest.raises(FileNotFoundError) as err:
        lv.load_dataset("mnist")
    message = str(err.value)
    assert "LVAE_DATA_DIR" in message and "train-images-idx3-ubyte" in message and "mnist-5k" in message


def _write_idx(path, array):
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(">" + "I" * array.ndim, *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_idx_files_from_a_data_dir(monkeypatch, tmp_path):
    rng = np.random.default_rng(0)
    images = {"train": rng.integers(0, 256, (12, 28, 28)), "t10k": rng.integers(0, 256, (5, 28, 28))}
    for split, imgs in images.items():
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte.gz", imgs)
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte.gz", np.arange(len(imgs)) % 10)
    np.testing.assert_array_equal(_read_idx(tmp_path / "t10k-images-idx3-ubyte.gz"), images["t10k"])
    monkeypatch.setenv("LVAE_DATA_DIR", str(tmp_path))
    lv.data._load_arrays.cache_clear()
    data = lv.load_dataset("mnist")
    assert data.train_x.shape == (12, 784) and data.test_x.shape == (5, 784)
    np.testing.assert_allclose(data.test_x.numpy(), images["t10k"].reshape(5, -1) / 255.0, rtol=1e-6)
    assert data.image_shape == (28, 28)
    lv.data._load_arrays.cache_clear()


def test_truncated_idx_file_is_reported(tmp_path):
    path = tmp_path / "bad-images-idx3-ubyte"
    path.write_bytes(struct.pack(">IIII", 0x0803, 10, 28, 28) + b"\x00" * 100)
    with pytest.raises(ValueError, match="truncated"):
        _read_idx(path)
