"""NADE and the causal transformer: autoregressive by autograd, normalized, cached sampling equal to uncached."""

import json
import math

import pytest
import torch
import torch.nn as nn
from hypothesis import given
from hypothesis import strategies as st

from gendist.autoregressive import (
    NADE,
    Bernoulli,
    Categorical,
    DiscretizedLogisticMixture,
    Normal,
    NormalMixture,
    Transformer,
)
from gendist.config import config, from_config
from gendist.nn import CausalTransformer, TiedMLP

F64 = torch.float64
FAMILIES = [
    Bernoulli(),
    Categorical(3),
    Categorical(3, "scalar"),
    Normal(),
    NormalMixture(2),
    DiscretizedLogisticMixture(16, 2),
]
SMOOTH = [Bernoulli(), Categorical(3, "scalar"), Normal(), NormalMixture(2), DiscretizedLogisticMixture(16, 2)]


def build(kind: str, size: int, family, context: int = 0, order="natural", seed: int = 0):
    torch.manual_seed(seed)
    if kind == "nade":
        return NADE(size, family, hidden=8, context=context, order=order, seed=seed).double()
    return Transformer(size, family, d_model=8, heads=2, layers=2, context=context).double()


def ids(f) -> str:
    return repr(f)


# --- the autoregressive property, by autograd -----------------------------------------------------


@st.composite
def net_setups(draw):
    kind = draw(st.sampled_from(["nade", "transformer"]))
    D = draw(st.integers(1, 6))
    order = draw(st.permutations(list(range(D)))) if kind == "nade" else list(range(D))
    inputs, params = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    context = draw(st.sampled_from([0, 2]))
    seed = draw(st.integers(0, 2**16))
    return kind, D, order, inputs, params, context, seed


@given(net_setups())
def test_networks_are_autoregressive_and_see_the_context(setup):
    kind, D, order, E, P, C, seed = setup
    torch.manual_seed(seed)
    if kind == "nade":
        net = TiedMLP(D, P, hidden=6, context=C, order=torch.tensor(order), inputs=E).double()
    else:
        net = CausalTransformer(D, E, P, d_model=8, heads=2, layers=2, context=C).double()
    x = torch.randn(D, E, dtype=F64)
    c = torch.randn(C, dtype=F64) if C else None
    J = torch.autograd.functional.jacobian(lambda v: net(v, c), x)  # (D, P, D, E)
    dependence = J.abs().sum((1, 3)) > 0  # [i, j]: theta_i moves with x_j
    rank = torch.tensor(order)
    allowed = rank[None, :] < rank[:, None]
    assert torch.equal(dependence, allowed), f"dependence\n{dependence}\nallowed\n{allowed}"
    if C:  # every position, the first in the order included, sees the context
        Jc = torch.autograd.functional.jacobian(lambda v: net(x, v), c)  # (D, P, C)
        assert (Jc.abs().sum((1, 2)) > 0).all()


@given(
    st.sampled_from(["nade", "transformer"]),
    st.integers(1, 6),
    st.sampled_from(range(len(SMOOTH))),
    st.integers(0, 2**16),
)
def test_recipes_are_autoregressive_in_their_ordering(kind, D, f, seed):
    model = build(kind, D, SMOOTH[f], order="random", seed=seed)
    sigma = model.ordering()
    assert sorted(sigma) == list(range(D))
    x = torch.rand(D, dtype=F64)  # a differentiable stand-in for the values (the encodings are smooth in x)
    J = torch.autograd.functional.jacobian(lambda v: model.conditionals(v[None], None)[0], x)  # (D, P, D)
    for i in range(D):
        row = J[sigma[i]].abs().sum(0)
        assert (row[sigma[i:]] == 0).all(), f"position {sigma[i]} sees itself or a later one"
        if i > 0:
            assert (row[sigma[:i]] > 0).any(), f"position {sigma[i]} sees none of the earlier ones"


# --- normalization ---------------------------------------------------------------------------------


