"""fit(precision="bf16"): the matrix products of the training step in bfloat16, everything
else (log densities, optimizer, evaluation) in float32."""
import pytest
import torch

import lvae_core as lv
from lvae_core.bounds import elbo
from lvae_core.train import _float32_outputs, _terms

SMALL = dict(x_dim=784, hidden=[64, 32], latent=[8, 4], batch_norm=True,
             activation="leaky_relu")


def _ladder(seed=0):
    torch.manual_seed(seed)
    return lv.LadderVAE(**SMALL)


def test_bf16_step_runs_products_in_bfloat16_and_densities_in_float32():
    model = _ladder()
    x = (torch.rand(32, 784) < 0.3).float()
    dtypes = []
    probe = [m.register_forward_hook(lambda m, a, out: dtypes.append(out.dtype))
             for m in model.modules() if isinstance(m, torch.nn.Linear)]
    hooks = _float32_outputs(model)     # registered after the probes: they see the raw output
    beta = torch.tensor(1.0)
    torch.manual_seed(1)
    loss16, bound16, kl16 = _terms(model, 1, elbo, bf16=True)(x, beta)
    assert set(dtypes) == {torch.bfloat16}          # every dense layer ran in bfloat16
    assert loss16.dtype == bound16.dtype == kl16.dtype == torch.float32
    for h in hooks + probe:
        h.remove()
    torch.manual_seed(1)                             # the same noise, in float32
    loss32, _, _ = _terms(model, 1, elbo, bf16=False)(x, beta)
    # bfloat16 keeps 8 bits of mantissa: the loss moves, but by well under 1 %
    assert loss16.item() != loss32.item()
    assert abs(loss16.item() - loss32.item()) < 0.01 * abs(loss32.item())


def test_bf16_fit_trains_is_cached_apart_and_leaves_float32_evaluation():
    data = lv.load_dataset("mnist-5k").subset(400, 100)
    settings = lv.TrainConfig(epochs=3, batch_size=64, seed=0)
    m32, m16 = _ladder(), _ladder()
    h32 = lv.fit(m32, data, settings, progress=False)
    h16 = lv.fit(m16, data, settings.replace(precision="bf16"), progress=False)
    assert h16["bound"] != h32["bound"]              # not the float32 run from the cache
    assert h16["bound"][-1] > h16["bound"][0] + 50   # it learns
    assert abs(h16["bound"][-1] - h32["bound"][-1]) < 5
    # no hooks are left behind: evaluating the bf16-trained model is plain float32
    assert all(not m._forward_hooks for m in m16.modules())
    log_w = m16.log_weights(data.test_binary[:10], k=3)
    assert log_w.dtype == torch.float32
    with pytest.raises(ValueError, match="precision"):
        settings.replace(precision="fp16")
