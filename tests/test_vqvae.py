"""VQ-VAE: the vector quantizer (straight-through, EMA, restarts, usage) and the VQVAE distribution."""

import json
import math

import numpy as np
import pytest
import torch

from gendist.config import config, from_config
from gendist.distributions.conditionals import Bernoulli, Categorical
from gendist.inference import fit
from gendist.latent import VQVAE, VQVAEDistribution
from gendist.nn import VectorQuantizer
from gendist.testing import (
    check_bad_inputs,
    check_float64,
    check_log_prob_kind,
    check_pyro,
    check_shapes,
    check_state_dict,
    check_support,
    chi2_pvalue,
)

SMALL = dict(codes=4, dim=2, channels=8, downsample=1, blocks=1, prior_channels=4, prior_layers=1)


def small(shape=(1, 4, 4), family=Bernoulli(), **kwargs):
    return VQVAE(shape, family, **{**SMALL, **kwargs})


# ---------------------------------------------------------------- the quantizer


def test_straight_through_gradient_is_the_identity():
    torch.manual_seed(0)
    vq = VectorQuantizer(5, 3)
    z = torch.randn(2, 3, 2, 2, requires_grad=True)
    codebook = vq.codebook.clone()
    z_q, k, _ = vq(z)
    assert torch.allclose(z_q, codebook[k].movedim(-1, 1)) and k.dtype == torch.long and k.shape == (2, 2, 2)
    w = torch.randn_like(z)
    (z_q * w).sum().backward()
    assert torch.equal(z.grad, w)


def test_commitment_and_codebook_losses():
    vq = VectorQuantizer(2, 1, commitment=0.5, ema=False, restart=False)
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.0], [10.0]]))
    z = torch.tensor([[1.0], [2.0], [9.0]]).requires_grad_()  # N = 3 vectors of dimension 1, no grid
    _, k, loss = vq(z)
    assert k.tolist() == [0, 0, 1]
    # (0.5 + 1) * (1 + 4 + 1) / 3: commitment and codebook terms, summed per example, averaged over examples
    assert math.isclose(loss.item(), 3.0, rel_tol=1e-6)
    loss.backward()
    assert vq.codebook.grad is not None and z.grad is not None


def test_ema_moves_codes_to_the_moving_average_of_their_vectors():
    vq = VectorQuantizer(2, 1, decay=0.5, restart=False, eps=0.0)
    vq.codebook.copy_(torch.tensor([[0.0], [10.0]]))
    vq.cluster_sum.copy_(vq.codebook)
    z = torch.tensor([[1.0], [2.0], [9.0]])
    vq.eval()
    vq(z)
    assert vq.codebook.flatten().tolist() == [0.0, 10.0] and int(vq.steps) == 0  # no updates in eval mode
    vq.train()
    z_q, k, loss = vq(z)
    assert z_q.flatten().tolist() == [0.0, 0.0, 10.0]  # quantized with the codebook before the update
    assert math.isclose(float(loss), 0.25 * (1 + 4 + 1) / 3, rel_tol=1e-6)
    # N = 0.5 * 1 + 0.5 * [2, 1] = [1.5, 1];  m = 0.5 * [0, 10] + 0.5 * [3, 9] = [1.5, 9.5];  e = m / N
    assert torch.allclose(vq.cluster_size, torch.tensor([1.5, 1.0]))
    assert torch.allclose(vq.codebook.flatten(), torch.tensor([1.0, 9.5]))
    assert int(vq.steps) == 1 and vq.usage() == 1.0


def test_dead_codes_restart_on_encoder_outputs():
    torch.manual_seed(0)
    vq = VectorQuantizer(4, 2, threshold=1.0)
    vq.codebook.copy_(torch.tensor([[0.0, 0.0], [100.0, 100.0], [-100.0, 100.0], [100.0, -100.0]]))
    vq.cluster_sum.copy_(vq.codebook)
    z = torch.randn(8, 2)
    _, k, _ = vq(z)
    assert (k == 0).all()
    assert vq.perplexity.item() == pytest.approx(1.0) and vq.usage() == 0.25
    # codes 1..3 won nothing: their count 0.99 fell below 1, so each now sits on a distinct vector of the batch
    for j in (1, 2, 3):
        assert (vq.codebook[j] == z).all(-1).any(), j
    assert len({tuple(v) for v in vq.codebook[1:].tolist()}) == 3
    assert torch.equal(vq.cluster_size[1:], torch.ones(3))
    assert torch.allclose(vq.cluster_sum[1:], vq.codebook[1:])
    assert 0 < (vq.cluster_size[0] - 1.0) < 0.1  # 0.99 + 0.01 * 8
    _, k, _ = vq(z)
    assert len(k.unique()) > 1 and vq.usage() > 0.25 and vq.perplexity.item() > 1.0

    frozen = VectorQuantizer(4, 2, restart=False)
    frozen.codebook.copy_(torch.tensor([[0.0, 0.0], [100.0, 100.0], [-100.0, 100.0], [100.0, -100.0]]))
    frozen.cluster_sum.copy_(frozen.codebook)
    frozen(z)
    assert torch.allclose(frozen.codebook[1:].abs(), torch.full((3, 2), 100.0))  # unused codes stay put