def test_nade_binary_sums_to_one_over_all_1024_configurations():
    d = build("nade", 10, Bernoulli(), order="random", seed=3)()
    values = d.enumerate_support()
    assert values.shape == (1024, 10)
    assert abs(d.log_prob(values).exp().sum().item() - 1) < 1e-5


@pytest.mark.parametrize(
    "kind, size, family",
    [("transformer", 5, Categorical(3)), ("nade", 4, Categorical(3, "scalar")),
     ("transformer", 3, DiscretizedLogisticMixture(4, 2))],
    ids=["transformer-categorical3-T5", "nade-categorical3-scalar", "transformer-dlm4"],
)
def test_discrete_sums_to_one_with_a_batch_of_contexts(kind, size, family):
    d = build(kind, size, family, context=2)(torch.randn(2, 2, dtype=F64))
    values = d.enumerate_support()  # (levels^size, 2, size)
    assert values.shape == (family.levels**size, 2, size)
    torch.testing.assert_close(d.log_prob(values).exp().sum(0), torch.ones(2, dtype=F64), atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "kind, family", [("nade", Normal()), ("transformer", NormalMixture(2))], ids=["nade-normal", "transformer-mix"]
)
def test_continuous_integrates_to_one_by_quadrature(kind, family):
    d = build(kind, 2, family, context=1)(torch.tensor([0.7], dtype=F64))
    u = torch.linspace(-10, 10, 201, dtype=F64)
    grid = torch.cartesian_prod(u, u)
    h = (u[1] - u[0]).item()
    mass = d.log_prob(grid).exp().sum().item() * h * h
    assert abs(mass - 1) < 1e-3


# --- sampling ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES, ids=ids)
@pytest.mark.parametrize("kind", ["nade", "transformer"])
def test_cached_sampling_equals_uncached_and_its_log_prob_is_log_prob(kind, family):
    model = build(kind, 5, family, context=2, order="random", seed=1)
    d = model(torch.randn(2, 2, dtype=F64))
    torch.manual_seed(7)
    x, lp = d.sample_and_log_prob((3,))
    torch.manual_seed(7)
    y, lq = d.sample_and_log_prob((3,), cache=False)
    assert x.shape == (3, 2, 5) and lp.shape == (3, 2)
    if family.discrete:
        assert torch.equal(x, y)
    else:
        torch.testing.assert_close(x, y)
    torch.testing.assert_close(lp, lq)
    torch.testing.assert_close(lp, d.log_prob(x))
    assert bool(d.support.check(x).all())


@pytest.mark.parametrize("kind", ["nade", "transformer"])
def test_rsample_flows_gradients_through_the_cache(kind):
    model = build(kind, 4, Normal(), context=2)
    d = model(torch.randn(3, 2, dtype=F64))
    torch.manual_seed(5)
    x, lp = d.rsample_and_log_prob((2,))
    torch.manual_seed(5)
    y = d.sample((2,))  # no autograd: the transformer writes its cache in place instead of concatenating
    torch.testing.assert_close(x.detach(), y)
    torch.testing.assert_close(lp.detach(), d.log_prob(y))
    (x.square().sum() + lp.sum()).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("kind", ["nade", "transformer"])
def test_steps_read_only_earlier_positions(kind):
    # while sampling, x holds 0 at the later positions; inpainting puts observed values there: neither may leak
    model = build(kind, 6, Categorical(3), order="random", seed=2)
    sigma = model.ordering()
    x = model().sample((4,))
    junk = torch.randint(3, (4, 6)).to(F64)
    zeros, junked = model.begin(4, None), model.begin(4, None)
    for i in range(6):
        later = sigma[i:]
        a, b = x.clone(), x.clone()
        a[:, later], b[:, later] = 0.0, junk[:, later]
        theta = model.step(zeros, a, None, i)
        torch.testing.assert_close(model.step(junked, b, None, i), theta, rtol=0, atol=0)
        torch.testing.assert_close(model.step_uncached(b, None, i), theta)


