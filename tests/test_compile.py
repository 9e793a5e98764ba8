"""The optional torch.compile path: same mathematics as eager mode, reproducible, cached apart,
and a compiler failure falls back to eager code with a warning."""
import warnings

import pytest
import torch

import lvae_core as lv
import lvae_core.compiling as compiling
from lvae_core.compiling import resolve_mode

SMALL = dict(hidden=32, latent=4)


def test_resolve_mode_choices():
    assert resolve_mode(False, "cpu") is None and resolve_mode(None, "cpu") is None
    assert resolve_mode(True, "cpu") == "default"
    assert resolve_mode(True, "cuda") == "reduce-overhead"
    assert resolve_mode("max-autotune", "cpu") == "max-autotune"
    with pytest.raises(ValueError, match="compiled must be"):
        resolve_mode("fast", "cpu")
    with pytest.raises(ValueError, match="compiled must be"):
        lv.TrainConfig(epochs=1, compiled="fastest")


def test_compiled_training_is_reproducible_close_to_eager_and_cached_apart(mnist5k, tmp_path):
    data = mnist5k.subset(n_train=512, n_test=64)
    runs = {}
    for name, compile in (("eager", False), ("compiled", True), ("again", True)):
        model = lv.VAE(x_dim=784, **SMALL)
        history = lv.fit(model, data, lv.TrainConfig(epochs=3, batch_size=128, seed=5, compiled=compile), cache=tmp_path, progress=False)
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
    history = lv.fit(model, data, lv.TrainConfig(epochs=3, batch_size=128, seed=5, compiled=True), cache=False, progress=False)
    assert history["bound"] == compiled
    assert all(torch.equal(a, b) for a, b in zip(runs["compiled"][1], model.parameters()))


def test_compiled_log_likelihood_estimates_the_same_quantity(mnist5k):
    data = mnist5k.subset(n_train=512, n_test=24)
    model = lv.LadderVAE(x_dim=784, hidden=(32, 16), latent=(8, 4))
    lv.fit(model, data, lv.TrainConfig(epochs=2, batch_size=128, seed=0), cache=False, progress=False)
    x = data.test_binary
    ll_e, elbo_e = lv.log_likelihood(model, x, k=3000, seed=1, max_rows=4096, return_elbo=True)
    ll_c, elbo_c = lv.log_likelihood(model, x, k=3000, seed=1, max_rows=4096, return_elbo=True,
                                     compiled=True)
    again = lv.log_likelihood(model, x, k=3000, seed=1, max_rows=4096, compiled=True)
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
        fallback = lv.log_likelihood(model, x, k=10, seed=0, compiled=True)
    assert torch.equal(eager, fallback)

    # an error that is not the compiler's is raised, not hidden
    def bad_input_compile(fn, **kwargs):
        def call(*args, **kw):
            raise ValueError("shape mismatch")
        return call

    monkeypatch.setattr(compiling.torch, "compile", bad_input_compile)
    other = lv.VAE(**SMALL).eval()   # (the first model keeps its eager fallback)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="shape mismatch"):
            lv.log_likelihood(other, x, k=10, seed=0, compiled=True)


def test_reproduce_and_cli_pass_compile_through(tmp_path, monkeypatch):
    """--compile reaches fit and log_likelihood (wrapped here to run eagerly, so that this test
    checks the plumbing without paying for a compile)."""
    import json

    import lvae_core.campaign.runner as runner
    import lvae_core.likelihood as bounds
    import lvae_core.evaluation as evaluation
    import lvae_core.train as train
    from lvae_core.cli import main as cli_main

    seen = []
    real_fit, real_ll = train.fit, bounds.log_likelihood

    def fit(model, data, config, **kwargs):
        seen.append(("fit", config.compiled))
        return real_fit(model, data, config.replace(compiled=False), **kwargs)

    def log_likelihood(*args, compiled=False, **kwargs):
        seen.append(("log_likelihood", compiled))
        return real_ll(*args, **kwargs)

    monkeypatch.setattr(train, "fit", fit)
    monkeypatch.setattr(runner, "fit", fit)
    monkeypatch.setattr(evaluation, "log_likelihood", log_likelihood)
    monkeypatch.setenv("LVAE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "out"
    assert cli_main(["reproduce", "--data", "digits", "--only", "vae-L1-k1", "--epochs", "1",
                     "--n-train", "64", "--n-test", "8", "--eval-k", "4", "--out", str(out),
                     "--no-progress", "--compile"]) == 0
    # the final evaluation, then the learning curve's (the snapshot after epoch 1)
    assert seen == [("fit", True), ("log_likelihood", True), ("log_likelihood", True)]
    assert json.loads((out / "runs" / "vae-L1-k1.json").read_text())["compiled"] is True

    seen.clear()
    assert cli_main(["train", "--model", "vae", "--data", "digits", "--hidden", "16",
                     "--latent", "2", "--epochs", "1", "--n-train", "64", "--n-test", "8",
                     "--eval-k", "4", "--no-cache", "--compile",
                     "--out", str(tmp_path / "run.json")]) == 0
    assert seen == [("fit", True), ("log_likelihood", True)]


def test_compiled_code_is_kept_per_model_and_released_with_it():
    import gc
    import weakref

    from lvae_core.likelihood import _log_weights
    from lvae_core.compiling import compiled_for

    a, b = lv.VAE(**SMALL), lv.VAE(**SMALL)
    fa = compiled_for(a, "log_weights", _log_weights, True, "cpu")
    assert compiled_for(a, "log_weights", _log_weights, True, "cpu") is fa      # reused
    assert compiled_for(b, "log_weights", _log_weights, True, "cpu") is not fa  # its own
    assert compiled_for(a, "log_weights", _log_weights, False, "cpu") is _log_weights
    gone = weakref.ref(a)
    del a, fa
    gc.collect()
    assert gone() is None            # the cache does not keep a model alive


@pytest.mark.parametrize("kind", ["hvae", "lvae"])
def test_the_training_step_compiles_as_one_graph(kind):
    # A graph break would cut the compiled step into pieces run one by one (on a GPU: no
    # single CUDA graph), e.g. the lock that functools.cached_property takes before Python
    # 3.12, which Dynamo cannot trace.
    from lvae_core.train import _terms
    from lvae_core.bounds import iwae_bound
    model = lv.LadderVAE(x_dim=20, hidden=(16, 8), latent=(4, 2), batch_norm=True) \
        if kind == "lvae" else lv.HierarchicalVAE(x_dim=20, hidden=(16, 8), latent=(4, 2))
    terms = _terms(model, 3, iwae_bound)
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(terms)((torch.rand(6, 20) > 0.5).float(),
                                               torch.tensor(0.5))
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1
