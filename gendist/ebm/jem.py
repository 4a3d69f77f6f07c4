r"""Joint energy-based models (Grathwohl et al., 2020): a classifier's logits read as an energy of :math:`(x, y)`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
from torch import Size, Tensor
from torch.distributions import Categorical

from gendist._checks import check_context, check_integer, check_shape, check_value
from gendist.distributions.energy import EnergyBased
from gendist.ebm.energy import EnergyRecipe, _device_of, check_confine, gaussian_envelope
from gendist.nn.energy import ConvNet
from gendist.nn.mlp import MLP

__all__ = ["JEM", "LogitEnergy"]


class _FlatMLP(nn.Module):
    r"""A perceptron over the flattened event (for matrix-shaped events)."""

    def __init__(self, event_dim: int, mlp: MLP) -> None:
        super().__init__()
        self.event_dim, self.mlp = event_dim, mlp

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(x.flatten(x.dim() - self.event_dim))


class LogitEnergy:
    r"""The energy of a classifier's logits :math:`f(x)`: :math:`E(x) = -\log \sum_y e^{f(x)[y]}`, and given
    class probabilities :math:`c` (one-hot for a class :math:`y`),
    :math:`E(x \mid c) = -\log \sum_y c_y e^{f(x)[y]}` (:math:`-f(x)[y]` for a one-hot :math:`c`). Picklable.
    """

    def __init__(self, classifier: nn.Module, event_shape: Size, confine: float = 0.0) -> None:
        self.classifier, self.event_shape = classifier, Size(event_shape)
        self.confine = float(confine)

    def _envelope(self, x: Tensor) -> Tensor | float:
        return gaussian_envelope(x, len(self.event_shape), self.confine) if self.confine else 0.0

    def logits(self, x: Tensor) -> Tensor:
        n = len(self.event_shape)
        batch = x.shape[: x.dim() - n]
        f = self.classifier(x.reshape(batch.numel(), *self.event_shape))
        if not isinstance(f, Tensor) or f.dim() != 2 or f.shape[0] != batch.numel():
            got = tuple(f.shape) if isinstance(f, Tensor) else type(f).__name__
            raise ValueError(f"JEM: the classifier must return logits of shape (N, classes) for inputs of shape "
                             f"(N, {', '.join(map(str, self.event_shape))}); got {got}")
        return f.reshape(*batch, f.shape[-1])

    def __call__(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        f = self.logits(x)
        if c is None:
            return -torch.logsumexp(f, -1) + self._envelope(x)
        if c.shape[-1] != f.shape[-1]:
            raise ValueError(f"JEM: the context (class probabilities) has {c.shape[-1]} entries but the classifier "
                             f"gives {f.shape[-1]} logits")
        return -torch.logsumexp(f + c.log(), -1) + self._envelope(x)


class JEM(EnergyRecipe):
    r"""A joint energy-based model (Grathwohl et al., 2020): a classifier :math:`f_\theta(x) \in \mathbb{R}^K`
    read as :math:`p_\theta(x, y) \propto e^{f_\theta(x)[y]}`, so

    .. math:: E_\theta(x) = -\log \sum_y e^{f_\theta(x)[y]}, \qquad
        p_\theta(y \mid x) = \operatorname{softmax}(f_\theta(x))_y .

    ``model()`` is :math:`p_\theta(x)`, an :class:`~gendist.EnergyBased`; ``model(c)``, with class
    probabilities ``c`` of shape ``(..., K)`` (one-hot for a class: ``model.given(y)``), is
    :math:`p_\theta(x \mid c) \propto \sum_y c_y e^{f_\theta(x)[y]}`. :meth:`classify` is :math:`p_\theta(y \mid x)`.

    Arguments:
        classifier: a network ``(N, *shape) -> (N, K)`` logits, or the number of classes :math:`K` for the
            default one (a :class:`~gendist.nn.ConvNet` for images ``(C, H, W)``, else an
            :class:`~gendist.nn.MLP` over the flattened event; a given network leaves the model without a
            JSON config).
        shape: the event shape of :math:`x`.
        hidden, width, activation: the default classifier's hidden sizes, first channels and activation.
        sampler, steps, step_size, sampler_options, log_partition, partition_options: as for
            :class:`~gendist.ebm.Energy`.
        confine: :math:`\lambda` of the envelope :math:`\frac{\lambda}{2} \lVert x \rVert^2` added to the energy
            (default 0.01 for the default classifier, 0 for a given one): logits grow linearly in :math:`x`, so
            without it :math:`e^{-E}` need not be integrable. :math:`p(y \mid x)` does not depend on it.

    Example:
        >>> model = JEM(3, 2, hidden=(8,), steps=5)
        >>> x = model().sample((4,))
        >>> model.classify(x).probs.shape, model.given(torch.tensor([0, 2])).batch_shape
        (torch.Size([4, 3]), torch.Size([2]))

    References:
        | Your Classifier is Secretly an Energy Based Model and You Should Treat it Like One
        | (Grathwohl et al., 2020) https://arxiv.org/abs/1912.03263
    """

    def __init__(
        self,
        classifier: nn.Module | int,
        shape: int | Sequence[int],
        hidden: Sequence[int] = (128, 128),
        width: int = 32,
        activation: type[nn.Module] = nn.SiLU,
        sampler: str | None = None,
        steps: int = 200,
        step_size: float = 0.01,
        sampler_options: dict[str, Any] | None = None,
        log_partition: str | None = None,
        partition_options: dict[str, Any] | None = None,
        confine: float | None = None,
    ) -> None:
        super().__init__()
        self.shape = check_shape(shape, "JEM: `shape`")
        confine = check_confine("JEM", confine, 0.0 if isinstance(classifier, nn.Module) else 0.01)
        self._set_options("JEM", False, sampler, steps, step_size, sampler_options, log_partition,
                          partition_options)
        self._check_partition("JEM", log_partition, self.shape, False)
        if isinstance(classifier, nn.Module):
            self.classes: int | None = None
        else:
            self.classes = check_integer("JEM: `classifier` (a network, or the number of classes)", classifier,
                                         low=2)
            if len(self.shape) == 3:
                classifier = ConvNet(self.shape[0], self.shape[1:], self.classes, width, activation=activation)
            else:
                classifier = _FlatMLP(len(self.shape), MLP(self.shape.numel(), self.classes, hidden,
                                                           activation=activation))
        self.classifier = classifier
        self.energy_fn = LogitEnergy(classifier, self.shape, confine)

    def _dtype(self) -> torch.dtype:
        return _device_of(self, None)[0]

    def logits(self, x: Tensor) -> Tensor:
        r"""The classifier's logits :math:`f_\theta(x)`, shape ``x.shape[:-len(shape)] + (K,)``."""
        check_value("x", x, self.shape, "JEM.logits", self._dtype())
        return self.energy_fn.logits(x)

    def log_prob_y(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        r""":math:`\log p_\theta(y \mid x)` (log-softmax of the logits): every class, shape ``(..., K)``, or of
        the classes ``y`` (integers broadcasting against ``x``'s batch), shape ``(...)``."""
        lp = torch.log_softmax(self.logits(x), -1)
        if y is None:
            return lp
        if not isinstance(y, Tensor) or y.dtype.is_floating_point or y.dtype == torch.bool:
            raise TypeError(f"JEM.log_prob_y: `y` must be an integer tensor of classes, got "
                            f"{y.dtype if isinstance(y, Tensor) else type(y).__name__}")
        K = lp.shape[-1]
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= K):
            raise ValueError(f"JEM.log_prob_y: classes `y` must lie in 0..{K - 1}, got values in "
                             f"{int(y.min())}..{int(y.max())}")
        shape = torch.broadcast_shapes(lp.shape[:-1], y.shape)
        return lp.expand(*shape, K).gather(-1, y.expand(shape).unsqueeze(-1)).squeeze(-1)

    def classify(self, x: Tensor) -> Categorical:
        r""":math:`p_\theta(y \mid x) = \operatorname{softmax}(f_\theta(x))`, a ``Categorical`` per example."""
        return Categorical(logits=self.logits(x))

    def energy(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        r""":math:`E_\theta(x) = -\log \sum_y e^{f_\theta(x)[y]}` (given class probabilities ``c``:
        :math:`-\log \sum_y c_y e^{f_\theta(x)[y]}`), shape ``x.shape[:-len(shape)]``."""
        check_value("x", x, self.shape, "JEM.energy", self._dtype())
        if c is not None:
            self._check_c(c, "JEM.energy")
            batch = torch.broadcast_shapes(x.shape[: x.dim() - len(self.shape)], c.shape[:-1])
            x, c = x.expand(batch + self.shape), c.expand(batch + c.shape[-1:])
        return self.energy_fn(x, c)

    def _check_c(self, c: Tensor, where: str) -> None:
        K = self.classes if self.classes is not None else (c.shape[-1] if isinstance(c, Tensor) and c.dim() else 1)
        check_context(c, K, where, self._dtype())
        if bool((c < 0).any()):
            raise ValueError(f"{where}: the context `c` holds class probabilities (one-hot for a class): "
                             "expected entries >= 0")

    def given(self, y: Tensor, **options: Any) -> EnergyBased:
        r""":math:`p_\theta(x \mid y) \propto e^{f_\theta(x)[y]}` for integer classes ``y`` (its batch shape)."""
        if not isinstance(y, Tensor) or y.dtype.is_floating_point or y.dtype == torch.bool:
            raise TypeError("JEM.given: `y` must be an integer tensor of classes")
        K = self.classes
        if K is None:
            probe = torch.zeros((1, *self.shape), dtype=self._dtype(), device=_device_of(self, None)[1])
            with torch.no_grad():
                K = self.energy_fn.logits(probe).shape[-1]
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= K):
            raise ValueError(f"JEM.given: classes `y` must lie in 0..{K - 1}")
        dtype, device = _device_of(self, None)
        return self(torch.nn.functional.one_hot(y, K).to(dtype=dtype, device=device), **options)

    def forward(self, c: Tensor | None = None, **options: Any) -> EnergyBased:
        r""":math:`p_\theta(x)`, or :math:`p_\theta(x \mid c)` given class probabilities ``c`` ``(..., K)``;
        keyword ``options`` override the sampler and partition settings."""
        if c is not None:
            self._check_c(c, "JEM")
        return self._distribution("JEM", self.energy_fn, self.shape, False, c, options)