def test_quantizer_state_round_trips_and_bad_inputs():
    vq = VectorQuantizer(3, 2)
    vq(torch.randn(4, 2, 3))
    clone = VectorQuantizer(3, 2)
    clone.load_state_dict(vq.state_dict())
    z = torch.randn(5, 2, 3)
    assert torch.equal(clone.nearest(z), vq.nearest(z)) and int(clone.steps) == 1
    with pytest.raises(ValueError, match=r"\(N, 2, \*grid\)"):
        vq(torch.randn(4, 3))
    with pytest.raises(TypeError, match="integer"):
        vq.embed(torch.zeros(2, 2))
    with pytest.raises(ValueError, match="0..2"):
        vq.embed(torch.tensor([[3]]))
    with pytest.raises(ValueError, match="decay"):
        VectorQuantizer(3, 2, decay=1.0)
    with pytest.raises(ValueError, match="codes"):
        VectorQuantizer(0, 2)


# ---------------------------------------------------------------- the model and its distribution


def test_shapes_pyro_float64_and_state_dict():
    torch.manual_seed(0)
    model = small().eval()
    d = model()
    assert isinstance(d, VQVAEDistribution) and d.log_prob_kind == "bound"
    assert d.batch_shape == () and d.event_shape == (1, 4, 4)
    check_log_prob_kind(d)
    check_shapes(d, (3, 2))
    check_pyro(d)
    check_float64(model)
    check_state_dict(lambda: small())
    x = d.sample((2, 3))
    assert model.encode(x).shape == (2, 3, 2, 2) and model.encode(x).dtype == torch.long
    assert model.decode(model.encode(x)).batch_shape == (2, 3)
    assert model.reconstruct(x).shape == x.shape
    e = d.expand((5,))
    assert isinstance(e, VQVAEDistribution) and e.sample().shape == (5, 1, 4, 4)


@pytest.mark.parametrize("prior", ["pixelcnn", "transformer"])
def test_categorical_images_and_both_priors(prior):
    torch.manual_seed(1)
    model = small((2, 4, 4), Categorical(5), prior=prior, prior_channels=4).eval()
    d = model()
    x = d.sample((3,))
    assert x.shape == (3, 2, 4, 4) and x.min() >= 0 and x.max() <= 4 and torch.equal(x, x.round())
    check_shapes(d)
    check_support(d)
    check_bad_inputs(d)
    model.train()
    model.loss(x).backward()
    assert all(p.grad is not None for p in model.prior.parameters())


def test_log_prob_is_a_lower_bound_of_the_exact_marginal():
    # one code position (a 2x2 image halved once) and 3 codes: log p(x) = logsumexp_k log p(x | k) + log p(k)
    torch.manual_seed(2)
    model = small((1, 2, 2), codes=3).double().eval()
    with torch.no_grad():  # spread the codes so that each decodes to a different image distribution
        model.quantizer.codebook.copy_(torch.randn(3, 2, dtype=torch.float64) * 3)
    images = torch.tensor([[(i >> b) & 1 for b in range(4)] for i in range(16)], dtype=torch.float64)
    images = images.reshape(16, 1, 2, 2)
    k = torch.arange(3).reshape(3, 1, 1)
    with torch.no_grad():
        joint = model.decode(k).log_prob(images.unsqueeze(1))  # (16, 3)
        joint = joint + model.prior().log_prob(k.unsqueeze(1).double())
        exact = joint.logsumexp(-1)
        bound = model().log_prob(images)
    assert float(exact.logsumexp(0)) == pytest.approx(0.0, abs=1e-12)  # the model is a normalized distribution
    assert (bound <= exact + 1e-12).all() and (bound < exact - 1e-3).any()
    assert torch.allclose(bound, joint.gather(-1, model.encode(images).reshape(16, 1)).squeeze(-1))
    # samples follow the exact marginal (ancestral sampling), not the bound
    x = model().sample((3000,))
    index = (x.reshape(-1, 4) * torch.tensor([1.0, 2, 4, 8], dtype=torch.float64)).sum(-1).long()
    assert chi2_pvalue(torch.bincount(index, minlength=16).double(), 3000 * exact.exp()) > 1e-3


def test_gradients_by_stage():
    torch.manual_seed(3)
    x = small().eval()().sample((4,))
    for stage, encoder, prior in (("joint", True, True), ("autoencoder", True, False), ("prior", False, True)):
        model = small(commitment=0.0, stage=stage)  # no commitment: the encoder's gradient is straight-through only
        model.loss(x).backward()
        assert (model.encoder[0].weight.grad is not None) == encoder, stage
        if encoder:
            assert model.encoder[0].weight.grad.abs().sum() > 0
        assert all((p.grad is not None) == prior for p in model.prior.parameters()), stage
    model = small(ema=False)
    model.loss(x).backward()
    assert model.quantizer.codebook.grad.abs().sum() > 0  # without EMA the codebook learns by its loss


