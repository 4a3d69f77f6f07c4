r"""Vector quantization: a codebook, nearest-code assignment, EMA updates and dead-code restarts (VQ-VAE)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch import Tensor

from gendist._checks import check_integer

__all__ = ["VectorQuantizer"]


class VectorQuantizer(nn.Module):
    r"""A codebook :math:`e_1, \dots, e_K \in \mathbb{R}^d` that replaces every vector of a grid by its nearest code.

    For encoder outputs :math:`z_e` (channel first, ``(N, d, *grid)``), each
    grid vector gets the index :math:`k = \arg\min_j \|z_e - e_j\|^2` and the
    value :math:`z_q = e_k`. The forward pass returns the straight-through
    value :math:`z_e + \mathrm{sg}(z_q - z_e)` (equal to :math:`z_q`; the
    gradient of :math:`z_q` is copied to :math:`z_e`) and the loss

    .. math:: \beta\, \|z_e - \mathrm{sg}(e_k)\|^2 \; \big[+\, \|\mathrm{sg}(z_e) - e_k\|^2
        \text{ without EMA}\big],

    summed over the grid and the :math:`d` dimensions, averaged over the
    :math:`N` examples (the scale of a per-example negative log-likelihood).

    With ``ema=True`` the codebook is not trained by gradients: in training
    mode every forward pass updates, with :math:`n_j` the number of vectors
    assigned to code :math:`j` and :math:`s_j` their sum,

    .. math:: N_j \leftarrow \gamma N_j + (1 - \gamma) n_j, \quad m_j \leftarrow \gamma m_j + (1 - \gamma) s_j,
        \quad e_j = m_j / \tilde N_j, \quad \tilde N_j = \frac{N_j + \epsilon}{\sum_i N_i + K \epsilon}
        \sum_i N_i

    (:math:`\gamma` = ``decay``; :math:`\tilde N` is Laplace smoothing). The
    returned :math:`z_q` uses the codebook from before the update. Without
    EMA the codebook is a parameter trained by the loss's second term; the
    counts :math:`N_j` are kept all the same (for restarts and :meth:`usage`).

    Dead-code restarts (``restart=True``, training mode only): after the
    update, every code whose average count :math:`N_j` is below ``threshold``
    (encoder outputs per batch) is moved onto an encoder output of the
    current batch, drawn with probability proportional to its squared
    distance from its (updated) code, as in k-means++ seeding: outputs the
    codebook already represents well are rarely drawn, and outputs that sit
    exactly on a code (repeated vectors, such as the blank background of
    MNIST) never are, so a restarted code does not land on a live one. Draws
    are without replacement where the batch allows. The restarted code's
    statistics start again at :math:`N_j = \text{threshold}`,
    :math:`m_j = \text{threshold} \cdot e_j`; if it then wins fewer than
    ``threshold`` outputs per batch it is restarted again. Counts start at 1,
    so a code that wins nothing in the first batch is restarted at once: the
    codebook starts on the data.

    All of this state lives in buffers, so ``state_dict`` saves and resumes
    it; nothing changes in evaluation mode (as BatchNorm's running statistics).
    :attr:`perplexity` is :math:`\exp(-\sum_j p_j \log p_j)` of the last
    batch's code frequencies :math:`p_j` (:math:`K` when every code is used
    equally, 1 when one code takes all).

    Arguments:
        codes: the codebook size :math:`K`.
        dim: the code dimension :math:`d`.
        decay: the EMA decay :math:`\gamma` of the counts and sums.
        commitment: the commitment weight :math:`\beta`.
        ema: update the codebook by moving averages (True) or by gradients (False).
        restart: restart dead codes (in training mode).
        threshold: the average count per batch below which a code is dead.
        eps: the Laplace smoothing :math:`\epsilon`.

    Example:
        >>> vq = VectorQuantizer(codes=8, dim=4)
        >>> z_q, k, loss = vq(torch.randn(2, 4, 3, 3))
        >>> z_q.shape, k.shape, loss.shape
        (torch.Size([2, 4, 3, 3]), torch.Size([2, 3, 3]), torch.Size([]))
        >>> bool(torch.equal(vq.embed(k), vq.codebook[k].movedim(-1, 1)))
        True

    References:
        | Neural Discrete Representation Learning (van den Oord et al., 2017) https://arxiv.org/abs/1711.00937
        | Generating Diverse High-Fidelity Images with VQ-VAE-2 (Razavi et al., 2019) https://arxiv.org/abs/1906.00446
        | Jukebox: A Generative Model for Music (Dhariwal et al., 2020) https://arxiv.org/abs/2005.00341
    """

    def __init__(
        self,
        codes: int,
        dim: int,
        decay: float = 0.99,
        commitment: float = 0.25,
        ema: bool = True,
        restart: bool = True,
        threshold: float = 1.0,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.codes = check_integer("codes", codes, 1)
        self.dim = check_integer("dim", dim, 1)
        for name, value, low, high in (
            ("decay", decay, 0.0, 1.0),
            ("commitment", commitment, 0.0, math.inf),
            ("threshold", threshold, 0.0, math.inf),
            ("eps", eps, 0.0, math.inf),
        ):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value < high
            if not ok:
                raise ValueError(f"{name} must be a number in [{low}, {high}), got {value!r}")
        self.decay, self.commitment = float(decay), float(commitment)
        self.threshold, self.eps = float(threshold), float(eps)
        self.ema, self.restart = bool(ema), bool(restart)
        init = torch.randn(self.codes, self.dim)
        if self.ema:
            self.register_buffer("codebook", init)
            self.register_buffer("cluster_sum", init.clone())  # m_j (N_j = 1 at the start)
        else:
            self.codebook = nn.Parameter(init)
        self.register_buffer("cluster_size", torch.ones(self.codes))  # N_j: the EMA of the counts per batch
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))  # training batches seen
        self.register_buffer("last_used", torch.full((self.codes,), -1, dtype=torch.long))  # step of last win
        self.register_buffer("perplexity", torch.ones(()), persistent=False)

    def extra_repr(self) -> str:
        return f"codes={self.codes}, dim={self.dim}, ema={self.ema}, restart={self.restart}"

    def _check(self, z: Tensor, where: str) -> None:
        if not isinstance(z, Tensor) or not z.dtype.is_floating_point:
            raise TypeError(f"{where}: `z_e` must be a floating-point tensor, got {getattr(z, 'dtype', type(z))}")
        if z.dim() < 2 or z.shape[1] != self.dim:
            raise ValueError(f"{where}: `z_e` must have shape (N, {self.dim}, *grid), got {tuple(z.shape)}")
        if z.dtype != self.codebook.dtype:
            raise TypeError(f"{where}: `z_e` has dtype {z.dtype} but the codebook is {self.codebook.dtype}")

    @staticmethod
    def _flat(z: Tensor) -> Tensor:
        return z.movedim(1, -1).reshape(-1, z.shape[1])

    @torch.no_grad()
    def nearest(self, z_e: Tensor) -> Tensor:
        r"""The index of the nearest code of every grid vector, ``(N, *grid)`` (no state changes)."""
        self._check(z_e, "VectorQuantizer.nearest")
        flat = self._flat(z_e)
        e = self.codebook.detach()
        distance = flat.pow(2).sum(-1, keepdim=True) - 2 * flat @ e.T + e.pow(2).sum(-1)
        return distance.argmin(-1).reshape(z_e.shape[:1] + z_e.shape[2:])

    def embed(self, indices: Tensor) -> Tensor:
        r"""The codes of ``indices`` ``(N, *grid)`` as a channel-first grid ``(N, dim, *grid)``."""
        if not isinstance(indices, Tensor) or indices.dtype.is_floating_point or indices.dtype == torch.bool:
            raise TypeError(f"embed: `indices` must be an integer tensor, got {getattr(indices, 'dtype', indices)}")
        if indices.dim() < 1:
            raise ValueError("embed: `indices` must have shape (N, *grid), got a scalar")
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.codes):
            raise ValueError(
                f"embed: `indices` must lie in 0..{self.codes - 1}, got values from {int(indices.min())} to "
                f"{int(indices.max())}"
            )
        return self.codebook[indices.long()].movedim(-1, 1)

    def forward(self, z_e: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        r"""Quantize ``z_e`` ``(N, dim, *grid)``: the straight-through :math:`z_q`, the indices and the loss.

        In training mode this also updates the EMA statistics and restarts dead codes.
        """
        indices = self.nearest(z_e)
        z_q = self.embed(indices)
        loss = self.commitment * (z_e - z_q.detach()).pow(2).sum() / z_e.shape[0]
        if not self.ema:
            loss = loss + (z_e.detach() - z_q).pow(2).sum() / z_e.shape[0]
        counts = torch.bincount(indices.flatten(), minlength=self.codes).to(z_e.dtype)
        with torch.no_grad():
            p = counts / counts.sum().clamp_min(1)
            self.perplexity = torch.exp(-(p * p.clamp_min(1e-30).log()).sum())
            if self.training:
                self._update(self._flat(z_e.detach()), indices.flatten(), counts)
        return z_e + (z_q - z_e).detach(), indices, loss

    @torch.no_grad()
    def _update(self, flat: Tensor, indices: Tensor, counts: Tensor) -> None:
        self.steps += 1
        self.last_used[counts > 0] = self.steps
        g = self.decay
        self.cluster_size.mul_(g).add_(counts, alpha=1 - g)
        if self.ema:
            sums = torch.zeros_like(self.cluster_sum).index_add_(0, indices, flat)
            self.cluster_sum.mul_(g).add_(sums, alpha=1 - g)
            total = self.cluster_size.sum()
            smoothed = (self.cluster_size + self.eps) / (total + self.codes * self.eps) * total
            self.codebook.copy_(self.cluster_sum / smoothed.unsqueeze(-1))
        if self.restart:
            self._restart(flat, indices)

    @torch.no_grad()
    def _restart(self, flat: Tensor, indices: Tensor) -> None:
        dead = (self.cluster_size < self.threshold).nonzero().flatten()
        if not len(dead) or not len(flat):
            return
        weight = (flat - self.codebook[indices]).pow(2).sum(-1)  # k-means++: far from every code is likely
        if int((weight > 0).sum()) >= len(dead):
            pick = torch.multinomial(weight, len(dead))
        elif bool(weight.sum() > 0):
            pick = torch.multinomial(weight, len(dead), replacement=True)
        else:  # every output sits on a code: any will do
            pick = torch.randint(len(flat), (len(dead),), device=flat.device)
        fresh = flat[pick].to(self.codebook.dtype)
        self.codebook.data[dead] = fresh
        self.cluster_size[dead] = self.threshold
        if self.ema:
            self.cluster_sum[dead] = fresh * self.threshold

    def usage(self, window: int = 100) -> float:
        r"""The fraction of codes that won at least one vector in the last ``window`` training batches."""
        window = check_integer("window", window, 1)
        used = (self.last_used >= 0) & (self.steps - self.last_used < window)
        return float(used.float().mean())
