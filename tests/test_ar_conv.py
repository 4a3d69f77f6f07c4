"""PixelCNN and WaveNet: the autoregressive property (no blind spot), normalization, cached sampling, shapes."""

from __future__ import annotations

import json

import pytest
import torch

from gendist.autoregressive import (
    Bernoulli,
    Categorical,
    DiscretizedLogisticMixture,
    Normal,
    NormalMixture,
    PixelCNN,
    WaveNet,
)
from gendist.config import config, from_config


def _dependence(model, shape: tuple[int, ...], context: torch.Tensor | None = None, draws: int = 3) -> torch.Tensor:
    """(D, D) booleans: whether any parameter of flat position i has a nonzero gradient w.r.t. x at flat position j."""
    D = torch.Size(shape).numel()
    total = torch.zeros(D, D, dtype=torch.float64)
    for _ in range(draws):
        x = torch.randn((1, *shape), dtype=torch.float64)
        J = torch.autograd.functional.jacobian(lambda v: model.conditionals(v, context), x)  # (1, *shape, P, 1, *shape)
        total += J.reshape(D, -1, D).abs().sum(1)
    return total > 0


def _open(model) -> None:
    """Positive biases before the head's ReLUs: no unit is dead, so every allowed path carries signal."""
    for m in [*model.net.skips, model.net.head[0]]:
        torch.nn.init.constant_(m.bias, 1.0)


def _ranks(model) -> torch.Tensor:
    order = torch.tensor(model.ordering())
    return torch.empty_like(order).scatter_(0, order, torch.arange(len(order)))


