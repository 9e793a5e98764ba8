import pytest
import torch


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    """Every test gets its own checkpoint cache and a fixed global seed."""
    monkeypatch.setenv("LVAE_CACHE_DIR", str(tmp_path / "cache"))
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def mnist5k():
    import lvae_core as lv
    return lv.load_dataset("mnist-5k")
