"""GAN networks (gendist/nn/gan.py) and their blocks (gendist/nn/gan_blocks.py): shapes for every option, float64,
gradients, the blocks' starting points and hand-computed values, and clear errors."""

import copy
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gendist.nn import (
    ConditionalBatchNorm2d,
    ConditioningAugmentation,
    DCGANDiscriminator,
    DCGANGenerator,
    MinibatchStdDev,
    MLPDiscriminator,
    MLPGenerator,
    PatchDiscriminator,
    SelfAttention2d,
    TextEncoder,
    UNetTranslator,
    spectral_normed,
)

# ---------------------------------------------------------------------------------------------------- shapes


@settings(max_examples=12)
@given(
    latent=st.integers(0, 3), context=st.integers(0, 2), shape=st.sampled_from([(2,), (3, 2), (1, 2, 2)]),
    activation=st.sampled_from(["relu", "leaky_relu"]), batchnorm=st.booleans(),
    out=st.sampled_from(["identity", "tanh", "sigmoid"]),
)
def test_mlp_generator_shapes(latent, context, shape, activation, batchnorm, out):
    if latent + context == 0:
        with pytest.raises(ValueError, match="latent"):
            MLPGenerator(latent, shape, hidden=(8,), context=context)
        return
    g = MLPGenerator(latent, shape, hidden=(8, 6), context=context, activation=activation, batchnorm=batchnorm,
                     out=out)
    z, c = torch.randn(5, latent), (torch.randn(5, context) if context else None)
    x = g(z, c)
    assert x.shape == (5, *shape)
    if out == "tanh":
        assert x.abs().max() <= 1
    if out == "sigmoid":
        assert x.min() >= 0 and x.max() <= 1


@settings(max_examples=12)
@given(
    context=st.integers(0, 2), conditioning=st.sampled_from(["concat", "projection"]), sn=st.booleans(),
    mbstd=st.booleans(), dropout=st.sampled_from([0.0, 0.3]), shape=st.sampled_from([(2,), (3, 2), (1, 2, 2)]),
    n=st.integers(1, 6),
)
def test_mlp_discriminator_shapes(context, conditioning, sn, mbstd, dropout, shape, n):
    d = MLPDiscriminator(shape, hidden=(8, 6), context=context, conditioning=conditioning, spectral_norm=sn,
                         minibatch_std=mbstd, dropout=dropout)
    x, c = torch.randn(n, *shape), (torch.randn(n, context) if context else None)
    assert d(x, c).shape == (n,)
    assert d.features(x, c).shape == (n, 6) == (n, d.num_features)


@settings(max_examples=10)
@given(
    size=st.sampled_from([8, 16, 28, 32]), C=st.sampled_from([1, 3]), context=st.sampled_from([0, 2]),
    g_cond=st.sampled_from(["concat", "batchnorm"]), d_cond=st.sampled_from(["concat", "projection"]),
    attention=st.booleans(), sn=st.booleans(), mbstd=st.booleans(),
)
def test_dcgan_shapes(size, C, context, g_cond, d_cond, attention, sn, mbstd):
    shape = (C, size, size)
    g = DCGANGenerator(4, shape, channels=2, context=context, conditioning=g_cond, attention=attention)
    d = DCGANDiscriminator(shape, channels=2, context=context, conditioning=d_cond, spectral_norm=sn,
                           attention=attention, minibatch_std=mbstd)
    c = torch.randn(3, context) if context else None
    x = g(torch.randn(3, 4), c)
    assert x.shape == (3, *shape) and x.abs().max() <= 1  # tanh by default
    assert d(x, c).shape == (3,)
    assert d.features(x, c).shape == (3, d.num_features)


def test_dcgan_other_sizes_and_outputs():
    for shape in [(2, 6, 6), (1, 12, 8), (1, 64, 64)]:
        g = DCGANGenerator(3, shape, channels=1, out="sigmoid")
        x = g(torch.randn(2, 3))
        assert x.shape == (2, *shape) and x.min() >= 0
        assert DCGANDiscriminator(shape, channels=1)(x).shape == (2,)
    assert DCGANGenerator(2, (1, 8, 8), channels=2, out="identity").base == (4, 4)
    assert DCGANGenerator(2, (1, 28, 28), channels=2).base == (7, 7)


