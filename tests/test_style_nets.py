"""Style-based generator parts (StyleGAN / StyleGAN2) and the two-resolution progressive networks (ProGAN)."""

import pickle

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from gendist.nn import (
    AdaIN,
    EqualConv2d,
    EqualLinear,
    MappingNetwork,
    ModulatedConv2d,
    NoiseInjection,
    ProgressiveDiscriminator,
    ProgressiveGenerator,
    StyleGenerator,
)

LATENT = 6


def tiny(shape=(1, 8, 8), **kw):
    kw = {"channels": 4, "w_dim": 8, "mapping_layers": 2, **kw}
    return StyleGenerator(LATENT, shape, **kw)


def up(x):
    return x.repeat_interleave(2, -1).repeat_interleave(2, -2)


# --- the layers --------------------------------------------------------------------------------------------------


def test_equal_linear_and_conv_scale_at_run_time():
    torch.manual_seed(0)
    for lr in (1.0, 0.01):
        layer = EqualLinear(400, 300, bias_init=0.5, lr_multiplier=lr)
        W = layer.weight * layer.weight_gain  # the effective weight: N(0, 1/fan_in) whatever the multiplier
        assert abs(W.std().item() * 20 - 1) < 0.02
        x = torch.randn(3, 400)
        torch.testing.assert_close(layer(x), x @ W.T + 0.5)
    conv = EqualConv2d(3, 5, 3)
    x = torch.randn(2, 3, 6, 6)
    torch.testing.assert_close(conv(x), F.conv2d(x, conv.weight / 27**0.5, conv.bias, padding=1))
    with pytest.raises(ValueError, match="kernel_size"):
        EqualConv2d(3, 5, 2)
    with pytest.raises(ValueError, match="lr_multiplier"):
        EqualLinear(3, 5, lr_multiplier=0)


def test_mapping_network_normalizes_z_and_reads_the_context():
    torch.manual_seed(0)
    f = MappingNetwork(LATENT, 8, layers=3, context=2)
    z, c = torch.randn(5, LATENT), torch.randn(5, 2)
    w = f(z, c)
    assert w.shape == (5, 8)
    torch.testing.assert_close(f(3 * z, c), w)  # the pixel norm: only z's direction matters
    assert not torch.allclose(f(z, c + 1), w)
    assert f(torch.randn(4, 5, LATENT), torch.randn(5, 2)).shape == (4, 5, 8)  # leading dimensions broadcast
    assert all(layer.lr_multiplier == 0.01 for layer in f.layers)
    with pytest.raises(ValueError, match="context"):
        f(z)
    with pytest.raises(ValueError, match=r"\(\.\.\., 6\)"):
        f(torch.randn(5, 4), c)


