r"""gendist <-> nflows: adapters both ways and numerical agreement on the same parameters.

Orientation: a gendist transform maps base -> data; an nflows ``Transform.forward``
maps data -> noise. The *same function* is therefore compared as
``gendist.call_and_ladj`` vs ``nflows.forward`` for an elementwise map given by
its parameters (both libraries define ``MonotonicAffine``/``PointwiseAffine``
and the spline as a function of ``x``), while the adapters turn one orientation
into the other.

Rational-quadratic spline parameter mapping (gendist ``MonotonicRQSpline`` vs
nflows ``unconstrained_rational_quadratic_spline(tails="linear")``), with
:math:`\delta` = ``min_derivative``:

- widths, heights: identical raw values. Both use
  ``min_bin + (1 - min_bin * K) * softmax(raw)`` as fractions of the interval
  width :math:`2B` (gendist ``min_bin`` = nflows ``min_bin_width`` =
  ``min_bin_height``), and both pin the outer knots to :math:`\pm B`.
- interior derivatives: gendist :math:`d = \delta + \mathrm{softplus}(r_g + c)`,
  nflows :math:`d = \delta + \mathrm{softplus}(r_n)`, with
  :math:`c = \log(\mathrm{expm1}(1 - \delta))`, so
  :math:`r_n = r_g + \log(e^{1 - \delta} - 1)` (a shift; :math:`\approx 0.5399`
  for :math:`\delta = 10^{-3}`).
- boundary derivatives: gendist pads with exactly 1; nflows pads the raw
  values with :math:`c`, giving :math:`\delta + \mathrm{softplus}(c) = 1` up to
  rounding. Same linear (identity) tails outside :math:`[-B, B]`.
- ``tail_bound`` = ``bound``.
"""

from __future__ import annotations

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
import torch.nn as nn
from nflows.distributions import ConditionalDiagonalNormal, DiagonalNormal, StandardNormal
from nflows.distributions.base import Distribution as NflowsDistribution
from nflows.flows import Flow as NFlow
from nflows.transforms import (
    CompositeTransform,
    MaskedAffineAutoregressiveTransform,
    PointwiseAffineTransform,
    ReversePermutation,
    SqueezeTransform,
)
from nflows.transforms.splines.rational_quadratic import unconstrained_rational_quadratic_spline
from pyro import poutine

from gendist.distributions.flow import Flow
from gendist.flows import FlowModule, MaskedAutoregressive
from gendist.interop import (
    FromNflows,
    NflowsFlow,
    NflowsTransform,
    from_nflows,
    from_nflows_flow,
    to_nflows,
)
from gendist.transforms import Autoregressive, MonotonicAffine, MonotonicRQSpline

DTYPES = [torch.float32, torch.float64]
# (value atol, log-det atol) per dtype
TOL = {torch.float32: 1e-5, torch.float64: 1e-10}


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


def _close(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype, what: str, scale: float = 1.0) -> None:
    assert a.shape == b.shape, f"{what}: shapes {tuple(a.shape)} vs {tuple(b.shape)}"
    diff = _max_diff(a, b)
    assert diff <= scale * TOL[dtype], f"{what}: max |diff| = {diff:.3e} > {scale * TOL[dtype]:.1e} ({dtype})"


