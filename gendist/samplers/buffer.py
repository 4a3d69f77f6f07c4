r"""A replay buffer of persistent MCMC chains (the JEM / IGEBM sampler's memory), checkpointed exactly.

Training an energy by contrastive divergence needs negative samples of the current model. Short Langevin runs
started afresh each step are far from the model; started from the last step's states instead (persistent
chains), they track it. A :class:`ReplayBuffer` keeps ``size`` past chain states; each batch restarts
:math:`n` chains from states drawn from it without replacement, except that each chain is, with probability
``reinit``, restarted from a fresh ``init`` draw (so the buffer keeps seeing new modes), and the final states
are written back where they came from. :func:`~gendist.samplers.sample_sgld` with ``buffer=`` does all of this.

The buffer draws with its own CPU ``torch.Generator``; its states and that generator's state are its
``state_dict``, so ``gendist.inference.fit(..., state={"buffer": buffer})`` checkpoints and resumes it exactly.

Example:
    >>> import torch
    >>> buf = ReplayBuffer(100, lambda n, g: torch.rand(n, 2, generator=g) * 2 - 1, seed=0)
    >>> x, index = buf.sample(8)
    >>> buf.update(index, x + 0.1)
    >>> x.shape, len(buf), sorted(buf.state_dict())
    (torch.Size([8, 2]), 100, ['generator', 'x'])

References:
    | Implicit generation and generalization in energy-based models (Du & Mordatch, 2019)
    | Your classifier is secretly an energy based model and you should treat it like one (Grathwohl et al., 2020)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from gendist._checks import check_integer

__all__ = ["ReplayBuffer"]

Init = Callable[[int, torch.Generator], Tensor]


class ReplayBuffer:
    r"""``size`` past chain states, drawn from with probability ``1 - reinit`` and refreshed from ``init`` otherwise.

    Arguments:
        size: the number of states kept.
        init: ``init(n, generator) -> Tensor`` of ``n`` fresh states ``(n, *event)`` (for instance uniform
            noise, as in JEM); it fills the buffer at construction and provides the re-initialised chains. It
            receives the buffer's CPU generator; the tensor it returns sets the buffer's dtype and device.
        reinit: the probability that a drawn chain restarts from a fresh state instead (JEM and IGEBM: 0.05).
        seed: the seed of the buffer's generator (None: one drawn from torch's global stream).

    Attributes:
        x: the states, ``(size, *event)``.
        generator: the buffer's own random stream (indices, restart coins, ``init`` draws).
    """

    def __init__(self, size: int, init: Init, reinit: float = 0.05, seed: int | None = None) -> None:
        self.size = check_integer("ReplayBuffer: `size`", size, low=1)
        if not callable(init):
            raise TypeError(f"ReplayBuffer: `init` must be callable as init(n, generator), got {type(init).__name__}")
        reinit = float(reinit)
        if not 0.0 <= reinit <= 1.0:
            raise ValueError(f"ReplayBuffer: `reinit` must be a probability in [0, 1], got {reinit!r}")
        self.init, self.reinit = init, reinit
        if seed is None:
            seed = int(torch.randint(2**62, ()))
        self.generator = torch.Generator().manual_seed(seed)
        self.x = self.fresh(self.size)

    def __len__(self) -> int:
        return self.size

    def fresh(self, n: int) -> Tensor:
        r"""``n`` fresh states from ``init`` (drawn with the buffer's generator), checked."""
        x = self.init(n, self.generator)
        if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() == 0 or x.shape[0] != n:
            raise TypeError(f"ReplayBuffer: `init({n}, generator)` must return a floating-point tensor of {n} "
                            f"states (n, *event), got {getattr(x, 'dtype', type(x).__name__)} of shape "
                            f"{tuple(getattr(x, 'shape', ()))}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("ReplayBuffer: `init` returned NaN or infinite states")
        if hasattr(self, "x") and x.shape[1:] != self.x.shape[1:]:
            raise ValueError(f"ReplayBuffer: `init` returned states of shape {tuple(x.shape[1:])}, the buffer holds "
                             f"{tuple(self.x.shape[1:])}")
        return x.detach() if not hasattr(self, "x") else x.detach().to(self.x)

    def sample(self, n: int, fresh: Tensor | None = None) -> tuple[Tensor, Tensor]:
        r"""``n`` starting states and the buffer slots they came from (distinct: drawn without replacement).

        Each state is a copy of a buffer state, or, with probability ``reinit``, a fresh state: the chain's entry
        of ``fresh`` when given (shape ``(n, *event)``), else an ``init`` draw. Write the chains' final states back
        with :meth:`update`.
        """
        n = check_integer("ReplayBuffer.sample: `n`", n, low=1)
        if n > self.size:
            raise ValueError(f"ReplayBuffer.sample: cannot draw {n} distinct states from a buffer of {self.size}")
        if fresh is not None and (fresh.shape[0] != n or fresh.shape[1:] != self.x.shape[1:]):
            raise ValueError(f"ReplayBuffer.sample: `fresh` must have shape {(n, *self.x.shape[1:])}, got "
                             f"{tuple(fresh.shape)}")
        index = torch.randperm(self.size, generator=self.generator)[:n]
        restart = torch.rand(n, generator=self.generator) < self.reinit
        x = self.x[index.to(self.x.device)].clone()
        k = int(restart.sum())
        if k:
            where = restart.to(self.x.device)
            x[where] = (fresh.detach().to(self.x)[where] if fresh is not None else self.fresh(k))
        return x, index

    def update(self, index: Tensor, x: Tensor) -> None:
        r"""Write the chains' final states ``x`` back into the slots ``index`` (from :meth:`sample`)."""
        if x.shape[0] != index.shape[0] or x.shape[1:] != self.x.shape[1:]:
            raise ValueError(f"ReplayBuffer.update: `x` must have shape {(index.shape[0], *self.x.shape[1:])}, got "
                             f"{tuple(x.shape)}")
        self.x[index.to(self.x.device)] = x.detach().to(self.x)

    def to(self, *args: Any, **kwargs: Any) -> ReplayBuffer:
        r"""Move (or cast) the stored states, as :meth:`torch.Tensor.to`; returns the buffer."""
        self.x = self.x.to(*args, **kwargs)
        return self

    def state_dict(self) -> dict[str, Tensor]:
        r"""The states and the generator's state (what an exact resume needs)."""
        return {"x": self.x.clone(), "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Tensor]) -> None:
        r"""Restore :meth:`state_dict` (the states keep this buffer's dtype and device)."""
        x = state["x"]
        if x.shape != self.x.shape:
            raise ValueError(f"ReplayBuffer.load_state_dict: the saved states have shape {tuple(x.shape)}, this "
                             f"buffer holds {tuple(self.x.shape)}")
        self.x = x.detach().to(self.x).clone()
        self.generator.set_state(state["generator"])

    def __repr__(self) -> str:
        return (f"ReplayBuffer(size={self.size}, event_shape={tuple(self.x.shape[1:])}, reinit={self.reinit}, "
                f"dtype={self.x.dtype}, device={self.x.device})")