@pytest.mark.parametrize("size", [8, 28])
@pytest.mark.parametrize("latent", [0, 2])
@pytest.mark.parametrize("source", [1, 3])
def test_translation_shapes(size, latent, source):
    shape, src = (2, size, size), (source, size, size)
    g = UNetTranslator(shape, src, channels=2, latent=latent)
    c = torch.randn(3, math.prod(src))
    x = g(torch.randn(3, latent), c)
    assert x.shape == (3, *shape)
    if latent == 0:
        assert g(None, c).shape == (3, *shape)
    d = PatchDiscriminator(shape, src, channels=2)
    patches = {8: (4, 4), 28: (7, 7)}[size]
    assert d.patches(x, c).shape == (3, *patches)
    assert d(x, c).shape == (3,)
    assert torch.allclose(d(x, c), d.patches(x, c).mean((1, 2)))
    assert d.features(x, c).shape == (3, d.num_features)
    unpaired = PatchDiscriminator(shape, channels=2, batchnorm=False)
    assert unpaired.context == 0 and unpaired(x).shape == (3,)
    assert UNetTranslator(shape, channels=2).context == math.prod(shape)  # the source defaults to the target's shape


def test_translator_dropout_is_noise_in_eval_mode():
    c = torch.randn(2, 64)
    g = UNetTranslator((1, 8, 8), channels=2, dropout=0.5).eval()
    assert not torch.equal(g(None, c), g(None, c))
    g = UNetTranslator((1, 8, 8), channels=2, dropout=0.0).eval()
    assert torch.equal(g(None, c), g(None, c))


# ------------------------------------------------------------------------------------- float64 and gradients


def _networks():
    """(name, network, input builder) for one of each network and option that adds parameters."""
    n = 4

    def gen(latent, context):
        return lambda dtype: (torch.randn(n, latent, dtype=dtype),
                              torch.randn(n, context, dtype=dtype) if context else None)

    def disc(shape, context):
        return lambda dtype: (torch.randn(n, *shape, dtype=dtype),
                              torch.randn(n, context, dtype=dtype) if context else None)

    yield "mlp-g", MLPGenerator(3, (2, 2), hidden=(8,), context=2, batchnorm=True), gen(3, 2)
    yield "mlp-d", MLPDiscriminator((2, 2), hidden=(8, 4), context=2, conditioning="projection", spectral_norm=True,
                                    minibatch_std=True, dropout=0.1), disc((2, 2), 2)
    yield "dcgan-g", DCGANGenerator(3, (1, 8, 8), channels=2, context=2, conditioning="batchnorm",
                                    attention=True), gen(3, 2)
    yield "dcgan-g-concat", DCGANGenerator(3, (2, 16, 16), channels=2, context=2), gen(3, 2)
    yield "dcgan-d", DCGANDiscriminator((1, 8, 8), channels=2, context=2, conditioning="projection",
                                        spectral_norm=True, attention=True, minibatch_std=True), disc((1, 8, 8), 2)
    yield "dcgan-d-concat", DCGANDiscriminator((1, 28, 28), channels=2, context=2), disc((1, 28, 28), 2)
    yield "unet", UNetTranslator((1, 8, 8), (2, 8, 8), channels=2, latent=2), gen(2, 128)
    yield "patch", PatchDiscriminator((1, 8, 8), (2, 8, 8), channels=2), disc((1, 8, 8), 128)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float64_and_gradient_to_every_parameter(dtype):
    for name, net, inputs in _networks():
        torch.manual_seed(0)
        net = net.to(dtype)
        for m in net.modules():  # attention starts switched off (gamma = 0): switch it on to reach its convs
            if isinstance(m, SelfAttention2d):
                m.gamma.data.fill_(0.5)
        a, c = inputs(dtype)
        out = net(a, c)
        assert out.dtype == dtype, name
        out.square().sum().backward()
        for pname, p in net.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: no gradient reaches {pname}"
        if hasattr(net, "features"):
            assert net.features(a, c).dtype == dtype


