r"""Classifier two-sample test (C2ST; Lopez-Paz and Oquab, 2017).

A classifier learns to tell ``x`` (label 1) from ``y`` (label 0); its held-out
accuracy under stratified :math:`k`-fold cross-validation is the statistic: 0.5 when
the two samples are indistinguishable to it, up to 1 when they are disjoint. Unlike
kernel distances on a few hundred points in tens of dimensions, it learns which
directions differ, so it keeps its power there.

The classifier is a small MLP (two ``tanh`` hidden layers) trained full-batch with
Adam and weight decay on the features standardized with the training fold's
statistics, together with their squares (so that a difference of scale is as easy
to see as a shift).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from gendist.metrics.two_sample import TestResult, _generator, _pair

__all__ = ["classifier_two_sample_test"]


def _binomial_sf(k: int, n: int) -> float:
    r"""Exact :math:`P(K \ge k)` for :math:`K \sim \mathrm{Binomial}(n, 1/2)`."""
    return sum(math.comb(n, i) for i in range(k, n + 1)) / 2**n


def _mlp(dim: int, hidden: int, generator: torch.Generator) -> list[Tensor]:
    r"""Parameters of a ``dim -> hidden -> hidden -> 1`` MLP, Glorot-uniform initialized."""
    params = []
    for fan_in, fan_out in ((dim, hidden), (hidden, hidden), (hidden, 1)):
        bound = math.sqrt(6 / (fan_in + fan_out))
        params.append((torch.rand(fan_in, fan_out, generator=generator) * 2 - 1) * bound)
        params.append(torch.zeros(fan_out))
    return params


def _features(z: Tensor) -> Tensor:
    r"""The standardized features and their centred squares :math:`(z, (z^2 - 1)/\sqrt{2})`.

    The squares let the first layer read off scale differences (a norm) linearly,
    which a small MLP on :math:`z` alone learns poorly from a few hundred points.
    """
    return torch.cat([z, (z.square() - 1) / math.sqrt(2)], dim=-1)


def _logits(params: list[Tensor], x: Tensor) -> Tensor:
    w1, b1, w2, b2, w3, b3 = params
    h = torch.tanh(x @ w1 + b1)
    h = torch.tanh(h @ w2 + b2)
    return (h @ w3 + b3).squeeze(-1)


def _c2st(
    x: Tensor, y: Tensor, folds: int, hidden: int, steps: int, lr: float, weight_decay: float, g: torch.Generator
) -> tuple[int, int]:
    r"""Held-out correct predictions and their number, for equal-sized float32 ``x`` and ``y``."""
    n = x.shape[0]
    folds = max(2, min(folds, n))
    # stratified folds: each fold holds the same share of x and of y
    ix, iy = torch.randperm(n, generator=g), torch.randperm(n, generator=g)
    fold_of = torch.arange(n) % folds
    z = torch.cat([x, y])
    labels = torch.cat([torch.ones(n), torch.zeros(n)]).to(z)
    fold = torch.empty(2 * n, dtype=torch.long)
    fold[ix] = fold_of
    fold[n + iy] = fold_of
    fold = fold.to(z.device)
    correct = total = 0
    for f in range(folds):
        train, test = fold != f, fold == f
        mean, std = z[train].mean(0), z[train].std(0).clamp_min(1e-8)
        ztr, zte = _features((z[train] - mean) / std), _features((z[test] - mean) / std)
        params = [p.to(z).requires_grad_() for p in _mlp(ztr.shape[1], hidden, g)]
        opt = torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
        with torch.enable_grad():
            for _ in range(steps):
                loss = torch.nn.functional.binary_cross_entropy_with_logits(_logits(params, ztr), labels[train])
                opt.zero_grad()
                loss.backward()
                opt.step()
        with torch.no_grad():
            pred = (_logits(params, zte) > 0).to(z)
        correct += int((pred == labels[test]).sum().item())
        total += int(test.sum().item())
    return correct, total


def classifier_two_sample_test(
    x: Tensor,
    y: Tensor,
    folds: int = 5,
    hidden: int = 64,
    steps: int = 300,
    lr: float = 3e-3,
    weight_decay: float = 1e-2,
    floor: bool = False,
    generator: torch.Generator | None = None,
) -> TestResult:
    r"""Classifier two-sample test: held-out accuracy of an MLP telling ``x`` from ``y``.

    The larger sample is first subsampled (at random) to the size :math:`n` of the
    smaller, so that chance level is exactly 0.5. Under :math:`H_0: P_x = P_y` the
    number :math:`K` of correct held-out predictions out of :math:`2n` is close to
    :math:`\mathrm{Binomial}(2n, 1/2)`, and the p-value is the one-sided

    .. math:: p = P(K' \ge K), \qquad K' \sim \mathrm{Binomial}(2n, 1/2)

    (approximate, and somewhat liberal: predictions of one fold share a classifier and
    the folds share training points, so they are not quite independent; for a strict
    test, compare with ``floor`` or repeat over generators).

    Arguments:
        x: The first sample, shape ``(N, ...)`` (e.g. real data).
        y: The second sample, shape ``(M, ...)`` (e.g. model samples).
        folds: The number :math:`k` of cross-validation folds.
        hidden: The width of the MLP's two hidden layers.
        steps: The number of full-batch Adam steps per fold.
        lr: Adam's learning rate.
        weight_decay: Adam's (L2) weight decay.
        floor: Also run the same test between two random halves of ``x`` and return its
            accuracy as ``floor``: what two samples of the same distribution score at
            (half) this size.
        generator: The random generator of the subsampling, folds, initializations and
            halves; default: a fresh one seeded with 0. The result is deterministic given it.

    Returns:
        A :class:`TestResult` with the held-out accuracy, the binomial p-value and the
        real-vs-real accuracy (``None`` unless ``floor``).

    Raises:
        ValueError: If a sample has fewer than 2 points (4 for ``floor``) or NaN/inf, or
            the dimensions differ.

    Example:
        >>> x = torch.randn(200, 4)
        >>> r = classifier_two_sample_test(x, 2.0 * torch.randn(200, 4), steps=150, floor=True)
        >>> r.statistic > 0.7, r.p_value < 1e-6, abs(r.floor - 0.5) < 0.15
        (True, True, True)
    """
    x, y = _pair(x, y)
    if floor and x.shape[0] < 4:
        raise ValueError(f"x needs at least 4 samples for floor=True, got {x.shape[0]}")
    g = _generator(generator)
    x, y = x.float(), y.float()
    n = min(x.shape[0], y.shape[0])
    xs = x[torch.randperm(x.shape[0], generator=g)[:n].to(x.device)] if x.shape[0] > n else x
    ys = y[torch.randperm(y.shape[0], generator=g)[:n].to(y.device)] if y.shape[0] > n else y
    correct, total = _c2st(xs, ys, folds, hidden, steps, lr, weight_decay, g)
    base = None
    if floor:
        perm = torch.randperm(x.shape[0], generator=g).to(x.device)
        half = x.shape[0] // 2
        c, t = _c2st(x[perm[:half]], x[perm[half : 2 * half]], folds, hidden, steps, lr, weight_decay, g)
        base = c / t
    return TestResult(correct / total, _binomial_sf(correct, total), base)
