"""The models' densities against torch.distributions, and the structure the book relies on."""
import pytest
import torch
from torch.distributions import Bernoulli, Normal

import lvae_core as lv

SMALL = dict(x_dim=20, hidden=(16, 12, 8), latent=(6, 4, 2))


def _binary(b=5, d=20, seed=0):
    return torch.bernoulli(torch.full((b, d), 0.3), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cls", [lv.HierarchicalVAE, lv.LadderVAE])
def test_log_weights_shape_and_value_against_torch_distributions(cls):
    model = cls(**SMALL).eval()
    x = _binary()
    with torch.no_grad():
        trace = model.trace(x, 7)
        assert trace.log_w.shape == (7, 5)
        zs = [layer.z for layer in trace.layers]
        log_q = sum(Normal(l.mu_q, l.var_q.sqrt()).log_prob(l.z).sum(-1) for l in trace.layers)
        # the generative model evaluated independently at the sampled z
        log_p = Normal(0.0, 1.0).log_prob(zs[-1]).sum(-1)
        for i in range(model.num_layers - 1):
            mu_p, var_p = model.generative.prior(i, zs[i + 1].reshape(-1, zs[i + 1].shape[-1]))
            log_p = log_p + Normal(mu_p, var_p.sqrt()).log_prob(zs[i].reshape(-1, zs[i].shape[-1])).sum(-1).view(7, 5)
        logits = model.generative.decoder(zs[0].reshape(35, -1)).view(7, 5, -1)
        log_px = Bernoulli(logits=logits).log_prob(x.expand(7, 5, 20)).sum(-1)
    torch.testing.assert_close(trace.log_w, log_px + log_p - log_q, rtol=1e-5, atol=1e-4)


def test_vae_log_weights_against_torch_distributions():
    model = lv.VAE(x_dim=20, hidden=16, latent=3).eval()
    x = _binary()
    with torch.no_grad():
        tr = model.trace(x, 4)
        l = tr.layers[0]
        mu, var = model.inference.layers[0](x)          # q(z|x) depends on x alone
        torch.testing.assert_close(l.mu_q, mu.expand(4, 5, 3))
        oracle = (Bernoulli(logits=model.generative.decoder(l.z.reshape(20, 3)).view(4, 5, 20))
                  .log_prob(x).sum(-1) + Normal(0., 1.).log_prob(l.z).sum(-1)
                  - Normal(mu, var.sqrt()).log_prob(l.z).sum(-1))
    torch.testing.assert_close(tr.log_w, oracle, rtol=1e-5, atol=1e-4)


def test_ladder_merges_with_the_prior_at_the_posterior_sample():
    model = lv.LadderVAE(**SMALL).eval()
    x = _binary()
    with torch.no_grad():
        tr = model.trace(x, 3)
        hats = model.inference.upward(x)
        top = tr.layers[-1]
        torch.testing.assert_close(top.mu_q, hats[-1][0].expand(3, 5, -1))
        for i in range(model.num_layers - 1):
            above = tr.layers[i + 1].z.reshape(15, -1)          # the posterior sample z_{i+1}
            mu_p, var_p = model.generative.prior(i, above)
            torch.testing.assert_close(tr.layers[i].mu_p.reshape(15, -1), mu_p)
            # the merge, written out independently: precisions add, means are precision-weighted
            mu_hat, var_hat = (t.expand(3, 5, -1).reshape(15, -1) for t in hats[i])
            var_q = 1 / (1 / var_hat + 1 / var_p)
            torch.testing.assert_close(tr.layers[i].var_q.reshape(15, -1), var_q)
            torch.testing.assert_close(tr.layers[i].mu_q.reshape(15, -1), var_q * (mu_hat / var_hat + mu_p / var_p))


def test_hierarchical_and_ladder_vae_share_identical_generative_parameters():
    torch.manual_seed(3)
    hvae = lv.HierarchicalVAE()
    torch.manual_seed(3)
    lvae = lv.LadderVAE()
    g_h, g_l = hvae.generative.state_dict(), lvae.generative.state_dict()
    assert list(g_h) == list(g_l) and len(g_h) > 0
    for name in g_h:
        assert torch.equal(g_h[name], g_l[name]), name
    # and the inference networks differ: bottom-up on samples versus an upward pass on features
    assert type(hvae.inference).__name__ != type(lvae.inference).__name__


def test_paper_lvae_sizes():
    model = lv.LadderVAE(x_dim=784, hidden=(512, 256, 128, 64, 32), latent=(64, 32, 16, 8, 4))
    assert model.latent == (64, 32, 16, 8, 4)
    widths = [m.out_features for m in model.inference.up.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [512, 512, 256, 256, 128, 128, 64, 64, 32, 32]
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in model.modules())
    assert not any(isinstance(m, torch.nn.BatchNorm1d)
                   for m in lv.LadderVAE(batch_norm=False).modules())
    assert any(isinstance(m, torch.nn.LeakyReLU) for m in model.modules())


def test_gaussian_likelihood_and_samples():
    model = lv.HierarchicalVAE(x_dim=20, hidden=(16, 8), latent=(4, 2), likelihood="gaussian").eval()
    x = torch.randn(6, 20)
    assert model.log_weights(x, 3).shape == (3, 6)
    assert model.sample(4).shape == (4, 20)
    probs = lv.LadderVAE(**SMALL).eval().sample(5)
    assert probs.shape == (5, 20) and probs.min() >= 0 and probs.max() <= 1


def test_elbo_and_iwae_bound_from_log_weights():
    log_w = torch.tensor([[-1.0, -3.0], [-2.0, -3.0], [-6.0, -3.0]])
    torch.testing.assert_close(lv.elbo(log_w), torch.tensor([-3.0, -3.0]))
    expected = torch.log(torch.exp(log_w).mean(0))
    torch.testing.assert_close(lv.iwae_bound(log_w), expected)
    assert (lv.iwae_bound(log_w) >= lv.elbo(log_w)).all()


def test_an_interrupted_log_likelihood_continues_to_the_same_numbers(tmp_path, monkeypatch):
    """``resume=``: stopped after some chunks, the estimate goes on from its file and returns
    exactly what one uninterrupted call returns; a different model starts afresh."""
    from lvae_core import likelihood as bounds
    model, x = lv.LadderVAE(**SMALL), _binary(b=9)
    kw = dict(k=30, max_rows=40, seed=0, return_elbo=True)   # 9 chunks of one image
    straight = lv.log_likelihood(model, x, **kw)
    path = tmp_path / "progress.pt"
    original, calls = bounds._log_weights, []

    def stop_after_four(*args):
        calls.append(1)
        if len(calls) > 4:
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(bounds, "_log_weights", stop_after_four)
    with pytest.raises(KeyboardInterrupt):
        lv.log_likelihood(model, x, resume=path, resume_every=0, **kw)
    monkeypatch.setattr(bounds, "_log_weights", original)
    saved = torch.load(path, weights_only=True)
    assert saved["next"] == 4 and saved["ll"].shape == (4,)

    again = lv.log_likelihood(model, x, resume=path, resume_every=0, **kw)
    for a, b in zip(straight, again):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not path.exists()                   # done: the progress file is gone

    # progress of another model (or other images, k, seed) is not used
    torch.save(saved, path)
    other = lv.LadderVAE(**SMALL)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(0.01)
    fresh = lv.log_likelihood(other, x, resume=path, **kw)[0]
    torch.testing.assert_close(fresh, lv.log_likelihood(other, x, **kw)[0], rtol=0, atol=0)
    with pytest.raises(ValueError, match="needs a seed"):
        lv.log_likelihood(model, x, k=30, resume=path)


def test_log_likelihood_in_eval_mode_without_graphs_and_restores_mode():
    model = lv.LadderVAE(**SMALL)
    model.train()
    ll = lv.log_likelihood(model, _binary(b=9), k=30, max_rows=40, seed=0)
    assert ll.shape == (9,) and not ll.requires_grad and model.training
    again = lv.log_likelihood(model, _binary(b=9), k=30, max_rows=40, seed=0)
    torch.testing.assert_close(ll, again, rtol=0, atol=0)      # same seed, same numbers
    # in eval mode batch norm uses running statistics: each example's estimate is its own
    model.eval()
    with torch.no_grad():
        one = model.log_weights(_binary(b=9)[:1], 1)
    assert one.shape == (1, 1) and torch.isfinite(one).all()


def test_step_seconds_times_both_models_and_leaves_them_as_they_were():
    from lvae_core import experiments as ex
    models = {"h": lv.HierarchicalVAE(**SMALL), "l": lv.LadderVAE(**SMALL)}
    for m in models.values():
        m.train()
    before = {n: {k: v.clone() for k, v in m.state_dict().items()} for n, m in models.items()}
    seconds = ex.step_seconds(models, _binary(b=16).float(), repeats=3)
    assert set(seconds) == {"h", "l"} and all(s > 0 for s in seconds.values())
    for n, m in models.items():
        assert m.training                                   # its mode is restored
        assert all(p.grad is None for p in m.parameters())  # no gradient kept
        assert all(torch.equal(v, before[n][k]) for k, v in m.state_dict().items())
