r"""Restricted Boltzmann machines: the energy (:class:`RBMEnergy`, stateless math) and the module
(:class:`RBM`, the parameters) whose call returns an :class:`~gendist.distributions.EnergyBased`.

Bernoulli–Bernoulli, in the centered form of Melchior et al. (offsets :math:`\mu` and :math:`\lambda`;
:math:`\mu = \lambda = 0` is the plain RBM):

.. math:: E(v, h) = -(v - \mu)^\top W (h - \lambda) - b^\top v - c^\top h, \qquad v \in \{0, 1\}^V,\ h \in \{0, 1\}^H.

Gaussian–Bernoulli, with a standard deviation :math:`\sigma_i > 0` per visible unit:

.. math:: E(v, h) = \sum_i \frac{(v_i - b_i)^2}{2 \sigma_i^2} - \Big(\frac{v - \mu}{\sigma}\Big)^\top W (h - \lambda)
    - c^\top h, \qquad v \in \mathbb{R}^V,

so that :math:`p(h_j = 1 \mid v) = \mathrm{sigmoid}(c_j + \sum_i W_{ij} (v_i - \mu_i) / \sigma_i)` and
:math:`p(v_i \mid h) = \mathcal{N}(b_i + \sigma_i [W (h - \lambda)]_i, \sigma_i^2)`.

The distribution of :math:`v` is :math:`e^{-F(v)} / Z` with the free energy :math:`F(v) = -\log \sum_h
e^{-E(v, h)}` in closed form (a softplus per hidden unit). :math:`\log Z` is exact by enumerating the smaller
layer (the other summed or integrated in closed form), or estimated by annealed importance sampling from a
base-rate model (Salakhutdinov & Murray, 2008), forwards (a stochastic lower bound) or backwards from draws of
the model (a stochastic upper bound, Burda et al., 2015).

References:
    | A practical guide to training restricted Boltzmann machines (Hinton, 2010)
    | On the quantitative analysis of deep belief networks (Salakhutdinov & Murray, 2008)
    | Improved learning of Gaussian-Bernoulli restricted Boltzmann machines (Cho, Ilin & Raiko, 2011)
    | How to center deep Boltzmann machines (Melchior, Fischer & Wiskott, JMLR 2016)
    | Accurate and conservative estimates of MRF log-likelihood using reverse annealing (Burda et al., 2015)
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Size, Tensor
from torch.distributions import constraints
from torch.utils.checkpoint import checkpoint

from gendist._checks import check_integer, check_value
from gendist._recipes import Recorded
from gendist.distributions.energy import ENUMERATION_LIMIT, EnergyBased, LogPartition, binary_states
from gendist.distributions.lazy import LazyDistribution
from gendist.samplers.ais import ais
from gendist.samplers.mcmc import draw_normal, draw_uniform

__all__ = ["RBM", "RBMEnergy", "VISIBLE_KINDS", "ais_schedule"]

VISIBLE_KINDS = ("bernoulli", "gaussian")
r"""The kinds of visible units: binary (``"bernoulli"``) or real (``"gaussian"``); hidden units are binary."""

PARTITION_METHODS = (None, "exact", "ais", "reverse_ais")

Beta = float | Tensor


def ais_schedule(steps: int, schedule: str = "paper", dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None) -> Tensor:
    r"""An AIS schedule of ``steps`` inverse temperatures from 0 to 1.

    ``"linear"`` spaces them evenly; ``"paper"`` is Salakhutdinov & Murray's (2008): a share of
    :math:`500 / 14500` of the steps on :math:`[0, 0.5)`, :math:`4000 / 14500` on :math:`[0.5, 0.9)`
    and the rest on :math:`[0.9, 1]`, denser where the intermediate distributions change fastest.

    Example:
        >>> b = ais_schedule(29)
        >>> len(b), b[0].item(), b[-1].item(), round(b[1].item(), 3)
        (29, 0.0, 1.0, 0.5)
    """
    check_integer("ais_schedule: `steps`", steps, low=2)
    if schedule == "linear":
        return torch.linspace(0, 1, steps, dtype=dtype, device=device)
    if schedule != "paper":
        raise ValueError(f"ais_schedule: `schedule` must be 'paper' or 'linear', got {schedule!r}")
    if steps < 4:
        raise ValueError(f"ais_schedule: the 'paper' schedule needs at least 4 steps, got {steps}; "
                         "use schedule='linear' for fewer")
    n1 = max(1, round(steps * 500 / 14500))
    n2 = max(1, round(steps * 4000 / 14500))
    n3 = steps - n1 - n2
    parts = (torch.linspace(0, 0.5, n1 + 1, dtype=torch.float64)[:-1],
             torch.linspace(0.5, 0.9, n2 + 1, dtype=torch.float64)[:-1],
             torch.linspace(0.9, 1, n3, dtype=torch.float64))
    return torch.cat(parts).to(dtype=dtype or torch.get_default_dtype(), device=device)


def _bernoulli(p: Tensor, generator: torch.Generator | None) -> Tensor:
    return (draw_uniform(p.shape, p, generator) < p).to(p.dtype)


def _units(beta: Beta) -> Beta:
    r"""``beta`` broadcast over units: a per-chain tensor gets a trailing unit dimension."""
    return beta.unsqueeze(-1) if isinstance(beta, Tensor) and beta.dim() > 0 else beta


class RBMEnergy:
    r"""The free energy of a restricted Boltzmann machine, with its block Gibbs sampler and its :math:`\log Z`.

    Stateless: it holds the tensors it is given (differentiable: the free energy and the exact :math:`\log Z`
    carry gradients to them). It is the ``energy`` of an :class:`~gendist.distributions.EnergyBased`:
    ``energy(v, None)`` is :math:`F(v)`, and it offers ``gibbs``, ``init``, ``partition_methods`` and
    ``log_partition``. See the module's docstring for the energies.

    Arguments:
        weight: :math:`W`, shape ``(V, H)``.
        visible_bias: :math:`b`, shape ``(V,)``.
        hidden_bias: :math:`c`, shape ``(H,)``.
        visible: ``"bernoulli"`` (binary visible units) or ``"gaussian"`` (real ones).
        sigma: the Gaussian units' standard deviations :math:`\sigma`, shape ``(V,)`` (default ones).
        visible_offset: the centering offset :math:`\mu`, shape ``(V,)`` (default zeros).
        hidden_offset: the centering offset :math:`\lambda`, shape ``(H,)`` (default zeros).

    Example:
        >>> W = torch.zeros(3, 2, dtype=torch.float64)
        >>> e = RBMEnergy(W, torch.zeros(3, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
        >>> round(e.log_partition("exact").value.item(), 6) == round(5 * math.log(2), 6)   # 2^3 * 2^2 states
        True
        >>> e(torch.ones(3, dtype=torch.float64)).item() == -2 * math.log(2)
        True
    """

    partition_methods = ("exact", "ais", "reverse_ais")

    def __init__(
        self,
        weight: Tensor,
        visible_bias: Tensor,
        hidden_bias: Tensor,
        visible: str = "bernoulli",
        sigma: Tensor | None = None,
        visible_offset: Tensor | None = None,
        hidden_offset: Tensor | None = None,
    ) -> None:
        if visible not in VISIBLE_KINDS:
            raise ValueError(f"RBMEnergy: `visible` must be one of {VISIBLE_KINDS}, got {visible!r}")
        if not isinstance(weight, Tensor) or weight.dim() != 2 or not weight.is_floating_point():
            raise ValueError("RBMEnergy: `weight` must be a floating-point tensor of shape (visible, hidden), got "
                             f"{getattr(weight, 'shape', type(weight).__name__)}")
        V, H = weight.shape
        if V < 1 or H < 1:
            raise ValueError(f"RBMEnergy: `weight` needs at least one visible and one hidden unit, got {(V, H)}")
        zeros_v, zeros_h = weight.new_zeros(V), weight.new_zeros(H)
        sigma = weight.new_ones(V) if sigma is None else sigma
        visible_offset = zeros_v if visible_offset is None else visible_offset
        hidden_offset = zeros_h if hidden_offset is None else hidden_offset
        for name, t, n in (("visible_bias", visible_bias, V), ("hidden_bias", hidden_bias, H), ("sigma", sigma, V),
                           ("visible_offset", visible_offset, V), ("hidden_offset", hidden_offset, H)):
            if not isinstance(t, Tensor) or tuple(t.shape) != (n,):
                raise ValueError(f"RBMEnergy: `{name}` must be a tensor of shape ({n},), got "
                                 f"{tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__}")
            if t.dtype != weight.dtype or t.device != weight.device:
                raise TypeError(f"RBMEnergy: `{name}` is {t.dtype} on {t.device} but `weight` is {weight.dtype} on "
                                f"{weight.device}; give every tensor the same dtype and device")
        if visible == "gaussian" and not bool((sigma > 0).all()):
            raise ValueError("RBMEnergy: `sigma` must be positive")
        self.weight, self.visible_bias, self.hidden_bias = weight, visible_bias, hidden_bias
        self.visible, self.sigma = visible, sigma
        self.visible_offset, self.hidden_offset = visible_offset, hidden_offset

    # --- what it is --------------------------------------------------------------------------------
    @property
    def visible_size(self) -> int:
        return self.weight.shape[0]

    @property
    def hidden_size(self) -> int:
        return self.weight.shape[1]

    @property
    def gaussian(self) -> bool:
        return self.visible == "gaussian"

    def _tensors(self) -> tuple[Tensor, ...]:
        return (self.weight, self.visible_bias, self.hidden_bias, self.sigma, self.visible_offset,
                self.hidden_offset)

    def to(self, *args: Any, **kwargs: Any) -> RBMEnergy:
        r"""The same energy with every tensor moved (``Tensor.to``'s arguments)."""
        t = [x.to(*args, **kwargs) for x in self._tensors()]
        return RBMEnergy(t[0], t[1], t[2], self.visible, t[3], t[4], t[5])

    def detach(self) -> RBMEnergy:
        r"""The same energy with every tensor detached from the autograd graph."""
        t = [x.detach() for x in self._tensors()]
        return RBMEnergy(t[0], t[1], t[2], self.visible, t[3], t[4], t[5])

    def plain(self) -> RBMEnergy:
        r"""The same distribution without centering offsets (:math:`\mu = \lambda = 0`): the biases absorb them,
        :math:`b \to b - \sigma W \lambda` and :math:`c \to c - W^\top (\mu / \sigma)` (:math:`\sigma = 1` for
        binary units). The joint energy changes by a constant only."""
        W, s = self.weight, self.sigma if self.gaussian else torch.ones_like(self.sigma)
        b = self.visible_bias - s * (W @ self.hidden_offset)
        c = self.hidden_bias - (self.visible_offset / s) @ W
        return RBMEnergy(W, b, c, self.visible, self.sigma)

    def _scaled(self, v: Tensor) -> Tensor:
        r""":math:`(v - \mu) / \sigma` (without :math:`\sigma` for binary units)."""
        u = v - self.visible_offset
        return u / self.sigma if self.gaussian else u

    def _visible_linear(self, v: Tensor, beta: Beta) -> Tensor:
        r"""The terms of :math:`-\beta F_\beta(v)` besides the softplus: :math:`\beta (b^\top v - \ldots)`."""
        lin = -((self._scaled(v) @ self.weight) * self.hidden_offset).sum(-1)
        if self.gaussian:
            quad = -(((v - self.visible_bias) / self.sigma) ** 2).sum(-1) / 2
        else:
            quad = (v * self.visible_bias).sum(-1)
        return beta * (quad + lin)

    # --- energies ----------------------------------------------------------------------------------
    def __call__(self, v: Tensor, c: Tensor | None = None) -> Tensor:
        r"""The free energy :math:`F(v)` (``c`` must be None: the RBM is unconditional)."""
        if c is not None:
            raise ValueError("RBMEnergy: an RBM is unconditional; it takes no context `c`")
        return self.free_energy(v)

    def free_energy(self, v: Tensor, beta: Beta = 1.0) -> Tensor:
        r"""The free energy of the tempered joint, :math:`F_\beta(v) = -\log \sum_h e^{-\beta E(v, h)}`, shape
        ``v.shape[:-1]`` (:math:`F_1 = F`; ``beta`` a number or a tensor of shape ``v.shape[:-1]``)."""
        self._check_units(v, self.visible_size, "v", "RBMEnergy.free_energy")
        pre = self.hidden_bias + self._scaled(v) @ self.weight
        return -(self._visible_linear(v, beta) + F.softplus(_units(beta) * pre).sum(-1))

    def hidden_free_energy(self, h: Tensor) -> Tensor:
        r""":math:`F(h) = -\log \sum_v e^{-E(v, h)}` (an integral over :math:`v` for Gaussian units), shape
        ``h.shape[:-1]``: :math:`\log Z = \log \sum_h e^{-F(h)}`."""
        self._check_units(h, self.hidden_size, "h", "RBMEnergy.hidden_free_energy")
        a = (h - self.hidden_offset) @ self.weight.T
        out = (h * self.hidden_bias).sum(-1)
        if self.gaussian:
            s = self.sigma
            const = s.log().sum() + self.visible_size * 0.5 * math.log(2 * math.pi)
            out = out + (a * (self.visible_bias - self.visible_offset) / s + a**2 / 2).sum(-1) + const
        else:
            out = out + F.softplus(self.visible_bias + a).sum(-1) - (a * self.visible_offset).sum(-1)
        return -out

    def joint_energy(self, v: Tensor, h: Tensor) -> Tensor:
        r"""The joint energy :math:`E(v, h)`, shape ``broadcast(v.shape[:-1], h.shape[:-1])``."""
        self._check_units(v, self.visible_size, "v", "RBMEnergy.joint_energy")
        self._check_units(h, self.hidden_size, "h", "RBMEnergy.joint_energy")
        inter = ((self._scaled(v) @ self.weight) * (h - self.hidden_offset)).sum(-1)
        if self.gaussian:
            vis = (((v - self.visible_bias) / self.sigma) ** 2).sum(-1) / 2
        else:
            vis = -(v * self.visible_bias).sum(-1)
        return vis - inter - (h * self.hidden_bias).sum(-1)

    @staticmethod
    def _check_units(x: Tensor, n: int, name: str, where: str) -> None:
        if not isinstance(x, Tensor) or x.dim() < 1 or x.shape[-1] != n:
            raise ValueError(f"{where}: `{name}` must have shape (..., {n}), got "
                             f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}")

    # --- conditionals and Gibbs sampling -----------------------------------------------------------
    def hidden_probs(self, v: Tensor, beta: Beta = 1.0) -> Tensor:
        r""":math:`p(h_j = 1 \mid v)` under :math:`e^{-\beta E}`: :math:`\mathrm{sigmoid}(\beta (c + W^\top
        (v - \mu) / \sigma))`."""
        return torch.sigmoid(_units(beta) * (self.hidden_bias + self._scaled(v) @ self.weight))

    def visible_probs(self, h: Tensor) -> Tensor:
        r""":math:`E[v \mid h]`: :math:`\mathrm{sigmoid}(b + W (h - \lambda))` for binary units (the
        probabilities), :math:`b + \sigma W (h - \lambda)` for Gaussian ones (the means)."""
        a = (h - self.hidden_offset) @ self.weight.T
        return self.visible_bias + self.sigma * a if self.gaussian else torch.sigmoid(self.visible_bias + a)

    visible_mean = visible_probs

    def sample_hidden(self, v: Tensor, generator: torch.Generator | None = None, beta: Beta = 1.0) -> Tensor:
        r"""A draw of :math:`h \sim p_\beta(h \mid v)`."""
        return _bernoulli(self.hidden_probs(v, beta), generator)

    def sample_visible(self, h: Tensor, generator: torch.Generator | None = None, beta: Beta = 1.0,
                       base: Tensor | None = None) -> Tensor:
        r"""A draw of :math:`v \sim p_\beta(v \mid h)` under :math:`e^{-\beta E}`, or, with ``base`` (the base
        model's visible biases or means :math:`b_A`), under AIS's :math:`e^{-(1 - \beta) E_A - \beta E}`."""
        a = (h - self.hidden_offset) @ self.weight.T
        beta = _units(beta)
        if self.gaussian:
            mean = self.visible_bias + self.sigma * a
            if base is None:
                return mean + self.sigma / beta**0.5 * draw_normal(mean.shape, mean, generator)
            mean = (1 - beta) * base + beta * mean
            return mean + self.sigma * draw_normal(mean.shape, mean, generator)
        logits = beta * (self.visible_bias + a)
        if base is not None:
            logits = logits + (1 - beta) * base
        return _bernoulli(torch.sigmoid(logits), generator)

    def sweep(self, v: Tensor, generator: torch.Generator | None = None, beta: Beta = 1.0,
              base: Tensor | None = None) -> Tensor:
        r"""One block-Gibbs sweep :math:`v \to h \to v` of the tempered joint :math:`e^{-\beta E(v, h)}` (or, with
        ``base``, of AIS's :math:`e^{-(1 - \beta) E_A(v) - \beta E(v, h)}`).

        It leaves invariant that joint's visible marginal, :math:`\propto e^{-F_\beta(v)}` (see
        :meth:`free_energy`): the model at :math:`\beta = 1`, but at other :math:`\beta` *not*
        :math:`e^{-\beta F(v)}` (:meth:`gibbs` corrects for that). ``beta`` is a number or a tensor of shape
        ``v.shape[:-1]`` (positive for Gaussian units without ``base``).
        """
        return self.sample_visible(self.sample_hidden(v, generator, beta), generator, beta, base)

    def gibbs(self, v: Tensor, c: Tensor | None = None, generator: torch.Generator | None = None,
              beta: Beta = 1.0) -> Tensor:
        r"""One transition leaving :math:`e^{-\beta F(v)}` invariant (what ``sampler="gibbs"`` and parallel
        tempering's Gibbs kernel expect): a block-Gibbs :meth:`sweep` at :math:`\beta = 1`; at other
        :math:`\beta` the tempered-joint sweep, which leaves :math:`e^{-F_\beta}` invariant and is reversible,
        taken as a Metropolis–Hastings proposal accepted with probability
        :math:`\min(1, e^{[F_\beta(v') - \beta F(v')] - [F_\beta(v) - \beta F(v)]})`.
        ``beta`` is a number or a tensor of shape ``v.shape[:-1]`` (positive for Gaussian units).
        """
        if c is not None:
            raise ValueError("RBMEnergy.gibbs: an RBM is unconditional; it takes no context `c`")
        new = self.sweep(v, generator, beta)
        if not isinstance(beta, Tensor) and beta == 1:
            return new
        log_a = ((self.free_energy(new, beta) - beta * self.free_energy(new))
                 - (self.free_energy(v, beta) - beta * self.free_energy(v)))
        accept = draw_uniform(log_a.shape, log_a, generator).log() < log_a
        return torch.where(accept.unsqueeze(-1), new, v)

    def default_base(self) -> Tensor:
        r"""The visible biases (binary units) or means (Gaussian ones) of the model with its weights removed:
        :math:`b - \sigma W \lambda`, the default base of AIS and of :meth:`init`."""
        s = self.sigma if self.gaussian else 1.0
        return self.visible_bias - s * (self.weight @ self.hidden_offset)

    def init(self, shape: Size | tuple[int, ...], generator: torch.Generator | None = None) -> Tensor:
        r"""Starting states of shape ``shape`` (ending in ``(V,)``): draws of the model without its weights."""
        base = self.default_base().detach()
        if self.gaussian:
            return base + self.sigma.detach() * draw_normal(Size(shape), base, generator)
        return _bernoulli(torch.sigmoid(base).expand(shape), generator)

    # --- the partition function ----------------------------------------------------------------------
    def log_partition(self, method: str = "exact", c: Tensor | None = None, **options: Any) -> LogPartition:
        r""":math:`\log Z` by ``method``:

        - ``"exact"``: enumerate the smaller layer, the other summed (or integrated) in closed form; options
          ``layer`` (``"auto"``, ``"hidden"`` or ``"visible"``; Gaussian units leave only ``"hidden"``) and
          ``chunk`` (states at a time, default :math:`2^{14}`). Differentiable in the tensors (each chunk is
          recomputed in the backward pass, so memory stays one chunk's). At most
          :data:`~gendist.distributions.energy.ENUMERATION_LIMIT` units are enumerated.
        - ``"ais"``: annealed importance sampling from the base-rate model (visible biases, or means, only),
          through :math:`f_\beta(v) = \sum_h e^{-(1 - \beta) E_A(v) - \beta E(v, h)}`, by tempered block Gibbs;
          options ``chains`` (default 100), ``betas`` (an int for :func:`ais_schedule`, default 1000, or a
          schedule), ``schedule`` (``"paper"`` or ``"linear"``), ``base_rate`` (the data's mean: marginal
          probabilities for binary units, means for Gaussian ones; default :meth:`default_base`),
          ``generator``, ``progress``. An estimate with its standard error, a stochastic lower bound.
        - ``"reverse_ais"``: the same annealing run backwards from ``x`` (chains of visible states, dim 0):
          exact draws of the model give a stochastic upper bound.
        """
        if c is not None:
            raise ValueError("RBMEnergy.log_partition: an RBM is unconditional; it takes no context `c`")
        if method == "exact":
            return self._log_partition_exact(**options)
        if method in ("ais", "reverse_ais"):
            return self._log_partition_ais(method, **options)
        raise ValueError(f"RBMEnergy.log_partition: unknown `method` {method!r}; expected one of "
                         f"{self.partition_methods}")

    def _log_partition_exact(self, layer: str = "auto", chunk: int = 2**14) -> LogPartition:
        V, H = self.visible_size, self.hidden_size
        check_integer("RBMEnergy.log_partition: `chunk`", chunk, low=1)
        if layer not in ("auto", "hidden", "visible"):
            raise ValueError(f"RBMEnergy.log_partition: `layer` must be 'auto', 'hidden' or 'visible', got {layer!r}")
        if layer == "visible" and self.gaussian:
            raise ValueError("RBMEnergy.log_partition: Gaussian visible units cannot be enumerated; use "
                             "layer='hidden' (or 'auto')")
        if layer == "auto":
            layer = "hidden" if self.gaussian or H <= V else "visible"
        n = H if layer == "hidden" else V
        if n > ENUMERATION_LIMIT:
            other = V if layer == "hidden" else H
            states = 2.0**n
            raise ValueError(
                f"RBMEnergy.log_partition('exact'): the enumerated layer ({layer}) has {n} units, so exact log Z "
                f"sums 2^{n} = {states:.3g} states, about {states * other * 2:.3g} multiply-adds and "
                f"{states * (n + other) * self.weight.element_size() / 1e9:.3g} GB if held at once; at most "
                f"{ENUMERATION_LIMIT} units are enumerated: use method='ais' (an estimate with its standard "
                "error; 'reverse_ais' for an upper bound) instead")
        fn = self.hidden_free_energy if layer == "hidden" else self.free_energy
        grad = torch.is_grad_enabled() and any(t.requires_grad for t in self._tensors())
        total = None
        for start in range(0, 2**n, chunk):
            stop = min(start + chunk, 2**n)
            if grad:
                part = checkpoint(_chunk_log_sum_exp, fn, start, stop, n, self.weight, use_reentrant=False)
            else:
                part = _chunk_log_sum_exp(fn, start, stop, n, self.weight)
            total = part if total is None else torch.logaddexp(total, part)
        return LogPartition(total, None, "exact")

    def _log_f(self, v: Tensor, beta: Tensor, base: Tensor) -> Tensor:
        r""":math:`\log f_\beta(v) = -(1 - \beta) E_A(v) - F_\beta(v)`, the AIS intermediate."""
        if self.gaussian:
            log_base = -(((v - base) / self.sigma) ** 2).sum(-1) / 2
        else:
            log_base = (v * base).sum(-1)
        return (1 - beta) * log_base - self.free_energy(v, beta)

    def _log_partition_ais(self, method: str, chains: int = 100, betas: int | Tensor = 1000,
                           schedule: str = "paper", base_rate: Tensor | None = None, x: Tensor | None = None,
                           generator: torch.Generator | None = None, progress: bool = False) -> LogPartition:
        where = f"RBMEnergy.log_partition({method!r})"
        W = self.weight
        with torch.no_grad():
            e = self.detach()
            if base_rate is None:
                base = e.default_base()
            else:
                check_value("base_rate", base_rate, Size([self.visible_size]), where, W.dtype)
                base = base_rate.to(W.device)
                if not self.gaussian:
                    if not bool(((base >= 0) & (base <= 1)).all()):
                        raise ValueError(f"{where}: `base_rate` holds the data's marginal probabilities, in [0, 1]")
                    base = torch.logit(base.clamp(1e-3, 1 - 1e-3))
            if isinstance(betas, int):
                betas = ais_schedule(betas, schedule, dtype=W.dtype, device=W.device)
            if self.gaussian:
                log_z0 = e.sigma.log().sum() + self.visible_size * 0.5 * math.log(2 * math.pi)
            else:
                log_z0 = F.softplus(base).sum()
            log_z0 = log_z0 + self.hidden_size * math.log(2)
            reverse = method == "reverse_ais"
            if reverse:
                if x is None:
                    raise ValueError(f"{where}: pass `x`, chains of visible states along dim 0 (exact draws of the "
                                     "model give an upper bound; long Gibbs chains or data a conservative estimate)")
                check_value("x", x, Size([self.visible_size]), where, W.dtype)
                start = x.to(W.device)
            else:
                check_integer(f"{where}: `chains`", chains, low=2)
                if self.gaussian:
                    start = base + e.sigma * draw_normal(Size([chains, self.visible_size]), base, generator)
                else:
                    start = _bernoulli(torch.sigmoid(base).expand(chains, -1), generator)
            out = ais(lambda v, beta: e._log_f(v, beta, base), lambda v, beta, g: e.sweep(v, g, beta, base),
                      start, betas, log_z0, reverse=reverse, generator=generator, progress=progress)
        return LogPartition(out.log_z, out.stderr, method)

    def __repr__(self) -> str:
        return f"RBMEnergy(visible={self.visible_size}, hidden={self.hidden_size}, kind={self.visible!r})"


def _chunk_log_sum_exp(fn: Any, start: int, stop: int, n: int, like: Tensor) -> Tensor:
    return torch.logsumexp(-fn(binary_states(start, stop, n, like.dtype, like.device)), 0)


class RBM(Recorded, LazyDistribution):
    r"""A restricted Boltzmann machine: ``model()`` is its :class:`~gendist.distributions.EnergyBased`
    distribution of the visible units, :math:`p(v) = e^{-F(v)} / Z`.

    With ``log_partition="exact"`` the distribution carries the exact :math:`\log Z` (enumerating the smaller
    layer, differentiably): its ``log_prob`` is exact and :func:`~gendist.inference.fit` with the default
    negative log-likelihood is exact maximum likelihood (small layers only). With ``"ais"`` it carries an AIS
    estimate and its standard error (for evaluation: no gradient flows through it). With None, ``log_prob``
    needs :meth:`~gendist.distributions.EnergyBased.normalized` first; training then uses contrastive
    divergence or another objective built on :meth:`free_energy` and :meth:`gibbs`.

    Arguments:
        visible, hidden: the numbers of visible and hidden units.
        visible_kind: ``"bernoulli"`` (binary data) or ``"gaussian"`` (real data, see :class:`RBMEnergy`).
        centering: centered energy (Melchior et al., 2016): offsets :math:`\mu` (visible, start 0.5 for binary
            units, 0 for Gaussian ones) and :math:`\lambda` (hidden, start 0.5), buffers moved towards the
            data's and the hidden units' means by :meth:`update_offsets`.
        centering_decay: the default rate of :meth:`update_offsets`' moving average.
        sigma: the Gaussian units' starting standard deviation; ``learn_sigma``: a parameter
            (``log_sigma``) or fixed.
        init_std: the standard deviation of the starting weights (biases start at 0).
        sampler, steps, sampler_options: how the distribution samples (``"gibbs"``: block Gibbs sweeps).
        log_partition: None, ``"exact"``, ``"ais"`` or ``"reverse_ais"``: the :math:`\log Z` the distribution
            carries, computed on every call, with ``partition_options`` (see :meth:`RBMEnergy.log_partition`).

    Example:
        >>> rbm = RBM(4, 3, log_partition="exact").double()
        >>> d = rbm()
        >>> d.log_prob_kind, round(d.log_prob(d.enumerate_support()).exp().sum().item(), 6)
        ('exact', 1.0)
    """

    def __init__(
        self,
        visible: int,
        hidden: int,
        visible_kind: str = "bernoulli",
        centering: bool = False,
        centering_decay: float = 0.01,
        sigma: float = 1.0,
        learn_sigma: bool = True,
        init_std: float = 0.01,
        sampler: str = "gibbs",
        steps: int = 1000,
        sampler_options: dict[str, Any] | None = None,
        log_partition: str | None = None,
        partition_options: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        check_integer("RBM: `visible`", visible, low=1)
        check_integer("RBM: `hidden`", hidden, low=1)
        check_integer("RBM: `steps`", steps, low=1)
        if visible_kind not in VISIBLE_KINDS:
            raise ValueError(f"RBM: `visible_kind` must be one of {VISIBLE_KINDS}, got {visible_kind!r}")
        if not 0 < centering_decay <= 1:
            raise ValueError(f"RBM: `centering_decay` must be in (0, 1], got {centering_decay!r}")
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"RBM: `sigma` must be positive and finite, got {sigma!r}")
        if not (math.isfinite(init_std) and init_std >= 0):
            raise ValueError(f"RBM: `init_std` must be >= 0 and finite, got {init_std!r}")
        if log_partition not in PARTITION_METHODS:
            raise ValueError(f"RBM: `log_partition` must be one of {PARTITION_METHODS}, got {log_partition!r}")
        self.visible, self.hidden, self.visible_kind = visible, hidden, visible_kind
        self.centering, self.centering_decay = bool(centering), float(centering_decay)
        self.sampler, self.steps, self.sampler_options = sampler, steps, dict(sampler_options or {})
        self.log_partition, self.partition_options = log_partition, dict(partition_options or {})
        self.weight = nn.Parameter(torch.randn(visible, hidden) * init_std)
        self.visible_bias = nn.Parameter(torch.zeros(visible))
        self.hidden_bias = nn.Parameter(torch.zeros(hidden))
        log_sigma = torch.full((visible,), math.log(sigma))
        if visible_kind == "gaussian" and learn_sigma:
            self.log_sigma = nn.Parameter(log_sigma)
        else:
            self.register_buffer("log_sigma", log_sigma)
        start = 0.5 if centering else 0.0
        self.register_buffer("visible_offset", torch.full((visible,), start if visible_kind == "bernoulli" else 0.0))
        self.register_buffer("hidden_offset", torch.full((hidden,), start))

    # --- the energy and its pieces ---------------------------------------------------------------------
    @property
    def sigma(self) -> Tensor:
        r"""The Gaussian units' standard deviations :math:`\sigma = e^{\log \sigma}` (ones for binary units)."""
        return self.log_sigma.exp()

    def energy(self) -> RBMEnergy:
        r"""The :class:`RBMEnergy` of the current parameters (differentiable in them)."""
        return RBMEnergy(self.weight, self.visible_bias, self.hidden_bias, self.visible_kind, self.sigma,
                         self.visible_offset, self.hidden_offset)

    def _value(self, v: Tensor, where: str) -> Tensor:
        check_value("v", v, Size([self.visible]), where, self.weight.dtype)
        return v

    def free_energy(self, v: Tensor) -> Tensor:
        r"""The free energy :math:`F(v) = -\log \sum_h e^{-E(v, h)}`, shape ``v.shape[:-1]``."""
        return self.energy()(self._value(v, "RBM.free_energy"))

    def hidden_probs(self, v: Tensor) -> Tensor:
        r""":math:`p(h_j = 1 \mid v)`, shape ``v.shape[:-1] + (hidden,)``."""
        return self.energy().hidden_probs(self._value(v, "RBM.hidden_probs"))

    def visible_probs(self, h: Tensor) -> Tensor:
        r""":math:`E[v \mid h]` (probabilities of binary units, means of Gaussian ones)."""
        check_value("h", h, Size([self.hidden]), "RBM.visible_probs", self.weight.dtype)
        return self.energy().visible_probs(h)

    def sample_hidden(self, v: Tensor, generator: torch.Generator | None = None) -> Tensor:
        r"""A draw of :math:`h \sim p(h \mid v)`."""
        return self.energy().sample_hidden(self._value(v, "RBM.sample_hidden"), generator)

    def sample_visible(self, h: Tensor, generator: torch.Generator | None = None) -> Tensor:
        r"""A draw of :math:`v \sim p(v \mid h)`."""
        check_value("h", h, Size([self.hidden]), "RBM.sample_visible", self.weight.dtype)
        return self.energy().sample_visible(h, generator)

    @torch.no_grad()
    def gibbs(self, v: Tensor, steps: int = 1, generator: torch.Generator | None = None,
              beta: float = 1.0) -> Tensor:
        r"""``steps`` block-Gibbs sweeps :math:`v \to h \to v` from ``v`` (at inverse temperature ``beta``)."""
        check_integer("RBM.gibbs: `steps`", steps, low=0)
        energy = self.energy()
        v = self._value(v, "RBM.gibbs")
        for _ in range(steps):
            v = energy.gibbs(v, None, generator, beta)
        return v

    # --- centering ---------------------------------------------------------------------------------
    @torch.no_grad()
    def update_offsets(self, v: Tensor, h: Tensor | None = None, decay: float | None = None) -> None:
        r"""Move the centering offsets towards the means of ``v`` (data) and ``h`` (the hidden units' activations
        on it, default :math:`p(h \mid v)`): :math:`\mu \leftarrow (1 - \nu) \mu + \nu \bar v`,
        :math:`\lambda \leftarrow (1 - \nu) \lambda + \nu \bar h`, with :math:`\nu` = ``decay`` (default
        ``centering_decay``; 1 sets them). The biases are reparametrized so that the distribution is unchanged
        (Melchior et al., 2016): :math:`b \leftarrow b + \sigma W \Delta\lambda`,
        :math:`c \leftarrow c + W^\top (\Delta\mu / \sigma)`.
        """
        if not self.centering:
            raise ValueError("RBM.update_offsets: the RBM was built with centering=False; its offsets stay 0")
        nu = self.centering_decay if decay is None else decay
        if not 0 < nu <= 1:
            raise ValueError(f"RBM.update_offsets: `decay` must be in (0, 1], got {decay!r}")
        v = self._value(v, "RBM.update_offsets")
        if h is None:
            h = self.hidden_probs(v)
        check_value("h", h, Size([self.hidden]), "RBM.update_offsets", self.weight.dtype)
        mu = (1 - nu) * self.visible_offset + nu * v.reshape(-1, self.visible).mean(0)
        lam = (1 - nu) * self.hidden_offset + nu * h.reshape(-1, self.hidden).mean(0)
        s = self.sigma if self.visible_kind == "gaussian" else torch.ones_like(self.sigma)
        self.visible_bias.add_(s * (self.weight @ (lam - self.hidden_offset)))
        self.hidden_bias.add_(((mu - self.visible_offset) / s) @ self.weight)
        self.visible_offset.copy_(mu)
        self.hidden_offset.copy_(lam)

    @torch.no_grad()
    def init_from_data(self, v: Tensor) -> None:
        r"""Start from the data (Hinton, 2010): the visible biases so that the model without weights has the
        data's marginals (:math:`\mathrm{logit}` of the means, clamped to :math:`[10^{-3}, 1 - 10^{-3}]`, for
        binary units; the means for Gaussian ones); with centering, the offsets set to the data's means first."""
        v = self._value(v, "RBM.init_from_data")
        if self.centering:
            self.update_offsets(v, decay=1.0)
        mean = v.reshape(-1, self.visible).mean(0)
        target = mean if self.visible_kind == "gaussian" else torch.logit(mean.clamp(1e-3, 1 - 1e-3))
        s = self.sigma if self.visible_kind == "gaussian" else torch.ones_like(self.sigma)
        self.visible_bias.copy_(target + s * (self.weight @ self.hidden_offset))

    # --- the distribution --------------------------------------------------------------------------
    def forward(self, c: Tensor | None = None, **options: Any) -> EnergyBased:
        r"""The distribution :math:`p(v)`; keyword ``options`` override ``sampler``, ``steps``,
        ``sampler_options``, ``log_partition`` and ``partition_options`` (and pass ``validate_args``)."""
        if c is not None:
            raise ValueError("RBM is unconditional: it takes no context (context=0), got a context `c`")
        known = {"sampler", "steps", "sampler_options", "log_partition", "partition_options", "validate_args"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"RBM.forward: unknown options {unknown}; expected some of {sorted(known)}")
        method = options.get("log_partition", self.log_partition)
        if method not in PARTITION_METHODS:
            raise ValueError(f"RBM: `log_partition` must be one of {PARTITION_METHODS}, got {method!r}")
        energy = self.energy()
        log_z = None
        if method is not None:
            log_z = energy.log_partition(method, None, **options.get("partition_options", self.partition_options))
        support = constraints.real if self.visible_kind == "gaussian" else constraints.boolean
        return EnergyBased(energy, (self.visible,), support, log_z=log_z,
                           sampler=options.get("sampler", self.sampler), steps=options.get("steps", self.steps),
                           sampler_options=options.get("sampler_options", self.sampler_options),
                           dtype=self.weight.dtype, device=self.weight.device,
                           validate_args=options.get("validate_args"))

    def extra_repr(self) -> str:
        return (f"visible={self.visible}, hidden={self.hidden}, visible_kind={self.visible_kind!r}, "
                f"centering={self.centering}, log_partition={self.log_partition!r}")
