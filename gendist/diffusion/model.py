r"""The diffusion model as a module: a denoiser network under an SDE, its training loss, and its distribution."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
from torch import Tensor

from gendist._checks import check_context, check_integer, check_shape, check_value
from gendist._recipes import Recorded
from gendist.distributions.diffusion import Diffusion
from gendist.distributions.lazy import LazyDistribution
from gendist.inference.ema import EMA
from gendist.inference.score_matching import TimeSampler, dsm_loss
from gendist.nn.denoiser import Denoiser
from gendist.nn.score import ScoreMLP
from gendist.sde import SDE, make_sde

__all__ = ["DiffusionModel"]


def _sde(name: str, **options: float | str | None) -> SDE:
    keep = {
        "vp": ("beta_min", "beta_max", "schedule", "T", "t_min"),
        "subvp": ("beta_min", "beta_max", "schedule", "T", "t_min"),
        "ve": ("sigma_min", "sigma_max", "T", "t_min"),
        "ddpm": ("schedule", "steps", "t_min"),
    }
    if name not in keep:
        raise ValueError(f"DiffusionModel: `sde` must be one of {sorted(keep)}, got {name!r}")
    chosen = {k: v for k, v in options.items() if k in keep[name] and v is not None}
    return make_sde(name, **chosen)


class DiffusionModel(Recorded, LazyDistribution):
    r"""A diffusion model of data of any ``shape``: ``model(c)`` is its
    :class:`~gendist.distributions.Diffusion` (sample with a chosen sampler,
    ``log_prob`` by the probability-flow ODE), ``loss(x, c)`` its denoising score-matching objective.

    Arguments:
        shape: the event shape of :math:`x`.
        sde: the process, ``"vp"``, ``"subvp"``, ``"ve"`` or ``"ddpm"``, with its options
            ``schedule`` (``"linear"``/``"cosine"``), ``beta_min``, ``beta_max`` (VP, sub-VP),
            ``sigma_min``, ``sigma_max`` (VE), ``ddpm_steps`` (DDPM), ``T`` and ``t_min``.
        parametrization: what the network predicts: ``"eps"``, ``"x0"``, ``"v"``, ``"edm"`` (Karras
            preconditioning), ``"score"`` or ``"gaussian"`` (EDM around the exact denoiser of a Gaussian fitted
            by :meth:`fit_gaussian`; see :class:`~gendist.nn.denoiser.Denoiser`).
        sigma_data: the data's standard deviation assumed by the preconditioning.
        hidden, embedding, activation, features, feature_scale, dropout: the default network, a
            :class:`~gendist.nn.score.ScoreMLP` (``features``: random Fourier features of its input;
            ``dropout``: against overfitting small data).
        net: a network ``net(u, noise, c)`` to use instead (the model then has no JSON config).
        context: the context size (0 for none).
        weighting: the loss weighting over time: ``"simple"`` (:math:`\epsilon`-MSE), ``"likelihood"``
            (:math:`g^2`: the continuous-time ELBO), ``"min_snr"`` or ``"edm"``.
        importance: draw training times in proportion to the weighting (lower variance, same objective).
        ema: the decay of the exponential moving average of the network's weights that the model uses
            in eval mode (None: no average). ``fit`` updates it after every step; a hand-written loop
            calls :meth:`after_step`.
        sampler, steps, spacing: how the distribution samples (see :data:`gendist.samplers.SAMPLERS`).
        divergence, exact_dim, probes, probe, rtol, atol, method, ode_steps: how its ``log_prob`` integrates
            (see :class:`~gendist.distributions.Diffusion`).

    Example:
        >>> model = DiffusionModel(2, hidden=(16,), sampler="dpmpp_2m", steps=5)
        >>> x = model().sample((3,))
        >>> x.shape, model.loss(x).shape
        (torch.Size([3, 2]), torch.Size([]))
    """

    _aliases = ("Diffusion",)  # its name until 0.1: configs saved under it still load

    def __init__(
        self,
        shape: int | Sequence[int],
        sde: str = "vp",
        schedule: str = "linear",
        beta_min: float = 0.1,
        beta_max: float = 20.0,
        sigma_min: float = 0.01,
        sigma_max: float = 50.0,
        ddpm_steps: int = 1000,
        T: float | None = None,
        t_min: float | None = None,
        parametrization: str = "eps",
        sigma_data: float = 1.0,
        hidden: Sequence[int] = (256, 256, 256),
        embedding: int = 32,
        activation: type[nn.Module] = nn.SiLU,
        features: int = 0,
        feature_scale: float = 1.0,
        dropout: float = 0.0,
        net: nn.Module | None = None,
        context: int = 0,
        weighting: str = "simple",
        importance: bool = False,
        ema: float | None = 0.999,
        sampler: str = "rk45",
        steps: int = 50,
        spacing: str = "uniform",
        divergence: str = "auto",
        exact_dim: int = 64,
        probes: int = 1,
        probe: str = "rademacher",
        rtol: float = 1e-5,
        atol: float = 1e-5,
        method: str = "dopri5",
        ode_steps: int | None = None,
    ) -> None:
        super().__init__()
        self.shape = check_shape(shape, "DiffusionModel: `shape`")
        check_integer("DiffusionModel: `context`", context, low=0)
        self.context = context
        self.sde = _sde(sde, schedule=schedule, beta_min=beta_min, beta_max=beta_max, sigma_min=sigma_min,
                        sigma_max=sigma_max, steps=ddpm_steps, T=T, t_min=t_min)
        if net is None:
            net = ScoreMLP(self.shape, hidden, context, embedding, activation, features, feature_scale, dropout)
        self.denoiser = Denoiser(net, self.sde, parametrization, sigma_data, event_dim=len(self.shape),
                                 size=self.shape.numel())
        self.ema = EMA(self.denoiser, ema) if ema is not None else None
        self.times = TimeSampler(self.sde, weighting, importance=importance, sigma_data=sigma_data)
        self.options = {
            "sampler": sampler, "steps": steps, "spacing": spacing, "divergence": divergence,
            "exact_dim": exact_dim, "probes": probes, "probe": probe, "rtol": rtol, "atol": atol,
            "method": method, "ode_steps": ode_steps,
        }
        Diffusion(self.denoiser, self.sde, self.shape, **self.options)  # checks the options now

    def active(self) -> Denoiser:
        r"""The denoiser in use: the weights' moving average in eval mode (once updated), else the weights."""
        if self.ema is not None and not self.training and int(self.ema.updates) > 0:
            return self.ema.averaged
        return self.denoiser

    @torch.no_grad()
    def fit_gaussian(self, x: Tensor) -> None:
        r"""Fit the Gaussian of the ``"gaussian"`` parametrization to data ``x`` (its mean and covariance), in the
        weights and in their moving average; call it once, before training."""
        check_value("x", x, self.shape, "DiffusionModel.fit_gaussian", next(self.parameters()).dtype)
        flat = x.reshape(-1, self.shape.numel())
        if len(flat) < 2:
            raise ValueError(f"DiffusionModel.fit_gaussian: `x` needs at least 2 samples, got {len(flat)}")
        d = flat.shape[-1]
        mean, cov = flat.mean(0), torch.cov(flat.T.to(torch.float64)).reshape(d, d)
        self.denoiser.set_gaussian(mean, cov)
        if self.ema is not None:
            self.ema.averaged.set_gaussian(mean, cov)

    def after_step(self) -> None:
        r"""Update the moving average of the weights; :func:`~gendist.inference.fit` calls it after every step."""
        if self.ema is not None:
            self.ema.update(self.denoiser)

    def forward(self, c: Tensor | None = None, **options) -> Diffusion:
        r"""The distribution :math:`p(x \mid c)`; keyword ``options`` override the sampler and likelihood settings."""
        check_context(c, self.context, "DiffusionModel", next(self.parameters()).dtype)
        p = next(self.parameters())
        return Diffusion(self.active(), self.sde, self.shape, c, **{**self.options, **options},
                                     dtype=p.dtype, device=p.device)

    def loss(self, x: Tensor, c: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        r"""The mean weighted denoising score-matching loss of a batch (see :func:`~gendist.inference.dsm_loss`)."""
        check_context(c, self.context, "DiffusionModel.loss", next(self.parameters()).dtype)
        dtype = next(self.parameters()).dtype
        check_value("x", x, self.shape, "DiffusionModel.loss", dtype)
        return dsm_loss(self.active(), self.sde, x, c, event_dim=len(self.shape), sampler=self.times,
                        generator=generator).mean()
