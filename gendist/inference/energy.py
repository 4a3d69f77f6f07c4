r"""Training objectives of energy-based models: contrastive divergence, score matching, noise-contrastive estimation.

Every objective is a loss ``loss(model, batch) -> Tensor`` for :func:`~gendist.inference.fit` (the mean over
the batch's examples). ``model(c)`` is the distribution of an energy (duck-typed: an
:class:`~gendist.distributions.EnergyBased`, :math:`p(x \mid c) = e^{-E(x, c)} / Z(c)`) with ``energy_of(x)``,
``score(x, create_graph=True)`` and ``mcmc(...)``; this module works on what it is handed and imports no model.

- :class:`ContrastiveDivergence`: the maximum-likelihood gradient
  :math:`\nabla_\theta E_{\text{data}}[E_\theta(x)] - \nabla_\theta E_{p_\theta}[E_\theta(x)]` with the model's
  expectation taken over MCMC negatives: chains of ``k`` steps started at the batch (CD-k; Hinton, 2002),
  persistent chains (PCD; Tieleman, 2008) or states drawn from a replay buffer (Du & Mordatch, 2019; JEM,
  Grathwohl et al., 2020); an L2 penalty on the energies keeps them bounded;
- :class:`DenoisingScoreMatching` (Vincent, 2011) and :class:`SlicedScoreMatching` (Song et al., 2019): the
  model's score :math:`-\nabla_x E` matched without :math:`Z` or MCMC;
- :class:`NoiseContrastiveEstimation` (Gutmann & Hyvärinen, 2010): :math:`\log Z` learned as a parameter by
  telling data from noise; with a noise that is trained too (a flow: flow contrastive estimation, Gao et al.,
  2020) :func:`flow_contrastive_objectives` gives the two objectives of the game.

References:
    | Training products of experts by minimizing contrastive divergence (Hinton, 2002)
    | Training restricted Boltzmann machines using approximations to the likelihood gradient (Tieleman, 2008)
    | Implicit generation and modeling with energy-based models (Du & Mordatch, 2019)
    | https://arxiv.org/abs/1903.08689
    | Your classifier is secretly an energy based model and you should treat it like one (Grathwohl et al., 2020)
    | https://arxiv.org/abs/1912.03263
    | A connection between score matching and denoising autoencoders (Vincent, 2011)
    | Sliced score matching: a scalable approach to density and score estimation (Song et al., 2019)
    | https://arxiv.org/abs/1905.07088
    | Noise-contrastive estimation: a new estimation principle for unnormalized statistical models
    | (Gutmann & Hyvärinen, 2010)
    | Flow contrastive estimation of energy-based models (Gao et al., 2020) https://arxiv.org/abs/1912.00589
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Distribution

from gendist._checks import check_integer, check_number
from gendist.inference.objective import Batch, Objective

__all__ = [
    "ContrastiveDivergence",
    "DenoisingScoreMatching",
    "NoiseContrastiveEstimation",
    "SlicedScoreMatching",
    "flow_contrastive_objectives",
]


def _split(batch: Batch) -> tuple[Tensor, Tensor | None]:
    r"""``(x, c)`` of a batch ``(x,)`` or ``(x, c)``."""
    return batch[0], (batch[1] if len(batch) > 1 else None)


def _sum_event(t: Tensor, batch_dims: int) -> Tensor:
    r"""``t`` summed over every dimension after the first ``batch_dims``."""
    return t.flatten(batch_dims).sum(-1) if t.dim() > batch_dims else t


def _copy(g: torch.Generator) -> torch.Generator:
    r"""A generator in the state of ``g``, drawn from without moving ``g``."""
    out = torch.Generator(device=g.device)
    out.set_state(g.get_state())
    return out


# --------------------------------------------------------------------------- contrastive divergence
class ContrastiveDivergence:
    r"""Maximum likelihood with MCMC negatives: CD-k, persistent CD, or chains restarted from a replay buffer.

    The gradient of the negative log-likelihood of :math:`p_\theta = e^{-E_\theta} / Z_\theta` is
    :math:`E_{\text{data}}[\nabla_\theta E_\theta(x)] - E_{p_\theta}[\nabla_\theta E_\theta(x)]`; the second
    expectation is taken over negatives :math:`x^-` that ``k`` MCMC steps bring towards :math:`p_\theta`, held
    fixed (detached). The loss is

    .. math:: \mathcal{L} = \frac{1}{N} \sum_n E_\theta(x_n) - \frac{1}{M} \sum_m E_\theta(x^-_m)
        + \lambda \Big(\frac{1}{N} \sum_n E_\theta(x_n)^2 + \frac{1}{M} \sum_m E_\theta(x^-_m)^2\Big),

    whose :math:`\lambda` term (``l2``) keeps the energies near zero: without it nothing stops the energy of
    data and negatives drifting together to :math:`\pm\infty` (Du & Mordatch, 2019). The chains start:

    - at the batch (CD-k, the default);
    - where the last step left them (``persistent=True``: ``chains`` persistent chains, started at the first
      batch's examples, or with ``init="model"`` at the model's own starting draws);
    - at states drawn from a replay ``buffer`` (a :class:`~gendist.samplers.ReplayBuffer`: each chain restarts
      from a past negative, or with probability ``reinit`` from a fresh ``init`` draw), to which the negatives
      are written back: maximum likelihood as IGEBM and JEM train (Du & Mordatch, 2019; Grathwohl et al., 2020),
      with ``k`` of 20 to 100 Langevin steps (``sampler="sgld"``, e.g. ``step_size=1.0, noise=0.01``).

    The sampler is ``"gibbs"`` for energies that offer exact Gibbs updates (an RBM's), else the
    distribution's own (``model(c).sampler`` with its options); ``sampler`` and ``sampler_options``
    (``step_size``, ...) choose another. Its randomness comes from the loss's own :class:`torch.Generator`
    (seeded by ``seed``, else by a draw from torch's stream at the first call); the buffer draws its
    starting states with its own. The generator, the persistent chains and the buffer's state are in
    :meth:`state_dict`, which ``fit`` checkpoints with the run: a resumed run continues exactly. In eval mode
    (``fit``'s validation) the loss draws from copies of the generators and moves neither chains nor buffer.

    Arguments:
        k: MCMC steps per training step (Gibbs sweeps, Langevin steps).
        persistent: keep persistent chains across steps (PCD) instead of restarting at the batch.
        chains: the number of persistent chains (default: the first batch's size).
        buffer: a replay buffer of starting states: a :class:`gendist.samplers.ReplayBuffer` (or anything with
            its ``sample(n) -> (x, index)``, ``update(index, x)``, ``generator``, ``state_dict`` and
            ``load_state_dict``).
        sampler: the MCMC sampler's name (default: ``"gibbs"`` where the energy has it, else the model's own).
        l2: :math:`\lambda`, the weight of the energies' L2 penalty (``>= 0``).
        init: where persistent chains start: ``"data"`` (the first batch) or ``"model"`` (the model's
            starting draws, e.g. fair coins or :math:`\mathcal{N}(0, I)`).
        seed: the seed of the loss's generator.
        centering: before each training step, call ``model.update_offsets(x)`` with the batch (a centered RBM's
            offsets follow the data's and the hidden units' means, Melchior et al., 2016); the model must have it.
        sampler_options: more arguments of the sampler (``step_size``, ...).

    Example:
        >>> from gendist.distributions import EnergyBased
        >>> class Quadratic(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.m = torch.nn.Parameter(torch.zeros(2))
        ...     def forward(self, c=None):
        ...         return EnergyBased(lambda x, c: 0.5 * (x - self.m).pow(2).sum(-1), (2,))
        >>> loss = ContrastiveDivergence(k=5, persistent=True, chains=16, step_size=0.1, l2=0.1, seed=0)
        >>> value = loss(Quadratic(), (torch.randn(8, 2),))
        >>> value.shape, loss.chains.shape
        (torch.Size([]), torch.Size([16, 2]))
        >>> from gendist.samplers import ReplayBuffer
        >>> buffer = ReplayBuffer(100, lambda n, g: torch.rand(n, 2, generator=g) * 4 - 2, seed=0)
        >>> jem = ContrastiveDivergence(k=20, buffer=buffer, sampler="sgld", step_size=0.05, l2=0.1, seed=0)
        >>> jem(Quadratic(), (torch.randn(8, 2),)).shape
        torch.Size([])
    """

    def __init__(
        self,
        k: int = 1,
        *,
        persistent: bool = False,
        chains: int | None = None,
        buffer: Any | None = None,
        sampler: str | None = None,
        l2: float = 0.0,
        init: str = "data",
        seed: int | None = None,
        centering: bool = False,
        **sampler_options: Any,
    ) -> None:
        where = "ContrastiveDivergence"
        self.k = check_integer(f"{where}: `k` (MCMC steps per training step)", k, low=1)
        if chains is not None:
            chains = check_integer(f"{where}: `chains` (the number of persistent chains)", chains, low=1)
            if not persistent:
                raise ValueError(f"{where}: `chains` is the number of persistent chains; set persistent=True "
                                 "(CD-k runs one chain per example of the batch)")
        if persistent and buffer is not None:
            raise ValueError(f"{where}: give `persistent=True` or a replay `buffer`, not both")
        if buffer is not None and not (callable(getattr(buffer, "sample", None))
                                       and callable(getattr(buffer, "update", None))
                                       and isinstance(getattr(buffer, "generator", None), torch.Generator)):
            raise TypeError(f"{where}: `buffer` must be a replay buffer (gendist.samplers.ReplayBuffer: sample(n) "
                            f"-> (x, index), update(index, x), generator), got {type(buffer).__name__}")
        if sampler is not None and not isinstance(sampler, str):
            raise TypeError(f"{where}: `sampler` must be a sampler's name (a string) or None, got {sampler!r}")
        if init not in ("data", "model"):
            raise ValueError(f"{where}: `init` must be 'data' or 'model', got {init!r}")
        if seed is not None:
            seed = check_integer(f"{where}: `seed`", seed, low=0)
        for key in ("step_size", "noise"):
            value = sampler_options.get(key)
            if isinstance(value, Tensor):
                if not bool(torch.isfinite(value).all()) or not bool((value > 0).all()):
                    raise ValueError(f"{where}: `{key}` must be positive and finite, got {value!r}")
            elif value is not None:
                check_number(f"{where}: `{key}`", value)
        self.persistent, self.n_chains, self.buffer = bool(persistent), chains, buffer
        self.sampler, self.l2 = sampler, check_number(f"{where}: `l2`", l2, zero=True)
        self.init, self.seed, self.sampler_options = init, seed, dict(sampler_options)
        self.centering = bool(centering)
        self._generator: torch.Generator | None = None
        self._pending: tuple[Tensor, str] | None = None  # a loaded generator state, applied at the first call
        self._chains: Tensor | None = None

    @property
    def chains(self) -> Tensor | None:
        r"""The persistent chains' current states (None before the first step, or without ``persistent``)."""
        return self._chains

    def generator(self, device: torch.device | str = "cpu") -> torch.Generator:
        r"""The loss's generator (made on ``device`` at the first call, from ``seed`` or a loaded state)."""
        if self._generator is None:
            g = torch.Generator(device=device)
            if self._pending is not None:
                state, kind = self._pending
                if kind != g.device.type:
                    raise ValueError(f"ContrastiveDivergence: the loaded generator state is of a {kind} generator, "
                                     f"the data is on {g.device.type}: resume on the device that saved it")
                g.set_state(state.cpu())
                self._pending = None
            else:
                g.manual_seed(self.seed if self.seed is not None else int(torch.randint(0, 2**62, ())))
            self._generator = g
        return self._generator

    def _name(self, d: Any) -> str | None:
        r"""The sampler to run (None: the distribution's own, with its options merged with ours)."""
        name = self.sampler
        if name is None and callable(getattr(getattr(d, "energy", None), "gibbs", None)):
            name = "gibbs"
        return None if name == getattr(d, "sampler", None) else name

    def _start(self, x: Tensor, c: Tensor | None, training: bool) -> tuple[Tensor | None, Tensor | None]:
        r"""The chains' starting states (None: the model's own starting draws) and their buffer slots."""
        if self.buffer is not None:
            saved = None if training else self.buffer.generator.get_state()
            start, index = self.buffer.sample(len(x))
            if saved is not None:  # validation: the buffer's stream stays where it was
                self.buffer.generator.set_state(saved)
            return start.to(device=x.device, dtype=x.dtype), index
        return self._chain_start(x, c), None

    def _chain_start(self, x: Tensor, c: Tensor | None) -> Tensor | None:
        if not self.persistent:
            return x.detach()
        if c is not None:
            raise ValueError("ContrastiveDivergence: persistent chains need an unconditional model (batches "
                             "(x,)): a chain has no context of its own; use CD-k (persistent=False) or a buffer")
        if self._chains is not None:
            return self._chains.to(device=x.device, dtype=x.dtype)
        if self.init == "model":
            return None
        n = self.n_chains or len(x)
        return x.detach()[torch.arange(n, device=x.device) % len(x)].clone()

    def negatives(self, model: nn.Module, batch: Batch) -> Tensor:
        r"""The negatives of ``batch`` (detached); in training mode this moves the chains or fills the buffer."""
        x, c = _split(batch)
        d = model(c)
        return self._negatives(model, d, x, c)

    def _negatives(self, model: nn.Module, d: Any, x: Tensor, c: Tensor | None) -> Tensor:
        training = getattr(model, "training", True)
        g = self.generator(x.device)
        if not training:  # validation draws from a copy: the run's stream, chains and buffer stay as they were
            g = _copy(g)
        start, index = self._start(x, c, training)
        shape = (self.n_chains or len(x),) if start is None else ()
        with torch.no_grad():
            out = d.mcmc(shape, x=start, sampler=self._name(d), steps=self.k, generator=g, **self.sampler_options)
        neg = out.x.detach()
        if training:
            if self.persistent:
                self._chains = neg.clone()
            elif self.buffer is not None:
                self.buffer.update(index, neg)
        return neg

    def __call__(self, model: nn.Module, batch: Batch) -> Tensor:
        x, c = _split(batch)
        if self.centering and getattr(model, "training", True):
            update = getattr(model, "update_offsets", None)
            if not callable(update):
                raise TypeError(f"ContrastiveDivergence(centering=True): the model ({type(model).__name__}) has no "
                                "update_offsets(x); centering is for models with offsets (RBM(centering=True))")
            update(x.detach())
        d = model(c)
        neg = self._negatives(model, d, x, c)
        e_data, e_neg = d.energy_of(x), d.energy_of(neg, check=False)  # the negatives are the sampler's own
        loss = e_data.mean() - e_neg.mean()
        if self.l2:
            loss = loss + self.l2 * (e_data.pow(2).mean() + e_neg.pow(2).mean())
        return loss

    def state_dict(self) -> dict[str, Any]:
        r"""The generator's state, the persistent chains and the buffer's state (what exact resume needs)."""
        if self._generator is not None:
            gen, kind = self._generator.get_state(), self._generator.device.type
        elif self._pending is not None:
            gen, kind = self._pending
        else:
            gen, kind = None, None
        out: dict[str, Any] = {"generator": gen, "device": kind, "chains": self._chains}
        if callable(getattr(self.buffer, "state_dict", None)):
            out["buffer"] = self.buffer.state_dict()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        r"""Restore what :meth:`state_dict` saved."""
        missing = sorted({"generator", "device", "chains"} - set(state))
        if missing:
            raise ValueError(f"ContrastiveDivergence.load_state_dict: the state has no {missing}")
        self._generator = None
        self._pending = (state["generator"], state["device"]) if state["generator"] is not None else None
        self._chains = state["chains"].clone() if state["chains"] is not None else None
        if "buffer" in state and self.buffer is not None:
            self.buffer.load_state_dict(state["buffer"])

    def __repr__(self) -> str:
        how = "buffer" if self.buffer is not None else "persistent" if self.persistent else "batch"
        return (f"ContrastiveDivergence(k={self.k}, start={how!r}, sampler={self.sampler!r}, l2={self.l2}, "
                f"centering={self.centering}, options={self.sampler_options})")


# --------------------------------------------------------------------------- score matching
class DenoisingScoreMatching:
    r"""Denoising score matching of an energy at one noise level :math:`\sigma` (Vincent, 2011).

    With :math:`\tilde x = x + \sigma \epsilon`, :math:`\epsilon \sim \mathcal{N}(0, I)`, the model's score
    :math:`s_\theta = -\nabla_x E_\theta` is matched to the score of the noising kernel,
    :math:`-(\tilde x - x) / \sigma^2 = -\epsilon / \sigma`, weighted by :math:`\sigma^2`:

    .. math:: \mathcal{L} = \frac{\sigma^2}{2} E\,\big\lVert s_\theta(\tilde x) + \tfrac{\tilde x - x}{\sigma^2}
        \big\rVert^2 = \frac12 E\,\lVert \sigma s_\theta(\tilde x) + \epsilon \rVert^2 .

    Its minimizer is the score of the noisy data :math:`p_{\text{data}} * \mathcal{N}(0, \sigma^2 I)`: a small
    :math:`\sigma` fits the data closely, a large one smooths it. The noise comes from torch's stream (which
    ``fit`` seeds and checkpoints). Not for binary data (no score).

    Example:
        >>> from gendist.distributions import EnergyBased
        >>> model = lambda c=None: EnergyBased(lambda x, c: 0.5 * x.pow(2).sum(-1), (2,))
        >>> DenoisingScoreMatching(0.1)(model, (torch.randn(8, 2),)).shape
        torch.Size([])
    """

    def __init__(self, sigma: float) -> None:
        self.sigma = check_number("DenoisingScoreMatching: `sigma` (the noise level)", sigma)

    def __call__(self, model: Callable[..., Any], batch: Batch) -> Tensor:
        x, c = _split(batch)
        eps = torch.randn_like(x)
        s = model(c).score(x.detach() + self.sigma * eps, create_graph=True)
        return 0.5 * _sum_event((self.sigma * s + eps).pow(2), 1).mean()

    def __repr__(self) -> str:
        return f"DenoisingScoreMatching(sigma={self.sigma})"


class SlicedScoreMatching:
    r"""Sliced score matching (Song et al., 2019): Hyvärinen's score matching along random directions.

    For directions :math:`v` with :math:`E[v v^\top] = I` (``"gaussian"`` or ``"rademacher"``),

    .. math:: \mathcal{L} = E_{x, v}\Big[v^\top \nabla_x s_\theta(x)\, v + \tfrac12 \big(v^\top s_\theta(x)\big)^2
        \Big], \qquad \text{or, with variance reduction (SSM-VR),} \quad
        E_{x, v}\Big[v^\top \nabla_x s_\theta(x)\, v + \tfrac12 \lVert s_\theta(x) \rVert^2\Big],

    equal (up to a constant) to the Fisher divergence :math:`\tfrac12 E\lVert s_\theta - \nabla \log p_{\text{data}}
    \rVert^2` in expectation, with one Hessian-vector product per direction instead of the Hessian's trace. Its
    minimizer is the data's own score: no noise, no bias (but the data must have a smooth density). The
    directions come from torch's stream.

    Arguments:
        projections: directions per example.
        variance_reduction: the SSM-VR estimator (the second term in closed form).
        directions: ``"gaussian"`` or ``"rademacher"`` (random signs: a lower variance).

    Example:
        >>> from gendist.distributions import EnergyBased
        >>> model = lambda c=None: EnergyBased(lambda x, c: 0.5 * x.pow(2).sum(-1), (2,))
        >>> SlicedScoreMatching(projections=2)(model, (torch.randn(8, 2),)).shape
        torch.Size([])
    """

    def __init__(self, projections: int = 1, variance_reduction: bool = True, directions: str = "gaussian") -> None:
        self.projections = check_integer("SlicedScoreMatching: `projections`", projections, low=1)
        if directions not in ("gaussian", "rademacher"):
            raise ValueError(f"SlicedScoreMatching: `directions` must be 'gaussian' or 'rademacher', got "
                             f"{directions!r}")
        self.variance_reduction, self.directions = bool(variance_reduction), directions

    def __call__(self, model: Callable[..., Any], batch: Batch) -> Tensor:
        x, c = _split(batch)
        d = model(c)
        shape = (self.projections, *x.shape)
        if self.directions == "gaussian":
            v = torch.randn(shape, dtype=x.dtype, device=x.device)
        else:
            v = torch.randint(0, 2, shape, device=x.device).to(x.dtype) * 2 - 1
        with torch.enable_grad():  # a second derivative in x, also under fit's no_grad validation
            xs = x.detach().expand(shape).clone().requires_grad_(True)
            s = d.score(xs, create_graph=True)
            (hv,) = torch.autograd.grad((s * v).sum(), xs, create_graph=True)
            trace = _sum_event(hv * v, 2)
            second = _sum_event(s.pow(2), 2) if self.variance_reduction else _sum_event(s * v, 2).pow(2)
            return (trace + 0.5 * second).mean()

    def __repr__(self) -> str:
        return (f"SlicedScoreMatching(projections={self.projections}, variance_reduction={self.variance_reduction}, "
                f"directions={self.directions!r})")


# --------------------------------------------------------------------------- noise-contrastive estimation
ROLES = ("energy", "noise")


class NoiseContrastiveEstimation:
    r"""Noise-contrastive estimation (Gutmann & Hyvärinen, 2010): :math:`\log Z` learned as a parameter.

    The model's log-density is :math:`\log p_\theta(x) = -E_\theta(x) - \log \hat Z`, where :math:`\log \hat Z`
    is the model's ``log_normalizer`` (a learnable scalar, or a function of the context). A logistic
    classifier with logit :math:`G(u) = \log p_\theta(u) - \log q(u) - \log \nu` tells the data from
    :math:`\nu N` draws :math:`y` of a noise :math:`q`; the value function

    .. math:: J = \frac1N \sum_n \log \sigma\big(G(x_n)\big) + \nu \frac{1}{\nu N} \sum_m \log \sigma\big(-G(y_m)\big)

    is maximized by the energy (the loss is :math:`-J`). Its maximizer, when the model family holds the data
    distribution, is that distribution with :math:`\log \hat Z` its exact normalizer: NCE self-normalizes. A
    noise close to the data (a flow fitted to it) makes the task hard and the estimate efficient; flow
    contrastive estimation (Gao et al., 2020) trains the noise to minimize :math:`J` at the same time
    (``role="noise"``: the loss is :math:`+J`, through reparameterized draws; see
    :func:`flow_contrastive_objectives`).

    Arguments:
        noise: the noise :math:`q`: a ``torch.distributions.Distribution`` of the data's event shape (batch
            shape ``()`` or the batch's ``(N,)``), or a module (a flow) whose call ``noise(c)`` (``noise()``
            without a context) gives one.
        ratio: :math:`\nu`, noise draws per data example.
        role: ``"energy"`` (minimize :math:`-J` in the energy's parameters; the noise is held fixed) or
            ``"noise"`` (minimize :math:`+J` in the noise's parameters; needs ``rsample``).

    Example:
        >>> from gendist.distributions import EnergyBased
        >>> class Model(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.log_normalizer = torch.nn.Parameter(torch.zeros(()))
        ...     def forward(self, c=None):
        ...         return EnergyBased(lambda x, c: 0.5 * x.pow(2).sum(-1), (1,))
        >>> noise = torch.distributions.Independent(torch.distributions.Normal(torch.zeros(1), 2.0), 1)
        >>> NoiseContrastiveEstimation(noise, ratio=2)(Model(), (torch.randn(8, 1),)).shape
        torch.Size([])
    """

    def __init__(self, noise: Distribution | Callable[..., Distribution], ratio: int = 1, *,
                 role: str = "energy") -> None:
        if not isinstance(noise, Distribution) and not callable(noise):
            raise TypeError("NoiseContrastiveEstimation: `noise` must be a torch.distributions.Distribution or a "
                            f"module whose call gives one, got {type(noise).__name__}")
        if role not in ROLES:
            raise ValueError(f"NoiseContrastiveEstimation: `role` must be one of {ROLES}, got {role!r}")
        self.noise, self.role = noise, role
        self.ratio = check_integer("NoiseContrastiveEstimation: `ratio` (noise draws per example)", ratio, low=1)

    def _noise(self, c: Tensor | None) -> Distribution:
        q = self.noise
        if not isinstance(q, Distribution):
            q = q(c) if c is not None else q()
            if not isinstance(q, Distribution):
                raise TypeError("NoiseContrastiveEstimation: calling `noise` must give a "
                                f"torch.distributions.Distribution, got {type(q).__name__}")
        return q

    @staticmethod
    def _log_normalizer(model: Any, c: Tensor | None) -> Tensor:
        lz = getattr(model, "log_normalizer", None)
        if lz is None:
            raise AttributeError(
                f"NoiseContrastiveEstimation: the model ({type(model).__name__}) has no `log_normalizer`: NCE "
                "learns log Z as a parameter of the model, e.g. `self.log_normalizer = nn.Parameter(torch.zeros(()))`"
                " (or a method log_normalizer(c) for a conditional model)")
        return lz(c) if callable(lz) and not isinstance(lz, Tensor) else lz

    def __call__(self, model: nn.Module, batch: Batch) -> Tensor:
        x, c = _split(batch)
        n, event = len(x), x.shape[1:]
        q = self._noise(c)
        if tuple(q.event_shape) != tuple(event):
            raise ValueError(f"NoiseContrastiveEstimation: the noise's event shape {tuple(q.event_shape)} is not "
                             f"the data's {tuple(event)} (wrap a factorized noise in "
                             "torch.distributions.Independent(..., reinterpreted_batch_ndims))")
        if tuple(q.batch_shape) not in ((), (n,)):
            raise ValueError(f"NoiseContrastiveEstimation: the noise's batch shape {tuple(q.batch_shape)} must be () "
                             f"or the batch's ({n},)")
        shape = torch.Size((self.ratio,) if q.batch_shape else (self.ratio, n))
        if self.role == "noise":
            if not q.has_rsample:
                raise ValueError(f"NoiseContrastiveEstimation(role='noise'): the noise ({type(q).__name__}) has "
                                 "no rsample, so its draws cannot carry its gradient; use a reparameterized noise "
                                 "(a flow)")
            y = q.rsample(shape)
            log_q_x, log_q_y = q.log_prob(x), q.log_prob(y)
        else:
            with torch.no_grad():
                y = q.sample(shape)
                log_q_x, log_q_y = q.log_prob(x), q.log_prob(y)
        d = model(c)
        lz = self._log_normalizer(model, c)
        log_nu = math.log(self.ratio)
        g_x = -d.energy_of(x) - lz - log_q_x - log_nu
        g_y = -d.energy_of(y) - lz - log_q_y - log_nu
        loss = F.softplus(-g_x).mean() + self.ratio * F.softplus(g_y).mean()  # -J
        return loss if self.role == "energy" else -loss

    def __repr__(self) -> str:
        return f"NoiseContrastiveEstimation(noise={type(self.noise).__name__}, ratio={self.ratio}, role={self.role!r})"


class _Parameters:
    r"""The parameters of a model inside or outside its submodule ``noise`` (picklable, unlike a closure)."""

    def __init__(self, noise: nn.Module, inside: bool) -> None:
        self.noise, self.inside = noise, inside

    def __call__(self, model: nn.Module) -> Iterator[nn.Parameter]:
        if not any(m is self.noise for m in model.modules()):
            raise ValueError("flow_contrastive_objectives: the noise must be a submodule of the model (e.g. "
                             "`model.noise = flow`): fit trains and checkpoints only the model's parameters")
        if self.inside:
            return self.noise.parameters()
        mine = {id(p) for p in self.noise.parameters()}
        return (p for p in model.parameters() if id(p) not in mine)


def flow_contrastive_objectives(
    noise: nn.Module,
    ratio: int = 1,
    *,
    lr: float | None = None,
    noise_lr: float | None = None,
    every: int = 1,
    noise_every: int = 1,
    clip_grad: float | None = None,
) -> list[Objective]:
    r"""The two objectives of flow contrastive estimation (Gao et al., 2020): a min-max game on NCE's value.

    .. math:: \min_{q} \max_{\theta} J(\theta, q)

    ``"energy"`` minimizes :math:`-J` (NCE) in the model's parameters other than the noise's; ``"noise"``
    minimizes :math:`+J` in the noise's own parameters (through reparameterized draws), so the noise
    (a flow) moves towards the data where the energy tells them apart. The noise must be a submodule of the
    model (``model.noise = flow``), whose ``log_normalizer`` and call ``model(c)`` are the energy's:
    ``fit(model, data, objective=flow_contrastive_objectives(model.noise))``. Neither objective is validated:
    the value against a noise that keeps improving is no score to pick the best weights by (it rises as the
    noise gets closer to the data); score the model otherwise (its log-likelihood with :math:`\log Z` by AIS).

    Arguments:
        noise: the trained noise module (``noise(c)`` gives a distribution with ``rsample``).
        ratio: noise draws per data example.
        lr, noise_lr: the two objectives' learning rates (default: ``fit``'s).
        every, noise_every: each steps on every ``every``-th batch.
        clip_grad: clip both objectives' gradient norms.

    Example:
        >>> names = [o.name for o in flow_contrastive_objectives(torch.nn.Linear(1, 1))]
        >>> names
        ['energy', 'noise']
    """
    if not isinstance(noise, nn.Module):
        raise TypeError(f"flow_contrastive_objectives: `noise` must be a module (trained with the model), got "
                        f"{type(noise).__name__}; for a fixed noise use NoiseContrastiveEstimation alone")
    return [
        Objective("energy", NoiseContrastiveEstimation(noise, ratio), parameters=_Parameters(noise, False), lr=lr,
                  every=every, clip_grad=clip_grad, validate=False),
        Objective("noise", NoiseContrastiveEstimation(noise, ratio, role="noise"), parameters=_Parameters(noise, True),
                  lr=noise_lr, every=noise_every, clip_grad=clip_grad, validate=False),
    ]
