r"""A frozen flow's log-density and its gradient in the value, in one pass: the fast path of a flow prior.

Under NUTS every leapfrog step asks for :math:`\log p(x)` and :math:`\nabla_x \log p(x)` at one point. For a
small flow at one point the cost is not arithmetic but dispatch: a generic ``log_prob`` builds transform
objects, calls modules and records an autograd graph of a hundred tiny operations, then walks it back.
:func:`compile_flow` reads a built :class:`~gendist.Flow` once, with its weights frozen, and returns a
:class:`FusedFlow` that computes the log-density of the data-to-base pass

.. math:: \log p(x) = \log p_Z(u_L) + \sum_{k=1}^L \log \Big|\det \frac{\partial u_k}{\partial u_{k-1}}\Big|,
    \qquad u_0 = x,

and its gradient by a hand-written backward pass through each layer (masked and plain perceptron
conditioners, affine and additive maps, a standard normal base): a few dozen plain tensor operations, no
graph. Layers it does not know (splines, permutations, normalizations, support bijections, other bases) are
differentiated by autograd locally, a segment at a time. :func:`fused_log_prob` wraps the result as one
autograd node, so ``pyro.infer`` differentiates the potential as usual.

Nothing here changes a module: the weights are read (masked, detached) when the flow is compiled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.distributions import Distribution, Independent, Normal
from torch.distributions.transforms import Transform as _TorchTransform
from torch.distributions.utils import _sum_rightmost

from gendist.distributions.flow import Flow
from gendist.flows.univariate import Additive, Affine
from gendist.nn.mlp import MaskedLinear, MaskedMLP
from gendist.transforms.autoregressive import Autoregressive, Coupling
from gendist.transforms.base import Compose, Inverse, inv_and_ladj

__all__ = ["FusedFlow", "compile_flow", "fused_log_prob"]

_ACTIVATIONS = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.SiLU)
_threshold_back = torch.ops.aten.threshold_backward.default
_sigmoid_back = torch.ops.aten.sigmoid_backward.default


class _Net:
    r"""A frozen perceptron (``MLP`` or ``MaskedMLP``) at a fixed context, up to its last hidden activation:
    forward with the pre-activations kept, and the vector-Jacobian product in the input, by hand.

    The last layer is the caller's (:class:`_ConditionerStep` splits it into shifts and log-scales).
    """

    def __init__(self, net: nn.Module, c: Tensor | None) -> None:
        layers = list(net.layers)
        self.weights = [_weight(layer).contiguous() for layer in layers[:-1]]
        self.w_t = [w.t() for w in self.weights]
        self.biases = [layer.bias.detach() for layer in layers[:-1]]
        self.offset = None  # the context's contribution to the first layer, (*batch, H)
        if net.context is not None:
            self.offset = F.linear(c.detach(), net.context.weight.detach())
        act = net.activation
        if isinstance(act, nn.ReLU):
            self.act, self.act_back = torch.relu, _relu_back
        elif isinstance(act, nn.LeakyReLU):
            self.act = partial(F.leaky_relu, negative_slope=act.negative_slope)
            self.act_back = partial(_leaky_back, slope=act.negative_slope)
        elif isinstance(act, nn.Tanh):
            self.act, self.act_back = torch.tanh, _tanh_back
        else:
            self.act, self.act_back = F.silu, _silu_back

    def forward(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        r"""The last hidden activation (``x`` itself without hidden layers) and the pre-activations."""
        saved = []
        h = x
        for i, (w_t, b) in enumerate(zip(self.w_t, self.biases)):
            a = _affine(b, h, w_t)
            if i == 0 and self.offset is not None:
                a = a + self.offset
            saved.append(a)
            h = self.act(a)
        return h, saved

    def backward(self, saved: list[Tensor], g: Tensor, add: Tensor | None) -> Tensor:
        r"""``add + g J``: :math:`J` the Jacobian of the last hidden activation in the input, ``g`` the gradient
        in that activation."""
        if not saved:
            return g if add is None else add + g
        act_back = self.act_back
        for w, a in zip(reversed(self.weights[1:]), reversed(saved[1:])):
            g = _mm(act_back(g, a), w)
        g = act_back(g, saved[0])
        return _mm(g, self.weights[0]) if add is None else _addmm(add, g, self.weights[0])


def _affine(b: Tensor | None, x: Tensor, w_t: Tensor) -> Tensor:
    r""":math:`x W^\top + b` (``w_t`` is :math:`W^\top`), in one call for a matrix ``x``."""
    if x.dim() == 2 and b is not None and b.dim() == 1:
        return torch.addmm(b, x, w_t)
    return x @ w_t if b is None else x @ w_t + b


def _mm(g: Tensor, w: Tensor) -> Tensor:
    return torch.mm(g, w) if g.dim() == 2 else g @ w


def _addmm(add: Tensor, g: Tensor, w: Tensor) -> Tensor:
    if g.dim() == 2 and add.shape == (g.shape[0], w.shape[1]):
        return torch.addmm(add, g, w)
    return add + g @ w


def _relu_back(g: Tensor, a: Tensor) -> Tensor:
    return _threshold_back(g, a, 0)


def _leaky_back(g: Tensor, a: Tensor, slope: float) -> Tensor:
    return torch.ops.aten.leaky_relu_backward.default(g, a, slope, False)


def _tanh_back(g: Tensor, a: Tensor) -> Tensor:
    return torch.ops.aten.tanh_backward(g, torch.tanh(a))


def _silu_back(g: Tensor, a: Tensor) -> Tensor:
    return torch.ops.aten.silu_backward(g, a)


def _weight(layer: nn.Linear) -> Tensor:
    return (layer.masked_weight() if isinstance(layer, MaskedLinear) else layer.weight).detach()


class _Step:
    r"""One layer of a flow in the data-to-base direction.

    ``forward(x, grad) -> (u, ld, elementwise, saved)``: the output, :math:`\log|\det \partial u/\partial x|`
    (per entry of ``u`` when ``elementwise``, else per batch entry) and what the backward pass needs;
    ``backward(saved, gu) -> gx``: the gradient of :math:`\sum \log p` in ``x``, given the one in ``u`` (the
    log-determinant enters with weight 1).
    """

    def forward(self, x: Tensor, grad: bool) -> tuple[Tensor, Tensor, bool, Any]:
        raise NotImplementedError

    def backward(self, saved: Any, gu: Tensor) -> Tensor:
        raise NotImplementedError


class _ConditionerStep(_Step):
    r"""An autoregressive (MADE) or coupling layer with an affine or additive map, differentiated by hand.

    MADE (MAF orientation): :math:`u = x e^{s(x)} + m(x)`, :math:`\log|\det| = \sum_i s_i`.
    Coupling: :math:`u_b = (x_b - m(x_a)) e^{-s(x_a)}`, :math:`u_a = x_a`, :math:`\log|\det| = -\sum_i s_i`.
    The log-scale is soft-clamped as :class:`~gendist.flows.univariate.Affine` does,
    :math:`s = 2a\,\sigma(r') - a` with :math:`r' = 2 r / a`: the factor :math:`2/a` is folded into the
    last layer's log-scale rows, and :math:`ds/dr' = 2a\,\sigma'(r')` into their backward copy.
    """

    def __init__(self, net: nn.Module, univariate: Any, c: Tensor | None, n: int,
                 idx: tuple[Tensor, Tensor] | None) -> None:
        self.affine = isinstance(univariate, Affine)
        self.n = n  # the transformed features
        self.idx = idx  # (idx_a, idx_b) for a coupling layer, None for an autoregressive one
        self.net = _Net(net, c)
        last = net.layers[-1]
        w, b = _weight(last), last.bias.detach()
        P = univariate.params
        self.shift_w = w[0::P].contiguous()  # the MADE/MLP output is (features, params), flattened
        self.shift_w_t = self.shift_w.t()
        self.shift_b = b[0::P].contiguous()
        self.offset = None
        if net.context is not None and len(net.layers) == 1:  # the context enters the only layer
            self.offset = F.linear(c.detach(), net.context.weight.detach())
            self.shift_b = self.offset[..., 0::P] + self.shift_b
        if not self.affine:
            return
        a = univariate.max_log_scale
        self.a = a
        self.scale_w = (w[1::P] * (2 / a)).contiguous()
        self.scale_w_t = self.scale_w.t()
        self.scale_b = b[1::P] * (2 / a)
        if self.offset is not None:
            self.scale_b = self.offset[..., 1::P] * (2 / a) + self.scale_b
        self.scale_w_back = self.scale_w * (2 * a)
        self.minus_a = torch.tensor(-a, dtype=w.dtype, device=w.device)
        self.one = torch.ones((), dtype=w.dtype, device=w.device)

    def forward(self, x: Tensor, grad: bool) -> tuple[Tensor, Tensor, bool, Any]:
        idx = self.idx
        xa, xb = (x, x) if idx is None else (x.index_select(-1, idx[0]), x.index_select(-1, idx[1]))
        h, hidden = self.net.forward(xa)
        m = _affine(self.shift_b, h, self.shift_w_t)
        if not self.affine:  # additive: u = x + m (autoregressive), u_b = x_b - m (coupling); log|det| = 0
            ub = xb + m if idx is None else xb - m
            u = ub if idx is None else _put(x, idx[1], ub)
            return u, u.new_zeros(()), False, (hidden,) if grad else None
        sg = torch.sigmoid(_affine(self.scale_b, h, self.scale_w_t))
        s = torch.add(self.minus_a, sg, alpha=2 * self.a)
        if idx is None:
            es = torch.exp(s)
            u = torch.addcmul(m, xb, es)
            return u, s, True, (hidden, xb, u, sg, es) if grad else None
        es = torch.exp(-s)
        ub = (xb - m) * es
        return _put(x, idx[1], ub), -s.sum(-1), False, (hidden, xb, ub, sg, es) if grad else None

    def backward(self, saved: Any, gu: Tensor) -> Tensor:
        idx, net = self.idx, self.net
        hidden = saved[0]
        gub = gu if idx is None else gu.index_select(-1, idx[1])
        if not self.affine:
            if idx is None:
                return net.backward(hidden, _mm(gub, self.shift_w), gub)
            return gu.index_add(-1, idx[0], net.backward(hidden, _mm(-gub, self.shift_w), None))
        _, xb, ub, sg, es = saved
        gxb = gub * es
        if idx is None:  # u = x e^s + m: du/dm = 1, du/ds = x e^s, dld/ds = 1
            gs = torch.addcmul(self.one, gxb, xb)
            gm = gub
        else:  # u = (x - m) e^{-s}: du/dm = -e^{-s}, du/ds = -u, dld/ds = -1
            gs = torch.addcmul(-self.one, gub, ub, value=-1)
            gm = -gxb
        gr = _sigmoid_back(gs, sg)  # times 2a: folded into scale_w_back
        gh = _addmm(_mm(gm, self.shift_w), gr, self.scale_w_back)
        if idx is None:
            return net.backward(hidden, gh, gxb)
        return _put(gu, idx[1], gxb).index_add(-1, idx[0], net.backward(hidden, gh, None))


class _MADEAffineReLU(_ConditionerStep):
    r"""The common case of :class:`_ConditionerStep`, written tight: an unconditional MADE with ReLU hidden
    layers and an affine map, on matrices (the dispatch of each tensor operation is most of the cost here)."""

    def __init__(self, net: nn.Module, univariate: Any, n: int) -> None:
        super().__init__(net, univariate, None, n, None)
        self.layers = list(zip(self.net.w_t, self.net.biases))
        self.w_back = list(reversed(self.net.weights[1:]))
        self.w0 = self.net.weights[0]
        self.two_a = 2 * self.a

    def forward(self, x: Tensor, grad: bool) -> tuple[Tensor, Tensor, bool, Any]:
        hs = []
        h = x
        for w_t, b in self.layers:
            h = torch.addmm(b, h, w_t).relu_()
            hs.append(h)
        m = torch.addmm(self.shift_b, h, self.shift_w_t)
        sg = torch.addmm(self.scale_b, h, self.scale_w_t).sigmoid_()
        s = torch.add(self.minus_a, sg, alpha=self.two_a)
        es = s.exp()
        return torch.addcmul(m, x, es), s, True, (hs, x, sg, es)

    def backward(self, saved: Any, gu: Tensor) -> Tensor:
        hs, x, sg, es = saved
        gxb = gu * es
        gr = _sigmoid_back(torch.addcmul(self.one, gxb, x), sg)
        g = torch.addmm(torch.mm(gu, self.shift_w), gr, self.scale_w_back)
        for w, h in zip(self.w_back, reversed(hs[1:])):  # ReLU's derivative read off its output
            g = torch.mm(_threshold_back(g, h, 0), w)
        return torch.addmm(gxb, _threshold_back(g, hs[0], 0), self.w0)


def _put(x: Tensor, idx: Tensor, values: Tensor) -> Tensor:
    if values.shape[:-1] != x.shape[:-1]:
        x = x.expand(values.shape[:-1] + x.shape[-1:])
    return x.index_copy(-1, idx, values)


class _GenericStep(_Step):
    r"""Transforms without a hand-written backward (base-to-data ``parts``), inverted together and
    differentiated by autograd locally."""

    def __init__(self, parts: Sequence[_TorchTransform], event_dim: int) -> None:
        self.parts = list(parts)
        self.t = Compose(self.parts)
        self.extra = event_dim - self.t.codomain.event_dim

    def _run(self, x: Tensor) -> tuple[Tensor, Tensor]:
        u, ladj = inv_and_ladj(self.t, x)
        return u, -_sum_rightmost(ladj, self.extra)

    def forward(self, x: Tensor, grad: bool) -> tuple[Tensor, Tensor, bool, Any]:
        if not grad:
            u, ld = self._run(x)
            return u, ld, False, None
        with torch.enable_grad():
            leaf = x.detach().requires_grad_(True)
            u, ld = self._run(leaf)
        return u.detach(), ld.detach(), False, (leaf, u, ld)

    def backward(self, saved: Any, gu: Tensor) -> Tensor:
        leaf, u, ld = saved
        outs, grads = [u], [gu]
        if ld.requires_grad:
            outs.append(ld)
            grads.append(torch.ones_like(ld))
        (g,) = torch.autograd.grad(outs, [leaf], grads, allow_unused=True)
        return torch.zeros_like(leaf) if g is None else g


class _StandardNormal:
    r""":math:`\log N(u; 0, I) + \sum_i S_i` (``S`` the elementwise log-determinants) and its gradient
    :math:`-u`."""

    def __init__(self, d: int) -> None:
        self.const = 0.5 * d * math.log(2 * math.pi)

    def forward(self, u: Tensor, S: Tensor | None, grad: bool) -> tuple[Tensor, Any]:
        if S is None:
            return (u * u).sum(-1) * -0.5 - self.const, None
        return torch.addcmul(S, u, u, value=-0.5).sum(-1) - self.const, None

    def backward(self, saved: Any, u: Tensor) -> Tensor:
        return -u


class _GenericBase:
    def __init__(self, base: Distribution, event_dim: int) -> None:
        self.base, self.extra = base, event_dim - len(base.event_shape)

    def _run(self, u: Tensor) -> Tensor:
        return _sum_rightmost(self.base.log_prob(u), self.extra)

    def forward(self, u: Tensor, S: Tensor | None, grad: bool) -> tuple[Tensor, Any]:
        if not grad:
            lp = self._run(u)
            return (lp if S is None else lp + S.sum(-1)), None
        with torch.enable_grad():
            leaf = u.detach().requires_grad_(True)
            lp = self._run(leaf)
        return (lp.detach() if S is None else lp.detach() + S.sum(-1)), (leaf, lp)

    def backward(self, saved: Any, u: Tensor) -> Tensor:
        leaf, lp = saved
        if not lp.requires_grad:
            return torch.zeros_like(leaf)
        return torch.autograd.grad(lp, leaf, torch.ones_like(lp))[0]


class FusedFlow:
    r"""A compiled frozen flow: ``value_and_grad(x)`` gives :math:`\log p(x)` and, if asked, the gradient of
    its sum in ``x`` (at the broadcast shape of ``x`` and the flow's batch: each entry's own gradient).

    ``hand_written`` counts the layers differentiated by hand, ``generic`` those left to autograd.
    """

    def __init__(self, steps: list[_Step], base: Any, batch_shape: torch.Size, event_shape: torch.Size) -> None:
        self.steps, self.base = steps, base
        self.batch_shape, self.event_shape = batch_shape, event_shape
        self.hand_written = sum(isinstance(s, _ConditionerStep) for s in steps)  # _MADEAffineReLU included
        self.generic = sum(len(s.parts) for s in steps if isinstance(s, _GenericStep))

    def value_and_grad(self, x: Tensor, grad: bool = True) -> tuple[Tensor, Tensor | None]:
        shape = None
        if self.batch_shape:
            x = x.expand(torch.broadcast_shapes(x.shape[:-1], self.batch_shape) + x.shape[-1:])
        elif x.dim() != 2:  # matrices throughout: one addmm per layer
            shape = x.shape
            x = x.reshape(-1, shape[-1])
        tape = []
        S: Tensor | None = None  # elementwise log-determinants, summed at the end
        total: Tensor | None = None
        u = x
        for step in self.steps:
            u, ld, elementwise, saved = step.forward(u, grad)
            tape.append(saved)
            if elementwise:
                S = ld if S is None else S + ld
            else:
                total = ld if total is None else total + ld
        lp, saved_base = self.base.forward(u, S, grad)
        if total is not None:
            lp = lp + total
        if not grad:
            return (lp, None) if shape is None else (lp.reshape(shape[:-1]), None)
        g = self.base.backward(saved_base, u)
        for step, saved in zip(reversed(self.steps), reversed(tape)):
            g = step.backward(saved, g)
        return (lp, g) if shape is None else (lp.reshape(shape[:-1]), g.reshape(shape))


class _FusedLogProb(torch.autograd.Function):
    r"""One autograd node: the log-density, with its gradient in the value computed in the forward pass."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, fused: FusedFlow) -> Tensor:
        lp, g = fused.value_and_grad(x)
        ctx.save_for_backward(g)
        ctx.shape = x.shape
        return lp

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        (g,) = ctx.saved_tensors
        g = g * grad.unsqueeze(-1)
        if g.shape != ctx.shape:
            g = g.sum_to_size(ctx.shape)
        return g, None


def fused_log_prob(fused: FusedFlow, x: Tensor) -> Tensor:
    r""":math:`\log p(x)` of a compiled flow, differentiable in ``x`` (once) when ``x`` requires a gradient."""
    if x.requires_grad and torch.is_grad_enabled():
        return _FusedLogProb.apply(x, fused)
    with torch.no_grad():
        return fused.value_and_grad(x, grad=False)[0]


def _device(module: nn.Module) -> torch.device:
    for t in module.parameters():
        return t.device
    return torch.device("cpu")


def _conditioner_step(t: _TorchTransform, flat: bool) -> _ConditionerStep | None:
    r"""A hand-written step for ``t`` (a base-to-data transform of the flow), or None; ``flat``: the flow has no
    batch shape, so values reach it as matrices."""
    if isinstance(t, Inverse) and isinstance(t._inv, Autoregressive):  # MAF orientation: the data-to-base pass
        meta = t._inv.meta
        made, univariate = getattr(meta, "made", None), getattr(meta, "univariate", None)
        if (isinstance(made, MaskedMLP) and made.direct is None and made.orders == 1 and made.inputs == 1
                and isinstance(univariate, (Affine, Additive)) and isinstance(made.activation, _ACTIVATIONS)):
            if (flat and meta.c is None and isinstance(univariate, Affine) and isinstance(made.activation, nn.ReLU)
                    and len(made.layers) > 1):
                return _MADEAffineReLU(made, univariate, made.features)
            return _ConditionerStep(made, univariate, meta.c, made.features, None)
    if isinstance(t, Coupling):  # the log-density inverts it: one pass
        meta = t.meta
        net, univariate = getattr(meta, "net", None), getattr(meta, "univariate", None)
        if (isinstance(net, nn.Module) and hasattr(net, "layers") and isinstance(univariate, (Affine, Additive))
                and isinstance(getattr(net, "activation", None), _ACTIVATIONS)
                and not any(isinstance(layer, MaskedLinear) for layer in net.layers)):
            return _ConditionerStep(net, univariate, meta.c, len(t.idx_b), (t.idx_a, t.idx_b))
    return None


def compile_flow(d: Flow) -> FusedFlow | None:
    r"""Read a built flow over vectors into a :class:`FusedFlow`; None if it is not one (then use ``d.log_prob``).

    Its weights are read now: compile again after changing them.

    Example:
        >>> from gendist.flows import MAF
        >>> d = MAF(2, transforms=2, hidden=(8,))()
        >>> fused = compile_flow(d)
        >>> x = torch.randn(3, 2)
        >>> lp, grad = fused.value_and_grad(x)
        >>> fused.hand_written, bool(torch.allclose(lp, d.log_prob(x), atol=1e-5)), grad.shape
        (2, True, torch.Size([3, 2]))
    """
    if not isinstance(d, Flow) or len(d.event_shape) != 1 or len(d.base_dist.event_shape) != 1:
        return None
    steps: list[_Step] = []
    pending: list[_TorchTransform] = []
    for t in reversed(d.transforms):  # data to base
        step = _conditioner_step(t, not d.batch_shape)
        if step is None:
            pending.insert(0, t)
            continue
        if pending:
            steps.append(_GenericStep(pending, 1))
            pending = []
        steps.append(step)
    if pending:
        steps.append(_GenericStep(pending, 1))
    base = d.base_dist
    inner, dims = base, 0
    while isinstance(inner, Independent):
        dims += inner.reinterpreted_batch_ndims
        inner = inner.base_dist
    standard = (isinstance(inner, Normal) and dims == 1 and bool((inner.loc == 0).all())
                and bool((inner.scale == 1).all()))
    head = _StandardNormal(d.base_dist.event_shape[0]) if standard else _GenericBase(base, 1)
    return FusedFlow(steps, head, d.batch_shape, d.event_shape)
