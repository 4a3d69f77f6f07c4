r"""What :func:`~gendist.inference.fit` minimizes: objectives, each with its parameters and optimizer, in stages.

An :class:`Objective` is a loss ``loss(model, batch) -> Tensor`` (a mean over
the batch's examples) together with the parameters it moves, the optimizer
that moves them and how often it steps. A :class:`Stage` is a list of
objectives trained together for some epochs; stages run one after another.

- one loss (flows, autoregressive models, VAEs, diffusion): ``fit(model, data)``
  or ``fit(model, data, objective=my_loss)``;
- a GAN or a critic: ``[Objective("critic", d_loss, parameters=lambda m: m.critic.parameters()),
  Objective("generator", g_loss, parameters=lambda m: m.generator.parameters(), every=5)]``
  takes 5 critic steps per generator step;
- a VQ-VAE: ``[Stage("autoencoder", ...), Stage("prior", ...)]``, the prior fitted after the autoencoder.

A model may offer its own through ``objectives()`` (a list of objectives) or
``stages()`` (a list of stages); ``fit`` uses them when no objective is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
import torch.nn as nn
from torch import Tensor

__all__ = ["Batch", "Loss", "Objective", "Stage", "Stateful", "nll_objective", "resolve_stages"]

Batch = tuple[Tensor, ...]
Loss = Callable[[nn.Module, Batch], Tensor]


@runtime_checkable
class Stateful(Protocol):
    r"""Anything :func:`~gendist.inference.fit` checkpoints besides the model: a replay buffer, MCMC chains, ..."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any], /) -> Any: ...


def nll_objective(model: nn.Module, batch: Batch) -> Tensor:
    r"""The mean negative log-likelihood :math:`-\frac{1}{N} \sum_n \log p(x_n \mid c_n)`.

    ``batch`` is ``(x,)`` or ``(x, c)``; the model is called as ``model(c)``.
    A model with its own training loss (a latent-variable model's negative
    ELBO or IWAE bound: a ``loss(x, c)`` method) is trained on that instead.

    Example:
        >>> from gendist.flows import MAF
        >>> nll_objective(MAF(2, transforms=1, hidden=(4,)), (torch.randn(8, 2),)).shape
        torch.Size([])
    """
    x = batch[0]
    c = batch[1] if len(batch) > 1 else None
    own = getattr(model, "loss", None)
    if callable(own):
        return own(x, c)
    return -model(c).log_prob(x).mean()


