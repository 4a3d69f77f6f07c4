r"""Diagnostic plots of generative models, written as PNG files.

:func:`plot_samples` shows model samples beside real data (image grids, a 2-D scatter, or
pairwise marginals of tabular data), :func:`plot_loss` the training and validation loss,
and :func:`plot_density_2d` a heat map of a 2-D density.

matplotlib is an optional dependency (``pip install matplotlib`` or ``gendist[plot]``),
imported only when a function is called. The figures are drawn with
:class:`matplotlib.figure.Figure` and the Agg canvas directly, never through ``pyplot``,
so the global backend and the pyplot figure registry are left as they are. Each file is
written atomically: to a temporary file in the same folder, then moved onto ``path`` with
:func:`os.replace`, so that an error leaves neither a partial nor a stray file behind.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from gendist.io import atomic_write

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_samples", "plot_loss", "plot_density_2d"]

_REAL_COLOR = "tab:blue"
_FAKE_COLOR = "tab:orange"
_MAX_IMAGES = 64
_MAX_COLUMNS = 6
_MAX_POINTS = 5000  # points drawn per scatter


def _figure(**kwargs: Any) -> Figure:
    r"""A new :class:`~matplotlib.figure.Figure` bound to an Agg canvas, without ``pyplot``.

    Raises:
        ImportError: If matplotlib is not installed.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("gendist.plots needs matplotlib: pip install matplotlib (or gendist[plot])") from e
    fig = Figure(**kwargs)
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike[str]) -> Path:
    r"""Write ``fig`` as a PNG to ``path`` atomically (temporary file in the same folder, then ``os.replace``)."""
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png"))


def _as_2d(x: Tensor, name: str) -> Tensor:
    r"""``x`` detached, on the CPU, as a float64 ``(N, D)`` tensor (a 1-D tensor is one column)."""
    x = torch.as_tensor(x).detach().cpu().double()
    if x.dim() == 1:
        x = x[:, None]
    if x.dim() != 2:
        x = x.reshape(x.shape[0], -1)
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    return x


def _limits(*xs: Tensor, margin: float = 0.05) -> list[tuple[float, float]]:
    r"""Per-column ``(low, high)`` over the finite values of all ``xs``, widened by ``margin`` of the range."""
    x = torch.cat(xs)
    out = []
    for col in x.T:
        col = col[torch.isfinite(col)]
        lo, hi = (col.min().item(), col.max().item()) if col.numel() else (-1.0, 1.0)
        pad = margin * (hi - lo) if hi > lo else 0.5
        out.append((lo - pad, hi + pad))
    return out


