"""Contracts of the flow modules and distributions beyond the conformance registry."""

import subprocess
import sys

import pytest
import torch
from pyro.distributions.torch_distribution import TorchDistributionMixin
from torch.distributions import constraints

import gendist
from gendist.flows import IAF, MAF, NSF, ActNorm, BatchNorm, FlowModule, MaskedAutoregressive, RealNVP


def test_import_changes_nothing_global():
    code = (
        "import torch, pyro\n"
        "v = torch.distributions.Distribution._validate_args\n"
        "a = torch.distributions.Distribution.__dict__['arg_constraints']\n"
        "d = torch.get_default_dtype()\n"
        "import gendist, gendist.flows, gendist.testing, gendist.interop\n"
        "assert torch.distributions.Distribution._validate_args == v\n"
        "assert torch.distributions.Distribution.__dict__['arg_constraints'] is a\n"
        "assert torch.get_default_dtype() == d\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr


def test_module_to_distribution_contract():
    flow = NSF(features=2, context=3)
    c = torch.randn(5, 3)
    d = flow(c)
    assert isinstance(d, gendist.Flow) and isinstance(d, TorchDistributionMixin)
    assert d.batch_shape == (5,) and d.event_shape == (2,)
    assert d.log_prob_kind == "exact"
    assert not isinstance(flow, torch.distributions.Distribution)
    assert isinstance(MAF(2)(), gendist.Flow)
    # Pyro's name for the same call
    assert flow.condition(c).batch_shape == (5,)


@pytest.mark.parametrize(
    "call, kind, words",
    [
        (lambda f: f(), ValueError, ["context of size 3", "(..., 3)"]),
        (lambda f: f(torch.randn(4, 2)), ValueError, ["(..., 3)", "(4, 2)"]),
        (lambda f: f(torch.ones(4, 3, dtype=torch.long)), TypeError, ["floating-point", "torch.int64"]),
        (lambda f: f(torch.full((3,), float("nan"))), ValueError, ["NaN"]),
        (lambda f: f(torch.randn(3)).log_prob(torch.randn(5, 3)), ValueError, ["(5, 3)", "(2,)"]),
        (lambda f: f(torch.randn(3)).log_prob(torch.ones(5, 2, dtype=torch.int32)), TypeError, ["torch.int32"]),
    ],
)
def test_bad_input_errors_name_the_problem(call, kind, words):
    flow = NSF(features=2, context=3)
    with pytest.raises(kind) as info:
        call(flow)
    for w in words:
        assert w in str(info.value)


def test_unconditional_flow_rejects_context():
    with pytest.raises(ValueError, match="unconditional"):
        MAF(2)(torch.randn(3))


def test_spline_tails_finite_far_outside_bound():
    flow = NSF(2, bound=1.0, transforms=2)
    x = torch.tensor([[1e4, -1e4], [50.0, 0.0], [1.0, -1.0]], requires_grad=True)
    lp = flow().log_prob(x)
    lp.sum().backward()
    assert torch.isfinite(lp).all() and torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in flow.parameters() if p.grad is not None)


@pytest.mark.parametrize("fast", ["log_prob", "sample"])
def test_orientation_costs(fast):
    """The fast direction is one MADE pass per layer, the slow one D passes (no more)."""
    D, layers = 4, 3
    flow = MAF(D, transforms=layers, hidden=(8,), fast=fast)
    calls = []
    for t in flow.transforms:  # count full passes and single-feature passes alike
        for name in ("forward", "feature"):
            method = getattr(t.made, name)
            setattr(t.made, name, lambda *a, _m=method: calls.append(1) or _m(*a))
    x = torch.randn(10, D)
    counts = {}
    for op, fn in {
        "log_prob": lambda: flow().log_prob(x),
        "sample": lambda: flow().sample((10,)),
        "rsample_and_log_prob": lambda: flow().rsample_and_log_prob((10,)),
    }.items():
        calls.clear()
        fn()
        counts[op] = len(calls)
    one, slow = layers, layers * D
    if fast == "log_prob":
        assert counts == {"log_prob": one, "sample": slow, "rsample_and_log_prob": slow}
    else:
        assert counts == {"log_prob": slow, "sample": one, "rsample_and_log_prob": one}


def test_sequential_inverse_matches_full_passes():
    """The per-feature inverse equals the plain D-pass inverse of the same transform."""
    from gendist.transforms import Autoregressive, inv_and_ladj

    for uni in ("affine", "spline"):
        layer = MaskedAutoregressive(5, context=2, univariate=uni, hidden=(16,), order=torch.tensor([3, 0, 4, 1, 2]))
        c = torch.randn(7, 2, dtype=torch.float64)
        layer.double()
        fast = layer(c)._inv  # the Autoregressive transform (MAF orientation returns its inverse)
        plain = Autoregressive(fast.meta, fast.passes)
        y = torch.randn(3, 7, 5, dtype=torch.float64)
        x1, l1 = inv_and_ladj(fast, y)
        x2, l2 = inv_and_ladj(plain, y)
        torch.testing.assert_close(x1, x2)
        torch.testing.assert_close(l1, l2)


def test_float64_sampling_and_log_prob():
    for flow in (MAF(3), IAF(3), NSF(3), NSF(3, coupling=True), RealNVP(3)):
        flow = flow.double()
        x, lp = flow().rsample_and_log_prob((4,))
        assert x.dtype == lp.dtype == torch.float64
        torch.testing.assert_close(flow().log_prob(x), lp)