def _perturb(module: nn.Module, std: float = 0.1, seed: int = 0) -> nn.Module:
    """Move every parameter away from its (near-identity) initialization, reproducibly."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(std * torch.randn(p.shape, generator=g, dtype=p.dtype).to(p.device))
    return module


def _maf(features: int, context: int | None = None, layers: int = 2, seed: int = 0) -> CompositeTransform:
    torch.manual_seed(seed)
    parts = []
    for _ in range(layers):
        parts.append(
            MaskedAffineAutoregressiveTransform(features, hidden_features=16, context_features=context)
        )
        parts.append(ReversePermutation(features))
    return _perturb(CompositeTransform(parts), seed=seed)


# ---------------------------------------------------------------------------------------------
# elementwise maps on the same parameters


@pytest.mark.parametrize("dtype", DTYPES)
def test_affine_matches_pointwise_affine(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    D = 5
    shift, log_scale = torch.randn(D, generator=g).to(dtype), torch.randn(D, generator=g).to(dtype)
    x = 3 * torch.randn(64, D, generator=g).to(dtype)
    ours = MonotonicAffine(shift, log_scale)
    theirs = PointwiseAffineTransform(shift=shift, scale=log_scale.exp())

    y, ladj = ours.call_and_ladj(x)
    y_n, ladj_n = theirs(x)  # nflows forward: the same function x * scale + shift
    _close(y, y_n, dtype, "affine value")
    _close(ladj.sum(-1), ladj_n, dtype, "affine log-det")
    x_back, ladj_inv = ours.inv_and_ladj(y)
    x_n, ladj_inv_n = theirs.inverse(y_n)
    _close(x_back, x_n, dtype, "affine inverse")
    _close(ladj_inv.sum(-1), -ladj_inv_n, dtype, "affine inverse log-det")

    # the adapter flips the orientation: from_nflows(g) is g^{-1}
    f = from_nflows(theirs)
    z, ladj_f = f.call_and_ladj(y)
    _close(z, x_n, dtype, "from_nflows(affine) value")
    _close(ladj_f, -ladj_n, dtype, "from_nflows(affine) log-det")


@pytest.mark.parametrize("dtype", DTYPES)
def test_affine_matches_maf_elementwise(dtype: torch.dtype) -> None:
    """nflows' MAF affine: scale = softplus(u) + 1e-3, i.e. MonotonicAffine(shift, log(softplus(u) + 1e-3))."""
    D = 4
    maf = MaskedAffineAutoregressiveTransform(D, hidden_features=8).to(dtype)
    g = torch.Generator().manual_seed(1)
    params = torch.randn(32, D * 2, generator=g).to(dtype)  # interleaved (u, shift) per feature
    x = torch.randn(32, D, generator=g).to(dtype)
    u, shift = params.view(32, D, 2).unbind(-1)
    ours = MonotonicAffine(shift, torch.log(nn.functional.softplus(u) + maf._epsilon))
    y, ladj = ours.call_and_ladj(x)
    y_n, ladj_n = maf._elementwise_forward(x, params)
    _close(y, y_n, dtype, "MAF affine value")
    _close(ladj.sum(-1), ladj_n, dtype, "MAF affine log-det")
    x_n, ladj_inv_n = maf._elementwise_inverse(y_n, params)
    x_back, ladj_inv = ours.inv_and_ladj(y_n)
    _close(x_back, x_n, dtype, "MAF affine inverse")
    _close(ladj_inv.sum(-1), -ladj_inv_n, dtype, "MAF affine inverse log-det")


@pytest.mark.parametrize("dtype", DTYPES)
def test_gendist_autoregressive_matches_nflows_maf(dtype: torch.dtype) -> None:
    """gendist's Autoregressive + MonotonicAffine driven by nflows' own MADE reproduces the nflows MAF layer."""
    D = 4
    maf = _perturb(MaskedAffineAutoregressiveTransform(D, hidden_features=16)).to(dtype)

    def meta(x: torch.Tensor) -> MonotonicAffine:
        u, shift = maf.autoregressive_net(x).view(*x.shape, 2).unbind(-1)
        return MonotonicAffine(shift, torch.log(nn.functional.softplus(u) + maf._epsilon))

    ours = Autoregressive(meta, passes=D)  # gendist orientation of nflows' data -> noise map
    x = torch.randn(50, D, dtype=dtype)
    z, ladj = ours.call_and_ladj(x)
    z_n, ladj_n = maf(x)
    _close(z, z_n, dtype, "MAF forward")
    _close(ladj, ladj_n, dtype, "MAF forward log-det")
    x_back, ladj_inv = ours.inv_and_ladj(z_n)
    x_n, ladj_inv_n = maf.inverse(z_n)
    _close(x_back, x_n, dtype, "MAF inverse", scale=10)
    _close(ladj_inv, -ladj_inv_n, dtype, "MAF inverse log-det", scale=10)


# ---------------------------------------------------------------------------------------------
# rational-quadratic spline


def _nflows_spline(x, w, h, d_gendist, inverse, bound, min_bin=1e-3, min_derivative=1e-3):
    shift = math.log(math.expm1(1.0 - min_derivative))  # r_n = r_g + log(e^{1 - delta} - 1)
    return unconstrained_rational_quadratic_spline(
        x,
        w,
        h,
        d_gendist + shift,
        inverse=inverse,
        tails="linear",
        tail_bound=bound,
        min_bin_width=min_bin,
        min_bin_height=min_bin,
        min_derivative=min_derivative,
    )


