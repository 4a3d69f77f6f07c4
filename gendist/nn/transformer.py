r"""A small decoder-only causal transformer over a sequence, with a key/value cache for sampling."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor

from gendist._checks import check_integer

__all__ = ["CausalTransformer", "KVCache"]


class KVCache:
    r"""The keys and values of the positions a :class:`CausalTransformer` has been fed, layer by layer.

    Built by :meth:`CausalTransformer.init_cache`. Without autograd recording it
    writes into buffers allocated once for the whole sequence; with autograd
    recording (reparameterized sampling) it concatenates, so no tensor autograd
    saved is overwritten.

    Attributes:
        length: how many positions are cached (the next :meth:`CausalTransformer.step` outputs position ``length``).
        bias: the context's projection added to every token, ``(n, d_model)``, or None.
    """

    def __init__(self, n: int, layers: int, heads: int, size: int, dim: int, like: Tensor, bias: Tensor | None) -> None:
        self.n, self.size, self.length, self.bias = n, size, 0, bias
        self.grows = torch.is_grad_enabled()
        if self.grows:
            self.keys: list[Tensor | None] = [None] * layers
            self.values: list[Tensor | None] = [None] * layers
        else:
            self.keys = [like.new_zeros(n, heads, size, dim) for _ in range(layers)]
            self.values = [like.new_zeros(n, heads, size, dim) for _ in range(layers)]

    def append(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        r"""Add the newest position's ``k``, ``v`` (``(n, heads, 1, dim)``) to ``layer``; all of its keys and values."""
        t = self.length
        if self.grows:
            old_k, old_v = self.keys[layer], self.values[layer]
            self.keys[layer] = k if old_k is None else torch.cat([old_k, k], 2)
            self.values[layer] = v if old_v is None else torch.cat([old_v, v], 2)
            return self.keys[layer], self.values[layer]
        self.keys[layer][:, :, t : t + 1] = k
        self.values[layer][:, :, t : t + 1] = v
        return self.keys[layer][:, :, : t + 1], self.values[layer][:, :, : t + 1]


