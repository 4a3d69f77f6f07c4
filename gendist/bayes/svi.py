r"""One SVI loop with a decaying learning rate and averaged parameters: the default schedule of gendist's guides."""

from __future__ import annotations

import math
from collections.abc import Callable

import pyro
import torch
from pyro.infer import ELBO, SVI, Trace_ELBO
from pyro.optim import PyroLRScheduler
from torch import Tensor
from torch.optim.lr_scheduler import LambdaLR

from gendist._checks import check_integer, check_number

__all__ = ["svi", "fit_guide"]


def svi(
    model: Callable,
    guide: Callable,
    *args,
    steps: int = 2000,
    lr: float = 1e-2,
    final_lr: float = 1e-5,
    warm: float = 0.3,
    average: float = 0.3,
    particles: int = 8,
    elbo: ELBO | None = None,
    clip_norm: float = 10.0,
    **kwargs,
) -> list[float]:
    r"""Fit ``guide`` to ``model``'s posterior by SVI and return the loss (negative ELBO) of every step.

    The schedule: Adam at ``lr`` for the first ``warm`` share of the steps (to travel
    from the initial guess), then a geometric decay to ``final_lr`` at the last step,
    and the parameters averaged over the last ``average`` share of the steps
    (Polyak–Ruppert averaging, written back at the end). A constant rate leaves the
    guide wandering around the optimum by an amount that grows with the rate and the
    gradient noise; the decay and the average let it settle there. The ELBO is
    ``Trace_ELBO`` with ``particles`` vectorized particles unless ``elbo`` is given.
    Works with any guide, Pyro's own included; the parameters are those of Pyro's
    parameter store.

    Arguments:
        model: the Pyro model.
        guide: the guide (an autoguide or a function).
        args, kwargs: the model's arguments.
        steps: the number of SVI steps.
        lr: the initial learning rate.
        final_lr: the learning rate at the last step.
        warm: the share of steps at the initial rate, in [0, 1).
        average: the share of final steps whose parameters are averaged, in [0, 1] (0: none).
        particles: the number of vectorized ELBO particles (ignored when ``elbo`` is given).
        elbo: an ELBO instance (``Trace_ELBO``, ``TraceMeanField_ELBO``, ``RenyiELBO``, ...).
        clip_norm: the gradient-norm clip of every parameter.

    Example:
        >>> import pyro.distributions as dist
        >>> from pyro.infer.autoguide import AutoNormal
        >>> def model():
        ...     pyro.sample("z", dist.Normal(0.0, 1.0))
        >>> pyro.clear_param_store()
        >>> losses = svi(model, AutoNormal(model), steps=5)
        >>> len(losses)
        5
    """
    steps = check_integer("steps", steps, low=1)
    lr = check_number("lr", lr)
    final_lr = check_number("final_lr", final_lr)
    for name, share in (("warm", warm), ("average", average)):
        if not isinstance(share, (int, float)) or not 0 <= share <= 1 or (name == "warm" and share == 1):
            end = ")" if name == "warm" else "]"
            raise ValueError(f"{name} must be a share of the steps in [0, 1{end}, got {share!r}")
    if elbo is None:
        particles = check_integer("particles", particles, low=1)
        elbo = Trace_ELBO(num_particles=particles, vectorize_particles=particles > 1)
    flat = int(warm * steps)
    decay = math.exp(math.log(final_lr / lr) / max(steps - 1 - flat, 1))
    optim = PyroLRScheduler(
        LambdaLR,
        {"optimizer": torch.optim.Adam, "optim_args": {"lr": lr}, "lr_lambda": lambda t: decay ** max(t - flat, 0)},
        {"clip_norm": clip_norm},
    )
    loop = SVI(model, guide, optim, elbo)
    first = steps - int(average * steps)  # the first averaged step
    mean: dict[str, Tensor] = {}
    losses = []
    for step in range(steps):
        loss = loop.step(*args, **kwargs)
        optim.step()
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"the ELBO became {loss} at step {step}: lower lr (now {lr}) or check the model's log-density"
            )
        losses.append(loss)
        if step >= first:
            k = step - first + 1
            for name, p in pyro.get_param_store().named_parameters():
                m = mean.get(name)
                mean[name] = p.detach().clone() if m is None else m.add_(p.detach() - m, alpha=1 / k)
    with torch.no_grad():
        for name, p in pyro.get_param_store().named_parameters():
            if name in mean:
                p.copy_(mean[name])
    return losses


_OPTIONS = ("steps", "lr", "final_lr", "warm", "average", "particles", "elbo", "clip_norm")


def fit_guide(model: Callable, guide: Callable, args: tuple, kwargs: dict) -> list[float]:
    r"""An autoguide's ``fit``: :func:`svi`'s keyword options taken from ``kwargs``, the rest passed to the model."""
    kwargs = dict(kwargs)
    options = {k: kwargs.pop(k) for k in _OPTIONS if k in kwargs}
    return svi(model, guide, *args, **options, **kwargs)
