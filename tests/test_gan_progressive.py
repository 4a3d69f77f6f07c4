"""ProgressiveGAN: the two stages fit runs (low, then grow with alpha faded in over generator steps), what the
critic sees at each stage, full-size samples at every stage, the config round trip and resume inside "grow"."""

import json

import pytest
import torch
import torch.nn.functional as F

from gendist import Implicit
from gendist.config import config, from_config
from gendist.gan import ProgressiveGAN
from gendist.inference import fit
from gendist.inference.gan import r1_penalty
from gendist.testing import check_implicit

SHAPE = (1, 16, 16)


def small(**options):
    options = {"latent": 4, "channels": 4, "fade_steps": 3, **options}
    return ProgressiveGAN(SHAPE, **options)


def images(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *SHAPE, generator=g) * 2 - 1


def up(x):
    return x.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)


def test_stages_run_low_then_grow_with_alpha_over_generator_steps():
    torch.manual_seed(0)
    model = small(low_epochs=1, grow_epochs=2, fade_steps=3)
    stages = model.stages()
    assert [s.name for s in stages] == ["low", "grow"]
    assert [s.epochs for s in stages] == [1, 2]
    assert [[o.name for o in s.resolved()] for s in stages] == [["critic", "generator"]] * 2
    assert [s.epochs for s in small().stages()] == [None, None]  # fit's epochs
    seen = []
    h = fit(model, images(), epochs=5, batch_size=8, progress=False,
            callback=lambda step, loss: seen.append((model.resolution, model.alpha)))
    assert list(h.losses) == ["low/critic", "low/generator", "grow/critic", "grow/generator"]
    assert seen == [(8, 1.0)] * 2 + [(16, 1 / 3), (16, 2 / 3)] + [(16, 1.0)] * 2
    assert model.resolution == model.high_resolution == 16 and model.alpha == 1.0


def test_alpha_counts_generator_steps_and_the_moving_average_grows_too():
    torch.manual_seed(0)
    model = small(low_epochs=1, grow_epochs=2, fade_steps=2, n_critic=2, ema=0.9)
    seen = []
    fit(model, images(), batch_size=4, progress=False, callback=lambda step, loss: seen.append(model.alpha))
    assert seen[4:] == [0.0, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0, 1.0]  # the generator steps on every 2nd batch
    averaged = model.ema.averaged.net.net
    assert (averaged.resolution, averaged.alpha) == (16, 1.0)
    assert int(model.ema.updates) == 6


def test_the_low_stage_leaves_the_high_resolution_layers_alone():
    torch.manual_seed(0)
    model = small(low_epochs=1)
    high = [p.clone() for p in model.generator.net.net.high.parameters()]
    high += [p.clone() for p in model.discriminator.high.parameters()]
    fit(model, images(), stages=model.stages()[:1], batch_size=8, progress=False)
    after = list(model.generator.net.net.high.parameters()) + list(model.discriminator.high.parameters())
    assert model.resolution == 8
    assert all(torch.equal(a, b) for a, b in zip(high, after))


def test_samples_have_the_full_shape_at_every_stage():
    torch.manual_seed(0)
    model = small(ema=0.5)
    z = torch.randn(3, 4)
    d = model()
    assert isinstance(d, Implicit) and d.log_prob_kind == "none"
    low = d.push(z)
    assert low.shape == (3, *SHAPE) and d.sample((2,)).shape == (2, *SHAPE)
    assert torch.equal(low, up(low[..., ::2, ::2]))  # nearest up-sampled from 8x8
    model.grow(0.0)
    assert torch.allclose(model().push(z), low)  # the fade starts from the up-sampled low-resolution image
    model.grow(0.5)
    half = model().rsample((2,))
    assert half.shape == (2, *SHAPE) and half.requires_grad
    model.eval()
    assert model().sample((2,)).shape == (2, *SHAPE)  # the moving average, grown with the generator
    assert model.fake((images(3),)).shape == (3, *SHAPE) and model.fake((images(3),), full=False).shape == (3, *SHAPE)
    model.shrink()
    assert model.fake((images(3),), full=False).shape == (3, 1, 8, 8)


def test_the_critic_sees_real_images_pooled_in_the_low_stage_and_faded_while_growing():
    torch.manual_seed(0)
    model = small(r1=1.0)
    x = images(4)
    inputs = []
    model.discriminator.register_forward_pre_hook(lambda module, args: inputs.append(args[0].detach()))
    critic = model.objectives()[0].loss
    critic(model, (x,))
    pooled = F.avg_pool2d(x, 2)
    assert inputs[0].shape == (4, 1, 8, 8) and torch.allclose(inputs[0], pooled)
    assert inputs[1].shape == (4, 1, 8, 8)  # the fakes at the low resolution
    inputs.clear()
    model.grow(0.25)
    critic(model, (x,))
    assert torch.allclose(inputs[0], 0.75 * up(pooled) + 0.25 * x)
    model.grow(1.0)
    inputs.clear()
    critic(model, (x,))
    assert torch.equal(inputs[0], x)
    model.shrink()  # the public critic takes full-size images and pools them at the low resolution
    assert torch.allclose(model.critic(x), model.discriminator(pooled))
    assert torch.allclose(model.critic_features(x), model.discriminator.features(pooled))


