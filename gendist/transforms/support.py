r"""A bijection from the reals onto a constrained support, reporting that support as its codomain."""

from __future__ import annotations

from torch import Tensor
from torch.distributions import biject_to, constraints

from gendist.transforms.base import Transform, call_and_ladj, inv_and_ladj

__all__ = ["ToSupport"]


class ToSupport(Transform):
    r"""``biject_to(support)``, with ``codomain = support`` (torch's own may report ``real``).

    Ending a flow with it makes the flow's samples, ``support`` and density
    live on ``support``: ``constraints.positive``, ``constraints.interval(a, b)``,
    ``constraints.simplex`` and any constraint torch can biject onto.

    Example:
        >>> t = ToSupport(constraints.interval(0.0, 2.0))
        >>> t.codomain
        Interval(lower_bound=0.0, upper_bound=2.0)
        >>> bool(((t(torch.randn(5)) > 0) & (t(torch.randn(5)) < 2)).all())
        True
    """

    def __init__(self, support: constraints.Constraint) -> None:
        super().__init__()
        self.bijector = biject_to(support)
        self.domain = self.bijector.domain
        self.codomain = support

    @property
    def sign(self) -> int:
        return self.bijector.sign

    def call_and_ladj(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return call_and_ladj(self.bijector, x)

    def inv_and_ladj(self, y: Tensor) -> tuple[Tensor, Tensor]:
        return inv_and_ladj(self.bijector, y)

    def __repr__(self) -> str:
        return f"ToSupport({self.codomain})"
