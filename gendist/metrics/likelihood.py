r"""Negative log-likelihood and bits per dimension of dequantized discrete data.

A continuous density :math:`q` fitted to discrete data :math:`x \in \{0, \dots, L-1\}^D`
is scored on dequantized, rescaled points

.. math:: y = s\,(x + u), \qquad u \sim \mathcal{U}[0, 1)^D,

so each integer bin :math:`[x, x+1)` becomes a cell of width :math:`s` (the ``scale``)
in model space: :math:`s = 1` for raw integers, :math:`s = 1/L` for data in :math:`[0, 1)`,
:math:`s = 2/L` for data in :math:`[-1, 1)` (a shift changes nothing). The density of the
unscaled :math:`v = x + u` is :math:`q_v(v) = q(s v)\, s^D` (change of variables, log-det
:math:`D \log s`), and the discrete model :math:`P(x) = \int_{[0,1)^D} q_v(x + u)\, du` obeys,
by Jensen's inequality,

.. math::
    -\log P(x) \le E_u[-\log q_v(x + u)] = E_u[-\log q(y)] - D \log s
    = \mathrm{NLL}_{\mathrm{cont}} + D \log(1/s).

So the NLL in nats of the discrete data (an upper bound, tight when :math:`q` is flat in
each cell) is the continuous NLL **plus** :math:`D \log(1/s)`, and

.. math:: \mathrm{bits/dim} = \frac{\mathrm{NLL}_{\mathrm{cont}} + D \log(1/s)}{D \log 2}.

The uniform density over the :math:`L^D` cells has :math:`\log_2 L` bits/dim whatever :math:`s`.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gendist._checks import check_integer

__all__ = ["nll", "bits_per_dim"]


def nll(log_prob: Tensor) -> float:
    r"""Mean negative log-likelihood :math:`-\frac{1}{N} \sum_i \log p(x_i)` in nats.

    Arguments:
        log_prob: The log-densities :math:`\log p(x_i)` of the evaluation points, any shape
            (every element is one point).

    Returns:
        The mean NLL as a Python float (``inf`` if some point has zero density).

    Raises:
        ValueError: If ``log_prob`` is empty or holds a NaN or ``+inf``.

    Example:
        >>> d = torch.distributions.Normal(0.0, 1.0)
        >>> x = torch.tensor([-1.0, 0.0, 1.0])
        >>> round(nll(d.log_prob(x)), 4)  # log(2 pi) / 2 + 1/3
        1.2523
    """
    log_prob = torch.as_tensor(log_prob)
    if log_prob.numel() == 0:
        raise ValueError("log_prob is empty")
    if torch.isnan(log_prob).any():
        raise ValueError("log_prob contains NaN")
    if (log_prob == math.inf).any():
        raise ValueError("log_prob contains +inf (a degenerate density)")
    return -log_prob.double().mean().item()


def bits_per_dim(
    nll_nats: float | Tensor,
    dim: int,
    levels: int | None = None,
    scale: float | None = None,
) -> float:
    r"""Bits per dimension of discrete data from the NLL of a continuous density over dequantized data.

    With data :math:`x \in \{0, \dots, L-1\}^D` modelled as :math:`y = s (x + u)`,
    :math:`u \sim \mathcal{U}[0, 1)^D` (see the module docstring for the derivation),

    .. math:: \mathrm{bits/dim} = \frac{\mathrm{NLL}_{\mathrm{cont}} + D \log(1/s)}{D \log 2},

    where :math:`D \log(1/s) = -D \log s` undoes the log-det of the rescaling
    :math:`v \mapsto s v`. For :math:`s = 1` this is :math:`\mathrm{NLL} / (D \log 2)`.

    Arguments:
        nll_nats: The mean continuous NLL in nats per data point (a sum over its ``dim``
            dimensions), e.g. from :func:`nll`; a float or a one-element tensor.
        dim: The number of dimensions :math:`D` of a data point.
        levels: The number of levels :math:`L` of the discrete data. Only used to default
            ``scale`` to :math:`1/L` (data rescaled to :math:`[0, 1)`).
        scale: The width :math:`s` of one integer bin in model space. Defaults to
            :math:`1/L` if ``levels`` is given, else 1 (the model sees raw integers plus noise).
            An explicit ``scale`` wins over ``levels`` (e.g. ``scale=2 / levels`` for :math:`[-1, 1)`).

    Returns:
        The bits per dimension, an upper bound on the discrete model's (Jensen).

    Raises:
        ValueError: If ``dim < 1``, ``levels < 2``, ``scale <= 0`` or ``nll_nats`` is NaN.

    Example:
        The uniform density over :math:`[0, 17)^{64}` (8x8 digits, values 0..16, bin width 1)
        and over :math:`[0, 1)^{64}` both give :math:`\log_2 17` bits/dim:

        >>> import math
        >>> round(bits_per_dim(64 * math.log(17), dim=64), 3)
        4.087
        >>> round(bits_per_dim(0.0, dim=64, levels=17), 3)  # density 1 on [0, 1)^64
        4.087
    """
    dim = check_integer("dim", dim, low=1)
    if levels is not None:
        levels = check_integer("levels", levels, low=2)
    if scale is None:
        scale = 1.0 / levels if levels is not None else 1.0
    scale = float(scale)
    if not (scale > 0 and math.isfinite(scale)):
        raise ValueError(f"scale must be a positive finite float, got {scale!r}")
    nll_nats = torch.as_tensor(nll_nats, dtype=torch.float64)
    if nll_nats.numel() != 1:
        raise ValueError(f"nll_nats must be a single number, got shape {tuple(nll_nats.shape)}")
    value = nll_nats.item()
    if math.isnan(value):
        raise ValueError("nll_nats is NaN")
    return (value - dim * math.log(scale)) / (dim * math.log(2))
