r"""The objectives of latent-variable models: the negative ELBO and IWAE bound, with a KL warm-up.

The bounds themselves are methods of the distribution
(:meth:`~gendist.LatentVariable.elbo`, :meth:`~gendist.LatentVariable.iwae`); this
module turns one draw of them into the training loss :func:`~gendist.inference.fit`
minimizes, as :func:`~gendist.inference.dsm_loss` does for diffusion.

.. math:: \mathcal{L}_\beta(x) = \mathbb{E}_q[\log p(x \mid z)] - \beta\, \mathrm{KL}(q(z \mid x) \,\|\, p(z)),
    \qquad \mathcal{L}_K(x) = \mathbb{E}\Big[\log \frac1K \sum_k \frac{p(x, z_k)}{q(z_k \mid x)}\Big]
"""

from __future__ import annotations

from typing import Protocol

from torch import Tensor

from gendist._checks import check_integer

__all__ = ["OBJECTIVES", "kl_weight", "variational_loss"]

OBJECTIVES = ("elbo", "iwae")


class _Bounded(Protocol):
    def elbo(self, value: Tensor, beta: float = 1.0) -> Tensor: ...

    def iwae(self, value: Tensor, k: int) -> Tensor: ...


def kl_weight(beta: float, warmup: int, step: int) -> float:
    r"""The KL weight :math:`\beta \min(1, (s + 1) / W)` of training step :math:`s` with a warm-up of :math:`W` steps.

    Example:
        >>> [kl_weight(1.0, 4, s) for s in range(5)]
        [0.25, 0.5, 0.75, 1.0, 1.0]
    """
    return beta if not warmup else beta * min(1.0, (int(step) + 1) / warmup)


def variational_loss(d: _Bounded, x: Tensor, objective: str = "elbo", k: int = 1, beta: float = 1.0) -> Tensor:
    r"""The mean negative bound over the values ``x`` of one draw: :math:`-\frac1N \sum_n \mathcal{L}(x_n)`.

    Arguments:
        d: a distribution with ``elbo(x, beta)`` and ``iwae(x, k)`` (a :class:`~gendist.LatentVariable`).
        x: the values, shape ``batch + event``.
        objective: ``"elbo"`` (:math:`\beta`-weighted) or ``"iwae"`` (``k`` importance samples).

    Example:
        >>> from gendist.latent import VAE
        >>> vae = VAE(4, latent=2, family="bernoulli", hidden=(8,))
        >>> x = vae().sample((3,))
        >>> variational_loss(vae(), x, "iwae", k=5).shape
        torch.Size([])
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if objective == "iwae":
        return -d.iwae(x, check_integer("k", k, 1)).mean()
    return -d.elbo(x, beta).mean()