@pytest.mark.parametrize("C", [1, 3])
def test_pixelcnn_is_autoregressive_without_blind_spot(C):
    torch.manual_seed(0)
    H = W = 6
    layers, kernel = 2, 3
    model = PixelCNN((C, H, W), Normal(), channels=12, layers=layers, kernel=kernel).double()
    _open(model)
    dep = _dependence(model, (C, H, W))
    rank = _ranks(model)
    earlier = rank[None, :] < rank[:, None]  # [i, j]: j comes before i
    assert not (dep & ~earlier).any(), "a conditional depends on its own value or a later one"
    # the receptive field: layers * (kernel // 2) columns either side, one row more above
    k, h, w = torch.meshgrid(torch.arange(C), torch.arange(H), torch.arange(W), indexing="ij")
    h, w = h.flatten(), w.flatten()
    reach = layers * (kernel // 2)
    near = ((h[:, None] - h[None, :]) <= reach + 1) & ((w[:, None] - w[None, :]).abs() <= reach)
    torch.testing.assert_close(dep, earlier & near, msg="an earlier value in the receptive field is not seen")
    # in particular the pixel up-right of the current one (the blind spot of the original PixelCNN)
    i, j = (C - 1) * H * W + 3 * W + 2, 0 * H * W + 2 * W + 3
    assert dep[i, j]
    if C == 3:  # within a pixel: G sees R, B sees R and G, R sees neither
        p = 3 * W + 2
        assert dep[H * W + p, p] and dep[2 * H * W + p, p] and dep[2 * H * W + p, H * W + p]
        assert not dep[p, H * W + p] and not dep[H * W + p, 2 * H * W + p]


def test_pixelcnn_ordering_is_raster_then_channel():
    model = PixelCNN((2, 2, 3), Bernoulli(), channels=4, layers=1, kernel=3)
    assert model.ordering()[:4] == [0, 6, 1, 7]
    assert sorted(model.ordering()) == list(range(12))


def test_wavenet_is_autoregressive_and_sees_its_receptive_field():
    torch.manual_seed(0)
    T, ctx = 14, 2
    model = WaveNet(T, Normal(), channels=4, blocks=2, layers=2, kernel=2, context=ctx).double()
    _open(model)
    r = model.receptive_field
    assert r == 1 + 1 + 2 * (1 + 2)
    c = torch.randn(1, ctx, dtype=torch.float64)
    dep = _dependence(model, (T,), c)
    t = torch.arange(T)
    lag = t[:, None] - t[None, :]
    torch.testing.assert_close(dep, (lag >= 1) & (lag <= r))
    # every position, the first included, depends on the context
    x = torch.randn(1, T, dtype=torch.float64)
    Jc = torch.autograd.functional.jacobian(lambda v: model.conditionals(x, v), c)  # (1, T, P, 1, ctx)
    assert (Jc.abs().sum((0, 2, 3, 4)) > 0).all()


@pytest.mark.parametrize(
    "make",
    [
        lambda: PixelCNN((1, 2, 3), Bernoulli(), channels=4, layers=2, kernel=3),
        lambda: PixelCNN((3, 1, 2), Bernoulli(), channels=6, layers=2, kernel=3, context=2),
        lambda: PixelCNN((1, 1, 3), DiscretizedLogisticMixture(4, 2), channels=4, layers=1, kernel=3),
        lambda: WaveNet(6, Bernoulli(), channels=4, blocks=1, layers=2),
        lambda: WaveNet(5, Categorical(3), channels=4, blocks=2, layers=1, kernel=3, context=2),
        lambda: WaveNet(5, Categorical(3, encode="scalar"), channels=4, blocks=1, layers=2),
    ],
    ids=["pixelcnn-1x2x3", "pixelcnn-rgb-context", "pixelcnn-logistic", "wavenet-6", "wavenet-cat3-ctx", "scalar"],
)
def test_probabilities_sum_to_one(make):
    torch.manual_seed(0)
    model = make().double()
    c = torch.randn(2, model.context, dtype=torch.float64) if model.context else None
    d = model(c)
    support = d.enumerate_support()
    total = d.log_prob(support).exp().sum(0)
    torch.testing.assert_close(total, torch.ones_like(total), atol=1e-6, rtol=0)


SAMPLERS = [
    lambda: PixelCNN((3, 4, 3), Categorical(4), channels=6, layers=2, kernel=3),
    lambda: PixelCNN((1, 7, 5), Bernoulli(), channels=4, layers=2, kernel=3, context=3),  # rows above the crop
    lambda: PixelCNN((2, 3, 3), DiscretizedLogisticMixture(16, 2), channels=4, layers=3, kernel=5),
    lambda: PixelCNN((2, 3, 4), Normal(), channels=4, layers=2, kernel=3),
    lambda: WaveNet(20, Categorical(5), channels=6, blocks=2, layers=2),  # longer than the receptive field
    lambda: WaveNet(16, Bernoulli(), channels=4, blocks=1, layers=3, kernel=3, skip=5, context=2),
    lambda: WaveNet(12, NormalMixture(2), channels=4, blocks=1, layers=2),
    lambda: WaveNet(12, Normal(), channels=4, blocks=2, layers=2, context=1),
]
SAMPLER_IDS = ["pix-cat", "pix-bern-ctx", "pix-logistic", "pix-normal", "wn-cat", "wn-bern-ctx", "wn-mix", "wn-normal"]


@pytest.mark.parametrize("make", SAMPLERS, ids=SAMPLER_IDS)
def test_cached_and_uncached_sampling_agree(make):
    torch.manual_seed(1)
    model = make().double()
    c = torch.randn(3, model.context, dtype=torch.float64) if model.context else None
    d = model(c)
    torch.manual_seed(7)
    x, lp = d.sample_and_log_prob((2,), cache=True)
    torch.manual_seed(7)
    y, lp_uncached = d.sample_and_log_prob((2,), cache=False)
    if model.family.discrete:
        assert torch.equal(x, y)
    torch.testing.assert_close(x, y)
    torch.testing.assert_close(lp, lp_uncached)
    torch.testing.assert_close(lp, d.log_prob(x))


@pytest.mark.parametrize("make", SAMPLERS, ids=SAMPLER_IDS)
def test_each_cached_step_equals_the_full_pass(make):
    torch.manual_seed(2)
    model = make().double()
    n = 2
    c = torch.randn(n, model.context, dtype=torch.float64) if model.context else None
    x = model(c).sample(() if model.context else (n,))
    if not model.family.discrete:  # any values, not only likely ones
        x = torch.randn_like(x)
    full = model.conditionals(x, c).flatten(1, -2)
    state = model.begin(n, c)
    for i, pos in enumerate(model.ordering()):  # later values in x are never read
        torch.testing.assert_close(model.step(state, x, c, i), full[:, pos])


@pytest.mark.parametrize(
    "make",
    [
        lambda: PixelCNN((1, 3, 3), Normal(), channels=4, layers=2, kernel=3, context=2),
        lambda: WaveNet(8, Normal(), channels=4, blocks=1, layers=2, context=2),
    ],
    ids=["pixelcnn", "wavenet"],
)
def test_context_batch_shapes_and_rsample(make):
    torch.manual_seed(0)
    model = make().double()
    c = torch.randn(5, 2, dtype=torch.float64)
    d = model(c)
    event = tuple(model.shape)
    x = d.sample((2,))
    assert x.shape == (2, 5, *event)
    assert d.log_prob(x).shape == (2, 5)
    other = model(torch.randn(5, 2, dtype=torch.float64))
    assert not torch.allclose(d.log_prob(x), other.log_prob(x))
    # reparameterized samples through the cache: gradients reach the weights
    z, lp = d.rsample_and_log_prob((2,))
    (z.sum() + lp.sum()).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_wrong_value_shape_names_the_expected_one():
    d = PixelCNN((1, 4, 4), Bernoulli(), channels=4, layers=1, kernel=3)()
    with pytest.raises(ValueError, match=r"\(1, 4, 4\)"):
        d.log_prob(torch.zeros(2, 1, 4, 5))
    with pytest.raises(ValueError, match=r"\(7,\)"):
        WaveNet(7, Bernoulli(), channels=4, blocks=1, layers=1)().log_prob(torch.zeros(3, 6))


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: PixelCNN((4, 4)), "shape"),
        (lambda: PixelCNN((1, 0, 4)), "shape"),
        (lambda: PixelCNN((3, 4, 4), channels=8), "channels must be a multiple"),
        (lambda: PixelCNN((1, 4, 4), channels=0), "channels"),
        (lambda: PixelCNN((1, 4, 4), kernel=4), "kernel"),
        (lambda: PixelCNN((1, 4, 4), kernel=1), "kernel"),
        (lambda: PixelCNN((1, 4, 4), layers=0), "layers"),
        (lambda: PixelCNN((1, 4, 4), context=-1), "context"),
        (lambda: WaveNet(0), "length"),
        (lambda: WaveNet(5.5), "length"),
        (lambda: WaveNet(8, blocks=0), "blocks"),
        (lambda: WaveNet(8, layers=0), "layers"),
        (lambda: WaveNet(8, kernel=1), "kernel"),
        (lambda: WaveNet(8, channels=0), "channels"),
        (lambda: WaveNet(8, skip=0), "skip"),
        (lambda: WaveNet(8, family="categorical"), "family"),
    ],
)
def test_bad_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_context_is_required_and_cache_is_sequential():
    model = WaveNet(6, Bernoulli(), channels=4, blocks=1, layers=1, context=2)
    with pytest.raises(ValueError, match="context"):
        model()
    x = torch.zeros(1, 6)
    c = torch.zeros(1, 2)
    state = model.begin(1, c)
    with pytest.raises(RuntimeError, match="begin"):
        model.step(state, x, c, 3)


@pytest.mark.parametrize(
    "make",
    [
        lambda: PixelCNN((1, 3, 3), Categorical(3), channels=4, layers=1, kernel=3, context=2),
        lambda: WaveNet(8, DiscretizedLogisticMixture(8, 2), channels=4, blocks=1, layers=2, context=2),
    ],
    ids=["pixelcnn", "wavenet"],
)
def test_config_round_trip(make):
    model = make()
    clone = from_config(json.loads(json.dumps(config(model))))
    clone.load_state_dict(model.state_dict())
    c = torch.randn(4, 2)
    x = model(c).sample()
    assert torch.equal(clone(c).log_prob(x), model(c).log_prob(x))