def _spline_inputs(n: int, bound: float, dtype: torch.dtype, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    inside = (2 * torch.rand(n, generator=g, dtype=torch.float64) - 1) * bound
    grid = torch.linspace(-4 * bound, 4 * bound, n, dtype=torch.float64)
    far = torch.tensor([-1e4, -1e2, -bound - 1e-3, -bound, bound, bound + 1e-3, 1e2, 1e4], dtype=torch.float64)
    return torch.cat([inside, grid, far]).to(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("bound", "min_bin", "min_derivative"), [(3.0, 1e-3, 1e-3), (1.5, 1e-2, 1e-2)])
def test_spline_matches_nflows(dtype: torch.dtype, bound: float, min_bin: float, min_derivative: float) -> None:
    K, n = 8, 1024
    x = _spline_inputs(n, bound, dtype, seed=2)
    g = torch.Generator().manual_seed(3)
    # moderate raw parameters: well-conditioned bins, see the next test for extreme ones
    w, h, d = (0.5 * torch.randn(x.shape + (k,), generator=g, dtype=torch.float64).to(dtype) for k in (K, K, K - 1))
    ours = MonotonicRQSpline(w, h, d, bound=bound, min_bin=min_bin, min_derivative=min_derivative)

    y, ladj = ours.call_and_ladj(x)
    y_n, ladj_n = _nflows_spline(x, w, h, d, False, bound, min_bin, min_derivative)
    _close(y, y_n, dtype, "spline value")
    _close(ladj, ladj_n, dtype, "spline log-det")

    xi, ladj_i = ours.inv_and_ladj(x)  # x used as a point of the data space
    xi_n, ladj_i_n = _nflows_spline(x, w, h, d, True, bound, min_bin, min_derivative)
    _close(xi, xi_n, dtype, "spline inverse")
    _close(ladj_i, -ladj_i_n, dtype, "spline inverse log-det")  # nflows returns the inverse map's

    outside = x.abs() > bound
    assert torch.equal(y[outside], x[outside]) and torch.equal(xi[outside], x[outside])
    assert bool((ladj[outside] == 0).all()) and bool((ladj_i[outside] == 0).all())


@pytest.mark.parametrize("dtype", DTYPES)
def test_spline_at_knots_and_min_bins(dtype: torch.dtype) -> None:
    """Inputs exactly on knots, and raw parameters extreme enough that bins hit min_bin and min_derivative."""
    K, B = 6, 2.0
    w = torch.tensor([[40.0, -40, -40, 0, -40, 3], [0, 0, 0, 0, 0, 0]], dtype=dtype)
    h = torch.tensor([[-40.0, 40, -40, -40, 1, -40], [5, -5, 0, 0, 0, 0]], dtype=dtype)
    d = torch.tensor([[-40.0, 40, 0, -3, 2], [0, 0, 0, 0, 0]], dtype=dtype)
    ours = MonotonicRQSpline(w, h, d, bound=B, min_bin=1e-3)
    knots_x, knots_y = ours.knots.unbind(-2)  # (2, K + 1) each
    raw_d = torch.nn.functional.pad(ours.raw_derivatives, (1, 1))  # raw 0 at the end knots: derivative 1
    md = ours.min_derivative
    knots_d = md + torch.nn.functional.softplus(raw_d + math.log(math.expm1(1 - md)))
    # min_bin is a fraction of 2B for widths and heights, exactly as nflows' min_bin_width/height
    assert abs(torch.diff(knots_x[0]).min().item() - 1e-3 * 2 * B) < 1e-6
    assert abs(torch.diff(knots_y[0]).min().item() - 1e-3 * 2 * B) < 1e-6
    assert abs(knots_d[0].min().item() - 1e-3) < 1e-6
    # end derivatives are 1 (up to one rounding of the softplus), matching the identity tails
    ends = torch.stack((knots_d[..., 0], knots_d[..., -1]))
    torch.testing.assert_close(ends, torch.ones_like(ends), atol=2 * torch.finfo(dtype).eps, rtol=0)

    for col, knots in ((0, knots_x), (1, knots_y)):
        v = knots.T.contiguous()  # (K + 1, 2): each row holds one knot of each spline
        W, H, Dv = (t.expand(K + 1, *t.shape) for t in (w, h, d))
        if col == 0:
            got, got_l = ours.call_and_ladj(v)
            ref, ref_l = _nflows_spline(v, W, H, Dv, False, B)
        else:
            got, got_l = ours.inv_and_ladj(v)
            ref, ref_l = _nflows_spline(v, W, H, Dv, True, B)
            ref_l = -ref_l
        # 10x tolerance: in float32 nflows inverts y = B (the last knot, after a min-size bin) to
        # x = B - 2.4e-7 with log-det -3.6e-5, where gendist returns the exact x = B, log-det 0
        _close(got, ref, dtype, f"spline at knots ({'forward' if col == 0 else 'inverse'})", scale=10)
        _close(got_l, ref_l, dtype, f"spline log-det at knots ({'forward' if col == 0 else 'inverse'})", scale=10)


def test_spline_float32_error_matches_nflows_when_ill_conditioned() -> None:
    """With large raw parameters the float32 *inverse* log-det is ill-conditioned (flat bins):
    both libraries then deviate from the float64 answer by the same order (~1e-3), so no
    1e-5 agreement is asserted there; gendist must not be worse than nflows."""
    K, B, n = 8, 3.0, 2048
    x64 = _spline_inputs(n, B, torch.float64, seed=4)
    g = torch.Generator().manual_seed(9)
    raw = [2 * torch.randn(x64.shape + (k,), generator=g, dtype=torch.float64) for k in (K, K, K - 1)]
    raw = [r.float().double() for r in raw]  # parameters representable in float32
    x64 = x64.float().double()
    ref, ref_l = MonotonicRQSpline(*raw, bound=B).inv_and_ladj(x64)
    r32 = [r.float() for r in raw]
    ours, ours_l = MonotonicRQSpline(*r32, bound=B).inv_and_ladj(x64.float())
    theirs, theirs_l = _nflows_spline(x64.float(), *r32, True, B)
    err_ours = max(_max_diff(ours.double(), ref), _max_diff(ours_l.double(), ref_l))
    err_theirs = max(_max_diff(theirs.double(), ref), _max_diff(-theirs_l.double(), ref_l))
    assert err_ours <= 2 * err_theirs + 1e-6, (err_ours, err_theirs)


# ---------------------------------------------------------------------------------------------
# adapters and round trips


@pytest.mark.parametrize("dtype", DTYPES)
def test_from_nflows_orientation_batches_and_context(dtype: torch.dtype) -> None:
    D, C = 3, 2
    t = _maf(D, context=C).to(dtype)
    x = torch.randn(5, 4, D, dtype=dtype)
    c = torch.randn(4, C, dtype=dtype)  # broadcast against the input's batch (5, 4)
    f = from_nflows(t, c)
    assert isinstance(f, FromNflows) and f.domain.event_dim == 1 and f.codomain.event_dim == 1
    z, ladj = f.inv_and_ladj(x)
    assert z.shape == x.shape and ladj.shape == (5, 4)
    z_n, ladj_n = t(x.reshape(20, D), context=c.expand(5, 4, C).reshape(20, C))
    _close(z, z_n.reshape(5, 4, D), dtype, "from_nflows inverse")
    _close(ladj, -ladj_n.reshape(5, 4), dtype, "from_nflows inverse log-det")
    x_back, ladj_fwd = f.call_and_ladj(z)
    _close(x_back, x, dtype, "round trip", scale=100)
    _close(ladj_fwd, ladj, dtype, "call vs inv log-det", scale=100)
    # torch's Transform interface follows
    _close(f(z), x_back, dtype, "__call__")
    _close(f.inv(x), z, dtype, ".inv")
    _close(f.log_abs_det_jacobian(z, x_back), ladj_fwd, dtype, "log_abs_det_jacobian")
    with pytest.raises(ValueError, match="do not broadcast"):
        f.inv_and_ladj(torch.randn(5, 3, D, dtype=dtype))
    with pytest.raises(TypeError, match="nflows.transforms.Transform"):
        from_nflows(MonotonicAffine(torch.zeros(1)))  # type: ignore[arg-type]


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_to_nflows_from_nflows(dtype: torch.dtype) -> None:
    D, C = 3, 2
    t = _maf(D, context=C).to(dtype)
    back = to_nflows(from_nflows(t, context_event_dim=1))
    assert set(map(id, back.parameters())) == set(map(id, t.parameters()))
    x, c = torch.randn(16, D, dtype=dtype), torch.randn(16, C, dtype=dtype)
    # to_nflows(from_nflows(t)) ignores a context: give the fixed one through from_nflows
    back = to_nflows(from_nflows(t, c))
    for a, b in ((back(x), t(x, c)), (back.inverse(x), t.inverse(x, c))):
        _close(a[0], b[0], dtype, "round trip value", scale=10)
        _close(a[1], b[1], dtype, "round trip log-det", scale=10)


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_from_nflows_to_nflows(dtype: torch.dtype) -> None:
    D, K = 3, 5
    g = torch.Generator().manual_seed(5)
    w, h, d = (0.5 * torch.randn(D, k, generator=g, dtype=torch.float64).to(dtype) for k in (K, K, K - 1))
    spline = MonotonicRQSpline(w, h, d, bound=2.0)
    nf = to_nflows(spline)
    x = 3 * torch.randn(7, 2, D, generator=g, dtype=torch.float64).to(dtype)
    # nflows view: forward is data -> noise, one log-det per row
    z_n, ladj_n = nf(x.reshape(14, D))
    z, ladj = spline.inv_and_ladj(x)
    _close(z_n.reshape(7, 2, D), z, dtype, "to_nflows forward")
    _close(ladj_n.reshape(7, 2), -ladj.sum(-1), dtype, "to_nflows forward log-det")
    f = from_nflows(nf)
    for got, ref in ((f.call_and_ladj(x), spline.call_and_ladj(x)), (f.inv_and_ladj(x), spline.inv_and_ladj(x))):
        _close(got[0], ref[0], dtype, "from_nflows(to_nflows(g)) value")
        _close(got[1], ref[1].sum(-1), dtype, "from_nflows(to_nflows(g)) log-det")


def test_to_nflows_of_a_gendist_module_in_an_nflows_flow() -> None:
    """A gendist LazyTransform (conditional MAF) trains inside an nflows Flow."""
    D, C = 3, 2
    torch.manual_seed(0)
    module = MaskedAutoregressive(D, context=C)
    nflow = NFlow(to_nflows(module), StandardNormal([D]))
    assert {id(p) for p in module.parameters()} <= {id(p) for p in nflow.parameters()}
    x, c = torch.randn(10, D), torch.randn(10, C)
    ref = FlowModule([module], features=D, context=C)(c).log_prob(x)
    _close(nflow.log_prob(x, c), ref, torch.float32, "nflows Flow of gendist module")
    nflow.log_prob(x, c).sum().backward()
    assert all(p.grad is not None for p in module.parameters())
    assert nflow.sample(4, c[:2]).shape == (2, 4, D)


@pytest.mark.parametrize("dtype", DTYPES)
def test_flow_log_prob_matches_nflows_maf(dtype: torch.dtype) -> None:
    D = 4
    nflow = NFlow(_maf(D, layers=3), StandardNormal([D])).to(dtype)
    module = from_nflows_flow(nflow)
    assert isinstance(module, NflowsFlow)
    d = module()
    assert isinstance(d, Flow) and d.event_shape == (D,) and d.batch_shape == ()
    x = torch.randn(200, D, dtype=dtype)
    lp, lp_n = d.log_prob(x), nflow.log_prob(x)
    assert lp.dtype == dtype
    _close(lp, lp_n, dtype, "Flow log_prob")
    s, lp_s = d.rsample_and_log_prob((30,))
    assert s.shape == (30, D) and s.dtype == dtype
    _close(lp_s, nflow.log_prob(s), dtype, "rsample_and_log_prob", scale=100)
    z0, ladj0 = d.transform.inv_and_ladj(x[:0])  # empty batches pass through nflows
    assert z0.shape == (0, D) and ladj0.shape == (0,)
    # built in one dtype, moved to the other: the base's buffers follow
    other = torch.float64 if dtype == torch.float32 else torch.float32
    module.to(other)
    lp_other = module().log_prob(x.to(other))
    assert lp_other.dtype == other
    assert torch.allclose(lp_other.double(), lp_n.double(), atol=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conditional_flow_with_embedding_and_conditional_base(dtype: torch.dtype) -> None:
    D, C, E = 3, 4, 5
    torch.manual_seed(1)
    embed = nn.Linear(C, E)
    base = ConditionalDiagonalNormal([D], context_encoder=nn.Linear(E, 2 * D))
    nflow = _perturb(NFlow(_maf(D, context=E), base, embedding_net=embed)).to(dtype)
    module = from_nflows_flow(nflow)
    c = torch.randn(3, 2, C, dtype=dtype)
    x = torch.randn(6, 3, 2, D, dtype=dtype)
    d = module(c)
    assert d.batch_shape == (3, 2) and d.event_shape == (D,)
    lp = d.log_prob(x)
    assert lp.shape == (6, 3, 2)
    lp_n = nflow.log_prob(x.reshape(36, D), c.expand(6, 3, 2, C).reshape(36, C)).reshape(6, 3, 2)
    _close(lp, lp_n, dtype, "conditional Flow log_prob")
    assert d.sample((4,)).shape == (4, 3, 2, D)
    with pytest.raises(ValueError, match="needs a context"):
        module()


def test_diagonal_normal_base_and_gradients() -> None:
    D = 3
    torch.manual_seed(2)
    nflow = _perturb(NFlow(_maf(D), DiagonalNormal([D])), std=0.3)
    module = from_nflows_flow(nflow)
    x = torch.randn(64, D)
    loss = -module().log_prob(x).mean()
    loss.backward()
    ours = [p.grad.clone() for p in nflow.parameters()]
    nflow.zero_grad()
    (-nflow.log_prob(x).mean()).backward()
    assert len(ours) == len(list(nflow.parameters()))
    for mine, ref in zip(ours, (p.grad for p in nflow.parameters())):
        assert mine is not None and torch.allclose(mine, ref, atol=1e-5)
    assert {id(p) for p in module.parameters()} == {id(p) for p in nflow.parameters()}
    assert set(module.state_dict()) == {"nflows." + k for k in nflow.state_dict()}  # no duplicate keys


def test_unsupported_base_names_its_class() -> None:
    class MyBase(NflowsDistribution):
        pass

    class MyNormal(StandardNormal):  # a subclass may change the density: refused as well
        pass

    for base in (MyBase(), MyNormal([2])):
        with pytest.raises(TypeError, match=type(base).__name__):
            from_nflows_flow(NFlow(_maf(2, layers=1), base))


def test_pyro_sample_and_lazy_module_save_and_move() -> None:
    D = 2
    torch.manual_seed(3)
    module = from_nflows_flow(NFlow(_maf(D), StandardNormal([D])))
    x = torch.randn(20, D)

    def model(data: torch.Tensor | None) -> torch.Tensor:
        pyro.module("flow", module)
        z = pyro.sample("z", module())
        with pyro.plate("data", 20):
            pyro.sample("x", module(), obs=data)
        return z

    pyro.clear_param_store()
    tr = poutine.trace(model).get_trace(x)
    tr.compute_log_prob()
    assert tr.nodes["z"]["value"].shape == (D,)
    _close(tr.nodes["x"]["log_prob"], module.nflows.log_prob(x), torch.float32, "pyro obs site")
    pyro.clear_param_store()

    # the lazy transform: parameters registered, state_dict round trip, dtype moves
    t1, t2 = NflowsTransform(_maf(D, seed=0)), NflowsTransform(_maf(D, seed=1))
    flows = [FlowModule([t], features=D) for t in (t1, t2)]
    assert not torch.allclose(flows[0]().log_prob(x), flows[1]().log_prob(x))
    t2.load_state_dict(t1.state_dict())
    _close(flows[0]().log_prob(x), flows[1]().log_prob(x), torch.float32, "state_dict round trip")
    flows[1].double()
    lp64 = flows[1]().log_prob(x.double())
    assert lp64.dtype == torch.float64
    _close(lp64.float(), flows[0]().log_prob(x), torch.float32, "after .double()")


def test_shape_changing_transform() -> None:
    """nflows' SqueezeTransform (1, 4, 4) -> (4, 2, 2) data -> noise; shapes give torch the event shapes."""
    f = from_nflows(SqueezeTransform(), shapes=((4, 2, 2), (1, 4, 4)))
    assert f.forward_shape((7, 4, 2, 2)) == (7, 1, 4, 4) and f.inverse_shape((1, 4, 4)) == (4, 2, 2)
    base = dist.Normal(torch.zeros(4, 2, 2), 1.0).to_event(3)
    d = Flow(base, [f], validate_args=True)
    assert d.event_shape == (1, 4, 4)
    x = d.sample((3,))
    assert x.shape == (3, 1, 4, 4)
    z = SqueezeTransform()(x)[0]
    _close(d.log_prob(x), base.log_prob(z), torch.float32, "squeeze flow log_prob")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda() -> None:
    D = 3
    nflow = NFlow(_maf(D, context=2), StandardNormal([D]))
    module = from_nflows_flow(nflow).cuda()
    x, c = torch.randn(8, D, device="cuda"), torch.randn(8, 2, device="cuda")
    lp = module(c).log_prob(x)
    assert lp.device.type == "cuda"
    _close(lp, nflow.log_prob(x, c), torch.float32, "cuda log_prob")
    assert module(c).sample().device.type == "cuda"
