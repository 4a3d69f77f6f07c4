r"""What every gendist distribution shares: an honest statement of its likelihood."""

from __future__ import annotations

from typing import ClassVar, Literal

__all__ = ["LOG_PROB_KINDS", "LogProbKind", "Honest"]

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