def test_actnorm_initializes_from_first_data_and_survives_state_dict():
    flow = FlowModule([MaskedAutoregressive(2, hidden=(8,)), ActNorm(2)], features=2)
    data = 5.0 + 3.0 * torch.randn(500, 2)
    flow().log_prob(data)
    layer = flow.transforms[1]
    assert bool(layer.initialized)
    torch.testing.assert_close(layer.shift.detach(), data.mean(0))
    torch.testing.assert_close(layer.log_scale.exp().detach(), data.std(0), rtol=1e-4, atol=1e-4)
    # a reloaded model is not re-initialized by the next batch
    clone = FlowModule([MaskedAutoregressive(2, hidden=(8,)), ActNorm(2)], features=2)
    clone.load_state_dict(flow.state_dict())
    clone().log_prob(torch.randn(100, 2))
    torch.testing.assert_close(clone.transforms[1].shift, layer.shift)
    assert bool(clone.transforms[1].initialized)


def test_batchnorm_uses_batch_stats_in_training_and_running_stats_in_eval():
    layer = BatchNorm(2, momentum=1.0)
    flow = FlowModule([layer], features=2)
    data = torch.tensor([[1.0, 10.0], [3.0, 14.0]])
    z = flow().transform.inv(data)
    torch.testing.assert_close(z.mean(0), torch.zeros(2), atol=1e-6, rtol=0)
    torch.testing.assert_close(layer.running_mean, data.mean(0))
    flow.eval()
    z_eval = flow().transform.inv(data)
    torch.testing.assert_close(z_eval, z)  # momentum 1: running stats are the last batch's
    x = flow().sample((3,))
    assert x.shape == (3, 2)


def test_support_interval_and_positive():
    for support, check in [
        (constraints.interval(-2.0, 3.0), lambda x: (x > -2) & (x < 3)),
        (constraints.positive, lambda x: x > 0),
    ]:
        d = MAF(2, support=support)()
        x = d.sample((100,))
        assert check(x).all()
        assert d.support.check(x).all() and d.support.event_dim == 1
        d._validate_args = False
        outside = torch.tensor([[-5.0, 1.0]])
        assert d.log_prob(outside).item() == float("-inf")
        assert torch.distributions.biject_to(d.support)(torch.zeros(2)).shape == (2,)


def test_base_distribution_options():
    from gendist.distributions import GaussianMixture

    d = MAF(2, base=GaussianMixture(2, 4))()
    assert not d.has_rsample and d.sample((3,)).shape == (3, 2)
    d = MAF(2, base=torch.distributions.Independent(torch.distributions.Laplace(torch.zeros(2), torch.ones(2)), 1))()
    assert d.has_rsample and torch.isfinite(d.log_prob(torch.randn(3, 2))).all()
    with pytest.raises(ValueError, match="event_shape"):
        MAF(2, base=torch.distributions.Normal(torch.zeros(3), 1.0))


def test_fixed_base_moves_with_module():
    flow = MAF(2, base=torch.distributions.Independent(torch.distributions.Laplace(torch.zeros(2), torch.ones(2)), 1))
    flow.double()
    x = flow().sample((2,))
    assert x.dtype == torch.float64 and flow().base_dist.base_dist.loc.dtype == torch.float64


def test_compile_fullgraph_log_prob_and_rsample():
    # validation off everywhere (the flow and its base): its checks are data-dependent branches
    default = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        flow = MAF(2, transforms=2, hidden=(8,))
        flow.validate_args = False
        d = flow()
        x = torch.randn(16, 2)
        compiled = torch.compile(d.log_prob, fullgraph=True, backend="eager")
        torch.testing.assert_close(compiled(x), d.log_prob(x))
        sample = torch.compile(lambda: d.rsample((4,)), fullgraph=True, backend="eager")
        assert sample().shape == (4, 2)
    finally:
        torch.distributions.Distribution.set_default_validate_args(default)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_flows_on_cuda():
    for flow in (MAF(3, context=2), NSF(3, context=2), NSF(3, coupling=True), RealNVP(3)):
        flow = flow.cuda()
        c = torch.randn(5, flow.context, device="cuda") if flow.context else None
        d = flow(c)
        x, lp = d.rsample_and_log_prob((7,))
        assert x.is_cuda and lp.is_cuda
        torch.testing.assert_close(d.log_prob(x), lp, atol=1e-4, rtol=1e-4)


def test_standardize_reports_density_in_original_units():
    from gendist.flows import Standardize

    x = torch.tensor([1000.0, -3.0]) + torch.tensor([50.0, 0.1]) * torch.randn(400, 2)
    inner = MAF(2, transforms=2, hidden=(8,))
    layer = Standardize.from_data(x)
    flow = FlowModule([*inner.transforms, layer], features=2)
    z = (x - layer.mean) / layer.std
    expected = inner().log_prob(z) - layer.std.log().sum()
    torch.testing.assert_close(flow().log_prob(x), expected)
    clone = FlowModule([*MAF(2, transforms=2, hidden=(8,)).transforms, Standardize(2)], features=2)
    clone.load_state_dict(flow.state_dict())
    torch.testing.assert_close(clone().log_prob(x), flow().log_prob(x))
    with pytest.raises(ValueError, match="constant"):
        Standardize.from_data(torch.stack((torch.randn(10), torch.ones(10)), -1))
