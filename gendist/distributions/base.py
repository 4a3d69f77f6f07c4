r"""What every gendist distribution shares: an honest statement of its likelihood."""

from __future__ import annotations

from typing import ClassVar, Literal

import torch
from torch import Tensor

__all__ = ["LOG_PROB_KINDS", "LogProbKind", "Honest", "check_value"]

LogProbKind = Literal["exact", "bound", "estimate", "unnormalized", "none"]

LOG_PROB_KINDS: dict[str, str] = {
    "exact": "log_prob is the exact normalized log-density",
    "bound": "log_prob is a lower bound of the log-density",
    "estimate": "log_prob is a stochastic estimate of the log-density",
    "unnormalized": "log_prob is correct only up to an unknown additive constant (log Z)",
    "none": "log_prob cannot be computed; calling it raises an error",
}


class Honest:
    r"""Mixin declaring what a distribution's ``log_prob`` is.

    ``log_prob_kind`` is one of ``"exact"``, ``"bound"``, ``"estimate"``,
    ``"unnormalized"`` or ``"none"`` (see :data:`LOG_PROB_KINDS`).
    """

    log_prob_kind: ClassVar[LogProbKind]


def check_value(
    name: str, value: Tensor, event_shape: torch.Size, where: str, dtype: torch.dtype | None = None
) -> None:
    r"""Raise a clear error if ``value`` is not a finite float tensor (of ``dtype``) ending in ``event_shape``.

    Skipped while ``torch.compile`` traces, so compiled graphs stay free of checks.
    """
    if torch.compiler.is_compiling():
        return
    if not isinstance(value, Tensor):
        raise TypeError(f"{where}: `{name}` must be a torch.Tensor, got {type(value).__name__}")
    if not value.dtype.is_floating_point:
        raise TypeError(
            f"{where}: `{name}` must be a floating-point tensor, got dtype {value.dtype}; "
            f"convert it with `{name}.to(torch.get_default_dtype())`"
        )
    if dtype is not None and value.dtype != dtype:
        raise TypeError(
            f"{where}: `{name}` has dtype {value.dtype} but the model is {dtype}; convert one of them, "
            f"e.g. `{name}.to({dtype})` or `model.to({value.dtype})`"
        )
    n = len(event_shape)
    if value.dim() < n or value.shape[value.dim() - n :] != event_shape:
        raise ValueError(
            f"{where}: `{name}` must have shape (..., {', '.join(map(str, event_shape))}) "
            f"ending in the event shape {tuple(event_shape)}, got shape {tuple(value.shape)}"
        )
    # a finite sum proves every entry finite (cheap); only otherwise count the bad entries
    if not bool(value.sum().isfinite()) and not bool(torch.isfinite(value).all()):
        bad = (~torch.isfinite(value)).sum().item()
        raise ValueError(f"{where}: `{name}` has {bad} NaN or infinite entries; expected finite values")
