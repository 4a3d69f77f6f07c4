r"""Pyro adapters: a gendist flow as the trainable transform of Pyro's autoguides (NeuTra)."""

from __future__ import annotations

from pyro.distributions.torch_transform import TransformModule
from torch import Tensor
from torch.distributions import constraints

from gendist.distributions.bases import StandardNormal
from gendist.flows.core import FlowModule
from gendist.transforms.base import call_and_ladj, inv_and_ladj

__all__ = ["FlowTransform"]


class FlowTransform(TransformModule):
    r"""An unconditional gendist flow as one Pyro ``TransformModule``.

    Pyro's ``AutoNormalizingFlow`` supplies its own standard normal base and
    wants a trainable transform; ``NeuTraReparam`` then moves NUTS into that
    base space. A gendist flow rebuilds its transforms on every call, so this
    adapter does too, and keeps the fused log-determinant of its last forward
    pass for Pyro's ``log_abs_det_jacobian``. The flow's parameters are this
    module's, so ``pyro.module`` and optimizers see them.

    Arguments:
        flow: an unconditional, unconstrained flow on a standard normal base.

    Example:
        >>> from pyro.infer.autoguide import AutoNormalizingFlow
        >>> from gendist.flows import IAF
        >>> def model():
        ...     pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
        >>> guide = AutoNormalizingFlow(model, lambda dim: FlowTransform(IAF(dim, transforms=1)))
    """

    domain = constraints.real_vector
    codomain = constraints.real_vector
    bijective = True

    def __init__(self, flow: FlowModule) -> None:
        super().__init__(cache_size=1)
        if flow.context or not isinstance(flow.base, StandardNormal) or flow.support is not None:
            raise ValueError(
                "FlowTransform needs an unconditional flow (context=0) on a standard normal base "
                "without a support constraint: Pyro's guide supplies the base"
            )
        self.flow = flow
        self._last: tuple[Tensor, Tensor, Tensor] | None = None

    def _call(self, z: Tensor) -> Tensor:
        x, ladj = call_and_ladj(self.flow().transform, z)
        self._last = (z, x, ladj)
        return x

    def _inverse(self, x: Tensor) -> Tensor:
        return inv_and_ladj(self.flow().transform, x)[0]

    def log_abs_det_jacobian(self, z: Tensor, x: Tensor) -> Tensor:
        last = self._last
        if last is not None and last[0] is z and last[1] is x:
            return last[2]
        return call_and_ladj(self.flow().transform, z)[1]
