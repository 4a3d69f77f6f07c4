"""The GAN recipe: builds an Implicit, trains with fit on its two objectives, EMA, contexts, bad input."""

import math

import pytest
import torch
import torch.nn as nn

from gendist import Implicit
from gendist.distributions import LogProbUnavailable
from gendist.flows import MAF
from gendist.gan import GAN
from gendist.inference import fit, load_checkpoint


def test_builds_an_implicit_distribution_without_log_prob():
    gan = GAN(3, latent=2, hidden=(8,))
    d = gan()
    assert isinstance(d, Implicit) and d.log_prob_kind == "none"
    assert d.rsample((4,)).shape == (4, 3)
    with pytest.raises(LogProbUnavailable):
        d.log_prob(torch.zeros(3))
    assert [o.name for o in gan.objectives()] == ["critic", "generator"]


def test_trains_towards_the_data_with_fit():
    torch.manual_seed(0)
    data = torch.tensor([2.0, -1.0]) + 0.3 * torch.randn(1024, 2)
    gan = GAN(2, latent=2, hidden=(32, 32), ema=0.9)
    fit(gan, data, epochs=25, batch_size=128, lr=2e-3, progress=False)
    gan.eval()
    x = gan().sample((2000,))
    assert torch.allclose(x.mean(0), torch.tensor([2.0, -1.0]), atol=0.25)
    assert bool((x.std(0) < 1.0).all())
    assert int(gan.ema.updates) == 25 * 8  # one update per generator step


def test_the_moving_average_samples_in_eval_mode():
    gan = GAN(2, latent=2, hidden=(8,), ema=0.5)
    with torch.no_grad():
        for p in gan.generator.parameters():
            p.add_(1.0)
    gan.eval()
    assert gan.sampler is gan.ema.averaged
    gan.train()
    assert gan.sampler is gan.generator


def test_conditional_and_bad_context():
    gan = GAN(2, latent=2, hidden=(8,), context=3, conditioning="projection")
    c = torch.randn(5, 3)
    assert gan(c).sample((2,)).shape == (2, 5, 2)
    with pytest.raises(ValueError, match=r"context `c` must have shape \(\.\.\., 3\)"):
        gan(torch.randn(5, 2))
    with pytest.raises(ValueError, match="conditional"):
        gan()


def test_a_generator_of_the_wrong_shape_is_refused_at_construction():
    class Wrong(nn.Module):
        def forward(self, z, c=None):
            return z[:, :1]

    with pytest.raises(ValueError, match=r"shape \(1,\).*event shape \(`shape`\) is \(3,\)"):
        GAN(3, latent=2, generator=Wrong())


def test_options_are_checked():
    with pytest.raises(ValueError, match="loss"):
        GAN(2, loss="bce")
    with pytest.raises(ValueError, match="out"):
        GAN(2, out="relu")
    with pytest.raises(ValueError, match="image"):
        GAN(64, image=(1, 8, 7), generator="dcgan")
    with pytest.raises(ValueError, match="image"):
        GAN(64, generator="dcgan")


def test_image_gan_on_flat_rows_and_its_objectives_step():
    torch.manual_seed(0)
    gan = GAN(64, latent=8, generator="dcgan", discriminator="dcgan", image=(1, 8, 8), channels=8,
              out="sigmoid", loss="wasserstein", gp=10.0, n_critic=2, minibatch_std=True)
    d = gan()
    x = d.sample((3,))
    assert x.shape == (3, 64) and bool(((x > 0) & (x < 1)).all())
    h = fit(gan, torch.rand(32, 64), epochs=1, batch_size=8, progress=False)
    assert len(h.losses["critic"]) == 4 and len(h.losses["generator"]) == 2


def test_style_generator_truncates_in_w():
    torch.manual_seed(0)
    gan = GAN((1, 8, 8), latent=8, generator="style", discriminator="dcgan", channels=8,
              style={"w_dim": 8, "mapping_layers": 2})
    gan.eval()
    assert gan.generator.takes_truncation
    assert gan(truncation=0.5).sample((2,)).shape == (2, 1, 8, 8)


def test_a_flow_latent_trains_with_the_generator():
    gan = GAN(2, latent=MAF(2, transforms=1, hidden=(8,)), hidden=(8,))
    names = {n for n, _ in gan.generator.named_parameters()}
    assert any(n.startswith("latent_module") for n in names)
    ids = {id(p) for p in gan.objectives()[1].trainable(gan)}
    assert all(id(p) in ids for p in gan.generator.latent_module.parameters())
    assert gan().rsample((4,)).shape == (4, 2)


def test_state_dict_round_trip():
    torch.manual_seed(0)
    a = GAN(2, latent=2, hidden=(8,), ema=0.9)
    b = GAN(2, latent=2, hidden=(8,), ema=0.9)
    b.load_state_dict(a.state_dict())
    a.eval(), b.eval()
    z = torch.randn(5, 2)
    assert torch.equal(a().push(z), b().push(z))


def test_divergence_stops_with_a_message_and_keeps_the_last_checkpoint(tmp_path):
    torch.manual_seed(0)
    gan = GAN(2, latent=2, hidden=(8,))
    data = torch.randn(64, 2)
    fit(gan, data, epochs=1, batch_size=32, progress=False, checkpoint_dir=tmp_path)
    before = load_checkpoint(tmp_path / "last.pt")["history"]["step"]
    with torch.no_grad():
        gan.discriminator.apply(lambda m: m.weight.fill_(math.nan) if isinstance(m, nn.Linear) else None)
    with pytest.raises(FloatingPointError, match="critic"):
        fit(gan, data, epochs=2, batch_size=32, progress=False, checkpoint_dir=tmp_path)
    assert load_checkpoint(tmp_path / "last.pt")["history"]["step"] == before


def test_a_fixed_latent_follows_the_module_to_float64():
    import pyro.distributions as dist

    gan = GAN(2, latent=dist.Uniform(torch.zeros(2), torch.ones(2)).to_event(1), hidden=(8,)).double()
    assert gan().sample((3,)).dtype == torch.float64
    assert gan.generator.latent().base_dist.low.dtype == torch.float64