def test_bad_inputs_give_clear_errors():
    model = small()
    model.validate_args = False
    d = model()
    x = d.sample((2,))
    with pytest.raises(ValueError, match=r"shape \(\.\.\., 1, 4, 4\)"):
        d.log_prob(torch.zeros(2, 1, 4, 5))
    with pytest.raises(TypeError, match="float64"):
        d.log_prob(x.double())
    bad = x.clone()
    bad[0, 0, 0, 0] = 2.0
    assert d.log_prob(bad)[0] == -math.inf and d.log_prob(bad)[1].isfinite()
    model.validate_args = True
    with pytest.raises(ValueError, match=r"support Boolean\(\) \(e.g. \[2.0\]\)"):
        model().log_prob(bad)
    with pytest.raises(ValueError, match="support"):
        model.loss(bad)
    with pytest.raises(ValueError, match="support"):
        model.encode(bad)
    with pytest.raises(ValueError, match="no context"):
        model(torch.zeros(3))
    with pytest.raises(ValueError, match=r"\(\.\.\., 2, 2\)"):
        model.decode(torch.zeros(3, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="divisible by 4"):
        small((1, 6, 6), downsample=2)
    with pytest.raises(ValueError, match="prior"):
        small(prior="made")
    with pytest.raises(ValueError, match="stage"):
        model.stage = "both"


def test_config_round_trip():
    torch.manual_seed(4)
    model = small((1, 4, 4), Categorical(3), ema=False, prior="transformer").eval()
    clone = from_config(json.loads(json.dumps(config(model))))
    clone.load_state_dict(model.state_dict())
    clone.eval()
    x = model().sample((5,))
    assert torch.equal(clone().log_prob(x), model().log_prob(x))


def test_training_on_digits_lowers_the_loss_and_uses_the_codebook():
    from gendist.data import load_digits

    torch.manual_seed(0)
    train, test = load_digits("train").reshape(-1, 1, 8, 8), load_digits("test").reshape(-1, 1, 8, 8)
    model = VQVAE(
        (1, 8, 8),
        Categorical(17),
        codes=16,
        dim=4,
        channels=16,
        downsample=1,
        blocks=1,
        prior_channels=8,
        prior_layers=2,
    )
    model.eval()
    with torch.no_grad():
        before = float(-model().log_prob(test).mean())
    history = fit(model, train, epochs=8, batch_size=64, lr=3e-3, progress=False)
    model.eval()
    with torch.no_grad():
        after = float(-model().log_prob(test).mean())
    first, last = sum(history.step_loss[:10]) / 10, sum(history.step_loss[-10:]) / 10
    assert last < 0.6 * first and after < 0.6 * before
    usage = model.code_usage(test)
    assert usage.fraction > 0.5 and usage.perplexity > 4
    assert model.quantizer.usage() > 0.5


def test_command_line_fit_sample_evaluate(tmp_path):
    from gendist.cli import main

    out = tmp_path / "vqvae"
    fast = ["--epochs", "1", "--codes", "4", "--latent", "2", "--channels", "8", "--layers", "1", "--quiet"]
    assert main(["fit", "--data", "digits", "--model", "vqvae", "--out", str(out), *fast]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"]["class"] == "VQVAE" and metrics["log_prob_kind"] == "bound"
    assert math.isfinite(metrics["test_bits_per_dim"])
    samples, logp = tmp_path / "s.npy", tmp_path / "logp.npy"
    assert main(["sample", str(out), "-n", "5", "-o", str(samples)]) == 0
    assert main(["evaluate", str(out), "--data", str(samples), "-o", str(logp)]) == 0
    x = np.load(samples)
    assert x.shape == (5, 64) and np.all(x == np.round(x)) and np.all(np.isfinite(np.load(logp)))
    assert main(["fit", "--data", "moons", "--model", "vqvae", "--out", str(tmp_path / "m"), *fast]) == 2


def test_training_stages_train_the_autoencoder_then_the_prior_alone():
    from gendist.inference import fit

    torch.manual_seed(0)
    vq = VQVAE((1, 4, 4), "bernoulli", codes=4, dim=2, channels=8, downsample=1, blocks=1, prior_channels=4,
               prior_layers=1)
    x = (torch.rand(64, 1, 4, 4) < 0.5).float()
    seen = {}

    def snapshot(step, loss):
        seen.setdefault(vq.stage, {k: v.clone() for k, v in vq.state_dict().items()})

    h = fit(vq, x, stages=vq.training_stages(2, 2, first="autoencoder"), batch_size=16, progress=False,
            callback=snapshot)
    assert list(h.losses) == ["autoencoder/loss", "prior/prior"] and vq.stage == "prior"
    after = vq.state_dict()
    assert all(torch.equal(seen["prior"][k], after[k]) for k in after if not k.startswith("prior."))
    assert not all(torch.equal(seen["prior"][k], after[k]) for k in after if k.startswith("prior."))
    with pytest.raises(ValueError, match="first"):
        vq.training_stages(1, 1, first="prior")