def _image_grid(x: Tensor, shape: tuple[int, int]) -> Tensor:
    r"""Up to 64 images of ``x`` (rows of ``h * w`` pixels) tiled into one grayscale array, one-pixel gaps as NaN."""
    h, w = shape
    x = x[:_MAX_IMAGES].reshape(-1, h, w)
    n = x.shape[0]
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = torch.full((rows * (h + 1) - 1, cols * (w + 1) - 1), math.nan, dtype=x.dtype)
    for i in range(n):
        r, c = divmod(i, cols)
        grid[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = x[i]
    return grid


def plot_samples(
    real: Tensor,
    fake: Tensor,
    path: str | os.PathLike[str],
    image_shape: tuple[int, int] | None = None,
    names: list[str] | None = None,
) -> Path:
    r"""Plot model samples beside real data and write the figure as a PNG.

    The layout follows the data:

    * ``image_shape`` given: two grayscale image grids (real, samples) of up to 64 images
      each, every row of ``real``/``fake`` reshaped to ``image_shape`` (e.g. ``(8, 8)``
      digits, ``(28, 28)`` MNIST); both panels share one colour scale.
    * 2-D data: two scatter panels (real, samples) with the same axis limits.
    * Otherwise (tabular data): pairwise marginals of the first 6 columns in a corner-style
      grid, a histogram of each column on the diagonal and 2-D scatters below it, real data
      and samples overlaid in two colours, labelled by ``names``.

    At most 5000 points of each set are drawn in the scatters.

    Arguments:
        real: Real data, ``(N, D)`` (a 1-D tensor is one column; images may also be
            ``(N, H, W)`` or ``(N, 1, H, W)``).
        fake: Model samples, ``(M, D)`` with the same ``D``.
        path: The PNG file to write.
        image_shape: ``(H, W)`` of the images, ``H * W == D``, or ``None`` for non-image data.
        names: Column names for the tabular layout (``D`` of them); ``x0, x1, ...`` if ``None``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: If a set is empty, the dimensions differ or do not match
            ``image_shape``/``names``.
        ImportError: If matplotlib is not installed.
    """
    real, fake = _as_2d(real, "real"), _as_2d(fake, "fake")
    dim = real.shape[1]
    if fake.shape[1] != dim:
        raise ValueError(f"real has {dim} columns but fake has {fake.shape[1]}")
    if image_shape is not None:
        h, w = image_shape
        if h * w != dim:
            raise ValueError(f"image_shape {tuple(image_shape)} does not match {dim} values per row")
        grids = [_image_grid(real, (h, w)), _image_grid(fake, (h, w))]
        finite = torch.cat([g[torch.isfinite(g)] for g in grids])
        vmin, vmax = finite.min().item(), finite.max().item()
        fig = _figure(figsize=(8, 4.3), layout="constrained")
        for ax, grid, title in zip(fig.subplots(1, 2), grids, ("real", "samples")):
            ax.imshow(grid.numpy(), cmap="gray", vmin=vmin, vmax=vmax, interpolation="nearest")
            ax.set_title(title)
            ax.set_axis_off()
        return _save(fig, path)

    if names is not None and len(names) != dim:
        raise ValueError(f"{len(names)} names for {dim} columns")
    labels = list(names) if names is not None else [f"x{i}" for i in range(dim)]
    real, fake = real[:_MAX_POINTS], fake[:_MAX_POINTS]
    size = max(1.0, min(8.0, 2000 / max(real.shape[0], fake.shape[0])))

    if dim == 2:
        (xlim, ylim) = _limits(real, fake)
        fig = _figure(figsize=(8, 4), layout="constrained")
        for ax, x, color, title in zip(
            fig.subplots(1, 2, sharex=True, sharey=True), (real, fake), (_REAL_COLOR, _FAKE_COLOR), ("real", "samples")
        ):
            ax.scatter(x[:, 0].numpy(), x[:, 1].numpy(), s=size, c=color, alpha=0.5, linewidths=0)
            ax.set_xlim(*xlim)
            ax.set_ylim(*ylim)
            ax.set_xlabel(labels[0])
            ax.set_ylabel(labels[1])
            ax.set_title(title)
        return _save(fig, path)

    k = min(dim, _MAX_COLUMNS)
    limits = _limits(real[:, :k], fake[:, :k])
    fig = _figure(figsize=(1.9 * k + 0.6, 1.9 * k + 0.6), layout="constrained")
    axes = fig.subplots(k, k, squeeze=False)
    for i in range(k):
        for j in range(k):
            ax = axes[i][j]
            if j > i:
                ax.set_visible(False)
                continue
            if i == j:
                for x, color in ((real, _REAL_COLOR), (fake, _FAKE_COLOR)):
                    col = x[:, i][torch.isfinite(x[:, i])].numpy()
                    ax.hist(col, bins=30, range=limits[i], density=True, histtype="step", color=color)
                ax.set_yticks([])
            else:
                for x, color in ((real, _REAL_COLOR), (fake, _FAKE_COLOR)):
                    ax.scatter(x[:, j].numpy(), x[:, i].numpy(), s=size, c=color, alpha=0.4, linewidths=0)
                ax.set_ylim(*limits[i])
            ax.set_xlim(*limits[j])
            if i == k - 1:
                ax.set_xlabel(labels[j])
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(labels[i])
            elif i != j:
                ax.set_yticklabels([])
    handles = [
        axes[0][0].plot([], [], color=_REAL_COLOR, label="real")[0],
        axes[0][0].plot([], [], color=_FAKE_COLOR, label="samples")[0],
    ]
    title = f"pairwise marginals (first {k} of {dim} columns)" if dim > k else "pairwise marginals"
    fig.legend(handles=handles, loc="upper right")
    fig.suptitle(title)
    return _save(fig, path)


def _smooth(y: Tensor, window: int) -> Tensor:
    r"""Trailing moving average of ``y`` over ``window`` steps (shorter at the start)."""
    c = torch.cat([y.new_zeros(1), y.cumsum(0)])
    idx = torch.arange(1, y.numel() + 1)
    lo = (idx - window).clamp(min=0)
    return (c[idx] - c[lo]) / (idx - lo)


def plot_loss(
    step_loss: Sequence[float],
    epoch_valid: Sequence[float],
    steps_per_epoch: int,
    path: str | os.PathLike[str],
) -> Path:
    r"""Plot the training loss per step (with a moving average) and the validation loss per epoch.

    Both share one axis in units of epochs: step :math:`s` (0-based) is drawn at
    :math:`(s + 1) / \text{steps\_per\_epoch}` and the validation loss of epoch :math:`e`
    (0-based) at :math:`e + 1`, the end of that epoch. The moving average spans about a
    tenth of an epoch's steps, at least 1 and at most 1/20 of all steps rounded up.
    Non-finite losses are not drawn.

    Arguments:
        step_loss: The training loss of every step.
        epoch_valid: The validation loss at the end of every epoch (may be empty).
        steps_per_epoch: Optimizer steps per epoch, positive.
        path: The PNG file to write.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: If ``steps_per_epoch`` is not positive or both losses are empty.
        ImportError: If matplotlib is not installed.
    """
    if steps_per_epoch <= 0:
        raise ValueError(f"steps_per_epoch must be positive, got {steps_per_epoch}")
    train = torch.as_tensor(list(step_loss), dtype=torch.float64).reshape(-1)
    valid = torch.as_tensor(list(epoch_valid), dtype=torch.float64).reshape(-1)
    if train.numel() == 0 and valid.numel() == 0:
        raise ValueError("no losses to plot")
    fig = _figure(figsize=(7, 4), layout="constrained")
    ax = fig.subplots()
    if train.numel():
        x = torch.arange(1, train.numel() + 1, dtype=torch.float64) / steps_per_epoch
        ok = torch.isfinite(train)
        ax.plot(x[ok].numpy(), train[ok].numpy(), color=_REAL_COLOR, alpha=0.3, lw=0.8, label="train (step)")
        window = max(1, min(steps_per_epoch // 10, math.ceil(train.numel() / 20)))
        if window > 1 and ok.sum() > window:
            ax.plot(
                x[ok].numpy(),
                _smooth(train[ok], window).numpy(),
                color=_REAL_COLOR,
                lw=1.5,
                label=f"train (mean of {window} steps)",
            )
    if valid.numel():
        e = torch.arange(1, valid.numel() + 1, dtype=torch.float64)
        ok = torch.isfinite(valid)
        ax.plot(e[ok].numpy(), valid[ok].numpy(), "o-", color=_FAKE_COLOR, lw=1.5, ms=4, label="validation (epoch)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, path)


def plot_density_2d(
    log_prob_fn: Callable[[Tensor], Tensor],
    path: str | os.PathLike[str],
    bounds: tuple[float, float, float, float] | None = None,
    data: Tensor | None = None,
    points: int = 200,
    chunk: int = 10000,
) -> Path:
    r"""Heat map of the density :math:`\exp(\log p(x))` of a 2-D model on a regular grid.

    ``log_prob_fn`` is evaluated under :func:`torch.no_grad` on ``points x points`` grid
    points in chunks of ``chunk`` rows, float32 on the CPU (a model elsewhere can be wrapped,
    e.g. ``lambda x: flow.log_prob(x.to(device)).cpu()``). Non-finite log-densities are
    drawn as zero density.

    Arguments:
        log_prob_fn: Maps an ``(N, 2)`` tensor to ``(N,)`` log-densities.
        path: The PNG file to write.
        bounds: ``(xmin, xmax, ymin, ymax)`` of the grid; if ``None``, the 0.5% and 99.5%
            quantiles of ``data`` per column, widened by 10% of the range on each side.
        data: Optional ``(N, 2)`` data, used for the bounds when ``bounds`` is ``None``.
        points: Grid points per axis, at least 2.
        chunk: Grid points per call of ``log_prob_fn``.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        ValueError: If neither ``bounds`` nor ``data`` is given, the bounds are empty,
            ``points < 2``, or ``log_prob_fn`` returns the wrong shape.
        ImportError: If matplotlib is not installed.
    """
    if points < 2:
        raise ValueError(f"points must be at least 2, got {points}")
    if bounds is None:
        if data is None:
            raise ValueError("give bounds or data")
        d = _as_2d(data, "data")
        if d.shape[1] != 2:
            raise ValueError(f"data must have 2 columns, got {d.shape[1]}")
        d = d[torch.isfinite(d).all(1)]
        if d.shape[0] == 0:
            raise ValueError("data has no finite rows")
        q = torch.quantile(d, torch.tensor([0.005, 0.995], dtype=d.dtype), dim=0)
        span = (q[1] - q[0]).clamp(min=1e-6)
        lo, hi = q[0] - 0.1 * span, q[1] + 0.1 * span
        bounds = (lo[0].item(), hi[0].item(), lo[1].item(), hi[1].item())
    xmin, xmax, ymin, ymax = (float(b) for b in bounds)
    if not (xmin < xmax and ymin < ymax):
        raise ValueError(f"empty bounds {bounds}")
    xs = torch.linspace(xmin, xmax, points)
    ys = torch.linspace(ymin, ymax, points)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    grid = torch.stack([gx.reshape(-1), gy.reshape(-1)], dim=1)
    out = []
    with torch.no_grad():
        for part in grid.split(max(1, chunk)):
            lp = torch.as_tensor(log_prob_fn(part)).detach().cpu().double()
            if lp.shape != (part.shape[0],):
                raise ValueError(f"log_prob_fn returned shape {tuple(lp.shape)} for input {tuple(part.shape)}")
            out.append(lp)
    lp = torch.cat(out)
    density = torch.where(torch.isfinite(lp), lp.exp(), torch.zeros_like(lp)).nan_to_num(posinf=0.0)
    density = density.reshape(points, points)
    fig = _figure(figsize=(5.5, 4.5), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(
        density.numpy(),
        origin="lower",
        extent=(xmin, xmax, ymin, ymax),
        aspect="auto",
        cmap="viridis",
        interpolation="nearest",
    )
    fig.colorbar(im, ax=ax, label="density")
    ax.set_xlabel("x0")
    ax.set_ylabel("x1")
    ax.set_title("model density")
    return _save(fig, path)