class _Block(nn.Module):
    r"""A pre-LayerNorm block: :math:`z + \mathrm{Attn}(\mathrm{LN}(z))`, then the same with a perceptron."""

    def __init__(self, d_model: int, heads: int, expansion: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm1 = nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.mlp = nn.Sequential(
            nn.Linear(d_model, expansion * d_model), nn.GELU(), nn.Linear(expansion * d_model, d_model)
        )
        self.drop = nn.Dropout(dropout)

    def attend(self, z: Tensor, cache: KVCache | None = None, layer: int = 0) -> Tensor:
        qkv = rearrange(self.qkv(self.norm1(z)), "n t (three h d) -> three n h t d", three=3, h=self.heads)
        q, k, v = qkv.unbind(0)
        p = self.dropout if self.training else 0.0
        if cache is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:  # one new query attends to every cached position, itself included
            k, v = cache.append(layer, k, v)
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        return self.drop(self.proj(rearrange(y, "n h t d -> n t (h d)")))

    def forward(self, z: Tensor, cache: KVCache | None = None, layer: int = 0) -> Tensor:
        z = z + self.attend(z, cache, layer)
        return z + self.drop(self.mlp(self.norm2(z)))


class CausalTransformer(nn.Module):
    r"""A decoder-only causal transformer: the outputs of position :math:`t` see only positions :math:`< t`.

    .. math:: z^0_t = \begin{cases} s & t = 0 \\ E\, x_{t-1} + e & t > 0 \end{cases}
        \; + \; p_t + A\,c, \qquad
        \theta_t = O\, \mathrm{LN}(z^L_t) + o

    with a learned start token :math:`s`, learned positional embeddings
    :math:`p_t`, an optional context projection :math:`A c` (a bias of every
    token, the start token included), and :math:`L` pre-LayerNorm blocks of
    causal multi-head self-attention and a perceptron. Shifting the input right
    by one position makes the usual causal mask (position :math:`t` attends to
    :math:`\le t`) autoregressive: :math:`\theta_t` depends on :math:`x_{<t}` only.

    :meth:`forward` computes all :math:`T` positions in one pass
    (:math:`O(T^2)` attention). For sampling, :meth:`init_cache` and
    :meth:`step` feed one value at a time, keeping every layer's keys and
    values: step :math:`t` costs :math:`O(t)` instead of a full pass.

    Arguments:
        length: the sequence length :math:`T`.
        inputs: the number of input values :math:`E` per position.
        params: the number of outputs :math:`P` per position.
        d_model: the width of the residual stream.
        heads: the number of attention heads (dividing ``d_model``).
        layers: the number of blocks.
        context: the context size (0 for none).
        expansion: the perceptron's hidden width as a multiple of ``d_model``.
        dropout: the dropout rate in training mode (0: deterministic).

    Example:
        >>> net = CausalTransformer(6, inputs=1, params=2, d_model=16, heads=2, layers=1)
        >>> x = torch.randn(3, 6, 1)
        >>> theta = net(x)
        >>> cache = net.init_cache(3)
        >>> first = net.step(cache, None)  # position 0: only the start token
        >>> second = net.step(cache, x[:, 0])  # position 1, having seen x_0
        >>> theta.shape, bool(torch.allclose(second, theta[:, 1], atol=1e-5))
        (torch.Size([3, 6, 2]), True)

    References:
        | Attention Is All You Need (Vaswani et al., 2017) https://arxiv.org/abs/1706.03762
        | Language Models are Unsupervised Multitask Learners (Radford et al., 2019; pre-LayerNorm blocks)
    """

    def __init__(
        self,
        length: int,
        inputs: int,
        params: int,
        d_model: int = 64,
        heads: int = 4,
        layers: int = 2,
        context: int = 0,
        expansion: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        length, inputs, params, d_model, heads, layers, expansion = (
            check_integer(k, v, 1) for k, v in (("length", length), ("inputs", inputs), ("params", params),
                                                ("d_model", d_model), ("heads", heads), ("layers", layers),
                                                ("expansion", expansion))
        )
        context = check_integer("context", context, 0)
        if d_model % heads:
            raise ValueError(f"d_model must be a multiple of heads, got d_model={d_model} and heads={heads}")
        if not isinstance(dropout, (int, float)) or isinstance(dropout, bool) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.length, self.inputs, self.params, self.d_model, self.heads = length, inputs, params, d_model, heads
        self.embed = nn.Linear(self.inputs, self.d_model)
        self.start = nn.Parameter(0.02 * torch.randn(self.d_model))
        self.position = nn.Parameter(0.02 * torch.randn(self.length, self.d_model))
        self.context = nn.Linear(context, self.d_model) if context > 0 else None
        self.blocks = nn.ModuleList(_Block(d_model, heads, expansion, float(dropout)) for _ in range(layers))
        self.norm = nn.LayerNorm(self.d_model)
        self.out = nn.Linear(self.d_model, self.params)
        self.drop = nn.Dropout(dropout)

    def _bias(self, c: Tensor | None) -> Tensor | None:
        if self.context is None:
            return None
        if c is None:
            raise ValueError("this CausalTransformer is conditional: it needs a context tensor `c`, got None")
        return self.context(c)

    def forward(self, x: Tensor, c: Tensor | None = None) -> Tensor:
        r"""Every :math:`\theta_t`, ``(*, T, P)``, from ``x`` ``(*, T, E)`` and ``c`` ``(*, context)``."""
        if x.shape[-2:] != (self.length, self.inputs):
            raise ValueError(
                f"CausalTransformer: x must have shape (..., {self.length}, {self.inputs}), got {tuple(x.shape)}"
            )
        batch = x.shape[:-2]
        x = x.reshape((-1, self.length, self.inputs))
        start = self.start.expand(x.shape[0], 1, self.d_model)
        z = torch.cat([start, self.embed(x[:, :-1])], 1) + self.position  # shift right by one
        bias = self._bias(c)
        if bias is not None:
            z = z + bias.expand(batch + (self.d_model,)).reshape(-1, 1, self.d_model)
        z = self.drop(z)
        for block in self.blocks:
            z = block(z)
        return self.out(self.norm(z)).reshape(batch + (self.length, self.params))

    # --- incremental: a key/value cache, O(t) per position -------------------------------------

    def init_cache(self, n: int, c: Tensor | None = None) -> KVCache:
        r"""An empty cache for ``n`` sequences (``c``: ``(n, context)`` or broadcastable)."""
        bias = self._bias(c)
        if bias is not None:
            bias = bias.expand(n, self.d_model)
        dim = self.d_model // self.heads
        return KVCache(n, len(self.blocks), self.heads, self.length, dim, self.start, bias)

    def step(self, cache: KVCache, x: Tensor | None) -> Tensor:
        r""":math:`\theta_t`, ``(n, P)``, of the next position :math:`t` (``cache.length``) given :math:`x_{t-1}`.

        ``x`` is the encoded value of the newest position, ``(n, E)``, or None
        for :math:`t = 0`; its keys and values join the cache.
        """
        t = cache.length
        if t >= self.length:
            raise ValueError(f"CausalTransformer.step: the cache already holds all {self.length} positions")
        if (x is None) != (t == 0):
            raise ValueError(f"CausalTransformer.step: position {t} needs x = the value of position {t - 1}"
                             if t else "CausalTransformer.step: position 0 takes x=None (it sees only the start token)")
        z = self.start.expand(cache.n, self.d_model) if x is None else self.embed(x)
        z = z + self.position[t]
        if cache.bias is not None:
            z = z + cache.bias
        z = self.drop(z).unsqueeze(1)
        for layer, block in enumerate(self.blocks):
            z = block(z, cache, layer)
        cache.length = t + 1
        return self.out(self.norm(z[:, 0]))