def test_transformer_steps_equal_the_full_pass():
    torch.manual_seed(0)
    net = CausalTransformer(7, inputs=2, params=3, d_model=12, heads=3, layers=2, context=2).double()
    x, c = torch.randn(4, 7, 2, dtype=F64), torch.randn(4, 2, dtype=F64)
    full = net(x, c)
    for grad in (False, True):  # preallocated buffers, then concatenation under autograd
        with torch.set_grad_enabled(grad):
            cache = net.init_cache(4, c)
            steps = [net.step(cache, None if t == 0 else x[:, t - 1]) for t in range(7)]
        torch.testing.assert_close(torch.stack(steps, 1), full)
        assert cache.length == 7
    with pytest.raises(ValueError, match="all 7 positions"):
        net.step(cache, x[:, 6])
    with pytest.raises(ValueError, match="position 0 takes x=None"):
        net.step(net.init_cache(4, c), x[:, 0])


# --- NADE's one pass ----------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", [nn.Sigmoid, nn.ReLU])
@pytest.mark.parametrize("order", [[3, 0, 4, 1, 2], [0, 1, 2, 3, 4]], ids=["permuted", "natural"])
def test_nade_one_pass_equals_the_naive_per_position_network(activation, order):
    torch.manual_seed(0)
    D, E, P, H, C = 5, 2, 3, 7, 2
    rank = torch.tensor(order)
    net = TiedMLP(D, P, H, C, rank, activation, inputs=E).double()
    x, c = torch.randn(6, D, E, dtype=F64), torch.randn(6, C, dtype=F64)
    naive = torch.empty(6, D, P, dtype=F64)
    for i in range(D):
        a = net.c + c @ net.context.weight.T
        for j in range(D):
            if rank[j] < rank[i]:
                a = a + x[:, j] @ net.W[:, j].T
        naive[:, i] = activation()(a) @ net.V[i].T + net.b[i]
    torch.testing.assert_close(net(x, c), naive)
    # and the running pre-activation, position by position in the order
    a = net.begin(6, c)
    for k, i in enumerate(net.ordering):
        if k:
            prev = net.ordering[k - 1]
            a = net.advance(a, x[:, prev], prev)
        torch.testing.assert_close(net.position(a, i), naive[:, i])


# --- context, shapes, errors, config ------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["nade", "transformer"])
def test_context_changes_every_conditional(kind):
    model = build(kind, 4, Normal(), context=3)
    x = torch.randn(1, 4, dtype=F64)
    c1, c2 = torch.randn(2, 1, 3, dtype=F64)
    t1, t2 = model.conditionals(x, c1), model.conditionals(x, c2)
    assert ((t1 - t2).abs().sum(-1) > 0).all()  # the first position in the order too
    assert model(c1).log_prob(x) != model(c2).log_prob(x)


@pytest.mark.parametrize("kind", ["nade", "transformer"])
def test_batched_context_shapes(kind):
    model = build(kind, 6, Bernoulli(), context=3)
    d = model(torch.randn(5, 3, dtype=F64))
    assert d.batch_shape == (5,) and d.event_shape == (6,)
    x = d.sample((2,))
    assert x.shape == (2, 5, 6)
    assert d.log_prob(x).shape == (2, 5)
    assert d.sample().shape == (5, 6)
    x, lp = d.sample_and_log_prob((2, 3))
    assert x.shape == (2, 3, 5, 6) and lp.shape == (2, 3, 5)
    assert d.log_prob(x[0, 0, 0]).shape == (5,)  # one value broadcast against the batch


@pytest.mark.parametrize("kind", ["nade", "transformer"])
def test_wrong_length_names_the_expected_shape(kind):
    d = build(kind, 6, Bernoulli())()
    with pytest.raises(ValueError, match=r"event shape \(6,\)"):
        d.log_prob(torch.zeros(4, 7, dtype=F64))
    with pytest.raises(ValueError, match="context"):
        build(kind, 6, Bernoulli(), context=2)()
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        build(kind, 6, Bernoulli(), context=2)(torch.zeros(3, dtype=F64))


