r"""NeuTra: run NUTS in the base space of a trained flow guide, where the posterior is nearly a standard normal."""

from __future__ import annotations

from collections.abc import Callable

import torch
from pyro import poutine
from pyro.infer.autoguide import AutoContinuous
from pyro.infer.reparam import NeuTraReparam
from torch import Tensor

__all__ = ["NeuTraModel"]


class NeuTraModel:
    r"""A model reparameterized by a trained :class:`~pyro.infer.autoguide.AutoContinuous` guide, for MCMC.

    With the guide's posterior :math:`\theta = T(\epsilon)`, :math:`\epsilon \sim p_0`,
    NUTS samples :math:`\epsilon` from
    :math:`p(\epsilon \mid y) \propto p(T(\epsilon), y) \, |\det J_T(\epsilon)|`; when
    the guide is good this is close to :math:`p_0` (Hoffman et al., 2019), so one
    step size suits the whole posterior. The guide's parameters are frozen
    (``requires_grad_(False)``): NUTS differentiates only with respect to :math:`\epsilon`.
    Pyro's :class:`~pyro.infer.reparam.NeuTraReparam` does the work; this wraps it so
    that one call gives the model for ``NUTS`` and :meth:`transform_sample` gives the
    model's sites back.

    An :class:`~gendist.bayes.AutoFlow` guide evaluates :math:`T` (an IAF by default)
    in one network pass per layer, which NUTS does at every leapfrog step.

    Arguments:
        guide: a trained AutoContinuous guide (``AutoFlow``, or Pyro's).
        model: the model; by default the guide's own.

    Example:
        >>> import pyro.distributions as dist
        >>> from pyro.infer import MCMC, NUTS
        >>> from gendist.bayes import AutoFlow
        >>> def funnel():
        ...     v = pyro.sample("v", dist.Normal(0.0, 3.0))
        ...     pyro.sample("x", dist.Normal(0.0, torch.exp(v / 2)))
        >>> guide = AutoFlow(funnel)
        >>> losses = guide.fit(steps=20)
        >>> model = guide.neutra()
        >>> mcmc = MCMC(NUTS(model), num_samples=5, warmup_steps=5, disable_progbar=True)
        >>> mcmc.run()
        >>> sorted(model.transform_sample(mcmc.get_samples()))
        ['v', 'x']
    """

    def __init__(self, guide: AutoContinuous, model: Callable | None = None) -> None:
        if not isinstance(guide, AutoContinuous):
            raise TypeError(f"guide must be an AutoContinuous guide (e.g. AutoFlow), got {type(guide).__name__}")
        if guide.prototype_trace is None:
            raise ValueError("guide has not been set up: train it (guide.fit(...) or SVI) before NeuTra")
        self.guide = guide.requires_grad_(False)
        self.reparam = NeuTraReparam(self.guide)
        model = model if model is not None else getattr(guide, "_original_model", guide.model)
        self.model = poutine.reparam(model, config=lambda site: self.reparam._reparam_config(site))
        self.latent = f"{next(iter(self.guide.prototype_trace.iter_stochastic_nodes()))[0]}_shared_latent"

    def __call__(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    @torch.no_grad()
    def transform_sample(self, samples: dict[str, Tensor] | Tensor) -> dict[str, Tensor]:
        r"""The model's latent sites (constrained) from MCMC draws: ``mcmc.get_samples()`` or the latent tensor."""
        if isinstance(samples, dict):
            if self.latent not in samples:
                raise KeyError(f"samples has no site {self.latent!r} (the NeuTra latent); got {sorted(samples)}")
            samples = samples[self.latent]
        if self.reparam.transform is None:  # the model has not run yet: build the transform as NUTS would
            self.reparam.transform = self.guide.get_transform()
        return self.reparam.transform_sample(samples)