@dataclass
class Objective:
    r"""One loss, the parameters it trains and how: :math:`\theta_g \leftarrow \mathrm{opt}_g(\nabla_{\theta_g} L_g)`.

    At the :math:`t`-th batch of its stage (from 0) the objective takes ``steps``
    optimizer steps on that batch when :math:`(t + 1) \bmod \text{every} = 0`;
    objectives of one stage take their turns in list order, each on the weights
    the previous one left.

    Arguments:
        name: the objective's name (unique within its stage): it keys the history and the checkpoint.
        loss: ``loss(model, batch) -> Tensor``, the mean loss over the batch's examples
            (the mean matters for several processes: each process's share is weighted by its size).
            A loss object with ``state_dict()``/``load_state_dict()`` (a replay buffer, persistent
            chains) is checkpointed with the run, one state per process.
        parameters: ``parameters(model) -> iterable`` of the parameters to train
            (default: every parameter of the model that requires a gradient).
        optimizer: a function from parameters to an optimizer (default: ``fit``'s, or Adam).
        lr: this objective's learning rate (default: ``fit``'s ``lr``); set on the optimizer's groups.
        every: step on every ``every``-th batch (``every=5`` for 1 generator step per 5 critic steps).
        steps: optimizer steps on each batch where it steps (inner iterations).
        clip_grad: clip the gradient norm of its parameters (default: ``fit``'s ``clip_grad``).
        validate: score the loss on the validation data; the validation loss of an epoch
            (early stopping, best weights) is the sum over the objectives that do.

    Example:
        >>> import torch.nn as nn
        >>> net = nn.ModuleDict({"a": nn.Linear(1, 1), "b": nn.Linear(1, 1)})
        >>> obj = Objective("a", lambda m, b: m["a"](b[0]).pow(2).mean(), parameters=lambda m: m["a"].parameters(),
        ...                 lr=0.1, every=2)
        >>> [p.shape for p in obj.trainable(net)]
        [torch.Size([1, 1]), torch.Size([1])]
    """

    name: str
    loss: Loss
    parameters: Callable[[nn.Module], Iterable[nn.Parameter]] | None = None
    optimizer: Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer] | None = None
    lr: float | None = None
    every: int = 1
    steps: int = 1
    clip_grad: float | None = None
    validate: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Objective: `name` must be a non-empty string, got {self.name!r}")
        if not callable(self.loss):
            raise TypeError(f"Objective {self.name!r}: `loss` must be callable as loss(model, batch)")
        for key in ("every", "steps"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Objective {self.name!r}: `{key}` must be an integer >= 1, got {value!r}")
        if self.lr is not None and not self.lr >= 0:
            raise ValueError(f"Objective {self.name!r}: `lr` must be >= 0, got {self.lr!r}")

    def trainable(self, model: nn.Module) -> list[nn.Parameter]:
        r"""The parameters this objective trains (those requiring a gradient), without repeats."""
        source = model.parameters() if self.parameters is None else self.parameters(model)
        seen: set[int] = set()
        out = []
        for p in source:
            if p.requires_grad and id(p) not in seen:
                seen.add(id(p))
                out.append(p)
        return out

    def active(self, t: int) -> bool:
        r"""Whether it steps at batch ``t`` (from 0) of its stage."""
        return (t + 1) % self.every == 0


@dataclass
class Stage:
    r"""Objectives trained together for ``epochs`` epochs; the stages of a run go one after another.

    Early stopping and the restore of the best weights work per stage: a stage
    ends after ``epochs`` epochs or when its validation loss stops improving, and
    (with ``restore_best``) hands its best weights on to the next stage.

    Arguments:
        name: the stage's name (unique in the run).
        objectives: a loss callable, an :class:`Objective` or a list of them.
        epochs: its number of epochs (default: ``fit``'s ``epochs``).
        setup: ``setup(model)`` called when the stage starts (and again when a run
            resumes inside it): switch what the model's loss computes, freeze a part, ...

    Example:
        >>> stages = [Stage("autoencoder", nll_objective, epochs=2, setup=lambda m: setattr(m, "stage", "autoencoder")),
        ...           Stage("prior", nll_objective, epochs=1, setup=lambda m: setattr(m, "stage", "prior"))]
        >>> [s.name for s in stages]
        ['autoencoder', 'prior']
    """

    name: str
    objectives: Loss | Objective | Sequence[Objective]
    epochs: int | None = None
    setup: Callable[[nn.Module], None] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"Stage: `name` must be a non-empty string, got {self.name!r}")
        if self.epochs is not None and (isinstance(self.epochs, bool) or not isinstance(self.epochs, int)
                                        or self.epochs < 1):
            raise ValueError(f"Stage {self.name!r}: `epochs` must be an integer >= 1, got {self.epochs!r}")

    def resolved(self) -> list[Objective]:
        r"""Its objectives as a list of :class:`Objective` (a bare callable is named ``"loss"``)."""
        return as_objectives(self.objectives, f"stage {self.name!r}")


def as_objectives(objective: Loss | Objective | Sequence[Objective], where: str = "fit") -> list[Objective]:
    r"""A callable, an :class:`Objective` or a list of them, as a non-empty list of objectives with unique names."""
    if isinstance(objective, Objective):
        out = [objective]
    elif isinstance(objective, (list, tuple)):
        out = list(objective)
        bad = [type(o).__name__ for o in out if not isinstance(o, Objective)]
        if bad or not out:
            raise TypeError(f"{where}: a list of objectives must hold Objective instances, got {bad or 'none'}")
    elif callable(objective):
        out = [Objective("loss", objective)]
    else:
        raise TypeError(f"{where}: `objective` must be a callable loss(model, batch), an Objective or a list of "
                        f"them, got {type(objective).__name__}")
    names = [o.name for o in out]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: objective names must be unique, got {names}")
    return out


def resolve_stages(
    model: nn.Module,
    objective: Loss | Objective | Sequence[Objective] | None,
    stages: Sequence[Stage] | None,
    epochs: int,
) -> list[tuple[Stage, list[Objective], int]]:
    r"""The run's stages with their objectives and epochs.

    Precedence: ``stages``; then ``objective``; then the model's ``stages()``, then its
    ``objectives()``; then :func:`nll_objective`.
    """
    if stages is not None and objective is not None:
        raise ValueError("fit: give `objective` or `stages`, not both (a stage holds its own objectives)")
    if stages is None and objective is None:
        if callable(getattr(model, "stages", None)):
            stages = model.stages()
        elif callable(getattr(model, "objectives", None)):
            objective = model.objectives()
        else:
            objective = nll_objective
    if stages is None:
        stages = [Stage("train", objective)]
    stages = list(stages)
    if not stages or not all(isinstance(s, Stage) for s in stages):
        raise TypeError(f"fit: `stages` must be a non-empty list of Stage, got {[type(s).__name__ for s in stages]}")
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise ValueError(f"fit: stage names must be unique, got {names}")
    return [(s, s.resolved(), s.epochs if s.epochs is not None else epochs) for s in stages]