# ------------------------------------------------------------------------------------------------------ blocks


def test_self_attention_starts_as_identity():
    att = SelfAttention2d(8).double()
    x = torch.randn(2, 8, 3, 5, dtype=torch.float64)
    assert torch.equal(att(x), x)
    att.gamma.data.fill_(1.0)
    y = att(x)
    assert y.shape == x.shape and not torch.allclose(y, x)
    # the attention weights are a softmax over the attended positions: a constant value map comes back unchanged
    att.value.weight.data.zero_()
    att.value.bias.data.fill_(2.0)
    assert torch.allclose(att(x), x + 2.0)
    with pytest.raises(ValueError, match=r"\(N, 8, H, W\)"):
        att(torch.randn(2, 4, 3, 3))


def test_conditional_batchnorm_starts_as_plain_batchnorm():
    torch.manual_seed(0)
    cbn, bn = ConditionalBatchNorm2d(6, context=3), torch.nn.BatchNorm2d(6)
    x, c = torch.randn(8, 6, 4, 5) * 3 + 1, torch.randn(8, 3)
    assert torch.allclose(cbn(x, c), bn(x), atol=1e-6)
    assert torch.allclose(cbn.norm.running_mean, bn.running_mean) and torch.allclose(cbn.norm.running_var,
                                                                                     bn.running_var)
    cbn.eval(), bn.eval()
    assert torch.allclose(cbn(x, c), bn(x), atol=1e-6)
    # vectors (N, C): plain BatchNorm1d at the start
    cbn1, bn1 = ConditionalBatchNorm2d(6, context=3), torch.nn.BatchNorm1d(6)
    v = torch.randn(8, 6)
    assert torch.allclose(cbn1(v, c), bn1(v), atol=1e-6)
    # the gain and bias follow the context once the map is nonzero
    torch.nn.init.normal_(cbn1.affine.weight)
    assert not torch.allclose(cbn1(v, c), cbn1(v, torch.randn(8, 3)))
    with pytest.raises(ValueError, match="context"):
        cbn(x, None)
    with pytest.raises(ValueError, match=r"\(N, 6, H, W\)"):
        cbn(torch.randn(8, 5, 2, 2), c)


def _hand_std(x, g):
    """ProGAN's value by loops: group m holds examples m, m + M, ...; biased variance, sqrt(var + 1e-8)."""
    n = x.shape[0]
    M = n // g
    out = torch.empty(n, dtype=x.dtype)
    for m in range(M):
        members = x[m::M]
        mean = members.mean(0)
        std = (((members - mean) ** 2).mean(0) + 1e-8).sqrt()
        out[m::M] = std.mean()
    return out


@pytest.mark.parametrize(("n", "group", "expected_group"), [(8, 4, 4), (6, 4, 2), (5, 4, 5), (3, 4, 3), (1, 4, 1)])
def test_minibatch_std_adds_one_channel_of_the_hand_value(n, group, expected_group):
    layer = MinibatchStdDev(group)
    assert layer.group_size(n) == expected_group
    x = torch.randn(n, 3, 4, 5, dtype=torch.float64)
    y = layer(x)
    assert y.shape == (n, 4, 4, 5)
    assert torch.equal(y[:, :3], x)
    expected = _hand_std(x, expected_group)
    assert torch.allclose(y[:, 3], expected[:, None, None].expand(n, 4, 5))
    v = torch.randn(n, 7, dtype=torch.float64)
    w = layer(v)
    assert w.shape == (n, 8) and torch.allclose(w[:, 7], _hand_std(v, expected_group))
    if n == 1:
        assert torch.allclose(w[:, 7], torch.tensor([1e-4], dtype=torch.float64))
    with pytest.raises(ValueError, match=r"\(N, F\) or \(N, C, H, W\)"):
        layer(torch.randn(2, 3, 4))


