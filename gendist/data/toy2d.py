r"""The synthetic 2-D densities of FFJORD (Grathwohl et al., 2019), as Pyro-native distributions.

Each density reproduces the FFJORD ``toy_data.inf_train_gen`` definition
(scikit-learn's ``make_moons``/``make_circles`` included), reimplemented in
torch with the evenly spaced angles of the generators replaced by their
continuum limit (uniform angles), so that the data really has a density.

Where it can, ``log_prob`` is the exact normalized log-density
(``log_prob_kind = "exact"``): a Gaussian mixture (eight Gaussians), a
piecewise constant density (checkerboard), a Gaussian-blurred circle through
the closed form with a Bessel function (rings, circles), or a Gaussian-blurred
arc integrated along the arc by Gauss-Legendre quadrature to float64 precision
(moons, two spirals). Pinwheel has no tractable density
(``log_prob_kind = "none"``).

Two more are the mode-collapse benchmarks of the GAN literature (the
protocol of Metz et al. 2017, VEEGAN and PacGAN): :class:`Ring`, eight
Gaussians on a circle, and :class:`Grid`, twenty-five Gaussians on a square
grid. Their modes are so far apart that ``entropy()`` is
:math:`\log K` plus the entropy of one Gaussian to float64 precision, and
they expose ``centres`` and ``std`` for the mode-coverage metric.

``entropy()`` is the exact differential entropy :math:`H = -E[\log p(x)]`,
computed once by deterministic numerical integration of the exact density
(how is said in each class) and stored as a constant; it is the best test
NLL any model can reach, so a model's ``NLL - H`` is its KL divergence from
the data.
"""

from __future__ import annotations

import math
from typing import ClassVar

import pyro.distributions as dist
import torch
from torch import Size, Tensor
from torch.distributions import constraints

from gendist._checks import check_integer, check_number, check_value
from gendist.distributions.base import Honest, LogProbKind, register_no_kl

__all__ = [
    "Toy2D",
    "EightGaussians",
    "Checkerboard",
    "Rings",
    "Circles",
    "Moons",
    "Pinwheel",
    "TwoSpirals",
    "Ring",
    "Grid",
    "densities",
]

_LOG_2PI = math.log(2 * math.pi)
_BLOCK = 2**21  # elements (rows x quadrature nodes) per block of the quadrature densities, to bound memory


