r"""An exponential moving average of a module's weights, the weights a diffusion model samples with."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
import torch.nn as nn

__all__ = ["EMA"]


class EMA(nn.Module):
    r"""A copy of ``module`` whose parameters follow the exponential moving average of ``module``'s,

    .. math:: \bar\theta_{n+1} = d_n \bar\theta_n + (1 - d_n) \theta_{n+1},
        \qquad d_n = \min\Big(d, \frac{1 + n}{10 + n}\Big) \text{ with warmup, else } d,

    after the :math:`n`-th call of :meth:`update` (counting from 0). The warmup lets the early average forget
    the initial weights quickly. Buffers (batch-norm statistics, ...) and non-float parameters are copied as
    they are. The average is a submodule, ``averaged``, so it is saved in the ``state_dict`` together with the
    number of updates (a run resumed from a checkpoint continues the same average) and follows ``.to()``;
    its parameters do not require gradients. Calling the EMA calls the averaged module.

    Arguments:
        module: the module to average (copied; the copy's initial weights are ``module``'s).
        decay: the decay :math:`d`, in :math:`[0, 1)`.
        warmup: cap the decay at :math:`(1 + n) / (10 + n)`.

    Example:
        >>> net = nn.Linear(2, 1)
        >>> ema = EMA(net, decay=0.9, warmup=False)
        >>> with torch.no_grad():
        ...     _ = net.bias.add_(1.0)
        >>> bias = ema.averaged.bias.clone()
        >>> ema.update(net)
        >>> bool(torch.allclose(ema.averaged.bias, bias + 0.1)), int(ema.updates)
        (True, 1)
    """

    updates: torch.Tensor

    def __init__(self, module: nn.Module, decay: float = 0.999, warmup: bool = True) -> None:
        super().__init__()
        if not isinstance(module, nn.Module):
            raise TypeError(f"EMA: `module` must be an nn.Module, got {type(module).__name__}")
        if isinstance(decay, bool) or not isinstance(decay, (int, float)) or not (0 <= decay < 1):
            raise ValueError(f"EMA: `decay` must be a number in [0, 1), got {decay!r}")
        if math.isnan(decay):
            raise ValueError("EMA: `decay` must be a number in [0, 1), got nan")
        self.decay, self.warmup = float(decay), bool(warmup)
        self.averaged = copy.deepcopy(module)
        for p in self.averaged.parameters():
            p.grad = None
            p.requires_grad_(False)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    def current_decay(self) -> float:
        r"""The decay :math:`d_n` the next :meth:`update` uses."""
        n = int(self.updates)
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        r"""Move the average towards ``module``'s current weights (a module of the same structure)."""
        d = self.current_decay()
        params, mine = dict(module.named_parameters()), dict(self.averaged.named_parameters())
        buffers, my_buffers = dict(module.named_buffers()), dict(self.averaged.named_buffers())
        if params.keys() != mine.keys() or buffers.keys() != my_buffers.keys():
            raise ValueError("EMA.update: `module` does not have the parameters and buffers of the averaged module")
        for name, avg in mine.items():
            p = params[name].detach().to(device=avg.device, dtype=avg.dtype)
            if avg.dtype.is_floating_point or avg.dtype.is_complex:
                avg.lerp_(p, 1 - d)
            else:
                avg.copy_(p)
        for name, buf in my_buffers.items():
            buf.copy_(buffers[name])
        self.updates += 1

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.averaged(*args, **kwargs)

    def extra_repr(self) -> str:
        return f"decay={self.decay:g}, warmup={self.warmup}"