def test_adain_normalizes_then_applies_the_style():
    torch.manual_seed(0)
    layer = AdaIN(3, 5)
    x = 4 * torch.randn(2, 3, 16, 16) + 7
    y = layer(x, torch.zeros(2, 5))  # a zero style: scale 1 (the bias's start), shift 0
    torch.testing.assert_close(y.mean((2, 3)), torch.zeros(2, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var((2, 3), unbiased=False), torch.ones(2, 3), atol=1e-4, rtol=0)
    w = torch.randn(2, 5)
    scale, shift = layer.style(w).chunk(2, -1)
    y = layer(x, w)
    torch.testing.assert_close(y.mean((2, 3)), shift, atol=1e-4, rtol=0)
    torch.testing.assert_close(y.std((2, 3), unbiased=False), scale.abs(), atol=1e-3, rtol=1e-3)
    with pytest.raises(ValueError, match=r"\(N, w_dim\) = \(2, 5\)"):
        layer(x, torch.randn(3, 5))


def test_demodulated_conv_keeps_unit_variance_per_output_channel():
    torch.manual_seed(0)
    conv = ModulatedConv2d(16, 6, 3, w_dim=8)
    n, size = 8, 26
    x = torch.randn(n, 16, size, size)
    w = 3 * torch.randn(n, 8)  # styles far from 1: the demodulation undoes their scale
    with torch.no_grad():
        y = conv(x, w)[:, :, 1:-1, 1:-1]  # the interior: the zero padding lowers the border's variance
        var = y.var((0, 2, 3))
        assert (var - 1).abs().max() < 0.12, var
        plain = ModulatedConv2d(16, 6, 3, w_dim=8, demodulate=False)
        plain.load_state_dict(conv.state_dict())
        assert (plain(x, w).var((0, 2, 3)) - 1).abs().max() > 0.5  # without it, the styles' scale stays


@settings(max_examples=6)
@given(st.integers(1, 3), st.sampled_from([1, 3]), st.booleans(), st.booleans())
def test_modulated_conv_is_one_convolution_per_example(n, k, demodulate, upsample):
    torch.manual_seed(n)
    conv = ModulatedConv2d(3, 2, k, w_dim=4, demodulate=demodulate, upsample=upsample).double()
    x, w = torch.randn(n, 3, 5, 5, dtype=torch.float64), torch.randn(n, 4, dtype=torch.float64)
    y = conv(x, w)
    for i in range(n):
        weight = conv.weight * conv.weight_gain * conv.affine(w[i])[None, :, None, None]
        if demodulate:
            weight = weight / (weight.square().sum((1, 2, 3), keepdim=True) + conv.eps).sqrt()
        xi = up(x[i : i + 1]) if upsample else x[i : i + 1]
        torch.testing.assert_close(y[i : i + 1], F.conv2d(xi, weight, padding=k // 2))
    assert y.shape == (n, 2, 10 if upsample else 5, 10 if upsample else 5)


def test_modulated_conv_errors():
    conv = ModulatedConv2d(3, 2, 3, w_dim=4)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        conv(torch.randn(2, 5, 4, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match=r"\(N, w_dim\) = \(2, 4\)"):
        conv(torch.randn(2, 3, 4, 4), torch.randn(2, 5))
    with pytest.raises(ValueError, match="odd"):
        ModulatedConv2d(3, 2, 4, w_dim=4)


def test_noise_injection_is_the_identity_at_init_and_deterministic_given_the_noise():
    layer = NoiseInjection(3)
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(layer(x), x)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.0, 2.0, 3.0]))
    noise = torch.randn(2, 1, 4, 4)
    torch.testing.assert_close(layer(x, noise), x + torch.tensor([1.0, 2.0, 3.0])[:, None, None] * noise)
    assert torch.equal(layer(x, noise), layer(x, noise))
    a = layer(x, generator=torch.Generator().manual_seed(3))
    b = layer(x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not torch.equal(layer(x), layer(x))
    d = a - x  # one noise per pixel shared by the channels, scaled per channel
    torch.testing.assert_close(d[:, 1], 2 * d[:, 0])
    with pytest.raises(ValueError, match=r"\(N or 1, 1 or 3, 4, 4\)"):
        layer(x, torch.randn(2, 1, 5, 5))
    with pytest.raises(ValueError, match="not both"):
        layer(x, noise, torch.Generator())


# --- the style generator -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("style", ["modulated", "adain"])
@pytest.mark.parametrize("size", [8, 16, 28, 32])
def test_style_generator_shapes(style, size):
    torch.manual_seed(0)
    g = tiny((3, size, size), style=style, context=2)
    z, c = torch.randn(3, LATENT), torch.randn(3, 2)
    x = g(z, c)
    assert x.shape == (3, 3, size, size) and x.abs().max() <= 1
    start = 7 if size == 28 else 4
    assert g.resolutions[0] == start and g.resolutions[-1] == size
    assert g.num_ws == 2 * len(g.resolutions)
    assert g.mapping(z, c).shape == (3, g.num_ws, 8)
    assert g.synthesis(torch.randn(3, 8)).shape == (3, 3, size, size)  # one w for every layer
    assert tiny((1, 8, 8), style=style, out="sigmoid")(z).min() >= 0
    assert g(z[:0], c[:0]).shape == (0, 3, size, size)


@pytest.mark.parametrize("style", ["modulated", "adain"])
def test_truncation(style):
    torch.manual_seed(0)
    g = tiny(style=style).eval()
    with torch.no_grad():
        g.w_avg.normal_()
    z = torch.randn(4, LATENT)
    for mode in ("none", "const"):
        x = g(z, truncation=0.0, noise_mode=mode)
        torch.testing.assert_close(x, x[:1].expand_as(x))  # psi = 0: the average image for every z
        torch.testing.assert_close(g(z, truncation=1.0, noise_mode=mode), g(z, noise_mode=mode))
        torch.testing.assert_close(g(z, truncation=0.0, truncation_cutoff=0, noise_mode=mode), g(z, noise_mode=mode))
    ws, ws0 = g.mapping(z), g.mapping(z, truncation=0.5, truncation_cutoff=3)
    torch.testing.assert_close(ws0[:, :3], g.w_avg + 0.5 * (ws[:, :3] - g.w_avg))
    torch.testing.assert_close(ws0[:, 3:], ws[:, 3:])
    with pytest.raises(ValueError, match="truncation_cutoff"):
        g(z, truncation=0.5, truncation_cutoff=g.num_ws + 1)


def test_w_avg_is_a_moving_average_in_training_only():
    torch.manual_seed(0)
    g = tiny(mixing=0.9)
    z = torch.randn(5, LATENT)
    before = g.w_avg.clone()
    with torch.no_grad():
        w = g.mapping_network(z)
        g(z)
    torch.testing.assert_close(g.w_avg, 0.995 * before + 0.005 * w.mean(0))  # the mixing's z2 does not count
    g.eval()
    after = g.w_avg.clone()
    g(z)
    g.mix(z, z, 1)
    assert torch.equal(g.w_avg, after)


@pytest.mark.parametrize("style", ["modulated", "adain"])
def test_style_mixing(style):
    torch.manual_seed(0)
    g = tiny(style=style).eval()
    z1, z2 = torch.randn(3, LATENT), torch.randn(3, LATENT)
    mode = {"noise_mode": "const"}
    torch.testing.assert_close(g.mix(z1, z2, 0, **mode), g(z2, **mode))
    torch.testing.assert_close(g.mix(z1, z2, g.num_ws, **mode), g(z1, **mode))
    assert not torch.allclose(g.mix(z1, z2, 2, **mode), g(z1, **mode))
    with pytest.raises(ValueError, match="crossover"):
        g.mix(z1, z2, g.num_ws + 1)
    # in training mode, each example takes z2's styles from a crossover in [1, num_ws) on, with probability `mixing`
    g.train()
    g.mixing = 1.0
    seed = 5
    x = g(z1, generator=torch.Generator().manual_seed(seed), **mode)
    gen = torch.Generator().manual_seed(seed)  # replay the draws: which examples mix, where, and z2
    mixed = torch.rand(3, generator=gen) < 1.0
    crossover = torch.randint(1, g.num_ws, (3,), generator=gen)
    z2 = torch.randn(3, LATENT, generator=gen)
    assert mixed.all()
    for i in range(3):
        torch.testing.assert_close(x[i : i + 1], g.mix(z1[i : i + 1], z2[i : i + 1], int(crossover[i]), **mode))
    g.mixing = 0.0
    torch.testing.assert_close(g(z1, **mode), g.eval()(z1, **mode))


@pytest.mark.parametrize("style", ["modulated", "adain"])
def test_float64_and_gradients_reach_every_parameter(style):
    torch.manual_seed(0)
    g = tiny((1, 16, 16), style=style, context=2).double()
    z, c = torch.randn(4, LATENT, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    x = g(z, c)
    assert x.dtype == torch.float64 and g.w_avg.dtype == torch.float64
    x.square().sum().backward()
    for name, p in g.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    with pytest.raises(TypeError, match="dtype"):
        g(z.float(), c)


def test_style_generator_errors():
    with pytest.raises(ValueError, match="4 or 7 times a power of 2"):
        tiny((1, 10, 10))
    with pytest.raises(ValueError, match="square"):
        tiny((1, 8, 16))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        tiny((8, 8))
    with pytest.raises(ValueError, match="style"):
        tiny(style="stylegan3")
    with pytest.raises(ValueError, match="mixing"):
        tiny(mixing=1.5)
    g = tiny(context=2)
    with pytest.raises(ValueError, match="context"):
        g(torch.randn(3, LATENT))
    with pytest.raises(ValueError, match=r"\(N, 2\) = \(3, 2\)"):
        g(torch.randn(3, LATENT), torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"\(\.\.\., 6\)"):
        g(torch.randn(3, 5), torch.randn(3, 2))
    with pytest.raises(ValueError, match=r"\(N, 6\)"):
        g(torch.randn(2, 3, LATENT), torch.randn(3, 2))
    with pytest.raises(ValueError, match=r"\(N, 4, 8\)"):
        g.synthesis(torch.randn(3, 5, 8))
    with pytest.raises(ValueError, match="noise_mode"):
        g.synthesis(torch.randn(3, 8), noise_mode="fixed")
    with pytest.raises(ValueError, match="truncation"):
        g(torch.randn(3, LATENT), torch.randn(3, 2), truncation=float("nan"))


# --- progressive growing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [8, 16, 28])
def test_progressive_fade_in(size):
    torch.manual_seed(0)
    g = ProgressiveGenerator(LATENT, (2, size, size), channels=4, context=1, out="tanh")
    d = ProgressiveDiscriminator((2, size, size), channels=4, context=1)
    z, c = torch.randn(4, LATENT), torch.randn(4, 1)
    assert g.resolution == d.resolution == size // 2
    low = g(z, c)
    assert low.shape == (4, 2, size // 2, size // 2) and g.current_shape == low.shape[1:]
    score_low = d(F.avg_pool2d(x := torch.randn(4, 2, size, size), 2), c)
    g.grow()
    d.grow()
    assert g.resolution == size and g.alpha == 0
    torch.testing.assert_close(g(z, c), up(low))  # alpha = 0: the up-sampled low-resolution image
    torch.testing.assert_close(d(x, c), score_low)  # alpha = 0: the low-resolution critic of the pooled image
    lo, hi = g.branches(z, c)
    torch.testing.assert_close(torch.tanh(lo), up(low))
    g.alpha = 0.25
    torch.testing.assert_close(g(z, c), torch.tanh(0.75 * lo + 0.25 * hi))
    g.alpha = 1
    torch.testing.assert_close(g(z, c), torch.tanh(hi))  # alpha = 1: the high-resolution branch only
    assert d(x, c).shape == (4,) and d.features(x, c).shape == (4, 4)
    with pytest.raises(ValueError, match=rf"ending in the event shape \(2, {size}, {size}\)"):
        d(F.avg_pool2d(x, 2), c)


def test_progressive_state_gradients_and_float64():
    torch.manual_seed(0)
    g = ProgressiveGenerator(LATENT, (1, 16, 16), channels=4, context=2).double()
    d = ProgressiveDiscriminator((1, 16, 16), channels=4, context=2).double()
    g.grow(alpha=0.5)
    d.grow(alpha=0.5)
    z, c = torch.randn(4, LATENT, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    x = g(z, c)
    assert x.dtype == torch.float64
    d(x, c).sum().backward()
    for net in (g, d):
        for name, p in net.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    g2 = ProgressiveGenerator(LATENT, (1, 16, 16), channels=4, context=2).double()
    g2.load_state_dict(g.state_dict())
    assert (g2.resolution, g2.alpha) == (16, 0.5)
    torch.testing.assert_close(g2(z, c), x)
    assert pickle.loads(pickle.dumps(d)).alpha == 0.5
    with pytest.raises(ValueError, match="alpha"):
        g.alpha = 1.5
    with pytest.raises(ValueError, match="resolution"):
        g.resolution = 12
    with pytest.raises(ValueError, match="at least twice"):
        ProgressiveGenerator(LATENT, (1, 4, 4))
    with pytest.raises(ValueError, match="4 or 7 times"):
        ProgressiveDiscriminator((1, 12, 12))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_on_cuda(dtype):
    dev = torch.device("cuda")
    torch.manual_seed(0)
    for style in ("modulated", "adain"):
        g = tiny((3, 16, 16), style=style, context=2).to(dev, dtype)
        z, c = torch.randn(4, LATENT, device=dev, dtype=dtype), torch.randn(4, 2, device=dev, dtype=dtype)
        x = g(z, c, generator=torch.Generator(dev).manual_seed(0))
        assert x.device.type == "cuda" and x.dtype == dtype
        x.sum().backward()
        g.eval()
        x0 = g(z, c, truncation=0.0, noise_mode="const")
        torch.testing.assert_close(x0, x0[:1].expand_as(x0))
    pg = ProgressiveGenerator(LATENT, (3, 28, 28), channels=4, context=2).to(dev, dtype)
    pd = ProgressiveDiscriminator((3, 28, 28), channels=4, context=2).to(dev, dtype)
    pg.grow(0.5)
    pd.grow(0.5)
    pd(pg(z, c), c).sum().backward()