def _blocks(flat: Tensor, nodes: int) -> list[Tensor]:
    return list(flat.split(max(1, _BLOCK // nodes))) if flat.shape[0] > 0 else [flat]


@register_no_kl
class Toy2D(Honest, dist.TorchDistribution):
    r"""Base class of the synthetic 2-D densities: event shape ``(2,)``, no parameters.

    The distribution has no learnable or random parameters; ``batch_shape``
    only repeats it, and ``device``/``dtype`` say where and in what precision
    ``sample`` draws (``log_prob`` follows its argument's device and dtype).
    Samples use torch's global RNG, so ``torch.manual_seed`` makes them
    reproducible.

    Arguments:
        batch_shape: the batch shape (repetitions of the same density).
        device: the device of the samples.
        dtype: the floating-point dtype of the samples (default: torch's default dtype).
        validate_args: check ``log_prob`` arguments against ``support``.
    """

    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {}
    support: constraints.Constraint = constraints.real_vector
    has_rsample = False
    log_prob_kind: ClassVar[LogProbKind] = "exact"
    _entropy: ClassVar[float | None] = None

    def __init__(
        self,
        batch_shape: Size | tuple[int, ...] = Size(),
        *,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        validate_args: bool | None = None,
    ) -> None:
        dtype = torch.get_default_dtype() if dtype is None else dtype
        if not dtype.is_floating_point:
            raise TypeError(f"{type(self).__name__}: dtype must be a floating-point dtype, got {dtype}")
        self._ref = torch.zeros((), device=device, dtype=dtype)
        super().__init__(Size(batch_shape), Size([2]), validate_args=validate_args)

    @property
    def device(self) -> torch.device:
        return self._ref.device

    @property
    def dtype(self) -> torch.dtype:
        return self._ref.dtype

    def expand(self, batch_shape: Size | tuple[int, ...], _instance: Toy2D | None = None) -> Toy2D:
        new = self._get_checked_instance(type(self), _instance)
        new._ref = self._ref
        super(Toy2D, new).__init__(Size(batch_shape), self.event_shape, validate_args=False)
        new._validate_args = self._validate_args
        return new

    def _draw(self, n: int) -> Tensor:
        r"""Draw ``n`` points, shape ``(n, 2)``, on ``self.device`` in ``self.dtype``."""
        raise NotImplementedError

    def _log_density(self, x: Tensor) -> Tensor:
        r"""The log-density of points ``x`` of shape ``(..., 2)``, shape ``(...)``."""
        raise NotImplementedError

    def _uniform(self, n: int) -> Tensor:
        return torch.rand(n, device=self.device, dtype=self.dtype)

    def _normal(self, *shape: int) -> Tensor:
        return torch.randn(*shape, device=self.device, dtype=self.dtype)

    def _choice(self, k: int, n: int) -> Tensor:
        return torch.randint(k, (n,), device=self.device)

    def sample(self, sample_shape: Size | tuple[int, ...] = Size()) -> Tensor:
        shape = self._extended_shape(Size(sample_shape))
        with torch.no_grad():
            return self._draw(shape[:-1].numel()).reshape(shape)

    def log_prob(self, value: Tensor) -> Tensor:
        name = type(self).__name__
        if self.log_prob_kind == "none":
            raise NotImplementedError(
                f"{name} has no tractable density (log_prob_kind='none'): use its samples "
                f"(`.sample(shape)`) with a sample-based metric, or pick a density with "
                f"log_prob_kind='exact' ({', '.join(k for k, v in densities.items() if v.log_prob_kind == 'exact')})"
            )
        check_value("value", value, self.event_shape, f"{name}.log_prob")
        if self._validate_args:
            self._validate_sample(value)
        lp = self._log_density(value)
        return lp.expand(torch.broadcast_shapes(lp.shape, self.batch_shape))

    def entropy(self) -> Tensor:
        if self._entropy is None:
            raise NotImplementedError(
                f"{type(self).__name__} has no known entropy; estimate a model's fit with a sample-based metric instead"
            )
        return torch.full(self.batch_shape, self._entropy, device=self.device, dtype=self.dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(batch_shape={tuple(self.batch_shape)})"


def _quadrature(n: int, a: float, b: float, like: Tensor) -> tuple[Tensor, Tensor]:
    r"""Gauss-Legendre nodes and weights for :math:`\int_a^b`, in ``like``'s device and dtype."""
    nodes, weights = _legendre(n)
    nodes = (b - a) / 2 * nodes + (a + b) / 2
    weights = (b - a) / 2 * weights
    return nodes.to(like), weights.to(like)


_LEGENDRE: dict[int, tuple[Tensor, Tensor]] = {}


def _legendre(n: int) -> tuple[Tensor, Tensor]:
    r"""Gauss-Legendre nodes and weights on :math:`[-1, 1]` (Golub-Welsch, float64, cached)."""
    if n not in _LEGENDRE:
        k = torch.arange(1, n, dtype=torch.float64)
        beta = k / torch.sqrt(4 * k**2 - 1)
        jacobi = torch.diag(beta, 1) + torch.diag(beta, -1)
        nodes, vectors = torch.linalg.eigh(jacobi)
        _LEGENDRE[n] = (nodes, 2 * vectors[0] ** 2)
    return _LEGENDRE[n]


def _blurred_points(x: Tensor, centres: Tensor, log_weights: Tensor, sigma: float) -> Tensor:
    r""":math:`\log \sum_j w_j \mathcal{N}(x; c_j, \sigma^2 I_2)` for ``x`` of shape ``(..., 2)``.

    The squared distances are expanded as :math:`\|x\|^2 - 2 x \cdot c_j + \|c_j\|^2`
    (one matrix product, as ``torch.cdist`` does; 3x faster than differences),
    in blocks of rows so that a quadrature with many nodes stays within
    bounded memory.
    """
    shape = x.shape[:-1]
    flat = x.reshape(-1, 2)
    centres, log_weights = centres.to(flat), log_weights.to(flat)
    s2 = 2 * sigma**2
    bias = log_weights - centres.square().sum(-1) / s2
    out = []
    for block in _blocks(flat, centres.shape[0]):
        logits = torch.addmm(bias, block, centres.T, alpha=2 / s2)
        out.append(torch.logsumexp(logits, dim=-1) - block.square().sum(-1) / s2)
    return (torch.cat(out) - _LOG_2PI - 2 * math.log(sigma)).reshape(shape)


class EightGaussians(Toy2D):
    r"""Eight Gaussians on a circle: FFJORD's ``8gaussians``.

    .. math:: p(x) = \frac18 \sum_{k=0}^{7} \mathcal{N}\big(x;\ \tfrac{4}{1.414} u_k,\
        \sigma^2 I_2\big), \qquad \sigma = \tfrac{0.5}{1.414},

    with :math:`u_k` the unit vectors at angles :math:`k \pi / 4` (FFJORD draws
    around centres of radius 4 with standard deviation 0.5, then divides by 1.414).

    ``log_prob_kind = "exact"`` (a Gaussian mixture). ``entropy()`` is
    2.8318804 nats, by midpoint quadrature of :math:`-p \log p` on a grid of step
    0.005 over :math:`[-6, 6]^2` (the same to 1e-12 at step 0.01); anchors.md
    quotes 2.834, a Monte Carlo estimate.

    Example:
        >>> d = EightGaussians()
        >>> x = d.sample((1000,))
        >>> x.shape, d.log_prob(x).shape
        (torch.Size([1000, 2]), torch.Size([1000]))
    """

    _entropy = 2.8318804061
    scale = 1.414

    def _centres(self, like: Tensor) -> Tensor:
        s = 1 / math.sqrt(2)
        units = [(1, 0), (-1, 0), (0, 1), (0, -1), (s, s), (s, -s), (-s, s), (-s, -s)]
        return 4 * torch.tensor(units, dtype=torch.float64).to(like) / self.scale

    def _draw(self, n: int) -> Tensor:
        centres = self._centres(self._ref)[self._choice(8, n)]
        return centres + self._normal(n, 2) * (0.5 / self.scale)

    def _log_density(self, x: Tensor) -> Tensor:
        log_w = torch.full((8,), -math.log(8), dtype=x.dtype, device=x.device)
        return _blurred_points(x, self._centres(x), log_w, 0.5 / self.scale)


class Checkerboard(Toy2D):
    r"""A 4 x 4 checkerboard on :math:`[-4, 4)^2` with mass on 8 of its 2 x 2 squares: FFJORD's ``checkerboard``.

    .. math:: p(x) = \frac{1}{32} \,
        \mathbb{1}\big[x \in [-4, 4)^2,\ \lfloor x_1 / 2 \rfloor + \lfloor x_2 / 2 \rfloor \text{ even}\big].

    ``log_prob_kind = "exact"``: :math:`-\log 32` on the black squares and
    :math:`-\infty` elsewhere. ``entropy()`` is :math:`\log 32 \approx 3.4657`
    exactly. ``support`` is the box :math:`[-4, 4]^2` (so that ``biject_to``
    works); points of the box off the black squares have density zero.

    Example:
        >>> d = Checkerboard()
        >>> d.log_prob(torch.tensor([[1.0, 1.0], [1.0, -1.0]]))
        tensor([-3.4657,    -inf])
    """

    support = constraints.independent(constraints.interval(-4.0, 4.0), 1)
    _entropy = math.log(32)

    def _draw(self, n: int) -> Tensor:
        x1 = self._uniform(n) * 4 - 2
        x2 = self._uniform(n) - self._choice(2, n).to(self.dtype) * 2 + torch.floor(x1) % 2
        return torch.stack([x1, x2], dim=-1) * 2

    def _log_density(self, x: Tensor) -> Tensor:
        u = x / 2
        inside = ((u >= -2) & (u < 2)).all(dim=-1)
        black = torch.floor(u).sum(dim=-1) % 2 == 0
        lp = torch.full(x.shape[:-1], -math.log(32), dtype=x.dtype, device=x.device)
        return lp.masked_fill(~(inside & black), -math.inf)


class _BlurredCircles(Toy2D):
    r"""Equal-weight circles of radii :math:`r_k` about 0, blurred by :math:`\mathcal{N}(0, \sigma^2 I_2)`.

    With :math:`\rho = \|x\|`, integrating the uniform angle in closed form gives

    .. math:: p(x) = \frac1K \sum_k \frac{1}{2 \pi \sigma^2}
        \exp\Big(-\frac{(\rho - r_k)^2}{2 \sigma^2}\Big)\,
        \tilde I_0\Big(\frac{\rho r_k}{\sigma^2}\Big),

    where :math:`\tilde I_0(z) = e^{-z} I_0(z)` is the exponentially scaled
    modified Bessel function (``torch.special.i0e``), stable at every radius.
    """

    radii: ClassVar[tuple[float, ...]]
    sigma: ClassVar[float]

    def _draw(self, n: int) -> Tensor:
        radii = torch.tensor(self.radii, device=self.device, dtype=self.dtype)[self._choice(len(self.radii), n)]
        theta = self._uniform(n) * (2 * math.pi)
        circle = torch.stack([theta.cos(), theta.sin()], dim=-1) * radii.unsqueeze(-1)
        return circle + self._normal(n, 2) * self.sigma

    def _log_density(self, x: Tensor) -> Tensor:
        rho = torch.linalg.vector_norm(x, dim=-1, keepdim=True)
        r = torch.tensor(self.radii, device=x.device, dtype=x.dtype)
        s2 = self.sigma**2
        terms = -(rho - r).square() / (2 * s2) + torch.special.i0e(rho * r / s2).log()
        return torch.logsumexp(terms, dim=-1) - math.log(len(self.radii)) - _LOG_2PI - math.log(s2)


class Rings(_BlurredCircles):
    r"""Four concentric rings: FFJORD's ``rings``.

    Radii :math:`r_k \in \{3, 2.25, 1.5, 0.75\}` with equal weights, angles
    uniform, blurred by :math:`\mathcal{N}(0, 0.08^2 I_2)`:

    .. math:: p(x) = \frac14 \sum_{k=1}^{4} \frac{1}{2 \pi \sigma^2}
        \exp\Big(-\frac{(\|x\| - r_k)^2}{2 \sigma^2}\Big)\,
        \tilde I_0\Big(\frac{\|x\| r_k}{\sigma^2}\Big), \qquad \sigma = 0.08,

    with :math:`\tilde I_0(z) = e^{-z} I_0(z)`.

    ``log_prob_kind = "exact"``. ``entropy()`` is 2.6231828 nats, by adaptive
    1-D quadrature of :math:`-2 \pi \rho\, p \log p` over the radius (scipy
    ``quad``, error below 1e-12); anchors.md quotes 2.626, a Monte Carlo estimate.

    Example:
        >>> d = Rings()
        >>> d.sample((3, 4)).shape
        torch.Size([3, 4, 2])
    """

    radii = (3.0, 2.25, 1.5, 0.75)
    sigma = 0.08
    _entropy = 2.6231827703


class Circles(_BlurredCircles):
    r"""Two concentric circles: FFJORD's ``circles``, ``3 * make_circles(factor=0.5, noise=0.08)``.

    Radii 3 and 1.5 with equal weights, angles uniform, blurred by
    :math:`\mathcal{N}(0, 0.24^2 I_2)` (the noise 0.08 is added before the
    factor 3):

    .. math:: p(x) = \frac12 \sum_{r \in \{3, 1.5\}} \frac{1}{2 \pi \sigma^2}
        \exp\Big(-\frac{(\|x\| - r)^2}{2 \sigma^2}\Big)\,
        \tilde I_0\Big(\frac{\|x\| r}{\sigma^2}\Big), \qquad \sigma = 0.24.

    ``log_prob_kind = "exact"``: full circles blur in closed form, as rings do.
    ``entropy()`` is 3.2681357 nats, by adaptive 1-D quadrature over the
    radius; anchors.md quotes 3.267, a Monte Carlo estimate.

    Example:
        >>> d = Circles(dtype=torch.float64)
        >>> d.entropy()
        tensor(3.2681, dtype=torch.float64)
    """

    radii = (3.0, 1.5)
    sigma = 0.24
    _entropy = 3.2681357117


class Moons(Toy2D):
    r"""Two interleaved half circles: FFJORD's ``moons``, ``2 * make_moons(noise=0.1) + (-1, -0.2)``.

    With :math:`t \sim \mathcal{U}(0, \pi)`, the upper moon :math:`c_1(t) = (\cos t, \sin t)`
    and the lower one :math:`c_2(t) = (1 - \cos t, \tfrac12 - \sin t)`, each with
    probability :math:`\tfrac12`, :math:`x = 2 c_m(t) + b + 0.2\,\varepsilon`,
    :math:`b = (-1, -0.2)`, :math:`\varepsilon \sim \mathcal{N}(0, I_2)`:

    .. math:: p(x) = \frac12 \sum_{m=1}^{2} \frac1\pi \int_0^\pi
        \mathcal{N}\big(x;\ 2 c_m(t) + b,\ \sigma^2 I_2\big)\, dt, \qquad \sigma = 0.2.

    ``log_prob_kind = "exact"``: the arc integral (an incomplete Bessel
    function, which torch lacks) is computed by a 128-node Gauss-Legendre rule
    per moon; in float64 it agrees with an 8192-node rule to 5e-11 nats on
    :math:`[-4, 4]^2` and to 2e-7 nats on :math:`[-15, 15]^2`, where the
    log-density falls to -4000 (the integrand is analytic in :math:`t`).
    ``entropy()`` is 2.3938792 nats, by midpoint quadrature of
    :math:`-p \log p` on a grid of step 0.005 over :math:`[-5, 5] \times [-4, 4]`
    (the same to 1e-6 at step 0.01); anchors.md quotes 2.405, a Monte Carlo
    estimate 0.011 too high.

    Example:
        >>> d = Moons()
        >>> lp = d.log_prob(d.sample((5,)))
        >>> lp.shape, bool(lp.isfinite().all())
        (torch.Size([5]), True)
    """

    sigma = 0.2
    nodes = 128
    _entropy = 2.3938792

    def _arcs(self, like: Tensor) -> tuple[Tensor, Tensor]:
        t, w = _quadrature(self.nodes, 0.0, math.pi, torch.zeros((), dtype=torch.float64))
        upper = torch.stack([t.cos(), t.sin()], dim=-1)
        lower = torch.stack([1 - t.cos(), 0.5 - t.sin()], dim=-1)
        shift = torch.tensor([-1.0, -0.2], dtype=torch.float64)
        centres = torch.cat([upper, lower]) * 2 + shift
        log_w = (torch.cat([w, w]) / (2 * math.pi)).log()
        return centres.to(like), log_w.to(like)

    def _draw(self, n: int) -> Tensor:
        t = self._uniform(n) * math.pi
        lower = self._choice(2, n).to(self.dtype).unsqueeze(-1)
        c = torch.stack([t.cos(), t.sin()], dim=-1)
        c = torch.where(lower > 0, torch.tensor([1.0, 0.5], device=self.device, dtype=self.dtype) - c, c)
        shift = torch.tensor([-1.0, -0.2], device=self.device, dtype=self.dtype)
        return 2 * c + shift + self._normal(n, 2) * self.sigma

    def _log_density(self, x: Tensor) -> Tensor:
        centres, log_w = self._arcs(x)
        return _blurred_points(x, centres, log_w, self.sigma)


class Pinwheel(Toy2D):
    r"""Five curved arms: FFJORD's ``pinwheel``.

    An arm :math:`k \sim \mathcal{U}\{0..4\}` and :math:`f \sim \mathcal{N}\big((1, 0),
    \mathrm{diag}(0.3^2, 0.1^2)\big)` give :math:`x = 2\, R(-\theta)\, f` with
    :math:`\theta = 2 \pi k / 5 + 0.25\, e^{f_1}` and :math:`R` a rotation.

    ``log_prob_kind = "none"``: the density needs the roots of a transcendental
    equation per arm, so ``log_prob`` and ``entropy()`` raise
    :class:`NotImplementedError`; use samples.

    Example:
        >>> Pinwheel().sample((7,)).shape
        torch.Size([7, 2])
    """

    log_prob_kind = "none"

    def _draw(self, n: int) -> Tensor:
        f = self._normal(n, 2) * torch.tensor([0.3, 0.1], device=self.device, dtype=self.dtype)
        f0, f1 = f[:, 0] + 1, f[:, 1]
        theta = self._choice(5, n).to(self.dtype) * (2 * math.pi / 5) + 0.25 * f0.exp()
        c, s = theta.cos(), theta.sin()
        return 2 * torch.stack([f0 * c + f1 * s, -f0 * s + f1 * c], dim=-1)


class TwoSpirals(Toy2D):
    r"""Two interleaved spirals: FFJORD's ``2spirals``.

    With :math:`\nu = 3 \pi \sqrt{U}` (density :math:`2 \nu / (3\pi)^2` on
    :math:`[0, 3\pi]`), :math:`u \sim \mathcal{U}[0, 1]^2`, a sign
    :math:`s = \pm 1` with probability :math:`\tfrac12` each and
    :math:`\varepsilon \sim \mathcal{N}(0, I_2)`,

    .. math:: x = \frac{s}{3} \Big( (-\nu \cos \nu,\ \nu \sin \nu) + \frac{u}{2} \Big) + 0.1\, \varepsilon .

    Given :math:`(\nu, s)`, each coordinate is uniform on an interval of
    length :math:`1/6` blurred by :math:`\mathcal{N}(0, 0.1^2)`, a difference
    of normal CDFs; ``log_prob`` integrates that over :math:`\nu` with a
    composite 16-point Gauss-Legendre rule on 64 panels of equal arc length,
    ``log_prob_kind = "exact"``: in float64 it agrees with a rule of 16 times
    as many nodes to 4e-10 nats wherever the log-density exceeds -200
    (1.5e-8 above -1000; only far in the tails is it worse). It costs about
    1 ms per point on one CPU core. ``entropy()`` is 2.6454503 nats, by
    midpoint quadrature of :math:`-p \log p` on a grid of step 0.025 over
    :math:`[-4.6, 4.6]^2` (the same to 1e-8 at step 0.05).

    Example:
        >>> TwoSpirals().sample((7,)).shape
        torch.Size([7, 2])
    """

    sigma = 0.1
    panels = 64
    order = 16
    _entropy = 2.6454503

    def _draw(self, n: int) -> Tensor:
        nu = self._uniform(n).sqrt() * (3 * math.pi)
        arm = torch.stack([-nu.cos() * nu, nu.sin() * nu], dim=-1) + self._uniform(2 * n).reshape(n, 2) / 2
        sign = 1 - 2 * self._choice(2, n).to(self.dtype).unsqueeze(-1)
        return sign * arm / 3 + self._normal(n, 2) * self.sigma

    def _nodes(self, like: Tensor) -> tuple[Tensor, Tensor]:
        key = (self.panels, self.order)
        if key not in _SPIRAL_NODES:
            t, w = _legendre(self.order)
            edges = _equal_arc_length(self.panels)
            half = (edges[1:] - edges[:-1]).unsqueeze(-1) / 2
            nu = ((edges[1:] + edges[:-1]).unsqueeze(-1) / 2 + half * t).reshape(-1)
            weights = (half * w).reshape(-1) * 2 * nu / (3 * math.pi) ** 2
            _SPIRAL_NODES[key] = (nu, weights.log())
        nu, log_w = _SPIRAL_NODES[key]
        return nu.to(like), log_w.to(like)

    def _log_density(self, x: Tensor) -> Tensor:
        nu, log_w = self._nodes(x)
        arm = torch.stack([-nu.cos() * nu, nu.sin() * nu], dim=-1) / 3  # (N, 2)
        shape = x.shape[:-1]
        flat = x.reshape(-1, 2)
        out = []
        for block in _blocks(flat, 4 * nu.shape[0]):
            b = block.unsqueeze(-2)  # (B, 1, 2)
            per_sign = []
            for sign in (1.0, -1.0):
                lo = torch.minimum(sign * arm, sign * (arm + 1 / 6))
                log_box = _log_normal_interval((b - lo - 1 / 6) / self.sigma, (b - lo) / self.sigma)
                per_sign.append(torch.logsumexp(log_w + log_box.sum(-1) + 2 * math.log(6), dim=-1))
            out.append(torch.logsumexp(torch.stack(per_sign), dim=0) - math.log(2))
        return torch.cat(out).reshape(shape)


_SPIRAL_NODES: dict[tuple[int, int], tuple[Tensor, Tensor]] = {}


def _equal_arc_length(panels: int) -> Tensor:
    r"""Points :math:`0 = \nu_0 < \dots < \nu_P = 3 \pi` cutting the spiral into arcs of equal length.

    The arc length of :math:`\nu \mapsto (-\nu \cos \nu, \nu \sin \nu)` is
    :math:`s(\nu) = \tfrac12 (\nu \sqrt{1 + \nu^2} + \operatorname{asinh} \nu)`,
    inverted by Newton's method in float64.
    """

    def length(nu: Tensor) -> Tensor:
        return (nu * torch.sqrt(1 + nu**2) + torch.asinh(nu)) / 2

    top = 3 * math.pi
    target = torch.linspace(0, 1, panels + 1, dtype=torch.float64) * length(torch.tensor(top, dtype=torch.float64))
    nu = torch.sqrt(2 * target)
    for _ in range(50):
        nu = (nu - (length(nu) - target) / torch.sqrt(1 + nu**2)).clamp(0, top)
    return nu


def _log_normal_interval(a: Tensor, b: Tensor) -> Tensor:
    r""":math:`\log(\Phi(b) - \Phi(a))` for :math:`a < b`, stable in both tails."""
    upper = a > 0
    hi = torch.where(upper, -a, b)
    lo = torch.where(upper, -b, a)
    log_hi = torch.special.log_ndtr(hi)
    return log_hi + torch.log1p(-torch.exp(torch.special.log_ndtr(lo) - log_hi))


class _GaussianModes(Toy2D):
    r"""An equal-weight mixture of :math:`K` isotropic Gaussians of standard deviation :math:`\sigma` about
    known centres :math:`c_k`:

    .. math:: p(x) = \frac1K \sum_{k=1}^{K} \mathcal{N}(x;\ c_k,\ \sigma^2 I_2).

    ``log_prob`` is exact; it takes the squared distances as differences (not
    expanded as in the quadrature densities), which keeps float32 accurate for
    peaked modes far from the origin.

    ``entropy()``: with :math:`Z` the mode of a draw,
    :math:`H(X) = H(X \mid Z) + H(Z) - H(Z \mid X) = \log K + 1 + \log(2 \pi \sigma^2) - H(Z \mid X)`,
    and since :math:`-\log p(k \mid x) = \log(1 + \sum_{j \ne k} \mathcal{N}_j / \mathcal{N}_k)
    \le \sum_{j \ne k} \sqrt{\mathcal{N}_j / \mathcal{N}_k}` (as :math:`\log(1 + u) \le \sqrt u`),

    .. math:: 0 \le H(Z \mid X) \le B = \frac1K \sum_k \sum_{j \ne k}
        \exp\Big(-\frac{\|c_j - c_k\|^2}{8 \sigma^2}\Big)

    (the Bhattacharyya coefficients of the pairs). ``entropy()`` returns
    :math:`\log K + 1 + \log(2 \pi \sigma^2)`, exact up to :math:`B`
    (``overlap_bound``); it raises :class:`NotImplementedError` if :math:`B > 10^{-9}`,
    where the modes overlap.
    """

    std: float

    def _centres64(self) -> Tensor:
        raise NotImplementedError

    @property
    def centres(self) -> Tensor:
        r"""The :math:`(K, 2)` centres of the modes, on the distribution's device and in its dtype."""
        return self._centres64().to(self._ref)

    @property
    def modes(self) -> int:
        r"""The number :math:`K` of modes."""
        return self._centres64().shape[0]

    @property
    def overlap_bound(self) -> float:
        r"""The bound :math:`B \ge H(Z \mid X)` on how far ``entropy()`` may exceed the true entropy (nats)."""
        c = self._centres64()
        d2 = (c.unsqueeze(0) - c.unsqueeze(1)).square().sum(-1)
        d2 = d2.fill_diagonal_(math.inf)
        return float(torch.exp(-d2 / (8 * self.std**2)).sum() / c.shape[0])

    def _draw(self, n: int) -> Tensor:
        k = self._choice(self.modes, n)
        return self.centres[k] + self._normal(n, 2) * self.std

    def _log_density(self, x: Tensor) -> Tensor:
        centres = self._centres64().to(x)
        shape = x.shape[:-1]
        flat = x.reshape(-1, 2)
        out = [
            torch.logsumexp((block.unsqueeze(-2) - centres).square().sum(-1) / (-2 * self.std**2), dim=-1)
            for block in _blocks(flat, 2 * centres.shape[0])
        ]
        const = math.log(centres.shape[0]) + _LOG_2PI + 2 * math.log(self.std)
        return (torch.cat(out) - const).reshape(shape)

    def entropy(self) -> Tensor:
        bound = self.overlap_bound
        if bound > 1e-9:
            raise NotImplementedError(
                f"{self!r}: the modes overlap (H(Z|X) may be up to {bound:.3g} nats), so the entropy has no closed "
                f"form; estimate it by Monte Carlo, -log_prob(sample).mean()"
            )
        value = math.log(self.modes) + 1 + _LOG_2PI + 2 * math.log(self.std)
        return torch.full(self.batch_shape, value, device=self.device, dtype=self.dtype)

    def _copy_parameters(self, new: _GaussianModes) -> None:
        raise NotImplementedError

    def expand(self, batch_shape: Size | tuple[int, ...], _instance: Toy2D | None = None) -> Toy2D:
        new = super().expand(batch_shape, _instance)
        self._copy_parameters(new)  # type: ignore[arg-type]
        return new


class Ring(_GaussianModes):
    r"""A ring of Gaussians: the 2-D mode-collapse benchmark of unrolled GANs, VEEGAN and PacGAN.

    .. math:: p(x) = \frac1K \sum_{k=0}^{K-1} \mathcal{N}\big(x;\ r (\cos \tfrac{2 \pi k}{K},
        \sin \tfrac{2 \pi k}{K}),\ \sigma^2 I_2\big).

    The defaults, :math:`K = 8`, :math:`r = 2`, :math:`\sigma = 0.02`, are the
    ring of Metz et al. (2017, unrolled GANs). VEEGAN (Srivastava et al., 2017)
    and PacGAN (Lin et al., 2018) use the same ring at half the scale
    (:math:`r = 1`, :math:`\sigma = 0.01`; the reference code draws its centres
    as :math:`r (\sin\theta_k, \cos\theta_k)`, the same eight points), which is
    the same benchmark: the mode-coverage metric counts a sample as
    high quality within :math:`3 \sigma` of its nearest centre, and a mode as
    captured when it is the nearest centre of a high-quality sample; VEEGAN
    reports both over 2,500 samples, averaged over 5 runs.

    ``log_prob_kind = "exact"``. ``entropy()`` is
    :math:`\log 8 + 1 + \log(2 \pi \cdot 0.02^2) = -2.9067274` nats with the
    defaults; the overlap bound :math:`B` (see ``overlap_bound``) is
    :math:`2 e^{-r^2 \sin^2(\pi/8) / (2 \sigma^2)} = 2 e^{-732} \approx 2 \cdot 10^{-318}`,
    nothing in float64.

    Arguments:
        modes: The number :math:`K` of Gaussians.
        radius: The radius :math:`r` of the circle of centres.
        std: The standard deviation :math:`\sigma` of each Gaussian.
        batch_shape, device, dtype, validate_args: as for :class:`Toy2D`.

    Example:
        >>> d = Ring()
        >>> d.centres.shape, d.std
        (torch.Size([8, 2]), 0.02)
        >>> d.centres[2]
        tensor([0., 2.])
        >>> round(float(d.entropy()), 4)
        -2.9067
    """

    def __init__(
        self,
        modes: int = 8,
        radius: float = 2.0,
        std: float = 0.02,
        *,
        batch_shape: Size | tuple[int, ...] = Size(),
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        validate_args: bool | None = None,
    ) -> None:
        self._modes = check_integer("modes", modes)
        self.radius = check_number("radius", radius)
        self.std = check_number("std", std)
        super().__init__(batch_shape, device=device, dtype=dtype, validate_args=validate_args)

    def _centres64(self) -> Tensor:
        theta = torch.arange(self._modes, dtype=torch.float64) * (2 * math.pi / self._modes)
        centres = torch.stack([theta.cos(), theta.sin()], dim=-1) * self.radius
        # the points on the axes exactly (cos(pi/2) is 6e-17 in float64)
        return torch.where(centres.abs() < 1e-12 * self.radius, 0.0, centres)

    def _copy_parameters(self, new: _GaussianModes) -> None:
        new._modes, new.radius, new.std = self._modes, self.radius, self.std  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"Ring(modes={self._modes}, radius={self.radius}, std={self.std}, batch_shape={tuple(self.batch_shape)})"


class Grid(_GaussianModes):
    r"""A square grid of Gaussians: the 25-mode benchmark of VEEGAN and PacGAN.

    .. math:: p(x) = \frac{1}{S^2} \sum_{i, j = 0}^{S-1} \mathcal{N}\big(x;\ (a_i, a_j),\ \sigma^2 I_2\big),
        \qquad a_i = \big(i - \tfrac{S - 1}{2}\big)\, s,

    a grid centred on the origin: with the defaults :math:`S = 5`, :math:`s = 2`,
    :math:`\sigma = 0.05`, the centres are :math:`\{-4, -2, 0, 2, 4\}^2`, the
    setting of VEEGAN (Srivastava et al., 2017) and PacGAN (Lin et al., 2018;
    variance 0.0025 per coordinate). Centre :math:`k = i S + j` is
    :math:`(a_i, a_j)`. A sample counts as high quality within
    :math:`3 \sigma` of its nearest centre (see :class:`Ring`).

    ``log_prob_kind = "exact"``. ``entropy()`` is
    :math:`\log 25 + 1 + \log(2 \pi \cdot 0.05^2) = 0.0652883` nats with the
    defaults; the overlap bound :math:`B` (see ``overlap_bound``) is
    :math:`\tfrac{80}{25} e^{-s^2 / (8 \sigma^2)} = 3.2\, e^{-200} \approx 4 \cdot 10^{-87}`.

    Arguments:
        side: The number :math:`S` of centres along each axis.
        spacing: The distance :math:`s` between neighbouring centres.
        std: The standard deviation :math:`\sigma` of each Gaussian.
        batch_shape, device, dtype, validate_args: as for :class:`Toy2D`.

    Example:
        >>> d = Grid()
        >>> d.centres[[0, 1, 24]]
        tensor([[-4., -4.],
                [-4., -2.],
                [ 4.,  4.]])
        >>> d.sample((5,)).shape
        torch.Size([5, 2])
    """

    def __init__(
        self,
        side: int = 5,
        spacing: float = 2.0,
        std: float = 0.05,
        *,
        batch_shape: Size | tuple[int, ...] = Size(),
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        validate_args: bool | None = None,
    ) -> None:
        self.side = check_integer("side", side)
        self.spacing = check_number("spacing", spacing)
        self.std = check_number("std", std)
        super().__init__(batch_shape, device=device, dtype=dtype, validate_args=validate_args)

    def _centres64(self) -> Tensor:
        a = (torch.arange(self.side, dtype=torch.float64) - (self.side - 1) / 2) * self.spacing
        return torch.cartesian_prod(a, a).reshape(-1, 2)

    def _copy_parameters(self, new: _GaussianModes) -> None:
        new.side, new.spacing, new.std = self.side, self.spacing, self.std  # type: ignore[attr-defined]

    def __repr__(self) -> str:
        return f"Grid(side={self.side}, spacing={self.spacing}, std={self.std}, batch_shape={tuple(self.batch_shape)})"


densities: dict[str, type[Toy2D]] = {
    "eight_gaussians": EightGaussians,
    "checkerboard": Checkerboard,
    "rings": Rings,
    "circles": Circles,
    "moons": Moons,
    "pinwheel": Pinwheel,
    "two_spirals": TwoSpirals,
    "ring": Ring,
    "grid": Grid,
}
r"""The densities by name; ``densities[name]()`` builds one."""