@pytest.mark.parametrize(
    "make, error, match",
    [
        (lambda: NADE(0), ValueError, "features"),
        (lambda: NADE(2.5), ValueError, "features"),
        (lambda: NADE(3, hidden=0), ValueError, "hidden"),
        (lambda: NADE(3, hidden=2.5), ValueError, "hidden"),
        (lambda: NADE(3, context=-1), ValueError, "context"),
        (lambda: NADE(3, order="backwards"), ValueError, "order"),
        (lambda: NADE(3, order=[0, 0, 1]), ValueError, "order"),
        (lambda: NADE(3, order=[0, 1]), ValueError, "order"),
        (lambda: NADE(3, family="gaussian"), ValueError, "family"),
        (lambda: NADE(3, activation="relu"), TypeError, "activation"),
        (lambda: Transformer(0, Bernoulli()), ValueError, "length"),
        (lambda: Transformer(4, Bernoulli(), d_model=0), ValueError, "d_model"),
        (lambda: Transformer(4, Bernoulli(), d_model=10, heads=4), ValueError, "d_model must be a multiple of heads"),
        (lambda: Transformer(4, Bernoulli(), heads=0), ValueError, "heads"),
        (lambda: Transformer(4, Bernoulli(), layers=0), ValueError, "layers"),
        (lambda: Transformer(4, Bernoulli(), context=1.5), ValueError, "context"),
        (lambda: Transformer(4, Bernoulli(), dropout=1.0), ValueError, "dropout"),
        (lambda: Transformer(4, 3), TypeError, "family"),
    ],
)
def test_bad_constructor_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make()


@pytest.mark.parametrize("kind", ["nade", "transformer"])
def test_steps_out_of_order_are_refused(kind):
    model = build(kind, 4, Bernoulli())
    state = model.begin(2, None)
    x = torch.zeros(2, 4, dtype=F64)
    model.step(state, x, None, 0)
    with pytest.raises(ValueError, match="step"):
        model.step(state, x, None, 2)


@pytest.mark.parametrize(
    "make",
    [
        lambda: NADE(5, Categorical(3), hidden=6, context=2, order="random", activation=nn.ReLU, seed=4),
        lambda: NADE(3, Normal(), hidden=4, order=[2, 0, 1]),
        lambda: Transformer(5, NormalMixture(2), d_model=8, heads=2, layers=1, context=2),
    ],
    ids=["nade-random", "nade-permutation", "transformer"],
)
def test_config_round_trip(make):
    model = make().double()
    clone = from_config(json.loads(json.dumps(config(model)))).double()
    clone.load_state_dict(model.state_dict())
    assert clone.ordering() == model.ordering()
    c = torch.randn(4, 2, dtype=F64) if model.context else None
    x = model(c).sample((2,))
    assert torch.equal(clone(c).log_prob(x), model(c).log_prob(x))
    assert not math.isnan(model(c).log_prob(x).sum().item())


def test_discretized_logistic_is_finite_and_accurate_in_float32():
    # bins much narrower than the scale (log-scale 19 and 43): the difference of the two sigmoids is ~1e-9 and
    # ~1e-19, below float32's resolution of 0.5; and random parameters in every tail, against float64
    family = DiscretizedLogisticMixture(4, 2)
    wide = torch.tensor([-7.75, -18.28, 11.02, -42.17, 18.88, 43.2])
    lp = family.log_prob(wide, torch.tensor(1.0))
    torch.testing.assert_close(lp.double(), family.log_prob(wide.double(), torch.tensor(1.0, dtype=F64)))
    assert torch.isfinite(lp)
    torch.manual_seed(0)
    family = DiscretizedLogisticMixture(256, 5)
    theta = 3 * torch.randn(5000, 15, dtype=F64)
    x = torch.randint(0, 256, (5000,)).double()
    exact = family.log_prob(theta, x)
    assert (family.log_prob(theta.float(), x.float()).double() - exact).abs().max() < 1e-3
    levels = torch.arange(256, dtype=F64)
    total = family.log_prob(theta[:8, None].expand(8, 256, 15), levels.expand(8, 256)).logsumexp(-1)
    torch.testing.assert_close(total, torch.zeros(8, dtype=F64), atol=1e-12, rtol=0)
