"""The optional torch.compile path: same mathematics as eager mode, reproducible, cached apart,
and a compiler failure falls back to eager code with a warning."""
import warnings

import pytest
import torch

import lvae_core as lv
import lvae_core.compiling as compiling
from lvae_core.compiling import compile_mode

SMALL = dict(hidden=32, latent=4)


def test_compile_mode_choices():
    assert compile_mode(False, "cpu") is None and compile_mode(None, "cpu") is None
    assert compile_mode(True, "cpu") == "default"
    assert compile_mode(True, "cuda") == "reduce-overhead"
    assert compile_mode("max-autotune", "cpu") == "max-autotune"
    with pytest.raises(ValueError, match="compile must be"):
        compile_mode("fast", "cpu")
    with pytest.raises(ValueError, match="compile must be"):
        lv.fit(lv.VAE(**SMALL), torch.rand(8, 784), epochs=1, compile="fastest", cache=False)


def test_compiled_training_is_reproducible_close_to_eager_and_cached_apart(mnist5k, tmp_path):
    data = mnist5k.subset(n_train=512, n_test=64)
    runs = {}
    for name, compile in (("eager", False), ("compiled", True), ("again", True)):
        model = lv.VAE(x_dim=784, **SMALL)
        history = lv.fit(model, data, epochs=3, batch_size=128, seed=5, cache=tmp_path,
                         progress=False, compile=compile)
        runs[name] = history["bound"], [p.detach().clone() for p in model.parameters()]
    # the same seed gives the same numbers; "again" is loaded from the compiled run's cache
    assert runs["compiled"][0] == runs["again"][0]
    # the eager run's cache entry was not reused: different noise, different numbers ...
    assert runs["compiled"][0] != runs["eager"][0]
    assert len(list(tmp_path.glob("*.pt"))) == 2
    # ... but the same objective: both learn at the same rate (per-epoch bounds within 2 nats,
    # while training moves them by far more than that)
    eager, compiled = runs["eager"][0], runs["compiled"][0]
    assert eager[-1] - eager[0] > 20
    assert max(abs(a - b) for a, b in zip(eager, compiled)) < 2.0, (eager, compiled)

    # a fresh compiled run (no cache) repeats the cached numbers exactly
    model = lv.VAE(x_dim=784, **SMALL)
    history = lv.fit(model, data, epochs=3, batch_size=128, seed=5, cache=False, progress=False,
                     compile=True)
    assert history["bound"] == compiled
    assert all(torch.equal(a, b) for a, b in zip(runs["compiled"][1], model.parameters()))


def test_compiled_log_likelihood_estimates_the_same_quantity(mnist5k):
    data = mnist5k.subset(n_train=512, n_test=24)
    model = lv.LadderVAE(x_dim=784, hidden=(32, 16), latent=(8, 4))
    lv.fit(model, data, epochs=2, batch_size=128, seed=0, cache=False, progress=False)
    x = data.test_binary
    ll_e, elbo_e = lv.log_likelihood(model, x, k=3000, seed=1, max_rows=4096, return_elbo=True)
    ll_c, elbo_c = lv.log_likelihood(model, x, k=3000, seed=1, max_rows=4096, return_elbo=True,
                                     compile=True)
    again = lv.log_likelihood(model, x, k=3000, seed=1, max_rows=4096, compile=True)
    assert torch.equal(ll_c, again)                       # reproducible under a seed
    assert not torch.equal(ll_c, ll_e)                    # its own random stream
    # Both estimate the same ELBO and log p(x) per image. With 3000 samples the ELBO's Monte
    # Carlo error is about a tenth of a nat (two eager seeds differ by under 0.2), so a compiled
    # pass that got the noise or any density wrong would fail the first check. L_k of this
    # barely trained model is heavy-tailed (two eager seeds differ by up to about 2 nats on
    # single images), so it is compared on the average over the images.
    assert (elbo_c - elbo_e).abs().max() < 0.5, (elbo_c - elbo_e)
    assert abs((ll_c - ll_e).mean()) < 1.0, (ll_c - ll_e)
    assert (ll_c - elbo_c).mean() > 2.0 and (ll_c >= elbo_c).all()


def test_a_compiler_failure_falls_back_to_eager_with_a_warning(monkeypatch):
    class InductorError(RuntimeError):
        pass

    def broken_compile(fn, **kwargs):
        def call(*args, **kw):
            raise InductorError("no working C++ compiler")
        return call

    monkeypatch.setattr(compiling.torch, "compile", broken_compile)
    model = lv.VAE(**SMALL).eval()
    x = (torch.rand(5, 784) < 0.5).float()
    eager = lv.log_likelihood(model, x, k=10, seed=0)
    with pytest.warns(RuntimeWarning, match="torch.compile failed .*no working C\\+\\+ compiler"):
        fallback = lv.log_likelihood(model, x, k=10, seed=0, compile=True)
    assert torch.equal(eager, fallback)

    # an error that is not the compiler's is raised, not hidden
    def bad_input_compile(fn, **kwargs):
        def call(*args, **kw):
            raise ValueError("shape mismatch")
        return call

    monkeypatch.setattr(compiling.torch, "compile", bad_input_compile)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="shape mismatch"):
            lv.log_likelihood(model, x, k=10, seed=0, compile=True)