def test_r1_is_on_the_critics_own_input_at_the_low_resolution():
    torch.manual_seed(0)
    with_r1, without = small(r1=2.0), small(r1=0.0)
    without.load_state_dict(with_r1.state_dict())
    x = images(4)
    losses = []
    for model in (with_r1, without):
        torch.manual_seed(1)  # the same fakes
        losses.append(model.objectives()[0].loss(model, (x,)))
    r1 = r1_penalty(with_r1.discriminator, F.avg_pool2d(x, 2))  # not on the 16x16 image it was pooled from
    assert (losses[0] - losses[1]).item() == pytest.approx(2.0 * r1.item(), rel=1e-5)


def test_config_rebuilds_the_model_and_the_state_carries_the_growth():
    torch.manual_seed(0)
    model = small(ema=0.9, low_epochs=2, grow_epochs=1, fade_steps=5, loss="hinge", betas=(0.0, 0.9))
    model.grow(0.4)
    clone = from_config(json.loads(json.dumps(config(model))))
    assert type(clone) is ProgressiveGAN and clone.resolution == 8
    assert [s.epochs for s in clone.stages()] == [2, 1] and clone.fade_steps == 5
    clone.load_state_dict(model.state_dict())
    assert (clone.resolution, clone.alpha) == (16, 0.4)
    assert (clone.ema.averaged.net.net.resolution, clone.ema.averaged.net.net.alpha) == (16, 0.4)
    model.eval(), clone.eval()
    z = torch.randn(2, 4)
    assert torch.equal(model().push(z), clone().push(z))


def test_a_run_stopped_inside_grow_resumes_with_its_alpha(tmp_path):
    options = {"low_epochs": 1, "grow_epochs": 2, "fade_steps": 4, "r1": 1.0, "lazy": 2, "ema": 0.9}
    run = {"epochs": 1, "batch_size": 4, "progress": False, "checkpoint_dir": tmp_path, "checkpoint_every": 1}
    data = images(8)
    torch.manual_seed(0)
    whole = small(**options)
    start = {k: v.clone() for k, v in whole.state_dict().items() if isinstance(v, torch.Tensor)}
    alphas = []
    h_whole = fit(whole, data, **run, callback=lambda step, loss: alphas.append(whole.alpha))

    class Killed(Exception):
        pass

    def kill(step, loss):
        if step == 4:  # inside "grow": the checkpoint of step 3 is the last one
            raise Killed

    torch.manual_seed(0)
    stopped = small(**options)
    with pytest.raises(Killed):
        fit(stopped, data, **run, callback=kill)
    assert (stopped.resolution, stopped.alpha) == (16, 0.5)
    torch.manual_seed(1)
    resumed = small(**options)  # fresh at the low resolution: the checkpoint grows it
    resumed.load_state_dict(start, strict=False)
    seen = []
    h = fit(resumed, data, **run, resume=True, callback=lambda step, loss: seen.append(resumed.alpha))
    assert seen == alphas[3:] == [0.5, 0.75, 1.0]
    assert h.step_loss == h_whole.step_loss
    assert all(torch.equal(a, b) for a, b in zip(resumed.state_dict().values(), whole.state_dict().values())
               if isinstance(a, torch.Tensor))
    assert (resumed.resolution, resumed.alpha) == (16, 1.0)


def test_float64():
    torch.manual_seed(0)
    model = small(low_epochs=1, grow_epochs=1).double()
    fit(model, images(8).double(), batch_size=4, progress=False)
    x = model().sample((2,))
    assert x.dtype == torch.float64 and x.shape == (2, *SHAPE)


def test_conditional():
    torch.manual_seed(0)
    model = small(context=3, low_epochs=1, grow_epochs=1)
    c = torch.randn(8, 3)
    fit(model, (images(8), c), batch_size=4, progress=False)
    assert model(c[:2]).sample((5,)).shape == (5, 2, *SHAPE)


@pytest.mark.parametrize("options, match", [
    ({"fade_steps": -1}, "fade_steps"),
    ({"low_epochs": 0}, "low_epochs"),
    ({"grow_epochs": 1.5}, "grow_epochs"),
    ({"latent": 0}, "latent"),
    ({"loss": "nope"}, "loss"),
])
def test_bad_arguments_are_named(options, match):
    with pytest.raises((ValueError, TypeError), match=match):
        small(**options)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="4 or 7 times a power of 2"):
        ProgressiveGAN((1, 12, 12), latent=4, channels=4)
    with pytest.raises(ValueError, match="twice the start"):
        ProgressiveGAN((1, 4, 4), latent=4, channels=4)
    model = small()
    with pytest.raises(ValueError, match="ProgressiveGAN.critic"):
        model.critic(torch.zeros(2, 1, 8, 8))


def test_the_distribution_passes_the_implicit_checks_before_and_while_growing():
    torch.manual_seed(0)
    model = small()
    g = model.generator.net.net
    check_implicit(model(), generator=torch.nn.ModuleList([g.input, g.base, g.to_rgb_low]))  # the layers in use
    model.grow(0.5)
    check_implicit(model())


def test_no_fade_grows_straight_to_alpha_one():
    model = small(fade_steps=0)
    low, grow = model.stages()
    low.setup(model)
    assert (model.resolution, model.alpha) == (8, 1.0)
    grow.setup(model)
    assert (model.resolution, model.alpha) == (16, 1.0)
    model.grow(0.5)
    grow.setup(model)  # a resumed run keeps its alpha
    assert model.alpha == 0.5
    low.setup(model)  # a new run of the stages starts low again
    assert model.resolution == 8