@pytest.mark.parametrize("kind", ["mlp", "dcgan"])
@pytest.mark.parametrize("conditioning", ["concat", "projection"])
def test_discriminator_score_changes_with_the_context(kind, conditioning):
    torch.manual_seed(0)
    if kind == "mlp":
        d, x = MLPDiscriminator((3,), hidden=(8,), context=2, conditioning=conditioning), torch.randn(4, 3)
    else:
        d, x = DCGANDiscriminator((1, 8, 8), channels=2, context=2, conditioning=conditioning), torch.randn(4, 1, 8, 8)
    d.eval()
    c1, c2 = torch.randn(4, 2), torch.randn(4, 2)
    assert not torch.allclose(d(x, c1), d(x, c2))
    if conditioning == "projection":
        # the features do not see the context; the score is psi(phi) + <V c, phi>
        phi = d.features(x, c1)
        assert torch.equal(phi, d.features(x, c2))
        expected = d.head(phi).squeeze(-1) + (d.embed(c1) * phi).sum(-1)
        assert torch.allclose(d(x, c1), expected)


def test_spectral_normed_layers_have_unit_top_singular_value():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.Conv2d(3, 4, 3))
    for p in net.parameters():
        p.data.mul_(10)
    spectral_normed(net)
    spectral_normed(net)  # idempotent: no second parametrization
    assert len(net[0].parametrizations.weight) == 1
    for _ in range(30):  # each training forward runs one power iteration
        net[0](torch.randn(2, 5))
        net[1](torch.randn(2, 3, 5, 5))
    net.eval()
    for layer in net:
        w = layer.weight.reshape(layer.weight.shape[0], -1)
        assert abs(torch.linalg.matrix_norm(w, ord=2).item() - 1) < 1e-3
    d = DCGANDiscriminator((1, 8, 8), channels=2, spectral_norm=True)
    names = [n for n, m in d.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    assert names and all(torch.nn.utils.parametrize.is_parametrized(d.get_submodule(n), "weight") for n in names)
    for _ in range(30):
        d(torch.randn(3, 1, 8, 8))
    w = d.stem.weight.reshape(2, -1)
    assert abs(torch.linalg.matrix_norm(w, ord=2).item() - 1) < 1e-3
    copy.deepcopy(d)  # parametrized modules copy (they pickle only through state_dict)


def test_conditioning_augmentation():
    torch.manual_seed(0)
    ca = ConditioningAugmentation(4, 3).double()
    e = torch.randn(5, 4, dtype=torch.float64)
    ca.linear.weight.data.zero_()
    ca.linear.bias.data.zero_()  # mu = 0, log sigma = 0
    ca(e)
    assert torch.equal(ca.kl(), torch.zeros(5, dtype=torch.float64))
    torch.nn.init.normal_(ca.linear.weight)
    mu, log_sigma = ca.params(e)
    normal = torch.distributions.Normal
    expected = torch.distributions.kl_divergence(normal(mu, log_sigma.exp()), normal(0.0, 1.0)).sum(-1)
    assert torch.allclose(ca.kl(e), expected)
    s = ca(e)
    assert s.shape == (5, 3) and not torch.allclose(s, mu)
    assert torch.allclose(ca.kl(), expected)
    ca.eval()
    assert torch.equal(ca(e), mu)
    copy.deepcopy(ca)  # the last forward's graph is not copied
    with pytest.raises(RuntimeError, match="no forward yet"):
        ConditioningAugmentation(4, 3).kl()


def test_text_encoder():
    torch.manual_seed(0)
    bag = TextEncoder(10, dim=6, hidden=8)
    tokens = torch.tensor([[1, 2, 3, 0], [4, 0, 0, 0], [0, 0, 0, 0]])
    out = bag(tokens)
    assert out.shape == (3, 6)
    # a bag of words: the order and the padding do not matter
    assert torch.allclose(bag(torch.tensor([[0, 3, 1, 2, 0, 0]])), out[:1], atol=1e-6)
    assert torch.allclose(bag(tokens.double()), out)  # whole-number float ids (a flat float context)
    ordered = TextEncoder(10, dim=6, hidden=8, max_len=4)
    assert not torch.allclose(ordered(torch.tensor([[1, 2]])), ordered(torch.tensor([[2, 1]])))
    ca = ConditioningAugmentation(6, 3)
    (ca(ordered(torch.tensor([[1, 2, 3, 4], [5, 0, 0, 0]]))).square().sum() + ca.kl().sum()).backward()
    for name, p in [*ordered.named_parameters(), *ca.named_parameters()]:
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reaches {name}"
    with pytest.raises(ValueError, match="max_len"):
        ordered(torch.ones(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"0 \.\. 9"):
        bag(torch.tensor([[1, 10]]))
    with pytest.raises(ValueError, match="whole numbers"):
        bag(torch.tensor([[1.5]]))
    with pytest.raises(ValueError, match=r"\(N, L\)"):
        bag(torch.tensor([1, 2]))


# ------------------------------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(("build", "match"), [
    (lambda: MLPGenerator(-1, (2,)), "latent"),
    (lambda: MLPGenerator(2, (2,), activation="tanh"), "activation"),
    (lambda: MLPGenerator(2, (2,), out="relu"), "out"),
    (lambda: MLPDiscriminator((2,), hidden=()), "hidden"),
    (lambda: MLPDiscriminator((2,), conditioning="film"), "conditioning"),
    (lambda: MLPDiscriminator((2,), dropout=1.0), "dropout"),
    (lambda: DCGANGenerator(2, (8, 8)), r"\(C, H, W\)"),
    (lambda: DCGANGenerator(0, (1, 8, 8), context=2, conditioning="batchnorm"), "latent"),
    (lambda: DCGANDiscriminator((1, 8, 8), conditioning="batchnorm"), "conditioning"),
    (lambda: UNetTranslator((1, 8, 8), (1, 16, 16)), "size"),
    (lambda: PatchDiscriminator((1, 8, 8), (1, 8, 4)), "size"),
    (lambda: MinibatchStdDev(0), "group"),
    (lambda: TextEncoder(1), "vocab"),
])
def test_bad_arguments(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_bad_inputs_name_the_expected_shape():
    g = DCGANGenerator(3, (1, 8, 8), channels=2, context=2)
    with pytest.raises(ValueError, match=r"DCGANGenerator: `z` must have shape \(N, 3\), got shape \(4, 2\)"):
        g(torch.randn(4, 2), torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"needs a context `c` of shape \(N, 2\)"):
        g(torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"context `c` must have shape \(4, 2\)"):
        g(torch.randn(4, 3), torch.randn(5, 2))
    with pytest.raises(TypeError, match="floating-point"):
        g(torch.ones(4, 3, dtype=torch.long), torch.randn(4, 2))
    d = DCGANDiscriminator((1, 8, 8), channels=2)
    with pytest.raises(ValueError, match=r"`x` must have shape \(N, 1, 8, 8\), got shape \(4, 1, 7, 7\)"):
        d(torch.randn(4, 1, 7, 7))
    with pytest.raises(ValueError, match="unconditional"):
        d.features(torch.randn(4, 1, 8, 8), torch.randn(4, 2))
    with pytest.raises(ValueError, match=r"needs a context `c` of shape \(N, 64\)"):
        UNetTranslator((1, 8, 8), channels=2)(None)
    with pytest.raises(ValueError, match=r"`x` must have shape \(N, 1, 8, 8\)"):
        PatchDiscriminator((1, 8, 8), channels=2).patches(torch.randn(2, 1, 8))
    with pytest.raises(ValueError, match=r"`x` must have shape \(N, 3\)"):
        MLPDiscriminator((3,), hidden=(4,))(torch.randn(2, 3, 1))
